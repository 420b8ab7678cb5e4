//! The errors of the certificate module.

use edk_core::jose::{Algorithm, SignError};
use edk_core::{ErrorKind, HasKind, IdError};

use crate::error::BoxError;
use crate::kms::KeyAlias;

use super::ChainName;

/// Why a certificate operation failed.
///
/// Client-kind messages name only the caller's own input (aliases, chain names, the part of a
/// certificate that is wrong); database and signer detail stays in the `source` for the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signing key's algorithm cannot sign certificates here.
    #[error("algorithm {0} is not supported for certificates")]
    UnsupportedAlgorithm(Algorithm),
    /// The key type cannot be put in a certificate (symmetric, X25519, secp256k1).
    #[error("the key of `{alias}` cannot be put in a certificate")]
    UnsupportedKey {
        /// The alias.
        alias: KeyAlias,
    },
    /// A certificate or CSR in PEM or DER cannot be parsed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `certificate`, `certificate chain`, `CSR`, `distinguished name`, ...
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An identifier (alias, chain name) is malformed.
    #[error("invalid identifier")]
    InvalidId(#[from] IdError),
    /// A profile field is not acceptable.
    #[error("invalid certificate profile: {0}")]
    InvalidProfile(&'static str),
    /// The CSR's self-signature does not verify.
    #[error("the CSR signature does not verify")]
    InvalidCsrSignature,
    /// The certificate's public key is not the key of the alias it is registered under.
    #[error("the certificate's public key is not a key of `{alias}`")]
    KeyMismatch {
        /// The alias.
        alias: KeyAlias,
    },
    /// The CA alias has no certificate to issue under, or its certificate is for another key
    /// (the CA key rotated since).
    #[error("`{alias}` has no CA certificate for its current key")]
    NoCaCertificate {
        /// The CA alias.
        alias: KeyAlias,
    },
    /// No certificate is stored under the alias.
    #[error("no certificate `{alias}`")]
    CertificateNotFound {
        /// The alias.
        alias: KeyAlias,
    },
    /// No certificate chain is stored under the name.
    #[error("no certificate chain `{name}`")]
    ChainNotFound {
        /// The chain name.
        name: ChainName,
    },
    /// There is no trust anchor to validate against.
    #[error("no trust anchors")]
    NoTrustAnchors,
    /// The chain does not validate.
    #[error("the certificate chain is not valid: {0}")]
    InvalidChain(ChainProblem),
    /// The KMS refused or failed (unknown alias, provider down); its message and kind.
    #[error(transparent)]
    Kms(crate::Error),
    /// The signer failed.
    #[error("signing failed")]
    Sign(#[source] SignError),
    /// The store failed.
    #[error("the certificate store failed")]
    Store(#[source] BoxError),
    /// Encoding a structure failed; a bug, for the log.
    #[error("encoding a certificate structure failed")]
    Encoding(#[source] BoxError),
}

/// Why a chain did not validate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainProblem {
    /// A certificate that issues others has no `basicConstraints` with `cA` true.
    #[error("an issuing certificate is not a CA")]
    NotCa,
    /// The end-entity certificate is a CA certificate.
    #[error("the end-entity certificate is a CA")]
    CaAsEndEntity,
    /// A certificate's validity ended before the validation time.
    #[error("a certificate has expired")]
    Expired,
    /// A certificate's validity starts after the validation time.
    #[error("a certificate is not yet valid")]
    NotYetValid,
    /// An issuing certificate's `keyUsage` lacks `keyCertSign`.
    #[error("an issuing certificate may not sign certificates")]
    KeyCertSignMissing,
    /// A CA's `pathLenConstraint` is exceeded.
    #[error("a path length constraint is exceeded")]
    PathLenExceeded,
    /// A signature in the chain does not verify.
    #[error("a certificate signature does not verify")]
    BadSignature,
    /// No path leads to a trust anchor.
    #[error("no path to a trust anchor")]
    UnknownIssuer,
    /// A certificate uses an algorithm not accepted here.
    #[error("a certificate uses an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// A certificate or extension is malformed or not acceptable.
    #[error("a certificate is malformed")]
    Malformed,
    /// Any other reason.
    #[error("rejected")]
    Other,
}

impl Error {
    pub(crate) fn store(source: impl Into<BoxError>) -> Self {
        Self::Store(source.into())
    }

    pub(crate) fn encoding(source: impl Into<BoxError>) -> Self {
        Self::Encoding(source.into())
    }
}

impl From<crate::Error> for Error {
    fn from(err: crate::Error) -> Self {
        Self::Kms(err)
    }
}

impl From<SignError> for Error {
    fn from(err: SignError) -> Self {
        Self::Sign(err)
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed { .. }
            | Self::InvalidId(_)
            | Self::InvalidProfile(_)
            | Self::InvalidCsrSignature
            | Self::KeyMismatch { .. }
            | Self::NoCaCertificate { .. }
            | Self::NoTrustAnchors
            | Self::InvalidChain(_) => ErrorKind::InvalidInput,
            Self::UnsupportedAlgorithm(_) | Self::UnsupportedKey { .. } => ErrorKind::Unsupported,
            Self::CertificateNotFound { .. } | Self::ChainNotFound { .. } => ErrorKind::NotFound,
            Self::Kms(err) => err.kind(),
            Self::Sign(err) => err.kind(),
            Self::Store(_) | Self::Encoding(_) => ErrorKind::Internal,
        }
    }
}
