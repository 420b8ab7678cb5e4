//! SD-JWT (RFC 9901) and SD-JWT VC: spec vectors, round trips, the RFC's negative cases,
//! interop with PyPI `sd-jwt`, x5c chains and properties over generated input.

mod interop;
mod negative;
mod props;
mod roundtrip;
mod type_metadata;
mod vc;
mod vectors;

use edk_core::jose::{Algorithm, Header, Jwk, JwksResolver, SigningKey, jws};
use edk_core::sd_jwt::{self, ClaimPath, IssueOptions, SdJwt};
use serde_json::{Map, Value, json};

/// The time the tests run at.
pub(crate) const NOW: i64 = 1_700_000_000;

/// A file from `tests/vectors/sd-jwt/`, trimmed.
pub(crate) fn vector(name: &str) -> String {
    let path = format!("{}/tests/vectors/sd-jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .trim()
        .to_owned()
}

/// A JWK file from `tests/vectors/sd-jwt/`.
pub(crate) fn jwk(name: &str) -> Jwk {
    serde_json::from_str(&vector(name)).unwrap()
}

/// The RFC 9901 example issuer key (private).
pub(crate) fn issuer_key() -> SigningKey {
    SigningKey::from_jwk(&jwk("issuer_key.jwk.json"), Some(Algorithm::Es256)).unwrap()
}

/// The RFC 9901 example holder key (private).
pub(crate) fn holder_key() -> SigningKey {
    SigningKey::from_jwk(&jwk("holder_key.jwk.json"), Some(Algorithm::Es256)).unwrap()
}

/// A resolver holding the example issuer key.
pub(crate) fn issuer_resolver() -> JwksResolver {
    JwksResolver::from_keys([&issuer_key().public_jwk()])
}

pub(crate) fn paths(paths: &[&str]) -> Vec<ClaimPath> {
    paths.iter().map(|p| p.parse().unwrap()).collect()
}

pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Claims with nested objects and arrays, bound to the example holder key.
pub(crate) fn sample_claims() -> Map<String, Value> {
    object(json!({
        "iss": "https://issuer.example",
        "iat": NOW - 100,
        "exp": NOW + 3600,
        "cnf": {"jwk": holder_key().public_jwk()},
        "given_name": "Erika",
        "family_name": "Mustermann",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationalities": ["DE", "FR", "US"],
    }))
}

/// The paths made selectively disclosable in [`sample_claims`].
pub(crate) const SAMPLE_SD: &[&str] = &[
    "given_name",
    "family_name",
    "address",
    "address.street_address",
    "address.locality",
    "nationalities.0",
    "nationalities.2",
];

/// Issues [`sample_claims`] as a plain SD-JWT with the example issuer key.
pub(crate) async fn issue_sample() -> SdJwt {
    sd_jwt::issue(
        Header::new(Algorithm::Es256).with_typ("example+sd-jwt"),
        sample_claims(),
        &paths(SAMPLE_SD),
        &IssueOptions::default(),
        &issuer_key(),
    )
    .await
    .unwrap()
}

/// Signs `payload` as the example issuer, for hand-built (often invalid) SD-JWTs.
pub(crate) async fn sign_payload(typ: &str, payload: &Value) -> String {
    jws::sign(
        Header::new(Algorithm::Es256).with_typ(typ),
        &serde_json::to_vec(payload).unwrap(),
        &issuer_key(),
    )
    .await
    .unwrap()
}
