//! Certificates over a `LocalKms` (software keys, SQLite tenancy): a CSR, issuing an
//! end-entity certificate under an intermediate (signing plus the store write), and
//! validating a three-certificate chain.
//!
//! Run with: cargo bench -p edk-benches --bench kms_certificates
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::jose::Algorithm;
use edk_core::{SystemClock, TenantSlug};
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::cert::{Anchors, CertificateProfile, Certificates, DistinguishedName};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, Kms, LocalKms, NewKey};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};

const DAY: Duration = Duration::from_secs(86_400);

fn certificates(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = edk_testkit::temp_dir();
    let (certs, caller) = runtime.block_on(async {
        let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_kms::cert::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let tenant = tenancy
            .provision(TenantSlug::new("bench").unwrap(), "Bench")
            .await
            .unwrap();
        let caller = Caller::new(tenancy.context(tenant.id).await.unwrap(), "bench");
        let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
        let software = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(software)])
            .build()
            .unwrap();
        for alias in ["ca.root", "ca.issuing", "issuer.leaf"] {
            kms.create_key(
                &caller,
                &NewKey::new(alias.parse().unwrap(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
        }
        let certs = Certificates::new(
            Arc::new(kms),
            Arc::new(SqlCertificateStore::new(tenancy)),
            Arc::new(SystemClock),
        );
        (certs, caller)
    });
    let root: KeyAlias = "ca.root".parse().unwrap();
    let issuing: KeyAlias = "ca.issuing".parse().unwrap();
    let leaf: KeyAlias = "issuer.leaf".parse().unwrap();
    let (root_der, leaf_pem) = runtime.block_on(async {
        let root_cert = certs
            .issue(
                &caller,
                &root,
                &root,
                &CertificateProfile::ca(DAY * 3650, Some(1)),
            )
            .await
            .unwrap();
        certs
            .issue(
                &caller,
                &root,
                &issuing,
                &CertificateProfile::ca(DAY * 365, Some(0)),
            )
            .await
            .unwrap();
        let leaf_cert = certs
            .issue(
                &caller,
                &issuing,
                &leaf,
                &CertificateProfile::leaf(DAY * 30),
            )
            .await
            .unwrap();
        (
            root_cert.certificate.der().to_vec(),
            leaf_cert.certificate.pem().unwrap(),
        )
    });
    let subject = DistinguishedName::parse("CN=leaf.example,O=Bench").unwrap();
    let anchors = Anchors::Certificates(vec![root_der]);

    let mut group = c.benchmark_group("kms/certificates/ES256");
    group.bench_function("csr", |b| {
        b.iter(|| {
            runtime
                .block_on(certs.csr(&caller, &leaf, &subject, &[]))
                .unwrap()
        });
    });
    group.bench_function("issue leaf under intermediate (SQLite store)", |b| {
        b.iter(|| {
            runtime
                .block_on(certs.issue(&caller, &issuing, &leaf, &CertificateProfile::leaf(DAY)))
                .unwrap()
        });
    });
    group.bench_function("validate 3-certificate chain", |b| {
        b.iter(|| {
            runtime
                .block_on(certs.validate_chain(&caller, &leaf_pem, &anchors, None))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, certificates);
criterion_main!(benches);
