//! JWS sign and verify, next to the raw signature calls they wrap.
//!
//! Run with: cargo bench -p edk-benches --bench jose
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::jose::{Algorithm, Header, Jws, SigningKey, VerifyPolicy, jws};
use edk_core::limits::Limits;

fn jose(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let payload = serde_json::to_vec(&serde_json::json!({
        "iss": "https://issuer.example", "sub": "user-42", "iat": 1_700_000_000, "exp": 1_900_000_000
    }))
    .expect("payload");
    for alg in [
        Algorithm::Es256,
        Algorithm::EdDsa,
        Algorithm::Es384,
        Algorithm::Rs256,
    ] {
        let key = SigningKey::generate(alg).expect("key");
        let mut group = c.benchmark_group(format!("jws/{alg}"));
        group.bench_function("raw sign", |b| {
            b.iter(|| key.sign_bytes(&payload).expect("sign"))
        });
        group.bench_function("jws sign", |b| {
            b.iter(|| {
                runtime
                    .block_on(jws::sign(Header::new(alg).with_typ("JWT"), &payload, &key))
                    .expect("jws")
            });
        });
        let signature = key.sign_bytes(&payload).expect("sign");
        group.bench_function("raw verify", |b| {
            b.iter(|| {
                key.verifying_key()
                    .verify(alg, &payload, &signature)
                    .expect("verify");
            });
        });
        let token = runtime
            .block_on(jws::sign(Header::new(alg).with_typ("JWT"), &payload, &key))
            .expect("jws");
        let policy = VerifyPolicy::default().with_typ("JWT");
        group.bench_function("jws verify", |b| {
            b.iter(|| {
                Jws::parse(&token, &Limits::DEFAULT)
                    .and_then(|jws| jws.verify(key.verifying_key(), &policy))
                    .expect("verify")
            });
        });
        group.finish();
    }
}

criterion_group!(benches, jose);
criterion_main!(benches);
