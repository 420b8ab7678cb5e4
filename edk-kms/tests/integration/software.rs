//! The software provider: the suite, and what sealing keys under a KEK guarantees.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edk_core::jose::jwk::PrivateParams;
use edk_core::jose::{Algorithm, SigningKey, VerifyingKey};
use edk_core::{ErrorKind, TenantId};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{
    KeyHandle, KeyProvider, KeyRequirement, KeySpec, KeyUsage, ProviderId, select_provider,
};
use edk_kms::testkit::{expect_kind, provider_suite};
use secrecy::{ExposeSecret as _, SecretString};

fn kek(id: &str) -> KekConfig {
    KekConfig::key(KekId::new(id).unwrap(), generate_kek().unwrap()).unwrap()
}

fn provider_with(id: &str, kek: KekConfig) -> SoftwareProvider {
    SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new(id).unwrap(),
        kek,
    ))
    .unwrap()
}

fn edit_handle(handle: &KeyHandle, edit: impl FnOnce(&mut serde_json::Value)) -> KeyHandle {
    let mut json = serde_json::to_value(handle).unwrap();
    edit(&mut json);
    serde_json::from_value(json).unwrap()
}

#[tokio::test]
async fn software_provider_passes_the_suite() {
    provider_suite(&provider_with("software", kek("k1"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_provider_passes_the_suite_on_a_multi_threaded_runtime() {
    provider_suite(&provider_with("software", kek("k1"))).await;
}

#[tokio::test]
async fn sealed_handles_contain_no_plaintext_key_bytes() {
    let provider = provider_with("software", kek("k1"));
    let tenant = TenantId::generate();
    for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
        let local = SigningKey::generate(alg).unwrap();
        let private = local.to_jwk().unwrap();
        let secret: Vec<u8> = match private.private().unwrap() {
            PrivateParams::Ec { d } | PrivateParams::Okp { d } => d.to_vec(),
            PrivateParams::Rsa(rsa) => rsa.d.to_vec(),
            _ => unreachable!(),
        };
        let key = provider
            .import(&tenant, &KeySpec::signing(alg), &private)
            .await
            .unwrap();
        assert_eq!(key.kid().as_str(), local.verifying_key().thumbprint());

        let stored = serde_json::to_vec(key.handle()).unwrap();
        let window = &secret[..16];
        assert!(
            !stored.windows(window.len()).any(|w| w == window),
            "{alg}: raw private bytes in the handle"
        );
        for encoded in [URL_SAFE_NO_PAD.encode(&secret), STANDARD.encode(&secret)] {
            let needle = &encoded.as_bytes()[..20];
            assert!(
                !stored.windows(needle.len()).any(|w| w == needle),
                "{alg}: encoded private key in the handle"
            );
        }
        let debug = format!("{key:?} {provider:?}");
        assert!(!debug.contains(key.handle().reference()));

        let signature = provider
            .signer(&tenant, key.handle())
            .await
            .unwrap()
            .sign(b"m")
            .await
            .unwrap();
        local.verifying_key().verify(alg, b"m", &signature).unwrap();
    }
}

#[tokio::test]
async fn tampered_handles_are_not_found() {
    let provider = provider_with("software", kek("k1"));
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    let reference = key.handle().reference().to_owned();
    let parts: Vec<&str> = reference.split('.').collect();
    let mut ciphertext = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
    ciphertext[10] ^= 1;
    let flipped = format!(
        "{}.{}.{}.{}",
        parts[0],
        parts[1],
        parts[2],
        URL_SAFE_NO_PAD.encode(&ciphertext)
    );
    for bad in [
        flipped,
        format!("v2.{}", &reference[3..]),
        "garbage".to_owned(),
        String::new(),
    ] {
        let tampered = edit_handle(key.handle(), |json| json["reference"] = bad.into());
        expect_kind(
            provider.signer(&tenant, &tampered).await,
            ErrorKind::NotFound,
            "a tampered reference",
        );
    }
    let relabelled = edit_handle(key.handle(), |json| {
        json["usage"] = serde_json::json!({"sign": "ES384"});
    });
    expect_kind(
        provider.signer(&tenant, &relabelled).await,
        ErrorKind::NotFound,
        "a handle re-labelled for another algorithm",
    );
}

#[tokio::test]
async fn another_kek_or_provider_cannot_open_a_key() {
    let tenant = TenantId::generate();
    let provider = provider_with("software", kek("k1"));
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();

    let same_id_other_key = provider_with("software", kek("k1"));
    expect_kind(
        same_id_other_key.signer(&tenant, key.handle()).await,
        ErrorKind::NotFound,
        "the wrong KEK under the right id",
    );
    let missing_kek = provider_with("software", kek("k2"));
    expect_kind(
        missing_kek.signer(&tenant, key.handle()).await,
        ErrorKind::Unavailable,
        "a KEK that is not configured",
    );
    let other_provider = provider_with("software-2", kek("k1"));
    expect_kind(
        other_provider.signer(&tenant, key.handle()).await,
        ErrorKind::NotFound,
        "another provider's handle",
    );
}

#[tokio::test]
async fn kek_rotation_keeps_old_keys_usable_and_rewraps_them() {
    let tenant = TenantId::generate();
    let old = kek("k1");
    let before = provider_with("software", old.clone());
    let key = before
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();

    let config = SoftwareProviderConfig::new(ProviderId::new("software").unwrap(), kek("k2"))
        .with_previous_kek(old)
        .unwrap();
    let after = SoftwareProvider::new(config).unwrap();
    assert!(after.needs_rewrap(key.handle()));
    after.signer(&tenant, key.handle()).await.unwrap();

    let rewrapped = after.rewrap(&tenant, key.handle()).unwrap();
    assert!(!after.needs_rewrap(&rewrapped));
    assert_eq!(rewrapped.kid(), key.kid());
    assert_ne!(rewrapped.reference(), key.handle().reference());
    let signature = after
        .signer(&tenant, &rewrapped)
        .await
        .unwrap()
        .sign(b"m")
        .await
        .unwrap();
    VerifyingKey::from_jwk(key.public_jwk())
        .unwrap()
        .verify(Algorithm::Es256, b"m", &signature)
        .unwrap();
    expect_kind(
        before.signer(&tenant, &rewrapped).await,
        ErrorKind::Unavailable,
        "the old KEK alone after rotation",
    );
    expect_kind(
        after.rewrap(&TenantId::generate(), key.handle()),
        ErrorKind::NotFound,
        "rewrapping another tenant's key",
    );
}

#[tokio::test]
async fn keks_load_from_files_and_never_show_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    let secret = generate_kek().unwrap();
    let path = dir.path().join("kek");
    std::fs::write(&path, format!("{}\n", secret.expose_secret())).unwrap();
    let json = serde_json::json!({
        "id": "software",
        "current_kek": "k1",
        "keks": [{"id": "k1", "key_file": path}],
    });
    let config: SoftwareProviderConfig = serde_json::from_value(json).unwrap();
    let provider = SoftwareProvider::new(config.clone()).unwrap();
    let inline = SoftwareProviderConfig::new(
        ProviderId::new("software").unwrap(),
        KekConfig::key(KekId::new("k1").unwrap(), secret.clone()).unwrap(),
    );
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::EdDsa))
        .await
        .unwrap();
    SoftwareProvider::new(inline.clone())
        .unwrap()
        .signer(&tenant, key.handle())
        .await
        .unwrap();

    let debug = format!("{config:?} {inline:?} {provider:?}");
    assert!(!debug.contains(secret.expose_secret()));

    let missing: SoftwareProviderConfig = serde_json::from_value(serde_json::json!({
        "id": "software",
        "current_kek": "k1",
        "keks": [{"id": "k1", "key_file": dir.path().join("absent")}],
    }))
    .unwrap();
    let err = SoftwareProvider::new(missing).unwrap_err();
    assert!(!err.to_string().contains("absent"));
}

