//! `LocalKms` with signing keys on a PKCS#11 token (SoftHSM2) and other keys in software.

use std::sync::Arc;

use edk_core::jose::Algorithm;
use edk_core::jose::jwe::KeyManagement;
use edk_core::{ErrorKind, HasKind};
use edk_kms::kms::RotationPolicy;
use edk_kms::local::DefaultAlias;
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::testkit::{KmsSuiteConfig, SoftHsm, kms_suite};
use edk_kms::{KeyAlias, KeyRef, Kms, NewKey};

use crate::support::{Backend, env_with, software};

async fn hsm_provider(hsm: &SoftHsm) -> Arc<dyn KeyProvider> {
    Arc::new(hsm.connect(hsm.config("hsm")).await.unwrap())
}

async fn suite_with_hsm(backend: Backend) {
    let hsm = SoftHsm::new("kms-suite");
    let env = env_with(
        backend,
        vec![hsm_provider(&hsm).await, software("software")],
        Vec::new(),
    )
    .await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    let config = KmsSuiteConfig::default()
        .with_signing(&[
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::EdDsa,
            Algorithm::Rs256,
            Algorithm::Ps256,
        ])
        .with_signing_provider(ProviderId::new("hsm").unwrap());
    kms_suite(kms, &env.a, &env.b, &config).await;
    // The suite's signing keys are on the token.
    let keys = env.kms.keys(&env.a).await.unwrap();
    assert!(
        keys.iter()
            .filter(|k| k.alias.purpose().starts_with("sign-"))
            .all(|k| k.provider.as_ref().map(ProviderId::as_str) == Some("hsm"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_softhsm_on_sqlite() {
    suite_with_hsm(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_with_softhsm_on_postgres() {
    suite_with_hsm(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_token_makes_signing_unavailable_without_fallback() {
    let hsm = SoftHsm::new("kms-removed");
    let signing = KeyAlias::new("issuer", "credential-signing").unwrap();
    let status = KeyAlias::new("issuer", "status-list-signing").unwrap();
    let env = env_with(
        Backend::Sqlite,
        vec![hsm_provider(&hsm).await, software("software")],
        vec![
            DefaultAlias::new(signing.clone(), KeySpec::signing(Algorithm::Es256))
                .in_provider(ProviderId::new("hsm").unwrap()),
            DefaultAlias::new(status.clone(), KeySpec::signing(Algorithm::Es256))
                .in_provider(ProviderId::new("software").unwrap())
                .with_rotation(RotationPolicy::every(86_400, 3_600)),
        ],
    )
    .await;
    // Provisioned on first need, each in its provider.
    let before = env.kms.sign(&env.a, &signing, b"before").await.unwrap();
    env.kms.sign(&env.a, &status, b"before").await.unwrap();
    let info = env
        .kms
        .key(&env.a, &KeyRef::Alias(signing.clone()))
        .await
        .unwrap();
    assert_eq!(info.provider.as_ref().map(ProviderId::as_str), Some("hsm"));
    let info = env
        .kms
        .key(&env.a, &KeyRef::Alias(status.clone()))
        .await
        .unwrap();
    assert_eq!(
        info.provider.as_ref().map(ProviderId::as_str),
        Some("software")
    );

    hsm.remove_token();
    let err = env.kms.sign(&env.a, &signing, b"after").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let err = env.kms.rotate(&env.a, &signing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let info = env
        .kms
        .key(&env.a, &KeyRef::Alias(signing.clone()))
        .await
        .unwrap();
    assert_eq!(
        info.versions.len(),
        1,
        "a failed rotation leaves no version behind"
    );
    // Verification needs only the public key; the software alias is unaffected.
    env.kms
        .verify(
            &env.a,
            &KeyRef::Alias(signing.clone()),
            Algorithm::Es256,
            b"before",
            &before.bytes,
        )
        .await
        .unwrap();
    env.kms.sign(&env.a, &status, b"after").await.unwrap();
    // A new HSM alias cannot be made either, and is not made elsewhere.
    let err = env
        .kms
        .create_key(
            &env.a,
            &NewKey::new(
                KeyAlias::new("as", "access-token-signing").unwrap(),
                KeySpec::signing(Algorithm::Es256),
            )
            .in_provider(ProviderId::new("hsm").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let alias = KeyAlias::new("as", "access-token-signing").unwrap();
    let err = env
        .kms
        .key(&env.a, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, edk_kms::Error::AliasNotFound { alias: missing } if *missing == alias),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_objects_are_labelled_per_tenant() {
    use cryptoki::object::{Attribute, ObjectClass};

    let hsm = SoftHsm::new("kms-labels");
    let env = env_with(Backend::Sqlite, vec![hsm_provider(&hsm).await], Vec::new()).await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let a = env
        .kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let b = env
        .kms
        .create_key(
            &env.b,
            &NewKey::new(alias.clone(), KeySpec::decryption(KeyManagement::EcdhEs)),
        )
        .await
        .unwrap();
    let (_ctx, session) = hsm.raw_session();
    for (caller, info) in [(&env.a, &a), (&env.b, &b)] {
        let label = format!(
            "edk:{}:{}",
            caller.tenant().id(),
            info.active().unwrap().kid
        );
        let objects = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.into_bytes()),
            ])
            .unwrap();
        assert_eq!(objects.len(), 1);
    }
}
