//! OAuth 2.0 Attestation-Based Client Authentication
//! (draft-ietf-oauth-attestation-based-client-auth-11; OID4VCI 1.0 Appendix E pins -07 and
//! HAIP 1.0 §4.4.1 requires it of wallets).
//!
//! A wallet instance authenticates with two JWTs in HTTP headers:
//!
//! - `OAuth-Client-Attestation`: a JWT of `typ` `oauth-client-attestation+jwt` signed by the
//!   client attester (the wallet provider), with `sub` = the client id, `exp` and `cnf.jwk`,
//!   the wallet instance's public key (§4);
//! - `OAuth-Client-Attestation-PoP`: a JWT of `typ` `oauth-client-attestation-pop+jwt` signed
//!   by that instance key, with `aud` = the AS issuer, `jti`, `iat` and, when the AS hands
//!   out challenges, `challenge` (§5.1).
//!
//! Each tenant names the client attesters it trusts in its configuration under
//! [`CLIENT_ATTESTATION`] (a [`ClientAttestationConfig`]): a JWKS, and/or X.509 trust anchors
//! to which an attestation's `x5c` chain must lead (HAIP). The same configuration can require
//! an attestation from every public client and a server challenge in every PoP.
//!
//! Checks (§7.1, §7.2), in order: exactly one of each header; the attestation's `typ`, an
//! asymmetric `alg`, its signature by a trusted attester, `sub`, `exp` (and `nbf`, `iat`),
//! a public `cnf.jwk`; freshness under the tenant's `max_age_seconds`
//! (`use_fresh_attestation`); the request's `client_id`, if any, equals `sub`; the client is
//! registered for `attest_jwt_client_auth` (or is a public client); the PoP's `typ`, `alg` and
//! signature by `cnf.jwk`, `aud`, `iat` window and `jti`; its `jti` is remembered (one
//! conditional insert, so a replay fails on every replica); a `challenge`, required or
//! present, must be one this tenant issued and not used yet (one `DELETE … RETURNING`),
//! else `use_attestation_challenge` with a fresh challenge. Every other failure is
//! `invalid_client_attestation`. A refresh token issued to an attested client is bound to
//! the instance key (§10.3).
//!
//! The DPoP combined mode (`attest_jwt_client_auth_dpop`, §5.2) is not supported: a request
//! with an attestation but no PoP header is refused. DPoP alongside the PoP header works as
//! usual.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edk_core::jose::{
    JoseError, Jwk, JwkSet, JwksResolver, Jws, KeyQuery, KeyResolver, VerifyPolicy, VerifyingKey,
};
use edk_core::x5c::X5cResolver;
use edk_core::{Clock, Limits};
use edk_tenancy::TenantContext;
use edk_tenancy::config::ConfigKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::{Client, ClientAuthMethod};
use crate::error::Error;
use crate::request::EndpointCall;
use crate::server::{AuthorizationServer, CLIENT_ASSERTION_ALGORITHMS};

/// The `typ` of a client attestation JWT (§4).
pub const ATTESTATION_TYP: &str = "oauth-client-attestation+jwt";
/// The `typ` of a client attestation PoP JWT (§5.1).
pub const ATTESTATION_POP_TYP: &str = "oauth-client-attestation-pop+jwt";
/// The request header carrying the client attestation.
pub const ATTESTATION_HEADER: &str = "OAuth-Client-Attestation";
/// The request header carrying the PoP.
pub const ATTESTATION_POP_HEADER: &str = "OAuth-Client-Attestation-PoP";
/// The response header carrying a fresh challenge with `use_attestation_challenge` (§6.1).
pub const CHALLENGE_HEADER: &str = "OAuth-Client-Attestation-Challenge";

/// The tenant configuration key holding the tenant's client attestation policy, as
/// `Option<ClientAttestationConfig>` (absent: attestations are not accepted). Register it in
/// the deployment's `ConfigSchema`.
pub static CLIENT_ATTESTATION: ConfigKey<Option<ClientAttestationConfig>> =
    ConfigKey::new("oauth.client_attestation", || None, |_| Ok(()));

/// The largest attestation or PoP accepted, in bytes (an `x5c` chain makes attestations
/// large).
const MAX_ATTESTATION_BYTES: usize = 32 * 1024;

