//! `did:jwk` v1.0: a DID that is a base64url-encoded public JWK.

use async_trait::async_trait;
use edk_core::Did;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::Jwk;
use edk_tenancy::TenantContext;
use serde_json::{Map, Value};

use crate::document::{
    DID_V1_CONTEXT, DidDocument, JWS_2020_CONTEXT, MethodRef, Relationship, VerificationMethod,
};
use crate::error::{PublishError, ResolveError};
use crate::method::{DidMethod, DidPublisher, PublishRequest, Published};
use crate::multikey::has_private_members;
use crate::resolution::{Resolution, ResolveOptions};

/// The did:jwk method.
///
/// ```
/// use edk_did::methods::jwk::DidJwk;
/// let jwk: edk_core::jose::Jwk = serde_json::from_str(
///     r#"{"kty":"OKP","crv":"Ed25519","x":"Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY"}"#,
/// )?;
/// let did = DidJwk::create(&jwk)?;
/// let document = DidJwk.document(&did)?;
/// assert_eq!(document.verification_method[0].id, format!("{did}#0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DidJwk;

impl DidJwk {
    /// The did:jwk of a public JWK (serialized as edk-core writes it).
    ///
    /// # Errors
    /// [`PublishError::InvalidRequest`] when the JWK carries private material or the DID would
    /// be too long.
    pub fn create(jwk: &Jwk) -> Result<Did, PublishError> {
        if jwk.is_private() {
            return Err(PublishError::InvalidRequest {
                reason: "the JWK carries private key material".to_owned(),
            });
        }
        let json = serde_json::to_vec(jwk).map_err(|err| PublishError::Internal(Box::new(err)))?;
        Did::new(format!("did:jwk:{}", b64url_encode(json))).map_err(|err| {
            PublishError::InvalidRequest {
                reason: err.to_string(),
            }
        })
    }

    /// The JWK a did:jwk carries, as decoded (members kept as they were).
    ///
    /// # Errors
    /// [`ResolveError::InvalidDid`] saying what is wrong.
    pub fn jwk_object(did: &Did) -> Result<Map<String, Value>, ResolveError> {
        let invalid = |reason: &str| ResolveError::invalid_did(did.as_str(), reason);
        if did.method() != "jwk" {
            return Err(invalid("not a did:jwk"));
        }
        let bytes = b64url_decode(did.method_specific_id())
            .map_err(|_| invalid("the method-specific id is not base64url"))?;
        let Ok(Value::Object(jwk)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(invalid("the decoded value is not a JSON object"));
        };
        // did:jwk §"Read": a JWK with private key material MUST be rejected.
        if has_private_members(&jwk) {
            return Err(invalid("the JWK carries private key material"));
        }
        serde_json::from_value::<Jwk>(Value::Object(jwk.clone())).map_err(|err| {
            ResolveError::invalid_did(did.as_str(), format!("invalid JWK: {err}"))
        })?;
        Ok(jwk)
    }

    /// The DID document of `did` (did:jwk §"Read").
    ///
    /// # Errors
    /// [`ResolveError::InvalidDid`] when the identifier is not a valid did:jwk.
    pub fn document(&self, did: &Did) -> Result<DidDocument, ResolveError> {
        let jwk = Self::jwk_object(did)?;
        let key_use = jwk.get("use").and_then(Value::as_str).map(str::to_owned);
        let mut document = DidDocument::new(did.as_str());
        document.context = Some(Value::Array(vec![
            Value::String(DID_V1_CONTEXT.to_owned()),
            Value::String(JWS_2020_CONTEXT.to_owned()),
        ]));
        let id = format!("{did}#0");
        document
            .verification_method
            .push(VerificationMethod::json_web_key(
                id.clone(),
                did.as_str(),
                "JsonWebKey2020",
                jwk,
            ));
        let relationships: &[Relationship] = match key_use.as_deref() {
            Some("sig") => &[
                Relationship::AssertionMethod,
                Relationship::Authentication,
                Relationship::CapabilityInvocation,
                Relationship::CapabilityDelegation,
            ],
            Some("enc") => &[Relationship::KeyAgreement],
            _ => &[
                Relationship::AssertionMethod,
                Relationship::Authentication,
                Relationship::CapabilityInvocation,
                Relationship::CapabilityDelegation,
                Relationship::KeyAgreement,
            ],
        };
        for relationship in relationships {
            document
                .relationship_mut(*relationship)
                .push(MethodRef::Reference(id.clone()));
        }
        Ok(document)
    }
}

#[async_trait]
impl DidMethod for DidJwk {
    fn name(&self) -> &'static str {
        "jwk"
    }

    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        let document = self.document(did)?;
        if opts.version_id.is_some() || opts.version_number.is_some_and(|n| n != 1) {
            return Err(ResolveError::not_found(did.as_str()));
        }
        Ok(Resolution::found(document))
    }

    fn publisher(&self) -> Option<&dyn DidPublisher> {
        Some(self)
    }
}

#[async_trait]
impl DidPublisher for DidJwk {
    async fn create(
        &self,
        _tenant: &TenantContext,
        request: &PublishRequest,
    ) -> Result<Published, PublishError> {
        let jwk = request
            .public_keys
            .first()
            .ok_or_else(|| PublishError::InvalidRequest {
                reason: "did:jwk needs one public key".to_owned(),
            })?;
        let did = Self::create(jwk)?;
        let document = self
            .document(&did)
            .map_err(|err| PublishError::Internal(Box::new(err)))?;
        Ok(Published::new(did, Resolution::found(document)))
    }
}
