//! The production split: the compiled `edk-issuer` holds no key material and no KEK; it signs
//! through a separately started KMS server over gRPC (service JWT), which alone creates the
//! tenant's `issuer.credential-signing` key; its readiness reports the KMS.

use std::time::Duration;

use edk_core::TenantSlug;
use edk_core::jose::{Algorithm, JwkSet, jws};
use edk_kms_server::testkit::{RemoteKms, TestAdmin, free_port};
use edk_tenancy::TenantDirectory as _;
use edk_testkit::TestDb;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edk_issuer_signs_through_a_separate_kms_over_grpc() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let admin = TestAdmin::new();
    let mut kms = RemoteKms::start(db.url(), "issuer", &["acme"]).await;
    let tenant = kms
        .server()
        .tenancy()
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();

    // edk-issuer, configured with the remote KMS only.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = kms.spawn_service(
        env!("CARGO_BIN_EXE_edk-issuer"),
        "issuer",
        port,
        db.url(),
        &admin,
    );
    let client = reqwest::Client::new();
    let mut report = Value::Null;
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            report = response.json().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(report["status"], "ok", "{report}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["name"] == "kms" && check["ok"] == true),
        "{report}"
    );

    crate::support::bind_acme(kms.server().tenancy(), tenant.id, port).await;
    let token = admin.token(tenant.id, "oid4vci:read oid4vci:write").await;
    // edk-issuer learns of the tenant and its bindings within its cache TTL or on the event.
    let mut stored = false;
    for _ in 0..100 {
        let response = client
            .put(format!("{base}/api/oid4vci/v1/configurations/identity"))
            .bearer_auth(&token)
            .json(&json!({
                "configuration": {
                    "format": "dc+sd-jwt", "vct": "https://credentials.example.com/identity",
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "credential_signing_alg_values_supported": ["ES256"],
                    "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
                },
                "settings": {},
            }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 200 {
            stored = true;
            break;
        }
        assert!(
            [401, 403, 404, 500].contains(&status),
            "configuration: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "edk-issuer never learned of the tenant");

    // The signed metadata: signed in the KMS with the tenant's credential signing key, which
    // the KMS created on the issuer's first use, and verified with the issuer's JWKS.
    let host = format!("localhost:{port}");
    let mut jwt = None;
    for _ in 0..100 {
        let response = client
            .get(format!("{base}/.well-known/openid-credential-issuer/acme"))
            .header("Host", &host)
            .header("Accept", "application/jwt")
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            jwt = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jwt = jwt.expect("signed metadata from edk-issuer");
    let keys = edk_kms::Kms::keys(
        kms.server().kms(),
        &edk_kms::Caller::new(
            kms.server().tenancy().context(tenant.id).await.unwrap(),
            "test",
        ),
    )
    .await
    .unwrap();
    let parsed = jws::Jws::parse(&jwt, &edk_core::Limits::default()).unwrap();
    let kid = parsed.header().kid.clone().unwrap();
    assert!(
        keys.iter()
            .any(|key| key.alias.to_string() == "issuer.credential-signing"
                && key
                    .versions
                    .iter()
                    .any(|version| version.kid.as_str() == kid)),
        "the metadata's kid is the KMS alias's key: {kid} {keys:?}"
    );
    let issuer_metadata: Value = client
        .get(format!("{base}/.well-known/jwt-vc-issuer/acme"))
        .header("Host", &host)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: JwkSet = serde_json::from_value(issuer_metadata["jwks"].clone()).unwrap();
    let verified = parsed
        .verify_with(
            &edk_core::jose::JwksResolver::new(&jwks),
            &edk_core::jose::VerifyPolicy::default().with_algorithms(&[Algorithm::Es256]),
            None,
        )
        .await;
    assert!(verified.is_ok(), "{verified:?}");

    // Without the KMS, edk-issuer is not ready and says which dependency failed.
    kms.stop_serving_and_expect_unready(&base).await;
    kms.shutdown().await;
    db.close().await;
}
