//! `/keys` and `/providers/{providerId}/keys`: aliases, versions, rotation, deletion.

use std::sync::Arc;

use edk_kms::{KeyInfo, KeyRef, NewKey, ProviderId};
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use edk_server::{AdminBearer, ApiError};

use super::providers::parse_provider;
use super::{Deleted, KeyCreated, KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::{
    CreateKeyRequest, ImportKeyRequest, JwksBody, KeyBody, KeyList, RegisterKeyRequest,
    RotationBody, RotationList, jwk_value, parse_alias, parse_jwk, parse_key_ref, spec_of,
};
use crate::state::KmsState;

/// Key aliases.
#[derive(Debug)]
pub struct KeysApi {
    state: Arc<KmsState>,
}

impl KeysApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }

    async fn create(
        &self,
        auth: &AdminBearer,
        body: CreateKeyRequest,
        provider: Option<ProviderId>,
    ) -> Result<KeyCreated, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &body.alias).map_err(problem)?;
        let spec = spec_of(body.usage, &body.algorithm).map_err(problem)?;
        let provider = match (provider, body.provider) {
            (Some(path), Some(given)) if path.as_str() != given => {
                return Err(problem(Error::invalid(
                    "provider",
                    "differs from the provider in the path",
                )));
            }
            (Some(path), _) => Some(path),
            (None, Some(given)) => Some(parse_provider(given)?),
            (None, None) => None,
        };
        if let Some(provider) = &provider {
            self.state.providers().get(provider).map_err(problem)?;
        }
        let mut request = NewKey::new(alias, spec);
        if let Some(provider) = provider {
            request = request.in_provider(provider);
        }
        if let Some(rotation) = &body.rotation {
            request = request.with_rotation(rotation.into());
        }
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self
            .state
            .kms()
            .create_key(&caller, &request)
            .await
            .map_err(problem)?;
        Ok(KeyCreated::Created(Json(KeyBody::from(&info))))
    }

    async fn import(
        &self,
        auth: &AdminBearer,
        body: ImportKeyRequest,
        provider: Option<ProviderId>,
    ) -> Result<KeyCreated, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &body.alias).map_err(problem)?;
        let spec = spec_of(body.usage, &body.algorithm).map_err(problem)?;
        let jwk = parse_jwk("private_jwk", &body.private_jwk).map_err(problem)?;
        let provider = match (provider, body.provider) {
            (Some(path), Some(given)) if path.as_str() != given => {
                return Err(problem(Error::invalid(
                    "provider",
                    "differs from the provider in the path",
                )));
            }
            (Some(path), _) => Some(path),
            (None, Some(given)) => Some(parse_provider(given)?),
            (None, None) => None,
        };
        if let Some(provider) = &provider {
            self.state.providers().get(provider).map_err(problem)?;
        }
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self
            .state
            .kms()
            .import_key(&caller, &alias, &spec, &jwk, provider.as_ref())
            .await
            .map_err(problem)?;
        Ok(KeyCreated::Created(Json(KeyBody::from(&info))))
    }

    /// The key `key` names, refused as not found when it is not in `provider`.
    async fn key_in(
        &self,
        auth: &AdminBearer,
        key: &str,
        provider: Option<&ProviderId>,
    ) -> Result<(KeyRef, KeyInfo), ApiError> {
        let key = parse_key_ref("aliasOrKid", key).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self.state.kms().key(&caller, &key).await.map_err(problem)?;
        if let Some(provider) = provider
            && !in_provider(&info, &key, provider)
        {
            return Err(problem(Error::KeyNotInProvider {
                key: key.to_string(),
                provider: provider.clone(),
            }));
        }
        Ok((key, info))
    }

    async fn list_in(
        &self,
        auth: &AdminBearer,
        provider: Option<&ProviderId>,
    ) -> Result<Json<KeyList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let keys = self.state.kms().keys(&caller).await.map_err(problem)?;
        Ok(Json(KeyList {
            keys: keys
                .iter()
                .filter(|info| provider.is_none_or(|id| info.provider.as_ref() == Some(id)))
                .map(KeyBody::from)
                .collect(),
        }))
    }

    async fn delete_in(
        &self,
        auth: &AdminBearer,
        key: &str,
        provider: Option<&ProviderId>,
    ) -> Result<Deleted, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let (key, _) = self.key_in(auth, key, provider).await?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        self.state
            .kms()
            .delete_key(&caller, &key)
            .await
            .map_err(problem)?;
        Ok(Deleted::Deleted)
    }
}

