//! Service identity through the KMS: a DID server signs its directory tokens with its own KMS
//! alias (`did.service-identity` in the operator realm) through a real KMS server, and the
//! platform's directory trusts it by the keys the KMS publishes; rotation, removed keys,
//! foreign keys and another service's alias; readiness follows the directory; the circular
//! configuration is refused. PostgreSQL, loopback gRPC and HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{ErrorKind, HasKind as _, Kid, SystemClock};
use edk_did_server::DidService;
use edk_kms::Kms as _;
use edk_kms::grpc::{RemoteKms, ServiceTokenSource};
use edk_kms::kms::{Caller, KeyRef, SERVICE_IDENTITY_REALM, service_identity_alias};
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_platform_server::PlatformServerConfig;
use edk_server::service::start;
use edk_server::{Service as _, spawn_server};
use edk_tenancy::grpc::proto::ListBindingsRequest;
use edk_tenancy::grpc::proto::tenant_directory_client::TenantDirectoryClient;
use edk_tenancy::{EndpointBinding, ServiceType, TenantDirectory as _, WellKnownLayout};
use edk_testkit::TestDb;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::support::{DirectoryPlatform, authorized, eventually, service_key, software_kms};

const AUDIENCE: &str = "edk-platform";

fn remote_kms_section(grpc: SocketAddr, dir: &std::path::Path, service: &str) -> Value {
    json!({"mode": "remote", "endpoint": format!("http://{grpc}"), "timeout_millis": 5000,
        "auth": {"kind": "service_jwt", "service": service, "audience": "edk-kms",
            "key_file": dir.join(format!("{service}.jwk"))}})
}

