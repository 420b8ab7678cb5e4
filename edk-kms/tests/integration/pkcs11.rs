//! The PKCS#11 provider on SoftHSM2: the suite, and what a token guarantees.

use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use edk_core::jose::Algorithm;
use edk_core::jose::jwe::KeyManagement;
use edk_core::{ErrorKind, HasKind, TenantId};
use edk_kms::provider::pkcs11::Pkcs11ProviderConfig;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{
    KeyProvider, KeyRequirement, KeySpec, KeyUsage, ProviderId, select_provider,
};
use edk_kms::testkit::{SoftHsm, expect_kind, provider_suite};
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn softhsm_provider_passes_the_suite() {
    let hsm = SoftHsm::new("suite");
    let provider = hsm.connect(hsm.config("hsm")).await.unwrap();
    let caps = provider.capabilities();
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ] {
        assert!(caps.signing().contains(&alg), "SoftHSM2 signs {alg}");
    }
    // SoftHSM2 2.6 lists CKM_EDDSA and CKM_ECDH1_DERIVE, so Ed25519 and ECDH-ES are declared.
    assert!(caps.signing().contains(&Algorithm::EdDsa));
    assert!(caps.decryption().contains(&KeyManagement::EcdhEs));
    assert!(!caps.signing().contains(&Algorithm::Es256K));
    provider_suite(&provider).await;
}

#[tokio::test]
async fn softhsm_provider_passes_the_suite_with_one_session() {
    let hsm = SoftHsm::new("one-session");
    let config = hsm.config("hsm").with_max_sessions(1).unwrap();
    provider_suite(&hsm.connect(config).await.unwrap()).await;
}

#[tokio::test]
async fn token_keys_are_sensitive_and_not_extractable() {
    let hsm = SoftHsm::new("extract");
    let provider = hsm.connect(hsm.config("hsm")).await.unwrap();
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();

    let (_ctx, session) = hsm.raw_session();
    let label = format!("edk:{tenant}:{}", key.kid());
    let objects = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.into_bytes()),
        ])
        .unwrap();
    assert_eq!(objects.len(), 1, "one private key, labelled for the tenant");
    let attributes = session
        .get_attributes(
            objects[0],
            &[
                AttributeType::Value,
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::Token,
                AttributeType::Id,
            ],
        )
        .unwrap();
    assert!(
        !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
        "CKA_VALUE must not be readable"
    );
    assert!(attributes.contains(&Attribute::Extractable(false)));
    assert!(attributes.contains(&Attribute::Sensitive(true)));
    assert!(attributes.contains(&Attribute::Token(true)));
    let id = attributes
        .iter()
        .find_map(|a| match a {
            Attribute::Id(id) => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    assert!(id.starts_with(tenant.as_uuid().as_bytes()));
    // Wrapping it out is refused too.
    let err = session
        .update_attributes(objects[0], &[Attribute::Extractable(true)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::AttributeReadOnly,
                cryptoki::context::Function::SetAttributeValue
            )
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_wrong_pin_is_unavailable() {
    let hsm = SoftHsm::new("pin");
    let config = Pkcs11ProviderConfig::new(
        ProviderId::new("hsm").unwrap(),
        hsm.config("hsm").module_path().to_owned(),
        hsm.label(),
        SecretString::from("0000"),
    )
    .unwrap();
    let err = hsm.connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(!format!("{err:?} {err}").contains("0000"));
}

#[tokio::test]
async fn an_unknown_token_label_is_unavailable() {
    let hsm = SoftHsm::new("present");
    let config = Pkcs11ProviderConfig::new(
        ProviderId::new("hsm").unwrap(),
        hsm.config("hsm").module_path().to_owned(),
        "absent",
        SecretString::from(SoftHsm::PIN),
    )
    .unwrap();
    expect_kind(
        hsm.connect(config).await,
        ErrorKind::Unavailable,
        "a label no token has",
    );
}

#[tokio::test]
async fn a_removed_token_is_unavailable_not_a_fallback() {
    let hsm = SoftHsm::new("removed");
    let provider = hsm.connect(hsm.config("hsm")).await.unwrap();
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    signer.sign(b"before").await.unwrap();

    hsm.remove_token();
    let err = signer.sign(b"after").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    expect_kind(
        provider
            .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
            .await,
        ErrorKind::Unavailable,
        "generating on a removed token",
    );
}

#[tokio::test]
async fn a_reinitialised_token_is_unavailable() {
    let hsm = SoftHsm::new("reinit");
    let provider = hsm.connect(hsm.config("hsm")).await.unwrap();
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let signer = provider.signer(&tenant, key.handle()).await.unwrap();
    hsm.remove_token();
    hsm.init_token();
    let err = signer.sign(b"after").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
}

#[tokio::test]
async fn the_token_is_preferred_for_non_exportable_es256() {
    let hsm = SoftHsm::new("select");
    let token: Arc<dyn KeyProvider> = Arc::new(
        hsm.connect(hsm.config("hsm").with_hardware_backing(true))
            .await
            .unwrap(),
    );
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let software: Arc<dyn KeyProvider> = Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap(),
    );
    let providers = [Arc::clone(&software), token];
    let es256 = KeyRequirement::new(KeyUsage::Sign(Algorithm::Es256));
    let pick = |requirement| select_provider(&providers, &requirement).map(|p| p.id().as_str());
    assert_eq!(pick(es256.non_exportable()), Some("hsm"));
    assert_eq!(pick(es256.hardware_backed()), Some("hsm"));
    assert_eq!(pick(es256), Some("hsm"), "hardware first when both fit");
    assert_eq!(pick(es256.importable()), Some("software"));
    assert_eq!(
        pick(KeyRequirement::new(KeyUsage::Sign(Algorithm::Es256K)).non_exportable()),
        None
    );
}
