//! `/api/kms/v1`: the key providers of this deployment and what each can do.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use serde::Serialize;

use edk_kms::provider::Capabilities;
use edk_kms::{KeyProvider, ProviderId};
use edk_server::{AdminBearer, ApiError, problem_for};

use crate::Error;

/// The scope that reads KMS configuration.
pub const SCOPE_KMS_READ: &str = "kms:read";

/// The KMS admin API.
#[derive(Debug)]
pub struct KmsApi {
    providers: Vec<Arc<dyn KeyProvider>>,
}

impl KmsApi {
    /// The API over `providers`.
    #[must_use]
    pub fn new(providers: Vec<Arc<dyn KeyProvider>>) -> Self {
        Self { providers }
    }
}

#[derive(Tags)]
enum KmsTag {
    /// Key management.
    Kms,
}

/// A key provider.
#[derive(Clone, Debug, Object)]
pub struct ProviderSummary {
    /// The provider's id.
    pub id: String,
    /// Whether its keys live in hardware.
    pub hardware_backed: bool,
}

/// The key providers of this deployment.
#[derive(Clone, Debug, Object)]
pub struct ProviderList {
    /// The providers, in configuration order.
    pub providers: Vec<ProviderSummary>,
}

/// What a key provider can do.
#[derive(Clone, Debug, Object)]
pub struct ProviderCapabilities {
    /// JWS algorithms it signs with.
    pub signing_algorithms: Vec<String>,
    /// JWE key management algorithms it decrypts with.
    pub decryption_algorithms: Vec<String>,
    /// Operations it performs (`sign`, `decrypt`, `key-agreement`, ...).
    pub operations: Vec<String>,
    /// Key types it generates (`p-256`, `ed25519`, ...).
    pub key_types: Vec<String>,
    /// Whether private keys can leave it: `never` or `exportable`.
    pub exportability: String,
    /// Whether it imports private keys.
    pub importable: bool,
    /// Whether keys live in hardware.
    pub hardware_backed: bool,
    /// Where key material lives: `in-provider` or `in-handle`.
    pub storage: String,
}

impl From<&Capabilities> for ProviderCapabilities {
    fn from(caps: &Capabilities) -> Self {
        Self {
            signing_algorithms: caps.signing().iter().map(wire_name).collect(),
            decryption_algorithms: caps.decryption().iter().map(wire_name).collect(),
            operations: caps.operations().iter().map(wire_name).collect(),
            key_types: caps.key_types().iter().map(wire_name).collect(),
            exportability: wire_name(&caps.exportability()),
            importable: caps.importable(),
            hardware_backed: caps.hardware_backed(),
            storage: wire_name(&caps.storage()),
        }
    }
}

impl From<&dyn KeyProvider> for ProviderSummary {
    fn from(provider: &dyn KeyProvider) -> Self {
        Self {
            id: provider.id().to_string(),
            hardware_backed: provider.capabilities().hardware_backed(),
        }
    }
}

/// The serde (wire) name of a unit-like enum value.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Kms")]
impl KmsApi {
    /// Lists the key providers. Requires scope `kms:read`.
    #[oai(path = "/providers", method = "get", operation_id = "listKeyProviders")]
    async fn providers(&self, auth: AdminBearer) -> Result<Json<ProviderList>, ApiError> {
        auth.0.require_scope(SCOPE_KMS_READ)?;
        Ok(Json(ProviderList {
            providers: self
                .providers
                .iter()
                .map(|provider| ProviderSummary::from(provider.as_ref()))
                .collect(),
        }))
    }

    /// What one key provider can do. Requires scope `kms:read`.
    #[oai(
        path = "/providers/:providerId/capabilities",
        method = "get",
        operation_id = "getKeyProviderCapabilities"
    )]
    async fn capabilities(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Json<ProviderCapabilities>, ApiError> {
        auth.0.require_scope(SCOPE_KMS_READ)?;
        let id = ProviderId::new(provider_id.0).map_err(|err| problem_for(&err))?;
        let provider = self
            .providers
            .iter()
            .find(|provider| provider.id() == &id)
            .ok_or_else(|| problem_for(&Error::UnknownProvider { provider: id }))?;
        Ok(Json(ProviderCapabilities::from(provider.capabilities())))
    }
}
