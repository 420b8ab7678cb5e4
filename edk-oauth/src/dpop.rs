//! DPoP proofs (RFC 9449 §4.3): parsing and the checks that need no state. The nonce and
//! `jti` replay checks, which need the store, are made by the caller.

use edk_core::Limits;
use edk_core::jose::{Algorithm, Jws, VerifyPolicy, VerifyingKey};
use serde_json::{Map, Value};

use crate::error::Error;

/// The `typ` of a DPoP proof.
pub const DPOP_TYP: &str = "dpop+jwt";

/// The algorithms accepted in DPoP proofs and advertised as
/// `dpop_signing_alg_values_supported`.
pub const DPOP_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Ps256,
    Algorithm::Rs256,
];

/// A DPoP proof that passed the stateless checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof key (`cnf.jkt`).
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
    /// The proof's `nonce`, if any.
    pub nonce: Option<String>,
}

/// Parses `proof` and checks it for a request with `method` to `htu`, at `now`: `typ`, an
/// allowed asymmetric `alg`, a public `jwk` that verifies the signature, `jti`, `htm`, `htu`,
/// `iat` within `max_age` seconds, and `ath` when `access_token` is given.
///
/// # Errors
/// `invalid_dpop_proof` naming the failed check.
pub fn verify_proof(
    proof: &str,
    method: &str,
    htu: &str,
    now: i64,
    max_age: i64,
    access_token: Option<&str>,
) -> Result<DpopProof, Error> {
    let invalid = |text: &str| Error::invalid_dpop_proof(text);
    let limits = Limits::DEFAULT.with_max_token_bytes(8 * 1024);
    let jws = Jws::parse(proof, &limits).map_err(|_| invalid("the proof is not a JWS"))?;
    let jwk = jws
        .header()
        .jwk
        .clone()
        .ok_or_else(|| invalid("the proof has no `jwk` header"))?;
    if jwk.is_private() {
        return Err(invalid("the proof's `jwk` contains a private key"));
    }
    let key = VerifyingKey::from_jwk(&jwk).map_err(|_| invalid("the proof's `jwk` is unusable"))?;
    let policy = VerifyPolicy::default()
        .with_algorithms(&DPOP_ALGORITHMS)
        .with_typ(DPOP_TYP);
    let verified = jws
        .verify(&key, &policy)
        .map_err(|err| invalid(&format!("the proof does not verify: {err}")))?;
    let claims = verified
        .claims()
        .map_err(|_| invalid("the proof's payload is not a JSON object"))?;
    let jti = string_claim(&claims, "jti")?;
    if jti.is_empty() || jti.len() > 256 {
        return Err(invalid("`jti` must be 1 to 256 characters"));
    }
    if string_claim(&claims, "htm")? != method {
        return Err(invalid("`htm` does not match the request method"));
    }
    if !same_htu(&string_claim(&claims, "htu")?, htu) {
        return Err(invalid("`htu` does not match the request URI"));
    }
    let iat = claims
        .get("iat")
        .ok_or_else(|| invalid("`iat` is missing"))?;
    let iat = numeric_date(iat).ok_or_else(|| invalid("`iat` is not a usable NumericDate"))?;
    if !within(iat, now, max_age) {
        return Err(invalid("`iat` is outside the accepted window"));
    }
    if let Some(token) = access_token {
        let expected = crate::random::s256(token);
        if claims.get("ath").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(invalid("`ath` does not match the access token"));
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) => Some(nonce.clone()),
        Some(_) => return Err(invalid("`nonce` is not a string")),
    };
    Ok(DpopProof {
        jkt: jwk.thumbprint(),
        jti,
        iat,
        nonce,
    })
}

/// A JWT NumericDate (RFC 7519 §2) as whole seconds: an integer, or a finite number within
/// the `i64` range (its fraction dropped). `None` for anything else.
pub(crate) fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(seconds) = value.as_i64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?.trunc();
    // [-2^63, 2^63): i64::MAX itself is not exact as an f64.
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&seconds) {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a whole number checked to lie within the i64 range"
    )]
    let seconds = seconds as i64;
    Some(seconds)
}

/// Whether `at` lies at most `max_age` seconds from `now`, either way, without overflow for
/// any input.
pub(crate) fn within(at: i64, now: i64, max_age: i64) -> bool {
    at.abs_diff(now) <= u64::try_from(max_age).unwrap_or(0)
}

/// Picks the one `DPoP` header of a request.
///
/// # Errors
/// `invalid_dpop_proof` when there are several.
pub fn single_header(values: &[String]) -> Result<Option<&str>, Error> {
    match values {
        [] => Ok(None),
        [one] => Ok(Some(one.as_str())),
        _ => Err(Error::invalid_dpop_proof("more than one DPoP header")),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, Error> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid_dpop_proof(format!("`{name}` is missing")))
}

/// Compares `htu` values ignoring query and fragment, after URL normalisation (scheme and
/// host case, default port, empty path).
fn same_htu(claimed: &str, expected: &str) -> bool {
    let normalize = |text: &str| {
        url::Url::parse(text).ok().map(|mut url| {
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        })
    };
    match (normalize(claimed), normalize(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_ignores_query_fragment_and_default_port() {
        assert!(same_htu(
            "HTTPS://AS.example:443/t/token?x=1#f",
            "https://as.example/t/token"
        ));
        assert!(!same_htu(
            "https://as.example/t/par",
            "https://as.example/t/token"
        ));
    }

    #[test]
    fn dpop_spec_ath_vector() {
        assert_eq!(
            crate::random::s256("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
