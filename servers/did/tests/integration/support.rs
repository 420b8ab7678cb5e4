//! A running DID server on loopback with a real tenancy (SQLite or PostgreSQL), a KMS and
//! admin tokens; tenants bound to `<slug>.example` on the server's port, which the test client
//! resolves to loopback.
//!
//! The KMS is a `LocalKms` in the server, or, with `EDK_TEST_KMS=remote` (a second run of
//! this suite in `scripts/test`), a KMS server on the same database that the server calls
//! over gRPC as the service `did`, holding no keys itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_did::jobs::RepublishStaleJob;
use edk_did_server::{DidServer, ResolverSettings};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::scheduler::{Job as _, JobTarget};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, ServiceType, Tenancy, TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";

/// The hosts tenants are bound to in tests; the client resolves them to loopback.
pub(crate) const HOSTS: [&str; 3] = ["acme.example", "other.example", "shared.example"];

/// A server over one database, with the admin token key.
pub(crate) struct Deployment {
    pub(crate) tenancy: Tenancy,
    /// The KMS the server calls: its own `LocalKms`, or a `RemoteKms` to the KMS server.
    pub(crate) kms: Arc<dyn edk_kms::Kms>,
    /// The `LocalKms` that holds the keys (the server's own, or the KMS server's): what the
    /// KMS's admin API calls.
    pub(crate) local_kms: LocalKms,
    pub(crate) server: Arc<DidServer>,
    pub(crate) http: TestServer,
    admin_key: SigningKey,
    /// Whether the KMS's key-change events reach this server's event bus: always in process,
    /// across processes only over PostgreSQL.
    key_events_arrive: bool,
    /// The KMS server this server calls (remote mode).
    remote: Option<Remote>,
    cancel: CancellationToken,
    background: Option<edk_tenancy::BackgroundTask>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    republisher: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

/// A KMS server on the deployment's database with its gRPC port on loopback.
struct KmsSide {
    server: edk_server::service::Started<edk_kms_server::KmsServer>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Result<(), edk_server::service::BoxError>>>,
    _key_dir: tempfile::TempDir,
}

/// The KMS server a server calls in remote mode.
struct Remote {
    /// How to reach it as the service `did`.
    config: edk_server::kms::RemoteKmsConfig,
    /// Its `LocalKms`.
    local: LocalKms,
    /// The KMS server itself, held by the deployment that started it (not by replicas).
    side: Option<KmsSide>,
}

/// A provisioned tenant and its DID binding.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    /// `http://<host>:<port><prefix>`: where its files are fetched.
    pub(crate) base: String,
    /// `<host>%3A<port>`: the DID authority.
    pub(crate) authority: String,
}

/// Whether this run puts the KMS behind gRPC (`EDK_TEST_KMS=remote`).
fn remote_kms() -> bool {
    std::env::var("EDK_TEST_KMS").is_ok_and(|mode| mode == "remote")
}

/// With `EDK_TEST_KMS=remote`, a KMS server started on `database` whose gRPC port trusts
/// the service `did`.
async fn kms_server(database: &DatabaseConfig) -> Option<Remote> {
    use edk_server::Service as _;
    if !remote_kms() {
        return None;
    }
    edk_server::install_crypto_provider();
    let key_dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut public = key.public_jwk();
    let kid = public.thumbprint();
    public.kid = Some(kid.clone());
    let mut private = key.to_jwk().unwrap();
    private.kid = Some(kid);
    let key_file = key_dir.path().join("did.jwk");
    std::fs::write(&key_file, serde_json::to_vec(&private).unwrap()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kek = generate_kek().unwrap();
    let config: edk_kms_server::KmsServerConfig = serde_json::from_value(json!({
        "database": database_json(database),
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": kek.expose_secret() }],
        }] },
        "grpc": {
            "listen": format!("127.0.0.1:{port}"),
            "auth": { "kind": "service_jwt", "audience": "edk-kms",
                "services": [{ "name": "did", "jwks": { "keys": [public] } }] },
        },
    }))
    .unwrap();
    let server = edk_server::service::start::<edk_kms_server::KmsServer>(
        &config,
        Arc::new(SystemClock),
        reqwest::Client::new(),
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let tasks = server
        .side_tasks(stop.clone())
        .await
        .unwrap()
        .into_iter()
        .map(tokio::spawn)
        .collect();
    let config = serde_json::from_value(json!({
        "endpoint": format!("http://127.0.0.1:{port}"),
        "auth": { "kind": "service_jwt", "service": "did", "audience": "edk-kms",
            "key_file": key_file },
    }))
    .unwrap();
    Some(Remote {
        config,
        local: server.kms().clone(),
        side: Some(KmsSide {
            server,
            stop,
            tasks,
            _key_dir: key_dir,
        }),
    })
}

