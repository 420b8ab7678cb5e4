//! edk-core integration tests: spec vectors, interop with foreign implementations, and
//! properties over generated input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod jose_interop;
mod jose_props;
mod jwe_interop;
mod sd_jwt;
mod status_list;
mod status_list_cache;
mod status_list_cwt;
mod support;
