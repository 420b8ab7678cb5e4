//! The Authorization Request (OpenID4VP 1.0 §5): its parameters typed, the client identifier
//! with its prefix (§5.9), the combinations the specification requires checked by
//! [`AuthorizationRequest::validate`], and its two serialisations: query parameters
//! ([`AuthorizationRequest::to_query_pairs`]) and the claims of an unsigned Request Object
//! ([`AuthorizationRequest::to_request_object_claims`]), signed elsewhere.

use std::fmt;

use edk_core::encoding::b64url_decode;
use edk_core::{ErrorKind, HasKind};
use serde_json::{Map, Value, json};
use url::Url;

use crate::dcql::DcqlQuery;
use crate::error::DcqlError;

/// The `typ` header of a Request Object (§5, RFC 9101).
pub const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";

/// The `aud` of a Request Object for a wallet known by its static metadata (§5.8).
pub const SELF_ISSUED_AUDIENCE: &str = "https://self-issued.me/v2";

/// A client identifier with its prefix (§5.9): the text before the first `:` names how the
/// wallet authenticates the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    /// No known prefix: a client the wallet knows in advance (the whole identifier is kept).
    PreRegistered(String),
    /// `redirect_uri:`: the identifier is the redirect or response URI, exactly as written in
    /// the request; requests are not signed.
    RedirectUri(String),
    /// `decentralized_identifier:`: a DID whose verification method signs the request.
    DecentralizedIdentifier(String),
    /// `x509_san_dns:`: a DNS name in the signing certificate's subjectAltName.
    X509SanDns(String),
    /// `x509_hash:`: the base64url SHA-256 hash of the signing certificate.
    X509Hash(String),
    /// `verifier_attestation:`: the `sub` of a Verifier Attestation JWT.
    VerifierAttestation(String),
    /// `openid_federation:`: an OpenID Federation entity identifier.
    OpenidFederation(String),
}

