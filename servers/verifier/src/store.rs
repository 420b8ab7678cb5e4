//! The verifier's state on the tenant workload databases of edk-tenancy, for PostgreSQL
//! (the tenant's schema) and SQLite (the tenant's file): stored DCQL queries and
//! presentation sessions.
//!
//! Both backends accept the same SQL (`$n` placeholders, `ON CONFLICT`), so each method is
//! written once and expanded for each connection type by `with_conn!`. Every statement runs
//! in the tenant's own unit of work: one tenant never reads another's rows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_core::{ErrorKind, HasKind};
use edk_tenancy::{MigrationScope, MigrationSet, Tenancy, TenantContext, TenantTx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The migration component name of the verifier's tables.
pub const MIGRATION_COMPONENT: &str = "edk-verifier-server";

/// The verifier's tenant-scope migrations, for `TenancyBuilder::migrations`.
///
/// # Errors
/// Never for the embedded migrations; the error type is the tenancy's.
pub fn migrations() -> Result<MigrationSet, edk_tenancy::error::MigrationError> {
    MigrationSet::new(
        MIGRATION_COMPONENT,
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("the verifier database failed")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A unique value is taken.
    #[error("the {0} is already in use")]
    Conflict(&'static str),
    /// A stored row does not read back.
    #[error("stored verifier state is corrupt: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Database(Box::new(err))
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Database(_) => ErrorKind::Unavailable,
            Self::Corrupt(_) => ErrorKind::Internal,
        }
    }
}

/// A stored DCQL query.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredQuery {
    /// The query as JSON (validated when stored).
    pub query: Value,
    /// 1 when created, one more at each replacement.
    pub version: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last replaced.
    pub updated_at: i64,
}

/// Where a presentation session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionStatus {
    /// The request is made; the wallet has not fetched it.
    Created,
    /// The wallet fetched the request object.
    Retrieved,
    /// The wallet answered; the answer is being checked.
    Responded,
    /// The answer was verified.
    Verified,
    /// The answer was refused, or the wallet answered with an error.
    Failed,
    /// The request lapsed before an answer.
    Expired,
}

impl SessionStatus {
    /// The status as the API names it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Retrieved => "retrieved",
            Self::Responded => "responded",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "created" => Self::Created,
            "retrieved" => Self::Retrieved,
            "responded" => Self::Responded,
            "verified" => Self::Verified,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => return Err(StoreError::Corrupt("unknown session status")),
        })
    }

    /// Whether the wallet may still answer.
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Created | Self::Retrieved)
    }
}

/// The authorization request of a session, as made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    /// The `client_id`, with its prefix.
    pub client_id: String,
    /// `direct_post` or `direct_post.jwt`.
    pub response_mode: String,
    /// The `response_uri`.
    pub response_uri: String,
    /// The `nonce`.
    pub nonce: String,
    /// The `state`.
    pub state: String,
    /// The `dcql_query`.
    pub dcql_query: Value,
    /// The `client_metadata` of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<Value>,
    /// The stored query it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// The `transaction_data` entries (base64url JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_data: Option<Vec<String>>,
    /// Where the wallet sends the person back after answering (same-device flows); its
    /// result is then read with the `response_code` the redirect carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// A presentation session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// The caller's reference, unique in the tenant.
    pub correlation_id: Option<String>,
    /// The stored status (see [`Session::status_at`] for lapsed sessions).
    pub status: SessionStatus,
    /// The request.
    pub request: StoredRequest,
    /// What the verification found: the verified claims, or why it failed.
    pub outcome: Option<Value>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When the wallet can no longer answer.
    pub expires_at: i64,
    /// Where the signed notification goes when the session settles.
    pub webhook_url: Option<String>,
}

impl Session {
    /// The status at `now`: an open session past its expiry is [`SessionStatus::Expired`].
    #[must_use]
    pub const fn status_at(&self, now: i64) -> SessionStatus {
        if self.status.is_open() && now >= self.expires_at {
            SessionStatus::Expired
        } else {
            self.status
        }
    }
}

