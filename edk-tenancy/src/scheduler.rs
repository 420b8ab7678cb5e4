//! Periodic housekeeping jobs, run by one replica at a time.
//!
//! A [`Job`] says how often it runs ([`Job::period`]) and whether it runs once for the
//! platform or once for each serving tenant ([`Job::scope`]). Every replica runs a
//! [`Scheduler`] with the same jobs; each [`Scheduler::tick`] offers every job to the platform
//! database, where a row of `scheduler_job (name, last_run_at, lease_holder,
//! lease_expires_at)` per job decides which replica runs it: one conditional upsert takes the
//! lease only if the job is due (never run, or last run at least one period ago) and the lease
//! is free or expired. The replica that took it runs the job, renews the lease while the job
//! runs, then records the run and releases the lease. There is no read-then-write: two
//! replicas ticking at the same moment cannot both run a job.
//!
//! A failing run (a job error, one failing tenant, a panic) is logged, counted in the
//! [`TickReport`] and reported to the [`JobObserver`]; it is never fatal, the other tenants
//! still run, and the run is recorded, so the job is retried one period later. A replica that
//! stops in the middle of a run leaves its lease to expire ([`SchedulerBuilder::lease`]),
//! after which another replica runs the job.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{Clock, ErrorChain, TenantId};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::context::TenantContext;
use crate::error::Error;
use crate::events::BackgroundTask;
use crate::tenancy::{Tenancy, TenantDirectory};

/// Whether a job runs once per period for the whole platform, or once per period for each
/// serving tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobScope {
    /// Once per period, for the platform.
    Platform,
    /// Once per period, for each serving tenant.
    PerTenant,
}

/// What one run acts on.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum JobTarget<'a> {
    /// The platform (a [`JobScope::Platform`] job).
    Platform,
    /// One serving tenant (a [`JobScope::PerTenant`] job).
    Tenant(&'a TenantContext),
}

/// The error of a job run (logged and counted, never fatal).
pub type JobError = Box<dyn StdError + Send + Sync>;

/// A periodic housekeeping job.
#[async_trait]
pub trait Job: fmt::Debug + Send + Sync {
    /// Stable name, e.g. `kms.rotate_due`; keys the lease and the metrics.
    fn name(&self) -> &str;

    /// How often it runs.
    fn period(&self) -> Duration;

    /// Platform or per tenant. Default per tenant.
    fn scope(&self) -> JobScope {
        JobScope::PerTenant
    }

    /// Runs once; returns how many items it handled (keys rotated, rows purged...).
    ///
    /// # Errors
    /// Whatever the job's work failed with; the scheduler logs and counts it.
    async fn run(&self, target: JobTarget<'_>, now: DateTime<Utc>) -> Result<u64, JobError>;
}

/// Receives the outcome of every run, to export metrics. Called once per platform run and
/// once per tenant of a per-tenant run, after the run.
pub trait JobObserver: fmt::Debug + Send + Sync {
    /// `job` ran for `tenant` (`None` for a platform run) and handled `outcome` items or
    /// failed with `outcome`'s error, in `elapsed`.
    fn on_run(
        &self,
        job: &str,
        tenant: Option<TenantId>,
        outcome: Result<u64, &(dyn StdError + Send + Sync + 'static)>,
        elapsed: Duration,
    );
}

/// A job's row in `scheduler_job`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobState {
    /// The job's name.
    pub name: String,
    /// When its last run started (the scheduler clock's time), if it ever ran.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The replica running it now, if one is.
    pub lease_holder: Option<String>,
    /// When that replica's lease expires.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// What one run of one job did in this replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobReport {
    /// The job's name.
    pub name: String,
    /// Targets run: 1 for a platform job, the serving tenants for a per-tenant job.
    pub targets: usize,
    /// Targets whose run failed.
    pub failures: usize,
    /// Items handled across the targets that succeeded.
    pub items: u64,
}

/// What one [`Scheduler::tick`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickReport {
    /// The jobs this replica ran, in registration order.
    pub ran: Vec<JobReport>,
    /// Jobs not run here: not due, or held by another replica.
    pub skipped: usize,
    /// Jobs not run to the end because the platform database failed or the lease was lost
    /// (logged at WARN).
    pub lease_failures: usize,
}

impl TickReport {
    /// The report of the job named `name`, if this replica ran it.
    #[must_use]
    pub fn job(&self, name: &str) -> Option<&JobReport> {
        self.ran.iter().find(|report| report.name == name)
    }
}

