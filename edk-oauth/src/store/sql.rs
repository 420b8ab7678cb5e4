//! [`OAuthStore`] on the tenant workload databases of edk-tenancy, for PostgreSQL and SQLite.
//!
//! Both backends accept the same SQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so each
//! method is written once and expanded for each connection type by `with_conn!`.

use async_trait::async_trait;
use edk_core::ClientId;
use edk_tenancy::{Tenancy, TenantContext, TenantTx};

use super::{
    AccessTokenRecord, CodeRedeem, CodeRedemption, GrantCheck, NewPreAuthCode, OAuthStore,
    PreAuthRedemption, RefreshRecord, RefreshRotate, RefreshRotation, SingleUse,
};
use crate::client::{Client, ClientMetadata};
use crate::error::Error;
use crate::grant::{CodeGrant, Grant};

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

    async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, Error> {
        Ok(self.tenancy.databases().begin(tenant).await?)
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
            _ => {
                return Err(Error::Internal {
                    what: "unsupported database backend",
                });
            }
        }
    };
}

/// Records an access token issued in a family.
const INSERT_ACCESS_TOKEN: &str = "INSERT INTO oauth_access_token \
     (jti, family_id, client_id, claims, expires_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Records a revoked access token, or marks the recorded one revoked (keeping the first time).
const REVOKE_ACCESS_TOKEN: &str = "INSERT INTO oauth_access_token \
     (jti, family_id, client_id, claims, expires_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (jti) DO UPDATE SET revoked_at = \
     COALESCE(oauth_access_token.revoked_at, excluded.revoked_at)";

