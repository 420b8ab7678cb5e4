//! ID token validation (OpenID Connect Core 1.0 §3.1.3.7).

use std::sync::Arc;

use edk_core::Limits;
use edk_core::jose::{Algorithm, JoseError, Jws, KeyResolver, Validation, VerifyPolicy};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use super::error::FederationError;

/// Checks ID tokens of one provider for one client: signature with the provider's keys,
/// `iss`, `aud`, `azp`, `exp`, `iat` and `nonce`.
///
/// [`OidcFederation`](super::OidcFederation) uses it with the provider's JWKS; it is public
/// so that a caller holding an ID token some other way can apply the same checks.
#[derive(Clone, Debug)]
pub struct IdTokenValidator {
    issuer: String,
    client_id: String,
    keys: Arc<dyn KeyResolver>,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    limits: Limits,
}

/// A validated ID token's claims.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `sub`.
    pub subject: String,
    /// `auth_time`, when present.
    pub auth_time: Option<i64>,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

impl IdTokenValidator {
    /// A validator for tokens of `issuer` meant for `client_id`, verified with `keys`;
    /// every asymmetric algorithm EDK implements is allowed and the leeway is 60 seconds.
    #[must_use]
    pub fn new(issuer: &str, client_id: &str, keys: Arc<dyn KeyResolver>) -> Self {
        Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            keys,
            algorithms: Algorithm::ALL.to_vec(),
            leeway: 60,
            limits: Limits::default(),
        }
    }

    /// The validator allowing only `algorithms`.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// The validator allowing `seconds` of clock skew.
    #[must_use]
    pub fn with_leeway(mut self, seconds: u32) -> Self {
        self.leeway = i64::from(seconds);
        self
    }

    /// Validates `id_token` at `now` (seconds since the epoch) for the login that sent
    /// `nonce`, in the order of OpenID Connect Core §3.1.3.7: signature (6), `iss` (2),
    /// `aud` (3), `azp` (4, 5), `exp` (9), `iat` (10), `nonce` (11).
    ///
    /// # Errors
    /// [`FederationError::IdToken`] for a malformed token, a bad signature, an unknown key or
    /// a failed registered-claim check; [`FederationError::AuthorizedPartyMismatch`],
    /// [`FederationError::NonceMismatch`] and [`FederationError::SubjectClaim`] (no `sub`).
    pub async fn validate(
        &self,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims, FederationError> {
        let jws = Jws::parse(id_token, &self.limits).map_err(FederationError::IdToken)?;
        let policy = VerifyPolicy::default().with_algorithms(&self.algorithms);
        let verified = jws
            .verify_with(self.keys.as_ref(), &policy, Some(&self.issuer))
            .await
            .map_err(FederationError::IdToken)?;
        let claims = verified.claims().map_err(FederationError::IdToken)?;
        let mut validation = Validation::default()
            .with_issuer(self.issuer.clone())
            .with_audience(self.client_id.clone())
            .with_leeway(self.leeway);
        validation.require_iat = true;
        validation
            .validate(&claims, now)
            .map_err(FederationError::IdToken)?;
        self.check_authorized_party(&claims)?;
        match claims.get("nonce") {
            Some(Value::String(found)) if bool::from(found.as_bytes().ct_eq(nonce.as_bytes())) => {}
            _ => return Err(FederationError::NonceMismatch),
        }
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 255 => sub.clone(),
            _ => return Err(FederationError::SubjectClaim("sub".to_owned())),
        };
        let auth_time = edk_core::jose::jwt::numeric_date(&claims, "auth_time")
            .map_err(FederationError::IdToken)?;
        Ok(IdTokenClaims {
            subject,
            auth_time,
            claims,
        })
    }

    /// §3.1.3.7 (4, 5): with several audiences `azp` must be present, and when present it
    /// must be our client id.
    fn check_authorized_party(&self, claims: &Map<String, Value>) -> Result<(), FederationError> {
        let several_audiences =
            matches!(claims.get("aud"), Some(Value::Array(auds)) if auds.len() > 1);
        match claims.get("azp") {
            Some(Value::String(azp)) if *azp == self.client_id => Ok(()),
            Some(_) => Err(FederationError::AuthorizedPartyMismatch),
            None if several_audiences => Err(FederationError::AuthorizedPartyMismatch),
            None => Ok(()),
        }
    }
}

/// Whether the error means the provider's keys may have rotated.
pub(crate) const fn is_unknown_key(err: &FederationError) -> bool {
    matches!(err, FederationError::IdToken(JoseError::KeyNotFound))
}
