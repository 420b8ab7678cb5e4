//! The Status List Token in CWT form (Status List §5.2): issue and verify.
//!
//! The token is a CWT Claims Set signed as a `COSE_Sign1_Tagged` (tag 18, RFC 9052 §4.2),
//! without the CWT tag 61, whose protected header carries `alg` and `typ` (label 16, RFC 9596)
//! `application/statuslist+cwt`. Signatures come from the same [`Signer`] as the JWT form:
//! COSE and JOSE sign the same bytes the same way for every algorithm EDK implements.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ciborium::Value;
use coset::iana::EnumI64 as _;
use coset::{
    CoseSign1, Header as CoseHeader, Label, ProtectedHeader, RegisteredLabelWithPrivate,
    TaggedCborSerializable as _, iana,
};
use serde_json::{Map, Number};

use super::cbor::{CborStatusList, integer, unsigned};
use super::list::check_uri;
use super::token::{StatusListPolicy, refresh_at, status_in};
use super::{StatusList, StatusListError, StatusListReference, StatusType};
use crate::jose::{Algorithm, JoseError, KeyQuery, KeyResolver, Signer, VerifyingKey};

/// The media type of a Status List Token in CWT form, which is also the value of its `typ`
/// (label 16) protected header parameter (Status List §5.2, §8.1).
pub const CWT_MEDIA_TYPE: &str = "application/statuslist+cwt";

/// The `typ` header parameter (RFC 9596).
const TYP: i64 = 16;
/// The `x5chain` header parameter (RFC 9360).
const X5CHAIN: i64 = 33;
/// Header parameters this module reads, and so may be listed in `crit`.
const UNDERSTOOD: [i64; 4] = [1, 4, TYP, X5CHAIN];

const ISS: i128 = 1;
const SUB: i128 = 2;
const AUD: i128 = 3;
const EXP: i128 = 4;
const NBF: i128 = 5;
const IAT: i128 = 6;
const STATUS_LIST: i128 = 65_533;
const TTL: i128 = 65_534;

/// The claims of a Status List Token in CWT form (Status List §5.2). Other claims of a
/// verified token are accepted and not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusListCwtClaims {
    /// `sub` (2): the URI of this Status List Token, which Referenced Tokens name as
    /// `status.status_list.uri`.
    pub sub: String,
    /// `iat` (6): when the token was issued, in seconds since the epoch.
    pub iat: i64,
    /// `exp` (4): when the token expires (RECOMMENDED).
    pub exp: Option<i64>,
    /// `ttl` (65534): how many seconds a relying party may cache the token before fetching it
    /// again (RECOMMENDED, positive).
    pub ttl: Option<u64>,
    /// `iss` (1): the Status Issuer (optional).
    pub iss: Option<String>,
    /// `status_list` (65533): the list in CBOR form.
    pub status_list: CborStatusList,
}

impl StatusListCwtClaims {
    /// The claims for `list`, published at `sub`, issued at `iat`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `sub` is not an absolute URI, and
    /// [`StatusListError::Compression`] if the list cannot be compressed.
    pub fn new(
        sub: impl Into<String>,
        iat: i64,
        list: &StatusList,
    ) -> Result<Self, StatusListError> {
        Self::with_list(sub, iat, list.encode_cbor()?)
    }

    /// The claims for a list already in CBOR form, e.g. compressed once for both token
    /// forms.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `sub` is not an absolute URI.
    pub fn with_list(
        sub: impl Into<String>,
        iat: i64,
        status_list: CborStatusList,
    ) -> Result<Self, StatusListError> {
        let sub = sub.into();
        check_uri(&sub, "sub")?;
        Ok(Self {
            sub,
            iat,
            exp: None,
            ttl: None,
            iss: None,
            status_list,
        })
    }

    /// The claims with `exp`.
    #[must_use]
    pub const fn with_exp(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }

    /// The claims with `ttl`, in seconds.
    #[must_use]
    pub const fn with_ttl(mut self, ttl: u64) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The claims with `iss`.
    #[must_use]
    pub fn with_iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// The CWT Claims Set.
    #[must_use]
    pub fn to_cbor(&self) -> Value {
        let mut map = Vec::with_capacity(6);
        if let Some(iss) = &self.iss {
            map.push((Value::from(1), Value::Text(iss.clone())));
        }
        map.push((Value::from(2), Value::Text(self.sub.clone())));
        map.push((Value::from(6), Value::from(self.iat)));
        if let Some(exp) = self.exp {
            map.push((Value::from(4), Value::from(exp)));
        }
        if let Some(ttl) = self.ttl {
            map.push((Value::from(65_534), Value::from(ttl)));
        }
        map.push((Value::from(65_533), self.status_list.to_cbor()));
        Value::Map(map)
    }

