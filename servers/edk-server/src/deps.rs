//! [`Deps`]: the shared dependencies every server is built from.
//!
//! Every server crate has one shape: its configuration has the same `database` section
//! (edk-tenancy's [`DatabaseConfig`]) and the same [`kms`](crate::kms) section; its `main`
//! opens one [`Deps`] from them, with the migrations and tenant configuration keys the server
//! declares, and calls the server's `build(&config, &deps)`. The all-in-one `edk` opens one
//! [`Deps`] and builds every server on it.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use edk_server::deps::Deps;
//! use edk_server::kms::KmsConfig;
//! use edk_tenancy::DatabaseConfig;
//!
//! let database: DatabaseConfig = serde_json::from_value(serde_json::json!({
//!     "backend": "sqlite", "directory": "./.edk-example"
//! }))?;
//! let kms: KmsConfig = serde_json::from_value(serde_json::json!({
//!     "mode": "remote", "endpoint": "http://127.0.0.1:9090",
//!     "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms",
//!              "key_file": "/run/secrets/as.jwk"}
//! }))?;
//! let deps = Deps::builder(database, kms).build().await?;
//! // ... build servers on `deps`, serve ...
//! deps.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind, SystemClock, TenantId, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::jobs::{AuditCheckpointJob, RotateDueJob};
use edk_kms::local::KmsTask;
use edk_kms::store::mysql::MySqlKeyStore;
use edk_tenancy::events::BackgroundTask;
use edk_tenancy::grpc::RemoteTenantDirectory;
use edk_tenancy::migrate::MigrationSet;
use edk_tenancy::scheduler::{Job, PurgeDeletedTenants, PurgeEventPayloads, Scheduler};
use edk_tenancy::{ConfigKey, ConfigSchema, DatabaseConfig, Tenancy, TenancyOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::directory::{DirectoryConfig, DirectorySetupError};
use crate::kms::{
    ConfigProviderFactory, KmsConfig, KmsHandle, KmsSetupError, connect_remote, open_providers,
};
use crate::{
    HealthApi, HttpConfig, JobMetrics, Metrics, PoolMetrics, ProviderMetrics, ReadinessCheck,
};

type SchemaStep = Box<
    dyn FnOnce(edk_tenancy::config::ConfigSchemaBuilder) -> edk_tenancy::config::ConfigSchemaBuilder
        + Send,
>;

/// What a server is built from: the tenancy (databases, routing, events), the KMS, the clock,
/// the outbound HTTP client and the metrics registry.
pub struct Deps {
    tenancy: Tenancy,
    kms: KmsHandle,
    key_store: Option<MySqlKeyStore>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    metrics: Metrics,
    cancel: CancellationToken,
    tasks: Mutex<Option<(BackgroundTask, Option<KmsTask>)>>,
    scheduler: Mutex<Option<BackgroundTask>>,
    directory: Mutex<Option<BackgroundTask>>,
    remote_directory: Option<RemoteTenantDirectory>,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deps")
            .field("kms", &self.kms)
            .finish_non_exhaustive()
    }
}

/// Builds [`Deps`].
pub struct DepsBuilder {
    database: DatabaseConfig,
    kms: KmsConfig,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
    options: Option<TenancyOptions>,
    migrations: Vec<MigrationSet>,
    schema: Vec<SchemaStep>,
    directory: Option<DirectoryConfig>,
}

impl fmt::Debug for DepsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepsBuilder")
            .field("kms", &self.kms)
            .field("migrations", &self.migrations.len())
            .finish_non_exhaustive()
    }
}

