//! The transactional outbox: events survive a process killed between commit and publication,
//! two relays deliver each event once and in tenant order, failed publications are retried,
//! delivered rows are purged, and appends follow their transaction.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::{FixedClock, TenantId, TenantSlug};
use edk_tenancy::error::Error;
use edk_tenancy::scheduler::{Job, JobTarget, PurgeEventPayloads};
use edk_tenancy::testkit::{self, OFFER_TTL, bind_issuer};
use edk_tenancy::{
    DatabaseConfig, Delivery, Event, EventBus, EventId, OutboxRelay, PlatformTx, RelayOptions,
    Tenancy, TenancyOptions, TenantDirectory, TenantStatus, TenantTx,
};
use edk_testkit::TestDb;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{build, clock, postgres, sqlite};

/// Generous: the machine may be busy. What is asserted is what arrives, not how fast.
const DEADLINE: Duration = Duration::from_secs(20);

/// Set in the child process: the database it commits to.
const CHILD_DATABASE: &str = "EDK_OUTBOX_TEST_CHILD_DATABASE";
/// Set in the child process: the tenant it changes.
const CHILD_TENANT: &str = "EDK_OUTBOX_TEST_CHILD_TENANT";
/// What the child prints once its changes are committed.
const COMMITTED: &str = "outbox-child: committed";

fn options(relay: bool) -> TenancyOptions {
    TenancyOptions {
        cache_ttl: Duration::from_secs(10),
        delete_grace: Duration::from_secs(3600),
        outbox_relay: relay,
        ..TenancyOptions::default()
    }
}

async fn instance(database: DatabaseConfig, clock: Arc<FixedClock>, relay: bool) -> Tenancy {
    build(testkit::builder(database, clock).options(options(relay))).await
}

fn custom(tenant: TenantId, seq: u64) -> Event {
    Event::Custom {
        topic: "test.sequence".to_owned(),
        payload: json!({ "tenant": tenant, "seq": seq }),
    }
}

fn sequence_of(event: &Event) -> Option<(String, u64)> {
    match event {
        Event::Custom { topic, payload } if topic == "test.sequence" => Some((
            payload["tenant"].as_str()?.to_owned(),
            payload["seq"].as_u64()?,
        )),
        _ => None,
    }
}

async fn next(receiver: &mut broadcast::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(DEADLINE, receiver.recv())
        .await
        .expect("a delivery before the deadline")
        .expect("the bus is open")
}

/// Receives until every id of `expected` arrived, then until a sentinel published after
/// them arrives (so that a repeat sent before it would have been seen); returns how often
/// each id arrived, and the deliveries in order.
async fn collect(
    receiver: &mut broadcast::Receiver<Delivery>,
    expected: &[EventId],
    sentinel_bus: &Arc<dyn EventBus>,
) -> (HashMap<EventId, usize>, Vec<Delivery>) {
    let mut seen: HashMap<EventId, usize> = HashMap::new();
    let mut order = Vec::new();
    while !expected.iter().all(|id| seen.contains_key(id)) {
        let delivery = next(receiver).await;
        *seen.entry(delivery.id).or_default() += 1;
        order.push(delivery);
    }
    let sentinel = Event::Custom {
        topic: "test.sentinel".to_owned(),
        payload: json!({ "nonce": Uuid::new_v4() }),
    };
    sentinel_bus.publish(sentinel.clone()).await.unwrap();
    loop {
        let delivery = next(receiver).await;
        if delivery.event == sentinel {
            break;
        }
        *seen.entry(delivery.id).or_default() += 1;
        order.push(delivery);
    }
    (seen, order)
}

/// Runs `relay` until it has nothing left to deliver.
async fn drain(relay: &OutboxRelay) -> u64 {
    let mut delivered = 0;
    loop {
        let report = relay.run_once().await.expect("relay");
        assert!(report.leader, "the only relay holds the lease");
        delivered += report.delivered;
        if !report.more {
            return delivered;
        }
    }
}

