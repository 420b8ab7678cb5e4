//! [`StatusStore`] on the tenant workload databases, for PostgreSQL and SQLite.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_tenancy::{TenantContext, TenantTx};

use super::sql::SqlStore;
use super::{IssuedFilter, NewIssuedCredential, StatusStore, StatusUpdate};
use crate::error::StoreError;
use crate::status::{
    CredentialSelector, CredentialStatus, IssuedCredential, PublishedToken, StatusAction,
    StatusIndex, StatusListInfo, StatusListSpec, StatusPurpose, permuted_index,
};

const LIST_COLUMNS: &str = "list_id, uri, issuer, configuration_id, purpose, bits, size, \
     allocated, version, published_version, published_iat, published_exp, created_at";

type ListRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

fn list_from_row(row: ListRow) -> Result<StatusListInfo, StoreError> {
    let (
        list_id,
        uri,
        issuer,
        configuration_id,
        purpose,
        bits,
        size,
        allocated,
        version,
        published_version,
        published_at,
        published_until,
        created_at,
    ) = row;
    let corrupt = || StoreError::Corrupt("stored status list is malformed");
    Ok(StatusListInfo {
        list_id,
        uri,
        issuer,
        configuration_id,
        purpose: StatusPurpose::from_name(&purpose).ok_or_else(corrupt)?,
        bits: u8::try_from(bits).map_err(|_| corrupt())?,
        size: u32::try_from(size).map_err(|_| corrupt())?,
        allocated: u32::try_from(allocated).map_err(|_| corrupt())?,
        version,
        published_version,
        published_at,
        published_until,
        created_at,
    })
}

const CREDENTIAL_COLUMNS: &str = "c.credential_id, c.session_id, c.correlation_id, \
     c.configuration_id, c.list_id, l.uri, c.status_index, c.status, c.issued_at, c.expires_at, \
     c.updated_at";

const CREDENTIAL_FROM: &str =
    "oid4vci_issued_credential c JOIN oid4vci_status_list l ON l.list_id = c.list_id";

type CredentialRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    i64,
);

fn credential_from_row(row: CredentialRow) -> Result<IssuedCredential, StoreError> {
    let (
        credential_id,
        session_id,
        correlation_id,
        configuration_id,
        list_id,
        uri,
        index,
        status,
        issued_at,
        expires_at,
        updated_at,
    ) = row;
    let corrupt = || StoreError::Corrupt("stored issued credential is malformed");
    Ok(IssuedCredential {
        credential_id,
        session_id,
        correlation_id,
        configuration_id,
        list_id,
        uri,
        index: u32::try_from(index).map_err(|_| corrupt())?,
        status: CredentialStatus::from_name(&status).ok_or_else(corrupt)?,
        issued_at,
        expires_at,
        updated_at,
    })
}

/// The column a selector matches on, and its value.
fn selector_column(selector: &CredentialSelector) -> (&'static str, &str) {
    match selector {
        CredentialSelector::Credential(id) => ("c.credential_id", id),
        CredentialSelector::Session(id) => ("c.session_id", id),
        CredentialSelector::Correlation(id) => ("c.correlation_id", id),
    }
}

fn random_key() -> [u8; 32] {
    use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
    let mut key = [0_u8; 32];
    // The system CSPRNG does not fail on the platforms aws-lc-rs supports.
    let _ = SystemRandom::new().fill(&mut key);
    key
}

fn decode_key(text: &str) -> Result<[u8; 32], StoreError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(StoreError::Corrupt("stored status list key is malformed"))
}

type TokenRow = (String, i64, i64, i64, i64, String, String);

fn token_from_row(row: TokenRow) -> Result<PublishedToken, StoreError> {
    let (list_id, version, iat, exp, ttl, jwt, cwt) = row;
    let corrupt = || StoreError::Corrupt("stored status list token is malformed");
    Ok(PublishedToken {
        list_id,
        version,
        iat,
        exp,
        ttl: u64::try_from(ttl).map_err(|_| corrupt())?,
        jwt,
        cwt: URL_SAFE_NO_PAD.decode(cwt).map_err(|_| corrupt())?,
    })
}

