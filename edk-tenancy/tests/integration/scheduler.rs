//! The periodic job scheduler: due times, per-tenant runs, failures, leases across replicas,
//! and the jobs edk-tenancy ships.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{Clock, FixedClock, TenantId, TenantSlug};
use edk_tenancy::scheduler::JobState;
use edk_tenancy::testkit;
use edk_tenancy::{
    DatabaseConfig, Error, Event, Job, JobError, JobObserver, JobScope, JobTarget,
    PurgeDeletedTenants, PurgeEventPayloads, Scheduler, Tenancy,
};
use edk_testkit::TestDb;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{build, postgres, sqlite};

/// Generous: the machine may be busy.
const DEADLINE: Duration = Duration::from_secs(10);

/// A job that counts its runs and the tenants it ran for, and fails for one slug.
#[derive(Debug)]
struct Counting {
    name: &'static str,
    period: Duration,
    scope: JobScope,
    runs: AtomicU64,
    tenants: Mutex<Vec<TenantId>>,
    fail_for: Option<&'static str>,
    ran: Notify,
}

impl Counting {
    fn new(name: &'static str, scope: JobScope) -> Arc<Self> {
        Arc::new(Self {
            name,
            period: Duration::from_secs(60),
            scope,
            runs: AtomicU64::new(0),
            tenants: Mutex::new(Vec::new()),
            fail_for: None,
            ran: Notify::new(),
        })
    }

    fn failing_for(name: &'static str, slug: &'static str) -> Arc<Self> {
        Arc::new(Self {
            fail_for: Some(slug),
            ..Arc::into_inner(Self::new(name, JobScope::PerTenant)).unwrap()
        })
    }

    fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }

    fn tenants(&self) -> Vec<TenantId> {
        let mut tenants = self.tenants.lock().unwrap().clone();
        tenants.sort_unstable();
        tenants
    }
}

#[async_trait]
impl Job for Counting {
    fn name(&self) -> &str {
        self.name
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn scope(&self) -> JobScope {
        self.scope
    }

    async fn run(&self, target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        // Give a concurrent replica every chance to interleave.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.ran.notify_one();
        match target {
            JobTarget::Tenant(context) => {
                if self.fail_for == Some(context.slug().as_str()) {
                    return Err("this tenant's store is broken".into());
                }
                self.tenants.lock().unwrap().push(context.id());
                Ok(2)
            }
            _ => Ok(1),
        }
    }
}

/// A job whose first run never ends: the replica running it stops in the middle.
#[derive(Debug, Default)]
struct HangsOnce {
    hung: AtomicBool,
    started: Notify,
    runs: AtomicU64,
}

#[async_trait]
impl Job for HangsOnce {
    fn name(&self) -> &str {
        "test.hangs_once"
    }

    fn period(&self) -> Duration {
        Duration::from_secs(3600)
    }

    fn scope(&self) -> JobScope {
        JobScope::Platform
    }

