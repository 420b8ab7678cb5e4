#![doc = include_str!("../README.md")]

pub mod admin;
pub mod admin_status;
pub mod config;
pub mod jobs;
pub mod protocol;
pub mod qr;
mod status_lists;

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Clock;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::{DidKeyResolver, Resolver};
use edk_kms::Kms;
use edk_oauth::client_attestation::CLIENT_ATTESTATION;
use edk_oauth::federation::{OidcFederation, UPSTREAM_OIDC};
use edk_oauth::jobs::PurgeExpiredJob as OAuthPurgeExpiredJob;
use edk_oauth::{AuthorizationServer, SqlStore as OAuthSqlStore};
use edk_oid4vci::{HttpClaimsSource, Issuer, IssuerOptions, SqlStore};
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

pub use admin::{AdminApi, SCOPE_READ, SCOPE_WRITE, SCOPES};
pub use admin_status::StatusAdminApi;

/// The admin APIs of the issuer: configurations, offers and sessions, and credential status.
pub type IssuerApis = (AdminApi, StatusAdminApi);
pub use config::{AccessTokenKeySource, EncryptionSetting, IssuerServerConfig, IssuerSettings};
pub use protocol::{ProtocolEndpoint, TokenKeys};

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/api/oid4vci/v1";

/// Why the issuer server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundled migration set is malformed.
    #[error("a bundled migration set is malformed")]
    Migrations(#[source] edk_tenancy::error::MigrationError),
    /// The admin authentication is misconfigured.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] AuthSetupError),
    /// The resolver of key proofs named by DID could not be built.
    #[error("building the proof key resolver failed")]
    Resolver(#[source] edk_did::Error),
    /// The `rate_limits` section is invalid.
    #[error("the rate limits could not be set up")]
    RateLimits(#[source] edk_server::rate_limit::RateLimitError),
}

/// The issuer's parts over a tenancy, a KMS and the tenants' authorization server, for the
/// standalone binary and for mounting into another server (the all-in-one `edk`).
#[derive(Debug)]
pub struct IssuerParts {
    /// The tenancy whose `issuer` bindings route the protocol surface.
    pub tenancy: Tenancy,
    /// The credential issuer.
    pub issuer: Arc<Issuer>,
    /// The authorization server that mints pre-authorized codes and signs the access tokens
    /// the credential endpoint accepts.
    pub server: Arc<AuthorizationServer>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How long wallets may cache the metadata, in seconds.
    pub metadata_max_age_secs: u32,
    /// How often status lists that changed are signed again.
    pub status_list_publish_interval: std::time::Duration,
    /// Where the credential endpoint finds the keys of access tokens.
    pub token_keys: TokenKeys,
}

impl IssuerParts {
    /// The parts of `issuer` over `tenancy` with its authorization server `server`, taking
    /// the metadata cache lifetime and the status list publication period from `settings`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        issuer: Arc<Issuer>,
        server: Arc<AuthorizationServer>,
        clock: Arc<dyn Clock>,
        settings: &IssuerSettings,
        token_keys: TokenKeys,
    ) -> Self {
        Self {
            tenancy,
            issuer,
            server,
            clock,
            metadata_max_age_secs: settings.metadata_max_age_secs,
            status_list_publish_interval: std::time::Duration::from_secs(
                settings.status_list_publish_interval_secs.max(1),
            ),
            token_keys,
        }
    }

    /// The issuer over `tenancy` (built with [`edk_oid4vci::migrations`]), signing with `kms`,
    /// resolving proof keys given as `did:key` and `did:jwk`, with `options`, publishing
    /// wallet notifications on the tenancy's event bus.
    ///
    /// # Errors
    /// [`Error::Resolver`] when the DID resolver cannot be built.
    pub fn issuer(
        tenancy: &Tenancy,
        kms: Arc<dyn Kms>,
        clock: Arc<dyn Clock>,
        options: IssuerOptions,
    ) -> Result<Issuer, Error> {
        let resolver = Resolver::builder()
            .method(Arc::new(DidKey::new()))
            .method(Arc::new(DidJwk))
            .build()
            .map_err(Error::Resolver)?;
        Ok(Issuer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            kms,
            Arc::new(DidKeyResolver::new(Arc::new(resolver))),
            clock,
        )
        .with_options(options)
        .with_events(Arc::clone(tenancy.events())))
    }

    /// The issuer's housekeeping job ([`jobs::PurgeExpiredJob`]) over the tenancy.
    #[must_use]
    pub fn purge_job(&self) -> Arc<dyn Job> {
        Arc::new(jobs::PurgeExpiredJob::new(Arc::new(SqlStore::new(
            self.tenancy.clone(),
        ))))
    }

    /// The issuer's periodic jobs: housekeeping ([`jobs::PurgeExpiredJob`]) and status list
    /// publication ([`jobs::PublishStatusListsJob`]).
    #[must_use]
    pub fn jobs(&self) -> Vec<Arc<dyn Job>> {
        vec![
            self.purge_job(),
            Arc::new(jobs::PublishStatusListsJob::new(
                Arc::clone(&self.issuer),
                self.status_list_publish_interval,
            )),
        ]
    }

    /// The protocol surface.
    #[must_use]
    pub fn protocol_endpoint(&self) -> ProtocolEndpoint {
        ProtocolEndpoint::new(
            self.tenancy.clone(),
            Arc::clone(&self.issuer),
            Arc::clone(&self.server),
            Arc::clone(&self.clock),
            self.metadata_max_age_secs,
            self.token_keys.clone(),
        )
    }

    /// The admin APIs.
    #[must_use]
    pub fn admin_apis(&self) -> IssuerApis {
        (
            AdminApi::new(
                self.tenancy.clone(),
                Arc::clone(&self.issuer),
                Arc::clone(&self.server),
            ),
            StatusAdminApi::new(self.tenancy.clone(), Arc::clone(&self.issuer)),
        )
    }
}

