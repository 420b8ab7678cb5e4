//! Test environments: a tenancy on SQLite (a temporary directory) or PostgreSQL (a database of
//! its own), two provisioned tenants and a `LocalKms` over chosen providers.

use std::sync::Arc;

use edk_core::{FixedClock, TenantSlug};
use edk_kms::local::DefaultAlias;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, ProviderId};
use edk_kms::{Caller, LocalKms};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use edk_testkit::TestDb;
use secrecy::SecretString;
use tempfile::TempDir;

/// Which database backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A tenancy with two tenants and a KMS.
pub(crate) struct Env {
    pub(crate) tenancy: Tenancy,
    pub(crate) kms: LocalKms,
    pub(crate) a: Caller,
    pub(crate) b: Caller,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) dir: Option<TempDir>,
    pub(crate) db: Option<TestDb>,
}

pub(crate) fn software(id: &str) -> Arc<dyn KeyProvider> {
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new(id).unwrap(),
            kek,
        ))
        .unwrap(),
    )
}

pub(crate) async fn tenancy(
    backend: Backend,
    clock: Arc<FixedClock>,
) -> (Tenancy, Option<TempDir>, Option<TestDb>) {
    let (config, dir, db) = match backend {
        Backend::Sqlite => {
            let dir = edk_testkit::temp_dir();
            (
                DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())),
                Some(dir),
                None,
            )
        }
        Backend::Postgres => {
            let db = TestDb::new().await;
            let mut config = PostgresConfig::new(SecretString::from(db.url()));
            config.max_connections = 8;
            (DatabaseConfig::Postgres(config), None, Some(db))
        }
    };
    let tenancy = Tenancy::builder(config)
        .clock(clock)
        .migrations(edk_kms::migrations().unwrap())
        .migrations(edk_kms::cert::migrations().unwrap())
        .build()
        .await
        .unwrap();
    (tenancy, dir, db)
}

pub(crate) async fn caller(tenancy: &Tenancy, slug: &str, actor: &str) -> Caller {
    let tenant = tenancy
        .provision(TenantSlug::new(slug).unwrap(), slug)
        .await
        .unwrap();
    Caller::new(tenancy.context(tenant.id).await.unwrap(), actor)
}

pub(crate) async fn env_with(
    backend: Backend,
    providers: Vec<Arc<dyn KeyProvider>>,
    defaults: Vec<DefaultAlias>,
) -> Env {
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let (tenancy, dir, db) = tenancy(backend, Arc::clone(&clock)).await;
    let kms = LocalKms::builder(tenancy.clone(), providers)
        .clock(clock.clone())
        .default_aliases(defaults)
        .build()
        .unwrap();
    let a = caller(&tenancy, "tenant-a", "alice").await;
    let b = caller(&tenancy, "tenant-b", "bob").await;
    Env {
        tenancy,
        kms,
        a,
        b,
        clock,
        dir,
        db,
    }
}

pub(crate) async fn env(backend: Backend) -> Env {
    env_with(backend, vec![software("software")], Vec::new()).await
}
