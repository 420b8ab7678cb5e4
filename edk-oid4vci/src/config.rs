//! Credential configurations: what an issuer offers (OpenID4VCI 1.0 §12.2.4) and how it signs
//! each credential.
//!
//! A [`CredentialConfiguration`] is the entry of `credential_configurations_supported` that
//! wallets read, checked against the format's rules when it is built. [`IssuanceSettings`] is
//! the issuer's own side of it: which key signs, how the key is named in the credential, how
//! long the credential lives and which claims are selectively disclosable. Wallets never see
//! the settings.

use std::collections::{BTreeMap, BTreeSet};

use edk_core::jose::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;

/// The format identifier of SD-JWT VCs (OpenID4VCI 1.0 Appendix A.3).
pub const FORMAT_DC_SD_JWT: &str = "dc+sd-jwt";
/// The format identifier earlier drafts used for SD-JWT VCs.
pub const FORMAT_VC_SD_JWT: &str = "vc+sd-jwt";
/// The format identifier of W3C VCs secured as JWTs, not using JSON-LD (Appendix A.1.1).
pub const FORMAT_JWT_VC_JSON: &str = "jwt_vc_json";
/// The format identifier of ISO mdocs (Appendix A.2).
pub const FORMAT_MSO_MDOC: &str = "mso_mdoc";

/// The proof type of JWT key proofs (Appendix F.1).
pub const PROOF_TYPE_JWT: &str = "jwt";
/// The proof type of key attestations used as proofs (Appendix F.3).
pub const PROOF_TYPE_ATTESTATION: &str = "attestation";

/// The most claims descriptions one configuration may carry.
const MAX_CLAIMS: usize = 256;
/// The most segments in one claim path.
const MAX_PATH_SEGMENTS: usize = 16;

/// What a credential is, per format (the `format` member and its format-specific members).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format")]
#[non_exhaustive]
pub enum FormatProfile {
    /// `dc+sd-jwt`: an SD-JWT VC of type `vct`.
    #[serde(rename = "dc+sd-jwt")]
    DcSdJwt {
        /// The credential type (`vct`).
        vct: String,
    },
    /// `vc+sd-jwt`: the same credential under the identifier of earlier drafts, for wallets
    /// that still request it.
    #[serde(rename = "vc+sd-jwt")]
    VcSdJwt {
        /// The credential type (`vct`).
        vct: String,
    },
    /// `jwt_vc_json`: a W3C Verifiable Credential as a JWT.
    #[serde(rename = "jwt_vc_json")]
    JwtVcJson {
        /// The credential's types.
        credential_definition: CredentialDefinition,
    },
    /// `mso_mdoc`: an ISO/IEC 18013-5 mdoc of document type `doctype` (Appendix A.2), its
    /// claims by name space, signed by a document signer certificate.
    #[serde(rename = "mso_mdoc")]
    MsoMdoc {
        /// The document type, e.g. `org.iso.18013.5.1.mDL`.
        doctype: String,
    },
}

impl FormatProfile {
    /// The format identifier, e.g. `dc+sd-jwt`.
    #[must_use]
    pub const fn format(&self) -> &'static str {
        match self {
            Self::DcSdJwt { .. } => FORMAT_DC_SD_JWT,
            Self::VcSdJwt { .. } => FORMAT_VC_SD_JWT,
            Self::JwtVcJson { .. } => FORMAT_JWT_VC_JSON,
            Self::MsoMdoc { .. } => FORMAT_MSO_MDOC,
        }
    }

    /// The SD-JWT VC type, for the SD-JWT formats.
    #[must_use]
    pub fn vct(&self) -> Option<&str> {
        match self {
            Self::DcSdJwt { vct } | Self::VcSdJwt { vct } => Some(vct),
            Self::JwtVcJson { .. } | Self::MsoMdoc { .. } => None,
        }
    }

    /// The mdoc document type, for `mso_mdoc`.
    #[must_use]
    pub fn doctype(&self) -> Option<&str> {
        match self {
            Self::MsoMdoc { doctype } => Some(doctype),
            _ => None,
        }
    }
}

/// An entry of `credential_signing_alg_values_supported`: a JWS algorithm name for the JOSE
/// formats, a COSE algorithm identifier (an integer, e.g. `-7` for ES256) for `mso_mdoc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SigningAlgorithm {
    /// A JWS algorithm name (`ES256`).
    Jose(String),
    /// A COSE algorithm identifier (`-7`).
    Cose(i64),
}

