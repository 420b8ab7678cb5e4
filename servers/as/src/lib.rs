#![doc = include_str!("../README.md")]

pub mod admin;
pub mod config;
pub mod protocol;

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Clock;
use edk_oauth::client_attestation::CLIENT_ATTESTATION;
use edk_oauth::federation::{OidcFederation, UPSTREAM_OIDC};
use edk_oauth::jobs::PurgeExpiredJob;
use edk_oauth::{Authenticator, AuthorizationServer, SqlStore};
use edk_server::deps::{Deps, DepsBuilder};
use edk_server::{
    ANONYMOUS_PATHS, AdminAuth, AuthConfig, AuthSetupError, HealthApi, HttpConfig, Metrics,
    RateLimiter, Service, openapi_routes,
};
use edk_tenancy::Tenancy;
use edk_tenancy::scheduler::Job;
use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response, Route};
use poem_openapi::OpenApiService;

pub use admin::AdminApi;
pub use config::AsServerConfig;
pub use protocol::ProtocolEndpoint;

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/api/oauth2/v1";

/// Why the authorization server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundled migration set is malformed.
    #[error("a bundled migration set is malformed")]
    Migrations(#[source] edk_tenancy::error::MigrationError),
    /// The admin authentication is misconfigured.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] AuthSetupError),
    /// The `rate_limits` section is invalid.
    #[error("the rate limits could not be set up")]
    RateLimits(#[source] edk_server::rate_limit::RateLimitError),
}

/// The authorization server `edk-as`, built from its configuration and the shared
/// dependencies: every tenant's OAuth protocol surface, the admin API, health and metrics.
#[derive(Debug)]
pub struct AsServer {
    tenancy: Tenancy,
    server: Arc<AuthorizationServer>,
    health: HealthApi,
    auth: AdminAuth,
    http: HttpConfig,
    metrics: Metrics,
    limiter: RateLimiter,
}

impl AsServer {
    /// The server over `deps` with `server` as the authorization server (an embedding
    /// application or a test brings its own `Authenticator` this way; [`Service::build`]
    /// federates end users to each tenant's upstream OpenID Provider).
    ///
    /// # Errors
    /// [`Error::Auth`] when the admin issuers are misconfigured, [`Error::RateLimits`] when
    /// the `rate_limits` section is invalid.
    pub fn with_server(
        config: &AsServerConfig,
        deps: &Deps,
        server: Arc<AuthorizationServer>,
    ) -> Result<Self, Error> {
        let auth = AdminAuth::new(
            &config.auth,
            deps.clock(),
            &ANONYMOUS_PATHS,
            Some(deps.http()),
        )
        .map_err(Error::Auth)?;
        let limiter = RateLimiter::new(&config.rate_limits, deps.clock(), Some(deps.metrics()))
            .map_err(Error::RateLimits)?
            .for_service("as");
        Ok(Self {
            tenancy: deps.tenancy().clone(),
            server,
            health: deps.health(),
            auth,
            http: config.http.clone(),
            metrics: deps.metrics().clone(),
            limiter,
        })
    }

    /// The rate limiter of the protocol endpoints (counting for the service `as`).
    #[must_use]
    pub const fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The authorization server inside.
    #[must_use]
    pub const fn authorization_server(&self) -> &Arc<AuthorizationServer> {
        &self.server
    }

    /// The authorization server of `config` over `deps`, federating end users to each
    /// tenant's upstream OpenID Provider (tenant configuration `oauth.upstream_oidc`), and
    /// granting authorization codes for credential offers as each tenant's credential
    /// issuer decides ([`edk_oid4vci::IssuerGrantPolicy`], over the same database).
    #[must_use]
    pub fn authorization_server_for(config: &AsServerConfig, deps: &Deps) -> AuthorizationServer {
        let tenancy = deps.tenancy();
        Self::authorization_server_with(
            config,
            deps,
            Arc::new(
                OidcFederation::new(tenancy.clone(), deps.http().clone(), deps.clock())
                    .with_kms(deps.kms().kms()),
            ),
        )
    }

    /// As [`AsServer::authorization_server_for`], with `authenticator` logging end users in
    /// (for example one wrapping the federation with a check of its own).
    #[must_use]
    pub fn authorization_server_with(
        config: &AsServerConfig,
        deps: &Deps,
        authenticator: Arc<dyn Authenticator>,
    ) -> AuthorizationServer {
        let tenancy = deps.tenancy();
        let policy = edk_oid4vci::IssuerGrantPolicy::new(
            Arc::new(edk_oid4vci::SqlStore::new(tenancy.clone())),
            tenancy.clone(),
            deps.clock(),
        );
        AuthorizationServer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            deps.kms().kms(),
            authenticator,
            deps.clock(),
            config.oauth.clone(),
        )
        .with_credential_grant_policy(Arc::new(policy))
    }
}

