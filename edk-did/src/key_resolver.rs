//! An edk-core [`KeyResolver`] for DID URLs: the `kid` of a token is a DID URL naming a
//! verification method, which must be authorised for the relationship the caller needs.

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::jose::{JoseError, KeyQuery, KeyResolver, VerifyingKey};
use edk_core::{DidUrl, HasKind};
use edk_tenancy::TenantContext;

use crate::document::Relationship;
use crate::error::ResolveError;
use crate::resolution::ResolveOptions;
use crate::resolver::{DidResolver, Resource};

/// Resolves a token's `kid` (a DID URL such as `did:key:z6Mk…#z6Mk…`) to its verifying key.
///
/// The verification method must be listed under the relationship asked for
/// (`assertionMethod` by default), the query's `issuer`, when set, must be the DID, and the
/// key must fit the token's `alg`.
#[derive(Clone, Debug)]
pub struct DidKeyResolver {
    resolver: Arc<dyn DidResolver>,
    tenant: Option<TenantContext>,
    relationship: Relationship,
}

impl DidKeyResolver {
    /// A key resolver over `resolver`, for `assertionMethod` keys.
    #[must_use]
    pub fn new(resolver: Arc<dyn DidResolver>) -> Self {
        Self {
            resolver,
            tenant: None,
            relationship: Relationship::AssertionMethod,
        }
    }

    /// Resolves only the methods `tenant` enabled.
    #[must_use]
    pub fn for_tenant(mut self, tenant: TenantContext) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Requires keys authorised for `relationship` instead of `assertionMethod`.
    #[must_use]
    pub const fn with_relationship(mut self, relationship: Relationship) -> Self {
        self.relationship = relationship;
        self
    }
}

#[async_trait]
impl KeyResolver for DidKeyResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let kid = query.kid.ok_or(JoseError::KeyNotFound)?;
        let url = DidUrl::parse(kid).map_err(|_| JoseError::KeyNotFound)?;
        if url.fragment().is_none_or(str::is_empty) {
            return Err(JoseError::KeyNotFound);
        }
        if let Some(issuer) = query.issuer
            && issuer != url.did().as_str()
        {
            return Err(JoseError::UntrustedKey(
                "the key does not belong to the issuer",
            ));
        }
        let dereferenced = self
            .resolver
            .dereference(self.tenant.as_ref(), kid, &ResolveOptions::default())
            .await
            .map_err(key_source)?;
        let Resource::VerificationMethod(method) = &dereferenced.resource else {
            return Err(JoseError::KeyNotFound);
        };
        let authorized = dereferenced
            .resolution
            .document
            .as_ref()
            .is_some_and(|document| document.is_authorized(&method.id, self.relationship));
        if !authorized {
            return Err(JoseError::UntrustedKey(not_authorized(self.relationship)));
        }
        let jwk = method
            .jwk()
            .map_err(|_| JoseError::InvalidKey("the verification method has no usable key"))?
            .with_kid(kid);
        let key = VerifyingKey::from_jwk(&jwk)?;
        if !key.supports(query.alg) {
            return Err(JoseError::KeyAlgorithmMismatch(query.alg));
        }
        Ok(Arc::new(key))
    }
}

fn key_source(err: ResolveError) -> JoseError {
    match err {
        ResolveError::NotFound { .. } => JoseError::KeyNotFound,
        other => {
            let kind = other.kind();
            JoseError::KeySource(Box::new(other), kind)
        }
    }
}

const fn not_authorized(relationship: Relationship) -> &'static str {
    match relationship {
        Relationship::AssertionMethod => "the key is not authorised for assertionMethod",
        Relationship::Authentication => "the key is not authorised for authentication",
        Relationship::CapabilityDelegation => "the key is not authorised for capabilityDelegation",
        Relationship::CapabilityInvocation => "the key is not authorised for capabilityInvocation",
        Relationship::KeyAgreement => "the key is not authorised for keyAgreement",
    }
}