/// Why [`Deps`] could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DepsError {
    /// The databases could not be opened or migrated.
    #[error("the databases could not be opened")]
    Tenancy(#[source] edk_tenancy::Error),
    /// A tenant configuration key is malformed or registered twice.
    #[error("the tenant configuration keys are inconsistent")]
    ConfigSchema(#[source] edk_tenancy::error::ConfigError),
    /// A bundled migration set is malformed.
    #[error("a bundled migration set is malformed")]
    Migrations(#[source] edk_kms::Error),
    /// The `kms` section could not be opened.
    #[error(transparent)]
    Kms(#[from] KmsSetupError),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    Http(#[source] reqwest::Error),
    /// The metrics registry could not be set up.
    #[error("the metrics registry could not be set up")]
    Metrics(#[source] prometheus::Error),
    /// The remote tenant directory (`directory`) could not be set up.
    #[error(transparent)]
    Directory(#[from] DirectorySetupError),
    /// The housekeeping scheduler could not be set up.
    #[error("the housekeeping scheduler could not be set up")]
    Scheduler(#[source] edk_tenancy::Error),
}

impl Deps {
    /// A builder over the `database` and `kms` sections.
    #[must_use]
    pub fn builder(database: DatabaseConfig, kms: KmsConfig) -> DepsBuilder {
        DepsBuilder {
            database,
            kms,
            clock: Arc::new(SystemClock),
            http: None,
            options: None,
            migrations: Vec::new(),
            schema: Vec::new(),
            directory: None,
        }
    }

    /// The tenancy.
    #[must_use]
    pub const fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The KMS: in process or remote.
    #[must_use]
    pub const fn kms(&self) -> &KmsHandle {
        &self.kms
    }

    /// Where the certificates of KMS aliases are read: the tenant's certificate tables for an
    /// in-process KMS, the KMS server's `GetCertificate` for a remote one.
    #[must_use]
    pub fn certificates(&self) -> Arc<dyn edk_kms::cert::CertificateSource> {
        match &self.kms {
            KmsHandle::Local(kms) => Arc::new(edk_kms::cert::Certificates::new(
                Arc::new(kms.clone()),
                Arc::new(edk_kms::cert::store::SqlCertificateStore::new(
                    self.tenancy.clone(),
                )),
                Arc::clone(&self.clock),
            )),
            KmsHandle::Remote(kms) => Arc::new(kms.clone()),
        }
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The outbound HTTP client (timeouts set, redirects not followed).
    #[must_use]
    pub const fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The metrics registry.
    #[must_use]
    pub const fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token cancelled when [`shutdown`](Self::shutdown) starts; servers stop their own
    /// background work on it.
    #[must_use]
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// The readiness checks of these dependencies: the database, the KMS, the KMS's MySQL or
    /// MariaDB key store when `kms.database` names one (`kms_database`), and the platform's
    /// directory service when the `directory` section is set (`directory`: not ready while it
    /// has not answered for longer than its cache TTL).
    #[must_use]
    pub fn readiness_checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        let mut checks: Vec<Arc<dyn ReadinessCheck>> = vec![
            Arc::new(DatabaseCheck::new(self.tenancy.clone())),
            Arc::new(KmsCheck {
                kms: self.kms.clone(),
                tenancy: self.tenancy.clone(),
            }),
        ];
        if let Some(store) = &self.key_store {
            checks.push(Arc::new(KeyStoreCheck {
                store: store.clone(),
            }));
        }
        if let Some(directory) = &self.remote_directory {
            checks.push(Arc::new(DirectoryCheck {
                directory: directory.clone(),
            }));
        }
        checks
    }

    /// Health endpoints that run [`readiness_checks`](Self::readiness_checks).
    #[must_use]
    pub fn health(&self) -> HealthApi {
        self.readiness_checks()
            .into_iter()
            .fold(HealthApi::new(), HealthApi::with_check)
    }

    /// The housekeeping jobs these dependencies need on every server: purging deleted
    /// tenants, old event payloads and delivered outbox events, and with an in-process KMS,
    /// scheduled key rotation and audit checkpoints.
    #[must_use]
    pub fn jobs(&self) -> Vec<Arc<dyn Job>> {
        let tenancy = self.tenancy.clone();
        let mut jobs: Vec<Arc<dyn Job>> = vec![
            Arc::new(PurgeDeletedTenants::new(tenancy.clone())),
            Arc::new(PurgeEventPayloads::new(tenancy)),
        ];
        if let Some(kms) = self.kms.local() {
            jobs.push(Arc::new(RotateDueJob::new(kms.clone())));
            jobs.push(Arc::new(AuditCheckpointJob::new(kms.clone())));
        }
        jobs
    }

    /// Starts the housekeeping scheduler with [`jobs`](Self::jobs) and the server's `extra`
    /// jobs: each job runs once per period across all replicas (a lease in the platform
    /// database), its runs counted in the metrics. Stopped by [`shutdown`](Self::shutdown);
    /// a second call leaves the running scheduler as it is.
    ///
    /// # Errors
    /// [`DepsError::Scheduler`] for an invalid job; [`DepsError::Metrics`] when the job
    /// metrics cannot be registered.
    pub fn start_scheduler(&self, extra: Vec<Arc<dyn Job>>) -> Result<(), DepsError> {
        let observer = JobMetrics::new(&self.metrics).map_err(DepsError::Metrics)?;
        let scheduler = self
            .jobs()
            .into_iter()
            .chain(extra)
            .fold(
                Scheduler::builder(self.tenancy.clone())
                    .clock(Arc::clone(&self.clock))
                    .observer(Arc::new(observer)),
                |builder, job| builder.job(job),
            )
            .build()
            .map_err(DepsError::Scheduler)?;
        let mut running = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if running.is_some() {
            tracing::warn!("the housekeeping scheduler is already running");
        } else {
            *running = Some(scheduler.start(&self.cancel));
        }
        Ok(())
    }

    /// Stops the background work (event listener, KMS audit writer, scheduler) and writes
    /// the buffered audit records.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let scheduler = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(scheduler) = scheduler {
            scheduler.shutdown().await;
        }
        let directory = self
            .directory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(directory) = directory {
            directory.shutdown().await;
        }
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((tenancy, kms)) = tasks {
            if let Some(kms) = kms {
                kms.shutdown().await;
            }
            tenancy.shutdown().await;
        }
    }
}

impl DepsBuilder {
    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The outbound HTTP client (default: 10 s timeout, no redirects).
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Tenancy behaviour (cache lifetimes, deletion grace, fallback tenant).
    #[must_use]
    pub fn tenancy_options(mut self, options: TenancyOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Reads tenants, bindings and configuration from the platform's directory service
    /// instead of the platform database (a runtime server's `directory` section); `None`
    /// keeps the database.
    #[must_use]
    pub fn directory(mut self, directory: Option<DirectoryConfig>) -> Self {
        self.directory = directory;
        self
    }

    /// A migration set the server needs on every tenant; a component added twice is applied
    /// once.
    #[must_use]
    pub fn migrations(mut self, set: MigrationSet) -> Self {
        self.migrations.push(set);
        self
    }

    /// A tenant configuration key the server reads. Every server has the rate-limit
    /// overrides [`RATE_LIMITS`](crate::rate_limit::RATE_LIMITS) already.
    #[must_use]
    pub fn config_key<T>(mut self, key: &'static ConfigKey<T>) -> Self
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        self.schema.push(Box::new(move |builder| builder.key(key)));
        self
    }

    /// Opens the databases (applying every migration to every tenant), then the KMS, and
    /// starts their background work.
    ///
    /// # Errors
    /// [`DepsError`] naming the part that could not be opened.
    pub async fn build(self) -> Result<Deps, DepsError> {
        let http = match self.http {
            Some(http) => http,
            None => default_http_client().map_err(DepsError::Http)?,
        };
        let mut migrations = self.migrations;
        if self.kms.is_local() {
            migrations.insert(0, edk_kms::migrations().map_err(DepsError::Migrations)?);
            migrations.insert(
                1,
                edk_kms::cert::migrations().map_err(DepsError::Migrations)?,
            );
            migrations.insert(
                2,
                edk_kms::platform_migrations().map_err(DepsError::Migrations)?,
            );
        }
        let mut seen = BTreeSet::new();
        migrations.retain(|set| seen.insert(set.component()));
        let schema = self
            .schema
            .into_iter()
            .fold(
                ConfigSchema::builder().key(&crate::rate_limit::RATE_LIMITS),
                |builder, step| step(builder),
            )
            .build()
            .map_err(DepsError::ConfigSchema)?;
        let cancel = CancellationToken::new();
        let mut builder = Tenancy::builder(self.database)
            .clock(Arc::clone(&self.clock))
            .config_schema(schema);
        // The remote KMS is opened first: it may sign the directory's tokens.
        let mut remote_kms = match &self.kms {
            KmsConfig::Remote(config) => Some(connect_remote(config, Arc::clone(&self.clock))?),
            KmsConfig::Local(_) => None,
        };
        let mut directory_task = None;
        let mut remote_directory = None;
        if let Some(config) = &self.directory {
            let (directory, task) = crate::directory::connect(
                config,
                Arc::clone(&self.clock),
                &cancel,
                remote_kms.as_ref(),
            )?;
            tracing::info!(endpoint = %config.endpoint, "tenants are read from the platform's directory service");
            builder = builder.directory(Arc::new(directory.clone()));
            remote_directory = Some(directory);
            directory_task = Some(task);
        }
        if let Some(options) = self.options {
            builder = builder.options(options);
        }
        for set in migrations {
            builder = builder.migrations(set);
        }
        let tenancy = builder.build().await.map_err(DepsError::Tenancy)?;
        tenancy.upgrade_all().await.map_err(DepsError::Tenancy)?;
        let mut key_store = None;
        let (kms, kms_task) = match &self.kms {
            KmsConfig::Local(config) => {
                if config.providers.is_empty() {
                    return Err(KmsSetupError::Invalid {
                        field: "providers",
                        reason: "needs at least one provider",
                    }
                    .into());
                }
                let providers = open_providers(&config.providers).await?;
                let mut builder = LocalKms::builder(tenancy.clone(), providers)
                    .clock(Arc::clone(&self.clock))
                    .cache_ttl(Duration::from_secs(config.cache_ttl_secs))
                    .provider_factory(Arc::new(ConfigProviderFactory::new(
                        config.secrets_dir.as_deref(),
                    )));
                if let Some(store) = config.mysql_key_store().await? {
                    builder = builder.store(Arc::new(store.clone()));
                    key_store = Some(store);
                }
                let kms = builder
                    .build()
                    .map_err(|err| DepsError::Kms(KmsSetupError::Kms(err)))?;
                kms.load_registered_providers().await;
                let task = kms.start(&cancel);
                (KmsHandle::Local(kms), Some(task))
            }
            KmsConfig::Remote(config) => {
                let kms = match remote_kms.take() {
                    Some(kms) => kms,
                    None => connect_remote(config, Arc::clone(&self.clock))?,
                };
                (KmsHandle::Remote(kms), None)
            }
        };
        let metrics = Metrics::new().map_err(DepsError::Metrics)?;
        PoolMetrics::register(&metrics, tenancy.clone()).map_err(DepsError::Metrics)?;
        if let KmsHandle::Local(local) = &kms {
            ProviderMetrics::register_set(&metrics, local.provider_set().clone())
                .map_err(DepsError::Metrics)?;
        }
        let background = tenancy.start(&cancel);
        Ok(Deps {
            tenancy,
            kms,
            key_store,
            clock: self.clock,
            http,
            metrics,
            cancel,
            tasks: Mutex::new(Some((background, kms_task))),
            scheduler: Mutex::new(None),
            directory: Mutex::new(directory_task),
            remote_directory,
        })
    }
}

/// The outbound HTTP client servers use by default: 10 s timeout, redirects not followed,
/// the public web PKI roots trusted.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn default_http_client() -> Result<reqwest::Client, reqwest::Error> {
    crate::install_crypto_provider();
    http_client_builder().build()
}

/// The outbound HTTP client of a server configured with `http`: as
/// [`default_http_client`], also trusting the CA certificates of `http.outbound_ca_files`.
/// Server binaries build their client this way.
///
/// ```no_run
/// # fn example() -> Result<(), edk_server::deps::HttpClientError> {
/// let http: edk_server::HttpConfig = serde_json::from_value(serde_json::json!({
///     "outbound_ca_files": ["/etc/edk/corporate-root-ca.pem"]
/// })).unwrap();
/// let client = edk_server::deps::outbound_http_client(&http)?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`HttpClientError`] naming the CA file that cannot be read or holds no certificate, or
/// when the TLS backend cannot be initialised.
pub fn outbound_http_client(http: &HttpConfig) -> Result<reqwest::Client, HttpClientError> {
    crate::install_crypto_provider();
    let mut builder = http_client_builder();
    for path in &http.outbound_ca_files {
        let pem = std::fs::read(path).map_err(|source| HttpClientError::ReadCaFile {
            path: path.clone(),
            source,
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certificates| !certificates.is_empty())
            .ok_or_else(|| HttpClientError::NoCertificate { path: path.clone() })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(HttpClientError::Build)
}

fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
}

/// Why [`outbound_http_client`] could not build the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// A file of `http.outbound_ca_files` could not be read.
    #[error("cannot read the CA file {}", path.display())]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of `http.outbound_ca_files` holds no PEM certificate.
    #[error("the CA file {} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The client could not be built with these roots.
    #[error("the HTTP client could not be built")]
    Build(#[source] reqwest::Error),
}

/// Readiness: the platform database answers.
#[derive(Debug)]
pub struct DatabaseCheck {
    tenancy: Tenancy,
}

impl DatabaseCheck {
    /// The check over `tenancy`'s platform database.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }
}

#[async_trait]
impl ReadinessCheck for DatabaseCheck {
    fn name(&self) -> &str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        let probe = TenantSlug::new("readiness-probe").map_err(|_| "probe".to_owned())?;
        match self.tenancy.tenant_by_slug(&probe).await {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "database readiness check failed");
                Err("the database does not answer".to_owned())
            }
        }
    }
}

/// Readiness: the KMS answers. In process, its key store (the tenant databases) is reached
/// through the database check, so this passes; remote, one authenticated `Ping` call.
#[derive(Debug)]
pub struct KmsCheck {
    kms: KmsHandle,
    tenancy: Tenancy,
}

/// Readiness of the platform's directory service (`directory`): its `Watch` stream is open,
/// or it answered within the cache TTL (while cached answers are still served).
#[derive(Debug)]
struct DirectoryCheck {
    directory: RemoteTenantDirectory,
}

#[async_trait]
impl ReadinessCheck for DirectoryCheck {
    fn name(&self) -> &str {
        "directory"
    }

    async fn check(&self) -> Result<(), String> {
        self.directory.check_reachable().map_err(|err| {
            tracing::warn!(error = %ErrorChain(&err), "directory readiness check failed");
            "the platform's directory service has not answered within its cache TTL".to_owned()
        })
    }
}

/// Readiness of the KMS's MySQL or MariaDB key reference store (`kms.database`): the
/// database answers and holds the store's tables.
#[derive(Debug)]
struct KeyStoreCheck {
    store: MySqlKeyStore,
}

#[async_trait]
impl ReadinessCheck for KeyStoreCheck {
    fn name(&self) -> &str {
        "kms_database"
    }

    async fn check(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|err| {
            tracing::warn!(error = %ErrorChain(&err), "KMS key store readiness check failed");
            "the KMS key store database does not answer".to_owned()
        })
    }
}

#[async_trait]
impl ReadinessCheck for KmsCheck {
    fn name(&self) -> &str {
        "kms"
    }

    async fn check(&self) -> Result<(), String> {
        match &self.kms {
            KmsHandle::Local(_) => Ok(()),
            KmsHandle::Remote(remote) => remote_ping(remote, &self.tenancy).await,
        }
    }
}

/// One `Ping` for a serving tenant (or, with none, for an unknown tenant id). The KMS
/// answered and accepted this server's credentials when the call succeeds, or when it is
/// refused only for the tenant (not found, or not among the tenants this service may act for).
async fn remote_ping(remote: &edk_kms::grpc::RemoteKms, tenancy: &Tenancy) -> Result<(), String> {
    let tenant = match tenancy.tenants().await {
        Ok(tenants) => tenants
            .iter()
            .find(|tenant| tenant.status.is_serving())
            .map(|tenant| tenant.id),
        Err(_) => None,
    };
    let probe = tenant.unwrap_or_else(|| TenantId::from_uuid(uuid::Uuid::nil()));
    match remote.ping(probe).await {
        Ok(()) => Ok(()),
        Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Forbidden) => Ok(()),
        Err(err) => {
            tracing::warn!(error = %ErrorChain(&err), "KMS readiness check failed");
            Err(match err.kind() {
                ErrorKind::Unauthenticated => "the KMS refuses this server's credentials",
                _ => "the KMS does not answer",
            }
            .to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbound_ca_file_must_be_readable_and_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let config = |path: &std::path::Path| HttpConfig {
            outbound_ca_files: vec![path.to_path_buf()],
            ..HttpConfig::default()
        };

        let err = outbound_http_client(&config(&missing)).unwrap_err();
        assert!(
            matches!(&err, HttpClientError::ReadCaFile { path, source }
                if *path == missing && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        let err = outbound_http_client(&config(&not_pem)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the CA file {} holds no PEM certificate", not_pem.display())
        );
        outbound_http_client(&HttpConfig::default()).unwrap();
    }
}