impl ClientId {
    /// Reads a `client_id` and its prefix.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidClientId`] when the identifier is empty, uses the reserved
    /// `origin:` prefix, or the part after a known prefix is empty or not what the prefix
    /// requires (a URL for `redirect_uri:`, a DID for `decentralized_identifier:`, a DNS name
    /// for `x509_san_dns:`, the base64url of 32 bytes for `x509_hash:`, a URL for
    /// `openid_federation:`).
    pub fn parse(client_id: &str) -> Result<Self, RequestError> {
        let invalid = |reason: &'static str| RequestError::InvalidClientId {
            client_id: client_id.to_owned(),
            reason,
        };
        if client_id.is_empty() {
            return Err(invalid("it is empty"));
        }
        let Some((prefix, original)) = client_id.split_once(':') else {
            return Ok(Self::PreRegistered(client_id.to_owned()));
        };
        let known = matches!(
            prefix,
            "redirect_uri"
                | "decentralized_identifier"
                | "x509_san_dns"
                | "x509_hash"
                | "verifier_attestation"
                | "openid_federation"
                | "origin"
        );
        if known && original.is_empty() {
            return Err(invalid("nothing follows the prefix"));
        }
        match prefix {
            "redirect_uri" => Url::parse(original)
                .map(|_| Self::RedirectUri(original.to_owned()))
                .map_err(|_| invalid("the redirect_uri prefix needs a URL")),
            "decentralized_identifier" => {
                let mut parts = original.splitn(3, ':');
                let well_formed = parts.next() == Some("did")
                    && parts.next().is_some_and(|method| {
                        !method.is_empty()
                            && method
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    })
                    && parts.next().is_some_and(|id| !id.is_empty());
                if well_formed {
                    Ok(Self::DecentralizedIdentifier(original.to_owned()))
                } else {
                    Err(invalid("the decentralized_identifier prefix needs a DID"))
                }
            }
            "x509_san_dns" => {
                if is_dns_name(original) {
                    Ok(Self::X509SanDns(original.to_owned()))
                } else {
                    Err(invalid("the x509_san_dns prefix needs a DNS name"))
                }
            }
            "x509_hash" => match b64url_decode(original) {
                Ok(hash) if hash.len() == 32 => Ok(Self::X509Hash(original.to_owned())),
                _ => Err(invalid(
                    "the x509_hash prefix needs the base64url of a SHA-256 hash",
                )),
            },
            "verifier_attestation" => Ok(Self::VerifierAttestation(original.to_owned())),
            "openid_federation" => Url::parse(original)
                .map(|_| Self::OpenidFederation(original.to_owned()))
                .map_err(|_| invalid("the openid_federation prefix needs an entity identifier")),
            "origin" => Err(invalid("the origin prefix is reserved for the wallet")),
            _ => Ok(Self::PreRegistered(client_id.to_owned())),
        }
    }

    /// The prefix as written before the `:`, or `None` for a pre-registered client.
    #[must_use]
    pub fn prefix(&self) -> Option<&'static str> {
        match self {
            Self::PreRegistered(_) => None,
            Self::RedirectUri(_) => Some("redirect_uri"),
            Self::DecentralizedIdentifier(_) => Some("decentralized_identifier"),
            Self::X509SanDns(_) => Some("x509_san_dns"),
            Self::X509Hash(_) => Some("x509_hash"),
            Self::VerifierAttestation(_) => Some("verifier_attestation"),
            Self::OpenidFederation(_) => Some("openid_federation"),
        }
    }

    /// Whether requests from this client must be signed (every prefix but `redirect_uri:`
    /// and pre-registered clients).
    #[must_use]
    pub fn requires_signed_request(&self) -> bool {
        !matches!(self, Self::PreRegistered(_) | Self::RedirectUri(_))
    }

    /// Whether the verifier's metadata comes from `client_metadata` (not from registration or
    /// a federation trust chain).
    #[must_use]
    pub fn metadata_from_request(&self) -> bool {
        !matches!(self, Self::PreRegistered(_) | Self::OpenidFederation(_))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreRegistered(id) => f.write_str(id),
            Self::RedirectUri(original)
            | Self::DecentralizedIdentifier(original)
            | Self::X509SanDns(original)
            | Self::X509Hash(original)
            | Self::VerifierAttestation(original)
            | Self::OpenidFederation(original) => {
                write!(f, "{}:{original}", self.prefix().unwrap_or_default())
            }
        }
    }
}

/// A Response Mode (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseMode {
    /// `direct_post`: the wallet POSTs the response to `response_uri`.
    DirectPost,
    /// `direct_post.jwt`: the same, encrypted to the verifier.
    DirectPostJwt,
    /// `fragment`: the response in the fragment of `redirect_uri`.
    Fragment,
    /// `dc_api`: the response through the Digital Credentials API.
    DcApi,
    /// `dc_api.jwt`: the same, encrypted to the verifier.
    DcApiJwt,
}

impl ResponseMode {
    /// The mode as written in `response_mode`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DirectPost => "direct_post",
            Self::DirectPostJwt => "direct_post.jwt",
            Self::Fragment => "fragment",
            Self::DcApi => "dc_api",
            Self::DcApiJwt => "dc_api.jwt",
        }
    }

    /// The mode named `mode`.
    ///
    /// # Errors
    ///
    /// [`RequestError::UnsupportedResponseMode`] for any other value.
    pub fn parse(mode: &str) -> Result<Self, RequestError> {
        match mode {
            "direct_post" => Ok(Self::DirectPost),
            "direct_post.jwt" => Ok(Self::DirectPostJwt),
            "fragment" => Ok(Self::Fragment),
            "dc_api" => Ok(Self::DcApi),
            "dc_api.jwt" => Ok(Self::DcApiJwt),
            other => Err(RequestError::UnsupportedResponseMode(other.to_owned())),
        }
    }

    /// Whether the response is encrypted to the verifier.
    #[must_use]
    pub const fn is_encrypted(self) -> bool {
        matches!(self, Self::DirectPostJwt | Self::DcApiJwt)
    }

    /// Whether the request goes through the Digital Credentials API.
    #[must_use]
    pub const fn is_dc_api(self) -> bool {
        matches!(self, Self::DcApi | Self::DcApiJwt)
    }
}

