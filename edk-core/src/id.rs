//! Identifiers that cross crate boundaries, each parsed and validated once at the edge.
//!
//! A value of one of these types is always valid: constructors refuse anything else with an
//! [`IdError`], and `Deserialize` goes through the same checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ErrorKind, HasKind};

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The value is empty.
    #[error("{what} must not be empty")]
    Empty {
        /// Which identifier.
        what: &'static str,
    },
    /// The value is longer than allowed.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// Which identifier.
        what: &'static str,
        /// The maximum length.
        max: usize,
    },
    /// The value does not follow the identifier's syntax.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// Which identifier.
        what: &'static str,
        /// What rule was broken.
        reason: &'static str,
    },
    /// The value is reserved for the platform.
    #[error("{what} `{value}` is reserved")]
    Reserved {
        /// Which identifier.
        what: &'static str,
        /// The reserved value (the caller's own input).
        value: String,
    },
}

impl HasKind for IdError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $check:path) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            ///
            /// # Errors
            /// [`IdError`] when `value` breaks the identifier's rules.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                $check(&value)?;
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the identifier, returning the string.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

    };
}

/// A tenant's immutable identifier (a UUID). Database schemas are named from it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(uuid::Uuid);

impl TenantId {
    /// A new random (time-ordered, UUIDv7) tenant id.
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    #[must_use]
    pub const fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    /// The PostgreSQL schema holding this tenant's data: `tenant_` and the 32 lower-case hex
    /// digits of the id. Built only from the UUID, so it is always a safe SQL identifier.
    #[must_use]
    pub fn schema_name(&self) -> String {
        format!("tenant_{}", self.0.simple())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl FromStr for TenantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError::Malformed {
                what: "tenant id",
                reason: "not a UUID",
            })
    }
}

/// Slugs that name platform paths and cannot be given to a tenant.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "default",
    "docs",
    "health",
    "internal",
    "metrics",
    "openapi",
    "platform",
    "public",
    "root",
    "static",
    "system",
    "well-known",
    "www",
];

fn check_slug(value: &str) -> Result<(), IdError> {
    const WHAT: &str = "tenant slug";
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return Err(IdError::Empty { what: WHAT });
    };
    if value.len() > 63 {
        return Err(IdError::TooLong {
            what: WHAT,
            max: 63,
        });
    }
    if !first.is_ascii_lowercase() {
        return Err(IdError::Malformed {
            what: WHAT,
            reason: "must start with a lower-case letter",
        });
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(IdError::Malformed {
            what: WHAT,
            reason: "only lower-case letters, digits and '-' are allowed",
        });
    }
    if RESERVED_SLUGS.contains(&value) {
        return Err(IdError::Reserved {
            what: WHAT,
            value: value.to_owned(),
        });
    }
    Ok(())
}

string_id!(
    /// A tenant's human-readable name in URLs: `[a-z][a-z0-9-]{0,62}`, not a reserved word.
    TenantSlug,
    check_slug
);

fn check_printable(what: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > max {
        return Err(IdError::TooLong { what, max });
    }
    if value.chars().any(char::is_control) {
        return Err(IdError::Malformed {
            what,
            reason: "control characters are not allowed",
        });
    }
    Ok(())
}

fn check_kid(value: &str) -> Result<(), IdError> {
    check_printable("key id", value, 1024)
}

string_id!(
    /// A JOSE key id (`kid`): non-empty, at most 1,024 characters, no control characters.
    /// Keys managed by EDK use their RFC 7638 thumbprint; foreign keys may use DID URLs.
    Kid,
    check_kid
);

fn check_client_id(value: &str) -> Result<(), IdError> {
    check_printable("client id", value, 255)
}

string_id!(
    /// An OAuth 2 `client_id`: non-empty, at most 255 characters, no control characters.
    ClientId,
    check_client_id
);

const DID_MAX: usize = 2048;

fn is_idchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'%')
}

fn check_did(value: &str) -> Result<(), IdError> {
    const WHAT: &str = "DID";
    if value.is_empty() {
        return Err(IdError::Empty { what: WHAT });
    }
    if value.len() > DID_MAX {
        return Err(IdError::TooLong {
            what: WHAT,
            max: DID_MAX,
        });
    }
    let malformed = |reason| IdError::Malformed { what: WHAT, reason };
    let rest = value
        .strip_prefix("did:")
        .ok_or_else(|| malformed("must start with `did:`"))?;
    let (method, msid) = rest
        .split_once(':')
        .ok_or_else(|| malformed("missing method-specific id"))?;
    if method.is_empty()
        || !method
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(malformed(
            "method name must be lower-case letters and digits",
        ));
    }
    if msid.is_empty() || msid.ends_with(':') {
        return Err(malformed(
            "method-specific id must not be empty or end with `:`",
        ));
    }
    let bytes = msid.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b':' {
            continue;
        }
        if !is_idchar(c) {
            return Err(malformed(
                "method-specific id has a character outside idchar",
            ));
        }
        if c == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(malformed("bad percent-encoding"));
            }
        }
    }
    Ok(())
}

string_id!(
    /// A decentralized identifier (W3C DID Core §3.1): `did:<method>:<method-specific-id>`,
    /// without path, query or fragment.
    Did,
    check_did
);

impl Did {
    /// The method name, e.g. `web` for `did:web:example.com`.
    #[must_use]
    pub fn method(&self) -> &str {
        self.0
            .get(4..)
            .and_then(|rest| rest.split_once(':'))
            .map_or("", |(method, _)| method)
    }

