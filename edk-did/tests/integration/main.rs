//! Integration tests of edk-did: the resolver and its methods, spec vectors, negative cases,
//! the DID store on SQLite and PostgreSQL, the `did` command line and interop with foreign implementations (Python, Node).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cli;
mod dereference;
#[path = "../../examples/did/cli.rs"]
mod did_cli;
mod interop;
mod key_resolver;
mod parsing;
mod publish;
mod python;
mod resolver;
mod store;
mod support;
mod vectors;
mod web;
mod webvh;
mod webvh_interop;
mod webvh_kms;
mod webvh_method;
mod webvh_negative;