impl SigningAlgorithm {
    /// The algorithm EDK signs with for this identifier, if it is one EDK knows.
    #[must_use]
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self {
            Self::Jose(name) => Algorithm::from_name(name),
            Self::Cose(-7 | -9) => Some(Algorithm::Es256),
            Self::Cose(-35 | -51) => Some(Algorithm::Es384),
            Self::Cose(-8) => Some(Algorithm::EdDsa),
            Self::Cose(-19) => Some(Algorithm::Ed25519),
            Self::Cose(_) => None,
        }
    }
}

impl From<&str> for SigningAlgorithm {
    fn from(name: &str) -> Self {
        Self::Jose(name.to_owned())
    }
}

/// The `credential_definition` of a `jwt_vc_json` configuration (Appendix A.1.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDefinition {
    /// The credential's `type` values; the first is `VerifiableCredential`.
    #[serde(rename = "type")]
    pub types: Vec<String>,
}

/// One entry of `proof_types_supported` (§12.2.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofTypeMetadata {
    /// The JWS algorithms a proof of this type may be signed with.
    pub proof_signing_alg_values_supported: Vec<String>,
    /// When present, proofs of this type must carry a key attestation meeting these
    /// requirements (Appendix D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_attestations_required: Option<KeyAttestationRequirements>,
}

/// The `key_attestations_required` member: what a key attestation must state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttestationRequirements {
    /// Accepted `key_storage` attack-potential levels (any one suffices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_storage: Vec<String>,
    /// Accepted `user_authentication` attack-potential levels (any one suffices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_authentication: Vec<String>,
}

/// A display entry of a credential (§12.2.4 `credential_metadata.display`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialDisplay {
    /// The credential's name.
    pub name: String,
    /// The language of this entry (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Logo>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Background colour (CSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// Background image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_image: Option<Image>,
    /// Text colour (CSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<String>,
}

/// A logo: its URI and alternative text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logo {
    /// Where the image is (`https:` or `data:`).
    pub uri: String,
    /// Alternative text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

/// An image by URI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Where the image is.
    pub uri: String,
}

/// A claims description (Appendix B.2): where a claim is and how to show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimDescription {
    /// The claim path: strings select object members, non-negative integers array
    /// elements, `null` every element of an array.
    pub path: Vec<PathSegment>,
    /// Whether the issuer always includes the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
    /// How to label the claim, per language.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display: Vec<ClaimDisplay>,
}

/// A label of a claim in one language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimDisplay {
    /// The label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// One segment of a claim path (Appendix C of OpenID4VP, used by Appendix B.2).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSegment {
    /// An object member.
    Name(String),
    /// An array element.
    Index(u64),
    /// Every element of an array (`null`).
    All,
}

impl Serialize for PathSegment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Name(name) => serializer.serialize_str(name),
            Self::Index(index) => serializer.serialize_u64(*index),
            Self::All => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for PathSegment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(name) => Ok(Self::Name(name)),
            Value::Null => Ok(Self::All),
            Value::Number(n) => n.as_u64().map(Self::Index).ok_or_else(|| {
                serde::de::Error::custom("a path index must be a non-negative integer")
            }),
            _ => Err(serde::de::Error::custom(
                "a path segment is a string, a non-negative integer or null",
            )),
        }
    }
}

impl PathSegment {
    fn is_array_selector(&self) -> bool {
        matches!(self, Self::Index(_) | Self::All)
    }
}

/// `credential_metadata`: how wallets display the credential and its claims.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialMetadata {
    /// Display entries, one per language.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display: Vec<CredentialDisplay>,
    /// Claims descriptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimDescription>,
}

/// An entry of `credential_configurations_supported` (§12.2.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialConfiguration {
    /// The format and its members.
    #[serde(flatten)]
    pub profile: FormatProfile,
    /// The OAuth scope that requests this credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How the credential is bound to the holder's key (`jwk`, `did:<method>`); empty for
    /// credentials without key binding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cryptographic_binding_methods_supported: Vec<String>,
    /// The algorithms the issuer signs this credential with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_signing_alg_values_supported: Vec<SigningAlgorithm>,
    /// The key proofs a wallet may send, by proof type; present exactly when there is key
    /// binding.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proof_types_supported: BTreeMap<String, ProofTypeMetadata>,
    /// Display information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_metadata: Option<CredentialMetadata>,
}

