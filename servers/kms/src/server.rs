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

use edk_core::Clock;
use edk_core::jose::Jwk;
use edk_kms::Kms;
use edk_kms::LocalKms;
use edk_kms::audit::AuditTrail;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::cert::{CertificateSource, Certificates};
use edk_kms::grpc::auth::server_tls_config;
use edk_kms::grpc::proto::key_management_server::KeyManagementServer;
use edk_kms::grpc::{
    AuditReaders, KmsGrpcService, MtlsAuth, ServiceAuth, ServiceJwtAuth, TrustedServices,
};
use edk_server::deps::{Deps, DepsBuilder};
use edk_server::service::BoxError;
use edk_server::{AdminAuth, HealthApi, Metrics, Service, SideTask, app};
use edk_tenancy::migrate::MigrationSet;
use edk_tenancy::{Tenancy, TenantDirectory};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::config::{GrpcAuthConfig, GrpcConfig, KmsServerConfig};
use crate::identity::{PublishedKeysResolver, PublishedServiceKeys};
use crate::state::{KmsState, ProviderRegistry};
use crate::{Error, routes};

/// A built KMS server: the application to serve and the parts it owns.
pub struct KmsServer {
    tenancy: Tenancy,
    kms: LocalKms,
    state: Arc<KmsState>,
    auth: AdminAuth,
    metrics: Metrics,
    health: HealthApi,
    http: edk_server::HttpConfig,
    grpc: Option<GrpcListener>,
    published: PublishedServiceKeys,
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

    /// The application: the KMS routes, health with the database check, `/metrics`,
    /// `/openapi.json`, `/docs`, admin authentication and the shared middleware.
    #[must_use]
    pub fn app(&self) -> BoxEndpoint<'static, Response> {
        app(
            &self.http,
            &self.metrics,
            Some(self.auth.clone()),
            routes(&self.state, self.health.clone()).nest(
                crate::identity::PATH,
                poem::Route::new().at("/:service/jwks.json", self.published.clone().endpoint()),
            ),
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
}

impl fmt::Debug for KmsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsServer")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Service for KmsServer {
    type Config = KmsServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-kms";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        Ok(Self::migrations()?
            .into_iter()
            .fold(deps, DepsBuilder::migrations))
    }

    /// Builds the server on `deps`, whose KMS must be in process (`kms.mode: local`): the KMS
    /// server is where the keys are.
    async fn build(config: &KmsServerConfig, deps: &Deps) -> Result<Self, Error> {
        let Some(kms) = deps.kms().local().cloned() else {
            return Err(Error::RemoteKms);
        };
        let tenancy = deps.tenancy().clone();
        let clock = deps.clock();
        let registry = ProviderRegistry::live(kms.provider_set().clone())?;
        let certificates = Certificates::new(
            Arc::new(kms.clone()),
            Arc::new(SqlCertificateStore::new(tenancy.clone())),
            Arc::clone(&clock),
        );
        let auth = AdminAuth::new(
            &config.auth,
            Arc::clone(&clock),
            &KMS_ANONYMOUS_PATHS,
            Some(deps.http()),
        )
        .map_err(Error::Auth)?;
        let directory: Arc<dyn TenantDirectory> = Arc::new(tenancy.clone());
        let grpc = match &config.grpc {
            Some(grpc) => Some(grpc_listener(
                grpc,
                Arc::new(kms.clone()),
                Arc::clone(&directory),
                Arc::new(certificates.clone()),
                Arc::clone(&clock),
                PublishedServiceKeys::new(tenancy.clone(), Arc::new(kms.clone())),
                Arc::new(kms.clone()),
            )?),
            None => None,
        };
        let state = Arc::new(
            KmsState::new(registry, Arc::new(kms.clone()), directory, certificates)
                .with_audit(Arc::new(kms.clone()))
                .with_local(kms.clone()),
        );
        let published = PublishedServiceKeys::new(tenancy.clone(), Arc::new(kms.clone()));
        Ok(Self {
            tenancy,
            kms,
            state,
            auth,
            metrics: deps.metrics().clone(),
            health: deps.health(),
            http: config.http.clone(),
            grpc,
            published,
        })
    }

    fn app(&self) -> BoxEndpoint<'static, Response> {
        Self::app(self)
    }

    /// The gRPC listener, when `grpc` is configured.
    async fn side_tasks(&self, stop: CancellationToken) -> Result<Vec<SideTask>, BoxError> {
        let Some(grpc) = self.grpc.clone() else {
            return Ok(Vec::new());
        };
        let listener = TcpListener::bind(grpc.listen())
            .await
            .map_err(|err| format!("cannot listen for gRPC on {}: {err}", grpc.listen()))?;
        tracing::info!(listen = %grpc.listen(), "serving gRPC");
        Ok(vec![Box::pin(async move {
            grpc.serve(listener, async move { stop.cancelled().await })
                .await
                .map_err(BoxError::from)
        })])
    }
}

