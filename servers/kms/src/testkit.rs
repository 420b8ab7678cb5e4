//! Test support (feature `testkit`) for the servers that use the KMS remotely: an
//! [`RemoteKms`] started in the test's process on its own database, serving gRPC to one
//! service that authenticates with a service JWT, and a guard for a server binary started as
//! a child process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, Jwk, JwkSet, SigningKey, jws};
use edk_core::{Clock as _, Kid, SystemClock, TenantId};
use edk_server::Service as _;
use edk_server::service::Started;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{KmsServer, KmsServerConfig};

/// A free TCP port on loopback.
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    #[expect(
        clippy::expect_used,
        reason = "test support: no port is a broken machine"
    )]
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A child process killed (and reaped) when the guard drops.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An issuer of admin tokens that the servers under test trust (`https://admin.example`).
#[derive(Debug)]
pub struct TestAdmin {
    key: SigningKey,
}

impl Default for TestAdmin {
    fn default() -> Self {
        Self::new()
    }
}

impl TestAdmin {
    /// The issuer of the admin tokens.
    pub const ISSUER: &'static str = "https://admin.example";

    /// An issuer with a fresh ES256 key.
    ///
    /// # Panics
    /// When no key can be generated.
    #[must_use]
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub fn new() -> Self {
        Self {
            key: SigningKey::generate(Algorithm::Es256).unwrap(),
        }
    }

    /// The `auth` section of a server's configuration that trusts this issuer.
    #[must_use]
    pub fn auth_section(&self) -> Value {
        json!({ "issuers": [{
            "issuer": Self::ISSUER,
            "jwks": JwkSet { keys: vec![self.key.public_jwk()] },
        }] })
    }

    /// An admin token for `tenant` with `scope`, valid for ten minutes.
    ///
    /// # Panics
    /// When signing fails.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub async fn token(&self, tenant: TenantId, scope: &str) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": Self::ISSUER, "aud": "edk-admin", "sub": "ops", "tenant": tenant.to_string(),
            "scope": scope, "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.key,
        )
        .await
        .unwrap()
    }
}

/// A KMS server (software keys, a fresh KEK) on PostgreSQL, serving gRPC on loopback to one
/// service that authenticates with a service JWT of its own key.
pub struct RemoteKms {
    server: Started<KmsServer>,
    stop: CancellationToken,
    side: Vec<tokio::task::JoinHandle<Result<(), edk_server::service::BoxError>>>,
    grpc_port: u16,
    kek: SecretString,
    key_file: PathBuf,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for RemoteKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKms")
            .field("grpc_port", &self.grpc_port)
            .finish_non_exhaustive()
    }
}

