//! Verifier Attestation JWTs (OpenID4VP 1.0 §5.9.3 and Appendix A): what an attester the
//! wallet trusts says about a `verifier_attestation:` client, carried in the JOSE header
//! `jwt` of the client's Request Objects.

use edk_core::jose::jwt::numeric_date;
use edk_core::jose::{Jwk, Jws};
use edk_core::limits::Limits;
use serde_json::{Map, Value};
use url::Url;

use crate::request_object::RequestObjectError;

/// The `typ` of a Verifier Attestation JWT.
pub const VERIFIER_ATTESTATION_TYP: &str = "verifier-attestation+jwt";

/// The claims of a Verifier Attestation JWT, read from the token; [`VerifierAttestation::read`]
/// does not verify the attester's signature (the wallet does, in
/// [`RequestObjectVerifier::verify`](crate::RequestObjectVerifier::verify)).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifierAttestation {
    /// `iss`: the attester.
    pub issuer: String,
    /// `sub`: the client identifier without its `verifier_attestation:` prefix.
    pub subject: String,
    /// `exp` (Unix seconds).
    pub expires_at: i64,
    /// `iat`, if present.
    pub issued_at: Option<i64>,
    /// `nbf`, if present.
    pub not_before: Option<i64>,
    /// `cnf.jwk`: the public key that signs the client's Request Objects.
    pub key: Jwk,
    /// `redirect_uris`, if present: the only `redirect_uri` and `response_uri` values the
    /// client's requests may use.
    pub redirect_uris: Option<Vec<String>>,
}

impl VerifierAttestation {
    /// Reads the Verifier Attestation JWT `jwt`: its `typ` and claims, not its signature.
    ///
    /// # Errors
    /// [`RequestObjectError::AttestationMalformed`] for a token that is not a JWS or lacks a
    /// required claim (`iss`, `sub`, `exp`, `cnf.jwk`), and
    /// [`RequestObjectError::AttestationType`] for a `typ` other than
    /// `verifier-attestation+jwt`.
    pub fn read(jwt: &str) -> Result<Self, RequestObjectError> {
        Self::parse(jwt, &Limits::DEFAULT).map(|(attestation, _)| attestation)
    }

    /// The attestation and its JWS, for the caller to verify the signature.
    pub(crate) fn parse(jwt: &str, limits: &Limits) -> Result<(Self, Jws), RequestObjectError> {
        let jws = Jws::parse(jwt, limits)
            .map_err(|_| RequestObjectError::AttestationMalformed("it is not a compact JWS"))?;
        let typ_ok = jws.header().typ.as_deref().is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ == VERIFIER_ATTESTATION_TYP
                || typ.strip_prefix("application/") == Some(VERIFIER_ATTESTATION_TYP)
        });
        if !typ_ok {
            return Err(RequestObjectError::AttestationType);
        }
        let claims: Map<String, Value> =
            serde_json::from_slice(jws.unverified_payload()).map_err(|_| {
                RequestObjectError::AttestationMalformed("the payload is not a JSON object")
            })?;
        Ok((Self::from_claims(&claims)?, jws))
    }

    fn from_claims(claims: &Map<String, Value>) -> Result<Self, RequestObjectError> {
        let text = |name: &'static str, missing: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or(RequestObjectError::AttestationMalformed(missing))
        };
        let issuer = text("iss", "iss is required")?;
        let subject = text("sub", "sub is required")?;
        let date = |name: &'static str, reason: &'static str| {
            numeric_date(claims, name).map_err(|_| RequestObjectError::AttestationMalformed(reason))
        };
        let expires_at = date("exp", "exp must be a number")?
            .ok_or(RequestObjectError::AttestationMalformed("exp is required"))?;
        let issued_at = date("iat", "iat must be a number")?;
        let not_before = date("nbf", "nbf must be a number")?;
        let key = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jwk"))
            .ok_or(RequestObjectError::AttestationMalformed(
                "cnf.jwk is required",
            ))
            .and_then(|jwk| {
                serde_json::from_value::<Jwk>(jwk.clone())
                    .map_err(|_| RequestObjectError::AttestationMalformed("cnf.jwk is not a JWK"))
            })?
            .to_public();
        let redirect_uris = match claims.get("redirect_uris") {
            None => None,
            Some(Value::Array(uris)) => Some(
                uris.iter()
                    .map(|uri| uri.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(RequestObjectError::AttestationMalformed(
                        "redirect_uris must be an array of strings",
                    ))?,
            ),
            Some(_) => {
                return Err(RequestObjectError::AttestationMalformed(
                    "redirect_uris must be an array of strings",
                ));
            }
        };
        Ok(Self {
            issuer,
            subject,
            expires_at,
            issued_at,
            not_before,
            key,
            redirect_uris,
        })
    }

    /// Checks that the attestation is valid at `now` (Unix seconds), allowing `leeway`
    /// seconds of clock skew: `exp` not past, `nbf` and `iat` not in the future.
    ///
    /// # Errors
    /// [`RequestObjectError::AttestationExpired`].
    pub fn check_validity(&self, now: i64, leeway: i64) -> Result<(), RequestObjectError> {
        let expired = self.expires_at.saturating_add(leeway) <= now;
        let early = |at: Option<i64>| at.is_some_and(|at| at.saturating_sub(leeway) > now);
        if expired || early(self.not_before) || early(self.issued_at) {
            return Err(RequestObjectError::AttestationExpired);
        }
        Ok(())
    }

    /// Whether `uri` may be used as the `redirect_uri` or `response_uri` of the client's
    /// requests: always without `redirect_uris`, otherwise only when it is one of them.
    #[must_use]
    pub fn allows_uri(&self, uri: &Url) -> bool {
        self.redirect_uris.as_ref().is_none_or(|uris| {
            uris.iter()
                .any(|allowed| Url::parse(allowed).is_ok_and(|allowed| &allowed == uri))
        })
    }

    /// Checks the `response_uri` and `redirect_uri` of a request against `redirect_uris`.
    ///
    /// # Errors
    /// [`RequestObjectError::UriNotAttested`] naming the first URI not allowed.
    pub fn check_uris<'a>(
        &self,
        uris: impl IntoIterator<Item = &'a Url>,
    ) -> Result<(), RequestObjectError> {
        match uris.into_iter().find(|uri| !self.allows_uri(uri)) {
            Some(uri) => Err(RequestObjectError::UriNotAttested(uri.to_string())),
            None => Ok(()),
        }
    }
}
