//! `kms.database`: the key references of every tenant in one MariaDB database, the tenancy
//! staying on PostgreSQL or SQLite.

use edk_core::encoding::b64url_encode;
use edk_kms::provider::software::generate_kek;
use edk_testkit::mariadb::TestMariaDb;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{Backend, Harness, expect_json};

async fn key_references_live_in_mariadb(backend: Backend) {
    let db = TestMariaDb::new().await;
    let kek = generate_kek().unwrap();
    let h = Harness::start_with(
        backend,
        json!({ "kms": {
            "mode": "local",
            "database": db.url(),
            "providers": [{ "kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{ "id": "k1", "key": kek.expose_secret() }] }],
        } }),
    )
    .await;
    let token = h.token().await;
    let create =
        json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" });
    let created = expect_json(h.post("/keys", &token, &create).await, 201).await;
    let kid = created["versions"][0]["kid"].as_str().unwrap().to_owned();
    let rotated = expect_json(
        h.post("/keys/issuer.credential-signing/rotate", &token, &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rotated["versions"].as_array().unwrap().len(), 2);
    let signed = expect_json(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "issuer.credential-signing", "message": b64url_encode(b"m") }),
        )
        .await,
        200,
    )
    .await;
    assert_ne!(signed["kid"], kid.as_str(), "the rotated version signs");

    let pool = db.pool();
    let aliases: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM kms_key_alias WHERE tenant_id = ? AND alias = ?")
            .bind(h.tenant_a.as_uuid())
            .bind("issuer.credential-signing")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(aliases, 1);
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_reference")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(versions, 2);
    // Tenant b sees none of tenant a's keys.
    let token_b = h.token_for(h.tenant_b, "kms:read").await;
    let listed = expect_json(h.get("/keys", &token_b).await, 200).await;
    assert_eq!(listed["keys"], json!([]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_references_live_in_mariadb_with_sqlite_tenancy() {
    key_references_live_in_mariadb(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_references_live_in_mariadb_with_postgres_tenancy() {
    key_references_live_in_mariadb(Backend::Postgres).await;
}

async fn readiness(h: &Harness) -> (u16, Value) {
    let response = h
        .client
        .get(h.server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn check<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_checks_the_mariadb_key_store() {
    let db = TestMariaDb::new().await;
    let kek = generate_kek().unwrap();
    let h = Harness::start_with(
        Backend::Sqlite,
        json!({ "kms": {
            "mode": "local",
            "database": db.url(),
            "providers": [{ "kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{ "id": "k1", "key": kek.expose_secret() }] }],
        } }),
    )
    .await;
    let (status, report) = readiness(&h).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(check(&report, "kms_database").unwrap()["ok"], true);

    // The key store's database goes away: the server stops taking traffic, and says why
    // without naming the database.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", db.name())))
        .execute(&db.pool())
        .await
        .unwrap();
    let (status, report) = readiness(&h).await;
    assert_eq!(status, 503, "{report}");
    let failed = check(&report, "kms_database").unwrap();
    assert_eq!(failed["ok"], false);
    assert_eq!(
        failed["reason"],
        "the KMS key store database does not answer"
    );
    assert!(!report.to_string().contains(db.name()));
    assert_eq!(check(&report, "database").unwrap()["ok"], true);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_has_no_key_store_check_without_kms_database() {
    let h = Harness::start(Backend::Sqlite).await;
    let (status, report) = readiness(&h).await;
    assert_eq!(status, 200, "{report}");
    assert!(check(&report, "kms_database").is_none());
    assert!(check(&report, "database").is_some());
    h.stop().await;
}
