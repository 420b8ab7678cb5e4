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
//! A wallet may also start from the issuer's metadata, with no offer (wallet-initiated
//! issuance, §3.3.3): it asks for configurations by `authorization_details` or by their
//! `scope`, without an `issuer_state`. A tenant accepts this only when its setting
//! [`WALLET_INITIATED`] is on; the policy then opens a session for the person who logged in,
//! with the requested configurations and no claims, which the issuer's claims source gives at
//! credential time. Otherwise such a request is refused with `access_denied`.
//!
//! Requests that ask for no credential of the issuer (no `openid_credential` entry, no scope of
//! a configuration, no `issuer_state`) are granted as sent, so the same authorization server
//! still serves plain OAuth and OpenID Connect clients.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Clock;
use edk_oauth::{CredentialGrantPolicy, CredentialGrantRequest, OAuthErrorCode};
use edk_tenancy::config::ConfigKey;
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use serde_json::{Map, Value, json};

use crate::error::StoreError;
use crate::issuer::{OPENID_CREDENTIAL, SESSION_SUBJECT_PREFIX, credential_identifier, digest};
use crate::store::{IssuerStore, Session, SessionStatus};

/// The tenant configuration key `oid4vci.wallet_initiated`: whether the issuer issues to
/// wallets that start from its metadata rather than from an offer (`false` by default). The
/// claims of such credentials come from the issuer's claims source (the tenant's
/// [`CLAIMS_ENDPOINT`](crate::CLAIMS_ENDPOINT) for the servers), asked with the subject of
/// the person who logged in. Register it in the deployment's `ConfigSchema`.
pub static WALLET_INITIATED: ConfigKey<bool> =
    ConfigKey::new("oid4vci.wallet_initiated", || false, |_| Ok(()));

/// How long a session opened by a wallet-initiated login stays open for its credential
/// requests, unless [`IssuerGrantPolicy::with_session_ttl_secs`] says otherwise.
pub const WALLET_INITIATED_SESSION_TTL_SECS: i64 = 600;

