//! [`Tenancy`]: the registry, the router and the caches, on one backend.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{Clock, ErrorChain, SystemClock, TenantId, TenantSlug};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigProperty, ConfigSchema, TenantConfig};
use crate::context::{Resolution, TenantContext};
use crate::endpoint::{
    EndpointBinding, EndpointRequest, EndpointScheme, RoutingTable, ServiceType,
};
use crate::error::{ConfigError, Error, ResolveError};
use crate::events::{BackgroundTask, Event, EventBus};
use crate::migrate::{self, MigrationScope, MigrationSet};
use crate::outbox::{OutboxEntry, OutboxLink, OutboxRelay};
use crate::store::{PlatformStore, PlatformTx, TenantDatabases};
use crate::tenant::{Tenant, TenantStatus, check_display_name};

/// Which backend holds the platform registry and the tenants' data.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum DatabaseConfig {
    /// PostgreSQL: schema per tenant.
    #[cfg(feature = "postgres")]
    Postgres(crate::store::postgres::PostgresConfig),
    /// SQLite: file per tenant.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::store::sqlite::SqliteConfig),
}

/// Behaviour that deployments tune.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenancyOptions {
    /// How long cached routes, tenants and configuration are trusted without an event: the
    /// bound on staleness when a notification is missed.
    #[serde(with = "seconds")]
    pub cache_ttl: Duration,
    /// How long a deleted tenant's data is kept before [`Tenancy::purge_deleted`] drops it.
    #[serde(with = "seconds")]
    pub delete_grace: Duration,
    /// How many tenants [`Tenancy::upgrade_all`] migrates at once.
    pub upgrade_concurrency: usize,
    /// Serve requests that match no binding as this tenant (through its own binding for the
    /// service). For the embedded single-tenant default only; off unless set, logged at WARN.
    pub dangerous_fallback_tenant: Option<TenantSlug>,
    /// Whether [`Tenancy::start`] runs an [`OutboxRelay`] (the replicas take turns through
    /// its lease). On by default; a deployment that runs its relay elsewhere turns it off.
    pub outbox_relay: bool,
}

impl Default for TenancyOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(30),
            delete_grace: Duration::from_secs(7 * 24 * 3600),
            upgrade_concurrency: 4,
            dangerous_fallback_tenant: None,
            outbox_relay: true,
        }
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// What tenant-facing code needs from the directory: route a request, or get the context of
/// a tenant named by a token or a job. Implemented by [`Tenancy`]; a remote implementation
/// talks to the platform service.
#[async_trait]
pub trait TenantDirectory: fmt::Debug + Send + Sync {
    /// Routes a request for `service` to its tenant.
    ///
    /// # Errors
    /// [`ResolveError`]; unknown endpoints and tenants that do not serve read the same.
    async fn resolve(
        &self,
        service: ServiceType,
        request: &EndpointRequest,
    ) -> Result<Resolution, ResolveError>;

    /// The context of a serving tenant, without an endpoint.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`], [`Error::TenantNotActive`], or a store error.
    async fn context(&self, tenant: TenantId) -> Result<TenantContext, Error>;

    /// The context of a serving tenant with its binding for `service`, to build URLs from.
    ///
    /// # Errors
    /// As [`TenantDirectory::context`], and [`Error::NoBinding`].
    async fn context_for_service(
        &self,
        tenant: TenantId,
        service: ServiceType,
    ) -> Result<TenantContext, Error>;
}

/// Counts from [`Tenancy::upgrade_all`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Tenants checked.
    pub tenants: usize,
    /// Migrations applied across them.
    pub applied: usize,
}

/// Builds a [`Tenancy`].
#[derive(Debug)]
pub struct TenancyBuilder {
    database: DatabaseConfig,
    clock: Arc<dyn Clock>,
    options: TenancyOptions,
    migrations: Vec<MigrationSet>,
    config: ConfigSchema,
    directory: Option<Arc<dyn TenantDirectory>>,
}

