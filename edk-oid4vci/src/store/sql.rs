//! [`IssuerStore`] on the tenant workload databases of edk-tenancy, for PostgreSQL and SQLite.
//!
//! Both backends accept the same SQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so each
//! method is written once and expanded for each connection type by `with_conn!`.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_tenancy::{Tenancy, TenantContext, TenantTx};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{
    HolderKey, IssuanceCompletion, IssuerStore, NewTransaction, Notification, NotificationEvent,
    PendingTransaction, Session, SessionRetention, SessionStatus, StoredConfiguration,
    TransactionOutcome, TransactionState,
};
use crate::error::StoreError;

/// The SQL store over a [`Tenancy`]'s workload databases.
#[derive(Clone, Debug)]
pub struct SqlStore {
    tenancy: Tenancy,
}

impl SqlStore {
    /// A store in `tenancy`'s tenant databases. The tenancy must apply
    /// [`crate::migrations`] (`TenancyBuilder::migrations`).
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    pub(super) async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, StoreError> {
        self.tenancy
            .databases()
            .begin(tenant)
            .await
            .map_err(StoreError::database)
    }
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

/// Moves session `id` to `to` if it is in one of `from` (not empty), in the unit of work
/// `tx`; whether it moved.
async fn transition_in(
    tx: &mut TenantTx,
    id: &str,
    from: &[SessionStatus],
    to: SessionStatus,
    now: i64,
) -> Result<bool, StoreError> {
    let placeholders = (0..from.len())
        .map(|i| format!("${}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE oid4vci_session SET status = $1, updated_at = $2 \
         WHERE session_id = $3 AND status IN ({placeholders})"
    );
    let rows = with_conn!(*tx, conn => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(to.as_str())
            .bind(now)
            .bind(id);
        for status in from {
            query = query.bind(status.as_str());
        }
        query
            .execute(conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected()
    });
    Ok(rows == 1)
}

/// Records `notification_id` for the credentials of session `session_id` until
/// `expires_at`, in the unit of work `tx`.
async fn insert_notification_id_in(
    tx: &mut TenantTx,
    notification_id: &str,
    session_id: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    with_conn!(*tx, conn => {
        sqlx::query(
            "INSERT INTO oid4vci_notification (notification_hash, session_id, expires_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(digest(notification_id))
        .bind(session_id)
        .bind(expires_at)
        .execute(conn)
        .await
        .map_err(conflict_as("notification id"))?;
    });
    Ok(())
}

/// Inserts `session` in the unit of work `tx`.
async fn insert_session_in(
    tx: &mut TenantTx,
    session: &Session,
    issuer_state_digest: Option<&str>,
) -> Result<(), StoreError> {
    let data = to_json(&SessionData {
        configuration_ids: session.configuration_ids.clone(),
        claims: session.claims.clone(),
        offer: session.offer.clone(),
        offer_uri: session.offer_uri.clone(),
        deferred: session.deferred,
    })?;
    with_conn!(*tx, conn => {
        sqlx::query(
            "INSERT INTO oid4vci_session (session_id, correlation_id, status, data, \
             created_at, updated_at, expires_at, issuer_state_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&session.id)
        .bind(session.correlation_id.as_deref())
        .bind(session.status.as_str())
        .bind(&data)
        .bind(session.created_at)
        .bind(session.updated_at)
        .bind(session.expires_at)
        .bind(issuer_state_digest)
        .execute(conn)
        .await
        .map_err(conflict_as("session id, correlation id or issuer_state"))?;
    });
    Ok(())
}

/// base64url(SHA-256(value)): how single-use values are stored.
fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError::Corrupt("state does not serialize"))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("stored state is malformed"))
}

/// Maps a failed insert: a unique violation is a conflict over `what`.
pub(super) fn conflict_as(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
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

/// The parts of a session kept in its `data` column.
#[derive(serde::Serialize, serde::Deserialize)]
struct SessionData {
    configuration_ids: Vec<String>,
    claims: Map<String, Value>,
    offer: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offer_uri: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deferred: bool,
}

type SessionRow = (
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const SESSION_COLUMNS: &str = "session_id, correlation_id, status, data, created_at, \
     updated_at, expires_at, minimized_at, subject, login_claims";

/// The statuses of sessions that ended, to which the retention policy applies.
const ENDED: &str = "'credential_issued', 'notified', 'failed', 'expired', 'cancelled'";

fn session_from_row(row: SessionRow) -> Result<Session, StoreError> {
    let (
        id,
        correlation_id,
        status,
        data,
        created_at,
        updated_at,
        expires_at,
        minimized_at,
        subject,
        login_claims,
    ) = row;
    let status = SessionStatus::from_name(&status)
        .ok_or(StoreError::Corrupt("stored session status is unknown"))?;
    let data: SessionData = from_json(&data)?;
    Ok(Session {
        id,
        correlation_id,
        status,
        configuration_ids: data.configuration_ids,
        claims: data.claims,
        offer: data.offer,
        offer_uri: data.offer_uri,
        deferred: data.deferred,
        minimized: minimized_at.is_some(),
        subject,
        login_claims: login_claims
            .as_deref()
            .map(from_json)
            .transpose()?
            .unwrap_or_default(),
        created_at,
        updated_at,
        expires_at,
    })
}

impl SqlStore {
    /// The session whose unique `column` (a constant of this module) is `value`.
    async fn session_where(
        &self,
        tenant: &TenantContext,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM oid4vci_session WHERE {column} = $1");
        let mut tx = self.begin(tenant).await?;
        let row: Option<SessionRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(session_from_row).transpose()
    }
}

#[async_trait]
impl IssuerStore for SqlStore {
    async fn put_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
        configuration: &StoredConfiguration,
        now: i64,
    ) -> Result<(), StoreError> {
        let config = to_json(&configuration.configuration)?;
        let settings = to_json(&configuration.settings)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vci_configuration \
                 (configuration_id, configuration, settings, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (configuration_id) DO UPDATE SET \
                 configuration = excluded.configuration, settings = excluded.settings, \
                 updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(&config)
            .bind(&settings)
            .bind(now)
            .execute(conn)
            .await
            .map_err(StoreError::database)?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<StoredConfiguration>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String, String)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT configuration, settings FROM oid4vci_configuration \
                 WHERE configuration_id = $1",
            )
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(|(configuration, settings)| {
            Ok(StoredConfiguration {
                configuration: from_json(&configuration)?,
                settings: from_json(&settings)?,
            })
        })
        .transpose()
    }

    async fn configurations(
        &self,
        tenant: &TenantContext,
    ) -> Result<Vec<(String, StoredConfiguration)>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String, String, String)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT configuration_id, configuration, settings FROM oid4vci_configuration \
                 ORDER BY configuration_id",
            )
            .fetch_all(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        rows.into_iter()
            .map(|(id, configuration, settings)| {
                Ok((
                    id,
                    StoredConfiguration {
                        configuration: from_json(&configuration)?,
                        settings: from_json(&settings)?,
                    },
                ))
            })
            .collect()
    }

    async fn delete_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query("DELETE FROM oid4vci_configuration WHERE configuration_id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(rows == 1)
    }

    async fn insert_nonce(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query("INSERT INTO oid4vci_nonce (nonce_hash, expires_at) VALUES ($1, $2)")
                .bind(digest(nonce))
                .bind(expires_at)
                .execute(conn)
                .await
                .map_err(conflict_as("nonce"))?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn redeem_nonce(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query("DELETE FROM oid4vci_nonce WHERE nonce_hash = $1 AND expires_at > $2")
                .bind(digest(nonce))
                .bind(now)
                .execute(conn)
                .await
                .map_err(StoreError::database)?
                .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(rows == 1)
    }

    async fn insert_offer_reference(
        &self,
        tenant: &TenantContext,
        handle: &str,
        session_id: &str,
        offer: &Value,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let offer = to_json(offer)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vci_offer_reference (handle_hash, session_id, offer, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(digest(handle))
            .bind(session_id)
            .bind(&offer)
            .bind(expires_at)
            .execute(conn)
            .await
            .map_err(conflict_as("offer reference"))?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn take_offer_reference(
        &self,
        tenant: &TenantContext,
        handle: &str,
        now: i64,
    ) -> Result<Option<(String, Value)>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String, String)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "DELETE FROM oid4vci_offer_reference WHERE handle_hash = $1 AND expires_at > $2 \
                 RETURNING session_id, offer",
            )
            .bind(digest(handle))
            .bind(now)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(|(session_id, offer)| Ok((session_id, from_json(&offer)?)))
            .transpose()
    }

    async fn insert_session(
        &self,
        tenant: &TenantContext,
        session: &Session,
        issuer_state_digest: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        insert_session_in(&mut tx, session, issuer_state_digest).await?;
        tx.commit().await.map_err(StoreError::database)
    }

    async fn insert_session_and_reference(
        &self,
        tenant: &TenantContext,
        session: &Session,
        issuer_state_digest: Option<&str>,
        handle: &str,
        offer: &Value,
    ) -> Result<(), StoreError> {
        let offer = to_json(offer)?;
        let mut tx = self.begin(tenant).await?;
        insert_session_in(&mut tx, session, issuer_state_digest).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vci_offer_reference (handle_hash, session_id, offer, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(digest(handle))
            .bind(&session.id)
            .bind(&offer)
            .bind(session.expires_at)
            .execute(conn)
            .await
            .map_err(conflict_as("offer reference"))?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn session(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.session_where(tenant, "session_id", id).await
    }

    async fn session_by_correlation(
        &self,
        tenant: &TenantContext,
        correlation_id: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.session_where(tenant, "correlation_id", correlation_id)
            .await
    }

    async fn session_by_issuer_state(
        &self,
        tenant: &TenantContext,
        issuer_state_digest: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.session_where(tenant, "issuer_state_digest", issuer_state_digest)
            .await
    }

    async fn authorize_session(
        &self,
        tenant: &TenantContext,
        id: &str,
        subject: &str,
        login_claims: &Map<String, Value>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let claims = to_json(login_claims)?;
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query(
                "UPDATE oid4vci_session SET status = 'token_issued', subject = $1, \
                 login_claims = $2, updated_at = $3 \
                 WHERE session_id = $4 AND expires_at > $3 AND (status = 'offered' \
                 OR (status = 'token_issued' AND subject = $1))",
            )
            .bind(subject)
            .bind(&claims)
            .bind(now)
            .bind(id)
            .execute(conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(rows == 1)
    }

    async fn transition(
        &self,
        tenant: &TenantContext,
        id: &str,
        from: &[SessionStatus],
        to: SessionStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let mut tx = self.begin(tenant).await?;
        let moved = transition_in(&mut tx, id, from, to, now).await?;
        tx.commit().await.map_err(StoreError::database)?;
        Ok(moved)
    }

    async fn complete_issuance(
        &self,
        tenant: &TenantContext,
        completion: &IssuanceCompletion<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        super::status_sql::record_issued_in(&mut tx, completion.issued).await?;
        let moved = transition_in(
            &mut tx,
            completion.session_id,
            completion.from,
            SessionStatus::CredentialIssued,
            completion.now,
        )
        .await?;
        insert_notification_id_in(
            &mut tx,
            completion.notification_id,
            completion.session_id,
            completion.notification_expires_at,
        )
        .await?;
        tx.commit().await.map_err(StoreError::database)?;
        Ok(moved)
    }

    async fn insert_transaction(
        &self,
        tenant: &TenantContext,
        transaction_id: &str,
        transaction: &NewTransaction,
    ) -> Result<(), StoreError> {
        let holders = to_json(&transaction.holders)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oid4vci_transaction (transaction_hash, session_id, configuration_id, \
                 state, holders, result, created_at, updated_at, expires_at) \
                 VALUES ($1, $2, $3, 'pending', $4, NULL, $5, $5, $6)",
            )
            .bind(digest(transaction_id))
            .bind(&transaction.session_id)
            .bind(&transaction.configuration_id)
            .bind(&holders)
            .bind(transaction.created_at)
            .bind(transaction.expires_at)
            .execute(conn)
            .await
            .map_err(conflict_as("transaction"))?;
        });
        tx.commit().await.map_err(StoreError::database)
    }

    async fn pending_transactions(
        &self,
        tenant: &TenantContext,
        session_id: &str,
    ) -> Result<Vec<PendingTransaction>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String, String, String)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT transaction_hash, configuration_id, holders FROM oid4vci_transaction \
                 WHERE session_id = $1 AND state = 'pending' \
                 ORDER BY created_at, transaction_hash",
            )
            .bind(session_id)
            .fetch_all(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        rows.into_iter()
            .map(|(key, configuration_id, holders)| {
                Ok(PendingTransaction {
                    key,
                    configuration_id,
                    holders: from_json::<Vec<HolderKey>>(&holders)?,
                })
            })
            .collect()
    }

    async fn settle_transaction(
        &self,
        tenant: &TenantContext,
        key: &str,
        outcome: &TransactionOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let state = match outcome {
            TransactionOutcome::Issued { .. } => "issued",
            TransactionOutcome::Failed { .. } => "failed",
        };
        let result = to_json(outcome)?;
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query(
                "UPDATE oid4vci_transaction SET state = $1, result = $2, updated_at = $3 \
                 WHERE transaction_hash = $4 AND state = 'pending'",
            )
            .bind(state)
            .bind(&result)
            .bind(now)
            .bind(key)
            .execute(conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(rows == 1)
    }

    async fn take_transaction(
        &self,
        tenant: &TenantContext,
        transaction_id: &str,
        session_id: &str,
        now: i64,
    ) -> Result<Option<TransactionState>, StoreError> {
        let hash = digest(transaction_id);
        let mut tx = self.begin(tenant).await?;
        let (taken, pending): (Option<(String,)>, bool) = with_conn!(tx, conn => {
            let taken: Option<(String,)> = sqlx::query_as(
                "DELETE FROM oid4vci_transaction WHERE transaction_hash = $1 \
                 AND session_id = $2 AND state <> 'pending' AND expires_at > $3 \
                 RETURNING result",
            )
            .bind(&hash)
            .bind(session_id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::database)?;
            let pending = if taken.is_some() {
                false
            } else {
                sqlx::query_as::<_, (i64,)>(
                    "SELECT COUNT(*) FROM oid4vci_transaction WHERE transaction_hash = $1 \
                     AND session_id = $2 AND state = 'pending' AND expires_at > $3",
                )
                .bind(&hash)
                .bind(session_id)
                .bind(now)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::database)?
                .0 == 1
            };
            (taken, pending)
        });
        tx.commit().await.map_err(StoreError::database)?;
        match taken {
            Some((result,)) => Ok(Some(TransactionState::Settled(from_json(&result)?))),
            None if pending => Ok(Some(TransactionState::Pending)),
            None => Ok(None),
        }
    }

    async fn insert_notification_id(
        &self,
        tenant: &TenantContext,
        notification_id: &str,
        session_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(tenant).await?;
        insert_notification_id_in(&mut tx, notification_id, session_id, expires_at).await?;
        tx.commit().await.map_err(StoreError::database)
    }

    async fn record_notification(
        &self,
        tenant: &TenantContext,
        notification_id: &str,
        session_id: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError> {
        let now = notification.received_at;
        let mut tx = self.begin(tenant).await?;
        let known = with_conn!(tx, conn => {
            let (count,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM oid4vci_notification WHERE notification_hash = $1 \
                 AND session_id = $2 AND expires_at > $3",
            )
            .bind(digest(notification_id))
            .bind(session_id)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::database)?;
            if count == 1 {
                sqlx::query(
                    "INSERT INTO oid4vci_session_event (session_id, event, description, \
                     created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(session_id)
                .bind(notification.event.as_str())
                .bind(notification.description.as_deref())
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
                sqlx::query(
                    "UPDATE oid4vci_session SET status = 'notified', updated_at = $1 \
                     WHERE session_id = $2 AND status IN ('credential_issued', 'notified')",
                )
                .bind(now)
                .bind(session_id)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            }
            count == 1
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(known)
    }

    async fn notifications(
        &self,
        tenant: &TenantContext,
        session_id: &str,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String, Option<String>, i64)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT event, description, created_at FROM oid4vci_session_event \
                 WHERE session_id = $1 ORDER BY created_at, event_id",
            )
            .bind(session_id)
            .fetch_all(conn)
            .await
            .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        rows.into_iter()
            .map(|(event, description, received_at)| {
                Ok(Notification {
                    event: NotificationEvent::from_name(&event)
                        .ok_or(StoreError::Corrupt("stored notification event is unknown"))?,
                    description,
                    received_at,
                })
            })
            .collect()
    }

    async fn apply_retention(
        &self,
        tenant: &TenantContext,
        retention: SessionRetention,
        now: i64,
    ) -> Result<u64, StoreError> {
        let ended = format!("status IN ({ENDED}) AND expires_at <= $1");
        let mut tx = self.begin(tenant).await?;
        let changed = with_conn!(tx, conn => {
            match retention {
                SessionRetention::Keep => 0,
                SessionRetention::Remove => {
                    for table in [
                        "oid4vci_session_event",
                        "oid4vci_notification",
                        "oid4vci_transaction",
                        "oid4vci_offer_reference",
                    ] {
                        let sql = format!(
                            "DELETE FROM {table} WHERE session_id IN \
                             (SELECT session_id FROM oid4vci_session WHERE {ended})"
                        );
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(now)
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::database)?;
                    }
                    let sql = format!("DELETE FROM oid4vci_session WHERE {ended}");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(now)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::database)?
                        .rows_affected()
                }
                _ => {
                    let sql = format!(
                        "SELECT session_id, data FROM oid4vci_session \
                         WHERE {ended} AND minimized_at IS NULL"
                    );
                    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(now)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(StoreError::database)?;
                    let mut changed = 0;
                    for (id, data) in rows {
                        let data: SessionData = from_json(&data)?;
                        let minimal = to_json(&SessionData {
                            configuration_ids: data.configuration_ids,
                            claims: Map::new(),
                            offer: Value::Null,
                            offer_uri: None,
                            deferred: data.deferred,
                        })?;
                        changed += sqlx::query(
                            "UPDATE oid4vci_session SET data = $1, minimized_at = $2, \
                             login_claims = NULL WHERE session_id = $3 AND minimized_at IS NULL",
                        )
                        .bind(&minimal)
                        .bind(now)
                        .bind(&id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::database)?
                        .rows_affected();
                    }
                    changed
                }
            }
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(changed)
    }

    async fn purge_expired(&self, tenant: &TenantContext, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut total = 0;
        with_conn!(tx, conn => {
            for sql in [
                "DELETE FROM oid4vci_nonce WHERE expires_at <= $1",
                "DELETE FROM oid4vci_offer_reference WHERE expires_at <= $1",
                "DELETE FROM oid4vci_transaction WHERE expires_at <= $1",
                "DELETE FROM oid4vci_notification WHERE expires_at <= $1",
            ] {
                total += sqlx::query(sql)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::database)?
                    .rows_affected();
            }
            total += sqlx::query(
                "UPDATE oid4vci_session SET status = 'expired', updated_at = $1 \
                 WHERE status = 'offered' AND expires_at <= $1",
            )
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected();
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(total)
    }
}
