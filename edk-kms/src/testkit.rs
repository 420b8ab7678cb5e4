//! Test support: the [`KeyProvider`] conformance suite ([`provider_suite`], and
//! [`registered_provider_suite`] for providers that register existing keys instead of creating
//! them), the [`Kms`](crate::Kms) conformance suite ([`kms_suite`]) and, with the `pkcs11` feature, a throw-away SoftHSM2 token
//! ([`SoftHsm`]).
//!
//! Everything here asserts by panicking, like a test does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use edk_core::jose::jwe::{self, ContentEncryption, JweOptions, KeyManagement};
use edk_core::jose::{Algorithm, Header, Jws, Signer, VerifyPolicy, VerifyingKey, jws};
use edk_core::{ErrorKind, HasKind, Kid, TenantId};
use tokio::task::JoinSet;

use crate::Error;
use crate::provider::{KeyHandle, KeyProvider, KeySpec, KeyStorage, ProviderKey};

/// How many tasks sign at once in the concurrency case.
pub const CONCURRENT_SIGNERS: usize = 16;

/// Runs every conformance case on `provider`: each supported algorithm generates, signs,
/// verifies with edk-core and signs a JWS; `kid` is the RFC 7638 thumbprint; unsupported
/// usages are [`ErrorKind::Unsupported`]; another tenant's (or a re-labelled) handle is
/// [`ErrorKind::NotFound`]; destroyed keys are gone (for [`KeyStorage::InProvider`]);
/// JWEs encrypted to a decryption key's public JWK decrypt; and [`CONCURRENT_SIGNERS`] tasks
/// share one signer.
pub async fn provider_suite(provider: &dyn KeyProvider) {
    let tenant = TenantId::generate();
    let other = TenantId::generate();
    let caps = provider.capabilities().clone();
    assert!(
        !caps.signing().is_empty(),
        "a provider under test should sign with something"
    );
    assert!(
        caps.key_creation(),
        "a provider that does not create keys runs registered_provider_suite"
    );

    for alg in caps.signing().iter().copied() {
        let key = generate(provider, &tenant, KeySpec::signing(alg)).await;
        check_public_half(&key, alg.name());
        let signer = provider.signer(&tenant, key.handle()).await.unwrap();
        signs_and_verifies(&*signer, &key, alg).await;
        // The handle survives being stored and read back.
        let stored: KeyHandle =
            serde_json::from_str(&serde_json::to_string(key.handle()).unwrap()).unwrap();
        let again = provider.signer(&tenant, &stored).await.unwrap();
        signs_and_verifies(&*again, &key, alg).await;
    }

    for alg in Algorithm::ALL {
        if !caps.signing().contains(&alg) {
            expect_kind(
                provider.generate(&tenant, &KeySpec::signing(alg)).await,
                ErrorKind::Unsupported,
                &format!("generating an unsupported {alg} key"),
            );
        }
    }
    for alg in KeyManagement::ALL {
        if !caps.decryption().contains(&alg) {
            expect_kind(
                provider.generate(&tenant, &KeySpec::decryption(alg)).await,
                ErrorKind::Unsupported,
                &format!("generating an unsupported {} key", alg.name()),
            );
        }
    }

    for alg in caps.decryption().iter().copied() {
        let key = generate(provider, &tenant, KeySpec::decryption(alg)).await;
        check_public_half(&key, alg.name());
        let decrypter = provider.decrypter(&tenant, key.handle()).await.unwrap();
        for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
            let token = jwe::encrypt(
                b"for the key holder only",
                key.public_jwk(),
                alg,
                enc,
                JweOptions::default(),
            )
            .unwrap();
            let parsed = jwe::Jwe::parse(&token, &Default::default()).unwrap();
            assert_eq!(parsed.header().kid.as_deref(), Some(key.kid().as_str()));
            let (_, plaintext) = parsed.decrypt(&*decrypter).await.unwrap();
            assert_eq!(plaintext.as_slice(), b"for the key holder only");
        }
        expect_kind(
            provider.signer(&tenant, key.handle()).await,
            ErrorKind::Unsupported,
            "signing with a decryption key",
        );
        expect_kind(
            provider.decrypter(&other, key.handle()).await,
            ErrorKind::NotFound,
            "decrypting with another tenant's key",
        );
    }

    let alg = caps.signing().first().copied().unwrap();
    let key = generate(provider, &tenant, KeySpec::signing(alg)).await;
    other_tenants_find_nothing(provider, &key, &tenant, &other).await;
    concurrent_signing(provider, &key, &tenant, alg).await;
    if caps.decryption().is_empty() {
        expect_kind(
            provider.decrypter(&tenant, key.handle()).await,
            ErrorKind::Unsupported,
            "decrypting with a provider that does not decrypt",
        );
    } else {
        expect_kind(
            provider.decrypter(&tenant, key.handle()).await,
            ErrorKind::Unsupported,
            "decrypting with a signing key",
        );
    }
    destroyed_keys_are_gone(provider, &key, &tenant, caps.storage()).await;
}

