//! DID resolution: did:key (uncached, per key type, and cached) and did:jwk.
//!
//! Run with: cargo bench -p edk-benches --bench did
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::SystemClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::{CacheConfig, DidResolver, ResolveOptions, Resolver};

fn did(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let uncached = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidJwk))
        .build()
        .expect("resolver");
    let cached = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidJwk))
        .cache(CacheConfig::default(), Arc::new(SystemClock))
        .build()
        .expect("resolver");
    let opts = ResolveOptions::default();
    let mut group = c.benchmark_group("did");
    for (name, alg) in [
        ("Ed25519", Algorithm::EdDsa),
        ("P-256", Algorithm::Es256),
        ("P-384", Algorithm::Es384),
        ("secp256k1", Algorithm::Es256K),
    ] {
        let jwk = SigningKey::generate(alg).expect("key").public_jwk();
        let did_key = DidKey::create(&jwk).expect("did:key").into_string();
        group.bench_function(format!("key {name} cold"), |b| {
            b.iter(|| {
                runtime
                    .block_on(uncached.resolve(None, &did_key, &opts))
                    .expect("resolve")
            });
        });
        if alg == Algorithm::EdDsa {
            runtime
                .block_on(cached.resolve(None, &did_key, &opts))
                .expect("warm");
            group.bench_function(format!("key {name} cached"), |b| {
                b.iter(|| {
                    runtime
                        .block_on(cached.resolve(None, &did_key, &opts))
                        .expect("resolve")
                });
            });
        }
        let did_jwk = DidJwk::create(&jwk).expect("did:jwk").into_string();
        group.bench_function(format!("jwk {name}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(uncached.resolve(None, &did_jwk, &opts))
                    .expect("resolve")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, did);
criterion_main!(benches);