impl TenancyBuilder {
    /// Answers the [`TenantDirectory`] methods (routing, tenant contexts) from `directory`
    /// instead of the platform database: a runtime service in a split deployment passes the
    /// platform's remote directory (`grpc::RemoteTenantDirectory`, feature `grpc`). The
    /// registry and lifecycle methods still use the database.
    #[must_use]
    pub fn directory(mut self, directory: Arc<dyn TenantDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The clock (the system clock by default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Options.
    #[must_use]
    pub fn options(mut self, options: TenancyOptions) -> Self {
        self.options = options;
        self
    }

    /// Registers a crate's migrations.
    #[must_use]
    pub fn migrations(mut self, set: MigrationSet) -> Self {
        self.migrations.push(set);
        self
    }

    /// The configuration keys tenants and the platform may set.
    #[must_use]
    pub fn config_schema(mut self, schema: ConfigSchema) -> Self {
        self.config = schema;
        self
    }

    /// Connects, applies the platform migrations and returns the directory. Tenant schemas are
    /// brought up to date by [`Tenancy::upgrade_all`].
    ///
    /// # Errors
    /// [`Error::Migration`] for duplicate components or a changed checksum,
    /// [`Error::Database`] when the platform database cannot be reached.
    pub async fn build(self) -> Result<Tenancy, Error> {
        let own = registry_migrations()?;
        let (platform_sets, tenant_sets): (Vec<_>, Vec<_>) = self
            .migrations
            .into_iter()
            .partition(|set| set.scope() == MigrationScope::Platform);
        let platform_sets: Vec<_> = std::iter::once(own).chain(platform_sets).collect();
        migrate::check_unique(&platform_sets)?;
        migrate::check_unique(&tenant_sets)?;
        let at: DateTime<Utc> = self.clock.now().into();
        let wake = Arc::new(tokio::sync::Notify::new());

        let (platform, platform_pool, workload, bus, listener): (
            Arc<dyn PlatformStore>,
            PlatformPool,
            TenantDatabases,
            Arc<dyn EventBus>,
            Listener,
        ) = match &self.database {
            #[cfg(feature = "postgres")]
            DatabaseConfig::Postgres(config) => {
                use crate::store::postgres;
                let pool = postgres::platform_pool(config)?;
                let bus = Arc::new(crate::events::PgEventBus::new(
                    config,
                    pool.clone(),
                    Arc::clone(&self.clock),
                )?);
                let mut workload = postgres::PgTenantDatabases::new(config)?;
                workload.link_outbox(OutboxLink::new(
                    Arc::clone(&bus) as Arc<dyn EventBus>,
                    Arc::clone(&wake),
                    Arc::clone(&self.clock),
                ));
                (
                    Arc::new(postgres::PgPlatformStore::new(pool.clone())),
                    PlatformPool::Postgres(pool),
                    TenantDatabases::Postgres(workload),
                    Arc::clone(&bus) as Arc<dyn EventBus>,
                    Listener::Postgres(bus),
                )
            }
            #[cfg(feature = "sqlite")]
            DatabaseConfig::Sqlite(config) => {
                use crate::store::sqlite;
                let pool = sqlite::platform_pool(config).await?;
                (
                    Arc::new(sqlite::SqlitePlatformStore::new(pool.clone())),
                    PlatformPool::Sqlite(pool),
                    TenantDatabases::Sqlite(sqlite::SqliteTenantDatabases::new(config)),
                    Arc::new(crate::events::InProcessBus::new()),
                    Listener::None,
                )
            }
        };
        platform.migrate(&platform_sets, at).await?;
        if let Some(slug) = &self.options.dangerous_fallback_tenant {
            tracing::warn!(%slug, "requests that match no endpoint binding are served as the fallback tenant");
        }
        let outbox = OutboxLink::new(Arc::clone(&bus), Arc::clone(&wake), Arc::clone(&self.clock));
        Ok(Tenancy {
            inner: Arc::new(Inner {
                platform,
                platform_pool,
                workload,
                outbox,
                wake,
                bus,
                listener,
                tenant_migrations: tenant_sets,
                config_schema: self.config,
                clock: self.clock,
                cache: Cache::new(self.options.cache_ttl),
                options: self.options,
                directory: self.directory,
            }),
        })
    }
}

fn registry_migrations() -> Result<MigrationSet, Error> {
    Ok(MigrationSet::new(
        "edk-tenancy",
        MigrationScope::Platform,
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )?)
}

/// The connection pool of the platform database.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PlatformPool {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// The tenant directory of one deployment: registry, lifecycle, endpoint routing, database
/// router, configuration and events, with in-process caches. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tenancy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    platform: Arc<dyn PlatformStore>,
    platform_pool: PlatformPool,
    workload: TenantDatabases,
    outbox: OutboxLink,
    wake: Arc<tokio::sync::Notify>,
    bus: Arc<dyn EventBus>,
    listener: Listener,
    tenant_migrations: Vec<MigrationSet>,
    config_schema: ConfigSchema,
    clock: Arc<dyn Clock>,
    cache: Cache,
    options: TenancyOptions,
    directory: Option<Arc<dyn TenantDirectory>>,
}

#[derive(Debug)]
enum Listener {
    /// Events stay in this process (SQLite).
    #[cfg(feature = "sqlite")]
    None,
    #[cfg(feature = "postgres")]
    Postgres(Arc<crate::events::PgEventBus>),
}

impl Tenancy {
    /// A builder for `database`.
    #[must_use]
    pub fn builder(database: DatabaseConfig) -> TenancyBuilder {
        TenancyBuilder {
            database,
            clock: Arc::new(SystemClock),
            options: TenancyOptions::default(),
            migrations: Vec::new(),
            config: ConfigSchema::default(),
            directory: None,
        }
    }