impl SqlStore {
    /// Runs `sql` ([`INSERT_ACCESS_TOKEN`] or [`REVOKE_ACCESS_TOKEN`]) for `record`, revoked at
    /// `revoked_at`.
    async fn put_access_token(
        &self,
        tenant: &TenantContext,
        sql: &'static str,
        record: &AccessTokenRecord,
        revoked_at: Option<i64>,
    ) -> Result<(), Error> {
        let mut tx = self.begin(tenant).await?;
        put_access_token_in(&mut tx, sql, record, revoked_at).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Runs `sql` ([`INSERT_ACCESS_TOKEN`] or [`REVOKE_ACCESS_TOKEN`]) for `record` in `tx`.
async fn put_access_token_in(
    tx: &mut TenantTx,
    sql: &'static str,
    record: &AccessTokenRecord,
    revoked_at: Option<i64>,
) -> Result<(), Error> {
    let claims = to_json(&record.claims)?;
    with_conn!(*tx, conn => {
        sqlx::query(sql)
            .bind(&record.jti)
            .bind(record.family.as_deref())
            .bind(record.client_id.as_ref().map(ClientId::as_str))
            .bind(&claims)
            .bind(record.expires_at)
            .bind(revoked_at)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Stores a refresh token in `tx`.
async fn insert_refresh_in(
    tx: &mut TenantTx,
    token_hash: &str,
    record: &RefreshRecord,
) -> Result<(), Error> {
    let grant = to_json(&record.grant)?;
    with_conn!(*tx, conn => {
        sqlx::query(
            "INSERT INTO oauth_refresh_token \
             (token_hash, family_id, client_id, dpop_jkt, grant_data, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(&record.family)
        .bind(record.client_id.as_str())
        .bind(record.grant.dpop_jkt.as_deref())
        .bind(&grant)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Records a single-use value in `tx`: `false` when it was seen before.
async fn use_jti_in(tx: &mut TenantTx, value: &SingleUse) -> Result<bool, Error> {
    let rows = with_conn!(*tx, conn => {
        sqlx::query(
            "INSERT INTO oauth_jti (scope, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, jti) DO NOTHING",
        )
        .bind(value.scope.as_str())
        .bind(value.jti.as_str())
        .bind(value.expires_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(rows == 1)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|_| Error::Internal {
        what: "serializing stored state",
    })
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|_| Error::Internal {
        what: "stored state is malformed",
    })
}

fn client_id(text: String) -> Result<ClientId, Error> {
    ClientId::new(text).map_err(|_| Error::Internal {
        what: "stored client id is malformed",
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

type ClientRow = (String, String, Option<String>, i64, i64);

fn client_from_row(row: ClientRow) -> Result<(Client, Option<String>), Error> {
    let (id, metadata, secret_hash, created_at, updated_at) = row;
    let metadata: ClientMetadata = from_json(&metadata)?;
    Ok((
        Client {
            client_id: client_id(id)?,
            metadata,
            created_at,
            updated_at,
        },
        secret_hash,
    ))
}

type RefreshRow = (String, String, String, i64, i64);

fn refresh_from_row(row: RefreshRow) -> Result<RefreshRecord, Error> {
    let (family, client, grant, created_at, expires_at) = row;
    Ok(RefreshRecord {
        family,
        client_id: client_id(client)?,
        grant: from_json(&grant)?,
        expires_at,
        created_at,
    })
}

type AccessRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
);

fn access_from_row(row: AccessRow) -> Result<AccessTokenRecord, Error> {
    let (jti, family, client, claims, expires_at, revoked_at) = row;
    Ok(AccessTokenRecord {
        jti,
        family,
        client_id: client.map(client_id).transpose()?,
        claims: from_json(&claims)?,
        expires_at,
        revoked: revoked_at.is_some(),
    })
}

#[async_trait]
impl OAuthStore for SqlStore {
    async fn insert_client(
        &self,
        tenant: &TenantContext,
        client: &Client,
        secret_hash: Option<&str>,
    ) -> Result<(), Error> {
        let metadata = to_json(&client.metadata)?;
        let mut tx = self.begin(tenant).await?;
        let result = with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_client (client_id, metadata, secret_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(client.client_id.as_str())
            .bind(&metadata)
            .bind(secret_hash)
            .bind(client.created_at)
            .bind(client.updated_at)
            .execute(conn)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(Error::Conflict {
                    reason: "the client id is taken",
                });
            }
            Err(err) => return Err(err.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    async fn client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<Option<(Client, Option<String>)>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<ClientRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT client_id, metadata, secret_hash, created_at, updated_at \
                 FROM oauth_client WHERE client_id = $1",
            )
            .bind(client_id.as_str())
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(client_from_row).transpose()
    }

    async fn clients(&self, tenant: &TenantContext) -> Result<Vec<Client>, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<ClientRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT client_id, metadata, secret_hash, created_at, updated_at \
                 FROM oauth_client ORDER BY client_id",
            )
            .fetch_all(conn)
            .await?
        });
        tx.commit().await?;
        rows.into_iter()
            .map(|row| client_from_row(row).map(|(client, _)| client))
            .collect()
    }

    async fn set_client_secret(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
        secret_hash: &str,
        at: i64,
    ) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query(
                "UPDATE oauth_client SET secret_hash = $2, updated_at = $3 WHERE client_id = $1",
            )
            .bind(client_id.as_str())
            .bind(secret_hash)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(rows == 1)
    }

    async fn delete_client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query("DELETE FROM oauth_client WHERE client_id = $1")
                .bind(client_id.as_str())
                .execute(conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(rows == 1)
    }

    async fn insert_par(
        &self,
        tenant: &TenantContext,
        handle_hash: &str,
        client_id: &ClientId,
        request: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), Error> {
        let request = to_json(request)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_par (handle_hash, client_id, request, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(handle_hash)
            .bind(client_id.as_str())
            .bind(&request)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn take_par(
        &self,
        tenant: &TenantContext,
        handle_hash: &str,
        client_id: &ClientId,
        now: i64,
    ) -> Result<Option<serde_json::Value>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "DELETE FROM oauth_par WHERE handle_hash = $1 AND client_id = $2 \
                 AND expires_at > $3 RETURNING request",
            )
            .bind(handle_hash)
            .bind(client_id.as_str())
            .bind(now)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(|(request,)| from_json(&request)).transpose()
    }

    async fn insert_transaction(
        &self,
        tenant: &TenantContext,
        transaction: &str,
        request: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), Error> {
        let request = to_json(request)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_transaction (transaction_id, request, expires_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(transaction)
            .bind(&request)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn take_transaction(
        &self,
        tenant: &TenantContext,
        transaction: &str,
        now: i64,
    ) -> Result<Option<serde_json::Value>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "DELETE FROM oauth_transaction WHERE transaction_id = $1 AND expires_at > $2 \
                 RETURNING request",
            )
            .bind(transaction)
            .bind(now)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(|(request,)| from_json(&request)).transpose()
    }

    async fn insert_code(
        &self,
        tenant: &TenantContext,
        code_hash: &str,
        client_id: &ClientId,
        family: &str,
        code: &CodeGrant,
        expires_at: i64,
    ) -> Result<(), Error> {
        let grant = to_json(code)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_code (code_hash, client_id, family_id, redirect_uri, \
                 code_challenge, dpop_jkt, grant_data, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(code_hash)
            .bind(client_id.as_str())
            .bind(family)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(code.grant.dpop_jkt.as_deref())
            .bind(&grant)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        tenant: &TenantContext,
        redemption: &CodeRedeem<'_>,
        now: i64,
    ) -> Result<CodeRedemption, Error> {
        let code_hash = redemption.code_hash;
        let mut tx = self.begin(tenant).await?;
        let redeemed: Option<(String, String, String)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "UPDATE oauth_code SET consumed_at = $2 \
                 WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
                 AND client_id = $3 AND redirect_uri = $4 AND code_challenge = $5 \
                 AND (dpop_jkt IS NULL OR dpop_jkt = $6) \
                 RETURNING client_id, family_id, grant_data",
            )
            .bind(code_hash)
            .bind(now)
            .bind(redemption.client_id.as_str())
            .bind(redemption.redirect_uri)
            .bind(redemption.code_challenge)
            .bind(redemption.dpop_jkt)
            .fetch_optional(conn)
            .await?
        });
        let outcome = if let Some((client, family, grant)) = redeemed {
            let code: CodeGrant = from_json(&grant)?;
            if !redemption.check.accepts(&code.grant) {
                // Dropped without commit, the transaction rolls back: the code stays as it was.
                return Ok(CodeRedemption::Refused);
            }
            CodeRedemption::Redeemed {
                client_id: client_id(client)?,
                family,
                code: Box::new(code),
            }
        } else {
            let replayed: Option<(String,)> = with_conn!(tx, conn => {
                sqlx::query_as(
                    "SELECT family_id FROM oauth_code WHERE code_hash = $1 \
                     AND consumed_at IS NOT NULL",
                )
                .bind(code_hash)
                .fetch_optional(conn)
                .await?
            });
            replayed.map_or(CodeRedemption::Invalid, |(family,)| {
                CodeRedemption::Replayed { family }
            })
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn insert_pre_auth(
        &self,
        tenant: &TenantContext,
        code: &NewPreAuthCode,
        now: i64,
    ) -> Result<(), Error> {
        let grant = to_json(&code.grant)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_pre_auth_code \
                 (code_hash, tx_code_hash, grant_data, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&code.code_hash)
            .bind(code.tx_code_hash.as_deref())
            .bind(&grant)
            .bind(now)
            .bind(code.expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_pre_auth(
        &self,
        tenant: &TenantContext,
        code_hash: &str,
        tx_code_hash: Option<&str>,
        max_attempts: u32,
        check: GrantCheck<'_>,
        now: i64,
    ) -> Result<PreAuthRedemption, Error> {
        let max_attempts = i64::from(max_attempts);
        let mut tx = self.begin(tenant).await?;
        // The redemption itself: one statement, so exactly one concurrent caller wins.
        let redeemed: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "UPDATE oauth_pre_auth_code SET consumed_at = $2 \
                 WHERE code_hash = $1 AND consumed_at IS NULL AND revoked_at IS NULL \
                 AND expires_at > $2 \
                 AND ((tx_code_hash IS NULL AND $3 IS NULL) OR tx_code_hash = $3) \
                 RETURNING grant_data",
            )
            .bind(code_hash)
            .bind(now)
            .bind(tx_code_hash)
            .fetch_optional(conn)
            .await?
        });
        let outcome = if let Some((grant,)) = redeemed {
            let grant: Grant = from_json(&grant)?;
            if !check.accepts(&grant) {
                // Dropped without commit, the transaction rolls back: the code stays as it was.
                return Ok(PreAuthRedemption::Refused);
            }
            PreAuthRedemption::Redeemed(Box::new(grant))
        } else if let Some(tx_code_hash) = tx_code_hash {
            // A wrong tx_code on a live code: count it, revoking at the limit, atomically.
            let failed: Option<(i64,)> = with_conn!(tx, conn => {
                sqlx::query_as(
                    "UPDATE oauth_pre_auth_code SET failed_attempts = failed_attempts + 1, \
                     revoked_at = CASE WHEN failed_attempts + 1 >= $4 THEN $2 ELSE NULL END \
                     WHERE code_hash = $1 AND consumed_at IS NULL AND revoked_at IS NULL \
                     AND expires_at > $2 AND tx_code_hash IS NOT NULL AND tx_code_hash <> $3 \
                     RETURNING CAST(failed_attempts AS BIGINT)",
                )
                .bind(code_hash)
                .bind(now)
                .bind(tx_code_hash)
                .bind(max_attempts)
                .fetch_optional(conn)
                .await?
            });
            let unexpected: Option<(i64,)> = if failed.is_some() {
                None
            } else {
                with_conn!(tx, conn => {
                    sqlx::query_as(
                        "SELECT CAST(1 AS BIGINT) FROM oauth_pre_auth_code WHERE code_hash = $1 \
                         AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
                         AND tx_code_hash IS NULL",
                    )
                    .bind(code_hash)
                    .bind(now)
                    .fetch_optional(conn)
                    .await?
                })
            };
            match (failed, unexpected) {
                (Some((attempts,)), _) => PreAuthRedemption::WrongTxCode {
                    remaining: u32::try_from((max_attempts - attempts).max(0)).unwrap_or(0),
                },
                (None, Some(_)) => PreAuthRedemption::TxCodeNotExpected,
                (None, None) => PreAuthRedemption::Invalid,
            }
        } else {
            let live: Option<(i64,)> = with_conn!(tx, conn => {
                sqlx::query_as(
                    "SELECT CAST(1 AS BIGINT) FROM oauth_pre_auth_code WHERE code_hash = $1 \
                     AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
                     AND tx_code_hash IS NOT NULL",
                )
                .bind(code_hash)
                .bind(now)
                .fetch_optional(conn)
                .await?
            });
            if live.is_some() {
                PreAuthRedemption::TxCodeRequired
            } else {
                PreAuthRedemption::Invalid
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn insert_refresh(
        &self,
        tenant: &TenantContext,
        token_hash: &str,
        record: &RefreshRecord,
    ) -> Result<(), Error> {
        let mut tx = self.begin(tenant).await?;
        insert_refresh_in(&mut tx, token_hash, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        tenant: &TenantContext,
        rotation: &RefreshRotate<'_>,
        now: i64,
    ) -> Result<RefreshRotation, Error> {
        let token_hash = rotation.token_hash;
        let mut tx = self.begin(tenant).await?;
        let rotated: Option<RefreshRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "UPDATE oauth_refresh_token SET rotated_at = $2 \
                 WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
                 AND expires_at > $2 AND client_id = $3 \
                 AND (dpop_jkt IS NULL OR dpop_jkt = $4) \
                 RETURNING family_id, client_id, grant_data, created_at, expires_at",
            )
            .bind(token_hash)
            .bind(now)
            .bind(rotation.client_id.as_str())
            .bind(rotation.dpop_jkt)
            .fetch_optional(conn)
            .await?
        });
        if let Some(row) = rotated {
            let record = refresh_from_row(row)?;
            for (index, value) in rotation.single_use.iter().enumerate() {
                if !use_jti_in(&mut tx, value).await? {
                    // Dropping the transaction rolls the rotation back.
                    return Ok(RefreshRotation::SingleUseReplayed { index });
                }
            }
            if let Some((next_hash, next)) = rotation.next {
                insert_refresh_in(&mut tx, next_hash, next).await?;
            }
            if let Some(access) = rotation.access_token {
                put_access_token_in(&mut tx, INSERT_ACCESS_TOKEN, access, None).await?;
            }
            tx.commit().await?;
            return Ok(RefreshRotation::Rotated(Box::new(record)));
        }
        let replayed: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT family_id FROM oauth_refresh_token WHERE token_hash = $1 \
                 AND rotated_at IS NOT NULL",
            )
            .bind(token_hash)
            .fetch_optional(conn)
            .await?
        });
        let outcome = if let Some((family,)) = replayed {
            revoke_family_in(&mut tx, &family, now).await?;
            RefreshRotation::Replayed
        } else {
            RefreshRotation::Invalid
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn refresh_token(
        &self,
        tenant: &TenantContext,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<RefreshRecord>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<RefreshRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT family_id, client_id, grant_data, created_at, expires_at \
                 FROM oauth_refresh_token WHERE token_hash = $1 AND rotated_at IS NULL \
                 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(refresh_from_row).transpose()
    }

    async fn revoke_family(
        &self,
        tenant: &TenantContext,
        family: &str,
        now: i64,
    ) -> Result<(), Error> {
        let mut tx = self.begin(tenant).await?;
        revoke_family_in(&mut tx, family, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_access_token(
        &self,
        tenant: &TenantContext,
        record: &AccessTokenRecord,
    ) -> Result<(), Error> {
        self.put_access_token(tenant, INSERT_ACCESS_TOKEN, record, None)
            .await
    }

    async fn access_token(
        &self,
        tenant: &TenantContext,
        jti: &str,
    ) -> Result<Option<AccessTokenRecord>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<AccessRow> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT jti, family_id, client_id, claims, expires_at, revoked_at \
                 FROM oauth_access_token WHERE jti = $1",
            )
            .bind(jti)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(access_from_row).transpose()
    }

    async fn revoke_access_token(
        &self,
        tenant: &TenantContext,
        record: &AccessTokenRecord,
        now: i64,
    ) -> Result<(), Error> {
        self.put_access_token(tenant, REVOKE_ACCESS_TOKEN, record, Some(now))
            .await
    }

    async fn use_jti(
        &self,
        tenant: &TenantContext,
        scope: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let rows = with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_jti (scope, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, jti) DO NOTHING",
            )
            .bind(scope)
            .bind(jti)
            .bind(expires_at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(rows == 1)
    }

    async fn dpop_nonce(
        &self,
        tenant: &TenantContext,
        now: i64,
        min_remaining: i64,
        lifetime: i64,
    ) -> Result<String, Error> {
        let mut tx = self.begin(tenant).await?;
        let current: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT nonce FROM oauth_dpop_nonce WHERE expires_at > $1 \
                 ORDER BY expires_at DESC LIMIT 1",
            )
            .bind(now + min_remaining)
            .fetch_optional(conn)
            .await?
        });
        let nonce = if let Some((nonce,)) = current {
            nonce
        } else {
            let nonce = crate::random::token();
            with_conn!(tx, conn => {
                sqlx::query("INSERT INTO oauth_dpop_nonce (nonce, expires_at) VALUES ($1, $2)")
                    .bind(&nonce)
                    .bind(now + lifetime)
                    .execute(conn)
                    .await?;
            });
            nonce
        };
        tx.commit().await?;
        Ok(nonce)
    }

    async fn dpop_nonce_valid(
        &self,
        tenant: &TenantContext,
        nonce: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let found: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as("SELECT nonce FROM oauth_dpop_nonce WHERE nonce = $1 AND expires_at > $2")
                .bind(nonce)
                .bind(now)
                .fetch_optional(conn)
                .await?
        });
        tx.commit().await?;
        Ok(found.is_some())
    }

    async fn purge_expired(&self, tenant: &TenantContext, now: i64) -> Result<u64, Error> {
        const TABLES: [&str; 10] = [
            "DELETE FROM oauth_attestation_challenge WHERE expires_at <= $1",
            "DELETE FROM oauth_grant_claims WHERE expires_at <= $1",
            "DELETE FROM oauth_par WHERE expires_at <= $1",
            "DELETE FROM oauth_transaction WHERE expires_at <= $1",
            "DELETE FROM oauth_code WHERE expires_at <= $1",
            "DELETE FROM oauth_pre_auth_code WHERE expires_at <= $1",
            "DELETE FROM oauth_refresh_token WHERE expires_at <= $1",
            "DELETE FROM oauth_access_token WHERE expires_at <= $1",
            "DELETE FROM oauth_jti WHERE expires_at <= $1",
            "DELETE FROM oauth_dpop_nonce WHERE expires_at <= $1",
        ];
        let mut tx = self.begin(tenant).await?;
        let mut total = 0;
        for statement in TABLES {
            total += with_conn!(tx, conn => {
                sqlx::query(statement)
                    .bind(now)
                    .execute(conn)
                    .await?
                    .rows_affected()
            });
        }
        tx.commit().await?;
        Ok(total)
    }

    async fn insert_attestation_challenge(
        &self,
        tenant: &TenantContext,
        challenge_hash: &str,
        expires_at: i64,
    ) -> Result<(), Error> {
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_attestation_challenge (challenge_hash, expires_at) \
                 VALUES ($1, $2)",
            )
            .bind(challenge_hash)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn take_attestation_challenge(
        &self,
        tenant: &TenantContext,
        challenge_hash: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let mut tx = self.begin(tenant).await?;
        let taken: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "DELETE FROM oauth_attestation_challenge \
                 WHERE challenge_hash = $1 AND expires_at > $2 RETURNING challenge_hash",
            )
            .bind(challenge_hash)
            .bind(now)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        Ok(taken.is_some())
    }

    async fn insert_grant_claims(
        &self,
        tenant: &TenantContext,
        jti: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        expires_at: i64,
    ) -> Result<(), Error> {
        let claims = to_json(claims)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            sqlx::query(
                "INSERT INTO oauth_grant_claims (jti, claims, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(jti)
            .bind(&claims)
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    async fn grant_claims(
        &self,
        tenant: &TenantContext,
        jti: &str,
        now: i64,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, Error> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String,)> = with_conn!(tx, conn => {
            sqlx::query_as(
                "SELECT claims FROM oauth_grant_claims WHERE jti = $1 AND expires_at > $2",
            )
            .bind(jti)
            .bind(now)
            .fetch_optional(conn)
            .await?
        });
        tx.commit().await?;
        row.map(|(claims,)| from_json(&claims)).transpose()
    }
}

async fn revoke_family_in(tx: &mut TenantTx, family: &str, now: i64) -> Result<(), Error> {
    for statement in [
        "UPDATE oauth_refresh_token SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        "UPDATE oauth_access_token SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    ] {
        with_conn!(*tx, conn => {
            sqlx::query(statement)
                .bind(family)
                .bind(now)
                .execute(conn)
                .await?;
        });
    }
    Ok(())
}
