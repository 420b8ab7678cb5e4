#![doc = include_str!("../README.md")]

pub mod admin;
pub mod config;
pub mod dto;
pub mod error;
pub mod public;
pub mod resolver_api;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use edk_core::Clock;
use edk_did::jobs::RepublishStaleJob;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::methods::web::{DidWeb, DidWebConfig, client_builder_with_policy};
use edk_did::methods::webvh::{DidWebvh, HttpsLogSource, LogSource};
use edk_did::registrar::Registrar;
use edk_did::store::{HostedDids, SqlDidStore};
use edk_did::{DidMethod, DidResolver, Resolver};
use edk_kms::Kms;
use edk_server::deps::{Deps, DepsBuilder};
use edk_server::{
    AdminAuth, AuthConfig, AuthSetupError, HealthApi, HttpConfig, Metrics, Service, openapi_routes,
};
use edk_tenancy::scheduler::Job;
use edk_tenancy::{Tenancy, TenantDirectory};
use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response, Route};
use poem_openapi::OpenApiService;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use admin::{AdminApi, RegistrarApi, SCOPE_READ, SCOPE_WRITE, SCOPES};
pub use config::{DidServerConfig, ResolverSettings};
pub use error::Error;
pub use public::PublicEndpoint;
pub use resolver_api::ResolverApi;

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/api/did/v1";

/// The paths served without a token: health probes, metrics, the OpenAPI document and UI, and
/// the Universal Resolver (`/1.0/identifiers`, `/1.0/methods`).
pub const ANONYMOUS_PATHS: [&str; 6] = [
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/1.0/identifiers",
    "/1.0/methods",
];

/// The OpenAPI groups of the DID server: the resolver (anonymous), the registrar and the
/// admin API (admin token).
pub type DidApis = (ResolverApi, RegistrarApi, AdminApi);

/// The DID server's parts over a tenancy and a KMS, for the standalone binary and for
/// mounting into another server (the all-in-one `edk`).
///
/// The tenancy must be built with [`edk_did::store::migrations`] (and the KMS's
/// `edk_kms::migrations` when the KMS is a `LocalKms` on the same tenancy).
#[derive(Debug)]
pub struct DidServer {
    tenancy: Tenancy,
    registrar: Arc<Registrar>,
    resolver: Arc<Resolver>,
    hosted: Arc<HostedDids>,
}

