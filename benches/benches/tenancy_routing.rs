//! Tenancy benchmarks: route resolution over 10,000 tenants, provisioning per tenant on
//! PostgreSQL and SQLite, and the time from a change on one replica to its invalidation on
//! another (LISTEN/NOTIFY).
//!
//! Run with: cargo bench -p edk-benches --bench tenancy_routing -- --quick
//!
//! Besides criterion's figures, the routing group prints the p50/p99 of single lookups and the
//! resident memory the 10,000-binding table added (Linux `/proc/self/statm`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_main};
use edk_core::{FixedClock, TenantId, TenantSlug};
use edk_tenancy::endpoint::RoutingTable;
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy, TenantDirectory,
    WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const TENANTS: usize = 10_000;

/// Half the tenants on a host of their own, half under a path prefix of one shared host.
fn bindings() -> Vec<EndpointBinding> {
    (0..TENANTS)
        .map(|i| {
            let (host, prefix) = if i % 2 == 0 {
                (format!("t{i}.issuer.example"), String::new())
            } else {
                ("shared.issuer.example".to_owned(), format!("/t{i}"))
            };
            EndpointBinding::new(
                TenantId::generate(),
                ServiceType::Issuer,
                &host,
                None,
                &prefix,
                WellKnownLayout::Both,
            )
            .unwrap()
        })
        .collect()
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn routing(c: &mut Criterion) {
    let bindings = bindings();
    let before = resident_bytes();
    let table = RoutingTable::new(bindings);
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        eprintln!(
            "routing table with {TENANTS} bindings: about {} KiB resident",
            after.saturating_sub(before) / 1024
        );
    }
    let own_host = EndpointRequest::new("https", "T4242.Issuer.Example", None, "/credential");
    let shared = EndpointRequest::new("https", "shared.issuer.example", None, "/t4243/credential");
    let well_known = EndpointRequest::new(
        "https",
        "shared.issuer.example",
        None,
        "/.well-known/openid-credential-issuer/t4243",
    );
    let unknown = EndpointRequest::new("https", "nobody.example", None, "/credential");

    let mut samples: Vec<Duration> = Vec::with_capacity(100_000);
    for i in 0..100_000 {
        let request = if i % 2 == 0 { &own_host } else { &shared };
        let start = Instant::now();
        black_box(table.lookup(ServiceType::Issuer, request).unwrap());
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    eprintln!(
        "single lookups over {TENANTS} tenants: p50 {:?}, p99 {:?}, max {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        samples[samples.len() - 1]
    );

    let mut group = c.benchmark_group("routing_10k");
    group.bench_function("own_host", |b| {
        b.iter(|| table.lookup(ServiceType::Issuer, black_box(&own_host)))
    });
    group.bench_function("shared_host_prefix", |b| {
        b.iter(|| table.lookup(ServiceType::Issuer, black_box(&shared)))
    });
    group.bench_function("well_known_inserted", |b| {
        b.iter(|| table.lookup(ServiceType::Issuer, black_box(&well_known)))
    });
    group.bench_function("unknown_host", |b| {
        b.iter(|| table.lookup(ServiceType::Issuer, black_box(&unknown)))
    });
    group.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn postgres(url: &str) -> DatabaseConfig {
    DatabaseConfig::Postgres(PostgresConfig::new(SecretString::from(url)))
}

async fn tenancy(database: DatabaseConfig) -> Tenancy {
    Tenancy::builder(database)
        .clock(Arc::new(FixedClock::at_unix(1_700_000_000)))
        .migrations(edk_tenancy::testkit::fixture_migrations())
        .build()
        .await
        .unwrap()
}

fn resolve_cached(c: &mut Criterion) {
    let rt = runtime();
    let dir = edk_testkit::temp_dir();
    let tenancy = rt.block_on(async {
        let tenancy = tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await;
        let t = tenancy
            .provision(TenantSlug::new("bench").unwrap(), "Bench")
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            t.id,
            ServiceType::Issuer,
            "bench.example",
            None,
            "/b",
            WellKnownLayout::Both,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
        tenancy
    });
    let request = EndpointRequest::new("https", "bench.example", None, "/b/credential");
    c.bench_function("tenancy_resolve_cached", |b| {
        b.to_async(&rt).iter(|| async {
            tenancy
                .resolve(ServiceType::Issuer, black_box(&request))
                .await
                .unwrap()
        })
    });
}

fn provisioning(c: &mut Criterion) {
    let rt = runtime();
    let counter = AtomicUsize::new(0);
    let mut group = c.benchmark_group("provision_per_tenant");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    let dir = edk_testkit::temp_dir();
    let sqlite = rt.block_on(tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(
        dir.path(),
    ))));
    group.bench_function("sqlite", |b| {
        b.to_async(&rt).iter(|| async {
            let slug = format!("s{}", counter.fetch_add(1, Ordering::Relaxed));
            sqlite
                .provision(TenantSlug::new(slug).unwrap(), "Bench")
                .await
                .unwrap()
        })
    });

    let db = rt.block_on(TestDb::new());
    let pg = rt.block_on(tenancy(postgres(db.url())));
    group.bench_function("postgres", |b| {
        b.to_async(&rt).iter(|| async {
            let slug = format!("p{}", counter.fetch_add(1, Ordering::Relaxed));
            pg.provision(TenantSlug::new(slug).unwrap(), "Bench")
                .await
                .unwrap()
        })
    });
    group.finish();
}

fn notify_latency(c: &mut Criterion) {
    let rt = runtime();
    let db = rt.block_on(TestDb::new());
    let cancel = CancellationToken::new();
    let (a, b, tenant, _task) = rt.block_on(async {
        let a = tenancy(postgres(db.url())).await;
        let b = tenancy(postgres(db.url())).await;
        let mut task = b.start(&cancel);
        task.wait_connected(0).await;
        let t = a
            .provision(TenantSlug::new("notify").unwrap(), "N")
            .await
            .unwrap();
        (a, b, t.id, task)
    });
    let counter = AtomicUsize::new(0);
    let mut group = c.benchmark_group("notify");
    group.sample_size(20);
    group.bench_function("bind_on_a_until_resolved_on_b", |bench| {
        bench.to_async(&rt).iter_custom(|iterations| {
            let (a, b, counter) = (&a, &b, &counter);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let host = format!("n{}.example", counter.fetch_add(1, Ordering::Relaxed));
                    let binding = EndpointBinding::new(
                        tenant,
                        ServiceType::Issuer,
                        &host,
                        None,
                        "",
                        WellKnownLayout::Both,
                    )
                    .unwrap();
                    let request = EndpointRequest::new("https", &host, None, "/");
                    // b caches the table without the new host first.
                    assert!(b.resolve(ServiceType::Issuer, &request).await.is_err());
                    let start = Instant::now();
                    a.bind(&binding).await.unwrap();
                    while b.resolve(ServiceType::Issuer, &request).await.is_err() {
                        tokio::task::yield_now().await;
                    }
                    total += start.elapsed();
                }
                total
            }
        })
    });
    group.finish();
    cancel.cancel();
}

mod group {
    #![allow(
        missing_docs,
        unreachable_pub,
        reason = "generated by criterion_group!"
    )]
    use super::{notify_latency, provisioning, resolve_cached, routing};

    criterion::criterion_group!(
        benches,
        routing,
        resolve_cached,
        provisioning,
        notify_latency
    );
}

criterion_main!(group::benches);