/// How far in the future an `iat` may lie (clock skew), in seconds.
const IAT_SKEW: i64 = 60;

/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// A tenant's client attestation policy: the client attesters it trusts and what it
/// requires. Checked when built or deserialized, so an invalid one cannot exist.
///
/// ```
/// use edk_oauth::client_attestation::ClientAttestationConfig;
///
/// let config: ClientAttestationConfig = serde_json::from_value(serde_json::json!({
///     "jwks": { "keys": [{ "kty": "EC", "crv": "P-256",
///         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
///         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] },
///     "require_for_public_clients": true,
///     "challenge_required": true
/// }))
/// .unwrap();
/// assert!(config.required_for_public_clients());
/// assert!(serde_json::from_value::<ClientAttestationConfig>(serde_json::json!({})).is_err());
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "RawClientAttestationConfig")]
pub struct ClientAttestationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<JwkSet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trust_anchors: Vec<String>,
    require_for_public_clients: bool,
    challenge_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<u32>,
}

/// The serialized form of [`ClientAttestationConfig`], checked by conversion.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientAttestationConfig {
    /// Public keys of trusted client attesters; an attestation without `x5c` is verified
    /// with the one its `kid` names (or the only one for its `alg`).
    #[serde(default)]
    jwks: Option<JwkSet>,
    /// Trusted root certificates (standard base64 DER); an attestation with `x5c` must chain
    /// to one of them.
    #[serde(default)]
    trust_anchors: Vec<String>,
    /// Public clients (`none`) must authenticate with an attestation; so must requests that
    /// name no client (anonymous pre-authorized code redemption). HAIP issuers set this.
    #[serde(default)]
    require_for_public_clients: bool,
    /// Every PoP must carry a challenge from the challenge endpoint.
    #[serde(default)]
    challenge_required: bool,
    /// Attestations whose `iat` is older than this many seconds are refused with
    /// `use_fresh_attestation`; `None` accepts any unexpired attestation.
    #[serde(default)]
    max_age_seconds: Option<u32>,
}

impl TryFrom<RawClientAttestationConfig> for ClientAttestationConfig {
    type Error = Error;

    fn try_from(raw: RawClientAttestationConfig) -> Result<Self, Error> {
        let mut config = Self {
            jwks: None,
            trust_anchors: Vec::new(),
            require_for_public_clients: raw.require_for_public_clients,
            challenge_required: raw.challenge_required,
            max_age_seconds: None,
        };
        if let Some(jwks) = raw.jwks {
            config = config.with_jwks(jwks)?;
        }
        if !raw.trust_anchors.is_empty() {
            config = config.with_trust_anchors(raw.trust_anchors)?;
        }
        if let Some(max_age) = raw.max_age_seconds {
            config = config.with_max_age_seconds(max_age)?;
        }
        config.check_trust()?;
        Ok(config)
    }
}

impl ClientAttestationConfig {
    /// A policy trusting the attester keys `jwks`, requiring nothing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `jwks` is empty or holds a private key.
    pub fn from_jwks(jwks: JwkSet) -> Result<Self, Error> {
        Self::empty().with_jwks(jwks)
    }

    /// A policy trusting attestations whose `x5c` chain leads to one of `anchors` (standard
    /// base64 DER certificates), requiring nothing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `anchors` is empty or one is not a certificate.
    pub fn from_trust_anchors(anchors: Vec<String>) -> Result<Self, Error> {
        Self::empty().with_trust_anchors(anchors)
    }

    const fn empty() -> Self {
        Self {
            jwks: None,
            trust_anchors: Vec::new(),
            require_for_public_clients: false,
            challenge_required: false,
            max_age_seconds: None,
        }
    }

    /// The policy trusting the attester keys `jwks` too.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `jwks` is empty or holds a private key.
    pub fn with_jwks(mut self, jwks: JwkSet) -> Result<Self, Error> {
        if jwks.keys.is_empty() {
            return Err(invalid_config("jwks", "must hold at least one key"));
        }
        if jwks.keys.iter().any(Jwk::is_private) {
            return Err(invalid_config("jwks", "must hold public keys only"));
        }
        self.jwks = Some(jwks);
        Ok(self)
    }

