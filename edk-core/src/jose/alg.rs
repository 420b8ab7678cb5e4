//! JWS algorithms (RFC 7518 §3, RFC 8037, RFC 8812, fully-specified `Ed25519`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A JWS signature algorithm EDK signs and verifies with.
///
/// Only asymmetric algorithms exist here: `none` and the HMAC family cannot be named, so a
/// token that asks for them is refused before any key is looked at (RFC 8725 §3.1–3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// `EdDSA` with Ed25519 (RFC 8037).
    EdDsa,
    /// `Ed25519`, the fully-specified name for EdDSA over Ed25519 (RFC 9864).
    Ed25519,
    /// `ES256`: ECDSA with P-256 and SHA-256.
    Es256,
    /// `ES256K`: ECDSA with secp256k1 and SHA-256 (RFC 8812).
    Es256K,
    /// `ES384`: ECDSA with P-384 and SHA-384.
    Es384,
    /// `PS256`: RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    Ps256,
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Self; 7] = [
        Self::Es256,
        Self::Es384,
        Self::Es256K,
        Self::EdDsa,
        Self::Ed25519,
        Self::Rs256,
        Self::Ps256,
    ];

    /// The JOSE name, e.g. `ES256`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::Es256 => "ES256",
            Self::Es256K => "ES256K",
            Self::Es384 => "ES384",
            Self::Ps256 => "PS256",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses a JOSE algorithm name; `None` for `none`, HMAC and anything unsupported.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Whether the algorithm is EdDSA over Ed25519 under either of its names.
    #[must_use]
    pub const fn is_ed25519(self) -> bool {
        matches!(self, Self::EdDsa | Self::Ed25519)
    }

    /// Whether the algorithm is an RSA algorithm.
    #[must_use]
    pub const fn is_rsa(self) -> bool {
        matches!(self, Self::Rs256 | Self::Ps256)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = super::JoseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| super::JoseError::UnsupportedAlgorithm(s.to_owned()))
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unsupported algorithm `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_unknown() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for refused in ["none", "None", "HS256", "es256", ""] {
            assert_eq!(Algorithm::from_name(refused), None);
        }
    }
}