impl SqlStore {
    /// One transaction of [`StatusStore::allocate_status_indices`]: up to `want` indices of
    /// the spec's open list (all of them when they fit, else one), or of a list it opens when
    /// there is none; [`StoreError::Conflict`] when another issuer opened one meanwhile.
    async fn take_indices(
        &self,
        tenant: &TenantContext,
        spec: &StatusListSpec,
        want: u32,
        now: i64,
    ) -> Result<Vec<StatusIndex>, StoreError> {
        const TAKE: &str = "UPDATE oid4vci_status_list SET allocated = allocated + $6 \
             WHERE allocated + $6 <= size AND list_id = (SELECT list_id FROM oid4vci_status_list \
             WHERE configuration_id = $1 AND purpose = $2 AND bits = $3 AND size = $4 \
             AND issuer = $5 AND allocated < size) \
             RETURNING list_id, uri, allocated, size, permutation_key";
        let mut tx = self.begin(tenant).await?;
        let mut taken: Option<(String, String, i64, i64, String)> = None;
        let mut batch = want;
        let steps: &[u32] = if want > 1 { &[want, 1] } else { &[1] };
        for &step in steps {
            if taken.is_some() {
                break;
            }
            batch = step;
            taken = with_conn!(tx, conn => {
                sqlx::query_as(TAKE)
                    .bind(&spec.configuration_id)
                    .bind(spec.purpose.as_str())
                    .bind(i64::from(spec.bits.get()))
                    .bind(i64::from(spec.size))
                    .bind(&spec.issuer)
                    .bind(i64::from(step))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::database)?
            });
        }
        let (list_id, uri, end, size, key) = match taken {
            Some((list_id, uri, end, size, key)) => (list_id, uri, end, size, decode_key(&key)?),
            None => {
                let list_id = uuid::Uuid::new_v4().simple().to_string();
                let uri = format!("{}/{list_id}", spec.uri_base.trim_end_matches('/'));
                let key = random_key();
                batch = want.min(spec.size);
                with_conn!(tx, conn => {
                    sqlx::query(
                        "INSERT INTO oid4vci_status_list (list_id, uri, issuer, \
                         configuration_id, purpose, bits, size, allocated, permutation_key, \
                         version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10)",
                    )
                    .bind(&list_id)
                    .bind(&uri)
                    .bind(&spec.issuer)
                    .bind(&spec.configuration_id)
                    .bind(spec.purpose.as_str())
                    .bind(i64::from(spec.bits.get()))
                    .bind(i64::from(spec.size))
                    .bind(i64::from(batch))
                    .bind(URL_SAFE_NO_PAD.encode(key))
                    .bind(now)
                    .execute(conn)
                    .await
                    .map_err(super::sql::conflict_as("open status list"))?;
                });
                (list_id, uri, i64::from(batch), i64::from(spec.size), key)
            }
        };
        tx.commit().await.map_err(StoreError::database)?;
        let corrupt = || StoreError::Corrupt("stored status list counter is malformed");
        let size = u32::try_from(size).map_err(|_| corrupt())?;
        let end = u32::try_from(end).map_err(|_| corrupt())?;
        let start = end.checked_sub(batch).ok_or_else(corrupt)?;
        Ok((start..end)
            .map(|counter| StatusIndex {
                list_id: list_id.clone(),
                uri: uri.clone(),
                index: permuted_index(&key, size, counter),
            })
            .collect())
    }
}

#[async_trait]
impl StatusStore for SqlStore {
    async fn allocate_status_indices(
        &self,
        tenant: &TenantContext,
        spec: &StatusListSpec,
        count: u32,
        now: i64,
    ) -> Result<Vec<StatusIndex>, StoreError> {
        let mut indices = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut races = 0;
        while indices.len() < usize::try_from(count).unwrap_or(0) {
            let want = count - u32::try_from(indices.len()).unwrap_or(count);
            match self.take_indices(tenant, spec, want, now).await {
                Ok(taken) => indices.extend(taken),
                // Another issuer opened the spec's next list first: take from that one.
                Err(StoreError::Conflict(_)) if races < 8 => races += 1,
                Err(err) => return Err(err),
            }
        }
        Ok(indices)
    }

    async fn record_issued(
        &self,
        tenant: &TenantContext,
        credentials: &[NewIssuedCredential],
    ) -> Result<(), StoreError> {
        if credentials.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(tenant).await?;
        record_issued_in(&mut tx, credentials).await?;
        tx.commit().await.map_err(StoreError::database)
    }

    async fn issued_credentials(
        &self,
        tenant: &TenantContext,
        filter: &IssuedFilter,
    ) -> Result<Vec<IssuedCredential>, StoreError> {
        let mut conditions = vec!["c.credential_id > $1".to_owned()];
        let mut values: Vec<&str> = vec![filter.after.as_deref().unwrap_or("")];
        for selector in &filter.selectors {
            let (column, value) = selector_column(selector);
            values.push(value);
            conditions.push(format!("{column} = ${}", values.len()));
        }
        if let Some(status) = filter.status {
            values.push(status.as_str());
            conditions.push(format!("c.status = ${}", values.len()));
        }
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {CREDENTIAL_FROM} WHERE {} \
             ORDER BY c.credential_id LIMIT {}",
            conditions.join(" AND "),
            filter.limit.clamp(1, 1000)
        );
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<CredentialRow> = with_conn!(tx, conn => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for value in &values {
                query = query.bind(*value);
            }
            query.fetch_all(conn).await.map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        rows.into_iter().map(credential_from_row).collect()
    }

