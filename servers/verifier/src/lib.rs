#![doc = include_str!("../README.md")]

pub mod admin;
pub mod config;
pub mod jobs;
pub mod protocol;
pub mod status;
pub mod store;
pub mod verifier;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Clock;
use edk_server::deps::{Deps, DepsBuilder};
use edk_server::{
    ANONYMOUS_PATHS, AdminAuth, AuthConfig, AuthSetupError, HealthApi, HttpConfig, Metrics,
    RateLimiter, Service, openapi_routes,
};
use edk_tenancy::Tenancy;
use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response, Route};
use poem_openapi::OpenApiService;

pub use admin::{AdminApi, SCOPE_READ, SCOPE_WRITE, SCOPES};
pub use config::{VerifierServerConfig, VerifierSettings};
pub use protocol::ProtocolEndpoint;
pub use status::StatusLists;
pub use store::{PRESENTATION_RETENTION, PresentationRetention, SqlStore, migrations};
pub use verifier::{ClientIdPrefix, NewRequest, StoredAttestation, Verifier, WalletError};

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/api/oid4vp/v1";

/// Why the verifier server could not be built.
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
    /// The HTTP client for webhooks and status lists could not be built.
    #[error("the HTTP client for webhooks and status lists could not be built")]
    HttpClient(#[source] reqwest::Error),
}

/// The verifier's parts over a tenancy and a KMS, for the standalone binary and for mounting
/// into another server (the all-in-one `edk`).
#[derive(Debug)]
pub struct VerifierParts {
    /// The tenancy whose `verifier` bindings route the protocol surface.
    pub tenancy: Tenancy,
    /// The verifier.
    pub verifier: Arc<Verifier>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How long after a session ended its tenant's retention applies.
    pub retention_delay: std::time::Duration,
}

impl VerifierParts {
    /// The verifier over `tenancy` (built with [`migrations`]), signing with `kms`, reading
    /// the certificates of its keys and each tenant's trust anchors (the chains marked trust
    /// anchors) from `certificates` (the KMS in process, or a KMS server over gRPC), with
    /// `settings`.
    ///
    /// # Errors
    /// [`Error::HttpClient`] when the HTTP client for webhooks and status lists cannot be
    /// built (no TLS back end could be set up).
    pub fn new(
        tenancy: Tenancy,
        kms: Arc<dyn edk_kms::Kms>,
        certificates: Arc<dyn edk_kms::cert::CertificateSource>,
        clock: Arc<dyn Clock>,
        settings: &VerifierSettings,
    ) -> Result<Self, Error> {
        let status = StatusLists::new(
            settings,
            Some(Arc::clone(&certificates)),
            Arc::clone(&clock),
        )
        .map_err(Error::HttpClient)?;
        let verifier = Verifier::new(
            SqlStore::new(tenancy.clone()),
            kms,
            Arc::clone(&clock),
            settings,
        )
        .map_err(Error::HttpClient)?
        .with_trust_anchors(Arc::clone(&certificates))
        .with_certificates(certificates)
        .with_status_lists(Arc::new(status));
        Ok(Self {
            tenancy,
            verifier: Arc::new(verifier),
            clock,
            retention_delay: std::time::Duration::from_secs(
                u64::try_from(settings.retention_delay_secs).unwrap_or(0),
            ),
        })
    }

    /// The verifier's periodic jobs: presentation retention ([`jobs::RetentionJob`]) and
    /// webhook delivery ([`jobs::WebhookJob`]).
    #[must_use]
    pub fn jobs(&self) -> Vec<Arc<dyn edk_tenancy::Job>> {
        vec![
            Arc::new(jobs::RetentionJob::new(
                self.verifier.store().clone(),
                self.retention_delay,
            )),
            Arc::new(jobs::WebhookJob::new(
                self.verifier.store().clone(),
                self.verifier.webhooks().clone(),
            )),
        ]
    }

    /// The protocol surface.
    #[must_use]
    pub fn protocol_endpoint(&self) -> ProtocolEndpoint {
        ProtocolEndpoint::new(self.tenancy.clone(), Arc::clone(&self.verifier))
    }

    /// The admin API.
    #[must_use]
    pub fn admin_api(&self) -> AdminApi {
        AdminApi::new(self.tenancy.clone(), Arc::clone(&self.verifier))
    }
}

/// The verifier server `edk-verifier`, built from its configuration and the shared
/// dependencies: every tenant's verifier endpoints, the admin API, health and metrics.
#[derive(Debug)]
pub struct VerifierServer {
    parts: VerifierParts,
    health: HealthApi,
    auth: AdminAuth,
    http: HttpConfig,
    metrics: Metrics,
    limiter: RateLimiter,
}

impl VerifierServer {
    /// The server's parts.
    #[must_use]
    pub const fn parts(&self) -> &VerifierParts {
        &self.parts
    }
}

#[async_trait]
impl Service for VerifierServer {
    type Config = VerifierServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-verifier";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        Ok(deps
            .migrations(migrations().map_err(Error::Migrations)?)
            .config_key(&PRESENTATION_RETENTION))
    }

    async fn build(config: &VerifierServerConfig, deps: &Deps) -> Result<Self, Error> {
        let auth = AdminAuth::new(
            &config.auth,
            deps.clock(),
            &ANONYMOUS_PATHS,
            Some(deps.http()),
        )
        .map_err(Error::Auth)?;
        let limiter = RateLimiter::new(&config.rate_limits, deps.clock(), Some(deps.metrics()))
            .map_err(Error::RateLimits)?
            .for_service("verifier");
        Ok(Self {
            limiter,
            parts: VerifierParts::new(
                deps.tenancy().clone(),
                deps.kms().kms(),
                deps.certificates(),
                deps.clock(),
                &config.verifier,
            )?,
            health: deps.health(),
            auth,
            http: config.http.clone(),
            metrics: deps.metrics().clone(),
        })
    }

    fn jobs(&self) -> Vec<Arc<dyn edk_tenancy::Job>> {
        self.parts.jobs()
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

/// The OpenAPI service: health probes (with `health`'s readiness checks) and the admin API.
#[must_use]
pub fn openapi_service(
    parts: &VerifierParts,
    health: HealthApi,
) -> OpenApiService<(HealthApi, AdminApi), ()> {
    OpenApiService::new(
        (health, parts.admin_api()),
        "EDK verifier",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The whole application: the admin surface for `/api/...` and the anonymous paths, the
/// per-tenant verifier endpoints for everything else, `/metrics`, and the shared middleware.
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
pub fn build_app(
    http: &HttpConfig,
    auth: &AuthConfig,
    metrics: &Metrics,
    parts: &VerifierParts,
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
    parts: &VerifierParts,
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
