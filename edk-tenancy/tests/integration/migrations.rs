//! Migrations: concurrent provisioning, upgrades, and refusing changed migrations.

use edk_core::TenantSlug;
use edk_tenancy::error::MigrationError;
use edk_tenancy::testkit::{self, FIXTURE_COMPONENT};
use edk_tenancy::{Error, MigrationScope, MigrationSet, Tenancy, TenantStatus};
use edk_testkit::TestDb;
use futures::StreamExt;

use crate::{build, clock, postgres, sqlite};

async fn provision_all(tenancy: Tenancy, slugs: Vec<String>) {
    futures::stream::iter(slugs)
        .map(|slug| {
            let tenancy = tenancy.clone();
            async move {
                tenancy
                    .provision(TenantSlug::new(slug).unwrap(), "Concurrent")
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_tenants_provisioned_concurrently_on_two_instances() {
    let db = TestDb::new().await;
    let one = build(testkit::builder(postgres(db.url()), clock())).await;
    let two = build(testkit::builder(postgres(db.url()), clock())).await;
    let slugs: Vec<String> = (0..100).map(|i| format!("tenant-{i:03}")).collect();
    let mut reversed = slugs.clone();
    reversed.reverse();
    tokio::join!(
        provision_all(one.clone(), slugs),
        provision_all(two.clone(), reversed)
    );

    let tenants = one.tenants().await.unwrap();
    assert_eq!(tenants.len(), 100);
    assert!(tenants.iter().all(|t| t.status == TenantStatus::Active));
    let pool = db.pool();
    let (schemas,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'tenant\\_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, 100);
    for tenant in &tenants {
        let sql = format!(
            "SELECT count(*) FROM {}.edk_migration_ledger WHERE component = $1",
            tenant.id.schema_name()
        );
        let (ledger,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(FIXTURE_COMPONENT)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(ledger, 2, "ledger of {}", tenant.slug);
    }
}

fn changed_fixture() -> MigrationSet {
    MigrationSet::from_sql(
        FIXTURE_COMPONENT,
        MigrationScope::Tenant,
        &[
            (1, "notes", "CREATE TABLE testkit_note (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, extra INT)"),
            (2, "note index", "CREATE INDEX testkit_note_body ON testkit_note (body)"),
        ],
        &[
            (1, "notes", "CREATE TABLE testkit_note (id INTEGER PRIMARY KEY, body TEXT NOT NULL, extra INT)"),
            (2, "note index", "CREATE INDEX testkit_note_body ON testkit_note (body)"),
        ],
    )
    .unwrap()
}

fn extra_component() -> MigrationSet {
    MigrationSet::from_sql(
        "edk-extra",
        MigrationScope::Tenant,
        &[(
            1,
            "extra",
            "CREATE TABLE extra_thing (id BIGINT PRIMARY KEY)",
        )],
        &[(
            1,
            "extra",
            "CREATE TABLE extra_thing (id INTEGER PRIMARY KEY)",
        )],
    )
    .unwrap()
}

async fn upgrades_apply_new_and_refuse_changed(database: impl Fn() -> edk_tenancy::DatabaseConfig) {
    let first = build(testkit::builder(database(), clock())).await;
    first
        .provision(TenantSlug::new("up-a").unwrap(), "A")
        .await
        .unwrap();
    first
        .provision(TenantSlug::new("up-b").unwrap(), "B")
        .await
        .unwrap();

    let upgraded = build(testkit::builder(database(), clock()).migrations(extra_component())).await;
    let report = upgraded.upgrade_all().await.unwrap();
    assert_eq!((report.tenants, report.applied), (2, 2));
    assert_eq!(upgraded.upgrade_all().await.unwrap().applied, 0);

    let changed = Tenancy::builder(database())
        .clock(clock())
        .migrations(changed_fixture())
        .config_schema(testkit::config_schema())
        .build()
        .await
        .unwrap();
    let err = changed.upgrade_all().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Migration(MigrationError::ChecksumMismatch { version: 1, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("refusing to start"), "{err}");

    let older = Tenancy::builder(database())
        .clock(clock())
        .migrations(testkit::fixture_migrations())
        .build()
        .await
        .unwrap();
    assert!(
        older.upgrade_all().await.is_ok(),
        "components this build does not know are left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrades_apply_new_migrations_and_refuse_changed_ones() {
    let db = TestDb::new().await;
    upgrades_apply_new_and_refuse_changed(|| postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrades_apply_new_migrations_and_refuse_changed_ones() {
    let dir = edk_testkit::temp_dir();
    upgrades_apply_new_and_refuse_changed(|| sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_platform_migration_refuses_to_start() {
    let db = TestDb::new().await;
    let platform = |sql: &str| {
        MigrationSet::from_sql(
            "edk-operator",
            MigrationScope::Platform,
            &[(1, "operator", sql)],
            &[(1, "operator", sql)],
        )
        .unwrap()
    };
    Tenancy::builder(postgres(db.url()))
        .migrations(platform("CREATE TABLE operator_state (id INT)"))
        .build()
        .await
        .unwrap();
    let err = Tenancy::builder(postgres(db.url()))
        .migrations(platform("CREATE TABLE operator_state (id BIGINT)"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Migration(MigrationError::ChecksumMismatch { .. })
        ),
        "{err:?}"
    );
}
