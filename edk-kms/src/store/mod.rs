//! Persistence of key aliases: the `key_reference` table (one row per key version, with the
//! provider's handle but never key material), rotations and holds, for PostgreSQL (the
//! tenant's schema) and SQLite (the tenant's file), and with feature `mysql` for MySQL or
//! MariaDB ([`mysql`], one shared database keyed by tenant).
//!
//! The SQL is the same on both backends (both take `$n` placeholders and `RETURNING`), so one
//! implementation is generated for each connection type by `key_store_impl!`; the backend
//! modules only open the tenant's transaction. Every method is one transaction. Rotation,
//! destruction and holds start with an `UPDATE` of the alias row, which locks it on
//! PostgreSQL and takes the file's write lock on SQLite, so concurrent rotations of one alias
//! serialise and each makes exactly one version (the `(alias, version)` primary key backs
//! this up).

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::jose::Jwk;
use edk_core::{ErrorKind, HasKind, Kid};
use edk_tenancy::{Tenancy, TenantContext, TenantDatabases};
use uuid::Uuid;

use crate::kms::RotationRecord;
use crate::kms::{KeyAlias, KeyInfo, KeyState, KeyVersion, RotationPolicy, RotationReason};
use crate::provider::{KeyHandle, KeyUsage, ProviderId};

#[cfg(feature = "mysql")]
pub mod mysql;
pub mod postgres;
pub mod sqlite;

/// Why a key store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A live alias with this name exists.
    #[error("key alias `{alias}` already exists")]
    AliasExists {
        /// The alias.
        alias: KeyAlias,
    },
    /// No live alias with this name exists.
    #[error("key alias `{alias}` not found")]
    AliasNotFound {
        /// The alias.
        alias: KeyAlias,
    },
    /// The version asked to be destroyed is the active one.
    #[error("the active version cannot be destroyed alone")]
    ActiveVersion,
    /// A rotation was asked to activate the staged version, but none is staged.
    #[error("no pre-active version is staged")]
    NothingStaged,
    /// A version is already staged as pre-active.
    #[error("a pre-active version is already staged")]
    AlreadyStaged,
    /// A stored row cannot be read back.
    #[error("corrupt key store row: {what}")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// The database refused or did not answer.
    #[error("database operation failed")]
    Database(#[source] sqlx::Error),
    /// A live key with this kid exists for the tenant.
    #[error("the key is already registered")]
    KeyExists,
    /// The alias is held.
    #[error("key alias `{alias}` is in use")]
    KeyInUse {
        /// The alias.
        alias: KeyAlias,
    },
    /// The kid names no version of the alias.
    #[error("key not found")]
    UnknownKid,
    /// The tenant's database could not be opened.
    #[error("tenant database unavailable")]
    Tenancy(#[source] edk_tenancy::Error),
    /// The store was given another backend's databases.
    #[error("the tenant databases are not of this store's backend")]
    WrongBackend,
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AliasExists { .. }
            | Self::ActiveVersion
            | Self::NothingStaged
            | Self::AlreadyStaged
            | Self::KeyExists
            | Self::KeyInUse { .. } => ErrorKind::Conflict,
            Self::AliasNotFound { .. } | Self::UnknownKid => ErrorKind::NotFound,
            Self::Corrupt { .. } | Self::WrongBackend => ErrorKind::Internal,
            Self::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_) => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Self::Tenancy(err) => err.kind(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<edk_tenancy::Error> for StoreError {
    fn from(err: edk_tenancy::Error) -> Self {
        Self::Tenancy(err)
    }
}

/// One version of an alias as stored: the public view and the provider's handle (`None` for
/// an external public key and for a destroyed version's tombstone).
#[derive(Clone, Debug, PartialEq)]
pub struct VersionRecord {
    /// The public view.
    pub version: KeyVersion,
    /// The provider's handle.
    pub handle: Option<KeyHandle>,
}

/// An alias as stored, with every version, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasRecord {
    /// The row id (aliases that were deleted keep theirs; a new alias of the same name gets a
    /// new one).
    pub id: Uuid,
    /// The alias.
    pub alias: KeyAlias,
    /// What the key is for.
    pub usage: KeyUsage,
    /// The provider new versions are made in; `None` for external keys.
    pub provider: Option<ProviderId>,
    /// Whether the alias holds an external public key.
    pub external: bool,
    /// The rotation policy.
    pub rotation: RotationPolicy,
    /// The highest version number allocated.
    pub last_version: u32,
    /// When the alias was created.
    pub created_at: DateTime<Utc>,
    /// The versions, newest first.
    pub versions: Vec<VersionRecord>,
}

impl AliasRecord {
    /// The public view.
    #[must_use]
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            alias: self.alias.clone(),
            usage: self.usage,
            provider: self.provider.clone(),
            rotation: self.rotation,
            external: self.external,
            versions: self.versions.iter().map(|v| v.version.clone()).collect(),
        }
    }

    /// The active version, if any.
    #[must_use]
    pub fn active(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .find(|v| v.version.state == KeyState::Active)
    }

    /// The version staged as pre-active, if any.
    #[must_use]
    pub fn staged(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .find(|v| v.version.state == KeyState::PreActive)
    }

    /// The version with `kid`.
    #[must_use]
    pub fn version_by_kid(&self, kid: &Kid) -> Option<&VersionRecord> {
        self.versions.iter().find(|v| v.version.kid == *kid)
    }
}

