//! edk-server integration tests: a small API served over loopback HTTP with the shared
//! middleware stack, exercised with a real client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod auth;
mod config;
mod health;
mod jwks;
mod observe;
mod problems;
mod rate_limit;
mod support;
