//! Validating a `vp_token` (OpenID4VP 1.0 §8.6, Appendix B) against the request it answers:
//! each presentation verified for its format (SD-JWT VC with its Key Binding JWT, mso_mdoc
//! `DeviceResponse` over the OpenID4VP session transcript), `transaction_data_hashes`, status
//! through a caller-given [`StatusCheck`], and finally the DCQL query's rules over the
//! verified claims ([`DcqlQuery::check_presentations`](crate::dcql::DcqlQuery::check_presentations)).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edk_core::clock::Clock;
use edk_core::encoding::{HashAlg, b64url_decode, b64url_encode};
use edk_core::jose::{JoseError, Jwk, KeyResolver};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{SdJwt, SdJwtError, VerifyOptions};
use edk_core::sd_jwt_vc::{SdJwtVcError, VcVerifyOptions};
use edk_core::{ErrorKind, HasKind};
use edk_mdoc::cbor::cbor_to_json;
use edk_mdoc::{DeviceResponse, SessionTranscript};
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use crate::dcql::{CredentialFormat, CredentialQuery, TrustedAuthorityType};
use crate::error::PresentationError;
use crate::evaluate::Credential;
use crate::request::{AuthorizationRequest, ClientId};
use crate::response::AuthorizationResponse;

/// A `status_list` reference of a credential (Token Status List): the index and the URI of
/// the Status List Token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReference {
    /// `uri`.
    pub uri: String,
    /// `idx`.
    pub idx: u64,
}

/// The status of a credential as its Status List gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialStatus {
    /// `0x00` VALID.
    Valid,
    /// `0x01` INVALID: revoked.
    Invalid,
    /// `0x02` SUSPENDED.
    Suspended,
    /// Any other value (application-specific); refused.
    Other(u8),
}

impl CredentialStatus {
    /// The status of the Status List value `value`.
    #[must_use]
    pub const fn from_value(value: u8) -> Self {
        match value {
            0 => Self::Valid,
            1 => Self::Invalid,
            2 => Self::Suspended,
            other => Self::Other(other),
        }
    }
}

/// Looks up the status of a credential (the verifier plugs its Status List cache in here).
#[async_trait]
pub trait StatusCheck: fmt::Debug + Send + Sync {
    /// The status of the credential at `reference`.
    ///
    /// # Errors
    ///
    /// Any failure to fetch or verify the Status List; the presentation is then refused with
    /// [`ValidationError::StatusUnavailable`].
    async fn status(
        &self,
        reference: &StatusReference,
    ) -> Result<CredentialStatus, Box<dyn std::error::Error + Send + Sync>>;
}

/// A presentation that verified: what DCQL sees of it, and more for the caller.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedPresentation {
    /// The credential: format, type, verified claims, holder binding.
    pub credential: Credential,
    /// The issuer (`iss` of an SD-JWT VC), when known.
    pub issuer: Option<String>,
    /// The status reference checked, when the credential has one.
    pub status: Option<StatusReference>,
}

/// A response whose presentations verified and answer the query.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedResponse {
    /// Per credential query id, the verified presentations.
    pub presentations: BTreeMap<String, Vec<VerifiedPresentation>>,
}

impl VerifiedResponse {
    /// The verified claims of each credential query (for an mdoc, its name spaces as an
    /// object; several presentations give several entries).
    #[must_use]
    pub fn claims(&self) -> BTreeMap<String, Vec<Value>> {
        self.presentations
            .iter()
            .map(|(id, presentations)| {
                let claims = presentations
                    .iter()
                    .map(|presentation| match &presentation.credential.claims {
                        crate::evaluate::CredentialClaims::Json(json) => json.clone(),
                        crate::evaluate::CredentialClaims::Mdoc(namespaces) => {
                            Value::Object(namespaces.clone())
                        }
                    })
                    .collect();
                (id.clone(), claims)
            })
            .collect()
    }
}

