//! The errors of credential issuance, and the OpenID4VCI error codes they become on the wire.

use std::fmt;

use edk_core::{ErrorKind, HasKind};

/// The `error` codes of the credential, deferred credential and notification endpoints
/// (OpenID4VCI 1.0 §8.3.1.2, §9.3, §11.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialErrorCode {
    /// `invalid_credential_request`: the request is missing a parameter, repeats one, or is
    /// otherwise malformed.
    InvalidCredentialRequest,
    /// `unknown_credential_configuration`: the requested configuration is unknown or not
    /// covered by the access token.
    UnknownCredentialConfiguration,
    /// `unknown_credential_identifier`: the requested dataset is unknown or not covered by the
    /// access token.
    UnknownCredentialIdentifier,
    /// `invalid_proof`: a key proof is missing or does not verify.
    InvalidProof,
    /// `invalid_nonce`: a key proof carries no live `c_nonce`; the wallet fetches a new one.
    InvalidNonce,
    /// `invalid_encryption_parameters`: encryption is required but absent, or its parameters
    /// are not supported.
    InvalidEncryptionParameters,
    /// `credential_request_denied`: the issuer will not issue; the wallet should not retry.
    CredentialRequestDenied,
    /// `invalid_transaction_id` (deferred endpoint): the transaction is unknown or was
    /// already delivered.
    InvalidTransactionId,
    /// `invalid_notification_id` (notification endpoint).
    InvalidNotificationId,
    /// `invalid_notification_request` (notification endpoint).
    InvalidNotificationRequest,
}

impl CredentialErrorCode {
    /// The wire form, e.g. `invalid_proof`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCredentialRequest => "invalid_credential_request",
            Self::UnknownCredentialConfiguration => "unknown_credential_configuration",
            Self::UnknownCredentialIdentifier => "unknown_credential_identifier",
            Self::InvalidProof => "invalid_proof",
            Self::InvalidNonce => "invalid_nonce",
            Self::InvalidEncryptionParameters => "invalid_encryption_parameters",
            Self::CredentialRequestDenied => "credential_request_denied",
            Self::InvalidTransactionId => "invalid_transaction_id",
            Self::InvalidNotificationId => "invalid_notification_id",
            Self::InvalidNotificationRequest => "invalid_notification_request",
        }
    }
}

impl fmt::Display for CredentialErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal a wallet receives in the protocol's error format: its code and a description
/// made of printable ASCII without `"` or `\` (§8.3.1.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct ProtocolError {
    /// The error code.
    pub code: CredentialErrorCode,
    /// What was wrong, for the wallet's developer.
    pub description: String,
}

impl ProtocolError {
    /// A refusal with `code` and `description` (characters outside the allowed set are
    /// replaced by `?`).
    pub fn new(code: CredentialErrorCode, description: impl AsRef<str>) -> Self {
        let description = description
            .as_ref()
            .chars()
            .take(512)
            .map(|c| {
                if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        Self { code, description }
    }

    /// The JSON error body: `{"error": …, "error_description": …}`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

impl HasKind for ProtocolError {
    fn kind(&self) -> ErrorKind {
        match self.code {
            CredentialErrorCode::CredentialRequestDenied => ErrorKind::Forbidden,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Why a credential configuration, an offer or issuer metadata is refused when it is
/// created: the operator's input, not a wallet's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field is missing or has a value the specification does not allow.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as a JSON path (`credential_metadata.claims[1].path`).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// Why a credential could not be built and signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The claims given for the credential do not fit its configuration.
    #[error("the claims do not fit the credential configuration: {0}")]
    Claims(String),
    /// Building or signing the SD-JWT VC failed.
    #[error("SD-JWT VC issuance failed")]
    SdJwtVc(#[source] edk_core::sd_jwt_vc::SdJwtVcError),
    /// Signing the JWT failed.
    #[error("signing the credential failed")]
    Sign(#[source] edk_core::jose::JoseError),
    /// The configuration's format cannot be issued by this function.
    #[error("format `{0}` is not issued here")]
    UnsupportedFormat(String),
    /// Building or signing the mdoc failed.
    #[error("mdoc issuance failed")]
    Mdoc(#[source] edk_mdoc::Error),
    /// The signing key has no certificate in the KMS, or one for another key version: the
    /// tenant must issue or register it (a document signer certificate for mdocs).
    #[error("KMS alias `{alias}` has no certificate for its active key")]
    NoCertificate {
        /// The KMS alias.
        alias: String,
    },
}

impl HasKind for IssueError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Claims(_) => ErrorKind::InvalidInput,
            Self::SdJwtVc(err) => err.kind(),
            Self::Sign(err) => err.kind(),
            Self::UnsupportedFormat(_) => ErrorKind::Unsupported,
            Self::Mdoc(err) => err.kind(),
            Self::NoCertificate { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Why the issuer's store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database did not answer or refused the statement.
    #[error("the issuer's database failed")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row with the same key exists.
    #[error("a {0} with this key already exists")]
    Conflict(&'static str),
    /// Stored state could not be read back.
    #[error("issuer state is corrupt: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    pub(crate) fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Database(Box::new(err))
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Database(_) => ErrorKind::Unavailable,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Corrupt(_) => ErrorKind::Internal,
        }
    }
}