/// A new version to add by rotation.
#[derive(Clone, Debug)]
pub struct NewVersion {
    /// The provider's handle.
    pub handle: KeyHandle,
    /// The public key, with `kid` and `alg`.
    pub public_jwk: Jwk,
}

/// Who rotates, why and when.
#[derive(Clone, Debug)]
pub struct RotationMeta {
    /// Why.
    pub reason: RotationReason,
    /// Who.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Where key aliases are kept. One method call is one transaction; every method acts in
/// `tenant`'s schema or file and only on its rows.
#[async_trait]
pub trait KeyReferenceStore: fmt::Debug + Send + Sync {
    /// Inserts a new alias and its versions.
    ///
    /// # Errors
    /// [`StoreError::AliasExists`] when a live alias has the name, [`StoreError::KeyExists`]
    /// when a live version has one of the kids.
    async fn create(&self, tenant: &TenantContext, alias: &AliasRecord) -> Result<(), StoreError>;

    /// The live alias named `alias`.
    ///
    /// # Errors
    /// When the database fails.
    async fn alias(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Option<AliasRecord>, StoreError>;

    /// The live alias holding a version with `kid` (destroyed versions included).
    ///
    /// # Errors
    /// When the database fails.
    async fn alias_by_kid(
        &self,
        tenant: &TenantContext,
        kid: &Kid,
    ) -> Result<Option<AliasRecord>, StoreError>;

    /// Every live alias, by name.
    ///
    /// # Errors
    /// When the database fails.
    async fn aliases(&self, tenant: &TenantContext) -> Result<Vec<AliasRecord>, StoreError>;

    /// Makes a new version active and records the rotation: the staged pre-active version
    /// if there is one, else `new` as the alias's next version. The previous active version
    /// retires, verifiable until `meta.at` plus the overlap. When a staged version is
    /// activated, `new` is not stored (the caller discards it: the returned record's active
    /// kid tells).
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`], [`StoreError::KeyExists`], and
    /// [`StoreError::NothingStaged`] when `new` is `None` and nothing is staged.
    async fn rotate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        new: Option<&NewVersion>,
        meta: &RotationMeta,
    ) -> Result<AliasRecord, StoreError>;

    /// Adds `new` as the alias's next version, pre-active: published with the alias's keys
    /// but not used until a rotation activates it.
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`], [`StoreError::KeyExists`], and
    /// [`StoreError::AlreadyStaged`] when a version is staged already.
    async fn stage(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        new: &NewVersion,
        at: DateTime<Utc>,
    ) -> Result<AliasRecord, StoreError>;