/// Builds a [`Scheduler`].
#[derive(Debug)]
pub struct SchedulerBuilder {
    tenancy: Tenancy,
    clock: Option<Arc<dyn Clock>>,
    holder: Option<String>,
    observer: Option<Arc<dyn JobObserver>>,
    jobs: Vec<Arc<dyn Job>>,
    interval: Duration,
    lease: Duration,
    concurrency: usize,
}

impl SchedulerBuilder {
    /// The clock that decides when jobs are due and is passed to them (the tenancy's clock by
    /// default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The name of this replica in the lease rows (a random UUID by default). Two replicas
    /// must not share one.
    #[must_use]
    pub fn holder(mut self, holder: String) -> Self {
        self.holder = Some(holder);
        self
    }

    /// Receives the outcome of every run (none by default; runs are logged either way).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn JobObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Registers a job.
    #[must_use]
    pub fn job(mut self, job: Arc<dyn Job>) -> Self {
        self.jobs.push(job);
        self
    }

    /// How often [`Scheduler::start`] ticks (15 s by default). A job runs at most this long
    /// after it is due.
    #[must_use]
    pub const fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long a lease lasts without renewal (5 minutes by default). The running replica
    /// renews it every third of this; a replica that stops leaves it to expire, and then
    /// another replica runs the job.
    #[must_use]
    pub const fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many tenants a per-tenant job runs for at once (4 by default).
    #[must_use]
    pub const fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Checks the jobs and builds the scheduler.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a job name that is empty, longer than 128 bytes or outside
    /// `[a-z0-9_.-]`, a name registered twice, or a zero period; [`Error::InvalidScheduler`]
    /// for an empty or overlong holder, a zero interval or a lease shorter than a second.
    pub fn build(self) -> Result<Scheduler, Error> {
        let mut names = HashSet::new();
        for job in &self.jobs {
            let name = job.name();
            let invalid = |reason| Error::InvalidJob {
                name: name.to_owned(),
                reason,
            };
            if !valid_job_name(name) {
                return Err(invalid("names are 1 to 128 bytes of [a-z0-9_.-]"));
            }
            if job.period().is_zero() {
                return Err(invalid("the period must not be zero"));
            }
            if !names.insert(name.to_owned()) {
                return Err(invalid("registered twice"));
            }
        }
        let holder = self
            .holder
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if holder.is_empty() || holder.len() > 200 {
            return Err(Error::InvalidScheduler {
                reason: "the holder must be 1 to 200 bytes",
            });
        }
        if self.interval.is_zero() {
            return Err(Error::InvalidScheduler {
                reason: "the interval must not be zero",
            });
        }
        if self.lease < Duration::from_secs(1) {
            return Err(Error::InvalidScheduler {
                reason: "the lease must be at least one second",
            });
        }
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::clone(self.tenancy.clock()));
        Ok(Scheduler {
            inner: Arc::new(SchedulerInner {
                tenancy: self.tenancy,
                clock,
                holder,
                observer: self.observer,
                jobs: self.jobs,
                interval: self.interval,
                lease: self.lease,
                concurrency: self.concurrency.max(1),
            }),
        })
    }
}

/// Runs periodic jobs, one replica at a time per job, with leases in the platform database.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Scheduler {
    inner: Arc<SchedulerInner>,
}

#[derive(Debug)]
struct SchedulerInner {
    tenancy: Tenancy,
    clock: Arc<dyn Clock>,
    holder: String,
    observer: Option<Arc<dyn JobObserver>>,
    jobs: Vec<Arc<dyn Job>>,
    interval: Duration,
    lease: Duration,
    concurrency: usize,
}

impl Scheduler {
    /// A builder for a scheduler on `tenancy`'s platform database.
    #[must_use]
    pub fn builder(tenancy: Tenancy) -> SchedulerBuilder {
        SchedulerBuilder {
            tenancy,
            clock: None,
            holder: None,
            observer: None,
            jobs: Vec::new(),
            interval: Duration::from_secs(15),
            lease: Duration::from_secs(300),
            concurrency: 4,
        }
    }

    /// This replica's name in the lease rows.
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Runs, one after another, every job that is due at the clock's current time and whose
    /// lease this replica takes.
    pub async fn tick(&self) -> TickReport {
        let mut report = TickReport::default();
        for job in &self.inner.jobs {
            match self.offer(job.as_ref()).await {
                Offer::Ran(ran) => report.ran.push(ran),
                Offer::Skipped => report.skipped += 1,
                Offer::Failed => report.lease_failures += 1,
            }
        }
        report
    }

