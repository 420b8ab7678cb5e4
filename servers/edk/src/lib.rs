#![doc = include_str!("../README.md")]

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod error;

use std::fmt;
use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;

use edk_as_server::{AdminApi as OAuthAdminApi, AsServer, AsServerConfig, ProtocolEndpoint};
use edk_core::{Clock, HasKind, TenantId, TenantSlug};
use edk_did_server::{DidApis, DidServer, DidServerConfig, DidService, PublicEndpoint as DidFiles};
use edk_issuer_server::{IssuerApis, IssuerParts, ProtocolEndpoint as IssuerEndpoint, TokenKeys};
use edk_kms_server::{KmsApis, KmsServer, KmsServerConfig, KmsState};
use edk_oauth::AuthorizationServer;
use edk_platform_server::{PlatformApis, PlatformAuth};
use edk_server::deps::Deps;
use edk_server::kms::{KmsConfig, ProviderConfig};
use edk_server::{AdminAuth, HealthApi, Service, app, openapi_routes, path_is_under};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointScheme, ServiceType, Tenancy, WellKnownLayout,
};
use edk_verifier_server::{
    AdminApi as VerifierAdminApi, ProtocolEndpoint as VerifierEndpoint, VerifierParts,
};
use secrecy::{ExposeSecret, SecretString};

use crate::bootstrap::{DEFAULT_TENANT_SLUG, DataDir};

pub use config::EdkConfig;
pub use error::Error;

/// The host the default tenant's authorization server is bound to for local use.
pub const LOCAL_HOST: &str = "localhost";

/// The host the default tenant's DIDs are published on for local use (did:web needs a
/// domain name with a dot; `*.localhost` names the loopback interface, RFC 6761).
pub const LOCAL_DID_HOST: &str = "edk.localhost";

/// The paths served without an admin token: health probes, metrics, the OpenAPI document and
/// UI, and the Universal Resolver.
pub const ANONYMOUS_PATHS: [&str; 6] = edk_did_server::ANONYMOUS_PATHS;

/// The file, in the data directory, that the platform's first-run setup token is written to
/// (owner-only) while setup is open.
pub const PLATFORM_SETUP_TOKEN_FILE: &str = "platform-setup-token";

/// The admin APIs of the all-in-one server, as one OpenAPI service: health probes, the KMS
/// API, the authorization server's admin API, the DID resolver, registrar and admin API, the
/// credential issuer's admin APIs, the verifier's admin API and the platform API.
pub type EdkApis = (
    HealthApi,
    KmsApis,
    OAuthAdminApi,
    DidApis,
    IssuerApis,
    VerifierAdminApi,
    PlatformApis,
);

