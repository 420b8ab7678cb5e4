//! The CSC API v2 provider against the testkit's CSC service: the registered-provider suite,
//! key creation refused, credentials registered as aliases of LocalKms, metadata cached,
//! refused credentials, token renewal, throttling and the circuit breaker.

use std::sync::Arc;

use edk_core::jose::{Algorithm, VerifyingKey};
use edk_core::{ErrorKind, HasKind as _, TenantId};
use edk_kms::provider::csc::{CscProvider, CscProviderConfig};
use edk_kms::provider::remote::RemoteOptions;
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::registered_provider_suite;
use edk_kms::{Error, KeyAlias, KeyRef, Kms, NewKey};
use edk_testkit::csc::{CscKey, CscServer};
use secrecy::SecretString;

use crate::support::{Backend, env_with, software};

const SECRET: &str = "csc-client-secret-value";

async fn server() -> CscServer {
    let server = CscServer::start().await;
    server.add_client("edk-kms", SECRET);
    server
}

fn config(server: &CscServer, secret: &str) -> CscProviderConfig {
    CscProviderConfig::new(
        ProviderId::new("csc").unwrap(),
        server.url(),
        "edk-kms",
        SecretString::from(secret.to_owned()),
    )
}

fn csc(config: CscProviderConfig) -> CscProvider {
    // Built in a workspace with the servers, reqwest uses rustls without a built-in provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    CscProvider::with_client(config, reqwest::Client::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csc_provider_passes_the_registered_provider_suite() {
    let server = server().await;
    let (tenant, other) = (TenantId::generate(), TenantId::generate());
    let keys = vec![
        (
            Algorithm::Es256,
            server.add_credential("acme", CscKey::P256),
        ),
        (
            Algorithm::Es384,
            server.add_credential("acme", CscKey::P384),
        ),
        (
            Algorithm::Rs256,
            server.add_credential("acme", CscKey::Rsa2048),
        ),
    ];
    server.add_credential("globex", CscKey::P256);
    let provider = csc(config(&server, SECRET)
        .with_user(tenant, "acme")
        .with_user(other, "globex"));
    registered_provider_suite(&provider, &tenant, &other, &keys).await;
    assert!(!provider.metrics().breaker_open);

    // The chain comes from credentials/info: the end-entity certificate, then its CA.
    let key = provider
        .register(&tenant, &KeySpec::signing(Algorithm::Es256), &keys[0].1)
        .await
        .unwrap();
    let chain = provider.certificates(&tenant, key.handle()).await.unwrap();
    assert_eq!(chain.len(), 2);

    // Signing makes no metadata call: one authorize and one signHash per signature.
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    let (info, list, authorize, sign) = (
        server.calls("credentials/info"),
        server.calls("credentials/list"),
        server.calls("credentials/authorize"),
        server.calls("signatures/signHash"),
    );
    for i in 0..5 {
        signer
            .sign(format!("message {i}").as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(server.calls("credentials/info"), info);
    assert_eq!(server.calls("credentials/list"), list);
    assert_eq!(server.calls("credentials/authorize"), authorize + 5);
    assert_eq!(server.calls("signatures/signHash"), sign + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_creation_is_refused_with_a_clear_error() {
    let server = server().await;
    let provider: Arc<dyn KeyProvider> = Arc::new(csc(config(&server, SECRET)));
    let err = provider
        .generate(&TenantId::generate(), &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "provider `csc` does not support key creation (register an existing CSC credential id instead)"
    );
    assert_eq!(server.requests(), 0, "refused without calling the service");

    let env = env_with(Backend::Sqlite, vec![Arc::clone(&provider)], Vec::new()).await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let spec = KeySpec::signing(Algorithm::Es256);
    let err = env
        .kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), spec).in_provider(ProviderId::new("csc").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `csc` does not support key creation (register an existing CSC credential id instead)"
    );
    // Never picked to create a key when no provider is named.
    let err = env
        .kms
        .create_key(&env.a, &NewKey::new(alias, spec))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoProvider { .. }), "{err:?}");
}

