//! Persistence of every piece of protocol state, in the tenant's schema (PostgreSQL) or file
//! (SQLite).
//!
//! One method call is one transaction. Single-use values (codes, pre-authorized codes,
//! `request_uri`s, refresh tokens, `jti`s) are consumed by one conditional statement
//! (`UPDATE … WHERE consumed_at IS NULL … RETURNING`, `DELETE … RETURNING`, or an insert that
//! conflicts), so concurrent requests on any number of replicas redeem a value once. Bearer
//! values are stored only as digests (base64url SHA-256); client secrets as argon2id hashes.
//! Times are Unix seconds.

use std::fmt;

use async_trait::async_trait;
use edk_core::ClientId;
use edk_tenancy::TenantContext;

use crate::client::Client;
use crate::error::Error;
use crate::grant::{CodeGrant, Grant};

mod sql;

pub use sql::SqlStore;

/// A condition on the grant of a code being redeemed, checked inside the redemption: a
/// grant it refuses is not redeemed, and the code stays as it was.
#[derive(Clone, Copy)]
pub struct GrantCheck<'a>(pub &'a (dyn Fn(&Grant) -> bool + Send + Sync));

impl GrantCheck<'_> {
    /// A check that accepts every grant.
    pub const ANY: GrantCheck<'static> = GrantCheck(&|_| true);

    /// Whether `grant` passes.
    #[must_use]
    pub fn accepts(&self, grant: &Grant) -> bool {
        (self.0)(grant)
    }
}

impl fmt::Debug for GrantCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GrantCheck(..)")
    }
}

/// What an authorization code redemption must match.
#[derive(Clone, Copy, Debug)]
pub struct CodeRedeem<'a> {
    /// The digest of the code.
    pub code_hash: &'a str,
    /// The authenticated (or identified public) client.
    pub client_id: &'a ClientId,
    /// The `redirect_uri` of the token request.
    pub redirect_uri: &'a str,
    /// The S256 challenge computed from the `code_verifier`.
    pub code_challenge: &'a str,
    /// The thumbprint of the token request's DPoP key.
    pub dpop_jkt: Option<&'a str>,
    /// What the code's grant must satisfy (the token request's `authorization_details` must
    /// narrow it).
    pub check: GrantCheck<'a>,
}

/// The result of redeeming an authorization code.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// The code was valid and is now consumed.
    Redeemed {
        /// The client the code was issued to.
        client_id: ClientId,
        /// The token family that tokens from this code join.
        family: String,
        /// What the code stands for.
        code: Box<CodeGrant>,
    },
    /// The code was redeemed before: the tokens of `family` should be revoked
    /// (RFC 6749 §4.1.2).
    Replayed {
        /// The family of the tokens issued from the first redemption.
        family: String,
    },
    /// The code is unknown or expired.
    Invalid,
    /// The code matched, but its grant failed the redemption's [`GrantCheck`]; the code is
    /// left as it was.
    Refused,
}

/// The result of redeeming a pre-authorized code.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PreAuthRedemption {
    /// The code (and its `tx_code`, if it has one) was valid and is now consumed.
    Redeemed(Box<Grant>),
    /// The `tx_code` was wrong; the code is revoked when `remaining` is zero.
    WrongTxCode {
        /// Attempts left before the code is revoked.
        remaining: u32,
    },
    /// The code needs a `tx_code` and none was sent (not counted as an attempt).
    TxCodeRequired,
    /// A `tx_code` was sent for a code minted without one (OID4VCI §6.1: it must then be
    /// absent); the code is left as it was.
    TxCodeNotExpected,
    /// Unknown, expired, consumed or revoked.
    Invalid,
    /// The code (and its `tx_code`) matched, but its grant failed the redemption's
    /// [`GrantCheck`]; the code is left as it was.
    Refused,
}