/// What happens to the presentation data (the verified claims) of a session once it has
/// ended (`verified`, `failed`, or `expired`): the tenant's [`PRESENTATION_RETENTION`],
/// applied by the retention job after the server's `retention_delay_secs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PresentationRetention {
    /// Delete the session.
    Remove,
    /// Keep the session's status, request, times and error; drop the verified claims.
    #[default]
    Minimize,
    /// Keep everything.
    Keep,
}

/// The tenant configuration key `oid4vp.presentation_retention`: `remove`, `minimize`
/// (default) or `keep`. Registered by `edk-verifier` in the deployment's `ConfigSchema`.
pub static PRESENTATION_RETENTION: edk_tenancy::config::ConfigKey<PresentationRetention> =
    edk_tenancy::config::ConfigKey::new(
        "oid4vp.presentation_retention",
        PresentationRetention::default,
        |_| Ok(()),
    );

/// The SQL store over a [`Tenancy`]'s workload databases.
#[derive(Clone, Debug)]
pub struct SqlStore {
    tenancy: Tenancy,
}

/// Runs `$body` with `$conn` bound to the transaction's connection, on either backend.
macro_rules! with_conn {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx {
            TenantTx::Postgres(tx) => {
                let $conn: &mut sqlx::PgConnection = &mut **tx;
                $body
            }
            TenantTx::Sqlite(tx) => {
                let $conn: &mut sqlx::SqliteConnection = &mut **tx;
                $body
            }
            _ => return Err(StoreError::Corrupt("unsupported database backend")),
        }
    };
}

type SessionRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
);

const SESSION_COLUMNS: &str = "session_id, correlation_id, status, request, outcome, \
                               created_at, updated_at, expires_at, webhook_url";

/// Records the pending webhook deliveries of the open sessions that lapsed by `$1`: run
/// before [`EXPIRE_LAPSED`], in its transaction.
const RECORD_LAPSED_DELIVERIES: &str = "INSERT INTO oid4vp_webhook_delivery (event_id, \
     session_id, correlation_id, status, url, state, attempts, next_attempt_at, created_at) \
     SELECT session_id || '.expired', session_id, correlation_id, 'expired', webhook_url, \
     'pending', 0, $1, $1 FROM oid4vp_session WHERE status IN ('created', 'retrieved') \
     AND expires_at <= $1 AND webhook_url IS NOT NULL ON CONFLICT (event_id) DO NOTHING";

/// Marks the open sessions that lapsed by `$1` `expired`, as of their expiry.
const EXPIRE_LAPSED: &str = "UPDATE oid4vp_session SET status = 'expired', \
     updated_at = expires_at WHERE status IN ('created', 'retrieved') AND expires_at <= $1";

/// A webhook delivery claimed for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The event id: the same at every attempt.
    pub event_id: String,
    /// The session.
    pub session_id: String,
    /// The session's correlation id.
    pub correlation_id: Option<String>,
    /// The status it settled as: `verified`, `failed` or `expired`.
    pub status: String,
    /// Where it goes.
    pub url: String,
    /// This attempt's number, from 1.
    pub attempts: i64,
}

type DeliveryRow = (String, String, Option<String>, String, String, i64);

impl SqlStore {
    /// A store in `tenancy`'s tenant databases. The tenancy must apply [`migrations`].
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, StoreError> {
        self.tenancy
            .databases()
            .begin(tenant)
            .await
            .map_err(StoreError::database)
    }

