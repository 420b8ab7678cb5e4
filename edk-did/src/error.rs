//! The crate's errors: [`ResolveError`] for resolution and dereferencing, [`PublishError`] for
//! creating, updating and deactivating DIDs, and [`Error`] for building a resolver.

use std::error::Error as StdError;

use edk_core::{ErrorKind, HasKind};
use serde_json::{Value, json};

/// A DID Resolution error code (DID Resolution v1.0 §3, with the legacy names beside them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `FEATURE_NOT_SUPPORTED`: a resolution option the method does not implement.
    FeatureNotSupported,
    /// `INTERNAL_ERROR` / `internalError`.
    InternalError,
    /// `INVALID_DID` / `invalidDid`.
    InvalidDid,
    /// `INVALID_DID_DOCUMENT`: the method's data does not form a valid document.
    InvalidDidDocument,
    /// `INVALID_DID_URL` / `invalidDidUrl`.
    InvalidDidUrl,
    /// `INVALID_OPTIONS`.
    InvalidOptions,
    /// `METHOD_NOT_SUPPORTED` / `methodNotSupported`.
    MethodNotSupported,
    /// `NOT_FOUND` / `notFound`.
    NotFound,
    /// `REPRESENTATION_NOT_SUPPORTED` / `representationNotSupported`.
    RepresentationNotSupported,
}

impl ErrorCode {
    /// The v1.0 code, e.g. `NOT_FOUND`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FeatureNotSupported => "FEATURE_NOT_SUPPORTED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::InvalidDid => "INVALID_DID",
            Self::InvalidDidDocument => "INVALID_DID_DOCUMENT",
            Self::InvalidDidUrl => "INVALID_DID_URL",
            Self::InvalidOptions => "INVALID_OPTIONS",
            Self::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            Self::NotFound => "NOT_FOUND",
            Self::RepresentationNotSupported => "REPRESENTATION_NOT_SUPPORTED",
        }
    }

    /// The legacy (DID Core 1.0, Universal Resolver) string, e.g. `notFound`.
    #[must_use]
    pub const fn legacy(self) -> &'static str {
        match self {
            Self::FeatureNotSupported => "featureNotSupported",
            Self::InternalError => "internalError",
            Self::InvalidDid => "invalidDid",
            Self::InvalidDidDocument => "invalidDidDocument",
            Self::InvalidDidUrl => "invalidDidUrl",
            Self::InvalidOptions => "invalidOptions",
            Self::MethodNotSupported => "methodNotSupported",
            Self::NotFound => "notFound",
            Self::RepresentationNotSupported => "representationNotSupported",
        }
    }

    /// The RFC 9457 problem `type`: `https://www.w3.org/ns/did#<CODE>`.
    #[must_use]
    pub fn type_uri(self) -> String {
        format!("https://www.w3.org/ns/did#{}", self.as_str())
    }

    /// A short title for the problem object.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::FeatureNotSupported => "Feature not supported",
            Self::InternalError => "Internal error",
            Self::InvalidDid => "Invalid DID",
            Self::InvalidDidDocument => "Invalid DID document",
            Self::InvalidDidUrl => "Invalid DID URL",
            Self::InvalidOptions => "Invalid options",
            Self::MethodNotSupported => "DID method not supported",
            Self::NotFound => "DID not found",
            Self::RepresentationNotSupported => "Representation not supported",
        }
    }

    /// The HTTP status of the DID Resolution HTTP binding.
    #[must_use]
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidDid | Self::InvalidDidUrl | Self::InvalidOptions => 400,
            Self::NotFound => 404,
            Self::RepresentationNotSupported => 406,
            Self::MethodNotSupported | Self::FeatureNotSupported => 501,
            Self::InvalidDidDocument | Self::InternalError => 500,
        }
    }
}

