//! Integration tests of edk-did-server over real loopback HTTP, on SQLite and PostgreSQL:
//! publishing, resolution, the registrar and admin APIs, tenant isolation, malformed input,
//! the OpenAPI snapshot, schemathesis, and the compiled `edk-did` beside a KMS server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod dereference;
mod isolation;
mod keys;
mod lifecycle;
mod malformed;
mod openapi;
mod remote_kms;
mod replicas;
mod schemathesis;
mod scopes;
mod support;
mod witness;