impl CredentialConfiguration {
    /// Parses and checks a configuration from its JSON form.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field that breaks a rule.
    pub fn from_json(value: Value) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_value(value)
            .map_err(|err| ConfigError::invalid("configuration", err.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Whether the holder's key is bound into the credential.
    #[must_use]
    pub fn requires_key_binding(&self) -> bool {
        !self.cryptographic_binding_methods_supported.is_empty()
    }

    /// The algorithms a JWT key proof may use, if JWT proofs are accepted.
    #[must_use]
    pub fn jwt_proof_algorithms(&self) -> Option<Vec<Algorithm>> {
        self.proof_types_supported.get(PROOF_TYPE_JWT).map(|proof| {
            proof
                .proof_signing_alg_values_supported
                .iter()
                .filter_map(|name| Algorithm::from_name(name))
                .collect()
        })
    }

    /// Checks the rules of §12.2.4 and Appendix B.3 that serde cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field that breaks a rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.profile {
            FormatProfile::DcSdJwt { vct } | FormatProfile::VcSdJwt { vct } => {
                if vct.trim().is_empty() {
                    return Err(ConfigError::invalid("vct", "must not be empty"));
                }
            }
            FormatProfile::JwtVcJson {
                credential_definition,
            } => {
                if credential_definition.types.first().map(String::as_str)
                    != Some("VerifiableCredential")
                {
                    return Err(ConfigError::invalid(
                        "credential_definition.type",
                        "must start with VerifiableCredential",
                    ));
                }
            }
            FormatProfile::MsoMdoc { doctype } => self.validate_mdoc(doctype)?,
        }
        if let Some(scope) = &self.scope
            && (scope.is_empty() || scope.contains(' ') || !scope.is_ascii())
        {
            return Err(ConfigError::invalid(
                "scope",
                "must be one non-empty scope token without spaces",
            ));
        }
        for (i, method) in self
            .cryptographic_binding_methods_supported
            .iter()
            .enumerate()
        {
            let known = method == "jwk"
                || method == "cose_key"
                || method
                    .strip_prefix("did:")
                    .is_some_and(|name| !name.is_empty());
            if !known {
                return Err(ConfigError::invalid(
                    format!("cryptographic_binding_methods_supported[{i}]"),
                    format!("`{method}` is not jwk, cose_key or did:<method>"),
                ));
            }
        }
        let mdoc = matches!(self.profile, FormatProfile::MsoMdoc { .. });
        for (i, alg) in self
            .credential_signing_alg_values_supported
            .iter()
            .enumerate()
        {
            let field = || format!("credential_signing_alg_values_supported[{i}]");
            match alg {
                SigningAlgorithm::Cose(id) if !mdoc => {
                    return Err(ConfigError::invalid(
                        field(),
                        format!("`{id}` is a COSE identifier; this format takes JWS names"),
                    ));
                }
                SigningAlgorithm::Cose(id) if alg.algorithm().is_none() => {
                    return Err(ConfigError::invalid(
                        field(),
                        format!("`{id}` is not a COSE algorithm EDK signs mdocs with"),
                    ));
                }
                SigningAlgorithm::Jose(name) if alg.algorithm().is_none() => {
                    return Err(ConfigError::invalid(
                        field(),
                        format!("`{name}` is not an asymmetric JWS algorithm EDK signs with"),
                    ));
                }
                _ => {}
            }
        }
        if self.requires_key_binding() == self.proof_types_supported.is_empty() {
            return Err(ConfigError::invalid(
                "proof_types_supported",
                "must be present exactly when cryptographic_binding_methods_supported is",
            ));
        }
        for (name, proof) in &self.proof_types_supported {
            if name != PROOF_TYPE_JWT && name != PROOF_TYPE_ATTESTATION {
                return Err(ConfigError::invalid(
                    format!("proof_types_supported.{name}"),
                    "only the jwt and attestation proof types are supported",
                ));
            }
            if proof.proof_signing_alg_values_supported.is_empty() {
                return Err(ConfigError::invalid(
                    format!("proof_types_supported.{name}.proof_signing_alg_values_supported"),
                    "must list at least one algorithm",
                ));
            }
            for alg in &proof.proof_signing_alg_values_supported {
                if Algorithm::from_name(alg).is_none() {
                    return Err(ConfigError::invalid(
                        format!("proof_types_supported.{name}.proof_signing_alg_values_supported"),
                        format!("`{alg}` is not an asymmetric JWS algorithm"),
                    ));
                }
            }
            if name == PROOF_TYPE_ATTESTATION && proof.key_attestations_required.is_none() {
                return Err(ConfigError::invalid(
                    format!("proof_types_supported.{name}.key_attestations_required"),
                    "the attestation proof type needs key attestation requirements",
                ));
            }
        }
        if let Some(metadata) = &self.credential_metadata {
            for (i, display) in metadata.display.iter().enumerate() {
                if display.name.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        format!("credential_metadata.display[{i}].name"),
                        "must not be empty",
                    ));
                }
            }
            validate_claims(&metadata.claims)?;
        }
        Ok(())
    }
}

