//! A running DID server on loopback with a real tenancy (SQLite or PostgreSQL), a LocalKms and
//! admin tokens; tenants bound to `<slug>.example` on the server's port, which the test client
//! resolves to loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_did_server::{DidServer, ResolverSettings};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, EndpointBinding, ServiceType, Tenancy, WellKnownLayout};
use edk_testkit::TestDb;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";

/// The hosts tenants are bound to in tests; the client resolves them to loopback.
pub(crate) const HOSTS: [&str; 3] = ["acme.example", "other.example", "shared.example"];

/// A server over one database, with the admin token key.
pub(crate) struct Deployment {
    pub(crate) tenancy: Tenancy,
    pub(crate) kms: Arc<LocalKms>,
    pub(crate) server: Arc<DidServer>,
    pub(crate) http: TestServer,
    admin_key: SigningKey,
    cancel: CancellationToken,
    background: Option<edk_tenancy::BackgroundTask>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    republisher: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

/// A provisioned tenant and its DID binding.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    /// `http://<host>:<port><prefix>`: where its files are fetched.
    pub(crate) base: String,
    /// `<host>%3A<port>`: the DID authority.
    pub(crate) authority: String,
}

impl Deployment {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        Self::start(database, Some(dir), None).await
    }

    pub(crate) async fn postgres() -> Self {
        let db = TestDb::new().await;
        let config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
        Self::start(DatabaseConfig::Postgres(config), None, Some(db)).await
    }

    /// A second server (replica) on this deployment's PostgreSQL database, with its own
    /// caches and its own admin key.
    pub(crate) async fn replica(&self) -> Self {
        let url = self.db.as_ref().unwrap().url();
        let config = edk_tenancy::store::postgres::PostgresConfig::new(url.into());
        Self::start(DatabaseConfig::Postgres(config), None, None).await
    }

    async fn start(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
    ) -> Self {
        edk_server::install_crypto_provider();
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_did::store::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("test").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = Arc::new(
            LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
                .clock(Arc::clone(&clock))
                .build()
                .unwrap(),
        );
        let resolver = Arc::new(
            DidServer::resolver(&tenancy, &ResolverSettings::default(), Arc::clone(&clock))
                .unwrap(),
        );
        let server = Arc::new(DidServer::new(
            tenancy.clone(),
            Arc::clone(&kms) as Arc<dyn edk_kms::Kms>,
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
            server,
            http,
            admin_key,
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
