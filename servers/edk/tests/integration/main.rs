//! edk integration tests: the application served over loopback, the data directory, the
//! OpenAPI snapshot and the compiled binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod app;
mod binary;
mod cli;
mod console;
mod onboarding;
mod openapi;
mod schemathesis;
mod scopes;
mod support;
mod verify_local;