impl CredentialConfiguration {
    /// The rules of an `mso_mdoc` configuration (Appendix A.2): a document type, key binding
    /// by `cose_key` (an mdoc always carries its holder's device key), and claims paths that
    /// start with a name space and a data element identifier.
    fn validate_mdoc(&self, doctype: &str) -> Result<(), ConfigError> {
        if doctype.trim().is_empty() {
            return Err(ConfigError::invalid("doctype", "must not be empty"));
        }
        if self.cryptographic_binding_methods_supported != ["cose_key"] {
            return Err(ConfigError::invalid(
                "cryptographic_binding_methods_supported",
                "an mso_mdoc configuration binds the device key: [\"cose_key\"]",
            ));
        }
        for (i, alg) in self
            .credential_signing_alg_values_supported
            .iter()
            .enumerate()
        {
            if !matches!(
                alg.algorithm(),
                Some(Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa | Algorithm::Ed25519)
            ) {
                return Err(ConfigError::invalid(
                    format!("credential_signing_alg_values_supported[{i}]"),
                    "mdocs are signed with ES256 (-7, -9), ES384 (-35, -51) or EdDSA (-8, -19)",
                ));
            }
        }
        let claims = self
            .credential_metadata
            .as_ref()
            .map_or(&[][..], |metadata| metadata.claims.as_slice());
        for (i, claim) in claims.iter().enumerate() {
            if !matches!(
                claim.path.as_slice(),
                [PathSegment::Name(_), PathSegment::Name(_), ..]
            ) {
                return Err(ConfigError::invalid(
                    format!("credential_metadata.claims[{i}].path"),
                    "an mdoc claim path starts with a name space and a data element identifier",
                ));
            }
        }
        Ok(())
    }
}

