#![doc = include_str!("../README.md")]

pub mod claims;
pub mod config;
pub mod credential;
pub mod error;
pub mod grant;
pub mod issuer;
pub mod metadata;
pub mod offer;
pub mod proof;
pub mod request;
pub mod status;
pub mod store;

pub use claims::{CLAIMS_ENDPOINT, ClaimsSource, HttpClaimsSource};
pub use config::{CredentialConfiguration, FormatProfile, IssuanceSettings, KeyIdentification};
pub use credential::{CredentialInput, issue_credential};
pub use error::{ConfigError, CredentialErrorCode, IssueError, ProtocolError, StoreError};
pub use grant::{IssuerGrantPolicy, WALLET_INITIATED};
pub use issuer::{
    CreatedOffer, CredentialAnswer, CredentialResponse, Encryption, Issuer, IssuerEndpoints,
    IssuerOptions, Nonce, OfferGrants, OfferRequest, RequestBody, SIGNED_METADATA_TYP,
};
pub use metadata::IssuerMetadata;
pub use offer::CredentialOffer;
pub use proof::{ProofPolicy, ProvenKey, verify_jwt_proof};
pub use request::{CredentialRequest, Proofs, RequestOptions, RequestedCredential};
pub use status::{
    CredentialSelector, CredentialStatus, IssuedCredential, PublishedToken, StatusAction,
    StatusListInfo, StatusPurpose, StatusSettings,
};
pub use store::{
    HolderKey, IssuanceCompletion, IssuedFilter, IssuerStore, NewIssuedCredential, NewTransaction,
    Notification, NotificationEvent, PendingTransaction, SESSION_RETENTION, Session,
    SessionRetention, SessionStatus, SqlStore, StatusStore, StatusUpdate, StoredConfiguration,
    TransactionOutcome, TransactionState,
};

use edk_tenancy::{MigrationScope, MigrationSet};

/// The migration component name of this crate's tables.
pub const MIGRATION_COMPONENT: &str = "edk-oid4vci";

/// This crate's tenant-scope migrations, for `TenancyBuilder::migrations`.
///
/// # Errors
/// Never for the embedded migrations; the error type is the tenancy's.
pub fn migrations() -> Result<MigrationSet, edk_tenancy::error::MigrationError> {
    MigrationSet::new(
        MIGRATION_COMPONENT,
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
}