#[tokio::test]
async fn imports_refuse_public_and_mismatched_keys() {
    let provider = provider_with("software", kek("k1"));
    let tenant = TenantId::generate();
    let es256 = SigningKey::generate(Algorithm::Es256).unwrap();
    expect_kind(
        provider
            .import(
                &tenant,
                &KeySpec::signing(Algorithm::Es256),
                &es256.public_jwk(),
            )
            .await,
        ErrorKind::InvalidInput,
        "importing a public key",
    );
    expect_kind(
        provider
            .import(
                &tenant,
                &KeySpec::signing(Algorithm::Rs256),
                &es256.to_jwk().unwrap(),
            )
            .await,
        ErrorKind::InvalidInput,
        "importing an EC key for RS256",
    );
    let key = provider
        .import(
            &tenant,
            &KeySpec::signing(Algorithm::Es256),
            &es256.to_jwk().unwrap().with_kid("their-own-kid"),
        )
        .await
        .unwrap();
    assert_eq!(key.kid().as_str(), es256.verifying_key().thumbprint());
}

#[tokio::test]
async fn software_keys_never_match_a_non_exportable_requirement() {
    let software: Arc<dyn KeyProvider> = Arc::new(provider_with("software", kek("k1")));
    let providers = [software];
    let es256 = KeyRequirement::new(KeyUsage::Sign(Algorithm::Es256));
    assert_eq!(
        select_provider(&providers, &es256).map(|p| p.id().as_str()),
        Some("software")
    );
    assert!(select_provider(&providers, &es256.importable()).is_some());
    assert!(select_provider(&providers, &es256.non_exportable()).is_none());
    assert!(select_provider(&providers, &es256.hardware_backed()).is_none());
}

#[test]
fn kek_config_refuses_keys_of_the_wrong_length() {
    let short = SecretString::from(STANDARD.encode([0u8; 16]));
    expect_kind(
        KekConfig::key(KekId::new("k1").unwrap(), short),
        ErrorKind::InvalidInput,
        "a 128-bit KEK",
    );
}
