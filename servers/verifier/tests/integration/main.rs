//! Integration tests of edk-verifier-server over real HTTP on loopback: an in-process wallet
//! answering requests end to end and the refusals, the npm wallet `@openid4vc/openid4vp`
//! answering every client identifier prefix and response mode, the admin API with its scopes and tenant
//! isolation, on SQLite and PostgreSQL, two replicas on one database, signed webhooks, schemathesis, and the
//! OpenAPI snapshot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod flow;
mod haip;
mod interop;
mod mdoc;
mod openapi;
mod rate_limits;
mod replicas;
mod retention;
mod same_device;
mod schemathesis;
mod scopes;
mod status;
mod support;
mod verifier_attestation;
mod webhook;
