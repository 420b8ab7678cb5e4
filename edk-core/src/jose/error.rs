//! Errors of the JOSE layer.

use std::error::Error as StdError;

use crate::error::{ErrorKind, HasKind};

/// Why a JOSE operation failed.
///
/// Verification failures say which check failed but never include key material or the
/// expected secret values; every signature failure is the single [`JoseError::InvalidSignature`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The input is not a well-formed JWS, JWT or JWK.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The input is larger than the configured limit.
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The `alg` is not one EDK implements (this includes `none` and HMAC).
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The `alg` is implemented but not on the caller's allow-list.
    #[error("algorithm {0} is not allowed here")]
    AlgorithmNotAllowed(super::Algorithm),
    /// The key cannot be used with the algorithm (type, curve, or the key's own `alg`).
    #[error("the key does not support algorithm {0}")]
    KeyAlgorithmMismatch(super::Algorithm),
    /// The key is unusable: wrong sizes, bad point, missing private part, too short an RSA modulus.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The key type or curve is not supported.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A header names a parameter as critical that the caller does not understand.
    #[error("critical header parameter `{0}` is not understood")]
    UnsupportedCritical(String),
    /// The header carries a key (`jwk`) and the caller's policy does not allow trusting it.
    #[error("keys embedded in the header are not accepted here")]
    EmbeddedKeyRefused,
    /// The `typ` header is not the expected one.
    #[error("unexpected token type: expected `{expected}`")]
    UnexpectedType {
        /// The expected `typ`.
        expected: String,
    },
    /// No key could be found for the token.
    #[error("no key found to verify the token")]
    KeyNotFound,
    /// Several keys could verify the token and none was singled out by `kid`.
    #[error("the token names no key and several could apply")]
    AmbiguousKey,
    /// A key source refused the key (untrusted chain, revoked, wrong issuer).
    #[error("the key is not trusted: {0}")]
    UntrustedKey(&'static str),
    /// A required claim is absent or has the wrong type.
    #[error("claim `{0}` is missing or has the wrong type")]
    MissingClaim(&'static str),
    /// The token has expired (`exp`).
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf`).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token was issued in the future (`iat`), or too long ago for the caller's window.
    #[error("the token's issue time is outside the accepted window")]
    IssuedAtOutOfRange,
    /// The `iss` claim is not the expected issuer.
    #[error("the token's issuer is not the expected one")]
    IssuerMismatch,
    /// The `aud` claim does not contain the expected audience.
    #[error("the token is not meant for this audience")]
    AudienceMismatch,
    /// A key source failed (a KMS or a resolver could not answer).
    #[error("key source failed")]
    KeySource(#[source] Box<dyn StdError + Send + Sync>, ErrorKind),
    /// Signing failed.
    #[error("signing failed")]
    Signing(#[source] SignError),
    /// A JWE could not be decrypted. One variant for every cause, so that no decryption
    /// oracle tells them apart.
    #[error("decryption failed")]
    DecryptionFailed,
    /// Random generation or key generation failed in the crypto library.
    #[error("cryptographic operation failed")]
    Crypto,
}

impl HasKind for JoseError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed { .. }
            | Self::TooLarge { .. }
            | Self::InvalidKey(_)
            | Self::UnexpectedType { .. }
            | Self::MissingClaim(_) => ErrorKind::InvalidInput,
            Self::UnsupportedAlgorithm(_)
            | Self::UnsupportedKey(_)
            | Self::UnsupportedCritical(_) => ErrorKind::Unsupported,
            Self::AlgorithmNotAllowed(_)
            | Self::KeyAlgorithmMismatch(_)
            | Self::InvalidSignature
            | Self::EmbeddedKeyRefused
            | Self::KeyNotFound
            | Self::AmbiguousKey
            | Self::UntrustedKey(_)
            | Self::Expired
            | Self::NotYetValid
            | Self::IssuedAtOutOfRange
            | Self::IssuerMismatch
            | Self::AudienceMismatch => ErrorKind::Unauthenticated,
            Self::DecryptionFailed => ErrorKind::InvalidInput,
            Self::KeySource(_, kind) => *kind,
            Self::Signing(err) => err.kind(),
            Self::Crypto => ErrorKind::Internal,
        }
    }
}

/// The error a [`Signer`](super::Signer) returns: a kind and the underlying cause.
///
/// Signers wrap their backend's error (an HSM that is unreachable, a KMS alias that is
/// retired) so that callers can classify it without knowing the backend.
#[derive(Debug, thiserror::Error)]
#[error("{kind} while signing")]
pub struct SignError {
    kind: ErrorKind,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl SignError {
    /// A signing error of `kind` caused by `source`.
    pub fn new(kind: ErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// A signing error of `kind` without further detail.
    #[must_use]
    pub const fn of_kind(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }
}

impl HasKind for SignError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}
