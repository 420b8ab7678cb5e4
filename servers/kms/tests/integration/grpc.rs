use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock, FixedClock, SystemClock};
use edk_core::{ErrorKind, HasKind, Kid};
use edk_kms::grpc::{ClientAuth, RemoteKms, ServiceTokenSource};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, KeyRef, Kms, NewKey};
use edk_tenancy::TenantDirectory;

use crate::support::{Backend, Harness, NOW, expect_json};

const AUDIENCE: &str = "edk-kms";
const SERVICE: &str = "issuer-service";

fn service_key() -> SigningKey {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let kid = Kid::new(key.public_jwk().thumbprint()).unwrap();
    key.with_kid(kid)
}

fn grpc_config(key: &SigningKey, listen: &str) -> Value {
    json!({
        "listen": listen,
        "auth": {
            "kind": "service_jwt",
            "audience": AUDIENCE,
            "services": [{ "name": SERVICE, "jwks": { "keys": [key.public_jwk()] } }],
        },
    })
}

async fn remote(addr: std::net::SocketAddr, key: SigningKey, clock: Arc<dyn Clock>) -> RemoteKms {
    let source = ServiceTokenSource::new(Arc::new(key), SERVICE, AUDIENCE, clock);
    RemoteKms::connect(
        &format!("http://{addr}"),
        ClientAuth::ServiceJwt(Arc::new(source)),
    )
    .await
    .unwrap()
}

/// The configured gRPC listener serves the same keys as the REST API, per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_listener_serves_the_rest_apis_keys() {
    let key = service_key();
    let h = Harness::start_with(
        Backend::Sqlite,
        json!({ "grpc": grpc_config(&key, "127.0.0.1:0") }),
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let grpc = h.kms.grpc().unwrap().clone();
    let serving = tokio::spawn(grpc.serve(listener, stop.clone().cancelled_owned()));

    let token = h.token().await;
    let created = expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "issuer.signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        201,
    )
    .await;
    let remote = remote(addr, key, Arc::new(FixedClock::at_unix(NOW))).await;
    let a = Caller::new(
        h.kms.tenancy().context(h.tenant_a).await.unwrap(),
        "issuer-service",
    );
    let b = Caller::new(
        h.kms.tenancy().context(h.tenant_b).await.unwrap(),
        "issuer-service",
    );
    let alias: KeyAlias = "issuer.signing".parse().unwrap();
    let signature = remote.sign(&a, &alias, b"over grpc").await.unwrap();
    assert_eq!(signature.kid.as_str(), created["versions"][0]["kid"]);
    let verified = expect_json(
        h.post(
            "/signatures/raw/verify",
            &token,
            &json!({
                "key": signature.kid.as_str(),
                "alg": "ES256",
                "message": edk_core::encoding::b64url_encode(b"over grpc"),
                "signature": edk_core::encoding::b64url_encode(&signature.bytes),
            }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(verified["kid"], signature.kid.as_str(), "{verified}");

    let err = remote.sign(&b, &alias, b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    let err = remote
        .public_key(&b, &KeyRef::Kid(signature.kid.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    let created_b = remote
        .create_key(
            &b,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    assert_ne!(
        created_b.active().unwrap().kid.as_str(),
        signature.kid.as_str()
    );

    stop.cancel();
    serving.await.unwrap().unwrap();
    h.stop().await;
}

/// A child process killed when dropped, so a failed assertion leaves nothing running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The compiled `edk-kms` serves REST and gRPC side by side from one configuration file, and
/// refuses a gRPC section it cannot use with one line naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_grpc_next_to_http() {
    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let key = service_key();
    let (http_port, grpc_port) = (free_port(), free_port());
    let kek = edk_kms::provider::software::generate_kek().unwrap();
    let config = json!({
        "http": { "listen": format!("127.0.0.1:{http_port}") },
        "database": { "backend": "sqlite", "directory": dir.path().join("db") },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": secrecy::ExposeSecret::expose_secret(&kek) }],
        }] },
        "grpc": grpc_config(&key, &format!("127.0.0.1:{grpc_port}")),
    });
    let path = dir.path().join("kms.yaml");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    // A tenant provisioned before the server starts (as an operator's tool would).
    let tenancy = edk_tenancy::Tenancy::builder(edk_tenancy::DatabaseConfig::Sqlite(
        edk_tenancy::store::sqlite::SqliteConfig::new(dir.path().join("db")),
    ))
    .build()
    .await
    .unwrap();
    let tenant = tenancy
        .provision(edk_core::TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let caller = Caller::new(tenancy.context(tenant.id).await.unwrap(), SERVICE);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_edk-kms"))
        .arg("--config")
        .arg(&path)
        .env("EDK_LOG__FILTER", "warn")
        .env_remove("EDK_LISTEN")
        .env_remove("EDK_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Child)
        .unwrap();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{http_port}/health/ready"))
            .send()
            .await
        {
            ready = response.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "edk-kms did not become ready");
    let client = remote(
        format!("127.0.0.1:{grpc_port}").parse().unwrap(),
        key,
        Arc::new(SystemClock),
    )
    .await;
    let alias: KeyAlias = "issuer.signing".parse().unwrap();
    let created = client
        .create_key(
            &caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let signature = client
        .sign(&caller, &alias, b"from the binary")
        .await
        .unwrap();
    assert_eq!(signature.kid, created.active().unwrap().kid);
    let wrong_key = remote(
        format!("127.0.0.1:{grpc_port}").parse().unwrap(),
        service_key(),
        Arc::new(SystemClock),
    )
    .await;
    let refused = wrong_key.keys(&caller).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unauthenticated, "{refused:?}");
    drop(child);

    let mut bad = config.clone();
    bad["grpc"]["auth"] = json!({ "kind": "mtls" });
    std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edk-kms"))
        .arg("--config")
        .arg(&path)
        .env("EDK_LOG__FILTER", "off")
        .env_remove("EDK_LISTEN")
        .env_remove("EDK_CONFIG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("grpc.tls.client_ca_file"), "{stderr}");
}
