//! Credential requests (OpenID4VCI 1.0 §8.2), parsed with the checks that need no state:
//! which credential is asked for, the key proofs and the response encryption parameters.

use edk_core::jose::Jwk;
use serde_json::{Map, Value};

use crate::config::{PROOF_TYPE_ATTESTATION, PROOF_TYPE_JWT};
use crate::error::{CredentialErrorCode, ProtocolError};

/// The largest number of proofs parsed from one request, whatever the batch size.
const MAX_PROOFS: usize = 100;

/// How strictly requests are read.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The most proofs one request may carry (`batch_size`, or 1 without batch issuance).
    pub batch_size: usize,
    /// Accept the singular `proof` object of earlier drafts, and `format` with its type
    /// members in place of a configuration id.
    pub accept_legacy: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            batch_size: 1,
            accept_legacy: true,
        }
    }
}

impl RequestOptions {
    /// The options with a batch size (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The options refusing what earlier drafts sent.
    #[must_use]
    pub const fn strict(mut self) -> Self {
        self.accept_legacy = false;
        self
    }
}

/// Which credential a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestedCredential {
    /// A dataset named in the token response's `credential_identifiers`.
    Identifier(String),
    /// A configuration, when the access token was granted by scope alone.
    Configuration(String),
    /// A format with its type members, as earlier drafts asked (`format` plus `vct`,
    /// `doctype` or `credential_definition`); the issuer maps it to a configuration.
    Legacy {
        /// The `format`.
        format: String,
        /// The `vct`, for SD-JWT VCs.
        vct: Option<String>,
        /// The `credential_definition.type`, for W3C VCs.
        types: Option<Vec<String>>,
        /// The `doctype`, for mdocs.
        doctype: Option<String>,
    },
}

/// The key proofs of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proofs {
    /// JWT proofs, one per key.
    Jwt(Vec<String>),
    /// One key attestation whose `attested_keys` are the keys.
    Attestation(String),
}

impl Proofs {
    /// The number of proofs.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Jwt(jwts) => jwts.len(),
            Self::Attestation(_) => 1,
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The proof type, e.g. `jwt`.
    #[must_use]
    pub const fn proof_type(&self) -> &'static str {
        match self {
            Self::Jwt(_) => PROOF_TYPE_JWT,
            Self::Attestation(_) => PROOF_TYPE_ATTESTATION,
        }
    }
}

/// `credential_response_encryption`: the wallet's key and algorithms for the response.
#[derive(Clone, Debug)]
pub struct ResponseEncryptionRequest {
    /// The wallet's public key, with its `alg`.
    pub jwk: Jwk,
    /// The content encryption algorithm.
    pub enc: String,
    /// The compression algorithm, if any.
    pub zip: Option<String>,
}

/// A parsed credential request.
#[derive(Clone, Debug)]
pub struct CredentialRequest {
    /// What is asked for.
    pub credential: RequestedCredential,
    /// The key proofs, if any were sent.
    pub proofs: Option<Proofs>,
    /// How to encrypt the response, if the wallet asked.
    pub response_encryption: Option<ResponseEncryptionRequest>,
}

fn invalid(description: impl AsRef<str>) -> ProtocolError {
    ProtocolError::new(CredentialErrorCode::InvalidCredentialRequest, description)
}

fn invalid_proof(description: impl AsRef<str>) -> ProtocolError {
    ProtocolError::new(CredentialErrorCode::InvalidProof, description)
}

fn string_member(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ProtocolError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if !value.is_empty() && value.len() <= 256 => {
            Ok(Some(value.clone()))
        }
        Some(_) => Err(invalid(format!(
            "{name} must be a non-empty string of at most 256 characters"
        ))),
    }
}

impl CredentialRequest {
    /// Parses a request body (already decrypted if it came as a JWE).
    ///
    /// # Errors
    /// `invalid_credential_request` when the body is not an object, names no credential or
    /// two ways, or has malformed members; `invalid_proof` when `proofs` is malformed,
    /// empty, carries several proof types or more proofs than the batch size;
    /// `invalid_encryption_parameters` when `credential_response_encryption` is malformed.
    pub fn parse(body: &Value, options: &RequestOptions) -> Result<Self, ProtocolError> {
        let Value::Object(body) = body else {
            return Err(invalid("the request body must be a JSON object"));
        };
        let credential = Self::parse_credential(body, options)?;
        let proofs = Self::parse_proofs(body, options)?;
        let response_encryption = match body.get("credential_response_encryption") {
            None => None,
            Some(value) => Some(parse_response_encryption(value)?),
        };
        Ok(Self {
            credential,
            proofs,
            response_encryption,
        })
    }

