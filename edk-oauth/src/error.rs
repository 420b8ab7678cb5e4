//! The errors of the authorization server, and the OAuth error codes they become on the wire.

use std::error::Error as StdError;
use std::fmt;

use edk_core::{ErrorKind, HasKind};

/// A boxed foreign error kept as the source of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The `error` codes of OAuth 2 responses (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009,
/// RFC 9396, RFC 9449, RFC 8707, attestation-based client authentication §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `access_denied`: the end user or the server refused the request.
    AccessDenied,
    /// `insufficient_scope` (RFC 6750): the token does not cover the request.
    InsufficientScope,
    /// `invalid_authorization_details` (RFC 9396).
    InvalidAuthorizationDetails,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_client_attestation` (attestation-based client authentication): the client
    /// attestation or its proof of possession does not verify.
    InvalidClientAttestation,
    /// `invalid_dpop_proof` (RFC 9449).
    InvalidDpopProof,
    /// `invalid_grant`: the code, refresh token or credentials are invalid, expired, revoked or
    /// were issued to another client.
    InvalidGrant,
    /// `invalid_request`: a parameter is missing, repeated, malformed or not allowed.
    InvalidRequest,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_target` (RFC 8707).
    InvalidTarget,
    /// `invalid_token` (RFC 6750): the access token is malformed, expired or revoked.
    InvalidToken,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `unauthorized_client`: the client may not use this grant or flow.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `unsupported_token_type` (RFC 7009).
    UnsupportedTokenType,
    /// `use_attestation_challenge` (attestation-based client authentication): retry with the
    /// challenge in the `OAuth-Client-Attestation-Challenge` header.
    UseAttestationChallenge,
    /// `use_dpop_nonce` (RFC 9449 §8): retry with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// `use_fresh_attestation` (attestation-based client authentication): the client
    /// attestation is too old for the server's policy.
    UseFreshAttestation,
}

impl OAuthErrorCode {
    /// The wire form, e.g. `invalid_grant`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
            Self::InvalidClient => "invalid_client",
            Self::InvalidClientAttestation => "invalid_client_attestation",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::UseAttestationChallenge => "use_attestation_challenge",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::UseFreshAttestation => "use_fresh_attestation",
        }
    }

    /// The HTTP status of a token, PAR, introspection or revocation endpoint error with this
    /// code (RFC 6749 §5.2): 401 for `invalid_client`, `invalid_client_attestation` and
    /// `invalid_token`, 403 for `insufficient_scope`, 500/503 for server faults, else 400.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidClientAttestation | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an authorization server operation failed.
///
/// Protocol failures carry the OAuth code the endpoint answers with and a description that
/// names only the caller's own input; faults of ours keep their cause as a source that is
/// logged, never shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protocol error answered with `code` and `description`.
    #[error("{code}: {description}")]
    OAuth {
        /// The OAuth error code.
        code: OAuthErrorCode,
        /// A human-readable description, safe to show to the caller.
        description: String,
    },
    /// The DPoP proof lacks the server's current nonce; the caller retries with `nonce`.
    #[error("use_dpop_nonce: a DPoP nonce is required")]
    UseDpopNonce {
        /// The nonce to retry with (sent in the `DPoP-Nonce` header).
        nonce: String,
    },
    /// The client attestation PoP lacks a valid server challenge; the caller retries with
    /// `challenge` (sent in the `OAuth-Client-Attestation-Challenge` header).
    #[error("use_attestation_challenge: {description}")]
    UseAttestationChallenge {
        /// The fresh challenge to retry with.
        challenge: String,
        /// What was wrong with the presented challenge, safe to show to the caller.
        description: &'static str,
    },
    /// An administrative object (a client, a key) does not exist for this tenant.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up.
        what: &'static str,
    },
    /// An administrative request conflicts with the current state.
    #[error("conflict: {reason}")]
    Conflict {
        /// What conflicts.
        reason: &'static str,
    },
    /// An administrative request is malformed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// End-user authentication failed.
    #[error(transparent)]
    Authn(#[from] AuthnError),
    /// The tenant's database failed.
    #[error("the tenant database failed")]
    Database(#[source] BoxError),
    /// The KMS failed or refused.
    #[error("the key management service failed")]
    Kms(#[source] edk_kms::Error),
    /// The endpoint binding of the tenant is missing or cannot build a URL.
    #[error("the tenant has no usable authorization server endpoint binding")]
    Binding,
    /// Fetching remote keys (a client's `jwks_uri`, an AS's JWKS) failed.
    #[error("fetching remote keys failed")]
    Fetch(#[source] BoxError),
    /// A fault of ours.
    #[error("internal error: {what}")]
    Internal {
        /// What failed.
        what: &'static str,
    },
}

impl Error {
    /// A protocol error with `code` and `description`.
    #[must_use]
    pub fn oauth(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` with `description`.
    #[must_use]
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant` with `description`.
    #[must_use]
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidGrant, description)
    }

    /// `invalid_client` with `description`.
    #[must_use]
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidClient, description)
    }

    /// `invalid_dpop_proof` with `description`.
    #[must_use]
    pub fn invalid_dpop_proof(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidDpopProof, description)
    }

    /// `invalid_client_attestation` with `description`.
    #[must_use]
    pub fn invalid_client_attestation(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidClientAttestation, description)
    }

    /// `invalid_token` with `description`.
    #[must_use]
    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::oauth(OAuthErrorCode::InvalidToken, description)
    }

    /// Wraps a database error.
    pub(crate) fn database(err: impl Into<BoxError>) -> Self {
        Self::Database(err.into())
    }

    /// The OAuth error code this error is answered with on a protocol endpoint.
    #[must_use]
    pub fn code(&self) -> OAuthErrorCode {
        match self {
            Self::OAuth { code, .. } => *code,
            Self::UseDpopNonce { .. } => OAuthErrorCode::UseDpopNonce,
            Self::UseAttestationChallenge { .. } => OAuthErrorCode::UseAttestationChallenge,
            Self::InvalidInput { .. } | Self::Conflict { .. } => OAuthErrorCode::InvalidRequest,
            Self::NotFound { .. } => OAuthErrorCode::InvalidRequest,
            Self::Authn(err) => err.code(),
            Self::Database(_) | Self::Kms(_) | Self::Fetch(_) => {
                OAuthErrorCode::TemporarilyUnavailable
            }
            Self::Binding | Self::Internal { .. } => OAuthErrorCode::ServerError,
        }
    }

    /// The description to send with [`code`](Self::code): the caller-safe text, or a generic
    /// one for faults of ours.
    #[must_use]
    pub fn description(&self) -> String {
        match self {
            Self::OAuth { description, .. } => description.clone(),
            Self::UseAttestationChallenge { description, .. } => (*description).to_owned(),
            Self::Database(_) | Self::Kms(_) | Self::Fetch(_) => {
                "a dependency of the authorization server is unavailable".to_owned()
            }
            Self::Binding | Self::Internal { .. } => {
                "the authorization server failed; try again later".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::OAuth { code, .. } => match code {
                OAuthErrorCode::InvalidClient
                | OAuthErrorCode::InvalidClientAttestation
                | OAuthErrorCode::InvalidToken => ErrorKind::Unauthenticated,
                OAuthErrorCode::AccessDenied
                | OAuthErrorCode::InsufficientScope
                | OAuthErrorCode::UnauthorizedClient => ErrorKind::Forbidden,
                OAuthErrorCode::ServerError => ErrorKind::Internal,
                OAuthErrorCode::TemporarilyUnavailable => ErrorKind::Unavailable,
                OAuthErrorCode::UnsupportedGrantType
                | OAuthErrorCode::UnsupportedResponseType
                | OAuthErrorCode::UnsupportedTokenType => ErrorKind::Unsupported,
                _ => ErrorKind::InvalidInput,
            },
            Self::UseDpopNonce { .. }
            | Self::UseAttestationChallenge { .. }
            | Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Authn(err) => err.kind(),
            Self::Kms(err) => match err.kind() {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Internal,
            },
            Self::Database(_) | Self::Fetch(_) => ErrorKind::Unavailable,
            Self::Binding | Self::Internal { .. } => ErrorKind::Internal,
        }
    }
}

