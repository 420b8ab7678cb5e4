//! Test support: the [`KeyProvider`] conformance suite, the [`Kms`](crate::Kms) conformance
//! suite ([`kms_suite`]) and, with the `pkcs11` feature, a throw-away SoftHSM2 token
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