/// `database` as configuration JSON.
fn database_json(database: &DatabaseConfig) -> Value {
    match database {
        DatabaseConfig::Sqlite(sqlite) => {
            json!({ "backend": "sqlite", "directory": sqlite.directory })
        }
        DatabaseConfig::Postgres(postgres) => json!({
            "backend": "postgres",
            "platform_url": postgres.platform_url.expose_secret(),
        }),
        _ => unreachable!("a backend of this build"),
    }
}

/// A `LocalKms` over `tenancy` with a software provider under a fresh KEK.
fn local_kms(tenancy: &Tenancy, clock: &Arc<dyn Clock>) -> LocalKms {
    let kek = KekConfig::key(KekId::new("test").unwrap(), generate_kek().unwrap()).unwrap();
    let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new("software").unwrap(),
        kek,
    ))
    .unwrap();
    LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
        .clock(Arc::clone(clock))
        .build()
        .unwrap()
}

impl Deployment {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        let remote = kms_server(&database).await;
        Self::start(database, remote, Some(dir), None).await
    }

    pub(crate) async fn postgres() -> Self {
        let db = TestDb::new().await;
        let config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
        let database = DatabaseConfig::Postgres(config);
        let remote = kms_server(&database).await;
        Self::start(database, remote, None, Some(db)).await
    }

    /// A second server (replica) on this deployment's PostgreSQL database, with its own
    /// caches and its own admin key, calling the same KMS server in remote mode.
    pub(crate) async fn replica(&self) -> Self {
        let url = self.db.as_ref().unwrap().url();
        let config = edk_tenancy::store::postgres::PostgresConfig::new(url.into());
        let remote = self.remote.as_ref().map(|remote| Remote {
            config: remote.config.clone(),
            local: remote.local.clone(),
            side: None,
        });
        Self::start(DatabaseConfig::Postgres(config), remote, None, None).await
    }

    async fn start(
        database: DatabaseConfig,
        remote: Option<Remote>,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
    ) -> Self {
        edk_server::install_crypto_provider();
        let key_events_arrive = remote.is_none() || matches!(database, DatabaseConfig::Postgres(_));
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_did::store::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (kms, local_kms): (Arc<dyn edk_kms::Kms>, _) = match &remote {
            None => {
                let local = local_kms(&tenancy, &clock);
                (Arc::new(local.clone()), local)
            }
            Some(remote) => (
                Arc::new(
                    edk_server::kms::connect_remote(&remote.config, Arc::clone(&clock)).unwrap(),
                ),
                remote.local.clone(),
            ),
        };
        let resolver = Arc::new(
            DidServer::resolver(&tenancy, &ResolverSettings::default(), Arc::clone(&clock))
                .unwrap(),
        );
        let server = Arc::new(DidServer::new(
            tenancy.clone(),
            Arc::clone(&kms),
            resolver,
            Arc::clone(&clock),
        ));
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut auth = AuthConfig::default();
        auth.issuers.push(TrustedIssuer::with_jwks(
            ADMIN_ISSUER,
            JwkSet {
                keys: vec![admin_key.public_jwk()],
            },
        ));
        let app = edk_did_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &server,
            clock,
            None,
        )
        .unwrap();
        let http = spawn_server(app).await.unwrap();
        let cancel = CancellationToken::new();
        let background = tenancy.start(&cancel);
        let refresher = server.start(&cancel);
        // Republishes did:web documents when the KMS announces a key change.
        let republisher = tokio::spawn(edk_did::registrar::republish_on_key_change(
            Arc::clone(server.registrar()),
            Arc::new(tenancy.clone()),
            Arc::clone(tenancy.events()),
            cancel.clone(),
        ));
        Self {
            tenancy,
            kms,
            local_kms,
            server,
            http,
            admin_key,
            key_events_arrive,
            remote,
            cancel,
            background: Some(background),
            refresher: Some(refresher),
            republisher: Some(republisher),
            _dir: dir,
            db,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.http.addr().port()
    }

    /// Provisions `slug` and binds its DID service to `host` on the server's port with
    /// `prefix` (`""` or `/a/b`).
    pub(crate) async fn tenant(&self, slug: &str, host: &str, prefix: &str) -> Tenant {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::Did,
            host,
            Some(self.port()),
            prefix,
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.tenancy.bind(&binding).await.unwrap();
        Tenant {
            id: tenant.id,
            base: format!("http://{host}:{}{prefix}", self.port()),
            authority: format!("{host}%3A{}", self.port()),
        }
    }

    /// A provisioned tenant without a DID binding.
    pub(crate) async fn unbound_tenant(&self, slug: &str) -> TenantId {
        self.tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap()
            .id
    }

    /// An admin token for `tenant` with `scope`.
    pub(crate) async fn token(&self, tenant: TenantId, scope: &str) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "ops",
            "tenant": tenant.to_string(), "scope": scope, "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }

    /// Stops listening for the KMS's key-change events, as a server that was not running
    /// when a key changed: from then on only the `did.republish_stale` job republishes.
    pub(crate) async fn stop_republisher(&mut self) {
        let republisher = self.republisher.take().unwrap();
        republisher.abort();
        assert!(republisher.await.unwrap_err().is_cancelled());
    }

    /// Runs the `did.republish_stale` job for `tenant` as the scheduler does every period;
    /// the number of DIDs it republished.
    pub(crate) async fn run_republish_job(&self, tenant: TenantId) -> u64 {
        let context = self.tenancy.context(tenant).await.unwrap();
        RepublishStaleJob::new(Arc::clone(self.server.registrar()))
            .run(
                JobTarget::Tenant(&context),
                chrono::DateTime::<chrono::Utc>::from(SystemClock.now()),
            )
            .await
            .unwrap()
    }

    /// What publishes a key change that reaches this server as no event: with the KMS
    /// server on SQLite its events stay in its process, so this runs the
    /// `did.republish_stale` job for `tenant` as the scheduler would. Otherwise the KMS's
    /// `kms.key_changed` event does it and this does nothing.
    pub(crate) async fn catch_up_key_changes(&self, tenant: TenantId) {
        if !self.key_events_arrive {
            self.run_republish_job(tenant).await;
        }
    }

    /// The server URL of `path` (on 127.0.0.1).
    pub(crate) fn url(&self, path: &str) -> String {
        self.http.url(path)
    }

    /// Resolves `did` through `/1.0/identifiers` with `accept`.
    pub(crate) async fn resolve(&self, did: &str, accept: &str) -> reqwest::Response {
        http()
            .get(self.url(&format!("/1.0/identifiers/{did}")))
            .header("accept", accept)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn close(mut self) {
        self.http.shutdown().await.unwrap();
        self.cancel.cancel();
        if let Some(refresher) = self.refresher.take() {
            refresher.await.unwrap();
        }
        if let Some(republisher) = self.republisher.take() {
            republisher.await.unwrap();
        }
        if let Some(background) = self.background.take() {
            background.shutdown().await;
        }
        if let Some(side) = self.remote.take().and_then(|remote| remote.side) {
            side.stop.cancel();
            for task in side.tasks {
                task.await.unwrap().unwrap();
            }
            side.server.shutdown().await;
        }
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// A reqwest client that reaches the test hosts on loopback (no proxies, no redirects).
pub(crate) fn http() -> reqwest::Client {
    edk_server::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    for host in HOSTS {
        builder = builder.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    builder.build().unwrap()
}

/// Percent-encodes a DID for a path segment.
pub(crate) fn encode(did: &str) -> String {
    url::form_urlencoded::byte_serialize(did.as_bytes()).collect()
}

/// Asserts a problem+json answer with `status`.
pub(crate) async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "{:?}", response.url());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Resolves `did` from the log text with the PyPI `did-webvh` resolver, offline.
pub(crate) fn python_resolve(log: &str, did: &str) -> Value {
    python_resolve_with_witness(log, None, did)
}

/// Resolves `did` from the log text and, when given, `did-witness.json` beside it with the
/// PyPI `did-webvh` resolver, offline; its answer, which may be a resolution error.
pub(crate) fn python_resolve_with_witness(log: &str, witness: Option<&str>, did: &str) -> Value {
    let python = workspace_root().join("target/interop/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("did.jsonl"), log).unwrap();
    if let Some(witness) = witness {
        std::fs::write(dir.path().join("did-witness.json"), witness).unwrap();
    }
    let output = Command::new(python)
        .args(["-m", "did_webvh.resolver", "-f", "did.jsonl", did])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "did_webvh.resolver failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
