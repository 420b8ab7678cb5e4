//! JWT key proofs (OpenID4VCI 1.0 Appendix F.1, F.4): the wallet's proof that it holds the
//! key the credential will be bound to.
//!
//! [`verify_jwt_proof`] checks everything a proof carries. Whether its `nonce` is a live
//! `c_nonce` is state, so the caller redeems the nonce it returns (once per request, as
//! every proof of a batch carries the same nonce).

use std::sync::Arc;

use edk_core::jose::{Algorithm, JoseError, Jwk, Jws, KeyResolver, VerifyPolicy, VerifyingKey};
use edk_core::{DidUrl, Limits};
use serde_json::Value;

use crate::error::{CredentialErrorCode, ProtocolError};

/// The `typ` of JWT key proofs.
pub const PROOF_TYP: &str = "openid4vci-proof+jwt";

/// What a proof must satisfy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProofPolicy {
    /// The credential issuer identifier: the proof's `aud`.
    pub credential_issuer: String,
    /// The algorithms the configuration accepts for proofs.
    pub algorithms: Vec<Algorithm>,
    /// The configuration's `cryptographic_binding_methods_supported`.
    pub binding_methods: Vec<String>,
    /// The client the access token was issued to; `None` for anonymous pre-authorized
    /// access. A proof's `iss`, when present, must name this client.
    pub client_id: Option<String>,
    /// Whether the proof must carry a `nonce` (the issuer has a nonce endpoint).
    pub require_nonce: bool,
    /// How old `iat` may be, in seconds.
    pub max_age_secs: i64,
    /// How far in the future `iat` may be, in seconds (clock skew).
    pub max_future_secs: i64,
    /// Size limits for the proof.
    pub limits: Limits,
}

impl ProofPolicy {
    /// A policy for proofs addressed to `credential_issuer`, signed with one of
    /// `algorithms`, binding by one of `binding_methods`: a nonce required, `iat` at most
    /// five minutes old and one minute ahead.
    #[must_use]
    pub fn new(
        credential_issuer: impl Into<String>,
        algorithms: Vec<Algorithm>,
        binding_methods: Vec<String>,
    ) -> Self {
        Self {
            credential_issuer: credential_issuer.into(),
            algorithms,
            binding_methods,
            client_id: None,
            require_nonce: true,
            max_age_secs: 300,
            max_future_secs: 60,
            limits: Limits::DEFAULT,
        }
    }

    /// The policy for a token issued to `client_id` (`None`: anonymous).
    #[must_use]
    pub fn with_client(mut self, client_id: Option<String>) -> Self {
        self.client_id = client_id;
        self
    }

    /// The policy with or without a required nonce.
    #[must_use]
    pub const fn with_nonce_required(mut self, required: bool) -> Self {
        self.require_nonce = required;
        self
    }

    /// Whether keys named as `method` can be bound. A `jwk` in the proof also binds a
    /// `cose_key` credential (an mdoc): the issuer turns it into the MSO's COSE device key.
    fn binds(&self, method: &str) -> bool {
        self.binding_methods
            .iter()
            .any(|m| m == method || (method == "jwk" && m == "cose_key"))
    }
}

/// The key a proof proved possession of.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProvenKey {
    /// The public key, to bind the credential to (`cnf.jwk`).
    pub jwk: Jwk,
    /// The DID URL the proof named the key by, when the wallet binds to a DID.
    pub did_url: Option<DidUrl>,
    /// The proof's `nonce`, for the caller to redeem.
    pub nonce: Option<String>,
    /// The `key_attestation` header of the proof, not yet verified: the caller checks it
    /// with [`verify_key_attestation`] when the configuration requires key attestations.
    pub key_attestation: Option<String>,
}

impl ProvenKey {
    /// A key known from elsewhere (a deferred transaction), with no nonce or attestation.
    #[must_use]
    pub const fn known(jwk: Jwk, did_url: Option<DidUrl>) -> Self {
        Self {
            jwk,
            did_url,
            nonce: None,
            key_attestation: None,
        }
    }
}

fn invalid(description: impl AsRef<str>) -> ProtocolError {
    ProtocolError::new(CredentialErrorCode::InvalidProof, description)
}