/// Whether the key `key` names (an alias, or one version by kid) lives in `provider`.
fn in_provider(info: &KeyInfo, key: &KeyRef, provider: &ProviderId) -> bool {
    match key {
        KeyRef::Alias(_) => info.provider.as_ref() == Some(provider),
        KeyRef::Kid(kid) => info
            .versions
            .iter()
            .any(|version| &version.kid == kid && version.provider.as_ref() == Some(provider)),
    }
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Keys")]
impl KeysApi {
    /// Lists the tenant's keys. Scope `kms:read`.
    #[oai(path = "/keys", method = "get", operation_id = "listKeys")]
    async fn list(&self, auth: AdminBearer) -> Result<Json<KeyList>, ApiError> {
        self.list_in(&auth, None).await
    }

    /// Creates an alias with a new key, in the given or the best provider. 409 when the alias
    /// exists. Scope `kms:write`.
    #[oai(path = "/keys", method = "post", operation_id = "createKey")]
    async fn create_key(
        &self,
        auth: AdminBearer,
        body: Json<CreateKeyRequest>,
    ) -> Result<KeyCreated, ApiError> {
        self.create(&auth, body.0, None).await
    }

    /// Creates an alias from an imported private key. Scope `kms:write`.
    #[oai(path = "/keys/import", method = "post", operation_id = "importKey")]
    async fn import_key(
        &self,
        auth: AdminBearer,
        body: Json<ImportKeyRequest>,
    ) -> Result<KeyCreated, ApiError> {
        self.import(&auth, body.0, None).await
    }

    /// Registers an externally managed public key under an alias, for verification only.
    /// Scope `kms:write`.
    #[oai(path = "/keys/register", method = "post", operation_id = "registerKey")]
    async fn register_key(
        &self,
        auth: AdminBearer,
        body: Json<RegisterKeyRequest>,
    ) -> Result<KeyCreated, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &body.alias).map_err(problem)?;
        let jwk = parse_jwk("public_jwk", &body.public_jwk).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self
            .state
            .kms()
            .register_public_key(&caller, &alias, &jwk)
            .await
            .map_err(problem)?;
        Ok(KeyCreated::Created(Json(KeyBody::from(&info))))
    }

    /// One key, by alias or by the kid of one of its versions. Scope `kms:read`.
    #[oai(path = "/keys/:aliasOrKid", method = "get", operation_id = "getKey")]
    async fn get_key(
        &self,
        auth: AdminBearer,
        /// An alias (`service.purpose`) or a kid.
        #[oai(name = "aliasOrKid")]
        alias_or_kid: Path<String>,
    ) -> Result<Json<KeyBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let (_, info) = self.key_in(&auth, &alias_or_kid.0, None).await?;
        Ok(Json(KeyBody::from(&info)))
    }

    /// Destroys a key: every version of an alias, or one (not active) version by kid. 409
    /// while the key is in use. Scope `kms:write`.
    #[oai(
        path = "/keys/:aliasOrKid",
        method = "delete",
        operation_id = "deleteKey"
    )]
    async fn delete_key(
        &self,
        auth: AdminBearer,
        /// An alias (`service.purpose`) or a kid.
        #[oai(name = "aliasOrKid")]
        alias_or_kid: Path<String>,
    ) -> Result<Deleted, ApiError> {
        self.delete_in(&auth, &alias_or_kid.0, None).await
    }

    /// Rotates an alias: a new active version; the previous one retires and verifies for
    /// the overlap. Scope `kms:write`.
    #[oai(
        path = "/keys/:alias/rotate",
        method = "post",
        operation_id = "rotateKey"
    )]
    async fn rotate(
        &self,
        auth: AdminBearer,
        /// The alias (`service.purpose`).
        alias: Path<String>,
    ) -> Result<Json<KeyBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self
            .state
            .kms()
            .rotate(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Json(KeyBody::from(&info)))
    }

    /// The rotation history of an alias, oldest first. Scope `kms:read`.
    #[oai(
        path = "/keys/:alias/rotations",
        method = "get",
        operation_id = "listRotations"
    )]
    async fn rotations(
        &self,
        auth: AdminBearer,
        /// The alias (`service.purpose`).
        alias: Path<String>,
    ) -> Result<Json<RotationList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let records = self
            .state
            .kms()
            .rotations(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Json(RotationList {
            rotations: records.iter().map(RotationBody::from).collect(),
        }))
    }

    /// The JWKS of an alias: its pre-active, active and still-verifiable versions. Scope
    /// `kms:read`.
    #[oai(
        path = "/keys/:alias/jwks",
        method = "get",
        operation_id = "getKeyJwks"
    )]
    async fn jwks(
        &self,
        auth: AdminBearer,
        /// The alias (`service.purpose`).
        alias: Path<String>,
    ) -> Result<Json<JwksBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let jwks = self
            .state
            .kms()
            .jwks(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Json(JwksBody {
            keys: jwks.keys.iter().map(jwk_value).collect(),
        }))
    }

    /// The tenant's keys held by one provider. Scope `kms:read`.
    #[oai(
        path = "/providers/:providerId/keys",
        method = "get",
        operation_id = "listProviderKeys"
    )]
    async fn provider_keys(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Json<KeyList>, ApiError> {
        let provider = parse_provider(provider_id.0)?;
        self.state.providers().get(&provider).map_err(problem)?;
        self.list_in(&auth, Some(&provider)).await
    }

    /// Creates an alias with a new key in one provider. Scope `kms:write`.
    #[oai(
        path = "/providers/:providerId/keys",
        method = "post",
        operation_id = "createProviderKey"
    )]
    async fn create_provider_key(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
        body: Json<CreateKeyRequest>,
    ) -> Result<KeyCreated, ApiError> {
        let provider = parse_provider(provider_id.0)?;
        self.create(&auth, body.0, Some(provider)).await
    }

    /// Creates an alias from a private key imported into one provider. Scope `kms:write`.
    #[oai(
        path = "/providers/:providerId/keys/import",
        method = "post",
        operation_id = "importProviderKey"
    )]
    async fn import_provider_key(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
        body: Json<ImportKeyRequest>,
    ) -> Result<KeyCreated, ApiError> {
        let provider = parse_provider(provider_id.0)?;
        self.import(&auth, body.0, Some(provider)).await
    }

    /// One key of one provider, by alias or kid. Scope `kms:read`.
    #[oai(
        path = "/providers/:providerId/keys/:aliasOrKid",
        method = "get",
        operation_id = "getProviderKey"
    )]
    async fn get_provider_key(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
        /// An alias (`service.purpose`) or a kid.
        #[oai(name = "aliasOrKid")]
        alias_or_kid: Path<String>,
    ) -> Result<Json<KeyBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let provider = parse_provider(provider_id.0)?;
        self.state.providers().get(&provider).map_err(problem)?;
        let (_, info) = self.key_in(&auth, &alias_or_kid.0, Some(&provider)).await?;
        Ok(Json(KeyBody::from(&info)))
    }

    /// Destroys a key of one provider. 409 while in use. Scope `kms:write`.
    #[oai(
        path = "/providers/:providerId/keys/:aliasOrKid",
        method = "delete",
        operation_id = "deleteProviderKey"
    )]
    async fn delete_provider_key(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
        /// An alias (`service.purpose`) or a kid.
        #[oai(name = "aliasOrKid")]
        alias_or_kid: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let provider = parse_provider(provider_id.0)?;
        self.state.providers().get(&provider).map_err(problem)?;
        self.delete_in(&auth, &alias_or_kid.0, Some(&provider))
            .await
    }
}
