//! Integration tests of edk-tenancy on real PostgreSQL (a fresh database per test) and on
//! SQLite (a temporary directory per test).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod conformance;
mod isolation;
mod migrations;
mod outbox;
mod replicas;
mod routing;
mod scheduler;

use std::sync::Arc;

use edk_core::FixedClock;
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenancyBuilder};
use secrecy::SecretString;

/// A clock fixed at 2023-11-14.
pub(crate) fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::at_unix(1_700_000_000))
}

/// PostgreSQL configuration for one test database, with small pools.
pub(crate) fn postgres(url: &str) -> DatabaseConfig {
    let mut config = PostgresConfig::new(SecretString::from(url));
    config.max_connections = 5;
    DatabaseConfig::Postgres(config)
}

pub(crate) fn sqlite(dir: &std::path::Path) -> DatabaseConfig {
    DatabaseConfig::Sqlite(SqliteConfig::new(dir))
}

pub(crate) async fn build(builder: TenancyBuilder) -> Tenancy {
    builder.build().await.expect("tenancy")
}
