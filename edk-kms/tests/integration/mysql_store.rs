//! `key_reference` on MariaDB: the KMS conformance suite with `LocalKms` keeping its key
//! references in a MariaDB database of the test's own (tenants and audit on SQLite).

use std::sync::Arc;

use edk_core::FixedClock;
use edk_core::jose::Algorithm;
use edk_kms::provider::KeySpec;
use edk_kms::store::mysql::MySqlKeyStore;
use edk_kms::testkit::{KmsSuiteConfig, kms_suite};
use edk_kms::{KeyAlias, Kms, LocalKms, NewKey};
use edk_testkit::mariadb::TestMariaDb;

use crate::support::{Backend, caller, software, tenancy};

async fn kms_on_mariadb(
    db: &TestMariaDb,
) -> (LocalKms, edk_kms::Caller, edk_kms::Caller, impl Sized) {
    let store = MySqlKeyStore::new(db.pool());
    store.migrate().await.unwrap();
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let (tenancy, dir, _) = tenancy(Backend::Sqlite, Arc::clone(&clock)).await;
    let kms = LocalKms::builder(tenancy.clone(), vec![software("software")])
        .clock(clock)
        .store(Arc::new(store))
        .build()
        .unwrap();
    let a = caller(&tenancy, "tenant-a", "alice").await;
    let b = caller(&tenancy, "tenant-b", "bob").await;
    (kms, a, b, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_key_references_on_mariadb() {
    let db = TestMariaDb::new().await;
    let (kms, a, b, _dir) = kms_on_mariadb(&db).await;
    let shared: Arc<dyn Kms> = Arc::new(kms.clone());
    kms_suite(shared, &a, &b, &KmsSuiteConfig::default()).await;
    kms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_references_are_rows_in_mariadb_keyed_by_tenant() {
    let db = TestMariaDb::new().await;
    let (kms, a, b, _dir) = kms_on_mariadb(&db).await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    kms.create_key(
        &a,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    kms.rotate(&a, &alias).await.unwrap();
    kms.create_key(
        &b,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    let pool = db.pool();
    let rows: Vec<(Vec<u8>, i32, String)> = sqlx::query_as(
        "SELECT tenant_id, version, state FROM key_reference ORDER BY tenant_id, version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let tenant_a = a.tenant().id().as_uuid().as_bytes().to_vec();
    let of_a: Vec<(i32, &str)> = rows
        .iter()
        .filter(|(tenant, _, _)| *tenant == tenant_a)
        .map(|(_, version, state)| (*version, state.as_str()))
        .collect();
    assert_eq!(of_a, [(1, "retired"), (2, "active")]);
    assert_eq!(rows.len(), 3);
    // The same alias name again for a tenant that has it is refused by the live unique index.
    let err = kms
        .create_key(
            &a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, edk_kms::Error::AliasExists { .. }), "{err:?}");
    // Destroyed aliases free the name.
    kms.delete_key(&a, &edk_kms::KeyRef::Alias(alias.clone()))
        .await
        .unwrap();
    kms.create_key(
        &a,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    pool.close().await;
    kms.shutdown().await;
}