/// How the wallet fetches a request passed by reference (§5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestUriMethod {
    /// `get` (the default).
    #[default]
    Get,
    /// `post`: the wallet may send its metadata and a `wallet_nonce`.
    Post,
}

impl RequestUriMethod {
    /// The method as written in `request_uri_method`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
        }
    }

    /// The method named `method`.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidRequestUriMethod`] for any other value.
    pub fn parse(method: &str) -> Result<Self, RequestError> {
        match method {
            "get" => Ok(Self::Get),
            "post" => Ok(Self::Post),
            other => Err(RequestError::InvalidRequestUriMethod(other.to_owned())),
        }
    }
}

/// The verifier's metadata sent in the request (`client_metadata`, §5.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientMetadata {
    /// `vp_formats_supported`: per Credential Format Identifier, the algorithms the verifier
    /// accepts (§11.1).
    pub vp_formats_supported: Option<Map<String, Value>>,
    /// `jwks`: a JWK Set of the keys the wallet encrypts the response to.
    pub jwks: Option<Value>,
    /// `encrypted_response_enc_values_supported`: the content encryptions accepted (default
    /// `A128GCM`).
    pub encrypted_response_enc_values_supported: Option<Vec<String>>,
    /// Any other member, kept as given.
    pub other: Map<String, Value>,
}

