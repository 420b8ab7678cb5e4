//! Errors of the KMS server's own checks (request parsing, provider lookup); library errors
//! pass through [`edk_server::problem_for`] unchanged.

use edk_core::{ErrorKind, HasKind};
use edk_kms::ProviderId;

/// What the KMS server refuses before or around a library call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No provider has this id.
    #[error("no key provider `{provider}`")]
    UnknownProvider {
        /// The id asked for.
        provider: ProviderId,
    },
    /// Two configured providers share an id.
    #[error("the key provider id `{provider}` is configured twice")]
    DuplicateProvider {
        /// The repeated id.
        provider: ProviderId,
    },
    /// The key exists but not in the provider named in the path.
    #[error("key `{key}` not found in provider `{provider}`")]
    KeyNotInProvider {
        /// The alias or kid asked for.
        key: String,
        /// The provider in the path.
        provider: ProviderId,
    },
    /// Two resolvers share an id.
    #[error("the resolver id `{id}` is registered twice")]
    DuplicateResolver {
        /// The repeated id.
        id: String,
    },
    /// No resolver has this id.
    #[error("no resolver `{id}`")]
    UnknownResolver {
        /// The id asked for.
        id: String,
    },
    /// The server's KMS keeps no audit trail it can read (a remote KMS, say).
    #[error("this KMS keeps no audit trail that the server can read")]
    AuditUnavailable,
    /// The KMS server was configured with `kms.mode: remote`.
    #[error("the KMS server holds the keys itself: `kms.mode` must be `local`")]
    RemoteKms,
    /// No provider is configured.
    #[error("no key provider is configured")]
    NoProviders,
    /// No configured provider meets the requirement.
    #[error("no key provider meets the requirement")]
    NoMatchingProvider,
    /// A request field is not valid base64url.
    #[error("`{field}` is not valid base64url")]
    InvalidBase64 {
        /// The field.
        field: &'static str,
    },
    /// A request field has a value the API does not accept.
    #[error("`{field}` is invalid: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The tenant databases could not be set up.
    #[error("the tenant databases could not be set up")]
    Tenancy(#[source] edk_tenancy::Error),
    /// The KMS or a key provider could not be set up.
    #[error("the KMS could not be set up")]
    Kms(#[source] edk_kms::Error),
    /// The admin authentication could not be set up.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] edk_server::AuthSetupError),
    /// The gRPC listener's configuration is unusable.
    #[error("the gRPC listener could not be set up: {reason}")]
    Grpc {
        /// What is wrong.
        reason: String,
    },
    /// The metrics registry could not be built.
    #[error("the metrics registry could not be built")]
    Metrics(#[source] edk_server::prometheus::Error),
}

impl Error {
    pub(crate) const fn grpc(reason: String) -> Self {
        Self::Grpc { reason }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownProvider { .. }
            | Self::KeyNotInProvider { .. }
            | Self::UnknownResolver { .. } => ErrorKind::NotFound,
            Self::InvalidBase64 { .. } | Self::InvalidField { .. } => ErrorKind::InvalidInput,
            Self::NoMatchingProvider | Self::AuditUnavailable => ErrorKind::Unsupported,
            Self::DuplicateProvider { .. }
            | Self::NoProviders
            | Self::RemoteKms
            | Self::DuplicateResolver { .. }
            | Self::Metrics(_)
            | Self::Grpc { .. }
            | Self::Tenancy(_)
            | Self::Kms(_)
            | Self::Auth(_) => ErrorKind::Internal,
        }
    }
}
