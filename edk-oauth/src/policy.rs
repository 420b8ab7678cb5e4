//! What an authorization code grants: the [`CredentialGrantPolicy`] an embedding credential
//! issuer plugs into the [`AuthorizationServer`](crate::AuthorizationServer).
//!
//! When the end user of an authorization request has authenticated and before the code is
//! issued, the server asks the policy which `authorization_details` to grant for what the
//! client asked for (its `authorization_details`, already checked and free of
//! `credential_identifiers`, and its scopes), the end user and the request's `issuer_state`.
//! The policy answers with the entries to grant, typically each with the
//! `credential_identifiers` of the end user's datasets and the credential issuer in
//! `locations`; the code, and every token from it, carry exactly those. Without a policy the
//! requested entries are granted as sent.

use std::fmt;

use async_trait::async_trait;
use edk_core::ClientId;
use edk_tenancy::TenantContext;
use serde_json::Value;

use crate::authn::AuthenticatedSubject;
use crate::error::Error;

/// An authorization request whose end user has authenticated, as given to a
/// [`CredentialGrantPolicy`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CredentialGrantRequest {
    /// The client that asked.
    pub client_id: ClientId,
    /// The authenticated end user.
    pub subject: AuthenticatedSubject,
    /// The granted scopes (those the client asked for and may use).
    pub scopes: Vec<String>,
    /// The `authorization_details` asked for, checked: each of type `openid_credential` with
    /// a `credential_configuration_id`, valid `locations` and no `credential_identifiers`.
    pub authorization_details: Option<Value>,
    /// The `issuer_state` of the request (from the credential offer, OID4VCI 1.0 §5.1.3).
    pub issuer_state: Option<String>,
}

impl CredentialGrantRequest {
    /// A request of `client_id` for end user `subject` that asks for no scope and no
    /// `authorization_details` and has no `issuer_state` (set the fields to ask for more).
    #[must_use]
    pub const fn new(client_id: ClientId, subject: AuthenticatedSubject) -> Self {
        Self {
            client_id,
            subject,
            scopes: Vec::new(),
            authorization_details: None,
            issuer_state: None,
        }
    }
}

/// Decides the `authorization_details` an authorization code grants.
#[async_trait]
pub trait CredentialGrantPolicy: Send + Sync + fmt::Debug {
    /// The `authorization_details` to grant for `request` of `tenant`, or `None` for none.
    /// Each entry must be of type `openid_credential` with a `credential_configuration_id`;
    /// it may carry `credential_identifiers` and `locations` (absolute `https` URLs).
    ///
    /// # Errors
    /// An [`Error::OAuth`] refuses the request: the client gets it in an error redirect
    /// (e.g. `access_denied`, `invalid_authorization_details`). Any other error is a fault
    /// and fails the authorization endpoint.
    async fn grant(
        &self,
        tenant: &TenantContext,
        request: &CredentialGrantRequest,
    ) -> Result<Option<Value>, Error>;

    /// Whether `resource` is a credential issuer of `tenant` that this policy grants for;
    /// every client may then name it as the RFC 8707 `resource` of its authorization
    /// request, as wallets do. None by default.
    ///
    /// # Errors
    /// Any error fails the request (a fault, not a refusal).
    async fn is_credential_issuer(
        &self,
        tenant: &TenantContext,
        resource: &str,
    ) -> Result<bool, Error> {
        let _ = (tenant, resource);
        Ok(false)
    }

    /// Called once a pre-authorized code minted for `subject` has been redeemed (it is spent)
    /// and before its access token is issued, so the issuer behind the offer can record that
    /// the wallet took it, or refuse when the offer was withdrawn in the meantime. Accepts by
    /// default.
    ///
    /// # Errors
    /// An [`Error::OAuth`] refuses the token request with that error (e.g. `invalid_grant`
    /// for a cancelled offer); any other error is a fault.
    async fn pre_authorized_code_redeemed(
        &self,
        tenant: &TenantContext,
        subject: &str,
    ) -> Result<(), Error> {
        let _ = (tenant, subject);
        Ok(())
    }
}
