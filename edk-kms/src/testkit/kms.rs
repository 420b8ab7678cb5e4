//! The [`Kms`] conformance suite, for `LocalKms` and for remote clients alike: it uses only
//! the trait.

use std::sync::Arc;

use aws_lc_rs::agreement;
use edk_core::jose::Jwk;
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::jwk::{EcCurve, PublicParams};
use edk_core::jose::{Algorithm, Header, Jws, KeyQuery, VerifyPolicy, VerifyingKey, jws};
use edk_core::{ErrorKind, HasKind, Kid};
use tokio::task::JoinSet;

use crate::Error;
use crate::kms::{Caller, KeyAlias, KeyRef, KeyState, Kms, NewKey, RotationPolicy};
use crate::provider::{KeySpec, KeyUsage, ProviderId};

/// What the suite may expect of the KMS under test.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KmsSuiteConfig {
    /// Signing algorithms every configured provider set must support.
    pub signing: Vec<Algorithm>,
    /// JWE key management algorithms that must be supported.
    pub decryption: Vec<KeyManagement>,
    /// The provider the signing keys are made in; `None` lets the KMS pick.
    pub signing_provider: Option<ProviderId>,
    /// How many concurrent rotations of one alias the suite runs.
    pub concurrent_rotations: usize,
}

impl Default for KmsSuiteConfig {
    /// Every algorithm of the software provider, the KMS's own choice of provider, and 16
    /// concurrent rotations.
    fn default() -> Self {
        Self {
            signing: vec![
                Algorithm::Es256,
                Algorithm::Es384,
                Algorithm::Es256K,
                Algorithm::EdDsa,
                Algorithm::Rs256,
                Algorithm::Ps256,
            ],
            decryption: KeyManagement::ALL.to_vec(),
            signing_provider: None,
            concurrent_rotations: 16,
        }
    }
}

impl KmsSuiteConfig {
    /// Only these signing algorithms.
    #[must_use]
    pub fn with_signing(mut self, algs: &[Algorithm]) -> Self {
        self.signing = algs.to_vec();
        self
    }

    /// Only these JWE algorithms.
    #[must_use]
    pub fn with_decryption(mut self, algs: &[KeyManagement]) -> Self {
        self.decryption = algs.to_vec();
        self
    }

    /// Signing keys in `provider`.
    #[must_use]
    pub fn with_signing_provider(mut self, provider: ProviderId) -> Self {
        self.signing_provider = Some(provider);
        self
    }

    /// `n` concurrent rotations.
    #[must_use]
    pub const fn with_concurrent_rotations(mut self, n: usize) -> Self {
        self.concurrent_rotations = n;
        self
    }
}

/// An alias unique to this run of the suite.
fn alias(purpose: &str) -> KeyAlias {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    KeyAlias::new("suite", &format!("{purpose}-{}", &suffix[..12])).unwrap()
}

fn new_key(alias: &KeyAlias, spec: KeySpec, provider: Option<&ProviderId>) -> NewKey {
    let request = NewKey::new(alias.clone(), spec).with_rotation(RotationPolicy::manual(3600));
    match provider {
        Some(provider) => request.in_provider(provider.clone()),
        None => request,
    }
}

fn expect<T>(result: Result<T, Error>, kind: ErrorKind, what: &str) -> Error {
    match result {
        Ok(_) => panic!("{what}: expected {kind}, got success"),
        Err(err) => {
            assert_eq!(err.kind(), kind, "{what}: {err:?}");
            err
        }
    }
}

