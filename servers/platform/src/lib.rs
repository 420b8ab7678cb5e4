#![doc = include_str!("../README.md")]

pub mod admins;
pub mod api;
pub mod config;
pub mod console;
pub mod onboarding;
pub mod operator_login;
pub mod operators;
pub mod setup;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response, Route};
use poem_openapi::OpenApiService;
use secrecy::{ExposeSecret, SecretString};

use edk_core::{Clock, TenantId};
use edk_kms::Kms;
use edk_kms::audit::AuditTrail;
use edk_oauth::federation::OidcFederation;
use edk_oauth::jobs::PurgeExpiredJob;
use edk_oauth::{AuthorizationServer, NoAuthenticator, SqlStore};
use edk_server::SideTask;
use edk_server::deps::{Deps, DepsBuilder};
use edk_server::directory::DirectoryListener;
use edk_server::service::BoxError;
use edk_server::{AdminAuth, HealthApi, HttpConfig, Metrics, Service, openapi_routes};
use edk_tenancy::Tenancy;
use edk_tenancy::scheduler::Job;
use tokio_util::sync::CancellationToken;

pub use admins::TenantAdminApi;
pub use api::PlatformApi;
pub use config::{PlatformServerConfig, PlatformSettings};
pub use operator_login::{OperatorLogin, OperatorLoginApi};
pub use operators::{
    API_PREFIX, OPERATOR_PREFIX, OPERATOR_REALM_SLUG, PlatformAuth, PlatformBearer,
    PlatformPrincipal, SETUP_PATH,
};

