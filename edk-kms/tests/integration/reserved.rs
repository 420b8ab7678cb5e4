//! Aliases reserved for EDK's own services: refused to admin callers and to other remote
//! services for every operation that creates, changes or uses their private key; open to
//! code in the process and to the owning service.

use edk_core::jose::jwe::ContentEncryption;
use edk_core::jose::{Algorithm, SigningKey};
use edk_kms::kms::{Origin, WrappedKey};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, Error, KeyAlias, KeyRef, Kms, NewKey};

use crate::support::{Backend, env};

fn assert_reserved<T: std::fmt::Debug>(result: Result<T, Error>, alias: &KeyAlias) {
    match result {
        Err(Error::ReservedAlias { alias: refused }) => assert_eq!(&refused, alias),
        other => panic!("expected ReservedAlias for {alias}, got {other:?}"),
    }
}

/// Every private-key or changing operation of `caller` on `alias` is refused.
async fn refuses_everything(kms: &dyn Kms, caller: &Caller, alias: &KeyAlias) {
    let spec = KeySpec::signing(Algorithm::Es256);
    let private = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .to_jwk()
        .unwrap();
    assert_reserved(
        kms.create_key(caller, &NewKey::new(alias.clone(), spec))
            .await,
        alias,
    );
    assert_reserved(
        kms.import_key(caller, alias, &spec, &private, None).await,
        alias,
    );
    assert_reserved(
        kms.register_public_key(caller, alias, &private.to_public())
            .await,
        alias,
    );
    assert_reserved(kms.rotate(caller, alias).await, alias);
    assert_reserved(
        kms.delete_key(caller, &KeyRef::Alias(alias.clone())).await,
        alias,
    );
    assert_reserved(kms.hold_key(caller, alias, "someone").await, alias);
    assert_reserved(kms.release_key(caller, alias, "someone").await, alias);
    assert_reserved(kms.signer(caller, alias).await, alias);
    assert_reserved(kms.sign(caller, alias, b"m").await, alias);
    assert_reserved(kms.decrypt(caller, alias, "a.b.c.d.e").await, alias);
    let wrapped = WrappedKey::new(
        edk_core::jose::jwe::KeyManagement::EcdhEsA256Kw,
        edk_core::Kid::new("kid").unwrap(),
        vec![0; 24],
        None,
    );
    assert_reserved(
        kms.unwrap_key(caller, alias, ContentEncryption::A256Gcm, &wrapped)
            .await,
        alias,
    );
    assert_reserved(
        kms.key_agreement(caller, alias, &private.to_public()).await,
        alias,
    );
}

async fn admin_callers_cannot_touch_reserved_aliases(backend: Backend) {
    let env = env(backend).await;
    let in_process = &env.a;
    let admin = Caller::admin(env.a.tenant().clone(), "ops");
    assert_eq!(admin.origin(), &Origin::Admin);
    let as_key = KeyAlias::new("as", "access-token-signing").unwrap();
    let created = env
        .kms
        .create_key(
            in_process,
            &NewKey::new(as_key.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let kid = created.active().unwrap().kid.clone();

    for alias in [
        as_key.clone(),
        KeyAlias::new("did", "x-update").unwrap(),
        KeyAlias::new("audit", "audit-checkpoint").unwrap(),
    ] {
        refuses_everything(&env.kms, &admin, &alias).await;
    }
    // By kid too.
    assert_reserved(
        env.kms.delete_key(&admin, &KeyRef::Kid(kid.clone())).await,
        &as_key,
    );
    // Nothing changed; reading stays open to the admin.
    let info = env
        .kms
        .key(&admin, &KeyRef::Alias(as_key.clone()))
        .await
        .unwrap();
    assert_eq!(info.versions.len(), 1);
    assert_eq!(info.active().unwrap().kid, kid);
    env.kms.jwks(&admin, &as_key).await.unwrap();
    assert_eq!(env.kms.keys(&admin).await.unwrap().len(), 1);
    // Code in the process (the AS here) still signs.
    env.kms.sign(in_process, &as_key, b"m").await.unwrap();
    // Ordinary aliases are the admin's to use.
    let ordinary = KeyAlias::new("issuer", "credential-signing").unwrap();
    env.kms
        .create_key(
            &admin,
            &NewKey::new(ordinary.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    env.kms.sign(&admin, &ordinary, b"m").await.unwrap();
    env.kms.rotate(&admin, &ordinary).await.unwrap();
    env.kms
        .delete_key(&admin, &KeyRef::Alias(ordinary))
        .await
        .unwrap();
}

#[tokio::test]
async fn admin_callers_cannot_touch_reserved_aliases_on_sqlite() {
    admin_callers_cannot_touch_reserved_aliases(Backend::Sqlite).await;
}

#[tokio::test]
async fn admin_callers_cannot_touch_reserved_aliases_on_postgres() {
    admin_callers_cannot_touch_reserved_aliases(Backend::Postgres).await;
}

#[tokio::test]
async fn a_remote_service_uses_only_its_own_reserved_aliases() {
    let env = env(Backend::Sqlite).await;
    let as_service = Caller::remote(env.a.tenant().clone(), "as", "service:as");
    let did_service = Caller::remote(env.a.tenant().clone(), "did", "service:did");
    let as_key = KeyAlias::new("as", "access-token-signing").unwrap();
    env.kms
        .create_key(
            &as_service,
            &NewKey::new(as_key.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    env.kms.sign(&as_service, &as_key, b"m").await.unwrap();
    env.kms.rotate(&as_service, &as_key).await.unwrap();
    refuses_everything(&env.kms, &did_service, &as_key).await;
    refuses_everything(
        &env.kms,
        &as_service,
        &KeyAlias::new("did", "web-root").unwrap(),
    )
    .await;
    // Unreserved aliases are every service's.
    let ordinary = KeyAlias::new("issuer", "credential-signing").unwrap();
    env.kms
        .create_key(
            &did_service,
            &NewKey::new(ordinary.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    env.kms.sign(&as_service, &ordinary, b"m").await.unwrap();
}
