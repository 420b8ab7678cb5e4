//! `/resolvers`: public keys from JWKs, kids, COSE_Keys, x5c chains and DID URLs.

use std::sync::Arc;

use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use edk_server::{AdminBearer, ApiError};

use super::{KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::{ResolveRequest, ResolvedKey, ResolverBody, ResolverList, jwk_value};
use crate::resolver::PublicKeyResolver;
use crate::state::KmsState;

/// Resolvers.
#[derive(Debug)]
pub struct ResolversApi {
    state: Arc<KmsState>,
}

impl ResolversApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }

    fn resolver(&self, id: &str) -> Result<&Arc<dyn PublicKeyResolver>, ApiError> {
        self.state
            .resolvers()
            .get(id)
            .ok_or_else(|| problem(Error::UnknownResolver { id: id.to_owned() }))
    }
}

fn body(resolver: &dyn PublicKeyResolver) -> ResolverBody {
    ResolverBody {
        id: resolver.id().to_owned(),
        description: resolver.description().to_owned(),
    }
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Resolvers")]
impl ResolversApi {
    /// Lists the public key resolvers. Scope `kms:read`.
    #[oai(path = "/resolvers", method = "get", operation_id = "listResolvers")]
    async fn list(&self, auth: AdminBearer) -> Result<Json<ResolverList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        Ok(Json(ResolverList {
            resolvers: self
                .state
                .resolvers()
                .all()
                .iter()
                .map(|resolver| body(resolver.as_ref()))
                .collect(),
        }))
    }

    /// One resolver. Scope `kms:read`.
    #[oai(path = "/resolvers/:id", method = "get", operation_id = "getResolver")]
    async fn get(
        &self,
        auth: AdminBearer,
        /// The resolver's id (`jwk`, `kid`, `cose-key`, `x5c`, `did`).
        id: Path<String>,
    ) -> Result<Json<ResolverBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        Ok(Json(body(self.resolver(&id.0)?.as_ref())))
    }

    /// Resolves an input to a public JWK. Scope `kms:read`.
    #[oai(
        path = "/resolvers/:id/resolve",
        method = "post",
        operation_id = "resolvePublicKey"
    )]
    async fn resolve(
        &self,
        auth: AdminBearer,
        /// The resolver's id.
        id: Path<String>,
        request: Json<ResolveRequest>,
    ) -> Result<Json<ResolvedKey>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let resolver = self.resolver(&id.0)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let jwk = resolver
            .resolve(&caller, &request.input)
            .await
            .map_err(problem)?;
        Ok(Json(ResolvedKey {
            kid: jwk.thumbprint(),
            jwk: jwk_value(&jwk),
        }))
    }
}
