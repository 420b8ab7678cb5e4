//! The key store on PostgreSQL: the tables live in each tenant's schema.

use edk_tenancy::store::postgres::PgTenantTx;
use edk_tenancy::{Tenancy, TenantContext, TenantTx};
use sqlx::PgConnection;

use super::{StoreBackend, StoreError, key_store_impl};

/// [`KeyReferenceStore`](super::KeyReferenceStore) on PostgreSQL, schema per tenant.
#[derive(Clone, Debug)]
pub struct PgKeyStore {
    tenancy: Tenancy,
}

impl PgKeyStore {
    /// A store over `tenancy`'s PostgreSQL tenant databases.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self { tenancy }
    }

    async fn begin(&self, tenant: &TenantContext) -> Result<PgTenantTx, StoreError> {
        match self.tenancy.databases().begin(tenant).await? {
            TenantTx::Postgres(tx) => Ok(tx),
            _ => Err(StoreError::WrongBackend),
        }
    }
}

impl StoreBackend for PgKeyStore {
    type Conn = PgConnection;
}

key_store_impl!(PgKeyStore);