/// The OpenAPI service of the all-in-one server.
#[must_use]
#[expect(
    clippy::too_many_arguments,
    reason = "one part for each API the all-in-one server mounts"
)]
pub fn openapi_service(
    tenancy: &Tenancy,
    kms: &Arc<KmsState>,
    oauth: &Arc<AuthorizationServer>,
    did: &DidServer,
    issuer: &IssuerParts,
    verifier: &VerifierParts,
    platform: PlatformApis,
    health: HealthApi,
) -> OpenApiService<EdkApis, ()> {
    OpenApiService::new(
        (
            health,
            edk_kms_server::apis(kms),
            OAuthAdminApi::new(tenancy.clone(), Arc::clone(oauth)),
            did.apis(),
            issuer.admin_apis(),
            verifier.admin_api(),
            platform,
        ),
        "EDK",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The all-in-one server, started: every service on one set of [`Deps`], SQLite under the
/// data directory by default or the configured `database`.
pub struct Edk {
    // The services are boxed so that an `Edk` (and every future that owns one, such as
    // `shutdown`) stays small.
    deps: Box<Deps>,
    kms: Box<KmsServer>,
    oauth: Box<AsServer>,
    did: Box<DidService>,
    issuer: Box<IssuerParts>,
    verifier: Box<VerifierParts>,
    auth: AdminAuth,
    platform_auth: PlatformAuth,
    config: Box<EdkConfig>,
    default_tenant: TenantId,
    platform_realm: TenantId,
    bootstrap_token: Option<SecretString>,
    setup_token: Option<SecretString>,
}

impl fmt::Debug for Edk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edk")
            .field("default_tenant", &self.default_tenant)
            .field("platform_realm", &self.platform_realm)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "setup_token",
                &self.setup_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Edk {
    /// Starts every service for `config` with the state in `data` (the bootstrap issuer is
    /// trusted in addition to `config.auth.issuers`). On the data directory's first start the
    /// default tenant is provisioned and a bootstrap token minted for it. `clock` dates tokens
    /// and keys; `http_client` fetches the JWKS of issuers configured with a `jwks_uri`.
    ///
    /// # Errors
    /// [`Error`] naming the part that could not be set up.
    pub async fn start(
        config: &EdkConfig,
        data: &DataDir,
        clock: Arc<dyn Clock>,
        http_client: &reqwest::Client,
    ) -> Result<Self, Error> {
        // Every service's set-up lives in this one future: on the heap, so that callers'
        // futures stay small.
        Box::pin(Self::start_services(config, data, clock, http_client)).await
    }

    async fn start_services(
        config: &EdkConfig,
        data: &DataDir,
        clock: Arc<dyn Clock>,
        http_client: &reqwest::Client,
    ) -> Result<Self, Error> {
        let mut config = config.clone();
        config.auth.issuers.push(data.bootstrap_issuer());
        let database = config
            .database
            .clone()
            .unwrap_or_else(|| DatabaseConfig::Sqlite(SqliteConfig::new(data.database_dir())));
        let kms_config = config.kms.clone().unwrap_or_else(|| {
            KmsConfig::local(vec![ProviderConfig::Software(data.software_provider())])
        });
        let builder = Deps::builder(database.clone(), kms_config.clone())
            .clock(Arc::clone(&clock))
            .http_client(http_client.clone());
        let builder = KmsServer::prepare(builder).map_err(Error::KmsServer)?;
        let builder = AsServer::prepare(builder).map_err(Error::As)?;
        let builder = DidService::prepare(builder).map_err(Error::Did)?;
        // The issuer shares the authorization server prepared above: only its own tables and
        // settings.
        let builder = builder
            .migrations(edk_oid4vci::migrations().map_err(Error::Migrations)?)
            .config_key(&edk_oid4vci::SESSION_RETENTION)
            .config_key(&edk_oid4vci::CLAIMS_ENDPOINT)
            .migrations(edk_verifier_server::migrations().map_err(Error::Migrations)?)
            .config_key(&edk_verifier_server::PRESENTATION_RETENTION)
            .config_key(&edk_platform_server::setup::SETUP_STATE)
            .config_key(&edk_platform_server::onboarding::ONBOARDING)
            .config_key(&edk_platform_server::onboarding::ISSUER_DID)
            .config_key(&edk_platform_server::operator_login::FEDERATED_OPERATORS);
        let deps = builder.build().await.map_err(Error::Deps)?;
        let edk = match Self::build(config, database, kms_config, data, deps).await {
            Ok(edk) => edk,
            Err((err, deps)) => {
                deps.shutdown().await;
                return Err(err);
            }
        };
        let jobs = [
            edk.kms.jobs(),
            edk.oauth.jobs(),
            edk.did.jobs(),
            edk.issuer.jobs(),
            edk.verifier.jobs(),
        ]
        .concat();
        if let Err(err) = edk.deps.start_scheduler(jobs) {
            edk.shutdown().await;
            return Err(Error::Deps(err));
        }
        Ok(edk)
    }

    async fn build(
        config: EdkConfig,
        database: DatabaseConfig,
        kms: KmsConfig,
        data: &DataDir,
        deps: Deps,
    ) -> Result<Self, (Error, Deps)> {
        let kms_config = KmsServerConfig {
            http: config.http.clone(),
            auth: config.auth.clone(),
            log: config.log.clone(),
            observability: config.observability.clone(),
            database: database.clone(),
            kms: kms.clone(),
            directory: None,
            grpc: None,
        };
        let as_config = AsServerConfig {
            http: config.http.clone(),
            auth: config.auth.clone(),
            log: config.log.clone(),
            observability: config.observability.clone(),
            database: database.clone(),
            kms: kms.clone(),
            directory: None,
            oauth: config.oauth.clone(),
            rate_limits: (*config.rate_limits).clone(),
        };
        let did_config = DidServerConfig {
            http: config.http.clone(),
            auth: config.auth.clone(),
            log: config.log.clone(),
            observability: config.observability.clone(),
            database,
            kms,
            directory: None,
            resolver: config.did_resolver.clone(),
        };
        let parts = async {
            let kms = KmsServer::build(&kms_config, &deps)
                .await
                .map_err(Error::KmsServer)?;
            // Operators log in to the operator realm through its upstream provider, and only
            // the upstream users an operator allowed; other tenants federate as usual.
            let federation: Arc<dyn edk_oauth::Authenticator> = Arc::new(
                edk_oauth::federation::OidcFederation::new(
                    deps.tenancy().clone(),
                    deps.http().clone(),
                    deps.clock(),
                )
                .with_kms(deps.kms().kms()),
            );
            let authenticator = Arc::new(edk_platform_server::OperatorLogin::new(
                deps.tenancy().clone(),
                Arc::clone(&federation),
                federation,
            ));
            let oauth = AsServer::with_server(
                &as_config,
                &deps,
                Arc::new(AsServer::authorization_server_with(
                    &as_config,
                    &deps,
                    authenticator,
                )),
            )
            .map_err(Error::As)?;
            let did = DidService::build(&did_config, &deps)
                .await
                .map_err(Error::Did)?;
            let issuer = IssuerParts {
                tenancy: deps.tenancy().clone(),
                issuer: Arc::new(
                    IssuerParts::issuer(
                        deps.tenancy(),
                        deps.kms().kms(),
                        deps.clock(),
                        config.issuer.options(),
                    )
                    .map_err(Error::Issuer)?
                    .with_claims_source(Arc::new(edk_oid4vci::HttpClaimsSource::new(
                        deps.http().clone(),
                    )))
                    .with_certificates(deps.certificates()),
                ),
                server: Arc::clone(oauth.authorization_server()),
                clock: deps.clock(),
                metadata_max_age_secs: config.issuer.metadata_max_age_secs,
                status_list_publish_interval: std::time::Duration::from_secs(
                    config.issuer.status_list_publish_interval_secs.max(1),
                ),
                // One process: the authorization server's keys are in the same KMS.
                token_keys: TokenKeys::Kms,
            };
            let verifier = VerifierParts::new(
                deps.tenancy().clone(),
                deps.kms().kms(),
                deps.certificates(),
                deps.clock(),
                &config.verifier,
            )
            .map_err(Error::Verifier)?;
            let default_tenant = default_tenant(deps.tenancy()).await?;
            let bootstrap_token = if data.is_first_start() {
                Some(
                    data.write_bootstrap_token(
                        default_tenant,
                        &config.auth.audience,
                        deps.clock().as_ref(),
                    )
                    .await?,
                )
            } else {
                None
            };
            // The platform API takes operator tokens of the operator realm, not admin tokens.
            let mut anonymous = ANONYMOUS_PATHS.to_vec();
            anonymous.push(edk_platform_server::API_PREFIX);
            let auth = AdminAuth::new(&config.auth, deps.clock(), &anonymous, Some(deps.http()))
                .map_err(Error::Auth)?;
            let platform_realm = edk_platform_server::operators::operator_realm(deps.tenancy())
                .await
                .map_err(|err| Error::Platform(edk_platform_server::Error::Realm(err)))?;
            let setup_token = edk_platform_server::setup::issue_token(
                deps.tenancy(),
                Some(&data.path().join(PLATFORM_SETUP_TOKEN_FILE)),
            )
            .await
            .map_err(|err| Error::Platform(edk_platform_server::Error::Setup(err)))?;
            // The bootstrap admin holds the data directory: it is an operator too.
            let mut bootstrap_only = config.auth.clone();
            bootstrap_only.issuers = vec![data.bootstrap_issuer()];
            let bootstrap =
                AdminAuth::new(&bootstrap_only, deps.clock(), &[], None).map_err(Error::Auth)?;
            let platform_auth = PlatformAuth::new(
                deps.tenancy().clone(),
                deps.kms().kms(),
                deps.clock(),
                platform_realm,
            )
            .with_admin_issuers(bootstrap)
            .with_tenant_admins(auth.clone());
            Ok(Parts {
                kms,
                oauth,
                did,
                issuer,
                verifier,
                default_tenant,
                bootstrap_token,
                auth,
                platform_auth,
                platform_realm,
                setup_token,
            })
        }
        .await;
        match parts {
            Ok(parts) => Ok(Self {
                deps: Box::new(deps),
                kms: Box::new(parts.kms),
                oauth: Box::new(parts.oauth),
                did: Box::new(parts.did),
                issuer: Box::new(parts.issuer),
                verifier: Box::new(parts.verifier),
                auth: parts.auth,
                platform_auth: parts.platform_auth,
                config: Box::new(config),
                default_tenant: parts.default_tenant,
                platform_realm: parts.platform_realm,
                bootstrap_token: parts.bootstrap_token,
                setup_token: parts.setup_token,
            }),
            Err(err) => Err((err, deps)),
        }
    }

    /// The whole application: the admin APIs (KMS, OAuth) with `/openapi.json` and `/docs`
    /// behind admin authentication, the authorization server's public protocol endpoints
    /// routed by tenant endpoint binding, `/metrics` and the shared middleware.
    #[must_use]
    pub fn app(&self) -> BoxEndpoint<'static, Response> {
        let tenancy = self.deps.tenancy();
        let admin = || {
            openapi_routes(openapi_service(
                tenancy,
                self.kms.state(),
                self.oauth(),
                self.did(),
                &self.issuer,
                &self.verifier,
                self.platform_api(),
                self.deps.health(),
            ))
            .with(self.platform_auth.clone())
            .with(self.auth.clone())
            .boxed()
        };
        // The console calls the admin API and the operator authorization server in process.
        let console = edk_platform_server::console::Console::new(
            admin(),
            ProtocolEndpoint::new(tenancy.clone(), Arc::clone(self.oauth())).boxed(),
            tenancy.clone(),
            self.platform_realm,
        );
        let admin = admin();
        let limiter = self.oauth.rate_limiter();
        let protocol = ProtocolEndpoint::new(tenancy.clone(), Arc::clone(self.oauth()))
            .with_rate_limiter(limiter.clone())
            .boxed();
        let did_files = self.did().public_endpoint().boxed();
        let issuer = self
            .issuer
            .protocol_endpoint()
            .with_rate_limiter(limiter.for_service("issuer"));
        let verifier = self
            .verifier
            .protocol_endpoint()
            .with_rate_limiter(limiter.for_service("verifier"));
        app(
            &self.config.http,
            self.deps.metrics(),
            None,
            Route::new().nest(
                "/",
                console.or(Dispatch {
                    admin,
                    did_files,
                    issuer,
                    verifier,
                    protocol,
                }),
            ),
        )
    }

    /// Binds the default tenant's authorization server, credential issuer and verifier to
    /// `localhost:{port}` (all identifiers `http://localhost:{port}`, loopback-only http
    /// bindings; `https://…` with `local_https`) and its DID publishing to `edk.localhost:{port}` (DIDs
    /// `did:web:edk.localhost%3A{port}:…`), replacing bindings for another port, and the
    /// platform's operator authorization server to `localhost:{port}/operators`. `edk` calls
    /// it once it knows the port it listens on.
    ///
    /// # Errors
    /// [`Error::Tenancy`] or [`Error::Platform`] when a binding cannot be stored.
    pub async fn bind_default_tenant(&self, port: u16) -> Result<(), Error> {
        let tenancy = self.deps.tenancy();
        let current = tenancy
            .bindings(self.default_tenant)
            .await
            .map_err(Error::Tenancy)?;
        // did:web is https-only, so DIDs are always published under https identifiers; the
        // authorization server advertises http unless `local_https` says TLS is in front.
        let as_scheme = if self.config.local_https {
            EndpointScheme::Https
        } else {
            EndpointScheme::Http
        };
        for (service, host, scheme) in [
            (ServiceType::As, LOCAL_HOST, as_scheme),
            (ServiceType::Issuer, LOCAL_HOST, as_scheme),
            (ServiceType::Verifier, LOCAL_HOST, as_scheme),
            (ServiceType::Did, LOCAL_DID_HOST, EndpointScheme::Https),
        ] {
            let binding = EndpointBinding::with_scheme(
                self.default_tenant,
                service,
                scheme,
                host,
                Some(port),
                "/",
                WellKnownLayout::Inserted,
            )
            .map_err(Error::Binding)?;
            if current.contains(&binding) {
                continue;
            }
            tenancy
                .unbind(self.default_tenant, service)
                .await
                .map_err(Error::Tenancy)?;
            tenancy.bind(&binding).await.map_err(Error::Tenancy)?;
        }
        edk_platform_server::operators::bind_operator_endpoint(
            tenancy,
            self.platform_realm,
            LOCAL_HOST,
            Some(port),
            as_scheme == EndpointScheme::Http,
        )
        .await
        .map_err(|err| Error::Platform(edk_platform_server::Error::Realm(err)))?;
        edk_platform_server::console::register_client(tenancy, self.oauth(), self.platform_realm)
            .await
            .map_err(|err| Error::Platform(edk_platform_server::Error::Console(err)))
    }

    /// The DID server inside.
    #[must_use]
    pub fn did(&self) -> &DidServer {
        self.did.server()
    }

    /// The credential issuer inside (sharing the authorization server).
    #[must_use]
    pub fn issuer(&self) -> &IssuerParts {
        &self.issuer
    }

    /// The verifier inside.
    #[must_use]
    pub fn verifier(&self) -> &VerifierParts {
        &self.verifier
    }

    /// The authorization server inside.
    #[must_use]
    pub fn oauth(&self) -> &Arc<AuthorizationServer> {
        self.oauth.authorization_server()
    }

    /// The shared dependencies (tenancy, KMS, clock, HTTP client, metrics).
    #[must_use]
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// The bootstrap admin token, on the data directory's first start only (also written to
    /// the data directory's `bootstrap-token` file, owner-only).
    #[must_use]
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token
            .as_ref()
            .map(ExposeSecret::expose_secret)
    }

    /// The platform's first-run setup token, when this start wrote a new one (to the data
    /// directory's [`PLATFORM_SETUP_TOKEN_FILE`], owner-only); `None` once setup is closed.
    #[must_use]
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_ref().map(ExposeSecret::expose_secret)
    }

    /// The reserved tenant of the operator authorization server (bound on `localhost` under
    /// `/operators`).
    #[must_use]
    pub const fn platform_realm(&self) -> TenantId {
        self.platform_realm
    }

    /// The platform API over this server's tenancy, KMS and authorization server (which also
    /// serves the operator realm).
    #[must_use]
    pub fn platform_api(&self) -> PlatformApis {
        edk_platform_server::apis(&edk_platform_server::ApiDeps {
            tenancy: self.deps.tenancy().clone(),
            oauth: Arc::clone(self.oauth()),
            kms: self.deps.kms().kms(),
            audit: self.deps.kms().audit_trail(),
            clock: self.deps.clock(),
            realm: self.platform_realm,
            audience: self.config.auth.audience.clone(),
        })
    }

    /// The tenant the bootstrap token acts for.
    #[must_use]
    pub const fn default_tenant(&self) -> TenantId {
        self.default_tenant
    }

    /// The KMS server inside.
    #[must_use]
    pub fn kms(&self) -> &KmsServer {
        &self.kms
    }

    /// Stops the background work and writes buffered audit records.
    pub async fn shutdown(self) {
        (*self.did).shutdown().await;
        (*self.oauth).shutdown().await;
        (*self.kms).shutdown().await;
        (*self.deps).shutdown().await;
    }
}