impl DidServer {
    /// The server over `tenancy`, publishing with keys in `kms`, resolving with `resolver`
    /// (see [`DidServer::resolver`]) and reading time from `clock`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        kms: Arc<dyn Kms>,
        resolver: Arc<Resolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let store = Arc::new(SqlDidStore::new(tenancy.clone()));
        let registrar = Registrar::new(store.clone(), kms, clock)
            .with_resolver(Arc::clone(&resolver) as Arc<dyn DidResolver>)
            .with_events(Arc::clone(tenancy.events()));
        let directory: Arc<dyn TenantDirectory> = Arc::new(tenancy.clone());
        Self {
            hosted: Arc::new(HostedDids::new(directory, store)),
            tenancy,
            registrar: Arc::new(registrar),
            resolver,
        }
    }

    /// The resolver this server's `/1.0/identifiers` should use: did:key, did:jwk, and
    /// did:web and did:webvh read from the tenants' published DIDs first (routed through
    /// their DID endpoint bindings, no network), then, when `settings.remote_ca_file` is set,
    /// over HTTPS trusting those anchors. Results are cached as `settings.cache` says.
    ///
    /// # Errors
    /// [`Error::TrustAnchors`] when the anchors cannot be read, [`Error::Resolver`] for an
    /// invalid cache configuration.
    pub fn resolver(
        tenancy: &Tenancy,
        settings: &ResolverSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Resolver, Error> {
        let store = Arc::new(SqlDidStore::new(tenancy.clone()));
        let directory: Arc<dyn TenantDirectory> = Arc::new(tenancy.clone());
        let hosted = Arc::new(HostedDids::new(directory, store));
        let remote = remote_sources(settings)?;
        let web_fallback = remote
            .as_ref()
            .map(|(web, _)| Arc::clone(web) as Arc<dyn DidMethod>);
        let log_fallback = remote.map(|(_, logs)| logs as Arc<dyn LogSource>);
        let webvh = DidWebvh::new(
            Arc::new(hosted.log_source(log_fallback)),
            Arc::clone(&clock),
        );
        Resolver::builder()
            .method(Arc::new(DidKey::new()))
            .method(Arc::new(DidJwk))
            .method(Arc::new(hosted.web_method(web_fallback)))
            .method(Arc::new(webvh))
            .cache(settings.cache, clock)
            .build()
            .map_err(Error::Resolver)
    }

    /// Starts refreshing the resolver's cache entry of every DID that a registrar on this or
    /// another replica changes (announced on the tenancy's event bus, which crosses replicas
    /// with PostgreSQL LISTEN/NOTIFY once the tenancy is started), until `cancel`.
    #[must_use]
    pub fn start(&self, cancel: &CancellationToken) -> JoinHandle<()> {
        tokio::spawn(edk_did::registrar::refresh_on_change(
            Arc::clone(&self.resolver) as Arc<dyn DidResolver>,
            Arc::clone(self.tenancy.events()),
            cancel.clone(),
        ))
    }

    /// The registrar behind the admin and registrar APIs.
    #[must_use]
    pub const fn registrar(&self) -> &Arc<Registrar> {
        &self.registrar
    }

    /// The resolver API (anonymous).
    #[must_use]
    pub fn resolver_api(&self) -> ResolverApi {
        ResolverApi::new(Arc::clone(&self.resolver))
    }

    /// The registrar and admin APIs (behind admin authentication).
    #[must_use]
    pub fn admin_apis(&self) -> (RegistrarApi, AdminApi) {
        (
            RegistrarApi::new(self.tenancy.clone(), Arc::clone(&self.registrar)),
            AdminApi::new(self.tenancy.clone(), Arc::clone(&self.registrar)),
        )
    }

    /// Every OpenAPI group, to combine into another server's `OpenApiService`.
    #[must_use]
    pub fn apis(&self) -> DidApis {
        let (registrar, admin) = self.admin_apis();
        (self.resolver_api(), registrar, admin)
    }

    /// The per-tenant public files (`did.json`, `did.jsonl`, `did-witness.json`), routed by
    /// host and path through the tenants' DID endpoint bindings.
    #[must_use]
    pub fn public_endpoint(&self) -> PublicEndpoint {
        PublicEndpoint::new(self.tenancy.clone(), Arc::clone(&self.hosted))
    }

    /// The OpenAPI service: health probes, resolver, registrar and admin API.
    #[must_use]
    pub fn openapi_service(&self) -> OpenApiService<(HealthApi, DidApis), ()> {
        self.openapi_service_with(HealthApi::new())
    }

    /// The OpenAPI service with `health`'s readiness checks.
    #[must_use]
    pub fn openapi_service_with(
        &self,
        health: HealthApi,
    ) -> OpenApiService<(HealthApi, DidApis), ()> {
        OpenApiService::new(
            (health, self.apis()),
            "EDK DID server",
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// The DID server `edk-did`, built from its configuration and the shared dependencies: the
/// [`DidServer`] parts with admin authentication, health, metrics and the cache refresher.
#[derive(Debug)]
pub struct DidService {
    server: DidServer,
    auth: AdminAuth,
    health: HealthApi,
    http: HttpConfig,
    metrics: Metrics,
    refresher: JoinHandle<()>,
    republisher: JoinHandle<()>,
}

impl DidService {
    /// The DID server's parts.
    #[must_use]
    pub const fn server(&self) -> &DidServer {
        &self.server
    }
}

#[async_trait]
impl Service for DidService {
    type Config = DidServerConfig;
    type Error = Error;

    const NAME: &'static str = "edk-did";

    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Error> {
        Ok(deps
            .migrations(edk_did::store::migrations().map_err(Error::Migrations)?)
            .config_key(&edk_did::DID_METHODS))
    }

    async fn build(config: &DidServerConfig, deps: &Deps) -> Result<Self, Error> {
        let resolver = Arc::new(DidServer::resolver(
            deps.tenancy(),
            &config.resolver,
            deps.clock(),
        )?);
        let server = DidServer::new(
            deps.tenancy().clone(),
            deps.kms().kms(),
            resolver,
            deps.clock(),
        );
        let auth = AdminAuth::new(
            &config.auth,
            deps.clock(),
            &ANONYMOUS_PATHS,
            Some(deps.http()),
        )
        .map_err(Error::Auth)?;
        let refresher = server.start(&deps.cancellation());
        // did:web documents list KMS keys: republish them when a listed key rotates.
        let republisher = tokio::spawn(edk_did::registrar::republish_on_key_change(
            Arc::clone(server.registrar()),
            Arc::new(deps.tenancy().clone()),
            Arc::clone(deps.tenancy().events()),
            deps.cancellation(),
        ));
        Ok(Self {
            server,
            auth,
            health: deps.health(),
            http: config.http.clone(),
            metrics: deps.metrics().clone(),
            refresher,
            republisher,
        })
    }

    /// `did.republish_stale`: republishes did:web documents whose keys changed in the KMS
    /// without a `kms.key_changed` event reaching this server.
    fn jobs(&self) -> Vec<Arc<dyn Job>> {
        vec![Arc::new(RepublishStaleJob::new(Arc::clone(
            self.server.registrar(),
        )))]
    }

    fn app(&self) -> BoxEndpoint<'static, Response> {
        let api = openapi_routes(self.server.openapi_service_with(self.health.clone()))
            .with(self.auth.clone())
            .boxed();
        compose(&self.http, &self.metrics, &self.server, api)
    }

    async fn shutdown(self) {
        for task in [self.refresher, self.republisher] {
            task.abort();
            if let Err(err) = task.await
                && !err.is_cancelled()
            {
                tracing::warn!(error = %err, "a DID background task ended abnormally");
            }
        }
    }
}

/// The did:web method and did:webvh log source for DIDs hosted elsewhere.
type RemoteSources = (Arc<DidWeb>, Arc<HttpsLogSource>);

/// did:web and did:webvh over HTTPS trusting `settings.remote_ca_file`, when it is set.
fn remote_sources(settings: &ResolverSettings) -> Result<Option<RemoteSources>, Error> {
    let Some(path) = &settings.remote_ca_file else {
        return Ok(None);
    };
    let trust = |source: Box<dyn std::error::Error + Send + Sync>| Error::TrustAnchors {
        path: path.clone(),
        source,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| trust(Box::new(e)))? {
        roots
            .add(cert.map_err(|e| trust(Box::new(e)))?)
            .map_err(|e| trust(Box::new(e)))?;
    }
    let timeout = Duration::from_millis(settings.timeout_millis);
    let client = client_builder_with_policy(roots, timeout, &settings.fetch)
        .map_err(Error::Resolver)?
        .build()
        .map_err(|e| Error::Resolver(edk_did::Error::HttpClient(Box::new(e))))?;
    let web = DidWeb::new(
        client.clone(),
        DidWebConfig {
            max_document_bytes: settings.max_bytes,
            timeout_millis: settings.timeout_millis,
        },
    )
    .with_policy(&settings.fetch);
    let logs = HttpsLogSource::new(client)
        .with_max_bytes(settings.max_bytes)
        .with_policy(&settings.fetch);
    Ok(Some((Arc::new(web), Arc::new(logs))))
}

/// The whole application: the OpenAPI surface (`/api/did/v1`, `/1.0/...`, health,
/// `/openapi.json`, `/docs`) behind admin authentication except [`ANONYMOUS_PATHS`], the
/// per-tenant public files for everything else, `/metrics`, and the shared middleware.
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
pub fn build_app(
    http: &HttpConfig,
    auth: &AuthConfig,
    metrics: &Metrics,
    server: &DidServer,
    clock: Arc<dyn Clock>,
    client: Option<&reqwest::Client>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin_auth = AdminAuth::new(auth, clock, &ANONYMOUS_PATHS, client)?;
    let api = openapi_routes(server.openapi_service())
        .with(admin_auth)
        .boxed();
    Ok(compose(http, metrics, server, api))
}

/// The API surface beside the public files, with `/metrics` and the middleware.
fn compose(
    http: &HttpConfig,
    metrics: &Metrics,
    server: &DidServer,
    api: BoxEndpoint<'static, Response>,
) -> BoxEndpoint<'static, Response> {
    let public = server.public_endpoint().boxed();
    edk_server::app(
        http,
        metrics,
        None,
        Route::new().nest(
            "/",
            edk_server::SurfaceDispatch::new(api, public).with_admin_prefixes(&["/1.0"]),
        ),
    )
}
