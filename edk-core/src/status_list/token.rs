//! The Status List Token in JWT form (Status List §5.1): issue and verify.

use serde::Serialize;
use serde_json::{Map, Value};

use super::list::check_uri;
use super::{EncodedStatusList, StatusList, StatusListError, StatusListReference, StatusType};
use crate::jose::jwt::numeric_date;
use crate::jose::{
    Algorithm, Header, Jws, KeyResolver, Signer, Validation, VerifiedJws, VerifyPolicy,
    VerifyingKey, jws,
};
use crate::limits::Limits;

/// The JOSE `typ` of a Status List Token (Status List §5.1).
pub const TYP: &str = "statuslist+jwt";

/// The media type of a Status List Token in JWT form (Status List §5.1, §8.1).
pub const MEDIA_TYPE: &str = "application/statuslist+jwt";

/// The claims of a Status List Token (Status List §5.1).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatusListTokenClaims {
    /// `sub`: the URI of this Status List Token, which Referenced Tokens name as
    /// `status.status_list.uri`.
    pub sub: String,
    /// `iat`: when the token was issued, in seconds since the epoch.
    pub iat: i64,
    /// `exp`: when the token expires (RECOMMENDED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `ttl`: how many seconds a relying party may cache the token before fetching it again
    /// (RECOMMENDED, positive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// `iss`: the Status Issuer (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `status_list`: the list in JSON form.
    pub status_list: EncodedStatusList,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StatusListTokenClaims {
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
        Self::with_list(sub, iat, list.encode()?)
    }

    /// The claims for a list already in JSON form, e.g. compressed once for both token
    /// forms.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `sub` is not an absolute URI.
    pub fn with_list(
        sub: impl Into<String>,
        iat: i64,
        status_list: EncodedStatusList,
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
            extra: Map::new(),
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

    /// Reads the claims of a Status List Token from a JWT claims set.
    ///
    /// `iat`, `exp` and `ttl` may be fractional (they are JSON numbers); they are truncated
    /// to whole seconds.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming the first claim that is missing or malformed.
    pub fn from_claims(mut claims: Map<String, Value>) -> Result<Self, StatusListError> {
        let Some(Value::String(sub)) = claims.remove("sub") else {
            return Err(StatusListError::InvalidClaim("sub"));
        };
        let iat = numeric_date(&claims, "iat")
            .ok()
            .flatten()
            .ok_or(StatusListError::InvalidClaim("iat"))?;
        let exp = numeric_date(&claims, "exp").map_err(|_| StatusListError::InvalidClaim("exp"))?;
        let ttl = match claims.get("ttl") {
            None => None,
            Some(Value::Number(ttl)) => Some(positive_seconds(ttl)?),
            Some(_) => return Err(StatusListError::InvalidClaim("ttl")),
        };
        let iss = match claims.remove("iss") {
            None => None,
            Some(Value::String(iss)) => Some(iss),
            Some(_) => return Err(StatusListError::InvalidClaim("iss")),
        };
        let status_list = claims
            .remove("status_list")
            .and_then(|value| serde_json::from_value(value).ok())
            .ok_or(StatusListError::InvalidClaim("status_list"))?;
        for registered in ["iat", "exp", "ttl"] {
            claims.remove(registered);
        }
        Ok(Self {
            sub,
            iat,
            exp,
            ttl,
            iss,
            status_list,
            extra: claims,
        })
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

/// A `ttl` must be a positive number (Status List §5.1); fractions are truncated.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a positive finite float is truncated to whole seconds, saturating"
)]
fn positive_seconds(ttl: &serde_json::Number) -> Result<u64, StatusListError> {
    match (ttl.as_u64(), ttl.as_f64()) {
        (Some(0), _) => Err(StatusListError::InvalidClaim("ttl")),
        (Some(seconds), _) => Ok(seconds),
        (None, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => Ok(seconds as u64),
        _ => Err(StatusListError::InvalidClaim("ttl")),
    }
}

/// What a relying party accepts as a Status List Token, in either form.
///
/// The default allows every algorithm EDK implements, requires `typ` `statuslist+jwt` (JWT)
/// or `application/statuslist+cwt` (CWT) and `iat` (Status List §8.3 step 3b), checks `exp`
/// when present but does not require it (the specification only recommends it), allows 60
/// seconds of clock skew and applies [`Limits::DEFAULT`].
#[derive(Clone, Debug)]
pub struct StatusListPolicy {
    pub(super) verify: VerifyPolicy,
    pub(super) validation: Validation,
    pub(super) limits: Limits,
}

impl Default for StatusListPolicy {
    fn default() -> Self {
        let mut validation = Validation::default().without_exp();
        validation.require_iat = true;
        Self {
            verify: VerifyPolicy::default().with_typ(TYP),
            validation,
            limits: Limits::DEFAULT,
        }
    }
}

impl StatusListPolicy {
    /// The policy restricted to `algorithms`.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.verify = self.verify.with_algorithms(algorithms);
        self
    }

    /// The policy with other claim checks, e.g. requiring `exp`, an `iss`, or a maximum age
    /// of `iat` (Status List §8.3 step 4b). `iat` stays required.
    #[must_use]
    pub fn with_validation(mut self, mut validation: Validation) -> Self {
        validation.require_iat = true;
        self.validation = validation;
        self
    }

    /// The policy with other parser limits: [`Limits::max_token_bytes`] bounds the token and
    /// [`Limits::max_status_list_bytes`] the decompressed list.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// A verified Status List Token with its decompressed list (Status List §8.3 steps 3–5).
#[derive(Clone, Debug)]
pub struct StatusListToken {
    header: Header,
    claims: StatusListTokenClaims,
    list: StatusList,
}

impl StatusListToken {
    /// Signs `claims` as a Status List Token under `header`, whose `typ` is set to
    /// `statuslist+jwt` (Status List §5.1). Put an `x5c` chain in the header where the
    /// profile asks for one (HAIP).
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] for a `sub` that is not an absolute URI,
    /// [`StatusListError::InvalidClaim`] for a zero `ttl` or an `exp` not after `iat`, and
    /// [`StatusListError::Token`] when signing fails.
    pub async fn issue(
        mut header: Header,
        claims: &StatusListTokenClaims,
        signer: &(dyn Signer + '_),
    ) -> Result<String, StatusListError> {
        claims.check()?;
        header.typ = Some(TYP.to_owned());
        let payload =
            serde_json::to_vec(claims).map_err(|_| StatusListError::InvalidClaim("extra"))?;
        Ok(jws::sign(header, &payload, signer).await?)
    }

    /// Verifies `token` with `key` as the Status List Token published at `uri` (the
    /// Referenced Token's `status.status_list.uri`), at time `now` (seconds since the epoch),
    /// and decompresses its list (Status List §8.3 steps 3–5).
    ///
    /// # Errors
    /// [`StatusListError::Token`] for a bad signature, `typ`, `iat` or `exp`,
    /// [`StatusListError::InvalidClaim`] for missing or malformed claims,
    /// [`StatusListError::SubjectMismatch`] when `sub` is not `uri`, and the errors of
    /// [`EncodedStatusList::decode`].
    pub fn verify(
        token: &str,
        key: &VerifyingKey,
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<Self, StatusListError> {
        let verified = Jws::parse(token, &policy.limits)?.verify(key, &policy.verify)?;
        Self::check(verified, uri, policy, now)
    }

    /// As [`StatusListToken::verify`], with the key `resolver` finds for the token's header
    /// and claimed `iss` (Status List §11.3).
    ///
    /// # Errors
    /// As [`StatusListToken::verify`], plus the resolver's errors as [`StatusListError::Token`].
    pub async fn verify_with(
        token: &str,
        resolver: &(dyn KeyResolver + '_),
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<Self, StatusListError> {
        let parsed = Jws::parse(token, &policy.limits)?;
        let issuer = serde_json::from_slice::<Map<String, Value>>(parsed.unverified_payload())
            .ok()
            .and_then(|claims| match claims.get("iss") {
                Some(Value::String(iss)) => Some(iss.clone()),
                _ => None,
            });
        let verified = parsed
            .verify_with(resolver, &policy.verify, issuer.as_deref())
            .await?;
        Self::check(verified, uri, policy, now)
    }

    fn check(
        verified: VerifiedJws,
        uri: &str,
        policy: &StatusListPolicy,
        now: i64,
    ) -> Result<Self, StatusListError> {
        let claims = verified.claims()?;
        policy.validation.validate(&claims, now)?;
        let claims = StatusListTokenClaims::from_claims(claims)?;
        if claims.sub != uri {
            return Err(StatusListError::SubjectMismatch);
        }
        let list = claims.status_list.decode(&policy.limits)?;
        let (header, _) = verified.into_parts();
        Ok(Self {
            header,
            claims,
            list,
        })
    }

    /// The protected header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The claims.
    #[must_use]
    pub const fn claims(&self) -> &StatusListTokenClaims {
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

    /// The status a Referenced Token's `status_list` reference points to
    /// (Status List §8.3 steps 4a, 6 and 7).
    ///
    /// # Errors
    /// [`StatusListError::SubjectMismatch`] when the reference names another list, and
    /// [`StatusListError::IndexOutOfRange`] when its index is past the end of this one.
    pub fn status(&self, reference: &StatusListReference) -> Result<StatusType, StatusListError> {
        status_in(&self.claims.sub, &self.list, reference)
    }

    /// When a relying party that fetched this token at `fetched_at` should fetch it again:
    /// `fetched_at + ttl`, but no later than `exp` (Status List §13.7). `None` when the token
    /// has neither.
    #[must_use]
    pub fn refresh_at(&self, fetched_at: i64) -> Option<i64> {
        refresh_at(self.claims.ttl, self.claims.exp, fetched_at)
    }
}

/// The status `reference` points to in `list`, published as `sub`.
pub(super) fn status_in(
    sub: &str,
    list: &StatusList,
    reference: &StatusListReference,
) -> Result<StatusType, StatusListError> {
    if reference.uri != sub {
        return Err(StatusListError::SubjectMismatch);
    }
    list.status(reference.idx)
}

/// `fetched_at + ttl`, but no later than `exp`; `None` without either (Status List §13.7).
pub(super) fn refresh_at(ttl: Option<u64>, exp: Option<i64>, fetched_at: i64) -> Option<i64> {
    let by_ttl = ttl.map(|ttl| fetched_at.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)));
    match (by_ttl, exp) {
        (Some(ttl), Some(exp)) => Some(ttl.min(exp)),
        (ttl, exp) => ttl.or(exp),
    }
}
