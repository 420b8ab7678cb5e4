//! [`DidStore`] on the tenant workload databases of edk-tenancy, for PostgreSQL and SQLite.
//!
//! Both backends accept the same SQL (`$n` placeholders, `ON CONFLICT`), so each statement is
//! written once and run on either connection type by `with_conn!`.

use async_trait::async_trait;
use edk_core::Did;
use edk_kms::KeyAlias;
use edk_tenancy::{Tenancy, TenantContext, TenantTx};
use serde_json::Value;

use super::{DidStore, StoredDid, StoredMethod, StoredService};
use crate::document::Relationship;
use crate::error::StoreError;

/// The SQL store over a [`Tenancy`]'s workload databases.
#[derive(Clone, Debug)]
pub struct SqlDidStore {
    tenancy: Tenancy,
}

impl SqlDidStore {
    /// A store in `tenancy`'s tenant databases. The tenancy must apply
    /// [`super::migrations`] (`TenancyBuilder::migrations`).
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    async fn begin(&self, tenant: &TenantContext) -> Result<TenantTx, StoreError> {
        self.tenancy
            .databases()
            .begin(tenant)
            .await
            .map_err(StoreError::Tenancy)
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
                return Err(StoreError::Corrupt {
                    what: "unsupported database backend",
                })
            }
        }
    };
}

type RecordRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    bool,
    Option<String>,
    i64,
    i64,
    i64,
);

/// The columns of `did_record`, in [`RecordRow`] order.
macro_rules! record_columns {
    () => {
        "did, method, location, name, document, deactivated, update_key, revision, created_at, \
         updated_at"
    };
}

fn record_from_row(row: RecordRow) -> Result<StoredDid, StoreError> {
    let (
        did,
        method,
        location,
        name,
        document,
        deactivated,
        update_key,
        revision,
        created_at,
        updated_at,
    ) = row;
    let did = Did::new(did).map_err(|_| StoreError::Corrupt {
        what: "a stored DID is malformed",
    })?;
    let document: Value = serde_json::from_str(&document).map_err(|_| StoreError::Corrupt {
        what: "a stored DID document is malformed",
    })?;
    let update_key = update_key.map(|alias| parse_alias(&alias)).transpose()?;
    Ok(StoredDid {
        did,
        method,
        location,
        name,
        document,
        deactivated,
        update_key,
        revision,
        created_at,
        updated_at,
        verification_methods: Vec::new(),
        services: Vec::new(),
        log: Vec::new(),
        witness: None,
        pending: Vec::new(),
    })
}

fn parse_alias(text: &str) -> Result<KeyAlias, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt {
        what: "a stored key alias is malformed",
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

fn to_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError::Corrupt {
        what: "a value does not serialize",
    })
}