    /// Whether the [`TenantDirectory`] answers come from a remote directory
    /// ([`TenancyBuilder::directory`]).
    #[must_use]
    pub fn has_remote_directory(&self) -> bool {
        self.inner.directory.is_some()
    }

    /// A tenant's record (in any status), bindings and effective configuration, from the
    /// database through the caches: what the directory service hands out.
    #[cfg(feature = "grpc")]
    pub(crate) async fn directory_entry(
        &self,
        tenant: TenantId,
    ) -> Result<(Arc<Tenant>, Vec<Arc<EndpointBinding>>, Arc<TenantConfig>), Error> {
        let entry = self.entry(tenant).await?;
        Ok((
            Arc::clone(&entry.tenant),
            entry.bindings.clone(),
            Arc::clone(&entry.config),
        ))
    }

    /// The tenant workload databases: where tenant-scoped stores begin their units of work.
    #[must_use]
    pub fn databases(&self) -> &TenantDatabases {
        &self.inner.workload
    }

    /// The connections of every database pool: the platform's first, then the workload
    /// pools ([`TenantDatabases::pool_stats`]).
    #[must_use]
    pub fn pool_stats(&self) -> Vec<crate::store::PoolStats> {
        let mut stats = vec![self.inner.platform.pool_stats()];
        stats.extend(self.inner.workload.pool_stats());
        stats
    }

    /// The event bus.
    #[must_use]
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }

    /// Deletes event payloads stored before `before` (PostgreSQL keeps events too large for a
    /// `NOTIFY` in `platform_event`; SQLite stores none, so this returns 0 there). Returns how
    /// many were deleted.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_event_payloads(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        match &self.inner.listener {
            #[cfg(feature = "sqlite")]
            Listener::None => {
                let _ = before;
                Ok(0)
            }
            #[cfg(feature = "postgres")]
            Listener::Postgres(bus) => bus.purge_payloads(before).await,
        }
    }

    /// Begins a unit of work in the platform database, for a crate's platform-scope tables
    /// ([`MigrationScope::Platform`]); its events go to the outbox
    /// ([`PlatformTx::append_event`]) in the same transaction.
    ///
    /// # Errors
    /// [`Error::Database`] when the database does not answer.
    pub async fn begin_platform(&self) -> Result<PlatformTx, Error> {
        self.inner.platform.begin(self.inner.outbox.clone()).await
    }

    /// Deletes outbox events delivered before `before`; how many.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        self.inner.platform.purge_delivered_events(before).await
    }

    pub(crate) fn outbox_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.inner.wake
    }

    /// The platform database's pool, for crates whose tables are platform-scope
    /// ([`MigrationScope::Platform`] sets passed to the builder).
    #[must_use]
    pub fn platform_pool(&self) -> &PlatformPool {
        &self.inner.platform_pool
    }

    pub(crate) fn platform(&self) -> &Arc<dyn PlatformStore> {
        &self.inner.platform
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Starts the background work this instance needs: on PostgreSQL the LISTEN loop that
    /// receives other replicas' events, on every backend the consumer that invalidates the
    /// caches and (unless [`TenancyOptions::outbox_relay`] is off) an [`OutboxRelay`] with the
    /// default options. It stops when `cancel` fires or the returned handle is shut down or
    /// dropped.
    #[must_use]
    pub fn start(&self, cancel: &CancellationToken) -> BackgroundTask {
        let cancel = cancel.child_token();
        let (connected_tx, connected_rx) = watch::channel(0_u64);
        let events = self.inner.bus.subscribe();
        let this = self.clone();
        let task_cancel = cancel.clone();
        BackgroundTask::spawn(cancel, connected_rx, async move {
            let listen = this.listen(task_cancel.clone(), connected_tx);
            let invalidate = this.invalidate_on_events(task_cancel.clone(), events);
            let relay = async {
                if this.inner.options.outbox_relay {
                    OutboxRelay::new(&this).run(task_cancel.clone()).await;
                }
            };
            tokio::join!(listen, invalidate, relay);
        })
    }

    async fn listen(&self, cancel: CancellationToken, connected: watch::Sender<u64>) {
        match &self.inner.listener {
            #[cfg(feature = "sqlite")]
            Listener::None => {
                connected.send_replace(1);
                cancel.cancelled().await;
            }
            #[cfg(feature = "postgres")]
            Listener::Postgres(bus) => bus.run_listener(cancel, connected).await,
        }
    }

    async fn invalidate_on_events(
        &self,
        cancel: CancellationToken,
        mut events: broadcast::Receiver<Event>,
    ) {
        loop {
            let received = tokio::select! {
                () = cancel.cancelled() => return,
                received = events.recv() => received,
            };
            match received {
                Ok(event) => self.invalidate(&event).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.invalidate(&Event::Resync).await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Creates a tenant, or finishes creating it: registers it, creates its schema (or file)
    /// and applies every tenant migration under a lock, marks it active and publishes
    /// [`Event::TenantProvisioned`]. Safe to run concurrently, from several processes, for the
    /// same slug: one tenant results and the event is published once.
    ///
    /// # Errors
    /// [`Error::SlugTaken`] when the slug belongs to a deleted tenant, [`Error::Id`] for a bad
    /// display name, [`Error::Migration`] or [`Error::Database`].
    pub async fn provision(&self, slug: TenantSlug, display_name: &str) -> Result<Tenant, Error> {
        check_display_name(display_name)?;
        let now = self.now();
        let platform = &self.inner.platform;
        let tenant = match platform.tenant_by_slug(&slug).await? {
            Some(existing) => existing,
            None => {
                platform
                    .insert_tenant(&Tenant {
                        id: TenantId::generate(),
                        slug: slug.clone(),
                        display_name: display_name.to_owned(),
                        status: TenantStatus::Provisioning,
                        created_at: now,
                        updated_at: now,
                        deleted_at: None,
                    })
                    .await?
            }
        };
        if tenant.status == TenantStatus::Deleted {
            return Err(Error::SlugTaken { slug });
        }
        self.inner
            .workload
            .provision(tenant.id, &self.inner.tenant_migrations, now)
            .await?;
        if tenant.status != TenantStatus::Provisioning {
            return Ok(tenant);
        }
        let event = self.outbox_entry(Event::TenantProvisioned {
            tenant: tenant.id,
            slug: tenant.slug.clone(),
        });
        match platform
            .transition(
                tenant.id,
                TenantStatus::Provisioning,
                TenantStatus::Active,
                now,
                &event,
            )
            .await?
        {
            Some(active) => {
                tracing::info!(tenant = %active.id, slug = %active.slug, "tenant provisioned");
                self.changed(event).await;
                Ok(active)
            }
            None => platform
                .tenant(tenant.id)
                .await?
                .ok_or(Error::TenantNotFound),
        }
    }

    /// Brings every tenant's schema up to date, `upgrade_concurrency` at a time, logging
    /// progress. Run at start-up; refuses (with [`Error::Migration`]) when an applied
    /// migration was changed.
    ///
    /// # Errors
    /// The first failure met.
    pub async fn upgrade_all(&self) -> Result<UpgradeReport, Error> {
        let tenants: Vec<_> = self
            .inner
            .platform
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status != TenantStatus::Deleted)
            .collect();
        let total = tenants.len();
        let step = (total / 10).max(1);
        let now = self.now();
        let mut results = futures::stream::iter(tenants)
            .map(|tenant| async move {
                self.inner
                    .workload
                    .provision(tenant.id, &self.inner.tenant_migrations, now)
                    .await
            })
            .buffer_unordered(self.inner.options.upgrade_concurrency.max(1));
        let mut report = UpgradeReport::default();
        while let Some(result) = results.next().await {
            report.applied += result?;
            report.tenants += 1;
            if report.tenants % step == 0 || report.tenants == total {
                tracing::info!(
                    done = report.tenants,
                    total,
                    applied = report.applied,
                    "upgrading tenant schemas"
                );
            }
        }
        Ok(report)
    }

    /// Suspends a tenant: its requests fail closed at once here, and in other replicas as
    /// soon as they receive the event (at the latest after the cache TTL).
    ///
    /// # Errors
    /// [`Error::TenantNotFound`], [`Error::InvalidTransition`] unless it is active.
    pub async fn suspend(&self, tenant: TenantId) -> Result<Tenant, Error> {
        self.change_status(tenant, &[TenantStatus::Active], TenantStatus::Suspended)
            .await
    }

    /// Resumes a suspended tenant.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`], [`Error::InvalidTransition`] unless it is suspended.
    pub async fn resume(&self, tenant: TenantId) -> Result<Tenant, Error> {
        self.change_status(tenant, &[TenantStatus::Suspended], TenantStatus::Active)
            .await
    }

    /// Deletes a tenant: traffic is refused at once; its data is dropped by
    /// [`Tenancy::purge_deleted`] once the grace period has passed.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`].
    pub async fn delete(&self, tenant: TenantId) -> Result<Tenant, Error> {
        self.change_status(
            tenant,
            &[
                TenantStatus::Active,
                TenantStatus::Suspended,
                TenantStatus::Provisioning,
            ],
            TenantStatus::Deleted,
        )
        .await
    }

    /// Drops the schema (or file), bindings and configuration of tenants deleted longer ago
    /// than the grace period, and forgets them (their slugs become free).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_deleted(&self) -> Result<Vec<TenantId>, Error> {
        let now = self.now();
        let grace = chrono::Duration::from_std(self.inner.options.delete_grace)
            .unwrap_or(chrono::Duration::MAX);
        let due: Vec<_> = self
            .inner
            .platform
            .tenants()
            .await?
            .into_iter()
            .filter(|t| t.status == TenantStatus::Deleted)
            .filter(|t| {
                t.deleted_at
                    .is_some_and(|at| at.checked_add_signed(grace).is_some_and(|end| end <= now))
            })
            .map(|t| t.id)
            .collect();
        for &tenant in &due {
            self.inner.workload.drop_tenant(tenant).await?;
            let event = self.outbox_entry(Event::TenantPurged { tenant });
            self.inner.platform.remove_tenant(tenant, &event).await?;
            tracing::info!(%tenant, "deleted tenant purged");
            self.changed(event).await;
        }
        Ok(due)
    }

    /// The registry record of a tenant, whatever its status.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`].
    pub async fn tenant(&self, tenant: TenantId) -> Result<Tenant, Error> {
        self.inner
            .platform
            .tenant(tenant)
            .await?
            .ok_or(Error::TenantNotFound)
    }

    /// The registry record of the tenant with this slug.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`].
    pub async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Tenant, Error> {
        self.inner
            .platform
            .tenant_by_slug(slug)
            .await?
            .ok_or(Error::TenantNotFound)
    }

    /// Every tenant, by slug.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        self.inner.platform.tenants().await
    }

    /// Binds (or rebinds) the tenant's endpoint for the binding's service.
    ///
    /// # Errors
    /// [`Error::BindingTaken`] when another binding holds the same host, port, prefix and
    /// service; [`Error::TenantNotFound`].
    pub async fn bind(&self, binding: &EndpointBinding) -> Result<(), Error> {
        let event = self.outbox_entry(Event::BindingsChanged {
            tenant: binding.tenant(),
        });
        self.inner
            .platform
            .put_binding(binding, self.now(), &event)
            .await?;
        if binding.scheme() == EndpointScheme::Http {
            tracing::warn!(
                tenant = %binding.tenant(),
                service = %binding.service(),
                url = binding.identifier(),
                "endpoint bound to plain http on a loopback host; for local development only"
            );
        }
        self.changed(event).await;
        Ok(())
    }

    /// Removes the tenant's binding for `service`; `false` if it had none.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn unbind(&self, tenant: TenantId, service: ServiceType) -> Result<bool, Error> {
        let event = self.outbox_entry(Event::BindingsChanged { tenant });
        let removed = self
            .inner
            .platform
            .remove_binding(tenant, service, &event)
            .await?;
        if removed {
            self.changed(event).await;
        }
        Ok(removed)
    }

    /// The tenant's bindings, read from the registry.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn bindings(&self, tenant: TenantId) -> Result<Vec<EndpointBinding>, Error> {
        self.inner.platform.tenant_bindings(tenant).await
    }

    /// Sets a configuration property of a tenant, or of the platform (`tenant = None`).
    /// `expected_version`: `None` writes unconditionally, `Some(0)` only creates, `Some(v)`
    /// only replaces version `v`.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`], [`ConfigError::InvalidValue`],
    /// [`ConfigError::VersionConflict`], [`Error::TenantNotFound`].
    pub async fn set_config(
        &self,
        tenant: Option<TenantId>,
        key: &str,
        value: Value,
        expected_version: Option<i64>,
    ) -> Result<ConfigProperty, Error> {
        self.inner.config_schema.validate(key, &value)?;
        let event = self.outbox_entry(Event::ConfigChanged { tenant });
        let written = self
            .inner
            .platform
            .put_config(tenant, key, &value, expected_version, self.now(), &event)
            .await?
            .ok_or_else(|| ConfigError::VersionConflict {
                key: key.to_owned(),
                expected: expected_version.unwrap_or_default(),
            })?;
        self.changed(event).await;
        Ok(written)
    }

    /// The stored properties of a tenant, or of the platform (`None`), with their versions.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn config_properties(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<ConfigProperty>, Error> {
        self.inner.platform.config(tenant).await
    }

    /// The outbox row of a change's event, appended by the store in the change's transaction.
    fn outbox_entry(&self, event: Event) -> OutboxEntry {
        self.inner.outbox.entry(event.tenant(), event)
    }

    /// After the change and its event committed: invalidates this process's caches, delivers
    /// the event here and wakes the relay, which publishes it to the other replicas.
    async fn changed(&self, entry: OutboxEntry) {
        self.invalidate(&entry.delivery.event).await;
        self.inner.outbox.committed(vec![entry.delivery]);
    }

    async fn change_status(
        &self,
        tenant: TenantId,
        from: &[TenantStatus],
        to: TenantStatus,
    ) -> Result<Tenant, Error> {
        loop {
            let current = self.tenant(tenant).await?;
            if current.status == to {
                return Ok(current);
            }
            if !from.contains(&current.status) {
                return Err(Error::InvalidTransition {
                    from: current.status,
                    to,
                });
            }
            // A concurrent change makes the conditional update miss; read again.
            let event = self.outbox_entry(Event::TenantStatusChanged { tenant, status: to });
            if let Some(updated) = self
                .inner
                .platform
                .transition(tenant, current.status, to, self.now(), &event)
                .await?
            {
                tracing::info!(%tenant, from = %current.status, %to, "tenant status changed");
                self.changed(event).await;
                return Ok(updated);
            }
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().into()
    }

    async fn invalidate(&self, event: &Event) {
        let cache = &self.inner.cache;
        match event {
            Event::BindingsChanged { tenant } | Event::TenantPurged { tenant } => {
                cache.forget_tenant(*tenant);
                self.refresh_routes_of(*tenant).await;
            }
            Event::ConfigChanged {
                tenant: Some(tenant),
            }
            | Event::TenantProvisioned { tenant, .. }
            | Event::TenantStatusChanged { tenant, .. } => cache.forget_tenant(*tenant),
            Event::ConfigChanged { tenant: None } => cache.forget_config(),
            Event::Resync => cache.forget_all(),
            Event::Custom { .. } => {}
        }
    }

    /// Replaces one tenant's routes in the cached table (or drops the table if that fails).
    async fn refresh_routes_of(&self, tenant: TenantId) {
        let cache = &self.inner.cache;
        let _reload = cache.reload.lock().await;
        let generation = cache.routes_generation.load(Ordering::Acquire);
        let Some(current) = cache.routes() else {
            return;
        };
        match self.inner.platform.tenant_bindings(tenant).await {
            Ok(bindings) => cache.set_routes(
                generation,
                Arc::new(RoutingTableSnapshot {
                    table: current.table.with_tenant_replaced(tenant, bindings),
                    loaded_at: current.loaded_at,
                }),
            ),
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "cannot refresh routes; reloading on next use");
                cache.clear_routes();
            }
        }
    }

    /// The routing table: cached while fresh, else reloaded once for all waiting callers.
    ///
    /// # Errors
    /// [`Error::Database`] when it has to be reloaded and cannot be.
    pub async fn routing_table(&self) -> Result<Arc<RoutingTableSnapshot>, Error> {
        let cache = &self.inner.cache;
        let now = self.inner.clock.now();
        if let Some(routes) = cache.routes()
            && cache.fresh(routes.loaded_at, now)
        {
            return Ok(routes);
        }
        let _reload = cache.reload.lock().await;
        if let Some(routes) = cache.routes()
            && cache.fresh(routes.loaded_at, now)
        {
            return Ok(routes);
        }
        let generation = cache.routes_generation.load(Ordering::Acquire);
        let loaded_at = self.inner.clock.now();
        let bindings = self.inner.platform.bindings().await?;
        let routes = Arc::new(RoutingTableSnapshot {
            table: RoutingTable::new(bindings),
            loaded_at,
        });
        cache.set_routes(generation, Arc::clone(&routes));
        Ok(routes)
    }

    async fn entry(&self, tenant: TenantId) -> Result<Arc<CachedTenant>, Error> {
        let cache = &self.inner.cache;
        if let Some(entry) = cache.tenant(tenant)
            && cache.fresh(entry.loaded_at, self.inner.clock.now())
        {
            return Ok(entry);
        }
        let generation = cache.generation.load(Ordering::Acquire);
        let loaded_at = self.inner.clock.now();
        let platform = &self.inner.platform;
        let record = platform
            .tenant(tenant)
            .await?
            .ok_or(Error::TenantNotFound)?;
        let bindings = platform.tenant_bindings(tenant).await?;
        let properties = platform.config(Some(tenant)).await?;
        let platform_config = self.platform_config().await?;
        let config = TenantConfig::overlay(
            self.inner.config_schema.defaults(),
            &platform_config.properties,
            &properties,
        );
        let entry = Arc::new(CachedTenant {
            tenant: Arc::new(record),
            bindings: bindings.into_iter().map(Arc::new).collect(),
            config: Arc::new(config),
            loaded_at,
        });
        cache.put_tenant(generation, tenant, Arc::clone(&entry));
        Ok(entry)
    }

    async fn platform_config(&self) -> Result<Arc<CachedPlatformConfig>, Error> {
        let cache = &self.inner.cache;
        if let Some(config) = cache.platform_config()
            && cache.fresh(config.loaded_at, self.inner.clock.now())
        {
            return Ok(config);
        }
        let generation = cache.generation.load(Ordering::Acquire);
        let loaded_at = self.inner.clock.now();
        let properties = self.inner.platform.config(None).await?;
        let config = Arc::new(CachedPlatformConfig {
            properties,
            loaded_at,
        });
        cache.put_platform_config(generation, Arc::clone(&config));
        Ok(config)
    }

    fn serving(entry: &CachedTenant) -> Result<(), Error> {
        if entry.tenant.status.is_serving() {
            Ok(())
        } else {
            Err(Error::TenantNotActive {
                tenant: entry.tenant.id,
            })
        }
    }

    async fn fallback(
        &self,
        service: ServiceType,
        request: &EndpointRequest,
    ) -> Result<Resolution, ResolveError> {
        let Some(slug) = &self.inner.options.dangerous_fallback_tenant else {
            return Err(ResolveError::NotBound);
        };
        let Some(tenant) = self.inner.platform.tenant_by_slug(slug).await? else {
            return Err(ResolveError::NotBound);
        };
        let entry = self.entry(tenant.id).await?;
        let binding = entry
            .bindings
            .iter()
            .find(|b| b.service() == service)
            .ok_or(ResolveError::NotBound)?;
        // Match the path against the fallback binding as if the request had its host.
        let as_bound = EndpointRequest::new(
            binding.scheme().as_str(),
            binding.host(),
            binding.port(),
            request.path(),
        );
        let matched =
            RoutingTable::new([EndpointBinding::clone(binding)]).lookup(service, &as_bound)?;
        Self::serving(&entry).map_err(|_| ResolveError::NotServing)?;
        Ok(Resolution {
            context: TenantContext::new(
                Arc::clone(&entry.tenant),
                Some(Arc::clone(binding)),
                Arc::clone(&entry.config),
            ),
            path: matched.path,
        })
    }
}

