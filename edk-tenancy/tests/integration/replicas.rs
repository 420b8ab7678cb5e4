//! Two directory instances on one PostgreSQL database stand for two replicas.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use edk_core::{FixedClock, TenantSlug};
use edk_tenancy::testkit::{self, OFFER_TTL, bind_issuer, request};
use edk_tenancy::{Event, ResolveError, ServiceType, Tenancy, TenantDirectory};
use edk_testkit::TestDb;
use edk_testkit::private_postgres::PrivatePostgres;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{build, postgres};

/// Generous: the machine may be busy. What is asserted is that the change arrives without the
/// TTL expiring (the clocks stand still), not how fast.
const DEADLINE: Duration = Duration::from_secs(10);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn replicas(db: &TestDb) -> (Tenancy, Tenancy, Arc<FixedClock>) {
    let clock = crate::clock();
    let a = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    let b = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    (a, b, clock)
}

async fn issuer_of(tenancy: &Tenancy, host: &str) -> Result<edk_core::TenantId, ResolveError> {
    tenancy
        .resolve(ServiceType::Issuer, &request(host, "/credential"))
        .await
        .map(|r| r.context.id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_config_and_suspension_reach_the_other_replica_by_notify() {
    let db = TestDb::new().await;
    let (a, b, _clock) = replicas(&db).await;
    let cancel = CancellationToken::new();
    let _task_a = a.start(&cancel);
    let mut task_b = b.start(&cancel);
    task_b.wait_connected(0).await;

    let t = a
        .provision(TenantSlug::new("replicated").unwrap(), "R")
        .await
        .unwrap();
    bind_issuer(&a, t.id, "one.example", "").await;
    // b caches the route and the tenant.
    assert_eq!(issuer_of(&b, "one.example").await.unwrap(), t.id);
    assert_eq!(b.context(t.id).await.unwrap().config().get(&OFFER_TTL), 300);

    bind_issuer(&a, t.id, "two.example", "").await;
    eventually("rebinding", || async {
        issuer_of(&b, "two.example").await.is_ok()
    })
    .await;
    assert!(matches!(
        issuer_of(&b, "one.example").await,
        Err(ResolveError::NotBound)
    ));

    a.set_config(Some(t.id), OFFER_TTL.name(), json!(900), None)
        .await
        .unwrap();
    eventually("tenant config", || async {
        b.context(t.id).await.unwrap().config().get(&OFFER_TTL) == 900
    })
    .await;

    a.suspend(t.id).await.unwrap();
    eventually("suspension", || async {
        matches!(
            issuer_of(&b, "two.example").await,
            Err(ResolveError::NotServing)
        )
    })
    .await;
    a.resume(t.id).await.unwrap();
    eventually("resumption", || async {
        issuer_of(&b, "two.example").await.is_ok()
    })
    .await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notify_the_ttl_bounds_staleness() {
    let db = TestDb::new().await;
    let (a, b, clock) = replicas(&db).await;
    // No listener runs: notifications are cut.
    let t = a
        .provision(TenantSlug::new("stale").unwrap(), "S")
        .await
        .unwrap();
    bind_issuer(&a, t.id, "stale.example", "").await;
    assert_eq!(issuer_of(&b, "stale.example").await.unwrap(), t.id);

    a.suspend(t.id).await.unwrap();
    bind_issuer(&a, t.id, "fresh.example", "").await;
    assert_eq!(
        issuer_of(&b, "stale.example").await.unwrap(),
        t.id,
        "b still trusts its cache"
    );

    clock.advance(Duration::from_secs(11));
    assert!(
        matches!(
            issuer_of(&b, "stale.example").await,
            Err(ResolveError::NotBound)
        ),
        "the old route expired"
    );
    assert!(matches!(
        issuer_of(&b, "fresh.example").await,
        Err(ResolveError::NotServing)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_recover_after_their_listener_connections_are_killed() {
    let db = TestDb::new().await;
    let (a, b, _clock) = replicas(&db).await;
    let cancel = CancellationToken::new();
    let mut task_a = a.start(&cancel);
    let mut task_b = b.start(&cancel);
    task_a.wait_connected(0).await;
    task_b.wait_connected(0).await;
    let t = a
        .provision(TenantSlug::new("restart").unwrap(), "R")
        .await
        .unwrap();
    bind_issuer(&a, t.id, "before.example", "").await;
    eventually("initial binding", || async {
        issuer_of(&b, "before.example").await.is_ok()
    })
    .await;

    // What a database restart does to the listeners, without disturbing other tests.
    let (before_a, before_b) = (task_a.connections(), task_b.connections());
    let (killed,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = 'edk-events'",
    )
    .bind(db.name())
    .fetch_one(&db.pool())
    .await
    .unwrap();
    assert_eq!(killed, 2);
    tokio::time::timeout(DEADLINE, task_a.wait_connected(before_a))
        .await
        .expect("a reconnects");
    tokio::time::timeout(DEADLINE, task_b.wait_connected(before_b))
        .await
        .expect("b reconnects");

    bind_issuer(&a, t.id, "after.example", "").await;
    eventually("binding after reconnect", || async {
        issuer_of(&b, "after.example").await.is_ok()
    })
    .await;
    b.suspend(t.id).await.unwrap();
    eventually("suspension after reconnect", || async {
        matches!(
            issuer_of(&a, "after.example").await,
            Err(ResolveError::NotServing)
        )
    })
    .await;
    task_a.shutdown().await;
    task_b.shutdown().await;
}

/// A replica cut off from the database misses the other's notifications: its role may no
/// longer log in and its connections (the listener's among them) are killed, so it cannot
/// resubscribe. Changes made meanwhile are not seen; once it may connect again, its listener
/// resubscribes, drops what it cached and reads the changes, with the clocks standing still
/// (the cache TTL never expires, so only the resubscription can explain the convergence). Then
/// it receives notifications again. On a private server: the test creates and alters a role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_notify_catches_up_when_its_listener_reconnects() {
    let server = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect(&server.url()).await.unwrap();
    sqlx::query("CREATE ROLE replica_b LOGIN SUPERUSER")
        .execute(&admin)
        .await
        .unwrap();
    let url_b = server
        .url()
        .replacen("postgres://edk@", "postgres://replica_b@", 1);
    let clock = crate::clock();
    let a = build(testkit::builder(postgres(&server.url()), clock.clone())).await;
    let b = build(testkit::builder(postgres(&url_b), clock.clone())).await;
    let cancel = CancellationToken::new();
    let mut task_a = a.start(&cancel);
    let mut task_b = b.start(&cancel);
    task_a.wait_connected(0).await;
    task_b.wait_connected(0).await;

    let t = a
        .provision(TenantSlug::new("partitioned").unwrap(), "P")
        .await
        .unwrap();
    bind_issuer(&a, t.id, "one.example", "").await;
    eventually("initial binding", || async {
        issuer_of(&b, "one.example").await.is_ok()
    })
    .await;
    assert_eq!(b.context(t.id).await.unwrap().config().get(&OFFER_TTL), 300);

    // The partition: b may not log in, and every connection it holds is cut.
    let before = task_b.connections();
    sqlx::query("ALTER ROLE replica_b NOLOGIN")
        .execute(&admin)
        .await
        .unwrap();
    let (killed,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE usename = 'replica_b' AND application_name = 'edk-events'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(killed, 1, "b's listener connection");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'replica_b'",
    )
    .execute(&admin)
    .await
    .unwrap();

    // Changes b cannot hear about.
    bind_issuer(&a, t.id, "two.example", "").await;
    a.set_config(Some(t.id), OFFER_TTL.name(), json!(900), None)
        .await
        .unwrap();
    assert_eq!(
        issuer_of(&b, "one.example").await.unwrap(),
        t.id,
        "b still answers from its cache"
    );
    assert_eq!(task_b.connections(), before, "b could not resubscribe");

    // The partition heals.
    sqlx::query("ALTER ROLE replica_b LOGIN")
        .execute(&admin)
        .await
        .unwrap();
    tokio::time::timeout(DEADLINE, task_b.wait_connected(before))
        .await
        .expect("b's listener reconnects");
    eventually("the binding changed while cut off", || async {
        issuer_of(&b, "two.example").await.is_ok()
    })
    .await;
    assert!(matches!(
        issuer_of(&b, "one.example").await,
        Err(ResolveError::NotBound)
    ));
    eventually("the configuration changed while cut off", || async {
        b.context(t.id).await.unwrap().config().get(&OFFER_TTL) == 900
    })
    .await;

    // And b hears notifications again.
    a.suspend(t.id).await.unwrap();
    eventually("a suspension after the partition", || async {
        matches!(
            issuer_of(&b, "two.example").await,
            Err(ResolveError::NotServing)
        )
    })
    .await;

    task_a.shutdown().await;
    task_b.shutdown().await;
    drop((a, b));
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_travel_by_reference() {
    let db = TestDb::new().await;
    let (a, b, _clock) = replicas(&db).await;
    let cancel = CancellationToken::new();
    let mut task_b = b.start(&cancel);
    task_b.wait_connected(0).await;
    let mut received = b.events().subscribe();

    let big = Event::Custom {
        topic: "test.big".to_owned(),
        payload: json!({ "blob": "x".repeat(20_000) }),
    };
    let small = Event::Custom {
        topic: "test.small".to_owned(),
        payload: json!({ "n": 1 }),
    };
    a.events().publish(big.clone()).await.unwrap();
    a.events().publish(small.clone()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(DEADLINE, received.recv())
            .await
            .expect("event")
            .unwrap();
        if matches!(event, Event::Custom { .. }) {
            seen.push(event);
        }
    }
    assert_eq!(seen, [big, small]);
    task_b.shutdown().await;
}
