//! Errors of SD-JWT issuance, presentation and verification.

use crate::error::{ErrorKind, HasKind};
use crate::jose::JoseError;

/// Why an SD-JWT operation failed.
///
/// There is one variant per failure RFC 9901 names. Messages may echo a claim name taken from
/// the input, never a salt, a claim value or key material; every signature failure sits in
/// the [`JoseError`] source as the single [`JoseError::InvalidSignature`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdJwtError {
    /// The key binding JWT's `aud` is not the verifier's (RFC 9901 §7.3 step 5f).
    #[error("the key binding JWT is not meant for this audience")]
    AudienceMismatch,
    /// A disclosure's claim name is already present in the object it is disclosed into
    /// (RFC 9901 §7.1 step 3c, §4.2.1).
    #[error("disclosed claim `{0}` collides with a claim already present")]
    ClaimCollision(String),
    /// The processed claims fail their time or issuer checks (RFC 9901 §7.1 step 6).
    #[error("the disclosed claims are not valid")]
    Claims(#[source] JoseError),
    /// Random generation failed in the crypto library.
    #[error("random generation failed")]
    Crypto,
    /// A digest value appears more than once in the payload or the disclosures
    /// (RFC 9901 §7.1 step 4).
    #[error("a digest appears more than once")]
    DuplicateDigest,
    /// The same disclosure is presented more than once (RFC 9901 §4, §7.1).
    #[error("a disclosure is presented more than once")]
    DuplicateDisclosure,
    /// A disclosure is not a base64url JSON array of the shapes RFC 9901 §4.2 defines, or
    /// is of the wrong kind for where its digest sits (§7.1 step 3c–d).
    #[error("invalid disclosure: {0}")]
    InvalidDisclosure(&'static str),
    /// The issuer-signed JWT does not verify: algorithm, key, signature or header checks
    /// (RFC 9901 §7.1 step 2).
    #[error("the issuer-signed JWT is invalid")]
    IssuerJwt(#[source] JoseError),
    /// The key binding JWT is malformed, has the wrong `typ`, or its signature does not verify
    /// with the key in `cnf` (RFC 9901 §7.3 step 5b–d, 5h).
    #[error("the key binding JWT is invalid")]
    KeyBinding(#[source] JoseError),
    /// The key binding JWT's `iat` (or `exp`/`nbf`) is outside the accepted window
    /// (RFC 9901 §7.3 step 5e).
    #[error("the key binding JWT is outside the accepted time window")]
    KeyBindingExpired,
    /// Key binding is required and the presentation has no key binding JWT (RFC 9901 §7.3
    /// step 2).
    #[error("a key binding JWT is required")]
    KeyBindingRequired,
    /// The input is not an SD-JWT in compact or JSON serialization.
    #[error("malformed SD-JWT: {0}")]
    Malformed(&'static str),
    /// Key binding is required and the issuer-signed JWT carries no usable `cnf.jwk`
    /// (RFC 9901 §7.3 step 5a).
    #[error("the SD-JWT names no holder key in `cnf`")]
    MissingHolderKey,
    /// The key binding JWT's `nonce` is not the one the verifier issued (RFC 9901 §7.3 step 5f).
    #[error("the key binding JWT's nonce is not the expected one")]
    NonceMismatch,
    /// A claim path does not name a claim (issuance) or a disclosable claim (presentation).
    #[error("claim path `{0}` names no claim")]
    PathNotFound(String),
    /// A claim or disclosure uses a name reserved for digests: `_sd` or `...`
    /// (RFC 9901 §4.2.1, §7.1 step 3c).
    #[error("the reserved name `{0}` is used as a claim name")]
    ReservedClaimName(String),
    /// The key binding JWT's `sd_hash` does not match the presented SD-JWT
    /// (RFC 9901 §7.3 step 5g).
    #[error("the key binding JWT's `sd_hash` does not match the presentation")]
    SdHashMismatch,
    /// Signing the issuer-signed JWT or the key binding JWT failed.
    #[error("signing failed")]
    Signing(#[source] JoseError),
    /// The input has more disclosures than [`Limits::max_disclosures`](crate::Limits).
    #[error("{count} disclosures exceed the limit of {limit}")]
    TooManyDisclosures {
        /// The number of disclosures.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Claims nest deeper than [`Limits::max_depth`](crate::Limits).
    #[error("claims nest deeper than the limit of {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The input is larger than [`Limits::max_token_bytes`](crate::Limits).
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A key binding JWT is present where the verifier's policy expects none, or an issuer
    /// sent an SD-JWT+KB (RFC 9901 §4, §7.3 step 1).
    #[error("a key binding JWT was not expected")]
    UnexpectedKeyBinding,
    /// The issuer-signed JWT's `typ` is not one the verifier accepts.
    #[error("unexpected SD-JWT type")]
    UnexpectedType,
    /// `_sd_alg` names a hash function that is not supported or not allowed
    /// (RFC 9901 §4.1.1, §7.1 step 2d).
    #[error("unsupported `_sd_alg` `{0}`")]
    UnsupportedHashAlg(String),
    /// A valid but unsupported form, such as a general JSON serialization with several
    /// signatures.
    #[error("unsupported SD-JWT: {0}")]
    Unsupported(&'static str),
    /// A disclosure is not referenced by any digest, directly or through another disclosure
    /// (RFC 9901 §7.1 step 5). A tampered disclosure ends here: its digest matches nothing.
    #[error("a disclosure is not referenced by any digest")]
    UnreferencedDisclosure,
}

impl HasKind for SdJwtError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ClaimCollision(_)
            | Self::DuplicateDigest
            | Self::DuplicateDisclosure
            | Self::InvalidDisclosure(_)
            | Self::Malformed(_)
            | Self::PathNotFound(_)
            | Self::ReservedClaimName(_)
            | Self::TooManyDisclosures { .. }
            | Self::TooDeep { .. }
            | Self::TooLarge { .. }
            | Self::UnexpectedKeyBinding
            | Self::UnexpectedType
            | Self::UnreferencedDisclosure => ErrorKind::InvalidInput,
            Self::AudienceMismatch
            | Self::KeyBinding(_)
            | Self::KeyBindingExpired
            | Self::KeyBindingRequired
            | Self::MissingHolderKey
            | Self::NonceMismatch
            | Self::SdHashMismatch => ErrorKind::Unauthenticated,
            Self::IssuerJwt(err) | Self::Claims(err) | Self::Signing(err) => err.kind(),
            Self::UnsupportedHashAlg(_) | Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Crypto => ErrorKind::Internal,
        }
    }
}

/// At most 64 characters of `text`, for echoing input in an error.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}