    /// The policy trusting `x5c` chains to `anchors` (standard base64 DER) too.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `anchors` is empty or one is not a certificate.
    pub fn with_trust_anchors(mut self, anchors: Vec<String>) -> Result<Self, Error> {
        if anchors.is_empty() {
            return Err(invalid_config(
                "trust_anchors",
                "must hold at least one certificate",
            ));
        }
        // Parsing only: building the resolver reads no time.
        X5cResolver::new(decode_anchors(&anchors)?, Arc::new(edk_core::SystemClock))
            .map_err(|_| invalid_config("trust_anchors", "each must be a DER certificate"))?;
        self.trust_anchors = anchors;
        Ok(self)
    }

    /// The policy requiring an attestation from public clients (and anonymous requests).
    #[must_use]
    pub const fn require_for_public_clients(mut self, required: bool) -> Self {
        self.require_for_public_clients = required;
        self
    }

    /// The policy requiring a server challenge in every PoP.
    #[must_use]
    pub const fn require_challenge(mut self, required: bool) -> Self {
        self.challenge_required = required;
        self
    }

    /// The policy refusing attestations issued more than `seconds` ago.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0.
    pub fn with_max_age_seconds(mut self, seconds: u32) -> Result<Self, Error> {
        if seconds == 0 {
            return Err(invalid_config("max_age_seconds", "must be at least 1"));
        }
        self.max_age_seconds = Some(seconds);
        Ok(self)
    }

    /// Whether public clients must present an attestation.
    #[must_use]
    pub const fn required_for_public_clients(&self) -> bool {
        self.require_for_public_clients
    }

    /// Whether every PoP must carry a server challenge.
    #[must_use]
    pub const fn challenge_required(&self) -> bool {
        self.challenge_required
    }

