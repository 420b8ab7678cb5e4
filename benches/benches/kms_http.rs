//! The KMS over HTTP: `POST /api/kms/v1/signatures/raw/create` (ES256) requests per second
//! with 1 and 16 concurrent connections, next to `LocalKms::sign` in process, in one run.
//!
//! Run with: cargo bench -p edk-benches --bench kms_http
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{SystemClock, TenantSlug};
use edk_kms::provider::KeySpec;
use edk_kms::provider::software::generate_kek;
use edk_kms::{Caller, KeyAlias, Kms, NewKey};
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_tenancy::TenantDirectory;
use secrecy::ExposeSecret;
use serde_json::json;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";

fn sign_over_http(c: &mut Criterion) {
    edk_server::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().unwrap();
    let admin = SigningKey::generate(Algorithm::Es256).unwrap();
    let kek = generate_kek().unwrap();
    let config: KmsServerConfig = serde_json::from_value(json!({
        "database": { "backend": "sqlite", "directory": dir.path() },
        "auth": { "issuers": [{ "issuer": "https://bench.test", "jwks": { "keys": [admin.public_jwk()] } }] },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": kek.expose_secret() }],
        }] },
    }))
    .unwrap();
    let http = reqwest::Client::builder().build().unwrap();
    let (kms, server, token, alias, caller) = runtime.block_on(async {
        let kms = edk_server::service::start::<KmsServer>(&config, Arc::new(SystemClock), http)
            .await
            .unwrap();
        let tenant = kms
            .tenancy()
            .provision(TenantSlug::new("bench").unwrap(), "Bench")
            .await
            .unwrap();
        let caller = Caller::new(kms.tenancy().context(tenant.id).await.unwrap(), "bench");
        let alias: KeyAlias = "issuer.credential-signing".parse().unwrap();
        kms.kms()
            .create_key(
                &caller,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
        let now = edk_core::Clock::unix_seconds(&SystemClock);
        let claims = json!({
            "iss": "https://bench.test", "aud": "edk-admin", "sub": "bench",
            "tenant": tenant.id.to_string(), "scope": "kms:use",
            "iat": now, "exp": now + 3600,
        });
        let token = jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &admin,
        )
        .await
        .unwrap();
        let server = edk_server::spawn_server(kms.app()).await.unwrap();
        (kms, server, token, alias, caller)
    });
    let url = server.url("/api/kms/v1/signatures/raw/create");
    let body = json!({ "key": alias.to_string(), "message": b64url_encode(MESSAGE) }).to_string();

    let mut group = c.benchmark_group("kms/sign ES256");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("LocalKms::sign (in process)", |b| {
        b.to_async(&runtime)
            .iter(|| async { kms.kms().sign(&caller, &alias, MESSAGE).await.unwrap() });
    });
    for connections in [1_u64, 16] {
        let clients: Vec<reqwest::Client> = (0..connections)
            .map(|_| {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap()
            })
            .collect();
        group.bench_function(format!("HTTP, {connections} connection(s)"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let clients = clients.clone();
                let (url, body, token) = (url.clone(), body.clone(), token.clone());
                async move {
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for (index, client) in clients.into_iter().enumerate() {
                        let index = u64::try_from(index).unwrap();
                        let share = iters / connections + u64::from(index < iters % connections);
                        let (url, body, token) = (url.clone(), body.clone(), token.clone());
                        tasks.spawn(async move {
                            for _ in 0..share {
                                let response = client
                                    .post(&url)
                                    .bearer_auth(&token)
                                    .header("content-type", "application/json")
                                    .body(body.clone())
                                    .send()
                                    .await
                                    .unwrap();
                                assert_eq!(response.status(), 200);
                                response.bytes().await.unwrap();
                            }
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
    runtime.block_on(async {
        server.shutdown().await.unwrap();
        kms.shutdown().await;
    });
}

criterion_group!(benches, sign_over_http);
criterion_main!(benches);