    /// Ticks now and then every [`SchedulerBuilder::interval`] until `cancel` fires or the
    /// returned handle is shut down or dropped. A run cut short by shutdown is not recorded;
    /// its lease expires and the job runs again.
    #[must_use]
    pub fn start(&self, cancel: &CancellationToken) -> BackgroundTask {
        let cancel = cancel.child_token();
        let (_, started) = watch::channel(1_u64);
        let this = self.clone();
        let task_cancel = cancel.clone();
        BackgroundTask::spawn(cancel, started, async move {
            let mut ticks = tokio::time::interval(this.inner.interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = task_cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                tokio::select! {
                    () = task_cancel.cancelled() => return,
                    report = this.tick() => {
                        tracing::debug!(ran = report.ran.len(), skipped = report.skipped, "scheduler tick");
                    }
                }
            }
        })
    }

    /// Every job's recorded state (including jobs of other replicas' builds), by name.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn jobs(&self) -> Result<Vec<JobState>, Error> {
        self.inner.tenancy.platform().jobs().await
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().into()
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(to_chrono(self.inner.lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Takes the job's lease if it is due, runs it, records the run and releases the lease.
    async fn offer(&self, job: &dyn Job) -> Offer {
        let platform = self.inner.tenancy.platform();
        let name = job.name();
        let holder = self.inner.holder.as_str();
        let now = self.now();
        let due_before = now
            .checked_sub_signed(to_chrono(job.period()))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        match platform
            .acquire_job(name, holder, now, due_before, self.lease_until(now))
            .await
        {
            Ok(true) => {}
            Ok(false) => return Offer::Skipped,
            Err(err) => {
                tracing::warn!(job = name, error = %ErrorChain(&err), "cannot take a job lease");
                return Offer::Failed;
            }
        }
        tracing::debug!(job = name, holder, "job lease taken");
        let outcome = tokio::select! {
            outcome = self.run(job, now) => outcome,
            () = self.renew(name) => None,
        };
        // A run whose targets could not be listed is not recorded: the next tick retries it.
        let recorded = outcome.as_ref().map(|_| now);
        match platform.finish_job(name, holder, recorded).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    job = name,
                    "job lease expired while it ran; another replica may run it again"
                );
            }
            Err(err) => {
                tracing::warn!(job = name, error = %ErrorChain(&err), "cannot record a job run; its lease expires");
            }
        }
        outcome.map_or(Offer::Failed, Offer::Ran)
    }

    /// Renews the lease every third of its length; returns only when the lease is lost.
    async fn renew(&self, name: &str) {
        let period = self.inner.lease / 3;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            ticks.tick().await;
            let until = self.lease_until(self.now());
            match self
                .inner
                .tenancy
                .platform()
                .renew_job(name, &self.inner.holder, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = name, "job lease lost; stopping the run");
                    return;
                }
                Err(err) => {
                    tracing::warn!(job = name, error = %ErrorChain(&err), "cannot renew a job lease");
                }
            }
        }
    }

    /// Runs the job for its targets; `None` when the serving tenants could not be listed.
    async fn run(&self, job: &dyn Job, now: DateTime<Utc>) -> Option<JobReport> {
        let mut report = JobReport {
            name: job.name().to_owned(),
            ..JobReport::default()
        };
        match job.scope() {
            JobScope::Platform => {
                let items = self.run_target(job, JobTarget::Platform, now).await;
                report.add(items);
            }
            JobScope::PerTenant => {
                let tenancy = &self.inner.tenancy;
                let tenants = match tenancy.tenants().await {
                    Ok(tenants) => tenants,
                    Err(err) => {
                        tracing::warn!(job = job.name(), error = %ErrorChain(&err), "cannot list the tenants for a job");
                        return None;
                    }
                };
                let serving: Vec<TenantId> = tenants
                    .into_iter()
                    .filter(|tenant| tenant.status.is_serving())
                    .map(|tenant| tenant.id)
                    .collect();
                let mut runs = futures::stream::iter(serving)
                    .map(|tenant| async move {
                        match tenancy.context(tenant).await {
                            Ok(context) => {
                                Some(self.run_target(job, JobTarget::Tenant(&context), now).await)
                            }
                            // Suspended or deleted since it was listed.
                            Err(Error::TenantNotActive { .. } | Error::TenantNotFound) => None,
                            Err(err) => {
                                tracing::warn!(job = job.name(), %tenant, error = %ErrorChain(&err), "cannot load a tenant for a job");
                                Some(None)
                            }
                        }
                    })
                    .buffer_unordered(self.inner.concurrency);
                while let Some(result) = runs.next().await {
                    if let Some(items) = result {
                        report.add(items);
                    }
                }
            }
        }
        tracing::info!(
            job = job.name(),
            targets = report.targets,
            failures = report.failures,
            items = report.items,
            "job ran"
        );
        Some(report)
    }

    /// Runs the job for one target: `Some(items)`, or `None` when it failed.
    async fn run_target(
        &self,
        job: &dyn Job,
        target: JobTarget<'_>,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let tenant = match target {
            JobTarget::Platform => None,
            JobTarget::Tenant(context) => Some(context.id()),
        };
        let started = Instant::now();
        let outcome = match AssertUnwindSafe(job.run(target, now)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobPanicked.into()),
        };
        let elapsed = started.elapsed();
        if let Some(observer) = &self.inner.observer {
            observer.on_run(
                job.name(),
                tenant,
                outcome.as_ref().copied().map_err(|err| &**err),
                elapsed,
            );
        }
        match outcome {
            Ok(items) => Some(items),
            Err(err) => {
                let err: &(dyn StdError + 'static) = &*err;
                match tenant {
                    Some(tenant) => {
                        tracing::warn!(job = job.name(), %tenant, error = %ErrorChain(err), "job failed for a tenant");
                    }
                    None => {
                        tracing::warn!(job = job.name(), error = %ErrorChain(err), "job failed");
                    }
                }
                None
            }
        }
    }
}

