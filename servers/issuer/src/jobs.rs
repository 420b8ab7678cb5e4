//! Periodic housekeeping of the issuer's state, run by edk-tenancy's scheduler.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_oid4vci::{IssuerStore, SESSION_RETENTION};
use edk_tenancy::{Job, JobError, JobScope, JobTarget};

/// Deletes each tenant's expired `c_nonce`s, offer references, deferred transactions and
/// notification ids and marks offers never redeemed before their expiry `expired`
/// ([`IssuerStore::purge_expired`]), then applies the tenant's session retention
/// ([`SESSION_RETENTION`]: `remove`, `minimize` or `keep`) to the sessions that ended
/// ([`IssuerStore::apply_retention`]). A per-tenant job named `oid4vci.purge_expired`, every
/// ten minutes.
#[derive(Debug)]
pub struct PurgeExpiredJob {
    store: Arc<dyn IssuerStore>,
}

impl PurgeExpiredJob {
    /// The job's name.
    pub const NAME: &'static str = "oid4vci.purge_expired";

    /// The job over `store`.
    #[must_use]
    pub const fn new(store: Arc<dyn IssuerStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Job for PurgeExpiredJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, now: DateTime<Utc>) -> Result<u64, JobError> {
        let JobTarget::Tenant(tenant) = target else {
            return Ok(0);
        };
        let now = now.timestamp();
        let purged = self.store.purge_expired(tenant, now).await?;
        let retention = tenant.config().get(&SESSION_RETENTION);
        Ok(purged + self.store.apply_retention(tenant, retention, now).await?)
    }
}
