//! [`LocalKms`]: the in-process [`Kms`] over key providers, with aliases in the tenant's
//! database (see [`crate::store`]) and an in-process cache of resolved signers.

mod cache;
mod crypto;
mod providers;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{
    Algorithm, Header, JoseError, Jwk, JwkSet, Jws, KeyQuery, KeyResolver, SignError, Signer,
    VerifyPolicy, VerifyingKey, jws,
};
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind, Kid, SystemClock, TenantId};
use edk_tenancy::{Event, Tenancy, TenantDirectory as _};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zeroize::Zeroizing;

use self::cache::{Cache, Entry};
use self::providers::Registry;
use crate::Error;
use crate::audit::{
    AuditCheckpoint, AuditConfig, AuditEvent, AuditLog, AuditReport, AuditTrail, CheckpointClaims,
    Outcome,
};
use crate::kms::{
    Caller, KeyAlias, KeyInfo, KeyRef, KeyState, KeyVersion, Kms, NewKey, RotationPolicy,
    RotationReason, RotationRecord, Signature, WrappedKey,
};
use crate::provider::{
    KeyProvider, KeyRequirement, KeySpec, KeyStorage, KeyUsage, ProviderId, ProviderKey,
    select_provider,
};
use crate::registry::{ProviderFactory, ProviderSet, RegistrationStore};
use crate::store::{self, AliasRecord, KeyReferenceStore, NewVersion, RotationMeta, VersionRecord};

/// The event topic announcing that a tenant's alias changed (rotation, deletion, creation);
/// the payload is `{"tenant": "<uuid>", "alias": "service.purpose"}`.
pub const KEY_CHANGED_TOPIC: &str = "kms.key_changed";

/// The actor recorded for work the KMS does on its own (default aliases, scheduled rotation).
pub const SYSTEM_ACTOR: &str = "edk-kms";

/// An alias every tenant gets: provisioned when the tenant is (on [`Event::TenantProvisioned`])
/// and on first need when it is missing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DefaultAlias {
    /// The alias.
    pub alias: KeyAlias,
    /// The kind of key.
    pub spec: KeySpec,
    /// The provider; `None` picks the best configured one for `spec`.
    pub provider: Option<ProviderId>,
    /// The rotation policy.
    pub rotation: RotationPolicy,
}

impl DefaultAlias {
    /// A default alias of kind `spec` in the best provider, rotated by hand.
    #[must_use]
    pub fn new(alias: KeyAlias, spec: KeySpec) -> Self {
        Self {
            alias,
            spec,
            provider: None,
            rotation: RotationPolicy::default(),
        }
    }

    /// Made in `provider`.
    #[must_use]
    pub fn in_provider(mut self, provider: ProviderId) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Rotated by `rotation`.
    #[must_use]
    pub const fn with_rotation(mut self, rotation: RotationPolicy) -> Self {
        self.rotation = rotation;
        self
    }
}

/// Builds a [`LocalKms`].
#[derive(Debug)]
pub struct LocalKmsBuilder {
    tenancy: Tenancy,
    providers: Vec<Arc<dyn KeyProvider>>,
    clock: Arc<dyn Clock>,
    defaults: Vec<DefaultAlias>,
    audit: AuditConfig,
    cache_ttl: Duration,
    store: Option<Arc<dyn KeyReferenceStore>>,
    factory: Option<Arc<dyn ProviderFactory>>,
}

impl LocalKmsBuilder {
    /// The clock (the system clock by default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The aliases every tenant gets.
    #[must_use]
    pub fn default_aliases(mut self, defaults: Vec<DefaultAlias>) -> Self {
        self.defaults = defaults;
        self
    }

    /// The audit log's configuration.
    #[must_use]
    pub fn audit(mut self, audit: AuditConfig) -> Self {
        self.audit = audit;
        self
    }

    /// How long a resolved alias is trusted without a change event (30 s by default).
    #[must_use]
    pub const fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Another key store than the tenancy backend's own.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn KeyReferenceStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Lets operators register providers at run time ([`LocalKms::register_provider`]), built
    /// by `factory`, and tenants bind aliases to providers; needs edk-kms's
    /// [`platform_migrations`](crate::platform_migrations) in the tenancy.
    #[must_use]
    pub fn provider_factory(mut self, factory: Arc<dyn ProviderFactory>) -> Self {
        self.factory = Some(factory);
        self
    }

    /// Checks the configuration and builds the KMS.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for duplicate provider ids, a default alias named twice or one
    /// whose provider is not configured or cannot hold its key.
    pub fn build(self) -> Result<LocalKms, Error> {
        let mut seen = std::collections::HashSet::new();
        for provider in &self.providers {
            if !seen.insert(provider.id().clone()) {
                return Err(Error::InvalidConfig {
                    field: "providers[].id",
                    reason: "is not unique",
                });
            }
        }
        let mut aliases = std::collections::HashSet::new();
        for default in &self.defaults {
            if !aliases.insert(default.alias.clone()) {
                return Err(Error::InvalidConfig {
                    field: "default_aliases[].alias",
                    reason: "is not unique",
                });
            }
            pick_provider(
                &self.providers,
                default.provider.as_ref(),
                default.spec.usage,
            )
            .map_err(|_| Error::InvalidConfig {
                field: "default_aliases[].provider",
                reason: "names no configured provider that can hold the key",
            })?;
        }
        self.audit.validate()?;
        let store = self
            .store
            .unwrap_or_else(|| store::for_tenancy(&self.tenancy));
        let audit = AuditLog::new(&self.tenancy, self.audit, Arc::clone(&self.clock));
        let registry = self.factory.map(|factory| Registry {
            store: RegistrationStore::new(self.tenancy.platform_pool().clone()),
            factory,
        });
        Ok(LocalKms {
            inner: Arc::new(Inner {
                tenancy: self.tenancy,
                store,
                providers: ProviderSet::new(self.providers),
                registry,
                clock: self.clock,
                defaults: self.defaults,
                cache: Cache::new(self.cache_ttl),
                audit,
            }),
        })
    }
}

/// The in-process KMS: key aliases in the tenant's database, key material in the providers,
/// resolved signers cached in process. Cheap to clone.
///
/// Call [`LocalKms::start`] to follow other replicas' changes and provision default aliases
/// for new tenants, and [`LocalKms::shutdown`] (or the task's shutdown) to write the last
/// audit records.
#[derive(Clone)]
pub struct LocalKms {
    inner: Arc<Inner>,
}

