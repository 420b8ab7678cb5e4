//! Persistence: the platform registry and the tenant workload databases, for PostgreSQL and
//! SQLite.
//!
//! The platform store holds tenants, endpoint bindings and configuration
//! properties. Its SQL is the same on both backends (both accept `$n` placeholders, `ON
//! CONFLICT` and `RETURNING`), so one implementation is generated for each pool type by
//! `platform_store_impl!`; DDL and everything backend-specific (schemas, files, locks) lives in
//! the backend modules.
//!
//! Tenant data is reached only through [`TenantDatabases::begin`], which takes a
//! [`TenantContext`]: on PostgreSQL a transaction on the tenant's target pool with
//! `SET LOCAL search_path` to the tenant's schema, on SQLite a transaction on the tenant's own
//! file.

use std::fmt;
use std::ops::{Deref, DerefMut};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{TenantId, TenantSlug};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::config::ConfigProperty;
use crate::context::TenantContext;
use crate::endpoint::{EndpointBinding, ServiceType};
use crate::error::Error;
use crate::events::{Delivery, Event, EventId};
use crate::migrate::MigrationSet;
use crate::outbox::{OutboxEntry, OutboxLink, OutboxRow};
use crate::scheduler::JobState;
use crate::tenant::{Tenant, TenantStatus};

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// The platform registry: tenants, endpoint bindings and configuration properties. One method
/// call is one statement or one transaction.
#[async_trait]
pub(crate) trait PlatformStore: fmt::Debug + Send + Sync {
    /// The platform pool's connections.
    fn pool_stats(&self) -> PoolStats;
    /// Applies the platform-scope migrations (the registry's own first).
    async fn migrate(&self, sets: &[MigrationSet], at: DateTime<Utc>) -> Result<(), Error>;
    /// Inserts `tenant` unless its slug exists; returns the row that holds the slug.
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<Tenant, Error>;
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, Error>;
    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, Error>;
    async fn tenants(&self) -> Result<Vec<Tenant>, Error>;
    /// Opens a transaction on the platform database whose events go to the outbox through
    /// `link`.
    async fn begin(&self, link: OutboxLink) -> Result<PlatformTx, Error>;
    /// Moves a tenant from `from` to `to`, appending `event` in the same transaction; `None`
    /// (and no event) when it was not in `from` any more.
    async fn transition(
        &self,
        id: TenantId,
        from: TenantStatus,
        to: TenantStatus,
        at: DateTime<Utc>,
        event: &OutboxEntry,
    ) -> Result<Option<Tenant>, Error>;
    /// Removes a tenant and (by cascade) its bindings and configuration, appending `event`.
    async fn remove_tenant(&self, id: TenantId, event: &OutboxEntry) -> Result<(), Error>;
    async fn bindings(&self) -> Result<Vec<EndpointBinding>, Error>;
    async fn tenant_bindings(&self, id: TenantId) -> Result<Vec<EndpointBinding>, Error>;
    /// Inserts or replaces the tenant's binding for the binding's service, appending `event`.
    async fn put_binding(
        &self,
        binding: &EndpointBinding,
        at: DateTime<Utc>,
        event: &OutboxEntry,
    ) -> Result<(), Error>;
    /// Removes a binding, appending `event` when there was one.
    async fn remove_binding(
        &self,
        id: TenantId,
        service: ServiceType,
        event: &OutboxEntry,
    ) -> Result<bool, Error>;
    /// Platform properties for `None`, else the tenant's.
    async fn config(&self, tenant: Option<TenantId>) -> Result<Vec<ConfigProperty>, Error>;
    /// Writes a property. `expected`: `None` writes unconditionally, `Some(0)` only creates,
    /// `Some(v)` only replaces version `v`. `None` is returned (and no event appended) when
    /// the condition failed.
    async fn put_config(
        &self,
        tenant: Option<TenantId>,
        key: &str,
        value: &Value,
        expected: Option<i64>,
        at: DateTime<Utc>,
        event: &OutboxEntry,
    ) -> Result<Option<ConfigProperty>, Error>;
    /// Takes the lease of job `name` for `holder` until `lease_until`, in one conditional
    /// upsert that succeeds only if the job is due (never run, or last run at or before
    /// `due_before`) and its lease is free or expired at `now`. `false` when it is not.
    async fn acquire_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        due_before: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, Error>;
    /// Extends a lease `holder` still holds; `false` when it lost it.
    async fn renew_job(
        &self,
        name: &str,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, Error>;
    /// Releases a lease `holder` still holds, recording `ran_at` as the last run when given;
    /// `false` when it lost the lease.
    async fn finish_job(
        &self,
        name: &str,
        holder: &str,
        ran_at: Option<DateTime<Utc>>,
    ) -> Result<bool, Error>;
    /// Every job's recorded state, by name.
    async fn jobs(&self) -> Result<Vec<JobState>, Error>;
    /// The first `limit` undelivered outbox events, in the order they were appended.
    async fn pending_events(&self, limit: i64) -> Result<Vec<OutboxRow>, Error>;
    /// Records that outbox event `id` (the row) was published.
    async fn event_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), Error>;
    /// Records a failed attempt at outbox event `id`, to be tried again at `retry_at`.
    async fn event_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), Error>;
    /// Deletes outbox events delivered before `before`; how many.
    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, Error>;
}

