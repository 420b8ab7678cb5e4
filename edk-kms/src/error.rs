//! The errors of key providers and of the KMS.

use std::error::Error as StdError;

use edk_core::{ErrorKind, HasKind, IdError};

use crate::kms::{KeyAlias, KeyState};
use crate::provider::{KeyUsage, ProviderId};
use crate::store::StoreError;

/// A boxed foreign error kept as the source of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a key provider or KMS operation failed.
///
/// No variant carries key material, PINs or key encryption keys; the `Display` of client-kind
/// variants names only the caller's own input (aliases, kids, provider ids, algorithms,
/// configuration fields). Another tenant's alias or kid is the same [`Error::AliasNotFound`]
/// or [`Error::UnknownKid`] as one that exists nowhere.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An alias already names a key.
    #[error("key alias `{alias}` already exists")]
    AliasExists {
        /// The alias.
        alias: KeyAlias,
    },
    /// The alias names no key of this tenant.
    #[error("key alias `{alias}` not found")]
    AliasNotFound {
        /// The alias.
        alias: KeyAlias,
    },
    /// The algorithm does not fit the key (its type, curve or usage).
    #[error("algorithm `{alg}` is not allowed for this key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: &'static str,
    },
    /// The tenant's audit chain does not verify after its last checkpoint, so it is not
    /// checkpointed; [`LocalKms::verify_audit`](crate::LocalKms::verify_audit) reports the
    /// whole chain.
    #[error("the audit chain does not verify at record {seq} ({}); it is not checkpointed", problem.as_str())]
    AuditChainBroken {
        /// The first record that does not fit.
        seq: u64,
        /// What is wrong there.
        problem: crate::audit::AuditProblem,
    },
    /// A cryptographic operation the KMS does itself (not in a provider) failed; the detail is
    /// for the log only.
    #[error("cryptographic operation failed")]
    Crypto(#[source] BoxError),
    /// A JWE or wrapped key could not be decrypted; one variant for every cause.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The alias holds an externally managed public key, which cannot do this.
    #[error("key alias `{alias}` holds an external public key")]
    ExternalKey {
        /// The alias.
        alias: KeyAlias,
    },
    /// The same key (by kid) is already held by one of the tenant's aliases.
    #[error("the key is already registered")]
    KeyExists,
    /// The key is in use (held by a DID, a client, a credential configuration).
    #[error("key alias `{alias}` is in use")]
    KeyInUse {
        /// The alias.
        alias: KeyAlias,
    },
    /// The key version's lifecycle state does not allow the operation.
    #[error("the key is {} and cannot be used for this", state.as_str())]
    KeyNotUsable {
        /// The state.
        state: KeyState,
    },
    /// A signature does not verify; one variant for every cause.
    #[error("invalid signature")]
    InvalidSignature,
    /// The alias is reserved for one of EDK's own services (see
    /// [`RESERVED_SERVICES`](crate::kms::RESERVED_SERVICES)) and this caller is not it.
    #[error("key alias `{alias}` is reserved for the `{}` service", alias.service())]
    ReservedAlias {
        /// The alias.
        alias: KeyAlias,
    },
    /// No configured provider can hold a key for this usage.
    #[error("no provider supports {usage}")]
    NoProvider {
        /// The usage.
        usage: KeyUsage,
    },
    /// The key store failed.
    #[error("key store operation failed")]
    Store(#[source] StoreError),
    /// The tenancy layer failed (opening a tenant's database).
    #[error("tenancy operation failed")]
    Tenancy(#[source] edk_tenancy::Error),
    /// The kid names no key of this tenant.
    #[error("key `{kid}` not found")]
    UnknownKid {
        /// The kid.
        kid: edk_core::Kid,
    },
    /// No provider with this id is configured.
    #[error("provider `{provider}` is not configured")]
    UnknownProvider {
        /// The provider id.
        provider: ProviderId,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A provider registration is invalid: an unknown kind, a missing or malformed field, a
    /// secret given in clear or a secret reference that cannot be resolved. The reason never
    /// holds a secret.
    #[error("invalid provider registration: `{field}` {reason}")]
    InvalidRegistration {
        /// The offending field, a dotted path such as `auth.token`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider comes from the configuration file and cannot be changed at run time.
    #[error("provider `{provider}` is configured in the server's configuration file")]
    ConfiguredProvider {
        /// The provider id.
        provider: ProviderId,
    },
    /// The provider is in use: key references or alias bindings name it.
    #[error("provider `{provider}` is in use by {keys} key aliases and {bindings} alias bindings")]
    ProviderInUse {
        /// The provider id.
        provider: ProviderId,
        /// Key aliases whose keys it holds.
        keys: u64,
        /// Alias bindings that name it.
        bindings: u64,
    },
    /// No provider is registered at run time with this id.
    #[error("provider `{provider}` is not registered")]
    ProviderNotRegistered {
        /// The provider id.
        provider: ProviderId,
    },
    /// The KMS was built without a provider factory, so it does not register providers.
    #[error("providers cannot be registered at run time here")]
    RegistrationDisabled,
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
    /// A remote KMS (over gRPC) refused or failed the call: `kind` is what its status code
    /// says, `message` its status message (for client kinds, text about the caller's own input;
    /// for server faults, a generic message).
    #[error("remote KMS: {message}")]
    Remote {
        /// The kind the remote answered with.
        kind: ErrorKind,
        /// The remote's message.
        message: String,
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

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AliasExists { alias } => Self::AliasExists { alias },
            StoreError::AliasNotFound { alias } => Self::AliasNotFound { alias },
            StoreError::KeyExists => Self::KeyExists,
            StoreError::KeyInUse { alias } => Self::KeyInUse { alias },
            StoreError::Tenancy(err) => Self::Tenancy(err),
            other => Self::Store(other),
        }
    }
}

impl From<edk_tenancy::Error> for Error {
    fn from(err: edk_tenancy::Error) -> Self {
        Self::Tenancy(err)
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AliasExists { .. }
            | Self::AuditChainBroken { .. }
            | Self::KeyExists
            | Self::KeyInUse { .. }
            | Self::ConfiguredProvider { .. }
            | Self::ProviderInUse { .. } => ErrorKind::Conflict,
            Self::InvalidRegistration { .. } => ErrorKind::InvalidInput,
            Self::ProviderNotRegistered { .. } => ErrorKind::NotFound,
            Self::RegistrationDisabled => ErrorKind::Unsupported,
            Self::AliasNotFound { .. } | Self::UnknownKid { .. } => ErrorKind::NotFound,
            Self::AlgorithmMismatch { .. }
            | Self::DecryptionFailed
            | Self::ExternalKey { .. }
            | Self::InvalidSignature
            | Self::UnknownProvider { .. } => ErrorKind::InvalidInput,
            Self::KeyNotUsable { .. } | Self::ReservedAlias { .. } => ErrorKind::Forbidden,
            Self::NoProvider { .. } => ErrorKind::Unsupported,
            Self::Store(err) => err.kind(),
            Self::Tenancy(err) => err.kind(),
            Self::InvalidConfig { .. } | Self::InvalidId(_) | Self::InvalidKey { .. } => {
                ErrorKind::InvalidInput
            }
            Self::KeyNotFound { .. } => ErrorKind::NotFound,
            Self::UnsupportedUsage { .. } | Self::UnsupportedOperation { .. } => {
                ErrorKind::Unsupported
            }
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Remote { kind, .. } => *kind,
            Self::Internal { .. } | Self::SecretFile { .. } | Self::Random | Self::Crypto(_) => {
                ErrorKind::Internal
            }
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
