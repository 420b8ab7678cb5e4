//! `/provider-registrations` (providers registered at run time, an operator's task) and
//! `/bindings` (a tenant's aliases bound to providers).

use std::sync::Arc;

use edk_kms::LocalKms;
use edk_kms::provider::KeyUsage;
use edk_kms::registry::{AliasBinding, ProviderRegistration};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use serde_json::Value;

use edk_server::{AdminBearer, ApiError};

use super::providers::parse_provider;
use super::{Deleted, KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::{
    AliasBindingBody, AliasBindingList, AliasBindingRequest, RegistrationBody, RegistrationList,
    parse_alg, parse_alias,
};
use crate::state::KmsState;

/// Run-time provider registrations and alias bindings.
#[derive(Debug)]
pub struct RegistrationsApi {
    state: Arc<KmsState>,
}

/// A registration stored: 201 when new, 200 when it replaced one.
#[derive(ApiResponse, Debug)]
pub enum Registered {
    /// The provider was registered.
    #[oai(status = 201)]
    Created(Json<RegistrationBody>),
    /// The registration was replaced.
    #[oai(status = 200)]
    Updated(Json<RegistrationBody>),
}

impl RegistrationsApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }

    fn local(&self) -> Result<&LocalKms, ApiError> {
        self.state
            .local()
            .ok_or_else(|| problem(edk_kms::Error::RegistrationDisabled))
    }
}