/// Why the platform server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundled migration set is malformed.
    #[error("a bundled migration set is malformed")]
    Migrations(#[source] edk_tenancy::error::MigrationError),
    /// The bundled KMS or certificate store migrations are malformed.
    #[error("the bundled KMS or certificate store migrations are malformed")]
    KmsMigrations(#[source] edk_kms::Error),
    /// The operator realm cannot be provisioned or bound.
    #[error("the operator authorization server cannot be set up")]
    Realm(#[source] operators::RealmError),
    /// The admin-token issuers of the `auth` section are misconfigured.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] edk_server::AuthSetupError),
    /// The tenant directory listener (`grpc`) is misconfigured.
    #[error("the tenant directory service cannot be set up")]
    Directory(#[source] edk_server::directory::DirectorySetupError),
    /// The admin console cannot be registered at the operator authorization server.
    #[error("the admin console cannot be registered")]
    Console(#[source] console::ConsoleError),
    /// The setup token cannot be issued.
    #[error("the first-run setup token cannot be issued")]
    Setup(#[source] setup::SetupError),
}

/// Adds what the platform needs to `deps`: every tenant table of the services a tenant it
/// onboards is used by (keys and their audit chain, the authorization server's tables, also
/// for the operator realm, certificates, DIDs, credential configurations, the verifier's
/// sessions), so that a tenant is whole as soon as it is provisioned, whether the KMS runs in
/// process or remote; and the platform's configuration keys. The all-in-one server calls it
/// too.
///
/// # Errors
/// [`Error::Migrations`] for a malformed bundled migration set.
pub fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
    Ok(deps
        .migrations(edk_kms::migrations().map_err(Error::KmsMigrations)?)
        .migrations(edk_oauth::migrations().map_err(Error::Migrations)?)
        .migrations(edk_kms::cert::migrations().map_err(Error::KmsMigrations)?)
        .migrations(edk_did::store::migrations().map_err(Error::Migrations)?)
        .migrations(edk_oid4vci::migrations().map_err(Error::Migrations)?)
        .migrations(edk_oauth::federation::migrations().map_err(Error::Migrations)?)
        .migrations(edk_verifier_server::store::migrations().map_err(Error::Migrations)?)
        .config_key(&edk_oauth::federation::UPSTREAM_OIDC)
        .config_key(&operator_login::FEDERATED_OPERATORS)
        .config_key(&setup::SETUP_STATE)
        .config_key(&onboarding::ONBOARDING)
        .config_key(&onboarding::ISSUER_DID)
        .config_key(&edk_oauth::client_attestation::CLIENT_ATTESTATION))
}

/// The platform server `edk-platform`, built from its configuration and the shared
/// dependencies: first-run setup, the operator authorization server and the platform API.
pub struct PlatformServer {
    tenancy: Tenancy,
    oauth: Arc<AuthorizationServer>,
    kms: Arc<dyn Kms>,
    audit: Arc<dyn AuditTrail>,
    clock: Arc<dyn Clock>,
    realm: TenantId,
    audience: String,
    health: HealthApi,
    auth: PlatformAuth,
    http: HttpConfig,
    metrics: Metrics,
    setup_token: Option<SecretString>,
    directory: Option<Arc<DirectoryListener>>,
}

impl fmt::Debug for PlatformServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformServer")
            .field("realm", &self.realm)
            .field(
                "setup_token",
                &self.setup_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl PlatformServer {
    /// The reserved tenant holding the operator authorization server's state.
    #[must_use]
    pub const fn realm(&self) -> TenantId {
        self.realm
    }

    /// The operator authorization server.
    #[must_use]
    pub const fn authorization_server(&self) -> &Arc<AuthorizationServer> {
        &self.oauth
    }

    /// The setup token this start handed out (also printed or written to
    /// `platform.setup_token_file`); `None` once setup is closed or when the token file
    /// still holds the current token.
    #[must_use]
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_ref().map(ExposeSecret::expose_secret)
    }

    /// Binds the operator authorization server to `host:port` (a test or an embedding
    /// application that learns its port once listening).
    ///
    /// # Errors
    /// [`Error::Realm`] when the binding cannot be made.
    pub async fn bind_operator_endpoint(
        &self,
        host: &str,
        port: Option<u16>,
        loopback_http: bool,
    ) -> Result<(), Error> {
        operators::bind_operator_endpoint(&self.tenancy, self.realm, host, port, loopback_http)
            .await
            .map_err(Error::Realm)?;
        console::register_client(&self.tenancy, &self.oauth, self.realm)
            .await
            .map_err(Error::Console)
    }

    /// The tenant directory listener, when `grpc` is configured (a test serves it on a
    /// listener of its own with [`DirectoryListener::serve`]).
    #[must_use]
    pub fn directory_listener(&self) -> Option<&DirectoryListener> {
        self.directory.as_deref()
    }

    /// The OpenAPI service of this server.
    #[must_use]
    pub fn openapi_service(&self) -> OpenApiService<(HealthApi, PlatformApis), ()> {
        openapi_service(
            apis(&ApiDeps {
                tenancy: self.tenancy.clone(),
                oauth: Arc::clone(&self.oauth),
                kms: Arc::clone(&self.kms),
                audit: Arc::clone(&self.audit),
                clock: Arc::clone(&self.clock),
                realm: self.realm,
                audience: self.audience.clone(),
            }),
            self.health.clone(),
        )
    }
}

#[async_trait]
impl Service for PlatformServer {
    type Config = PlatformServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-platform";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        prepare(deps)
    }

    async fn build(config: &PlatformServerConfig, deps: &Deps) -> Result<Self, Error> {
        let tenancy = deps.tenancy().clone();
        let settings = &config.platform;
        let realm = operators::operator_realm(&tenancy)
            .await
            .map_err(Error::Realm)?;
        // Runtime servers name it as `directory.kms_realm`: the KMS keeps their service
        // identity aliases there.
        tracing::info!(%realm, "operator realm (the tenant of service identity keys)");
        operators::bind_operator_endpoint(
            &tenancy,
            realm,
            &settings.host,
            settings.port,
            settings.dangerous_loopback_http,
        )
        .await
        .map_err(Error::Realm)?;
        let oauth = Arc::new(AuthorizationServer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            deps.kms().kms(),
            Arc::new(OperatorLogin::new(
                tenancy.clone(),
                Arc::new(
                    OidcFederation::new(tenancy.clone(), deps.http().clone(), deps.clock())
                        .with_kms(deps.kms().kms()),
                ),
                Arc::new(NoAuthenticator),
            )),
            deps.clock(),
            config.oauth.clone(),
        ));
        console::register_client(&tenancy, &oauth, realm)
            .await
            .map_err(Error::Console)?;
        let setup_token = setup::issue_token(&tenancy, settings.setup_token_file.as_deref())
            .await
            .map_err(Error::Setup)?;
        if let Some(token) = &setup_token
            && settings.setup_token_file.is_none()
        {
            announce(token);
        }
        let directory = config
            .grpc
            .as_ref()
            .map(|grpc| DirectoryListener::new(grpc, tenancy.clone(), deps.clock(), deps.http()))
            .transpose()
            .map_err(Error::Directory)?
            .map(Arc::new);
        let tenant_admins = AdminAuth::new(&config.auth, deps.clock(), &[], Some(deps.http()))
            .map_err(Error::Auth)?;
        Ok(Self {
            auth: PlatformAuth::new(tenancy.clone(), deps.kms().kms(), deps.clock(), realm)
                .with_tenant_admins(tenant_admins),
            tenancy,
            oauth,
            kms: deps.kms().kms(),
            audit: deps.kms().audit_trail(),
            clock: deps.clock(),
            realm,
            audience: config.auth.audience.clone(),
            health: deps.health(),
            http: config.http.clone(),
            metrics: deps.metrics().clone(),
            setup_token,
            directory,
        })
    }

    fn jobs(&self) -> Vec<Arc<dyn Job>> {
        vec![Arc::new(PurgeExpiredJob::new(Arc::clone(
            self.oauth.store(),
        )))]
    }

    /// The tenant directory listener, when `grpc` is configured.
    async fn side_tasks(&self, stop: CancellationToken) -> Result<Vec<SideTask>, BoxError> {
        let Some(directory) = self.directory.clone() else {
            return Ok(Vec::new());
        };
        let listen = directory.listen();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| format!("cannot listen for gRPC on {listen}: {err}"))?;
        tracing::info!(%listen, "serving the tenant directory over gRPC");
        Ok(vec![Box::pin(async move {
            directory
                .serve(listener, stop)
                .await
                .map_err(BoxError::from)
        })])
    }

    fn app(&self) -> BoxEndpoint<'static, Response> {
        let admin = openapi_routes(self.openapi_service())
            .with(self.auth.clone())
            .boxed();
        let protocol = || {
            edk_as_server::ProtocolEndpoint::new(self.tenancy.clone(), Arc::clone(&self.oauth))
                .boxed()
        };
        let console = console::Console::new(
            openapi_routes(self.openapi_service())
                .with(self.auth.clone())
                .boxed(),
            protocol(),
            self.tenancy.clone(),
            self.realm,
        );
        edk_server::app(
            &self.http,
            &self.metrics,
            None,
            Route::new().nest(
                "/",
                console.or(edk_server::SurfaceDispatch::new(admin, protocol())),
            ),
        )
    }
}