impl From<edk_kms::Error> for Error {
    fn from(err: edk_kms::Error) -> Self {
        Self::Kms(err)
    }
}

impl From<edk_tenancy::Error> for Error {
    fn from(err: edk_tenancy::Error) -> Self {
        Self::database(err)
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::database(err)
    }
}

/// Why end-user authentication (an [`Authenticator`](crate::authn::Authenticator)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthnError {
    /// The end user, or the upstream identity provider, refused.
    #[error("the end user was not authenticated: {reason}")]
    AccessDenied {
        /// Why, safe to show to the end user.
        reason: String,
    },
    /// The callback is malformed, unknown, expired or already used.
    #[error("invalid authentication callback: {reason}")]
    InvalidCallback {
        /// Why, safe to show to the end user.
        reason: String,
    },
    /// The authenticator is not configured for this tenant.
    #[error("no end-user authentication is configured for this tenant")]
    NotConfigured,
    /// The upstream identity provider or a dependency did not answer.
    #[error("the identity provider is unavailable")]
    Unavailable(#[source] BoxError),
    /// A fault of the authenticator.
    #[error("end-user authentication failed")]
    Internal(#[source] BoxError),
}

impl AuthnError {
    /// The OAuth code an authorization response carries for this error.
    #[must_use]
    pub const fn code(&self) -> OAuthErrorCode {
        match self {
            Self::AccessDenied { .. } => OAuthErrorCode::AccessDenied,
            Self::InvalidCallback { .. } => OAuthErrorCode::InvalidRequest,
            Self::NotConfigured | Self::Internal(_) => OAuthErrorCode::ServerError,
            Self::Unavailable(_) => OAuthErrorCode::TemporarilyUnavailable,
        }
    }
}

impl HasKind for AuthnError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AccessDenied { .. } => ErrorKind::Forbidden,
            Self::InvalidCallback { .. } => ErrorKind::InvalidInput,
            Self::NotConfigured => ErrorKind::Unsupported,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_wire_names_and_statuses() {
        assert_eq!(OAuthErrorCode::InvalidGrant.as_str(), "invalid_grant");
        assert_eq!(OAuthErrorCode::UseDpopNonce.as_str(), "use_dpop_nonce");
        assert_eq!(OAuthErrorCode::InvalidClient.status(), 401);
        assert_eq!(OAuthErrorCode::InvalidGrant.status(), 400);
    }

    #[test]
    fn faults_do_not_leak_their_cause() {
        let err = Error::database(std::io::Error::other("password=hunter2"));
        assert_eq!(err.code(), OAuthErrorCode::TemporarilyUnavailable);
        assert!(!err.description().contains("hunter2"));
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
}