/// Why a DID could not be resolved or a DID URL dereferenced.
///
/// Each variant has a DID Resolution [`ErrorCode`] ([`ResolveError::code`]) and an EDK
/// [`ErrorKind`]. The `Display` text echoes only the caller's own input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A resolution option the method does not implement.
    #[error("resolution option `{option}` is not supported by did:{method}")]
    FeatureNotSupported {
        /// The DID method.
        method: &'static str,
        /// The option's name.
        option: &'static str,
    },
    /// The resolver failed on its side.
    #[error("DID resolution failed")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
    /// The DID is not syntactically valid for DID Core or for its method.
    #[error("invalid DID `{did}`: {reason}")]
    InvalidDid {
        /// The DID as given.
        did: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The method's data does not form a valid DID document.
    #[error("invalid DID document for `{did}`: {reason}")]
    InvalidDidDocument {
        /// The DID.
        did: String,
        /// What is wrong with the document.
        reason: String,
    },
    /// The DID URL is not syntactically valid.
    #[error("invalid DID URL `{url}`: {reason}")]
    InvalidDidUrl {
        /// The DID URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resolution option has an invalid value.
    #[error("invalid resolution options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// No method for this DID is registered, or the tenant has not enabled it.
    #[error("DID method `{method}` is not supported")]
    MethodNotSupported {
        /// The method name as given.
        method: String,
    },
    /// The DID (or the resource a DID URL names) does not exist.
    #[error("`{what}` was not found")]
    NotFound {
        /// The DID or DID URL.
        what: String,
    },
    /// The requested representation (media type) cannot be produced.
    #[error("representation `{media_type}` is not supported")]
    RepresentationNotSupported {
        /// The media type asked for.
        media_type: String,
    },
    /// A DID URL feature this resolver does not implement: a DID parameter such as `hl`, or a
    /// path for a method that defines none.
    #[error("DID URL {feature} is not supported")]
    UnsupportedDidUrl {
        /// What is not supported (quoting the caller's parameter name).
        feature: String,
    },
    /// The remote source of a DID document did not answer in time, answered too much, or the
    /// connection failed.
    #[error("fetching the DID document for `{did}` failed: {reason}")]
    Unavailable {
        /// The DID.
        did: String,
        /// What failed, without remote content.
        reason: &'static str,
        /// The underlying failure, if any.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl ResolveError {
    /// The DID Resolution error code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::FeatureNotSupported { .. } | Self::UnsupportedDidUrl { .. } => {
                ErrorCode::FeatureNotSupported
            }
            Self::Internal(_) | Self::Unavailable { .. } => ErrorCode::InternalError,
            Self::InvalidDid { .. } => ErrorCode::InvalidDid,
            Self::InvalidDidDocument { .. } => ErrorCode::InvalidDidDocument,
            Self::InvalidDidUrl { .. } => ErrorCode::InvalidDidUrl,
            Self::InvalidOptions { .. } => ErrorCode::InvalidOptions,
            Self::MethodNotSupported { .. } => ErrorCode::MethodNotSupported,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::RepresentationNotSupported { .. } => ErrorCode::RepresentationNotSupported,
        }
    }

    /// The v1.0 RFC 9457 problem object for `didResolutionMetadata.error`. Internal failures
    /// carry no detail.
    #[must_use]
    pub fn problem(&self) -> Value {
        let code = self.code();
        let mut problem = json!({ "type": code.type_uri(), "title": code.title() });
        if self.kind().is_client_error()
            && let Some(object) = problem.as_object_mut()
        {
            object.insert("detail".to_owned(), Value::String(self.to_string()));
        }
        problem
    }

    pub(crate) fn invalid_did(did: &str, reason: impl Into<String>) -> Self {
        Self::InvalidDid {
            did: did.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_document(did: &str, reason: impl Into<String>) -> Self {
        Self::InvalidDidDocument {
            did: did.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}

impl HasKind for ResolveError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidDid { .. } | Self::InvalidDidUrl { .. } | Self::InvalidOptions { .. } => {
                ErrorKind::InvalidInput
            }
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::FeatureNotSupported { .. }
            | Self::MethodNotSupported { .. }
            | Self::RepresentationNotSupported { .. }
            | Self::UnsupportedDidUrl { .. } => ErrorKind::Unsupported,
            Self::InvalidDidDocument { .. } | Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Why a DID could not be created, updated or deactivated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The request is not valid for the method.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The KMS failed or refused.
    #[error("the KMS failed")]
    Kms(#[source] edk_kms::Error),
    /// The operation is not possible for this method (did:key cannot be updated).
    #[error("{method} does not support {operation}")]
    Unsupported {
        /// The method.
        method: &'static str,
        /// The operation.
        operation: &'static str,
    },
    /// A failure on our side.
    #[error("publishing failed")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl HasKind for PublishError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidRequest { .. } => ErrorKind::InvalidInput,
            Self::Kms(err) => err.kind(),
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Errors building a resolver or an HTTP client for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two methods were registered under one name.
    #[error("DID method `{0}` is registered twice")]
    DuplicateMethod(&'static str),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The HTTP client could not be built.
    #[error("building the HTTP client failed")]
    HttpClient(#[source] Box<dyn StdError + Send + Sync>),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::DuplicateMethod(_) | Self::InvalidConfig(_) => ErrorKind::InvalidInput,
            Self::HttpClient(_) => ErrorKind::Internal,
        }
    }
}

/// Why the DID store failed (feature `store`).
#[cfg(feature = "store")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint or a concurrent change refused the write.
    #[error("conflict: {reason}")]
    Conflict {
        /// What conflicted.
        reason: &'static str,
    },
    /// Stored data does not parse (a defect or tampering).
    #[error("stored DID data is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// The database failed.
    #[error("the DID store failed")]
    Database(#[source] sqlx::Error),
    /// The DID is not stored for this tenant.
    #[error("`{did}` was not found")]
    NotFound {
        /// The DID.
        did: String,
    },
    /// The tenant's database could not be opened.
    #[error("the tenant database is unavailable")]
    Tenancy(#[source] edk_tenancy::Error),
}

#[cfg(feature = "store")]
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

#[cfg(feature = "store")]
impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Tenancy(err) => err.kind(),
            Self::Corrupt { .. } | Self::Database(_) => ErrorKind::Internal,
        }
    }
}

/// Why a registrar operation failed (feature `store`).
#[cfg(feature = "store")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The request is invalid.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong (only the caller's own input is quoted).
        reason: String,
    },
    /// A did:webvh log entry is held back until its witnesses approve it; no other change is
    /// possible until then.
    #[error("`{did}` has an entry awaiting witness proofs: `{version_id}`")]
    AwaitingWitnesses {
        /// The DID.
        did: String,
        /// The `versionId` the witnesses must approve.
        version_id: String,
    },
    /// The DID is deactivated and cannot change.
    #[error("`{did}` is deactivated")]
    Deactivated {
        /// The DID.
        did: String,
    },
    /// The KMS failed or refused.
    #[error("the KMS refused the operation")]
    Kms(#[source] edk_kms::Error),
    /// The tenant has no DID endpoint binding to publish under.
    #[error("the tenant has no DID endpoint binding")]
    NoBinding,
    /// The tenant holds no such DID.
    #[error("`{did}` was not found")]
    NotFound {
        /// The DID as given.
        did: String,
    },
    /// Publishing with the method failed.
    #[error("publishing failed")]
    Publish(#[source] PublishError),
    /// The store failed.
    #[error("storing the DID failed")]
    Store(#[source] StoreError),
    /// The method cannot do this.
    #[error("did:{method} does not support {operation}")]
    Unsupported {
        /// The method.
        method: String,
        /// The operation.
        operation: &'static str,
    },
    /// Building or verifying the did:webvh log failed.
    #[error("the did:webvh log operation failed")]
    Webvh(#[source] crate::webvh::WebvhError),
}

#[cfg(feature = "store")]
impl HasKind for RegistrarError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidRequest { .. } => ErrorKind::InvalidInput,
            Self::AwaitingWitnesses { .. } | Self::Deactivated { .. } => ErrorKind::Conflict,
            Self::Kms(err) => match err.kind() {
                // Another tenant's or a missing alias is the caller's input.
                ErrorKind::NotFound => ErrorKind::InvalidInput,
                kind => kind,
            },
            Self::NoBinding => ErrorKind::Conflict,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Publish(err) => err.kind(),
            Self::Store(err) => err.kind(),
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Webvh(err) => err.kind(),
        }
    }
}