fn position(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// The version number of a did:webvh log line (`versionId` = `<n>-<hash>`).
fn version_of(line: &str) -> Result<(i64, String), StoreError> {
    let corrupt = StoreError::Corrupt {
        what: "a did:webvh log entry has no version",
    };
    let entry: Value = serde_json::from_str(line).map_err(|_| StoreError::Corrupt {
        what: "a did:webvh log entry is not JSON",
    })?;
    let version_id = entry
        .get("versionId")
        .and_then(Value::as_str)
        .ok_or(StoreError::Corrupt {
            what: "a did:webvh log entry has no version",
        })?;
    let number = version_id
        .split_once('-')
        .and_then(|(n, _)| n.parse::<i64>().ok())
        .ok_or(corrupt)?;
    Ok((number, version_id.to_owned()))
}

/// Loads the methods, services, log and witness of `record` in the open transaction.
macro_rules! load_children {
    ($conn:expr, $record:expr, $with_log:expr) => {{
        let did = $record.did.as_str().to_owned();
        let methods: Vec<(String, String)> = sqlx::query_as(
            "SELECT key_alias, relationships FROM did_verification_method \
             WHERE did = $1 ORDER BY position",
        )
        .bind(&did)
        .fetch_all(&mut *$conn)
        .await?;
        for (alias, relationships) in methods {
            let relationships: Vec<Relationship> =
                serde_json::from_str(&relationships).map_err(|_| StoreError::Corrupt {
                    what: "stored relationships are malformed",
                })?;
            $record
                .verification_methods
                .push(StoredMethod::new(parse_alias(&alias)?, relationships));
        }
        let services: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT service_id, service_type, endpoint FROM did_service \
             WHERE did = $1 ORDER BY position",
        )
        .bind(&did)
        .fetch_all(&mut *$conn)
        .await?;
        for (id, service_type, endpoint) in services {
            let endpoint: Value =
                serde_json::from_str(&endpoint).map_err(|_| StoreError::Corrupt {
                    what: "a stored service endpoint is malformed",
                })?;
            $record
                .services
                .push(StoredService::new(id, service_type, endpoint));
        }
        if $with_log {
            let entries: Vec<(String,)> = sqlx::query_as(
                "SELECT entry FROM did_webvh_entry WHERE did = $1 ORDER BY version_number",
            )
            .bind(&did)
            .fetch_all(&mut *$conn)
            .await?;
            $record.log = entries.into_iter().map(|(entry,)| entry).collect();
            let witness: Option<(String,)> =
                sqlx::query_as("SELECT content FROM did_webvh_witness WHERE did = $1")
                    .bind(&did)
                    .fetch_optional(&mut *$conn)
                    .await?;
            $record.witness = witness.map(|(content,)| content);
        }
        let pending: Option<(String,)> =
            sqlx::query_as("SELECT entries FROM did_webvh_pending WHERE did = $1")
                .bind(&did)
                .fetch_optional(&mut *$conn)
                .await?;
        $record.pending = pending
            .map(|(entries,)| entries.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok::<(), StoreError>(())
    }};
}

/// Writes the methods, services, log entries and witness of `did` in the open transaction
/// (methods and services replaced, entries appended).
macro_rules! write_children {
    ($conn:expr, $did:expr) => {{
        let did: &StoredDid = $did;
        let id = did.did.as_str();
        sqlx::query("DELETE FROM did_verification_method WHERE did = $1")
            .bind(id)
            .execute(&mut *$conn)
            .await?;
        for (index, method) in did.verification_methods.iter().enumerate() {
            sqlx::query(
                "INSERT INTO did_verification_method (did, key_alias, relationships, position) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(method.alias.to_string())
            .bind(to_text(&method.relationships)?)
            .bind(position(index))
            .execute(&mut *$conn)
            .await?;
        }
        sqlx::query("DELETE FROM did_service WHERE did = $1")
            .bind(id)
            .execute(&mut *$conn)
            .await?;
        for (index, service) in did.services.iter().enumerate() {
            sqlx::query(
                "INSERT INTO did_service (did, service_id, service_type, endpoint, position) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(&service.id)
            .bind(&service.service_type)
            .bind(to_text(&service.endpoint)?)
            .bind(position(index))
            .execute(&mut *$conn)
            .await?;
        }
        for line in &did.log {
            let (number, version_id) = version_of(line)?;
            sqlx::query(
                "INSERT INTO did_webvh_entry (did, version_number, version_id, entry) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (did, version_number) DO NOTHING",
            )
            .bind(id)
            .bind(number)
            .bind(version_id)
            .bind(line)
            .execute(&mut *$conn)
            .await?;
        }
        match &did.witness {
            Some(content) => {
                sqlx::query(
                    "INSERT INTO did_webvh_witness (did, content) VALUES ($1, $2) \
                     ON CONFLICT (did) DO UPDATE SET content = excluded.content",
                )
                .bind(id)
                .bind(content)
                .execute(&mut *$conn)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM did_webvh_witness WHERE did = $1")
                    .bind(id)
                    .execute(&mut *$conn)
                    .await?;
            }
        }
        if did.pending.is_empty() {
            sqlx::query("DELETE FROM did_webvh_pending WHERE did = $1")
                .bind(id)
                .execute(&mut *$conn)
                .await?;
        } else {
            if did.pending.iter().any(|line| line.contains('\n')) {
                return Err(StoreError::Corrupt {
                    what: "a held-back did:webvh entry spans lines",
                });
            }
            sqlx::query(
                "INSERT INTO did_webvh_pending (did, entries) VALUES ($1, $2) \
                 ON CONFLICT (did) DO UPDATE SET entries = excluded.entries",
            )
            .bind(id)
            .bind(did.pending.join("\n"))
            .execute(&mut *$conn)
            .await?;
        }
        Ok::<(), StoreError>(())
    }};
}

#[async_trait]
impl DidStore for SqlDidStore {
    async fn insert(&self, tenant: &TenantContext, did: &StoredDid) -> Result<(), StoreError> {
        let document = to_text(&did.document)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            let inserted = sqlx::query(concat!(
                "INSERT INTO did_record (",
                record_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(did.did.as_str())
            .bind(&did.method)
            .bind(did.location.as_deref())
            .bind(&did.name)
            .bind(&document)
            .bind(did.deactivated)
            .bind(did.update_key.as_ref().map(ToString::to_string))
            .bind(did.revision)
            .bind(did.created_at)
            .bind(did.updated_at)
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict {
                        reason: "the DID, or a DID of this method at this location, exists",
                    });
                }
                Err(err) => return Err(err.into()),
            }
            write_children!(conn, did)?;
        });
        tx.commit().await.map_err(StoreError::Tenancy)
    }

    async fn get(
        &self,
        tenant: &TenantContext,
        did: &Did,
    ) -> Result<Option<StoredDid>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let record = with_conn!(tx, conn => {
            let row: Option<RecordRow> = sqlx::query_as(concat!(
                "SELECT ",
                record_columns!(),
                " FROM did_record WHERE did = $1"
            ))
            .bind(did.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                Some(row) => {
                    let mut record = record_from_row(row)?;
                    load_children!(conn, record, true)?;
                    Some(record)
                }
                None => None,
            }
        });
        tx.commit().await.map_err(StoreError::Tenancy)?;
        Ok(record)
    }

    async fn by_location(
        &self,
        tenant: &TenantContext,
        method: &str,
        location: &str,
    ) -> Result<Option<StoredDid>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let record = with_conn!(tx, conn => {
            let row: Option<RecordRow> = sqlx::query_as(concat!(
                "SELECT ",
                record_columns!(),
                " FROM did_record WHERE method = $1 AND location = $2"
            ))
            .bind(method)
            .bind(location)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                Some(row) => {
                    let mut record = record_from_row(row)?;
                    load_children!(conn, record, true)?;
                    Some(record)
                }
                None => None,
            }
        });
        tx.commit().await.map_err(StoreError::Tenancy)?;
        Ok(record)
    }

    async fn list(&self, tenant: &TenantContext) -> Result<Vec<StoredDid>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let records = with_conn!(tx, conn => {
            let rows: Vec<RecordRow> = sqlx::query_as(concat!(
                "SELECT ",
                record_columns!(),
                " FROM did_record ORDER BY did"
            ))
            .fetch_all(&mut *conn)
            .await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows {
                let mut record = record_from_row(row)?;
                load_children!(conn, record, false)?;
                records.push(record);
            }
            records
        });
        tx.commit().await.map_err(StoreError::Tenancy)?;
        Ok(records)
    }

    async fn update(&self, tenant: &TenantContext, did: &StoredDid) -> Result<(), StoreError> {
        let document = to_text(&did.document)?;
        let mut tx = self.begin(tenant).await?;
        with_conn!(tx, conn => {
            let changed = sqlx::query(
                "UPDATE did_record SET document = $1, deactivated = $2, update_key = $3, \
                 revision = $4, updated_at = $5 WHERE did = $6 AND revision = $7",
            )
            .bind(&document)
            .bind(did.deactivated)
            .bind(did.update_key.as_ref().map(ToString::to_string))
            .bind(did.revision)
            .bind(did.updated_at)
            .bind(did.did.as_str())
            .bind(did.revision - 1)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if changed == 0 {
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT did FROM did_record WHERE did = $1")
                        .bind(did.did.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                return Err(match exists {
                    Some(_) => StoreError::Conflict {
                        reason: "the DID was changed concurrently; retry",
                    },
                    None => StoreError::NotFound {
                        did: did.did.to_string(),
                    },
                });
            }
            write_children!(conn, did)?;
        });
        tx.commit().await.map_err(StoreError::Tenancy)
    }
}
