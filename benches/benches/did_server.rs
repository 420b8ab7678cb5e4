//! The DID server's Universal Resolver over HTTP: `GET /1.0/identifiers/{did}` requests per
//! second at 16 concurrent connections for a did:key and for a did:web published by the server
//! (resolved from the store once, then from the resolver cache). With
//! `EDK_NODE_DID_RESOLVER_URL` set (see `benches/peers/did_resolver_node.sh`), the same load
//! runs against npm `did-resolver` + `key-did-resolver` behind a Node HTTP server, for the
//! did:key.
//!
//! Run with: cargo bench -p edk-benches --bench did_server
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock, SystemClock, TenantSlug};
use edk_did::methods::key::DidKey;
use edk_did::registrar::CreateDid;
use edk_did_server::{DidServer, ResolverSettings};
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::{Caller, LocalKms};
use edk_server::{AuthConfig, HttpConfig, Metrics};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, ServiceType, Tenancy, TenantDirectory, WellKnownLayout,
};

const CONNECTIONS: u64 = 16;

fn resolve_over_http(c: &mut Criterion) {
    edk_server::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().unwrap();
    let (server, did_web) = runtime.block_on(async {
        let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_did::store::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
            .clock(Arc::clone(&clock))
            .build()
            .unwrap();
        let resolver = Arc::new(
            DidServer::resolver(&tenancy, &ResolverSettings::default(), Arc::clone(&clock))
                .unwrap(),
        );
        let did_server =
            DidServer::new(tenancy.clone(), Arc::new(kms), resolver, Arc::clone(&clock));
        let tenant = tenancy
            .provision(TenantSlug::new("bench").unwrap(), "Bench")
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::Did,
            "bench.example",
            None,
            "",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
        let context = tenancy
            .context_for_service(tenant.id, ServiceType::Did)
            .await
            .unwrap();
        let created = did_server
            .registrar()
            .create(&Caller::new(context, "bench"), CreateDid::new("web"))
            .await
            .unwrap();
        let app = edk_did_server::build_app(
            &HttpConfig::default(),
            &AuthConfig::default(),
            &Metrics::new().unwrap(),
            &did_server,
            clock,
            None,
        )
        .unwrap();
        let server = edk_server::spawn_server(app).await.unwrap();
        (server, created.did.to_string())
    });
    let did_key = DidKey::create(&SigningKey::generate(Algorithm::EdDsa).unwrap().public_jwk())
        .unwrap()
        .to_string();

    let mut targets = vec![
        (
            "edk-did, did:key",
            server.url(&format!("/1.0/identifiers/{did_key}")),
        ),
        (
            "edk-did, did:web (cached)",
            server.url(&format!("/1.0/identifiers/{did_web}")),
        ),
    ];
    if let Ok(base) = std::env::var("EDK_NODE_DID_RESOLVER_URL") {
        targets.push((
            "node did-resolver, did:key",
            format!("{}/1.0/identifiers/{did_key}", base.trim_end_matches('/')),
        ));
    }

    let mut group = c.benchmark_group("did-server/resolve");
    group.throughput(Throughput::Elements(1));
    for (name, url) in targets {
        let clients: Vec<reqwest::Client> = (0..CONNECTIONS)
            .map(|_| {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .no_proxy()
                    .build()
                    .unwrap()
            })
            .collect();
        // One request first: a wrong URL fails here, and the did:web lands in the cache.
        runtime.block_on(async {
            let response = clients[0]
                .get(&url)
                .header("accept", "application/did-resolution")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}: {url}");
        });
        group.bench_function(format!("{name}, {CONNECTIONS} connections"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let clients = clients.clone();
                let url = url.clone();
                async move {
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for (index, client) in clients.into_iter().enumerate() {
                        let index = u64::try_from(index).unwrap();
                        let share = iters / CONNECTIONS + u64::from(index < iters % CONNECTIONS);
                        let url = url.clone();
                        tasks.spawn(async move {
                            for _ in 0..share {
                                let response = client
                                    .get(&url)
                                    .header("accept", "application/did-resolution")
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
    runtime.block_on(async { server.shutdown().await.unwrap() });
}

criterion_group!(benches, resolve_over_http);
criterion_main!(benches);