impl ClientMetadata {
    /// The metadata as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut object = self.other.clone();
        if let Some(formats) = &self.vp_formats_supported {
            object.insert(
                "vp_formats_supported".to_owned(),
                Value::Object(formats.clone()),
            );
        }
        if let Some(jwks) = &self.jwks {
            object.insert("jwks".to_owned(), jwks.clone());
        }
        if let Some(enc) = &self.encrypted_response_enc_values_supported {
            object.insert(
                "encrypted_response_enc_values_supported".to_owned(),
                json!(enc),
            );
        }
        Value::Object(object)
    }

    /// Reads the metadata from JSON.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidParameter`] when it is not an object or a known member has the
    /// wrong type.
    pub fn from_json(value: &Value) -> Result<Self, RequestError> {
        let invalid = |reason| RequestError::InvalidParameter {
            name: "client_metadata",
            reason,
        };
        let Value::Object(object) = value else {
            return Err(invalid("must be an object"));
        };
        let mut other = object.clone();
        let vp_formats_supported = match other.remove("vp_formats_supported") {
            None => None,
            Some(Value::Object(formats)) => Some(formats),
            Some(_) => return Err(invalid("vp_formats_supported must be an object")),
        };
        let jwks = match other.remove("jwks") {
            None => None,
            Some(jwks @ Value::Object(_)) => Some(jwks),
            Some(_) => return Err(invalid("jwks must be a JWK Set")),
        };
        let encrypted_response_enc_values_supported =
            match other.remove("encrypted_response_enc_values_supported") {
                None => None,
                Some(values) => Some(strings(&values).ok_or_else(|| {
                    invalid("encrypted_response_enc_values_supported must be an array of strings")
                })?),
            };
        Ok(Self {
            vp_formats_supported,
            jwks,
            encrypted_response_enc_values_supported,
            other,
        })
    }

    /// The keys of `jwks`, empty when there is none.
    #[must_use]
    pub fn keys(&self) -> &[Value] {
        self.jwks
            .as_ref()
            .and_then(|jwks| jwks.get("keys"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}

/// An Authorization Request for a `vp_token` (§5).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationRequest {
    /// `client_id`; absent only in an unsigned request over the Digital Credentials API.
    pub client_id: Option<ClientId>,
    /// `response_mode`.
    pub response_mode: ResponseMode,
    /// `response_uri` (`direct_post` and `direct_post.jwt`).
    pub response_uri: Option<Url>,
    /// `redirect_uri` (`fragment`).
    pub redirect_uri: Option<Url>,
    /// `nonce`: fresh per request, URL-safe characters.
    pub nonce: String,
    /// `state`: URL-safe characters.
    pub state: Option<String>,
    /// `dcql_query`.
    pub dcql_query: DcqlQuery,
    /// `client_metadata`.
    pub client_metadata: Option<ClientMetadata>,
    /// `transaction_data`: each a base64url-encoded JSON object, kept as received (the
    /// `transaction_data_hashes` are over these strings).
    pub transaction_data: Option<Vec<String>>,
    /// `expected_origins` (signed requests over the Digital Credentials API).
    pub expected_origins: Option<Vec<String>>,
}

/// The parameters that, as JSON values, go in a request as JSON-encoded strings.
const JSON_PARAMETERS: [&str; 4] = [
    "dcql_query",
    "client_metadata",
    "transaction_data",
    "expected_origins",
];

impl AuthorizationRequest {
    /// A request of `client_id` for `dcql_query` answered with `direct_post` to
    /// `response_uri`, with no other parameter.
    #[must_use]
    pub fn direct_post(
        client_id: ClientId,
        response_uri: Url,
        nonce: impl Into<String>,
        dcql_query: DcqlQuery,
    ) -> Self {
        Self {
            client_id: Some(client_id),
            response_mode: ResponseMode::DirectPost,
            response_uri: Some(response_uri),
            redirect_uri: None,
            nonce: nonce.into(),
            state: None,
            dcql_query,
            client_metadata: None,
            transaction_data: None,
            expected_origins: None,
        }
    }

    /// Checks the combinations §5 requires: a `client_id` outside the Digital Credentials API;
    /// a `response_uri` (or the `redirect_uri:` prefix, which names it) and no `redirect_uri`
    /// with `direct_post(.jwt)`; a `redirect_uri` (or the `redirect_uri:` prefix) and no
    /// `response_uri` with `fragment`; neither, nor `state`,
    /// over the Digital Credentials API; a `redirect_uri:` client identifier equal to the
    /// response or redirect URI; an `x509_san_dns:` name equal to its host; no
    /// `client_metadata` for a pre-registered client; encryption keys (each with `kid` and
    /// `alg`) in `client_metadata` for an encrypted response mode; a URL-safe `nonce` and
    /// `state`; `state` when a credential query waives holder binding; `transaction_data`
    /// entries with a `type` and `credential_ids` naming holder-bound credential queries; and
    /// `expected_origins` only over the Digital Credentials API.
    ///
    /// # Errors
    ///
    /// The [`RequestError`] of the first rule broken.
    pub fn validate(&self) -> Result<(), RequestError> {
        self.dcql_query.validate()?;
        let mode = self.response_mode;
        if self.nonce.is_empty() || !is_url_safe(&self.nonce) {
            return Err(RequestError::InvalidParameter {
                name: "nonce",
                reason: "must be non-empty and of the characters A-Z a-z 0-9 - . _ ~",
            });
        }
        if let Some(state) = &self.state
            && (state.is_empty() || !is_url_safe(state))
        {
            return Err(RequestError::InvalidParameter {
                name: "state",
                reason: "must be non-empty and of the characters A-Z a-z 0-9 - . _ ~",
            });
        }
        match mode {
            ResponseMode::DirectPost | ResponseMode::DirectPostJwt => {
                // The redirect_uri prefix names the response URI, which may then be left out.
                let by_prefix = matches!(self.client_id, Some(ClientId::RedirectUri(_)));
                if self.response_uri.is_none() && !by_prefix {
                    return Err(RequestError::MissingParameter("response_uri"));
                }
                if self.redirect_uri.is_some() {
                    return Err(RequestError::ForbiddenParameter {
                        name: "redirect_uri",
                        mode,
                    });
                }
            }
            ResponseMode::Fragment => {
                if self.response_uri.is_some() {
                    return Err(RequestError::ForbiddenParameter {
                        name: "response_uri",
                        mode,
                    });
                }
                // The redirect_uri prefix names the redirect URI, which may then be left out.
                let by_prefix = matches!(self.client_id, Some(ClientId::RedirectUri(_)));
                if self.redirect_uri.is_none() && !by_prefix {
                    return Err(RequestError::MissingParameter("redirect_uri"));
                }
            }
            ResponseMode::DcApi | ResponseMode::DcApiJwt => {
                for (name, present) in [
                    ("response_uri", self.response_uri.is_some()),
                    ("redirect_uri", self.redirect_uri.is_some()),
                    ("state", self.state.is_some()),
                ] {
                    if present {
                        return Err(RequestError::ForbiddenParameter { name, mode });
                    }
                }
            }
        }
        if self.expected_origins.is_some() && !mode.is_dc_api() {
            return Err(RequestError::ForbiddenParameter {
                name: "expected_origins",
                mode,
            });
        }
        let Some(client_id) = &self.client_id else {
            if mode.is_dc_api() {
                return self.validate_rest(None);
            }
            return Err(RequestError::MissingParameter("client_id"));
        };
        let target = self.response_uri.as_ref().or(self.redirect_uri.as_ref());
        match client_id {
            ClientId::RedirectUri(uri) => {
                if mode.is_dc_api() {
                    return Err(RequestError::ClientIdMismatch(
                        "the redirect_uri prefix cannot be used over the Digital Credentials API",
                    ));
                }
                if target.is_some_and(|target| target.as_str() != uri) {
                    return Err(RequestError::ClientIdMismatch(
                        "a redirect_uri client identifier must be the response or redirect URI, written alike",
                    ));
                }
            }
            ClientId::X509SanDns(name)
                if target.is_some_and(|target| target.host_str() != Some(name.as_str())) =>
            {
                return Err(RequestError::ClientIdMismatch(
                    "an x509_san_dns client identifier must be the host of the response or redirect URI",
                ));
            }
            ClientId::PreRegistered(_) if self.client_metadata.is_some() => {
                return Err(RequestError::ClientMetadataNotAllowed);
            }
            _ => {}
        }
        self.validate_rest(Some(client_id))
    }

    fn validate_rest(&self, client_id: Option<&ClientId>) -> Result<(), RequestError> {
        let mode = self.response_mode;
        let metadata_here = client_id.is_none_or(ClientId::metadata_from_request);
        if mode.is_encrypted() && metadata_here {
            let keys = self
                .client_metadata
                .as_ref()
                .map_or(&[][..], ClientMetadata::keys);
            if keys.is_empty() {
                return Err(RequestError::MissingEncryptionKey);
            }
            if keys.iter().any(|key| {
                key.get("kid").and_then(Value::as_str).is_none()
                    || key.get("alg").and_then(Value::as_str).is_none()
            }) {
                return Err(RequestError::InvalidParameter {
                    name: "client_metadata",
                    reason: "every key of jwks needs a kid and an alg",
                });
            }
        }
        let waived = self
            .dcql_query
            .credentials
            .iter()
            .any(|query| !query.require_cryptographic_holder_binding);
        if waived && !mode.is_dc_api() && self.state.is_none() {
            return Err(RequestError::MissingParameter("state"));
        }
        if let Some(entries) = &self.transaction_data {
            if entries.is_empty() {
                return Err(RequestError::InvalidTransactionData {
                    index: 0,
                    reason: "transaction_data must be a non-empty array",
                });
            }
            for (index, entry) in entries.iter().enumerate() {
                self.validate_transaction_data(index, entry)?;
            }
        }
        Ok(())
    }

    fn validate_transaction_data(&self, index: usize, entry: &str) -> Result<(), RequestError> {
        let invalid = |reason| RequestError::InvalidTransactionData { index, reason };
        let decoded = b64url_decode(entry).map_err(|_| invalid("not base64url"))?;
        let object: Value =
            serde_json::from_slice(&decoded).map_err(|_| invalid("not a JSON object"))?;
        let Value::Object(object) = object else {
            return Err(invalid("not a JSON object"));
        };
        if object.get("type").and_then(Value::as_str).is_none() {
            return Err(invalid("type must be a string"));
        }
        let ids = object
            .get("credential_ids")
            .and_then(strings)
            .filter(|ids| !ids.is_empty())
            .ok_or_else(|| invalid("credential_ids must be a non-empty array of strings"))?;
        for id in &ids {
            let query = self
                .dcql_query
                .credential(id)
                .ok_or_else(|| invalid("credential_ids names an unknown credential query"))?;
            if !query.require_cryptographic_holder_binding {
                return Err(invalid(
                    "credential_ids names a credential query without holder binding",
                ));
            }
        }
        if let Some(algs) = object.get("transaction_data_hashes_alg")
            && strings(algs).is_none_or(|algs| algs.is_empty())
        {
            return Err(invalid(
                "transaction_data_hashes_alg must be a non-empty array of strings",
            ));
        }
        Ok(())
    }

    /// The parameters as JSON values, in the order of §5.1.
    fn parameters(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(client_id) = &self.client_id {
            out.push(("client_id", json!(client_id.to_string())));
        }
        out.push(("response_type", json!("vp_token")));
        out.push(("response_mode", json!(self.response_mode.as_str())));
        if let Some(uri) = &self.response_uri {
            out.push(("response_uri", json!(uri.as_str())));
        }
        if let Some(uri) = &self.redirect_uri {
            out.push(("redirect_uri", json!(uri.as_str())));
        }
        out.push(("nonce", json!(self.nonce)));
        if let Some(state) = &self.state {
            out.push(("state", json!(state)));
        }
        out.push(("dcql_query", self.dcql_query.to_json()));
        if let Some(metadata) = &self.client_metadata {
            out.push(("client_metadata", metadata.to_json()));
        }
        if let Some(entries) = &self.transaction_data {
            out.push(("transaction_data", json!(entries)));
        }
        if let Some(origins) = &self.expected_origins {
            out.push(("expected_origins", json!(origins)));
        }
        out
    }

    /// The request as query parameters (an unsigned request passed by value): strings as they
    /// are, JSON objects and arrays as their JSON text. Validates first.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`].
    pub fn to_query_pairs(&self) -> Result<Vec<(String, String)>, RequestError> {
        self.validate()?;
        Ok(self
            .parameters()
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (name.to_owned(), text)
            })
            .collect())
    }

    /// The request as the query of a URL, form-encoded, e.g. after `openid4vp://?`.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`].
    pub fn to_query_string(&self) -> Result<String, RequestError> {
        let pairs = self.to_query_pairs()?;
        Ok(url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish())
    }

    /// The claims of the Request Object (§5, RFC 9101) to sign with the header
    /// `{"typ": "oauth-authz-req+jwt"}` ([`REQUEST_OBJECT_TYP`]): every parameter as JSON,
    /// `aud` (`audience`, the wallet's `issuer` when its metadata was discovered, or
    /// [`SELF_ISSUED_AUDIENCE`] for a wallet known by its static metadata) and, when the wallet
    /// fetched the request with `request_uri_method=post` and sent one, its `wallet_nonce`.
    /// Validates first.
    ///
    /// # Errors
    ///
    /// As [`Self::validate`]; [`RequestError::UnsignedClientId`] for a `redirect_uri:` client,
    /// whose requests must not be signed, and [`RequestError::MissingParameter`] for a signed
    /// request over the Digital Credentials API without `client_id` or `expected_origins`.
    pub fn to_request_object_claims(
        &self,
        audience: Option<&str>,
        wallet_nonce: Option<&str>,
    ) -> Result<Value, RequestError> {
        self.validate()?;
        match &self.client_id {
            Some(ClientId::RedirectUri(_)) => return Err(RequestError::UnsignedClientId),
            None => return Err(RequestError::MissingParameter("client_id")),
            Some(_) => {}
        }
        if self.response_mode.is_dc_api() && self.expected_origins.is_none() {
            return Err(RequestError::MissingParameter("expected_origins"));
        }
        let mut claims: Map<String, Value> = self
            .parameters()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        claims.insert(
            "aud".to_owned(),
            json!(audience.unwrap_or(SELF_ISSUED_AUDIENCE)),
        );
        if let Some(wallet_nonce) = wallet_nonce {
            claims.insert("wallet_nonce".to_owned(), json!(wallet_nonce));
        }
        Ok(Value::Object(claims))
    }

    /// The query parameters that pass a signed request by reference (§5, RFC 9101):
    /// `client_id`, `request_uri` and, when not the default `get`, `request_uri_method`.
    ///
    /// # Errors
    ///
    /// [`RequestError::MissingParameter`] when the request has no `client_id`.
    pub fn reference_query_pairs(
        &self,
        request_uri: &Url,
        method: RequestUriMethod,
    ) -> Result<Vec<(String, String)>, RequestError> {
        let client_id = self
            .client_id
            .as_ref()
            .ok_or(RequestError::MissingParameter("client_id"))?;
        let mut pairs = vec![
            ("client_id".to_owned(), client_id.to_string()),
            ("request_uri".to_owned(), request_uri.to_string()),
        ];
        if method != RequestUriMethod::Get {
            pairs.push(("request_uri_method".to_owned(), method.as_str().to_owned()));
        }
        Ok(pairs)
    }

    /// Reads a request passed by value as query parameters (JSON parameters as their JSON
    /// text), and validates it. Unknown parameters are ignored.
    ///
    /// # Errors
    ///
    /// [`RequestError::DuplicateParameter`] for a parameter given twice, otherwise as
    /// [`Self::from_parameters`].
    pub fn from_query_pairs<'a, I>(pairs: I) -> Result<Self, RequestError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut parameters = Map::new();
        for (name, value) in pairs {
            if parameters.contains_key(name) {
                return Err(RequestError::DuplicateParameter(name.to_owned()));
            }
            let value = if JSON_PARAMETERS.contains(&name) {
                serde_json::from_str(value).map_err(|_| RequestError::InvalidParameter {
                    name: static_name(name),
                    reason: "is not JSON",
                })?
            } else {
                Value::String(value.to_owned())
            };
            parameters.insert(name.to_owned(), value);
        }
        Self::from_parameters(&parameters)
    }

    /// Reads a request from its parameters as JSON (the claims of a Request Object, or the
    /// decoded query parameters), and validates it. Unknown parameters are ignored.
    ///
    /// # Errors
    ///
    /// [`RequestError::UnsupportedResponseType`] unless `response_type` is `vp_token`,
    /// [`RequestError::MissingParameter`] or [`RequestError::InvalidParameter`] for a missing
    /// or mistyped parameter, [`RequestError::Dcql`] for a refused query, then as
    /// [`Self::validate`].
    pub fn from_parameters(parameters: &Map<String, Value>) -> Result<Self, RequestError> {
        let text = |name: &'static str| -> Result<Option<&str>, RequestError> {
            match parameters.get(name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(RequestError::InvalidParameter {
                    name,
                    reason: "must be a string",
                }),
            }
        };
        let url = |name: &'static str| -> Result<Option<Url>, RequestError> {
            text(name)?
                .map(|uri| {
                    Url::parse(uri).map_err(|_| RequestError::InvalidParameter {
                        name,
                        reason: "must be an absolute URI",
                    })
                })
                .transpose()
        };
        match text("response_type")? {
            Some("vp_token") => {}
            Some(other) => return Err(RequestError::UnsupportedResponseType(other.to_owned())),
            None => return Err(RequestError::MissingParameter("response_type")),
        }
        if parameters.contains_key("scope") {
            return Err(RequestError::InvalidParameter {
                name: "scope",
                reason: "is not supported: the query goes in dcql_query",
            });
        }
        let response_mode = ResponseMode::parse(
            text("response_mode")?.ok_or(RequestError::MissingParameter("response_mode"))?,
        )?;
        let dcql_query = DcqlQuery::from_json(
            parameters
                .get("dcql_query")
                .ok_or(RequestError::MissingParameter("dcql_query"))?,
        )?;
        let string_list = |name: &'static str| -> Result<Option<Vec<String>>, RequestError> {
            parameters
                .get(name)
                .map(|value| {
                    strings(value).ok_or(RequestError::InvalidParameter {
                        name,
                        reason: "must be an array of strings",
                    })
                })
                .transpose()
        };
        let request = Self {
            client_id: text("client_id")?.map(ClientId::parse).transpose()?,
            response_mode,
            response_uri: url("response_uri")?,
            redirect_uri: url("redirect_uri")?,
            nonce: text("nonce")?
                .ok_or(RequestError::MissingParameter("nonce"))?
                .to_owned(),
            state: text("state")?.map(str::to_owned),
            dcql_query,
            client_metadata: parameters
                .get("client_metadata")
                .map(ClientMetadata::from_json)
                .transpose()?,
            transaction_data: string_list("transaction_data")?,
            expected_origins: string_list("expected_origins")?,
        };
        request.validate()?;
        Ok(request)
    }
}

