//! `kms.database`: the key references of every tenant in one MariaDB database, the tenancy
//! staying on PostgreSQL or SQLite.

use edk_core::encoding::b64url_encode;
use edk_kms::provider::software::generate_kek;
use edk_testkit::mariadb::TestMariaDb;
use secrecy::ExposeSecret as _;
use serde_json::json;

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