/// A new pre-authorized code, as stored.
#[derive(Clone, Debug)]
pub struct NewPreAuthCode {
    /// The digest of the code.
    pub code_hash: String,
    /// The digest of the `tx_code` bound to the code, if any.
    pub tx_code_hash: Option<String>,
    /// What the code stands for.
    pub grant: Grant,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A refresh token as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshRecord {
    /// The token family (every rotation of one grant shares it).
    pub family: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// What it stands for.
    pub grant: Grant,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// A single-use value of a request (a DPoP proof's or client assertion's `jti`), to be
/// remembered in `scope` until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleUse {
    /// What the value is unique in: `dpop:<jkt>`, `client_assertion:<client_id>`, ...
    pub scope: String,
    /// The value.
    pub jti: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A refresh token rotation: the token presented, what it must match, and what the rotation
/// stores in the same transaction, so that a request either rotates and issues or changes
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct RefreshRotate<'a> {
    /// The digest of the presented refresh token.
    pub token_hash: &'a str,
    /// The authenticated (or identified public) client.
    pub client_id: &'a ClientId,
    /// The thumbprint of the request's DPoP key.
    pub dpop_jkt: Option<&'a str>,
    /// The refresh token that replaces it: its digest and record.
    pub next: Option<(&'a str, &'a RefreshRecord)>,
    /// The record of the access token issued with it.
    pub access_token: Option<&'a AccessTokenRecord>,
    /// The request's single-use values: one seen before leaves everything as it was.
    pub single_use: &'a [SingleUse],
}

/// The result of rotating a refresh token.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RefreshRotation {
    /// The token was current and is now rotated (it will not work again); what replaces it
    /// is stored.
    Rotated(Box<RefreshRecord>),
    /// The token was rotated before: a replay. Its family is revoked.
    Replayed,
    /// Unknown, expired, revoked, or bound to another client or DPoP key.
    Invalid,
    /// `single_use[index]` of the rotation was seen before: nothing changed.
    SingleUseReplayed {
        /// The position of the value in [`RefreshRotate::single_use`].
        index: usize,
    },
}

/// An access token's record, for introspection and revocation.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessTokenRecord {
    /// The token's `jti`.
    pub jti: String,
    /// The family it belongs to, when it came from a code or refresh token.
    pub family: Option<String>,
    /// The client it was issued to.
    pub client_id: Option<ClientId>,
    /// Its claims, as signed.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// The authorization server's repository. Every method acts in `tenant`'s schema only.
#[async_trait]
pub trait OAuthStore: fmt::Debug + Send + Sync {
    /// Registers a client with an optional argon2id secret hash.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the client id exists.
    async fn insert_client(
        &self,
        tenant: &TenantContext,
        client: &Client,
        secret_hash: Option<&str>,
    ) -> Result<(), Error>;

    /// A client and its secret hash.
    ///
    /// # Errors
    /// When the database fails.
    async fn client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<Option<(Client, Option<String>)>, Error>;

    /// Every client, by id.
    ///
    /// # Errors
    /// When the database fails.
    async fn clients(&self, tenant: &TenantContext) -> Result<Vec<Client>, Error>;

    /// Replaces a client's secret hash; `false` when the client does not exist.
    ///
    /// # Errors
    /// When the database fails.
    async fn set_client_secret(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
        secret_hash: &str,
        at: i64,
    ) -> Result<bool, Error>;

    /// Removes a client; `false` when it did not exist.
    ///
    /// # Errors
    /// When the database fails.
    async fn delete_client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<bool, Error>;