/// Runs the conformance suite on `kms` with two callers of two different tenants: signing
/// and verification for every configured algorithm, JWS through the alias signer and the
/// resolver, JWKS and kids (RFC 7638 thumbprints), rotation with overlap, holds and
/// deletion, encryption, and tenant isolation (the other tenant finds nothing, with the same
/// error as for a key that exists nowhere).
pub async fn kms_suite(kms: Arc<dyn Kms>, a: &Caller, b: &Caller, config: &KmsSuiteConfig) {
    assert_ne!(a.tenant().id(), b.tenant().id(), "two tenants are needed");
    for alg in &config.signing {
        signs_and_verifies(&*kms, a, *alg, config.signing_provider.as_ref()).await;
    }
    aliases_are_unique_and_unknown_ones_are_not_found(&*kms, a).await;
    let shared = isolation(&*kms, a, b, config.signing_provider.as_ref()).await;
    rotation_keeps_old_versions_verifiable(&*kms, a, config.signing_provider.as_ref()).await;
    concurrent_rotations_make_one_version_each(&kms, a, config).await;
    holds_block_deletion(&*kms, a, &shared).await;
    for alg in &config.decryption {
        encrypts_and_decrypts(&*kms, a, b, *alg).await;
    }
    keys_are_created_once_on_first_use(&kms, a, config).await;
    if config.decryption.contains(&KeyManagement::EcdhEs) {
        seals_to_a_key_made_on_first_use(&*kms, a, b).await;
    }
}

async fn keys_are_created_once_on_first_use(
    kms: &Arc<dyn Kms>,
    caller: &Caller,
    config: &KmsSuiteConfig,
) {
    let alias = alias("first-use");
    let request = new_key(
        &alias,
        KeySpec::signing(Algorithm::Es256),
        config.signing_provider.as_ref(),
    );
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let kms = Arc::clone(kms);
        let caller = caller.clone();
        let request = request.clone();
        tasks.spawn(async move { kms.ensure_key(&caller, &request).await });
    }
    while let Some(result) = tasks.join_next().await {
        result
            .unwrap()
            .unwrap_or_else(|err| panic!("concurrent first use: {err:?}"));
    }
    let key = KeyRef::Alias(alias.clone());
    let info = kms.key(caller, &key).await.unwrap();
    assert_eq!(info.versions.len(), 1, "one key for every first use");
    let kid = info.active().unwrap().kid.clone();
    kms.ensure_key(caller, &request).await.unwrap();
    let again = kms.key(caller, &key).await.unwrap();
    assert_eq!(again.versions.len(), 1, "an existing alias is left alone");
    assert_eq!(again.active().unwrap().kid, kid);
}

