//! Integration tests of edk-issuer-server over real HTTP on loopback: the pre-authorized
//! flow with the tenant's authorization server beside it, the credential endpoint's
//! refusals, the admin API and its scopes, and the OpenAPI snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod authorization;
mod deferred;
mod faults;
mod flow;
mod interop;
mod jobs;
mod jwks_uri;
mod mdoc;
mod metadata;
mod notification;
mod openapi;
mod qr;
mod refusals;
mod remote_kms;
mod replicas;
mod retention;
mod schemathesis;
mod scopes;
mod service;
mod status;
mod support;
mod telemetry;
mod type_metadata;