/// The parts [`Edk::build`] assembles before it owns the dependencies.
struct Parts {
    kms: KmsServer,
    oauth: AsServer,
    did: DidService,
    issuer: IssuerParts,
    verifier: VerifierParts,
    default_tenant: TenantId,
    bootstrap_token: Option<SecretString>,
    auth: AdminAuth,
    platform_auth: PlatformAuth,
    platform_realm: TenantId,
    setup_token: Option<SecretString>,
}

/// Sends `/api/...`, `/1.0/...` (the Universal Resolver and the DID registrar) and the
/// anonymous probe and documentation paths to the admin surface (whose authentication lets
/// the anonymous ones through), published DID files to the DID server, requests a tenant's
/// issuer binding routes to a credential issuer path to the issuers' endpoints, requests a
/// tenant's verifier binding routes to a verifier path to the verifiers' endpoints, and
/// everything else to the authorization servers' protocol surface.
struct Dispatch {
    admin: BoxEndpoint<'static, Response>,
    did_files: BoxEndpoint<'static, Response>,
    issuer: IssuerEndpoint,
    verifier: VerifierEndpoint,
    protocol: BoxEndpoint<'static, Response>,
}

impl Endpoint for Dispatch {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.original_uri().path();
        let under = |prefix: &str| path_is_under(path, prefix);
        if under("/api") || under("/1.0") || ANONYMOUS_PATHS.iter().any(|prefix| under(prefix)) {
            self.admin.call(req).await.map(IntoResponse::into_response)
        } else if DidFiles::serves(path) {
            self.did_files.call(req).await
        } else if self.issuer.serves(&req).await {
            self.issuer.call(req).await
        } else if self.verifier.serves(&req).await {
            self.verifier.call(req).await
        } else {
            self.protocol.call(req).await
        }
    }
}

/// The default tenant, provisioned if missing.
async fn default_tenant(tenancy: &Tenancy) -> Result<TenantId, Error> {
    #[expect(clippy::expect_used, reason = "the default slug is a valid constant")]
    let slug = TenantSlug::new(DEFAULT_TENANT_SLUG).expect("valid tenant slug");
    match tenancy.tenant_by_slug(&slug).await {
        Ok(tenant) => Ok(tenant.id),
        Err(err) if err.kind() == edk_core::ErrorKind::NotFound => {
            let tenant = tenancy
                .provision(slug, "Default tenant")
                .await
                .map_err(Error::Tenancy)?;
            tracing::info!(tenant = %tenant.id, "provisioned the default tenant");
            Ok(tenant.id)
        }
        Err(err) => Err(Error::Tenancy(err)),
    }
}
