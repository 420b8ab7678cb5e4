//! JWT claims validation (RFC 7519 §4.1, RFC 8725 §3.8–3.11).

use serde_json::{Map, Value};

use super::JoseError;

/// Which registered claims a JWT must carry and what they must say.
///
/// Time checks allow [`Validation::leeway`] seconds of clock skew. `exp` is required by
/// default; `iss` and `aud` are checked only when set.
#[derive(Clone, Debug)]
pub struct Validation {
    /// The required `iss`.
    pub issuer: Option<String>,
    /// An audience that `aud` (a string or an array) must contain.
    pub audience: Option<String>,
    /// Allowed clock skew in seconds.
    pub leeway: i64,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    /// Whether `iat` must be present.
    pub require_iat: bool,
    /// The oldest `iat` accepted, as seconds before now.
    pub max_age: Option<i64>,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            leeway: 60,
            require_exp: true,
            require_iat: false,
            max_age: None,
        }
    }
}

impl Validation {
    /// The validation requiring issuer `iss`.
    #[must_use]
    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// The validation requiring audience `aud`.
    #[must_use]
    pub fn with_audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// The validation with another leeway, in seconds.
    #[must_use]
    pub const fn with_leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The validation with `exp` optional.
    #[must_use]
    pub const fn without_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// The validation requiring `iat` no older than `seconds`.
    #[must_use]
    pub const fn with_max_age(mut self, seconds: i64) -> Self {
        self.require_iat = true;
        self.max_age = Some(seconds);
        self
    }

    /// Checks `claims` at time `now` (seconds since the epoch).
    ///
    /// # Errors
    /// [`JoseError::MissingClaim`], [`JoseError::Expired`], [`JoseError::NotYetValid`],
    /// [`JoseError::IssuedAtOutOfRange`], [`JoseError::IssuerMismatch`] or
    /// [`JoseError::AudienceMismatch`].
    pub fn validate(&self, claims: &Map<String, Value>, now: i64) -> Result<(), JoseError> {
        let exp = numeric_date(claims, "exp")?;
        match exp {
            Some(exp) if now.saturating_sub(self.leeway) >= exp => return Err(JoseError::Expired),
            None if self.require_exp => return Err(JoseError::MissingClaim("exp")),
            _ => {}
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(JoseError::NotYetValid);
        }
        match numeric_date(claims, "iat")? {
            Some(iat) => {
                if iat > now.saturating_add(self.leeway) {
                    return Err(JoseError::IssuedAtOutOfRange);
                }
                if let Some(max_age) = self.max_age
                    && iat < now.saturating_sub(max_age).saturating_sub(self.leeway)
                {
                    return Err(JoseError::IssuedAtOutOfRange);
                }
            }
            None if self.require_iat => return Err(JoseError::MissingClaim("iat")),
            None => {}
        }
        if let Some(expected) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == expected => {}
                Some(Value::String(_)) => return Err(JoseError::IssuerMismatch),
                _ => return Err(JoseError::MissingClaim("iss")),
            }
        }
        if let Some(expected) = &self.audience {
            let found = match claims.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(expected)),
                _ => return Err(JoseError::MissingClaim("aud")),
            };
            if !found {
                return Err(JoseError::AudienceMismatch);
            }
        }
        Ok(())
    }
}

/// Reads a `NumericDate` claim: absent is `None`, a non-number is an error. Fractions are
/// truncated toward negative infinity.
///
/// # Errors
/// [`JoseError::MissingClaim`] when the claim is present but not a number.
#[expect(
    clippy::cast_possible_truncation,
    reason = "saturating float to int conversion is intended"
)]
pub fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, JoseError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(JoseError::MissingClaim(name)),
        Some(_) => Err(JoseError::MissingClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn time_claims_respect_leeway() {
        let v = Validation::default().with_leeway(10);
        let now = 1_000;
        assert!(
            v.validate(&claims(serde_json::json!({"exp": 995})), now)
                .is_ok()
        );
        assert!(matches!(
            v.validate(&claims(serde_json::json!({"exp": 990})), now),
            Err(JoseError::Expired)
        ));
        assert!(matches!(
            v.validate(&claims(serde_json::json!({"exp": 2000, "nbf": 1011})), now),
            Err(JoseError::NotYetValid)
        ));
        assert!(matches!(
            v.validate(&claims(serde_json::json!({"exp": 2000, "iat": 1011})), now),
            Err(JoseError::IssuedAtOutOfRange)
        ));
        assert!(matches!(
            v.validate(&claims(serde_json::json!({})), now),
            Err(JoseError::MissingClaim("exp"))
        ));
        assert!(matches!(
            v.validate(&claims(serde_json::json!({"exp": "2000"})), now),
            Err(JoseError::MissingClaim("exp"))
        ));
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let v = Validation::default()
            .without_exp()
            .with_issuer("https://i")
            .with_audience("https://v");
        assert!(
            v.validate(
                &claims(serde_json::json!({"iss": "https://i", "aud": ["x", "https://v"]})),
                0
            )
            .is_ok()
        );
        assert!(matches!(
            v.validate(
                &claims(serde_json::json!({"iss": "https://j", "aud": "https://v"})),
                0
            ),
            Err(JoseError::IssuerMismatch)
        ));
        assert!(matches!(
            v.validate(
                &claims(serde_json::json!({"iss": "https://i", "aud": "https://w"})),
                0
            ),
            Err(JoseError::AudienceMismatch)
        ));
    }

    #[test]
    fn max_age_bounds_iat() {
        let v = Validation::default()
            .without_exp()
            .with_leeway(0)
            .with_max_age(300);
        assert!(
            v.validate(&claims(serde_json::json!({"iat": 800})), 1000)
                .is_ok()
        );
        assert!(matches!(
            v.validate(&claims(serde_json::json!({"iat": 600})), 1000),
            Err(JoseError::IssuedAtOutOfRange)
        ));
        assert!(matches!(
            v.validate(&claims(serde_json::json!({})), 1000),
            Err(JoseError::MissingClaim("iat"))
        ));
    }
}
