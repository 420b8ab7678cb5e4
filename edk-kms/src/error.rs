//! The errors of key providers.

use std::error::Error as StdError;

use edk_core::{ErrorKind, HasKind, IdError};

use crate::provider::{KeyUsage, ProviderId};

/// A boxed foreign error kept as the source of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a key provider operation failed.
///
/// No variant carries key material, PINs or key encryption keys; the `Display` of client-kind
/// variants names only the caller's own input (provider ids, algorithms, configuration fields).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A secret file named in the configuration cannot be read.
    #[error("cannot read the secret file of `{field}`")]
    SecretFile {
        /// The configuration field naming the file.
        field: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The system random generator failed.
    #[error("the random generator failed")]
    Random,
    /// An identifier is malformed.
    #[error("invalid identifier")]
    InvalidId(#[from] IdError),
    /// Key material handed to the provider (an imported JWK, a key handle) is unusable.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key does not exist for this tenant: unknown, destroyed, tampered with, or another
    /// tenant's.
    #[error("key not found in provider `{provider}`")]
    KeyNotFound {
        /// The provider asked.
        provider: ProviderId,
    },
    /// The provider cannot hold keys for this usage.
    #[error("provider `{provider}` does not support {usage}")]
    UnsupportedUsage {
        /// The provider asked.
        provider: ProviderId,
        /// The requested usage.
        usage: KeyUsage,
    },
    /// The provider does not offer this operation, or not for this key.
    #[error("provider `{provider}` does not support {operation}")]
    UnsupportedOperation {
        /// The provider asked.
        provider: ProviderId,
        /// The operation, e.g. `"import"`.
        operation: &'static str,
    },
    /// The backend cannot be used right now: token removed, wrong PIN, HSM down, a key
    /// encryption key missing from the configuration. Never answered by a silent fallback.
    #[error("provider `{provider}` is unavailable")]
    Unavailable {
        /// The provider asked.
        provider: ProviderId,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A fault inside the provider or its crypto library; the detail is for the log only.
    #[error("provider `{provider}` failed")]
    Internal {
        /// The provider asked.
        provider: ProviderId,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    pub(crate) fn unavailable(provider: &ProviderId, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            provider: provider.clone(),
            source: source.into(),
        }
    }

    pub(crate) fn internal(provider: &ProviderId, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            provider: provider.clone(),
            source: source.into(),
        }
    }

    pub(crate) fn not_found(provider: &ProviderId) -> Self {
        Self::KeyNotFound {
            provider: provider.clone(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidConfig { .. } | Self::InvalidId(_) | Self::InvalidKey { .. } => {
                ErrorKind::InvalidInput
            }
            Self::KeyNotFound { .. } => ErrorKind::NotFound,
            Self::UnsupportedUsage { .. } | Self::UnsupportedOperation { .. } => {
                ErrorKind::Unsupported
            }
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Internal { .. } | Self::SecretFile { .. } | Self::Random => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_shared_classification() {
        let provider = ProviderId::new("soft").unwrap();
        assert_eq!(Error::not_found(&provider).kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::unavailable(&provider, "token removed").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            Error::internal(&provider, "boom").to_string(),
            "provider `soft` failed"
        );
    }
}