#[async_trait]
impl TenantDirectory for Tenancy {
    async fn resolve(
        &self,
        service: ServiceType,
        request: &EndpointRequest,
    ) -> Result<Resolution, ResolveError> {
        if let Some(directory) = &self.inner.directory {
            return directory.resolve(service, request).await;
        }
        let routes = self.routing_table().await?;
        let matched = match routes.table.lookup(service, request) {
            Ok(matched) => matched,
            Err(ResolveError::NotBound) => return self.fallback(service, request).await,
            Err(err) => return Err(err),
        };
        let entry = match self.entry(matched.binding.tenant()).await {
            Ok(entry) => entry,
            Err(Error::TenantNotFound) => return Err(ResolveError::NotBound),
            Err(err) => return Err(err.into()),
        };
        Self::serving(&entry).map_err(|_| ResolveError::NotServing)?;
        Ok(Resolution {
            context: TenantContext::new(
                Arc::clone(&entry.tenant),
                Some(matched.binding),
                Arc::clone(&entry.config),
            ),
            path: matched.path,
        })
    }

    async fn context(&self, tenant: TenantId) -> Result<TenantContext, Error> {
        if let Some(directory) = &self.inner.directory {
            return directory.context(tenant).await;
        }
        let entry = self.entry(tenant).await?;
        Self::serving(&entry)?;
        Ok(TenantContext::new(
            Arc::clone(&entry.tenant),
            None,
            Arc::clone(&entry.config),
        ))
    }

