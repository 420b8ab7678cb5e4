//! The platform server over real HTTP on loopback, on SQLite and PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit;
mod console;
mod directory;
mod openapi;
mod operator_login;
mod operator_tenant_admins;
mod replicas;
mod schemathesis;
mod scopes;
mod service_identity;
mod setup;
mod steps;
mod support;
mod tenant_admins;
mod tenants;