/// The issuer server `edk-issuer`, built from its configuration and the shared
/// dependencies: every tenant's issuer endpoints, the admin API, health and metrics.
#[derive(Debug)]
pub struct IssuerServer {
    parts: IssuerParts,
    health: HealthApi,
    auth: AdminAuth,
    http: HttpConfig,
    metrics: Metrics,
    limiter: RateLimiter,
}

impl IssuerServer {
    /// The server's parts.
    #[must_use]
    pub const fn parts(&self) -> &IssuerParts {
        &self.parts
    }

    /// The authorization server of `config` over `deps`, built as `edk-as` builds it
    /// (federating end users to each tenant's upstream OpenID Provider), so that both
    /// servers on one database share every tenant's authorization server state.
    #[must_use]
    pub fn authorization_server_for(
        config: &IssuerServerConfig,
        deps: &Deps,
    ) -> AuthorizationServer {
        let tenancy = deps.tenancy();
        AuthorizationServer::new(
            Arc::new(OAuthSqlStore::new(tenancy.clone())),
            deps.kms().kms(),
            Arc::new(
                OidcFederation::new(tenancy.clone(), deps.http().clone(), deps.clock())
                    .with_kms(deps.kms().kms()),
            ),
            deps.clock(),
            config.oauth.clone(),
        )
        .with_credential_grant_policy(Arc::new(edk_oid4vci::IssuerGrantPolicy::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            tenancy.clone(),
            deps.clock(),
        )))
    }
}

