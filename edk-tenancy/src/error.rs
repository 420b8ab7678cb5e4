//! The crate's errors.

use edk_core::{ErrorKind, HasKind, IdError, TenantId};

use crate::tenant::TenantStatus;

/// What can fail in the tenant registry, the database router and the event bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint binding is malformed.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// Another tenant already holds this (host, port, path prefix, service).
    #[error("the endpoint is already bound")]
    BindingTaken,
    /// A configuration property was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A database did not answer or refused a statement.
    #[error("database operation failed")]
    Database {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// An event could not be published or decoded.
    #[error("event bus failure: {what}")]
    Events {
        /// What failed.
        what: &'static str,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// An identifier was refused before it reached a database.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The database configuration is inconsistent.
    #[error("invalid database configuration: {reason}")]
    InvalidDatabaseConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// The transaction is in a database without the outbox: a tenant's SQLite file, or a
    /// PostgreSQL database other than the platform's.
    #[error("the event outbox is not in this transaction's database")]
    OutboxUnreachable,
    /// The tenant has no endpoint binding for this service.
    #[error("tenant has no {service} endpoint")]
    NoBinding {
        /// The service asked for.
        service: crate::endpoint::ServiceType,
    },
    /// The remote tenant directory failed: `Unavailable` when the platform cannot be reached
    /// (and nothing fresh enough is cached), `Internal` when it refused this service or
    /// answered something malformed.
    #[error("the remote tenant directory failed: {reason}")]
    RemoteDirectory {
        /// The kind of the failure.
        kind: ErrorKind,
        /// What failed.
        reason: String,
    },
    /// A scheduler job was refused when the scheduler was built.
    #[error("invalid job `{name}`: {reason}")]
    InvalidJob {
        /// The job's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A scheduler setting was refused when the scheduler was built.
    #[error("invalid scheduler: {reason}")]
    InvalidScheduler {
        /// What is wrong.
        reason: &'static str,
    },
    /// A lifecycle change that the tenant's current status does not allow.
    #[error("a {from} tenant cannot become {to}")]
    InvalidTransition {
        /// The current status.
        from: TenantStatus,
        /// The requested status.
        to: TenantStatus,
    },
    /// Applying or checking migrations failed.
    #[error(transparent)]
    Migration(#[from] MigrationError),
    /// The slug belongs to another tenant (or to a deleted one).
    #[error("tenant slug `{slug}` is taken")]
    SlugTaken {
        /// The caller's slug.
        slug: edk_core::TenantSlug,
    },
    /// The tenant exists but does not serve traffic (provisioning, suspended or deleted).
    #[error("tenant {tenant} is not active")]
    TenantNotActive {
        /// The caller's tenant id.
        tenant: TenantId,
    },
    /// No tenant has this id or slug.
    #[error("tenant not found")]
    TenantNotFound,
}

impl Error {
    #[cfg(feature = "postgres")]
    pub(crate) fn events(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Events {
            what,
            source: Some(Box::new(source)),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Self::Database { source }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Binding(_) | Self::Id(_) => ErrorKind::InvalidInput,
            Self::BindingTaken | Self::InvalidTransition { .. } | Self::SlugTaken { .. } => {
                ErrorKind::Conflict
            }
            Self::Config(err) => err.kind(),
            Self::Database { source } => sqlx_kind(source),
            Self::Events { .. } => ErrorKind::Unavailable,
            Self::RemoteDirectory { kind, .. } => *kind,
            Self::InvalidDatabaseConfig { .. }
            | Self::InvalidJob { .. }
            | Self::InvalidScheduler { .. }
            | Self::OutboxUnreachable => ErrorKind::Internal,
            Self::Migration(err) => err.kind(),
            Self::NoBinding { .. } | Self::TenantNotActive { .. } | Self::TenantNotFound => {
                ErrorKind::NotFound
            }
        }
    }
}

/// Why a request could not be routed to a tenant.
///
/// The `Display` of every variant is deliberately the same for an unknown endpoint and a
/// tenant that does not serve: a caller learns nothing about which tenants exist.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The request's host, port or path is not well formed.
    #[error("the request's {part} is malformed")]
    Malformed {
        /// Which part: `host`, `port`, `path` or `scheme`.
        part: &'static str,
    },
    /// No binding matches the endpoint.
    #[error("no tenant is bound to this endpoint")]
    NotBound,
    /// A binding matches, but its tenant is provisioning, suspended or deleted.
    #[error("no tenant is bound to this endpoint")]
    NotServing,
    /// The registry could not be read.
    #[error("tenant routing is unavailable")]
    Store(#[source] Box<Error>),
}

impl HasKind for ResolveError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed { .. } => ErrorKind::InvalidInput,
            Self::NotBound | Self::NotServing => ErrorKind::NotFound,
            Self::Store(err) => match err.kind() {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        }
    }
}

impl From<Error> for ResolveError {
    fn from(err: Error) -> Self {
        Self::Store(Box::new(err))
    }
}

/// Why an endpoint binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The host is not a valid DNS name (IP literals are refused too).
    #[error("binding host is not a valid DNS name")]
    Host,
    /// Plain `http` was asked for a host that is not a loopback host.
    #[error(
        "plain http is allowed only for loopback hosts: localhost, *.localhost, 127.0.0.0/8 \
         and [::1]"
    )]
    HttpNotLoopback,
    /// An `https` URL was asked of a binding that advertises plain `http`.
    #[error("the binding advertises plain http URLs, not https")]
    NotHttps,
    /// The path prefix has a segment outside `[a-z0-9][a-z0-9._~-]*`, or a reserved one.
    #[error("binding path prefix is malformed: {reason}")]
    PathPrefix {
        /// What rule was broken.
        reason: &'static str,
    },
    /// The port is zero.
    #[error("binding port must not be zero")]
    Port,
    /// The scheme is unknown.
    #[error("unknown endpoint scheme `{value}`")]
    Scheme {
        /// The caller's input.
        value: String,
    },
    /// The service type is unknown.
    #[error("unknown service type `{value}`")]
    Service {
        /// The caller's input.
        value: String,
    },
    /// The well-known layout is unknown.
    #[error("unknown well-known layout `{value}`")]
    WellKnownLayout {
        /// The caller's input.
        value: String,
    },
}