/// The connections of one database pool, for metrics: how many are open and how many of
/// those are idle, against the pool's maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// `platform`, `workload` (the shared tenant database) or `dedicated` (a tenant's own).
    pub pool: &'static str,
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

impl PoolStats {
    pub(crate) fn of<DB: sqlx::Database>(pool: &'static str, of: &sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            size: of.size(),
            idle: u32::try_from(of.num_idle()).unwrap_or(u32::MAX),
            max: of.options().get_max_connections(),
        }
    }
}

/// The tenant workload databases of one backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum TenantDatabases {
    /// One schema per tenant in a shared or dedicated PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgTenantDatabases),
    /// One SQLite file per tenant.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteTenantDatabases),
}

impl TenantDatabases {
    /// The workload pools' connections: on PostgreSQL the shared pool, then each dedicated
    /// one; on SQLite one `workload` entry summing the tenants' files.
    #[must_use]
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(dbs) => dbs.pool_stats(),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(dbs) => dbs.pool_stats(),
        }
    }

    /// Begins a unit of work in the tenant's schema or file.
    ///
    /// # Errors
    /// [`Error::Database`] when the database does not answer.
    pub async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, Error> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(dbs) => TenantTx::Postgres(dbs.begin(tenant).await?),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(dbs) => TenantTx::Sqlite(dbs.begin(tenant).await?),
        })
    }

    pub(crate) async fn provision(
        &self,
        tenant: TenantId,
        sets: &[MigrationSet],
        at: DateTime<Utc>,
    ) -> Result<usize, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(dbs) => dbs.provision(tenant, sets, at).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(dbs) => dbs.provision(tenant, sets, at).await,
        }
    }

    pub(crate) async fn drop_tenant(&self, tenant: TenantId) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(dbs) => dbs.drop_tenant(tenant).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(dbs) => dbs.drop_tenant(tenant).await,
        }
    }
}

/// A transaction on one backend, scoped to one tenant by the [`TenantDatabases::begin`] that
/// opened it, or to the platform database by [`crate::Tenancy::begin_platform`].
/// Dereferences to the connection, so it is used as `query.execute(&mut *tx)`.
///
/// Where the platform's outbox is in the same database (the platform transaction; on
/// PostgreSQL also the tenants whose schema is in the platform database),
/// `append_event` writes a domain event in this transaction: it exists if and only if the
/// change commits, is delivered in this process at commit and to the other replicas by the
/// relay ([`crate::outbox`]).
#[derive(Debug)]
pub struct BackendTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    outbox: Option<OutboxLink>,
    appended: Vec<Delivery>,
}

impl<DB: sqlx::Database> BackendTx<DB> {
    pub(crate) const fn new(
        tx: sqlx::Transaction<'static, DB>,
        outbox: Option<OutboxLink>,
    ) -> Self {
        Self {
            tx,
            outbox,
            appended: Vec::new(),
        }
    }

