//! The Azure Key Vault provider against the testkit's Key Vault-compatible server: the
//! conformance suites, credentials, token renewal, throttling and the circuit breaker.

use std::sync::Arc;

use edk_core::jose::Algorithm;
use edk_core::{ErrorKind, HasKind as _, TenantId};
use edk_kms::Kms;
use edk_kms::provider::azure::{
    AzureCredentialsConfig, AzureKeyVaultProvider, AzureKeyVaultProviderConfig,
};
use edk_kms::provider::remote::RemoteOptions;
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::{KmsSuiteConfig, kms_suite, provider_suite};
use edk_testkit::azure_key_vault::AzureKeyVaultServer;
use secrecy::SecretString;

use crate::support::{Backend, env_with, software};

fn config(server: &AzureKeyVaultServer, secret: &str) -> AzureKeyVaultProviderConfig {
    AzureKeyVaultProviderConfig::new(
        ProviderId::new("azure").unwrap(),
        server.url(),
        AzureCredentialsConfig::ClientSecret {
            tenant_id: "contoso.onmicrosoft.com".to_owned(),
            client_id: "edk-kms".to_owned(),
            client_secret: Some(SecretString::from(secret.to_owned())),
            client_secret_file: None,
            authority_host: Some(server.url()),
        },
    )
}

fn azure(config: AzureKeyVaultProviderConfig) -> AzureKeyVaultProvider {
    // Built in a workspace with the servers, reqwest uses rustls without a built-in provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    AzureKeyVaultProvider::with_client(config, reqwest::Client::new()).unwrap()
}

async fn server() -> AzureKeyVaultServer {
    let server = AzureKeyVaultServer::start().await;
    server.add_client("edk-kms", "client-secret-value");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_provider_passes_the_suite() {
    let server = server().await;
    let provider = azure(config(&server, "client-secret-value"));
    provider_suite(&provider).await;
    assert!(!provider.metrics().breaker_open);
}

async fn kms_suite_with_azure(backend: Backend) {
    let server = server().await;
    let provider: Arc<dyn KeyProvider> = Arc::new(azure(config(&server, "client-secret-value")));
    let env = env_with(backend, vec![provider, software("software")], Vec::new()).await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    let config = KmsSuiteConfig::default()
        .with_signing(&[
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::Rs256,
            Algorithm::Ps256,
        ])
        .with_signing_provider(ProviderId::new("azure").unwrap());
    kms_suite(kms, &env.a, &env.b, &config).await;
    let keys = env.kms.keys(&env.a).await.unwrap();
    assert!(
        keys.iter()
            .filter(|k| k.alias.purpose().starts_with("sign-"))
            .all(|k| k.provider.as_ref().map(ProviderId::as_str) == Some("azure"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_azure_on_sqlite() {
    kms_suite_with_azure(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_azure_on_postgres() {
    kms_suite_with_azure(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_unavailable_and_a_revoked_token_is_replaced() {
    let server = server().await;
    let wrong = azure(config(&server, "not-the-secret"));
    let err = wrong
        .generate(&TenantId::generate(), &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.to_string(), "provider `azure` is unavailable");
    assert!(!format!("{err:?} {wrong:?}").contains("not-the-secret"));

    let provider = azure(config(&server, "client-secret-value"));
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.revoke_tokens();
    signer.sign(b"after revocation").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_the_breaker_opens_after_repeated_failures() {
    let server = server().await;
    let mut config = config(&server, "client-secret-value");
    config.remote = RemoteOptions {
        max_attempts: 3,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        breaker_failures: 2,
        breaker_cooldown_millis: 60_000,
        ..RemoteOptions::default()
    };
    let provider = azure(config);
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Rs256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    server.throttle(2);
    let before = server.requests();
    signer.sign(b"throttled twice").await.unwrap();
    assert_eq!(server.requests() - before, 3);
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
}
