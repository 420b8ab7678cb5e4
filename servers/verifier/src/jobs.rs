//! Periodic housekeeping of the verifier's state and webhook delivery, run by edk-tenancy's
//! scheduler.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_tenancy::{Job, JobError, JobScope, JobTarget};

use crate::store::{PRESENTATION_RETENTION, SqlStore};
use crate::webhook::Webhooks;

/// Marks each tenant's lapsed open sessions `expired`, then applies its presentation
/// retention ([`PRESENTATION_RETENTION`]: `remove`, `minimize` or `keep`) to the sessions
/// that ended at least `delay` ago ([`SqlStore::apply_retention`]). A per-tenant job named `oid4vp.apply_retention`, every
/// ten minutes.
#[derive(Debug)]
pub struct RetentionJob {
    store: SqlStore,
    delay: Duration,
}

impl RetentionJob {
    /// The job's name.
    pub const NAME: &'static str = "oid4vp.apply_retention";

    /// The job over `store`, for sessions that ended `delay` ago.
    #[must_use]
    pub const fn new(store: SqlStore, delay: Duration) -> Self {
        Self { store, delay }
    }
}

#[async_trait]
impl Job for RetentionJob {
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
        let delay = i64::try_from(self.delay.as_secs()).unwrap_or(i64::MAX);
        let retention = tenant.config().get(&PRESENTATION_RETENTION);
        let now = now.timestamp();
        Ok(self
            .store
            .apply_retention(tenant, retention, now, now.saturating_sub(delay))
            .await?)
    }
}

/// Marks each tenant's lapsed open sessions `expired` (recording their webhook deliveries),
/// then attempts the webhook deliveries that are due ([`Webhooks::deliver_due`]), on any
/// replica. A per-tenant job named `oid4vp.deliver_webhooks`, every fifteen seconds.
#[derive(Debug)]
pub struct WebhookJob {
    store: SqlStore,
    webhooks: Webhooks,
}

impl WebhookJob {
    /// The job's name.
    pub const NAME: &'static str = "oid4vp.deliver_webhooks";

    /// The job over `store`, sending with `webhooks`.
    #[must_use]
    pub const fn new(store: SqlStore, webhooks: Webhooks) -> Self {
        Self { store, webhooks }
    }
}

#[async_trait]
impl Job for WebhookJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        Duration::from_secs(15)
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, now: DateTime<Utc>) -> Result<u64, JobError> {
        let JobTarget::Tenant(tenant) = target else {
            return Ok(0);
        };
        let now = now.timestamp();
        self.store.expire_lapsed(tenant, now).await?;
        Ok(self.webhooks.deliver_due(tenant, now).await?)
    }
}