/// A response refused by [`PresentationVerifier::verify`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The wallet answered with an error.
    #[error("the wallet answered with error {error:?}")]
    WalletError {
        /// `error`.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The request asked for an encrypted response (`direct_post.jwt`, `dc_api.jwt`) and the
    /// presentations came in the clear.
    #[error("the request asked for an encrypted response and the vp_token came unencrypted")]
    ResponseNotEncrypted,
    /// The response's `state` is not the request's: a response to another request.
    #[error("the response's state is not the request's")]
    StateMismatch,
    /// The request has no `client_id` to bind presentations to.
    #[error("the request has no client_id to bind presentations to")]
    NoClientId,
    /// The response names a credential query the request does not have.
    #[error("the vp_token answers unknown credential query {0:?}")]
    UnknownCredentialQuery(String),
    /// A presentation has a form its format does not allow (not a string, bad encoding).
    #[error("a presentation for credential query {id:?} is malformed: {reason}")]
    Malformed {
        /// The credential query.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A format this library does not verify.
    #[error("presentations of format {0:?} are not supported")]
    UnsupportedFormat(String),
    /// The issuer's signature or key is refused (an unknown or untrusted issuer, a bad
    /// signature).
    #[error("the issuer of a presentation for credential query {id:?} is not trusted")]
    UntrustedIssuer {
        /// The credential query.
        id: String,
        /// Why.
        #[source]
        source: JoseError,
    },
    /// The Key Binding JWT's signature does not verify with the credential's `cnf` key.
    #[error("the key binding of a presentation for credential query {id:?} does not verify")]
    InvalidKeyBinding {
        /// The credential query.
        id: String,
        /// Why.
        #[source]
        source: SdJwtError,
    },
    /// The query requires holder binding and the presentation has no Key Binding JWT.
    #[error("a presentation for credential query {0:?} lacks its key binding")]
    KeyBindingMissing(String),
    /// The Key Binding JWT's `nonce` is not the request's.
    #[error("a presentation for credential query {0:?} is bound to another nonce")]
    NonceMismatch(String),
    /// The Key Binding JWT's `aud` is not the request's `client_id` (with its prefix).
    #[error("a presentation for credential query {0:?} is bound to another audience")]
    AudienceMismatch(String),
    /// The Key Binding JWT's `sd_hash` is not the hash of the presentation.
    #[error("a presentation for credential query {0:?} has a wrong sd_hash")]
    SdHashMismatch(String),
    /// The Key Binding JWT's `iat` is outside the freshness window.
    #[error("the key binding of a presentation for credential query {0:?} is not fresh")]
    StaleKeyBinding(String),
    /// The SD-JWT VC is refused for another reason (disclosures, claims, type).
    #[error("an SD-JWT VC for credential query {id:?} is refused")]
    SdJwtVc {
        /// The credential query.
        id: String,
        /// Why.
        #[source]
        source: SdJwtVcError,
    },
    /// The mdoc `DeviceResponse` is refused (issuer chain, digests, device signature over
    /// the session transcript, validity).
    #[error("an mdoc for credential query {id:?} is refused")]
    Mdoc {
        /// The credential query.
        id: String,
        /// Why.
        #[source]
        source: edk_mdoc::Error,
    },
    /// No mdoc verifier (IACA trust anchors) is configured.
    #[error("no mdoc verifier is configured")]
    NoMdocVerifier,
    /// `transaction_data_hashes` are missing or do not match the request's
    /// `transaction_data`.
    #[error("the transaction_data_hashes of a presentation for credential query {id:?} {reason}")]
    TransactionData {
        /// The credential query.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The credential is revoked.
    #[error("a credential for credential query {0:?} is revoked")]
    Revoked(String),
    /// The credential is suspended.
    #[error("a credential for credential query {0:?} is suspended")]
    Suspended(String),
    /// The Status List gives a status other than valid, revoked or suspended.
    #[error("a credential for credential query {id:?} has status {status:#04x}")]
    OtherStatus {
        /// The credential query.
        id: String,
        /// The status value.
        status: u8,
    },
    /// The status could not be checked (no [`StatusCheck`], or it failed).
    #[error("the status of a credential for credential query {0:?} cannot be checked")]
    StatusUnavailable(String),
    /// The verified presentations do not answer the DCQL query.
    #[error(transparent)]
    Dcql(#[from] PresentationError),
}

impl HasKind for ValidationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedFormat(_) => ErrorKind::Unsupported,
            Self::NoMdocVerifier | Self::StatusUnavailable(_) => ErrorKind::Unavailable,
            Self::UntrustedIssuer { .. }
            | Self::Revoked(_)
            | Self::Suspended(_)
            | Self::OtherStatus { .. } => ErrorKind::Forbidden,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Verifies the presentations of a response for the request it answers.
pub struct PresentationVerifier {
    issuers: Arc<dyn KeyResolver>,
    mdoc: Option<Arc<edk_mdoc::Verifier>>,
    status: Option<Arc<dyn StatusCheck>>,
    clock: Arc<dyn Clock>,
    max_age: i64,
    leeway: i64,
    key_binding_when_bound: bool,
    limits: Limits,
}

impl fmt::Debug for PresentationVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentationVerifier")
            .field("issuers", &self.issuers)
            .field("mdoc", &self.mdoc.is_some())
            .field("status", &self.status.is_some())
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl PresentationVerifier {
    /// A verifier finding SD-JWT VC issuer keys with `issuers` (an
    /// [`X5cResolver`](edk_core::x5c::X5cResolver) over trust anchors, a DID resolver, keys
    /// from JWT VC Issuer Metadata), reading time from `clock`; Key Binding JWTs at most 300
    /// seconds old with 60 seconds of clock skew; no mdoc verifier and no status check.
    #[must_use]
    pub fn new(issuers: Arc<dyn KeyResolver>, clock: Arc<dyn Clock>) -> Self {
        Self {
            issuers,
            mdoc: None,
            status: None,
            clock,
            max_age: 300,
            leeway: 60,
            key_binding_when_bound: false,
            limits: Limits::DEFAULT,
        }
    }

    /// The verifier requiring a Key Binding JWT for every SD-JWT VC that has a holder key
    /// (`cnf`), even for a credential query that waives holder binding (HAIP §6.1).
    #[must_use]
    pub const fn requiring_key_binding_when_bound(mut self) -> Self {
        self.key_binding_when_bound = true;
        self
    }

    /// The verifier verifying mdocs with `verifier` (its IACA trust anchors).
    #[must_use]
    pub fn with_mdoc_verifier(mut self, verifier: Arc<edk_mdoc::Verifier>) -> Self {
        self.mdoc = Some(verifier);
        self
    }

    /// The verifier checking status references with `status`. Without one, a credential that
    /// carries a status is refused ([`ValidationError::StatusUnavailable`]).
    #[must_use]
    pub fn with_status_check(mut self, status: Arc<dyn StatusCheck>) -> Self {
        self.status = Some(status);
        self
    }

    /// The verifier accepting Key Binding JWTs at most `max_age` seconds old, with `leeway`
    /// seconds of clock skew.
    #[must_use]
    pub const fn with_freshness(mut self, max_age: i64, leeway: i64) -> Self {
        self.max_age = max_age;
        self.leeway = leeway;
        self
    }

    /// Verifies `response` as the answer to `request`: the `state` must be the request's;
    /// every presentation is verified for its format, bound to the request's full `client_id`
    /// and `nonce` (and, for mdocs, to the response URI and `encryption_key`, the verifier's
    /// JWK the response was encrypted to, from
    /// [`AuthorizationResponse::from_encrypted_form`]); its status checked; then the verified
    /// credentials must answer the DCQL query.
    ///
    /// # Errors
    ///
    /// [`ValidationError::WalletError`] for an error response,
    /// [`ValidationError::NoClientId`], [`ValidationError::ResponseNotEncrypted`] for a
    /// `vp_token` in the clear where the request asked for encryption (`encryption_key` is
    /// `None`), [`ValidationError::StateMismatch`], then each
    /// presentation's error, then [`ValidationError::Dcql`].
    pub async fn verify(
        &self,
        request: &AuthorizationRequest,
        response: &AuthorizationResponse,
        encryption_key: Option<&Jwk>,
    ) -> Result<VerifiedResponse, ValidationError> {
        let binding = Binding::redirect(request, encryption_key)?;
        self.verify_bound(request, response, &binding).await
    }

    /// Verifies `response` as the answer, through the Digital Credentials API (Appendix A), to
    /// `request` made from the web `origin` (as the platform reports it, e.g.
    /// `https://verifier.example`): presentations are bound to the audience `origin:<origin>`
    /// and, for mdocs, to the `OpenID4VPDCAPIHandover` transcript of `origin`, the nonce and
    /// `encryption_key`. Otherwise as [`Self::verify`].
    ///
    /// # Errors
    ///
    /// As [`Self::verify`].
    pub async fn verify_dc_api(
        &self,
        request: &AuthorizationRequest,
        response: &AuthorizationResponse,
        origin: &str,
        encryption_key: Option<&Jwk>,
    ) -> Result<VerifiedResponse, ValidationError> {
        let binding = Binding {
            audience: format!("origin:{origin}"),
            transcript: SessionTranscript::openid4vp_dc_api(
                origin,
                &request.nonce,
                thumbprint(encryption_key).as_deref(),
            ),
            encrypted: encryption_key.is_some(),
        };
        self.verify_bound(request, response, &binding).await
    }

    async fn verify_bound(
        &self,
        request: &AuthorizationRequest,
        response: &AuthorizationResponse,
        binding: &Binding,
    ) -> Result<VerifiedResponse, ValidationError> {
        let vp_token = match response {
            AuthorizationResponse::Error {
                error,
                error_description,
                ..
            } => {
                return Err(ValidationError::WalletError {
                    error: error.clone(),
                    description: error_description.clone(),
                });
            }
            AuthorizationResponse::VpToken { vp_token, state } => {
                if request.response_mode.is_encrypted() && !binding.encrypted {
                    return Err(ValidationError::ResponseNotEncrypted);
                }
                if *state != request.state {
                    return Err(ValidationError::StateMismatch);
                }
                vp_token
            }
        };
        let mut presentations = BTreeMap::new();
        for (id, entries) in vp_token {
            let query = request
                .dcql_query
                .credential(id)
                .ok_or_else(|| ValidationError::UnknownCredentialQuery(id.clone()))?;
            let mut verified = Vec::with_capacity(entries.len());
            for entry in entries {
                let presentation = match &query.format {
                    CredentialFormat::SdJwtVc => {
                        self.verify_sd_jwt_vc(request, binding, query, entry)
                            .await?
                    }
                    CredentialFormat::MsoMdoc => self.verify_mdoc(binding, query, entry).await?,
                    other => {
                        return Err(ValidationError::UnsupportedFormat(
                            other.as_str().to_owned(),
                        ));
                    }
                };
                verified.extend(presentation);
            }
            presentations.insert(id.clone(), verified);
        }
        let credentials: BTreeMap<String, Vec<Credential>> = presentations
            .iter()
            .map(|(id, verified): (&String, &Vec<VerifiedPresentation>)| {
                (
                    id.clone(),
                    verified
                        .iter()
                        .map(|presentation| presentation.credential.clone())
                        .collect(),
                )
            })
            .collect();
        request.dcql_query.check_presentations(&credentials)?;
        Ok(VerifiedResponse { presentations })
    }

    async fn verify_sd_jwt_vc(
        &self,
        request: &AuthorizationRequest,
        binding: &Binding,
        query: &CredentialQuery,
        entry: &Value,
    ) -> Result<Vec<VerifiedPresentation>, ValidationError> {
        let id = &query.id;
        let text = entry.as_str().ok_or_else(|| ValidationError::Malformed {
            id: id.clone(),
            reason: "an SD-JWT VC presentation must be a string",
        })?;
        let sd_jwt = SdJwt::parse(text, &self.limits).map_err(|err| ValidationError::SdJwtVc {
            id: id.clone(),
            source: SdJwtVcError::SdJwt(err),
        })?;
        let bound = sd_jwt.key_binding_jwt().is_some();
        if query.require_cryptographic_holder_binding && !bound {
            return Err(ValidationError::KeyBindingMissing(id.clone()));
        }
        let mut sd_options = VerifyOptions::default().with_limits(self.limits);
        if bound {
            sd_options = sd_options
                .with_key_binding(binding.audience.clone(), request.nonce.clone())
                .with_key_binding_window(self.max_age, self.leeway);
        }
        let options = VcVerifyOptions::default().with_sd_jwt_options(sd_options);
        let verified = sd_jwt
            .verify_vc(self.issuers.as_ref(), &options, self.clock.unix_seconds())
            .await
            .map_err(|err| sd_jwt_error(id, err))?;
        if !bound && self.key_binding_when_bound && verified.claims().contains_key("cnf") {
            return Err(ValidationError::KeyBindingMissing(id.clone()));
        }
        if let Some(entries) = &request.transaction_data {
            let kb = verified.sd_jwt().key_binding().cloned().unwrap_or_default();
            check_transaction_data(id, entries, &kb)?;
        }
        let status = status_of_json(verified.claims());
        self.check_status(id, status.as_ref()).await?;
        let claims = verified.claims().clone();
        let issuer = verified.issuer().map(str::to_owned);
        let chain: Vec<Vec<u8>> = verified
            .sd_jwt()
            .header()
            .x5c
            .iter()
            .flatten()
            .filter_map(|der| STANDARD.decode(der).ok())
            .collect();
        let credential = with_authorities(
            Credential::sd_jwt_vc(verified.vct(), Value::Object(claims)).with_holder_binding(bound),
            &chain,
        );
        Ok(vec![VerifiedPresentation {
            credential,
            issuer,
            status,
        }])
    }

    async fn verify_mdoc(
        &self,
        binding: &Binding,
        query: &CredentialQuery,
        entry: &Value,
    ) -> Result<Vec<VerifiedPresentation>, ValidationError> {
        let id = &query.id;
        let verifier = self.mdoc.as_ref().ok_or(ValidationError::NoMdocVerifier)?;
        let text = entry.as_str().ok_or_else(|| ValidationError::Malformed {
            id: id.clone(),
            reason: "an mso_mdoc presentation must be a string",
        })?;
        let bytes = b64url_decode(text).map_err(|_| ValidationError::Malformed {
            id: id.clone(),
            reason: "an mso_mdoc presentation must be a base64url DeviceResponse",
        })?;
        let mdoc_error = |source| ValidationError::Mdoc {
            id: id.clone(),
            source,
        };
        let device_response =
            DeviceResponse::from_cbor(&bytes, verifier.limits()).map_err(mdoc_error)?;
        let documents = verifier
            .verify_device_response(&device_response, &binding.transcript)
            .await
            .map_err(mdoc_error)?;
        let mut out = Vec::with_capacity(documents.len());
        for document in documents {
            let status = document
                .mso
                .status
                .as_ref()
                .map(|reference| StatusReference {
                    uri: reference.uri.clone(),
                    idx: reference.idx,
                });
            self.check_status(id, status.as_ref()).await?;
            let namespaces: Map<String, Value> = document
                .name_spaces
                .iter()
                .map(|(namespace, elements)| {
                    let elements: Map<String, Value> = elements
                        .iter()
                        .map(|(name, value)| (name.clone(), cbor_to_json(value)))
                        .collect();
                    (namespace.clone(), Value::Object(elements))
                })
                .collect();
            out.push(VerifiedPresentation {
                credential: with_authorities(
                    Credential::mdoc(document.doc_type.clone(), namespaces),
                    std::slice::from_ref(&document.document_signer),
                ),
                issuer: None,
                status,
            });
        }
        Ok(out)
    }

    async fn check_status(
        &self,
        id: &str,
        reference: Option<&StatusReference>,
    ) -> Result<(), ValidationError> {
        let Some(reference) = reference else {
            return Ok(());
        };
        let check = self
            .status
            .as_ref()
            .ok_or_else(|| ValidationError::StatusUnavailable(id.to_owned()))?;
        match check.status(reference).await {
            Ok(CredentialStatus::Valid) => Ok(()),
            Ok(CredentialStatus::Invalid) => Err(ValidationError::Revoked(id.to_owned())),
            Ok(CredentialStatus::Suspended) => Err(ValidationError::Suspended(id.to_owned())),
            Ok(CredentialStatus::Other(status)) => Err(ValidationError::OtherStatus {
                id: id.to_owned(),
                status,
            }),
            Err(_) => Err(ValidationError::StatusUnavailable(id.to_owned())),
        }
    }
}

/// What presentations must be bound to: the KB-JWT audience and the mdoc session transcript.
struct Binding {
    audience: String,
    transcript: SessionTranscript,
    encrypted: bool,
}

impl Binding {
    fn redirect(
        request: &AuthorizationRequest,
        encryption_key: Option<&Jwk>,
    ) -> Result<Self, ValidationError> {
        let client_id = request
            .client_id
            .as_ref()
            .ok_or(ValidationError::NoClientId)?;
        Ok(Self {
            audience: client_id.to_string(),
            transcript: session_transcript(request, encryption_key)?,
            encrypted: encryption_key.is_some(),
        })
    }
}

/// The raw bytes of the RFC 7638 SHA-256 thumbprint of `jwk`.
fn thumbprint(jwk: Option<&Jwk>) -> Option<Vec<u8>> {
    jwk.map(|jwk| b64url_decode(jwk.thumbprint()).unwrap_or_default())
}

/// The mdoc `SessionTranscript` of a presentation answering `request` outside the Digital
/// Credentials API (Appendix B.2.6.1): the `OpenID4VPHandover` over the full `client_id`, the
/// `nonce`, the SHA-256 thumbprint of `encryption_key` (the verifier's JWK the response is
/// encrypted to, `None` for an unencrypted response) and the `response_uri` (or the
/// `redirect_uri`, or the URI a `redirect_uri:` client identifier names). A wallet signs its
/// `DeviceResponse` over it; [`PresentationVerifier::verify`] checks against it.
///
/// # Errors
///
/// [`ValidationError::NoClientId`] when the request has no `client_id`.
pub fn session_transcript(
    request: &AuthorizationRequest,
    encryption_key: Option<&Jwk>,
) -> Result<SessionTranscript, ValidationError> {
    let client_id = request
        .client_id
        .as_ref()
        .ok_or(ValidationError::NoClientId)?;
    let response_uri = match (&request.response_uri, &request.redirect_uri, client_id) {
        (Some(uri), _, _) | (None, Some(uri), _) => uri.as_str(),
        (None, None, ClientId::RedirectUri(uri)) => uri.as_str(),
        (None, None, _) => "",
    };
    Ok(SessionTranscript::openid4vp(
        &client_id.to_string(),
        &request.nonce,
        thumbprint(encryption_key).as_deref(),
        response_uri,
    ))
}

/// `credential` with the `aki` authority of its issuer's certificate `chain` (DER): the
/// base64url KeyIdentifier of the AuthorityKeyIdentifier of each certificate (DCQL §6.1.1.1),
/// for `trusted_authorities`.
fn with_authorities(credential: Credential, chain: &[Vec<u8>]) -> Credential {
    let values: Vec<String> = chain
        .iter()
        .filter_map(|der| {
            let cert = Certificate::from_der(der).ok()?;
            let (_, aki) = cert
                .tbs_certificate()
                .get_extension::<AuthorityKeyIdentifier>()
                .ok()??;
            Some(b64url_encode(aki.key_identifier?.as_bytes()))
        })
        .collect();
    if values.is_empty() {
        credential
    } else {
        credential.with_authority(TrustedAuthorityType::Aki, values)
    }
}

/// The `status.status_list` reference of an SD-JWT VC's claims.
fn status_of_json(claims: &Map<String, Value>) -> Option<StatusReference> {
    let list = claims.get("status")?.get("status_list")?;
    Some(StatusReference {
        uri: list.get("uri")?.as_str()?.to_owned(),
        idx: list.get("idx")?.as_u64()?,
    })
}

/// Maps edk-core's SD-JWT VC errors to the specific validation errors.
fn sd_jwt_error(id: &str, err: SdJwtVcError) -> ValidationError {
    let id = id.to_owned();
    match err {
        SdJwtVcError::SdJwt(inner) => match inner {
            SdJwtError::IssuerJwt(source) => ValidationError::UntrustedIssuer { id, source },
            SdJwtError::NonceMismatch => ValidationError::NonceMismatch(id),
            SdJwtError::AudienceMismatch => ValidationError::AudienceMismatch(id),
            SdJwtError::SdHashMismatch => ValidationError::SdHashMismatch(id),
            SdJwtError::KeyBindingExpired => ValidationError::StaleKeyBinding(id),
            SdJwtError::KeyBindingRequired => ValidationError::KeyBindingMissing(id),
            source @ (SdJwtError::KeyBinding(_) | SdJwtError::MissingHolderKey) => {
                ValidationError::InvalidKeyBinding { id, source }
            }
            other => ValidationError::SdJwtVc {
                id,
                source: SdJwtVcError::SdJwt(other),
            },
        },
        other => ValidationError::SdJwtVc { id, source: other },
    }
}

/// Checks the KB-JWT's `transaction_data_hashes` (Appendix B.3.3): one hash, with the
/// `transaction_data_hashes_alg` of the KB-JWT (default `sha-256`, and one the entry allows),
/// of each `transaction_data` entry whose `credential_ids` name this credential query, over
/// the base64url string as the request carried it.
fn check_transaction_data(
    id: &str,
    entries: &[String],
    kb: &Map<String, Value>,
) -> Result<(), ValidationError> {
    let fail = |reason| ValidationError::TransactionData {
        id: id.to_owned(),
        reason,
    };
    let mut relevant = Vec::new();
    for entry in entries {
        let decoded = b64url_decode(entry)
            .map_err(|_| fail("cannot be checked: an entry is not base64url"))?;
        let object: Map<String, Value> = serde_json::from_slice(&decoded)
            .map_err(|_| fail("cannot be checked: an entry is not a JSON object"))?;
        let names_this = object
            .get("credential_ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|named| named.as_str() == Some(id)));
        if names_this {
            let allowed: Vec<String> = object
                .get("transaction_data_hashes_alg")
                .and_then(Value::as_array)
                .map(|algs| {
                    algs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_else(|| vec!["sha-256".to_owned()]);
            relevant.push((entry, allowed));
        }
    }
    if relevant.is_empty() {
        return Ok(());
    }
    let alg_name = match kb.get("transaction_data_hashes_alg") {
        None => "sha-256",
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err(fail("has a malformed transaction_data_hashes_alg")),
    };
    let alg = HashAlg::from_iana(alg_name).ok_or_else(|| fail("use an unsupported hash"))?;
    let hashes: Vec<&str> = match kb.get("transaction_data_hashes") {
        Some(Value::Array(hashes)) => hashes.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(fail("are malformed")),
        None => return Err(fail("are missing")),
    };
    for (entry, allowed) in relevant {
        if !allowed.iter().any(|name| name == alg_name) {
            return Err(fail("use a hash the transaction data does not allow"));
        }
        let expected = alg.digest_b64url(entry.as_bytes());
        if !hashes.contains(&expected.as_str()) {
            return Err(fail("do not cover every transaction_data entry"));
        }
    }
    Ok(())
}