    /// The keys of the attesters (wallet providers) this policy trusts, as a resolver: an
    /// `x5c` chain to its trust anchors, else a key of its JWKS. For checking other
    /// statements of the same wallet providers, such as OpenID4VCI key attestations.
    ///
    /// # Errors
    /// [`Error::Internal`] when a configured trust anchor does not parse.
    pub fn attester_keys(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyResolver>, Error> {
        Ok(Arc::new(AttesterKeys::new(self, clock)?))
    }

    fn check_trust(&self) -> Result<(), Error> {
        if self.jwks.is_none() && self.trust_anchors.is_empty() {
            return Err(invalid_config(
                "jwks",
                "name at least one trusted attester key (`jwks`) or `trust_anchors`",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for ClientAttestationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAttestationConfig")
            .field("jwks", &self.jwks.as_ref().map(|jwks| jwks.keys.len()))
            .field("trust_anchors", &self.trust_anchors.len())
            .field(
                "require_for_public_clients",
                &self.require_for_public_clients,
            )
            .field("challenge_required", &self.challenge_required)
            .field("max_age_seconds", &self.max_age_seconds)
            .finish()
    }
}

fn invalid_config(field: &'static str, reason: &str) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.to_owned(),
    }
}

fn decode_anchors(anchors: &[String]) -> Result<Vec<Vec<u8>>, Error> {
    anchors
        .iter()
        .map(|anchor| {
            STANDARD
                .decode(anchor.trim())
                .map_err(|_| invalid_config("trust_anchors", "each must be standard base64"))
        })
        .collect()
}

/// A challenge from the challenge endpoint (§6.3), answered with 200 and `Cache-Control:
/// no-store`.
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct AttestationChallenge {
    /// The challenge for the next PoP; it works once, within
    /// [`AsConfig::attestation_challenge_ttl`](crate::AsConfig::attestation_challenge_ttl).
    pub attestation_challenge: String,
    /// A fresh DPoP nonce for the `DPoP-Nonce` header, when the AS requires DPoP nonces.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
}

impl fmt::Debug for AttestationChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationChallenge")
            .field("dpop_nonce", &self.dpop_nonce.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Issues a client attestation challenge (§6.3): single use, stored as a digest until it
    /// expires.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn attestation_challenge(
        &self,
        tenant: &TenantContext,
    ) -> Result<AttestationChallenge, Error> {
        let attestation_challenge = self.new_attestation_challenge(tenant).await?;
        let dpop_nonce = if self.config.dpop_nonce_required {
            Some(self.current_dpop_nonce(tenant).await?)
        } else {
            None
        };
        Ok(AttestationChallenge {
            attestation_challenge,
            dpop_nonce,
        })
    }

    async fn new_attestation_challenge(&self, tenant: &TenantContext) -> Result<String, Error> {
        let challenge = crate::random::token();
        let expires_at = self
            .now()
            .saturating_add(self.config.attestation_challenge_ttl);
        self.store
            .insert_attestation_challenge(tenant, &crate::random::digest(&challenge), expires_at)
            .await?;
        Ok(challenge)
    }

    /// Refuses a public client (or an unidentified caller) when the tenant requires client
    /// attestation of public clients.
    pub(crate) fn check_attestation_not_required(tenant: &TenantContext) -> Result<(), Error> {
        match tenant.config().get(&CLIENT_ATTESTATION) {
            Some(config) if config.require_for_public_clients => Err(Error::invalid_client(
                "client attestation is required for public clients",
            )),
            _ => Ok(()),
        }
    }

    /// Authenticates the client of `call` by its attestation headers (§7.1, §7.2).
    /// `body_id` is the request's `client_id` parameter.
    pub(crate) async fn authenticate_attestation(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
        body_id: Option<&str>,
    ) -> Result<Client, Error> {
        let (attestation, pop) = headers(call)?;
        let config = tenant.config().get(&CLIENT_ATTESTATION).ok_or_else(|| {
            Error::invalid_client_attestation("this server trusts no client attesters")
        })?;
        let now = self.now();
        let attestation = self.verify_attestation(&config, attestation, now).await?;
        if body_id.is_some_and(|id| id != attestation.sub) {
            return Err(Error::invalid_client_attestation(
                "the attestation's `sub` is not the request's `client_id`",
            ));
        }
        let client = self.lookup(tenant, &attestation.sub).await?;
        if !matches!(
            client.metadata.token_endpoint_auth_method,
            ClientAuthMethod::AttestJwtClientAuth | ClientAuthMethod::None
        ) {
            return Err(Error::invalid_client("client authentication failed"));
        }
        let pop = verify_pop(
            pop,
            &attestation,
            &Self::issuer(tenant)?,
            now,
            self.config.proof_max_age,
        )?;
        let scope = format!("attestation_pop:{}", attestation.instance_jkt);
        let remember_until = now.saturating_add(self.config.proof_max_age.saturating_mul(2));
        if !self
            .store
            .use_jti(tenant, &scope, &pop.jti, remember_until)
            .await?
        {
            return Err(Error::invalid_client_attestation(
                "the attestation PoP was used before",
            ));
        }
        match pop.challenge {
            Some(challenge) => {
                let digest = crate::random::digest(&challenge);
                if !self
                    .store
                    .take_attestation_challenge(tenant, &digest, now)
                    .await?
                {
                    return Err(Error::UseAttestationChallenge {
                        challenge: self.new_attestation_challenge(tenant).await?,
                        description: "the challenge is unknown, expired or used",
                    });
                }
            }
            None if config.challenge_required => {
                return Err(Error::UseAttestationChallenge {
                    challenge: self.new_attestation_challenge(tenant).await?,
                    description: "the attestation PoP must carry a server challenge",
                });
            }
            None => {}
        }
        Ok(client)
    }

    /// Refuses a refresh request whose refresh token is bound to a client instance key
    /// (§10.3) unless the request's attestation attests that same key. Runs before the
    /// rotation, so a refusal leaves the token as it was.
    pub(crate) async fn check_refresh_instance(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
    ) -> Result<(), Error> {
        let Some(token) = call.params.get("refresh_token")? else {
            return Ok(());
        };
        let Some(record) = self
            .store
            .refresh_token(tenant, &crate::random::digest(token), self.now())
            .await?
        else {
            return Ok(());
        };
        match &record.grant.client_instance_jkt {
            Some(bound) if instance_jkt(call).as_deref() != Some(bound.as_str()) => Err(
                Error::invalid_grant("the refresh token is bound to another client instance"),
            ),
            _ => Ok(()),
        }
    }

    async fn verify_attestation(
        &self,
        config: &ClientAttestationConfig,
        token: &str,
        now: i64,
    ) -> Result<VerifiedAttestation, Error> {
        let invalid = Error::invalid_client_attestation;
        let limits = Limits::DEFAULT.with_max_token_bytes(MAX_ATTESTATION_BYTES);
        let jws =
            Jws::parse(token, &limits).map_err(|_| invalid("the attestation is not a JWS"))?;
        let resolver = AttesterKeys::new(config, Arc::clone(&self.clock))?;
        let policy = VerifyPolicy::default()
            .with_algorithms(&CLIENT_ASSERTION_ALGORITHMS)
            .with_typ(ATTESTATION_TYP);
        let verified =
            jws.verify_with(&resolver, &policy, None)
                .await
                .map_err(|err| match err {
                    JoseError::UnexpectedType { .. } => invalid("the attestation's `typ` is wrong"),
                    JoseError::AlgorithmNotAllowed(_) => {
                        invalid("the attestation's `alg` is not allowed")
                    }
                    _ => invalid("the attestation is not signed by a trusted client attester"),
                })?;
        let claims = verified
            .claims()
            .map_err(|_| invalid("the attestation's payload is not a JSON object"))?;
        let sub = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(invalid("the attestation has no `sub`")),
        };
        let exp =
            time_claim(&claims, "exp")?.ok_or_else(|| invalid("the attestation has no `exp`"))?;
        if exp <= now {
            return Err(invalid("the attestation has expired"));
        }
        if time_claim(&claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(IAT_SKEW)) {
            return Err(invalid("the attestation is not valid yet"));
        }
        let iat = time_claim(&claims, "iat")?;
        if iat.is_some_and(|iat| iat > now.saturating_add(IAT_SKEW)) {
            return Err(invalid("the attestation's `iat` is in the future"));
        }
        if let Some(max_age) = config.max_age_seconds {
            let fresh = iat.is_some_and(|iat| now.saturating_sub(iat) <= i64::from(max_age));
            if !fresh {
                return Err(Error::oauth(
                    crate::error::OAuthErrorCode::UseFreshAttestation,
                    "the attestation is too old; get a fresh one",
                ));
            }
        }
        let jwk: Jwk = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jwk"))
            .cloned()
            .and_then(|jwk| serde_json::from_value(jwk).ok())
            .ok_or_else(|| invalid("the attestation has no usable `cnf.jwk`"))?;
        if jwk.is_private() {
            return Err(invalid(
                "the attestation's `cnf.jwk` contains a private key",
            ));
        }
        let key = VerifyingKey::from_jwk(&jwk)
            .map_err(|_| invalid("the attestation has no usable `cnf.jwk`"))?;
        Ok(VerifiedAttestation {
            sub,
            instance_jkt: jwk.thumbprint(),
            key,
        })
    }
}

/// The thumbprint of the instance key of `call`'s client attestation, if it carries one.
/// Read without verification: only for a call whose client authentication succeeded.
pub(crate) fn instance_jkt(call: &EndpointCall) -> Option<String> {
    let [attestation] = call.client_attestation.as_slice() else {
        return None;
    };
    let limits = Limits::DEFAULT.with_max_token_bytes(MAX_ATTESTATION_BYTES);
    let jws = Jws::parse(attestation, &limits).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(jws.unverified_payload()).ok()?;
    let jwk: Jwk = serde_json::from_value(claims.get("cnf")?.get("jwk")?.clone()).ok()?;
    Some(jwk.thumbprint())
}

/// Whether `call` carries either attestation header.
pub(crate) fn presented(call: &EndpointCall) -> bool {
    !call.client_attestation.is_empty() || !call.client_attestation_pop.is_empty()
}

/// Adds the attestation members to the tenant's AS metadata (§8, §6.3) when it trusts
/// client attesters.
pub(crate) fn extend_metadata(tenant: &TenantContext, doc: &mut Value) -> Result<(), Error> {
    let Some(config) = tenant.config().get(&CLIENT_ATTESTATION) else {
        return Ok(());
    };
    let challenge_endpoint = AuthorizationServer::endpoint_url(tenant, "challenge")?;
    let Some(map) = doc.as_object_mut() else {
        return Ok(());
    };
    let algs: Vec<&str> = CLIENT_ASSERTION_ALGORITHMS
        .iter()
        .map(|alg| alg.name())
        .collect();
    for member in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        if let Some(Value::Array(methods)) = map.get_mut(member) {
            methods.push(json!(ClientAuthMethod::AttestJwtClientAuth.as_str()));
        }
    }
    map.insert("challenge_endpoint".to_owned(), json!(challenge_endpoint));
    map.insert(
        "client_attestation_signing_alg_values_supported".to_owned(),
        json!(algs),
    );
    map.insert(
        "client_attestation_pop_signing_alg_values_supported".to_owned(),
        json!(algs),
    );
    // Draft -05's name, still read by deployed wallets.
    map.insert(
        "client_attestation_pop_nonce_required".to_owned(),
        json!(config.challenge_required),
    );
    Ok(())
}

