//! Pending logins in the tenant's database (table `oauth_federation_login`).

use edk_tenancy::error::MigrationError;
use edk_tenancy::{MigrationScope, MigrationSet, Tenancy, TenantContext, TenantTx};

use super::error::FederationError;
use crate::random;

/// The migration component name of the federation tables.
pub const MIGRATION_COMPONENT: &str = "edk-oauth-federation";

/// The migrations of the federation tables (tenant scope). Register them with
/// `TenancyBuilder::migrations` next to [`crate::migrations`].
///
/// # Errors
/// Never for the embedded migrations; the error type is the tenancy's.
pub fn migrations() -> Result<MigrationSet, MigrationError> {
    MigrationSet::new(
        MIGRATION_COMPONENT,
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/federation/postgres"),
        &sqlx::migrate!("migrations/federation/sqlite"),
    )
}

/// A login sent to the upstream provider and not yet come back. `Debug` leaves out the
/// nonce and the PKCE verifier.
#[derive(Clone)]
pub(crate) struct PendingLogin {
    pub(crate) issuer: String,
    pub(crate) nonce: String,
    pub(crate) code_verifier: String,
    pub(crate) redirect_uri: String,
    pub(crate) transaction: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

type LoginRow = (String, String, String, String, String, i64, i64);

const INSERT: &str = "INSERT INTO oauth_federation_login \
    (state_hash, issuer, nonce, code_verifier, redirect_uri, transaction_id, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const PURGE: &str = "DELETE FROM oauth_federation_login WHERE expires_at < $1";
const CONSUME: &str = "DELETE FROM oauth_federation_login WHERE state_hash = $1 \
    RETURNING issuer, nonce, code_verifier, redirect_uri, transaction_id, created_at, expires_at";

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
            _ => return Err(FederationError::Unsupported("this database backend")),
        }
    };
}

/// Stores a pending login under `state` (kept only as its digest), dropping expired ones.
pub(crate) async fn insert(
    tenancy: &Tenancy,
    tenant: &TenantContext,
    state: &str,
    login: &PendingLogin,
) -> Result<(), FederationError> {
    let mut tx = tenancy
        .databases()
        .begin(tenant)
        .await
        .map_err(FederationError::Store)?;
    let state_hash = random::digest(state);
    with_conn!(tx, conn => {
        sqlx::query(PURGE)
            .bind(login.created_at)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
        sqlx::query(INSERT)
            .bind(&state_hash)
            .bind(&login.issuer)
            .bind(&login.nonce)
            .bind(&login.code_verifier)
            .bind(&login.redirect_uri)
            .bind(&login.transaction)
            .bind(login.created_at)
            .bind(login.expires_at)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    });
    tx.commit().await.map_err(FederationError::Store)
}

/// Takes the pending login of `state` out of the store with one `DELETE … RETURNING`, so of
/// two callbacks with the same state exactly one gets it.
pub(crate) async fn consume(
    tenancy: &Tenancy,
    tenant: &TenantContext,
    state: &str,
) -> Result<Option<PendingLogin>, FederationError> {
    let mut tx = tenancy
        .databases()
        .begin(tenant)
        .await
        .map_err(FederationError::Store)?;
    let state_hash = random::digest(state);
    let row: Option<LoginRow> = with_conn!(tx, conn => {
        sqlx::query_as(CONSUME)
            .bind(&state_hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(store_error)?
    });
    tx.commit().await.map_err(FederationError::Store)?;
    Ok(row.map(
        |(issuer, nonce, code_verifier, redirect_uri, transaction, created_at, expires_at)| {
            PendingLogin {
                issuer,
                nonce,
                code_verifier,
                redirect_uri,
                transaction,
                created_at,
                expires_at,
            }
        },
    ))
}

fn store_error(err: sqlx::Error) -> FederationError {
    FederationError::Store(edk_tenancy::Error::from(err))
}