    /// Creates or replaces query `id`; its new version.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn put_query(
        &self,
        tenant: &TenantContext,
        id: &str,
        query: &Value,
        now: i64,
    ) -> Result<i64, StoreError> {
        let text = to_json(query)?;
        let mut tx = self.begin(tenant).await?;
        let version: (i64,) = with_conn!(tx, conn => {
            sqlx::query_as(
                "INSERT INTO oid4vp_query (query_id, query, version, created_at, updated_at) \
                 VALUES ($1, $2, 1, $3, $3) \
                 ON CONFLICT (query_id) DO UPDATE SET query = excluded.query, \
                 version = oid4vp_query.version + 1, updated_at = excluded.updated_at \
                 RETURNING version",
            )
            .bind(id)
            .bind(&text)
            .bind(now)
            .fetch_one(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(version.0)
    }

    /// Query `id`, if it exists.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn query(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<StoredQuery>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String, i64, i64, i64)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT query, version, created_at, updated_at FROM oid4vp_query \
                 WHERE query_id = $1",
            )
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(|(query, version, created_at, updated_at)| {
            Ok(StoredQuery {
                query: from_json(&query)?,
                version,
                created_at,
                updated_at,
            })
        })
        .transpose()
    }

    /// Deletes query `id`; whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn delete_query(&self, tenant: &TenantContext, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let done = with_conn!(tx, conn => {
            sqlx::query("DELETE FROM oid4vp_query WHERE query_id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(done > 0)
    }

    /// Stores a new session whose request object is served at a `request_uri` whose secret
    /// part is `handle`, if it is served by reference.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id, correlation id, handle or state is taken;
    /// [`StoreError::Database`] when the database fails.
    pub async fn insert_session(
        &self,
        tenant: &TenantContext,
        session: &Session,
        handle: Option<&str>,
    ) -> Result<(), StoreError> {
        let request = to_json(&session.request)?;
        let outcome = session.outcome.as_ref().map(to_json).transpose()?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vp_session (session_id, correlation_id, status, handle_digest, \
                 state_digest, request, outcome, created_at, updated_at, expires_at, \
                 webhook_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&session.id)
            .bind(session.correlation_id.as_deref())
            .bind(session.status.as_str())
            .bind(handle.map(digest))
            .bind(digest(&session.request.state))
            .bind(&request)
            .bind(outcome.as_deref())
            .bind(session.created_at)
            .bind(session.updated_at)
            .bind(session.expires_at)
            .bind(session.webhook_url.as_deref())
            .execute(conn)
            .await
            .map_err(conflict_as("session id or correlation id"))?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    /// Session `id`, if it exists.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn session(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.session_where(tenant, "session_id", id).await
    }

    /// The session of `correlation_id`, if any.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn session_by_correlation(
        &self,
        tenant: &TenantContext,
        correlation_id: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.session_where(tenant, "correlation_id", correlation_id)
            .await
    }

    /// Marks the session whose Request Object is served at the `request_uri` of `handle` as
    /// retrieved and returns it: once, while it is `created` and unexpired at `now`, on any
    /// replica (a conditional update).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn retrieve(
        &self,
        tenant: &TenantContext,
        handle: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "UPDATE oid4vp_session SET status = 'retrieved', updated_at = $2 \
             WHERE handle_digest = $1 AND status = 'created' AND expires_at > $2 \
             RETURNING {SESSION_COLUMNS}"
        );
        self.update_returning(tenant, &sql, &digest(handle), now)
            .await
    }

    /// Marks the open, unexpired session of `state` as responded and returns it: once, on
    /// any replica (a conditional update); the response is then checked with it.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn claim_response(
        &self,
        tenant: &TenantContext,
        state: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "UPDATE oid4vp_session SET status = 'responded', updated_at = $2 \
             WHERE state_digest = $1 AND status IN ('created', 'retrieved') \
             AND expires_at > $2 RETURNING {SESSION_COLUMNS}"
        );
        self.update_returning(tenant, &sql, &digest(state), now)
            .await
    }

    /// Settles responded session `id` as `status` (verified or failed) with `outcome`, and
    /// the `response_code` that reads it in a same-device flow; a session made with a
    /// webhook URL records its pending delivery in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn settle(
        &self,
        tenant: &TenantContext,
        id: &str,
        status: SessionStatus,
        outcome: &Value,
        response_code: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        let mut tx = self.begin(tenant).await?;
        let done = with_conn!(tx, conn => {
            let done = sqlx::query(
                "UPDATE oid4vp_session SET status = $2, outcome = $3, updated_at = $4, \
                 response_code_digest = $5 WHERE session_id = $1 AND status = 'responded'",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(&outcome)
            .bind(now)
            .bind(response_code.map(digest))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected();
            if done > 0 {
                sqlx::query(
                    "INSERT INTO oid4vp_webhook_delivery (event_id, session_id, correlation_id, \
                     status, url, state, attempts, next_attempt_at, created_at) \
                     SELECT session_id || '.' || status, session_id, correlation_id, status, \
                     webhook_url, 'pending', 0, $2, $2 FROM oid4vp_session \
                     WHERE session_id = $1 AND webhook_url IS NOT NULL \
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            }
            done
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(done > 0)
    }

    /// Marks the open sessions that lapsed by `now` `expired` (as of their expiry, recording
    /// their pending webhook deliveries), then
    /// applies `retention` to the sessions that ended (`verified`, `failed`, `expired`) at or
    /// before `ended_before`: `remove` deletes them, `minimize` drops their verified claims
    /// (and an unredeemed response code), `keep` leaves them; finished webhook deliveries
    /// (delivered or abandoned) recorded by then are deleted. How many sessions changed.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn apply_retention(
        &self,
        tenant: &TenantContext,
        retention: PresentationRetention,
        now: i64,
        ended_before: i64,
    ) -> Result<u64, StoreError> {
        const ENDED: &str = "status IN ('verified', 'failed', 'expired') AND updated_at <= $1";
        let sql = match retention {
            PresentationRetention::Keep => None,
            PresentationRetention::Remove => {
                Some(format!("DELETE FROM oid4vp_session WHERE {ENDED}"))
            }
            PresentationRetention::Minimize => Some(format!(
                "UPDATE oid4vp_session SET outcome = $2, response_code_digest = NULL \
                 WHERE {ENDED} AND status = 'verified' AND outcome <> $2"
            )),
        };
        let minimized = to_json(&serde_json::json!({ "minimized": true }))?;
        let mut tx = self.begin(tenant).await?;
        let done = with_conn!(tx, conn => {
            sqlx::query(RECORD_LAPSED_DELIVERIES)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            let expired = sqlx::query(EXPIRE_LAPSED)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected();
            let applied = match &sql {
                Some(sql) => {
                    let query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(ended_before);
                    let query = if retention == PresentationRetention::Minimize {
                        query.bind(&minimized)
                    } else {
                        query
                    };
                    query
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::database)?
                        .rows_affected()
                }
                None => 0,
            };
            // Finished webhook deliveries (delivered or abandoned) go with the same delay.
            sqlx::query(
                "DELETE FROM oid4vp_webhook_delivery WHERE state <> 'pending' \
                 AND created_at <= $1",
            )
            .bind(ended_before)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::database)?;
            expired + applied
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(done)
    }

    /// Redeems the `response_code` of same-device session `id`: the session, once, if the
    /// code is its own (a conditional update, on any replica); `None` otherwise.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn redeem_response_code(
        &self,
        tenant: &TenantContext,
        id: &str,
        response_code: &str,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "UPDATE oid4vp_session SET response_code_digest = NULL \
             WHERE session_id = $1 AND response_code_digest = $2 RETURNING {SESSION_COLUMNS}"
        );
        let mut tx = self.begin(tenant).await?;
        let row: Option<SessionRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(digest(response_code))
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(session_of).transpose()
    }

    /// Marks the open sessions that lapsed by `now` `expired` (as of their expiry) and
    /// records their pending webhook deliveries, in one transaction; how many expired.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn expire_lapsed(&self, tenant: &TenantContext, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let expired = with_conn!(tx, conn => {
            sqlx::query(RECORD_LAPSED_DELIVERIES)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            sqlx::query(EXPIRE_LAPSED)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(expired)
    }

    /// Stores the tenant's webhook HMAC key, `sealed` (a compact JWE to its KMS key),
    /// replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn put_webhook_secret(
        &self,
        tenant: &TenantContext,
        sealed: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vp_webhook_secret (singleton, sealed, updated_at) \
                 VALUES (1, $1, $2) ON CONFLICT (singleton) DO UPDATE \
                 SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            )
            .bind(sealed)
            .bind(now)
            .execute(conn)
            .await
            .map_err(StoreError::database)?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    /// The tenant's sealed webhook HMAC key, if set.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn webhook_secret(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as("SELECT sealed FROM oid4vp_webhook_secret WHERE singleton = 1")
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(row.map(|(sealed,)| sealed))
    }

    /// Stores the tenant's Verifier Attestation JWT, replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn put_verifier_attestation(
        &self,
        tenant: &TenantContext,
        jwt: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vp_verifier_attestation (singleton, jwt, updated_at) \
                 VALUES (1, $1, $2) ON CONFLICT (singleton) DO UPDATE \
                 SET jwt = excluded.jwt, updated_at = excluded.updated_at",
            )
            .bind(jwt)
            .bind(now)
            .execute(conn)
            .await
            .map_err(StoreError::database)?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    /// The tenant's Verifier Attestation JWT and when it was set, if any.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn verifier_attestation(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String, i64)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT jwt, updated_at FROM oid4vp_verifier_attestation WHERE singleton = 1",
            )
            .fetch_optional(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(row)
    }

    /// Removes the tenant's Verifier Attestation JWT; whether there was one.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn delete_verifier_attestation(
        &self,
        tenant: &TenantContext,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let result = with_conn!(tx, conn => {
            sqlx::query("DELETE FROM oid4vp_verifier_attestation WHERE singleton = 1")
                .execute(conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(result > 0)
    }

    /// The event ids of up to `limit` pending deliveries due at `now` and not claimed.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn due_deliveries(
        &self,
        tenant: &TenantContext,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT event_id FROM oid4vp_webhook_delivery WHERE state = 'pending' \
                 AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
                 ORDER BY next_attempt_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Claims one attempt of pending delivery `event_id` if it is due at `now` and not
    /// claimed, until `lease_until`: once, on any replica (a conditional update).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn claim_delivery(
        &self,
        tenant: &TenantContext,
        event_id: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<DeliveryRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "UPDATE oid4vp_webhook_delivery SET attempts = attempts + 1, claimed_until = $3 \
                 WHERE event_id = $1 AND state = 'pending' AND next_attempt_at <= $2 \
                 AND (claimed_until IS NULL OR claimed_until <= $2) \
                 RETURNING event_id, session_id, correlation_id, status, url, attempts",
            )
            .bind(event_id)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(row.map(
            |(event_id, session_id, correlation_id, status, url, attempts)| Delivery {
                event_id,
                session_id,
                correlation_id,
                status,
                url,
                attempts,
            },
        ))
    }

    /// Records the end of a claimed attempt of `event_id`: delivered at `now`, or (with
    /// `retry_at`) due again then, unless it has had `max_attempts` attempts: abandoned.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database fails.
    pub async fn finish_delivery(
        &self,
        tenant: &TenantContext,
        event_id: &str,
        now: i64,
        retry_at: Option<i64>,
        max_attempts: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            match retry_at {
                None => sqlx::query(
                    "UPDATE oid4vp_webhook_delivery SET state = 'delivered', delivered_at = $2, \
                     claimed_until = NULL WHERE event_id = $1",
                )
                .bind(event_id)
                .bind(now),
                Some(at) => sqlx::query(
                    "UPDATE oid4vp_webhook_delivery SET claimed_until = NULL, \
                     next_attempt_at = $2, state = CASE WHEN attempts >= $3 THEN 'abandoned' \
                     ELSE 'pending' END WHERE event_id = $1",
                )
                .bind(event_id)
                .bind(at)
                .bind(max_attempts),
            }
            .execute(conn)
            .await
            .map_err(StoreError::database)?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn update_returning(
        &self,
        tenant: &TenantContext,
        sql: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<SessionRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(key)
                .bind(now)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(session_of).transpose()
    }

    async fn session_where(
        &self,
        tenant: &TenantContext,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM oid4vp_session WHERE {column} = $1");
        let mut tx = self.begin(tenant).await?;
        let row: Option<SessionRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(value)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(session_of).transpose()
    }
}

fn session_of(row: SessionRow) -> Result<Session, StoreError> {
    let (
        id,
        correlation_id,
        status,
        request,
        outcome,
        created_at,
        updated_at,
        expires_at,
        webhook_url,
    ) = row;
    Ok(Session {
        id,
        correlation_id,
        status: SessionStatus::parse(&status)?,
        request: from_json(&request)?,
        outcome: outcome.as_deref().map(from_json).transpose()?,
        created_at,
        updated_at,
        expires_at,
        webhook_url,
    })
}

/// base64url(SHA-256(value)): how single-use values are stored.
pub(crate) fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError::Corrupt("state does not serialize"))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("stored state is malformed"))
}

/// Maps a failed insert: a unique violation is a conflict over `what`.
fn conflict_as(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| {
        let unique = err
            .as_database_error()
            .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation);
        if unique {
            StoreError::Conflict(what)
        } else {
            StoreError::database(err)
        }
    }
}
