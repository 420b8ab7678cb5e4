//! edk-mdoc integration tests: the ISO/IEC 18013-5 Annex D vectors, issue → present → verify
//! round trips, refusals with their specific errors, and interop with npm `@animo-id/mdoc`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod annex_d;
mod interop;
mod mac;
mod refusals;
mod roundtrip;
mod support;
