//! SQLite, the embedded default: `platform.db` for the registry and `tenants/<32 hex>.db` per
//! tenant, in one directory. WAL, foreign keys on, a busy timeout.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use edk_core::TenantId;
use serde::Deserialize;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};

use crate::context::TenantContext;
use crate::error::Error;
use crate::events::{Event, EventId};
use crate::migrate::{Backend, MigrationSet};
use crate::outbox::OutboxEntry;
use crate::store::{BackendTx, PlatformTx, ledger_apply_fn, platform_store_impl};

/// Where the SQLite files are.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The directory holding `platform.db` and `tenants/`; created if missing.
    pub directory: PathBuf,
    /// Connections per file.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl SqliteConfig {
    /// Files under `directory`.
    #[must_use]
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            max_connections: default_max_connections(),
        }
    }
}

const fn default_max_connections() -> u32 {
    4
}

fn pool(path: &Path, max_connections: u32) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_lazy_with(options)
}

fn io_error(err: std::io::Error) -> Error {
    Error::Database {
        source: sqlx::Error::Io(err),
    }
}

/// Creates the directories and opens the platform file.
pub(crate) async fn platform_pool(config: &SqliteConfig) -> Result<SqlitePool, Error> {
    tokio::fs::create_dir_all(config.directory.join("tenants"))
        .await
        .map_err(io_error)?;
    Ok(pool(
        &config.directory.join("platform.db"),
        config.max_connections,
    ))
}

/// The platform registry on SQLite.
#[derive(Debug)]
pub(crate) struct SqlitePlatformStore {
    pool: SqlitePool,
}

impl SqlitePlatformStore {
    pub(crate) const fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

platform_store_impl!(SqlitePlatformStore, migrate_platform);

/// The outbox, in `platform.db`.
const OUTBOX_TABLE: &str = "event_outbox";

const fn platform_tx(tx: BackendTx<Sqlite>) -> PlatformTx {
    PlatformTx::Sqlite(tx)
}

/// Appends `entry` to the outbox in the transaction of `conn`.
async fn insert_outbox(conn: &mut SqliteConnection, entry: &OutboxEntry) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO event_outbox \
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

impl BackendTx<Sqlite> {
    /// Writes `event` to the outbox in this transaction (a transaction on `platform.db`),
    /// ordered with the other events of `tenant` (`None`: the platform's); returns its id.
    ///
    /// # Errors
    /// [`Error::OutboxUnreachable`] for a tenant file's transaction (the outbox is in
    /// `platform.db`), [`Error::Database`].
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
    pool: &SqlitePool,
    sets: &[MigrationSet],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let applied = apply(&mut tx, sets, "platform.db", at).await?;
    tx.commit().await?;
    if applied > 0 {
        tracing::info!(applied, "platform migrations applied");
    }
    Ok(())
}

/// One SQLite file per tenant, each with its own small pool, opened on first use.
pub struct SqliteTenantDatabases {
    directory: PathBuf,
    max_connections: u32,
    pools: Mutex<HashMap<TenantId, SqlitePool>>,
}

impl fmt::Debug for SqliteTenantDatabases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTenantDatabases")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl SqliteTenantDatabases {
    pub(crate) fn new(config: &SqliteConfig) -> Self {
        Self {
            directory: config.directory.join("tenants"),
            max_connections: config.max_connections,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, tenant: TenantId) -> PathBuf {
        self.directory
            .join(format!("{}.db", tenant.as_uuid().simple()))
    }

    fn pool_for(&self, tenant: TenantId) -> SqlitePool {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools
            .entry(tenant)
            .or_insert_with(|| pool(&self.file(tenant), self.max_connections))
            .clone()
    }

    pub(crate) fn pool_stats(&self) -> Vec<super::PoolStats> {
        let pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = super::PoolStats {
            pool: "workload",
            size: 0,
            idle: 0,
            max: 0,
        };
        for pool in pools.values() {
            let one = super::PoolStats::of("workload", pool);
            total.size = total.size.saturating_add(one.size);
            total.idle = total.idle.saturating_add(one.idle);
            total.max = total.max.saturating_add(one.max);
        }
        vec![total]
    }

    /// Begins a unit of work in the tenant's file.
    ///
    /// # Errors
    /// [`Error::Database`] when the file cannot be opened.
    pub async fn begin(&self, tenant: &TenantContext) -> Result<SqliteTenantTx, Error> {
        let tx = self.pool_for(tenant.id()).begin().await?;
        Ok(BackendTx::new(tx, None))
    }

    pub(crate) async fn provision(
        &self,
        tenant: TenantId,
        sets: &[MigrationSet],
        at: DateTime<Utc>,
    ) -> Result<usize, Error> {
        // BEGIN IMMEDIATE takes the file's write lock: provisioning the same tenant from two
        // processes runs one at a time.
        let mut tx = self.pool_for(tenant).begin_with("BEGIN IMMEDIATE").await?;
        let name = format!("{}.db", tenant.as_uuid().simple());
        let applied = apply(&mut tx, sets, &name, at).await?;
        tx.commit().await?;
        Ok(applied)
    }

    pub(crate) async fn drop_tenant(&self, tenant: TenantId) -> Result<(), Error> {
        let pool = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant);
        if let Some(pool) = pool {
            pool.close().await;
        }
        let file = self.file(tenant);
        for suffix in ["", "-wal", "-shm"] {
            let mut path = file.clone().into_os_string();
            path.push(suffix);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_error(err)),
            }
        }
        Ok(())
    }
}

/// A transaction on one tenant's file.
pub type SqliteTenantTx = BackendTx<Sqlite>;

const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS edk_migration_ledger (\
    component TEXT NOT NULL, \
    version INTEGER NOT NULL, \
    description TEXT NOT NULL, \
    checksum BLOB NOT NULL, \
    applied_at TEXT NOT NULL, \
    PRIMARY KEY (component, version))";

ledger_apply_fn!(SqliteConnection, Backend::Sqlite, LEDGER_DDL);
