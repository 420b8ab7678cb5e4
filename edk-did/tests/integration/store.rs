//! The DID store: one suite, run on SQLite and on PostgreSQL (a database per test), including
//! tenant isolation and optimistic concurrency.

use std::sync::Arc;

use edk_core::{Did, TenantSlug};
use edk_did::document::Relationship;
use edk_did::store::{DidStore, SqlDidStore, StoreError, StoredDid, StoredMethod, StoredService};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantContext, TenantDirectory as _};
use edk_testkit::TestDb;
use serde_json::json;

async fn tenancy(database: DatabaseConfig) -> Tenancy {
    Tenancy::builder(database)
        .migrations(edk_did::store::migrations().unwrap())
        .build()
        .await
        .unwrap()
}

async fn tenant(tenancy: &Tenancy, slug: &str) -> TenantContext {
    let tenant = tenancy
        .provision(TenantSlug::new(slug).unwrap(), slug)
        .await
        .unwrap();
    tenancy.context(tenant.id).await.unwrap()
}

fn entry(n: u64) -> String {
    json!({"versionId": format!("{n}-Qmhash{n}"), "versionTime": "2026-01-01T00:00:00Z"})
        .to_string()
}

fn sample(did: &str, method: &str, location: &str) -> StoredDid {
    let mut stored = StoredDid::new(
        Did::new(did).unwrap(),
        method,
        "issuer",
        json!({"id": did}),
        1_767_225_600,
    );
    stored.location = Some(location.to_owned());
    stored.update_key = Some("did.issuer-update".parse().unwrap());
    stored.verification_methods = vec![
        StoredMethod::new(
            "did.issuer".parse().unwrap(),
            vec![Relationship::AssertionMethod],
        ),
        StoredMethod::new(
            "did.issuer-2".parse().unwrap(),
            vec![Relationship::Authentication, Relationship::KeyAgreement],
        ),
    ];
    stored.services = vec![StoredService::new(
        "issuer",
        "OID4VCI",
        json!("https://issuer.example"),
    )];
    stored.log = vec![entry(1)];
    stored
}

async fn store_suite(tenancy: Tenancy) {
    let acme = tenant(&tenancy, "acme").await;
    let other = tenant(&tenancy, "other").await;
    let store: Arc<dyn DidStore> = Arc::new(SqlDidStore::new(tenancy.clone()));
    let did = "did:webvh:QmScid:acme.example:issuer";
    let stored = sample(did, "webvh", "issuer");

    store.insert(&acme, &stored).await.unwrap();
    let read = store.get(&acme, &stored.did).await.unwrap().unwrap();
    assert_eq!(read, stored);
    let found = store.by_location(&acme, "webvh", "issuer").await.unwrap();
    assert_eq!(found.as_ref(), Some(&stored));
    assert!(
        store
            .by_location(&acme, "web", "issuer")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .by_location(&acme, "webvh", "")
            .await
            .unwrap()
            .is_none()
    );

    // Another tenant sees nothing and may reuse the location in its own schema or file.
    assert!(store.get(&other, &stored.did).await.unwrap().is_none());
    assert!(store.list(&other).await.unwrap().is_empty());
    store
        .insert(&other, &sample(did, "webvh", "issuer"))
        .await
        .unwrap();

    // One DID per id and per (method, location).
    let again = store.insert(&acme, &stored).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict { .. }), "{again}");
    let same_place = store
        .insert(
            &acme,
            &sample("did:webvh:QmOther:acme.example:issuer", "webvh", "issuer"),
        )
        .await
        .unwrap_err();
    assert!(matches!(same_place, StoreError::Conflict { .. }));
    store
        .insert(
            &acme,
            &sample("did:web:acme.example:issuer", "web", "issuer"),
        )
        .await
        .unwrap();

    // Updates are conditional on the revision; the log is appended, methods replaced.
    let mut next = read.clone();
    next.revision += 1;
    next.updated_at += 10;
    next.log.push(entry(2));
    next.verification_methods.truncate(1);
    next.services.clear();
    next.witness = Some("[]".to_owned());
    next.pending = vec![entry(3), entry(4)];
    next.deactivated = true;
    store.update(&acme, &next).await.unwrap();
    assert_eq!(store.get(&acme, &next.did).await.unwrap().unwrap(), next);
    // Held-back entries are replaced as a whole and go once published.
    let mut published = next.clone();
    published.revision += 1;
    published.log.extend(published.pending.drain(..1));
    store.update(&acme, &published).await.unwrap();
    assert_eq!(
        store.get(&acme, &next.did).await.unwrap().unwrap(),
        published
    );
    let mut next = published.clone();
    next.revision += 1;
    next.log.append(&mut next.pending);
    store.update(&acme, &next).await.unwrap();
    let read_back = store.get(&acme, &next.did).await.unwrap().unwrap();
    assert_eq!(read_back, next);
    assert_eq!(read_back.log.len(), 4);
    assert!(read_back.pending.is_empty());
    // A line with a newline is refused, nothing written.
    let mut broken = next.clone();
    broken.revision += 1;
    broken.pending = vec!["{\n}".to_owned()];
    let corrupt = store.update(&acme, &broken).await.unwrap_err();
    assert!(matches!(corrupt, StoreError::Corrupt { .. }), "{corrupt}");
    assert_eq!(store.get(&acme, &next.did).await.unwrap().unwrap(), next);
    let mut stale_next = next.clone();
    stale_next.revision -= 1;
    let stale = store.update(&acme, &stale_next).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict { .. }), "{stale}");
    let mut missing = sample("did:web:acme.example:gone", "web", "gone");
    missing.revision = 2;
    let gone = store.update(&acme, &missing).await.unwrap_err();
    assert!(matches!(gone, StoreError::NotFound { .. }), "{gone}");

    // The other tenant's copy is untouched.
    let theirs = store.get(&other, &stored.did).await.unwrap().unwrap();
    assert_eq!(theirs.log.len(), 1);
    assert!(!theirs.deactivated);

    // Listing: by DID, without logs.
    let list = store.list(&acme).await.unwrap();
    let dids: Vec<&str> = list.iter().map(|d| d.did.as_str()).collect();
    assert_eq!(dids, ["did:web:acme.example:issuer", did]);
    assert!(list.iter().all(|d| d.log.is_empty()));
    assert_eq!(list[1].verification_methods.len(), 1);
    assert!(list.iter().all(|d| d.pending.is_empty()));
}

#[tokio::test]
async fn did_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    store_suite(tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_store_on_postgres() {
    let db = TestDb::new().await;
    let config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
    store_suite(tenancy(DatabaseConfig::Postgres(config)).await).await;
    db.close().await;
}