/// A client attestation that verified.
struct VerifiedAttestation {
    sub: String,
    instance_jkt: String,
    key: VerifyingKey,
}

/// A PoP that verified, before its `jti` and challenge are spent.
struct VerifiedPop {
    jti: String,
    challenge: Option<String>,
}

/// The one attestation and one PoP header of `call`.
fn headers(call: &EndpointCall) -> Result<(&str, &str), Error> {
    let invalid = Error::invalid_client_attestation;
    match (
        call.client_attestation.as_slice(),
        call.client_attestation_pop.as_slice(),
    ) {
        ([attestation], [pop]) => Ok((attestation, pop)),
        ([_], []) => Err(invalid(
            "the OAuth-Client-Attestation-PoP header is missing (DPoP combined mode is not \
             supported)",
        )),
        ([], [_]) => Err(invalid("the OAuth-Client-Attestation header is missing")),
        _ => Err(invalid(
            "exactly one OAuth-Client-Attestation and one OAuth-Client-Attestation-PoP header \
             are required",
        )),
    }
}

/// Checks the PoP (§5.1, §7.2) against `attestation` for the AS `issuer`.
fn verify_pop(
    token: &str,
    attestation: &VerifiedAttestation,
    issuer: &str,
    now: i64,
    max_age: i64,
) -> Result<VerifiedPop, Error> {
    let invalid = Error::invalid_client_attestation;
    let limits = Limits::DEFAULT.with_max_token_bytes(MAX_ATTESTATION_BYTES);
    let jws =
        Jws::parse(token, &limits).map_err(|_| invalid("the attestation PoP is not a JWS"))?;
    let policy = VerifyPolicy::default()
        .with_algorithms(&CLIENT_ASSERTION_ALGORITHMS)
        .with_typ(ATTESTATION_POP_TYP);
    let verified = jws
        .verify(&attestation.key, &policy)
        .map_err(|err| match err {
            JoseError::UnexpectedType { .. } => invalid("the attestation PoP's `typ` is wrong"),
            JoseError::AlgorithmNotAllowed(_) => {
                invalid("the attestation PoP's `alg` is not allowed")
            }
            _ => invalid("the attestation PoP is not signed by the attested instance key"),
        })?;
    let claims = verified
        .claims()
        .map_err(|_| invalid("the attestation PoP's payload is not a JSON object"))?;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(auds)) => auds.len() == 1 && auds.iter().any(|aud| aud == issuer),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid(
            "the attestation PoP's `aud` is not this authorization server",
        ));
    }
    // Draft -07 (pinned by OID4VCI 1.0) also has `iss` = the client id.
    if claims
        .get("iss")
        .is_some_and(|iss| iss.as_str() != Some(attestation.sub.as_str()))
    {
        return Err(invalid("the attestation PoP's `iss` is not the client id"));
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.clone(),
        _ => {
            return Err(invalid(
                "the attestation PoP's `jti` must be 1 to 256 characters",
            ));
        }
    };
    let iat =
        time_claim(&claims, "iat")?.ok_or_else(|| invalid("the attestation PoP has no `iat`"))?;
    if iat > now.saturating_add(IAT_SKEW) || now.saturating_sub(iat) > max_age {
        return Err(invalid(
            "the attestation PoP's `iat` is outside the accepted window",
        ));
    }
    if time_claim(&claims, "exp")?.is_some_and(|exp| exp <= now) {
        return Err(invalid("the attestation PoP has expired"));
    }
    let challenge = match claims.get("challenge") {
        None => None,
        Some(Value::String(challenge)) => Some(challenge.clone()),
        Some(_) => return Err(invalid("the attestation PoP's `challenge` is not a string")),
    };
    Ok(VerifiedPop { jti, challenge })
}

