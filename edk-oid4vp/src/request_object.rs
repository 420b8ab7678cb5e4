//! Signed Request Objects (OpenID4VP 1.0 §5, RFC 9101): the verifier signs an
//! [`AuthorizationRequest`] with [`sign_request_object`], the header carrying what its client
//! identifier prefix needs; the wallet reads it back with [`RequestObjectVerifier::verify`],
//! which checks the signature with the key the prefix designates (§5.9.3).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edk_core::clock::Clock;
use edk_core::encoding::{HashAlg, b64url_encode};
use edk_core::jose::jwt::numeric_date;
use edk_core::jose::{Header, JoseError, Jws, KeyResolver, Signer, VerifyPolicy, jws};
use edk_core::limits::Limits;
use edk_core::x5c::X5cResolver;
use edk_core::{ErrorKind, HasKind};
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::attestation::VerifierAttestation;
use crate::request::{AuthorizationRequest, ClientId, REQUEST_OBJECT_TYP, RequestError};

/// What the JWS header of a Request Object carries to designate the signing key.
#[derive(Clone, PartialEq, Eq)]
pub enum RequestObjectKey {
    /// `x5c`: the certificate chain (DER, leaf first) whose leaf holds the signing key; for
    /// `x509_san_dns:` and `x509_hash:` clients.
    X5c(Vec<Vec<u8>>),
    /// `kid`: the DID URL of the verification method; for `decentralized_identifier:`
    /// clients.
    Kid(String),
    /// `jwt`: the Verifier Attestation JWT whose `cnf.jwk` is the signing key; for
    /// `verifier_attestation:` clients.
    VerifierAttestation(String),
}

impl fmt::Debug for RequestObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X5c(chain) => f.debug_tuple("X5c").field(&chain.len()).finish(),
            Self::Kid(kid) => f.debug_tuple("Kid").field(kid).finish(),
            Self::VerifierAttestation(_) => f.debug_tuple("VerifierAttestation").finish(),
        }
    }
}

