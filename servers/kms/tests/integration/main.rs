//! edk-kms-server integration tests: the server built from its configuration and booted on
//! loopback over PostgreSQL and SQLite, exercised with a real HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit;
mod certificates;
mod grpc;
mod key_store;
mod keys;
mod malformed;
mod openapi;
mod providers;
mod registrations;
mod reserved;
mod resolvers;
mod responses;
mod rest_provider;
mod schemathesis;
mod scopes;
mod service_identity;
mod support;
mod tenants;
