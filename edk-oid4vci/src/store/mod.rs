//! What the issuer persists, per tenant: credential configurations, `c_nonce`s, offers by
//! reference and issuance sessions. Every replica reads and writes the same rows, so any
//! replica serves any step of a flow; single-use values are redeemed exactly once by one
//! conditional statement.

#[macro_use]
mod sql;
mod status_sql;

use std::fmt;

use async_trait::async_trait;
use edk_core::jose::Jwk;
use edk_tenancy::TenantContext;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{CredentialConfiguration, IssuanceSettings};
use crate::error::StoreError;
use crate::status::{
    CredentialSelector, CredentialStatus, IssuedCredential, PublishedToken, StatusAction,
    StatusIndex, StatusListInfo, StatusListSpec,
};

pub use sql::SqlStore;

/// A configuration as the tenant's operator stored it: what wallets see and how it is issued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredConfiguration {
    /// The `credential_configurations_supported` entry.
    pub configuration: CredentialConfiguration,
    /// The issuer's settings for it.
    #[serde(default)]
    pub settings: IssuanceSettings,
}

/// Where an issuance session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionStatus {
    /// The offer was made; no token yet.
    Offered,
    /// The wallet redeemed the grant for an access token.
    TokenIssued,
    /// At least one credential was issued.
    CredentialIssued,
    /// Issuance was deferred; the wallet polls the deferred endpoint.
    Deferred,
    /// The wallet sent a notification about the credential.
    Notified,
    /// Issuance failed or was refused.
    Failed,
    /// The offer lapsed before it was used.
    Expired,
    /// The operator cancelled the session.
    Cancelled,
}

impl SessionStatus {
    /// The stored form, e.g. `token_issued`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::TokenIssued => "token_issued",
            Self::CredentialIssued => "credential_issued",
            Self::Deferred => "deferred",
            Self::Notified => "notified",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Offered,
            Self::TokenIssued,
            Self::CredentialIssued,
            Self::Deferred,
            Self::Notified,
            Self::Failed,
            Self::Expired,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }

    /// Whether nothing more can happen in the session.
    #[must_use]
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Failed | Self::Expired | Self::Cancelled)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An issuance session: one offer and everything that followed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session id (a UUID).
    pub id: String,
    /// The caller's own reference, unique per tenant.
    pub correlation_id: Option<String>,
    /// Where the session is.
    pub status: SessionStatus,
    /// The offered configurations.
    pub configuration_ids: Vec<String>,
    /// The claims to issue, by configuration id.
    pub claims: Map<String, Value>,
    /// The offer as sent to the wallet.
    pub offer: Value,
    /// The `openid-credential-offer://` URI to show the wallet while the offer is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_uri: Option<String>,
    /// When the session was created.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it lapses if the wallet never completes it.
    pub expires_at: i64,
    /// Whether the offer defers every credential of the session, whatever the
    /// configurations say.
    #[serde(default)]
    pub deferred: bool,
    /// Whether the retention policy `minimize` dropped the session's claims and offer.
    #[serde(default)]
    pub minimized: bool,
    /// The end user who logged in for the session (authorization code grant), the `sub` of
    /// its access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The claims of that login (from the upstream OpenID Provider).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub login_claims: Map<String, Value>,
}

/// What happens to the data of an issuance session once it has ended (its status is
/// `credential_issued`, `notified`, `failed`, `expired` or `cancelled` and its offer has
/// lapsed): the tenant's [`SESSION_RETENTION`] setting, applied by the purge job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionRetention {
    /// Delete the session with its notifications.
    Remove,
    /// Keep the session's status, times and notifications; drop its claims and offer.
    #[default]
    Minimize,
    /// Keep everything.
    Keep,
}

/// The tenant configuration key `oid4vci.session_retention`: `remove`, `minimize`
/// (default) or `keep`. Register it in the deployment's `ConfigSchema`.
pub static SESSION_RETENTION: edk_tenancy::config::ConfigKey<SessionRetention> =
    edk_tenancy::config::ConfigKey::new(
        "oid4vci.session_retention",
        SessionRetention::default,
        |_| Ok(()),
    );

