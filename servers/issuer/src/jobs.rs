//! Periodic housekeeping of the issuer's state, run by edk-tenancy's scheduler.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_oid4vci::{Issuer, IssuerStore, SESSION_RETENTION};
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

/// Signs a new Status List Token for each of a tenant's lists that changed since its last
/// token (or whose token is past half its validity), one signature per list however many
/// statuses changed, and drops tokens past the history period
/// ([`Issuer::publish_status_lists`]). A per-tenant job named `oid4vci.publish_status_lists`;
/// its period is the server's `issuer.status_list_publish_interval_secs`.
#[derive(Debug)]
pub struct PublishStatusListsJob {
    issuer: Arc<Issuer>,
    period: Duration,
}

impl PublishStatusListsJob {
    /// The job's name.
    pub const NAME: &'static str = "oid4vci.publish_status_lists";

    /// The job publishing `issuer`'s lists every `period`.
    #[must_use]
    pub const fn new(issuer: Arc<Issuer>, period: Duration) -> Self {
        Self { issuer, period }
    }
}

#[async_trait]
impl Job for PublishStatusListsJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        let JobTarget::Tenant(tenant) = target else {
            return Ok(0);
        };
        let published = self.issuer.publish_status_lists(tenant).await?;
        Ok(u64::try_from(published).unwrap_or(u64::MAX))
    }
}
