//! The key store on MySQL or MariaDB: one shared database, every row keyed by its tenant
//! (the PostgreSQL and SQLite stores use the tenant's own schema or file instead).
//!
//! The same operations and transactions as the other backends, in MySQL's dialect: `?`
//! placeholders, `SELECT ... FOR UPDATE` on the alias row instead of `UPDATE ... RETURNING`
//! (so concurrent rotations of one alias serialise on InnoDB's row lock), `INSERT IGNORE`
//! for holds, and generated columns for the "live" unique indexes. The tables come from
//! [`MySqlKeyStore::migrate`] (migrations `migrations/mysql`, recorded in the database's
//! `_sqlx_migrations`). Tenancy (tenants, their audit chains) stays on the tenancy backend;
//! give the store to [`LocalKmsBuilder::store`](crate::LocalKmsBuilder::store).

use sqlx::MySqlConnection;
use sqlx::mysql::MySqlPool;

use super::{
    AliasRecord, AliasRow, KeyReferenceStore, NewVersion, RotationMeta, RotationRow, StoreError,
    VERSION_COLUMNS, VersionRecord, VersionRow, assemble, is_unique_violation, overlap_end,
    reason_str, rotation_from_row, usage_to_string, version_of,
};

/// The alias columns, with MySQL's reserved word `usage` quoted.
const ALIAS_COLUMNS: &str = "id, alias, `usage`, provider_id, external, overlap_secs, \
     period_secs, pre_active_secs, last_version, created_at";

/// [`KeyReferenceStore`] on MySQL or MariaDB.
#[derive(Clone, Debug)]
pub struct MySqlKeyStore {
    pool: MySqlPool,
}

impl MySqlKeyStore {
    /// A store on `pool`'s database; run [`migrate`](Self::migrate) once first.
    #[must_use]
    pub const fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }

    /// Connects to the database at `url` (`mysql://` or `mariadb://`, with credentials and
    /// database name) with at most `max_connections` pooled connections, and creates or
    /// upgrades the store's tables.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a URL that is not a MySQL or
    /// MariaDB URL naming a database; [`Error::Store`](crate::Error::Store) when the server
    /// cannot be reached or a migration fails.
    pub async fn connect(
        url: &secrecy::SecretString,
        max_connections: u32,
    ) -> Result<Self, crate::Error> {
        use secrecy::ExposeSecret as _;
        use sqlx::ConnectOptions as _;

        const BAD_URL: crate::Error = crate::Error::InvalidConfig {
            field: "database",
            reason: "must be a mysql:// or mariadb:// URL naming a database",
        };
        let text = url.expose_secret();
        if !(text.starts_with("mysql://") || text.starts_with("mariadb://")) {
            return Err(BAD_URL);
        }
        let options: sqlx::mysql::MySqlConnectOptions = text.parse().map_err(|_| BAD_URL)?;
        if options.get_database().is_none_or(str::is_empty) {
            return Err(BAD_URL);
        }
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options.disable_statement_logging())
            .await
            .map_err(|err| crate::Error::Store(StoreError::Database(err)))?;
        let store = Self::new(pool);
        store.migrate().await.map_err(crate::Error::Store)?;
        Ok(store)
    }

    /// Creates or upgrades the store's tables.
    ///
    /// # Errors
    /// [`StoreError::Database`] when a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/mysql")
            .run(&self.pool)
            .await
            .map_err(|err| StoreError::Database(err.into()))
    }

    /// Checks that the database answers and holds the store's tables: the readiness check of
    /// a server whose key references live here.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the database cannot be reached or the tables are gone.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM kms_key_alias LIMIT 1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin(
        &self,
        _tenant: &edk_tenancy::TenantContext,
    ) -> Result<sqlx::Transaction<'static, sqlx::MySql>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

