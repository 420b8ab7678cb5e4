#![doc = include_str!("../README.md")]

pub mod admin;
pub mod config;
pub mod protocol;

use std::sync::Arc;

use edk_core::Clock;
use edk_oauth::AuthorizationServer;
use edk_server::{
    ANONYMOUS_PATHS, AdminAuth, AuthConfig, AuthSetupError, HealthApi, HttpConfig, Metrics,
    openapi_routes, path_is_under,
};
use edk_tenancy::Tenancy;
use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;

pub use admin::AdminApi;
pub use config::AsServerConfig;
pub use protocol::ProtocolEndpoint;

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/api/oauth2/v1";

/// The OpenAPI service: health probes and the admin API.
#[must_use]
pub fn openapi_service(
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
) -> OpenApiService<(HealthApi, AdminApi), ()> {
    OpenApiService::new(
        (
            HealthApi::new(),
            AdminApi::new(tenancy.clone(), Arc::clone(server)),
        ),
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
    auth: &AuthConfig,
    clock: Arc<dyn Clock>,
    http: Option<&reqwest::Client>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin_auth = AdminAuth::new(auth, clock, &ANONYMOUS_PATHS, http)?;
    Ok(openapi_routes(openapi_service(tenancy, server))
        .with(admin_auth)
        .boxed())
}

/// The whole application: the admin surface for `/api/...` and the anonymous paths, the
/// per-tenant protocol surface for everything else, `/metrics`, and the shared middleware.
///
/// # Errors
/// [`AuthSetupError`] when the admin issuers are misconfigured.
pub fn build_app(
    http: &HttpConfig,
    auth: &AuthConfig,
    metrics: &Metrics,
    tenancy: &Tenancy,
    server: &Arc<AuthorizationServer>,
    clock: Arc<dyn Clock>,
    client: Option<&reqwest::Client>,
) -> Result<BoxEndpoint<'static, Response>, AuthSetupError> {
    let admin = admin_routes(tenancy, server, auth, clock, client)?;
    let protocol = ProtocolEndpoint::new(tenancy.clone(), Arc::clone(server)).boxed();
    let dispatch = Dispatch { admin, protocol };
    Ok(edk_server::app(
        http,
        metrics,
        None,
        Route::new().nest("/", dispatch),
    ))
}

/// Sends admin and probe paths to the admin surface and the rest to the protocol surface.
struct Dispatch {
    admin: BoxEndpoint<'static, Response>,
    protocol: BoxEndpoint<'static, Response>,
}

impl Endpoint for Dispatch {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.original_uri().path();
        let admin = path_is_under(path, "/api")
            || ANONYMOUS_PATHS
                .iter()
                .any(|prefix| path_is_under(path, prefix));
        if admin {
            self.admin.call(req).await.map(IntoResponse::into_response)
        } else {
            self.protocol.call(req).await
        }
    }
}
