//! did:webvh logs signed through the KMS: the key stays in the software key provider, which
//! hands out a `Signer`.

use std::sync::Arc;

use edk_core::TenantId;
use edk_core::jose::{Algorithm, Signer, VerifyingKey};
use edk_did::webvh::{self, CreateOptions, Multikey, UpdateOptions, VersionQuery, WebvhDid};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider as _, KeySpec, ProviderId};

use crate::webvh::{at, did_of};

async fn kms_key(provider: &SoftwareProvider, tenant: &TenantId) -> (Arc<dyn Signer>, Multikey) {
    let key = provider
        .generate(tenant, &KeySpec::signing(Algorithm::EdDsa))
        .await
        .unwrap();
    let multikey =
        Multikey::from_verifying_key(&VerifyingKey::from_jwk(key.public_jwk()).unwrap()).unwrap();
    let signer = provider.signer(tenant, key.handle()).await.unwrap();
    (signer, multikey)
}

#[tokio::test]
async fn kms_signers_create_and_rotate_a_did_webvh_log() {
    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new("software").unwrap(),
        kek,
    ))
    .unwrap();
    let tenant = TenantId::generate();
    let (first, first_mk) = kms_key(&provider, &tenant).await;
    let (second, second_mk) = kms_key(&provider, &tenant).await;

    let mut options = CreateOptions::new(
        WebvhDid::template("example.com", &["tenants", "acme"]).unwrap(),
        first_mk.clone(),
    );
    options.next_key_hashes = vec![second_mk.key_hash()];
    let mut log = webvh::create(options, first.as_ref(), &first_mk, at(0))
        .await
        .unwrap();
    let rotate = UpdateOptions {
        update_keys: Some(vec![second_mk.clone()]),
        next_key_hashes: Some(vec![]),
        ..UpdateOptions::default()
    };
    log.push(
        webvh::update(&log, rotate, second.as_ref(), &second_mk, at(10))
            .await
            .unwrap(),
    );
    let result = webvh::resolve_log(
        &did_of(&log),
        &log.to_jsonl(),
        None,
        &VersionQuery::default(),
        at(20),
    );
    assert_eq!(result.error(), None, "{:?}", result.resolution_metadata);
    assert_eq!(result.document_metadata["versionNumber"], 2);

    // The first key may no longer sign: refused before anything is appended.
    let err = webvh::update(
        &log,
        UpdateOptions::default(),
        first.as_ref(),
        &first_mk,
        at(30),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, webvh::WebvhError::UnauthorizedKey { .. }),
        "{err}"
    );
}