impl MySqlKeyStore {
    /// Locks the live alias row (`FOR UPDATE`) and touches it.
    async fn lock_alias(
        conn: &mut MySqlConnection,
        tenant: uuid::Uuid,
        alias: &crate::kms::KeyAlias,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<AliasRow, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ALIAS_COLUMNS} FROM kms_key_alias \
                     WHERE tenant_id = ? AND alias = ? AND deleted_at IS NULL FOR UPDATE"
        ));
        let row = sqlx::query_as::<_, AliasRow>(sql)
            .bind(tenant)
            .bind(alias.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::AliasNotFound {
                alias: alias.clone(),
            })?;
        sqlx::query("UPDATE kms_key_alias SET updated_at = ? WHERE id = ?")
            .bind(at)
            .bind(row.id)
            .execute(&mut *conn)
            .await?;
        Ok(row)
    }

    async fn versions_of(
        conn: &mut MySqlConnection,
        alias_id: uuid::Uuid,
    ) -> Result<Vec<VersionRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM key_reference WHERE alias_id = ? ORDER BY version DESC"
        ));
        Ok(sqlx::query_as::<_, VersionRow>(sql)
            .bind(alias_id)
            .fetch_all(&mut *conn)
            .await?)
    }

    async fn load(conn: &mut MySqlConnection, row: AliasRow) -> Result<AliasRecord, StoreError> {
        let versions = Self::versions_of(conn, row.id).await?;
        assemble(row, versions)
    }

    async fn insert_version(
        conn: &mut MySqlConnection,
        tenant: uuid::Uuid,
        alias: &AliasRecord,
        record: &VersionRecord,
    ) -> Result<(), StoreError> {
        let v = &record.version;
        let handle = record
            .handle
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| StoreError::Corrupt { what: "key handle" })?;
        let jwk = serde_json::to_string(&v.public_jwk)
            .map_err(|_| StoreError::Corrupt { what: "public JWK" })?;
        let result = sqlx::query(
            "INSERT INTO key_reference (alias_id, tenant_id, alias, version, provider_id, \
                     handle, kid, public_jwk, state, created_at, activated_at, retired_at, \
                     verify_until, destroyed_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(alias.id)
        .bind(tenant)
        .bind(alias.alias.to_string())
        .bind(version_of(v.version)?)
        .bind(v.provider.as_ref().map(|p| p.as_str().to_owned()))
        .bind(handle)
        .bind(v.kid.as_str())
        .bind(jwk)
        .bind(v.state.as_str())
        .bind(v.created_at)
        .bind(v.activated_at)
        .bind(v.retired_at)
        .bind(v.verify_until)
        .bind(v.destroyed_at)
        .execute(&mut *conn)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_unique_violation(&err) => Err(StoreError::KeyExists),
            Err(err) => Err(err.into()),
        }
    }
}

