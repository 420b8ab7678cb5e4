//! The KMS's periodic jobs, for the tenancy [`Scheduler`](edk_tenancy::scheduler::Scheduler),
//! which runs each one on one replica per period, for every serving tenant:
//!
//! - [`RotateDueJob`] (`kms.rotate_due`): [`LocalKms::rotate_due`], which rotates the aliases
//!   whose [`RotationPolicy`](crate::kms::RotationPolicy) period has passed and stages the
//!   pre-active versions the policy asks for.
//! - [`AuditCheckpointJob`] (`kms.audit_checkpoint`): [`LocalKms::checkpoint`], a signed
//!   checkpoint of the tenant's audit chain head.
//!
//! Both act as [`SYSTEM_ACTOR`] from code in the process, and decide what is due by the
//! KMS's own injected clock (give the scheduler the same clock).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn wire(tenancy: edk_tenancy::Tenancy, kms: edk_kms::LocalKms) -> Result<(), Box<dyn std::error::Error>> {
//! use edk_kms::jobs::{AuditCheckpointJob, RotateDueJob};
//! use edk_tenancy::scheduler::Scheduler;
//!
//! let scheduler = Scheduler::builder(tenancy)
//!     .job(Arc::new(RotateDueJob::new(kms.clone())))
//!     .job(Arc::new(AuditCheckpointJob::new(kms)))
//!     .build()?;
//! # let _ = scheduler;
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_tenancy::scheduler::{Job, JobError, JobScope, JobTarget};

use crate::kms::Caller;
use crate::local::{LocalKms, SYSTEM_ACTOR};

/// The name of [`RotateDueJob`].
pub const ROTATE_DUE_JOB: &str = "kms.rotate_due";

/// The name of [`AuditCheckpointJob`].
pub const AUDIT_CHECKPOINT_JOB: &str = "kms.audit_checkpoint";

/// Rotates each tenant's due aliases ([`LocalKms::rotate_due`]); every 15 minutes by
/// default, so a rotation or staging happens at most that long (plus the scheduler's tick)
/// after it is due. Each run counts the aliases it rotated.
#[derive(Debug)]
pub struct RotateDueJob {
    kms: LocalKms,
    period: Duration,
}

impl RotateDueJob {
    /// The job over `kms`, every 15 minutes.
    #[must_use]
    pub const fn new(kms: LocalKms) -> Self {
        Self {
            kms,
            period: Duration::from_secs(15 * 60),
        }
    }

    /// Runs every `period` instead.
    #[must_use]
    pub const fn with_period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }
}

#[async_trait]
impl Job for RotateDueJob {
    fn name(&self) -> &str {
        ROTATE_DUE_JOB
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        let caller = system_caller(target)?;
        let rotated = self.kms.rotate_due(&caller).await?;
        Ok(u64::try_from(rotated.len()).unwrap_or(u64::MAX))
    }
}

/// Checkpoints each tenant's audit chain ([`LocalKms::checkpoint`]); by default as often as
/// the KMS's [`AuditConfig::checkpoint_interval`](crate::audit::AuditConfig) says (an hour).
/// Each run counts 1 when it signed a checkpoint, 0 when the chain had nothing new.
#[derive(Debug)]
pub struct AuditCheckpointJob {
    kms: LocalKms,
    period: Duration,
}

impl AuditCheckpointJob {
    /// The job over `kms`, at its audit configuration's checkpoint interval.
    #[must_use]
    pub fn new(kms: LocalKms) -> Self {
        let period = kms.checkpoint_interval();
        Self { kms, period }
    }

    /// Runs every `period` instead.
    #[must_use]
    pub const fn with_period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }
}

#[async_trait]
impl Job for AuditCheckpointJob {
    fn name(&self) -> &str {
        AUDIT_CHECKPOINT_JOB
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    async fn run(&self, target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        let caller = system_caller(target)?;
        Ok(u64::from(self.kms.checkpoint(&caller).await?.is_some()))
    }
}

/// The KMS itself acting in the target tenant.
fn system_caller(target: JobTarget<'_>) -> Result<Caller, JobError> {
    match target {
        JobTarget::Tenant(tenant) => Ok(Caller::new(tenant.clone(), SYSTEM_ACTOR)),
        _ => Err("the KMS jobs run per tenant".into()),
    }
}
