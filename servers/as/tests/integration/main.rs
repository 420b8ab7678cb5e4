//! Integration tests of edk-as-server over real HTTP: authlib as the client of every grant,
//! two instances on one PostgreSQL, the admin API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod at_jwt;
mod attestation;
mod authlib;
mod claims;
mod federation_tls;
mod openapi;
mod protocol_openapi;
mod rate_limits;
mod remote_kms;
mod replicas;
mod schemathesis;
mod scopes;
mod support;
mod wallet;