    /// Commits; then delivers the appended events in this process and wakes the relay.
    ///
    /// # Errors
    /// [`Error::Database`] when the commit fails (nothing was appended then).
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await?;
        if let Some(link) = &self.outbox {
            link.committed(self.appended);
        }
        Ok(())
    }

    /// Whether `append_event` can write to the outbox from this transaction.
    #[must_use]
    pub const fn has_outbox(&self) -> bool {
        self.outbox.is_some()
    }

    /// The link and the entry for a new event, or [`Error::OutboxUnreachable`].
    fn prepare_event(&self, tenant: Option<TenantId>, event: Event) -> Result<OutboxEntry, Error> {
        let link = self.outbox.as_ref().ok_or(Error::OutboxUnreachable)?;
        Ok(link.entry(tenant, event))
    }
}

impl<DB: sqlx::Database> Deref for BackendTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> DerefMut for BackendTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// A unit of work in the platform database; dropped without [`PlatformTx::commit`], it rolls
/// back. Opened by [`crate::Tenancy::begin_platform`].
#[derive(Debug)]
#[non_exhaustive]
pub enum PlatformTx {
    /// A PostgreSQL transaction with `search_path` set to the platform schema.
    #[cfg(feature = "postgres")]
    Postgres(BackendTx<sqlx::Postgres>),
    /// A transaction on `platform.db`.
    #[cfg(feature = "sqlite")]
    Sqlite(BackendTx<sqlx::Sqlite>),
}

impl PlatformTx {
    /// Writes `event` to the outbox in this transaction, ordered with the other events of
    /// `tenant` (`None`: the platform's); returns its id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn append_event(
        &mut self,
        tenant: Option<TenantId>,
        event: Event,
    ) -> Result<EventId, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(tx) => tx.append_event(tenant, event).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => tx.append_event(tenant, event).await,
        }
    }

    /// Commits; then delivers the appended events in this process and wakes the relay.
    ///
    /// # Errors
    /// [`Error::Database`] when the commit fails.
    pub async fn commit(self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(tx) => tx.commit().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// A unit of work in one tenant's schema or file; dropped without [`TenantTx::commit`], it
/// rolls back.
#[derive(Debug)]
#[non_exhaustive]
pub enum TenantTx {
    /// A PostgreSQL transaction with `search_path` set to the tenant's schema.
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgTenantTx),
    /// A transaction on the tenant's SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteTenantTx),
}