/// Prints the setup token for the operator at the console (never to the log).
#[expect(
    clippy::print_stderr,
    reason = "the setup token is for the operator's eyes only, never the log"
)]
fn announce(token: &SecretString) {
    eprintln!(
        "edk-platform: first-run setup token (POST {SETUP_PATH}): {}",
        token.expose_secret()
    );
}

/// Every API of the platform under `/api/platform/v1`.
pub type PlatformApis = (PlatformApi, TenantAdminApi, OperatorLoginApi);

/// What the platform APIs are built from.
#[derive(Clone, Debug)]
pub struct ApiDeps {
    /// The tenancy.
    pub tenancy: Tenancy,
    /// The authorization server serving the operator realm (and the tenants' on this host).
    pub oauth: Arc<AuthorizationServer>,
    /// The KMS holding the tenants' keys.
    pub kms: Arc<dyn Kms>,
    /// The tenants' KMS audit chains (the in-process KMS's, or the remote KMS's that names
    /// the platform among its `grpc.audit_readers`).
    pub audit: Arc<dyn AuditTrail>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The operator realm.
    pub realm: TenantId,
    /// The audience EDK servers expect of admin tokens (`auth.audience`), which tenant
    /// administrators' tokens of the operator authorization server name too.
    pub audience: String,
}

/// The platform APIs over `deps`.
#[must_use]
pub fn apis(deps: &ApiDeps) -> PlatformApis {
    (
        PlatformApi::new(
            deps.tenancy.clone(),
            Arc::clone(&deps.oauth),
            Arc::clone(&deps.kms),
            Arc::clone(&deps.audit),
            Arc::clone(&deps.clock),
            deps.realm,
        ),
        TenantAdminApi::new(
            deps.tenancy.clone(),
            Arc::clone(&deps.oauth),
            deps.realm,
            deps.audience.clone(),
        ),
        OperatorLoginApi::new(
            deps.tenancy.clone(),
            Arc::clone(&deps.oauth),
            Arc::clone(&deps.clock),
            deps.realm,
        ),
    )
}

/// The OpenAPI service of the platform: health probes and `api`.
#[must_use]
pub fn openapi_service(
    api: PlatformApis,
    health: HealthApi,
) -> OpenApiService<(HealthApi, PlatformApis), ()> {
    OpenApiService::new((health, api), "EDK platform", env!("CARGO_PKG_VERSION"))
}
