//! Verification (RFC 9901 §7.1, §7.3).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::error::truncate;
use super::{ClaimPath, Disclosure, KB_JWT_TYP, SdJwt, SdJwtError, array_digest};
use crate::encoding::HashAlg;
use crate::jose::jwt::numeric_date;
use crate::jose::{
    Algorithm, Header, JoseError, Jwk, Jws, KeyResolver, Validation, VerifyPolicy, VerifyingKey,
};
use crate::limits::{Limits, json_depth};

/// What a verifier expects of the Key Binding JWT (RFC 9901 §7.3 step 5).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyBindingExpectation {
    /// The `aud` the KB-JWT must carry: this verifier.
    pub aud: String,
    /// The `nonce` the KB-JWT must carry: the challenge of this transaction.
    pub nonce: String,
    /// How old `iat` may be, in seconds. Default 300.
    pub max_age: i64,
    /// Allowed clock skew, in seconds. Default 60.
    pub leeway: i64,
}

/// How [`SdJwt::verify`] checks an SD-JWT.
///
/// Whether key binding is required is decided here, before any input is seen (RFC 9901
/// §7.3 step 1): with [`VerifyOptions::with_key_binding`] a presentation without a KB-JWT is
/// refused, and without it a presentation carrying one is refused as well.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    algorithms: Vec<Algorithm>,
    types: Vec<String>,
    hash_algs: Vec<HashAlg>,
    key_binding: Option<KeyBindingExpectation>,
    validation: Validation,
    limits: Limits,
}

impl Default for VerifyOptions {
    /// Every supported signature algorithm, any `typ`, every supported `_sd_alg`, no key
    /// binding, `exp`/`nbf`/`iat` checked when present with 60 s leeway, default limits.
    fn default() -> Self {
        Self {
            algorithms: Algorithm::ALL.to_vec(),
            types: Vec::new(),
            hash_algs: vec![HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512],
            key_binding: None,
            validation: Validation::default().without_exp(),
            limits: Limits::DEFAULT,
        }
    }
}

impl VerifyOptions {
    /// The options requiring a Key Binding JWT for `aud` and `nonce`, at most 300 s old.
    #[must_use]
    pub fn with_key_binding(mut self, aud: impl Into<String>, nonce: impl Into<String>) -> Self {
        self.key_binding = Some(KeyBindingExpectation {
            aud: aud.into(),
            nonce: nonce.into(),
            max_age: 300,
            leeway: 60,
        });
        self
    }

    /// The options with another key binding expectation (or none).
    #[must_use]
    pub fn with_key_binding_expectation(mut self, kb: Option<KeyBindingExpectation>) -> Self {
        self.key_binding = kb;
        self
    }

    /// The options accepting a KB-JWT at most `max_age` seconds old, with `leeway` seconds of
    /// clock skew. No effect unless key binding is required.
    #[must_use]
    pub fn with_key_binding_window(mut self, max_age: i64, leeway: i64) -> Self {
        if let Some(kb) = &mut self.key_binding {
            kb.max_age = max_age;
            kb.leeway = leeway;
        }
        self
    }

    /// The options allowing only `algorithms` for the issuer-signed JWT and the KB-JWT.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// The options accepting only these `typ` values for the issuer-signed JWT (compared
    /// case-insensitively, with or without `application/`).
    #[must_use]
    pub fn with_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The options accepting only these `_sd_alg` hash functions.
    #[must_use]
    pub fn with_hash_algs(mut self, algs: &[HashAlg]) -> Self {
        self.hash_algs = algs.to_vec();
        self
    }

    /// The options checking the processed claims with `validation` (RFC 9901 §7.1 step 6).
    #[must_use]
    pub fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// The options with other parser limits.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The parser limits.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The key binding expectation, if key binding is required.
    #[must_use]
    pub const fn key_binding(&self) -> Option<&KeyBindingExpectation> {
        self.key_binding.as_ref()
    }
}

/// An SD-JWT that passed verification: the processed claims (disclosures merged, `_sd` and
/// `_sd_alg` removed) and what was learnt on the way.
#[derive(Clone, Debug)]
pub struct VerifiedSdJwt {
    header: Header,
    claims: Map<String, Value>,
    disclosed: Vec<ClaimPath>,
    issuer_key: Option<Arc<VerifyingKey>>,
    key_binding: Option<Map<String, Value>>,
}

