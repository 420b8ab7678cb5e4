//! Integration tests of edk-oid4vp: DCQL queries read and refused per OpenID4VP 1.0 §6,
//! claims path pointers per §7, the evaluation of queries against credentials and
//! presentations, and agreement with npm `dcql`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod dcql;
mod evaluate;
mod haip;
mod interop;
mod openid4vp_interop;
mod path;
mod request;
mod request_object;
mod response;
mod support;
mod validate;
mod verifier_attestation;

use std::path::Path;

use serde_json::Value;

/// The example query `name` of the specification, from `tests/vectors/dcql`.
pub(crate) fn spec_example(name: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/dcql")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// The names of every example query of the specification.
pub(crate) const SPEC_EXAMPLES: [&str; 7] = [
    "simple",
    "simple_mdoc",
    "multi_credentials",
    "credentials_alternatives",
    "complex_mdoc",
    "claims_alternatives",
    "value_matching_simple",
];

/// `seconds` after the Unix epoch as a `SystemTime`.
pub(crate) fn support_time(seconds: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(seconds).unwrap())
}
