//! Per-crate migrations for both backends, applied per tenant schema (or file).
//!
//! Each crate registers a [`MigrationSet`]: its component name, whether the tables belong to
//! the platform database or to every tenant, and its ordered migrations for PostgreSQL and
//! SQLite (usually `sqlx::migrate!("migrations/postgres")` and
//! `sqlx::migrate!("migrations/sqlite")`, same version numbers on both). Applied migrations
//! are recorded in a ledger table, `edk_migration_ledger (component, version, description,
//! checksum, applied_at)`, one per schema or file: sqlx's own `_sqlx_migrations` holds a
//! single sequence and cannot tell crates apart.

use std::collections::{HashMap, HashSet};
use std::fmt;

use sqlx::migrate::{MigrationType, Migrator};

use crate::error::MigrationError;

/// Which database a crate's tables live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MigrationScope {
    /// The platform database (registry, operator state): applied once at start-up.
    Platform,
    /// Every tenant's schema (PostgreSQL) or file (SQLite): applied at provisioning and at
    /// start-up.
    Tenant,
}

/// One crate's ordered migrations for both backends.
#[derive(Clone)]
pub struct MigrationSet {
    component: &'static str,
    scope: MigrationScope,
    postgres: Vec<Migration>,
    sqlite: Vec<Migration>,
}

impl fmt::Debug for MigrationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationSet")
            .field("component", &self.component)
            .field("scope", &self.scope)
            .field("postgres", &self.postgres.len())
            .field("sqlite", &self.sqlite.len())
            .finish()
    }
}

