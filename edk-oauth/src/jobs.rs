//! Periodic housekeeping of the authorization server's state, run by edk-tenancy's
//! [`Scheduler`](edk_tenancy::Scheduler).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_tenancy::{Job, JobError, JobScope, JobTarget};

use crate::store::OAuthStore;

/// Deletes each tenant's protocol state past its expiry ([`OAuthStore::purge_expired`]):
/// pushed requests, pending authorizations, codes, pre-authorized codes, refresh tokens,
/// access-token records, `jti`s and DPoP nonces. A per-tenant job named
/// `oauth.purge_expired`, every ten minutes by default. Live state is never touched: every
/// row it deletes would be refused anyway.
#[derive(Debug)]
pub struct PurgeExpiredJob {
    store: Arc<dyn OAuthStore>,
    period: Duration,
}

impl PurgeExpiredJob {
    /// The job's name.
    pub const NAME: &'static str = "oauth.purge_expired";

    /// The job over `store` (the [`AuthorizationServer`](crate::AuthorizationServer)'s),
    /// run every ten minutes.
    #[must_use]
    pub const fn new(store: Arc<dyn OAuthStore>) -> Self {
        Self {
            store,
            period: Duration::from_secs(600),
        }
    }

    /// Runs every `period` instead.
    #[must_use]
    pub const fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }
}

#[async_trait]
impl Job for PurgeExpiredJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, now: DateTime<Utc>) -> Result<u64, JobError> {
        let JobTarget::Tenant(tenant) = target else {
            return Ok(0);
        };
        Ok(self.store.purge_expired(tenant, now.timestamp()).await?)
    }
}
