//! Errors of upstream OpenID Provider federation.

use edk_core::jose::JoseError;
use edk_core::{ErrorKind, HasKind};

/// Why a federated login failed.
///
/// Messages name the failed check; they never carry the code, tokens, the PKCE verifier or
/// the client secret. Upstream error text is the IdP's and is truncated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The tenant has no upstream OpenID Provider configured.
    #[error("the tenant has no upstream OpenID Provider configured")]
    NotConfigured,
    /// The configuration is invalid.
    #[error("invalid upstream OpenID Provider configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The upstream provider could not be reached or answered with a transport error.
    #[error("the upstream OpenID Provider could not be reached ({what})")]
    Unreachable {
        /// Which request failed: `discovery`, `jwks` or `token`.
        what: &'static str,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream provider answered with something that is not what the protocol asks for.
    #[error("the upstream OpenID Provider sent an invalid {what}: {reason}")]
    InvalidResponse {
        /// Which response: `discovery document`, `JWKS` or `token response`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The provider's metadata does not support what federation needs (S256 PKCE, the code
    /// flow, the configured client authentication).
    #[error("the upstream OpenID Provider does not support {0}")]
    Unsupported(&'static str),
    /// The callback's `state` is unknown: never issued, already used, or another tenant's.
    #[error("unknown or already used login state")]
    UnknownState,
    /// The pending login is older than the configured lifetime.
    #[error("the login took too long; start again")]
    LoginExpired,
    /// The callback lacks a parameter the code flow requires.
    #[error("the callback is missing `{0}`")]
    MissingParameter(&'static str),
    /// The callback's `iss` (RFC 9207) is not the provider the login was sent to.
    #[error("the callback comes from another issuer than the one the login was sent to")]
    CallbackIssuerMismatch,
    /// The provider answered the authorization request with an error (e.g. `access_denied`).
    #[error("the upstream OpenID Provider refused the login: {error}")]
    Denied {
        /// The OAuth `error` code (truncated).
        error: String,
        /// The `error_description` (truncated), if any.
        description: Option<String>,
    },
    /// The token endpoint refused the code exchange.
    #[error("the upstream token endpoint refused the code (HTTP {status}, {error})")]
    TokenRefused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code (truncated), or `unknown`.
        error: String,
    },
    /// The ID token did not verify (signature, `iss`, `aud`, `exp`, `iat`, ...).
    #[error("the ID token was rejected")]
    IdToken(#[source] JoseError),
    /// The ID token's `nonce` is missing or not the one sent with this login.
    #[error("the ID token's nonce does not match the login")]
    NonceMismatch,
    /// The ID token's `azp` names another client, or is missing with several audiences.
    #[error("the ID token was issued to another authorized party")]
    AuthorizedPartyMismatch,
    /// The claim the subject is mapped from is missing or not a non-empty string.
    #[error("the ID token has no usable `{0}` claim for the subject")]
    SubjectClaim(String),
    /// The subject is mapped from `email` and the provider did not say it is verified.
    #[error("the ID token's email is not verified")]
    EmailNotVerified,
    /// The tenant's database failed.
    #[error("storing the login state failed")]
    Store(#[source] edk_tenancy::Error),
    /// Sealing or unsealing the client secret with the tenant's KMS key failed.
    #[error("sealing or unsealing the upstream client secret failed")]
    Sealing(#[source] edk_kms::Error),
    /// The client secret is sealed and this federation has no KMS to unseal it
    /// ([`OidcFederation::with_kms`](super::OidcFederation::with_kms)).
    #[error("the upstream client secret is sealed and no KMS is configured to unseal it")]
    SealedWithoutKms,
}

impl HasKind for FederationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotConfigured | Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Config { .. } | Self::MissingParameter(_) | Self::UnknownState => {
                ErrorKind::InvalidInput
            }
            Self::LoginExpired
            | Self::CallbackIssuerMismatch
            | Self::Denied { .. }
            | Self::NonceMismatch
            | Self::AuthorizedPartyMismatch
            | Self::SubjectClaim(_)
            | Self::EmailNotVerified => ErrorKind::Unauthenticated,
            Self::TokenRefused { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            Self::TokenRefused { .. } => ErrorKind::Unauthenticated,
            Self::Unreachable { .. } | Self::InvalidResponse { .. } => ErrorKind::Unavailable,
            Self::IdToken(err) => match err.kind() {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                _ => ErrorKind::Unauthenticated,
            },
            Self::Store(err) => err.kind(),
            Self::Sealing(err) => match err.kind() {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Self::SealedWithoutKms => ErrorKind::Internal,
        }
    }
}

/// At most 64 characters of text that came from the upstream provider.
pub(crate) fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}
