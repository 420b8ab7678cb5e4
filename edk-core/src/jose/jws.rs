//! JWS compact serialization (RFC 7515 §7.1): sign, parse, verify.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Algorithm, JoseError, Jwk, KeyQuery, KeyResolver, Signer, VerifyingKey};
use crate::encoding::{b64url_decode, b64url_encode};
use crate::limits::Limits;

/// Header parameters registered by RFC 7515 that must never be listed in `crit` (§4.1.11).
const REGISTERED: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
];

/// A JWS protected header.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Header {
    /// `alg`.
    pub alg: Algorithm,
    /// `typ`, e.g. `dc+sd-jwt`, `kb+jwt`, `statuslist+jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `cty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// `jwk`: a public key embedded in the header; trusted only where the policy says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
    /// `x5c`: a certificate chain, leaf first, standard base64 DER.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// `crit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<Vec<String>>,
    /// Every other parameter.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// A header with only `alg`.
    #[must_use]
    pub fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            typ: None,
            kid: None,
            cty: None,
            jwk: None,
            x5c: None,
            crit: None,
            extra: Map::new(),
        }
    }

    /// The header with `typ` set.
    #[must_use]
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The header with `kid` set.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The header with a public `jwk` embedded (private members are stripped).
    #[must_use]
    pub fn with_jwk(mut self, jwk: &Jwk) -> Self {
        self.jwk = Some(jwk.to_public());
        self
    }

    /// The header with an `x5c` chain.
    #[must_use]
    pub fn with_x5c(mut self, x5c: Vec<String>) -> Self {
        self.x5c = Some(x5c);
        self
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    jwk: Option<Jwk>,
    #[serde(default)]
    x5c: Option<Vec<String>>,
    #[serde(default)]
    crit: Option<Vec<String>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// What a verifier accepts. The default allows every supported algorithm, expects no
/// particular `typ`, understands no `crit` extension and never trusts a header `jwk`.
#[derive(Clone, Debug)]
pub struct VerifyPolicy {
    allowed: Vec<Algorithm>,
    typ: Option<String>,
    understood_crit: Vec<String>,
    trust_embedded_jwk: bool,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            allowed: Algorithm::ALL.to_vec(),
            typ: None,
            understood_crit: Vec::new(),
            trust_embedded_jwk: false,
        }
    }
}

