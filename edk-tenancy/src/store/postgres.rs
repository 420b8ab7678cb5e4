//! PostgreSQL: the platform registry in schema `edk_platform` of the platform database, and
//! one schema per tenant (`tenant_<32 hex>`, from [`TenantId::schema_name`]) in the shared
//! workload database or in a dedicated one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use edk_core::TenantId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres};

use crate::context::TenantContext;
use crate::error::Error;
use crate::events::{Event, EventId};
use crate::migrate::{Backend, MigrationSet};
use crate::outbox::{OutboxEntry, OutboxLink};
use crate::store::{BackendTx, PlatformTx, ledger_apply_fn, platform_store_impl};

/// The schema holding the platform registry.
pub const PLATFORM_SCHEMA: &str = "edk_platform";

/// Where the PostgreSQL databases are. Database URLs are secrets: they may carry passwords and
/// are never logged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The platform database (registry, bindings, configuration, events).
    pub platform_url: SecretString,
    /// The shared tenant workload database; the platform database when absent.
    #[serde(default)]
    pub workload_url: Option<SecretString>,
    /// Tenants moved to a dedicated database: their schema lives there instead.
    #[serde(default)]
    pub dedicated: BTreeMap<TenantId, SecretString>,
    /// Connections per pool.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long to wait for a pooled connection.
    #[serde(default = "default_acquire_timeout", with = "seconds")]
    pub acquire_timeout: Duration,
}

impl PostgresConfig {
    /// A configuration with one database for the platform and every tenant.
    #[must_use]
    pub fn new(platform_url: SecretString) -> Self {
        Self {
            platform_url,
            workload_url: None,
            dedicated: BTreeMap::new(),
            max_connections: default_max_connections(),
            acquire_timeout: default_acquire_timeout(),
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("platform_url", &"[redacted]")
            .field(
                "workload_url",
                &self.workload_url.as_ref().map(|_| "[redacted]"),
            )
            .field("dedicated", &self.dedicated.keys().collect::<Vec<_>>())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

const fn default_max_connections() -> u32 {
    10
}

const fn default_acquire_timeout() -> Duration {
    Duration::from_secs(10)
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

pub(crate) fn connect_options(url: &SecretString) -> Result<PgConnectOptions, Error> {
    // The parse error may quote the URL, so it is dropped.
    PgConnectOptions::from_str(url.expose_secret()).map_err(|_| Error::InvalidDatabaseConfig {
        reason: "a PostgreSQL URL does not parse",
    })
}

fn pool(config: &PostgresConfig, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options)
}

/// The platform pool: `search_path` is the platform schema on every connection.
pub(crate) fn platform_pool(config: &PostgresConfig) -> Result<PgPool, Error> {
    let options = connect_options(&config.platform_url)?
        .application_name("edk-platform")
        .options([("search_path", PLATFORM_SCHEMA)]);
    Ok(pool(config, options))
}

/// The platform registry on PostgreSQL.
#[derive(Debug)]
pub(crate) struct PgPlatformStore {
    pool: PgPool,
}

impl PgPlatformStore {
    pub(crate) const fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

platform_store_impl!(PgPlatformStore, migrate_platform);

/// The outbox, named so that a tenant's transaction in the platform database reaches it too.
const OUTBOX_TABLE: &str = "edk_platform.event_outbox";

const fn platform_tx(tx: BackendTx<Postgres>) -> PlatformTx {
    PlatformTx::Postgres(tx)
}

/// Appends `entry` to the outbox in the transaction of `conn`.
async fn insert_outbox(conn: &mut PgConnection, entry: &OutboxEntry) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO edk_platform.event_outbox \
         (event_id, origin, tenant_id, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(entry.delivery.id.as_uuid())
    .bind(entry.origin)
    .bind(entry.tenant.map(|t| *t.as_uuid()))
    .bind(sqlx::types::Json(&entry.delivery.event))
    .bind(entry.at)
    .execute(conn)
    .await?;
    Ok(())
}

impl BackendTx<Postgres> {
    /// Writes `event` to the platform's outbox in this transaction, ordered with the other
    /// events of `tenant` (`None`: the platform's); returns its id.
    ///
    /// # Errors
    /// [`Error::OutboxUnreachable`] when this transaction is in a database without the
    /// outbox, [`Error::Database`].
    pub async fn append_event(
        &mut self,
        tenant: Option<TenantId>,
        event: Event,
    ) -> Result<EventId, Error> {
        let entry = self.prepare_event(tenant, event)?;
        insert_outbox(&mut self.tx, &entry).await?;
        let id = entry.delivery.id;
        self.appended.push(entry.delivery);
        Ok(id)
    }
}

async fn migrate_platform(
    pool: &PgPool,
    sets: &[MigrationSet],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, LOCK_PLATFORM, 0).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {PLATFORM_SCHEMA}; SET LOCAL search_path TO {PLATFORM_SCHEMA}"
    )))
    .execute(&mut *tx)
    .await?;
    let applied = apply(&mut tx, sets, PLATFORM_SCHEMA, at).await?;
    tx.commit().await?;
    if applied > 0 {
        tracing::info!(applied, "platform migrations applied");
    }
    Ok(())
}