/// A key a wallet proved possession of, kept with a deferred transaction so that the
/// credentials issued later are bound to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HolderKey {
    /// The public key (`cnf.jwk`).
    pub jwk: Jwk,
    /// The DID URL the proof named the key by, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_url: Option<String>,
}

/// A deferred issuance transaction as the credential endpoint opens it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTransaction {
    /// The session the credentials belong to.
    pub session_id: String,
    /// The configuration requested.
    pub configuration_id: String,
    /// The proven holder keys (none for credentials not bound to a key).
    pub holders: Vec<HolderKey>,
    /// When the transaction was opened.
    pub created_at: i64,
    /// When it lapses if the wallet never takes it.
    pub expires_at: i64,
}

/// A deferred transaction waiting for the operator.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTransaction {
    /// The store's key of the transaction (not the wallet's `transaction_id`).
    pub key: String,
    /// The configuration requested.
    pub configuration_id: String,
    /// The proven holder keys.
    pub holders: Vec<HolderKey>,
}

/// How the operator settled a deferred transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum TransactionOutcome {
    /// The credentials were issued.
    Issued {
        /// The signed credentials, one per holder key.
        credentials: Vec<String>,
    },
    /// The operator refused issuance.
    Failed {
        /// Why, for the wallet.
        description: String,
    },
}

/// The events of the notification endpoint (§11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationEvent {
    /// `credential_accepted`: the wallet stored the credentials.
    CredentialAccepted,
    /// `credential_failure`: the wallet could not store them.
    CredentialFailure,
    /// `credential_deleted`: the person deleted them from the wallet.
    CredentialDeleted,
}

impl NotificationEvent {
    /// The wire form, e.g. `credential_accepted`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CredentialAccepted => "credential_accepted",
            Self::CredentialFailure => "credential_failure",
            Self::CredentialDeleted => "credential_deleted",
        }
    }

    /// Parses the wire form.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::CredentialAccepted,
            Self::CredentialFailure,
            Self::CredentialDeleted,
        ]
        .into_iter()
        .find(|event| event.as_str() == name)
    }
}

/// A notification a wallet sent about the credentials of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The event.
    pub event: NotificationEvent,
    /// The wallet's `event_description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was received (Unix seconds).
    pub received_at: i64,
}

/// What the deferred credential endpoint finds behind a `transaction_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionState {
    /// Still waiting for the operator; the transaction stays.
    Pending,
    /// Settled: the outcome, handed out this once.
    Settled(TransactionOutcome),
}

/// The issuer's persistence. Each method is one transaction in the tenant's schema.
#[async_trait]
pub trait IssuerStore: StatusStore + fmt::Debug + Send + Sync {
    /// Creates or replaces configuration `id`.
    async fn put_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
        configuration: &StoredConfiguration,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Configuration `id`, if it exists.
    async fn configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<StoredConfiguration>, StoreError>;

    /// Every configuration, by id in ascending order.
    async fn configurations(
        &self,
        tenant: &TenantContext,
    ) -> Result<Vec<(String, StoredConfiguration)>, StoreError>;