    async fn set_credential_status(
        &self,
        tenant: &TenantContext,
        selector: &CredentialSelector,
        action: StatusAction,
        now: i64,
    ) -> Result<StatusUpdate, StoreError> {
        let (column, value) = selector_column(selector);
        let select = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {CREDENTIAL_FROM} WHERE {column} = $1 \
             ORDER BY c.credential_id"
        );
        let select_with_bits = format!(
            "SELECT {CREDENTIAL_COLUMNS}, l.bits FROM {CREDENTIAL_FROM} WHERE {column} = $1 \
             ORDER BY c.credential_id"
        );
        let changes = action
            .changes()
            .iter()
            .map(|status| format!("'{}'", status.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let update = format!(
            "UPDATE oid4vci_issued_credential SET status = $1, updated_at = $2 \
             WHERE {} = $3 AND status IN ({changes})",
            column.trim_start_matches("c.")
        );
        let bump = format!(
            "UPDATE oid4vci_status_list SET version = version + 1 WHERE list_id IN \
             (SELECT c.list_id FROM oid4vci_issued_credential c WHERE {column} = $1)"
        );
        // A write first: the rows are locked before they are read (PostgreSQL), and SQLite
        // takes its write lock now, waiting for other writers, instead of failing to
        // upgrade a read transaction later.
        let lock = format!(
            "UPDATE oid4vci_issued_credential SET status = status WHERE {} = $1",
            column.trim_start_matches("c.")
        );
        let mut tx = self.begin(tenant).await?;
        let outcome = with_conn!(tx, conn => {
            sqlx::query(sqlx::AssertSqlSafe(lock))
                .bind(value)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            let rows: Vec<(String, String, Option<String>, String, String, String, i64, String, i64, Option<i64>, i64, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(select_with_bits))
                    .bind(value)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::database)?;
            if rows.is_empty() {
                StatusUpdate::NotFound
            } else if let Some(reason) = rows.iter().find_map(|row| refusal(action, &row.7, row.11)) {
                StatusUpdate::Refused(reason)
            } else {
                let changed = sqlx::query(sqlx::AssertSqlSafe(update))
                    .bind(action.target().as_str())
                    .bind(now)
                    .bind(value)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::database)?
                    .rows_affected();
                if changed > 0 {
                    sqlx::query(sqlx::AssertSqlSafe(bump))
                        .bind(value)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::database)?;
                }
                let rows: Vec<CredentialRow> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                    .bind(value)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::database)?;
                StatusUpdate::Updated(
                    rows.into_iter()
                        .map(credential_from_row)
                        .collect::<Result<_, _>>()?,
                )
            }
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(outcome)
    }

    async fn status_lists(
        &self,
        tenant: &TenantContext,
    ) -> Result<Vec<StatusListInfo>, StoreError> {
        let sql =
            format!("SELECT {LIST_COLUMNS} FROM oid4vci_status_list ORDER BY created_at, list_id");
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<ListRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        rows.into_iter().map(list_from_row).collect()
    }

    async fn status_list(
        &self,
        tenant: &TenantContext,
        list_id: &str,
    ) -> Result<Option<StatusListInfo>, StoreError> {
        let sql = format!("SELECT {LIST_COLUMNS} FROM oid4vci_status_list WHERE list_id = $1");
        let mut tx = self.begin(tenant).await?;
        let row: Option<ListRow> = with_conn!(tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(list_id)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(list_from_row).transpose()
    }

    async fn status_list_entries(
        &self,
        tenant: &TenantContext,
        list_id: &str,
    ) -> Result<Option<(StatusListInfo, Vec<(u32, CredentialStatus)>)>, StoreError> {
        let sql = format!("SELECT {LIST_COLUMNS} FROM oid4vci_status_list WHERE list_id = $1");
        let mut tx = self.begin(tenant).await?;
        let found = with_conn!(tx, conn => {
            // The version first: a change committed between the two reads is in the entries
            // and makes the list look dirty again, never the other way round.
            let row: Option<ListRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(list_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            match row {
                None => None,
                Some(row) => {
                    let entries: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT status_index, status FROM oid4vci_issued_credential \
                         WHERE list_id = $1 AND status <> 'valid'",
                    )
                    .bind(list_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::database)?;
                    Some((row, entries))
                }
            }
        });
        tx.commit().await.map_err(StoreError::database)?;
        let Some((row, entries)) = found else {
            return Ok(None);
        };
        let entries = entries
            .into_iter()
            .map(|(index, status)| {
                let index = u32::try_from(index).ok();
                let status = CredentialStatus::from_name(&status);
                index
                    .zip(status)
                    .ok_or(StoreError::Corrupt("stored issued credential is malformed"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some((list_from_row(row)?, entries)))
    }

    async fn save_published(
        &self,
        tenant: &TenantContext,
        token: &PublishedToken,
        seen: &StatusListInfo,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let saved = with_conn!(tx, conn => {
            // Published only over what this publisher read: a replica that published in the
            // meantime wins, and this token is dropped.
            let rows = sqlx::query(
                "UPDATE oid4vci_status_list SET published_version = $1, published_iat = $2, \
                 published_exp = $3 WHERE list_id = $4 \
                 AND COALESCE(published_version, -1) = COALESCE($5, -1) \
                 AND COALESCE(published_iat, -1) = COALESCE($6, -1)",
            )
            .bind(token.version)
            .bind(token.iat)
            .bind(token.exp)
            .bind(&token.list_id)
            .bind(seen.published_version)
            .bind(seen.published_at)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected();
            if rows == 1 {
                sqlx::query(
                    "INSERT INTO oid4vci_status_list_token (list_id, version, iat, exp, ttl, \
                     jwt, cwt) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&token.list_id)
                .bind(token.version)
                .bind(token.iat)
                .bind(token.exp)
                .bind(i64::try_from(token.ttl).unwrap_or(i64::MAX))
                .bind(&token.jwt)
                .bind(URL_SAFE_NO_PAD.encode(&token.cwt))
                .execute(&mut *conn)
                .await
                .map_err(StoreError::database)?;
            }
            rows == 1
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(saved)
    }

    async fn published_token(
        &self,
        tenant: &TenantContext,
        list_id: &str,
        at: Option<i64>,
    ) -> Result<Option<PublishedToken>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<TokenRow> = with_conn!(tx, conn => {
            let query = sqlx::query_as(
                "SELECT list_id, version, iat, exp, ttl, jwt, cwt FROM oid4vci_status_list_token \
                 WHERE list_id = $1 AND iat <= $2 ORDER BY iat DESC, version DESC LIMIT 1",
            )
            .bind(list_id)
            .bind(at.unwrap_or(i64::MAX));
            query.fetch_optional(conn).await.map_err(StoreError::database)?
        });
        tx.commit().await.map_err(StoreError::database)?;
        row.map(token_from_row).transpose()
    }

    async fn purge_published(
        &self,
        tenant: &TenantContext,
        before: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin(tenant).await?;
        // The newest token of each list stays, however old.
        let purged = with_conn!(tx, conn => {
            sqlx::query(
                "DELETE FROM oid4vci_status_list_token WHERE exp < $1 AND iat < \
                 (SELECT MAX(t.iat) FROM oid4vci_status_list_token t \
                 WHERE t.list_id = oid4vci_status_list_token.list_id)",
            )
            .bind(before)
            .execute(conn)
            .await
            .map_err(StoreError::database)?
            .rows_affected()
        });
        tx.commit().await.map_err(StoreError::database)?;
        Ok(purged)
    }
}

/// Why `action` cannot apply to a credential with `status` on a list of `bits`, if it
/// cannot.
fn refusal(action: StatusAction, status: &str, bits: i64) -> Option<&'static str> {
    let revoked = status == CredentialStatus::Revoked.as_str();
    match action {
        StatusAction::Revoke => None,
        StatusAction::Suspend if bits < 2 => {
            Some("the credential's status list holds revocation only and cannot express suspension")
        }
        _ if revoked => Some("the credential is revoked, and revocation is final"),
        _ => None,
    }
}

/// Records issued `credentials`, all valid, in the unit of work `tx`.
pub(super) async fn record_issued_in(
    tx: &mut TenantTx,
    credentials: &[NewIssuedCredential],
) -> Result<(), StoreError> {
    if credentials.is_empty() {
        return Ok(());
    }
    with_conn!(*tx, conn => {
        for credential in credentials {
            sqlx::query(
                "INSERT INTO oid4vci_issued_credential (credential_id, session_id, \
                 correlation_id, configuration_id, list_id, status_index, status, \
                 issued_at, expires_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'valid', $7, $8, $7)",
            )
            .bind(&credential.credential_id)
            .bind(&credential.session_id)
            .bind(&credential.correlation_id)
            .bind(&credential.configuration_id)
            .bind(&credential.list_id)
            .bind(i64::from(credential.index))
            .bind(credential.issued_at)
            .bind(credential.expires_at)
            .execute(&mut *conn)
            .await
            .map_err(super::sql::conflict_as("status list index"))?;
        }
    });
    Ok(())
}
