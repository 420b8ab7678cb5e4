//! The DIDs a tenant publishes (feature `store`): records, verification methods (KMS key
//! aliases, never key material), services and did:webvh log entries with the witness file,
//! on the tenant workload databases of edk-tenancy (PostgreSQL and SQLite).
//!
//! [`migrations`] must be registered with the tenancy (`TenancyBuilder::migrations`);
//! [`SqlDidStore`] implements [`DidStore`] on both backends; [`HostedDids`] resolves the
//! DIDs held here without a network round trip.

mod hosted;
mod sql;

use std::fmt;

use async_trait::async_trait;
use edk_core::Did;
use edk_kms::KeyAlias;
use edk_tenancy::{MigrationScope, MigrationSet, TenantContext};
use serde_json::Value;

use crate::document::Relationship;
pub use crate::error::StoreError;

pub use hosted::{HostedDids, HostedLogs, HostedWeb, PublishedFile, locate, location_of_url};
pub use sql::SqlDidStore;

/// The migration component name of this crate's tables.
pub const MIGRATION_COMPONENT: &str = "edk-did";

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

/// One DID a tenant controls, with everything needed to publish it again.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredDid {
    /// The DID.
    pub did: Did,
    /// The method name without `did:` (`web`, `webvh`, `key`, `jwk`).
    pub method: String,
    /// The URL path of the published files below the host, without leading or trailing
    /// `/` (`""` for `/.well-known`); `None` for methods that publish nothing.
    pub location: Option<String>,
    /// A short name, the stem of the DID's KMS key aliases (`did.<name>`).
    pub name: String,
    /// The current DID document (for did:webvh the state of the last published entry, or of
    /// the first entry while it awaits its witnesses).
    pub document: Value,
    /// Whether the DID is deactivated.
    pub deactivated: bool,
    /// The did:webvh update key's alias.
    pub update_key: Option<KeyAlias>,
    /// Incremented by every change; updates are conditional on it.
    pub revision: i64,
    /// When the DID was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed (Unix seconds).
    pub updated_at: i64,
    /// Its verification methods, in document order.
    pub verification_methods: Vec<StoredMethod>,
    /// Its services, in document order.
    pub services: Vec<StoredService>,
    /// The did:webvh log, one JSON line per entry, oldest first.
    pub log: Vec<String>,
    /// The did:webvh witness file, when witnesses are used.
    pub witness: Option<String>,
    /// Signed did:webvh log entries held back until their witnesses approve them (did:webvh
    /// §"DID Witnesses": witness proofs are published before the entry), one JSON line
    /// each, oldest first; they follow `log` and are not published.
    pub pending: Vec<String>,
}

impl StoredDid {
    /// A new record at revision 1 with no methods, services or log.
    #[must_use]
    pub fn new(did: Did, method: &str, name: &str, document: Value, now: i64) -> Self {
        Self {
            did,
            method: method.to_owned(),
            location: None,
            name: name.to_owned(),
            document,
            deactivated: false,
            update_key: None,
            revision: 1,
            created_at: now,
            updated_at: now,
            verification_methods: Vec::new(),
            services: Vec::new(),
            log: Vec::new(),
            witness: None,
            pending: Vec::new(),
        }
    }

    /// The did:webvh log as `did.jsonl` text.
    #[must_use]
    pub fn log_jsonl(&self) -> String {
        self.log.iter().fold(String::new(), |mut out, line| {
            out.push_str(line);
            out.push('\n');
            out
        })
    }

    /// The `versionId`s of the entries held back for witnesses, oldest first.
    #[must_use]
    pub fn pending_version_ids(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter_map(|line| version_id_of(line))
            .collect()
    }

    /// The `versionId` of the last published did:webvh entry.
    #[must_use]
    pub fn version_id(&self) -> Option<String> {
        self.log.last().and_then(|line| version_id_of(line))
    }

    /// The did:webvh log followed by the entries held back for witnesses, as JSON Lines.
    #[must_use]
    pub fn log_with_pending_jsonl(&self) -> String {
        self.log
            .iter()
            .chain(&self.pending)
            .fold(String::new(), |mut out, line| {
                out.push_str(line);
                out.push('\n');
                out
            })
    }
}

fn version_id_of(line: &str) -> Option<String> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get("versionId")?
        .as_str()
        .map(str::to_owned)
}

/// A verification method: the KMS alias whose public keys it publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredMethod {
    /// The KMS key alias.
    pub alias: KeyAlias,
    /// The verification relationships its keys are listed under.
    pub relationships: Vec<Relationship>,
}

impl StoredMethod {
    /// `alias` for `relationships`.
    #[must_use]
    pub fn new(alias: KeyAlias, relationships: Vec<Relationship>) -> Self {
        Self {
            alias,
            relationships,
        }
    }
}

/// A service of a DID document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredService {
    /// The fragment of its id (without `#`).
    pub id: String,
    /// Its `type`.
    pub service_type: String,
    /// Its `serviceEndpoint` (a URL string, a map or a list).
    pub endpoint: Value,
}

impl StoredService {
    /// A service.
    #[must_use]
    pub fn new(id: impl Into<String>, service_type: impl Into<String>, endpoint: Value) -> Self {
        Self {
            id: id.into(),
            service_type: service_type.into(),
            endpoint,
        }
    }
}

/// Where a tenant's DIDs are kept. One method call is one transaction.
#[async_trait]
pub trait DidStore: fmt::Debug + Send + Sync {
    /// Inserts a new DID with its methods, services and log.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the DID, or a DID of the method at the same location,
    /// exists.
    async fn insert(&self, tenant: &TenantContext, did: &StoredDid) -> Result<(), StoreError>;

    /// The DID, if the tenant holds it.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    async fn get(&self, tenant: &TenantContext, did: &Did)
    -> Result<Option<StoredDid>, StoreError>;

    /// The tenant's DID of `method` published at `location`.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    async fn by_location(
        &self,
        tenant: &TenantContext,
        method: &str,
        location: &str,
    ) -> Result<Option<StoredDid>, StoreError>;

    /// Every DID of the tenant (without their logs), by DID.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    async fn list(&self, tenant: &TenantContext) -> Result<Vec<StoredDid>, StoreError>;

    /// Replaces the DID's document, state, methods and services, appends log entries the
    /// store does not hold yet and replaces the witness file and the held-back entries, if
    /// the stored revision is still `did.revision - 1`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another change came first, [`StoreError::NotFound`] when
    /// the DID is gone.
    async fn update(&self, tenant: &TenantContext, did: &StoredDid) -> Result<(), StoreError>;
}
