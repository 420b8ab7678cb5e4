//! The compiled `edk-issuer` under faults of what it depends on.
//!
//! - Its PostgreSQL server stops under load (a private server of the test's own, never the
//!   shared one): requests fail fast with a 503 problem, readiness turns 503 naming the
//!   database, and once the server is back requests succeed without restarting the issuer;
//!   every offer whose creation was answered 201 exists in full, and an offer refused during
//!   the outage was either never stored or stored whole.
//! - Its KMS server stops: the signing paths fail closed at once with a 503 problem (never an
//!   unsigned or stale answer), readiness turns 503 naming the KMS, and signing works again
//!   once the KMS serves again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edk_core::TenantSlug;
use edk_kms_server::testkit::{ChildGuard, RemoteKms, TestAdmin, free_port};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use edk_testkit::TestDb;
use edk_testkit::private_postgres::PrivatePostgres;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

/// How long a request may take to fail while the database is down: the pool's acquire
/// timeout (2 s, configured below) and a margin, far below the 30 s request timeout.
const FAIL_FAST: Duration = Duration::from_secs(5);

/// One answered offer creation of the load.
#[derive(Debug)]
struct Attempt {
    correlation_id: String,
    status: u16,
    content_type: String,
    session_id: Option<String>,
    elapsed: Duration,
    started: Instant,
}