/// Runs the conformance cases that apply to a provider that does not create keys
/// ([`Capabilities::key_creation`](crate::provider::Capabilities::key_creation) false) but
/// registers keys that exist in its backend ([`KeyProvider::register`]): creating any key is
/// [`ErrorKind::Unsupported`]; each of `keys` (a signing algorithm and the backend's reference
/// of a key `tenant` may use) registers, signs, verifies with edk-core and signs a JWS, again
/// from a handle stored and read back, and registers again with the same `kid`; a key
/// registered for another algorithm or for decryption is [`ErrorKind::Unsupported`]; `other`
/// (a tenant that may not use those keys) and an unknown reference find nothing
/// ([`ErrorKind::NotFound`]), nor do re-labelled handles; [`CONCURRENT_SIGNERS`] tasks share
/// one signer; and destroying a registered key forgets it without removing it from the
/// backend, so it registers again with the same `kid`.
pub async fn registered_provider_suite(
    provider: &dyn KeyProvider,
    tenant: &TenantId,
    other: &TenantId,
    keys: &[(Algorithm, String)],
) {
    let caps = provider.capabilities().clone();
    assert!(
        !caps.key_creation(),
        "a provider that registers keys under this suite does not create them"
    );
    assert!(!keys.is_empty(), "the suite needs keys to register");
    for alg in Algorithm::ALL {
        expect_kind(
            provider.generate(tenant, &KeySpec::signing(alg)).await,
            ErrorKind::Unsupported,
            &format!("creating a {alg} key"),
        );
    }
    for alg in KeyManagement::ALL {
        expect_kind(
            provider.generate(tenant, &KeySpec::decryption(alg)).await,
            ErrorKind::Unsupported,
            &format!("creating a {} key", alg.name()),
        );
    }

    let mut registered = Vec::new();
    for (alg, reference) in keys {
        let alg = *alg;
        let spec = KeySpec::signing(alg);
        let key = provider
            .register(tenant, &spec, reference)
            .await
            .unwrap_or_else(|err| panic!("registering a {alg} key: {err:?}"));
        assert_eq!(key.handle().provider(), provider.id());
        assert_eq!(key.handle().tenant(), tenant);
        assert_eq!(key.handle().usage(), spec.usage);
        check_public_half(&key, alg.name());
        let signer = provider.signer(tenant, key.handle()).await.unwrap();
        signs_and_verifies(&*signer, &key, alg).await;
        let stored: KeyHandle =
            serde_json::from_str(&serde_json::to_string(key.handle()).unwrap()).unwrap();
        let again = provider.signer(tenant, &stored).await.unwrap();
        signs_and_verifies(&*again, &key, alg).await;
        let twice = provider.register(tenant, &spec, reference).await.unwrap();
        assert_eq!(
            twice.kid(),
            key.kid(),
            "registering twice names the same key"
        );

        for wrong in caps.signing().iter().copied().filter(|wrong| *wrong != alg) {
            if keys
                .iter()
                .any(|(listed, same)| *listed == wrong && same == reference)
            {
                continue;
            }
            expect_kind(
                provider
                    .register(tenant, &KeySpec::signing(wrong), reference)
                    .await,
                ErrorKind::Unsupported,
                &format!("registering a {alg} key for {wrong}"),
            );
        }
        expect_kind(
            provider
                .register(
                    tenant,
                    &KeySpec::decryption(KeyManagement::EcdhEs),
                    reference,
                )
                .await,
            ErrorKind::Unsupported,
            "registering a signing key for decryption",
        );
        expect_kind(
            provider.register(other, &spec, reference).await,
            ErrorKind::NotFound,
            "registering a key for a tenant that may not use it",
        );
        registered.push((key, alg));
    }
    expect_kind(
        provider
            .register(tenant, &KeySpec::signing(keys[0].0), "no-such-key")
            .await,
        ErrorKind::NotFound,
        "registering an unknown reference",
    );

    let (key, alg) = &registered[0];
    other_tenants_find_nothing(provider, key, tenant, other).await;
    concurrent_signing(provider, key, tenant, *alg).await;
    expect_kind(
        provider.decrypter(tenant, key.handle()).await,
        ErrorKind::Unsupported,
        "decrypting with a signing key",
    );
    provider.destroy(tenant, key.handle()).await.unwrap();
    let back = provider
        .register(tenant, &KeySpec::signing(*alg), key.handle().reference())
        .await
        .unwrap();
    assert_eq!(
        back.kid(),
        key.kid(),
        "a destroyed registration registers again"
    );
}