    async fn context_for_service(
        &self,
        tenant: TenantId,
        service: ServiceType,
    ) -> Result<TenantContext, Error> {
        if let Some(directory) = &self.inner.directory {
            return directory.context_for_service(tenant, service).await;
        }
        let entry = self.entry(tenant).await?;
        Self::serving(&entry)?;
        let binding = entry
            .bindings
            .iter()
            .find(|b| b.service() == service)
            .ok_or(Error::NoBinding { service })?;
        Ok(TenantContext::new(
            Arc::clone(&entry.tenant),
            Some(Arc::clone(binding)),
            Arc::clone(&entry.config),
        ))
    }
}

/// A routing table and when it was read.
#[derive(Debug)]
pub struct RoutingTableSnapshot {
    /// The table.
    pub table: RoutingTable,
    loaded_at: SystemTime,
}

#[derive(Debug)]
struct CachedTenant {
    tenant: Arc<Tenant>,
    bindings: Vec<Arc<EndpointBinding>>,
    config: Arc<TenantConfig>,
    loaded_at: SystemTime,
}

#[derive(Debug)]
struct CachedPlatformConfig {
    properties: Vec<ConfigProperty>,
    loaded_at: SystemTime,
}

/// Routes, tenants and platform configuration held in process. A reload that started before
/// an invalidation does not store what it read (the generation moved on).
#[derive(Debug)]
struct Cache {
    ttl: Duration,
    routes: RwLock<Option<Arc<RoutingTableSnapshot>>>,
    tenants: RwLock<HashMap<TenantId, Arc<CachedTenant>>>,
    platform: RwLock<Option<Arc<CachedPlatformConfig>>>,
    generation: AtomicU64,
    routes_generation: AtomicU64,
    reload: tokio::sync::Mutex<()>,
}

