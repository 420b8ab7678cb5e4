//! The transactional outbox: domain events written in the transaction that makes the change,
//! and a relay that publishes them to the other replicas afterwards.
//!
//! A change and its event commit together or not at all: the event is a row of
//! `event_outbox` in the platform database, appended with [`crate::PlatformTx::append_event`]
//! or [`crate::TenantTx::append_event`] (and by every change [`crate::Tenancy`] makes to the
//! registry). At commit the appending process delivers the event to its own subscribers and
//! wakes its relay. The [`OutboxRelay`] (one replica at a time holds its lease) reads the
//! undelivered rows in order, publishes each with [`EventBus::relay`] (a `NOTIFY` on
//! PostgreSQL) to the subscribers of every other process, and marks it delivered. A process
//! killed between the commit and the publication loses nothing: the row waits for the next
//! relay. A failed publication is retried with backoff, and the events of one tenant keep
//! their order (a later event waits for an earlier one that failed).
//!
//! Delivery is at least once: a relay stopped between publishing and marking publishes the
//! event again, with the same [`EventId`], which subscribers of
//! [`EventBus::subscribe_deliveries`] use to drop the repeat. [`PurgeEventPayloads`](crate::scheduler::PurgeEventPayloads)
//! deletes delivered rows after a retention period.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use edk_core::{Clock, ErrorChain, TenantId};
use serde_json::Value;
use tokio::sync::{Mutex, Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Error;
use crate::events::{BackgroundTask, Delivery, Event, EventBus, EventId};

use crate::tenancy::Tenancy;

/// How a transaction reaches the outbox: the bus that delivers its events in this process at
/// commit, the relay to wake, and the clock that stamps the rows.
#[derive(Clone, Debug)]
pub(crate) struct OutboxLink {
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

impl OutboxLink {
    pub(crate) const fn new(
        bus: Arc<dyn EventBus>,
        wake: Arc<Notify>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { bus, wake, clock }
    }

    /// A new outbox row for `event`, ordered with `tenant`'s events.
    pub(crate) fn entry(&self, tenant: Option<TenantId>, event: Event) -> OutboxEntry {
        OutboxEntry {
            delivery: Delivery {
                id: EventId::generate(),
                event,
            },
            origin: self.bus.origin(),
            tenant,
            at: self.clock.now().into(),
        }
    }

    /// After the commit: delivers in this process and wakes the relay.
    pub(crate) fn committed(&self, appended: Vec<Delivery>) {
        if appended.is_empty() {
            return;
        }
        for delivery in appended {
            self.bus.deliver_local(delivery);
        }
        self.wake.notify_one();
    }
}

/// An event about to be appended to the outbox.
#[derive(Clone, Debug)]
pub(crate) struct OutboxEntry {
    pub(crate) delivery: Delivery,
    pub(crate) origin: Uuid,
    pub(crate) tenant: Option<TenantId>,
    pub(crate) at: DateTime<Utc>,
}

/// An undelivered outbox row.
#[derive(Clone, Debug)]
pub(crate) struct OutboxRow {
    pub(crate) row: i64,
    pub(crate) id: EventId,
    pub(crate) origin: Uuid,
    pub(crate) tenant: Option<TenantId>,
    pub(crate) payload: Value,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: DateTime<Utc>,
}

/// How the relay paces itself.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// How often it looks for undelivered events without being woken (events appended by
    /// other replicas, retries, a lease to take over). 1 s by default.
    pub poll_interval: Duration,
    /// How long its lease lasts without renewal: after a relay stops without releasing it,
    /// the longest another replica waits to take over. 15 s by default.
    pub lease: Duration,
    /// Events read at once. 256 by default.
    pub batch: u32,
    /// The wait after a failed publication, doubled after each further failure. 500 ms by
    /// default.
    pub retry_base: Duration,
    /// The longest wait between two attempts. 60 s by default.
    pub retry_max: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(15),
            batch: 256,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// What one [`OutboxRelay::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Whether this relay held the lease (and so looked at the outbox at all).
    pub leader: bool,
    /// Events published and marked delivered.
    pub delivered: u64,
    /// Publications that failed, to be retried.
    pub failed: u64,
    /// Whether it read a full batch: more may be waiting.
    pub more: bool,
}

/// Publishes the outbox's undelivered events, in order, while it holds the relay lease (a
/// row of `scheduler_job` named [`OutboxRelay::LEASE`], taken and renewed as the
/// [`crate::Scheduler`] does for jobs). [`crate::Tenancy::start`] runs one unless
/// [`crate::TenancyOptions::outbox_relay`] is off.
#[derive(Debug)]
pub struct OutboxRelay {
    tenancy: Tenancy,
    bus: Arc<dyn EventBus>,
    options: RelayOptions,
    holder: String,
    renewed: Mutex<Option<Instant>>,
}

impl OutboxRelay {
    /// The name of the relay's lease.
    pub const LEASE: &'static str = "tenancy.outbox_relay";

    /// A relay for `tenancy`'s outbox, publishing on its bus.
    #[must_use]
    pub fn new(tenancy: &Tenancy) -> Self {
        Self {
            bus: Arc::clone(tenancy.events()),
            tenancy: tenancy.clone(),
            options: RelayOptions::default(),
            holder: format!("relay-{}", Uuid::new_v4().simple()),
            renewed: Mutex::new(None),
        }
    }

    /// Publishes on `bus` instead.
    #[must_use]
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = bus;
        self
    }

    /// Paces itself by `options` instead of the defaults.
    #[must_use]
    pub fn options(mut self, options: RelayOptions) -> Self {
        self.options = options;
        self
    }

    /// Takes or renews the lease and, if this relay holds it, publishes what is due.
    ///
    /// # Errors
    /// [`Error::Database`] when the outbox cannot be read or updated; a failed publication is
    /// not an error (it is recorded for a retry and counted in [`RelayReport::failed`]).
    pub async fn run_once(&self) -> Result<RelayReport, Error> {
        let now = self.now();
        if !self.hold_lease(now).await? {
            return Ok(RelayReport::default());
        }
        let platform = self.tenancy.platform();
        let batch = self.options.batch.max(1);
        let rows = platform.pending_events(i64::from(batch)).await?;
        let mut report = RelayReport {
            leader: true,
            more: rows.len() >= usize::try_from(batch).unwrap_or(usize::MAX),
            ..RelayReport::default()
        };
        // A tenant whose earlier event is not delivered yet waits: its order is kept.
        let mut waiting: HashSet<Option<TenantId>> = HashSet::new();
        for row in rows {
            if waiting.contains(&row.tenant) {
                continue;
            }
            if row.next_attempt_at > now {
                waiting.insert(row.tenant);
                continue;
            }
            let published = match serde_json::from_value::<Event>(row.payload) {
                Ok(event) => {
                    self.bus
                        .relay(row.origin, Delivery { id: row.id, event })
                        .await
                }
                Err(err) => Err(Error::events("cannot decode an outbox event", err)),
            };
            match published {
                Ok(()) => {
                    platform.event_delivered(row.row, self.now()).await?;
                    report.delivered += 1;
                }
                Err(err) => {
                    let retry_at = now
                        .checked_add_signed(self.backoff(row.attempts))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    let error = ErrorChain(&err).to_string();
                    tracing::warn!(%error, event = %row.id, attempts = row.attempts + 1, "publishing an outbox event failed; retrying");
                    platform.event_failed(row.row, retry_at, &error).await?;
                    report.failed += 1;
                    waiting.insert(row.tenant);
                }
            }
        }
        Ok(report)
    }

    /// Runs until `cancel` fires: after each wake-up (a commit in this process) and at least
    /// every poll interval, then releases the lease.
    pub fn start(self, cancel: &CancellationToken) -> BackgroundTask {
        let cancel = cancel.child_token();
        let (_, connected) = watch::channel(1_u64);
        let task_cancel = cancel.clone();
        BackgroundTask::spawn(cancel, connected, async move {
            self.run(task_cancel).await;
        })
    }

    pub(crate) async fn run(&self, cancel: CancellationToken) {
        let wake = Arc::clone(self.tenancy.outbox_wake());
        let mut failures = 0_i32;
        while !cancel.is_cancelled() {
            let wait = match self.run_once().await {
                Ok(report) if report.more && report.delivered > 0 => continue,
                Ok(_) => {
                    failures = 0;
                    self.options.poll_interval
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %ErrorChain(&err), "the outbox relay cannot reach the platform database");
                    self.backoff(failures)
                        .to_std()
                        .unwrap_or(self.options.retry_max)
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.release().await;
    }

    async fn release(&self) {
        let mut renewed = self.renewed.lock().await;
        if renewed.take().is_some()
            && let Err(err) = self
                .tenancy
                .platform()
                .finish_job(Self::LEASE, &self.holder, None)
                .await
        {
            tracing::warn!(error = %ErrorChain(&err), "cannot release the outbox relay lease; it expires");
        }
    }

    async fn hold_lease(&self, now: DateTime<Utc>) -> Result<bool, Error> {
        let platform = self.tenancy.platform();
        let mut renewed = self.renewed.lock().await;
        let until = now
            .checked_add_signed(to_chrono(self.options.lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if let Some(at) = *renewed {
            if at.elapsed() < self.options.lease / 3 {
                return Ok(true);
            }
            if platform.renew_job(Self::LEASE, &self.holder, until).await? {
                *renewed = Some(Instant::now());
                return Ok(true);
            }
            tracing::warn!("the outbox relay lost its lease");
            *renewed = None;
        }
        // The lease row never records a run, so it is always due: only the lease decides.
        let taken = platform
            .acquire_job(Self::LEASE, &self.holder, now, now, until)
            .await?;
        if taken {
            tracing::debug!(holder = %self.holder, "the outbox relay took the lease");
            *renewed = Some(Instant::now());
        }
        Ok(taken)
    }

    /// The wait after `failures` failed attempts.
    fn backoff(&self, failures: i32) -> chrono::Duration {
        let exponent = u32::try_from(failures.clamp(0, 20)).unwrap_or(0);
        let wait = self
            .options
            .retry_base
            .saturating_mul(2_u32.saturating_pow(exponent))
            .min(self.options.retry_max);
        to_chrono(wait)
    }

    fn now(&self) -> DateTime<Utc> {
        self.tenancy.clock().now().into()
    }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