impl VerifyPolicy {
    /// The policy restricted to `algorithms`.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.allowed = algorithms.to_vec();
        self
    }

    /// The policy requiring `typ` (compared per RFC 7515 §4.1.9: case-insensitive, with or
    /// without the `application/` prefix).
    #[must_use]
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The policy understanding the `crit` extension parameter `name`.
    #[must_use]
    pub fn understanding(mut self, name: impl Into<String>) -> Self {
        self.understood_crit.push(name.into());
        self
    }

    /// The policy verifying with a `jwk` carried in the header itself.
    ///
    /// Only for protocols whose point is proof of possession of that key (DPoP proofs,
    /// OID4VCI key proofs); the caller must then decide whether it trusts the key.
    #[must_use]
    pub fn trust_embedded_jwk(mut self) -> Self {
        self.trust_embedded_jwk = true;
        self
    }

    /// The algorithms this policy allows.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.allowed
    }

    fn check_header(&self, header: &Header) -> Result<(), JoseError> {
        if !self.allowed.contains(&header.alg) {
            return Err(JoseError::AlgorithmNotAllowed(header.alg));
        }
        if let Some(crit) = &header.crit {
            if crit.is_empty() {
                return Err(JoseError::Malformed {
                    what: "JWS header",
                    reason: "`crit` must not be empty",
                });
            }
            for name in crit {
                if REGISTERED.contains(&name.as_str()) {
                    return Err(JoseError::Malformed {
                        what: "JWS header",
                        reason: "`crit` lists a registered parameter",
                    });
                }
                if !self.understood_crit.contains(name) {
                    return Err(JoseError::UnsupportedCritical(truncate(name)));
                }
                if !header.extra.contains_key(name) {
                    return Err(JoseError::Malformed {
                        what: "JWS header",
                        reason: "`crit` lists a parameter the header does not carry",
                    });
                }
            }
        }
        if let Some(expected) = &self.typ {
            let matches = header
                .typ
                .as_deref()
                .is_some_and(|typ| normalize_typ(typ) == normalize_typ(expected));
            if !matches {
                return Err(JoseError::UnexpectedType {
                    expected: expected.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Refuses a compact token longer than [`Limits::max_token_bytes`], before any parsing.
pub(super) fn check_token_size(token: &str, limits: &Limits) -> Result<(), JoseError> {
    if token.len() > limits.max_token_bytes {
        return Err(JoseError::TooLarge {
            size: token.len(),
            limit: limits.max_token_bytes,
        });
    }
    Ok(())
}

fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Signs `payload` under `header` with `signer`, returning the compact JWS.
///
/// `header.kid` is filled from the signer when absent.
///
/// # Errors
/// [`JoseError::KeyAlgorithmMismatch`] when `header.alg` is not the signer's algorithm, and
/// [`JoseError::Signing`] when the signer fails.
pub async fn sign(
    mut header: Header,
    payload: &[u8],
    signer: &(dyn Signer + '_),
) -> Result<String, JoseError> {
    if header.alg != signer.algorithm() {
        return Err(JoseError::KeyAlgorithmMismatch(header.alg));
    }
    if header.kid.is_none() {
        header.kid = signer.kid().map(|kid| kid.as_str().to_owned());
    }
    let header_json = serde_json::to_vec(&header).map_err(|_| JoseError::Crypto)?;
    let mut token = String::with_capacity((header_json.len() + payload.len()) * 4 / 3 + 100);
    token.push_str(&b64url_encode(&header_json));
    token.push('.');
    token.push_str(&b64url_encode(payload));
    let signature = signer
        .sign(token.as_bytes())
        .await
        .map_err(JoseError::Signing)?;
    token.push('.');
    token.push_str(&b64url_encode(&signature));
    Ok(token)
}

/// A parsed compact JWS whose signature has not been checked yet.
#[derive(Clone, Debug)]
pub struct Jws {
    header: Header,
    signing_input: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses a compact JWS: three base64url parts, a JSON object header with a supported
    /// `alg`. Nothing is trusted yet.
    ///
    /// # Errors
    /// [`JoseError::TooLarge`], [`JoseError::Malformed`] or
    /// [`JoseError::UnsupportedAlgorithm`] (which covers `none` and HMAC).
    pub fn parse(token: &str, limits: &Limits) -> Result<Self, JoseError> {
        check_token_size(token, limits)?;
        let malformed = |reason| JoseError::Malformed {
            what: "JWS",
            reason,
        };
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three dot-separated parts"));
        };
        let header_bytes =
            b64url_decode(header_b64).map_err(|_| malformed("header is not base64url"))?;
        let raw: RawHeader = serde_json::from_slice(&header_bytes)
            .map_err(|_| malformed("header is not a JSON object with a string `alg`"))?;
        let alg = Algorithm::from_name(&raw.alg)
            .ok_or_else(|| JoseError::UnsupportedAlgorithm(truncate(&raw.alg)))?;
        let header = Header {
            alg,
            typ: raw.typ,
            kid: raw.kid,
            cty: raw.cty,
            jwk: raw.jwk,
            x5c: raw.x5c,
            crit: raw.crit,
            extra: raw.extra,
        };
        let payload =
            b64url_decode(payload_b64).map_err(|_| malformed("payload is not base64url"))?;
        let signature =
            b64url_decode(signature_b64).map_err(|_| malformed("signature is not base64url"))?;
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    /// The protected header (not yet verified).
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The payload, not yet verified: only for choosing a key (e.g. reading `iss`).
    #[must_use]
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// Verifies the JWS with `key` under `policy`.
    ///
    /// # Errors
    /// Any header check of the policy, [`JoseError::KeyAlgorithmMismatch`] or
    /// [`JoseError::InvalidSignature`].
    pub fn verify(
        self,
        key: &VerifyingKey,
        policy: &VerifyPolicy,
    ) -> Result<VerifiedJws, JoseError> {
        policy.check_header(&self.header)?;
        self.check_signature(key)
    }

    /// Verifies the JWS with the key `resolver` finds for it (or the header's `jwk`, if the
    /// policy trusts embedded keys). `issuer` is the token's claimed issuer, if the caller
    /// has read one from the unverified payload.
    ///
    /// # Errors
    /// As [`Jws::verify`], plus the resolver's errors.
    pub async fn verify_with(
        self,
        resolver: &(dyn KeyResolver + '_),
        policy: &VerifyPolicy,
        issuer: Option<&str>,
    ) -> Result<VerifiedJws, JoseError> {
        policy.check_header(&self.header)?;
        let key = match (&self.header.jwk, policy.trust_embedded_jwk) {
            (Some(jwk), true) => Arc::new(VerifyingKey::from_jwk(jwk)?),
            (Some(_), false) if self.header.kid.is_none() && self.header.x5c.is_none() => {
                return Err(JoseError::EmbeddedKeyRefused);
            }
            _ => {
                let query = KeyQuery::new(self.header.alg)
                    .with_kid(self.header.kid.as_deref())
                    .with_x5c(self.header.x5c.as_deref())
                    .with_issuer(issuer);
                resolver.resolve(&query).await?
            }
        };
        let mut verified = self.check_signature(&key)?;
        verified.key = Some(key);
        Ok(verified)
    }

    fn check_signature(self, key: &VerifyingKey) -> Result<VerifiedJws, JoseError> {
        key.verify(
            self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )?;
        Ok(VerifiedJws {
            header: self.header,
            payload: self.payload,
            key: None,
        })
    }
}

/// A JWS whose signature verified.
#[derive(Clone, Debug)]
pub struct VerifiedJws {
    header: Header,
    payload: Vec<u8>,
    key: Option<Arc<VerifyingKey>>,
}

impl VerifiedJws {
    /// The protected header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The verified payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The key that verified it, when it came from a resolver or the header.
    #[must_use]
    pub const fn key(&self) -> Option<&Arc<VerifyingKey>> {
        self.key.as_ref()
    }

    /// The payload parsed as a JSON object (the JWT claims set).
    ///
    /// # Errors
    /// [`JoseError::Malformed`] when the payload is not a JSON object.
    pub fn claims(&self) -> Result<Map<String, Value>, JoseError> {
        serde_json::from_slice(&self.payload).map_err(|_| JoseError::Malformed {
            what: "JWT",
            reason: "payload is not a JSON object",
        })
    }

    /// Splits into header and payload.
    #[must_use]
    pub fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{JwksResolver, SigningKey};

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn forge(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64url_encode(header),
            b64url_encode(payload),
            b64url_encode(signature)
        )
    }

    #[test]
    fn alg_none_and_hmac_are_refused_at_parse() {
        for alg in ["none", "HS256", "None", "nOnE"] {
            let token = forge(&format!(r#"{{"alg":"{alg}"}}"#), "{}", b"");
            assert!(
                matches!(
                    Jws::parse(&token, &Limits::DEFAULT),
                    Err(JoseError::UnsupportedAlgorithm(_))
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_as_secret_is_refused() {
        let key = SigningKey::generate(Algorithm::Rs256).unwrap();
        let public = serde_json::to_vec(&key.public_jwk()).unwrap();
        let input = format!(
            "{}.{}",
            b64url_encode(r#"{"alg":"HS256"}"#),
            b64url_encode("{}")
        );
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64url_encode(mac.as_ref()));
        assert!(matches!(
            Jws::parse(&token, &Limits::DEFAULT),
            Err(JoseError::UnsupportedAlgorithm(alg)) if alg == "HS256"
        ));
    }

    #[test]
    fn sign_then_verify_under_policy() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let token = block_on(sign(
            Header::new(Algorithm::EdDsa).with_typ("kb+jwt"),
            b"{\"a\":1}",
            &key,
        ))
        .unwrap();
        let jws = Jws::parse(&token, &Limits::DEFAULT).unwrap();
        assert_eq!(jws.header().kid.as_deref(), Some(key.kid().as_str()));
        let verified = jws
            .clone()
            .verify(
                key.verifying_key(),
                &VerifyPolicy::default().with_typ("application/KB+JWT"),
            )
            .unwrap();
        assert_eq!(verified.claims().unwrap()["a"], 1);
        assert!(matches!(
            jws.clone().verify(
                key.verifying_key(),
                &VerifyPolicy::default().with_typ("JWT")
            ),
            Err(JoseError::UnexpectedType { .. })
        ));
        assert!(matches!(
            jws.verify(
                key.verifying_key(),
                &VerifyPolicy::default().with_algorithms(&[Algorithm::Es256])
            ),
            Err(JoseError::AlgorithmNotAllowed(Algorithm::EdDsa))
        ));
    }

    #[test]
    fn unknown_crit_fails_and_understood_crit_passes() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut header = Header::new(Algorithm::Es256);
        header.crit = Some(vec!["exp-ext".to_owned()]);
        header.extra.insert("exp-ext".to_owned(), Value::Bool(true));
        let token = block_on(sign(header, b"{}", &key)).unwrap();
        let parsed = Jws::parse(&token, &Limits::DEFAULT).unwrap();
        assert!(matches!(
            parsed.clone().verify(key.verifying_key(), &VerifyPolicy::default()),
            Err(JoseError::UnsupportedCritical(name)) if name == "exp-ext"
        ));
        parsed
            .verify(
                key.verifying_key(),
                &VerifyPolicy::default().understanding("exp-ext"),
            )
            .unwrap();
    }

    #[test]
    fn embedded_jwk_is_not_trusted_by_default() {
        let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
        let header = Header::new(Algorithm::Es256).with_jwk(&attacker.public_jwk());
        let mut header = header;
        header.kid = None;
        let token = {
            let header_json = serde_json::to_vec(&header).unwrap();
            let input = format!("{}.{}", b64url_encode(header_json), b64url_encode("{}"));
            let sig = attacker.sign_bytes(input.as_bytes()).unwrap();
            format!("{input}.{}", b64url_encode(sig))
        };
        let trusted = SigningKey::generate(Algorithm::Es256).unwrap();
        let resolver = JwksResolver::from_keys([&trusted.public_jwk()]);
        let parsed = Jws::parse(&token, &Limits::DEFAULT).unwrap();
        assert!(matches!(
            block_on(
                parsed
                    .clone()
                    .verify_with(&resolver, &VerifyPolicy::default(), None)
            ),
            Err(JoseError::EmbeddedKeyRefused)
        ));
        block_on(parsed.verify_with(
            &resolver,
            &VerifyPolicy::default().trust_embedded_jwk(),
            None,
        ))
        .unwrap();
    }

    #[test]
    fn malformed_tokens_get_typed_errors() {
        for token in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "e30.e30.!!",
            "W10.e30.",
            "e30.e30.",
        ] {
            assert!(Jws::parse(token, &Limits::DEFAULT).is_err(), "{token}");
        }
        let big = "a".repeat(Limits::DEFAULT.max_token_bytes + 1);
        assert!(matches!(
            Jws::parse(&big, &Limits::DEFAULT),
            Err(JoseError::TooLarge { .. })
        ));
    }
}