/// Tenant schemas in the shared workload database and in dedicated ones, a pool per target.
pub struct PgTenantDatabases {
    shared: PgPool,
    dedicated: HashMap<TenantId, PgPool>,
    /// Whether the shared workload database is the platform database.
    shared_is_platform: bool,
    outbox: Option<OutboxLink>,
}

impl fmt::Debug for PgTenantDatabases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTenantDatabases")
            .field("dedicated", &self.dedicated.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PgTenantDatabases {
    pub(crate) fn new(config: &PostgresConfig) -> Result<Self, Error> {
        // Without a workload URL, the platform database, without the platform search_path.
        let shared_url = config.workload_url.as_ref().unwrap_or(&config.platform_url);
        let shared = pool(
            config,
            connect_options(shared_url)?.application_name("edk-workload"),
        );
        // One pool per distinct URL, shared by the tenants that name it.
        let mut targets: HashMap<&str, PgPool> = HashMap::new();
        let mut dedicated = HashMap::new();
        for (tenant, url) in &config.dedicated {
            let target = match targets.get(url.expose_secret()) {
                Some(existing) => existing.clone(),
                None => {
                    let created = pool(
                        config,
                        connect_options(url)?.application_name("edk-workload"),
                    );
                    targets.insert(url.expose_secret(), created.clone());
                    created
                }
            };
            dedicated.insert(*tenant, target);
        }
        let shared_is_platform = config
            .workload_url
            .as_ref()
            .is_none_or(|url| url.expose_secret() == config.platform_url.expose_secret());
        Ok(Self {
            shared,
            dedicated,
            shared_is_platform,
            outbox: None,
        })
    }

    /// Lets the transactions of tenants whose schema is in the platform database append to
    /// the outbox.
    pub(crate) fn link_outbox(&mut self, link: OutboxLink) {
        if self.shared_is_platform {
            self.outbox = Some(link);
        }
    }

    fn pool_for(&self, tenant: TenantId) -> &PgPool {
        self.dedicated.get(&tenant).unwrap_or(&self.shared)
    }

    pub(crate) fn pool_stats(&self) -> Vec<super::PoolStats> {
        let mut stats = vec![super::PoolStats::of("workload", &self.shared)];
        // Tenants naming one URL share a pool (and its connect options): count it once.
        let mut seen = Vec::new();
        for pool in self.dedicated.values() {
            let options = pool.connect_options();
            if !seen
                .iter()
                .any(|known| std::sync::Arc::ptr_eq(known, &options))
            {
                seen.push(options);
                stats.push(super::PoolStats::of("dedicated", pool));
            }
        }
        stats
    }

    /// Begins a unit of work in the tenant's schema: a transaction on the tenant's target pool
    /// whose `search_path` is set, for this transaction only, to the tenant's schema. `BEGIN`
    /// and the `SET LOCAL` travel as one simple query: one round trip.
    ///
    /// # Errors
    /// [`Error::Database`] when the database does not answer.
    pub async fn begin(&self, tenant: &TenantContext) -> Result<PgTenantTx, Error> {
        let tx = self
            .pool_for(tenant.id())
            .begin_with(AssertSqlSafe(format!(
                "BEGIN; SET LOCAL search_path TO {}",
                tenant.id().schema_name()
            )))
            .await?;
        let outbox = if self.dedicated.contains_key(&tenant.id()) {
            None
        } else {
            self.outbox.clone()
        };
        Ok(BackendTx::new(tx, outbox))
    }

    pub(crate) async fn provision(
        &self,
        tenant: TenantId,
        sets: &[MigrationSet],
        at: DateTime<Utc>,
    ) -> Result<usize, Error> {
        let schema = tenant.schema_name();
        let mut tx = self.pool_for(tenant).begin().await?;
        lock(&mut tx, LOCK_TENANT, lock_key(tenant)).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut *tx)
        .await?;
        set_search_path(&mut tx, tenant).await?;
        let applied = apply(&mut tx, sets, &schema, at).await?;
        tx.commit().await?;
        Ok(applied)
    }

    pub(crate) async fn drop_tenant(&self, tenant: TenantId) -> Result<(), Error> {
        let mut tx = self.pool_for(tenant).begin().await?;
        lock(&mut tx, LOCK_TENANT, lock_key(tenant)).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            tenant.schema_name()
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A transaction in one tenant's schema.
pub type PgTenantTx = BackendTx<Postgres>;

const LOCK_PLATFORM: i32 = 0x4544_4b01;
const LOCK_TENANT: i32 = 0x4544_4b02;

/// Folds the tenant id to the 32-bit key of a two-key advisory lock. Collisions only
/// serialise two tenants' provisioning.
fn lock_key(tenant: TenantId) -> i32 {
    let folded = tenant
        .as_uuid()
        .as_bytes()
        .chunks_exact(4)
        .fold(0_u32, |acc, chunk| {
            acc ^ chunk.try_into().map(u32::from_le_bytes).unwrap_or_default()
        });
    i32::from_le_bytes(folded.to_le_bytes())
}

/// Takes a transaction-scoped advisory lock: concurrent provisioning of one tenant, from any
/// process, runs one at a time.
async fn lock(conn: &mut PgConnection, class: i32, key: i32) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// `SET LOCAL search_path`, built only from the validated tenant id.
async fn set_search_path(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET LOCAL search_path TO {}",
        tenant.schema_name()
    )))
    .execute(conn)
    .await?;
    Ok(())
}

const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS edk_migration_ledger (\
    component TEXT NOT NULL, \
    version BIGINT NOT NULL, \
    description TEXT NOT NULL, \
    checksum BYTEA NOT NULL, \
    applied_at TIMESTAMPTZ NOT NULL, \
    PRIMARY KEY (component, version))";

ledger_apply_fn!(PgConnection, Backend::Postgres, LEDGER_DDL);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_never_prints_urls() {
        let mut config = PostgresConfig::new(SecretString::from("postgres://u:hunter2@db/p"));
        config.workload_url = Some(SecretString::from("postgres://u:hunter2@db/w"));
        config.dedicated.insert(
            TenantId::generate(),
            SecretString::from("postgres://u:hunter2@db/d"),
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn lock_keys_differ_between_tenants() {
        let a = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let b = TenantId::from_uuid(uuid::Uuid::from_u128(2));
        assert_ne!(lock_key(a), lock_key(b));
        assert_eq!(lock_key(a), lock_key(a));
    }
}