#[async_trait::async_trait]
impl KeyReferenceStore for MySqlKeyStore {
    async fn create(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &AliasRecord,
    ) -> Result<(), StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let result = sqlx::query(
            "INSERT INTO kms_key_alias (id, tenant_id, alias, `usage`, provider_id, \
                     external, overlap_secs, period_secs, last_version, created_at, updated_at, \
                     pre_active_secs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(alias.id)
        .bind(tenant_id)
        .bind(alias.alias.to_string())
        .bind(usage_to_string(alias.usage)?)
        .bind(alias.provider.as_ref().map(|p| p.as_str().to_owned()))
        .bind(alias.external)
        .bind(i64::try_from(alias.rotation.overlap_secs).unwrap_or(i64::MAX))
        .bind(
            alias
                .rotation
                .period_secs
                .map(|p| i64::try_from(p).unwrap_or(i64::MAX)),
        )
        .bind(version_of(alias.last_version)?)
        .bind(alias.created_at)
        .bind(alias.created_at)
        .bind(i64::try_from(alias.rotation.pre_active_secs).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::AliasExists {
                    alias: alias.alias.clone(),
                });
            }
            Err(err) => return Err(err.into()),
        }
        for version in &alias.versions {
            Self::insert_version(&mut tx, tenant_id, alias, version).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn alias(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ALIAS_COLUMNS} FROM kms_key_alias \
                     WHERE tenant_id = ? AND alias = ? AND deleted_at IS NULL"
        ));
        let row = sqlx::query_as::<_, AliasRow>(sql)
            .bind(*tenant.id().as_uuid())
            .bind(alias.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let record = match row {
            Some(row) => Some(Self::load(&mut tx, row).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(record)
    }

    async fn alias_by_kid(
        &self,
        tenant: &edk_tenancy::TenantContext,
        kid: &edk_core::Kid,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ALIAS_COLUMNS} FROM kms_key_alias WHERE tenant_id = ? AND deleted_at IS NULL \
                     AND id IN (SELECT alias_id FROM key_reference \
                     WHERE tenant_id = ? AND kid = ?)"
        ));
        let row = sqlx::query_as::<_, AliasRow>(sql)
            .bind(*tenant.id().as_uuid())
            .bind(*tenant.id().as_uuid())
            .bind(kid.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let record = match row {
            Some(row) => Some(Self::load(&mut tx, row).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(record)
    }

    async fn aliases(
        &self,
        tenant: &edk_tenancy::TenantContext,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ALIAS_COLUMNS} FROM kms_key_alias WHERE tenant_id = ? AND deleted_at IS NULL \
                     ORDER BY alias"
        ));
        let rows = sqlx::query_as::<_, AliasRow>(sql)
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM key_reference WHERE tenant_id = ?"
        ));
        let mut versions = sqlx::query_as::<_, VersionRow>(sql)
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let (mine, rest): (Vec<_>, Vec<_>) =
                versions.into_iter().partition(|v| v.alias_id == row.id);
            versions = rest;
            records.push(assemble(row, mine)?);
        }
        Ok(records)
    }

    async fn rotate(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
        new: Option<&NewVersion>,
        meta: &RotationMeta,
    ) -> Result<AliasRecord, StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, meta.at).await?;
        let current = Self::load(&mut tx, row).await?;
        let staged = current.staged().map(|v| v.version.version);
        let previous = current.active().map(|v| v.version.version);
        let verify_until = overlap_end(meta.at, current.rotation.overlap_secs);
        sqlx::query(
            "UPDATE key_reference SET state = 'retired', retired_at = ?, \
                     verify_until = ? WHERE alias_id = ? AND state = 'active'",
        )
        .bind(meta.at)
        .bind(verify_until)
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        let next = match (staged, new) {
            (Some(version), _) => {
                sqlx::query(
                    "UPDATE key_reference SET state = 'active', activated_at = ? \
                             WHERE alias_id = ? AND version = ?",
                )
                .bind(meta.at)
                .bind(current.id)
                .bind(version_of(version)?)
                .execute(&mut *tx)
                .await?;
                version
            }
            (None, Some(new)) => {
                let next = current.last_version.saturating_add(1);
                let record = VersionRecord {
                    version: crate::kms::KeyVersion {
                        version: next,
                        kid: new.handle.kid().clone(),
                        provider: Some(new.handle.provider().clone()),
                        public_jwk: new.public_jwk.clone(),
                        state: crate::kms::KeyState::Active,
                        created_at: meta.at,
                        activated_at: Some(meta.at),
                        retired_at: None,
                        verify_until: None,
                        destroyed_at: None,
                    },
                    handle: Some(new.handle.clone()),
                };
                Self::insert_version(&mut tx, tenant_id, &current, &record).await?;
                sqlx::query("UPDATE kms_key_alias SET last_version = ? WHERE id = ?")
                    .bind(version_of(next)?)
                    .bind(current.id)
                    .execute(&mut *tx)
                    .await?;
                next
            }
            (None, None) => return Err(StoreError::NothingStaged),
        };
        sqlx::query(
            "INSERT INTO kms_key_rotation (alias_id, tenant_id, from_version, \
                     to_version, reason, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(current.id)
        .bind(tenant_id)
        .bind(previous.map(version_of).transpose()?)
        .bind(version_of(next)?)
        .bind(reason_str(meta.reason))
        .bind(&meta.actor)
        .bind(meta.at)
        .execute(&mut *tx)
        .await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, meta.at).await?;
        let updated = Self::load(&mut tx, row).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn stage(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
        new: &NewVersion,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<AliasRecord, StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
        let current = Self::load(&mut tx, row).await?;
        if current.staged().is_some() {
            return Err(StoreError::AlreadyStaged);
        }
        let next = current.last_version.saturating_add(1);
        let record = VersionRecord {
            version: crate::kms::KeyVersion {
                version: next,
                kid: new.handle.kid().clone(),
                provider: Some(new.handle.provider().clone()),
                public_jwk: new.public_jwk.clone(),
                state: crate::kms::KeyState::PreActive,
                created_at: at,
                activated_at: None,
                retired_at: None,
                verify_until: None,
                destroyed_at: None,
            },
            handle: Some(new.handle.clone()),
        };
        Self::insert_version(&mut tx, tenant_id, &current, &record).await?;
        sqlx::query("UPDATE kms_key_alias SET last_version = ? WHERE id = ?")
            .bind(version_of(next)?)
            .bind(current.id)
            .execute(&mut *tx)
            .await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
        let updated = Self::load(&mut tx, row).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn rotations(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
    ) -> Result<Vec<crate::kms::RotationRecord>, StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let id: Option<(uuid::Uuid,)> = sqlx::query_as(
            "SELECT id FROM kms_key_alias \
                     WHERE tenant_id = ? AND alias = ? AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .bind(alias.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = id else {
            return Err(StoreError::AliasNotFound {
                alias: alias.clone(),
            });
        };
        let rows = sqlx::query_as::<_, RotationRow>(
            "SELECT from_version, to_version, reason, actor, at FROM kms_key_rotation \
                     WHERE alias_id = ? ORDER BY to_version",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| rotation_from_row(alias, row))
            .collect()
    }

    async fn destroy(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
        kid: Option<&edk_core::Kid>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::provider::KeyHandle>, StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
        let current = Self::load(&mut tx, row).await?;
        let (holds,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM kms_key_hold WHERE alias_id = ?")
                .bind(current.id)
                .fetch_one(&mut *tx)
                .await?;
        if holds > 0 {
            return Err(StoreError::KeyInUse {
                alias: alias.clone(),
            });
        }
        let targets: Vec<&VersionRecord> = match kid {
            Some(kid) => {
                let version = current.version_by_kid(kid).ok_or(StoreError::UnknownKid)?;
                if version.version.state == crate::kms::KeyState::Active {
                    return Err(StoreError::ActiveVersion);
                }
                vec![version]
            }
            None => current.versions.iter().collect(),
        };
        let mut handles = Vec::new();
        for version in targets {
            if version.version.state == crate::kms::KeyState::Destroyed {
                continue;
            }
            sqlx::query(
                "UPDATE key_reference SET state = 'destroyed', handle = NULL, \
                         destroyed_at = ? WHERE alias_id = ? AND version = ?",
            )
            .bind(at)
            .bind(current.id)
            .bind(version_of(version.version.version)?)
            .execute(&mut *tx)
            .await?;
            handles.extend(version.handle.clone());
        }
        if kid.is_none() {
            sqlx::query("UPDATE kms_key_alias SET deleted_at = ? WHERE id = ?")
                .bind(at)
                .bind(current.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(handles)
    }

    async fn hold(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
        holder: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
        sqlx::query(
            "INSERT IGNORE INTO kms_key_hold (alias_id, tenant_id, holder, created_at) \
                     VALUES (?, ?, ?, ?)",
        )
        .bind(row.id)
        .bind(tenant_id)
        .bind(holder)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release(
        &self,
        tenant: &edk_tenancy::TenantContext,
        alias: &crate::kms::KeyAlias,
        holder: &str,
    ) -> Result<(), StoreError> {
        let tenant_id = *tenant.id().as_uuid();
        let mut tx = self.begin(tenant).await?;
        let id: Option<(uuid::Uuid,)> = sqlx::query_as(
            "SELECT id FROM kms_key_alias \
                     WHERE tenant_id = ? AND alias = ? AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .bind(alias.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = id else {
            return Err(StoreError::AliasNotFound {
                alias: alias.clone(),
            });
        };
        sqlx::query("DELETE FROM kms_key_hold WHERE alias_id = ? AND holder = ?")
            .bind(id)
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