async fn credentials_register_as_aliases(backend: Backend) {
    let server = server().await;
    let credential = server.add_credential("acme", CscKey::P256);
    let globex = server.add_credential("globex", CscKey::P256);
    // The tenants exist once the environment is made; the provider learns their users first.
    let mut env = env_with(backend, vec![software("software")], Vec::new()).await;
    let provider: Arc<dyn KeyProvider> = Arc::new(csc(config(&server, SECRET)
        .with_user(env.a.tenant().id(), "acme")
        .with_user(env.b.tenant().id(), "globex")));
    env.kms = edk_kms::LocalKms::builder(
        env.tenancy.clone(),
        vec![software("software"), Arc::clone(&provider)],
    )
    .clock(env.clock.clone())
    .build()
    .unwrap();
    let csc_id = ProviderId::new("csc").unwrap();
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let spec = KeySpec::signing(Algorithm::Es256);

    let info = env
        .kms
        .register_provider_key(&env.a, &alias, &spec, &csc_id, &credential)
        .await
        .unwrap();
    assert_eq!(info.provider.as_ref(), Some(&csc_id));
    assert!(!info.external);
    let kid = info.active().unwrap().kid.clone();

    let signature = env.kms.sign(&env.a, &alias, b"sealed").await.unwrap();
    assert_eq!(signature.kid, kid);
    env.kms
        .verify(
            &env.a,
            &KeyRef::Alias(alias.clone()),
            Algorithm::Es256,
            b"sealed",
            &signature.bytes,
        )
        .await
        .unwrap();
    let jwks = env.kms.jwks(&env.a, &alias).await.unwrap();
    let jwk = jwks
        .keys
        .iter()
        .find(|jwk| jwk.kid.as_deref() == Some(kid.as_str()))
        .unwrap();
    VerifyingKey::from_jwk(jwk)
        .unwrap()
        .verify(Algorithm::Es256, b"sealed", &signature.bytes)
        .unwrap();

    // Rotation would create a key: refused, and the alias keeps its credential.
    let err = env.kms.rotate(&env.a, &alias).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(env.kms.sign(&env.a, &alias, b"m").await.unwrap().kid, kid);

    // Tenant b's user does not hold tenant a's credential, nor the reverse.
    let err = env
        .kms
        .register_provider_key(&env.b, &alias, &spec, &csc_id, &credential)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    env.kms
        .register_provider_key(&env.b, &alias, &spec, &csc_id, &globex)
        .await
        .unwrap();
    // The software provider registers nothing.
    let err = env
        .kms
        .register_provider_key(
            &env.a,
            &KeyAlias::new("issuer", "other").unwrap(),
            &spec,
            &ProviderId::new("software").unwrap(),
            &credential,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `software` does not support registering existing keys"
    );

    let operations: Vec<String> = env
        .kms
        .audit_events(&env.a, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.operation)
        .collect();
    assert!(
        operations.iter().any(|op| op == "register_provider_key"),
        "{operations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_register_as_aliases_on_sqlite() {
    credentials_register_as_aliases(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_register_as_aliases_on_postgres() {
    credentials_register_as_aliases(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_credentials_are_refused() {
    let server = server().await;
    let tenant = TenantId::generate();
    let disabled = server.add_credential("acme", CscKey::P256);
    server.disable(&disabled);
    let pin = server.add_credential("acme", CscKey::P256);
    server.require_pin(&pin);
    let removed = server.add_credential("acme", CscKey::P256);
    let provider = csc(config(&server, SECRET).with_user(tenant, "acme"));
    let spec = KeySpec::signing(Algorithm::Es256);

    let err = provider
        .register(&tenant, &spec, &disabled)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid key: the CSC credential's key is disabled"
    );
    let err = provider.register(&tenant, &spec, &pin).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider `csc` does not support credentials whose authorization is not implicit"
    );
    // A tenant the configuration names no user for finds nothing.
    let err = provider
        .register(&TenantId::generate(), &spec, &removed)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let key = provider.register(&tenant, &spec, &removed).await.unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.remove(&removed);
    let err = signer.sign(b"gone").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Forgotten from the cache: the next signer reads the service again.
    let err = provider.signer(&tenant, key.handle()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_unavailable_and_a_revoked_token_is_replaced() {
    let server = server().await;
    let tenant = TenantId::generate();
    let credential = server.add_credential("acme", CscKey::P256);
    let spec = KeySpec::signing(Algorithm::Es256);
    let wrong = csc(config(&server, "not-the-secret").with_user(tenant, "acme"));
    let err = wrong
        .register(&tenant, &spec, &credential)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.to_string(), "provider `csc` is unavailable");
    assert!(!format!("{err:?} {wrong:?}").contains("not-the-secret"));

    let provider = csc(config(&server, SECRET).with_user(tenant, "acme"));
    let key = provider
        .register(&tenant, &spec, &credential)
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.revoke_tokens();
    signer.sign(b"after revocation").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_the_breaker_opens_after_repeated_failures() {
    let server = server().await;
    let tenant = TenantId::generate();
    let credential = server.add_credential("acme", CscKey::Rsa2048);
    let mut config = config(&server, SECRET).with_user(tenant, "acme");
    config.remote = RemoteOptions {
        max_attempts: 3,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        breaker_failures: 2,
        breaker_cooldown_millis: 60_000,
        ..RemoteOptions::default()
    };
    let provider = csc(config);
    let key = provider
        .register(&tenant, &KeySpec::signing(Algorithm::Rs256), &credential)
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.throttle(2);
    let before = server.requests();
    signer.sign(b"throttled twice").await.unwrap();
    // Two throttled authorize attempts, then authorize and signHash.
    assert_eq!(server.requests() - before, 4);
    server.throttle(100);
    for _ in 0..2 {
        let err = signer.sign(b"throttled").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
    let before = server.requests();
    let err = signer.sign(b"breaker open").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(server.requests(), before, "an open breaker sends nothing");
    let metrics = provider.metrics();
    assert!(metrics.breaker_open);
    assert_eq!(metrics.throttles, 8);
    assert_eq!(metrics.errors.get("circuit_open"), Some(&1));
}
