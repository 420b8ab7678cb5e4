//! The server crate's errors.

use std::path::PathBuf;

use edk_core::{ErrorKind, HasKind};

/// Why the DID server could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resolver could not be built.
    #[error("building the DID resolver failed")]
    Resolver(#[source] edk_did::Error),
    /// The trust anchors for remote DIDs could not be read.
    #[error("cannot read trust anchors from {path}")]
    TrustAnchors {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A bundled migration set is malformed.
    #[error("a bundled migration set is malformed")]
    Migrations(#[source] edk_tenancy::error::MigrationError),
    /// The admin authentication is misconfigured.
    #[error("the admin authentication could not be set up")]
    Auth(#[source] edk_server::AuthSetupError),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Resolver(err) => err.kind(),
            Self::TrustAnchors { .. } => ErrorKind::InvalidInput,
            Self::Migrations(_) | Self::Auth(_) => ErrorKind::Internal,
        }
    }
}
