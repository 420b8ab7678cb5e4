//! The scale harness: `--tenants` tenants (10,000 by default) on a fresh PostgreSQL database.
//!
//! 1. Creates a database of its own (`edk_scale_<uuid>`) on the server named by
//!    `--server` (default `EDK_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`),
//!    and drops it at the end (`--keep` keeps it).
//! 2. Provisions the tenants through [`Tenancy::provision`] with every tenant migration the
//!    `edk` server registers (KMS, OAuth, OAuth federation, OpenID4VCI, DID store), each
//!    followed by an issuer endpoint binding on a host of its own, `--concurrency` at a time:
//!    the time per tenant (p50/p99) and the total.
//! 3. Migration time for all: a new [`Tenancy`] runs [`Tenancy::upgrade_all`] as every server
//!    does at start (nothing to apply), then another with one more tenant migration (a table
//!    and an index) applies it to every tenant.
//! 4. A replica: a child process of this binary opens the tenancy as a server does and resolves
//!    every tenant's host (`Tenancy::resolve`, the servers' routing: the routing table of all
//!    bindings, then the tenant's cached entry), once cold (each tenant read from the database)
//!    and once warm; it reports the lookup p50/p99 and its resident memory (`VmRSS` of
//!    `/proc/self/status`) before the tenancy was opened and after every tenant was resolved.
//!
//! Not part of `scripts/test` (minutes of work). Run with:
//! `cargo run --release -p edk-benches --bin scale -- --tenants 10000`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use edk_core::TenantSlug;
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, MigrationScope, MigrationSet, ServiceType,
    Tenancy, TenancyBuilder, TenantDirectory as _, WellKnownLayout,
};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection as _};

/// Provisions many tenants on a fresh PostgreSQL database and measures what it costs.
#[derive(Debug, Parser)]
#[command(name = "scale")]
struct Args {
    /// How many tenants.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Tenants provisioned at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The PostgreSQL server (any database on it) the harness creates its database on.
    #[arg(long, env = "EDK_TEST_DATABASE_URL", default_value = edk_testkit::DEFAULT_DATABASE_URL)]
    server: String,
    /// Keep the database at the end.
    #[arg(long)]
    keep: bool,
    /// Internal: run as the replica on this database URL and print one JSON line.
    #[arg(long, hide = true)]
    replica_of: Option<String>,
}

fn host(i: usize) -> String {
    format!("t{i}.issuer.example")
}

/// The `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn quantiles(latencies: &mut [Duration]) -> (f64, f64, f64) {
    latencies.sort();
    let ms = |q: f64| edk_benches::quantile(latencies, q).as_secs_f64() * 1000.0;
    (ms(0.5), ms(0.99), ms(1.0))
}

/// The tenancy with every tenant migration of the `edk` server.
fn builder(url: &str, connections: u32) -> TenancyBuilder {
    let mut config = PostgresConfig::new(url.to_owned().into());
    config.max_connections = connections;
    Tenancy::builder(DatabaseConfig::Postgres(config))
        .migrations(edk_kms::migrations().unwrap())
        .migrations(edk_oauth::migrations().unwrap())
        .migrations(edk_oauth::federation::migrations().unwrap())
        .migrations(edk_oid4vci::migrations().unwrap())
        .migrations(edk_did::store::migrations().unwrap())
}