/// The undelivered outbox rows, in order: (event id, attempts).
async fn pending(database: &Database) -> Vec<(EventId, i32)> {
    let rows: Vec<(Uuid, i32)> = match database {
        Database::Postgres(db) => sqlx::query_as(
            "SELECT event_id, attempts FROM edk_platform.event_outbox \
             WHERE delivered_at IS NULL ORDER BY id",
        )
        .fetch_all(&db.pool())
        .await
        .unwrap(),
        Database::Sqlite(dir) => {
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("platform.db")),
            )
            .await
            .unwrap();
            let rows = sqlx::query_as(
                "SELECT event_id, attempts FROM event_outbox \
                 WHERE delivered_at IS NULL ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter()
        .map(|(id, attempts)| (EventId::from_uuid(id), attempts))
        .collect()
}

enum Database {
    Postgres(TestDb),
    Sqlite(tempfile::TempDir),
}

impl Database {
    fn config(&self) -> DatabaseConfig {
        match self {
            Self::Postgres(db) => postgres(db.url()),
            Self::Sqlite(dir) => sqlite(dir.path()),
        }
    }

    fn child_argument(&self) -> String {
        match self {
            Self::Postgres(db) => format!("postgres:{}", db.url()),
            Self::Sqlite(dir) => format!("sqlite:{}", dir.path().display()),
        }
    }
}

/// The child's part of the kill test; does nothing unless started by it. The child runs no
/// relay: it commits three registry changes with their outbox events, says so, and waits to
/// be killed, so it stops after the commits and before any publication to other processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_kill_child() {
    let Ok(database) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let config = match database.split_once(':') {
        Some(("postgres", url)) => postgres(url),
        Some(("sqlite", dir)) => sqlite(Path::new(dir)),
        _ => panic!("unknown child database {database}"),
    };
    let tenant: TenantId = std::env::var(CHILD_TENANT).unwrap().parse().unwrap();
    let tenancy = instance(config, clock(), false).await;
    bind_issuer(&tenancy, tenant, "killed.example", "").await;
    tenancy
        .set_config(Some(tenant), OFFER_TTL.name(), json!(120), None)
        .await
        .unwrap();
    tenancy.suspend(tenant).await.unwrap();
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{COMMITTED}").unwrap();
        stdout.flush().unwrap();
    }
    std::future::pending::<()>().await;
}

/// Starts the child on `database` for `tenant`, waits until it committed, and kills it.
fn run_and_kill_child(database: &Database, tenant: TenantId) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "outbox::outbox_kill_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, database.child_argument())
        .env(CHILD_TENANT, tenant.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let committed = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(COMMITTED));
    // SIGKILL: nothing in the child runs after this.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(committed, "the child committed before it was killed");
    assert!(!status.success(), "the child was killed, not finished");
}

