//! Compact JWS parsing and verification (RFC 7515 §7.1) on arbitrary input.
//!
//! A token that parses is verified with a fixed key of its header's family (the RFC 7515
//! A.3 P-256 key, or the RFC 8037 A.1 Ed25519 key), so header checks, key/algorithm matching
//! and the signature code all see fuzzed input. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use edk_core::Limits;
use edk_core::jose::{Jwk, Jws, VerifyPolicy, VerifyingKey};
use libfuzzer_sys::fuzz_target;

const P256: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const ED25519: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

fn keys() -> &'static (VerifyingKey, VerifyingKey) {
    static KEYS: OnceLock<(VerifyingKey, VerifyingKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = |json: &str| {
            let jwk: Jwk = serde_json::from_str(json).expect("fixed JWK");
            VerifyingKey::from_jwk(&jwk).expect("fixed key")
        };
        (key(P256), key(ED25519))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jws) = Jws::parse(token, &Limits::DEFAULT) else {
        return;
    };
    let (p256, ed25519) = keys();
    let key = if jws.header().alg.is_ed25519() {
        ed25519
    } else {
        p256
    };
    let policy = VerifyPolicy::default().with_typ("JWT");
    if let Ok(verified) = jws.clone().verify(key, &policy) {
        let _ = verified.claims();
    }
    let _ = jws.verify(key, &VerifyPolicy::default());
});
