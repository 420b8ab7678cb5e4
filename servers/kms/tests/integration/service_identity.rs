//! Service identity on the KMS: the keys of `<service>.service-identity` in the operator realm
//! are published at `/service-identities/{service}/jwks.json` (public keys only, current and
//! previous versions), and the gRPC port can trust a service by them (`kms_published`):
//! rotation is followed, a removed version stops being accepted once the keys are read again,
//! a foreign key is refused.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock, ErrorKind, HasKind, Kid, TenantSlug};
use edk_kms::grpc::{ClientAuth, RemoteKms, ServiceTokenSource};
use edk_kms::kms::{SERVICE_IDENTITY_REALM, service_identity_alias};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyRef, Kms, NewKey};
use edk_tenancy::TenantDirectory;

use crate::support::{Backend, Harness};

const AUDIENCE: &str = "edk-kms";

async fn remote(addr: std::net::SocketAddr, source: Arc<ServiceTokenSource>) -> RemoteKms {
    RemoteKms::connect(&format!("http://{addr}"), ClientAuth::ServiceJwt(source))
        .await
        .unwrap()
}

async fn published(h: &Harness, service: &str) -> Value {
    let response = h
        .client
        .get(
            h.server
                .url(&format!("/service-identities/{service}/jwks.json")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn kms_published_services_are_trusted_by_their_published_keys(backend: Backend) {
    let h = Harness::start_with(
        backend,
        json!({ "grpc": { "listen": "127.0.0.1:0", "auth": {
            "kind": "service_jwt", "audience": AUDIENCE, "published_keys_ttl_secs": 60,
            "services": [{ "name": "verifier", "kms_published": true }],
        } } }),
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let grpc = h.kms.grpc().unwrap().clone();
    let serving = tokio::spawn(grpc.serve(listener, stop.clone().cancelled_owned()));
    let clock: Arc<dyn Clock> = h.clock.clone();

    // No realm yet, then no alias: nothing is published.
    assert_eq!(published(&h, "verifier").await, json!({ "keys": [] }));
    let realm = h
        .kms
        .tenancy()
        .provision(
            TenantSlug::new(SERVICE_IDENTITY_REALM).unwrap(),
            "Platform operators",
        )
        .await
        .unwrap()
        .id;
    assert_eq!(published(&h, "verifier").await, json!({ "keys": [] }));
    let bad = h
        .client
        .get(
            h.server
                .url("/service-identities/Not%20A%20Service/jwks.json"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let caller = Caller::new(h.kms.tenancy().context(realm).await.unwrap(), "test");
    let alias = service_identity_alias("verifier").unwrap();
    h.kms
        .kms()
        .create_key(
            &caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let keys = published(&h, "verifier").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    assert!(keys["keys"][0].get("d").is_none(), "{keys}");

    // The service signs with its alias: accepted.
    let signer = h.kms.kms().signer(&caller, &alias).await.unwrap();
    let old_kid = signer.kid().unwrap().clone();
    let old_source = Arc::new(ServiceTokenSource::new(
        signer,
        "verifier",
        AUDIENCE,
        Arc::clone(&clock),
    ));
    let old = remote(addr, Arc::clone(&old_source)).await;
    old.ping(h.tenant_a).await.unwrap();
    // A token for tenant b signed now, kept for after the removal below.
    old_source.token(h.tenant_b).await.unwrap();

    // A key the KMS does not publish for the service is refused.
    let rogue = remote(
        addr,
        Arc::new(ServiceTokenSource::new(
            Arc::new(SigningKey::generate(Algorithm::Es256).unwrap()),
            "verifier",
            AUDIENCE,
            Arc::clone(&clock),
        )),
    )
    .await;
    let err = rogue.ping(h.tenant_a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    // The alias rotates: the new version is accepted once the unknown kid may be looked up
    // again (not more often than every 5 s), and both versions are published.
    h.kms.kms().rotate(&caller, &alias).await.unwrap();
    assert_eq!(
        published(&h, "verifier").await["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let signer = h.kms.kms().signer(&caller, &alias).await.unwrap();
    assert_ne!(signer.kid().unwrap(), &old_kid);
    let new = remote(
        addr,
        Arc::new(ServiceTokenSource::new(
            signer,
            "verifier",
            AUDIENCE,
            Arc::clone(&clock),
        )),
    )
    .await;
    h.clock.advance(Duration::from_secs(6));
    new.ping(h.tenant_a).await.unwrap();

    // The previous version is removed: after the keys are read again, its tokens are refused.
    h.kms
        .kms()
        .delete_key(&caller, &KeyRef::Kid(Kid::new(old_kid.as_str()).unwrap()))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(61));
    let err = old.ping(h.tenant_b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    new.ping(h.tenant_b).await.unwrap();

    stop.cancel();
    serving.await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_published_services_on_sqlite() {
    kms_published_services_are_trusted_by_their_published_keys(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_published_services_on_postgres() {
    kms_published_services_are_trusted_by_their_published_keys(Backend::Postgres).await;
}

#[tokio::test]
async fn a_service_needs_exactly_one_of_jwks_and_kms_published() {
    edk_server::install_crypto_provider();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    for service in [
        json!({ "name": "verifier" }),
        json!({ "name": "verifier", "kms_published": true,
            "jwks": { "keys": [key.public_jwk()] } }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let kek = edk_kms::provider::software::generate_kek().unwrap();
        let config: edk_kms_server::KmsServerConfig = serde_json::from_value(json!({
            "database": { "backend": "sqlite", "directory": dir.path() },
            "kms": { "mode": "local", "providers": [{
                "kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{ "id": "k1", "key": secrecy::ExposeSecret::expose_secret(&kek) }],
            }] },
            "grpc": { "listen": "127.0.0.1:0", "auth": {
                "kind": "service_jwt", "audience": AUDIENCE, "services": [service] } },
        }))
        .unwrap();
        let err = edk_server::service::start::<edk_kms_server::KmsServer>(
            &config,
            Arc::new(edk_core::SystemClock),
            reqwest::Client::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("needs exactly one of `jwks` and `kms_published: true`"),
            "{err}"
        );
    }
}
