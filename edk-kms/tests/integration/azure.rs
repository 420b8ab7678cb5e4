//! The Azure Key Vault provider against the testkit's Key Vault-compatible server: the
//! conformance suites, credentials, token renewal, throttling and the circuit breaker.

use std::sync::Arc;

use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, JoseError};
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
    let mut config = AzureKeyVaultProviderConfig::new(
        ProviderId::new("azure").unwrap(),
        server.url(),
        AzureCredentialsConfig::ClientSecret {
            tenant_id: "contoso.onmicrosoft.com".to_owned(),
            client_id: "edk-kms".to_owned(),
            client_secret: Some(SecretString::from(secret.to_owned())),
            client_secret_file: None,
            authority_host: Some(server.url()),
        },
    );
    // The test server's vault URL is an IP address, not a host under the challenge's
    // `vault.azure.net`.
    config.verify_challenge_resource = false;
    config
}

fn azure(
    server: &AzureKeyVaultServer,
    config: AzureKeyVaultProviderConfig,
) -> AzureKeyVaultProvider {
    AzureKeyVaultProvider::with_client(config, server.client()).unwrap()
}

async fn server() -> AzureKeyVaultServer {
    let server = AzureKeyVaultServer::start().await;
    server.add_client("edk-kms", "client-secret-value");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_provider_passes_the_suite() {
    let server = server().await;
    let provider = azure(&server, config(&server, "client-secret-value"));
    provider_suite(&provider).await;
    assert!(!provider.metrics().breaker_open);
}

async fn kms_suite_with_azure(backend: Backend) {
    let server = server().await;
    let provider: Arc<dyn KeyProvider> =
        Arc::new(azure(&server, config(&server, "client-secret-value")));
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
    // RSA-OAEP-256 decryption keys went to Key Vault too (preferred to the exportable
    // software provider): JWE decryption and unwrapping went through `unwrapkey`.
    let oaep = keys
        .iter()
        .find(|k| k.alias.purpose().starts_with("enc-rsa-oaep-256-"))
        .unwrap();
    assert_eq!(
        oaep.provider.as_ref().map(ProviderId::as_str),
        Some("azure")
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
    let wrong = azure(&server, config(&server, "not-the-secret"));
    let err = wrong
        .generate(&TenantId::generate(), &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.to_string(), "provider `azure` is unavailable");
    assert!(!format!("{err:?} {wrong:?}").contains("not-the-secret"));

    let provider = azure(&server, config(&server, "client-secret-value"));
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
    let provider = azure(&server, config);
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

fn oaep_header() -> edk_core::jose::jwe::JweHeader {
    serde_json::from_value(serde_json::json!({ "alg": "RSA-OAEP-256", "enc": "A256GCM" })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_vault_unwraps_what_it_and_the_public_key_wrapped() {
    let server = server().await;
    let provider = azure(&server, config(&server, "client-secret-value"));
    assert!(
        provider
            .capabilities()
            .decryption()
            .contains(&KeyManagement::RsaOaep256)
    );
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::decryption(KeyManagement::RsaOaep256))
        .await
        .unwrap();
    let decrypter = provider.decrypter(&tenant, key.handle()).await.unwrap();
    assert!(decrypter.supports(KeyManagement::RsaOaep256));
    assert!(!decrypter.supports(KeyManagement::EcdhEs));

    // Wrapped by Key Vault (`wrapkey`), unwrapped by Key Vault (`unwrapkey`).
    let cek = [42u8; 32];
    let wrapped = provider.wrap(&tenant, key.handle(), &cek).await.unwrap();
    assert_eq!(wrapped.len(), 256);
    let before = server.requests();
    let unwrapped = decrypter
        .content_key(&oaep_header(), &wrapped)
        .await
        .unwrap();
    assert_eq!(unwrapped.as_slice(), cek);
    assert_eq!(server.requests() - before, 1, "one call, no metadata read");

    // Wrapped here with the public key (a JWE to it), unwrapped by Key Vault.
    let token = edk_core::jose::jwe::encrypt(
        b"to the vault",
        key.public_jwk(),
        KeyManagement::RsaOaep256,
        ContentEncryption::A256Gcm,
        Default::default(),
    )
    .unwrap();
    let (_, plaintext) = edk_core::jose::jwe::Jwe::parse(&token, &Default::default())
        .unwrap()
        .decrypt(&*decrypter)
        .await
        .unwrap();
    assert_eq!(plaintext.as_slice(), b"to the vault");

    // A value that does not unwrap, and a header for another algorithm: one answer.
    let mut tampered = wrapped.clone();
    tampered[10] ^= 1;
    let err = decrypter
        .content_key(&oaep_header(), &tampered)
        .await
        .unwrap_err();
    assert!(matches!(err, JoseError::DecryptionFailed), "{err:?}");
    let ecdh: edk_core::jose::jwe::JweHeader =
        serde_json::from_value(serde_json::json!({ "alg": "ECDH-ES", "enc": "A256GCM" })).unwrap();
    assert!(matches!(
        decrypter.content_key(&ecdh, &wrapped).await,
        Err(JoseError::DecryptionFailed)
    ));

    // Another tenant's handle finds nothing; a signing key does not unwrap.
    let err = provider
        .decrypter(&TenantId::generate(), key.handle())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let signing = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let err = provider
        .decrypter(&tenant, signing.handle())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = provider
        .wrap(&tenant, signing.handle(), &cek)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    // A decryption key does not sign.
    let err = provider.signer(&tenant, key.handle()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_unwrap_is_retried_and_an_unreachable_vault_is_unavailable() {
    let server = server().await;
    let mut config = config(&server, "client-secret-value");
    config.remote = RemoteOptions {
        max_attempts: 2,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        ..RemoteOptions::default()
    };
    let provider = azure(&server, config);
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::decryption(KeyManagement::RsaOaep256))
        .await
        .unwrap();
    let decrypter = provider.decrypter(&tenant, key.handle()).await.unwrap();
    let wrapped = provider
        .wrap(&tenant, key.handle(), &[1u8; 16])
        .await
        .unwrap();
    server.throttle(1);
    let unwrapped = decrypter
        .content_key(&oaep_header(), &wrapped)
        .await
        .unwrap();
    assert_eq!(unwrapped.as_slice(), [1u8; 16]);
    server.throttle(10);
    let err = decrypter
        .content_key(&oaep_header(), &wrapped)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
}

#[tokio::test]
async fn key_management_configuration_is_checked() {
    let server = server().await;
    let mut sha1 = config(&server, "client-secret-value");
    sha1.key_management = Some(vec!["RSA-OAEP".to_owned()]);
    let err = AzureKeyVaultProvider::with_client(sha1, server.client()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut none = config(&server, "client-secret-value");
    none.key_management = Some(Vec::new());
    let provider = azure(&server, none);
    assert!(provider.capabilities().decryption().is_empty());
    let err = provider
        .generate(
            &TenantId::generate(),
            &KeySpec::decryption(KeyManagement::RsaOaep256),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_exchanges_the_federated_token_file() {
    let server = AzureKeyVaultServer::start().await;
    server.add_federated_client("edk-workload", "federated-token-value");
    let dir = edk_testkit::temp_dir();
    let token_file = dir.path().join("azure-identity-token");
    let workload = |token: &str| {
        std::fs::write(&token_file, token).unwrap();
        let mut config = AzureKeyVaultProviderConfig::new(
            ProviderId::new("azure").unwrap(),
            server.url(),
            AzureCredentialsConfig::WorkloadIdentity {
                tenant_id: Some("contoso.onmicrosoft.com".to_owned()),
                client_id: Some("edk-workload".to_owned()),
                token_file: Some(token_file.clone()),
                authority_host: Some(server.url()),
            },
        );
        config.verify_challenge_resource = false;
        azure(&server, config)
    };

    let provider = workload("federated-token-value");
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es384))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    let signature = signer.sign(b"federated").await.unwrap();
    assert_eq!(signature.len(), 96);

    // Another federated token is refused by the token endpoint: unavailable.
    let refused = workload("not-the-federated-token");
    let err = refused
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!format!("{err:?}").contains("not-the-federated-token"));
}

#[tokio::test]
async fn plain_http_urls_are_refused() {
    let server = server().await;
    let mut http = config(&server, "client-secret-value");
    http.vault_url = http.vault_url.replace("https://", "http://");
    let err = AzureKeyVaultProvider::with_client(http, server.client()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut authority = config(&server, "client-secret-value");
    authority.credentials = AzureCredentialsConfig::ClientSecret {
        tenant_id: "contoso".to_owned(),
        client_id: "edk-kms".to_owned(),
        client_secret: Some(SecretString::from("client-secret-value".to_owned())),
        client_secret_file: None,
        authority_host: Some(server.url().replace("https://", "http://")),
    };
    let err = AzureKeyVaultProvider::with_client(authority, server.client()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
