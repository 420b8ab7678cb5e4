#![doc = include_str!("../README.md")]

pub mod api;
pub mod config;
pub mod dto;
pub mod error;
pub mod identity;
pub mod resolver;
pub mod server;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;

use poem::Route;
use poem_openapi::OpenApiService;

use edk_server::HealthApi;

pub use api::{PREFIX, scope};
pub use config::KmsServerConfig;
pub use error::Error;
pub use server::KmsServer;
pub use state::{KmsState, ProviderRegistry};

use api::audit::AuditApi;
use api::certificates::CertificatesApi;
use api::crypto::{EncryptionApi, SignaturesApi};
use api::keys::KeysApi;
use api::providers::ProvidersApi;
use api::registrations::RegistrationsApi;
use api::resolvers::ResolversApi;

/// The KMS API groups, as one poem-openapi service.
pub type KmsApis = (
    ProvidersApi,
    RegistrationsApi,
    KeysApi,
    SignaturesApi,
    EncryptionApi,
    ResolversApi,
    CertificatesApi,
    AuditApi,
);

/// The KMS REST API over `state`, every route under [`PREFIX`], to compose into a server's
/// OpenAPI service (the all-in-one `edk` does).
#[must_use]
pub fn apis(state: &Arc<KmsState>) -> KmsApis {
    (
        ProvidersApi::new(Arc::clone(state)),
        RegistrationsApi::new(Arc::clone(state)),
        KeysApi::new(Arc::clone(state)),
        SignaturesApi::new(Arc::clone(state)),
        EncryptionApi::new(Arc::clone(state)),
        ResolversApi::new(Arc::clone(state)),
        CertificatesApi::new(Arc::clone(state)),
        AuditApi::new(Arc::clone(state)),
    )
}

/// The OpenAPI service of the `edk-kms` server: `health` and the KMS API.
#[must_use]
pub fn openapi_service(
    state: &Arc<KmsState>,
    health: HealthApi,
) -> OpenApiService<(HealthApi, KmsApis), ()> {
    OpenApiService::new((health, apis(state)), "EDK KMS", env!("CARGO_PKG_VERSION"))
}

/// Every route of the `edk-kms` server: the API, `/openapi.json` and `/docs` (wrap it with
/// [`edk_server::app`] for `/metrics`, authentication and the shared middleware).
#[must_use]
pub fn routes(state: &Arc<KmsState>, health: HealthApi) -> Route {
    edk_server::openapi_routes(openapi_service(state, health))
}
