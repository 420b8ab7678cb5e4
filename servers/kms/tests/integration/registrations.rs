//! Providers registered at run time through the admin API, and tenants' alias bindings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edk_core::encoding::b64url_encode;
use edk_testkit::moto::MotoServer;
use edk_testkit::vault_transit::{ROOT_TOKEN, VaultTransitServer};
use serde_json::{Value, json};

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json, expect_problem};

const OPERATOR: &str = "platform:kms:providers";
const ALIAS: &str = "issuer.credential-signing";

/// A log sink for the test's thread (the runtime is current-thread, so the server's tasks
/// log here too).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn vault_registration(address: &str) -> Value {
    json!({
        "kind": "vault",
        "address": address,
        "auth": {"kind": "token", "token": {"kubernetes": {"secret": "vault", "key": "token"}}},
    })
}

/// Creates an ES256 signing key under [`ALIAS`] with `token` and returns the key's view.
async fn create_signing_key(h: &Harness, token: &str) -> Value {
    expect_json(
        h.post(
            "/keys",
            token,
            &json!({"alias": ALIAS, "usage": "sign", "algorithm": "ES256"}),
        )
        .await,
        201,
    )
    .await
}

async fn sign_and_verify(h: &Harness, token: &str) -> String {
    let message = b64url_encode(b"registered provider");
    let signed = expect_json(
        h.post(
            "/signatures/raw/create",
            token,
            &json!({ "key": ALIAS, "message": message }),
        )
        .await,
        200,
    )
    .await;
    let verify = json!({
        "key": ALIAS, "alg": "ES256", "message": message, "signature": signed["signature"],
    });
    expect_json(h.post("/signatures/raw/verify", token, &verify).await, 200).await;
    signed["kid"].as_str().unwrap().to_owned()
}

