//! `LocalKms` on SQLite with the software provider: signing through an alias (cached signer,
//! buffered audit) next to the raw aws-lc-rs `SigningKey` in the same run, and verification
//! through the KMS and through its cached resolver.
//!
//! Run with: cargo bench -p edk-benches --bench kms_local
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::TenantSlug;
use edk_core::jose::{Algorithm, KeyQuery, SigningKey};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, KeyRef, Kms, LocalKms, NewKey};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use tokio_util::sync::CancellationToken;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";

fn local(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = edk_testkit::temp_dir();
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let provider: Arc<dyn KeyProvider> = Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap(),
    );
    let (kms, caller, task) = runtime.block_on(async {
        let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
            .migrations(edk_kms::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let tenant = tenancy
            .provision(TenantSlug::new("bench").unwrap(), "Bench")
            .await
            .unwrap();
        let caller = Caller::new(tenancy.context(tenant.id).await.unwrap(), "bench");
        let kms = LocalKms::builder(tenancy, vec![provider]).build().unwrap();
        let task = kms.start(&CancellationToken::new());
        (kms, caller, task)
    });
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let info = runtime
        .block_on(kms.create_key(
            &caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        ))
        .unwrap();
    let kid = info.active().unwrap().kid.clone();
    let signer = runtime.block_on(kms.signer(&caller, &alias)).unwrap();
    let raw = SigningKey::generate(Algorithm::Es256).unwrap();
    let signature = runtime
        .block_on(kms.sign(&caller, &alias, MESSAGE))
        .unwrap();
    let resolver = kms.resolver(&caller);

    let mut group = c.benchmark_group("kms/local/sign/ES256");
    group.bench_function("raw SigningKey::sign_bytes", |b| {
        b.iter(|| raw.sign_bytes(MESSAGE).unwrap());
    });
    group.bench_function("Kms::sign by alias", |b| {
        b.iter(|| {
            runtime
                .block_on(kms.sign(&caller, &alias, MESSAGE))
                .unwrap()
        });
    });
    group.bench_function("alias Signer::sign", |b| {
        b.iter(|| runtime.block_on(signer.sign(MESSAGE)).unwrap());
    });
    group.finish();

    let public = raw.verifying_key().clone();
    let raw_signature = raw.sign_bytes(MESSAGE).unwrap();
    let mut group = c.benchmark_group("kms/local/verify/ES256");
    group.bench_function("raw VerifyingKey::verify", |b| {
        b.iter(|| {
            public
                .verify(Algorithm::Es256, MESSAGE, &raw_signature)
                .unwrap()
        });
    });
    group.bench_function("Kms::verify by alias", |b| {
        b.iter(|| {
            runtime
                .block_on(kms.verify(
                    &caller,
                    &KeyRef::Alias(alias.clone()),
                    Algorithm::Es256,
                    MESSAGE,
                    &signature.bytes,
                ))
                .unwrap()
        });
    });
    group.bench_function("resolver + VerifyingKey::verify", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let query = KeyQuery::new(Algorithm::Es256).with_kid(Some(kid.as_str()));
                let key = resolver.resolve(&query).await.unwrap();
                key.verify(Algorithm::Es256, MESSAGE, &signature.bytes)
                    .unwrap();
            });
        });
    });
    group.finish();
    runtime.block_on(task.shutdown());
}

criterion_group!(benches, local);
criterion_main!(benches);