/// One more tenant migration, as a new release would bring.
fn new_release() -> MigrationSet {
    MigrationSet::from_sql(
        "edk-scale-release",
        MigrationScope::Tenant,
        &[
            (
                1,
                "notes",
                "CREATE TABLE scale_note (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            ),
            (
                2,
                "notes by time",
                "CREATE INDEX scale_note_created ON scale_note (created_at)",
            ),
        ],
        &[
            (
                1,
                "notes",
                "CREATE TABLE scale_note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            ),
            (
                2,
                "notes by id",
                "CREATE INDEX scale_note_body ON scale_note (body)",
            ),
        ],
    )
    .unwrap()
}

/// The replica: opens the tenancy and resolves every tenant's host, cold then warm.
async fn replica(url: &str, tenants: usize) {
    let rss_start = rss_kib();
    let tenancy = builder(url, 8).build().await.unwrap();
    let rss_open = rss_kib();
    let request = |i: usize| EndpointRequest::new("https", &host(i), None, "/credential");
    // A fixed shuffle (a stride coprime to the count): hosts in an order unrelated to their
    // creation.
    let mut order: Vec<usize> = (0..tenants).map(|k| (k * 7919) % tenants).collect();
    if order.iter().collect::<std::collections::HashSet<_>>().len() != tenants {
        order = (0..tenants).collect();
    }
    let began = Instant::now();
    tenancy
        .resolve(ServiceType::Issuer, &request(order[0]))
        .await
        .unwrap();
    let first = began.elapsed();
    let mut passes = Vec::new();
    for _ in 0..2 {
        let mut latencies = Vec::with_capacity(tenants);
        let began = Instant::now();
        for &i in &order {
            let request = request(i);
            let started = Instant::now();
            let resolved = tenancy.resolve(ServiceType::Issuer, &request).await;
            latencies.push(started.elapsed());
            assert!(resolved.is_ok(), "tenant {i} did not resolve: {resolved:?}");
        }
        let elapsed = began.elapsed();
        let (p50, p99, max) = quantiles(&mut latencies);
        passes.push(json!({
            "p50_us": p50 * 1000.0, "p99_us": p99 * 1000.0, "max_us": max * 1000.0,
            "seconds": elapsed.as_secs_f64(),
        }));
    }
    let rss_warm = rss_kib();
    println!(
        "{}",
        json!({
            "rss_start_kib": rss_start, "rss_open_kib": rss_open, "rss_warm_kib": rss_warm,
            "first_ms": first.as_secs_f64() * 1000.0,
            "cold": passes[0], "warm": passes[1],
        })
    );
    drop(tenancy);
}

async fn admin_connection(server: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(server)
        .await
        .expect("PostgreSQL at the --server URL")
}

#[expect(clippy::too_many_lines, reason = "the steps, in order")]
async fn run(args: Args) {
    let name = format!("edk_scale_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection(&args.server).await;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&args.server).expect("--server is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    eprintln!("database {name}");
    let connections = u32::try_from(args.concurrency + 2).unwrap_or(16);

    // Provisioning.
    let tenancy = builder(&url, connections).build().await.unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let tenants = args.tenants;
    let began = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (tenancy, next) = (tenancy.clone(), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tenants {
                    return latencies;
                }
                let started = Instant::now();
                let slug = TenantSlug::new(format!("t{i}")).unwrap();
                let tenant = tenancy
                    .provision(slug, &format!("Tenant {i}"))
                    .await
                    .unwrap();
                let binding = EndpointBinding::new(
                    tenant.id,
                    ServiceType::Issuer,
                    &host(i),
                    None,
                    "",
                    WellKnownLayout::Inserted,
                )
                .unwrap();
                tenancy.bind(&binding).await.unwrap();
                latencies.push(started.elapsed());
                if (i + 1) % (tenants / 20).max(1) == 0 {
                    eprintln!(
                        "provisioned {} of {tenants} ({:.0} s)",
                        i + 1,
                        began.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let provisioning = began.elapsed();
    let (provision_p50, provision_p99, provision_max) = quantiles(&mut latencies);
    drop(tenancy);

    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let (schemas, relations, size): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'), \
                (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname LIKE 'tenant\\_%'), \
                pg_database_size(current_database())",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    db.close().await.ok();

    // Migrations for all: the start-up check, then a new migration.
    eprintln!("upgrade_all with nothing to apply");
    let began = Instant::now();
    let tenancy = builder(&url, connections).build().await.unwrap();
    let check = tenancy.upgrade_all().await.unwrap();
    let check_time = began.elapsed();
    drop(tenancy);
    eprintln!("upgrade_all with one new migration");
    let began = Instant::now();
    let tenancy = builder(&url, connections)
        .migrations(new_release())
        .build()
        .await
        .unwrap();
    let upgrade = tenancy.upgrade_all().await.unwrap();
    let upgrade_time = began.elapsed();
    drop(tenancy);

    // The replica, in a process of its own.
    eprintln!("replica");
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--replica-of")
        .arg(&url)
        .arg("--tenants")
        .arg(tenants.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "the replica failed");
    let replica: Value = serde_json::from_slice(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .as_bytes(),
    )
    .unwrap();

    if args.keep {
        eprintln!("kept database {name}");
    } else {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.ok();

    let kib = |field: &str| replica[field].as_u64().unwrap_or(0);
    let us = |pass: &str, field: &str| replica[pass][field].as_f64().unwrap_or(0.0);
    println!();
    println!(
        "{tenants} tenants on PostgreSQL, provisioned {} at a time",
        args.concurrency
    );
    println!();
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| provisioning, all tenants (provision + issuer binding) | {:.1} s ({:.1} tenants/s) |",
        provisioning.as_secs_f64(),
        tenants as f64 / provisioning.as_secs_f64()
    );
    println!(
        "| provisioning per tenant: p50 / p99 / max | {provision_p50:.1} / {provision_p99:.1} / {provision_max:.1} ms |"
    );
    println!(
        "| tenant schemas, their relations, database size | {schemas}, {relations}, {} MiB |",
        size / (1024 * 1024)
    );
    println!(
        "| upgrade_all at start, nothing to apply ({} tenants) | {:.1} s |",
        check.tenants,
        check_time.as_secs_f64()
    );
    println!(
        "| upgrade_all, one new migration ({} applied) | {:.1} s |",
        upgrade.applied,
        upgrade_time.as_secs_f64()
    );
    println!(
        "| replica: first resolution (routing table of all bindings loaded) | {:.1} ms |",
        replica["first_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "| replica: routing lookup, cold (tenant read from the database): p50 / p99 / max | {:.1} / {:.1} / {:.1} µs |",
        us("cold", "p50_us"),
        us("cold", "p99_us"),
        us("cold", "max_us")
    );
    println!(
        "| replica: routing lookup, warm: p50 / p99 / max | {:.2} / {:.2} / {:.1} µs |",
        us("warm", "p50_us"),
        us("warm", "p99_us"),
        us("warm", "max_us")
    );
    println!(
        "| replica: resident memory before the tenancy, opened, every tenant resolved | {} / {} / {} MiB |",
        kib("rss_start_kib") / 1024,
        kib("rss_open_kib") / 1024,
        kib("rss_warm_kib") / 1024
    );
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match args.replica_of.clone() {
        Some(url) => runtime.block_on(replica(&url, args.tenants)),
        None => runtime.block_on(run(args)),
    }
}
