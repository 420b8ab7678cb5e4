//! Authorization Responses (OpenID4VP 1.0 §8): the `vp_token` (or an error) a wallet sends with
//! `direct_post` as form parameters, or with `direct_post.jwt` encrypted to the verifier in a
//! JWE (§8.3). Both sides: a verifier reads a body with [`AuthorizationResponse::from_form`]
//! or [`AuthorizationResponse::from_encrypted_form`], a wallet writes one with
//! [`AuthorizationResponse::to_form`] or [`AuthorizationResponse::to_encrypted_form`].

use std::collections::BTreeMap;

use edk_core::jose::jwe::{self, ContentEncryption, Decrypter, Jwe, JweOptions, KeyManagement};
use edk_core::jose::{JoseError, Jwk};
use edk_core::{ErrorKind, HasKind};
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use crate::request::{AuthorizationRequest, ClientMetadata};

/// Bounds on a response, checked before it is parsed further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseLimits {
    /// Largest form body (or `response` JWE) accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most presentations in one `vp_token`, over every credential query.
    pub max_presentations: usize,
    /// Largest single presentation, in bytes.
    pub max_presentation_bytes: usize,
    /// Longest `error_description` kept, in characters (longer ones are refused).
    pub max_error_description: usize,
}

impl ResponseLimits {
    /// The defaults: 1 MiB bodies, 32 presentations of at most 256 KiB each, 1,024-character
    /// error descriptions.
    pub const DEFAULT: Self = Self {
        max_body_bytes: 1024 * 1024,
        max_presentations: 32,
        max_presentation_bytes: 256 * 1024,
        max_error_description: 1024,
    };

    /// The limits with another body size.
    #[must_use]
    pub const fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The limits with another number of presentations.
    #[must_use]
    pub const fn with_max_presentations(mut self, count: usize) -> Self {
        self.max_presentations = count;
        self
    }
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An Authorization Response: presentations, or an error (§8.5).
#[derive(Clone, Debug, PartialEq)]
pub enum AuthorizationResponse {
    /// The wallet presents credentials.
    VpToken {
        /// Per credential query id, its presentations: strings for `dc+sd-jwt`,
        /// `jwt_vc_json` and `mso_mdoc` (a base64url `DeviceResponse`), objects for `ldp_vc`.
        vp_token: BTreeMap<String, Vec<Value>>,
        /// `state`, when the request had one.
        state: Option<String>,
    },
    /// The wallet refuses, or failed.
    Error {
        /// `error`, e.g. `access_denied`.
        error: String,
        /// `error_description`.
        error_description: Option<String>,
        /// `state`, when the request had one.
        state: Option<String>,
    },
}

/// A response body refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body, a presentation or the number of presentations is over its limit.
    #[error("the response's {what} is too large ({size} > {limit})")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A parameter is missing, repeated, or has the wrong form.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The `response` JWE cannot be read or decrypted (whatever the reason: a wrong key, a
    /// bad tag).
    #[error("the response JWE is refused")]
    Jwe(#[source] JoseError),
    /// The JWE's `alg` or `enc` is not one the request offered.
    #[error("the response JWE uses {0}, which the request did not offer")]
    UnexpectedEncryption(String),
    /// The request's `client_metadata` has no key a response can be encrypted to.
    #[error("the request offers no usable response encryption key")]
    NoEncryptionKey,
    /// The request's `encrypted_response_enc_values_supported` has no supported value.
    #[error("the request offers no supported content encryption")]
    NoContentEncryption,
}

impl HasKind for ResponseError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoEncryptionKey | Self::NoContentEncryption => ErrorKind::Unsupported,
            _ => ErrorKind::InvalidInput,
        }
    }
}