    /// The method-specific identifier, e.g. `example.com` for `did:web:example.com`.
    #[must_use]
    pub fn method_specific_id(&self) -> &str {
        self.0
            .get(4..)
            .and_then(|rest| rest.split_once(':'))
            .map_or("", |(_, msid)| msid)
    }
}

/// A DID URL (DID Core §3.2): a DID followed by an optional path, query and fragment.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DidUrl {
    url: String,
    #[serde(skip)]
    did_len: usize,
}

impl DidUrl {
    /// Parses a DID URL.
    ///
    /// # Errors
    /// [`IdError`] when the DID part is invalid or the remainder has control characters.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let did_len = value.find(['/', '?', '#']).unwrap_or(value.len());
        let did = value.get(..did_len).unwrap_or_default();
        check_did(did)?;
        if value.len() > DID_MAX * 2 {
            return Err(IdError::TooLong {
                what: "DID URL",
                max: DID_MAX * 2,
            });
        }
        if value.chars().any(|c| c.is_control() || c == ' ') {
            return Err(IdError::Malformed {
                what: "DID URL",
                reason: "spaces and control characters are not allowed",
            });
        }
        Ok(Self {
            url: value.to_owned(),
            did_len,
        })
    }

    /// The DID this URL refers into.
    #[must_use]
    pub fn did(&self) -> Did {
        Did(self.url.get(..self.did_len).unwrap_or_default().to_owned())
    }

    /// The fragment without `#`, if any.
    #[must_use]
    pub fn fragment(&self) -> Option<&str> {
        self.url.split_once('#').map(|(_, fragment)| fragment)
    }

    /// The whole DID URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for DidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for DidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidUrl({:?})", self.url)
    }
}

impl FromStr for DidUrl {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for DidUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// An absolute `https` URL without credentials or fragment: what issuers, authorization
/// servers and status lists are named by.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HttpsUrl(url::Url);

impl HttpsUrl {
    /// Parses and checks an `https` URL.
    ///
    /// # Errors
    /// [`IdError`] when `value` is not an absolute `https` URL, or carries a user name,
    /// password or fragment.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        const WHAT: &str = "https URL";
        let malformed = |reason| IdError::Malformed { what: WHAT, reason };
        let url = url::Url::parse(value).map_err(|_| malformed("not an absolute URL"))?;
        if url.scheme() != "https" {
            return Err(malformed("scheme must be https"));
        }
        if url.host().is_none() {
            return Err(malformed("missing host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(malformed("credentials are not allowed"));
        }
        if url.fragment().is_some() {
            return Err(malformed("fragments are not allowed"));
        }
        Ok(Self(url))
    }

    /// The URL.
    #[must_use]
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpsUrl({:?})", self.0.as_str())
    }
}

impl FromStr for HttpsUrl {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for HttpsUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        assert!(TenantSlug::new("acme").is_ok());
        assert!(TenantSlug::new("a").is_ok());
        assert!(TenantSlug::new("acme-2").is_ok());
        assert!(TenantSlug::new(format!("a{}", "b".repeat(62))).is_ok());
        for bad in [
            "",
            "Acme",
            "1acme",
            "-acme",
            "ac_me",
            "acme;drop",
            "ac'me",
            "ácme",
            "аcme", // Cyrillic a
            "admin",
        ] {
            assert!(TenantSlug::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            TenantSlug::new(format!("a{}", "b".repeat(63))),
            Err(IdError::TooLong {
                what: "tenant slug",
                max: 63
            })
        );
    }

    #[test]
    fn schema_name_is_built_from_the_uuid_only() {
        let id: TenantId = "0190c7a4-8e2b-7cde-9f00-0123456789ab".parse().unwrap();
        assert_eq!(id.schema_name(), "tenant_0190c7a48e2b7cde9f000123456789ab");
        assert!("'; drop schema".parse::<TenantId>().is_err());
    }

    #[test]
    fn dids_follow_did_core_syntax() {
        let did = Did::new("did:web:example.com%3A8443:user:alice").unwrap();
        assert_eq!(did.method(), "web");
        assert_eq!(did.method_specific_id(), "example.com%3A8443:user:alice");
        for bad in [
            "did:",
            "did:web",
            "did:Web:x",
            "did:web:",
            "did:web:a:",
            "did:web:a b",
            "did:web:a%zz",
            "did:web:a#frag",
            "web:a",
        ] {
            assert!(Did::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn did_urls_split_did_and_fragment() {
        let url = DidUrl::parse("did:example:123/path?x=1#key-1").unwrap();
        assert_eq!(url.did().as_str(), "did:example:123");
        assert_eq!(url.fragment(), Some("key-1"));
        assert!(DidUrl::parse("did:example:#k").is_err());
    }

    #[test]
    fn https_urls_refuse_other_schemes_and_credentials() {
        assert!(HttpsUrl::parse("https://issuer.example/tenant").is_ok());
        assert!(HttpsUrl::parse("http://issuer.example").is_err());
        assert!(HttpsUrl::parse("https://u:p@issuer.example").is_err());
        assert!(HttpsUrl::parse("https://issuer.example/#x").is_err());
        assert!(HttpsUrl::parse("issuer.example").is_err());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        assert!(serde_json::from_str::<Kid>("\"\"").is_err());
        let kid: Kid = serde_json::from_str("\"did:example:1#k\"").unwrap();
        assert_eq!(kid.as_str(), "did:example:1#k");
        assert!(serde_json::from_str::<ClientId>("\"a\\u0000b\"").is_err());
    }
}
