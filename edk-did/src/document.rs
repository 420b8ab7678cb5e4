//! DID documents (DID Core §5): verification methods, verification relationships, services.
//!
//! Members this crate does not model are kept in `extra` maps, so a document read from a
//! remote source serializes back with everything it had.

use edk_core::jose::Jwk;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::multikey::{self, Multikey};

/// The DID v1 JSON-LD context.
pub const DID_V1_CONTEXT: &str = "https://www.w3.org/ns/did/v1";
/// The DID v1.1 JSON-LD context.
pub const DID_V1_1_CONTEXT: &str = "https://www.w3.org/ns/did/v1.1";
/// The Multikey JSON-LD context.
pub const MULTIKEY_CONTEXT: &str = "https://w3id.org/security/multikey/v1";
/// The JsonWebKey2020 JSON-LD context.
pub const JWS_2020_CONTEXT: &str = "https://w3id.org/security/suites/jws-2020/v1";

/// A DID document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// `@context`: a string or a list.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The DID.
    pub id: String,
    /// `controller`: a DID or a list of DIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Value>,
    /// `alsoKnownAs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<String>,
    /// `verificationMethod`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// `authentication`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<MethodRef>,
    /// `assertionMethod`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<MethodRef>,
    /// `keyAgreement`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_agreement: Vec<MethodRef>,
    /// `capabilityInvocation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<MethodRef>,
    /// `capabilityDelegation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<MethodRef>,
    /// `service`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
    /// Members not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DidDocument {
    /// An empty document for `id`, with the DID v1.1 context.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            context: Some(Value::Array(vec![Value::String(
                DID_V1_1_CONTEXT.to_owned(),
            )])),
            id: id.into(),
            controller: None,
            also_known_as: Vec::new(),
            verification_method: Vec::new(),
            authentication: Vec::new(),
            assertion_method: Vec::new(),
            key_agreement: Vec::new(),
            capability_invocation: Vec::new(),
            capability_delegation: Vec::new(),
            service: Vec::new(),
            extra: Map::new(),
        }
    }

    /// The references of one verification relationship.
    #[must_use]
    pub fn relationship(&self, relationship: Relationship) -> &[MethodRef] {
        match relationship {
            Relationship::Authentication => &self.authentication,
            Relationship::AssertionMethod => &self.assertion_method,
            Relationship::KeyAgreement => &self.key_agreement,
            Relationship::CapabilityInvocation => &self.capability_invocation,
            Relationship::CapabilityDelegation => &self.capability_delegation,
        }
    }

    /// The references of one verification relationship, for changing them.
    pub fn relationship_mut(&mut self, relationship: Relationship) -> &mut Vec<MethodRef> {
        match relationship {
            Relationship::Authentication => &mut self.authentication,
            Relationship::AssertionMethod => &mut self.assertion_method,
            Relationship::KeyAgreement => &mut self.key_agreement,
            Relationship::CapabilityInvocation => &mut self.capability_invocation,
            Relationship::CapabilityDelegation => &mut self.capability_delegation,
        }
    }

    /// The verification method whose `id` is `id`, given absolute (`did:…#key-1`) or relative
    /// (`#key-1`), whether listed in `verificationMethod` or embedded in a relationship.
    #[must_use]
    pub fn verification_method(&self, id: &str) -> Option<&VerificationMethod> {
        let embedded = Relationship::ALL
            .iter()
            .flat_map(|r| self.relationship(*r))
            .filter_map(|entry| match entry {
                MethodRef::Embedded(method) => Some(method.as_ref()),
                MethodRef::Reference(_) => None,
            });
        self.verification_method
            .iter()
            .chain(embedded)
            .find(|method| self.same_id(&method.id, id))
    }

    /// Whether the verification method `id` is authorised for `relationship`.
    #[must_use]
    pub fn is_authorized(&self, id: &str, relationship: Relationship) -> bool {
        self.relationship(relationship)
            .iter()
            .any(|entry| match entry {
                MethodRef::Reference(reference) => self.same_id(reference, id),
                MethodRef::Embedded(method) => self.same_id(&method.id, id),
            })
    }

    /// The service whose `id` is `id` (absolute or relative).
    #[must_use]
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.service.iter().find(|s| self.same_id(&s.id, id))
    }

    /// Rewrites relative DID URLs (`#key-1`) in ids and references to absolute ones
    /// (DID Resolution `expandRelativeUrls`).
    pub fn expand_relative_urls(&mut self) {
        let did = self.id.clone();
        let absolute = |value: &mut String| {
            if value.starts_with('#') || value.starts_with('/') || value.starts_with('?') {
                *value = format!("{did}{value}");
            }
        };
        for method in &mut self.verification_method {
            absolute(&mut method.id);
        }
        for relationship in Relationship::ALL {
            for entry in self.relationship_mut(relationship) {
                match entry {
                    MethodRef::Reference(reference) => absolute(reference),
                    MethodRef::Embedded(method) => absolute(&mut method.id),
                }
            }
        }
        for service in &mut self.service {
            absolute(&mut service.id);
        }
    }

    /// Whether DID URL `a` and `b` name the same node of this document.
    fn same_id(&self, a: &str, b: &str) -> bool {
        self.absolute(a) == self.absolute(b)
    }

    fn absolute<'a>(&self, id: &'a str) -> std::borrow::Cow<'a, str> {
        if id.starts_with('#') {
            std::borrow::Cow::Owned(format!("{}{id}", self.id))
        } else {
            std::borrow::Cow::Borrowed(id)
        }
    }
}

