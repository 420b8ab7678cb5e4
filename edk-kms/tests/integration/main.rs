//! Integration tests of edk-kms: the provider conformance suite on every provider, and each
//! provider's own guarantees (sealed keys, token binding, availability).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "pkcs11")]
mod pkcs11;
mod software;
