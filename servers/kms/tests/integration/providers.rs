use serde_json::{Value, json};

use crate::support::{Backend, Harness, expect_json, expect_problem};

#[tokio::test]
async fn providers_are_listed_with_the_default_first() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let body = expect_json(h.get("/providers", &token).await, 200).await;
    assert_eq!(
        body,
        json!({ "providers": [
            { "id": "software", "hardware_backed": false },
            { "id": "backup", "hardware_backed": false },
        ] })
    );
    let one = expect_json(h.get("/providers/backup", &token).await, 200).await;
    assert_eq!(one["id"], "backup");
    assert_eq!(one["default"], false);
    assert_eq!(one["capabilities"]["storage"], "in-handle");
    let caps = expect_json(h.get("/providers/software/capabilities", &token).await, 200).await;
    assert!(
        caps["signing_algorithms"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    h.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_providers_are_problems() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    expect_problem(h.get("/providers/nope", &token).await, 404).await;
    expect_problem(h.get("/providers/nope/capabilities", &token).await, 404).await;
    expect_problem(h.get("/providers/Bad%20Id", &token).await, 400).await;
    h.stop().await;
}

#[tokio::test]
async fn providers_are_selected_by_capability() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let es256 = json!({ "usage": "sign", "algorithm": "ES256" });
    let all = expect_json(h.post("/providers/query", &token, &es256).await, 200).await;
    assert_eq!(all["providers"].as_array().unwrap().len(), 2);
    let best = expect_json(h.post("/providers/query/best", &token, &es256).await, 200).await;
    assert_eq!(best["id"], "software", "configuration order breaks the tie");

    let hardware = json!({ "usage": "sign", "algorithm": "ES256", "hardware_backed": true });
    let none = expect_json(h.post("/providers/query", &token, &hardware).await, 200).await;
    assert_eq!(none["providers"], json!([]));
    expect_problem(
        h.post("/providers/query/best", &token, &hardware).await,
        422,
    )
    .await;

    let unknown = json!({ "usage": "sign", "algorithm": "HS256" });
    expect_problem(h.post("/providers/query", &token, &unknown).await, 400).await;
    h.stop().await;
}

#[tokio::test]
async fn deployment_capabilities_merge_the_providers() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let body: Value = expect_json(h.get("/capabilities", &token).await, 200).await;
    assert_eq!(body["providers"].as_array().unwrap().len(), 2);
    assert_eq!(body["providers"][0]["default"], true);
    let signing = body["signing_algorithms"].as_array().unwrap();
    assert!(signing.contains(&json!("ES256")) && signing.contains(&json!("EdDSA")));
    assert_eq!(body["content_encryptions"], json!(["A128GCM", "A256GCM"]));
    h.stop().await;
}

#[tokio::test]
async fn reading_needs_the_read_scope() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token_for(h.tenant_a, "kms:use").await;
    expect_problem(h.get("/providers", &token).await, 403).await;
    let anonymous = h.client.get(h.url("/providers")).send().await.unwrap();
    expect_problem(anonymous, 401).await;
    h.stop().await;
}

#[tokio::test]
async fn readiness_reports_the_database() {
    let h = Harness::start(Backend::Postgres).await;
    let response = h
        .client
        .get(h.server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    let body = expect_json(response, 200).await;
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["ok"], true);
    h.stop().await;
}

/// The value of the one sample of `metric` (name and labels as rendered) in `text`.
fn sample(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(metric)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_provider_metrics_are_on_the_prometheus_endpoint() {
    let vault = edk_testkit::azure_key_vault::AzureKeyVaultServer::start().await;
    vault.add_client("edk-kms", "azure-client-secret");
    // The test server's HTTPS certificate is of its own CA; it is reached by IP address.
    let tls = edk_testkit::temp_dir();
    let ca_file = tls.path().join("ca.pem");
    std::fs::write(&ca_file, vault.ca_pem()).unwrap();
    let azure = |id: &str, secret: &str| {
        json!({
            "kind": "azure", "id": id, "vault_url": vault.url(),
            "ca_file": ca_file, "verify_challenge_resource": false,
            "credentials": { "kind": "client_secret", "tenant_id": "contoso",
                "client_id": "edk-kms", "client_secret": secret, "authority_host": vault.url() },
            "remote": { "initial_backoff_millis": 1, "max_backoff_millis": 2, "max_attempts": 2 },
        })
    };
    let kek = edk_kms::provider::software::generate_kek().unwrap();
    let h = Harness::start_with(
        Backend::Sqlite,
        json!({ "kms": { "mode": "local", "providers": [
            { "kind": "software", "id": "software", "current_kek": "k1",
              "keks": [{ "id": "k1", "key": secrecy::ExposeSecret::expose_secret(&kek) }] },
            azure("azure", "azure-client-secret"),
            azure("azure-refused", "not-the-secret"),
        ] } }),
    )
    .await;
    let token = h.token().await;
    let key = |alias: &str, provider: &str| json!({ "alias": alias, "usage": "sign", "algorithm": "ES256", "provider": provider });
    expect_json(
        h.post("/keys", &token, &key("issuer.sealing", "azure"))
            .await,
        201,
    )
    .await;
    vault.throttle(1);
    let message = edk_core::encoding::b64url_encode(b"hello");
    expect_json(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "issuer.sealing", "message": message }),
        )
        .await,
        200,
    )
    .await;
    expect_problem(
        h.post("/keys", &token, &key("issuer.refused", "azure-refused"))
            .await,
        503,
    )
    .await;

    let text = h
        .client
        .get(h.server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |metric: &str| sample(&text, metric).unwrap_or_else(|| panic!("{metric}: {text}"));
    // The creation (its answer is the new key, no read follows) and the signature; tokens
    // are the Azure SDK's, not calls.
    assert_eq!(value("kms_provider_calls_total{provider=\"azure\"}"), 2.0);
    assert_eq!(
        value("kms_provider_throttles_total{provider=\"azure\"}"),
        1.0
    );
    assert_eq!(
        value("kms_provider_attempts_total{provider=\"azure\"}"),
        3.0
    );
    assert_eq!(
        value("kms_provider_attempt_duration_seconds_count{provider=\"azure\"}"),
        3.0
    );
    assert_eq!(
        value("kms_provider_attempt_duration_seconds_bucket{provider=\"azure\",le=\"+Inf\"}"),
        3.0
    );
    assert_eq!(value("kms_provider_breaker_open{provider=\"azure\"}"), 0.0);
    assert_eq!(
        value("kms_provider_errors_total{kind=\"unavailable\",provider=\"azure-refused\"}"),
        1.0
    );
    assert!(
        !text.contains("kms_provider_errors_total{kind=\"unavailable\",provider=\"azure\"}"),
        "{text}"
    );
    assert!(!text.contains("provider=\"software\""), "{text}");
    h.stop().await;
}