/// A verification relationship (DID Core §5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Relationship {
    /// `assertionMethod`: issuing credentials. The default for key resolution.
    #[default]
    AssertionMethod,
    /// `authentication`.
    Authentication,
    /// `capabilityDelegation`.
    CapabilityDelegation,
    /// `capabilityInvocation`.
    CapabilityInvocation,
    /// `keyAgreement`.
    KeyAgreement,
}

impl Relationship {
    /// Every relationship, in DID Core order.
    pub const ALL: [Self; 5] = [
        Self::Authentication,
        Self::AssertionMethod,
        Self::KeyAgreement,
        Self::CapabilityInvocation,
        Self::CapabilityDelegation,
    ];

    /// The property name, e.g. `assertionMethod`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AssertionMethod => "assertionMethod",
            Self::Authentication => "authentication",
            Self::CapabilityDelegation => "capabilityDelegation",
            Self::CapabilityInvocation => "capabilityInvocation",
            Self::KeyAgreement => "keyAgreement",
        }
    }
}

/// An entry of a verification relationship: a reference to a method, or the method itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MethodRef {
    /// A DID URL (absolute or relative) naming a verification method.
    Reference(String),
    /// A verification method embedded in the relationship.
    Embedded(Box<VerificationMethod>),
}

/// A verification method (DID Core §5.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// Its DID URL.
    pub id: String,
    /// Its type, e.g. `Multikey` or `JsonWebKey2020`.
    #[serde(rename = "type")]
    pub method_type: String,
    /// The DID of its controller.
    pub controller: String,
    /// `publicKeyJwk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_jwk: Option<Map<String, Value>>,
    /// `publicKeyMultibase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
    /// Members not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl VerificationMethod {
    /// A `Multikey` method for `key`.
    #[must_use]
    pub fn multikey(id: impl Into<String>, controller: impl Into<String>, key: &Multikey) -> Self {
        Self {
            id: id.into(),
            method_type: "Multikey".to_owned(),
            controller: controller.into(),
            public_key_jwk: None,
            public_key_multibase: Some(key.to_multibase()),
            extra: Map::new(),
        }
    }

    /// A `JsonWebKey` method (the v1.1 name; did:jwk uses `JsonWebKey2020`) carrying `jwk`.
    #[must_use]
    pub fn json_web_key(
        id: impl Into<String>,
        controller: impl Into<String>,
        method_type: &str,
        jwk: Map<String, Value>,
    ) -> Self {
        Self {
            id: id.into(),
            method_type: method_type.to_owned(),
            controller: controller.into(),
            public_key_jwk: Some(jwk),
            public_key_multibase: None,
            extra: Map::new(),
        }
    }

    /// The method's public key as a JWK, from `publicKeyJwk` or a Multikey
    /// `publicKeyMultibase`.
    ///
    /// # Errors
    /// [`KeyError`] when the method has no usable public key, or it carries private members.
    pub fn jwk(&self) -> Result<Jwk, KeyError> {
        if let Some(jwk) = &self.public_key_jwk {
            if multikey::has_private_members(jwk) {
                return Err(KeyError::PrivateKey);
            }
            let jwk: Jwk = serde_json::from_value(Value::Object(jwk.clone()))
                .map_err(|err| KeyError::Invalid(err.to_string()))?;
            return Ok(jwk);
        }
        if let Some(multibase) = &self.public_key_multibase {
            let key = Multikey::from_multibase(multibase).map_err(KeyError::Invalid)?;
            return key.to_jwk().map_err(KeyError::Invalid);
        }
        Err(KeyError::Missing)
    }
}

/// Why a verification method's key could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The method has neither `publicKeyJwk` nor `publicKeyMultibase`.
    #[error("the verification method has no public key")]
    Missing,
    /// The key is malformed or of an unsupported type.
    #[error("invalid public key: {0}")]
    Invalid(String),
    /// The JWK carries private key material.
    #[error("the JWK carries private key material")]
    PrivateKey,
}

/// A service (DID Core §5.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Its DID URL.
    pub id: String,
    /// Its type: a string or a list.
    #[serde(rename = "type")]
    pub service_type: Value,
    /// Its endpoint: a URL, a map or a list.
    pub service_endpoint: Value,
    /// Members not modelled above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
