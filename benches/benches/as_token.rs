//! Token endpoint throughput of EDK's authorization server over HTTP at 16 connections:
//! `client_credentials` (client_secret_basic, JWT access tokens signed through LocalKms) and
//! the pre-authorized code grant, on PostgreSQL; then npm `oidc-provider` configured for
//! `client_credentials` with JWT access tokens, loaded the same way
//! (`benches/peers/oidc_provider_token.sh`), in the same run on the same machine.
//!
//! A Rust load generator (not criterion): 16 keep-alive connections for `DURATION` seconds
//! (default 10) after a short warm-up; prints requests/s and p50/p99 latency.
//!
//! Run with: cargo bench -p edk-benches --bench as_token
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edk_benches::AsBench;
use edk_oauth::PreAuthorizedCodeRequest;
use edk_oauth::grant::Grant;
use edk_server::spawn_server;
use edk_tenancy::DatabaseConfig;
use secrecy::ExposeSecret;

const CONNECTIONS: usize = 16;

fn duration() -> Duration {
    let secs = std::env::var("DURATION")
        .ok()
        .and_then(|d| d.trim_end_matches('s').parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

struct Figures {
    requests: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn line(&mut self) -> String {
        self.latencies.sort();
        let at = |q: f64| edk_benches::quantile(&self.latencies, q);
        format!(
            "{:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            self.rps(),
            at(0.5).as_secs_f64() * 1000.0,
            at(0.99).as_secs_f64() * 1000.0,
            self.failed
        )
    }
}

/// Runs `CONNECTIONS` workers posting `form(i)` to `url` until `length` has passed.
async fn load(
    url: &str,
    host: &str,
    basic: Option<(String, String)>,
    length: Duration,
    form: Arc<dyn Fn(usize) -> Vec<(String, String)> + Send + Sync>,
) -> Figures {
    let started = Instant::now();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        edk_server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, host, basic, form, counter) = (
            url.to_owned(),
            host.to_owned(),
            basic.clone(),
            Arc::clone(&form),
            Arc::clone(&counter),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            while started.elapsed() < length {
                let index = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut request = client.post(&url).header("host", &host).form(&form(index));
                if let Some((id, secret)) = &basic {
                    request = request.basic_auth(id, Some(secret));
                }
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut figures = Figures {
        requests: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (latencies, failed) = worker.await.unwrap();
        figures.requests += latencies.len();
        figures.failed += failed;
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let db = edk_testkit::TestDb::new().await;
    let mut pg = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
    pg.max_connections = 32;
    let (bench, app) = AsBench::start(DatabaseConfig::Postgres(pg)).await;
    let http = spawn_server(app).await.unwrap();
    let port = http.addr().port();
    let tenant = bench.tenant(port).await;
    let (server, context) = (Arc::clone(&bench.server), tenant.context.clone());
    let basic = Some((tenant.client_id.clone(), tenant.client_secret.clone()));
    let url = http.url("/bench/token");
    let host = format!("localhost:{port}");
    let length = duration();

    let cc: Arc<dyn Fn(usize) -> Vec<(String, String)> + Send + Sync> = Arc::new(|_| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "api:read".to_owned()),
        ]
    });
    load(
        &url,
        &host,
        basic.clone(),
        Duration::from_secs(2),
        Arc::clone(&cc),
    )
    .await;
    let mut figures = load(&url, &host, basic.clone(), length, cc).await;
    let cc_rps = figures.rps();
    println!(
        "EDK AS client_credentials (client_secret_basic, JWT ES256 via LocalKms, PostgreSQL), {CONNECTIONS} connections, in-process reqwest load: {}",
        figures.line()
    );
    // The same load generator as the peer below (wrk, token_load.sh), from outside the
    // process: the comparison figure.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let (id, secret) = basic.clone().unwrap();
    let wrk = tokio::task::spawn_blocking({
        let script = root.join("benches/peers/token_load.sh");
        let url = format!("http://localhost:{port}/bench/token");
        let seconds = length.as_secs();
        move || {
            Command::new("bash")
                .arg(script)
                .arg(url)
                .arg(id)
                .arg(secret)
                .arg("api:read")
                .env("DURATION", format!("{seconds}s"))
                .output()
        }
    })
    .await
    .unwrap();
    let wrk_rps = match wrk {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            println!(
                "EDK AS client_credentials, {CONNECTIONS} connections, wrk: {}",
                text.trim()
            );
            requests_per_sec(&text)
        }
        Ok(out) => {
            println!(
                "wrk against EDK failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(err) => {
            println!("wrk against EDK could not run: {err}");
            None
        }
    };

    // Pre-authorized codes, minted beforehand, each redeemed once.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive request count estimate"
    )]
    let wanted = (cc_rps * length.as_secs_f64() * 1.5) as usize + 1000;
    let mut codes = Vec::with_capacity(wanted);
    let mut grant = Grant::new("holder");
    grant.authorization_details = Some(
        serde_json::json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]),
    );
    let chunks: Vec<_> = (0..wanted.div_ceil(500))
        .map(|_| {
            let (server, context, grant) = (Arc::clone(&server), context.clone(), grant.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..500 {
                    let minted = server
                        .mint_pre_authorized_code(
                            &context,
                            PreAuthorizedCodeRequest::new(grant.clone()),
                        )
                        .await
                        .unwrap();
                    out.push(minted.code.expose_secret().to_owned());
                }
                out
            })
        })
        .collect();
    for chunk in chunks {
        codes.extend(chunk.await.unwrap());
    }
    let codes = Arc::new(codes);
    let pre: Arc<dyn Fn(usize) -> Vec<(String, String)> + Send + Sync> = Arc::new(move |i| {
        vec![
            (
                "grant_type".to_owned(),
                "urn:ietf:params:oauth:grant-type:pre-authorized_code".to_owned(),
            ),
            (
                "pre-authorized_code".to_owned(),
                codes.get(i).cloned().unwrap_or_default(),
            ),
        ]
    });
    let mut figures = load(&url, &host, None, length, pre).await;
    println!(
        "EDK AS pre-authorized_code (anonymous, JWT ES256 via LocalKms, PostgreSQL), {CONNECTIONS} connections: {}",
        figures.line()
    );
    http.shutdown().await.unwrap();
    bench.stop().await;
    db.close().await;

    let peer = Command::new("bash")
        .arg(root.join("benches/peers/oidc_provider_token.sh"))
        .env("DURATION", format!("{}s", length.as_secs()))
        .output();
    match peer {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            println!("{}", text.trim());
            if let Some(rps) = requests_per_sec(&text) {
                println!(
                    "EDK client_credentials / oidc-provider: {:.1}x (in-process load), {}",
                    cc_rps / rps,
                    wrk_rps.map_or_else(
                        || "no wrk figure".to_owned(),
                        |edk| format!("{:.1}x (both loaded by wrk)", edk / rps)
                    )
                );
            }
        }
        Ok(out) => println!(
            "oidc-provider peer failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => println!("oidc-provider peer could not start: {err}"),
    }
}

/// The `requests_per_sec=` field of a `token_load.sh` line.
fn requests_per_sec(text: &str) -> Option<f64> {
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("requests_per_sec="))
        .and_then(|n| n.parse::<f64>().ok())
}