    /// Deletes configuration `id`; whether it existed.
    async fn delete_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// Records a `c_nonce` valid until `expires_at`.
    async fn insert_nonce(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Redeems a `c_nonce`: true exactly once, and only before it expires.
    async fn redeem_nonce(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Records an offer served once at a `credential_offer_uri` whose secret part is
    /// `handle`.
    async fn insert_offer_reference(
        &self,
        tenant: &TenantContext,
        handle: &str,
        session_id: &str,
        offer: &Value,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Stores a new session and the offer served once at its `credential_offer_uri`
    /// (secret part `handle`, lapsing with the session) in one unit of work: both are stored,
    /// or neither.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the session's id, correlation id or `issuer_state`, or
    /// the handle, is taken.
    async fn insert_session_and_reference(
        &self,
        tenant: &TenantContext,
        session: &Session,
        issuer_state_digest: Option<&str>,
        handle: &str,
        offer: &Value,
    ) -> Result<(), StoreError>;

    /// Takes the offer behind `handle`: it is returned once, and only before it expires.
    async fn take_offer_reference(
        &self,
        tenant: &TenantContext,
        handle: &str,
        now: i64,
    ) -> Result<Option<(String, Value)>, StoreError>;

    /// Stores a new session, found again by the digest of its offer's `issuer_state` when
    /// `issuer_state_digest` is given.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when its id, correlation id or `issuer_state` is taken.
    async fn insert_session(
        &self,
        tenant: &TenantContext,
        session: &Session,
        issuer_state_digest: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The session whose offer's `issuer_state` has digest `issuer_state_digest`.
    async fn session_by_issuer_state(
        &self,
        tenant: &TenantContext,
        issuer_state_digest: &str,
    ) -> Result<Option<Session>, StoreError>;

    /// Records that end user `subject` (with the claims of the login) authorized session
    /// `id`, moving it to `token_issued`, if it is `offered` or already `token_issued` for
    /// the same subject and has not lapsed at `now`; whether it did.
    async fn authorize_session(
        &self,
        tenant: &TenantContext,
        id: &str,
        subject: &str,
        login_claims: &Map<String, Value>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Session `id`.
    async fn session(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<Session>, StoreError>;

    /// The session with `correlation_id`.
    async fn session_by_correlation(
        &self,
        tenant: &TenantContext,
        correlation_id: &str,
    ) -> Result<Option<Session>, StoreError>;

    /// Moves session `id` to `to` if it is in one of `from`; whether it moved.
    async fn transition(
        &self,
        tenant: &TenantContext,
        id: &str,
        from: &[SessionStatus],
        to: SessionStatus,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Opens a deferred transaction the wallet names by `transaction_id`.
    async fn insert_transaction(
        &self,
        tenant: &TenantContext,
        transaction_id: &str,
        transaction: &NewTransaction,
    ) -> Result<(), StoreError>;

    /// The transactions of session `session_id` still pending, oldest first.
    async fn pending_transactions(
        &self,
        tenant: &TenantContext,
        session_id: &str,
    ) -> Result<Vec<PendingTransaction>, StoreError>;

    /// Settles pending transaction `key`; whether it was pending.
    async fn settle_transaction(
        &self,
        tenant: &TenantContext,
        key: &str,
        outcome: &TransactionOutcome,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Looks up `transaction_id` of session `session_id` before it lapses: a settled
    /// transaction is deleted and its outcome returned exactly once, a pending one is left;
    /// `None` when it is unknown, lapsed, taken or another session's.
    async fn take_transaction(
        &self,
        tenant: &TenantContext,
        transaction_id: &str,
        session_id: &str,
        now: i64,
    ) -> Result<Option<TransactionState>, StoreError>;

    /// Records that the credentials of session `session_id` may be notified about with
    /// `notification_id` until `expires_at`.
    async fn insert_notification_id(
        &self,
        tenant: &TenantContext,
        notification_id: &str,
        session_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Completes a credential response in one unit of work: records `completion.issued`
    /// (all valid), moves the session to `credential_issued` if it is in one of
    /// `completion.from`, and records its `notification_id`; whether the session moved.
    async fn complete_issuance(
        &self,
        tenant: &TenantContext,
        completion: &IssuanceCompletion<'_>,
    ) -> Result<bool, StoreError>;

    /// Records `notification` about the credentials named by `notification_id` of session
    /// `session_id` and moves the session from `credential_issued` to `notified`; false
    /// when the id is unknown, lapsed or another session's.
    async fn record_notification(
        &self,
        tenant: &TenantContext,
        notification_id: &str,
        session_id: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError>;

    /// The notifications of session `session_id`, oldest first.
    async fn notifications(
        &self,
        tenant: &TenantContext,
        session_id: &str,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Applies `retention` to the sessions that ended and whose offer lapsed at `now`; the
    /// number of sessions removed or minimized.
    async fn apply_retention(
        &self,
        tenant: &TenantContext,
        retention: SessionRetention,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Deletes expired nonces, offer references, transactions and notification ids, and
    /// marks sessions still `offered` past their expiry as `expired`; the number of rows
    /// changed.
    async fn purge_expired(&self, tenant: &TenantContext, now: i64) -> Result<u64, StoreError>;
}

/// A credential just issued, to record with its status list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIssuedCredential {
    /// The issuer's id of the credential.
    pub credential_id: String,
    /// The issuance session.
    pub session_id: String,
    /// The session's `correlation_id`.
    pub correlation_id: Option<String>,
    /// The credential configuration.
    pub configuration_id: String,
    /// The status list.
    pub list_id: String,
    /// The index in it.
    pub index: u32,
    /// When it was issued.
    pub issued_at: i64,
    /// When it expires, if it does.
    pub expires_at: Option<i64>,
}

/// What [`IssuerStore::complete_issuance`] stores for one credential response.
#[derive(Clone, Copy, Debug)]
pub struct IssuanceCompletion<'a> {
    /// The issuance session.
    pub session_id: &'a str,
    /// The statuses the session moves from to `credential_issued`.
    pub from: &'a [SessionStatus],
    /// The credentials with a status list index, to record.
    pub issued: &'a [NewIssuedCredential],
    /// The `notification_id` of the response's credentials.
    pub notification_id: &'a str,
    /// When the notification id lapses.
    pub notification_expires_at: i64,
    /// The time of the response.
    pub now: i64,
}

/// Which issued credentials a listing shows: a page of at most `limit` (1 to 1000), by
/// credential id after `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuedFilter {
    /// Only the credentials every one of these selectors names.
    pub selectors: Vec<CredentialSelector>,
    /// Only credentials with this status.
    pub status: Option<CredentialStatus>,
    /// The page starts after this credential id.
    pub after: Option<String>,
    /// The page size.
    pub limit: u32,
}

/// What a status change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusUpdate {
    /// The selected credentials, as they are now.
    Updated(Vec<IssuedCredential>),
    /// The selector names no credential.
    NotFound,
    /// The change cannot apply to a selected credential (the reason); nothing changed.
    Refused(&'static str),
}

/// The issuer's status lists and the credentials they cover. Each method is one transaction
/// in the tenant's schema.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// Hands out `count` indices of the open list matching `spec` (there is at most one at
    /// a time), opening the next list when it fills. Indices are never handed out twice.
    async fn allocate_status_indices(
        &self,
        tenant: &TenantContext,
        spec: &StatusListSpec,
        count: u32,
        now: i64,
    ) -> Result<Vec<StatusIndex>, StoreError>;

    /// Records issued credentials, all valid.
    async fn record_issued(
        &self,
        tenant: &TenantContext,
        credentials: &[NewIssuedCredential],
    ) -> Result<(), StoreError>;

    /// A page of issued credentials.
    async fn issued_credentials(
        &self,
        tenant: &TenantContext,
        filter: &IssuedFilter,
    ) -> Result<Vec<IssuedCredential>, StoreError>;

    /// Applies `action` to the selected credentials: all of them, or none when it cannot
    /// apply to one. A change makes each list concerned one version newer.
    async fn set_credential_status(
        &self,
        tenant: &TenantContext,
        selector: &CredentialSelector,
        action: StatusAction,
        now: i64,
    ) -> Result<StatusUpdate, StoreError>;

    /// Every status list.
    async fn status_lists(&self, tenant: &TenantContext)
    -> Result<Vec<StatusListInfo>, StoreError>;

    /// Status list `list_id`, if it exists.
    async fn status_list(
        &self,
        tenant: &TenantContext,
        list_id: &str,
    ) -> Result<Option<StatusListInfo>, StoreError>;

    /// Status list `list_id` with the index and status of each credential that is not
    /// valid.
    async fn status_list_entries(
        &self,
        tenant: &TenantContext,
        list_id: &str,
    ) -> Result<Option<(StatusListInfo, Vec<(u32, CredentialStatus)>)>, StoreError>;

    /// Saves `token` as the list's newest, if the list's publication is still the one
    /// `seen` shows; false when another publisher came first.
    async fn save_published(
        &self,
        tenant: &TenantContext,
        token: &PublishedToken,
        seen: &StatusListInfo,
    ) -> Result<bool, StoreError>;

    /// The newest token of `list_id` issued at or before `at` (the newest of all without).
    async fn published_token(
        &self,
        tenant: &TenantContext,
        list_id: &str,
        at: Option<i64>,
    ) -> Result<Option<PublishedToken>, StoreError>;

    /// Deletes tokens that expired before `before`, except each list's newest.
    async fn purge_published(&self, tenant: &TenantContext, before: i64)
    -> Result<u64, StoreError>;
}