    fn parse_credential(
        body: &Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<RequestedCredential, ProtocolError> {
        let identifier = string_member(body, "credential_identifier")?;
        let configuration = string_member(body, "credential_configuration_id")?;
        match (identifier, configuration) {
            (Some(_), Some(_)) => Err(invalid(
                "credential_identifier and credential_configuration_id are mutually exclusive",
            )),
            (Some(id), None) => Ok(RequestedCredential::Identifier(id)),
            (None, Some(id)) => Ok(RequestedCredential::Configuration(id)),
            (None, None) => {
                let format = string_member(body, "format")?;
                match format {
                    Some(format) if options.accept_legacy => {
                        let vct = string_member(body, "vct")?;
                        let doctype = string_member(body, "doctype")?;
                        let types = match body.get("credential_definition") {
                            None => None,
                            Some(definition) => Some(
                                definition
                                    .get("type")
                                    .and_then(Value::as_array)
                                    .and_then(|types| {
                                        types
                                            .iter()
                                            .map(|t| t.as_str().map(str::to_owned))
                                            .collect::<Option<Vec<_>>>()
                                    })
                                    .ok_or_else(|| {
                                        invalid(
                                            "credential_definition.type must be an array of strings",
                                        )
                                    })?,
                            ),
                        };
                        Ok(RequestedCredential::Legacy {
                            format,
                            vct,
                            types,
                            doctype,
                        })
                    }
                    _ => Err(invalid(
                        "one of credential_identifier and credential_configuration_id is required",
                    )),
                }
            }
        }
    }

    fn parse_proofs(
        body: &Map<String, Value>,
        options: &RequestOptions,
    ) -> Result<Option<Proofs>, ProtocolError> {
        let proofs = body.get("proofs");
        let legacy = body.get("proof");
        match (proofs, legacy) {
            (Some(_), Some(_)) => Err(invalid_proof("proof and proofs are mutually exclusive")),
            (None, None) => Ok(None),
            (None, Some(_)) if !options.accept_legacy => Err(invalid_proof(
                "the singular proof parameter is not accepted; send proofs",
            )),
            (None, Some(proof)) => parse_legacy_proof(proof).map(Some),
            (Some(proofs), None) => {
                let Value::Object(proofs) = proofs else {
                    return Err(invalid_proof("proofs must be a JSON object"));
                };
                let mut entries = proofs.iter();
                let (Some((proof_type, values)), None) = (entries.next(), entries.next()) else {
                    return Err(invalid_proof("proofs must have exactly one proof type"));
                };
                let Value::Array(values) = values else {
                    return Err(invalid_proof(format!(
                        "proofs.{proof_type} must be an array"
                    )));
                };
                if values.is_empty() {
                    return Err(invalid_proof(format!("proofs.{proof_type} is empty")));
                }
                if values.len() > options.batch_size || values.len() > MAX_PROOFS {
                    return Err(invalid_proof(format!(
                        "at most {} proofs may be sent in one request",
                        options.batch_size.min(MAX_PROOFS)
                    )));
                }
                let strings = values
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        invalid_proof(format!("proofs.{proof_type} must hold strings"))
                    })?;
                match proof_type.as_str() {
                    PROOF_TYPE_JWT => Ok(Some(Proofs::Jwt(strings))),
                    PROOF_TYPE_ATTESTATION => {
                        let mut strings = strings;
                        match (strings.pop(), strings.is_empty()) {
                            (Some(attestation), true) => Ok(Some(Proofs::Attestation(attestation))),
                            _ => Err(invalid_proof(
                                "proofs.attestation must hold exactly one key attestation",
                            )),
                        }
                    }
                    other => Err(invalid_proof(format!(
                        "proof type {other} is not supported"
                    ))),
                }
            }
        }
    }
}

/// The singular `proof` object of earlier drafts: `{"proof_type": "jwt", "jwt": "…"}`.
fn parse_legacy_proof(proof: &Value) -> Result<Proofs, ProtocolError> {
    let proof_type = proof.get("proof_type").and_then(Value::as_str);
    match proof_type {
        Some(PROOF_TYPE_JWT) => proof
            .get("jwt")
            .and_then(Value::as_str)
            .map(|jwt| Proofs::Jwt(vec![jwt.to_owned()]))
            .ok_or_else(|| invalid_proof("proof.jwt must be a string")),
        Some(PROOF_TYPE_ATTESTATION) => proof
            .get("attestation")
            .and_then(Value::as_str)
            .map(|jwt| Proofs::Attestation(jwt.to_owned()))
            .ok_or_else(|| invalid_proof("proof.attestation must be a string")),
        Some(other) => Err(invalid_proof(format!(
            "proof type {other} is not supported"
        ))),
        None => Err(invalid_proof("proof.proof_type is required")),
    }
}

/// Parses `credential_response_encryption`: a public `jwk`, an `enc` and an optional `zip`.
pub(crate) fn parse_response_encryption(
    value: &Value,
) -> Result<ResponseEncryptionRequest, ProtocolError> {
    let bad = |description: &str| {
        ProtocolError::new(
            CredentialErrorCode::InvalidEncryptionParameters,
            description,
        )
    };
    let Value::Object(object) = value else {
        return Err(bad("credential_response_encryption must be a JSON object"));
    };
    let jwk = object
        .get("jwk")
        .ok_or_else(|| bad("credential_response_encryption.jwk is required"))?;
    let jwk: Jwk = serde_json::from_value(jwk.clone())
        .map_err(|_| bad("credential_response_encryption.jwk is not a JWK"))?;
    if jwk.is_private() {
        return Err(bad(
            "credential_response_encryption.jwk must be a public key",
        ));
    }
    let enc = object
        .get("enc")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("credential_response_encryption.enc is required"))?
        .to_owned();
    let zip = match object.get("zip") {
        None => None,
        Some(Value::String(zip)) => Some(zip.clone()),
        Some(_) => return Err(bad("credential_response_encryption.zip must be a string")),
    };
    Ok(ResponseEncryptionRequest { jwk, enc, zip })
}