    /// Stores a pushed authorization request (RFC 9126) under the digest of its
    /// `request_uri`.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_par(
        &self,
        tenant: &TenantContext,
        handle_hash: &str,
        client_id: &ClientId,
        request: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), Error>;

    /// Consumes a pushed request of `client_id` that has not expired: it works once.
    ///
    /// # Errors
    /// When the database fails.
    async fn take_par(
        &self,
        tenant: &TenantContext,
        handle_hash: &str,
        client_id: &ClientId,
        now: i64,
    ) -> Result<Option<serde_json::Value>, Error>;

    /// Stores an authorization request waiting for end-user authentication.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_transaction(
        &self,
        tenant: &TenantContext,
        transaction: &str,
        request: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), Error>;

    /// Consumes a pending authorization request that has not expired.
    ///
    /// # Errors
    /// When the database fails.
    async fn take_transaction(
        &self,
        tenant: &TenantContext,
        transaction: &str,
        now: i64,
    ) -> Result<Option<serde_json::Value>, Error>;

    /// Stores an authorization code under its digest.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_code(
        &self,
        tenant: &TenantContext,
        code_hash: &str,
        client_id: &ClientId,
        family: &str,
        code: &CodeGrant,
        expires_at: i64,
    ) -> Result<(), Error>;

    /// Redeems an authorization code: one conditional update, so it succeeds once, and only
    /// for the client, `redirect_uri`, PKCE challenge and DPoP key it was issued for (a
    /// mismatch leaves the code as it was).
    ///
    /// # Errors
    /// When the database fails.
    async fn redeem_code(
        &self,
        tenant: &TenantContext,
        redemption: &CodeRedeem<'_>,
        now: i64,
    ) -> Result<CodeRedemption, Error>;

    /// Stores a pre-authorized code.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_pre_auth(
        &self,
        tenant: &TenantContext,
        code: &NewPreAuthCode,
        now: i64,
    ) -> Result<(), Error>;

    /// Redeems a pre-authorized code with the digest of the `tx_code` sent (if any). A wrong
    /// `tx_code` counts one attempt; at `max_attempts` the code is revoked. A `tx_code` for a
    /// code minted without one redeems nothing, nor does a grant that `check` refuses.
    ///
    /// # Errors
    /// When the database fails.
    async fn redeem_pre_auth(
        &self,
        tenant: &TenantContext,
        code_hash: &str,
        tx_code_hash: Option<&str>,
        max_attempts: u32,
        check: GrantCheck<'_>,
        now: i64,
    ) -> Result<PreAuthRedemption, Error>;

    /// Stores a refresh token under its digest.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_refresh(
        &self,
        tenant: &TenantContext,
        token_hash: &str,
        record: &RefreshRecord,
    ) -> Result<(), Error>;

    /// Rotates a refresh token of `rotation.client_id` (bound to `rotation.dpop_jkt`, if it is
    /// bound): marks it used in one conditional update and, in the same transaction, records
    /// the request's single-use values and stores the new refresh token and access-token
    /// record. Presenting a token that was already rotated revokes its whole family.
    ///
    /// # Errors
    /// When the database fails; then nothing changed.
    async fn rotate_refresh(
        &self,
        tenant: &TenantContext,
        rotation: &RefreshRotate<'_>,
        now: i64,
    ) -> Result<RefreshRotation, Error>;

    /// A current (not rotated, revoked or expired) refresh token.
    ///
    /// # Errors
    /// When the database fails.
    async fn refresh_token(
        &self,
        tenant: &TenantContext,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<RefreshRecord>, Error>;

    /// Revokes every refresh and access token of `family`.
    ///
    /// # Errors
    /// When the database fails.
    async fn revoke_family(
        &self,
        tenant: &TenantContext,
        family: &str,
        now: i64,
    ) -> Result<(), Error>;

    /// Records an issued access token of a token family (from a code or refresh token), so
    /// that revoking the family revokes it. Tokens outside a family are not recorded: they
    /// are checked by signature and expiry, and recorded only when revoked.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_access_token(
        &self,
        tenant: &TenantContext,
        record: &AccessTokenRecord,
    ) -> Result<(), Error>;

    /// An access token's record.
    ///
    /// # Errors
    /// When the database fails.
    async fn access_token(
        &self,
        tenant: &TenantContext,
        jti: &str,
    ) -> Result<Option<AccessTokenRecord>, Error>;

    /// Revokes one access token, recording it (as `record`) if it was not recorded at issue.
    ///
    /// # Errors
    /// When the database fails.
    async fn revoke_access_token(
        &self,
        tenant: &TenantContext,
        record: &AccessTokenRecord,
        now: i64,
    ) -> Result<(), Error>;

    /// Records a single-use `jti` in `scope` (a DPoP key thumbprint, a client id) until
    /// `expires_at`: `false` when it was seen before.
    ///
    /// # Errors
    /// When the database fails.
    async fn use_jti(
        &self,
        tenant: &TenantContext,
        scope: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, Error>;

    /// The current DPoP nonce, valid at least `min_remaining` more seconds; a new one with
    /// `lifetime` is made when none is.
    ///
    /// # Errors
    /// When the database fails.
    async fn dpop_nonce(
        &self,
        tenant: &TenantContext,
        now: i64,
        min_remaining: i64,
        lifetime: i64,
    ) -> Result<String, Error>;

    /// Whether `nonce` is a DPoP nonce this tenant issued that has not expired.
    ///
    /// # Errors
    /// When the database fails.
    async fn dpop_nonce_valid(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        now: i64,
    ) -> Result<bool, Error>;

    /// Deletes expired state; returns how many rows went.
    ///
    /// # Errors
    /// When the database fails.
    async fn purge_expired(&self, tenant: &TenantContext, now: i64) -> Result<u64, Error>;

    /// Stores a client attestation challenge under its digest until `expires_at`.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_attestation_challenge(
        &self,
        tenant: &TenantContext,
        challenge_hash: &str,
        expires_at: i64,
    ) -> Result<(), Error>;

    /// Consumes an unexpired client attestation challenge: `true` once, `false` for an
    /// unknown, expired or used one.
    ///
    /// # Errors
    /// When the database fails.
    async fn take_attestation_challenge(
        &self,
        tenant: &TenantContext,
        challenge_hash: &str,
        now: i64,
    ) -> Result<bool, Error>;

    /// Stores the end-user claims of the grant behind the access token `jti`, until the
    /// token expires.
    ///
    /// # Errors
    /// When the database fails.
    async fn insert_grant_claims(
        &self,
        tenant: &TenantContext,
        jti: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        expires_at: i64,
    ) -> Result<(), Error>;

    /// The end-user claims stored for the unexpired access token `jti`.
    ///
    /// # Errors
    /// When the database fails.
    async fn grant_claims(
        &self,
        tenant: &TenantContext,
        jti: &str,
        now: i64,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, Error>;
}
