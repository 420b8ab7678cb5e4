//! The DID registrar's periodic job, for the tenancy
//! [`Scheduler`](edk_tenancy::scheduler::Scheduler), which runs it on one replica per period
//! for every serving tenant (feature `store`):
//!
//! - [`RepublishStaleJob`] (`did.republish_stale`): [`Registrar::republish_stale`], which
//!   republishes the did:web documents whose listed key versions no longer match the KMS's.
//!
//! [`republish_on_key_change`](crate::registrar::republish_on_key_change) republishes a
//! did:web as soon as the KMS announces a key change; this job catches what no announcement
//! brought: a KMS in another process on SQLite (whose events stay in that process), a
//! registrar that was not running, a subscriber that fell behind.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn wire(tenancy: edk_tenancy::Tenancy, registrar: Arc<edk_did::registrar::Registrar>) -> Result<(), Box<dyn std::error::Error>> {
//! use edk_did::jobs::RepublishStaleJob;
//! use edk_tenancy::scheduler::Scheduler;
//!
//! let scheduler = Scheduler::builder(tenancy)
//!     .job(Arc::new(RepublishStaleJob::new(registrar)))
//!     .build()?;
//! # let _ = scheduler;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_kms::Caller;
use edk_tenancy::scheduler::{Job, JobError, JobScope, JobTarget};

use crate::registrar::Registrar;

/// The name of [`RepublishStaleJob`].
pub const REPUBLISH_STALE_JOB: &str = "did.republish_stale";

/// The audit actor of the job's KMS calls.
const ACTOR: &str = "edk-did";

/// Republishes each tenant's did:web documents whose keys changed in the KMS without the
/// registrar republishing them ([`Registrar::republish_stale`]); every five minutes by
/// default, so a missed key change is published at most that long (plus the scheduler's
/// tick) after it happened. Each run counts the DIDs it republished.
#[derive(Debug)]
pub struct RepublishStaleJob {
    registrar: Arc<Registrar>,
    period: Duration,
}

impl RepublishStaleJob {
    /// The job over `registrar`, every five minutes.
    #[must_use]
    pub const fn new(registrar: Arc<Registrar>) -> Self {
        Self {
            registrar,
            period: Duration::from_secs(5 * 60),
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
impl Job for RepublishStaleJob {
    fn name(&self) -> &str {
        REPUBLISH_STALE_JOB
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
        let caller = Caller::new(tenant.clone(), ACTOR);
        let republished = self.registrar.republish_stale(&caller).await?;
        for did in &republished {
            tracing::info!(did = %did, "republished a did:web whose keys changed in the KMS");
        }
        Ok(u64::try_from(republished.len()).unwrap_or(u64::MAX))
    }
}