/// Verifies one JWT proof (Appendix F.4): `typ`, an allowed asymmetric `alg`, exactly one of
/// `kid` (a DID URL, resolved by `resolver`), `jwk` (a public key) or `x5c` (resolved by
/// `resolver`), the signature, `aud`, `iat` within the window around `now`, `iss` when the
/// token has a client, and a `nonce` when required.
///
/// # Errors
/// `invalid_proof` naming the first check that failed; `invalid_nonce` when a required nonce
/// is missing.
pub async fn verify_jwt_proof(
    jwt: &str,
    policy: &ProofPolicy,
    resolver: &(dyn KeyResolver + '_),
    now: i64,
) -> Result<ProvenKey, ProtocolError> {
    let jws = Jws::parse(jwt, &policy.limits).map_err(|err| match err {
        JoseError::UnsupportedAlgorithm(alg) => invalid(format!(
            "alg {alg} is not an asymmetric signature algorithm accepted for proofs"
        )),
        JoseError::TooLarge { .. } => invalid("the proof is too large"),
        _ => invalid("the proof is not a compact JWS"),
    })?;
    let header = jws.header();
    let key_attestation = match header.extra.get("key_attestation") {
        None => None,
        Some(Value::String(attestation)) => Some(attestation.clone()),
        Some(_) => return Err(invalid("the proof's key_attestation must be a JWT")),
    };
    let named = [
        header.kid.is_some(),
        header.jwk.is_some(),
        header.x5c.is_some(),
    ]
    .iter()
    .filter(|named| **named)
    .count();
    if named != 1 {
        return Err(invalid(
            "the proof header must carry exactly one of kid, jwk and x5c",
        ));
    }
    let mut did_url = None;
    if let Some(jwk) = &header.jwk {
        if jwk.is_private() {
            return Err(invalid("the proof header carries a private key"));
        }
        if !policy.binds("jwk") {
            return Err(invalid(
                "this credential is not bound to a jwk; name a key of a supported binding method",
            ));
        }
    } else if let Some(kid) = &header.kid {
        let url = DidUrl::parse(kid)
            .map_err(|_| invalid("the proof's kid must be a DID URL naming the holder's key"))?;
        let method = format!("did:{}", url.did().method());
        if !policy.binds(&method) {
            return Err(invalid(format!(
                "this credential is not bound to {method} DIDs"
            )));
        }
        did_url = Some(url);
    } else if !policy.binds("jwk") {
        return Err(invalid(
            "this credential is not bound to a jwk; an x5c key cannot be bound",
        ));
    }
    let verify_policy = VerifyPolicy::default()
        .with_algorithms(&policy.algorithms)
        .with_typ(PROOF_TYP)
        .trust_embedded_jwk();
    let verified = jws
        .verify_with(resolver, &verify_policy, None)
        .await
        .map_err(|err| match err {
            JoseError::AlgorithmNotAllowed(alg) => invalid(format!(
                "alg {} is not accepted for this credential",
                alg.name()
            )),
            JoseError::UnexpectedType { .. } => {
                invalid(format!("the proof's typ must be {PROOF_TYP}"))
            }
            JoseError::InvalidSignature => invalid("the proof's signature does not verify"),
            JoseError::KeyNotFound => invalid("the proof's key could not be found"),
            JoseError::UntrustedKey(reason) => {
                invalid(format!("the proof's key is not trusted: {reason}"))
            }
            JoseError::KeyAlgorithmMismatch(_) => invalid("the proof's key does not match its alg"),
            JoseError::KeySource(..) => invalid("the proof's key could not be resolved"),
            other => invalid(format!("the proof is not acceptable: {other}")),
        })?;
    let key: Arc<VerifyingKey> = verified
        .key()
        .cloned()
        .ok_or_else(|| invalid("the proof's key could not be found"))?;
    let claims = verified
        .claims()
        .map_err(|_| invalid("the proof's payload is not a JSON object"))?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == policy.credential_issuer,
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|aud| aud.as_str() == Some(policy.credential_issuer.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid(format!(
            "the proof's aud must be the credential issuer {}",
            policy.credential_issuer
        )));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the proof's iat is missing or not an integer"))?;
    if iat < now.saturating_sub(policy.max_age_secs) {
        return Err(invalid("the proof's iat is too old"));
    }
    if iat > now.saturating_add(policy.max_future_secs) {
        return Err(invalid("the proof's iat is in the future"));
    }
    if let (Some(client_id), Some(iss)) = (&policy.client_id, claims.get("iss"))
        && iss.as_str() != Some(client_id.as_str())
    {
        return Err(invalid(
            "the proof's iss is not the client of the access token",
        ));
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) if !nonce.is_empty() => Some(nonce.clone()),
        Some(_) => return Err(invalid("the proof's nonce must be a non-empty string")),
    };
    if policy.require_nonce && nonce.is_none() {
        return Err(ProtocolError::new(
            CredentialErrorCode::InvalidNonce,
            "the proof carries no nonce; fetch a c_nonce from the nonce endpoint",
        ));
    }
    Ok(ProvenKey {
        jwk: key.jwk().clone(),
        did_url,
        nonce,
        key_attestation,
    })
}

/// The `typ` of key attestations (Appendix D.1).
pub const KEY_ATTESTATION_TYP: &str = "key-attestation+jwt";

/// The most keys one key attestation may attest.
pub const MAX_ATTESTED_KEYS: usize = 64;