/// The registration `body` describes for `id`: an object with `kind` and the kind's fields.
fn registration_of(id: &str, body: Value) -> Result<ProviderRegistration, ApiError> {
    let id = parse_provider(id.to_owned())?;
    let Value::Object(config) = body else {
        return Err(problem(Error::invalid("body", "must be a JSON object")));
    };
    let kind = match config.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(problem(Error::invalid("kind", "must be a string"))),
        None => return Err(problem(Error::invalid("kind", "is required"))),
    };
    match config.get("id") {
        None => {}
        Some(Value::String(given)) if given == id.as_str() => {}
        Some(_) => {
            return Err(problem(Error::invalid(
                "id",
                "differs from the provider id in the path",
            )));
        }
    }
    Ok(ProviderRegistration::new(id, kind, config))
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Providers")]
impl RegistrationsApi {
    /// Lists the providers registered at run time (secrets as references only). Scope
    /// `platform:kms:providers`.
    #[oai(
        path = "/provider-registrations",
        method = "get",
        operation_id = "listProviderRegistrations"
    )]
    async fn list(&self, auth: AdminBearer) -> Result<Json<RegistrationList>, ApiError> {
        auth.0.require_scope(scope::PROVIDERS)?;
        let registrations = self.local()?.registrations().await.map_err(problem)?;
        Ok(Json(RegistrationList {
            registrations: registrations.iter().map(RegistrationBody::from).collect(),
        }))
    }

    /// One run-time registration (secrets as references only). Scope
    /// `platform:kms:providers`.
    #[oai(
        path = "/provider-registrations/:providerId",
        method = "get",
        operation_id = "getProviderRegistration"
    )]
    async fn get(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Json<RegistrationBody>, ApiError> {
        auth.0.require_scope(scope::PROVIDERS)?;
        let id = parse_provider(provider_id.0)?;
        let registration = self.local()?.registration(&id).await.map_err(problem)?;
        Ok(Json(RegistrationBody::from(&registration)))
    }

    /// Registers a key provider, or replaces its registration, on every replica. The body is
    /// what a `kms.providers` entry of the configuration file takes (`kind` and its fields;
    /// `id` from the path), with every secret (`token`, `secret_id`, `client_secret`,
    /// `secret_access_key`, `session_token`, `pin`, `key`) as a reference: `{"env": NAME}`,
    /// `{"file": "/path"}` or `{"kubernetes": {"secret": ..., "key": ...}}`. 400 naming the
    /// field for an unknown kind, a missing or malformed field, a secret in clear or one that
    /// cannot be resolved; 409 for a provider of the configuration file. Scope
    /// `platform:kms:providers`.
    #[oai(
        path = "/provider-registrations/:providerId",
        method = "put",
        operation_id = "registerProvider"
    )]
    async fn register(
        &self,
        auth: AdminBearer,
        /// The provider's id, e.g. `aws-eu-west-1`.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
        body: Json<Value>,
    ) -> Result<Registered, ApiError> {
        auth.0.require_scope(scope::PROVIDERS)?;
        let registration = registration_of(&provider_id.0, body.0)?;
        let (stored, created) = self
            .local()?
            .register_provider(registration)
            .await
            .map_err(problem)?;
        let body = Json(RegistrationBody::from(&stored));
        Ok(if created {
            Registered::Created(body)
        } else {
            Registered::Updated(body)
        })
    }

    /// Removes a run-time provider on every replica; 409 while key aliases of any tenant or
    /// alias bindings use it. Scope `platform:kms:providers`.
    #[oai(
        path = "/provider-registrations/:providerId",
        method = "delete",
        operation_id = "deleteProviderRegistration"
    )]
    async fn delete(
        &self,
        auth: AdminBearer,
        /// The provider's id.
        #[oai(name = "providerId")]
        provider_id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        auth.0.require_scope(scope::PROVIDERS)?;
        let id = parse_provider(provider_id.0)?;
        self.local()?.remove_provider(&id).await.map_err(problem)?;
        Ok(Deleted::Deleted)
    }

    /// The token's tenant's alias bindings. Scope `kms:read`.
    #[oai(path = "/bindings", method = "get", operation_id = "listAliasBindings")]
    async fn bindings(&self, auth: AdminBearer) -> Result<Json<AliasBindingList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let bindings = self.local()?.bindings(&caller).await.map_err(problem)?;
        Ok(Json(AliasBindingList {
            bindings: bindings.iter().map(AliasBindingBody::from).collect(),
        }))
    }

    /// Binds an alias of the token's tenant to a provider: new keys of the alias are created
    /// there. The provider must create keys signing with `algorithm` (422 otherwise). Scope
    /// `kms:write`.
    #[oai(path = "/bindings/:alias", method = "put", operation_id = "bindAlias")]
    async fn bind(
        &self,
        auth: AdminBearer,
        /// The alias, `service.purpose`.
        alias: Path<String>,
        body: Json<AliasBindingRequest>,
    ) -> Result<Json<AliasBindingBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let provider = edk_kms::ProviderId::new(body.0.provider)
            .map_err(|err| problem(Error::invalid("provider", err.to_string())))?;
        let algorithm = parse_alg("algorithm", &body.0.algorithm).map_err(problem)?;
        let chosen = self
            .state
            .providers()
            .get(&provider)
            .map_err(|err| problem(Error::invalid("provider", err.to_string())))?;
        if !chosen
            .capabilities()
            .supports_usage(KeyUsage::Sign(algorithm))
        {
            return Err(problem(Error::invalid(
                "algorithm",
                format!(
                    "`{}` is not supported by provider `{provider}`",
                    algorithm.name()
                ),
            )));
        }
        let caller = admin_caller(&self.state, &auth.0).await?;
        let binding = self
            .local()?
            .bind_alias(&caller, AliasBinding::new(alias, provider, algorithm))
            .await
            .map_err(problem)?;
        Ok(Json(AliasBindingBody::from(&binding)))
    }

    /// Removes the binding of an alias of the token's tenant. Scope `kms:write`.
    #[oai(
        path = "/bindings/:alias",
        method = "delete",
        operation_id = "unbindAlias"
    )]
    async fn unbind(&self, auth: AdminBearer, alias: Path<String>) -> Result<Deleted, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        self.local()?
            .unbind_alias(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Deleted::Deleted)
    }
}
