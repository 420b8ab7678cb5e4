//! End-user authentication: the [`Authenticator`] trait the authorization endpoint calls.
//!
//! The authorization server validates an authorization request (client, redirect URI, PKCE,
//! scopes, `authorization_details`), stores it under a fresh [`AuthnTransaction`] id and asks
//! the tenant's authenticator to [`start`](Authenticator::start). The authenticator either
//! knows the end user at once ([`AuthnStart::Authenticated`]) or sends the browser elsewhere
//! ([`AuthnStart::Redirect`]), e.g. to an upstream OpenID Provider, keeping whatever it needs
//! (its own `state`, `nonce`, PKCE verifier, the transaction id) in the database. The browser
//! comes back to the AS's callback URL ([`AuthnRequest::callback_url`], `<issuer>/callback`),
//! whose query or form parameters go to [`finish`](Authenticator::finish); that returns the
//! transaction id and the subject, and the AS completes the authorization response.
//!
//! # Implementing an authenticator
//! - Keep all state in the tenant's database (several replicas serve one tenant; a callback may
//!   reach another instance than the one that started). An implementation with its own tables
//!   registers its own [`edk_tenancy::MigrationSet`] (for example component
//!   `edk-oauth-federation`) next to [`crate::migrations`].
//! - Make the callback single use: consume the state with one conditional
//!   `UPDATE … RETURNING` or `DELETE … RETURNING`.
//! - Never put secrets (client secrets, upstream tokens) in errors or `Debug` output.
//! - Run [`crate::testkit`]'s suites where they apply.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::ClientId;
use edk_tenancy::TenantContext;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::AuthnError;

/// The id of one pending authorization request while the end user authenticates: 32 random
/// bytes, base64url. It is opaque to the authenticator, which hands it back from
/// [`Authenticator::finish`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthnTransaction(String);

impl AuthnTransaction {
    /// A fresh random transaction id.
    #[must_use]
    pub fn generate() -> Self {
        Self(crate::random::token())
    }

    /// Wraps a transaction id read back from storage.
    #[must_use]
    pub const fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthnTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthnTransaction(..)")
    }
}

/// What the authorization server asks an [`Authenticator`] to do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthnRequest {
    /// The pending authorization request this authentication is for.
    pub transaction: AuthnTransaction,
    /// The client that asked for authorization.
    pub client_id: ClientId,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The `authorization_details` asked for (RFC 9396), as sent.
    pub authorization_details: Option<serde_json::Value>,
    /// OIDC `prompt` values, as sent.
    pub prompt: Option<String>,
    /// OIDC `login_hint`, as sent.
    pub login_hint: Option<String>,
    /// OIDC `acr_values`, as sent.
    pub acr_values: Option<String>,
    /// OIDC `ui_locales`, as sent.
    pub ui_locales: Option<String>,
    /// Where the end user's browser must come back to: the AS's callback endpoint
    /// (`<issuer>/callback`), built from the tenant's endpoint binding (`https`, or `http` for
    /// a binding on a loopback host made for local development).
    pub callback_url: Url,
}

impl AuthnRequest {
    /// A request for `transaction` from `client_id`, returning to `callback_url`.
    #[must_use]
    pub const fn new(
        transaction: AuthnTransaction,
        client_id: ClientId,
        callback_url: Url,
    ) -> Self {
        Self {
            transaction,
            client_id,
            scopes: Vec::new(),
            authorization_details: None,
            prompt: None,
            login_hint: None,
            acr_values: None,
            ui_locales: None,
            callback_url,
        }
    }
}

/// How authentication proceeds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AuthnStart {
    /// The end user is known now; the AS answers the authorization request at once.
    Authenticated(AuthenticatedSubject),
    /// Send the browser to `location` (e.g. an upstream IdP's authorization endpoint); it
    /// comes back to [`AuthnRequest::callback_url`].
    Redirect {
        /// Where to redirect the browser (HTTP 303).
        location: Url,
    },
}

/// The parameters of a callback to `<issuer>/callback`: the query of a GET, or the form of a
/// POST (`response_mode=form_post`). Repeated names keep their first value; the AS refuses a
/// callback with repeated names before calling the authenticator.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthnCallback {
    params: BTreeMap<String, String>,
}

impl AuthnCallback {
    /// A callback with `params`.
    #[must_use]
    pub const fn new(params: BTreeMap<String, String>) -> Self {
        Self { params }
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Every parameter.
    #[must_use]
    pub const fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }
}

impl fmt::Debug for AuthnCallback {
    /// Lists the parameter names only: values may be codes or tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthnCallback")
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An authenticated end user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticatedSubject {
    /// The subject identifier, the `sub` of tokens issued for this end user.
    pub subject: String,
    /// When the end user authenticated.
    pub auth_time: DateTime<Utc>,
    /// The authentication context class reached, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods used (RFC 8176), if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Further claims about the end user (from an upstream ID token or user info), which the
    /// AS may pass on to an issuer.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl AuthenticatedSubject {
    /// `subject`, authenticated at `auth_time`.
    #[must_use]
    pub fn new(subject: impl Into<String>, auth_time: DateTime<Utc>) -> Self {
        Self {
            subject: subject.into(),
            auth_time,
            acr: None,
            amr: Vec::new(),
            claims: serde_json::Map::new(),
        }
    }
}

/// The result of [`Authenticator::finish`]: which pending request the end user authenticated
/// for, and who they are.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthnOutcome {
    /// The transaction given to [`Authenticator::start`].
    pub transaction: AuthnTransaction,
    /// The end user.
    pub subject: AuthenticatedSubject,
}

impl AuthnOutcome {
    /// The outcome of `transaction`: `subject`.
    #[must_use]
    pub const fn new(transaction: AuthnTransaction, subject: AuthenticatedSubject) -> Self {
        Self {
            transaction,
            subject,
        }
    }
}

/// Authenticates end users for a tenant's authorization endpoint.
#[async_trait]
pub trait Authenticator: fmt::Debug + Send + Sync {
    /// Begins authenticating the end user for `request`.
    ///
    /// # Errors
    /// [`AuthnError::NotConfigured`] when the tenant has no such authentication;
    /// [`AuthnError::Unavailable`] when a dependency does not answer.
    async fn start(
        &self,
        tenant: &TenantContext,
        request: &AuthnRequest,
    ) -> Result<AuthnStart, AuthnError>;

    /// Completes authentication from the parameters of a callback to `<issuer>/callback`,
    /// consuming the authenticator's state for it (a callback works once).
    ///
    /// # Errors
    /// [`AuthnError::InvalidCallback`] for an unknown, expired or replayed callback;
    /// [`AuthnError::AccessDenied`] when the upstream refused the end user.
    async fn finish(
        &self,
        tenant: &TenantContext,
        callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, AuthnError>;
}

/// The authenticator of a deployment without end-user authentication (only
/// `client_credentials` and pre-authorized codes): every authorization request is answered
/// with `server_error` ("not configured").
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuthenticator;

#[async_trait]
impl Authenticator for NoAuthenticator {
    async fn start(
        &self,
        _tenant: &TenantContext,
        _request: &AuthnRequest,
    ) -> Result<AuthnStart, AuthnError> {
        Err(AuthnError::NotConfigured)
    }

    async fn finish(
        &self,
        _tenant: &TenantContext,
        _callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, AuthnError> {
        Err(AuthnError::NotConfigured)
    }
}