    /// The rotations of the live alias, oldest first.
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`].
    async fn rotations(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, StoreError>;

    /// Destroys one version (by kid; not the active one) or, for `None`, every version and
    /// the alias itself. Destroyed versions stay as tombstones without their handle. Returns
    /// the handles that were removed, for the provider to destroy.
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`], [`StoreError::UnknownKid`],
    /// [`StoreError::KeyInUse`] while the alias is held, [`StoreError::ActiveVersion`].
    async fn destroy(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        kid: Option<&Kid>,
        at: DateTime<Utc>,
    ) -> Result<Vec<KeyHandle>, StoreError>;

    /// Records that `holder` uses the alias (idempotent).
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`].
    async fn hold(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes `holder`'s hold (idempotent).
    ///
    /// # Errors
    /// [`StoreError::AliasNotFound`].
    async fn release(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        holder: &str,
    ) -> Result<(), StoreError>;
}

/// The store for `tenancy`'s backend.
#[must_use]
pub fn for_tenancy(tenancy: &Tenancy) -> std::sync::Arc<dyn KeyReferenceStore> {
    match tenancy.databases() {
        TenantDatabases::Sqlite(_) => {
            std::sync::Arc::new(sqlite::SqliteKeyStore::new(tenancy.clone()))
        }
        _ => std::sync::Arc::new(postgres::PgKeyStore::new(tenancy.clone())),
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AliasRow {
    pub(crate) id: Uuid,
    pub(crate) alias: String,
    pub(crate) usage: String,
    pub(crate) provider_id: Option<String>,
    pub(crate) external: bool,
    pub(crate) overlap_secs: i64,
    pub(crate) period_secs: Option<i64>,
    pub(crate) pre_active_secs: i64,
    pub(crate) last_version: i32,
    pub(crate) created_at: DateTime<Utc>,
}

pub(crate) const ALIAS_COLUMNS: &str = "id, alias, usage, provider_id, external, overlap_secs, \
     period_secs, pre_active_secs, last_version, created_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub(crate) alias_id: Uuid,
    pub(crate) version: i32,
    pub(crate) provider_id: Option<String>,
    pub(crate) handle: Option<String>,
    pub(crate) kid: String,
    pub(crate) public_jwk: String,
    pub(crate) state: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) activated_at: Option<DateTime<Utc>>,
    pub(crate) retired_at: Option<DateTime<Utc>>,
    pub(crate) verify_until: Option<DateTime<Utc>>,
    pub(crate) destroyed_at: Option<DateTime<Utc>>,
}

pub(crate) const VERSION_COLUMNS: &str = "alias_id, version, provider_id, handle, kid, \
     public_jwk, state, created_at, activated_at, retired_at, verify_until, destroyed_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RotationRow {
    pub(crate) from_version: Option<i32>,
    pub(crate) to_version: i32,
    pub(crate) reason: String,
    pub(crate) actor: String,
    pub(crate) at: DateTime<Utc>,
}

const fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt { what }
}

pub(crate) fn state_from_str(state: &str) -> Result<KeyState, StoreError> {
    Ok(match state {
        "pre-active" => KeyState::PreActive,
        "active" => KeyState::Active,
        "retired" => KeyState::Retired,
        "destroyed" => KeyState::Destroyed,
        _ => return Err(corrupt("unknown key state")),
    })
}

pub(crate) fn usage_to_string(usage: KeyUsage) -> Result<String, StoreError> {
    serde_json::to_string(&usage).map_err(|_| corrupt("usage"))
}

pub(crate) fn version_of(version: u32) -> Result<i32, StoreError> {
    i32::try_from(version).map_err(|_| corrupt("version number"))
}

pub(crate) fn assemble(
    row: AliasRow,
    versions: Vec<VersionRow>,
) -> Result<AliasRecord, StoreError> {
    let alias: KeyAlias = row.alias.parse().map_err(|_| corrupt("alias"))?;
    let usage: KeyUsage = serde_json::from_str(&row.usage).map_err(|_| corrupt("usage"))?;
    let provider = row
        .provider_id
        .map(ProviderId::new)
        .transpose()
        .map_err(|_| corrupt("provider id"))?;
    let rotation = RotationPolicy {
        overlap_secs: u64::try_from(row.overlap_secs).map_err(|_| corrupt("overlap"))?,
        period_secs: row
            .period_secs
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("period"))?,
        pre_active_secs: u64::try_from(row.pre_active_secs)
            .map_err(|_| corrupt("pre-activation"))?,
    };
    let mut records = Vec::with_capacity(versions.len());
    for v in versions {
        if v.alias_id != row.id {
            continue;
        }
        let handle = v
            .handle
            .map(|h| serde_json::from_str::<KeyHandle>(&h))
            .transpose()
            .map_err(|_| corrupt("key handle"))?;
        let public_jwk: Jwk =
            serde_json::from_str(&v.public_jwk).map_err(|_| corrupt("public JWK"))?;
        records.push(VersionRecord {
            version: KeyVersion {
                version: u32::try_from(v.version).map_err(|_| corrupt("version number"))?,
                kid: Kid::new(v.kid).map_err(|_| corrupt("kid"))?,
                provider: v
                    .provider_id
                    .map(ProviderId::new)
                    .transpose()
                    .map_err(|_| corrupt("provider id"))?,
                public_jwk,
                state: state_from_str(&v.state)?,
                created_at: v.created_at,
                activated_at: v.activated_at,
                retired_at: v.retired_at,
                verify_until: v.verify_until,
                destroyed_at: v.destroyed_at,
            },
            handle,
        });
    }
    records.sort_by_key(|record| std::cmp::Reverse(record.version.version));
    Ok(AliasRecord {
        id: row.id,
        alias,
        usage,
        provider,
        external: row.external,
        rotation,
        last_version: u32::try_from(row.last_version).map_err(|_| corrupt("version number"))?,
        created_at: row.created_at,
        versions: records,
    })
}

pub(crate) fn rotation_from_row(
    alias: &KeyAlias,
    row: RotationRow,
) -> Result<RotationRecord, StoreError> {
    Ok(RotationRecord {
        alias: alias.clone(),
        from_version: row
            .from_version
            .map(u32::try_from)
            .transpose()
            .map_err(|_| corrupt("version number"))?,
        to_version: u32::try_from(row.to_version).map_err(|_| corrupt("version number"))?,
        reason: match row.reason.as_str() {
            "manual" => RotationReason::Manual,
            "scheduled" => RotationReason::Scheduled,
            _ => return Err(corrupt("rotation reason")),
        },
        actor: row.actor,
        at: row.at,
    })
}

pub(crate) const fn reason_str(reason: RotationReason) -> &'static str {
    match reason {
        RotationReason::Manual => "manual",
        RotationReason::Scheduled => "scheduled",
    }
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

pub(crate) fn overlap_end(at: DateTime<Utc>, overlap_secs: u64) -> DateTime<Utc> {
    let secs = i64::try_from(overlap_secs).unwrap_or(i64::MAX);
    chrono::TimeDelta::try_seconds(secs)
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Generates the [`KeyReferenceStore`] implementation for `$store`, whose inherent
/// `begin(&TenantContext)` opens a transaction on `$conn`.
macro_rules! key_store_impl {
    ($store:ty) => {
        impl $store {
            async fn lock_alias(
                conn: &mut <Self as $crate::store::StoreBackend>::Conn,
                tenant: uuid::Uuid,
                alias: &$crate::kms::KeyAlias,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::AliasRow, $crate::store::StoreError> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE kms_key_alias SET updated_at = $1 \
                     WHERE tenant_id = $2 AND alias = $3 AND deleted_at IS NULL RETURNING {}",
                    $crate::store::ALIAS_COLUMNS
                ));
                sqlx::query_as::<_, $crate::store::AliasRow>(sql)
                    .bind(at)
                    .bind(tenant)
                    .bind(alias.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::AliasNotFound {
                        alias: alias.clone(),
                    })
            }

            async fn versions_of(
                conn: &mut <Self as $crate::store::StoreBackend>::Conn,
                alias_id: uuid::Uuid,
            ) -> Result<Vec<$crate::store::VersionRow>, $crate::store::StoreError> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM key_reference WHERE alias_id = $1 ORDER BY version DESC",
                    $crate::store::VERSION_COLUMNS
                ));
                Ok(sqlx::query_as::<_, $crate::store::VersionRow>(sql)
                    .bind(alias_id)
                    .fetch_all(&mut *conn)
                    .await?)
            }

            async fn load(
                conn: &mut <Self as $crate::store::StoreBackend>::Conn,
                row: $crate::store::AliasRow,
            ) -> Result<$crate::store::AliasRecord, $crate::store::StoreError> {
                let versions = Self::versions_of(conn, row.id).await?;
                $crate::store::assemble(row, versions)
            }

            async fn insert_version(
                conn: &mut <Self as $crate::store::StoreBackend>::Conn,
                tenant: uuid::Uuid,
                alias: &$crate::store::AliasRecord,
                record: &$crate::store::VersionRecord,
            ) -> Result<(), $crate::store::StoreError> {
                let v = &record.version;
                let handle = record
                    .handle
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|_| $crate::store::StoreError::Corrupt { what: "key handle" })?;
                let jwk = serde_json::to_string(&v.public_jwk)
                    .map_err(|_| $crate::store::StoreError::Corrupt { what: "public JWK" })?;
                let result = sqlx::query(
                    "INSERT INTO key_reference (alias_id, tenant_id, alias, version, provider_id, \
                     handle, kid, public_jwk, state, created_at, activated_at, retired_at, \
                     verify_until, destroyed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(alias.id)
                .bind(tenant)
                .bind(alias.alias.to_string())
                .bind($crate::store::version_of(v.version)?)
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
                    Err(err) if $crate::store::is_unique_violation(&err) => {
                        Err($crate::store::StoreError::KeyExists)
                    }
                    Err(err) => Err(err.into()),
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::KeyReferenceStore for $store {
            async fn create(
                &self,
                tenant: &edk_tenancy::TenantContext,
                alias: &$crate::store::AliasRecord,
            ) -> Result<(), $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let result = sqlx::query(
                    "INSERT INTO kms_key_alias (id, tenant_id, alias, usage, provider_id, \
                     external, overlap_secs, period_secs, last_version, created_at, updated_at, \
                     pre_active_secs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
                )
                .bind(alias.id)
                .bind(tenant_id)
                .bind(alias.alias.to_string())
                .bind($crate::store::usage_to_string(alias.usage)?)
                .bind(alias.provider.as_ref().map(|p| p.as_str().to_owned()))
                .bind(alias.external)
                .bind(i64::try_from(alias.rotation.overlap_secs).unwrap_or(i64::MAX))
                .bind(
                    alias
                        .rotation
                        .period_secs
                        .map(|p| i64::try_from(p).unwrap_or(i64::MAX)),
                )
                .bind($crate::store::version_of(alias.last_version)?)
                .bind(alias.created_at)
                .bind(i64::try_from(alias.rotation.pre_active_secs).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await;
                match result {
                    Ok(_) => {}
                    Err(err) if $crate::store::is_unique_violation(&err) => {
                        return Err($crate::store::StoreError::AliasExists {
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
                alias: &$crate::kms::KeyAlias,
            ) -> Result<Option<$crate::store::AliasRecord>, $crate::store::StoreError> {
                let mut tx = self.begin(tenant).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM kms_key_alias \
                     WHERE tenant_id = $1 AND alias = $2 AND deleted_at IS NULL",
                    $crate::store::ALIAS_COLUMNS
                ));
                let row = sqlx::query_as::<_, $crate::store::AliasRow>(sql)
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
            ) -> Result<Option<$crate::store::AliasRecord>, $crate::store::StoreError> {
                let mut tx = self.begin(tenant).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM kms_key_alias WHERE tenant_id = $1 AND deleted_at IS NULL \
                     AND id IN (SELECT alias_id FROM key_reference \
                     WHERE tenant_id = $1 AND kid = $2)",
                    $crate::store::ALIAS_COLUMNS
                ));
                let row = sqlx::query_as::<_, $crate::store::AliasRow>(sql)
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
            ) -> Result<Vec<$crate::store::AliasRecord>, $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM kms_key_alias WHERE tenant_id = $1 AND deleted_at IS NULL \
                     ORDER BY alias",
                    $crate::store::ALIAS_COLUMNS
                ));
                let rows = sqlx::query_as::<_, $crate::store::AliasRow>(sql)
                    .bind(tenant_id)
                    .fetch_all(&mut *tx)
                    .await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM key_reference WHERE tenant_id = $1",
                    $crate::store::VERSION_COLUMNS
                ));
                let mut versions = sqlx::query_as::<_, $crate::store::VersionRow>(sql)
                    .bind(tenant_id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut records = Vec::with_capacity(rows.len());
                for row in rows {
                    let (mine, rest): (Vec<_>, Vec<_>) =
                        versions.into_iter().partition(|v| v.alias_id == row.id);
                    versions = rest;
                    records.push($crate::store::assemble(row, mine)?);
                }
                Ok(records)
            }

            async fn rotate(
                &self,
                tenant: &edk_tenancy::TenantContext,
                alias: &$crate::kms::KeyAlias,
                new: Option<&$crate::store::NewVersion>,
                meta: &$crate::store::RotationMeta,
            ) -> Result<$crate::store::AliasRecord, $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let row = Self::lock_alias(&mut tx, tenant_id, alias, meta.at).await?;
                let current = Self::load(&mut tx, row).await?;
                let staged = current.staged().map(|v| v.version.version);
                let previous = current.active().map(|v| v.version.version);
                let verify_until =
                    $crate::store::overlap_end(meta.at, current.rotation.overlap_secs);
                sqlx::query(
                    "UPDATE key_reference SET state = 'retired', retired_at = $1, \
                     verify_until = $2 WHERE alias_id = $3 AND state = 'active'",
                )
                .bind(meta.at)
                .bind(verify_until)
                .bind(current.id)
                .execute(&mut *tx)
                .await?;
                let next = match (staged, new) {
                    (Some(version), _) => {
                        sqlx::query(
                            "UPDATE key_reference SET state = 'active', activated_at = $1 \
                             WHERE alias_id = $2 AND version = $3",
                        )
                        .bind(meta.at)
                        .bind(current.id)
                        .bind($crate::store::version_of(version)?)
                        .execute(&mut *tx)
                        .await?;
                        version
                    }
                    (None, Some(new)) => {
                        let next = current.last_version.saturating_add(1);
                        let record = $crate::store::VersionRecord {
                            version: $crate::kms::KeyVersion {
                                version: next,
                                kid: new.handle.kid().clone(),
                                provider: Some(new.handle.provider().clone()),
                                public_jwk: new.public_jwk.clone(),
                                state: $crate::kms::KeyState::Active,
                                created_at: meta.at,
                                activated_at: Some(meta.at),
                                retired_at: None,
                                verify_until: None,
                                destroyed_at: None,
                            },
                            handle: Some(new.handle.clone()),
                        };
                        Self::insert_version(&mut tx, tenant_id, &current, &record).await?;
                        sqlx::query("UPDATE kms_key_alias SET last_version = $1 WHERE id = $2")
                            .bind($crate::store::version_of(next)?)
                            .bind(current.id)
                            .execute(&mut *tx)
                            .await?;
                        next
                    }
                    (None, None) => return Err($crate::store::StoreError::NothingStaged),
                };
                sqlx::query(
                    "INSERT INTO kms_key_rotation (alias_id, tenant_id, from_version, \
                     to_version, reason, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(current.id)
                .bind(tenant_id)
                .bind(previous.map($crate::store::version_of).transpose()?)
                .bind($crate::store::version_of(next)?)
                .bind($crate::store::reason_str(meta.reason))
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
                alias: &$crate::kms::KeyAlias,
                new: &$crate::store::NewVersion,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::AliasRecord, $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
                let current = Self::load(&mut tx, row).await?;
                if current.staged().is_some() {
                    return Err($crate::store::StoreError::AlreadyStaged);
                }
                let next = current.last_version.saturating_add(1);
                let record = $crate::store::VersionRecord {
                    version: $crate::kms::KeyVersion {
                        version: next,
                        kid: new.handle.kid().clone(),
                        provider: Some(new.handle.provider().clone()),
                        public_jwk: new.public_jwk.clone(),
                        state: $crate::kms::KeyState::PreActive,
                        created_at: at,
                        activated_at: None,
                        retired_at: None,
                        verify_until: None,
                        destroyed_at: None,
                    },
                    handle: Some(new.handle.clone()),
                };
                Self::insert_version(&mut tx, tenant_id, &current, &record).await?;
                sqlx::query("UPDATE kms_key_alias SET last_version = $1 WHERE id = $2")
                    .bind($crate::store::version_of(next)?)
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
                alias: &$crate::kms::KeyAlias,
            ) -> Result<Vec<$crate::kms::RotationRecord>, $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let id: Option<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT id FROM kms_key_alias \
                     WHERE tenant_id = $1 AND alias = $2 AND deleted_at IS NULL",
                )
                .bind(tenant_id)
                .bind(alias.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id,)) = id else {
                    return Err($crate::store::StoreError::AliasNotFound {
                        alias: alias.clone(),
                    });
                };
                let rows = sqlx::query_as::<_, $crate::store::RotationRow>(
                    "SELECT from_version, to_version, reason, actor, at FROM kms_key_rotation \
                     WHERE alias_id = $1 ORDER BY to_version",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|row| $crate::store::rotation_from_row(alias, row))
                    .collect()
            }

            async fn destroy(
                &self,
                tenant: &edk_tenancy::TenantContext,
                alias: &$crate::kms::KeyAlias,
                kid: Option<&edk_core::Kid>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::provider::KeyHandle>, $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
                let current = Self::load(&mut tx, row).await?;
                let (holds,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM kms_key_hold WHERE alias_id = $1")
                        .bind(current.id)
                        .fetch_one(&mut *tx)
                        .await?;
                if holds > 0 {
                    return Err($crate::store::StoreError::KeyInUse {
                        alias: alias.clone(),
                    });
                }
                let targets: Vec<&$crate::store::VersionRecord> = match kid {
                    Some(kid) => {
                        let version = current
                            .version_by_kid(kid)
                            .ok_or($crate::store::StoreError::UnknownKid)?;
                        if version.version.state == $crate::kms::KeyState::Active {
                            return Err($crate::store::StoreError::ActiveVersion);
                        }
                        vec![version]
                    }
                    None => current.versions.iter().collect(),
                };
                let mut handles = Vec::new();
                for version in targets {
                    if version.version.state == $crate::kms::KeyState::Destroyed {
                        continue;
                    }
                    sqlx::query(
                        "UPDATE key_reference SET state = 'destroyed', handle = NULL, \
                         destroyed_at = $1 WHERE alias_id = $2 AND version = $3",
                    )
                    .bind(at)
                    .bind(current.id)
                    .bind($crate::store::version_of(version.version.version)?)
                    .execute(&mut *tx)
                    .await?;
                    handles.extend(version.handle.clone());
                }
                if kid.is_none() {
                    sqlx::query("UPDATE kms_key_alias SET deleted_at = $1 WHERE id = $2")
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
                alias: &$crate::kms::KeyAlias,
                holder: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let row = Self::lock_alias(&mut tx, tenant_id, alias, at).await?;
                sqlx::query(
                    "INSERT INTO kms_key_hold (alias_id, tenant_id, holder, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (alias_id, holder) DO NOTHING",
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
                alias: &$crate::kms::KeyAlias,
                holder: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let tenant_id = *tenant.id().as_uuid();
                let mut tx = self.begin(tenant).await?;
                let id: Option<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT id FROM kms_key_alias \
                     WHERE tenant_id = $1 AND alias = $2 AND deleted_at IS NULL",
                )
                .bind(tenant_id)
                .bind(alias.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id,)) = id else {
                    return Err($crate::store::StoreError::AliasNotFound {
                        alias: alias.clone(),
                    });
                };
                sqlx::query("DELETE FROM kms_key_hold WHERE alias_id = $1 AND holder = $2")
                    .bind(id)
                    .bind(holder)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use key_store_impl;

/// The connection type of a store's backend.
pub(crate) trait StoreBackend {
    type Conn;
}
