//! The platform server over real HTTP on loopback, on SQLite and PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod openapi;
mod operator_login;
mod operator_tenant_admins;
mod scopes;
mod setup;
mod support;
mod tenant_admins;
mod tenants;
