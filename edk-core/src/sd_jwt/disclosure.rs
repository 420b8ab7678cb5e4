//! Disclosures (RFC 9901 §4.2).

use serde_json::Value;

use super::SdJwtError;
use crate::encoding::{HashAlg, b64url_decode, b64url_encode};
use crate::limits::{Limits, json_depth};

/// One disclosure: a salted claim (`[salt, name, value]`) or array element (`[salt, value]`).
///
/// The encoded form is kept exactly as issued or received: its digest is computed over those
/// bytes (RFC 9901 §4.2.3), so it is never re-serialized.
///
/// ```
/// use edk_core::encoding::HashAlg;
/// use edk_core::sd_jwt::Disclosure;
///
/// // RFC 9901 §4.2.1.
/// let d = Disclosure::parse(
///     "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0",
///     &Default::default(),
/// )?;
/// assert_eq!(d.name(), Some("family_name"));
/// assert_eq!(d.digest(HashAlg::Sha256), "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0");
/// # Ok::<(), edk_core::sd_jwt::SdJwtError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Disclosure {
    encoded: String,
    salt: String,
    name: Option<String>,
    value: Value,
}

impl Disclosure {
    /// A disclosure of the object property `name: value` with `salt` (RFC 9901 §4.2.1).
    ///
    /// # Errors
    /// [`SdJwtError::ReservedClaimName`] when `name` is `_sd` or `...`.
    pub fn property(
        salt: impl Into<String>,
        name: impl Into<String>,
        value: Value,
    ) -> Result<Self, SdJwtError> {
        let (salt, name) = (salt.into(), name.into());
        if is_reserved(&name) {
            return Err(SdJwtError::ReservedClaimName(name));
        }
        Ok(Self {
            encoded: encode(&(&salt, &name, &value)),
            salt,
            name: Some(name),
            value,
        })
    }

    /// A disclosure of an array element with `salt` (RFC 9901 §4.2.2).
    #[must_use]
    pub fn element(salt: impl Into<String>, value: Value) -> Self {
        let salt = salt.into();
        Self {
            encoded: encode(&(&salt, &value)),
            salt,
            name: None,
            value,
        }
    }

    /// Parses an encoded disclosure, keeping its exact encoding.
    ///
    /// # Errors
    /// [`SdJwtError::InvalidDisclosure`] when it is not base64url of a JSON array
    /// `[salt, name, value]` or `[salt, value]` with string salt and name,
    /// [`SdJwtError::ReservedClaimName`] for the names `_sd` and `...`, and
    /// [`SdJwtError::TooDeep`] when the value nests deeper than `limits` allow.
    pub fn parse(encoded: &str, limits: &Limits) -> Result<Self, SdJwtError> {
        let bytes =
            b64url_decode(encoded).map_err(|_| SdJwtError::InvalidDisclosure("not base64url"))?;
        let Value::Array(items) = serde_json::from_slice(&bytes)
            .map_err(|_| SdJwtError::InvalidDisclosure("not a JSON array"))?
        else {
            return Err(SdJwtError::InvalidDisclosure("not a JSON array"));
        };
        let mut items = items.into_iter();
        let (salt, name, value) = match (items.next(), items.next(), items.next(), items.next()) {
            (Some(Value::String(salt)), Some(value), None, None) => (salt, None, value),
            (Some(Value::String(salt)), Some(Value::String(name)), Some(value), None) => {
                (salt, Some(name), value)
            }
            _ => {
                return Err(SdJwtError::InvalidDisclosure(
                    "expected [salt, name, value] or [salt, value] with string salt and name",
                ));
            }
        };
        if let Some(name) = &name
            && is_reserved(name)
        {
            return Err(SdJwtError::ReservedClaimName(name.clone()));
        }
        if json_depth(&value) > limits.max_depth {
            return Err(SdJwtError::TooDeep {
                limit: limits.max_depth,
            });
        }
        Ok(Self {
            encoded: encoded.to_owned(),
            salt,
            name,
            value,
        })
    }

    /// The encoded disclosure, as issued.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The salt.
    #[must_use]
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The claim name; `None` for an array element disclosure.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The disclosed value, as issued (it may itself hold digests, RFC 9901 §4.2.6).
    #[must_use]
    pub const fn value(&self) -> &Value {
        &self.value
    }

    /// The digest of the encoded disclosure with `alg` (RFC 9901 §4.2.3).
    #[must_use]
    pub fn digest(&self, alg: HashAlg) -> String {
        alg.digest_b64url(self.encoded.as_bytes())
    }
}

impl std::fmt::Debug for Disclosure {
    /// Shows the claim name only: salts and values are what selective disclosure hides.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disclosure")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// base64url of the compact JSON of a disclosure array.
#[expect(
    clippy::expect_used,
    reason = "a tuple of strings and JSON values always serializes"
)]
fn encode(array: &impl serde::Serialize) -> String {
    b64url_encode(serde_json::to_vec(array).expect("JSON values serialize"))
}

/// Whether `name` is reserved for digests (RFC 9901 §4.2.1).
pub(crate) fn is_reserved(name: &str) -> bool {
    name == "_sd" || name == "..."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9901_4_2_2_array_element_digest() {
        let d = Disclosure::parse(
            "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0",
            &Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(d.name(), None);
        assert_eq!(d.value(), &Value::from("FR"));
        assert_eq!(
            d.digest(HashAlg::Sha256),
            "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
        );
    }

    #[test]
    fn created_disclosures_parse_back() {
        let d = Disclosure::property("salt", "given_name", Value::from("Möbius")).unwrap();
        let parsed = Disclosure::parse(d.as_str(), &Limits::DEFAULT).unwrap();
        assert_eq!(parsed, d);
        let e = Disclosure::element("salt", serde_json::json!({"a": [1]}));
        assert_eq!(Disclosure::parse(e.as_str(), &Limits::DEFAULT).unwrap(), e);
    }

    #[test]
    fn malformed_disclosures_are_refused() {
        for json in [
            "{}",
            "[]",
            r#"["salt"]"#,
            r#"[1, "v"]"#,
            r#"["s", 1, "v"]"#,
            r#"["s", "n", "v", 4]"#,
            "not json",
        ] {
            assert!(
                matches!(
                    Disclosure::parse(&b64url_encode(json), &Limits::DEFAULT),
                    Err(SdJwtError::InvalidDisclosure(_))
                ),
                "{json}"
            );
        }
        assert!(matches!(
            Disclosure::parse("***", &Limits::DEFAULT),
            Err(SdJwtError::InvalidDisclosure(_))
        ));
        for name in ["_sd", "..."] {
            let encoded = b64url_encode(format!(r#"["s", "{name}", 1]"#));
            assert!(matches!(
                Disclosure::parse(&encoded, &Limits::DEFAULT),
                Err(SdJwtError::ReservedClaimName(_))
            ));
            assert!(Disclosure::property("s", name, Value::Null).is_err());
        }
        let deep = b64url_encode(r#"["s", "n", [[[[1]]]]]"#);
        assert!(matches!(
            Disclosure::parse(&deep, &Limits::DEFAULT.with_max_depth(3)),
            Err(SdJwtError::TooDeep { .. })
        ));
    }
}