/// A Request Object refused, while signing it or, by a wallet, while verifying it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestObjectError {
    /// The request itself is refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The token cannot be parsed, or its signature does not verify.
    #[error("the request object's JWS is refused")]
    Jws(#[source] JoseError),
    /// The header's `typ` is not `oauth-authz-req+jwt`.
    #[error("the request object's typ must be oauth-authz-req+jwt")]
    WrongType,
    /// The client identifier prefix cannot sign requests (`redirect_uri:`), or a request of
    /// such a client arrived signed.
    #[error("requests of a redirect_uri client must not be signed")]
    SignedRedirectUri,
    /// The client identifier prefix is not one this library signs or verifies.
    #[error("client identifier prefix {0:?} is not supported for signed requests")]
    UnsupportedPrefix(String),
    /// The key reference does not fit the prefix (`x5c` for `x509_*`, `kid` for
    /// `decentralized_identifier:`), or the header lacks it.
    #[error("the {0} prefix needs the signing key named by {1}")]
    KeyReference(&'static str, &'static str),
    /// A `decentralized_identifier:` request's `kid` is not a DID URL of the client's DID.
    #[error("the kid {0:?} is not a verification method of the client's DID")]
    KidNotOfClient(String),
    /// The leaf certificate has no dNSName subjectAltName equal to the `x509_san_dns:` value.
    #[error("the x5c leaf certificate has no dNSName SAN {0:?}")]
    SanMismatch(String),
    /// The SHA-256 of the leaf certificate is not the `x509_hash:` value.
    #[error("the SHA-256 hash of the x5c leaf certificate is not the x509_hash value")]
    HashMismatch,
    /// The `x5c` chain breaks HAIP's rules: it carries a trust anchor, or its leaf is
    /// self-signed.
    #[error("{0}")]
    X5cProfile(&'static str),
    /// The certificate chain does not validate to a trust anchor.
    #[error("the x5c chain is not trusted")]
    UntrustedChain(#[source] JoseError),
    /// No key resolver for `decentralized_identifier:` clients was configured.
    #[error("no DID key resolver is configured")]
    NoDidResolver,
    /// The DID's verification method could not be resolved.
    #[error("the DID verification method cannot be resolved")]
    DidResolution(#[source] JoseError),
    /// The `client_id` of the Request Object differs from the `client_id` parameter outside it.
    #[error(
        "the request object's client_id {inner:?} differs from the client_id parameter {outer:?}"
    )]
    ClientIdMismatch {
        /// The `client_id` query parameter.
        outer: String,
        /// The `client_id` claim.
        inner: String,
    },
    /// The `aud` is not this wallet.
    #[error("the request object's aud is not this wallet")]
    WrongAudience,
    /// `exp` is past (or `nbf` in the future).
    #[error("the request object has expired or is not yet valid")]
    Expired,
    /// `wallet_nonce` is not the one the wallet sent.
    #[error("the request object's wallet_nonce is not the one the wallet sent")]
    WalletNonceMismatch,
    /// The payload is not a JSON object, or a claim has the wrong type.
    #[error("the request object's claims are malformed: {0}")]
    Malformed(&'static str),
    /// The Verifier Attestation JWT's `typ` is not `verifier-attestation+jwt`.
    #[error("the verifier attestation's typ must be verifier-attestation+jwt")]
    AttestationType,
    /// The Verifier Attestation JWT cannot be parsed, or lacks a required claim.
    #[error("the verifier attestation is malformed: {0}")]
    AttestationMalformed(&'static str),
    /// No attester is trusted, so no `verifier_attestation:` request is accepted.
    #[error("no verifier attestation issuer is trusted")]
    NoTrustedAttesters,
    /// The attestation's issuer is not a trusted attester, or none of its keys fits.
    #[error("the verifier attestation issuer {issuer:?} is not trusted")]
    UntrustedAttester {
        /// The attestation's `iss`.
        issuer: String,
        /// Why no key was found.
        #[source]
        source: JoseError,
    },
    /// The attester's signature on the attestation does not verify.
    #[error("the verifier attestation's signature does not verify")]
    AttestationSignature(#[source] JoseError),
    /// The attestation's `exp` is past, or its `nbf` or `iat` in the future.
    #[error("the verifier attestation has expired or is not yet valid")]
    AttestationExpired,
    /// The attestation's `sub` is not the client identifier without its prefix.
    #[error("the verifier attestation's sub {sub:?} is not the client identifier {client_id:?}")]
    AttestationSubjectMismatch {
        /// The attestation's `sub`.
        sub: String,
        /// The client identifier without the `verifier_attestation:` prefix.
        client_id: String,
    },
    /// The Request Object is not signed by the attestation's `cnf.jwk`.
    #[error("the request object is not signed by the key of the verifier attestation")]
    NotSignedByAttestedKey(#[source] JoseError),
    /// The request's `response_uri` or `redirect_uri` is not one of the attestation's
    /// `redirect_uris`.
    #[error("{0:?} is not one of the verifier attestation's redirect_uris")]
    UriNotAttested(String),
}

impl RequestObjectError {
    /// The `error` code a wallet answers this with (§8.5).
    #[must_use]
    pub const fn error_code(&self) -> &'static str {
        match self {
            Self::Request(err) => err.error_code(),
            Self::SanMismatch(_)
            | Self::HashMismatch
            | Self::UntrustedChain(_)
            | Self::X5cProfile(_)
            | Self::KidNotOfClient(_)
            | Self::UnsupportedPrefix(_)
            | Self::NoTrustedAttesters
            | Self::UntrustedAttester { .. }
            | Self::AttestationSignature(_)
            | Self::AttestationExpired
            | Self::AttestationSubjectMismatch { .. }
            | Self::NotSignedByAttestedKey(_)
            | Self::UriNotAttested(_) => "invalid_client",
            _ => "invalid_request_object",
        }
    }
}

impl HasKind for RequestObjectError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Request(err) => err.kind(),
            Self::UntrustedChain(_)
            | Self::X5cProfile(_)
            | Self::SanMismatch(_)
            | Self::HashMismatch
            | Self::KidNotOfClient(_)
            | Self::UntrustedAttester { .. }
            | Self::AttestationSignature(_)
            | Self::AttestationExpired
            | Self::AttestationSubjectMismatch { .. }
            | Self::NotSignedByAttestedKey(_)
            | Self::UriNotAttested(_) => ErrorKind::Forbidden,
            Self::UnsupportedPrefix(_) | Self::NoDidResolver | Self::NoTrustedAttesters => {
                ErrorKind::Unsupported
            }
            Self::DidResolution(err) => err.kind(),
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Signs `request` as a Request Object (JWS, `typ` [`REQUEST_OBJECT_TYP`]) with `signer`, the
/// header naming the key as the client identifier prefix needs: `x5c` (`key` =
/// [`RequestObjectKey::X5c`]) for `x509_san_dns:` and `x509_hash:`, `kid` (a DID URL of the
/// client's DID) for `decentralized_identifier:`, `jwt` (the Verifier Attestation JWT,
/// [`RequestObjectKey::VerifierAttestation`], whose `cnf.jwk` must be `signer`'s key) for
/// `verifier_attestation:`. The claims are those of
/// [`AuthorizationRequest::to_request_object_claims`] with `audience` and `wallet_nonce`, plus
/// `iat`, and `exp` when `lifetime` (seconds) is given, read from `clock`.
///
/// The chain's leaf is checked against the client identifier (the dNSName SAN, or the hash),
/// and an attestation's `sub`, validity and `redirect_uris` against the client identifier,
/// `clock` and the request's URIs, so that a verifier cannot publish a request no wallet
/// accepts.
///
/// # Errors
///
/// [`RequestObjectError::Request`] when the request is refused,
/// [`RequestObjectError::SignedRedirectUri`] for a `redirect_uri:` client,
/// [`RequestObjectError::UnsupportedPrefix`] for other prefixes,
/// [`RequestObjectError::KeyReference`] when `key` does not fit the prefix,
/// [`RequestObjectError::KidNotOfClient`], [`RequestObjectError::SanMismatch`],
/// [`RequestObjectError::HashMismatch`], the attestation's errors
/// ([`RequestObjectError::AttestationMalformed`], [`RequestObjectError::AttestationType`],
/// [`RequestObjectError::AttestationSubjectMismatch`],
/// [`RequestObjectError::AttestationExpired`], [`RequestObjectError::UriNotAttested`]), and
/// [`RequestObjectError::Jws`] when signing fails.
pub async fn sign_request_object(
    request: &AuthorizationRequest,
    key: &RequestObjectKey,
    signer: &(dyn Signer + '_),
    clock: &dyn Clock,
    options: &SignOptions<'_>,
) -> Result<String, RequestObjectError> {
    let client_id = request
        .client_id
        .as_ref()
        .ok_or(RequestError::MissingParameter("client_id"))?;
    let mut header = Header::new(signer.algorithm()).with_typ(REQUEST_OBJECT_TYP);
    match (client_id, key) {
        (ClientId::RedirectUri(_), _) => return Err(RequestObjectError::SignedRedirectUri),
        (ClientId::X509SanDns(name), RequestObjectKey::X5c(chain)) => {
            let leaf = chain
                .first()
                .ok_or(RequestObjectError::KeyReference("x509_san_dns", "x5c"))?;
            check_san(leaf, name)?;
            header = header.with_x5c(chain.iter().map(|der| standard_b64(der)).collect());
        }
        (ClientId::X509Hash(hash), RequestObjectKey::X5c(chain)) => {
            let leaf = chain
                .first()
                .ok_or(RequestObjectError::KeyReference("x509_hash", "x5c"))?;
            check_hash(leaf, hash)?;
            header = header.with_x5c(chain.iter().map(|der| standard_b64(der)).collect());
        }
        (ClientId::DecentralizedIdentifier(did), RequestObjectKey::Kid(kid)) => {
            check_kid(did, kid)?;
            header = header.with_kid(kid.clone());
        }
        (ClientId::VerifierAttestation(sub), RequestObjectKey::VerifierAttestation(jwt)) => {
            let attestation = VerifierAttestation::read(jwt)?;
            check_attestation_subject(&attestation, sub)?;
            attestation.check_validity(clock.unix_seconds(), 0)?;
            attestation.check_uris(request.response_uri.iter().chain(&request.redirect_uri))?;
            header
                .extra
                .insert("jwt".to_owned(), Value::String(jwt.clone()));
        }
        (ClientId::X509SanDns(_), _) => {
            return Err(RequestObjectError::KeyReference("x509_san_dns", "x5c"));
        }
        (ClientId::X509Hash(_), _) => {
            return Err(RequestObjectError::KeyReference("x509_hash", "x5c"));
        }
        (ClientId::VerifierAttestation(_), _) => {
            return Err(RequestObjectError::KeyReference(
                "verifier_attestation",
                "jwt",
            ));
        }
        (ClientId::DecentralizedIdentifier(_), _) => {
            return Err(RequestObjectError::KeyReference(
                "decentralized_identifier",
                "kid",
            ));
        }
        (other, _) => {
            return Err(RequestObjectError::UnsupportedPrefix(
                other.prefix().unwrap_or("pre-registered").to_owned(),
            ));
        }
    }
    let mut claims = request.to_request_object_claims(options.audience, options.wallet_nonce)?;
    let now = clock.unix_seconds();
    if let Value::Object(object) = &mut claims {
        object.insert("iat".to_owned(), Value::from(now));
        if let Some(lifetime) = options.lifetime {
            object.insert("exp".to_owned(), Value::from(now.saturating_add(lifetime)));
        }
    }
    let payload = serde_json::to_vec(&claims)
        .map_err(|_| RequestObjectError::Malformed("the claims cannot be serialised"))?;
    jws::sign(header, &payload, signer)
        .await
        .map_err(RequestObjectError::Jws)
}

/// Options of [`sign_request_object`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SignOptions<'a> {
    /// The `aud`: the wallet's `issuer`, or by default
    /// [`SELF_ISSUED_AUDIENCE`](crate::request::SELF_ISSUED_AUDIENCE).
    pub audience: Option<&'a str>,
    /// The `wallet_nonce` the wallet sent with `request_uri_method=post`.
    pub wallet_nonce: Option<&'a str>,
    /// The lifetime in seconds, for `exp`; none by default.
    pub lifetime: Option<i64>,
}

/// The wallet's side: verifies Request Objects against the key their client identifier
/// prefix designates.
pub struct RequestObjectVerifier {
    x5c: X5cResolver,
    anchors: Vec<Vec<u8>>,
    did: Option<Arc<dyn KeyResolver>>,
    attesters: Vec<Arc<dyn KeyResolver>>,
    clock: Arc<dyn Clock>,
    audiences: Vec<String>,
    leeway: i64,
    limits: Limits,
}

impl fmt::Debug for RequestObjectVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestObjectVerifier")
            .field("x5c", &self.x5c)
            .field("did", &self.did.is_some())
            .field("attesters", &self.attesters.len())
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl RequestObjectVerifier {
    /// A verifier trusting the DER certificates `trust_anchors` for `x509_san_dns:` and
    /// `x509_hash:` clients, accepting the `aud`
    /// [`SELF_ISSUED_AUDIENCE`](crate::request::SELF_ISSUED_AUDIENCE), reading time from
    /// `clock`. As HAIP requires, an `x5c` that includes a trust anchor or whose leaf is
    /// self-signed is refused.
    ///
    /// # Errors
    ///
    /// [`RequestObjectError::UntrustedChain`] when an anchor is not a certificate.
    pub fn new(
        trust_anchors: impl IntoIterator<Item = Vec<u8>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RequestObjectError> {
        let anchors: Vec<Vec<u8>> = trust_anchors.into_iter().collect();
        let x5c = X5cResolver::new(anchors.clone(), Arc::clone(&clock))
            .map_err(RequestObjectError::UntrustedChain)?;
        Ok(Self {
            x5c,
            anchors,
            did: None,
            attesters: Vec::new(),
            clock,
            audiences: vec![crate::request::SELF_ISSUED_AUDIENCE.to_owned()],
            leeway: 60,
            limits: Limits::DEFAULT,
        })
    }

    /// The verifier resolving `decentralized_identifier:` keys (by `kid` DID URL) with
    /// `resolver` (edk-did's resolver, or any other).
    #[must_use]
    pub fn with_did_resolver(mut self, resolver: Arc<dyn KeyResolver>) -> Self {
        self.did = Some(resolver);
        self
    }

    /// The verifier trusting, for `verifier_attestation:` clients, Verifier Attestation JWTs
    /// whose key `resolver` finds (asked with the attestation's `iss` as the issuer, its
    /// `kid` and `alg`); several resolvers are tried in turn. The resolver must only return
    /// keys of the issuer asked for.
    #[must_use]
    pub fn with_attester_resolver(mut self, resolver: Arc<dyn KeyResolver>) -> Self {
        self.attesters.push(resolver);
        self
    }

    /// The verifier trusting Verifier Attestation JWTs with `iss` `issuer` signed by one of
    /// `keys` (selected by `kid` when the attestation names one).
    #[must_use]
    pub fn with_trusted_attester<'a>(
        self,
        issuer: impl Into<String>,
        keys: impl IntoIterator<Item = &'a edk_core::jose::Jwk>,
    ) -> Self {
        self.with_attester_resolver(Arc::new(
            edk_core::jose::JwksResolver::from_keys(keys).for_issuer(issuer),
        ))
    }

    /// The verifier accepting `aud` `audience` (the wallet's `issuer`) as well.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The verifier with other parser limits.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Verifies the Request Object `token` received with the outer `client_id` parameter
    /// (when the request came by reference or with `request`), and, when the wallet sent one,
    /// its `wallet_nonce`; returns the request read from the claims.
    ///
    /// # Errors
    ///
    /// [`RequestObjectError::Jws`] for a malformed token or a bad signature,
    /// [`RequestObjectError::WrongType`], [`RequestObjectError::ClientIdMismatch`],
    /// [`RequestObjectError::SignedRedirectUri`], [`RequestObjectError::UnsupportedPrefix`],
    /// [`RequestObjectError::KeyReference`], [`RequestObjectError::SanMismatch`],
    /// [`RequestObjectError::HashMismatch`], [`RequestObjectError::UntrustedChain`],
    /// [`RequestObjectError::KidNotOfClient`], [`RequestObjectError::NoDidResolver`],
    /// [`RequestObjectError::DidResolution`], for `verifier_attestation:` clients
    /// [`RequestObjectError::AttestationMalformed`], [`RequestObjectError::AttestationType`],
    /// [`RequestObjectError::NoTrustedAttesters`], [`RequestObjectError::UntrustedAttester`],
    /// [`RequestObjectError::AttestationSignature`],
    /// [`RequestObjectError::AttestationExpired`],
    /// [`RequestObjectError::AttestationSubjectMismatch`],
    /// [`RequestObjectError::NotSignedByAttestedKey`] and
    /// [`RequestObjectError::UriNotAttested`], [`RequestObjectError::WrongAudience`],
    /// [`RequestObjectError::Expired`], [`RequestObjectError::WalletNonceMismatch`], and
    /// [`RequestObjectError::Request`] when the request in it is refused.
    pub async fn verify(
        &self,
        token: &str,
        outer_client_id: Option<&str>,
        wallet_nonce: Option<&str>,
    ) -> Result<AuthorizationRequest, RequestObjectError> {
        let jws = Jws::parse(token, &self.limits).map_err(RequestObjectError::Jws)?;
        let header = jws.header().clone();
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ == REQUEST_OBJECT_TYP || typ == "application/oauth-authz-req+jwt"
        });
        if !typ_ok {
            return Err(RequestObjectError::WrongType);
        }
        let unverified: Map<String, Value> = serde_json::from_slice(jws.unverified_payload())
            .map_err(|_| RequestObjectError::Malformed("the payload is not a JSON object"))?;
        let inner = unverified
            .get("client_id")
            .and_then(Value::as_str)
            .ok_or(RequestError::MissingParameter("client_id"))?;
        if let Some(outer) = outer_client_id
            && outer != inner
        {
            return Err(RequestObjectError::ClientIdMismatch {
                outer: outer.to_owned(),
                inner: inner.to_owned(),
            });
        }
        let client_id = ClientId::parse(inner)?;
        let policy = VerifyPolicy::default();
        let mut attested = None;
        let verified = match &client_id {
            ClientId::RedirectUri(_) => return Err(RequestObjectError::SignedRedirectUri),
            ClientId::X509SanDns(name) => {
                let leaf = leaf_der(header.x5c.as_deref(), "x509_san_dns")?;
                check_san(&leaf, name)?;
                self.check_x5c_profile(header.x5c.as_deref().unwrap_or_default(), &leaf)?;
                self.verify_x5c(jws, &policy).await?
            }
            ClientId::X509Hash(hash) => {
                let leaf = leaf_der(header.x5c.as_deref(), "x509_hash")?;
                check_hash(&leaf, hash)?;
                self.check_x5c_profile(header.x5c.as_deref().unwrap_or_default(), &leaf)?;
                self.verify_x5c(jws, &policy).await?
            }
            ClientId::DecentralizedIdentifier(did) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(RequestObjectError::KeyReference(
                        "decentralized_identifier",
                        "kid",
                    ))?;
                check_kid(did, kid)?;
                let resolver = self.did.as_ref().ok_or(RequestObjectError::NoDidResolver)?;
                let key = resolver
                    .resolve(
                        &edk_core::jose::KeyQuery::new(header.alg)
                            .with_kid(Some(kid))
                            .with_issuer(Some(did)),
                    )
                    .await
                    .map_err(RequestObjectError::DidResolution)?;
                jws.verify(&key, &policy).map_err(RequestObjectError::Jws)?
            }
            ClientId::VerifierAttestation(sub) => {
                let jwt = header.extra.get("jwt").and_then(Value::as_str).ok_or(
                    RequestObjectError::KeyReference("verifier_attestation", "jwt"),
                )?;
                let attestation = self.verify_attestation(jwt, sub).await?;
                let key =
                    edk_core::jose::VerifyingKey::from_jwk(&attestation.key).map_err(|_| {
                        RequestObjectError::AttestationMalformed("cnf.jwk is not a signature key")
                    })?;
                let verified = jws
                    .verify(&key, &policy)
                    .map_err(RequestObjectError::NotSignedByAttestedKey)?;
                attested = Some(attestation);
                verified
            }
            other => {
                return Err(RequestObjectError::UnsupportedPrefix(
                    other.prefix().unwrap_or("pre-registered").to_owned(),
                ));
            }
        };
        let claims = verified.claims().map_err(RequestObjectError::Jws)?;
        self.check_claims(&claims, wallet_nonce)?;
        let request = AuthorizationRequest::from_parameters(&claims)?;
        if let Some(attestation) = attested {
            attestation.check_uris(request.response_uri.iter().chain(&request.redirect_uri))?;
        }
        Ok(request)
    }

    /// Verifies the Verifier Attestation JWT `jwt` of client `sub`: its `typ`, the trusted
    /// attester's signature, its validity and its `sub`.
    async fn verify_attestation(
        &self,
        jwt: &str,
        sub: &str,
    ) -> Result<VerifierAttestation, RequestObjectError> {
        let (attestation, jws) = VerifierAttestation::parse(jwt, &self.limits)?;
        if self.attesters.is_empty() {
            return Err(RequestObjectError::NoTrustedAttesters);
        }
        let query = edk_core::jose::KeyQuery::new(jws.header().alg)
            .with_kid(jws.header().kid.as_deref())
            .with_issuer(Some(&attestation.issuer));
        let mut last = JoseError::KeyNotFound;
        let mut key = None;
        for resolver in &self.attesters {
            match resolver.resolve(&query).await {
                Ok(found) => {
                    key = Some(found);
                    break;
                }
                Err(err) => last = err,
            }
        }
        let key = key.ok_or_else(|| RequestObjectError::UntrustedAttester {
            issuer: attestation.issuer.clone(),
            source: last,
        })?;
        jws.verify(&key, &VerifyPolicy::default())
            .map_err(RequestObjectError::AttestationSignature)?;
        attestation.check_validity(self.clock.unix_seconds(), self.leeway)?;
        check_attestation_subject(&attestation, sub)?;
        Ok(attestation)
    }

    async fn verify_x5c(
        &self,
        jws: Jws,
        policy: &VerifyPolicy,
    ) -> Result<edk_core::jose::VerifiedJws, RequestObjectError> {
        let x5c = jws.header().x5c.clone().unwrap_or_default();
        let key = self
            .x5c
            .resolve(&edk_core::jose::KeyQuery::new(jws.header().alg).with_x5c(Some(&x5c)))
            .await
            .map_err(RequestObjectError::UntrustedChain)?;
        jws.verify(&key, policy).map_err(RequestObjectError::Jws)
    }

    /// HAIP §5: the chain does not carry a trust anchor, and its leaf is not self-signed.
    fn check_x5c_profile(&self, x5c: &[String], leaf: &[u8]) -> Result<(), RequestObjectError> {
        let carries_anchor = x5c
            .iter()
            .filter_map(|cert| STANDARD.decode(cert).ok())
            .any(|der| self.anchors.contains(&der));
        if carries_anchor {
            return Err(RequestObjectError::X5cProfile(
                "the x5c chain must not include a trust anchor",
            ));
        }
        let self_signed = Certificate::from_der(leaf)
            .is_ok_and(|cert| cert.tbs_certificate().issuer() == cert.tbs_certificate().subject());
        if self_signed {
            return Err(RequestObjectError::X5cProfile(
                "the x5c leaf must not be self-signed",
            ));
        }
        Ok(())
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        wallet_nonce: Option<&str>,
    ) -> Result<(), RequestObjectError> {
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audiences.iter().any(|own| own == aud)),
            _ => false,
        };
        if !audience_ok {
            return Err(RequestObjectError::WrongAudience);
        }
        let now = self.clock.unix_seconds();
        let exp = numeric_date(claims, "exp")
            .map_err(|_| RequestObjectError::Malformed("exp must be a number"))?;
        if exp.is_some_and(|exp| exp.saturating_add(self.leeway) < now) {
            return Err(RequestObjectError::Expired);
        }
        let nbf = numeric_date(claims, "nbf")
            .map_err(|_| RequestObjectError::Malformed("nbf must be a number"))?;
        if nbf.is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now) {
            return Err(RequestObjectError::Expired);
        }
        if let Some(sent) = wallet_nonce
            && claims.get("wallet_nonce").and_then(Value::as_str) != Some(sent)
        {
            return Err(RequestObjectError::WalletNonceMismatch);
        }
        Ok(())
    }
}