/// Asserts that `result` failed with `kind`.
///
/// # Panics
/// When it succeeded or failed otherwise.
pub fn expect_kind<T>(result: Result<T, Error>, kind: ErrorKind, what: &str) {
    match result {
        Ok(_) => panic!("{what}: expected {kind}, got success"),
        Err(err) => assert_eq!(err.kind(), kind, "{what}: {err:?}"),
    }
}

async fn generate(provider: &dyn KeyProvider, tenant: &TenantId, spec: KeySpec) -> ProviderKey {
    let key = provider
        .generate(tenant, &spec)
        .await
        .unwrap_or_else(|err| panic!("generating {}: {err:?}", spec.usage));
    assert_eq!(key.handle().provider(), provider.id());
    assert_eq!(key.handle().tenant(), tenant);
    assert_eq!(key.handle().usage(), spec.usage);
    key
}

fn check_public_half(key: &ProviderKey, alg: &str) {
    let jwk = key.public_jwk();
    assert!(!jwk.is_private(), "the public JWK has private members");
    assert_eq!(
        key.kid().as_str(),
        jwk.thumbprint(),
        "kid is the thumbprint"
    );
    assert_eq!(jwk.kid.as_deref(), Some(key.kid().as_str()));
    assert_eq!(jwk.alg.as_deref(), Some(alg));
    let serialised = serde_json::to_value(jwk).unwrap();
    assert!(serialised.get("d").is_none());
}

