//! Building the whole server from its configuration: databases, providers, the [`LocalKms`],
//! admin authentication, health and the middleware stack.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use poem::Response;
use poem::endpoint::BoxEndpoint;

use edk_core::jose::Jwk;
use edk_core::{Clock, ErrorChain, HasKind, TenantSlug};
use edk_kms::Kms;
use edk_kms::cert::Certificates;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::grpc::auth::server_tls_config;
use edk_kms::grpc::proto::key_management_server::KeyManagementServer;
use edk_kms::grpc::{KmsGrpcService, MtlsAuth, ServiceAuth, ServiceJwtAuth, TrustedServices};
use edk_kms::provider::pkcs11::Pkcs11Provider;
use edk_kms::provider::software::SoftwareProvider;
use edk_kms::{KeyProvider, LocalKms};
use edk_server::{ANONYMOUS_PATHS, AdminAuth, HealthApi, Metrics, ReadinessCheck, app};
use edk_tenancy::events::BackgroundTask;
use edk_tenancy::migrate::MigrationSet;
use edk_tenancy::{Tenancy, TenantDirectory};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::config::{GrpcAuthConfig, GrpcConfig, KmsServerConfig, ProviderConfig};
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
    grpc: Option<GrpcListener>,
    cancel: CancellationToken,
    tasks: Option<(BackgroundTask, edk_kms::local::KmsTask)>,
}

/// The gRPC service and its TLS settings, ready to serve on the configured address.
#[derive(Clone)]
pub struct GrpcListener {
    listen: SocketAddr,
    service: KeyManagementServer<KmsGrpcService>,
    tls: Option<ServerTlsConfig>,
}

impl GrpcListener {
    /// The configured address.
    #[must_use]
    pub const fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Serves on `listener` (bound to [`listen`](Self::listen), or any address in tests) until
    /// `shutdown` completes.
    ///
    /// # Errors
    /// A transport error when the TLS settings are unusable or the server fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        edk_kms::grpc::serve(listener, self.service, self.tls, shutdown).await
    }
}

impl fmt::Debug for GrpcListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcListener")
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
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
        let mut builder = Tenancy::builder(config.database.clone()).clock(Arc::clone(&clock));
        for migrations in Self::migrations()? {
            builder = builder.migrations(migrations);
        }
        let tenancy = builder.build().await.map_err(Error::Tenancy)?;
        tenancy.upgrade_all().await.map_err(Error::Tenancy)?;
        Self::build_on(config, tenancy, clock, http_client).await
    }

    /// The migration sets the KMS server's tenant databases need: keys and certificates.
    ///
    /// # Errors
    /// [`Error::Kms`] if a bundled migration set is malformed.
    pub fn migrations() -> Result<Vec<MigrationSet>, Error> {
        Ok(vec![
            edk_kms::migrations().map_err(Error::Kms)?,
            edk_kms::cert::migrations().map_err(Error::Kms)?,
        ])
    }

    /// Like [`build`](Self::build), on a `tenancy` the caller opened (and upgraded) with at
    /// least [`migrations`](Self::migrations); `config.database` is not used. The all-in-one
    /// `edk` shares one tenancy between its services this way.
    ///
    /// # Errors
    /// [`Error`] naming the part that could not be set up.
    pub async fn build_on(
        config: &KmsServerConfig,
        tenancy: Tenancy,
        clock: Arc<dyn Clock>,
        http_client: &reqwest::Client,
    ) -> Result<Self, Error> {
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
        let auth = AdminAuth::new(
            &config.auth,
            Arc::clone(&clock),
            &ANONYMOUS_PATHS,
            Some(http_client),
        )
        .map_err(Error::Auth)?;
        let cancel = CancellationToken::new();
        let tasks = (tenancy.start(&cancel), kms.start(&cancel));
        let directory: Arc<dyn TenantDirectory> = Arc::new(tenancy.clone());
        let grpc = match &config.grpc {
            Some(grpc) => Some(grpc_listener(
                grpc,
                Arc::new(kms.clone()),
                Arc::clone(&directory),
                Arc::clone(&clock),
            )?),
            None => None,
        };
        let state = Arc::new(
            KmsState::new(registry, Arc::new(kms.clone()), directory, certificates)
                .with_audit(Arc::new(kms.clone())),
        );
        Ok(Self {
            tenancy,
            kms,
            state,
            auth,
            metrics: Metrics::new().map_err(Error::Metrics)?,
            http: config.http.clone(),
            grpc,
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

    /// The gRPC listener, when `grpc` is configured.
    #[must_use]
    pub const fn grpc(&self) -> Option<&GrpcListener> {
        self.grpc.as_ref()
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

/// Builds the gRPC service and its TLS settings from `config`.
///
/// # Errors
/// [`Error::Grpc`] for a missing or unreadable TLS file, a private key in a trusted JWK set,
/// or `mtls` without a client CA.
fn grpc_listener(
    config: &GrpcConfig,
    kms: Arc<dyn Kms>,
    directory: Arc<dyn TenantDirectory>,
    clock: Arc<dyn Clock>,
) -> Result<GrpcListener, Error> {
    let auth = match &config.auth {
        GrpcAuthConfig::ServiceJwt {
            audience,
            services,
            max_lifetime_secs,
        } => {
            let mut trusted = TrustedServices::new();
            for service in services {
                if service.jwks.keys.iter().any(Jwk::is_private) {
                    return Err(Error::grpc(format!(
                        "`grpc.auth.services` entry `{}` holds a private key; give public keys only",
                        service.name
                    )));
                }
                trusted = trusted.with_service(service.name.clone(), &service.jwks);
            }
            ServiceAuth::ServiceJwt(
                ServiceJwtAuth::new(audience.clone(), Arc::new(trusted), clock)
                    .with_max_lifetime(Duration::from_secs(*max_lifetime_secs)),
            )
        }
        GrpcAuthConfig::Mtls { allow } => {
            ServiceAuth::Mtls(allow.iter().fold(MtlsAuth::new(), |auth, identity| {
                auth.allow(identity.clone())
            }))
        }
    };
    let tls = match &config.tls {
        Some(tls) => {
            let cert = read_pem(&tls.cert_file)?;
            let key = read_pem(&tls.key_file)?;
            Some(match &tls.client_ca_file {
                Some(ca) => server_tls_config(cert, key, read_pem(ca)?),
                None => ServerTlsConfig::new().identity(Identity::from_pem(cert, key)),
            })
        }
        None => None,
    };
    let client_ca = config
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_ca_file.is_some());
    if matches!(config.auth, GrpcAuthConfig::Mtls { .. }) && !client_ca {
        return Err(Error::grpc(
            "`grpc.auth.kind: mtls` needs `grpc.tls.client_ca_file`".to_owned(),
        ));
    }
    Ok(GrpcListener {
        listen: config.listen,
        service: KmsGrpcService::new(kms, directory, auth),
        tls,
    })
}

fn read_pem(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|err| Error::grpc(format!("cannot read `{}`: {err}", path.display())))
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