#[async_trait]
impl Service for IssuerServer {
    type Config = IssuerServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-issuer";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        Ok(deps
            .migrations(edk_oauth::migrations().map_err(Error::Migrations)?)
            .migrations(edk_oauth::federation::migrations().map_err(Error::Migrations)?)
            .migrations(edk_oid4vci::migrations().map_err(Error::Migrations)?)
            .config_key(&UPSTREAM_OIDC)
            .config_key(&CLIENT_ATTESTATION)
            .config_key(&edk_oid4vci::SESSION_RETENTION)
            .config_key(&edk_oid4vci::CLAIMS_ENDPOINT)
            .config_key(&edk_oid4vci::WALLET_INITIATED))
    }

    async fn build(config: &IssuerServerConfig, deps: &Deps) -> Result<Self, Error> {
        let server = Arc::new(Self::authorization_server_for(config, deps));
        let issuer = IssuerParts::issuer(
            deps.tenancy(),
            deps.kms().kms(),
            deps.clock(),
            config.issuer.options(),
        )?
        .with_claims_source(Arc::new(HttpClaimsSource::new(deps.http().clone())))
        .with_certificates(deps.certificates());
        let auth = AdminAuth::new(
            &config.auth,
            deps.clock(),
            &ANONYMOUS_PATHS,
            Some(deps.http()),
        )
        .map_err(Error::Auth)?;
        let limiter = RateLimiter::new(&config.rate_limits, deps.clock(), Some(deps.metrics()))
            .map_err(Error::RateLimits)?
            .for_service("issuer");
        Ok(Self {
            limiter,
            parts: IssuerParts {
                tenancy: deps.tenancy().clone(),
                issuer: Arc::new(issuer),
                server,
                clock: deps.clock(),
                metadata_max_age_secs: config.issuer.metadata_max_age_secs,
                status_list_publish_interval: std::time::Duration::from_secs(
                    config.issuer.status_list_publish_interval_secs.max(1),
                ),
                token_keys: match config.issuer.access_token_keys {
                    AccessTokenKeySource::Kms => TokenKeys::Kms,
                    AccessTokenKeySource::JwksUri => TokenKeys::JwksUri(deps.http().clone()),
                },
            },
            health: deps.health(),
            auth,
            http: config.http.clone(),
            metrics: deps.metrics().clone(),
        })
    }

    /// `oid4vci.purge_expired`, `oid4vci.publish_status_lists`, and `oauth.purge_expired`
    /// for the authorization server state (also run by `edk-as` on the same database:
    /// purging twice deletes nothing twice).
    fn jobs(&self) -> Vec<Arc<dyn Job>> {
        let mut jobs = self.parts.jobs();
        jobs.push(Arc::new(OAuthPurgeExpiredJob::new(Arc::clone(
            self.parts.server.store(),
        ))));
        jobs
    }

    fn app(&self) -> BoxEndpoint<'static, Response> {
        let admin = openapi_routes(openapi_service(&self.parts, self.health.clone()))
            .with(self.auth.clone())
            .boxed();
        compose(
            &self.http,
            &self.metrics,
            &self.parts,
            admin,
            Some(self.limiter.clone()),
        )
    }
}

/// The OpenAPI service: health probes (with `health`'s readiness checks) and the admin APIs.
#[must_use]
pub fn openapi_service(
    parts: &IssuerParts,
    health: HealthApi,
) -> OpenApiService<(HealthApi, IssuerApis), ()> {
    OpenApiService::new(
        (health, parts.admin_apis()),
        "EDK credential issuer",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The whole application: the admin surface for `/api/...` and the anonymous paths, the
/// per-tenant issuer endpoints for everything else, `/metrics`, and the shared middleware.
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
pub fn build_app(
    http: &HttpConfig,
    auth: &AuthConfig,
    metrics: &Metrics,
    parts: &IssuerParts,
    health: HealthApi,
    client: Option<&reqwest::Client>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin_auth = AdminAuth::new(auth, Arc::clone(&parts.clock), &ANONYMOUS_PATHS, client)?;
    let admin = openapi_routes(openapi_service(parts, health))
        .with(admin_auth)
        .boxed();
    Ok(compose(http, metrics, parts, admin, None))
}

/// The admin surface beside the protocol surface, with `/metrics` and the middleware.
fn compose(
    http: &HttpConfig,
    metrics: &Metrics,
    parts: &IssuerParts,
    admin: BoxEndpoint<'static, Response>,
    limiter: Option<RateLimiter>,
) -> BoxEndpoint<'static, Response> {
    let mut protocol = parts.protocol_endpoint();
    if let Some(limiter) = limiter {
        protocol = protocol.with_rate_limiter(limiter);
    }
    let protocol = protocol.boxed();
    edk_server::app(
        http,
        metrics,
        None,
        Route::new().nest("/", edk_server::SurfaceDispatch::new(admin, protocol)),
    )
}
