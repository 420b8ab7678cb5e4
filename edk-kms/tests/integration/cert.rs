//! Certificates over a real `LocalKms` on both backends: issuing chains, CSRs, registration,
//! chains and trust anchors, validation, tenant isolation, and a cross-check of everything we
//! produce with PyPI `cryptography`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use edk_core::jose::Algorithm;
use edk_core::{ErrorKind, HasKind};
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::cert::{
    Anchors, CertificateProfile, Certificates, ChainName, ChainProblem, DistinguishedName, Error,
    ExtendedKeyUsage, SubjectAltName,
};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, Kms, LocalKms, NewKey};
use edk_tenancy::Tenancy;
use serde_json::{Value, json};

use crate::support::{Backend, caller, software};

const DAY: Duration = Duration::from_secs(86_400);

struct CertEnv {
    kms: LocalKms,
    certs: Certificates,
    a: Caller,
    b: Caller,
    _tenancy: Tenancy,
    _dir: Option<tempfile::TempDir>,
    _db: Option<edk_testkit::TestDb>,
}

async fn cert_env(backend: Backend) -> CertEnv {
    let clock = Arc::new(edk_core::FixedClock::at_unix(1_700_000_000));
    let (config, dir, db) = match backend {
        Backend::Sqlite => {
            let dir = edk_testkit::temp_dir();
            let config = edk_tenancy::DatabaseConfig::Sqlite(
                edk_tenancy::store::sqlite::SqliteConfig::new(dir.path()),
            );
            (config, Some(dir), None)
        }
        Backend::Postgres => {
            let db = edk_testkit::TestDb::new().await;
            let mut config = edk_tenancy::store::postgres::PostgresConfig::new(
                secrecy::SecretString::from(db.url()),
            );
            config.max_connections = 8;
            (
                edk_tenancy::DatabaseConfig::Postgres(config),
                None,
                Some(db),
            )
        }
    };
    let tenancy = Tenancy::builder(config)
        .clock(clock.clone())
        .migrations(edk_kms::migrations().unwrap())
        .migrations(edk_kms::cert::migrations().unwrap())
        .build()
        .await
        .unwrap();
    let kms = LocalKms::builder(tenancy.clone(), vec![software("software")])
        .clock(clock.clone())
        .build()
        .unwrap();
    let certs = Certificates::new(
        Arc::new(kms.clone()),
        Arc::new(SqlCertificateStore::new(tenancy.clone())),
        clock,
    );
    let a = caller(&tenancy, "tenant-a", "alice").await;
    let b = caller(&tenancy, "tenant-b", "bob").await;
    CertEnv {
        kms,
        certs,
        a,
        b,
        _tenancy: tenancy,
        _dir: dir,
        _db: db,
    }
}

fn alias(text: &str) -> KeyAlias {
    text.parse().unwrap()
}

fn dn(text: &str) -> DistinguishedName {
    DistinguishedName::parse(text).unwrap()
}

fn at(days: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + chrono::TimeDelta::days(days)
}

async fn key(env: &CertEnv, name: &str, alg: Algorithm) -> KeyAlias {
    let alias = alias(name);
    env.kms
        .create_key(&env.a, &NewKey::new(alias.clone(), KeySpec::signing(alg)))
        .await
        .unwrap();
    alias
}

fn invalid(result: Result<impl std::fmt::Debug, Error>) -> ChainProblem {
    match result {
        Err(Error::InvalidChain(problem)) => problem,
        other => panic!("expected an invalid chain, got {other:?}"),
    }
}