struct Inner {
    tenancy: Tenancy,
    store: Arc<dyn KeyReferenceStore>,
    providers: ProviderSet,
    registry: Option<Registry>,
    clock: Arc<dyn Clock>,
    defaults: Vec<DefaultAlias>,
    cache: Cache,
    audit: AuditLog,
}

impl fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKms")
            .field("providers", &self.inner.providers)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKms").finish_non_exhaustive()
    }
}

/// The background work of a [`LocalKms`]: following change events, provisioning default
/// aliases of new tenants and writing audit records. Stops on [`KmsTask::shutdown`], when
/// the token it was started with fires, or when dropped.
#[derive(Debug)]
pub struct KmsTask {
    cancel: CancellationToken,
    handle: Option<JoinHandle<()>>,
    kms: LocalKms,
}

impl KmsTask {
    /// Stops the work, waits for it and writes the audit records still buffered.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(handle) = self.handle.take()
            && let Err(err) = handle.await
        {
            tracing::warn!(error = %err, "kms background task ended abnormally");
        }
        self.kms.shutdown().await;
    }
}

impl Drop for KmsTask {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl LocalKms {
    /// A builder over `tenancy`'s databases and `providers` (in order of preference).
    #[must_use]
    pub fn builder(tenancy: Tenancy, providers: Vec<Arc<dyn KeyProvider>>) -> LocalKmsBuilder {
        LocalKmsBuilder {
            tenancy,
            providers,
            clock: Arc::new(SystemClock),
            defaults: Vec::new(),
            audit: AuditConfig::default(),
            cache_ttl: Duration::from_secs(30),
            store: None,
            factory: None,
        }
    }

    /// The providers now: the configured ones, then those registered at run time.
    #[must_use]
    pub fn providers(&self) -> Vec<Arc<dyn KeyProvider>> {
        self.inner.providers.snapshot().to_vec()
    }

    /// The shared, live set of providers (it follows run-time registrations).
    #[must_use]
    pub fn provider_set(&self) -> &ProviderSet {
        &self.inner.providers
    }

    /// Starts the background work: invalidating cached aliases on other replicas' change
    /// events, provisioning default aliases on [`Event::TenantProvisioned`], and flushing the
    /// audit buffer. Scheduled rotation and audit checkpoints are not part of it: they are
    /// [`jobs`](crate::jobs) for the tenancy scheduler, which runs each on one replica.
    #[must_use]
    pub fn start(&self, cancel: &CancellationToken) -> KmsTask {
        let cancel = cancel.child_token();
        let events = self.inner.tenancy.events().subscribe();
        let this = self.clone();
        let token = cancel.clone();
        let handle = tokio::spawn(async move { this.run(token, events).await });
        KmsTask {
            cancel,
            handle: Some(handle),
            kms: self.clone(),
        }
    }

    /// Writes the buffered audit records. Call on a clean shutdown (a [`KmsTask`] does).
    pub async fn shutdown(&self) {
        if let Err(err) = self.inner.audit.flush().await {
            tracing::error!(error = %ErrorChain(&err), "writing the last audit records failed");
        }
    }

    /// Creates `alias` from a key that already exists in `provider`, named by the provider's
    /// own `reference` (a CSC credential id): the way keys of providers that do not create
    /// keys ([`Capabilities::key_creation`](crate::provider::Capabilities::key_creation)) come
    /// to an alias. Audited as `register_provider_key`. Such an alias rotates only if its
    /// provider creates keys.
    ///
    /// # Errors
    /// As [`Kms::create_key`]; [`Error::UnknownProvider`] for a provider not configured, and
    /// what [`KeyProvider::register`] answers (not found for a reference the tenant may not
    /// use, unsupported for a provider that registers nothing or a key that cannot serve
    /// `spec`).
    pub async fn register_provider_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        spec: &KeySpec,
        provider: &ProviderId,
        reference: &str,
    ) -> Result<KeyInfo, Error> {
        let result = async {
            caller.check_reserved(alias)?;
            let chosen = self.inner.provider(provider)?;
            let key = chosen
                .register(&caller.tenant().id(), spec, reference)
                .await?;
            self.inner
                .insert_new(
                    caller,
                    alias,
                    spec.usage,
                    &chosen,
                    key,
                    RotationPolicy::default(),
                )
                .await
        }
        .await;
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.inner
            .audited(
                caller,
                "register_provider_key",
                Some(alias),
                kid.as_ref(),
                result,
            )
            .await
            .map(|r| r.info())
    }

    /// Provisions the configured default aliases that `caller`'s tenant lacks.
    ///
    /// # Errors
    /// The first failure (an alias created meanwhile by someone else is not one).
    pub async fn provision_defaults(&self, caller: &Caller) -> Result<Vec<KeyAlias>, Error> {
        let mut created = Vec::new();
        for default in &self.inner.defaults {
            match self
                .inner
                .store
                .alias(caller.tenant(), &default.alias)
                .await?
            {
                Some(_) => {}
                None => match self.inner.create_default(caller, default).await {
                    Ok(_) => created.push(default.alias.clone()),
                    Err(Error::AliasExists { .. }) => {}
                    Err(err) => return Err(err),
                },
            }
        }
        Ok(created)
    }

    /// Rotates every alias of `caller`'s tenant whose policy says its active version is due,
    /// by the injected clock, and stages the next version as pre-active for aliases whose
    /// policy asks for it and whose rotation is that close. A rotation activates the staged
    /// version when there is one. Rotations are audited as `rotate`, staging as
    /// `stage_rotation`. Returns the aliases rotated.
    ///
    /// # Errors
    /// The first failure.
    pub async fn rotate_due(&self, caller: &Caller) -> Result<Vec<KeyAlias>, Error> {
        let now = self.inner.now();
        let mut rotated = Vec::new();
        for record in self.inner.store.aliases(caller.tenant()).await? {
            let Some(period) = record.rotation.period_secs else {
                continue;
            };
            if record.external {
                continue;
            }
            let activated = record.active().and_then(|v| v.version.activated_at);
            let due = activated.is_none_or(|at| store::overlap_end(at, period) <= now);
            if due {
                let result = self
                    .inner
                    .rotate(caller, &record.alias, RotationReason::Scheduled)
                    .await;
                let kid = result
                    .as_ref()
                    .ok()
                    .and_then(|r| r.active())
                    .map(|v| v.version.kid.clone());
                self.inner
                    .audited(caller, "rotate", Some(&record.alias), kid.as_ref(), result)
                    .await?;
                rotated.push(record.alias);
                continue;
            }
            let pre_active = record.rotation.pre_active_secs;
            let staged = record.staged().is_some();
            let stage_now = pre_active > 0
                && !staged
                && activated.is_some_and(|at| {
                    store::overlap_end(at, period.saturating_sub(pre_active)) <= now
                });
            if stage_now {
                let result = self.inner.stage(caller, &record.alias).await;
                let kid = result
                    .as_ref()
                    .ok()
                    .and_then(|record| record.staged().map(|v| v.version.kid.clone()));
                self.inner
                    .audited(
                        caller,
                        "stage_rotation",
                        Some(&record.alias),
                        kid.as_ref(),
                        result,
                    )
                    .await?;
            }
        }
        Ok(rotated)
    }

