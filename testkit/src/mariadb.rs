//! A MariaDB (or MySQL) database that exists for one test, on the server named by
//! [`MARIADB_URL_ENV`] (default `mysql://root@127.0.0.1:3306`, which `scripts/test` starts).

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The variable naming the MariaDB server tests create their databases on.
pub const MARIADB_URL_ENV: &str = "EDK_TEST_MARIADB_URL";

/// The server used when [`MARIADB_URL_ENV`] is unset.
pub const DEFAULT_MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

/// A MariaDB database for one test, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestMariaDb {
    name: String,
    admin_url: String,
}

impl TestMariaDb {
    /// Creates a new, empty database (`edk_test_<32 hex>`).
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create the database.
    pub async fn new() -> Self {
        let admin_url =
            std::env::var(MARIADB_URL_ENV).unwrap_or_else(|_| DEFAULT_MARIADB_URL.to_owned());
        let name = format!("edk_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_connection(&admin_url).await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("cannot create MariaDB test database {name}: {err}"));
        conn.close().await.ok();
        Self { name, admin_url }
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL (`mysql://…/edk_test_<32 hex>`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}/{}", self.admin_url.trim_end_matches('/'), self.name)
    }

    /// A new pool on the database.
    ///
    /// # Panics
    /// When the URL does not parse.
    #[must_use]
    pub fn pool(&self) -> MySqlPool {
        let options: MySqlConnectOptions = self.admin_url.parse().expect("MariaDB URL");
        MySqlPoolOptions::new()
            .max_connections(8)
            .connect_lazy_with(options.database(&self.name).disable_statement_logging())
    }
}

impl Drop for TestMariaDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let admin_url = self.admin_url.clone();
        // Drop cannot await; a runtime of its own on another thread.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping a test database");
            runtime.block_on(async {
                let mut conn = admin_connection(&admin_url).await;
                if let Err(err) =
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .execute(&mut conn)
                        .await
                {
                    eprintln!("cannot drop MariaDB test database {name}: {err}");
                }
                conn.close().await.ok();
            });
        });
        let _ = dropper.join();
    }
}

async fn admin_connection(url: &str) -> MySqlConnection {
    let options: MySqlConnectOptions = url.parse().expect("MariaDB URL");
    options
        .disable_statement_logging()
        .connect()
        .await
        .unwrap_or_else(|err| panic!("cannot connect to the test MariaDB server: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn databases_are_created_and_dropped() {
        let db = TestMariaDb::new().await;
        let name = db.name().to_owned();
        let pool = db.pool();
        let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one, 1);
        pool.close().await;
        drop(db);
        let mut conn = admin_connection(DEFAULT_MARIADB_URL).await;
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
        )
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(count, 0);
    }
}
