//! The alias cache never brings back a version that was rotated away or destroyed: a load that
//! read the store before a change and finishes after it is not cached.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::Kid;
use edk_core::jose::Algorithm;
use edk_kms::kms::RotationRecord;
use edk_kms::provider::{KeyHandle, KeySpec};
use edk_kms::store::{
    AliasRecord, KeyReferenceStore, NewVersion, RotationMeta, StoreError, for_tenancy,
};
use edk_kms::{KeyAlias, KeyRef, Kms, LocalKms, NewKey};
use edk_tenancy::TenantContext;
use tokio::sync::oneshot;

use crate::support::{Backend, caller, software, tenancy};

/// A store whose next `alias` read, once armed, reads the database and then waits, before
/// answering, until the test releases it.
#[derive(Debug)]
struct PausingStore {
    inner: Arc<dyn KeyReferenceStore>,
    pause: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl PausingStore {
    /// Arms the pause: the first receiver completes when a read has been made, the sender
    /// lets it answer.
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached, on_reached) = oneshot::channel();
        let (release, on_release) = oneshot::channel();
        *self.pause.lock().unwrap() = Some((reached, on_release));
        (on_reached, release)
    }
}

#[async_trait]
impl KeyReferenceStore for PausingStore {
    async fn create(&self, tenant: &TenantContext, alias: &AliasRecord) -> Result<(), StoreError> {
        self.inner.create(tenant, alias).await
    }

    async fn alias(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let read = self.inner.alias(tenant, alias).await;
        let pause = self.pause.lock().unwrap().take();
        if let Some((reached, release)) = pause {
            reached.send(()).unwrap();
            release.await.unwrap();
        }
        read
    }

    async fn alias_by_kid(
        &self,
        tenant: &TenantContext,
        kid: &Kid,
    ) -> Result<Option<AliasRecord>, StoreError> {
        self.inner.alias_by_kid(tenant, kid).await
    }

    async fn aliases(&self, tenant: &TenantContext) -> Result<Vec<AliasRecord>, StoreError> {
        self.inner.aliases(tenant).await
    }

    async fn rotate(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        new: Option<&NewVersion>,
        meta: &RotationMeta,
    ) -> Result<AliasRecord, StoreError> {
        self.inner.rotate(tenant, alias, new, meta).await
    }

    async fn stage(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        new: &NewVersion,
        at: DateTime<Utc>,
    ) -> Result<AliasRecord, StoreError> {
        self.inner.stage(tenant, alias, new, at).await
    }

    async fn rotations(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, StoreError> {
        self.inner.rotations(tenant, alias).await
    }

    async fn destroy(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        kid: Option<&Kid>,
        at: DateTime<Utc>,
    ) -> Result<Vec<KeyHandle>, StoreError> {
        self.inner.destroy(tenant, alias, kid, at).await
    }

    async fn hold(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        holder: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.hold(tenant, alias, holder, at).await
    }

    async fn release(
        &self,
        tenant: &TenantContext,
        alias: &KeyAlias,
        holder: &str,
    ) -> Result<(), StoreError> {
        self.inner.release(tenant, alias, holder).await
    }
}

/// A sign whose alias load read version 1, then a rotation that completes before the load
/// answers: the next sign uses version 2.
async fn a_load_that_straddles_a_rotation_is_not_cached(backend: Backend) {
    let clock = Arc::new(edk_core::FixedClock::at_unix(1_700_000_000));
    let (tenancy, _dir, _db) = tenancy(backend, clock.clone()).await;
    let store = Arc::new(PausingStore {
        inner: for_tenancy(&tenancy),
        pause: Mutex::new(None),
    });
    let kms = LocalKms::builder(tenancy.clone(), vec![software("software")])
        .clock(clock)
        .store(store.clone())
        .build()
        .unwrap();
    let a = caller(&tenancy, "tenant-a", "alice").await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let created = kms
        .create_key(
            &a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let old = created.active().unwrap().kid.clone();

    let (reached, release) = store.arm();
    let straddling = tokio::spawn({
        let (kms, a, alias) = (kms.clone(), a.clone(), alias.clone());
        async move { kms.sign(&a, &alias, b"m").await }
    });
    reached.await.unwrap();
    let rotated = kms.rotate(&a, &alias).await.unwrap();
    let new = rotated.active().unwrap().kid.clone();
    assert_ne!(new, old);
    release.send(()).unwrap();
    // The straddling sign began before the rotation: either version is right for it.
    let signature = straddling.await.unwrap().unwrap();
    assert!(signature.kid == old || signature.kid == new);

    // Every later operation sees the rotation at once, not after the cache TTL.
    assert_eq!(kms.sign(&a, &alias, b"m").await.unwrap().kid, new);
    let info = kms.key(&a, &KeyRef::Alias(alias.clone())).await.unwrap();
    assert_eq!(info.active().unwrap().kid, new);
    assert_eq!(info.versions.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_straddles_a_rotation_is_not_cached_on_sqlite() {
    a_load_that_straddles_a_rotation_is_not_cached(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_straddles_a_rotation_is_not_cached_on_postgres() {
    a_load_that_straddles_a_rotation_is_not_cached(Backend::Postgres).await;
}

/// The same for a destroyed alias: once deleted, it does not sign again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_straddles_a_deletion_is_not_cached() {
    let clock = Arc::new(edk_core::FixedClock::at_unix(1_700_000_000));
    let (tenancy, _dir, _db) = tenancy(Backend::Sqlite, clock.clone()).await;
    let store = Arc::new(PausingStore {
        inner: for_tenancy(&tenancy),
        pause: Mutex::new(None),
    });
    let kms = LocalKms::builder(tenancy.clone(), vec![software("software")])
        .clock(clock)
        .store(store.clone())
        .build()
        .unwrap();
    let a = caller(&tenancy, "tenant-a", "alice").await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    kms.create_key(
        &a,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    let (reached, release) = store.arm();
    let straddling = tokio::spawn({
        let (kms, a, alias) = (kms.clone(), a.clone(), alias.clone());
        async move { kms.sign(&a, &alias, b"m").await }
    });
    reached.await.unwrap();
    kms.delete_key(&a, &KeyRef::Alias(alias.clone()))
        .await
        .unwrap();
    release.send(()).unwrap();
    let _ = straddling.await.unwrap();
    let err = kms.sign(&a, &alias, b"m").await.unwrap_err();
    assert!(
        matches!(err, edk_kms::Error::AliasNotFound { .. }),
        "{err:?}"
    );
}