    /// The audit records of `caller`'s tenant after sequence number `after`, at most `limit`,
    /// oldest first. Buffered records are written first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.inner.audit.events(caller.tenant(), after, limit).await
    }

    /// Signs a checkpoint of the head of `caller`'s tenant's audit chain with its
    /// `audit.audit-checkpoint` key (created on first need). `None` when the chain is empty
    /// or already checkpointed at its head.
    ///
    /// # Errors
    /// When the key cannot sign or the database fails.
    pub async fn checkpoint(&self, caller: &Caller) -> Result<Option<AuditCheckpoint>, Error> {
        let Some((seq, hash)) = self.inner.audit.checkpoint_head(caller.tenant()).await? else {
            return Ok(None);
        };
        let alias = checkpoint_alias()?;
        let entry = match self.inner.entry(caller, &alias).await {
            Ok(entry) => entry,
            Err(Error::AliasNotFound { .. }) => {
                let request = NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256));
                let created = self.inner.create(caller, &request).await;
                let kid = created
                    .as_ref()
                    .ok()
                    .and_then(|r| r.active())
                    .map(|v| v.version.kid.clone());
                match self
                    .inner
                    .audited(caller, "create_key", Some(&alias), kid.as_ref(), created)
                    .await
                {
                    Ok(_) | Err(Error::AliasExists { .. }) => {}
                    Err(err) => return Err(err),
                }
                self.inner.entry(caller, &alias).await?
            }
            Err(err) => return Err(err),
        };
        let signer = self.inner.active_signer(caller, &entry).await?;
        let at = self.inner.now();
        let claims = CheckpointClaims {
            tenant: caller.tenant().id(),
            seq,
            hash: hash.clone(),
            at: at.timestamp(),
        };
        let payload = serde_json::to_vec(&claims).map_err(|err| Error::Crypto(Box::new(err)))?;
        let mut header = Header::new(signer.algorithm()).with_typ(CHECKPOINT_TYP);
        if let Some(kid) = signer.kid() {
            header = header.with_kid(kid.as_str());
        }
        let jws = jws::sign(header, &payload, &*signer)
            .await
            .map_err(|err| Error::Crypto(Box::new(err)))?;
        let checkpoint = AuditCheckpoint { seq, hash, at, jws };
        self.inner
            .audit
            .put_checkpoint(caller.tenant(), &checkpoint)
            .await?;
        Ok(Some(checkpoint))
    }

    /// Checks `caller`'s tenant's audit chain: every record's hash and link, the head, and
    /// every checkpoint's signature and hash. The report names the first record that does
    /// not fit.
    ///
    /// # Errors
    /// When the database fails (a broken chain is a report, not an error).
    pub async fn verify_audit(&self, caller: &Caller) -> Result<AuditReport, Error> {
        let mut checkpoints = Vec::new();
        for checkpoint in self.inner.audit.checkpoints(caller.tenant()).await? {
            let signed = self.inner.checkpoint_verifies(caller, &checkpoint).await?;
            checkpoints.push((checkpoint, signed));
        }
        self.inner.audit.verify(caller.tenant(), &checkpoints).await
    }

    /// How often the audit chains are to be checkpointed (the audit configuration's
    /// `checkpoint_interval`), the default period of
    /// [`AuditCheckpointJob`](crate::jobs::AuditCheckpointJob).
    pub(crate) fn checkpoint_interval(&self) -> Duration {
        self.inner.audit.checkpoint_interval()
    }

    async fn run(self, cancel: CancellationToken, mut events: broadcast::Receiver<Event>) {
        let mut flush = tokio::time::interval(self.inner.audit.flush_interval());
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = flush.tick() => {
                    if let Err(err) = self.inner.audit.flush().await {
                        tracing::warn!(error = %ErrorChain(&err), "writing audit records failed");
                    }
                }
                () = self.inner.audit.full() => {
                    if let Err(err) = self.inner.audit.flush().await {
                        tracing::warn!(error = %ErrorChain(&err), "writing audit records failed");
                    }
                }
                received = events.recv() => match received {
                    Ok(event) => self.on_event(event).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.inner.cache.clear(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    async fn on_event(&self, event: Event) {
        match event {
            Event::Custom { topic, payload } if topic == KEY_CHANGED_TOPIC => {
                let tenant = payload
                    .get("tenant")
                    .and_then(|t| serde_json::from_value::<TenantId>(t.clone()).ok());
                let alias = payload
                    .get("alias")
                    .and_then(|a| a.as_str())
                    .and_then(|a| a.parse::<KeyAlias>().ok());
                match (tenant, alias) {
                    (Some(tenant), Some(alias)) => self.inner.cache.invalidate(tenant, &alias),
                    (Some(tenant), None) => self.inner.cache.invalidate_tenant(tenant),
                    _ => self.inner.cache.clear(),
                }
            }
            Event::Custom { topic, payload }
                if topic == crate::registry::PROVIDER_CHANGED_TOPIC =>
            {
                if let Some(id) = payload.get("id").and_then(|id| id.as_str()) {
                    self.reload_provider(id).await;
                }
            }
            Event::Resync => {
                self.inner.cache.clear();
                self.load_registered_providers().await;
            }
            Event::TenantPurged { tenant } => {
                self.inner.cache.invalidate_tenant(tenant);
                self.forget_tenant(tenant).await;
            }
            Event::TenantStatusChanged { tenant, .. } => {
                self.inner.cache.invalidate_tenant(tenant);
            }
            Event::TenantProvisioned { tenant, .. } => {
                if self.inner.defaults.is_empty() {
                    return;
                }
                let context = match self.inner.tenancy.context(tenant).await {
                    Ok(context) => context,
                    Err(err) => {
                        tracing::warn!(%tenant, error = %ErrorChain(&err), "no context for a new tenant");
                        return;
                    }
                };
                let caller = Caller::new(context, SYSTEM_ACTOR);
                if let Err(err) = self.provision_defaults(&caller).await {
                    tracing::warn!(%tenant, error = %ErrorChain(&err), "provisioning default key aliases failed");
                }
            }
            _ => {}
        }
    }
}

/// The `typ` of audit checkpoint JWSs.
pub const CHECKPOINT_TYP: &str = "kms-audit-checkpoint+jwt";

fn checkpoint_alias() -> Result<KeyAlias, Error> {
    Ok(KeyAlias::new(
        crate::kms::service::AUDIT,
        crate::kms::purpose::AUDIT_CHECKPOINT,
    )?)
}

impl Inner {
    /// Whether a checkpoint's JWS verifies with the tenant's checkpoint key that signed it
    /// (any version, even destroyed: its public key stays) and signs what the row says.
    async fn checkpoint_verifies(
        &self,
        caller: &Caller,
        checkpoint: &AuditCheckpoint,
    ) -> Result<bool, Error> {
        let Ok(parsed) = Jws::parse(&checkpoint.jws, &edk_core::Limits::default()) else {
            return Ok(false);
        };
        let Some(kid) = parsed
            .header()
            .kid
            .as_deref()
            .and_then(|k| Kid::new(k).ok())
        else {
            return Ok(false);
        };
        let record = match self.store.alias_by_kid(caller.tenant(), &kid).await? {
            Some(record) if record.alias == checkpoint_alias()? => record,
            _ => return Ok(false),
        };
        let Some(version) = record.version_by_kid(&kid) else {
            return Ok(false);
        };
        let Ok(key) = VerifyingKey::from_jwk(&version.version.public_jwk) else {
            return Ok(false);
        };
        let policy = VerifyPolicy::default().with_typ(CHECKPOINT_TYP);
        let Ok(verified) = parsed.verify(&key, &policy) else {
            return Ok(false);
        };
        let Ok(claims) = serde_json::from_slice::<CheckpointClaims>(verified.payload()) else {
            return Ok(false);
        };
        Ok(claims.tenant == caller.tenant().id()
            && claims.seq == checkpoint.seq
            && claims.hash == checkpoint.hash)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().into()
    }

    fn provider(&self, id: &ProviderId) -> Result<Arc<dyn KeyProvider>, Error> {
        self.providers
            .get(id)
            .ok_or_else(|| Error::UnknownProvider {
                provider: id.clone(),
            })
    }

    fn default_for(&self, alias: &KeyAlias) -> Option<&DefaultAlias> {
        self.defaults.iter().find(|d| d.alias == *alias)
    }

    /// The cached entry of `alias`, loading it (or provisioning a default alias) on a miss.
    async fn entry(&self, caller: &Caller, alias: &KeyAlias) -> Result<Arc<Entry>, Error> {
        let tenant = caller.tenant().id();
        let now = self.clock.now();
        if let Some(entry) = self.cache.get(tenant, alias, now) {
            return Ok(entry);
        }
        self.load(caller, alias, now).await
    }

    async fn load(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        now: SystemTime,
    ) -> Result<Arc<Entry>, Error> {
        let tenant = caller.tenant().id();
        let generation = self.cache.generation();
        let record = match self.store.alias(caller.tenant(), alias).await? {
            Some(record) => record,
            None => match self.default_for(alias) {
                Some(default) => match self.create_default(caller, default).await {
                    Ok(record) => record,
                    Err(Error::AliasExists { .. }) => self
                        .store
                        .alias(caller.tenant(), alias)
                        .await?
                        .ok_or_else(|| Error::AliasNotFound {
                            alias: alias.clone(),
                        })?,
                    Err(err) => return Err(err),
                },
                None => {
                    return Err(Error::AliasNotFound {
                        alias: alias.clone(),
                    });
                }
            },
        };
        Ok(self.cache.put(tenant, Entry::new(record, now), generation))
    }

    /// The entry holding `kid`.
    async fn entry_by_kid(&self, caller: &Caller, kid: &Kid) -> Result<Arc<Entry>, Error> {
        let tenant = caller.tenant().id();
        let now = self.clock.now();
        if let Some(alias) = self.cache.alias_of(tenant, kid)
            && let Some(entry) = self.cache.get(tenant, &alias, now)
            && entry.record.version_by_kid(kid).is_some()
        {
            return Ok(entry);
        }
        let generation = self.cache.generation();
        let record = self
            .store
            .alias_by_kid(caller.tenant(), kid)
            .await?
            .ok_or_else(|| Error::UnknownKid { kid: kid.clone() })?;
        Ok(self.cache.put(tenant, Entry::new(record, now), generation))
    }

    async fn create_default(
        &self,
        caller: &Caller,
        default: &DefaultAlias,
    ) -> Result<AliasRecord, Error> {
        let request = NewKey {
            alias: default.alias.clone(),
            spec: default.spec,
            provider: default.provider.clone(),
            rotation: default.rotation,
        };
        let result = self.create(caller, &request).await;
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.audited(
            caller,
            "create_key",
            Some(&default.alias),
            kid.as_ref(),
            result,
        )
        .await
    }

    async fn create(&self, caller: &Caller, request: &NewKey) -> Result<AliasRecord, Error> {
        let bound = match (&request.provider, &self.registry) {
            (None, Some(registry)) => registry
                .store
                .binding(caller.tenant().id(), &request.alias)
                .await?
                .map(|binding| binding.provider),
            _ => None,
        };
        let providers = self.providers.snapshot();
        let configured = self.providers.configured();
        let provider = pick_provider(
            if request.provider.is_some() || bound.is_some() {
                &providers
            } else {
                &configured
            },
            request.provider.as_ref().or(bound.as_ref()),
            request.spec.usage,
        )?;
        let key = provider
            .generate(&caller.tenant().id(), &request.spec)
            .await?;
        self.insert_new(
            caller,
            &request.alias,
            request.spec.usage,
            &provider,
            key,
            request.rotation,
        )
        .await
    }

    async fn insert_new(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        usage: KeyUsage,
        provider: &Arc<dyn KeyProvider>,
        key: ProviderKey,
        rotation: RotationPolicy,
    ) -> Result<AliasRecord, Error> {
        let now = self.now();
        let (handle, public_jwk) = key.into_parts();
        let record = AliasRecord {
            id: Uuid::now_v7(),
            alias: alias.clone(),
            usage,
            provider: Some(provider.id().clone()),
            external: false,
            rotation,
            last_version: 1,
            created_at: now,
            versions: vec![VersionRecord {
                version: KeyVersion {
                    version: 1,
                    kid: handle.kid().clone(),
                    provider: Some(provider.id().clone()),
                    public_jwk: with_use(public_jwk, usage),
                    state: KeyState::Active,
                    created_at: now,
                    activated_at: Some(now),
                    retired_at: None,
                    verify_until: None,
                    destroyed_at: None,
                },
                handle: Some(handle.clone()),
            }],
        };
        if let Err(err) = self.store.create(caller.tenant(), &record).await {
            discard(provider, caller.tenant().id(), &handle).await;
            return Err(err.into());
        }
        self.changed(caller.tenant().id(), alias).await;
        Ok(record)
    }

    async fn rotate(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        reason: RotationReason,
    ) -> Result<AliasRecord, Error> {
        let current = self.generating_alias(caller, alias).await?;
        let meta = RotationMeta {
            reason,
            actor: caller.actor().to_owned(),
            at: self.now(),
        };
        if current.staged().is_some() {
            match self.store.rotate(caller.tenant(), alias, None, &meta).await {
                Ok(updated) => {
                    self.changed(caller.tenant().id(), alias).await;
                    return Ok(updated);
                }
                // Another rotation activated it first: this one generates a key.
                Err(store::StoreError::NothingStaged) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let (provider, new) = self.generate_version(caller, &current).await?;
        let updated = match self
            .store
            .rotate(caller.tenant(), alias, Some(&new), &meta)
            .await
        {
            Ok(updated) => updated,
            Err(err) => {
                discard(&provider, caller.tenant().id(), &new.handle).await;
                return Err(err.into());
            }
        };
        if updated.active().map(|v| &v.version.kid) != Some(new.handle.kid()) {
            // A version staged meanwhile was activated instead.
            discard(&provider, caller.tenant().id(), &new.handle).await;
        }
        self.changed(caller.tenant().id(), alias).await;
        Ok(updated)
    }

    /// Stages the alias's next version as pre-active, unless one is staged already.
    async fn stage(&self, caller: &Caller, alias: &KeyAlias) -> Result<AliasRecord, Error> {
        let current = self.generating_alias(caller, alias).await?;
        if current.staged().is_some() {
            return Ok(current);
        }
        let (provider, new) = self.generate_version(caller, &current).await?;
        let staged = match self
            .store
            .stage(caller.tenant(), alias, &new, self.now())
            .await
        {
            Ok(staged) => staged,
            Err(err) => {
                discard(&provider, caller.tenant().id(), &new.handle).await;
                return match err {
                    store::StoreError::AlreadyStaged => self
                        .store
                        .alias(caller.tenant(), alias)
                        .await?
                        .ok_or_else(|| Error::AliasNotFound {
                            alias: alias.clone(),
                        }),
                    err => Err(err.into()),
                };
            }
        };
        self.changed(caller.tenant().id(), alias).await;
        Ok(staged)
    }

    /// The live alias, if its keys are generated by a provider (not registered externally).
    async fn generating_alias(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<AliasRecord, Error> {
        let current = self
            .store
            .alias(caller.tenant(), alias)
            .await?
            .ok_or_else(|| Error::AliasNotFound {
                alias: alias.clone(),
            })?;
        if current.external || current.provider.is_none() {
            return Err(Error::ExternalKey {
                alias: alias.clone(),
            });
        }
        Ok(current)
    }

    /// A fresh key for `current`'s next version, in its provider.
    async fn generate_version(
        &self,
        caller: &Caller,
        current: &AliasRecord,
    ) -> Result<(Arc<dyn KeyProvider>, NewVersion), Error> {
        let provider_id = current
            .provider
            .as_ref()
            .ok_or_else(|| Error::ExternalKey {
                alias: current.alias.clone(),
            })?;
        let provider = self.provider(provider_id)?;
        let spec = KeySpec {
            usage: current.usage,
        };
        let key = provider.generate(&caller.tenant().id(), &spec).await?;
        let (handle, public_jwk) = key.into_parts();
        Ok((
            provider,
            NewVersion {
                handle,
                public_jwk: with_use(public_jwk, current.usage),
            },
        ))
    }

    /// Drops the cached alias here and tells the other replicas.
    async fn changed(&self, tenant: TenantId, alias: &KeyAlias) {
        self.cache.invalidate(tenant, alias);
        let event = Event::Custom {
            topic: KEY_CHANGED_TOPIC.to_owned(),
            payload: serde_json::json!({ "tenant": tenant, "alias": alias.to_string() }),
        };
        if let Err(err) = self.tenancy.events().publish(event).await {
            tracing::warn!(error = %ErrorChain(&err), "announcing a key change failed");
        }
    }

    /// The signer of the active version of `entry`.
    async fn active_signer(
        &self,
        caller: &Caller,
        entry: &Entry,
    ) -> Result<Arc<dyn Signer>, Error> {
        let record = &entry.record;
        if record.external {
            return Err(Error::ExternalKey {
                alias: record.alias.clone(),
            });
        }
        let KeyUsage::Sign(_) = record.usage else {
            return Err(Error::AlgorithmMismatch {
                alg: usage_alg(record.usage),
            });
        };
        let active = active_version(record)?;
        let signer = entry
            .signer
            .get_or_try_init(|| async {
                let handle = active.handle.as_ref().ok_or(Error::KeyNotUsable {
                    state: KeyState::Destroyed,
                })?;
                self.provider(handle.provider())?
                    .signer(&caller.tenant().id(), handle)
                    .await
            })
            .await?;
        Ok(Arc::clone(signer))
    }

    async fn sign_with(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        message: &[u8],
    ) -> Result<Signature, Error> {
        caller.check_reserved(alias)?;
        let entry = self.entry(caller, alias).await?;
        let signer = self.active_signer(caller, &entry).await?;
        let active = active_version(&entry.record)?;
        let bytes = match signer.sign(message).await {
            Ok(bytes) => bytes,
            Err(err) => {
                let provider = active
                    .handle
                    .as_ref()
                    .map(|h| h.provider().clone())
                    .or_else(|| entry.record.provider.clone());
                return Err(match provider {
                    Some(provider) => sign_error(&provider, err),
                    None => Error::ExternalKey {
                        alias: alias.clone(),
                    },
                });
            }
        };
        let kid = active.version.kid.clone();
        Ok(Signature {
            kid,
            alg: signer.algorithm(),
            bytes,
        })
    }

    fn verify_in(
        &self,
        entry: &Entry,
        kid: Option<&Kid>,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<Kid, Error> {
        let now = self.now();
        let candidates: Vec<&VersionRecord> = match kid {
            Some(kid) => {
                let version = entry
                    .record
                    .version_by_kid(kid)
                    .ok_or_else(|| Error::UnknownKid { kid: kid.clone() })?;
                if !verifiable(&version.version, now) {
                    return Err(Error::KeyNotUsable {
                        state: version.version.state,
                    });
                }
                vec![version]
            }
            None => entry
                .record
                .versions
                .iter()
                .filter(|v| verifiable(&v.version, now))
                .collect(),
        };
        let mut fitting = false;
        for version in candidates {
            let Some(key) = entry.verifiers.get(&version.version.kid) else {
                continue;
            };
            if !key.supports(alg) {
                continue;
            }
            fitting = true;
            if key.verify(alg, message, signature).is_ok() {
                return Ok(version.version.kid.clone());
            }
        }
        if fitting {
            Err(Error::InvalidSignature)
        } else {
            Err(Error::AlgorithmMismatch { alg: alg.name() })
        }
    }

    async fn audited<T>(
        &self,
        caller: &Caller,
        operation: &'static str,
        alias: Option<&KeyAlias>,
        kid: Option<&Kid>,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(err) => Outcome::Failure(err.kind()),
        };
        self.audit
            .record(caller, operation, alias, kid, outcome)
            .await;
        result
    }
}

/// The provider for a new key of `usage`: `requested`, or the best configured one.
fn pick_provider(
    providers: &[Arc<dyn KeyProvider>],
    requested: Option<&ProviderId>,
    usage: KeyUsage,
) -> Result<Arc<dyn KeyProvider>, Error> {
    match requested {
        Some(id) => {
            let provider =
                providers
                    .iter()
                    .find(|p| p.id() == id)
                    .ok_or_else(|| Error::UnknownProvider {
                        provider: id.clone(),
                    })?;
            if provider.capabilities().supports_usage(usage) {
                Ok(Arc::clone(provider))
            } else {
                Err(Error::UnsupportedUsage {
                    provider: id.clone(),
                    usage,
                })
            }
        }
        None => select_provider(providers, &KeyRequirement::new(usage))
            .cloned()
            .ok_or(Error::NoProvider { usage }),
    }
}

/// Destroys a key whose alias could not be stored (best effort: it is unreachable anyway).
async fn discard(
    provider: &Arc<dyn KeyProvider>,
    tenant: TenantId,
    handle: &crate::provider::KeyHandle,
) {
    if provider.capabilities().storage() == KeyStorage::InProvider
        && let Err(err) = provider.destroy(&tenant, handle).await
    {
        tracing::warn!(error = %ErrorChain(&err), "destroying an unused key failed");
    }
}

fn with_use(jwk: Jwk, usage: KeyUsage) -> Jwk {
    let mut jwk = jwk;
    jwk.key_use = Some(
        match usage {
            KeyUsage::Sign(_) => "sig",
            KeyUsage::Decrypt(_) => "enc",
        }
        .to_owned(),
    );
    jwk
}

const fn usage_alg(usage: KeyUsage) -> &'static str {
    match usage {
        KeyUsage::Sign(alg) => alg.name(),
        KeyUsage::Decrypt(alg) => alg.name(),
    }
}

/// The active version, or why there is none.
fn active_version(record: &AliasRecord) -> Result<&VersionRecord, Error> {
    record.active().ok_or_else(|| Error::KeyNotUsable {
        state: record
            .versions
            .first()
            .map_or(KeyState::Destroyed, |v| v.version.state),
    })
}

/// Whether a version verifies (and is published) at `now`.
fn verifiable(version: &KeyVersion, now: DateTime<Utc>) -> bool {
    match version.state {
        KeyState::PreActive | KeyState::Active => true,
        KeyState::Retired => version.verify_until.is_some_and(|until| now < until),
        KeyState::Destroyed => false,
    }
}

fn sign_error(provider: &ProviderId, err: SignError) -> Error {
    let provider = provider.clone();
    match err.kind() {
        ErrorKind::Unavailable => Error::Unavailable {
            provider,
            source: Box::new(err),
        },
        _ => Error::Internal {
            provider,
            source: Box::new(err),
        },
    }
}

/// A [`Signer`] for one alias's active version that audits every signature.
#[derive(Debug)]
struct AliasSigner {
    inner: Arc<Inner>,
    caller: Caller,
    alias: KeyAlias,
    signer: Arc<dyn Signer>,
}

#[async_trait]
impl Signer for AliasSigner {
    fn algorithm(&self) -> Algorithm {
        self.signer.algorithm()
    }

    fn kid(&self) -> Option<&Kid> {
        self.signer.kid()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        // A signer handed out before a rotation or deletion stops signing with the old key.
        let current = match self.inner.entry(&self.caller, &self.alias).await {
            Ok(entry) => match active_version(&entry.record) {
                Ok(active) if Some(&active.version.kid) == self.signer.kid() => Ok(()),
                Ok(_) => Err(Error::KeyNotUsable {
                    state: KeyState::Retired,
                }),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let result = match current {
            Ok(()) => self.signer.sign(message).await,
            Err(err) => Err(SignError::new(err.kind(), err)),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(err) => Outcome::Failure(err.kind()),
        };
        self.inner
            .audit
            .record(
                &self.caller,
                "sign",
                Some(&self.alias),
                self.signer.kid(),
                outcome,
            )
            .await;
        result
    }
}

/// A [`KeyResolver`] over one tenant's keys.
#[derive(Debug)]
struct TenantResolver {
    inner: Arc<Inner>,
    caller: Caller,
}

#[async_trait]
impl KeyResolver for TenantResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let Some(kid) = query.kid else {
            return Err(JoseError::KeyNotFound);
        };
        let Ok(kid) = Kid::new(kid) else {
            return Err(JoseError::KeyNotFound);
        };
        let entry = match self.inner.entry_by_kid(&self.caller, &kid).await {
            Ok(entry) => entry,
            Err(err) if err.kind() == ErrorKind::NotFound => return Err(JoseError::KeyNotFound),
            Err(err) => {
                let kind = err.kind();
                return Err(JoseError::KeySource(Box::new(err), kind));
            }
        };
        let now = self.inner.now();
        let usable = entry
            .record
            .version_by_kid(&kid)
            .is_some_and(|v| verifiable(&v.version, now));
        if !usable {
            return Err(JoseError::KeyNotFound);
        }
        entry
            .verifiers
            .get(&kid)
            .cloned()
            .ok_or(JoseError::KeyNotFound)
    }
}

#[async_trait]
impl Kms for LocalKms {
    async fn create_key(&self, caller: &Caller, request: &NewKey) -> Result<KeyInfo, Error> {
        let result = match caller.check_reserved(&request.alias) {
            Ok(()) => self.inner.create(caller, request).await,
            Err(err) => Err(err),
        };
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.inner
            .audited(
                caller,
                "create_key",
                Some(&request.alias),
                kid.as_ref(),
                result,
            )
            .await
            .map(|r| r.info())
    }

    async fn import_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        spec: &KeySpec,
        private_jwk: &Jwk,
        provider: Option<&ProviderId>,
    ) -> Result<KeyInfo, Error> {
        let result = async {
            caller.check_reserved(alias)?;
            let chosen = match provider {
                Some(id) => self.inner.provider(id)?,
                None => select_provider(
                    &self.inner.providers.configured(),
                    &KeyRequirement::new(spec.usage).importable(),
                )
                .cloned()
                .ok_or(Error::NoProvider { usage: spec.usage })?,
            };
            let key = chosen
                .import(&caller.tenant().id(), spec, private_jwk)
                .await?;
            self.inner
                .insert_new(
                    caller,
                    alias,
                    spec.usage,
                    &chosen,
                    key,
                    RotationPolicy::default(),
                )
                .await
        }
        .await;
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.inner
            .audited(caller, "import_key", Some(alias), kid.as_ref(), result)
            .await
            .map(|r| r.info())
    }

    async fn register_public_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        public_jwk: &Jwk,
    ) -> Result<KeyInfo, Error> {
        let result = async {
            caller.check_reserved(alias)?;
            if public_jwk.is_private() {
                return Err(Error::InvalidKey {
                    reason: "an external key must be a public key",
                });
            }
            let usage = crypto::external_usage(public_jwk)?;
            let kid = Kid::new(public_jwk.thumbprint())?;
            let now = self.inner.now();
            let jwk = with_use(
                public_jwk
                    .to_public()
                    .with_kid(kid.as_str())
                    .with_alg(usage_alg(usage)),
                usage,
            );
            let record = AliasRecord {
                id: Uuid::now_v7(),
                alias: alias.clone(),
                usage,
                provider: None,
                external: true,
                rotation: RotationPolicy::default(),
                last_version: 1,
                created_at: now,
                versions: vec![VersionRecord {
                    version: KeyVersion {
                        version: 1,
                        kid,
                        provider: None,
                        public_jwk: jwk,
                        state: KeyState::Active,
                        created_at: now,
                        activated_at: Some(now),
                        retired_at: None,
                        verify_until: None,
                        destroyed_at: None,
                    },
                    handle: None,
                }],
            };
            self.inner.store.create(caller.tenant(), &record).await?;
            self.inner.changed(caller.tenant().id(), alias).await;
            Ok(record)
        }
        .await;
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.inner
            .audited(
                caller,
                "register_public_key",
                Some(alias),
                kid.as_ref(),
                result,
            )
            .await
            .map(|r| r.info())
    }

    async fn key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo, Error> {
        let result = match key {
            KeyRef::Alias(alias) => self.inner.entry(caller, alias).await,
            KeyRef::Kid(kid) => self.inner.entry_by_kid(caller, kid).await,
        };
        result.map(|entry| entry.record.info())
    }

    async fn keys(&self, caller: &Caller) -> Result<Vec<KeyInfo>, Error> {
        let records = self.inner.store.aliases(caller.tenant()).await?;
        Ok(records.iter().map(AliasRecord::info).collect())
    }

    async fn rotate(&self, caller: &Caller, alias: &KeyAlias) -> Result<KeyInfo, Error> {
        let result = match caller.check_reserved(alias) {
            Ok(()) => {
                self.inner
                    .rotate(caller, alias, RotationReason::Manual)
                    .await
            }
            Err(err) => Err(err),
        };
        let kid = result
            .as_ref()
            .ok()
            .and_then(|r| r.active())
            .map(|v| v.version.kid.clone());
        self.inner
            .audited(caller, "rotate", Some(alias), kid.as_ref(), result)
            .await
            .map(|r| r.info())
    }

    async fn rotations(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, Error> {
        Ok(self.inner.store.rotations(caller.tenant(), alias).await?)
    }

    async fn delete_key(&self, caller: &Caller, key: &KeyRef) -> Result<(), Error> {
        let at = self.inner.now();
        let (alias, kid) = match key {
            KeyRef::Alias(alias) => (Some(alias.clone()), None),
            KeyRef::Kid(kid) => match self.inner.store.alias_by_kid(caller.tenant(), kid).await {
                Ok(found) => (found.map(|record| record.alias), Some(kid.clone())),
                Err(err) => {
                    return self
                        .inner
                        .audited(caller, "delete_key", None, Some(kid), Err(err.into()))
                        .await;
                }
            },
        };
        let result = async {
            let Some(alias) = &alias else {
                return Err(match &kid {
                    Some(kid) => Error::UnknownKid { kid: kid.clone() },
                    None => Error::Store(store::StoreError::UnknownKid),
                });
            };
            caller.check_reserved(alias)?;
            let handles = self
                .inner
                .store
                .destroy(caller.tenant(), alias, kid.as_ref(), at)
                .await
                .map_err(|err| match err {
                    store::StoreError::UnknownKid => match &kid {
                        Some(kid) => Error::UnknownKid { kid: kid.clone() },
                        None => Error::Store(store::StoreError::UnknownKid),
                    },
                    store::StoreError::ActiveVersion => Error::KeyNotUsable {
                        state: KeyState::Active,
                    },
                    other => other.into(),
                })?;
            for handle in &handles {
                if let Ok(provider) = self.inner.provider(handle.provider())
                    && let Err(err) = provider.destroy(&caller.tenant().id(), handle).await
                {
                    tracing::warn!(error = %ErrorChain(&err), "destroying key material failed");
                }
            }
            self.inner.changed(caller.tenant().id(), alias).await;
            Ok(())
        }
        .await;
        self.inner
            .audited(caller, "delete_key", alias.as_ref(), kid.as_ref(), result)
            .await
    }

    async fn hold_key(&self, caller: &Caller, alias: &KeyAlias, user: &str) -> Result<(), Error> {
        let result = match caller.check_reserved(alias) {
            Ok(()) => self
                .inner
                .store
                .hold(caller.tenant(), alias, user, self.inner.now())
                .await
                .map_err(Error::from),
            Err(err) => Err(err),
        };
        self.inner
            .audited(caller, "hold_key", Some(alias), None, result)
            .await
    }

    async fn release_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        user: &str,
    ) -> Result<(), Error> {
        let result = match caller.check_reserved(alias) {
            Ok(()) => self
                .inner
                .store
                .release(caller.tenant(), alias, user)
                .await
                .map_err(Error::from),
            Err(err) => Err(err),
        };
        self.inner
            .audited(caller, "release_key", Some(alias), None, result)
            .await
    }

    async fn signer(&self, caller: &Caller, alias: &KeyAlias) -> Result<Arc<dyn Signer>, Error> {
        if let Err(err) = caller.check_reserved(alias) {
            return self
                .inner
                .audited(caller, "sign", Some(alias), None, Err(err))
                .await;
        }
        let entry = self.inner.entry(caller, alias).await?;
        let signer = self.inner.active_signer(caller, &entry).await?;
        Ok(Arc::new(AliasSigner {
            inner: Arc::clone(&self.inner),
            caller: caller.clone(),
            alias: alias.clone(),
            signer,
        }))
    }

    async fn sign(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        message: &[u8],
    ) -> Result<Signature, Error> {
        let result = self.inner.sign_with(caller, alias, message).await;
        let kid = result.as_ref().ok().map(|s| s.kid.clone());
        self.inner
            .audited(caller, "sign", Some(alias), kid.as_ref(), result)
            .await
    }

    async fn verify(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<Kid, Error> {
        let (entry, kid) = match key {
            KeyRef::Alias(alias) => (self.inner.entry(caller, alias).await, None),
            KeyRef::Kid(kid) => (self.inner.entry_by_kid(caller, kid).await, Some(kid)),
        };
        let alias = entry.as_ref().ok().map(|e| e.record.alias.clone());
        let result =
            entry.and_then(|entry| self.inner.verify_in(&entry, kid, alg, message, signature));
        let used = result.as_ref().ok().cloned().or_else(|| kid.cloned());
        self.inner
            .audited(caller, "verify", alias.as_ref(), used.as_ref(), result)
            .await
    }

    async fn encrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        plaintext: &[u8],
    ) -> Result<String, Error> {
        let result = async {
            let (entry, version) = self.inner.encryption_key(caller, key).await?;
            let token = crypto::encrypt(&version.version.public_jwk, alg, enc, plaintext)?;
            Ok((entry.record.alias.clone(), version.version.kid, token))
        }
        .await;
        let (alias, kid) = match &result {
            Ok((alias, kid, _)) => (Some(alias.clone()), Some(kid.clone())),
            Err(_) => key_parts(key),
        };
        self.inner
            .audited(caller, "encrypt", alias.as_ref(), kid.as_ref(), result)
            .await
            .map(|(_, _, token)| token)
    }

    async fn decrypt(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        jwe: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let result = self.inner.decrypt(caller, alias, jwe).await;
        let kid = result.as_ref().ok().map(|(kid, _)| kid.clone());
        self.inner
            .audited(caller, "decrypt", Some(alias), kid.as_ref(), result)
            .await
            .map(|(_, plaintext)| plaintext)
    }

    async fn wrap_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        key_bytes: &[u8],
    ) -> Result<WrappedKey, Error> {
        let result = async {
            let (entry, version) = self.inner.encryption_key(caller, key).await?;
            let wrapped = crypto::wrap(&version.version.public_jwk, alg, enc, key_bytes)?;
            Ok((entry.record.alias.clone(), wrapped))
        }
        .await;
        let (alias, kid) = match &result {
            Ok((alias, wrapped)) => (Some(alias.clone()), Some(wrapped.kid.clone())),
            Err(_) => key_parts(key),
        };
        self.inner
            .audited(caller, "wrap_key", alias.as_ref(), kid.as_ref(), result)
            .await
            .map(|(_, wrapped)| wrapped)
    }

    async fn unwrap_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        enc: ContentEncryption,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let result = self.inner.unwrap(caller, alias, enc, wrapped).await;
        self.inner
            .audited(
                caller,
                "unwrap_key",
                Some(alias),
                Some(&wrapped.kid),
                result,
            )
            .await
    }

    async fn key_agreement(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        peer: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let result = self.inner.agree(caller, alias, peer).await;
        let kid = result.as_ref().ok().map(|(kid, _)| kid.clone());
        self.inner
            .audited(caller, "key_agreement", Some(alias), kid.as_ref(), result)
            .await
            .map(|(_, z)| z)
    }

    async fn public_key(&self, caller: &Caller, key: &KeyRef) -> Result<Jwk, Error> {
        let now = self.inner.now();
        match key {
            KeyRef::Alias(alias) => {
                let entry = self.inner.entry(caller, alias).await?;
                Ok(active_version(&entry.record)?.version.public_jwk.clone())
            }
            KeyRef::Kid(kid) => {
                let entry = self.inner.entry_by_kid(caller, kid).await?;
                let version = entry
                    .record
                    .version_by_kid(kid)
                    .ok_or_else(|| Error::UnknownKid { kid: kid.clone() })?;
                if !verifiable(&version.version, now) {
                    return Err(Error::KeyNotUsable {
                        state: version.version.state,
                    });
                }
                Ok(version.version.public_jwk.clone())
            }
        }
    }

    async fn jwks(&self, caller: &Caller, alias: &KeyAlias) -> Result<JwkSet, Error> {
        let entry = self.inner.entry(caller, alias).await?;
        let now = self.inner.now();
        Ok(JwkSet {
            keys: entry
                .record
                .versions
                .iter()
                .filter(|v| verifiable(&v.version, now))
                .map(|v| v.version.public_jwk.clone())
                .collect(),
        })
    }

    fn resolver(&self, caller: &Caller) -> Arc<dyn KeyResolver> {
        Arc::new(TenantResolver {
            inner: Arc::clone(&self.inner),
            caller: caller.clone(),
        })
    }
}

fn key_parts(key: &KeyRef) -> (Option<KeyAlias>, Option<Kid>) {
    match key {
        KeyRef::Alias(alias) => (Some(alias.clone()), None),
        KeyRef::Kid(kid) => (None, Some(kid.clone())),
    }
}

#[async_trait]
impl AuditTrail for LocalKms {
    async fn events(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.audit_events(caller, after, limit).await
    }

    async fn verify(&self, caller: &Caller) -> Result<AuditReport, Error> {
        self.verify_audit(caller).await
    }

    async fn checkpoint(&self, caller: &Caller) -> Result<Option<AuditCheckpoint>, Error> {
        Self::checkpoint(self, caller).await
    }
}
