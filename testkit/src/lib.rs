#![doc = include_str!("../README.md")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "key-services")]
pub mod azure_key_vault;
#[cfg(feature = "key-services")]
mod bearer;
#[cfg(feature = "key-services")]
pub mod csc;
#[cfg(feature = "mariadb")]
pub mod mariadb;
#[cfg(feature = "key-services")]
pub mod moto;
#[cfg(feature = "oidc-provider")]
pub mod oidc_provider;
pub mod openapi;
pub mod private_postgres;
pub mod schemathesis;
#[cfg(feature = "key-services")]
pub mod scripted;
#[cfg(feature = "key-services")]
pub mod tls;
#[cfg(feature = "key-services")]
pub mod vault_transit;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The variable naming the server (any database on it) tests create their databases on.
pub const DATABASE_URL_ENV: &str = "EDK_TEST_DATABASE_URL";

/// The server used when [`DATABASE_URL_ENV`] is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A PostgreSQL database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    admin_url: url::Url,
    url: url::Url,
}

impl TestDb {
    /// Creates a new, empty database.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create the database.
    pub async fn new() -> Self {
        let admin =
            std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let admin_url = url::Url::parse(&admin).expect("EDK_TEST_DATABASE_URL is not a URL");
        let name = format!("edk_test_{}", uuid::Uuid::new_v4().simple());
        let mut url = admin_url.clone();
        url.set_path(&format!("/{name}"));
        let mut conn = admin_connection(&admin_url).await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        conn.close().await.ok();
        Self {
            name,
            admin_url,
            url,
        }
    }

    /// The database's name (`edk_test_<32 hex>`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// A new pool on the database.
    ///
    /// # Panics
    /// When the URL does not parse.
    #[must_use]
    pub fn pool(&self) -> PgPool {
        let options: PgConnectOptions = self.url.as_str().parse().expect("test database URL");
        PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options.disable_statement_logging())
    }

    /// Drops the database now, disconnecting its sessions.
    pub async fn close(mut self) {
        let name = std::mem::take(&mut self.name);
        drop_database(&self.admin_url, &name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await; a runtime of its own on another thread works inside and outside
        // of a Tokio runtime.
        let name = std::mem::take(&mut self.name);
        if name.is_empty() {
            return;
        }
        let admin_url = self.admin_url.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping a test database");
            runtime.block_on(drop_database(&admin_url, &name));
        });
        let _ = dropper.join();
    }
}

async fn admin_connection(admin_url: &url::Url) -> PgConnection {
    let options: PgConnectOptions = admin_url.as_str().parse().expect("admin URL");
    options
        .disable_statement_logging()
        .connect()
        .await
        .unwrap_or_else(|err| panic!("cannot connect to the test PostgreSQL server: {err}"))
}

async fn drop_database(admin_url: &url::Url, name: &str) {
    let mut conn = admin_connection(admin_url).await;
    if let Err(err) = sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    {
        eprintln!("cannot drop test database {name}: {err}");
    }
    conn.close().await.ok();
}

/// A temporary directory for SQLite files, removed when dropped.
///
/// # Panics
/// When the directory cannot be created.
#[must_use]
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("edk-test-")
        .tempdir()
        .expect("temporary directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn databases_are_created_and_dropped() {
        let db = TestDb::new().await;
        let name = db.name().to_owned();
        let pool = db.pool();
        let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one, 1);
        pool.close().await;
        drop(db);
        let admin = TestDb::new().await;
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_one(&admin.pool())
                .await
                .unwrap();
        assert_eq!(count, 0);
        admin.close().await;
    }
}
