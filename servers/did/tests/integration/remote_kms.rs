//! The production split: the compiled `edk-did` holds no key material and no KEK; it creates
//! and reads DID keys through a separately started KMS server over gRPC (service JWT), a
//! rotation at the KMS reaches its did:web documents over PostgreSQL NOTIFY, it runs the
//! `did.republish_stale` job, and its readiness reports the KMS.

use std::time::Duration;

use edk_core::TenantSlug;
use edk_kms::{Caller, KeyAlias, Kms as _};
use edk_kms_server::testkit::{RemoteKms, TestAdmin, free_port};
use edk_tenancy::{EndpointBinding, ServiceType, TenantDirectory as _, WellKnownLayout};
use edk_testkit::TestDb;
use serde_json::{Value, json};

use crate::support::http;

async fn ready(client: &reqwest::Client, base: &str) -> reqwest::Response {
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edk-did did not start");
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
    let admin = TestAdmin::new();
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
    let _child = kms.spawn_service(env!("CARGO_BIN_EXE_edk-did"), "did", port, db.url(), &admin);
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
    let token = admin.token(tenant.id, "did:read did:write").await;
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
    kms.stop_serving_and_expect_unready(&base).await;
    kms.shutdown().await;
    db.close().await;
}