/// A NumericDate claim: absent, or an integer.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Error> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            Error::invalid_client_attestation(format!("`{name}` is not an integer"))
        }),
    }
}

/// The tenant's trusted attester keys: `x5c` chains to its anchors, else its JWKS.
struct AttesterKeys {
    jwks: Option<JwksResolver>,
    x5c: Option<X5cResolver>,
}

impl AttesterKeys {
    fn new(config: &ClientAttestationConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let x5c = if config.trust_anchors.is_empty() {
            None
        } else {
            let anchors = decode_anchors(&config.trust_anchors)?;
            Some(
                X5cResolver::new(anchors, clock).map_err(|_| Error::Internal {
                    what: "a configured trust anchor does not parse",
                })?,
            )
        };
        Ok(Self {
            jwks: config.jwks.as_ref().map(JwksResolver::new),
            x5c,
        })
    }
}

impl fmt::Debug for AttesterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttesterKeys")
            .field("jwks", &self.jwks.is_some())
            .field("x5c", &self.x5c.is_some())
            .finish()
    }
}

#[async_trait]
impl KeyResolver for AttesterKeys {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        match (query.x5c, &self.x5c, &self.jwks) {
            (Some(_), Some(x5c), _) => x5c.resolve(query).await,
            (None, _, Some(jwks)) => jwks.resolve(query).await,
            _ => Err(JoseError::KeyNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use edk_core::jose::{Algorithm, SigningKey};

    use super::*;

    fn jwks() -> JwkSet {
        JwkSet {
            keys: vec![SigningKey::generate(Algorithm::Es256).unwrap().public_jwk()],
        }
    }

    #[test]
    fn a_policy_needs_a_trusted_attester() {
        let err = serde_json::from_value::<ClientAttestationConfig>(json!({
            "require_for_public_clients": true
        }))
        .unwrap_err();
        assert!(err.to_string().contains("trusted attester"), "{err}");
        assert!(
            serde_json::from_value::<ClientAttestationConfig>(json!({
                "trust_anchors": ["bm90IGEgY2VydA"]
            }))
            .is_err()
        );
    }

    #[test]
    fn private_attester_keys_and_unknown_fields_are_refused() {
        let private = SigningKey::generate(Algorithm::Es256).unwrap();
        let private_jwk = serde_json::to_value(private.to_jwk().unwrap()).unwrap();
        let err = serde_json::from_value::<ClientAttestationConfig>(json!({
            "jwks": { "keys": [private_jwk] }
        }))
        .unwrap_err();
        assert!(err.to_string().contains("public keys only"), "{err}");
        let err = serde_json::from_value::<ClientAttestationConfig>(json!({
            "jwks": jwks(), "challenge_requried": true
        }))
        .unwrap_err();
        assert!(err.to_string().contains("challenge_requried"), "{err}");
    }

    #[test]
    fn the_config_round_trips() {
        let config = ClientAttestationConfig::from_jwks(jwks())
            .unwrap()
            .require_challenge(true)
            .with_max_age_seconds(3600)
            .unwrap();
        let value = serde_json::to_value(&config).unwrap();
        let back: ClientAttestationConfig = serde_json::from_value(value).unwrap();
        assert!(back.challenge_required());
        assert_eq!(back.max_age_seconds, Some(3600));
    }

    #[test]
    fn headers_must_come_in_one_pair() {
        let call = EndpointCall::post(crate::Params::default());
        let mut only_attestation = call.clone();
        only_attestation.client_attestation.push("a".to_owned());
        let err = headers(&only_attestation).unwrap_err();
        assert_eq!(
            err.code(),
            crate::error::OAuthErrorCode::InvalidClientAttestation
        );
        let twice = call
            .with_client_attestation("a", "b")
            .with_client_attestation("a", "b");
        assert!(headers(&twice).is_err());
    }
}
