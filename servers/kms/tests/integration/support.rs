use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{FixedClock, TenantId, TenantSlug};
use edk_kms::provider::software::generate_kek;
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_server::{TestServer, spawn_server};
use edk_testkit::TestDb;

pub(crate) const NOW: i64 = 1_800_000_000;
pub(crate) const ISSUER: &str = "https://operator.test";
pub(crate) const ALL_SCOPES: &str = "kms:read kms:write kms:use";

/// Which database the server runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

/// A KMS server booted from its configuration on loopback, with two tenants.
pub(crate) struct Harness {
    pub(crate) server: TestServer,
    pub(crate) kms: edk_server::service::Started<KmsServer>,
    pub(crate) client: reqwest::Client,
    pub(crate) tenant_a: TenantId,
    pub(crate) tenant_b: TenantId,
    pub(crate) secrets_dir: std::path::PathBuf,
    /// The clock the server runs on (fixed at [`NOW`] until a test moves it).
    pub(crate) clock: Arc<FixedClock>,
    config: KmsServerConfig,
    admin_key: SigningKey,
    _dir: tempfile::TempDir,
    _db: Option<TestDb>,
}

impl Harness {
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, json!({})).await
    }

    /// Like [`start`](Self::start), with the top-level configuration sections in `extra`
    /// added (e.g. `grpc`).
    pub(crate) async fn start_with(backend: Backend, extra: Value) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (database, db) = match backend {
            Backend::Postgres => {
                let db = TestDb::new().await;
                (
                    json!({ "backend": "postgres", "platform_url": db.url() }),
                    Some(db),
                )
            }
            Backend::Sqlite => (
                json!({ "backend": "sqlite", "directory": dir.path().join("db") }),
                None,
            ),
        };
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let kek = generate_kek().unwrap();
        let mut config = json!({
            "database": database,
            "auth": {
                "issuers": [{ "issuer": ISSUER, "jwks": { "keys": [admin_key.public_jwk()] } }],
            },
            "kms": {
                "mode": "local",
                "secrets_dir": dir.path().join("secrets"),
                "providers": [
                    {
                        "kind": "software",
                        "id": "software",
                        "current_kek": "k1",
                        "keks": [{ "id": "k1", "key": kek.expose_secret() }],
                    },
                    {
                        "kind": "software",
                        "id": "backup",
                        "current_kek": "k1",
                        "keks": [{ "id": "k1", "key": kek.expose_secret() }],
                    },
                ],
            },
        });
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        let config: KmsServerConfig = serde_json::from_value(config).unwrap();
        let secrets_dir = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets_dir).unwrap();
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let kms = boot(&config, Arc::clone(&clock)).await;
        let tenant_a = kms
            .tenancy()
            .provision(TenantSlug::new("tenant-a").unwrap(), "Tenant A")
            .await
            .unwrap()
            .id;
        let tenant_b = kms
            .tenancy()
            .provision(TenantSlug::new("tenant-b").unwrap(), "Tenant B")
            .await
            .unwrap()
            .id;
        let server = spawn_server(kms.app()).await.unwrap();
        Self {
            server,
            kms,
            client: reqwest::Client::builder().build().unwrap(),
            tenant_a,
            tenant_b,
            secrets_dir,
            clock,
            config,
            admin_key,
            _dir: dir,
            _db: db,
        }
    }

    /// Another replica of the server on the same databases and configuration, with its own
    /// listener.
    pub(crate) async fn replica(&self) -> (TestServer, edk_server::service::Started<KmsServer>) {
        let kms = boot(&self.config, Arc::clone(&self.clock)).await;
        let server = spawn_server(kms.app()).await.unwrap();
        (server, kms)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.server.url(&format!("/api/kms/v1{path}"))
    }

    /// A token for `tenant` with `scope`.
    pub(crate) async fn token_for(&self, tenant: TenantId, scope: &str) -> String {
        let claims = json!({
            "iss": ISSUER,
            "aud": "edk-admin",
            "sub": "ops@example.test",
            "tenant": tenant.to_string(),
            "scope": scope,
            "iat": NOW - 10,
            "exp": NOW + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }

    /// A token for tenant A with every scope.
    pub(crate) async fn token(&self) -> String {
        self.token_for(self.tenant_a, ALL_SCOPES).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.kms.shutdown().await;
    }
}

async fn boot(
    config: &KmsServerConfig,
    clock: Arc<FixedClock>,
) -> edk_server::service::Started<KmsServer> {
    let http = reqwest::Client::builder().build().unwrap();
    edk_server::service::start::<KmsServer>(config, clock, http)
        .await
        .unwrap()
}

/// Reads a JSON body after checking the status.
pub(crate) async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Asserts a problem+json response with `status`, returning its body.
pub(crate) async fn expect_problem(response: reqwest::Response, status: u16) -> Value {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = expect_json(response, status).await;
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status);
    body
}
