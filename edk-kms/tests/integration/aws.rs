//! The AWS KMS provider against `moto` in server mode (the conformance suite, and what our own
//! verification catches of moto's gaps) and against a server that throttles every call.

use std::sync::Arc;

use edk_core::jose::Algorithm;
use edk_core::{ErrorKind, HasKind as _, TenantId};
use edk_kms::Kms;
use edk_kms::provider::aws::{
    AwsCredentialsConfig, AwsKmsProvider, AwsKmsProviderConfig, MessageMode,
};
use edk_kms::provider::remote::RemoteOptions;
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::{KmsSuiteConfig, expect_kind, kms_suite, provider_suite};

use crate::support::{Backend, env_with, software};
use edk_testkit::moto::MotoServer;
use edk_testkit::scripted::{ScriptedAnswer, ScriptedServer};
use secrecy::SecretString;

fn config(
    endpoint: &str,
    algorithms: &[Algorithm],
    message_type: MessageMode,
) -> AwsKmsProviderConfig {
    let mut config = AwsKmsProviderConfig::new(ProviderId::new("aws").unwrap(), "eu-west-1");
    config.endpoint = Some(endpoint.to_owned());
    config.credentials = AwsCredentialsConfig::Static {
        access_key_id: "testing".to_owned(),
        secret_access_key: Some(SecretString::from("testing")),
        secret_access_key_file: None,
        session_token: None,
    };
    config.algorithms = Some(algorithms.to_vec());
    config.message_type = message_type;
    config
}

// moto signs what it receives as if it were the message, so DIGEST signatures are over the
// digest's digest: against moto the suite runs with RAW messages. Its RSASSA-PSS uses the
// largest salt, which JOSE's PS256 refuses, so PS256 is checked separately below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_provider_passes_the_suite_against_moto() {
    let moto = MotoServer::start().await;
    let provider = AwsKmsProvider::connect(config(
        &moto.endpoint(),
        &[
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::Es256K,
            Algorithm::Rs256,
        ],
        MessageMode::Raw,
    ))
    .await
    .unwrap();
    provider_suite(&provider).await;
    let metrics = provider.metrics();
    assert!(metrics.calls > 0);
    assert_eq!(metrics.throttles, 0);
    assert!(!metrics.breaker_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_that_do_not_verify_are_refused() {
    let moto = MotoServer::start().await;
    let tenant = TenantId::generate();
    // DIGEST: moto hashes the digest again; PS256: moto's salt is not the hash length. Both
    // signatures fail our check with the cached public key and never reach the caller.
    for (alg, mode) in [
        (Algorithm::Es256, MessageMode::Digest),
        (Algorithm::Ps256, MessageMode::Raw),
    ] {
        let provider = AwsKmsProvider::connect(config(&moto.endpoint(), &[alg], mode))
            .await
            .unwrap();
        let key = provider
            .generate(&tenant, &KeySpec::signing(alg))
            .await
            .unwrap();
        let signer = provider.signer(&tenant, key.handle()).await.unwrap();
        let err = signer.sign(b"header.payload").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{alg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_messages_over_the_aws_limit_are_refused_before_any_call() {
    let moto = MotoServer::start().await;
    let provider = AwsKmsProvider::connect(config(
        &moto.endpoint(),
        &[Algorithm::Es256],
        MessageMode::Raw,
    ))
    .await
    .unwrap();
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    let calls = provider.metrics().calls;
    let err = signer.sign(&[b'a'; 4097]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(provider.metrics().calls, calls);
    signer.sign(&[b'a'; 4096]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_makes_no_metadata_calls() {
    let moto = MotoServer::start().await;
    let provider = AwsKmsProvider::connect(config(
        &moto.endpoint(),
        &[Algorithm::Es256],
        MessageMode::Raw,
    ))
    .await
    .unwrap();
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    let before = provider.metrics().calls;
    for _ in 0..5 {
        signer.sign(b"header.payload").await.unwrap();
        provider.signer(&tenant, key.handle()).await.unwrap();
    }
    // Five Sign calls; the five signers came from the cache.
    assert_eq!(provider.metrics().calls - before, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_then_unavailable_and_the_breaker_stops_calls() {
    let server = ScriptedServer::start(ScriptedAnswer::aws_throttling()).await;
    let mut config = config(&server.url(), &[Algorithm::Es256], MessageMode::Digest);
    config.remote = RemoteOptions {
        max_attempts: 3,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        breaker_failures: 2,
        breaker_cooldown_millis: 60_000,
        ..RemoteOptions::default()
    };
    let provider = AwsKmsProvider::connect(config).await.unwrap();
    let tenant = TenantId::generate();
    let spec = KeySpec::signing(Algorithm::Es256);
    for round in 1..=2 {
        let err = provider.generate(&tenant, &spec).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.to_string(), "provider `aws` is unavailable");
        assert_eq!(server.requests(), 3 * round);
    }
    // Open: fails at once, without a request.
    let started = std::time::Instant::now();
    expect_kind(
        provider.generate(&tenant, &spec).await,
        ErrorKind::Unavailable,
        "generating with the breaker open",
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(server.requests(), 6);
    let metrics = provider.metrics();
    assert_eq!(metrics.throttles, 6);
    assert!(metrics.breaker_open);
    assert_eq!(metrics.errors.get("circuit_open"), Some(&1));
    assert_eq!(metrics.errors.get("unavailable"), Some(&2));
}

async fn kms_suite_with_aws(backend: Backend) {
    let moto = MotoServer::start().await;
    let algorithms = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es256K,
        Algorithm::Rs256,
    ];
    let provider: Arc<dyn KeyProvider> = Arc::new(
        AwsKmsProvider::connect(config(&moto.endpoint(), &algorithms, MessageMode::Raw))
            .await
            .unwrap(),
    );
    let env = env_with(backend, vec![provider, software("software")], Vec::new()).await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    let config = KmsSuiteConfig::default()
        .with_signing(&algorithms)
        .with_signing_provider(ProviderId::new("aws").unwrap());
    kms_suite(kms, &env.a, &env.b, &config).await;
    let keys = env.kms.keys(&env.a).await.unwrap();
    assert!(
        keys.iter()
            .filter(|k| k.alias.purpose().starts_with("sign-"))
            .all(|k| k.provider.as_ref().map(ProviderId::as_str) == Some("aws"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_aws_on_sqlite() {
    kms_suite_with_aws(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_aws_on_postgres() {
    kms_suite_with_aws(Backend::Postgres).await;
}
