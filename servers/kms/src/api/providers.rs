//! `/providers` and `/capabilities`.

use std::sync::Arc;

use edk_core::jose::jwe::ContentEncryption;
use edk_kms::ProviderId;
use edk_kms::provider::KeyProvider;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use edk_server::{AdminBearer, ApiError};

use super::{KmsTag, problem, scope};
use crate::dto::{
    DeploymentCapabilities, ProviderCapabilities, ProviderDetail, ProviderList, ProviderQuery,
    ProviderSummary,
};
use crate::state::KmsState;

/// Key providers and capabilities.
#[derive(Debug)]
pub struct ProvidersApi {
    state: Arc<KmsState>,
}

impl ProvidersApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }

    fn detail(&self, provider: &dyn KeyProvider) -> ProviderDetail {
        let default = self
            .state
            .providers()
            .all()
            .first()
            .is_some_and(|first| first.id() == provider.id());
        ProviderDetail {
            id: provider.id().to_string(),
            default,
            capabilities: ProviderCapabilities::from(provider.capabilities()),
        }
    }

    fn provider(&self, id: String) -> Result<Arc<dyn KeyProvider>, ApiError> {
        let id = ProviderId::new(id).map_err(problem)?;
        self.state.providers().get(&id).map_err(problem)
    }
}

pub(crate) fn parse_provider(id: String) -> Result<ProviderId, ApiError> {
    ProviderId::new(id).map_err(problem)
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Providers")]
impl ProvidersApi {
    /// Lists the key providers, the default first. Scope `kms:read`.
    #[oai(path = "/providers", method = "get", operation_id = "listProviders")]
    async fn list(&self, auth: AdminBearer) -> Result<Json<ProviderList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        Ok(Json(ProviderList {
            providers: self
                .state
                .providers()
                .all()
                .iter()
                .map(|provider| ProviderSummary::from(provider.as_ref()))
                .collect(),
        }))
    }

    /// One key provider. Scope `kms:read`.
    #[oai(
        path = "/providers/:providerId",
        method = "get",
        operation_id = "getProvider"
    )]
    async fn get(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Json<ProviderDetail>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let provider = self.provider(provider_id.0)?;
        Ok(Json(self.detail(provider.as_ref())))
    }

    /// What one key provider can do. Scope `kms:read`.
    #[oai(
        path = "/providers/:providerId/capabilities",
        method = "get",
        operation_id = "getProviderCapabilities"
    )]
    async fn capabilities(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Json<ProviderCapabilities>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let provider = self.provider(provider_id.0)?;
        Ok(Json(ProviderCapabilities::from(provider.capabilities())))
    }

    /// The providers that meet a requirement, in order of preference. Scope `kms:read`.
    #[oai(
        path = "/providers/query",
        method = "post",
        operation_id = "queryProviders"
    )]
    async fn query(
        &self,
        auth: AdminBearer,
        body: Json<ProviderQuery>,
    ) -> Result<Json<ProviderList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let requirement = body.0.requirement().map_err(problem)?;
        Ok(Json(ProviderList {
            providers: self
                .state
                .providers()
                .matching(&requirement)
                .into_iter()
                .map(|provider| ProviderSummary::from(provider.as_ref()))
                .collect(),
        }))
    }

    /// The best provider for a requirement: hardware-backed before software, non-exportable
    /// before exportable, then configuration order. 422 when none meets it. Scope `kms:read`.
    #[oai(
        path = "/providers/query/best",
        method = "post",
        operation_id = "bestProvider"
    )]
    async fn best(
        &self,
        auth: AdminBearer,
        body: Json<ProviderQuery>,
    ) -> Result<Json<ProviderDetail>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let requirement = body.0.requirement().map_err(problem)?;
        let provider = self.state.providers().best(&requirement).map_err(problem)?;
        Ok(Json(self.detail(provider.as_ref())))
    }

    /// What the deployment can do: the union over providers, and each provider. Scope
    /// `kms:read`.
    #[oai(
        path = "/capabilities",
        method = "get",
        operation_id = "getCapabilities"
    )]
    async fn deployment(
        &self,
        auth: AdminBearer,
    ) -> Result<Json<DeploymentCapabilities>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let providers: Vec<ProviderDetail> = self
            .state
            .providers()
            .all()
            .iter()
            .map(|provider| self.detail(provider.as_ref()))
            .collect();
        let mut signing = Vec::new();
        let mut decryption = Vec::new();
        for provider in &providers {
            for alg in &provider.capabilities.signing_algorithms {
                if !signing.contains(alg) {
                    signing.push(alg.clone());
                }
            }
            for alg in &provider.capabilities.decryption_algorithms {
                if !decryption.contains(alg) {
                    decryption.push(alg.clone());
                }
            }
        }
        Ok(Json(DeploymentCapabilities {
            signing_algorithms: signing,
            decryption_algorithms: decryption,
            content_encryptions: [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm]
                .iter()
                .map(|enc| enc.name().to_owned())
                .collect(),
            providers,
        }))
    }
}