    async fn run(&self, _target: JobTarget<'_>, _now: DateTime<Utc>) -> Result<u64, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if !self.hung.swap(true, Ordering::SeqCst) {
            self.started.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(0)
    }
}

/// One observed run: job, tenant, items or error text.
type Observed = (String, Option<TenantId>, Result<u64, String>);

/// Records what the scheduler reports.
#[derive(Debug, Default)]
struct Recorder {
    runs: Mutex<Vec<Observed>>,
}

impl JobObserver for Recorder {
    fn on_run(
        &self,
        job: &str,
        tenant: Option<TenantId>,
        outcome: Result<u64, &(dyn StdError + Send + Sync + 'static)>,
        _elapsed: Duration,
    ) {
        self.runs.lock().unwrap().push((
            job.to_owned(),
            tenant,
            outcome.map_err(ToString::to_string),
        ));
    }
}

fn scheduler<J: Job + 'static>(
    tenancy: &Tenancy,
    clock: &Arc<FixedClock>,
    jobs: &[Arc<J>],
) -> Scheduler {
    jobs.iter()
        .fold(
            Scheduler::builder(tenancy.clone()).clock(clock.clone()),
            |builder, job| builder.job(job.clone()),
        )
        .build()
        .unwrap()
}

fn at(clock: &FixedClock) -> DateTime<Utc> {
    clock.now().into()
}

async fn state(scheduler: &Scheduler, name: &str) -> JobState {
    scheduler
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .find(|job| job.name == name)
        .unwrap()
}

async fn provision(tenancy: &Tenancy, slug: &str) -> TenantId {
    tenancy
        .provision(TenantSlug::new(slug).unwrap(), slug)
        .await
        .unwrap()
        .id
}

async fn runs_when_due_and_records_its_run(database: DatabaseConfig) {
    let clock = crate::clock();
    let tenancy = build(testkit::builder(database, clock.clone())).await;
    let job = Counting::new("test.platform", JobScope::Platform);
    let scheduler = scheduler(&tenancy, &clock, std::slice::from_ref(&job));

    let started = at(&clock);
    let first = scheduler.tick().await;
    assert_eq!(job.runs(), 1, "a job that never ran is due");
    let report = first.job("test.platform").unwrap();
    assert_eq!((report.targets, report.failures, report.items), (1, 0, 1));
    let recorded = state(&scheduler, "test.platform").await;
    assert_eq!(recorded.last_run_at, Some(started));
    assert_eq!(recorded.lease_holder, None, "the lease is released");

    assert_eq!(scheduler.tick().await.skipped, 1);
    clock.advance(Duration::from_secs(59));
    let early = scheduler.tick().await;
    assert!(early.ran.is_empty());
    assert_eq!(job.runs(), 1, "not run before its period has passed");

    clock.advance(Duration::from_secs(1));
    scheduler.tick().await;
    assert_eq!(job.runs(), 2, "run once its period has passed");
    assert_eq!(
        state(&scheduler, "test.platform").await.last_run_at,
        Some(at(&clock))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_when_due_and_records_its_run_on_postgres() {
    let db = TestDb::new().await;
    runs_when_due_and_records_its_run(postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_when_due_and_records_its_run_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    runs_when_due_and_records_its_run(sqlite(dir.path())).await;
}

async fn per_tenant_runs_and_failures(database: DatabaseConfig) {
    let clock = crate::clock();
    let tenancy = build(testkit::builder(database, clock.clone())).await;
    let a = provision(&tenancy, "sched-a").await;
    let broken = provision(&tenancy, "sched-broken").await;
    let c = provision(&tenancy, "sched-c").await;
    let suspended = provision(&tenancy, "sched-suspended").await;
    tenancy.suspend(suspended).await.unwrap();

    let each = Counting::new("test.each", JobScope::PerTenant);
    let failing = Counting::failing_for("test.failing", "sched-broken");
    let recorder = Arc::new(Recorder::default());
    let scheduler = Scheduler::builder(tenancy.clone())
        .clock(clock.clone())
        .observer(recorder.clone())
        .job(each.clone())
        .job(failing.clone())
        .build()
        .unwrap();
    let report = scheduler.tick().await;

    let mut serving = vec![a, broken, c];
    serving.sort_unstable();
    assert_eq!(each.tenants(), serving, "once per serving tenant");
    assert_eq!(each.runs(), 3);
    let each_report = report.job("test.each").unwrap();
    assert_eq!(
        (each_report.targets, each_report.failures, each_report.items),
        (3, 0, 6)
    );

    let mut others = vec![a, c];
    others.sort_unstable();
    assert_eq!(failing.tenants(), others, "the other tenants still ran");
    let failing_report = report.job("test.failing").unwrap();
    assert_eq!(
        (
            failing_report.targets,
            failing_report.failures,
            failing_report.items
        ),
        (3, 1, 4)
    );
    assert!(
        state(&scheduler, "test.failing")
            .await
            .last_run_at
            .is_some(),
        "a run with a failing tenant is recorded; it is retried next period"
    );

    let observed = recorder.runs.lock().unwrap().clone();
    assert_eq!(observed.len(), 6);
    let failures: Vec<_> = observed.iter().filter(|(_, _, o)| o.is_err()).collect();
    assert_eq!(
        failures,
        [&(
            "test.failing".to_owned(),
            Some(broken),
            Err("this tenant's store is broken".to_owned())
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_jobs_run_once_per_serving_tenant_and_survive_a_failing_one_on_postgres() {
    let db = TestDb::new().await;
    per_tenant_runs_and_failures(postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_jobs_run_once_per_serving_tenant_and_survive_a_failing_one_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    per_tenant_runs_and_failures(sqlite(dir.path())).await;
}

/// Two replicas (two `Tenancy` values on one database) tick at the same moment, several rounds:
/// every job runs exactly once per round.
async fn two_replicas_run_each_job_once(database: impl Fn() -> DatabaseConfig) {
    let clock = crate::clock();
    let a = build(testkit::builder(database(), clock.clone())).await;
    let b = build(testkit::builder(database(), clock.clone())).await;
    provision(&a, "sched-one").await;
    provision(&a, "sched-two").await;
    const NAMES: [&str; 6] = [
        "test.r0", "test.r1", "test.r2", "test.r3", "test.r4", "test.r5",
    ];
    let jobs: Vec<Arc<Counting>> = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let scope = if i % 2 == 0 {
                JobScope::Platform
            } else {
                JobScope::PerTenant
            };
            Counting::new(name, scope)
        })
        .collect();
    let on_a = scheduler(&a, &clock, &jobs);
    let on_b = scheduler(&b, &clock, &jobs);
    assert_ne!(on_a.holder(), on_b.holder());

    for round in 1..=4_u64 {
        let (ra, rb) = tokio::join!(on_a.tick(), on_b.tick());
        assert_eq!(ra.lease_failures + rb.lease_failures, 0);
        assert_eq!(ra.ran.len() + rb.ran.len(), NAMES.len(), "round {round}");
        for (i, job) in jobs.iter().enumerate() {
            let per_round = if i % 2 == 0 { 1 } else { 2 };
            assert_eq!(
                job.runs(),
                per_round * round,
                "{} in round {round}",
                job.name
            );
        }
        clock.advance(Duration::from_secs(60));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_ticking_together_run_a_job_exactly_once_on_postgres() {
    let db = TestDb::new().await;
    two_replicas_run_each_job_once(|| postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_ticking_together_run_a_job_exactly_once_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    two_replicas_run_each_job_once(|| sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_stopped_replica_expires() {
    let db = TestDb::new().await;
    let clock = crate::clock();
    let a = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    let b = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    let job = Arc::new(HangsOnce::default());
    let on_a = scheduler(&a, &clock, std::slice::from_ref(&job));
    let on_b = scheduler(&b, &clock, std::slice::from_ref(&job));

    // Replica a takes the lease and stops in the middle of the run.
    tokio::select! {
        _ = on_a.tick() => panic!("the first run never ends"),
        () = job.started.notified() => {}
    }
    let held = state(&on_a, "test.hangs_once").await;
    assert_eq!(held.lease_holder.as_deref(), Some(on_a.holder()));
    assert_eq!(held.last_run_at, None);

    assert_eq!(on_b.tick().await.skipped, 1, "the lease is held");
    clock.advance(Duration::from_secs(299));
    assert_eq!(on_b.tick().await.skipped, 1, "not expired yet");
    clock.advance(Duration::from_secs(1));
    let report = on_b.tick().await;
    assert!(
        report.job("test.hangs_once").is_some(),
        "b takes the expired lease"
    );
    assert_eq!(job.runs.load(Ordering::SeqCst), 2);
    let done = state(&on_b, "test.hangs_once").await;
    assert_eq!(done.last_run_at, Some(at(&clock)));
    assert_eq!(done.lease_holder, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_scheduler_ticks_in_the_background_until_shut_down() {
    let dir = edk_testkit::temp_dir();
    let clock = crate::clock();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock.clone())).await;
    let job = Counting::new("test.background", JobScope::Platform);
    let scheduler = Scheduler::builder(tenancy.clone())
        .clock(clock.clone())
        .interval(Duration::from_millis(10))
        .job(job.clone())
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let task = scheduler.start(&cancel);
    tokio::time::timeout(DEADLINE, job.ran.notified())
        .await
        .expect("the first tick runs the due job");
    // The run is recorded just after the job returns.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while state(&scheduler, "test.background")
        .await
        .last_run_at
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "run not recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.shutdown().await;
    assert_eq!(job.runs(), 1, "not due again while the clock stands still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_and_settings_fail_the_build() {
    let dir = edk_testkit::temp_dir();
    let tenancy = build(testkit::builder(sqlite(dir.path()), crate::clock())).await;
    let job = Counting::new("test.twice", JobScope::Platform);
    let twice = Scheduler::builder(tenancy.clone())
        .job(job.clone())
        .job(job)
        .build();
    assert!(matches!(
        twice,
        Err(Error::InvalidJob { ref name, reason: "registered twice" }) if name == "test.twice"
    ));
    let bad_name = Scheduler::builder(tenancy.clone())
        .job(Counting::new("Test Job", JobScope::Platform))
        .build();
    assert!(matches!(bad_name, Err(Error::InvalidJob { .. })));
    let zero = Arc::new(Counting {
        period: Duration::ZERO,
        ..Arc::into_inner(Counting::new("test.zero", JobScope::Platform)).unwrap()
    });
    assert!(matches!(
        Scheduler::builder(tenancy.clone()).job(zero).build(),
        Err(Error::InvalidJob {
            reason: "the period must not be zero",
            ..
        })
    ));
    assert!(matches!(
        Scheduler::builder(tenancy.clone())
            .holder(String::new())
            .build(),
        Err(Error::InvalidScheduler { .. })
    ));
    assert!(matches!(
        Scheduler::builder(tenancy).interval(Duration::ZERO).build(),
        Err(Error::InvalidScheduler { .. })
    ));
}

async fn deleted_tenants_are_purged(database: DatabaseConfig) {
    let clock = crate::clock();
    let tenancy = build(testkit::builder(database, clock.clone())).await;
    let kept = provision(&tenancy, "sched-kept").await;
    let gone = provision(&tenancy, "sched-gone").await;
    tenancy.delete(gone).await.unwrap();
    let job = PurgeDeletedTenants::new(tenancy.clone()).period(Duration::from_secs(600));
    let scheduler = Scheduler::builder(tenancy.clone())
        .clock(clock.clone())
        .job(Arc::new(job))
        .build()
        .unwrap();

    let early = scheduler.tick().await;
    assert_eq!(
        early.job(PurgeDeletedTenants::NAME).unwrap().items,
        0,
        "within the grace period"
    );
    assert!(tenancy.tenant(gone).await.is_ok());

    // The suite's grace period is an hour.
    clock.advance(Duration::from_secs(3600));
    let report = scheduler.tick().await;
    assert_eq!(report.job(PurgeDeletedTenants::NAME).unwrap().items, 1);
    assert!(matches!(
        tenancy.tenant(gone).await,
        Err(Error::TenantNotFound)
    ));
    assert!(tenancy.tenant(kept).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_job_removes_deleted_tenants_on_postgres() {
    let db = TestDb::new().await;
    deleted_tenants_are_purged(postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_job_removes_deleted_tenants_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    deleted_tenants_are_purged(sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_job_removes_old_event_payloads() {
    let db = TestDb::new().await;
    let clock = crate::clock();
    let tenancy = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    let big = |n: u32| Event::Custom {
        topic: "test.big".to_owned(),
        payload: json!({ "n": n, "blob": "x".repeat(20_000) }),
    };
    tenancy.events().publish(big(1)).await.unwrap();
    let job = PurgeEventPayloads::new(tenancy.clone()).retention(Duration::from_secs(3600));
    let scheduler = Scheduler::builder(tenancy.clone())
        .clock(clock.clone())
        .job(Arc::new(job))
        .build()
        .unwrap();
    let stored = || async {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM edk_platform.platform_event")
            .fetch_one(&db.pool())
            .await
            .unwrap();
        count
    };
    assert_eq!(stored().await, 1);
    assert_eq!(
        scheduler
            .tick()
            .await
            .job(PurgeEventPayloads::NAME)
            .unwrap()
            .items,
        0,
        "younger than the retention"
    );

    clock.advance(Duration::from_secs(2 * 3600));
    tenancy.events().publish(big(2)).await.unwrap();
    assert_eq!(stored().await, 2);
    let report = scheduler.tick().await;
    assert_eq!(report.job(PurgeEventPayloads::NAME).unwrap().items, 1);
    let (left,): (sqlx::types::Json<serde_json::Value>,) =
        sqlx::query_as("SELECT payload FROM edk_platform.platform_event")
            .fetch_one(&db.pool())
            .await
            .unwrap();
    assert_eq!(left.0["payload"]["n"], 2, "the recent payload is kept");
}