/// What offering a job to the lease table came to.
enum Offer {
    Ran(JobReport),
    Skipped,
    Failed,
}

impl JobReport {
    fn add(&mut self, items: Option<u64>) {
        self.targets += 1;
        match items {
            Some(items) => self.items = self.items.saturating_add(items),
            None => self.failures += 1,
        }
    }
}

/// A job's run panicked.
#[derive(Debug, thiserror::Error)]
#[error("the job panicked")]
struct JobPanicked;

fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Drops the schema (or file), bindings and configuration of tenants deleted longer ago than
/// the grace period ([`Tenancy::purge_deleted`]). A platform job named
/// `tenancy.purge_deleted`, hourly by default.
#[derive(Debug)]
pub struct PurgeDeletedTenants {
    tenancy: Tenancy,
    period: Duration,
}

impl PurgeDeletedTenants {
    /// The job's name.
    pub const NAME: &'static str = "tenancy.purge_deleted";

    /// The job for `tenancy`, run hourly.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self {
            tenancy,
            period: Duration::from_secs(3600),
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
impl Job for PurgeDeletedTenants {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::Platform
    }

    async fn run(&self, _target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        let purged = self.tenancy.purge_deleted().await?;
        Ok(u64::try_from(purged.len()).unwrap_or(u64::MAX))
    }
}

/// Deletes stored events older than a retention: the payloads too large for a `NOTIFY`
/// ([`Tenancy::purge_event_payloads`]) and the outbox rows delivered by then
/// ([`Tenancy::purge_delivered_events`]; undelivered rows are never purged). A platform job
/// named `tenancy.purge_event_payloads`, hourly by default, keeping a day by default.
#[derive(Debug)]
pub struct PurgeEventPayloads {
    tenancy: Tenancy,
    retention: Duration,
    period: Duration,
}

impl PurgeEventPayloads {
    /// The job's name.
    pub const NAME: &'static str = "tenancy.purge_event_payloads";

    /// The job for `tenancy`, run hourly, keeping payloads for a day.
    #[must_use]
    pub const fn new(tenancy: Tenancy) -> Self {
        Self {
            tenancy,
            retention: Duration::from_secs(24 * 3600),
            period: Duration::from_secs(3600),
        }
    }

    /// Keeps payloads for `retention` instead. Replicas read a payload as soon as its
    /// notification arrives, so minutes are enough; longer helps only to inspect them.
    #[must_use]
    pub const fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Runs every `period` instead.
    #[must_use]
    pub const fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }
}

#[async_trait]
impl Job for PurgeEventPayloads {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        JobScope::Platform
    }

    async fn run(&self, _target: JobTarget<'_>, now: DateTime<Utc>) -> Result<u64, JobError> {
        let before = now
            .checked_sub_signed(to_chrono(self.retention))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let payloads = self.tenancy.purge_event_payloads(before).await?;
        let delivered = self.tenancy.purge_delivered_events(before).await?;
        Ok(payloads.saturating_add(delivered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_checked() {
        assert!(valid_job_name("kms.rotate_due"));
        assert!(valid_job_name("tenancy.purge-deleted"));
        for bad in ["", "Kms.rotate", "a b", "a/b", &"x".repeat(129)] {
            assert!(!valid_job_name(bad), "{bad:?}");
        }
    }
}
