//! The key store on SQLite: the tables live in each tenant's file.

use edk_tenancy::store::sqlite::SqliteTenantTx;
use edk_tenancy::{Tenancy, TenantContext, TenantTx};
use sqlx::SqliteConnection;

use super::{StoreBackend, StoreError, key_store_impl};

/// [`KeyReferenceStore`](super::KeyReferenceStore) on SQLite, file per tenant.
#[derive(Clone, Debug)]
pub struct SqliteKeyStore {
    tenancy: Tenancy,
}

impl SqliteKeyStore {
    /// A store over `tenancy`'s SQLite tenant files.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    async fn begin(&self, tenant: &TenantContext) -> Result<SqliteTenantTx, StoreError> {
        match self.tenancy.databases().begin(tenant).await? {
            TenantTx::Sqlite(tx) => Ok(tx),
            _ => Err(StoreError::WrongBackend),
        }
    }
}

impl StoreBackend for SqliteKeyStore {
    type Conn = SqliteConnection;
}

key_store_impl!(SqliteKeyStore);
