//! `did:key` v0.9 (W3C CCG): a DID that is its public key; resolution is a deterministic
//! expansion, there is no update or deactivation.

use async_trait::async_trait;
use edk_core::Did;
use edk_core::jose::Jwk;
use edk_tenancy::TenantContext;
use serde_json::{Map, Value};

use crate::document::{DidDocument, MethodRef, Relationship, VerificationMethod};
use crate::error::{PublishError, ResolveError};
use crate::method::{DidMethod, DidPublisher, PublishRequest, Published};
use crate::multikey::Multikey;
use crate::resolution::{Resolution, ResolveOptions};

/// How did:key documents express their keys (did:key §"Document creation", `publicKeyFormat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyFormat {
    /// `Multikey` with `publicKeyMultibase` (the default).
    #[default]
    Multikey,
    /// `JsonWebKey` with `publicKeyJwk`.
    JsonWebKey,
}

/// The did:key method.
///
/// ```
/// use edk_did::methods::key::DidKey;
/// let did = edk_core::Did::new("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")?;
/// let document = DidKey::new().document(&did)?;
/// assert_eq!(document.assertion_method.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DidKey {
    format: PublicKeyFormat,
    encryption_key_derivation: bool,
}

impl Default for DidKey {
    fn default() -> Self {
        Self::new()
    }
}

impl DidKey {
    /// did:key with Multikey methods and X25519 derivation for Ed25519 keys on.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            format: PublicKeyFormat::Multikey,
            encryption_key_derivation: true,
        }
    }

    /// Sets the verification method format.
    #[must_use]
    pub const fn with_public_key_format(mut self, format: PublicKeyFormat) -> Self {
        self.format = format;
        self
    }

    /// Switches `enableEncryptionKeyDerivation` (Ed25519 → X25519 `keyAgreement`).
    #[must_use]
    pub const fn with_encryption_key_derivation(mut self, enabled: bool) -> Self {
        self.encryption_key_derivation = enabled;
        self
    }

    /// The did:key of a public key.
    #[must_use]
    pub fn did_for(key: &Multikey) -> Did {
        did_from_multibase(&key.to_multibase())
    }

    /// The did:key of a public JWK (Ed25519, X25519, P-256, P-384, secp256k1).
    ///
    /// # Errors
    /// [`PublishError::InvalidRequest`] for other key types, invalid points or private keys.
    pub fn create(jwk: &Jwk) -> Result<Did, PublishError> {
        if jwk.is_private() {
            return Err(PublishError::InvalidRequest {
                reason: "the JWK carries private key material".to_owned(),
            });
        }
        let key =
            Multikey::from_jwk(jwk).map_err(|reason| PublishError::InvalidRequest { reason })?;
        Ok(Self::did_for(&key))
    }

    /// The public key a did:key names.
    ///
    /// # Errors
    /// [`ResolveError::InvalidDid`] saying what is wrong with the identifier.
    pub fn key(did: &Did) -> Result<Multikey, ResolveError> {
        if did.method() != "key" {
            return Err(ResolveError::invalid_did(did.as_str(), "not a did:key"));
        }
        let msid = did.method_specific_id();
        // did:key §"Document creation" steps 1–2: an optional version, then the multibase value.
        let multibase = match msid.split_once(':') {
            None => msid,
            Some((version, rest)) => {
                if version != "1" || rest.contains(':') {
                    return Err(ResolveError::invalid_did(
                        did.as_str(),
                        "the did:key version must be 1",
                    ));
                }
                rest
            }
        };
        Multikey::from_multibase(multibase)
            .map_err(|reason| ResolveError::invalid_did(did.as_str(), reason))
    }

    /// The DID document of `did` (did:key §"Document creation").
    ///
    /// # Errors
    /// [`ResolveError::InvalidDid`] when the identifier is not a valid did:key.
    pub fn document(&self, did: &Did) -> Result<DidDocument, ResolveError> {
        let key = Self::key(did)?;
        let multibase = key.to_multibase();
        let mut document = DidDocument::new(did.as_str());
        let vm = self.method(did, &multibase, &key)?;
        let id = vm.id.clone();
        document.verification_method.push(vm);
        if matches!(key, Multikey::X25519(_)) {
            // Our choice (the v0.9 text is silent): an X25519 key can only agree keys.
            document.key_agreement.push(MethodRef::Reference(id));
            return Ok(document);
        }
        for relationship in [
            Relationship::Authentication,
            Relationship::AssertionMethod,
            Relationship::CapabilityInvocation,
            Relationship::CapabilityDelegation,
        ] {
            document
                .relationship_mut(relationship)
                .push(MethodRef::Reference(id.clone()));
        }
        if self.encryption_key_derivation
            && let Some(x25519) = key.derive_x25519()
        {
            let vm = self.method(did, &x25519.to_multibase(), &x25519)?;
            document
                .key_agreement
                .push(MethodRef::Reference(vm.id.clone()));
            document.verification_method.push(vm);
        }
        Ok(document)
    }

    fn method(
        &self,
        did: &Did,
        fragment: &str,
        key: &Multikey,
    ) -> Result<VerificationMethod, ResolveError> {
        let id = format!("{did}#{fragment}");
        Ok(match self.format {
            PublicKeyFormat::Multikey => VerificationMethod::multikey(id, did.as_str(), key),
            PublicKeyFormat::JsonWebKey => {
                let jwk = key
                    .to_jwk()
                    .map_err(|reason| ResolveError::invalid_did(did.as_str(), reason))?;
                let jwk = match serde_json::to_value(&jwk) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                VerificationMethod::json_web_key(id, did.as_str(), "JsonWebKey", jwk)
            }
        })
    }
}

#[async_trait]
impl DidMethod for DidKey {
    fn name(&self) -> &'static str {
        "key"
    }

    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        let document = self.document(did)?;
        // A did:key has one version; `versionTime` is ignored, other versions do not exist.
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
impl DidPublisher for DidKey {
    async fn create(
        &self,
        _tenant: &TenantContext,
        request: &PublishRequest,
    ) -> Result<Published, PublishError> {
        let jwk = request
            .public_keys
            .first()
            .ok_or_else(|| PublishError::InvalidRequest {
                reason: "did:key needs one public key".to_owned(),
            })?;
        let did = Self::create(jwk)?;
        let document = self
            .document(&did)
            .map_err(|err| PublishError::Internal(Box::new(err)))?;
        Ok(Published::new(did, Resolution::found(document)))
    }
}

#[expect(
    clippy::expect_used,
    reason = "base58btc characters are all DID idchar and a Multikey is short, so the DID is valid"
)]
fn did_from_multibase(multibase: &str) -> Did {
    Did::new(format!("did:key:{multibase}")).expect("a did:key is a valid DID")
}
