//! The Vault Transit provider against the testkit's Transit-compatible server: the conformance
//! suite with token and AppRole auth, versions and rotation, Vault-side verification,
//! throttling and the circuit breaker.

use std::sync::Arc;

use edk_core::jose::{Algorithm, VerifyingKey};
use edk_core::{ErrorKind, HasKind as _, TenantId};
use edk_kms::Kms;
use edk_kms::provider::remote::RemoteOptions;
use edk_kms::provider::vault::{VaultAuthConfig, VaultTransitProvider, VaultTransitProviderConfig};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::{KmsSuiteConfig, expect_kind, kms_suite, provider_suite};

use crate::support::{Backend, env_with, software};
use edk_testkit::vault_transit::{ROOT_TOKEN, VaultTransitServer};
use secrecy::SecretString;

fn token_auth(token: &str) -> VaultAuthConfig {
    VaultAuthConfig::Token {
        token: Some(SecretString::from(token.to_owned())),
        token_file: None,
    }
}

fn vault(server: &VaultTransitServer, auth: VaultAuthConfig) -> VaultTransitProvider {
    // Built in a workspace with the servers, reqwest uses rustls without a built-in provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    VaultTransitProvider::new(VaultTransitProviderConfig::new(
        ProviderId::new("vault").unwrap(),
        server.address(),
        auth,
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_provider_passes_the_suite_with_a_token() {
    let server = VaultTransitServer::start().await;
    let provider = vault(&server, token_auth(ROOT_TOKEN));
    provider_suite(&provider).await;
    assert!(!provider.metrics().breaker_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_provider_passes_the_suite_with_approle_and_logs_in_again_when_revoked() {
    let server = VaultTransitServer::start().await;
    server.add_approle("edk-kms", "approle-secret");
    let provider = vault(
        &server,
        VaultAuthConfig::AppRole {
            mount: "approle".to_owned(),
            role_id: "edk-kms".to_owned(),
            secret_id: Some(SecretString::from("approle-secret")),
            secret_id_file: None,
        },
    );
    provider_suite(&provider).await;
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.revoke_tokens();
    signer.sign(b"after revocation").await.unwrap();

    let wrong = vault(
        &server,
        VaultAuthConfig::AppRole {
            mount: "approle".to_owned(),
            role_id: "edk-kms".to_owned(),
            secret_id: Some(SecretString::from("not-the-secret")),
            secret_id_file: None,
        },
    );
    let err = wrong
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_unavailable_and_secrets_never_show() {
    let server = VaultTransitServer::start().await;
    let provider = vault(&server, token_auth("hvs.not-a-token"));
    let err = provider
        .generate(&TenantId::generate(), &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.to_string(), "provider `vault` is unavailable");
    assert!(!format!("{err:?} {provider:?}").contains("hvs.not-a-token"));
    // A refusal is an answer: the breaker stays closed.
    assert!(!provider.metrics().breaker_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_maps_vault_versions_to_key_versions() {
    let server = VaultTransitServer::start().await;
    let provider = vault(&server, token_auth(ROOT_TOKEN));
    let tenant = TenantId::generate();
    let v1 = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es384))
        .await
        .unwrap();
    let v2 = provider.rotate(&tenant, v1.handle()).await.unwrap();
    assert_ne!(v1.kid(), v2.kid());
    let name = v1.handle().reference().rsplit_once(':').unwrap().0;
    assert_eq!(v1.handle().reference(), format!("{name}:1"));
    assert_eq!(v2.handle().reference(), format!("{name}:2"));
    assert_eq!(server.key_names(), [name]);
    // Each version signs with its own key, which Vault also verifies.
    for key in [&v1, &v2] {
        let signer = provider.signer(&tenant, key.handle()).await.unwrap();
        let signature = signer.sign(b"header.payload").await.unwrap();
        VerifyingKey::from_jwk(key.public_jwk())
            .unwrap()
            .verify(Algorithm::Es384, b"header.payload", &signature)
            .unwrap();
        assert!(
            provider
                .verify(&tenant, key.handle(), b"header.payload", &signature)
                .await
                .unwrap()
        );
        assert!(
            !provider
                .verify(&tenant, key.handle(), b"other input", &signature)
                .await
                .unwrap()
        );
    }
    // Destroying the old version stops it signing; the current one still signs.
    provider.destroy(&tenant, v1.handle()).await.unwrap();
    expect_kind(
        provider.signer(&tenant, v1.handle()).await,
        ErrorKind::NotFound,
        "signing with a destroyed version",
    );
    let signer = provider.signer(&tenant, v2.handle()).await.unwrap();
    signer.sign(b"still signs").await.unwrap();
    // Destroying the latest version deletes the Vault key.
    provider.destroy(&tenant, v2.handle()).await.unwrap();
    assert!(server.key_names().is_empty());
    let err = signer.sign(b"gone").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_the_breaker_opens_after_repeated_failures() {
    let server = VaultTransitServer::start().await;
    let mut config = VaultTransitProviderConfig::new(
        ProviderId::new("vault").unwrap(),
        server.address(),
        token_auth(ROOT_TOKEN),
    );
    config.remote = RemoteOptions {
        max_attempts: 3,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        breaker_failures: 2,
        breaker_cooldown_millis: 300,
        ..RemoteOptions::default()
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let provider = VaultTransitProvider::new(config).unwrap();
    let tenant = TenantId::generate();
    let spec = KeySpec::signing(Algorithm::Es256);
    let key = provider.generate(&tenant, &spec).await.unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();

    // Two throttled answers, then success: the caller sees a signature.
    server.throttle(2);
    let before = server.requests();
    signer.sign(b"throttled twice").await.unwrap();
    assert_eq!(server.requests() - before, 3);
    assert_eq!(provider.metrics().throttles, 2);

    // Throttled beyond the attempts, twice: Unavailable, and the breaker opens.
    server.throttle(100);
    for _ in 0..2 {
        let err = signer.sign(b"throttled").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
    let before = server.requests();
    let err = signer.sign(b"breaker open").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(server.requests(), before, "an open breaker sends nothing");
    assert!(provider.metrics().breaker_open);

    // After the cooldown a trial call goes through and closes it.
    server.throttle(0);
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    signer.sign(b"recovered").await.unwrap();
    assert!(!provider.metrics().breaker_open);
}

async fn kms_suite_with_vault(backend: Backend) {
    let server = VaultTransitServer::start().await;
    let provider: Arc<dyn KeyProvider> = Arc::new(vault(&server, token_auth(ROOT_TOKEN)));
    let env = env_with(backend, vec![provider, software("software")], Vec::new()).await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    let config = KmsSuiteConfig::default()
        .with_signing(&[
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::EdDsa,
            Algorithm::Rs256,
            Algorithm::Ps256,
        ])
        .with_signing_provider(ProviderId::new("vault").unwrap());
    kms_suite(kms, &env.a, &env.b, &config).await;
    // The suite's signing keys are Transit keys.
    let keys = env.kms.keys(&env.a).await.unwrap();
    assert!(
        keys.iter()
            .filter(|k| k.alias.purpose().starts_with("sign-"))
            .all(|k| k.provider.as_ref().map(ProviderId::as_str) == Some("vault"))
    );
    assert!(!server.key_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_vault_on_sqlite() {
    kms_suite_with_vault(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_vault_on_postgres() {
    kms_suite_with_vault(Backend::Postgres).await;
}