/// An Authorization Request refused by [`AuthorizationRequest::validate`] or while reading one.
/// A wallet answers most with `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A required parameter is missing.
    #[error("the request needs {0}")]
    MissingParameter(&'static str),
    /// A parameter is present where the response mode or the rest of the request forbids it.
    #[error("{name} is not allowed with response_mode {}", mode.as_str())]
    ForbiddenParameter {
        /// The parameter.
        name: &'static str,
        /// The response mode.
        mode: ResponseMode,
    },
    /// A parameter appears twice.
    #[error("the parameter {0} appears more than once")]
    DuplicateParameter(String),
    /// A parameter has the wrong type or form.
    #[error("{name} {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `response_type` is not `vp_token`.
    #[error("response_type {0:?} is not supported; only vp_token is")]
    UnsupportedResponseType(String),
    /// `response_mode` is not one of OpenID4VP's.
    #[error("response_mode {0:?} is not supported")]
    UnsupportedResponseMode(String),
    /// `request_uri_method` is neither `get` nor `post` (`invalid_request_uri_method`).
    #[error("request_uri_method {0:?} is neither get nor post")]
    InvalidRequestUriMethod(String),
    /// The `client_id` cannot be read.
    #[error("client_id {client_id:?} is invalid: {reason}")]
    InvalidClientId {
        /// The refused identifier.
        client_id: String,
        /// Why.
        reason: &'static str,
    },
    /// The `client_id` does not agree with the rest of the request.
    #[error("{0}")]
    ClientIdMismatch(&'static str),
    /// `client_metadata` was sent for a pre-registered client (`invalid_client`).
    #[error("client_metadata is not allowed for a pre-registered client")]
    ClientMetadataNotAllowed,
    /// An encrypted response mode without encryption keys in `client_metadata.jwks`.
    #[error("an encrypted response mode needs encryption keys in client_metadata.jwks")]
    MissingEncryptionKey,
    /// A `redirect_uri:` client asked to sign its request.
    #[error("requests of a redirect_uri client identifier must not be signed")]
    UnsignedClientId,
    /// A `transaction_data` entry is malformed (`invalid_transaction_data`).
    #[error("transaction_data entry {index}: {reason}")]
    InvalidTransactionData {
        /// The index of the entry.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `dcql_query` is refused.
    #[error(transparent)]
    Dcql(#[from] DcqlError),
}

impl RequestError {
    /// The `error` code a wallet answers this with (§8.5).
    #[must_use]
    pub const fn error_code(&self) -> &'static str {
        match self {
            Self::ClientMetadataNotAllowed => "invalid_client",
            Self::InvalidRequestUriMethod(_) => "invalid_request_uri_method",
            Self::InvalidTransactionData { .. } => "invalid_transaction_data",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            _ => "invalid_request",
        }
    }
}

impl HasKind for RequestError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedResponseType(_) | Self::UnsupportedResponseMode(_) => {
                ErrorKind::Unsupported
            }
            _ => ErrorKind::InvalidInput,
        }
    }
}

fn is_url_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// The static name of a JSON parameter (for errors).
fn static_name(name: &str) -> &'static str {
    JSON_PARAMETERS
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("parameter")
}