    fn check(&self) -> Result<(), StatusListError> {
        check_uri(&self.sub, "sub")?;
        if self.ttl == Some(0) {
            return Err(StatusListError::InvalidClaim("ttl"));
        }
        if self.exp.is_some_and(|exp| exp <= self.iat) {
            return Err(StatusListError::InvalidClaim("exp"));
        }
        Ok(())
    }
}

/// A verified Status List Token in CWT form with its decompressed list (Status List §8.3
/// steps 3–5).
#[derive(Clone, Debug)]
pub struct StatusListCwt {
    alg: Algorithm,
    kid: Option<Vec<u8>>,
    x5chain: Vec<Vec<u8>>,
    claims: StatusListCwtClaims,
    list: StatusList,
}

impl StatusListCwt {
    /// Signs `claims` as a Status List Token in CWT form: a `COSE_Sign1_Tagged` whose
    /// protected header has the signer's `alg` and `typ` `application/statuslist+cwt`, and
    /// whose unprotected header has the signer's key id, if any (Status List §5.2).
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] for a `sub` that is not an absolute URI,
    /// [`StatusListError::InvalidClaim`] for a zero `ttl` or an `exp` not after `iat`, and
    /// [`StatusListError::Token`] when signing fails.
    pub async fn issue(
        claims: &StatusListCwtClaims,
        signer: &(dyn Signer + '_),
    ) -> Result<Vec<u8>, StatusListError> {
        Self::issue_with_x5chain(claims, signer, &[]).await
    }

    /// As [`StatusListCwt::issue`], with the signer's certificate chain (DER, leaf first) in
    /// the protected `x5chain` header parameter (RFC 9360), where the profile asks for one.
    ///
    /// # Errors
    /// As [`StatusListCwt::issue`].
    pub async fn issue_with_x5chain(
        claims: &StatusListCwtClaims,
        signer: &(dyn Signer + '_),
        x5chain: &[Vec<u8>],
    ) -> Result<Vec<u8>, StatusListError> {
        claims.check()?;
        let mut protected = CoseHeader {
            alg: Some(RegisteredLabelWithPrivate::Assigned(cose_algorithm(
                signer.algorithm(),
            ))),
            ..CoseHeader::default()
        };
        protected
            .rest
            .push((Label::Int(TYP), Value::Text(CWT_MEDIA_TYPE.to_owned())));
        match x5chain {
            [] => {}
            [leaf] => protected
                .rest
                .push((Label::Int(X5CHAIN), Value::Bytes(leaf.clone()))),
            chain => protected.rest.push((
                Label::Int(X5CHAIN),
                Value::Array(chain.iter().cloned().map(Value::Bytes).collect()),
            )),
        }
        let unprotected = CoseHeader {
            key_id: signer
                .kid()
                .map(|kid| kid.as_str().as_bytes().to_vec())
                .unwrap_or_default(),
            ..CoseHeader::default()
        };
        let mut payload = Vec::new();
        ciborium::into_writer(&claims.to_cbor(), &mut payload)
            .map_err(|_| StatusListError::CborEncoding)?;
        let mut sign1 = CoseSign1 {
            protected: ProtectedHeader {
                original_data: None,
                header: protected,
            },
            unprotected,
            payload: Some(payload),
            signature: Vec::new(),
        };
        sign1.signature = signer
            .sign(&sign1.tbs_data(b""))
            .await
            .map_err(|err| StatusListError::Token(JoseError::Signing(err)))?;
        sign1
            .to_tagged_vec()
            .map_err(|_| StatusListError::CborEncoding)
    }

    /// Verifies `token` with `key` as the Status List Token published at `uri` (the
    /// Referenced Token's `status.status_list.uri`), at time `now` (seconds since the epoch),
    /// and decompresses its list (Status List §8.3 steps 3–5). `policy` is the one the JWT
    /// form uses: its algorithms, claim validation and limits apply here too, and `typ` must
    /// be `application/statuslist+cwt`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidCwt`] for a token that is not a `COSE_Sign1_Tagged` CWT,
    /// [`StatusListError::Token`] for a token over the size limit, a bad signature, `typ`,
    /// algorithm, `iat` or `exp`, [`StatusListError::InvalidClaim`] for missing or malformed
    /// claims, [`StatusListError::SubjectMismatch`] when `sub` is not `uri`, and the errors of
    /// [`CborStatusList::decode`].
    pub fn verify(
        token: &[u8],
        key: &VerifyingKey,
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<Self, StatusListError> {
        let parsed = Parsed::parse(token, policy)?;
        parsed.check_signature(key)?;
        parsed.into_verified(uri, policy, now)
    }

    /// As [`StatusListCwt::verify`], with the key `resolver` finds for the token's `alg`,
    /// `kid` and `x5chain` and its claimed `iss` (Status List §11.3).
    ///
    /// # Errors
    /// As [`StatusListCwt::verify`], plus the resolver's errors as [`StatusListError::Token`].
    pub async fn verify_with(
        token: &[u8],
        resolver: &(dyn KeyResolver + '_),
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<Self, StatusListError> {
        let parsed = Parsed::parse(token, policy)?;
        let x5c: Vec<String> = parsed
            .x5chain
            .iter()
            .map(|der| STANDARD.encode(der))
            .collect();
        let query = KeyQuery::new(parsed.alg)
            .with_kid(
                parsed
                    .kid
                    .as_deref()
                    .and_then(|kid| std::str::from_utf8(kid).ok()),
            )
            .with_x5c((!x5c.is_empty()).then_some(x5c.as_slice()))
            .with_issuer(parsed.issuer());
        let key = resolver.resolve(&query).await?;
        parsed.check_signature(&key)?;
        parsed.into_verified(uri, policy, now)
    }

    /// The signature algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id (`kid`, label 4) of the protected or unprotected header, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&[u8]> {
        self.kid.as_deref()
    }

    /// The `x5chain` certificates (DER, leaf first), if the header carries any.
    #[must_use]
    pub fn x5chain(&self) -> &[Vec<u8>] {
        &self.x5chain
    }

    /// The claims.
    #[must_use]
    pub const fn claims(&self) -> &StatusListCwtClaims {
        &self.claims
    }

    /// The decompressed list.
    #[must_use]
    pub const fn list(&self) -> &StatusList {
        &self.list
    }

    /// The decompressed list, without the token.
    #[must_use]
    pub fn into_list(self) -> StatusList {
        self.list
    }

    /// As [`StatusListToken::status`](super::StatusListToken::status).
    ///
    /// # Errors
    /// As [`StatusListToken::status`](super::StatusListToken::status).
    pub fn status(&self, reference: &StatusListReference) -> Result<StatusType, StatusListError> {
        status_in(&self.claims.sub, &self.list, reference)
    }

    /// As [`StatusListToken::refresh_at`](super::StatusListToken::refresh_at).
    #[must_use]
    pub fn refresh_at(&self, fetched_at: i64) -> Option<i64> {
        refresh_at(self.claims.ttl, self.claims.exp, fetched_at)
    }
}

/// The JOSE algorithms EDK implements, by their COSE identifiers (RFC 9053, RFC 8812,
/// RFC 9864).
const fn cose_algorithm(alg: Algorithm) -> iana::Algorithm {
    match alg {
        Algorithm::EdDsa => iana::Algorithm::EdDSA,
        Algorithm::Ed25519 => iana::Algorithm::Ed25519,
        Algorithm::Es256 => iana::Algorithm::ES256,
        Algorithm::Es256K => iana::Algorithm::ES256K,
        Algorithm::Es384 => iana::Algorithm::ES384,
        Algorithm::Ps256 => iana::Algorithm::PS256,
        Algorithm::Rs256 => iana::Algorithm::RS256,
    }
}

fn jose_algorithm(
    alg: &RegisteredLabelWithPrivate<iana::Algorithm>,
) -> Result<Algorithm, StatusListError> {
    let found = match alg {
        RegisteredLabelWithPrivate::Assigned(assigned) => Algorithm::ALL
            .into_iter()
            .find(|candidate| cose_algorithm(*candidate) == *assigned),
        _ => None,
    };
    found.ok_or_else(|| {
        let name = match alg {
            RegisteredLabelWithPrivate::Assigned(assigned) => assigned.to_i64().to_string(),
            RegisteredLabelWithPrivate::PrivateUse(value) => value.to_string(),
            RegisteredLabelWithPrivate::Text(text) => text.chars().take(64).collect(),
        };
        StatusListError::Token(JoseError::UnsupportedAlgorithm(format!("COSE {name}")))
    })
}

/// A `COSE_Sign1_Tagged` CWT whose structure and protected header checked, signature not yet.
struct Parsed {
    sign1: CoseSign1,
    alg: Algorithm,
    kid: Option<Vec<u8>>,
    x5chain: Vec<Vec<u8>>,
    claims: Vec<(Value, Value)>,
}

impl Parsed {
    fn parse(token: &[u8], policy: &StatusListPolicy) -> Result<Self, StatusListError> {
        let limit = policy.limits.max_token_bytes;
        if token.len() > limit {
            return Err(StatusListError::Token(JoseError::TooLarge {
                size: token.len(),
                limit,
            }));
        }
        let sign1 = CoseSign1::from_tagged_slice(token)
            .map_err(|_| StatusListError::InvalidCwt("not a COSE_Sign1_Tagged structure"))?;
        let protected = &sign1.protected.header;
        let unprotected = &sign1.unprotected;
        if unprotected.alg.is_some() || header_value(unprotected, TYP).is_some() {
            return Err(StatusListError::InvalidCwt(
                "`alg` and `typ` belong in the protected header",
            ));
        }
        let alg = jose_algorithm(protected.alg.as_ref().ok_or(StatusListError::InvalidCwt(
            "the protected header has no `alg`",
        ))?)?;
        if !policy.verify.algorithms().contains(&alg) {
            return Err(StatusListError::Token(JoseError::AlgorithmNotAllowed(alg)));
        }
        for label in &protected.crit {
            let understood = match label {
                RegisteredLabelWithPrivate::Assigned(assigned) => {
                    UNDERSTOOD.contains(&assigned.to_i64())
                }
                RegisteredLabelWithPrivate::PrivateUse(value) => UNDERSTOOD.contains(value),
                RegisteredLabelWithPrivate::Text(_) => false,
            };
            if !understood {
                return Err(StatusListError::Token(JoseError::UnsupportedCritical(
                    format!("{label:?}").chars().take(64).collect(),
                )));
            }
        }
        let typ_matches = matches!(
            header_value(protected, TYP),
            Some(Value::Text(typ)) if typ.eq_ignore_ascii_case(CWT_MEDIA_TYPE)
        );
        if !typ_matches {
            return Err(StatusListError::Token(JoseError::UnexpectedType {
                expected: CWT_MEDIA_TYPE.to_owned(),
            }));
        }
        let kid = [&protected.key_id, &unprotected.key_id]
            .into_iter()
            .find(|kid| !kid.is_empty())
            .cloned();
        let x5chain =
            match header_value(protected, X5CHAIN).or_else(|| header_value(unprotected, X5CHAIN)) {
                None => Vec::new(),
                Some(Value::Bytes(der)) => vec![der.clone()],
                Some(Value::Array(chain)) if !chain.is_empty() => chain
                    .iter()
                    .map(|cert| match cert {
                        Value::Bytes(der) => Ok(der.clone()),
                        _ => Err(StatusListError::InvalidCwt(
                            "`x5chain` is not a list of certificates",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(StatusListError::InvalidCwt(
                        "`x5chain` is not a list of certificates",
                    ));
                }
            };
        let payload = sign1
            .payload
            .as_deref()
            .ok_or(StatusListError::InvalidCwt("the payload is detached"))?;
        let Value::Map(claims) = read_cbor(payload)? else {
            return Err(StatusListError::InvalidCwt(
                "the payload is not a CWT Claims Set",
            ));
        };
        Ok(Self {
            alg,
            kid,
            x5chain,
            claims,
            sign1,
        })
    }

    /// The claimed, not yet verified, issuer: only for choosing a key.
    fn issuer(&self) -> Option<&str> {
        self.claims.iter().find_map(|(key, value)| match value {
            Value::Text(iss) if integer(key) == Some(ISS) => Some(iss.as_str()),
            _ => None,
        })
    }

    fn check_signature(&self, key: &VerifyingKey) -> Result<(), StatusListError> {
        key.verify(self.alg, &self.sign1.tbs_data(b""), &self.sign1.signature)?;
        Ok(())
    }

    fn into_verified(
        self,
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<StatusListCwt, StatusListError> {
        let registered = Registered::read(&self.claims)?;
        policy.validation.validate(&registered.as_json(), now)?;
        let claims = StatusListCwtClaims {
            sub: registered.sub.ok_or(StatusListError::InvalidClaim("sub"))?,
            iat: registered.iat.ok_or(StatusListError::InvalidClaim("iat"))?,
            exp: registered.exp,
            ttl: registered.ttl,
            iss: registered.iss,
            status_list: registered
                .status_list
                .ok_or(StatusListError::InvalidClaim("status_list"))?,
        };
        if claims.sub != uri {
            return Err(StatusListError::SubjectMismatch);
        }
        let list = claims.status_list.decode(&policy.limits)?;
        Ok(StatusListCwt {
            alg: self.alg,
            kid: self.kid,
            x5chain: self.x5chain,
            claims,
            list,
        })
    }
}

/// The claims of a CWT Claims Set this module reads, each checked for its type.
#[derive(Default)]
struct Registered {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    ttl: Option<u64>,
    status_list: Option<CborStatusList>,
}

impl Registered {
    fn read(claims: &[(Value, Value)]) -> Result<Self, StatusListError> {
        let mut seen = BTreeSet::new();
        let mut registered = Self::default();
        for (key, value) in claims {
            let name = match key {
                Value::Integer(_) => integer(key).map(ClaimKey::Integer),
                Value::Text(text) => Some(ClaimKey::Text(text)),
                _ => None,
            }
            .ok_or(StatusListError::InvalidCwt(
                "a claim key is neither an integer nor a text string",
            ))?;
            if !seen.insert(name) {
                return Err(StatusListError::InvalidCwt("a claim appears twice"));
            }
            match integer(key) {
                Some(ISS) => registered.iss = Some(text(value, "iss")?),
                Some(SUB) => registered.sub = Some(text(value, "sub")?),
                Some(AUD) => registered.aud = Some(audience(value)?),
                Some(EXP) => registered.exp = Some(numeric_date(value, "exp")?),
                Some(NBF) => registered.nbf = Some(numeric_date(value, "nbf")?),
                Some(IAT) => registered.iat = Some(numeric_date(value, "iat")?),
                Some(TTL) => {
                    let ttl = unsigned(value)
                        .filter(|ttl| *ttl > 0)
                        .ok_or(StatusListError::InvalidClaim("ttl"))?;
                    registered.ttl = Some(ttl);
                }
                Some(STATUS_LIST) => {
                    registered.status_list = Some(CborStatusList::from_cbor(value)?);
                }
                _ => {}
            }
        }
        Ok(registered)
    }

    /// The registered claims as JWT claims, for the policy's [`Validation`](crate::jose::Validation).
    fn as_json(&self) -> Map<String, serde_json::Value> {
        let mut json = Map::new();
        if let Some(iss) = &self.iss {
            json.insert("iss".to_owned(), iss.clone().into());
        }
        if let Some(sub) = &self.sub {
            json.insert("sub".to_owned(), sub.clone().into());
        }
        if let Some(aud) = &self.aud {
            json.insert("aud".to_owned(), aud.clone());
        }
        for (name, time) in [("exp", self.exp), ("nbf", self.nbf), ("iat", self.iat)] {
            if let Some(time) = time {
                json.insert(name.to_owned(), Number::from(time).into());
            }
        }
        json
    }
}

/// A claim key of a CWT Claims Set (RFC 8392 §3).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum ClaimKey<'a> {
    Integer(i128),
    Text(&'a str),
}

fn header_value(header: &CoseHeader, label: i64) -> Option<&Value> {
    header
        .rest
        .iter()
        .find(|(key, _)| *key == Label::Int(label))
        .map(|(_, value)| value)
}

fn read_cbor(bytes: &[u8]) -> Result<Value, StatusListError> {
    let mut rest = bytes;
    let value: Value = ciborium::from_reader(&mut rest)
        .map_err(|_| StatusListError::InvalidCwt("the payload is not well-formed CBOR"))?;
    if !rest.is_empty() {
        return Err(StatusListError::InvalidCwt(
            "the payload has trailing bytes",
        ));
    }
    Ok(value)
}

fn text(value: &Value, name: &'static str) -> Result<String, StatusListError> {
    match value {
        Value::Text(text) => Ok(text.clone()),
        _ => Err(StatusListError::InvalidClaim(name)),
    }
}

fn audience(value: &Value) -> Result<serde_json::Value, StatusListError> {
    let invalid = || StatusListError::InvalidClaim("aud");
    match value {
        Value::Text(aud) => Ok(aud.clone().into()),
        Value::Array(auds) => auds
            .iter()
            .map(|aud| match aud {
                Value::Text(aud) => Ok(serde_json::Value::from(aud.clone())),
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}

/// A CWT NumericDate (RFC 8392 §2): an integer or a float, without tag 1; fractions are
/// truncated toward negative infinity.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a finite float is truncated to whole seconds, saturating"
)]
fn numeric_date(value: &Value, name: &'static str) -> Result<i64, StatusListError> {
    match value {
        Value::Integer(_) => integer(value).and_then(|time| i64::try_from(time).ok()),
        Value::Float(time) if time.is_finite() => Some(time.floor() as i64),
        _ => None,
    }
    .ok_or(StatusListError::InvalidClaim(name))
}
