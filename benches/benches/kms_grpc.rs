//! The KMS over gRPC: ES256 signs per second through `RemoteKms` (service-JWT auth, one HTTP/2
//! connection, and four connections) with 1 and 16 concurrent callers, each next to
//! `LocalKms` in the same run. Server and client share this process and its runtime, as they
//! would share a small machine.
//!
//! Run with: cargo bench -p edk-benches --bench kms_grpc
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::jose::{Algorithm, JwkSet, SigningKey};
use edk_core::{Kid, SystemClock, TenantSlug};
use edk_kms::grpc::{
    ClientAuth, KmsGrpcService, RemoteKms, ServiceAuth, ServiceJwtAuth, ServiceTokenSource,
    TrustedServices,
};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, Kms, LocalKms, NewKey};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";
const AUDIENCE: &str = "edk-kms";
const SERVICE: &str = "issuer";

struct Setup {
    local: Arc<dyn Kms>,
    remote: Arc<dyn Kms>,
    /// Four clients, each on its own connection.
    remotes: Vec<Arc<dyn Kms>>,
    caller: Caller,
    alias: KeyAlias,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = edk_testkit::temp_dir();
    let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
        .migrations(edk_kms::migrations().unwrap())
        .build()
        .await
        .unwrap();
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let provider: Arc<dyn KeyProvider> = Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap(),
    );
    let kms = LocalKms::builder(tenancy.clone(), vec![provider])
        .build()
        .unwrap();
    let tenant = tenancy
        .provision(TenantSlug::new("bench").unwrap(), "bench")
        .await
        .unwrap();
    let caller = Caller::new(tenancy.context(tenant.id).await.unwrap(), "bench");
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    kms.create_key(
        &caller,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();

    let service_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let kid = Kid::new(service_key.public_jwk().thumbprint()).unwrap();
    let service_key = Arc::new(service_key.with_kid(kid));
    let trusted = TrustedServices::new().with_service(
        SERVICE,
        &JwkSet {
            keys: vec![service_key.public_jwk()],
        },
    );
    let auth = ServiceAuth::ServiceJwt(ServiceJwtAuth::new(
        AUDIENCE,
        Arc::new(trusted),
        Arc::new(SystemClock),
    ));
    let local: Arc<dyn Kms> = Arc::new(kms);
    let service = KmsGrpcService::new(Arc::clone(&local), Arc::new(tenancy), auth);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(edk_kms::grpc::serve(
        listener,
        service,
        None,
        stop.clone().cancelled_owned(),
    ));
    let source = Arc::new(ServiceTokenSource::new(
        service_key,
        SERVICE,
        AUDIENCE,
        Arc::new(SystemClock),
    ));
    let mut remotes: Vec<Arc<dyn Kms>> = Vec::new();
    for _ in 0..4 {
        let remote = RemoteKms::connect(
            &format!("http://{addr}"),
            ClientAuth::ServiceJwt(Arc::clone(&source)),
        )
        .await
        .unwrap();
        remotes.push(Arc::new(remote));
    }
    Setup {
        local,
        remote: Arc::clone(&remotes[0]),
        remotes,
        caller,
        alias,
        stop,
        _dir: dir,
    }
}

/// Runs `iters` signs split over `callers` tasks, round-robin over `clients`; the wall time.
async fn sign_concurrently(
    clients: &[Arc<dyn Kms>],
    caller: &Caller,
    alias: &KeyAlias,
    callers: u64,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..callers {
        let kms = Arc::clone(&clients[usize::try_from(task).unwrap() % clients.len()]);
        let caller = caller.clone();
        let alias = alias.clone();
        let share = iters / callers + u64::from(task < iters % callers);
        tasks.spawn(async move {
            for _ in 0..share {
                kms.sign(&caller, &alias, MESSAGE).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    start.elapsed()
}

/// A benchmark case: its name, the KMS clients its callers share, and how many callers.
type Case<'a> = (&'static str, &'a [Arc<dyn Kms>], u64);

fn signs_per_second(c: &mut Criterion) {
    let runtime: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = runtime.block_on(setup());
    let local = std::slice::from_ref(&setup.local);
    let one_channel = std::slice::from_ref(&setup.remote);
    let cases: [Case<'_>; 5] = [
        ("LocalKms, 1 caller", local, 1),
        ("RemoteKms 1 channel, 1 caller", one_channel, 1),
        ("LocalKms, 16 callers", local, 16),
        ("RemoteKms 1 channel, 16 callers", one_channel, 16),
        ("RemoteKms 4 channels, 16 callers", &setup.remotes, 16),
    ];
    let mut group = c.benchmark_group("kms/grpc/ES256 sign");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, clients, callers) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(sign_concurrently(
                    clients,
                    &setup.caller,
                    &setup.alias,
                    callers,
                    iters,
                ))
            });
        });
    }
    group.finish();
    setup.stop.cancel();
}

criterion_group!(benches, signs_per_second);
criterion_main!(benches);