/// `edk-issuer` on `database_url` with an in-process software KMS.
fn spawn_issuer(dir: &Path, port: u16, database_url: &str, admin: &TestAdmin) -> ChildGuard {
    let kek = edk_kms::provider::software::generate_kek().unwrap();
    let config = json!({
        "http": { "listen": format!("127.0.0.1:{port}") },
        "log": { "filter": "warn" },
        "auth": admin.auth_section(),
        "database": {
            "backend": "postgres", "platform_url": database_url,
            "max_connections": 5, "acquire_timeout": 2,
        },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": kek.expose_secret() }],
        }] },
    });
    let file = dir.join(format!("issuer-{port}.yaml"));
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();
    ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_edk-issuer"))
            .arg("--config")
            .arg(&file)
            .env_remove("EDK_LISTEN")
            .env_remove("EDK_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until `base` answers `/health/ready` with `want`; returns the last report.
async fn readiness(base: &str, want: u16, within: Duration) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    let mut last = (0, Value::Null);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            let status = response.status().as_u16();
            last = (status, response.json().await.unwrap_or(Value::Null));
            if status == want {
                return last.1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never answered {want}: {last:?}");
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

/// Provisions `acme` with issuer and AS bindings on `port`.
async fn provision(tenancy: &Tenancy, port: u16) -> edk_core::TenantId {
    let tenant = tenancy
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    crate::support::bind_acme(tenancy, tenant.id, port).await;
    tenant.id
}

/// Stores the `identity` configuration, retrying until the issuer knows the tenant.
async fn configure(base: &str, token: &str) {
    let client = reqwest::Client::new();
    let mut last = (0, String::new());
    for _ in 0..100 {
        let response = client
            .put(format!("{base}/api/oid4vci/v1/configurations/identity"))
            .bearer_auth(token)
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
        if response.status() == 200 {
            return;
        }
        last = (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("edk-issuer never learned of the tenant: {last:?}");
}

/// Creates one offer by reference with `correlation_id`.
async fn create_offer(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    correlation_id: &str,
) -> Attempt {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/oid4vci/v1/offers"))
        .bearer_auth(token)
        .json(&json!({
            "credential_configuration_ids": ["identity"],
            "claims": { "identity": { "given_name": "Erika" } },
            "tx_code": { "digits": 6 },
            "by_reference": true,
            "correlation_id": correlation_id,
        }))
        .send()
        .await;
    let (status, content_type, body) = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, content_type, body)
        }
        Err(err) => panic!("the issuer did not answer during the outage: {err}"),
    };
    Attempt {
        correlation_id: correlation_id.to_owned(),
        status,
        content_type,
        session_id: body["session_id"].as_str().map(str::to_owned),
        elapsed: started.elapsed(),
        started,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_fast_and_recovers_without_half_written_offers() {
    edk_server::install_crypto_provider();
    let mut postgres = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _issuer = spawn_issuer(dir.path(), port, &postgres.url(), &admin);
    readiness(&base, 200, Duration::from_secs(60)).await;

    let tenancy = Tenancy::builder(DatabaseConfig::Postgres(PostgresConfig::new(
        postgres.url().into(),
    )))
    .migrations(edk_kms::migrations().unwrap())
    .migrations(edk_oauth::migrations().unwrap())
    .migrations(edk_oauth::federation::migrations().unwrap())
    .migrations(edk_oid4vci::migrations().unwrap())
    .build()
    .await
    .unwrap();
    let tenant = provision(&tenancy, port).await;
    drop(tenancy);
    let token = admin.token(tenant, "oid4vci:read oid4vci:write").await;
    configure(&base, &token).await;

    // Load: four clients creating offers back to back.
    let running = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let running = Arc::clone(&running);
            let base = base.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut attempts = Vec::new();
                let mut n = 0;
                while running.load(Ordering::Relaxed) {
                    let id = format!("load-{worker}-{n}");
                    attempts.push(create_offer(&client, &base, &token, &id).await);
                    n += 1;
                }
                attempts
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The database stops at once, under load.
    tokio::task::block_in_place(|| postgres.stop());
    let stopped = Instant::now();
    let report = readiness(&base, 503, Duration::from_secs(10)).await;
    assert_eq!(check(&report, "database")["ok"], false, "{report}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    tokio::task::block_in_place(|| postgres.start_again());
    let restarted = Instant::now();
    readiness(&base, 200, Duration::from_secs(30)).await;
    let ready = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.store(false, Ordering::Relaxed);
    let mut attempts = Vec::new();
    for worker in workers {
        attempts.extend(worker.await.unwrap());
    }

    // During the outage: 503 problems, each answered within the pool's acquire timeout.
    let refused: Vec<&Attempt> = attempts.iter().filter(|a| a.status != 201).collect();
    assert!(
        refused
            .iter()
            .any(|a| a.started >= stopped && a.started < restarted),
        "no request was refused while the database was down: {attempts:#?}"
    );
    for attempt in &refused {
        assert_eq!(attempt.status, 503, "{attempt:?}");
        assert_eq!(
            attempt.content_type, "application/problem+json",
            "{attempt:?}"
        );
        assert!(attempt.elapsed < FAIL_FAST, "{attempt:?}");
    }
    // Before the outage and once ready again, every offer is created.
    assert!(
        attempts
            .iter()
            .any(|a| a.started < stopped && a.status == 201),
        "{attempts:#?}"
    );
    let after: Vec<&Attempt> = attempts.iter().filter(|a| a.started >= ready).collect();
    assert!(!after.is_empty(), "{attempts:#?}");
    for attempt in &after {
        assert_eq!(attempt.status, 201, "{attempt:?}");
    }

    // Nothing half-written: an offer answered 201 exists in full; one refused exists in full
    // or not at all.
    let client = reqwest::Client::new();
    for attempt in &attempts {
        let sessions: Value = client
            .get(format!(
                "{base}/api/oid4vci/v1/sessions?correlation_id={}",
                attempt.correlation_id
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sessions = sessions.as_array().unwrap();
        match &attempt.session_id {
            Some(id) => {
                assert_eq!(sessions.len(), 1, "{attempt:?} {sessions:?}");
                assert_eq!(sessions[0]["id"], id.as_str());
            }
            None => assert!(sessions.len() <= 1, "{attempt:?} {sessions:?}"),
        }
        for session in sessions {
            assert_eq!(session["status"], "offered", "{attempt:?} {session}");
            assert_eq!(
                session["credential_configuration_ids"],
                json!(["identity"]),
                "{attempt:?} {session}"
            );
        }
    }

    // An offer by reference is its session and its reference: neither exists without the
    // other, whatever the outage interrupted.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres.url())
        .await
        .unwrap();
    let schema = tenant.schema_name();
    let sessions: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {schema}.oid4vci_session"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let created = attempts.iter().filter(|a| a.status == 201).count();
    assert!(
        usize::try_from(sessions).unwrap() >= created,
        "{sessions} < {created}"
    );
    for orphans in [
        format!(
            "SELECT count(*) FROM {schema}.oid4vci_session s WHERE NOT EXISTS \
             (SELECT 1 FROM {schema}.oid4vci_offer_reference r WHERE r.session_id = s.session_id)"
        ),
        format!(
            "SELECT count(*) FROM {schema}.oid4vci_offer_reference r WHERE NOT EXISTS \
             (SELECT 1 FROM {schema}.oid4vci_session s WHERE s.session_id = r.session_id)"
        ),
    ] {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(orphans.clone()))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(count, 0, "{orphans}");
    }
    pool.close().await;

    // The pool gauges: the platform and workload pools, at most the configured size.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for pool in ["platform", "workload"] {
        assert!(
            metrics.contains(&format!("db_pool_max_connections{{pool=\"{pool}\"}} 5")),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!("db_pool_connections{{pool=\"{pool}\"}}")),
            "{metrics}"
        );
    }
    assert!(
        metrics.contains(&format!(
            "http_tenant_requests_total{{class=\"5xx\",tenant=\"{tenant}\"}}"
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_fails_closed_while_the_kms_is_down_and_recovers_when_it_returns() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let admin = TestAdmin::new();
    let mut kms = RemoteKms::start(db.url(), "issuer", &["acme"]).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // Provisioned before the issuer starts, which migrates the tenant's schema for itself.
    let tenant = provision(kms.server().tenancy(), port).await;
    let _issuer = kms.spawn_service(
        env!("CARGO_BIN_EXE_edk-issuer"),
        "issuer",
        port,
        db.url(),
        &admin,
    );
    readiness(&base, 200, Duration::from_secs(60)).await;
    assert!(kms.server().tenancy().context(tenant).await.is_ok());
    let token = admin.token(tenant, "oid4vci:read oid4vci:write").await;
    configure(&base, &token).await;

    let client = reqwest::Client::new();
    let signed_metadata = || async {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/.well-known/openid-credential-issuer/acme"))
            .header("Host", format!("localhost:{port}"))
            .header("Accept", "application/jwt")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.unwrap();
        (status, content_type, body, started.elapsed())
    };
    let mut first = None;
    for _ in 0..100 {
        let answer = signed_metadata().await;
        if answer.0 == 200 {
            first = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, content_type, jwt, _) = first.expect("signed metadata while the KMS serves");
    assert_eq!(content_type, "application/jwt");
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");

    // The KMS stops: readiness names it, and every signed answer is refused at once.
    kms.stop_serving_and_expect_unready(&base).await;
    for _ in 0..5 {
        let (status, content_type, body, elapsed) = signed_metadata().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(content_type, "application/problem+json", "{body}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert!(!body.contains(&jwt), "{body}");
    }

    // The KMS serves again: readiness and signing come back without restarting the issuer.
    kms.resume_serving().await;
    let report = readiness(&base, 200, Duration::from_secs(30)).await;
    assert_eq!(check(&report, "kms")["ok"], true, "{report}");
    let (status, content_type, body, _) = signed_metadata().await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/jwt"),
        "{body}"
    );
    assert_eq!(body.split('.').count(), 3, "{body}");

    kms.shutdown().await;
    db.close().await;
}