impl VerifiedSdJwt {
    /// The issuer-signed JWT's protected header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The processed claims (RFC 9901 §7.1 step 3).
    #[must_use]
    pub const fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The processed claims, by value.
    #[must_use]
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// The paths of the claims that came from disclosures, in processing order.
    #[must_use]
    pub fn disclosed(&self) -> &[ClaimPath] {
        &self.disclosed
    }

    /// The key that verified the issuer-signed JWT.
    #[must_use]
    pub const fn issuer_key(&self) -> Option<&Arc<VerifyingKey>> {
        self.issuer_key.as_ref()
    }

    /// The verified Key Binding JWT's claims, when key binding was required.
    #[must_use]
    pub const fn key_binding(&self) -> Option<&Map<String, Value>> {
        self.key_binding.as_ref()
    }
}

impl SdJwt {
    /// Verifies this SD-JWT (RFC 9901 §7.1) and, when `options` require it, its Key Binding
    /// JWT (§7.3), at time `now` (seconds since the epoch). The issuer's key comes from
    /// `resolver`, which sees the header's `kid`/`x5c` and the claimed `iss`.
    ///
    /// # Errors
    /// [`SdJwtError::KeyBindingRequired`] / [`SdJwtError::UnexpectedKeyBinding`] per the
    /// policy; [`SdJwtError::UnexpectedType`] and [`SdJwtError::IssuerJwt`] for the issuer JWT;
    /// [`SdJwtError::UnsupportedHashAlg`]; [`SdJwtError::DuplicateDisclosure`],
    /// [`SdJwtError::DuplicateDigest`], [`SdJwtError::InvalidDisclosure`],
    /// [`SdJwtError::ReservedClaimName`], [`SdJwtError::ClaimCollision`],
    /// [`SdJwtError::UnreferencedDisclosure`] and [`SdJwtError::TooDeep`] while processing;
    /// [`SdJwtError::Claims`] for time or issuer checks; and for key binding
    /// [`SdJwtError::MissingHolderKey`], [`SdJwtError::KeyBinding`],
    /// [`SdJwtError::KeyBindingExpired`], [`SdJwtError::AudienceMismatch`],
    /// [`SdJwtError::NonceMismatch`] and [`SdJwtError::SdHashMismatch`].
    pub async fn verify(
        &self,
        resolver: &(dyn KeyResolver + '_),
        options: &VerifyOptions,
        now: i64,
    ) -> Result<VerifiedSdJwt, SdJwtError> {
        let limits = &options.limits;
        // §7.3 steps 1–3: the policy, not the input, decides whether key binding is needed.
        match (&options.key_binding, &self.kb_jwt) {
            (Some(_), None) => return Err(SdJwtError::KeyBindingRequired),
            (None, Some(_)) => return Err(SdJwtError::UnexpectedKeyBinding),
            _ => {}
        }
        if self.disclosures.len() > limits.max_disclosures {
            return Err(SdJwtError::TooManyDisclosures {
                count: self.disclosures.len(),
                limit: limits.max_disclosures,
            });
        }

        // §7.1 step 2: the issuer-signed JWT.
        let jws = Jws::parse(&self.jwt, limits).map_err(SdJwtError::IssuerJwt)?;
        if !options.types.is_empty() {
            let typ = jws.header().typ.as_deref().map(normalize_typ);
            if !options
                .types
                .iter()
                .any(|accepted| typ.as_deref() == Some(normalize_typ(accepted).as_str()))
            {
                return Err(SdJwtError::UnexpectedType);
            }
        }
        let mut payload: Map<String, Value> = serde_json::from_slice(jws.unverified_payload())
            .map_err(|_| {
                SdJwtError::IssuerJwt(JoseError::Malformed {
                    what: "JWT",
                    reason: "payload is not a JSON object",
                })
            })?;
        if payload.values().map(json_depth).max().unwrap_or(0) + 1 > limits.max_depth {
            return Err(SdJwtError::TooDeep {
                limit: limits.max_depth,
            });
        }
        let policy = VerifyPolicy::default().with_algorithms(&options.algorithms);
        let issuer = payload.get("iss").and_then(Value::as_str);
        let verified = jws
            .verify_with(resolver, &policy, issuer)
            .await
            .map_err(SdJwtError::IssuerJwt)?;
        let issuer_key = verified.key().cloned();
        let (header, _) = verified.into_parts();

        // §7.1 step 2d.
        let alg = super::sd_alg(&payload)?;
        if !options.hash_algs.contains(&alg) {
            return Err(SdJwtError::UnsupportedHashAlg(alg.iana_name().to_owned()));
        }
        payload.remove("_sd_alg");

        // §7.1 step 3: digests of the disclosures, then the payload walk.
        let mut by_digest = HashMap::with_capacity(self.disclosures.len());
        for (index, disclosure) in self.disclosures.iter().enumerate() {
            if by_digest.insert(disclosure.digest(alg), index).is_some() {
                return Err(SdJwtError::DuplicateDisclosure);
            }
        }
        let mut walk = Walk {
            by_digest,
            slots: self.disclosures.iter().map(Some).collect(),
            seen: HashSet::new(),
            path: ClaimPath::new(Vec::<String>::new()),
            disclosed: Vec::with_capacity(self.disclosures.len()),
            max_depth: limits.max_depth,
        };
        walk.object(&mut payload, 1)?;
        // §7.1 step 5.
        if walk.disclosed.len() != self.disclosures.len() {
            return Err(SdJwtError::UnreferencedDisclosure);
        }

        // §7.1 step 6.
        options
            .validation
            .validate(&payload, now)
            .map_err(SdJwtError::Claims)?;

        // §7.3 step 5.
        let key_binding = match (&options.key_binding, &self.kb_jwt) {
            (Some(expected), Some(kb)) => {
                Some(self.verify_key_binding(kb, &payload, expected, options, alg, now)?)
            }
            _ => None,
        };
        Ok(VerifiedSdJwt {
            header,
            claims: payload,
            disclosed: walk.disclosed,
            issuer_key,
            key_binding,
        })
    }

    fn verify_key_binding(
        &self,
        kb: &str,
        claims: &Map<String, Value>,
        expected: &KeyBindingExpectation,
        options: &VerifyOptions,
        alg: HashAlg,
        now: i64,
    ) -> Result<Map<String, Value>, SdJwtError> {
        // Step 5a: the holder's key from `cnf` of the processed payload.
        let jwk = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jwk"))
            .ok_or(SdJwtError::MissingHolderKey)?;
        let jwk = Jwk::deserialize(jwk).map_err(|_| SdJwtError::MissingHolderKey)?;
        let key = VerifyingKey::from_jwk(&jwk).map_err(SdJwtError::KeyBinding)?;
        // Steps 5b–d.
        let policy = VerifyPolicy::default()
            .with_algorithms(&options.algorithms)
            .with_typ(KB_JWT_TYP);
        let verified = Jws::parse(kb, &options.limits)
            .and_then(|jws| jws.verify(&key, &policy))
            .map_err(SdJwtError::KeyBinding)?;
        let kb_claims = verified.claims().map_err(SdJwtError::KeyBinding)?;
        // Step 5e, and 5h for `exp`/`nbf`.
        let iat = numeric_date(&kb_claims, "iat")
            .and_then(|iat| iat.ok_or(JoseError::MissingClaim("iat")))
            .map_err(SdJwtError::KeyBinding)?;
        if iat > now.saturating_add(expected.leeway)
            || iat
                < now
                    .saturating_sub(expected.max_age)
                    .saturating_sub(expected.leeway)
        {
            return Err(SdJwtError::KeyBindingExpired);
        }
        Validation::default()
            .without_exp()
            .with_leeway(expected.leeway)
            .validate(&kb_claims, now)
            .map_err(|err| match err {
                JoseError::Expired | JoseError::NotYetValid | JoseError::IssuedAtOutOfRange => {
                    SdJwtError::KeyBindingExpired
                }
                other => SdJwtError::KeyBinding(other),
            })?;
        // Step 5f.
        match kb_claims.get("aud") {
            Some(Value::String(aud)) if *aud == expected.aud => {}
            Some(Value::String(_)) => return Err(SdJwtError::AudienceMismatch),
            _ => return Err(SdJwtError::KeyBinding(JoseError::MissingClaim("aud"))),
        }
        match kb_claims.get("nonce") {
            Some(Value::String(nonce)) if *nonce == expected.nonce => {}
            Some(Value::String(_)) => return Err(SdJwtError::NonceMismatch),
            _ => return Err(SdJwtError::KeyBinding(JoseError::MissingClaim("nonce"))),
        }
        // Step 5g.
        match kb_claims.get("sd_hash") {
            Some(Value::String(sd_hash)) if *sd_hash == self.sd_hash(alg) => {}
            Some(Value::String(_)) => return Err(SdJwtError::SdHashMismatch),
            _ => return Err(SdJwtError::KeyBinding(JoseError::MissingClaim("sd_hash"))),
        }
        Ok(kb_claims)
    }
}

fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// The state of the digest walk of RFC 9901 §7.1 step 3.
struct Walk<'a> {
    by_digest: HashMap<String, usize>,
    slots: Vec<Option<&'a Disclosure>>,
    seen: HashSet<String>,
    path: ClaimPath,
    disclosed: Vec<ClaimPath>,
    max_depth: usize,
}