impl RemoteKms {
    /// Starts the KMS server on the PostgreSQL database at `database_url`, trusting service
    /// `service` for the tenants `tenants` (slugs); the service's private key is written to
    /// [`RemoteKms::key_file`].
    ///
    /// # Panics
    /// When the server cannot start.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub async fn start(database_url: &str, service: &str, tenants: &[&str]) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let service_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut trusted = service_key.public_jwk();
        let kid = Kid::new(trusted.thumbprint()).unwrap();
        trusted.kid = Some(kid.as_str().to_owned());
        let mut private: Jwk = service_key.to_jwk().unwrap();
        private.kid = Some(kid.as_str().to_owned());
        let key_file = dir.path().join(format!("{service}-service.jwk"));
        std::fs::write(&key_file, serde_json::to_vec(&private).unwrap()).unwrap();
        let grpc_port = free_port();
        let kek = edk_kms::provider::software::generate_kek().unwrap();
        let config: KmsServerConfig = serde_json::from_value(json!({
            "database": { "backend": "postgres", "platform_url": database_url },
            "kms": { "mode": "local", "providers": [{
                "kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{ "id": "k1", "key": kek.expose_secret() }],
            }] },
            "grpc": {
                "listen": format!("127.0.0.1:{grpc_port}"),
                "auth": { "kind": "service_jwt", "audience": "edk-kms",
                    "services": [{ "name": service, "jwks": { "keys": [trusted] }, "tenants": tenants }] },
            },
        }))
        .unwrap();
        let server = edk_server::service::start::<KmsServer>(
            &config,
            Arc::new(SystemClock),
            reqwest::Client::new(),
        )
        .await
        .unwrap();
        let stop = CancellationToken::new();
        let side = server
            .side_tasks(stop.clone())
            .await
            .unwrap()
            .into_iter()
            .map(tokio::spawn)
            .collect();
        Self {
            server,
            stop,
            side,
            grpc_port,
            kek,
            key_file,
            dir,
        }
    }

    /// The KMS server (its tenancy, its `Kms`).
    #[must_use]
    pub const fn server(&self) -> &Started<KmsServer> {
        &self.server
    }

    /// The KEK, which a service's configuration must never contain.
    #[must_use]
    pub const fn kek(&self) -> &SecretString {
        &self.kek
    }

    /// Where the service's private key is.
    #[must_use]
    pub const fn key_file(&self) -> &PathBuf {
        &self.key_file
    }

    /// The `kms` section of the service's configuration: `mode: remote` at this server.
    #[must_use]
    pub fn client_section(&self, service: &str) -> Value {
        json!({
            "mode": "remote",
            "endpoint": format!("http://127.0.0.1:{}", self.grpc_port),
            "timeout_millis": 2000,
            "auth": { "kind": "service_jwt", "service": service, "audience": "edk-kms",
                "key_file": self.key_file },
        })
    }

    /// Starts the server binary `binary` as service `service` on `port`, on the PostgreSQL
    /// database at `database_url`, trusting `admin`, with this KMS as its only KMS (its
    /// configuration holds no KEK); the process is killed when the guard drops.
    ///
    /// # Panics
    /// When the configuration holds the KEK, or the binary cannot start.
    pub fn spawn_service(
        &self,
        binary: impl AsRef<Path>,
        service: &str,
        port: u16,
        database_url: &str,
        admin: &TestAdmin,
    ) -> ChildGuard {
        self.spawn_service_with(binary, service, port, database_url, admin, &json!({}))
    }

    /// As [`spawn_service`](Self::spawn_service), with the top-level sections of `extra`
    /// (an `observability` section, say) added to the configuration or replacing its own.
    ///
    /// # Panics
    /// When the configuration holds the KEK, or the binary cannot start.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub fn spawn_service_with(
        &self,
        binary: impl AsRef<Path>,
        service: &str,
        port: u16,
        database_url: &str,
        admin: &TestAdmin,
        extra: &Value,
    ) -> ChildGuard {
        let mut config = json!({
            "http": { "listen": format!("127.0.0.1:{port}") },
            "log": { "filter": "warn" },
            "auth": admin.auth_section(),
            "database": { "backend": "postgres", "platform_url": database_url },
            "kms": self.client_section(service),
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            for (section, value) in extra {
                config.insert(section.clone(), value.clone());
            }
        }
        let text = serde_json::to_string(&config).unwrap();
        assert!(
            !text.contains(self.kek.expose_secret()),
            "{service} is given no KEK"
        );
        let config_file = self.dir.path().join(format!("{service}-{port}.yaml"));
        std::fs::write(&config_file, text).unwrap();
        ChildGuard(
            Command::new(binary.as_ref())
                .arg("--config")
                .arg(&config_file)
                .env_remove("EDK_LISTEN")
                .env_remove("EDK_CONFIG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// Serves gRPC again on the same port after [`stop_serving`](Self::stop_serving).
    ///
    /// # Panics
    /// When the port cannot be bound again.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub async fn resume_serving(&mut self) {
        self.stop = CancellationToken::new();
        self.side = self
            .server
            .side_tasks(self.stop.clone())
            .await
            .unwrap()
            .into_iter()
            .map(tokio::spawn)
            .collect();
    }

    /// Stops serving gRPC: the KMS no longer answers its services.
    ///
    /// # Panics
    /// When a side task failed.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub async fn stop_serving(&mut self) {
        self.stop.cancel();
        for task in self.side.drain(..) {
            task.await.unwrap().unwrap();
        }
    }

    /// Stops serving gRPC, then checks that the service at `base` (its HTTP origin) is not
    /// ready: 503, the `kms` check failing because the KMS does not answer, the `database`
    /// check passing.
    ///
    /// # Panics
    /// When the service answers anything else.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a failure is the test's failure"
    )]
    pub async fn stop_serving_and_expect_unready(&mut self, base: &str) {
        self.stop_serving().await;
        let response = reqwest::Client::new()
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let report: Value = response.json().await.unwrap();
        let checks = report["checks"].as_array().cloned().unwrap_or_default();
        let check = |name: &str| checks.iter().find(|check| check["name"] == name).cloned();
        let kms = check("kms").unwrap();
        assert_eq!(kms["ok"], false, "{report}");
        assert_eq!(kms["reason"], "the KMS does not answer", "{report}");
        assert_eq!(check("database").unwrap()["ok"], true, "{report}");
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for task in self.side.drain(..) {
            let _ = task.await;
        }
        self.server.shutdown().await;
    }
}
