//! Upstream ID token validation as `OidcFederation` does it (signature with the provider's
//! JWKS, iss, aud, azp, exp, iat, nonce), next to the bare JWS verification it includes.
//!
//! Run with: cargo bench -p edk-benches --bench oidc_id_token
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::Kid;
use edk_core::jose::{Algorithm, Header, JwksResolver, Jws, SigningKey, VerifyPolicy, jws};
use edk_core::limits::Limits;
use edk_oauth::federation::IdTokenValidator;

const ISSUER: &str = "https://login.example.com";
const NOW: i64 = 1_800_000_000;

fn id_token(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let claims = serde_json::to_vec(&serde_json::json!({
        "iss": ISSUER, "sub": "user-42", "aud": "edk-rp", "iat": NOW, "exp": NOW + 300,
        "nonce": "n-0S6_WzA2Mj", "auth_time": NOW - 5, "email": "user-42@example.com",
        "email_verified": true, "name": "User 42"
    }))
    .expect("claims");
    for alg in [Algorithm::Rs256, Algorithm::Es256] {
        let key = SigningKey::generate(alg)
            .expect("key")
            .with_kid(Kid::new(format!("{alg}-1")).expect("kid"));
        let other = SigningKey::generate(alg)
            .expect("key")
            .with_kid(Kid::new(format!("{alg}-0")).expect("kid"));
        let token = runtime
            .block_on(jws::sign(Header::new(alg), &claims, &key))
            .expect("id token");
        // A provider JWKS usually holds the current and the previous key.
        let keys = Arc::new(JwksResolver::from_keys([
            &other.public_jwk(),
            &key.public_jwk(),
        ]));
        let validator = IdTokenValidator::new(ISSUER, "edk-rp", keys.clone());
        let mut group = c.benchmark_group(format!("oidc_id_token/{alg}"));
        group.bench_function("validate", |b| {
            b.iter(|| {
                runtime
                    .block_on(validator.validate(&token, "n-0S6_WzA2Mj", NOW))
                    .expect("valid")
            });
        });
        group.bench_function("jws verify only", |b| {
            b.iter(|| {
                let parsed = Jws::parse(&token, &Limits::default()).expect("parse");
                runtime
                    .block_on(parsed.verify_with(keys.as_ref(), &VerifyPolicy::default(), None))
                    .expect("verify")
            });
        });
        group.finish();
    }
}

criterion_group!(benches, id_token);
criterion_main!(benches);