async fn seals_to_a_key_made_on_first_use(kms: &dyn Kms, a: &Caller, b: &Caller) {
    let alias = alias("sealing");
    let sealed = kms.seal(a, &alias, b"a stored secret").await.unwrap();
    let info = kms.key(a, &KeyRef::Alias(alias.clone())).await.unwrap();
    assert_eq!(
        info.usage,
        KeyUsage::Decrypt(KeyManagement::EcdhEs),
        "{info:?}"
    );
    let second = kms.seal(a, &alias, b"another secret").await.unwrap();
    assert_eq!(
        kms.key(a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap()
            .versions
            .len(),
        1,
        "sealing again reuses the key"
    );
    assert_eq!(
        kms.decrypt(a, &alias, &sealed).await.unwrap().as_slice(),
        b"a stored secret"
    );
    assert_eq!(
        kms.decrypt(a, &alias, &second).await.unwrap().as_slice(),
        b"another secret"
    );
    expect(
        kms.decrypt(b, &alias, &sealed).await,
        ErrorKind::NotFound,
        "another tenant opens a sealed secret",
    );
}

async fn signs_and_verifies(
    kms: &dyn Kms,
    caller: &Caller,
    alg: Algorithm,
    provider: Option<&ProviderId>,
) {
    let alias = alias(&format!("sign-{}", alg.name().to_ascii_lowercase()));
    let info = kms
        .create_key(caller, &new_key(&alias, KeySpec::signing(alg), provider))
        .await
        .unwrap_or_else(|err| panic!("creating a {alg} key: {err:?}"));
    assert_eq!(info.alias, alias);
    let active = info.active().expect("an active version").clone();
    assert_eq!(active.version, 1);
    assert_eq!(active.state, KeyState::Active);
    assert_eq!(
        active.kid.as_str(),
        active.public_jwk.thumbprint(),
        "kid is the thumbprint"
    );
    assert!(!active.public_jwk.is_private());
    assert_eq!(active.public_jwk.alg.as_deref(), Some(alg.name()));

    let signature = kms.sign(caller, &alias, b"message").await.unwrap();
    assert_eq!(signature.kid, active.kid);
    assert_eq!(signature.alg, alg);
    let public = kms
        .public_key(caller, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap();
    VerifyingKey::from_jwk(&public)
        .unwrap()
        .verify(alg, b"message", &signature.bytes)
        .unwrap_or_else(|err| panic!("{alg}: the signature does not verify outside: {err:?}"));
    let kid = kms
        .verify(
            caller,
            &KeyRef::Alias(alias.clone()),
            alg,
            b"message",
            &signature.bytes,
        )
        .await
        .unwrap();
    assert_eq!(kid, active.kid);
    kms.verify(
        caller,
        &KeyRef::Kid(kid.clone()),
        alg,
        b"message",
        &signature.bytes,
    )
    .await
    .unwrap();
    let bad = expect(
        kms.verify(
            caller,
            &KeyRef::Alias(alias.clone()),
            alg,
            b"other",
            &signature.bytes,
        )
        .await,
        ErrorKind::InvalidInput,
        "a signature over another message",
    );
    assert!(matches!(bad, Error::InvalidSignature), "{bad:?}");
    let other_alg = if alg == Algorithm::Es256 {
        Algorithm::Es384
    } else {
        Algorithm::Es256
    };
    let mismatch = expect(
        kms.verify(
            caller,
            &KeyRef::Alias(alias.clone()),
            other_alg,
            b"message",
            &signature.bytes,
        )
        .await,
        ErrorKind::InvalidInput,
        "an algorithm the key does not have",
    );
    assert!(
        matches!(mismatch, Error::AlgorithmMismatch { .. }),
        "{mismatch:?}"
    );

    // JWS through the alias's signer, verified through the resolver.
    let signer = kms.signer(caller, &alias).await.unwrap();
    assert_eq!(signer.algorithm(), alg);
    assert_eq!(signer.kid(), Some(&active.kid));
    let token = jws::sign(
        Header::new(alg)
            .with_typ("JWT")
            .with_kid(active.kid.as_str()),
        br#"{"sub":"s"}"#,
        &*signer,
    )
    .await
    .unwrap();
    let resolver = kms.resolver(caller);
    let verified = Jws::parse(&token, &Default::default())
        .unwrap()
        .verify_with(
            &*resolver,
            &VerifyPolicy::default().with_algorithms(&[alg]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(verified.payload(), br#"{"sub":"s"}"#);

    let jwks = kms.jwks(caller, &alias).await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid.as_deref(), Some(active.kid.as_str()));
    assert!(jwks.keys.iter().all(|k| !k.is_private()));
}

async fn aliases_are_unique_and_unknown_ones_are_not_found(kms: &dyn Kms, caller: &Caller) {
    let alias = alias("unique");
    kms.create_key(
        caller,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    let err = expect(
        kms.create_key(
            caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await,
        ErrorKind::Conflict,
        "creating an alias twice",
    );
    assert!(matches!(err, Error::AliasExists { .. }), "{err:?}");
    let listed = kms.keys(caller).await.unwrap();
    assert!(listed.iter().any(|k| k.alias == alias));

    let missing = KeyAlias::new("suite", "never-created").unwrap();
    expect(
        kms.sign(caller, &missing, b"m").await,
        ErrorKind::NotFound,
        "unknown alias",
    );
    expect(
        kms.key(caller, &KeyRef::Alias(missing.clone())).await,
        ErrorKind::NotFound,
        "unknown alias",
    );
    expect(
        kms.rotate(caller, &missing).await,
        ErrorKind::NotFound,
        "rotating an unknown alias",
    );
    expect(
        kms.delete_key(caller, &KeyRef::Alias(missing)).await,
        ErrorKind::NotFound,
        "deleting an unknown alias",
    );
}

/// A's key as seen by B is the same nothing as a kid that exists nowhere. Returns A's alias.
async fn isolation(
    kms: &dyn Kms,
    a: &Caller,
    b: &Caller,
    provider: Option<&ProviderId>,
) -> KeyAlias {
    let alias = alias("isolated");
    let info = kms
        .create_key(
            a,
            &new_key(&alias, KeySpec::signing(Algorithm::Es256), provider),
        )
        .await
        .unwrap();
    let kid = info.active().unwrap().kid.clone();
    let signature = kms.sign(a, &alias, b"m").await.unwrap();
    let nowhere = Kid::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();

    for (key, what) in [
        (KeyRef::Alias(alias.clone()), "alias"),
        (KeyRef::Kid(kid.clone()), "kid"),
    ] {
        let theirs = expect(kms.key(b, &key).await, ErrorKind::NotFound, what);
        expect(kms.public_key(b, &key).await, ErrorKind::NotFound, what);
        expect(
            kms.verify(b, &key, Algorithm::Es256, b"m", &signature.bytes)
                .await,
            ErrorKind::NotFound,
            what,
        );
        expect(kms.delete_key(b, &key).await, ErrorKind::NotFound, what);
        if let KeyRef::Kid(_) = key {
            let none = expect(
                kms.key(b, &KeyRef::Kid(nowhere.clone())).await,
                ErrorKind::NotFound,
                "a kid that exists nowhere",
            );
            assert_eq!(
                theirs.to_string().replace(kid.as_str(), "K"),
                none.to_string().replace(nowhere.as_str(), "K"),
                "another tenant's kid reads like one that exists nowhere"
            );
        }
    }
    expect(
        kms.sign(b, &alias, b"m").await,
        ErrorKind::NotFound,
        "B signs with A's alias",
    );
    expect(
        kms.signer(b, &alias).await,
        ErrorKind::NotFound,
        "B's signer for A's alias",
    );
    expect(
        kms.jwks(b, &alias).await,
        ErrorKind::NotFound,
        "B's JWKS of A's alias",
    );
    expect(
        kms.rotate(b, &alias).await,
        ErrorKind::NotFound,
        "B rotates A's alias",
    );
    expect(
        kms.hold_key(b, &alias, "x").await,
        ErrorKind::NotFound,
        "B holds A's alias",
    );
    assert!(
        kms.keys(b).await.unwrap().iter().all(|k| k.alias != alias),
        "B lists A's alias"
    );
    let query = KeyQuery::new(Algorithm::Es256).with_kid(Some(kid.as_str()));
    assert!(
        kms.resolver(b).resolve(&query).await.is_err(),
        "B resolves A's kid"
    );
    kms.resolver(a).resolve(&query).await.unwrap();
    // A still has it.
    kms.key(a, &KeyRef::Alias(alias.clone())).await.unwrap();
    alias
}

async fn rotation_keeps_old_versions_verifiable(
    kms: &dyn Kms,
    caller: &Caller,
    provider: Option<&ProviderId>,
) {
    let alias = alias("rotate");
    let first = kms
        .create_key(
            caller,
            &new_key(&alias, KeySpec::signing(Algorithm::Es256), provider),
        )
        .await
        .unwrap();
    let old_kid = first.active().unwrap().kid.clone();
    let old = kms.sign(caller, &alias, b"before").await.unwrap();
    let stale = kms.signer(caller, &alias).await.unwrap();
    let rotated = kms.rotate(caller, &alias).await.unwrap();
    let refused = stale
        .sign(b"after")
        .await
        .expect_err("a signer of a retired version must not sign");
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused:?}");
    let new = rotated.active().unwrap().clone();
    assert_eq!(new.version, 2);
    assert_ne!(new.kid, old_kid);
    let retired = rotated.versions.iter().find(|v| v.kid == old_kid).unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    assert!(retired.verify_until.is_some());
    // The kid never changes for a key.
    assert_eq!(retired.kid.as_str(), retired.public_jwk.thumbprint());

    let signature = kms.sign(caller, &alias, b"after").await.unwrap();
    assert_eq!(signature.kid, new.kid, "the new version signs at once");
    let kid = kms
        .verify(
            caller,
            &KeyRef::Alias(alias.clone()),
            Algorithm::Es256,
            b"before",
            &old.bytes,
        )
        .await
        .unwrap();
    assert_eq!(kid, old_kid, "the old version verifies during the overlap");
    let jwks = kms.jwks(caller, &alias).await.unwrap();
    let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.kid.clone()).collect();
    assert!(
        kids.contains(&old_kid.as_str().to_owned()) && kids.contains(&new.kid.as_str().to_owned())
    );
    let query = KeyQuery::new(Algorithm::Es256).with_kid(Some(old_kid.as_str()));
    kms.resolver(caller).resolve(&query).await.unwrap();

    let history = kms.rotations(caller, &alias).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].from_version, Some(1));
    assert_eq!(history[0].to_version, 2);
    // A remote KMS records the actor qualified with the calling service's name.
    assert!(
        history[0].actor == caller.actor()
            || history[0].actor.ends_with(&format!("/{}", caller.actor())),
        "{} records the caller's actor",
        history[0].actor
    );

    // The retired version can be destroyed alone, the active one cannot.
    expect(
        kms.delete_key(caller, &KeyRef::Kid(new.kid.clone())).await,
        ErrorKind::Forbidden,
        "destroying the active version alone",
    );
    kms.delete_key(caller, &KeyRef::Kid(old_kid.clone()))
        .await
        .unwrap();
    let err = expect(
        kms.verify(
            caller,
            &KeyRef::Kid(old_kid.clone()),
            Algorithm::Es256,
            b"before",
            &old.bytes,
        )
        .await,
        ErrorKind::Forbidden,
        "verifying with a destroyed version",
    );
    assert!(
        matches!(
            err,
            Error::KeyNotUsable {
                state: KeyState::Destroyed
            }
        ),
        "{err:?}"
    );
    let jwks = kms.jwks(caller, &alias).await.unwrap();
    assert_eq!(jwks.keys.len(), 1, "a destroyed version leaves the JWKS");
}

async fn concurrent_rotations_make_one_version_each(
    kms: &Arc<dyn Kms>,
    caller: &Caller,
    config: &KmsSuiteConfig,
) {
    let alias = alias("concurrent");
    kms.create_key(
        caller,
        &new_key(
            &alias,
            KeySpec::signing(Algorithm::Es256),
            config.signing_provider.as_ref(),
        ),
    )
    .await
    .unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..config.concurrent_rotations {
        let kms = Arc::clone(kms);
        let caller = caller.clone();
        let alias = alias.clone();
        tasks.spawn(async move { kms.rotate(&caller, &alias).await });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, config.concurrent_rotations);
    let info = kms
        .key(caller, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap();
    let mut versions: Vec<u32> = info.versions.iter().map(|v| v.version).collect();
    versions.sort_unstable();
    let expected: Vec<u32> =
        (1..=u32::try_from(config.concurrent_rotations + 1).unwrap()).collect();
    assert_eq!(
        versions, expected,
        "one version per rotation, no duplicates"
    );
    assert_eq!(
        info.versions
            .iter()
            .filter(|v| v.state == KeyState::Active)
            .count(),
        1,
        "exactly one active version"
    );
    let history = kms.rotations(caller, &alias).await.unwrap();
    assert_eq!(history.len(), config.concurrent_rotations);
}

async fn holds_block_deletion(kms: &dyn Kms, caller: &Caller, alias: &KeyAlias) {
    kms.hold_key(caller, alias, "did:web:example.com")
        .await
        .unwrap();
    kms.hold_key(caller, alias, "did:web:example.com")
        .await
        .unwrap();
    let err = expect(
        kms.delete_key(caller, &KeyRef::Alias(alias.clone())).await,
        ErrorKind::Conflict,
        "deleting a held key",
    );
    assert!(matches!(err, Error::KeyInUse { .. }), "{err:?}");
    kms.sign(caller, alias, b"still usable").await.unwrap();
    kms.release_key(caller, alias, "did:web:example.com")
        .await
        .unwrap();
    let kid = kms
        .key(caller, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap()
        .active()
        .unwrap()
        .kid
        .clone();
    kms.delete_key(caller, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap();
    expect(
        kms.sign(caller, alias, b"m").await,
        ErrorKind::NotFound,
        "signing after deletion",
    );
    expect(
        kms.key(caller, &KeyRef::Kid(kid)).await,
        ErrorKind::NotFound,
        "a deleted alias's kid",
    );
    // The name is free again.
    kms.create_key(
        caller,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
}

async fn encrypts_and_decrypts(kms: &dyn Kms, a: &Caller, b: &Caller, alg: KeyManagement) {
    let alias = alias(&format!(
        "enc-{}",
        alg.name().to_ascii_lowercase().replace('+', "-")
    ));
    let info = kms
        .create_key(a, &NewKey::new(alias.clone(), KeySpec::decryption(alg)))
        .await
        .unwrap_or_else(|err| panic!("creating a {} key: {err:?}", alg.name()));
    let kid = info.active().unwrap().kid.clone();
    for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
        let token = kms
            .encrypt(a, &KeyRef::Alias(alias.clone()), alg, enc, b"secret")
            .await
            .unwrap();
        let plaintext = kms.decrypt(a, &alias, &token).await.unwrap();
        assert_eq!(plaintext.as_slice(), b"secret");
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        let err = expect(
            kms.decrypt(a, &alias, &tampered).await,
            ErrorKind::InvalidInput,
            "a tampered JWE",
        );
        assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
        expect(
            kms.decrypt(b, &alias, &token).await,
            ErrorKind::NotFound,
            "B decrypts with A's alias",
        );
    }
    expect(
        kms.sign(a, &alias, b"m").await,
        ErrorKind::InvalidInput,
        "signing with a decryption key",
    );
    wraps_and_agrees(kms, a, &alias, alg).await;
    // After rotation, a JWE to the old version still decrypts during the overlap.
    let old = kms
        .encrypt(
            a,
            &KeyRef::Kid(kid),
            alg,
            ContentEncryption::A128Gcm,
            b"old",
        )
        .await
        .unwrap();
    kms.rotate(a, &alias).await.unwrap();
    assert_eq!(
        kms.decrypt(a, &alias, &old).await.unwrap().as_slice(),
        b"old"
    );
}

async fn wraps_and_agrees(kms: &dyn Kms, caller: &Caller, alias: &KeyAlias, alg: KeyManagement) {
    let key = KeyRef::Alias(alias.clone());
    let cek = [7u8; 32];
    if alg == KeyManagement::EcdhEs {
        expect(
            kms.wrap_key(caller, &key, alg, ContentEncryption::A256Gcm, &cek)
                .await,
            ErrorKind::InvalidInput,
            "direct ECDH-ES cannot wrap a given key",
        );
    } else {
        let wrapped = kms
            .wrap_key(caller, &key, alg, ContentEncryption::A256Gcm, &cek)
            .await
            .unwrap();
        assert_ne!(wrapped.encrypted_key.as_slice(), cek.as_slice());
        let unwrapped = kms
            .unwrap_key(caller, alias, ContentEncryption::A256Gcm, &wrapped)
            .await
            .unwrap();
        assert_eq!(unwrapped.as_slice(), cek.as_slice());
        expect(
            kms.wrap_key(caller, &key, alg, ContentEncryption::A256Gcm, &cek[..16])
                .await,
            ErrorKind::InvalidInput,
            "a key of the wrong length for enc",
        );
    }
    let other = if alg == KeyManagement::RsaOaep256 {
        KeyManagement::EcdhEs
    } else {
        KeyManagement::RsaOaep256
    };
    expect(
        kms.encrypt(caller, &key, other, ContentEncryption::A128Gcm, b"m")
            .await,
        ErrorKind::InvalidInput,
        "encrypting with an algorithm the key is not for",
    );

    let peer = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let point = peer.compute_public_key().unwrap();
    let point = point.as_ref();
    let peer_jwk = Jwk::from_parts(
        PublicParams::Ec {
            crv: EcCurve::P256,
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        },
        None,
    )
    .unwrap();
    if crate::provider::is_ecdh(alg) {
        let z = kms.key_agreement(caller, alias, &peer_jwk).await.unwrap();
        let ours = kms.public_key(caller, &key).await.unwrap();
        let PublicParams::Ec { x, y, .. } = ours.params() else {
            panic!("an ECDH key is an EC key");
        };
        let mut our_point = vec![4u8];
        our_point.extend_from_slice(x);
        our_point.extend_from_slice(y);
        let expected = agreement::agree(
            &peer,
            agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &our_point),
            (),
            |z| Ok(z.to_vec()),
        )
        .unwrap();
        assert_eq!(z.as_slice(), expected.as_slice(), "both sides agree on Z");
    } else {
        expect(
            kms.key_agreement(caller, alias, &peer_jwk).await,
            ErrorKind::InvalidInput,
            "key agreement with an RSA key",
        );
    }
}