fn standard_b64(der: &[u8]) -> String {
    STANDARD.encode(der)
}

fn leaf_der(x5c: Option<&[String]>, prefix: &'static str) -> Result<Vec<u8>, RequestObjectError> {
    let leaf = x5c
        .and_then(<[String]>::first)
        .ok_or(RequestObjectError::KeyReference(prefix, "x5c"))?;
    STANDARD.decode(leaf).map_err(|_| {
        RequestObjectError::Jws(JoseError::Malformed {
            what: "x5c",
            reason: "a certificate is not standard base64",
        })
    })
}

/// The dNSName SANs of the DER certificate `der`.
pub(crate) fn dns_names(der: &[u8]) -> Option<Vec<String>> {
    let cert = Certificate::from_der(der).ok()?;
    let Ok(Some((_, SubjectAltName(names)))) =
        cert.tbs_certificate().get_extension::<SubjectAltName>()
    else {
        return Some(Vec::new());
    };
    Some(
        names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DnsName(dns) => Some(dns.as_str().to_owned()),
                _ => None,
            })
            .collect(),
    )
}

fn check_san(leaf: &[u8], name: &str) -> Result<(), RequestObjectError> {
    let names = dns_names(leaf).ok_or(RequestObjectError::UntrustedChain(
        JoseError::UntrustedKey("the x5c leaf is not a valid certificate"),
    ))?;
    if names.iter().any(|dns| dns.eq_ignore_ascii_case(name)) {
        Ok(())
    } else {
        Err(RequestObjectError::SanMismatch(name.to_owned()))
    }
}

fn check_hash(leaf: &[u8], hash: &str) -> Result<(), RequestObjectError> {
    if b64url_encode(HashAlg::Sha256.digest(leaf)) == hash {
        Ok(())
    } else {
        Err(RequestObjectError::HashMismatch)
    }
}

fn check_attestation_subject(
    attestation: &VerifierAttestation,
    sub: &str,
) -> Result<(), RequestObjectError> {
    if attestation.subject == sub {
        Ok(())
    } else {
        Err(RequestObjectError::AttestationSubjectMismatch {
            sub: attestation.subject.clone(),
            client_id: sub.to_owned(),
        })
    }
}

fn check_kid(did: &str, kid: &str) -> Result<(), RequestObjectError> {
    match kid.split_once('#') {
        Some((base, fragment)) if base == did && !fragment.is_empty() => Ok(()),
        _ => Err(RequestObjectError::KidNotOfClient(kid.to_owned())),
    }
}

/// The `x509_hash:` value of a DER certificate: the base64url SHA-256 of its encoding.
#[must_use]
pub fn x509_hash(der: &[u8]) -> String {
    b64url_encode(HashAlg::Sha256.digest(der))
}