impl Cache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            routes: RwLock::new(None),
            tenants: RwLock::new(HashMap::new()),
            platform: RwLock::new(None),
            generation: AtomicU64::new(0),
            routes_generation: AtomicU64::new(0),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self, loaded_at: SystemTime, now: SystemTime) -> bool {
        matches!(now.duration_since(loaded_at), Ok(age) if age < self.ttl)
    }

    fn routes(&self) -> Option<Arc<RoutingTableSnapshot>> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_routes(&self, generation: u64, routes: Arc<RoutingTableSnapshot>) {
        let mut current = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if self.routes_generation.load(Ordering::Acquire) == generation {
            *current = Some(routes);
        }
    }

    fn clear_routes(&self) {
        let mut current = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        self.routes_generation.fetch_add(1, Ordering::AcqRel);
        *current = None;
    }

    fn tenant(&self, tenant: TenantId) -> Option<Arc<CachedTenant>> {
        self.tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .cloned()
    }

    fn put_tenant(&self, generation: u64, tenant: TenantId, entry: Arc<CachedTenant>) {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation {
            tenants.insert(tenant, entry);
        }
    }

    fn platform_config(&self) -> Option<Arc<CachedPlatformConfig>> {
        self.platform
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn put_platform_config(&self, generation: u64, config: Arc<CachedPlatformConfig>) {
        let mut platform = self
            .platform
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation {
            *platform = Some(config);
        }
    }

    fn forget_tenant(&self, tenant: TenantId) {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tenants.remove(&tenant);
    }

    fn forget_config(&self) {
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let mut platform = self
            .platform
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tenants.clear();
        *platform = None;
    }

    fn forget_all(&self) {
        self.forget_config();
        self.clear_routes();
    }
}
