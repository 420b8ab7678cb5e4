#![doc = include_str!("../README.md")]

pub mod bootstrap;
pub mod config;
pub mod error;

use std::sync::Arc;

use poem::Response;
use poem::endpoint::BoxEndpoint;
use poem_openapi::OpenApiService;

use edk_core::{Clock, HasKind, TenantId, TenantSlug};
use edk_kms_server::config::{KmsConfig, ProviderConfig};
use edk_kms_server::server::DatabaseCheck;
use edk_kms_server::{KmsApis, KmsServer, KmsServerConfig, KmsState};
use edk_server::{ANONYMOUS_PATHS, AdminAuth, HealthApi, Metrics, app, openapi_routes};
use edk_tenancy::DatabaseConfig;
use edk_tenancy::store::sqlite::SqliteConfig;

use crate::bootstrap::{DEFAULT_TENANT_SLUG, DataDir};

pub use config::EdkConfig;
pub use error::Error;

/// The OpenAPI service of the all-in-one server: health probes and the KMS API.
#[must_use]
pub fn openapi_service(
    kms: &Arc<KmsState>,
    health: HealthApi,
) -> OpenApiService<(HealthApi, KmsApis), ()> {
    OpenApiService::new(
        (health, edk_kms_server::apis(kms)),
        "EDK",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The all-in-one server, started: every service on SQLite under the data directory.
#[derive(Debug)]
pub struct Edk {
    kms: KmsServer,
    auth: AdminAuth,
    metrics: Metrics,
    config: EdkConfig,
    default_tenant: TenantId,
    bootstrap_token: Option<String>,
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
        let mut config = config.clone();
        config.auth.issuers.push(data.bootstrap_issuer());
        let kms_config = KmsServerConfig {
            http: config.http.clone(),
            auth: config.auth.clone(),
            log: config.log.clone(),
            database: DatabaseConfig::Sqlite(SqliteConfig::new(data.database_dir())),
            kms: KmsConfig::new(vec![ProviderConfig::Software(data.software_provider())]),
            grpc: None,
        };
        let kms = KmsServer::build(&kms_config, Arc::clone(&clock), http_client)
            .await
            .map_err(Error::KmsServer)?;
        let default_tenant = default_tenant(&kms).await?;
        let bootstrap_token = if data.is_first_start() {
            Some(
                data.bootstrap_token(default_tenant, &config.auth.audience, clock.as_ref())
                    .await?,
            )
        } else {
            None
        };
        let auth = AdminAuth::new(&config.auth, clock, &ANONYMOUS_PATHS, Some(http_client))
            .map_err(Error::Auth)?;
        Ok(Self {
            kms,
            auth,
            metrics: Metrics::new().map_err(Error::Metrics)?,
            config,
            default_tenant,
            bootstrap_token,
        })
    }

    /// The whole application: routes, `/metrics`, `/openapi.json`, `/docs`, admin
    /// authentication and the shared middleware.
    #[must_use]
    pub fn app(&self) -> BoxEndpoint<'static, Response> {
        let health =
            HealthApi::new().with_check(Arc::new(DatabaseCheck::new(self.kms.tenancy().clone())));
        let routes = openapi_routes(openapi_service(self.kms.state(), health));
        app(
            &self.config.http,
            &self.metrics,
            Some(self.auth.clone()),
            routes,
        )
    }

    /// The bootstrap admin token, on the data directory's first start only.
    #[must_use]
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
    }

    /// The tenant the bootstrap token acts for.
    #[must_use]
    pub const fn default_tenant(&self) -> TenantId {
        self.default_tenant
    }

    /// The KMS server inside.
    #[must_use]
    pub const fn kms(&self) -> &KmsServer {
        &self.kms
    }

    /// Stops the background work and writes buffered audit records.
    pub async fn shutdown(self) {
        self.kms.shutdown().await;
    }
}

/// The default tenant, provisioned if missing.
async fn default_tenant(kms: &KmsServer) -> Result<TenantId, Error> {
    #[expect(clippy::expect_used, reason = "the default slug is a valid constant")]
    let slug = TenantSlug::new(DEFAULT_TENANT_SLUG).expect("valid tenant slug");
    match kms.tenancy().tenant_by_slug(&slug).await {
        Ok(tenant) => Ok(tenant.id),
        Err(err) if err.kind() == edk_core::ErrorKind::NotFound => {
            let tenant = kms
                .tenancy()
                .provision(slug, "Default tenant")
                .await
                .map_err(Error::Tenancy)?;
            tracing::info!(tenant = %tenant.id, "provisioned the default tenant");
            Ok(tenant.id)
        }
        Err(err) => Err(Error::Tenancy(err)),
    }
}