#[async_trait]
impl Service for AsServer {
    type Config = AsServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-as";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        Ok(deps
            .migrations(edk_oauth::migrations().map_err(Error::Migrations)?)
            .migrations(edk_oauth::federation::migrations().map_err(Error::Migrations)?)
            .migrations(edk_oid4vci::migrations().map_err(Error::Migrations)?)
            .config_key(&UPSTREAM_OIDC)
            .config_key(&CLIENT_ATTESTATION)
            .config_key(&edk_oid4vci::WALLET_INITIATED))
    }

    async fn build(config: &AsServerConfig, deps: &Deps) -> Result<Self, Error> {
        let server = Arc::new(Self::authorization_server_for(config, deps));
        Self::with_server(config, deps, server)
    }

    fn jobs(&self) -> Vec<Arc<dyn Job>> {
        vec![Arc::new(PurgeExpiredJob::new(Arc::clone(
            self.server.store(),
        )))]
    }

    fn app(&self) -> BoxEndpoint<'static, Response> {
        let admin = openapi_routes(openapi_service(
            &self.tenancy,
            &self.server,
            self.health.clone(),
        ))
        .with(self.auth.clone())
        .boxed();
        compose(
            &self.http,
            &self.metrics,
            &self.tenancy,
            &self.server,
            admin,
            Some(self.limiter.clone()),
        )
    }
}

/// The OpenAPI service: health probes (with `health`'s readiness checks) and the admin API.
#[must_use]
pub fn openapi_service(
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
    health: HealthApi,
) -> OpenApiService<(HealthApi, AdminApi), ()> {
    OpenApiService::new(
        (health, AdminApi::new(tenancy.clone(), Arc::clone(server))),
        "EDK authorization server",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The admin surface alone (`/api/oauth2/v1`, health, `/openapi.json`, `/docs`), behind
/// admin authentication; for composing into another server (the all-in-one `edk`).
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
pub fn admin_routes(
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
    health: HealthApi,
    auth: &AuthConfig,
    clock: Arc<dyn Clock>,
    http: Option<&reqwest::Client>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin_auth = AdminAuth::new(auth, clock, &ANONYMOUS_PATHS, http)?;
    Ok(openapi_routes(openapi_service(tenancy, server, health))
        .with(admin_auth)
        .boxed())
}

/// The whole application: the admin surface for `/api/...` and the anonymous paths, the
/// per-tenant protocol surface for everything else (with `rate_limiter`'s limits when
/// given), `/metrics`, and the shared middleware.
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of the application, each shared with the all-in-one server"
)]
pub fn build_app(
    http: &HttpConfig,
    auth: &AuthConfig,
    metrics: &Metrics,
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
    health: HealthApi,
    clock: Arc<dyn Clock>,
    client: Option<&reqwest::Client>,
    rate_limiter: Option<RateLimiter>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin = admin_routes(tenancy, server, health, auth, clock, client)?;
    Ok(compose(http, metrics, tenancy, server, admin, rate_limiter))
}

/// The admin surface beside the protocol surface, with `/metrics` and the middleware.
fn compose(
    http: &HttpConfig,
    metrics: &Metrics,
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
    admin: BoxEndpoint<'static, Response>,
    limiter: Option<RateLimiter>,
) -> BoxEndpoint<'static, Response> {
    let mut protocol = ProtocolEndpoint::new(tenancy.clone(), Arc::clone(server));
    if let Some(limiter) = limiter {
        protocol = protocol.with_rate_limiter(limiter);
    }
    let dispatch = edk_server::SurfaceDispatch::new(admin, protocol.boxed());
    edk_server::app(http, metrics, None, Route::new().nest("/", dispatch))
}