impl TenantTx {
    /// Writes `event` to the platform's outbox in this transaction, ordered with the other
    /// events of `tenant` (`None`: the platform's); returns its id.
    ///
    /// # Errors
    /// [`Error::OutboxUnreachable`] when the outbox is in another database than this
    /// tenant's (SQLite, a dedicated or separate workload database), [`Error::Database`].
    pub async fn append_event(
        &mut self,
        tenant: Option<TenantId>,
        event: Event,
    ) -> Result<EventId, Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(tx) => tx.append_event(tenant, event).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => {
                let _ = (tenant, event);
                Err(Error::OutboxUnreachable)
            }
        }
    }

    /// Commits the unit of work.
    ///
    /// # Errors
    /// [`Error::Database`] when the commit fails.
    pub async fn commit(self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(tx) => tx.commit().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(tx) => tx.commit().await,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: Uuid,
    slug: String,
    display_name: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = Error;

    fn try_from(row: TenantRow) -> Result<Self, Error> {
        Ok(Self {
            id: TenantId::from_uuid(row.id),
            slug: TenantSlug::new(row.slug).map_err(corrupt)?,
            display_name: row.display_name,
            status: row.status.parse().map_err(corrupt)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct BindingRow {
    tenant_id: Uuid,
    service: String,
    scheme: String,
    host: String,
    port: i32,
    path_prefix: String,
    well_known: String,
}

impl TryFrom<BindingRow> for EndpointBinding {
    type Error = Error;

    fn try_from(row: BindingRow) -> Result<Self, Error> {
        let port = u16::try_from(row.port).map_err(corrupt)?;
        Self::with_scheme(
            TenantId::from_uuid(row.tenant_id),
            row.service.parse().map_err(corrupt)?,
            row.scheme.parse().map_err(corrupt)?,
            &row.host,
            Some(port),
            &row.path_prefix,
            row.well_known.parse().map_err(corrupt)?,
        )
        .map_err(corrupt)
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ConfigRow {
    name: String,
    value: Json<Value>,
    version: i64,
}

impl From<ConfigRow> for ConfigProperty {
    fn from(row: ConfigRow) -> Self {
        Self {
            key: row.name,
            value: row.value.0,
            version: row.version,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    name: String,
    last_run_at: Option<DateTime<Utc>>,
    lease_holder: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for JobState {
    fn from(row: JobRow) -> Self {
        Self {
            name: row.name,
            last_run_at: row.last_run_at,
            lease_holder: row.lease_holder,
            lease_expires_at: row.lease_expires_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OutboxDbRow {
    id: i64,
    event_id: Uuid,
    origin: Uuid,
    tenant_id: Option<Uuid>,
    payload: Json<Value>,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
}

impl From<OutboxDbRow> for OutboxRow {
    fn from(row: OutboxDbRow) -> Self {
        Self {
            row: row.id,
            id: EventId::from_uuid(row.event_id),
            origin: row.origin,
            tenant: row.tenant_id.map(TenantId::from_uuid),
            payload: row.payload.0,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
        }
    }
}

fn corrupt(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Database {
        source: sqlx::Error::Decode(Box::new(err)),
    }
}

/// The port stored for a binding: the effective one, so that lookups compare one column.
pub(crate) fn stored_port(binding: &EndpointBinding) -> i32 {
    i32::from(binding.effective_port())
}

pub(crate) const TENANT_COLUMNS: &str =
    "id, slug, display_name, status, created_at, updated_at, deleted_at";

/// Generates the [`PlatformStore`] implementation for a store struct with a `pool` field.
/// `$migrate` is the backend's platform migration function.
macro_rules! platform_store_impl {
    ($store:ty, $migrate:path) => {
        #[async_trait::async_trait]
        impl $crate::store::PlatformStore for $store {
            fn pool_stats(&self) -> $crate::store::PoolStats {
                $crate::store::PoolStats::of("platform", &self.pool)
            }

            async fn migrate(
                &self,
                sets: &[$crate::migrate::MigrationSet],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::error::Error> {
                $migrate(&self.pool, sets, at).await
            }

            async fn insert_tenant(
                &self,
                tenant: &$crate::tenant::Tenant,
            ) -> Result<$crate::tenant::Tenant, $crate::error::Error> {
                sqlx::query(
                    "INSERT INTO tenant (id, slug, display_name, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (slug) DO NOTHING",
                )
                .bind(tenant.id.as_uuid())
                .bind(tenant.slug.as_str())
                .bind(&tenant.display_name)
                .bind(tenant.status.as_str())
                .bind(tenant.created_at)
                .execute(&self.pool)
                .await?;
                self.tenant_by_slug(&tenant.slug)
                    .await?
                    .ok_or($crate::error::Error::TenantNotFound)
            }

            async fn tenant(
                &self,
                id: edk_core::TenantId,
            ) -> Result<Option<$crate::tenant::Tenant>, $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM tenant WHERE id = $1",
                    $crate::store::TENANT_COLUMNS
                ));
                sqlx::query_as::<_, $crate::store::TenantRow>(sql)
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            async fn tenant_by_slug(
                &self,
                slug: &edk_core::TenantSlug,
            ) -> Result<Option<$crate::tenant::Tenant>, $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM tenant WHERE slug = $1",
                    $crate::store::TENANT_COLUMNS
                ));
                sqlx::query_as::<_, $crate::store::TenantRow>(sql)
                    .bind(slug.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            async fn tenants(&self) -> Result<Vec<$crate::tenant::Tenant>, $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM tenant ORDER BY slug",
                    $crate::store::TENANT_COLUMNS
                ));
                sqlx::query_as::<_, $crate::store::TenantRow>(sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect()
            }

            async fn begin(
                &self,
                link: $crate::outbox::OutboxLink,
            ) -> Result<$crate::store::PlatformTx, $crate::error::Error> {
                let tx = self.pool.begin().await?;
                Ok(platform_tx($crate::store::BackendTx::new(tx, Some(link))))
            }

            async fn transition(
                &self,
                id: edk_core::TenantId,
                from: $crate::tenant::TenantStatus,
                to: $crate::tenant::TenantStatus,
                at: chrono::DateTime<chrono::Utc>,
                event: &$crate::outbox::OutboxEntry,
            ) -> Result<Option<$crate::tenant::Tenant>, $crate::error::Error> {
                let deleted_at = (to == $crate::tenant::TenantStatus::Deleted).then_some(at);
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE tenant SET status = $1, updated_at = $2, deleted_at = $3 \
                     WHERE id = $4 AND status = $5 RETURNING {}",
                    $crate::store::TENANT_COLUMNS
                ));
                let mut tx = self.pool.begin().await?;
                let row = sqlx::query_as::<_, $crate::store::TenantRow>(sql)
                    .bind(to.as_str())
                    .bind(at)
                    .bind(deleted_at)
                    .bind(id.as_uuid())
                    .bind(from.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                insert_outbox(&mut tx, event).await?;
                tx.commit().await?;
                row.try_into().map(Some)
            }

            async fn remove_tenant(
                &self,
                id: edk_core::TenantId,
                event: &$crate::outbox::OutboxEntry,
            ) -> Result<(), $crate::error::Error> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM tenant WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                insert_outbox(&mut tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn bindings(
                &self,
            ) -> Result<Vec<$crate::endpoint::EndpointBinding>, $crate::error::Error> {
                sqlx::query_as::<_, $crate::store::BindingRow>(
                    "SELECT tenant_id, service, scheme, host, port, path_prefix, well_known \
                     FROM tenant_public_endpoint",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn tenant_bindings(
                &self,
                id: edk_core::TenantId,
            ) -> Result<Vec<$crate::endpoint::EndpointBinding>, $crate::error::Error> {
                sqlx::query_as::<_, $crate::store::BindingRow>(
                    "SELECT tenant_id, service, scheme, host, port, path_prefix, well_known \
                     FROM tenant_public_endpoint WHERE tenant_id = $1",
                )
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn put_binding(
                &self,
                binding: &$crate::endpoint::EndpointBinding,
                at: chrono::DateTime<chrono::Utc>,
                event: &$crate::outbox::OutboxEntry,
            ) -> Result<(), $crate::error::Error> {
                let mut tx = self.pool.begin().await?;
                let result = sqlx::query(
                    "INSERT INTO tenant_public_endpoint \
                     (tenant_id, service, host, port, path_prefix, well_known, updated_at, \
                     scheme) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, service) DO UPDATE SET host = excluded.host, \
                     port = excluded.port, path_prefix = excluded.path_prefix, \
                     well_known = excluded.well_known, updated_at = excluded.updated_at, \
                     scheme = excluded.scheme",
                )
                .bind(binding.tenant().as_uuid())
                .bind(binding.service().as_str())
                .bind(binding.host())
                .bind($crate::store::stored_port(binding))
                .bind(binding.path_prefix())
                .bind(binding.well_known().as_str())
                .bind(at)
                .bind(binding.scheme().as_str())
                .execute(&mut *tx)
                .await;
                match result {
                    Ok(_) => {
                        insert_outbox(&mut tx, event).await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    Err(err) if $crate::error::is_unique_violation(&err) => {
                        Err($crate::error::Error::BindingTaken)
                    }
                    Err(sqlx::Error::Database(db))
                        if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
                    {
                        Err($crate::error::Error::TenantNotFound)
                    }
                    Err(err) => Err(err.into()),
                }
            }

            async fn remove_binding(
                &self,
                id: edk_core::TenantId,
                service: $crate::endpoint::ServiceType,
                event: &$crate::outbox::OutboxEntry,
            ) -> Result<bool, $crate::error::Error> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "DELETE FROM tenant_public_endpoint WHERE tenant_id = $1 AND service = $2",
                )
                .bind(id.as_uuid())
                .bind(service.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                insert_outbox(&mut tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn config(
                &self,
                tenant: Option<edk_core::TenantId>,
            ) -> Result<Vec<$crate::config::ConfigProperty>, $crate::error::Error> {
                let rows = match tenant {
                    None => sqlx::query_as::<_, $crate::store::ConfigRow>(
                        "SELECT name, value, version FROM platform_config_property ORDER BY name",
                    )
                    .fetch_all(&self.pool)
                    .await?,
                    Some(id) => {
                        sqlx::query_as::<_, $crate::store::ConfigRow>(
                            "SELECT name, value, version FROM tenant_config_property \
                             WHERE tenant_id = $1 ORDER BY name",
                        )
                        .bind(id.as_uuid())
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn put_config(
                &self,
                tenant: Option<edk_core::TenantId>,
                key: &str,
                value: &serde_json::Value,
                expected: Option<i64>,
                at: chrono::DateTime<chrono::Utc>,
                event: &$crate::outbox::OutboxEntry,
            ) -> Result<Option<$crate::config::ConfigProperty>, $crate::error::Error> {
                let sql = $crate::store::config_sql(tenant.is_some(), expected);
                let mut query =
                    sqlx::query_as::<_, $crate::store::ConfigRow>(sqlx::AssertSqlSafe(sql))
                        .bind(key)
                        .bind(sqlx::types::Json(value))
                        .bind(at);
                if let Some(id) = tenant {
                    query = query.bind(*id.as_uuid());
                }
                if let Some(version) = expected.filter(|v| *v > 0) {
                    query = query.bind(version);
                }
                let mut tx = self.pool.begin().await?;
                let result = query.fetch_optional(&mut *tx).await;
                match result {
                    Ok(None) => Ok(None),
                    Ok(Some(row)) => {
                        insert_outbox(&mut tx, event).await?;
                        tx.commit().await?;
                        Ok(Some(row.into()))
                    }
                    Err(sqlx::Error::Database(db))
                        if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
                    {
                        Err($crate::error::Error::TenantNotFound)
                    }
                    Err(err) => Err(err.into()),
                }
            }

            async fn acquire_job(
                &self,
                name: &str,
                holder: &str,
                now: chrono::DateTime<chrono::Utc>,
                due_before: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::error::Error> {
                let taken = sqlx::query(
                    "INSERT INTO scheduler_job (name, lease_holder, lease_expires_at) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET lease_holder = excluded.lease_holder, \
                     lease_expires_at = excluded.lease_expires_at \
                     WHERE (scheduler_job.last_run_at IS NULL \
                     OR scheduler_job.last_run_at <= $4) \
                     AND (scheduler_job.lease_holder IS NULL \
                     OR scheduler_job.lease_expires_at <= $5) \
                     RETURNING name",
                )
                .bind(name)
                .bind(holder)
                .bind(lease_until)
                .bind(due_before)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(taken.is_some())
            }

            async fn renew_job(
                &self,
                name: &str,
                holder: &str,
                lease_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::error::Error> {
                let done = sqlx::query(
                    "UPDATE scheduler_job SET lease_expires_at = $3 \
                     WHERE name = $1 AND lease_holder = $2",
                )
                .bind(name)
                .bind(holder)
                .bind(lease_until)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn finish_job(
                &self,
                name: &str,
                holder: &str,
                ran_at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> Result<bool, $crate::error::Error> {
                let done = sqlx::query(
                    "UPDATE scheduler_job SET last_run_at = COALESCE($3, last_run_at), \
                     lease_holder = NULL, lease_expires_at = NULL \
                     WHERE name = $1 AND lease_holder = $2",
                )
                .bind(name)
                .bind(holder)
                .bind(ran_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn jobs(
                &self,
            ) -> Result<Vec<$crate::scheduler::JobState>, $crate::error::Error> {
                Ok(sqlx::query_as::<_, $crate::store::JobRow>(
                    "SELECT name, last_run_at, lease_holder, lease_expires_at \
                     FROM scheduler_job ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            }

            async fn pending_events(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::outbox::OutboxRow>, $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT id, event_id, origin, tenant_id, payload, attempts, next_attempt_at                      FROM {OUTBOX_TABLE} WHERE delivered_at IS NULL ORDER BY id LIMIT $1"
                ));
                Ok(sqlx::query_as::<_, $crate::store::OutboxDbRow>(sql)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect())
            }

            async fn event_delivered(
                &self,
                id: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE {OUTBOX_TABLE} SET delivered_at = $2, attempts = attempts + 1, \
                     last_error = NULL WHERE id = $1"
                ));
                sqlx::query(sql)
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn event_failed(
                &self,
                id: i64,
                retry_at: chrono::DateTime<chrono::Utc>,
                error: &str,
            ) -> Result<(), $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, next_attempt_at = $2, \
                     last_error = $3 WHERE id = $1 AND delivered_at IS NULL"
                ));
                sqlx::query(sql)
                    .bind(id)
                    .bind(retry_at)
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn purge_delivered_events(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::error::Error> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {OUTBOX_TABLE} WHERE delivered_at IS NOT NULL \
                     AND delivered_at < $1"
                ));
                let done = sqlx::query(sql).bind(before).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(crate) use platform_store_impl;

/// Generates `apply`, which applies what a schema's (or file's) ledger does not record yet,
/// in order, recording each migration. The caller holds the lock, has opened the transaction
/// and, on PostgreSQL, has set the search path.
macro_rules! ledger_apply_fn {
    ($conn:ty, $backend:expr, $ddl:expr) => {
        async fn apply(
            conn: &mut $conn,
            sets: &[$crate::migrate::MigrationSet],
            schema: &str,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<usize, $crate::error::Error> {
            sqlx::raw_sql($ddl).execute(&mut *conn).await?;
            let applied = sqlx::query_as::<_, $crate::migrate::LedgerRow>(
                "SELECT component, version, checksum FROM edk_migration_ledger",
            )
            .fetch_all(&mut *conn)
            .await?;
            let pending = $crate::migrate::pending(sets, $backend, &applied, schema)?;
            for (component, migration) in &pending {
                tracing::debug!(
                    schema,
                    component,
                    version = migration.version,
                    "applying migration"
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql.clone()))
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO edk_migration_ledger \
                     (component, version, description, checksum, applied_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(*component)
                .bind(migration.version)
                .bind(&migration.description)
                .bind(&migration.checksum)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            Ok(pending.len())
        }
    };
}
pub(crate) use ledger_apply_fn;

/// The statement writing a configuration property. Parameters: `$1` key, `$2` value, `$3`
/// time, then the tenant id (tenant scope only), then the expected version (when it is set
/// and not 0).
pub(crate) fn config_sql(tenant_scope: bool, expected: Option<i64>) -> String {
    let (table, owner_col, owner_val, owner_cond, conflict, version_param) = if tenant_scope {
        (
            "tenant_config_property",
            "tenant_id, ",
            "$4, ",
            "tenant_id = $4 AND ",
            "tenant_id, name",
            "$5",
        )
    } else {
        ("platform_config_property", "", "", "", "name", "$4")
    };
    let returning = "RETURNING name, value, version";
    match expected {
        None => format!(
            "INSERT INTO {table} ({owner_col}name, value, version, updated_at) \
             VALUES ({owner_val}$1, $2, 1, $3) ON CONFLICT ({conflict}) DO UPDATE SET \
             value = excluded.value, version = {table}.version + 1, \
             updated_at = excluded.updated_at {returning}"
        ),
        Some(0) => format!(
            "INSERT INTO {table} ({owner_col}name, value, version, updated_at) \
             VALUES ({owner_val}$1, $2, 1, $3) ON CONFLICT ({conflict}) DO NOTHING {returning}"
        ),
        Some(_) => format!(
            "UPDATE {table} SET value = $2, version = version + 1, updated_at = $3 \
             WHERE {owner_cond}name = $1 AND version = {version_param} {returning}"
        ),
    }
}