impl<'a> Walk<'a> {
    fn check_depth(&self, depth: usize) -> Result<(), SdJwtError> {
        if depth > self.max_depth {
            return Err(SdJwtError::TooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    /// Records `digest` (step 4) and takes its disclosure, if there is one.
    fn take(&mut self, digest: String) -> Result<Option<&'a Disclosure>, SdJwtError> {
        let index = self.by_digest.get(&digest).copied();
        if !self.seen.insert(digest) {
            return Err(SdJwtError::DuplicateDigest);
        }
        Ok(index.and_then(|index| self.slots.get_mut(index).and_then(Option::take)))
    }

    fn value(&mut self, value: &mut Value, depth: usize) -> Result<(), SdJwtError> {
        match value {
            Value::Object(map) => self.object(map, depth + 1),
            Value::Array(items) => self.array(items, depth + 1),
            _ => Ok(()),
        }
    }

    fn object(&mut self, map: &mut Map<String, Value>, depth: usize) -> Result<(), SdJwtError> {
        self.check_depth(depth)?;
        let digests = map.remove("_sd");
        for (name, value) in map.iter_mut() {
            if value.is_object() || value.is_array() {
                self.path.push(name.clone());
                self.value(value, depth)?;
                self.path.pop();
            }
        }
        let Some(digests) = digests else {
            return Ok(());
        };
        let Value::Array(digests) = digests else {
            return Err(SdJwtError::Malformed("`_sd` is not an array"));
        };
        for digest in digests {
            let Value::String(digest) = digest else {
                return Err(SdJwtError::Malformed("`_sd` holds a non-string"));
            };
            let Some(disclosure) = self.take(digest)? else {
                continue;
            };
            let Some(name) = disclosure.name() else {
                return Err(SdJwtError::InvalidDisclosure(
                    "an array element disclosure is referenced from `_sd`",
                ));
            };
            if super::disclosure::is_reserved(name) {
                return Err(SdJwtError::ReservedClaimName(name.to_owned()));
            }
            if map.contains_key(name) {
                return Err(SdJwtError::ClaimCollision(truncate(name)));
            }
            let mut value = disclosure.value().clone();
            self.path.push(name.to_owned());
            self.disclosed.push(self.path.clone());
            self.value(&mut value, depth)?;
            self.path.pop();
            map.insert(name.to_owned(), value);
        }
        Ok(())
    }

    fn array(&mut self, items: &mut Vec<Value>, depth: usize) -> Result<(), SdJwtError> {
        self.check_depth(depth)?;
        let mut out = Vec::with_capacity(items.len());
        for mut item in std::mem::take(items) {
            let index = out.len().to_string();
            if let Some(digest) = array_digest(&item) {
                let Some(disclosure) = self.take(digest.to_owned())? else {
                    continue;
                };
                if disclosure.name().is_some() {
                    return Err(SdJwtError::InvalidDisclosure(
                        "an object property disclosure is referenced from an array",
                    ));
                }
                let mut value = disclosure.value().clone();
                self.path.push(index);
                self.disclosed.push(self.path.clone());
                self.value(&mut value, depth)?;
                self.path.pop();
                out.push(value);
            } else {
                if item.is_object() || item.is_array() {
                    self.path.push(index);
                    self.value(&mut item, depth)?;
                    self.path.pop();
                }
                out.push(item);
            }
        }
        *items = out;
        Ok(())
    }
}
