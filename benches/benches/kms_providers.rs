//! Key providers: the software provider's signer next to the raw key it wraps, and PKCS#11
//! (SoftHSM2) signing throughput with 1, 4 and 16 concurrent callers.
//!
//! Run with: cargo bench -p edk-benches --bench kms_providers
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::TenantId;
use edk_core::jose::{Algorithm, Signer, SigningKey};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::SoftHsm;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";

fn software(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new("software").unwrap(),
        kek,
    ))
    .unwrap();
    let tenant = TenantId::generate();
    let key = runtime
        .block_on(provider.generate(&tenant, &KeySpec::signing(Algorithm::Es256)))
        .unwrap();
    let signer = runtime
        .block_on(provider.signer(&tenant, key.handle()))
        .unwrap();
    let raw = SigningKey::generate(Algorithm::Es256).unwrap();

    let mut group = c.benchmark_group("kms/software/ES256");
    group.bench_function("raw SigningKey::sign_bytes", |b| {
        b.iter(|| raw.sign_bytes(MESSAGE).unwrap());
    });
    group.bench_function("provider signer", |b| {
        b.iter(|| runtime.block_on(signer.sign(MESSAGE)).unwrap());
    });
    group.bench_function("signer from handle + sign", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let signer = provider.signer(&tenant, key.handle()).await.unwrap();
                signer.sign(MESSAGE).await.unwrap()
            })
        });
    });
    group.finish();
}

fn pkcs11(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    let hsm = SoftHsm::new("bench");
    let config = hsm.config("hsm").with_max_sessions(16).unwrap();
    let provider = runtime.block_on(hsm.connect(config)).unwrap();
    let tenant = TenantId::generate();
    let key = runtime
        .block_on(provider.generate(&tenant, &KeySpec::signing(Algorithm::Es256)))
        .unwrap();
    let signer: Arc<dyn Signer> = runtime
        .block_on(provider.signer(&tenant, key.handle()))
        .unwrap();

    let mut group = c.benchmark_group("kms/pkcs11-softhsm2/ES256");
    group.throughput(Throughput::Elements(1));
    for callers in [1_u64, 4, 16] {
        group.bench_function(format!("{callers} concurrent callers"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let per_caller = iters.div_ceil(callers);
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..callers {
                        let signer = Arc::clone(&signer);
                        tasks.spawn(async move {
                            for _ in 0..per_caller {
                                signer.sign(MESSAGE).await.unwrap();
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap();
                    }
                    let elapsed = start.elapsed();
                    // Per signature, scaled to the `iters` criterion asked for.
                    elapsed.mul_f64(iters as f64 / (per_caller * callers) as f64)
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, software, pkcs11);
criterion_main!(benches);