async fn signs_and_verifies(signer: &dyn Signer, key: &ProviderKey, alg: Algorithm) {
    assert_eq!(signer.algorithm(), alg);
    assert_eq!(signer.kid(), Some(key.kid()));
    let verifying = VerifyingKey::from_jwk(key.public_jwk()).unwrap();
    let signature = signer.sign(b"signing input").await.unwrap();
    verifying
        .verify(alg, b"signing input", &signature)
        .unwrap_or_else(|err| panic!("{alg} signature does not verify: {err:?}"));
    assert!(verifying.verify(alg, b"other input", &signature).is_err());

    let token = jws::sign(Header::new(alg).with_typ("JWT"), br#"{"sub":"s"}"#, signer)
        .await
        .unwrap();
    let verified = Jws::parse(&token, &Default::default())
        .unwrap()
        .verify(&verifying, &VerifyPolicy::default().with_algorithms(&[alg]))
        .unwrap();
    assert_eq!(verified.payload(), br#"{"sub":"s"}"#);
    assert_eq!(verified.header().kid.as_deref(), Some(key.kid().as_str()));
}

async fn other_tenants_find_nothing(
    provider: &dyn KeyProvider,
    key: &ProviderKey,
    tenant: &TenantId,
    other: &TenantId,
) {
    expect_kind(
        provider.signer(other, key.handle()).await,
        ErrorKind::NotFound,
        "signing with another tenant's handle",
    );
    expect_kind(
        provider.destroy(other, key.handle()).await,
        ErrorKind::NotFound,
        "destroying another tenant's key",
    );
    // The same handle re-labelled for the other tenant: the provider's own binding must hold.
    let mut forged = serde_json::to_value(key.handle()).unwrap();
    forged["tenant"] = serde_json::to_value(other).unwrap();
    let forged: KeyHandle = serde_json::from_value(forged).unwrap();
    expect_kind(
        provider.signer(other, &forged).await,
        ErrorKind::NotFound,
        "signing with a handle re-labelled for another tenant",
    );
    // And another key id under the right tenant.
    let mut renamed = serde_json::to_value(key.handle()).unwrap();
    renamed["kid"] = serde_json::to_value(Kid::new("not-this-key").unwrap()).unwrap();
    let renamed: KeyHandle = serde_json::from_value(renamed).unwrap();
    assert!(
        provider.signer(tenant, &renamed).await.is_err(),
        "a handle with another kid must not sign"
    );
    // The tenant's own handle still works.
    provider.signer(tenant, key.handle()).await.unwrap();
}

async fn concurrent_signing(
    provider: &dyn KeyProvider,
    key: &ProviderKey,
    tenant: &TenantId,
    alg: Algorithm,
) {
    let signer: Arc<dyn Signer> = provider.signer(tenant, key.handle()).await.unwrap();
    let verifying = Arc::new(VerifyingKey::from_jwk(key.public_jwk()).unwrap());
    let mut tasks = JoinSet::new();
    for i in 0..CONCURRENT_SIGNERS {
        let signer = Arc::clone(&signer);
        let verifying = Arc::clone(&verifying);
        tasks.spawn(async move {
            let message = format!("message {i}");
            let signature = signer.sign(message.as_bytes()).await.unwrap();
            verifying
                .verify(alg, message.as_bytes(), &signature)
                .unwrap();
        });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
        done += 1;
    }
    assert_eq!(done, CONCURRENT_SIGNERS);
}

async fn destroyed_keys_are_gone(
    provider: &dyn KeyProvider,
    key: &ProviderKey,
    tenant: &TenantId,
    storage: KeyStorage,
) {
    provider.destroy(tenant, key.handle()).await.unwrap();
    match storage {
        KeyStorage::InProvider => {
            expect_kind(
                provider.signer(tenant, key.handle()).await,
                ErrorKind::NotFound,
                "signing with a destroyed key",
            );
            expect_kind(
                provider.destroy(tenant, key.handle()).await,
                ErrorKind::NotFound,
                "destroying a destroyed key",
            );
        }
        // The key lives in the handle: the caller destroys it by deleting the handle.
        KeyStorage::InHandle => provider.destroy(tenant, key.handle()).await.unwrap(),
    }
}

pub use kms::{KmsSuiteConfig, kms_suite};
#[cfg(feature = "pkcs11")]
pub use softhsm::{SOFTHSM2_MODULE, SoftHsm};

mod kms;

#[cfg(feature = "pkcs11")]
mod softhsm;
