//! The production split: the compiled `edk-as` holds no key material and no KEK; it signs
//! access tokens through a separately started KMS server over gRPC (service JWT), and its
//! readiness reports the KMS.

use std::time::Duration;

use edk_core::TenantSlug;
use edk_core::jose::{Algorithm, JwkSet, jws};
use edk_kms_server::testkit::{RemoteKms, TestAdmin, free_port};
use edk_tenancy::{EndpointBinding, ServiceType, TenantDirectory as _, WellKnownLayout};
use edk_testkit::TestDb;
use serde_json::{Value, json};

async fn ready(client: &reqwest::Client, base: &str) -> reqwest::Response {
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edk-as did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edk_as_signs_through_a_separate_kms_over_grpc() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let admin = TestAdmin::new();
    let mut kms = RemoteKms::start(db.url(), "as", &["acme"]).await;
    let tenant = kms
        .server()
        .tenancy()
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();

    // edk-as, configured with the remote KMS only.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = kms.spawn_service(env!("CARGO_BIN_EXE_edk-as"), "as", port, db.url(), &admin);
    let client = reqwest::Client::new();
    let report: Value = ready(&client, &base).await.json().await.unwrap();
    assert_eq!(report["status"], "ok", "{report}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["database", "kms"]);

    let binding = EndpointBinding::new(
        tenant.id,
        ServiceType::As,
        "localhost",
        Some(port),
        "/acme",
        WellKnownLayout::Inserted,
    )
    .unwrap();
    kms.server().tenancy().bind(&binding).await.unwrap();
    let token = admin.token(tenant.id, "oauth2:write oauth2:read").await;
    // edk-as learns of the tenant provisioned here within its cache TTL or on the event.
    let mut registered = None;
    for _ in 0..100 {
        let response = client
            .post(format!("{base}/api/oauth2/v1/clients"))
            .bearer_auth(&token)
            .json(
                &json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["client_credentials"]}),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if status == 201 {
            registered = Some(body);
            break;
        }
        assert!(
            [401, 403, 404].contains(&status),
            "client registration: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registered = registered.expect("edk-as never learned of the tenant");
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let host = format!("localhost:{port}");
    let mut issued = None;
    // The routing cache of edk-as learns the new binding within its TTL or on the event.
    for _ in 0..100 {
        let response = client
            .post(format!("{base}/acme/token"))
            .header("Host", &host)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            issued = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let issued = issued.expect("a token from edk-as");
    let access_token = issued["access_token"].as_str().unwrap();

    // Signed by the KMS: the key is the tenant's `as.access-token-signing` alias there, and
    // the token verifies against edk-as's JWKS.
    let keys = edk_kms::Kms::keys(
        kms.server().kms(),
        &edk_kms::Caller::new(
            kms.server().tenancy().context(tenant.id).await.unwrap(),
            "test",
        ),
    )
    .await
    .unwrap();
    let header: Value = {
        use base64::Engine as _;
        let part = access_token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert!(
        keys.iter()
            .any(|key| key.alias.to_string() == "as.access-token-signing"
                && key
                    .versions
                    .iter()
                    .any(|version| version.kid.as_str() == header["kid"].as_str().unwrap())),
        "the token's kid is the KMS alias's key: {header} {keys:?}"
    );
    let jwks: JwkSet = client
        .get(format!("{base}/acme/jwks.json"))
        .header("Host", &host)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resolver = edk_core::jose::JwksResolver::new(&jwks);
    let verified = jws::Jws::parse(access_token, &edk_core::Limits::default())
        .unwrap()
        .verify_with(
            &resolver,
            &edk_core::jose::VerifyPolicy::default().with_algorithms(&[Algorithm::Es256]),
            None,
        )
        .await;
    assert!(verified.is_ok(), "{verified:?}");

    // Without the KMS, edk-as is not ready and says which dependency failed.
    kms.stop_serving_and_expect_unready(&base).await;
    kms.shutdown().await;
    db.close().await;
}
