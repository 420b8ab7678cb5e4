//! Tenant data stays in its schema, file or dedicated database.

use std::collections::BTreeMap;

use edk_core::{TenantId, TenantSlug};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::testkit::{self, read_notes, write_note};
use edk_tenancy::{DatabaseConfig, TenantDirectory, TenantTx};
use edk_testkit::TestDb;
use secrecy::SecretString;

use crate::{build, clock, postgres, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_see_each_others_rows_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock())).await;
    let a = tenancy
        .provision(TenantSlug::new("iso-a").unwrap(), "A")
        .await
        .unwrap();
    let b = tenancy
        .provision(TenantSlug::new("iso-b").unwrap(), "B")
        .await
        .unwrap();
    let ctx_a = tenancy.context(a.id).await.unwrap();
    let ctx_b = tenancy.context(b.id).await.unwrap();
    write_note(&tenancy, &ctx_a, "only a").await.unwrap();
    assert!(read_notes(&tenancy, &ctx_b).await.unwrap().is_empty());
    let files: Vec<_> = std::fs::read_dir(dir.path().join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".db"))
        .collect();
    assert_eq!(files.len(), 2, "one file per tenant: {files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_path_is_scoped_to_the_transaction() {
    let db = TestDb::new().await;
    // One workload connection, so the second unit of work runs on the first one's connection.
    let mut config = PostgresConfig::new(SecretString::from(db.url()));
    config.max_connections = 1;
    let tenancy = build(testkit::builder(DatabaseConfig::Postgres(config), clock())).await;
    let a = tenancy
        .provision(TenantSlug::new("scope-a").unwrap(), "A")
        .await
        .unwrap();
    let ctx = tenancy.context(a.id).await.unwrap();
    let schema = a.id.schema_name();

    let TenantTx::Postgres(mut first) = tenancy.databases().begin(&ctx).await.unwrap() else {
        panic!("a PostgreSQL unit of work");
    };
    let (first_pid, inside): (i32, String) =
        sqlx::query_as("SELECT pg_backend_pid(), current_setting('search_path')")
            .fetch_one(&mut *first)
            .await
            .unwrap();
    assert_eq!(
        inside, schema,
        "the unit of work runs in the tenant's schema"
    );
    sqlx::query("INSERT INTO testkit_note (body) VALUES ('in a')")
        .execute(&mut *first)
        .await
        .unwrap();
    first.commit().await.unwrap();

    // The next unit of work on the same pooled connection ends its own transaction at once and
    // looks at the session: SET LOCAL ended with the first transaction, so the session has
    // its default search_path and no tenant table is visible unqualified.
    let TenantTx::Postgres(mut second) = tenancy.databases().begin(&ctx).await.unwrap() else {
        panic!("a PostgreSQL unit of work");
    };
    sqlx::raw_sql("COMMIT").execute(&mut *second).await.unwrap();
    let (second_pid, after, visible): (i32, String, Option<String>) = sqlx::query_as(
        "SELECT pg_backend_pid(), current_setting('search_path'), \
         to_regclass('testkit_note')::text",
    )
    .fetch_one(&mut *second)
    .await
    .unwrap();
    drop(second);
    assert_eq!(second_pid, first_pid, "the same pooled connection");
    assert_eq!(after, "\"$user\", public");
    assert_eq!(visible, None);

    let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {schema}.testkit_note"
    )))
    .fetch_one(&db.pool())
    .await
    .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moved_to_a_dedicated_database_keeps_its_data_there() {
    let shared = TestDb::new().await;
    let dedicated = TestDb::new().await;
    let first = build(testkit::builder(postgres(shared.url()), clock())).await;
    let a = first
        .provision(TenantSlug::new("ded-a").unwrap(), "A")
        .await
        .unwrap();
    let b = first
        .provision(TenantSlug::new("ded-b").unwrap(), "B")
        .await
        .unwrap();

    // Configuration alone moves b: a restart with a dedicated URL for it.
    let mut config = PostgresConfig::new(SecretString::from(shared.url()));
    config.max_connections = 5;
    config.dedicated = BTreeMap::from([(b.id, SecretString::from(dedicated.url()))]);
    let moved = build(testkit::builder(DatabaseConfig::Postgres(config), clock())).await;
    let report = moved.upgrade_all().await.unwrap();
    assert_eq!(report.tenants, 2);
    assert_eq!(
        report.applied, 2,
        "b's schema is created in the dedicated database"
    );

    let ctx_a = moved.context(a.id).await.unwrap();
    let ctx_b = moved.context(b.id).await.unwrap();
    write_note(&moved, &ctx_a, "a in shared").await.unwrap();
    write_note(&moved, &ctx_b, "b in dedicated").await.unwrap();
    assert_eq!(read_notes(&moved, &ctx_a).await.unwrap(), ["a in shared"]);
    assert_eq!(
        read_notes(&moved, &ctx_b).await.unwrap(),
        ["b in dedicated"]
    );

    let count = |pool: sqlx::PgPool, tenant: TenantId| async move {
        let sql = format!("SELECT count(*) FROM {}.testkit_note", tenant.schema_name());
        sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .map(|(n,)| n)
            .unwrap_or(-1)
    };
    assert_eq!(count(dedicated.pool(), b.id).await, 1);
    assert_eq!(
        count(shared.pool(), b.id).await,
        0,
        "nothing of b's new data in the shared database"
    );
    assert_eq!(
        count(dedicated.pool(), a.id).await,
        -1,
        "a has no schema in b's database"
    );
}
