//! The production split: the compiled `edk-did` holds no key material and no KEK; it creates
//! and reads DID keys through a separately started KMS server over gRPC (service JWT), a
//! rotation at the KMS reaches its did:web documents over PostgreSQL NOTIFY, it runs the
//! `did.republish_stale` job, and its readiness reports the KMS.

use std::process::{Command, Stdio};
use std::time::Duration;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantSlug};
use edk_kms::{Caller, KeyAlias, Kms as _};
use edk_kms_server::testkit::{ChildGuard, RemoteKms, free_port};
use edk_tenancy::{EndpointBinding, ServiceType, TenantDirectory as _, WellKnownLayout};
use edk_testkit::TestDb;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{ADMIN_ISSUER, http};

async fn ready(client: &reqwest::Client, base: &str) -> reqwest::Response {
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edk-did did not start");
}

async fn admin_token(key: &SigningKey, tenant: edk_core::TenantId) -> String {
    let now = SystemClock.unix_seconds();
    let claims = json!({
        "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "ops", "tenant": tenant.to_string(),
        "scope": "did:read did:write", "iat": now, "exp": now + 600,
    });
    jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT"),
        claims.to_string().as_bytes(),
        key,
    )
    .await
    .unwrap()
}

/// The kids of the document's verification methods.
fn kids(document: &Value) -> Vec<String> {
    document["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| {
            let id = method["id"].as_str().unwrap();
            id.rsplit_once('#').unwrap().1.to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edk_did_publishes_keys_of_a_separate_kms_over_grpc() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut kms = RemoteKms::start(db.url(), "did", &["acme"]).await;
    let tenant = kms
        .server()
        .tenancy()
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let port = free_port();
    let binding = EndpointBinding::new(
        tenant.id,
        ServiceType::Did,
        "acme.example",
        Some(port),
        "",
        WellKnownLayout::Inserted,
    )
    .unwrap();
    kms.server().tenancy().bind(&binding).await.unwrap();

    // edk-did, configured with the remote KMS only.
    let base = format!("http://127.0.0.1:{port}");
    let config = json!({
        "http": { "listen": format!("127.0.0.1:{port}") },
        "log": { "filter": "warn" },
        "auth": { "issuers": [{ "issuer": ADMIN_ISSUER, "jwks": JwkSet { keys: vec![admin.public_jwk()] } }] },
        "database": { "backend": "postgres", "platform_url": db.url() },
        "kms": kms.client_section("did"),
    });
    let config_file = dir.path().join("did.yaml");
    std::fs::write(&config_file, serde_json::to_string(&config).unwrap()).unwrap();
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(
        !text.contains(kms.kek().expose_secret()),
        "edk-did is given no KEK"
    );
    let _child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_edk-did"))
            .arg("--config")
            .arg(&config_file)
            .env_remove("EDK_LISTEN")
            .env_remove("EDK_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = http();
    let response = ready(&client, &base).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["status"], "ok", "{report}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["database", "kms"]);

    // A did:web whose key edk-did has the KMS create: the KMS holds it, the document lists it.
    let token = admin_token(&admin, tenant.id).await;
    let response = client
        .post(format!("{base}/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({"method": "web", "keys": [{"alias": "did.web-key"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["did"], format!("did:web:acme.example%3A{port}"));
    let alias: KeyAlias = "did.web-key".parse().unwrap();
    let caller = Caller::new(
        kms.server().tenancy().context(tenant.id).await.unwrap(),
        "test",
    );
    let key = kms
        .server()
        .kms()
        .keys(&caller)
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.alias == alias)
        .expect("the KMS holds the DID key");
    let did_json = format!("http://acme.example:{port}/.well-known/did.json");
    let document: Value = client
        .get(&did_json)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = key.versions[0].kid.to_string();
    assert_eq!(kids(&document), std::slice::from_ref(&first));

    // A rotation at the KMS reaches edk-did over PostgreSQL NOTIFY: the document lists the new
    // key beside the old one well before the job's five-minute period.
    let rotated = kms.server().kms().rotate(&caller, &alias).await.unwrap();
    let second = rotated.active().unwrap().kid.to_string();
    let mut listed = Vec::new();
    for _ in 0..100 {
        let document: Value = client
            .get(&did_json)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed = kids(&document);
        if listed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        listed.contains(&first) && listed.contains(&second),
        "{listed:?}"
    );

    // The scheduler of edk-did runs did.republish_stale (at start, for the one tenant).
    let run = "scheduler_job_runs_total{job=\"did.republish_stale\"} 1";
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|line| line == run) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.lines().any(|line| line == run), "{metrics}");

    // Without the KMS, edk-did is not ready and says which dependency failed.
    kms.stop_serving().await;
    let response = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let report: Value = response.json().await.unwrap();
    let kms_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "kms")
        .unwrap();
    assert_eq!(kms_check["ok"], false);
    assert_eq!(kms_check["reason"], "the KMS does not answer");
    assert_eq!(report["checks"][0]["name"], "database");
    assert_eq!(report["checks"][0]["ok"], true);
    kms.shutdown().await;
    db.close().await;
}