/// A KMS client authenticated as `service` with its key file.
fn remote_kms(grpc: SocketAddr, dir: &std::path::Path, service: &str) -> RemoteKms {
    let mut section = remote_kms_section(grpc, dir, service);
    section.as_object_mut().unwrap().remove("mode");
    edk_server::kms::connect_remote(
        &serde_json::from_value(section).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// Whether the platform's directory accepts `token`, or the code it refuses it with.
async fn directory_accepts(addr: SocketAddr, token: &str) -> Result<(), Code> {
    let mut client = TenantDirectoryClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client
        .list_bindings(authorized(ListBindingsRequest {}, token))
        .await
        .map(|_| ())
        .map_err(|status| status.code())
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_server_signs_its_directory_tokens_with_its_kms_alias() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let database = json!({"backend": "postgres", "platform_url": db.url()});

    // The KMS server: the DID and issuer services reach it with key files.
    let did_kms_key = service_key(dir.path(), "did").1;
    let issuer_kms_key = service_key(dir.path(), "issuer").1;
    let kms_grpc: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kms_config: KmsServerConfig = serde_json::from_value(json!({
        "database": database,
        "kms": software_kms(),
        "grpc": {"listen": kms_grpc, "auth": {"kind": "service_jwt", "audience": "edk-kms",
            "services": [
                {"name": "did", "jwks": {"keys": [did_kms_key]}},
                {"name": "issuer", "jwks": {"keys": [issuer_kms_key]}},
            ]}},
    }))
    .unwrap();
    let kms = start::<KmsServer>(&kms_config, Arc::new(SystemClock), reqwest::Client::new())
        .await
        .unwrap();
    let stop_kms = CancellationToken::new();
    for task in kms.side_tasks(stop_kms.clone()).await.unwrap() {
        tokio::spawn(task);
    }
    let kms_http = spawn_server(kms.app()).await.unwrap();

    // The platform trusts `did` by the keys the KMS publishes (read again on every check
    // here, so a removed key is refused at once).
    let platform_config: PlatformServerConfig = serde_json::from_value(json!({
        "database": database,
        "kms": software_kms(),
        "platform": {"host": "localhost", "dangerous_loopback_http": true,
            "setup_token_file": dir.path().join("setup-token")},
        "grpc": {"listen": "127.0.0.1:0", "audience": AUDIENCE,
            "services": [{"name": "did", "kms_published": true}],
            "published_keys": {"url": kms_http.url(""), "cache_ttl_secs": 0,
                "min_refresh_secs": 0}},
    }))
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let platform = DirectoryPlatform::start(&platform_config, listener).await;
    let tenancy = platform.tenancy().clone();
    let realm = tenancy
        .tenant_by_slug(&SERVICE_IDENTITY_REALM.parse().unwrap())
        .await
        .unwrap()
        .id;
    let acme = tenancy
        .provision("acme".parse().unwrap(), "Acme")
        .await
        .unwrap()
        .id;
    tenancy
        .bind(
            &EndpointBinding::dangerous_loopback_http(
                acme,
                ServiceType::Did,
                "acme.localhost",
                Some(8080),
                "",
                WellKnownLayout::default(),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    // Nothing is published before the alias exists.
    let published: Value = reqwest::get(kms_http.url("/service-identities/did/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(published, json!({"keys": []}));

    // The DID server signs with `did.service-identity`, created on first use; the platform
    // accepts it, and the server is ready.
    let did_config: <DidService as edk_server::Service>::Config = serde_json::from_value(json!({
        "database": database,
        "kms": remote_kms_section(kms_grpc, dir.path(), "did"),
        "directory": {"endpoint": format!("http://{addr}"), "service": "did",
            "audience": AUDIENCE, "kms_alias": "did.service-identity", "kms_realm": realm,
            "cache_ttl_secs": 1},
    }))
    .unwrap();
    let did = start::<DidService>(&did_config, Arc::new(SystemClock), reqwest::Client::new())
        .await
        .unwrap();
    let runtime = did.deps().tenancy().clone();
    assert_eq!(runtime.context(acme).await.unwrap().slug().as_str(), "acme");
    let published: Value = reqwest::get(kms_http.url("/service-identities/did/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = published["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{published}");
    assert!(keys[0].get("d").is_none(), "private material published");
    let did_http = spawn_server(did.app()).await.unwrap();
    let ready = || async {
        let response = reqwest::get(did_http.url("/health/ready")).await.unwrap();
        let status = response.status().as_u16();
        let report: Value = response.json().await.unwrap();
        let directory = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "directory")
            .cloned()
            .expect("a directory check");
        (status, directory["ok"] == true)
    };
    eventually("the DID server is ready", || async {
        ready().await == (200, true)
    })
    .await;

    // The platform goes away: after the DID server's cache TTL it is not ready, naming the
    // directory; the platform comes back on the same address and it is ready again.
    platform.stop().await;
    eventually("the DID server is not ready", || async {
        ready().await == (503, false)
    })
    .await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let platform = DirectoryPlatform::start(&platform_config, listener).await;
    eventually("the DID server is ready again", || async {
        ready().await == (200, true)
    })
    .await;

    // The alias rotates: tokens of the new version and of the previous one are accepted.
    let did_kms = remote_kms(kms_grpc, dir.path(), "did");
    let tokens = |kms: &RemoteKms, service: &str| {
        ServiceTokenSource::from_source(
            Arc::new(
                kms.service_identity(realm, service, Algorithm::Es256)
                    .unwrap(),
            ),
            "did",
            AUDIENCE,
            Arc::new(SystemClock),
        )
    };
    let before = tokens(&did_kms, "did").service_token().await.unwrap();
    assert_eq!(directory_accepts(addr, &before).await, Ok(()));
    let realm_context = kms.tenancy().context(realm).await.unwrap();
    let caller = Caller::new(realm_context, "test");
    let alias = service_identity_alias("did").unwrap();
    kms.kms().rotate(&caller, &alias).await.unwrap();
    let after = tokens(&did_kms, "did").service_token().await.unwrap();
    assert_ne!(kid_of(&before), kid_of(&after));
    assert_eq!(directory_accepts(addr, &after).await, Ok(()));
    assert_eq!(directory_accepts(addr, &before).await, Ok(()));

    // The previous version is removed: its tokens are refused once the keys are read again.
    kms.kms()
        .delete_key(&caller, &KeyRef::Kid(Kid::new(kid_of(&before)).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        directory_accepts(addr, &before).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(directory_accepts(addr, &after).await, Ok(()));

    // A token of a key the KMS does not publish is refused.
    let rogue = ServiceTokenSource::new(
        Arc::new(SigningKey::generate(Algorithm::Es256).unwrap()),
        "did",
        AUDIENCE,
        Arc::new(SystemClock),
    )
    .service_token()
    .await
    .unwrap();
    assert_eq!(
        directory_accepts(addr, &rogue).await,
        Err(Code::Unauthenticated)
    );

    // Another service cannot sign with (or create) the DID server's alias.
    let issuer_kms = remote_kms(kms_grpc, dir.path(), "issuer");
    let err = tokens(&issuer_kms, "did")
        .service_token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");

    did_http.shutdown().await.unwrap();
    did.shutdown().await;
    platform.stop().await;
    kms_http.shutdown().await.unwrap();
    stop_kms.cancel();
    kms.shutdown().await;
    db.close().await;
}

#[tokio::test]
async fn a_kms_alias_with_an_in_process_kms_is_refused() {
    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config: <DidService as edk_server::Service>::Config = serde_json::from_value(json!({
        "database": {"backend": "sqlite", "directory": dir.path()},
        "kms": software_kms(),
        "directory": {"endpoint": "http://127.0.0.1:1", "service": "did",
            "audience": AUDIENCE, "kms_alias": "did.service-identity",
            "kms_realm": edk_core::TenantId::generate()},
    }))
    .unwrap();
    let err = start::<DidService>(&config, Arc::new(SystemClock), reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`directory.kms_alias` needs `kms.mode: remote`"),
        "{err}"
    );
    // Both a key file and an alias, or another service's alias: named errors.
    for (directory, expected) in [
        (
            json!({"key_file": dir.path().join("did.jwk"), "kms_alias": "did.service-identity"}),
            "`directory.key_file` or `directory.kms_alias`: give exactly one",
        ),
        (
            json!({"kms_alias": "issuer.service-identity"}),
            "`directory.kms_alias` must be `<service>.service-identity`",
        ),
    ] {
        let mut section = json!({"endpoint": "http://127.0.0.1:1", "service": "did",
            "audience": AUDIENCE, "kms_realm": edk_core::TenantId::generate()});
        section
            .as_object_mut()
            .unwrap()
            .extend(directory.as_object().unwrap().clone());
        let config: <DidService as edk_server::Service>::Config = serde_json::from_value(json!({
            "database": {"backend": "sqlite", "directory": dir.path()},
            "kms": software_kms(),
            "directory": section,
        }))
        .unwrap();
        let err = start::<DidService>(&config, Arc::new(SystemClock), reqwest::Client::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}
