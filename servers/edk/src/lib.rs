#![doc = include_str!("../README.md")]

pub mod bootstrap;
pub mod config;
pub mod error;
pub mod kms_api;

use std::sync::Arc;

use poem::Response;
use poem::endpoint::BoxEndpoint;
use poem_openapi::OpenApiService;

use edk_core::Clock;
use edk_kms::KeyProvider;
use edk_server::{ANONYMOUS_PATHS, AdminAuth, HealthApi, Metrics, app, openapi_routes};

pub use config::EdkConfig;
pub use error::Error;
pub use kms_api::KmsApi;

/// The OpenAPI service of the all-in-one server: health probes and the KMS admin API.
#[must_use]
pub fn openapi_service(
    providers: Vec<Arc<dyn KeyProvider>>,
) -> OpenApiService<(HealthApi, KmsApi), ()> {
    OpenApiService::new(
        (HealthApi::new(), KmsApi::new(providers)),
        "EDK",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The whole application for `config`: routes, `/metrics`, `/openapi.json`, `/docs`, admin
/// authentication (time from `clock`) and the shared middleware.
///
/// # Errors
/// [`Error::Metrics`] if the metrics registry cannot be built.
pub fn build_app(
    config: &EdkConfig,
    providers: Vec<Arc<dyn KeyProvider>>,
    clock: Arc<dyn Clock>,
) -> Result<BoxEndpoint<'static, Response>, Error> {
    let metrics = Metrics::new().map_err(Error::Metrics)?;
    let auth = AdminAuth::new(&config.auth, clock, &ANONYMOUS_PATHS);
    let routes = openapi_routes(openapi_service(providers));
    Ok(app(&config.http, &metrics, Some(auth), routes))
}