/// The shortest time between two reads of a service's published keys.
const PUBLISHED_KEYS_MIN_REFRESH: Duration = Duration::from_secs(5);

/// The paths served without a token: the shared probe and documentation paths, and the
/// published keys of service identities (public keys every receiver must read).
pub const KMS_ANONYMOUS_PATHS: [&str; 5] = [
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    crate::identity::PATH,
];

/// Builds the gRPC service and its TLS settings from `config`.
///
/// # Errors
/// [`Error::Grpc`] for a missing or unreadable TLS file, a private key in a trusted JWK set,
/// or `mtls` without a client CA.
fn grpc_listener(
    config: &GrpcConfig,
    kms: Arc<dyn Kms>,
    directory: Arc<dyn TenantDirectory>,
    certificates: Arc<dyn CertificateSource>,
    clock: Arc<dyn Clock>,
    published: PublishedServiceKeys,
    audit: Arc<dyn AuditTrail>,
) -> Result<GrpcListener, Error> {
    let auth = match &config.auth {
        GrpcAuthConfig::ServiceJwt {
            audience,
            services,
            max_lifetime_secs,
            published_keys_ttl_secs,
        } => {
            let mut trusted = TrustedServices::new();
            let published = Arc::new(PublishedKeysResolver::new(
                published,
                Arc::clone(&clock),
                Duration::from_secs(*published_keys_ttl_secs),
                PUBLISHED_KEYS_MIN_REFRESH,
            ));
            for service in services {
                match (&service.jwks, service.kms_published) {
                    (Some(jwks), false) => {
                        if jwks.keys.iter().any(Jwk::is_private) {
                            return Err(Error::grpc(format!(
                                "`grpc.auth.services` entry `{}` holds a private key; give public keys only",
                                service.name
                            )));
                        }
                        trusted = trusted.with_service(service.name.clone(), jwks);
                    }
                    (None, true) => {
                        trusted = trusted.with_resolver(
                            service.name.clone(),
                            Arc::clone(&published) as Arc<dyn edk_core::jose::KeyResolver>,
                        );
                    }
                    _ => {
                        return Err(Error::grpc(format!(
                            "`grpc.auth.services` entry `{}` needs exactly one of `jwks` and `kms_published: true`",
                            service.name
                        )));
                    }
                }
            }
            let auth = ServiceJwtAuth::new(audience.clone(), Arc::new(trusted), clock)
                .with_max_lifetime(Duration::from_secs(*max_lifetime_secs));
            ServiceAuth::ServiceJwt(services.iter().fold(auth, |auth, service| {
                let auth = match &service.tenants {
                    Some(tenants) => auth.with_tenants(service.name.clone(), tenants.clone()),
                    None => auth,
                };
                if service.acts_as.is_empty() {
                    auth
                } else {
                    auth.with_acts_as(service.name.clone(), service.acts_as.clone())
                }
            }))
        }
        GrpcAuthConfig::Mtls {
            allow,
            tenants,
            acts_as,
        } => {
            let auth = allow.iter().fold(MtlsAuth::new(), |auth, identity| {
                auth.allow(identity.clone())
            });
            let auth = tenants.iter().fold(auth, |auth, (identity, tenants)| {
                auth.with_tenants(identity.clone(), tenants.clone())
            });
            ServiceAuth::Mtls(acts_as.iter().fold(auth, |auth, (identity, names)| {
                auth.with_acts_as(identity.clone(), names.clone())
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
        service: KmsGrpcService::serving(
            kms,
            directory,
            auth,
            Some(certificates),
            Some(AuditReaders::new(audit, config.audit_readers.clone())),
        ),
        tls,
    })
}

fn read_pem(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|err| Error::grpc(format!("cannot read `{}`: {err}", path.display())))
}
