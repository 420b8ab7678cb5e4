//! Building the whole server from its configuration: databases, providers, the [`LocalKms`],
//! admin authentication, health and the middleware stack.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use poem::Response;
use poem::endpoint::BoxEndpoint;

use edk_core::{Clock, ErrorChain, HasKind, TenantSlug};
use edk_kms::cert::Certificates;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::provider::pkcs11::Pkcs11Provider;
use edk_kms::provider::software::SoftwareProvider;
use edk_kms::{KeyProvider, LocalKms};
use edk_server::{ANONYMOUS_PATHS, AdminAuth, HealthApi, Metrics, ReadinessCheck, app};
use edk_tenancy::events::BackgroundTask;
use edk_tenancy::{Tenancy, TenantDirectory};
use tokio_util::sync::CancellationToken;

use crate::config::{KmsServerConfig, ProviderConfig};
use crate::state::{KmsState, ProviderRegistry};
use crate::{Error, routes};

/// A built KMS server: the application to serve and the parts it owns.
pub struct KmsServer {
    tenancy: Tenancy,
    kms: LocalKms,
    state: Arc<KmsState>,
    auth: AdminAuth,
    metrics: Metrics,
    http: edk_server::HttpConfig,
    cancel: CancellationToken,
    tasks: Option<(BackgroundTask, edk_kms::local::KmsTask)>,
}

impl KmsServer {
    /// Connects the databases (applying migrations), opens the providers, builds the KMS
    /// and starts its background work. `clock` dates tokens and keys; `http_client` fetches
    /// the JWKS of issuers configured with a `jwks_uri`.
    ///
    /// # Errors
    /// [`Error`] naming the part that could not be set up.
    pub async fn build(
        config: &KmsServerConfig,
        clock: Arc<dyn Clock>,
        http_client: &reqwest::Client,
    ) -> Result<Self, Error> {
        let tenancy = Tenancy::builder(config.database.clone())
            .clock(Arc::clone(&clock))
            .migrations(edk_kms::migrations().map_err(Error::Kms)?)
            .migrations(edk_kms::cert::migrations().map_err(Error::Kms)?)
            .build()
            .await
            .map_err(Error::Tenancy)?;
        tenancy.upgrade_all().await.map_err(Error::Tenancy)?;
        let providers = open_providers(&config.kms.providers).await?;
        let registry = ProviderRegistry::new(providers.clone())?;
        let kms = LocalKms::builder(tenancy.clone(), providers)
            .clock(Arc::clone(&clock))
            .cache_ttl(Duration::from_secs(config.kms.cache_ttl_secs))
            .build()
            .map_err(Error::Kms)?;
        let certificates = Certificates::new(
            Arc::new(kms.clone()),
            Arc::new(SqlCertificateStore::new(tenancy.clone())),
            Arc::clone(&clock),
        );
        let auth = AdminAuth::new(&config.auth, clock, &ANONYMOUS_PATHS, Some(http_client))
            .map_err(Error::Auth)?;
        let cancel = CancellationToken::new();
        let tasks = (tenancy.start(&cancel), kms.start(&cancel));
        let directory: Arc<dyn TenantDirectory> = Arc::new(tenancy.clone());
        let state = Arc::new(KmsState::new(
            registry,
            Arc::new(kms.clone()),
            directory,
            certificates,
        ));
        Ok(Self {
            tenancy,
            kms,
            state,
            auth,
            metrics: Metrics::new().map_err(Error::Metrics)?,
            http: config.http.clone(),
            cancel,
            tasks: Some(tasks),
        })
    }

    /// The application: the KMS routes, health with the database check, `/metrics`,
    /// `/openapi.json`, `/docs`, admin authentication and the shared middleware.
    #[must_use]
    pub fn app(&self) -> BoxEndpoint<'static, Response> {
        let health = HealthApi::new().with_check(Arc::new(DatabaseCheck {
            tenancy: self.tenancy.clone(),
        }));
        app(
            &self.http,
            &self.metrics,
            Some(self.auth.clone()),
            routes(&self.state, health),
        )
    }

    /// The tenant directory (to provision tenants in tests and tools).
    #[must_use]
    pub const fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The KMS.
    #[must_use]
    pub const fn kms(&self) -> &LocalKms {
        &self.kms
    }

    /// The handlers' state.
    #[must_use]
    pub const fn state(&self) -> &Arc<KmsState> {
        &self.state
    }

    /// Stops the background work and writes the buffered audit records.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some((tenancy, kms)) = self.tasks.take() {
            kms.shutdown().await;
            tenancy.shutdown().await;
        }
    }
}

impl fmt::Debug for KmsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsServer")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Opens the configured providers, in order.
///
/// # Errors
/// [`Error::Kms`] for a provider that cannot be opened.
pub async fn open_providers(
    configs: &[ProviderConfig],
) -> Result<Vec<Arc<dyn KeyProvider>>, Error> {
    let mut providers: Vec<Arc<dyn KeyProvider>> = Vec::with_capacity(configs.len());
    for config in configs {
        let provider: Arc<dyn KeyProvider> = match config {
            ProviderConfig::Software(config) => {
                Arc::new(SoftwareProvider::new(config.clone()).map_err(Error::Kms)?)
            }
            ProviderConfig::Pkcs11(config) => Arc::new(
                Pkcs11Provider::connect(config.clone())
                    .await
                    .map_err(Error::Kms)?,
            ),
        };
        providers.push(provider);
    }
    Ok(providers)
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
            Err(err) if err.kind() == edk_core::ErrorKind::NotFound => Ok(()),
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "database readiness check failed");
                Err("the database does not answer".to_owned())
            }
        }
    }
}