/// A key attestation whose signature, times and content were checked (Appendix D.1): the
/// wallet provider's statement about the keys and how they are protected.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyAttestation {
    /// `attested_keys`: the public keys the attestation is about.
    pub attested_keys: Vec<Jwk>,
    /// `key_storage`: the attack potential resistance of the key storage.
    pub key_storage: Vec<String>,
    /// `user_authentication`: the attack potential resistance of the user authentication.
    pub user_authentication: Vec<String>,
    /// `nonce`, when the attestation carries one.
    pub nonce: Option<String>,
}

impl KeyAttestation {
    /// Whether `key` is one of the attested keys (by RFC 7638 thumbprint).
    #[must_use]
    pub fn attests(&self, key: &Jwk) -> bool {
        let thumbprint = key.thumbprint();
        self.attested_keys
            .iter()
            .any(|attested| attested.thumbprint() == thumbprint)
    }
}

/// Verifies a key attestation (Appendix D.1, F.4 step 9): `typ` `key-attestation+jwt`, an
/// asymmetric `alg`, the signature of a wallet provider that `trusted` resolves (an `x5c`
/// chain to its anchors, or a `kid` of its keys), `iat` not in the future, `exp` (required
/// when `require_exp`, as for attestations inside JWT proofs) not passed, `attested_keys`
/// (one to [`MAX_ATTESTED_KEYS`] public keys), and `key_storage` and `user_authentication`
/// meeting `requirements` (when a requirement lists levels, the attestation must state one
/// of them).
///
/// # Errors
/// `invalid_proof` naming the first check that failed.
pub async fn verify_key_attestation(
    jwt: &str,
    requirements: &crate::config::KeyAttestationRequirements,
    trusted: &dyn KeyResolver,
    now: i64,
    require_exp: bool,
    limits: &Limits,
) -> Result<KeyAttestation, ProtocolError> {
    let jws = Jws::parse(jwt, limits).map_err(|err| match err {
        JoseError::TooLarge { .. } => invalid("the key attestation is too large"),
        _ => invalid("the key attestation is not a compact JWS"),
    })?;
    let policy = VerifyPolicy::default()
        .with_algorithms(&Algorithm::ALL)
        .with_typ(KEY_ATTESTATION_TYP);
    let verified = jws
        .verify_with(trusted, &policy, None)
        .await
        .map_err(|err| match err {
            JoseError::UnexpectedType { .. } => invalid(format!(
                "the key attestation's typ must be {KEY_ATTESTATION_TYP}"
            )),
            JoseError::InvalidSignature => {
                invalid("the key attestation's signature does not verify")
            }
            _ => invalid("the key attestation is not signed by a trusted wallet provider"),
        })?;
    let claims = verified
        .claims()
        .map_err(|_| invalid("the key attestation's payload is not a JSON object"))?;
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the key attestation's iat is missing or not an integer"))?;
    if iat > now.saturating_add(60) {
        return Err(invalid("the key attestation's iat is in the future"));
    }
    match claims.get("exp") {
        None if require_exp => {
            return Err(invalid("the key attestation has no exp"));
        }
        None => {}
        Some(exp) => {
            let exp = exp
                .as_i64()
                .ok_or_else(|| invalid("the key attestation's exp is not an integer"))?;
            if exp <= now {
                return Err(invalid("the key attestation has expired"));
            }
        }
    }
    let keys = match claims.get("attested_keys") {
        Some(Value::Array(keys)) if !keys.is_empty() && keys.len() <= MAX_ATTESTED_KEYS => keys,
        _ => {
            return Err(invalid(format!(
                "the key attestation's attested_keys must list 1 to {MAX_ATTESTED_KEYS} keys"
            )));
        }
    };
    let mut attested_keys = Vec::with_capacity(keys.len());
    for key in keys {
        let jwk: Jwk = serde_json::from_value(key.clone())
            .map_err(|_| invalid("an attested key is not a JWK"))?;
        if jwk.is_private() {
            return Err(invalid("an attested key is a private key"));
        }
        attested_keys.push(jwk);
    }
    let levels = |name: &str| -> Result<Vec<String>, ProtocolError> {
        match claims.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| value.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(format!("the key attestation's {name} must be strings"))),
            Some(_) => Err(invalid(format!(
                "the key attestation's {name} must be an array"
            ))),
        }
    };
    let key_storage = levels("key_storage")?;
    let user_authentication = levels("user_authentication")?;
    for (name, required, stated) in [
        ("key_storage", &requirements.key_storage, &key_storage),
        (
            "user_authentication",
            &requirements.user_authentication,
            &user_authentication,
        ),
    ] {
        if !required.is_empty() && !stated.iter().any(|level| required.contains(level)) {
            return Err(invalid(format!(
                "the key attestation's {name} does not meet the issuer's requirement ({})",
                required.join(", ")
            )));
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) if !nonce.is_empty() => Some(nonce.clone()),
        Some(_) => {
            return Err(invalid(
                "the key attestation's nonce must be a non-empty string",
            ));
        }
    };
    Ok(KeyAttestation {
        attested_keys,
        key_storage,
        user_authentication,
        nonce,
    })
}
