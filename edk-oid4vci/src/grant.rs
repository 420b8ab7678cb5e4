//! The authorization code grant of credential offers (OpenID4VCI 1.0 §5): the
//! [`IssuerGrantPolicy`] that a tenant's authorization server asks, once the end user has
//! logged in, which credentials the authorization code grants.
//!
//! An offer made with the `authorization_code` grant carries an `issuer_state`. The wallet
//! sends it back in its authorization request; after the login, the policy finds the offer's
//! session by it, records the end user on the session (the first login binds it: another end
//! user cannot take it over), and grants the requested configurations of the offer, each with
//! the `credential_identifiers` of the session and the credential issuer in `locations`. The
//! access token of the code then reaches the session at the credential endpoint, which checks
//! that the token's `sub` is the end user who logged in.
//!
//! Requests that ask for no credential of the issuer (no `openid_credential` entry, no scope of
//! a configuration, no `issuer_state`) are granted as sent, so the same authorization server
//! still serves plain OAuth and OpenID Connect clients.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Clock;
use edk_oauth::{CredentialGrantPolicy, CredentialGrantRequest, OAuthErrorCode};
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use serde_json::{Value, json};

use crate::error::StoreError;
use crate::issuer::{OPENID_CREDENTIAL, SESSION_SUBJECT_PREFIX, credential_identifier, digest};
use crate::store::{IssuerStore, SessionStatus};

/// The [`CredentialGrantPolicy`] of the tenants' credential issuers, for the tenants'
/// authorization server (`AuthorizationServer::with_credential_grant_policy`).
#[derive(Debug, Clone)]
pub struct IssuerGrantPolicy {
    store: Arc<dyn IssuerStore>,
    tenancy: Tenancy,
    clock: Arc<dyn Clock>,
}

impl IssuerGrantPolicy {
    /// The policy over the issuers' `store`, finding each tenant's credential issuer
    /// identifier in the `issuer` binding of `tenancy`, at the time of `clock`.
    #[must_use]
    pub fn new(store: Arc<dyn IssuerStore>, tenancy: Tenancy, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            tenancy,
            clock,
        }
    }

    /// The credential issuer identifier of `tenant`, if it has an issuer binding.
    async fn credential_issuer(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<String>, edk_oauth::Error> {
        match self
            .tenancy
            .context_for_service(tenant.id(), ServiceType::Issuer)
            .await
        {
            Ok(context) => Ok(context
                .binding()
                .map(|binding| binding.identifier().to_owned())),
            Err(edk_tenancy::Error::NoBinding { .. }) => Ok(None),
            Err(err) => {
                tracing::error!(tenant = %tenant.id(), error = %err, "no issuer context for a grant");
                Err(edk_oauth::Error::Internal {
                    what: "finding the tenant's credential issuer",
                })
            }
        }
    }

    /// What an authorization code grants once end user `request.subject` has logged in:
    /// with an `issuer_state`, the requested configurations of that offer (all of them when
    /// the request names none), each with the session's `credential_identifiers` and
    /// `locations` = `credential_issuer`, and the session bound to the end user; without
    /// one, the request as sent when it asks for no credential of this issuer.
    ///
    /// # Errors
    /// `access_denied` for an `issuer_state` of no open offer (unknown, lapsed, used by
    /// another end user, cancelled) or a request for credentials without one;
    /// `invalid_authorization_details` for a configuration the offer does not include;
    /// `server_error` when the store fails.
    async fn grant_for_login(
        &self,
        tenant: &TenantContext,
        credential_issuer: Option<&str>,
        request: &CredentialGrantRequest,
    ) -> Result<Option<Value>, edk_oauth::Error> {
        let store_failed = |err: StoreError| {
            tracing::error!(tenant = %tenant.id(), error = %err, "issuance session store failed during a grant");
            edk_oauth::Error::Internal {
                what: "reading the issuance session of an authorization request",
            }
        };
        let mut asked = BTreeSet::new();
        if let Some(Value::Array(details)) = &request.authorization_details {
            for detail in details {
                if detail.get("type").and_then(Value::as_str) == Some(OPENID_CREDENTIAL)
                    && let Some(id) = detail
                        .get("credential_configuration_id")
                        .and_then(Value::as_str)
                {
                    asked.insert(id.to_owned());
                }
            }
        }
        let (Some(credential_issuer), Some(issuer_state)) =
            (credential_issuer, request.issuer_state.as_deref())
        else {
            if request.issuer_state.is_some() || !asked.is_empty() {
                return Err(edk_oauth::Error::oauth(
                    OAuthErrorCode::AccessDenied,
                    "this credential issuer issues only credentials it offered: start from \
                     its credential offer and send the offer's issuer_state",
                ));
            }
            return Ok(request.authorization_details.clone());
        };
        let no_offer = || {
            edk_oauth::Error::oauth(
                OAuthErrorCode::AccessDenied,
                "the issuer_state names no open credential offer: it is unknown, was used \
                 by another end user, was cancelled or has lapsed",
            )
        };
        let session = self
            .store
            .session_by_issuer_state(tenant, &digest(issuer_state))
            .await
            .map_err(store_failed)?
            .ok_or_else(no_offer)?;
        if request.scopes.iter().any(|scope| !scope.is_empty()) {
            for (id, stored) in self
                .store
                .configurations(tenant)
                .await
                .map_err(store_failed)?
            {
                if stored
                    .configuration
                    .scope
                    .as_ref()
                    .is_some_and(|scope| request.scopes.contains(scope))
                    && session.configuration_ids.contains(&id)
                {
                    asked.insert(id);
                }
            }
        }
        if let Some(other) = asked
            .iter()
            .find(|id| !session.configuration_ids.contains(id))
        {
            return Err(edk_oauth::Error::oauth(
                OAuthErrorCode::InvalidAuthorizationDetails,
                format!("the credential offer does not include `{other}`"),
            ));
        }
        let granted: Vec<&String> = if asked.is_empty() {
            session.configuration_ids.iter().collect()
        } else {
            asked.iter().collect()
        };
        if !self
            .store
            .authorize_session(
                tenant,
                &session.id,
                &request.subject.subject,
                &request.subject.claims,
                self.clock.unix_seconds(),
            )
            .await
            .map_err(store_failed)?
        {
            return Err(no_offer());
        }
        Ok(Some(Value::Array(
            granted
                .into_iter()
                .map(|id| {
                    json!({
                        "type": OPENID_CREDENTIAL,
                        "credential_configuration_id": id,
                        "credential_identifiers": [credential_identifier(&session.id, id)],
                        "locations": [credential_issuer],
                    })
                })
                .collect(),
        )))
    }
}