async fn a_killed_process_loses_no_event(database: Database) {
    let clock = clock();
    // The parent: provisions the tenant, and later relays. No relay runs until then.
    let parent = instance(database.config(), clock.clone(), false).await;
    let cancel = CancellationToken::new();
    // The subscriber: on PostgreSQL another replica listening, on SQLite the parent itself.
    let (subscriber, _task) = match &database {
        Database::Postgres(_) => {
            let other = instance(database.config(), clock.clone(), false).await;
            let mut task = other.start(&cancel);
            task.wait_connected(0).await;
            (other, Some(task))
        }
        Database::Sqlite(_) => (parent.clone(), None),
    };
    let mut received = subscriber.events().subscribe_deliveries();
    let tenant = parent
        .provision(TenantSlug::new("killed").unwrap(), "Killed")
        .await
        .unwrap();

    run_and_kill_child(&database, tenant.id);

    // The changes are committed, and their events wait in the outbox.
    assert_eq!(
        parent.tenant(tenant.id).await.unwrap().status,
        TenantStatus::Suspended
    );
    let waiting: Vec<EventId> = pending(&database)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        waiting.len(),
        4,
        "provisioned, bound, configured, suspended"
    );

    let relay = OutboxRelay::new(&parent);
    assert_eq!(drain(&relay).await, 4);
    assert!(
        pending(&database).await.is_empty(),
        "every event is marked delivered"
    );
    let (seen, order) = collect(&mut received, &waiting, parent.events()).await;
    for id in &waiting {
        assert_eq!(seen.get(id), Some(&1), "event {id} arrives exactly once");
    }
    let events: Vec<_> = order.iter().map(|d| d.event.clone()).collect();
    let tail = &events[events.len() - 3..];
    assert_eq!(
        tail,
        [
            Event::BindingsChanged { tenant: tenant.id },
            Event::ConfigChanged {
                tenant: Some(tenant.id)
            },
            Event::TenantStatusChanged {
                tenant: tenant.id,
                status: TenantStatus::Suspended
            },
        ],
        "the killed process's events, in their order"
    );
    // A second relay finds nothing to do: nothing is published twice.
    assert_eq!(drain(&relay).await, 0);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_process_killed_after_commit_loses_no_event() {
    a_killed_process_loses_no_event(Database::Postgres(TestDb::new().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_process_killed_after_commit_loses_no_event() {
    a_killed_process_loses_no_event(Database::Sqlite(edk_testkit::temp_dir())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_relays_deliver_each_event_once_in_tenant_order() {
    let db = TestDb::new().await;
    let clock = clock();
    let cancel = CancellationToken::new();
    // Two replicas, each running its relay (started by `start`), and a third that listens.
    let a = instance(postgres(db.url()), clock.clone(), true).await;
    let b = instance(postgres(db.url()), clock.clone(), true).await;
    let listener = instance(postgres(db.url()), clock.clone(), false).await;
    let _task_a = a.start(&cancel);
    let _task_b = b.start(&cancel);
    let mut task_listener = listener.start(&cancel);
    task_listener.wait_connected(0).await;
    let mut received = listener.events().subscribe_deliveries();

    let mut tenants = Vec::new();
    for n in 0..3 {
        let slug = TenantSlug::new(format!("ordered-{n}")).unwrap();
        tenants.push(a.provision(slug, "Ordered").await.unwrap().id);
    }
    const PER_TENANT: u64 = 20;
    // Each tenant's events are appended one after another, alternately through either
    // replica; the tenants run concurrently.
    let writers = tenants.iter().map(|&tenant| {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let mut ids = Vec::new();
            for seq in 0..PER_TENANT {
                let through = if seq % 2 == 0 { &a } else { &b };
                let mut tx = through.begin_platform().await.unwrap();
                ids.push(
                    tx.append_event(Some(tenant), custom(tenant, seq))
                        .await
                        .unwrap(),
                );
                tx.commit().await.unwrap();
            }
            ids
        }
    });
    let ids: Vec<EventId> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();

    let (seen, order) = collect(&mut received, &ids, listener.events()).await;
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id} arrives exactly once");
    }
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for delivery in &order {
        if let Some((tenant, seq)) = sequence_of(&delivery.event)
            && let Some(previous) = last.insert(tenant.clone(), seq)
        {
            assert!(seq > previous, "tenant {tenant}: {seq} after {previous}");
        }
    }
    assert_eq!(last.len(), 3);
    assert!(last.values().all(|&seq| seq == PER_TENANT - 1));
    cancel.cancel();
}

/// A bus on which relaying one event fails a number of times before it goes through.
#[derive(Debug)]
struct FailingBus {
    inner: Arc<dyn EventBus>,
    failing: EventId,
    failures: AtomicUsize,
}

#[async_trait]
impl EventBus for FailingBus {
    async fn publish(&self, event: Event) -> Result<(), Error> {
        self.inner.publish(event).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.subscribe()
    }

    fn subscribe_deliveries(&self) -> broadcast::Receiver<Delivery> {
        self.inner.subscribe_deliveries()
    }

    fn origin(&self) -> Uuid {
        self.inner.origin()
    }

    fn deliver_local(&self, delivery: Delivery) {
        self.inner.deliver_local(delivery);
    }

    async fn relay(&self, origin: Uuid, delivery: Delivery) -> Result<(), Error> {
        let left = self.failures.load(Ordering::SeqCst);
        if delivery.id == self.failing && left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(Error::Events {
                what: "the test bus refused",
                source: None,
            });
        }
        self.inner.relay(origin, delivery).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_failed_publication_is_retried_and_keeps_the_tenant_order() {
    let db = TestDb::new().await;
    let database = Database::Postgres(db);
    let clock = clock();
    let cancel = CancellationToken::new();
    let writer = instance(database.config(), clock.clone(), false).await;
    let listener = instance(database.config(), clock.clone(), false).await;
    let mut task = listener.start(&cancel);
    task.wait_connected(0).await;
    let mut received = listener.events().subscribe_deliveries();
    let first = TenantId::generate();
    let second = TenantId::generate();

    let mut ids = Vec::new();
    for (tenant, seq) in [(first, 0), (first, 1), (second, 0)] {
        let mut tx = writer.begin_platform().await.unwrap();
        ids.push(
            tx.append_event(Some(tenant), custom(tenant, seq))
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    let relay = OutboxRelay::new(&writer)
        .bus(Arc::new(FailingBus {
            inner: Arc::clone(writer.events()),
            failing: ids[0],
            failures: AtomicUsize::new(2),
        }))
        .options(RelayOptions {
            retry_base: Duration::from_secs(1),
            ..RelayOptions::default()
        });

    // The first event fails: the tenant's second waits behind it, the other tenant's goes.
    let report = relay.run_once().await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 1));
    assert_eq!(pending(&database).await, [(ids[0], 1), (ids[1], 0)]);
    // Not due yet (the clock stands still): nothing is attempted.
    let report = relay.run_once().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 0));
    // Due after one second; fails again, then waits two.
    clock.advance(Duration::from_secs(1));
    assert_eq!(relay.run_once().await.unwrap().failed, 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        relay.run_once().await.unwrap().delivered,
        0,
        "backoff doubled"
    );
    clock.advance(Duration::from_secs(1));
    let report = relay.run_once().await.unwrap();
    assert_eq!((report.delivered, report.failed), (2, 0));
    assert!(pending(&database).await.is_empty());

    let (seen, order) = collect(&mut received, &ids, writer.events()).await;
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id} arrives exactly once");
    }
    let first_tenant: Vec<u64> = order
        .iter()
        .filter_map(|d| sequence_of(&d.event))
        .filter(|(tenant, _)| *tenant == first.to_string())
        .map(|(_, seq)| seq)
        .collect();
    assert_eq!(
        first_tenant,
        [0, 1],
        "the tenant's order survives the retries"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_delivered_events_are_purged_after_the_retention() {
    let dir = edk_testkit::temp_dir();
    let database = Database::Sqlite(dir);
    let clock = clock();
    let tenancy = instance(database.config(), clock.clone(), false).await;
    let tenant = TenantId::generate();
    for seq in 0..2 {
        let mut tx = tenancy.begin_platform().await.unwrap();
        tx.append_event(Some(tenant), custom(tenant, seq))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let relay = OutboxRelay::new(&tenancy);
    assert_eq!(drain(&relay).await, 2);
    let mut tx = tenancy.begin_platform().await.unwrap();
    let waiting = tx
        .append_event(Some(tenant), custom(tenant, 2))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let job = PurgeEventPayloads::new(tenancy.clone()).retention(Duration::from_secs(3600));
    let now =
        |clock: &FixedClock| chrono::DateTime::<chrono::Utc>::from(edk_core::Clock::now(clock));
    assert_eq!(
        job.run(JobTarget::Platform, now(&clock)).await.unwrap(),
        0,
        "kept for an hour"
    );
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(job.run(JobTarget::Platform, now(&clock)).await.unwrap(), 2);
    assert_eq!(
        pending(&database).await,
        [(waiting, 0)],
        "an undelivered event is never purged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_event_appended_in_a_tenant_transaction_commits_with_it() {
    let db = TestDb::new().await;
    let database = Database::Postgres(db);
    let tenancy = instance(database.config(), clock(), false).await;
    let tenant = tenancy
        .provision(TenantSlug::new("appender").unwrap(), "Appender")
        .await
        .unwrap();
    drain(&OutboxRelay::new(&tenancy)).await;
    let context = tenancy.context(tenant.id).await.unwrap();
    let mut local = tenancy.events().subscribe_deliveries();

    // Rolled back: neither the note nor the event exists, and nothing was delivered.
    let mut tx = tenancy.databases().begin(&context).await.unwrap();
    let TenantTx::Postgres(inner) = &mut tx else {
        panic!("a PostgreSQL transaction");
    };
    assert!(inner.has_outbox());
    sqlx::query("INSERT INTO testkit_note (body) VALUES ('rolled back')")
        .execute(&mut **inner)
        .await
        .unwrap();
    tx.append_event(Some(tenant.id), custom(tenant.id, 0))
        .await
        .unwrap();
    drop(tx);
    assert!(pending(&database).await.is_empty());
    assert!(local.try_recv().is_err());

    // Committed: both, and the event is delivered here at once and waits for the relay.
    let mut tx = tenancy.databases().begin(&context).await.unwrap();
    let TenantTx::Postgres(inner) = &mut tx else {
        panic!("a PostgreSQL transaction");
    };
    sqlx::query("INSERT INTO testkit_note (body) VALUES ('kept')")
        .execute(&mut **inner)
        .await
        .unwrap();
    let id = tx
        .append_event(Some(tenant.id), custom(tenant.id, 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        testkit::read_notes(&tenancy, &context).await.unwrap(),
        ["kept"]
    );
    assert_eq!(pending(&database).await, [(id, 0)]);
    let delivered = local.try_recv().unwrap();
    assert_eq!(delivered.id, id);
    assert_eq!(
        sequence_of(&delivered.event),
        Some((tenant.id.to_string(), 1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_tenant_file_has_no_outbox_but_the_platform_transaction_has() {
    let dir = edk_testkit::temp_dir();
    let database = Database::Sqlite(dir);
    let tenancy = instance(database.config(), clock(), false).await;
    let tenant = tenancy
        .provision(TenantSlug::new("filed").unwrap(), "Filed")
        .await
        .unwrap();
    drain(&OutboxRelay::new(&tenancy)).await;
    let context = tenancy.context(tenant.id).await.unwrap();
    let mut tx = tenancy.databases().begin(&context).await.unwrap();
    assert!(matches!(
        tx.append_event(Some(tenant.id), custom(tenant.id, 0)).await,
        Err(Error::OutboxUnreachable)
    ));
    drop(tx);

    let mut tx = tenancy.begin_platform().await.unwrap();
    let PlatformTx::Sqlite(_) = &tx else {
        panic!("a SQLite transaction");
    };
    let id = tx.append_event(None, custom(tenant.id, 1)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pending(&database).await, [(id, 0)]);
}