/// Why a configuration property was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two keys with the same name were registered.
    #[error("configuration key `{key}` is registered twice")]
    DuplicateKey {
        /// The key.
        key: &'static str,
    },
    /// The value does not have the key's type or breaks its rule.
    #[error("invalid value for configuration key `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// What rule was broken.
        reason: String,
    },
    /// The key name is malformed (keys are `[a-z][a-z0-9_.-]*`, at most 128 characters).
    #[error("configuration key name `{key}` is malformed")]
    MalformedKey {
        /// The key.
        key: &'static str,
    },
    /// No such key is registered.
    #[error("unknown configuration key `{key}`")]
    UnknownKey {
        /// The caller's key.
        key: String,
    },
    /// The property changed since the version the caller read.
    #[error("configuration key `{key}` changed since version {expected}")]
    VersionConflict {
        /// The key.
        key: String,
        /// The version the caller expected.
        expected: i64,
    },
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::DuplicateKey { .. } | Self::MalformedKey { .. } => ErrorKind::Internal,
            Self::InvalidValue { .. } => ErrorKind::InvalidInput,
            Self::UnknownKey { .. } => ErrorKind::NotFound,
            Self::VersionConflict { .. } => ErrorKind::Conflict,
        }
    }
}

/// Why migrations could not be registered or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// An applied migration's SQL differs from the one this build carries.
    #[error(
        "migration {component} {version} in `{schema}` was changed after it was applied \
         (checksum differs); refusing to start: restore the original migration file and add \
         a new migration instead"
    )]
    ChecksumMismatch {
        /// The crate that owns the migration.
        component: String,
        /// The migration's version.
        version: i64,
        /// The schema (or SQLite file) where it was applied.
        schema: String,
    },
    /// A component name is malformed or registered twice.
    #[error("migration component `{component}` is malformed or registered twice")]
    Component {
        /// The component.
        component: &'static str,
    },
    /// A migration kind this crate does not apply (reversible or outside a transaction).
    #[error("migration {component} {version} is not a plain, transactional up migration")]
    Unsupported {
        /// The crate that owns the migration.
        component: &'static str,
        /// The migration's version.
        version: i64,
    },
    /// The database records a migration this build does not know: it was written by a newer
    /// build.
    #[error(
        "`{schema}` has migration {component} {version} that this build does not know; \
         refusing to start an older build against a newer database"
    )]
    UnknownApplied {
        /// The crate that owns the migration.
        component: String,
        /// The migration's version.
        version: i64,
        /// The schema (or SQLite file).
        schema: String,
    },
}

impl HasKind for MigrationError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

pub(crate) fn sqlx_kind(err: &sqlx::Error) -> ErrorKind {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        },
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    }
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_suspended_endpoints_read_the_same() {
        assert_eq!(
            ResolveError::NotBound.to_string(),
            ResolveError::NotServing.to_string()
        );
        assert_eq!(ResolveError::NotServing.kind(), ErrorKind::NotFound);
    }
}