async fn vault_provider_lifecycle(backend: Backend) {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let vault = VaultTransitServer::start().await;
    let h = Harness::start(backend).await;
    std::fs::create_dir_all(h.secrets_dir.join("vault")).unwrap();
    std::fs::write(h.secrets_dir.join("vault/token"), format!("{ROOT_TOKEN}\n")).unwrap();
    let operator = h.token_for(h.tenant_a, OPERATOR).await;
    let tenant_a = h.token().await;
    let tenant_b = h.token_for(h.tenant_b, ALL_SCOPES).await;
    let registration = vault_registration(&vault.address());

    // A tenant administrator's token cannot register providers.
    expect_problem(
        h.put(
            "/provider-registrations/vault-prod",
            &tenant_a,
            &registration,
        )
        .await,
        403,
    )
    .await;

    let created = h
        .put(
            "/provider-registrations/vault-prod",
            &operator,
            &registration,
        )
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let text = created.text().await.unwrap();
    assert!(!text.contains(ROOT_TOKEN), "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["id"], "vault-prod");
    assert_eq!(created["kind"], "vault");
    assert_eq!(
        created["config"]["auth"]["token"],
        registration["auth"]["token"]
    );

    let provider = expect_json(h.get("/providers/vault-prod", &tenant_a).await, 200).await;
    assert_eq!(provider["default"], false);
    let text = h
        .get("/provider-registrations/vault-prod", &operator)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains(ROOT_TOKEN), "{text}");
    let list = expect_json(h.get("/provider-registrations", &operator).await, 200).await;
    assert_eq!(list["registrations"].as_array().unwrap().len(), 1);

    // Tenant A binds its signing alias to Vault; its new key is made there.
    let binding = expect_json(
        h.put(
            &format!("/bindings/{ALIAS}"),
            &tenant_a,
            &json!({"provider": "vault-prod", "algorithm": "ES256"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(binding["provider"], "vault-prod");
    let key = create_signing_key(&h, &tenant_a).await;
    assert_eq!(key["provider"], "vault-prod");
    assert_eq!(vault.key_names().len(), 1);
    sign_and_verify(&h, &tenant_a).await;

    // Tenant B has no binding: the same alias lands in the default provider.
    let bindings_b = expect_json(h.get("/bindings", &tenant_b).await, 200).await;
    assert_eq!(bindings_b["bindings"], json!([]));
    let key_b = create_signing_key(&h, &tenant_b).await;
    assert_eq!(key_b["provider"], "software");
    assert_eq!(vault.key_names().len(), 1);

    // Update: a new key prefix, the same secret reference.
    let mut updated = registration.clone();
    updated["key_prefix"] = json!("edk-next-");
    let body = expect_json(
        h.put("/provider-registrations/vault-prod", &operator, &updated)
            .await,
        200,
    )
    .await;
    assert_eq!(body["config"]["key_prefix"], "edk-next-");
    sign_and_verify(&h, &tenant_a).await;

    // In use: tenant A's key and binding.
    let refused = expect_problem(
        h.delete("/provider-registrations/vault-prod", &operator)
            .await,
        409,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("vault-prod"),
        "{refused}"
    );
    expect_json(h.get("/providers/vault-prod", &tenant_a).await, 200).await;

    // Once the key and the binding are gone, the provider can be removed.
    let deleted = h.delete(&format!("/keys/{ALIAS}"), &tenant_a).await;
    assert_eq!(deleted.status().as_u16(), 204);
    let unbound = h.delete(&format!("/bindings/{ALIAS}"), &tenant_a).await;
    assert_eq!(unbound.status().as_u16(), 204);
    let removed = h
        .delete("/provider-registrations/vault-prod", &operator)
        .await;
    assert_eq!(removed.status().as_u16(), 204);
    expect_problem(h.get("/providers/vault-prod", &tenant_a).await, 404).await;
    expect_problem(
        h.get("/provider-registrations/vault-prod", &operator).await,
        404,
    )
    .await;

    let logs = logs.text();
    assert!(logs.contains("key provider registered"), "no logs captured");
    assert!(!logs.contains(ROOT_TOKEN));
    h.stop().await;
}

#[tokio::test]
async fn a_vault_provider_is_registered_bound_used_updated_and_removed_on_postgres() {
    vault_provider_lifecycle(Backend::Postgres).await;
}

#[tokio::test]
async fn a_vault_provider_is_registered_bound_used_updated_and_removed_on_sqlite() {
    vault_provider_lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_aws_provider_registered_through_the_api_signs_against_moto() {
    let moto = MotoServer::start().await;
    let h = Harness::start(Backend::Sqlite).await;
    let secret = h.secrets_dir.join("aws-secret");
    std::fs::write(&secret, "moto-secret-access-key").unwrap();
    let operator = h.token_for(h.tenant_a, OPERATOR).await;
    let tenant_a = h.token().await;
    let registration = json!({
        "kind": "aws",
        "region": "eu-west-1",
        "endpoint": moto.endpoint(),
        "credentials": {
            "kind": "static",
            "access_key_id": "AKIAEDKTEST",
            "secret_access_key": {"file": secret},
        },
        "algorithms": ["ES256", "ES384"],
        "message_type": "raw",
    });
    let created = expect_json(
        h.put(
            "/provider-registrations/aws-eu-west-1",
            &operator,
            &registration,
        )
        .await,
        201,
    )
    .await;
    assert!(!created.to_string().contains("moto-secret-access-key"));
    expect_json(
        h.put(
            &format!("/bindings/{ALIAS}"),
            &tenant_a,
            &json!({"provider": "aws-eu-west-1", "algorithm": "ES256"}),
        )
        .await,
        200,
    )
    .await;
    let key = create_signing_key(&h, &tenant_a).await;
    assert_eq!(key["provider"], "aws-eu-west-1");
    sign_and_verify(&h, &tenant_a).await;
    expect_problem(
        h.delete("/provider-registrations/aws-eu-west-1", &operator)
            .await,
        409,
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn bad_registrations_and_bindings_are_refused_and_change_nothing() {
    let vault = VaultTransitServer::start().await;
    let h = Harness::start(Backend::Sqlite).await;
    let operator = h.token_for(h.tenant_a, OPERATOR).await;
    let tenant_a = h.token().await;
    let address = vault.address();
    let token_file = h.secrets_dir.join("vault-token");
    std::fs::write(&token_file, ROOT_TOKEN).unwrap();
    let cases = [
        (json!({"kind": "quantum", "address": address}), "`kind`"),
        (
            json!({"kind": "vault", "auth": {"kind": "token", "token": {"file": token_file}}}),
            "`address`",
        ),
        (
            json!({"kind": "vault", "address": address,
                   "auth": {"kind": "token", "token": "in-clear-secret"}}),
            "`auth.token`",
        ),
        (
            json!({"kind": "vault", "address": address,
                   "auth": {"kind": "token", "token": {"file": "/nonexistent/edk/token"}}}),
            "`auth.token`",
        ),
        (
            json!({"kind": "vault", "address": address,
                   "auth": {"kind": "token", "token": {"kubernetes": {"secret": "absent", "key": "token"}}}}),
            "`auth.token`",
        ),
        (
            json!({"kind": "vault", "address": "vault:8200",
                   "auth": {"kind": "token", "token": {"file": token_file}}}),
            "`address`",
        ),
        (json!({"address": address}), "`kind`"),
        (
            json!({"kind": "vault", "id": "other", "address": address,
                   "auth": {"kind": "token", "token": {"file": token_file}}}),
            "`id`",
        ),
        (json!(["not", "an", "object"]), "`body`"),
    ];
    for (body, field) in cases {
        let problem = expect_problem(
            h.put("/provider-registrations/vault-prod", &operator, &body)
                .await,
            400,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{body}: {problem}");
        assert!(!problem.to_string().contains(ROOT_TOKEN));
        assert!(!problem.to_string().contains("in-clear-secret"));
    }
    // A provider of the configuration file cannot be replaced or removed.
    let good = json!({"kind": "vault", "address": address,
        "auth": {"kind": "token", "token": {"file": token_file}}});
    expect_problem(
        h.put("/provider-registrations/software", &operator, &good)
            .await,
        409,
    )
    .await;
    expect_problem(
        h.delete("/provider-registrations/software", &operator)
            .await,
        409,
    )
    .await;
    expect_problem(
        h.delete("/provider-registrations/vault-prod", &operator)
            .await,
        404,
    )
    .await;
    let list = expect_json(h.get("/provider-registrations", &operator).await, 200).await;
    assert_eq!(list["registrations"], json!([]));
    expect_problem(h.get("/providers/vault-prod", &tenant_a).await, 404).await;

    // Bindings: unknown provider, an algorithm it lacks, a malformed alias.
    expect_json(
        h.put("/provider-registrations/vault-prod", &operator, &good)
            .await,
        201,
    )
    .await;
    for (alias, body, status, field) in [
        (
            ALIAS,
            json!({"provider": "nowhere", "algorithm": "ES256"}),
            400,
            "`provider`",
        ),
        (
            ALIAS,
            json!({"provider": "vault-prod", "algorithm": "ES256K"}),
            400,
            "`algorithm`",
        ),
        (
            ALIAS,
            json!({"provider": "vault-prod", "algorithm": "HS999"}),
            400,
            "`algorithm`",
        ),
        (
            "no-dot",
            json!({"provider": "vault-prod", "algorithm": "ES256"}),
            400,
            "`alias`",
        ),
    ] {
        let problem = expect_problem(
            h.put(&format!("/bindings/{alias}"), &tenant_a, &body).await,
            status,
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{body}: {problem}"
        );
    }
    let bindings = expect_json(h.get("/bindings", &tenant_a).await, 200).await;
    assert_eq!(bindings["bindings"], json!([]));
    // Without a binding, no key lands in the registered provider.
    create_signing_key(&h, &tenant_a).await;
    assert!(vault.key_names().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_provider_registered_on_one_replica_is_usable_on_another() {
    let vault = VaultTransitServer::start().await;
    let a = Harness::start(Backend::Postgres).await;
    let (server_b, kms_b) = a.replica().await;
    std::fs::create_dir_all(a.secrets_dir.join("vault")).unwrap();
    std::fs::write(a.secrets_dir.join("vault/token"), ROOT_TOKEN).unwrap();
    let operator = a.token_for(a.tenant_a, OPERATOR).await;
    let tenant = a.token().await;
    let on_b = |path: &str| server_b.url(&format!("/api/kms/v1{path}"));

    let missing = a
        .client
        .get(on_b("/providers/vault-prod"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    expect_json(
        a.put(
            "/provider-registrations/vault-prod",
            &operator,
            &vault_registration(&vault.address()),
        )
        .await,
        201,
    )
    .await;
    let mut seen = false;
    for _ in 0..100 {
        let status = a
            .client
            .get(on_b("/providers/vault-prod"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "replica B never saw the provider");

    // B binds and creates; the key is in Vault and signs on A too.
    let bound = a
        .client
        .put(on_b(&format!("/bindings/{ALIAS}")))
        .bearer_auth(&tenant)
        .json(&json!({"provider": "vault-prod", "algorithm": "ES256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bound.status().as_u16(), 200);
    let created: Value = a
        .client
        .post(on_b("/keys"))
        .bearer_auth(&tenant)
        .json(&json!({"alias": ALIAS, "usage": "sign", "algorithm": "ES256"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["provider"], "vault-prod");
    assert_eq!(vault.key_names().len(), 1);
    sign_and_verify(&a, &tenant).await;

    // Removal refused on B too, while in use.
    let refused = a
        .client
        .delete(on_b("/provider-registrations/vault-prod"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);

    server_b.shutdown().await.unwrap();
    kms_b.shutdown().await;
    a.stop().await;
}

/// The value of the one sample of `metric` (name and labels as rendered) in `text`.
fn sample(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(metric)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

async fn metrics_text(h: &Harness) -> String {
    h.client
        .get(h.server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_provider_has_metrics_by_its_id_until_it_is_removed() {
    let vault = VaultTransitServer::start().await;
    let h = Harness::start(Backend::Sqlite).await;
    std::fs::create_dir_all(h.secrets_dir.join("vault")).unwrap();
    std::fs::write(h.secrets_dir.join("vault/token"), ROOT_TOKEN).unwrap();
    let operator = h.token_for(h.tenant_a, OPERATOR).await;
    let tenant = h.token().await;
    let before = metrics_text(&h).await;
    assert!(!before.contains("provider=\"vault-metered\""), "{before}");

    let mut registration = vault_registration(&vault.address());
    registration["remote"] =
        json!({ "initial_backoff_millis": 1, "max_backoff_millis": 2, "max_attempts": 2 });
    expect_json(
        h.put(
            "/provider-registrations/vault-metered",
            &operator,
            &registration,
        )
        .await,
        201,
    )
    .await;
    expect_json(
        h.put(
            &format!("/bindings/{ALIAS}"),
            &tenant,
            &json!({"provider": "vault-metered", "algorithm": "ES256"}),
        )
        .await,
        200,
    )
    .await;
    expect_json(
        h.post(
            "/keys",
            &tenant,
            &json!({"alias": ALIAS, "usage": "sign", "algorithm": "ES256"}),
        )
        .await,
        201,
    )
    .await;
    let created = metrics_text(&h).await;
    let calls_after_creation = sample(
        &created,
        "kms_provider_calls_total{provider=\"vault-metered\"}",
    )
    .unwrap_or_else(|| panic!("{created}"));
    assert!(calls_after_creation >= 1.0, "{created}");

    // One throttled attempt, retried: a signature, a throttle, one more attempt.
    vault.throttle(1);
    sign_and_verify(&h, &tenant).await;
    // Throttled past the attempts: an `unavailable` error.
    vault.throttle(100);
    let message = b64url_encode(b"throttled");
    expect_problem(
        h.post(
            "/signatures/raw/create",
            &tenant,
            &json!({ "key": ALIAS, "message": message }),
        )
        .await,
        503,
    )
    .await;
    vault.throttle(0);

    let text = metrics_text(&h).await;
    let value = |metric: &str| sample(&text, metric).unwrap_or_else(|| panic!("{metric}: {text}"));
    assert!(
        value("kms_provider_calls_total{provider=\"vault-metered\"}") >= calls_after_creation + 2.0
    );
    assert_eq!(
        value("kms_provider_throttles_total{provider=\"vault-metered\"}"),
        3.0
    );
    assert_eq!(
        value("kms_provider_errors_total{kind=\"unavailable\",provider=\"vault-metered\"}"),
        1.0
    );
    let attempts = value("kms_provider_attempts_total{provider=\"vault-metered\"}");
    assert_eq!(
        value("kms_provider_attempt_duration_seconds_count{provider=\"vault-metered\"}"),
        attempts
    );
    assert_eq!(
        value("kms_provider_breaker_open{provider=\"vault-metered\"}"),
        0.0
    );

    // Removed: its series go.
    let deleted = h.delete(&format!("/keys/{ALIAS}"), &tenant).await;
    assert_eq!(deleted.status().as_u16(), 204);
    let unbound = h.delete(&format!("/bindings/{ALIAS}"), &tenant).await;
    assert_eq!(unbound.status().as_u16(), 204);
    let removed = h
        .delete("/provider-registrations/vault-metered", &operator)
        .await;
    assert_eq!(removed.status().as_u16(), 204);
    let after = metrics_text(&h).await;
    assert!(!after.contains("provider=\"vault-metered\""), "{after}");
    h.stop().await;
}