/// The [`CredentialGrantPolicy`] of the tenants' credential issuers, for the tenants'
/// authorization server (`AuthorizationServer::with_credential_grant_policy`).
#[derive(Debug, Clone)]
pub struct IssuerGrantPolicy {
    store: Arc<dyn IssuerStore>,
    tenancy: Tenancy,
    clock: Arc<dyn Clock>,
    session_ttl_secs: i64,
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
            session_ttl_secs: WALLET_INITIATED_SESSION_TTL_SECS,
        }
    }

    /// Sessions opened by wallet-initiated logins stay open for `secs` (at least one second).
    #[must_use]
    pub fn with_session_ttl_secs(mut self, secs: i64) -> Self {
        self.session_ttl_secs = secs.max(1);
        self
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
    /// one, the request as sent when it asks for no credential of this issuer, and a new
    /// session for the end user when it does and the tenant issues wallet-initiated
    /// ([`WALLET_INITIATED`]).
    ///
    /// # Errors
    /// `access_denied` for an `issuer_state` of no open offer (unknown, lapsed, used by
    /// another end user, cancelled) or a request for credentials without one where the
    /// tenant does not issue wallet-initiated;
    /// `invalid_authorization_details` for a configuration the offer does not include;
    /// `server_error` when the store fails.
    async fn grant_for_login(
        &self,
        tenant: &TenantContext,
        credential_issuer: Option<&str>,
        request: &CredentialGrantRequest,
    ) -> Result<Option<Value>, edk_oauth::Error> {
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
        let Some(credential_issuer) = credential_issuer else {
            if request.issuer_state.is_some() || !asked.is_empty() {
                return Err(edk_oauth::Error::oauth(
                    OAuthErrorCode::AccessDenied,
                    "this tenant has no credential issuer",
                ));
            }
            return Ok(request.authorization_details.clone());
        };
        let Some(issuer_state) = request.issuer_state.as_deref() else {
            return self
                .wallet_initiated(tenant, credential_issuer, request, asked)
                .await;
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
            .map_err(|err| store_failed(tenant, &err))?
            .ok_or_else(no_offer)?;
        asked.extend(
            self.scoped_configurations(tenant, request)
                .await?
                .into_iter()
                .filter(|id| session.configuration_ids.contains(id)),
        );
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
            .map_err(|err| store_failed(tenant, &err))?
        {
            return Err(no_offer());
        }
        Ok(Some(granted_details(
            &session.id,
            granted,
            credential_issuer,
        )))
    }

    /// The configurations of the tenant whose `scope` the request asks for.
    async fn scoped_configurations(
        &self,
        tenant: &TenantContext,
        request: &CredentialGrantRequest,
    ) -> Result<BTreeSet<String>, edk_oauth::Error> {
        let mut scoped = BTreeSet::new();
        if !request.scopes.iter().any(|scope| !scope.is_empty()) {
            return Ok(scoped);
        }
        for (id, stored) in self
            .store
            .configurations(tenant)
            .await
            .map_err(|err| store_failed(tenant, &err))?
        {
            if stored
                .configuration
                .scope
                .as_ref()
                .is_some_and(|scope| request.scopes.contains(scope))
            {
                scoped.insert(id);
            }
        }
        Ok(scoped)
    }

    /// A login without an `issuer_state`: granted as sent when it asks for no credential;
    /// otherwise, when the tenant issues wallet-initiated, a new session for the person who
    /// logged in with the configurations asked for (by `authorization_details`, which must
    /// name configurations of the issuer, or by scope).
    async fn wallet_initiated(
        &self,
        tenant: &TenantContext,
        credential_issuer: &str,
        request: &CredentialGrantRequest,
        mut asked: BTreeSet<String>,
    ) -> Result<Option<Value>, edk_oauth::Error> {
        let scoped = self.scoped_configurations(tenant, request).await?;
        if asked.is_empty() && scoped.is_empty() {
            return Ok(request.authorization_details.clone());
        }
        if !tenant.config().get(&WALLET_INITIATED) {
            return Err(edk_oauth::Error::oauth(
                OAuthErrorCode::AccessDenied,
                "this credential issuer issues only credentials it offered: start from its \
                 credential offer and send the offer's issuer_state",
            ));
        }
        for id in &asked {
            let known = self
                .store
                .configuration(tenant, id)
                .await
                .map_err(|err| store_failed(tenant, &err))?
                .is_some();
            if !known {
                return Err(edk_oauth::Error::oauth(
                    OAuthErrorCode::InvalidAuthorizationDetails,
                    format!("`{id}` is not a credential configuration of this issuer"),
                ));
            }
        }
        asked.extend(scoped);
        let now = self.clock.unix_seconds();
        let configuration_ids: Vec<String> = asked.into_iter().collect();
        let session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            correlation_id: None,
            status: SessionStatus::Offered,
            configuration_ids: configuration_ids.clone(),
            claims: Map::new(),
            offer: json!({
                "credential_issuer": credential_issuer,
                "credential_configuration_ids": configuration_ids,
                "wallet_initiated": true,
            }),
            offer_uri: None,
            created_at: now,
            updated_at: now,
            expires_at: now.saturating_add(self.session_ttl_secs),
            deferred: false,
            minimized: false,
            subject: None,
            login_claims: Map::new(),
        };
        self.store
            .insert_session(tenant, &session, None)
            .await
            .map_err(|err| store_failed(tenant, &err))?;
        let bound = self
            .store
            .authorize_session(
                tenant,
                &session.id,
                &request.subject.subject,
                &request.subject.claims,
                now,
            )
            .await
            .map_err(|err| store_failed(tenant, &err))?;
        if !bound {
            return Err(edk_oauth::Error::Internal {
                what: "binding a wallet-initiated issuance session to its end user",
            });
        }
        Ok(Some(granted_details(
            &session.id,
            session.configuration_ids.iter(),
            credential_issuer,
        )))
    }
}

/// The `authorization_details` granting `configuration_ids` of session `session_id`.
fn granted_details<'a>(
    session_id: &str,
    configuration_ids: impl IntoIterator<Item = &'a String>,
    credential_issuer: &str,
) -> Value {
    Value::Array(
        configuration_ids
            .into_iter()
            .map(|id| {
                json!({
                    "type": OPENID_CREDENTIAL,
                    "credential_configuration_id": id,
                    "credential_identifiers": [credential_identifier(session_id, id)],
                    "locations": [credential_issuer],
                })
            })
            .collect(),
    )
}

fn store_failed(tenant: &TenantContext, err: &StoreError) -> edk_oauth::Error {
    tracing::error!(tenant = %tenant.id(), error = %err, "issuance session store failed during a grant");
    edk_oauth::Error::Internal {
        what: "reading the issuance session of an authorization request",
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
