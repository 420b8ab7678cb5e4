//! Errors of the all-in-one server.

use std::path::PathBuf;

use edk_core::{ErrorKind, HasKind};

/// What failed in the `edk` server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file in the data directory could not be read or written.
    #[error("cannot use {path}")]
    DataDir {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored key is unusable.
    #[error("the admin signing key in {path} is unusable")]
    AdminKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A token could not be signed.
    #[error("the bootstrap token could not be signed")]
    Signing(#[source] edk_core::jose::JoseError),
    /// The KMS could not be set up.
    #[error("the key provider could not be set up")]
    Kms(#[source] edk_kms::Error),
    /// The metrics registry could not be built.
    #[error("the metrics registry could not be built")]
    Metrics(#[source] edk_server::prometheus::Error),
    /// The admin authentication could not be set up.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] edk_server::AuthSetupError),
    /// The KMS could not be started.
    #[error("the KMS could not be started")]
    KmsServer(#[source] edk_kms_server::Error),
    /// A bundled migration set is malformed.
    #[error("the database migrations could not be loaded")]
    Migrations(#[source] edk_tenancy::error::MigrationError),
    /// The shared dependencies (databases, KMS) could not be opened.
    #[error("the databases or the KMS could not be opened")]
    Deps(#[source] edk_server::DepsError),
    /// The authorization server could not be set up.
    #[error("the authorization server could not be set up")]
    As(#[source] edk_as_server::Error),
    /// The DID server could not be set up.
    #[error("the DID server could not be set up")]
    Did(#[source] edk_did_server::Error),
    /// The credential issuer could not be set up.
    #[error("the credential issuer could not be set up")]
    Issuer(#[source] edk_issuer_server::Error),
    /// The platform (operator realm, first-run setup) could not be set up.
    #[error("the platform could not be set up")]
    Platform(#[source] edk_platform_server::Error),
    /// The verifier could not be set up.
    #[error("the verifier could not be set up")]
    Verifier(#[source] edk_verifier_server::Error),
    /// The tenant configuration keys clash.
    #[error("the tenant configuration schema is invalid")]
    ConfigSchema(#[source] edk_tenancy::error::ConfigError),
    /// The default tenant's endpoint binding is invalid.
    #[error("the default tenant's endpoint binding is invalid")]
    Binding(#[source] edk_tenancy::error::BindingError),
    /// The default tenant could not be read or provisioned.
    #[error("the default tenant could not be set up")]
    Tenancy(#[source] edk_tenancy::Error),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::DataDir { .. }
            | Self::AdminKey { .. }
            | Self::Signing(_)
            | Self::Kms(_)
            | Self::Metrics(_)
            | Self::Auth(_)
            | Self::KmsServer(_)
            | Self::Migrations(_)
            | Self::Binding(_)
            | Self::ConfigSchema(_)
            | Self::Did(_)
            | Self::Issuer(_)
            | Self::Platform(_)
            | Self::Verifier(_)
            | Self::Deps(_)
            | Self::As(_)
            | Self::Tenancy(_) => ErrorKind::Internal,
        }
    }
}