impl MigrationSet {
    /// The migrations of `component` (`[a-z][a-z0-9-]*`) from two sqlx migrators.
    ///
    /// # Errors
    /// [`MigrationError::Component`] for a malformed name, [`MigrationError::Unsupported`]
    /// for reversible migrations or migrations that opt out of the transaction.
    pub fn new(
        component: &'static str,
        scope: MigrationScope,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<Self, MigrationError> {
        let convert = |migrator: &Migrator| {
            migrator
                .iter()
                .map(|m| {
                    if m.no_tx || m.migration_type != MigrationType::Simple {
                        return Err(MigrationError::Unsupported {
                            component,
                            version: m.version,
                        });
                    }
                    Ok(Migration {
                        version: m.version,
                        description: m.description.to_string(),
                        sql: m.sql.as_str().to_owned(),
                        checksum: m.checksum.to_vec(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Self::from_migrations(component, scope, convert(postgres)?, convert(sqlite)?)
    }

    /// The migrations of `component` given as `(version, description, sql)`; checksums are
    /// computed as sqlx computes them.
    ///
    /// # Errors
    /// As [`MigrationSet::new`].
    pub fn from_sql(
        component: &'static str,
        scope: MigrationScope,
        postgres: &[(i64, &str, &str)],
        sqlite: &[(i64, &str, &str)],
    ) -> Result<Self, MigrationError> {
        let convert = |list: &[(i64, &str, &str)]| {
            list.iter()
                .map(|&(version, description, sql)| {
                    let migration = sqlx::migrate::Migration::new(
                        version,
                        description.to_owned().into(),
                        MigrationType::Simple,
                        sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql.to_owned())),
                        false,
                    );
                    Migration {
                        version,
                        description: description.to_owned(),
                        sql: sql.to_owned(),
                        checksum: migration.checksum.to_vec(),
                    }
                })
                .collect()
        };
        Self::from_migrations(component, scope, convert(postgres), convert(sqlite))
    }

    fn from_migrations(
        component: &'static str,
        scope: MigrationScope,
        postgres: Vec<Migration>,
        sqlite: Vec<Migration>,
    ) -> Result<Self, MigrationError> {
        let mut bytes = component.bytes();
        let valid = component.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(MigrationError::Component { component });
        }
        for list in [&postgres, &sqlite] {
            if list
                .windows(2)
                .any(|w| matches!(w, [a, b] if a.version >= b.version))
            {
                return Err(MigrationError::Component { component });
            }
        }
        Ok(Self {
            component,
            scope,
            postgres,
            sqlite,
        })
    }

    /// The component name.
    #[must_use]
    pub const fn component(&self) -> &'static str {
        self.component
    }

    /// Where the tables live.
    #[must_use]
    pub const fn scope(&self) -> MigrationScope {
        self.scope
    }

    pub(crate) fn migrations(&self, backend: Backend) -> &[Migration] {
        match backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => &self.postgres,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => &self.sqlite,
        }
    }
}

/// Checks that no two sets share a component.
pub(crate) fn check_unique(sets: &[MigrationSet]) -> Result<(), MigrationError> {
    let mut seen = HashSet::new();
    for set in sets {
        if !seen.insert(set.component) {
            return Err(MigrationError::Component {
                component: set.component,
            });
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

#[derive(Clone, Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: String,
    pub(crate) sql: String,
    pub(crate) checksum: Vec<u8>,
}

/// A ledger row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub(crate) component: String,
    pub(crate) version: i64,
    pub(crate) checksum: Vec<u8>,
}

/// The migrations still to apply, in order, after checking what the ledger records.
pub(crate) fn pending<'a>(
    sets: &'a [MigrationSet],
    backend: Backend,
    applied: &[LedgerRow],
    schema: &str,
) -> Result<Vec<(&'static str, &'a Migration)>, MigrationError> {
    let applied_by_key: HashMap<(&str, i64), &[u8]> = applied
        .iter()
        .map(|row| {
            (
                (row.component.as_str(), row.version),
                row.checksum.as_slice(),
            )
        })
        .collect();
    let known: HashSet<(&str, i64)> = sets
        .iter()
        .flat_map(|set| {
            set.migrations(backend)
                .iter()
                .map(|m| (set.component, m.version))
        })
        .collect();
    let components: HashSet<&str> = sets.iter().map(|set| set.component).collect();
    if let Some(row) = applied.iter().find(|row| {
        components.contains(row.component.as_str())
            && !known.contains(&(row.component.as_str(), row.version))
    }) {
        return Err(MigrationError::UnknownApplied {
            component: row.component.clone(),
            version: row.version,
            schema: schema.to_owned(),
        });
    }
    let mut pending = Vec::new();
    for set in sets {
        for migration in set.migrations(backend) {
            match applied_by_key.get(&(set.component, migration.version)) {
                Some(checksum) if *checksum == migration.checksum.as_slice() => {}
                Some(_) => {
                    return Err(MigrationError::ChecksumMismatch {
                        component: set.component.to_owned(),
                        version: migration.version,
                        schema: schema.to_owned(),
                    });
                }
                None => pending.push((set.component, migration)),
            }
        }
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(sql: &str) -> MigrationSet {
        MigrationSet::from_sql(
            "edk-test",
            MigrationScope::Tenant,
            &[(1, "one", "CREATE TABLE a (id INT)"), (2, "two", sql)],
            &[(1, "one", "CREATE TABLE a (id INT)")],
        )
        .unwrap()
    }

    fn row(version: i64, set: &MigrationSet) -> LedgerRow {
        let migration = set
            .migrations(Backend::Postgres)
            .iter()
            .find(|m| m.version == version)
            .unwrap();
        LedgerRow {
            component: "edk-test".to_owned(),
            version,
            checksum: migration.checksum.clone(),
        }
    }

    #[test]
    fn applied_migrations_are_skipped() {
        let sets = [set("CREATE TABLE b (id INT)")];
        let applied = [row(1, &sets[0])];
        let todo = pending(&sets, Backend::Postgres, &applied, "s").unwrap();
        assert_eq!(todo.len(), 1);
        assert_eq!(todo[0].1.version, 2);
    }

    #[test]
    fn a_changed_checksum_refuses() {
        let applied = [row(2, &set("CREATE TABLE b (id INT)"))];
        let changed = [set("CREATE TABLE b (id BIGINT)")];
        let err = pending(&changed, Backend::Postgres, &applied, "tenant_x").unwrap_err();
        assert!(matches!(
            err,
            MigrationError::ChecksumMismatch { version: 2, .. }
        ));
        assert!(err.to_string().contains("tenant_x"));
    }

    #[test]
    fn a_migration_from_a_newer_build_refuses() {
        let sets = [set("CREATE TABLE b (id INT)")];
        let mut future = row(1, &sets[0]);
        future.version = 9;
        assert!(matches!(
            pending(&sets, Backend::Postgres, &[future], "s"),
            Err(MigrationError::UnknownApplied { .. })
        ));
    }

    #[test]
    fn components_and_order_are_checked() {
        assert!(MigrationSet::from_sql("Bad", MigrationScope::Tenant, &[], &[]).is_err());
        assert!(
            MigrationSet::from_sql(
                "ok",
                MigrationScope::Tenant,
                &[(2, "", ""), (1, "", "")],
                &[]
            )
            .is_err()
        );
        let a = MigrationSet::from_sql("ok", MigrationScope::Tenant, &[], &[]).unwrap();
        assert!(check_unique(&[a.clone(), a]).is_err());
    }
}