impl AuthorizationResponse {
    /// `state`, when present.
    #[must_use]
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::VpToken { state, .. } | Self::Error { state, .. } => state.as_deref(),
        }
    }

    /// Reads the response parameters as JSON values (`vp_token` an object), as in a
    /// decrypted JWE or a Digital Credentials API `data` object.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Malformed`] for a missing or mistyped parameter, or both `vp_token`
    /// and `error`; [`ResponseError::TooLarge`] past `limits`.
    pub fn from_json(
        parameters: &Map<String, Value>,
        limits: &ResponseLimits,
    ) -> Result<Self, ResponseError> {
        let text = |name: &str| -> Result<Option<String>, ResponseError> {
            match parameters.get(name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(ResponseError::Malformed("a parameter must be a string")),
            }
        };
        let state = text("state")?;
        match (parameters.get("vp_token"), text("error")?) {
            (Some(_), Some(_)) => Err(ResponseError::Malformed(
                "a response has vp_token or error, not both",
            )),
            (None, None) => Err(ResponseError::Malformed(
                "a response needs vp_token or error",
            )),
            (None, Some(error)) => {
                let error_description = text("error_description")?;
                if let Some(description) = &error_description {
                    let size = description.chars().count();
                    if size > limits.max_error_description {
                        return Err(ResponseError::TooLarge {
                            what: "error_description",
                            size,
                            limit: limits.max_error_description,
                        });
                    }
                }
                Ok(Self::Error {
                    error,
                    error_description,
                    state,
                })
            }
            (Some(vp_token), None) => Ok(Self::VpToken {
                vp_token: read_vp_token(vp_token, limits)?,
                state,
            }),
        }
    }

    /// The response parameters as JSON values.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        match self {
            Self::VpToken { vp_token, state } => {
                object.insert("vp_token".to_owned(), json!(vp_token));
                if let Some(state) = state {
                    object.insert("state".to_owned(), json!(state));
                }
            }
            Self::Error {
                error,
                error_description,
                state,
            } => {
                object.insert("error".to_owned(), json!(error));
                if let Some(description) = error_description {
                    object.insert("error_description".to_owned(), json!(description));
                }
                if let Some(state) = state {
                    object.insert("state".to_owned(), json!(state));
                }
            }
        }
        Value::Object(object)
    }

    /// Reads a `direct_post` body (`application/x-www-form-urlencoded`): `vp_token` as JSON
    /// text and `state`, or `error`, `error_description` and `state`.
    ///
    /// # Errors
    ///
    /// [`ResponseError::TooLarge`] past `limits` (the body first), otherwise
    /// [`ResponseError::Malformed`] for a repeated parameter or `vp_token` that is not a JSON
    /// object of non-empty arrays, then as [`Self::from_json`].
    pub fn from_form(body: &[u8], limits: &ResponseLimits) -> Result<Self, ResponseError> {
        let parameters = form_parameters(body, limits)?;
        let mut json = Map::new();
        for (name, value) in parameters {
            let value = if name == "vp_token" {
                serde_json::from_str(&value)
                    .map_err(|_| ResponseError::Malformed("vp_token is not JSON"))?
            } else {
                Value::String(value)
            };
            json.insert(name, value);
        }
        Self::from_json(&json, limits)
    }

    /// The response as a `direct_post` body, form-encoded.
    #[must_use]
    pub fn to_form(&self) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        if let Value::Object(object) = self.to_json() {
            for (name, value) in object {
                match value {
                    Value::String(text) => form.append_pair(&name, &text),
                    other => form.append_pair(&name, &other.to_string()),
                };
            }
        }
        form.finish()
    }

    /// Reads a `direct_post.jwt` body: the `response` parameter, a JWE the wallet encrypted to
    /// one of the keys of `request`'s `client_metadata.jwks`, decrypted by `decrypter` (the
    /// verifier's private key, in memory or in a KMS). The JWE's `enc` must be one the request
    /// offered (`A128GCM` by default), its `alg` that of a key offered. Returns the response
    /// and the JWK it was encrypted to (its thumbprint goes in an mdoc's session transcript).
    ///
    /// A wallet that cannot encrypt may send an unencrypted error (§8.3); such a body is read
    /// as [`Self::from_form`] would.
    ///
    /// # Errors
    ///
    /// [`ResponseError::TooLarge`], [`ResponseError::Malformed`] (no `response`, an inner
    /// payload that is not a JSON object), [`ResponseError::UnexpectedEncryption`],
    /// [`ResponseError::Jwe`] for any decryption failure, then as [`Self::from_json`].
    pub async fn from_encrypted_form(
        body: &[u8],
        request: &AuthorizationRequest,
        decrypter: &(dyn Decrypter + '_),
        limits: &ResponseLimits,
    ) -> Result<(Self, Option<Jwk>), ResponseError> {
        let parameters = form_parameters(body, limits)?;
        let Some(token) = parameters.get("response") else {
            if parameters.contains_key("error") && !parameters.contains_key("vp_token") {
                return Ok((Self::from_form(body, limits)?, None));
            }
            return Err(ResponseError::Malformed(
                "a direct_post.jwt body needs the response parameter",
            ));
        };
        if parameters.len() != 1 {
            return Err(ResponseError::Malformed(
                "a direct_post.jwt body has only the response parameter",
            ));
        }
        let (response, key) = Self::decrypt(token, request, decrypter, limits).await?;
        Ok((response, Some(key)))
    }

    /// Decrypts the JWE `token` (the `response` parameter) as [`Self::from_encrypted_form`]
    /// does.
    ///
    /// # Errors
    ///
    /// As [`Self::from_encrypted_form`].
    pub async fn decrypt(
        token: &str,
        request: &AuthorizationRequest,
        decrypter: &(dyn Decrypter + '_),
        limits: &ResponseLimits,
    ) -> Result<(Self, Jwk), ResponseError> {
        if token.len() > limits.max_body_bytes {
            return Err(ResponseError::TooLarge {
                what: "response",
                size: token.len(),
                limit: limits.max_body_bytes,
            });
        }
        let jose_limits =
            edk_core::limits::Limits::DEFAULT.with_max_token_bytes(limits.max_body_bytes);
        let jwe = Jwe::parse(token, &jose_limits).map_err(ResponseError::Jwe)?;
        let header = jwe.header();
        let metadata = request.client_metadata.clone().unwrap_or_default();
        let offered = offered_enc(&metadata);
        if !offered.contains(&header.enc) {
            return Err(ResponseError::UnexpectedEncryption(
                header.enc.name().to_owned(),
            ));
        }
        let key = encryption_keys(&metadata)
            .into_iter()
            .find(|(jwk, alg)| {
                *alg == header.alg
                    && match (&header.kid, &jwk.kid) {
                        (Some(wanted), Some(kid)) => wanted == kid,
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
            })
            .map(|(jwk, _)| jwk)
            .ok_or_else(|| ResponseError::UnexpectedEncryption(header.alg.name().to_owned()))?;
        let (_, plaintext) = jwe.decrypt(decrypter).await.map_err(ResponseError::Jwe)?;
        let parameters: Map<String, Value> = serde_json::from_slice(&plaintext)
            .map_err(|_| ResponseError::Malformed("the JWE payload is not a JSON object"))?;
        Ok((Self::from_json(&parameters, limits)?, key))
    }

    /// The response as a `direct_post.jwt` body: `response=` a JWE of [`Self::to_json`]
    /// encrypted ([`Self::encrypt`]) to `request`'s `client_metadata`.
    ///
    /// # Errors
    ///
    /// As [`Self::encrypt`].
    pub fn to_encrypted_form(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<String, ResponseError> {
        let token = self.encrypt(request)?;
        Ok(url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response", &token)
            .finish())
    }

    /// The verifier key [`Self::encrypt`] encrypts a response to `request` to: a wallet
    /// needs it for an mdoc's session transcript
    /// ([`session_transcript`](crate::validate::session_transcript)) before it encrypts.
    ///
    /// # Errors
    ///
    /// [`ResponseError::NoEncryptionKey`] when the request offers none.
    pub fn encryption_key(request: &AuthorizationRequest) -> Result<Jwk, ResponseError> {
        let metadata = request
            .client_metadata
            .as_ref()
            .ok_or(ResponseError::NoEncryptionKey)?;
        encryption_keys(metadata)
            .into_iter()
            .next()
            .map(|(jwk, _)| jwk)
            .ok_or(ResponseError::NoEncryptionKey)
    }

    /// The response encrypted (§8.3) to the first usable key of `request`'s
    /// `client_metadata.jwks` (an EC or OKP key whose `use` is absent or `enc` and whose
    /// `alg` is `ECDH-ES`, `ECDH-ES+A128KW` or `ECDH-ES+A256KW`), with `A256GCM` when
    /// `encrypted_response_enc_values_supported` offers it (as HAIP prefers), otherwise its
    /// first value this library supports (`A128GCM` by default), the key's `kid` copied to the
    /// header.
    ///
    /// # Errors
    ///
    /// [`ResponseError::NoEncryptionKey`], [`ResponseError::NoContentEncryption`], or
    /// [`ResponseError::Jwe`] when the key cannot be used.
    pub fn encrypt(&self, request: &AuthorizationRequest) -> Result<String, ResponseError> {
        let metadata = request
            .client_metadata
            .as_ref()
            .ok_or(ResponseError::NoEncryptionKey)?;
        let (jwk, alg) = encryption_keys(metadata)
            .into_iter()
            .next()
            .ok_or(ResponseError::NoEncryptionKey)?;
        // HAIP §5: wallets prefer A256GCM when the verifier offers it.
        let offered = offered_enc(metadata);
        let enc = if offered.contains(&ContentEncryption::A256Gcm) {
            ContentEncryption::A256Gcm
        } else {
            offered
                .into_iter()
                .next()
                .ok_or(ResponseError::NoContentEncryption)?
        };
        let payload = serde_json::to_vec(&self.to_json())
            .map_err(|_| ResponseError::Malformed("the response cannot be serialised"))?;
        jwe::encrypt(&payload, &jwk, alg, enc, JweOptions::default()).map_err(ResponseError::Jwe)
    }
}

/// The keys of `metadata.jwks` a response can be encrypted to, with their `alg`.
fn encryption_keys(metadata: &ClientMetadata) -> Vec<(Jwk, KeyManagement)> {
    metadata
        .keys()
        .iter()
        .filter(|key| key.get("use").is_none_or(|usage| usage == "enc"))
        .filter_map(|key| {
            let alg = KeyManagement::from_name(key.get("alg")?.as_str()?)?;
            if alg == KeyManagement::RsaOaep256 {
                return None;
            }
            let jwk = Jwk::deserialize(key).ok()?;
            Some((jwk, alg))
        })
        .collect()
}

/// The content encryptions `metadata` offers that this library supports.
fn offered_enc(metadata: &ClientMetadata) -> Vec<ContentEncryption> {
    match &metadata.encrypted_response_enc_values_supported {
        None => vec![ContentEncryption::A128Gcm],
        Some(values) => values
            .iter()
            .filter_map(|value| ContentEncryption::from_name(value))
            .collect(),
    }
}

fn form_parameters(
    body: &[u8],
    limits: &ResponseLimits,
) -> Result<BTreeMap<String, String>, ResponseError> {
    if body.len() > limits.max_body_bytes {
        return Err(ResponseError::TooLarge {
            what: "body",
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    let mut parameters = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if parameters
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(ResponseError::Malformed(
                "a parameter appears more than once",
            ));
        }
    }
    Ok(parameters)
}

fn read_vp_token(
    vp_token: &Value,
    limits: &ResponseLimits,
) -> Result<BTreeMap<String, Vec<Value>>, ResponseError> {
    let Value::Object(entries) = vp_token else {
        return Err(ResponseError::Malformed(
            "vp_token must be an object keyed by credential query id",
        ));
    };
    let mut out = BTreeMap::new();
    let mut count = 0usize;
    for (id, presentations) in entries {
        let Value::Array(presentations) = presentations else {
            return Err(ResponseError::Malformed(
                "each vp_token entry must be an array of presentations",
            ));
        };
        if presentations.is_empty() {
            return Err(ResponseError::Malformed(
                "a vp_token entry must not be empty",
            ));
        }
        count = count.saturating_add(presentations.len());
        if count > limits.max_presentations {
            return Err(ResponseError::TooLarge {
                what: "number of presentations",
                size: count,
                limit: limits.max_presentations,
            });
        }
        for presentation in presentations {
            let size = match presentation {
                Value::String(text) => text.len(),
                Value::Object(_) => presentation.to_string().len(),
                _ => {
                    return Err(ResponseError::Malformed(
                        "a presentation must be a string or an object",
                    ));
                }
            };
            if size > limits.max_presentation_bytes {
                return Err(ResponseError::TooLarge {
                    what: "presentation",
                    size,
                    limit: limits.max_presentation_bytes,
                });
            }
        }
        out.insert(id.clone(), presentations.clone());
    }
    Ok(out)
}
