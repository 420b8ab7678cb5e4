//! Integration tests of edk-oid4vci: configurations, offers, requests, proofs and issued
//! credentials checked against the specification's rules and examples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod config;
mod credential;
mod issuer;
mod offer;
mod proof;
mod request;
mod status_store;
mod store;

use edk_core::encoding::b64url_encode;
use edk_core::jose::SigningKey;
use serde_json::Value;

/// A compact JWS of `claims` under `header`, signed by `key`, with no `kid` added (wallets
/// name their key by `jwk` alone).
pub(crate) fn signed(key: &SigningKey, header: &impl serde::Serialize, claims: &Value) -> String {
    let header = b64url_encode(serde_json::to_vec(header).unwrap());
    let payload = b64url_encode(claims.to_string());
    let signature = key
        .sign_bytes(format!("{header}.{payload}").as_bytes())
        .unwrap();
    format!("{header}.{payload}.{}", b64url_encode(signature))
}