/// Checks claims descriptions (Appendix B.3): well-formed paths, no path twice, and no path
/// that treats a claim as an array where another treats it as an object.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the offending entry.
pub fn validate_claims(claims: &[ClaimDescription]) -> Result<(), ConfigError> {
    if claims.len() > MAX_CLAIMS {
        return Err(ConfigError::invalid(
            "credential_metadata.claims",
            format!("at most {MAX_CLAIMS} claims descriptions"),
        ));
    }
    let mut seen = BTreeSet::new();
    // For each path prefix: whether the next segment selects array elements (true) or an
    // object member (false).
    let mut shape: BTreeMap<Vec<PathSegment>, bool> = BTreeMap::new();
    for (i, claim) in claims.iter().enumerate() {
        let field = || format!("credential_metadata.claims[{i}].path");
        if claim.path.is_empty() || claim.path.len() > MAX_PATH_SEGMENTS {
            return Err(ConfigError::invalid(
                field(),
                format!("must have between 1 and {MAX_PATH_SEGMENTS} segments"),
            ));
        }
        if claim.path[0].is_array_selector() {
            return Err(ConfigError::invalid(
                field(),
                "must start with a claim name",
            ));
        }
        if !seen.insert(claim.path.clone()) {
            return Err(ConfigError::invalid(
                field(),
                "describes the same claim twice",
            ));
        }
        for depth in 0..claim.path.len() {
            let prefix = claim.path[..depth].to_vec();
            let array = claim.path[depth].is_array_selector();
            if *shape.entry(prefix).or_insert(array) != array {
                return Err(ConfigError::invalid(
                    field(),
                    "treats a claim as an array where another entry treats it as an object",
                ));
            }
        }
    }
    // `null` and an index into the same array contradict each other (B.3).
    for claim in claims {
        for (depth, segment) in claim.path.iter().enumerate() {
            if let PathSegment::Index(_) = segment {
                let mut wildcard = claim.path[..depth].to_vec();
                wildcard.push(PathSegment::All);
                if claims.iter().any(|other| other.path.starts_with(&wildcard)) {
                    return Err(ConfigError::invalid(
                        "credential_metadata.claims",
                        "an array is selected both by index and by null",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// How the signing key is named in an issued credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum KeyIdentification {
    /// A `kid` header that is a DID URL of the issuer's DID (`did:web:…#key-1`); `iss` is
    /// the DID.
    Did {
        /// The DID URL of the verification method.
        kid: String,
    },
    /// An `x5c` header with the certificate chain of the signing key; `iss` is the credential
    /// issuer identifier.
    X5c,
    /// A `kid` header naming a key of the issuer's JWT VC Issuer Metadata (`jwks`); `iss` is
    /// the credential issuer identifier.
    #[default]
    IssuerMetadata,
}

/// The issuer's own side of a configuration: never shown to wallets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssuanceSettings {
    /// The KMS alias purpose that signs the credentials, under the `issuer` service
    /// (default `credential-signing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// How the signing key is named.
    pub key_identification: KeyIdentification,
    /// The credential's lifetime in seconds (`exp`); none means no `exp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
    /// The claims (dotted paths: `address.street_address`, `nationalities.0`) that are
    /// selectively disclosable in SD-JWT VCs. None: every top-level claim is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selectively_disclosable: Option<Vec<String>>,
    /// Issue deferred (§9): the credential endpoint answers with a `transaction_id`, and
    /// the credentials are issued when the operator completes the session.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
    /// Give each credential a `status` claim in one of the tenant's status lists, so that it
    /// can be revoked (and suspended, with the `suspension` purpose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status::StatusSettings>,
    /// The SD-JWT VC Type Metadata document of the configuration's `vct`: the issuer serves
    /// it when the `vct` is `<credential issuer>/types/<name>`, and every credential carries
    /// its `vct#integrity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_metadata: Option<Value>,
}

impl IssuanceSettings {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(purpose) = &self.signing_key {
            let ok = !purpose.is_empty()
                && purpose.len() <= 64
                && purpose
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(ConfigError::invalid(
                    "signing_key",
                    "must be 1 to 64 lowercase letters, digits or hyphens",
                ));
            }
        }
        if let KeyIdentification::Did { kid } = &self.key_identification
            && edk_core::DidUrl::parse(kid)
                .ok()
                .and_then(|url| url.fragment().map(str::len))
                .is_none_or(|len| len == 0)
        {
            return Err(ConfigError::invalid(
                "key_identification.kid",
                "must be a DID URL with a fragment naming the verification method",
            ));
        }
        if let Some(status) = &self.status {
            status.validate()?;
        }
        if let Some(document) = &self.type_metadata {
            edk_core::sd_jwt_vc::type_metadata::TypeMetadata::from_json(document.clone())
                .map_err(|err| ConfigError::invalid("type_metadata", err.to_string()))?;
        }
        if self.lifetime_secs == Some(0) {
            return Err(ConfigError::invalid("lifetime_secs", "must be positive"));
        }
        if let Some(paths) = &self.selectively_disclosable {
            for (i, path) in paths.iter().enumerate() {
                if path.parse::<edk_core::sd_jwt::ClaimPath>().is_err() {
                    return Err(ConfigError::invalid(
                        format!("selectively_disclosable[{i}]"),
                        "is not a claim path",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl crate::store::StoredConfiguration {
    /// Checks the configuration, its settings, and how they fit together: Type Metadata
    /// only for SD-JWT VCs, describing the configuration's `vct`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.configuration.validate()?;
        self.settings.validate()?;
        if let Some(document) = &self.settings.type_metadata {
            let vct = self.configuration.profile.vct().ok_or_else(|| {
                ConfigError::invalid("type_metadata", "only SD-JWT VC configurations have one")
            })?;
            if document.get("vct").and_then(Value::as_str) != Some(vct) {
                return Err(ConfigError::invalid(
                    "type_metadata.vct",
                    "must be the configuration's vct",
                ));
            }
        }
        Ok(())
    }
}
