//! The holder's side: choosing disclosures and key binding (RFC 9901 §4.3, §7.2).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::truncate;
use super::{ClaimPath, Disclosure, KB_JWT_TYP, SdJwt, SdJwtError, array_digest, sd_alg};
use crate::jose::{Header, Signer, jws};

/// The claims of a Key Binding JWT the holder chooses (RFC 9901 §4.3); `sd_hash` is
/// computed when signing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyBindingClaims {
    /// `aud`: the verifier (in OpenID4VP, the full `client_id`).
    pub aud: String,
    /// `nonce`: the verifier's challenge.
    pub nonce: String,
    /// `iat`, seconds since the epoch (from the caller's [`Clock`](crate::Clock)).
    pub iat: i64,
    /// Further claims, such as OpenID4VP's `transaction_data_hashes`.
    pub extra: Map<String, Value>,
}

impl KeyBindingClaims {
    /// Key binding claims for `aud` and `nonce`, issued at `iat`.
    pub fn new(aud: impl Into<String>, nonce: impl Into<String>, iat: i64) -> Self {
        Self {
            aud: aud.into(),
            nonce: nonce.into(),
            iat,
            extra: Map::new(),
        }
    }

    /// The claims with one more claim.
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }
}

impl SdJwt {
    /// The SD-JWT with only the disclosures needed to reveal `disclose` (RFC 9901 §7.2): for
    /// each path, the disclosure of every selectively disclosable claim along it, so that each
    /// presented disclosure is reachable from the payload. Naming an object or array reveals
    /// it, but not its own selectively disclosable members. Disclosures keep their issued order.
    ///
    /// This reads the issuer-signed JWT without verifying it; a holder verifies an SD-JWT
    /// when receiving it ([`SdJwt::verify`]).
    ///
    /// # Errors
    /// [`SdJwtError::UnexpectedKeyBinding`] when this is already an SD-JWT+KB,
    /// [`SdJwtError::PathNotFound`] when a path names nothing the holder can disclose, and
    /// [`SdJwtError::Malformed`] or [`SdJwtError::UnsupportedHashAlg`] for a bad payload.
    pub fn select(&self, disclose: &[ClaimPath]) -> Result<Self, SdJwtError> {
        if self.kb_jwt.is_some() {
            return Err(SdJwtError::UnexpectedKeyBinding);
        }
        let payload = Value::Object(self.unverified_payload()?);
        let alg = sd_alg(payload.as_object().unwrap_or(&Map::new()))?;
        let by_digest: HashMap<String, usize> = self
            .disclosures
            .iter()
            .enumerate()
            .map(|(index, d)| (d.digest(alg), index))
            .collect();
        let mut chosen = vec![false; self.disclosures.len()];
        for path in disclose {
            let mut value = &payload;
            for segment in path.segments() {
                value = step(value, segment, &by_digest, &self.disclosures, &mut chosen)
                    .ok_or_else(|| SdJwtError::PathNotFound(truncate(&path.to_string())))?;
            }
        }
        let disclosures = self
            .disclosures
            .iter()
            .zip(chosen)
            .filter(|(_, keep)| *keep)
            .map(|(d, _)| d.clone())
            .collect();
        Ok(Self::from_parts(self.jwt.clone(), disclosures, None))
    }

    /// The presentation of `disclose` ([`SdJwt::select`]), with a Key Binding JWT signed by
    /// the holder's `signer` when `key_binding` is given (RFC 9901 §4.3).
    ///
    /// # Errors
    /// As [`SdJwt::select`] and [`SdJwt::bind`].
    pub async fn present(
        &self,
        disclose: &[ClaimPath],
        key_binding: Option<(&KeyBindingClaims, &(dyn Signer + '_))>,
    ) -> Result<Self, SdJwtError> {
        let selected = self.select(disclose)?;
        match key_binding {
            Some((claims, signer)) => selected.bind(claims, signer).await,
            None => Ok(selected),
        }
    }

    /// This SD-JWT with a Key Binding JWT over it (RFC 9901 §4.3): `typ` `kb+jwt`, the
    /// caller's `iat`, `aud` and `nonce`, and `sd_hash` over the compact SD-JWT with the
    /// hash function of `_sd_alg`.
    ///
    /// # Errors
    /// [`SdJwtError::UnexpectedKeyBinding`] when it already has one, [`SdJwtError::Malformed`]
    /// or [`SdJwtError::UnsupportedHashAlg`] for a bad payload, and [`SdJwtError::Signing`].
    pub async fn bind(
        mut self,
        claims: &KeyBindingClaims,
        signer: &(dyn Signer + '_),
    ) -> Result<Self, SdJwtError> {
        if self.kb_jwt.is_some() {
            return Err(SdJwtError::UnexpectedKeyBinding);
        }
        let alg = sd_alg(&self.unverified_payload()?)?;
        let mut payload = Map::with_capacity(4 + claims.extra.len());
        payload.insert("iat".to_owned(), Value::from(claims.iat));
        payload.insert("aud".to_owned(), Value::from(claims.aud.as_str()));
        payload.insert("nonce".to_owned(), Value::from(claims.nonce.as_str()));
        payload.insert("sd_hash".to_owned(), Value::from(self.sd_hash(alg)));
        for (name, value) in &claims.extra {
            payload.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let payload = serde_json::to_vec(&payload).map_err(|_| SdJwtError::Crypto)?;
        let header = Header::new(signer.algorithm()).with_typ(KB_JWT_TYP);
        let kb = jws::sign(header, &payload, signer)
            .await
            .map_err(SdJwtError::Signing)?;
        self.kb_jwt = Some(kb);
        Ok(self)
    }
}

/// Follows one path segment from `value`, through a disclosure where needed.
fn step<'a>(
    value: &'a Value,
    segment: &str,
    by_digest: &HashMap<String, usize>,
    disclosures: &'a [Disclosure],
    chosen: &mut [bool],
) -> Option<&'a Value> {
    let mut reveal = |index: usize| {
        if let Some(flag) = chosen.get_mut(index) {
            *flag = true;
        }
        disclosures.get(index).map(Disclosure::value)
    };
    match value {
        Value::Object(map) => {
            if let Some(found) = map.get(segment).filter(|_| segment != "_sd") {
                return Some(found);
            }
            let digests = map.get("_sd")?.as_array()?;
            let index = digests.iter().find_map(|digest| {
                let index = *by_digest.get(digest.as_str()?)?;
                (disclosures.get(index)?.name() == Some(segment)).then_some(index)
            })?;
            reveal(index)
        }
        Value::Array(items) => {
            let wanted: usize = segment.parse().ok()?;
            let mut visible = items.iter().filter_map(|item| match array_digest(item) {
                Some(digest) => by_digest
                    .get(digest)
                    .filter(|index| disclosures.get(**index).is_some_and(|d| d.name().is_none()))
                    .map(|index| Err(*index)),
                None => Some(Ok(item)),
            });
            match visible.nth(wanted)? {
                Ok(item) => Some(item),
                Err(index) => reveal(index),
            }
        }
        _ => None,
    }
}