#[async_trait]
impl CredentialGrantPolicy for IssuerGrantPolicy {
    async fn grant(
        &self,
        tenant: &TenantContext,
        request: &CredentialGrantRequest,
    ) -> Result<Option<Value>, edk_oauth::Error> {
        let credential_issuer = self.credential_issuer(tenant).await?;
        self.grant_for_login(tenant, credential_issuer.as_deref(), request)
            .await
    }

    async fn is_credential_issuer(
        &self,
        tenant: &TenantContext,
        resource: &str,
    ) -> Result<bool, edk_oauth::Error> {
        Ok(self.credential_issuer(tenant).await?.as_deref() == Some(resource))
    }

    /// A pre-authorized code of an offer moves its session from `offered` to
    /// `token_issued`; the code of a cancelled or lapsed offer gets no access token.
    async fn pre_authorized_code_redeemed(
        &self,
        tenant: &TenantContext,
        subject: &str,
    ) -> Result<(), edk_oauth::Error> {
        let Some(session_id) = subject.strip_prefix(SESSION_SUBJECT_PREFIX) else {
            return Ok(());
        };
        let store_failed = |err: StoreError| {
            tracing::error!(tenant = %tenant.id(), error = %err, "issuance session store failed during a token request");
            edk_oauth::Error::Internal {
                what: "recording the redemption of a pre-authorized code",
            }
        };
        let now = self.clock.unix_seconds();
        let moved = self
            .store
            .transition(
                tenant,
                session_id,
                &[SessionStatus::Offered],
                SessionStatus::TokenIssued,
                now,
            )
            .await
            .map_err(store_failed)?;
        if moved {
            return Ok(());
        }
        let session = self
            .store
            .session(tenant, session_id)
            .await
            .map_err(store_failed)?;
        match session {
            Some(session)
                if session.expires_at > now
                    && !matches!(
                        session.status,
                        SessionStatus::Cancelled | SessionStatus::Failed | SessionStatus::Expired
                    ) =>
            {
                Ok(())
            }
            _ => Err(edk_oauth::Error::oauth(
                OAuthErrorCode::InvalidGrant,
                "the credential offer of this pre-authorized code was cancelled or has lapsed",
            )),
        }
    }
}
