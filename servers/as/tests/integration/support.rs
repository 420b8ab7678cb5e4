//! A running server on loopback with a real tenancy, a KMS and the pre-approved test
//! authenticator, and the pinned Python peers.
//!
//! The KMS is a `LocalKms` in each replica, or, with `EDK_TEST_KMS=remote` (a second run of
//! this suite in `scripts/test`), a KMS server on the same database that every replica calls
//! over gRPC as the service `as`, holding no keys itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{AsConfig, AuthorizationServer, SqlStore};
use edk_server::{
    AuthConfig, HttpConfig, Metrics, RateLimitConfig, TestServer, TrustedIssuer, spawn_server,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, EndpointBinding, ServiceType, Tenancy, WellKnownLayout};
use edk_testkit::TestDb;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";

/// One replica: a tenancy and a server over it.
pub(crate) struct Replica {
    pub(crate) tenancy: Tenancy,
    pub(crate) server: Arc<AuthorizationServer>,
    pub(crate) http: TestServer,
}

/// A deployment of one or two replicas on one database, with the admin token key.
pub(crate) struct Deployment {
    pub(crate) replicas: Vec<Replica>,
    pub(crate) admin_key: SigningKey,
    kms_server: Option<KmsSide>,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

/// Where the replicas' keys are.
enum KmsMode {
    /// A `LocalKms` per replica, with this KEK.
    Local(SecretString),
    /// The KMS server of the deployment, over gRPC.
    Remote(edk_server::kms::RemoteKmsConfig),
}

/// A KMS server on the deployment's database with its gRPC port on loopback.
struct KmsSide {
    server: edk_server::service::Started<edk_kms_server::KmsServer>,
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Result<(), edk_server::service::BoxError>>>,
    _key_dir: tempfile::TempDir,
}

/// Whether this run puts the KMS behind gRPC (`EDK_TEST_KMS=remote`).
fn remote_kms() -> bool {
    std::env::var("EDK_TEST_KMS").is_ok_and(|mode| mode == "remote")
}

/// The KMS mode of a deployment on `database`: local, or a KMS server started here.
async fn kms_mode(database: &DatabaseConfig) -> (KmsMode, Option<KmsSide>) {
    let kek = generate_kek().unwrap();
    if !remote_kms() {
        return (KmsMode::Local(kek), None);
    }
    use edk_server::Service as _;
    edk_server::install_crypto_provider();
    let key_dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut public = key.public_jwk();
    let kid = public.thumbprint();
    public.kid = Some(kid.clone());
    let mut private = key.to_jwk().unwrap();
    private.kid = Some(kid);
    let key_file = key_dir.path().join("as.jwk");
    std::fs::write(&key_file, serde_json::to_vec(&private).unwrap()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config: edk_kms_server::KmsServerConfig = serde_json::from_value(json!({
        "database": database_json(database),
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": kek.expose_secret() }],
        }] },
        "grpc": {
            "listen": format!("127.0.0.1:{port}"),
            "auth": { "kind": "service_jwt", "audience": "edk-kms",
                "services": [{ "name": "as", "jwks": { "keys": [public] } }] },
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
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = server
        .side_tasks(stop.clone())
        .await
        .unwrap()
        .into_iter()
        .map(tokio::spawn)
        .collect();
    let remote: edk_server::kms::RemoteKmsConfig = serde_json::from_value(json!({
        "endpoint": format!("http://127.0.0.1:{port}"),
        "auth": { "kind": "service_jwt", "service": "as", "audience": "edk-kms",
            "key_file": key_file },
    }))
    .unwrap();
    (
        KmsMode::Remote(remote),
        Some(KmsSide {
            server,
            stop,
            tasks,
            _key_dir: key_dir,
        }),
    )
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

fn provider(kek: &SecretString) -> Arc<SoftwareProvider> {
    let kek = KekConfig::key(
        KekId::new("test").unwrap(),
        SecretString::from(kek.expose_secret().to_owned()),
    )
    .unwrap();
    Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap(),
    )
}

/// The rate limits of a replica and the clock their windows follow.
pub(crate) type Limits<'a> = Option<(&'a RateLimitConfig, Arc<dyn Clock>)>;

async fn replica(
    database: DatabaseConfig,
    kms: &KmsMode,
    admin: &JwkSet,
    config: AsConfig,
    limits: Limits<'_>,
) -> Replica {
    let tenancy = Tenancy::builder(database)
        .migrations(edk_kms::migrations().unwrap())
        .migrations(edk_oauth::migrations().unwrap())
        .config_schema(
            edk_tenancy::ConfigSchema::builder()
                .key(&edk_oauth::federation::UPSTREAM_OIDC)
                .key(&edk_oauth::client_attestation::CLIENT_ATTESTATION)
                .key(&edk_server::rate_limit::RATE_LIMITS)
                .build()
                .unwrap(),
        )
        .build()
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let kms: Arc<dyn edk_kms::Kms> = match kms {
        KmsMode::Local(kek) => Arc::new(
            LocalKms::builder(tenancy.clone(), vec![provider(kek)])
                .clock(Arc::clone(&clock))
                .build()
                .unwrap(),
        ),
        KmsMode::Remote(remote) => {
            Arc::new(edk_server::kms::connect_remote(remote, Arc::clone(&clock)).unwrap())
        }
    };
    let server = Arc::new(AuthorizationServer::new(
        Arc::new(SqlStore::new(tenancy.clone())),
        kms,
        Arc::new(PreApprovedAuthenticator::new("alice", Arc::clone(&clock))),
        Arc::clone(&clock),
        config,
    ));
    let mut auth = AuthConfig::default();
    auth.issuers
        .push(TrustedIssuer::with_jwks(ADMIN_ISSUER, admin.clone()));
    let metrics = Metrics::new().unwrap();
    let limiter = limits.map(|(limits, clock)| {
        edk_server::RateLimiter::new(limits, clock, Some(&metrics)).unwrap()
    });
    let app = edk_as_server::build_app(
        &HttpConfig::default(),
        &auth,
        &metrics,
        &tenancy,
        &server,
        edk_server::HealthApi::new(),
        clock,
        None,
        limiter,
    )
    .unwrap();
    let http = spawn_server(app).await.unwrap();
    Replica {
        tenancy,
        server,
        http,
    }
}

impl Deployment {
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(AsConfig::default()).await
    }

    /// One replica on SQLite with `config`.
    pub(crate) async fn sqlite_with(config: AsConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let admin = JwkSet {
            keys: vec![admin_key.public_jwk()],
        };
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        let (kms, kms_server) = kms_mode(&database).await;
        let one = replica(database, &kms, &admin, config, None).await;
        Self {
            replicas: vec![one],
            admin_key,
            kms_server,
            _dir: Some(dir),
            db: None,
        }
    }

    pub(crate) async fn postgres(replicas: usize) -> Self {
        Self::postgres_limited(replicas, |_| None).await
    }

    /// `replicas` replicas on one PostgreSQL database, replica `i` with the rate limits
    /// `limits(i)`.
    pub(crate) async fn postgres_limited(
        replicas: usize,
        limits: impl Fn(usize) -> Limits<'static>,
    ) -> Self {
        let db = TestDb::new().await;
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let admin = JwkSet {
            keys: vec![admin_key.public_jwk()],
        };
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        let (kms, kms_server) = kms_mode(&database).await;
        let mut all = Vec::new();
        for index in 0..replicas {
            all.push(
                replica(
                    database.clone(),
                    &kms,
                    &admin,
                    AsConfig::default(),
                    limits(index),
                )
                .await,
            );
        }
        Self {
            replicas: all,
            admin_key,
            kms_server,
            _dir: None,
            db: Some(db),
        }
    }

    pub(crate) fn first(&self) -> &Replica {
        &self.replicas[0]
    }

    /// Provisions `slug` and binds its AS to `https://localhost:<port>/<slug>`: every replica
    /// listens on its own port, so each gets a binding host of its own port... the tests use
    /// one port per tenant, the first replica's; other replicas are reached with that `Host`.
    pub(crate) async fn tenant(&self, slug: &str) -> Tenant {
        let port = self.first().http.addr().port();
        let tenant = self
            .first()
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::As,
            "localhost",
            Some(port),
            &format!("/{slug}"),
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.first().tenancy.bind(&binding).await.unwrap();
        Tenant {
            id: tenant.id,
            issuer: format!("https://localhost:{port}/{slug}"),
            base: format!("http://localhost:{port}/{slug}"),
            host: format!("localhost:{port}"),
        }
    }

    /// An admin token for `tenant` with `scope`.
    pub(crate) async fn admin_token(&self, tenant: TenantId, scope: &str) -> String {
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

    pub(crate) async fn close(self) {
        for replica in self.replicas {
            replica.http.shutdown().await.unwrap();
        }
        if let Some(side) = self.kms_server {
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

/// A provisioned tenant's URLs.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) issuer: String,
    pub(crate) base: String,
    pub(crate) host: String,
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Runs `interop/python/oauth_client.py` with `job` and returns its JSON result. Blocking
/// work: call it through `spawn_blocking`.
pub(crate) async fn authlib(job: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let python = workspace_root().join("target/interop/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test",
            python.display()
        );
        let mut child = Command::new(python)
            .arg("oauth_client.py")
            .current_dir(workspace_root().join("interop/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(job.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "oauth_client.py failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// A reqwest client (loopback only; no proxies).
pub(crate) fn http() -> reqwest::Client {
    edk_server::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
