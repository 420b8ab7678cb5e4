//! `LocalKms`: the KMS suite on both backends, and what only the local implementation shows.

use std::sync::Arc;

use edk_kms::Kms;
use edk_kms::testkit::{KmsSuiteConfig, kms_suite};

use crate::support::{Backend, env};

async fn suite_on(backend: Backend) {
    let env = env(backend).await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    kms_suite(kms, &env.a, &env.b, &KmsSuiteConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_on_sqlite() {
    suite_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_kms_passes_the_suite_on_postgres() {
    suite_on(Backend::Postgres).await;
}

mod lifecycle {
    use std::time::Duration;

    use edk_core::jose::{Algorithm, KeyQuery};
    use edk_core::{ErrorKind, HasKind};
    use edk_kms::kms::{RotationPolicy, RotationReason};
    use edk_kms::provider::KeySpec;
    use edk_kms::{Error, KeyAlias, KeyRef, KeyState, Kms, NewKey};

    use crate::support::{Backend, env};

    async fn retired_versions_expire_after_the_overlap(backend: Backend) {
        let env = env(backend).await;
        let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
        let request = NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256))
            .with_rotation(RotationPolicy::manual(600));
        let first = env.kms.create_key(&env.a, &request).await.unwrap();
        let old_kid = first.active().unwrap().kid.clone();
        let old = env.kms.sign(&env.a, &alias, b"m").await.unwrap();
        env.kms.rotate(&env.a, &alias).await.unwrap();
        assert_eq!(env.kms.jwks(&env.a, &alias).await.unwrap().keys.len(), 2);

        env.clock.advance(Duration::from_secs(599));
        env.kms
            .verify(
                &env.a,
                &KeyRef::Kid(old_kid.clone()),
                Algorithm::Es256,
                b"m",
                &old.bytes,
            )
            .await
            .unwrap();
        env.clock.advance(Duration::from_secs(2));
        let err = env
            .kms
            .verify(
                &env.a,
                &KeyRef::Kid(old_kid.clone()),
                Algorithm::Es256,
                b"m",
                &old.bytes,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::KeyNotUsable {
                    state: KeyState::Retired
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Forbidden);
        // By alias, the expired version is no candidate any more.
        let err = env
            .kms
            .verify(
                &env.a,
                &KeyRef::Alias(alias.clone()),
                Algorithm::Es256,
                b"m",
                &old.bytes,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidSignature), "{err:?}");
        let jwks = env.kms.jwks(&env.a, &alias).await.unwrap();
        assert_eq!(jwks.keys.len(), 1, "the expired version left the JWKS");
        let query = KeyQuery::new(Algorithm::Es256).with_kid(Some(old_kid.as_str()));
        let err = env.kms.resolver(&env.a).resolve(&query).await.unwrap_err();
        assert!(
            matches!(err, edk_core::jose::JoseError::KeyNotFound),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn retired_versions_expire_after_the_overlap_on_sqlite() {
        retired_versions_expire_after_the_overlap(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn retired_versions_expire_after_the_overlap_on_postgres() {
        retired_versions_expire_after_the_overlap(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn scheduled_rotation_follows_the_clock() {
        let env = env(Backend::Sqlite).await;
        let due = KeyAlias::new("as", "access-token-signing").unwrap();
        let manual = KeyAlias::new("issuer", "status-list-signing").unwrap();
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(due.clone(), KeySpec::signing(Algorithm::Es256))
                    .with_rotation(RotationPolicy::every(86_400, 3_600)),
            )
            .await
            .unwrap();
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(manual.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
        assert!(env.kms.rotate_due(&env.a).await.unwrap().is_empty());
        env.clock.advance(Duration::from_secs(86_399));
        assert!(env.kms.rotate_due(&env.a).await.unwrap().is_empty());
        env.clock.advance(Duration::from_secs(1));
        assert_eq!(env.kms.rotate_due(&env.a).await.unwrap(), vec![due.clone()]);
        assert!(
            env.kms.rotate_due(&env.a).await.unwrap().is_empty(),
            "done once"
        );
        let history = env.kms.rotations(&env.a, &due).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].reason, RotationReason::Scheduled);
        assert_eq!(history[0].actor, "alice");
        assert!(env.kms.rotations(&env.a, &manual).await.unwrap().is_empty());
        // The other tenant's keys are not touched by A's sweep.
        assert!(env.kms.rotate_due(&env.b).await.unwrap().is_empty());
    }

    /// A policy with pre-activation stages the next version before the scheduled rotation:
    /// published in the JWKS, not signing; the rotation then activates that same key.
    async fn pre_active_versions_are_published_before_they_sign(backend: Backend) {
        let env = env(backend).await;
        let alias = KeyAlias::new("as", "access-token-signing").unwrap();
        let created = env
            .kms
            .create_key(
                &env.a,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256))
                    .with_rotation(RotationPolicy::every(86_400, 3_600).with_pre_activation(7_200)),
            )
            .await
            .unwrap();
        let first = created.active().unwrap().kid.clone();
        env.clock.advance(Duration::from_secs(86_400 - 7_201));
        assert!(env.kms.rotate_due(&env.a).await.unwrap().is_empty());
        assert_eq!(
            env.kms
                .key(&env.a, &KeyRef::Alias(alias.clone()))
                .await
                .unwrap()
                .versions
                .len(),
            1
        );

        env.clock.advance(Duration::from_secs(1));
        assert!(
            env.kms.rotate_due(&env.a).await.unwrap().is_empty(),
            "staging is not a rotation"
        );
        let staged = env
            .kms
            .key(&env.a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap();
        let pre_active: Vec<_> = staged
            .versions
            .iter()
            .filter(|v| v.state == KeyState::PreActive)
            .collect();
        assert_eq!(pre_active.len(), 1);
        let next = pre_active[0].kid.clone();
        assert_eq!(pre_active[0].activated_at, None);
        assert_eq!(staged.active().unwrap().kid, first);
        let jwks = env.kms.jwks(&env.a, &alias).await.unwrap();
        let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.kid.clone()).collect();
        assert!(
            kids.contains(&first.to_string()) && kids.contains(&next.to_string()),
            "{kids:?}"
        );
        let signature = env.kms.sign(&env.a, &alias, b"m").await.unwrap();
        assert_eq!(signature.kid, first, "a pre-active version does not sign");
        // A second sweep does not stage another version.
        assert!(env.kms.rotate_due(&env.a).await.unwrap().is_empty());
        assert_eq!(
            env.kms
                .key(&env.a, &KeyRef::Alias(alias.clone()))
                .await
                .unwrap()
                .versions
                .len(),
            2
        );

        env.clock.advance(Duration::from_secs(7_200));
        assert_eq!(
            env.kms.rotate_due(&env.a).await.unwrap(),
            vec![alias.clone()]
        );
        let rotated = env
            .kms
            .key(&env.a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap();
        assert_eq!(
            rotated.versions.len(),
            2,
            "the staged key was activated, none generated"
        );
        assert_eq!(rotated.active().unwrap().kid, next);
        let signature = env.kms.sign(&env.a, &alias, b"m").await.unwrap();
        assert_eq!(signature.kid, next);
        let history = env.kms.rotations(&env.a, &alias).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].to_version, 2);
        let operations: Vec<String> = env
            .kms
            .audit_events(&env.a, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.operation)
            .collect();
        assert!(
            operations.iter().any(|op| op == "stage_rotation"),
            "{operations:?}"
        );
    }

    #[tokio::test]
    async fn pre_active_versions_are_published_before_they_sign_on_sqlite() {
        pre_active_versions_are_published_before_they_sign(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn pre_active_versions_are_published_before_they_sign_on_postgres() {
        pre_active_versions_are_published_before_they_sign(Backend::Postgres).await;
    }

    /// A manual rotation activates a staged version; concurrent manual rotations of a staged
    /// alias each make one active version, the first of them the staged key.
    #[tokio::test]
    async fn manual_rotation_activates_the_staged_version() {
        let env = env(Backend::Postgres).await;
        let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256))
                    .with_rotation(RotationPolicy::every(1_000, 100).with_pre_activation(500)),
            )
            .await
            .unwrap();
        env.clock.advance(Duration::from_secs(600));
        env.kms.rotate_due(&env.a).await.unwrap();
        let staged = env
            .kms
            .key(&env.a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap();
        let next = staged
            .versions
            .iter()
            .find(|v| v.state == KeyState::PreActive)
            .unwrap()
            .kid
            .clone();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let kms = env.kms.clone();
            let caller = env.a.clone();
            let alias = alias.clone();
            tasks.spawn(async move { kms.rotate(&caller, &alias).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }
        let after = env
            .kms
            .key(&env.a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap();
        assert_eq!(after.versions.len(), 5, "one staged plus three generated");
        assert!(
            after
                .versions
                .iter()
                .all(|v| v.state != KeyState::PreActive)
        );
        let history = env.kms.rotations(&env.a, &alias).await.unwrap();
        assert_eq!(history.len(), 4);
        assert_eq!(history[0].to_version, 2);
        assert_eq!(
            after.versions.iter().find(|v| v.version == 2).unwrap().kid,
            next
        );
    }

    #[tokio::test]
    async fn external_keys_verify_only() {
        let env = env(Backend::Sqlite).await;
        let key = edk_core::jose::SigningKey::generate(Algorithm::Es256).unwrap();
        let alias = KeyAlias::new("verifier", "wallet-attestation").unwrap();
        let info = env
            .kms
            .register_public_key(&env.a, &alias, &key.public_jwk())
            .await
            .unwrap();
        assert!(info.external);
        let signature = key.sign_bytes(b"m").unwrap();
        env.kms
            .verify(
                &env.a,
                &KeyRef::Alias(alias.clone()),
                Algorithm::Es256,
                b"m",
                &signature,
            )
            .await
            .unwrap();
        let err = env.kms.sign(&env.a, &alias, b"m").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        let err = env.kms.rotate(&env.a, &alias).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        let private = key.to_jwk().unwrap();
        let err = env
            .kms
            .register_public_key(&env.a, &KeyAlias::new("verifier", "x").unwrap(), &private)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    }
}

mod defaults {
    use std::time::Duration;

    use edk_core::TenantSlug;
    use edk_core::jose::Algorithm;
    use edk_kms::local::DefaultAlias;
    use edk_kms::provider::{KeySpec, ProviderId};
    use edk_kms::{Caller, Error, KeyAlias, KeyRef, Kms, LocalKms};
    use edk_tenancy::TenantDirectory as _;
    use tokio_util::sync::CancellationToken;

    use crate::support::{Backend, env_with, software};

    fn defaults() -> Vec<DefaultAlias> {
        vec![
            DefaultAlias::new(
                KeyAlias::new("issuer", "credential-signing").unwrap(),
                KeySpec::signing(Algorithm::Es256),
            )
            .in_provider(ProviderId::new("software").unwrap()),
            DefaultAlias::new(
                KeyAlias::new("as", "access-token-signing").unwrap(),
                KeySpec::signing(Algorithm::EdDsa),
            ),
        ]
    }

    async fn provisioned_tenants_get_the_default_aliases(backend: Backend) {
        let env = env_with(backend, vec![software("software")], defaults()).await;
        let cancel = CancellationToken::new();
        let task = env.kms.start(&cancel);
        let tenant = env
            .tenancy
            .provision(TenantSlug::new("newcomer").unwrap(), "Newcomer")
            .await
            .unwrap();
        let caller = Caller::new(env.tenancy.context(tenant.id).await.unwrap(), "admin");
        // The event is handled by the background task: wait for it, bounded, without sleeping.
        tokio::time::timeout(Duration::from_secs(30), async {
            while env.kms.keys(&caller).await.unwrap().len() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the default aliases are provisioned");
        let keys = env.kms.keys(&caller).await.unwrap();
        assert_eq!(keys.len(), 2, "once each");
        task.shutdown().await;
        // The tenants provisioned before the task started get theirs on first need.
        assert!(env.kms.keys(&env.a).await.unwrap().is_empty());
        let alias = KeyAlias::new("as", "access-token-signing").unwrap();
        let signature = env.kms.sign(&env.a, &alias, b"m").await.unwrap();
        assert_eq!(signature.alg, Algorithm::EdDsa);
        assert_eq!(env.kms.provision_defaults(&env.a).await.unwrap().len(), 1);
        assert!(env.kms.provision_defaults(&env.a).await.unwrap().is_empty());
        // An alias that is no default is not made on first need.
        let update = KeyAlias::new("did", "did-update").unwrap();
        let err = env.kms.sign(&env.a, &update, b"m").await.unwrap_err();
        assert!(
            matches!(&err, Error::AliasNotFound { alias } if *alias == update),
            "{err:?}"
        );
        let _ = env.kms.key(&env.a, &KeyRef::Alias(alias)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn provisioned_tenants_get_the_default_aliases_on_sqlite() {
        provisioned_tenants_get_the_default_aliases(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn provisioned_tenants_get_the_default_aliases_on_postgres() {
        provisioned_tenants_get_the_default_aliases(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn the_builder_refuses_inconsistent_configuration() {
        let env = env_with(Backend::Sqlite, vec![software("software")], Vec::new()).await;
        let twice = LocalKms::builder(
            env.tenancy.clone(),
            vec![software("software"), software("software")],
        )
        .build()
        .unwrap_err();
        assert!(twice.to_string().contains("providers"), "{twice}");
        let missing = LocalKms::builder(env.tenancy.clone(), vec![software("software")])
            .default_aliases(vec![
                DefaultAlias::new(
                    KeyAlias::new("issuer", "credential-signing").unwrap(),
                    KeySpec::signing(Algorithm::Es256),
                )
                .in_provider(ProviderId::new("hsm").unwrap()),
            ])
            .build()
            .unwrap_err();
        assert!(missing.to_string().contains("default_aliases"), "{missing}");
        let duplicate = LocalKms::builder(env.tenancy, vec![software("software")])
            .default_aliases([defaults(), defaults()].concat())
            .build()
            .unwrap_err();
        assert!(
            duplicate.to_string().contains("default_aliases"),
            "{duplicate}"
        );
    }
}