/// A root, an intermediate and a leaf, then everything the service does with them.
async fn service_end_to_end(backend: Backend) {
    let env = cert_env(backend).await;
    let root = key(&env, "ca.root", Algorithm::Es256).await;
    let sub = key(&env, "ca.issuing", Algorithm::Es384).await;
    let leaf = key(&env, "issuer.credential-signing", Algorithm::EdDsa).await;

    let root_cert = env
        .certs
        .issue(
            &env.a,
            &root,
            &root,
            &CertificateProfile::ca(DAY * 3650, Some(1)).with_subject(dn("CN=Root,O=EDK")),
        )
        .await
        .unwrap();
    assert_eq!(root_cert.certificate.subject, "CN=Root,O=EDK");
    assert_eq!(root_cert.certificate.issuer, "CN=Root,O=EDK");
    assert_eq!(root_cert.certificate.chain.len(), 1);
    assert_eq!(root_cert.certificate.not_before, at(0));
    assert_eq!(root_cert.certificate.not_after, at(3650));

    // A CA without a certificate cannot issue.
    let err = env
        .certs
        .issue(&env.a, &sub, &leaf, &CertificateProfile::leaf(DAY))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCaCertificate { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    env.certs
        .issue(
            &env.a,
            &root,
            &sub,
            &CertificateProfile::ca(DAY * 365, Some(0)).with_subject(dn("CN=Issuing CA,O=EDK")),
        )
        .await
        .unwrap();
    let leaf_cert = env
        .certs
        .issue(
            &env.a,
            &sub,
            &leaf,
            &CertificateProfile::leaf(DAY * 30)
                .with_subject(dn("CN=Credential Issuer,O=EDK"))
                .with_sans([SubjectAltName::Uri("https://issuer.example".to_owned())])
                .with_extended_key_usages([ExtendedKeyUsage::Oid("1.0.18013.5.1.2".to_owned())]),
        )
        .await
        .unwrap();
    assert_eq!(leaf_cert.certificate.chain.len(), 3);
    assert_eq!(leaf_cert.certificate.issuer, "CN=Issuing CA,O=EDK");
    let leaf_kid = env.kms.key(&env.a, &leaf.clone().into()).await.unwrap();
    assert_eq!(
        leaf_cert.kid.as_ref(),
        Some(&leaf_kid.active().unwrap().kid)
    );
    assert_eq!(
        env.certs.certificate(&env.a, &leaf).await.unwrap(),
        leaf_cert
    );

    // Trust anchors and named chains.
    let roots = ChainName::new("roots").unwrap();
    env.certs
        .put_chain(&env.a, &roots, &root_cert.certificate.pem().unwrap(), true)
        .await
        .unwrap();
    let published = ChainName::new("issuer.x5c").unwrap();
    let chain_pem = leaf_cert.certificate.pem().unwrap();
    env.certs
        .put_chain(&env.a, &published, &chain_pem, false)
        .await
        .unwrap();
    let names: Vec<_> = env
        .certs
        .chains(&env.a)
        .await
        .unwrap()
        .into_iter()
        .map(|chain| (chain.name, chain.trust_anchor))
        .collect();
    assert_eq!(
        names,
        vec![(published.clone(), false), (roots.clone(), true)]
    );
    assert_eq!(
        env.certs
            .chain(&env.a, &published)
            .await
            .unwrap()
            .certificates,
        leaf_cert.certificate.chain
    );

    let validated = env
        .certs
        .validate_chain(&env.a, &chain_pem, &Anchors::Tenant, None)
        .await
        .unwrap();
    assert_eq!(
        validated.path.len(),
        2,
        "the root is the anchor, not part of the path"
    );
    assert_eq!(validated.anchor, root_cert.certificate.chain[0]);
    env.certs
        .validate_chain(
            &env.a,
            &chain_pem,
            &Anchors::Chain(roots.clone()),
            Some(at(29)),
        )
        .await
        .unwrap();
    assert_eq!(
        invalid(
            env.certs
                .validate_chain(&env.a, &chain_pem, &Anchors::Tenant, Some(at(31)))
                .await
        ),
        ChainProblem::Expired
    );
    // A chain named as anchors that holds no root of this chain.
    assert_eq!(
        invalid(
            env.certs
                .validate_chain(
                    &env.a,
                    &root_cert.certificate.pem().unwrap(),
                    &Anchors::Chain(published.clone()),
                    None
                )
                .await
        ),
        ChainProblem::CaAsEndEntity
    );

    // CSR for a managed RSA key, issued by the intermediate, registered under its alias.
    let rsa = key(&env, "as.access-token-signing", Algorithm::Rs256).await;
    let csr = env
        .certs
        .csr(
            &env.a,
            &rsa,
            &dn("CN=as.example"),
            &[SubjectAltName::Dns("as.example".to_owned())],
        )
        .await
        .unwrap();
    let issued = env
        .certs
        .issue_from_csr(&env.a, &sub, &csr, &CertificateProfile::leaf(DAY * 10))
        .await
        .unwrap();
    assert_eq!(issued.subject, "CN=as.example");
    let registered = env
        .certs
        .register(&env.a, &rsa, &issued.pem().unwrap())
        .await
        .unwrap();
    let rsa_info = env.kms.key(&env.a, &rsa.clone().into()).await.unwrap();
    assert_eq!(
        registered.kid.as_ref(),
        Some(&rsa_info.active().unwrap().kid)
    );
    env.certs
        .validate_chain(&env.a, &issued.pem().unwrap(), &Anchors::Tenant, None)
        .await
        .unwrap();

    // Another key's certificate does not register under an alias; an external alias takes any.
    let err = env
        .certs
        .register(&env.a, &rsa, &chain_pem)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    let external = alias("partner.root");
    let stored = env
        .certs
        .register(&env.a, &external, &root_cert.certificate.pem().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.kid, None);

    let listed: Vec<_> = env
        .certs
        .certificates(&env.a)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.alias.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "as.access-token-signing",
            "ca.issuing",
            "ca.root",
            "issuer.credential-signing",
            "partner.root"
        ]
    );

    // Tenant B sees none of it.
    let err = env.certs.certificate(&env.b, &leaf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(env.certs.certificates(&env.b).await.unwrap().is_empty());
    assert!(env.certs.chains(&env.b).await.unwrap().is_empty());
    assert!(matches!(
        env.certs.chain(&env.b, &roots).await,
        Err(Error::ChainNotFound { .. })
    ));
    assert!(matches!(
        env.certs
            .validate_chain(&env.b, &chain_pem, &Anchors::Tenant, None)
            .await,
        Err(Error::NoTrustAnchors)
    ));
    assert!(matches!(
        env.certs.delete_certificate(&env.b, &leaf).await,
        Err(Error::CertificateNotFound { .. })
    ));
    assert_eq!(
        env.certs
            .issue(&env.b, &root, &root, &CertificateProfile::ca(DAY, None))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // After the CA key rotates, its old certificate no longer issues.
    env.kms.rotate(&env.a, &sub).await.unwrap();
    let err = env
        .certs
        .issue(&env.a, &sub, &leaf, &CertificateProfile::leaf(DAY))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCaCertificate { .. }), "{err:?}");

    // Deletion.
    env.certs.delete_certificate(&env.a, &leaf).await.unwrap();
    assert!(matches!(
        env.certs.certificate(&env.a, &leaf).await,
        Err(Error::CertificateNotFound { .. })
    ));
    env.certs.delete_chain(&env.a, &roots).await.unwrap();
    assert!(matches!(
        env.certs.delete_chain(&env.a, &roots).await,
        Err(Error::ChainNotFound { .. })
    ));
    assert!(matches!(
        env.certs
            .validate_chain(&env.a, &chain_pem, &Anchors::Tenant, None)
            .await,
        Err(Error::NoTrustAnchors)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_service_works_end_to_end_on_sqlite() {
    service_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_service_works_end_to_end_on_postgres() {
    service_end_to_end(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let env = cert_env(Backend::Sqlite).await;
    let root = key(&env, "ca.root", Algorithm::Es256).await;
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for result in [
        env.certs.register(&env.a, &root, garbage).await.map(|_| ()),
        env.certs
            .put_chain(&env.a, &ChainName::new("x").unwrap(), "nothing", true)
            .await
            .map(|_| ()),
        env.certs
            .issue_from_csr(&env.a, &root, "not a csr", &CertificateProfile::leaf(DAY))
            .await
            .map(|_| ()),
        env.certs
            .issue(
                &env.a,
                &root,
                &root,
                &CertificateProfile::leaf(Duration::ZERO),
            )
            .await
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    }
    assert!(env.certs.certificates(&env.a).await.unwrap().is_empty());
    assert!(env.certs.chains(&env.a).await.unwrap().is_empty());

    // A CSR whose signature was tampered with.
    let csr = env
        .certs
        .csr(&env.a, &root, &dn("CN=x"), &[])
        .await
        .unwrap();
    let body: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    );
    assert!(matches!(
        env.certs
            .issue_from_csr(&env.a, &root, &tampered, &CertificateProfile::leaf(DAY))
            .await,
        Err(Error::InvalidCsrSignature)
    ));
}

fn run_python(script: &str, stdin: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join("target/interop/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs the interop peers",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(script)
        .current_dir(root.join("interop/python"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn python_check(request: &Value) -> Value {
    serde_json::from_str(&run_python("x509_check.py", &request.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_cryptography_accepts_our_csrs_and_chains_for_every_algorithm() {
    let env = cert_env(Backend::Sqlite).await;
    let algorithms = [
        (Algorithm::Es256, "1.2.840.10045.4.3.2"),
        (Algorithm::Es384, "1.2.840.10045.4.3.3"),
        (Algorithm::EdDsa, "1.3.101.112"),
        (Algorithm::Rs256, "1.2.840.113549.1.1.11"),
        (Algorithm::Ps256, "1.2.840.113549.1.1.10"),
    ];
    for (i, (alg, oid)) in algorithms.into_iter().enumerate() {
        let root = key(&env, &format!("ca.root{i}"), alg).await;
        let leaf = key(&env, &format!("issuer.leaf{i}"), alg).await;
        let csr = env
            .certs
            .csr(
                &env.a,
                &leaf,
                &dn("CN=leaf.example,O=EDK"),
                &[
                    SubjectAltName::Dns("leaf.example".to_owned()),
                    SubjectAltName::Uri("https://leaf.example/".to_owned()),
                ],
            )
            .await
            .unwrap();
        let answer = python_check(&json!({ "csr": csr }));
        assert_eq!(
            answer["csr"],
            json!({
                "valid": true,
                "subject": "CN=leaf.example,O=EDK",
                "dns": ["leaf.example"],
                "uris": ["https://leaf.example/"],
                "signature_oid": oid,
            }),
            "{alg:?}"
        );

        env.certs
            .issue(
                &env.a,
                &root,
                &root,
                &CertificateProfile::ca(DAY * 365, Some(0)).with_subject(dn("CN=Root")),
            )
            .await
            .unwrap();
        let issued = env
            .certs
            .issue_from_csr(
                &env.a,
                &root,
                &csr,
                &CertificateProfile::leaf(DAY * 30)
                    .with_extended_key_usages([ExtendedKeyUsage::ClientAuth]),
            )
            .await
            .unwrap();
        let answer = python_check(&json!({ "chain": issued.pem().unwrap() }));
        assert_eq!(
            answer["chain"],
            json!([
                {
                    "subject": "CN=leaf.example,O=EDK",
                    "issuer": "CN=Root",
                    "ca": false,
                    "path_len": null,
                    "key_cert_sign": false,
                    "digital_signature": true,
                    "dns": ["leaf.example"],
                    "uris": ["https://leaf.example/"],
                    "eku": ["1.3.6.1.5.5.7.3.2"],
                    "signature_oid": oid,
                    "issued_by_next": true,
                },
                {
                    "subject": "CN=Root",
                    "issuer": "CN=Root",
                    "ca": true,
                    "path_len": 0,
                    "key_cert_sign": true,
                    "digital_signature": true,
                    "dns": [],
                    "uris": [],
                    "eku": [],
                    "signature_oid": oid,
                    "issued_by_next": true,
                }
            ]),
            "{alg:?}"
        );
    }
}
