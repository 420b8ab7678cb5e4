//! The in-process cache of resolved aliases: the stored record, the verifying keys of its
//! versions and, made on first use, the provider's signer for the active version.
//!
//! Entries are dropped when this process changes the alias, when another replica announces a
//! change (the `kms.key_changed` event) and, as the fallback for a missed event, after the
//! configured TTL measured on the injected clock.
//!
//! A load reads the store without holding a lock, so an invalidation can land between its
//! read and its insert; inserting then would bring back the rotated or destroyed version for
//! up to the TTL. Every invalidation bumps a generation counter under the map's write lock,
//! a load takes the generation before it reads ([`Cache::generation`]), and
//! [`Cache::put`] caches its result only if no invalidation happened in between.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use edk_core::jose::{Signer, VerifyingKey};
use edk_core::{Kid, TenantId};
use tokio::sync::OnceCell;

use crate::kms::KeyAlias;
use crate::store::AliasRecord;

/// A resolved alias.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) record: AliasRecord,
    loaded_at: SystemTime,
    /// The verifying key of every version that has a signing public key, by kid.
    pub(crate) verifiers: HashMap<Kid, Arc<VerifyingKey>>,
    /// The signer of the active version, made on first use.
    pub(crate) signer: OnceCell<Arc<dyn Signer>>,
}

impl Entry {
    pub(crate) fn new(record: AliasRecord, loaded_at: SystemTime) -> Self {
        let verifiers = record
            .versions
            .iter()
            .filter_map(|v| {
                VerifyingKey::from_jwk(&v.version.public_jwk)
                    .ok()
                    .map(|key| (v.version.kid.clone(), Arc::new(key)))
            })
            .collect();
        Self {
            record,
            loaded_at,
            verifiers,
            signer: OnceCell::new(),
        }
    }
}

type AliasKey = (TenantId, KeyAlias);

/// Resolved aliases per tenant, and which alias each known kid belongs to.
#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    aliases: RwLock<HashMap<AliasKey, Arc<Entry>>>,
    kids: RwLock<HashMap<(TenantId, Kid), KeyAlias>>,
    /// Bumped by every invalidation, while the `aliases` write lock is held.
    generation: AtomicU64,
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            aliases: RwLock::new(HashMap::new()),
            kids: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The current generation: take it before reading the store for [`put`](Self::put).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The fresh entry of `alias`, if cached.
    pub(crate) fn get(
        &self,
        tenant: TenantId,
        alias: &KeyAlias,
        now: SystemTime,
    ) -> Option<Arc<Entry>> {
        let aliases = self.aliases.read().unwrap_or_else(PoisonError::into_inner);
        let entry = aliases.get(&(tenant, alias.clone()))?;
        let age = now.duration_since(entry.loaded_at).unwrap_or_default();
        (age < self.ttl).then(|| Arc::clone(entry))
    }

    /// The alias a kid was last seen in.
    pub(crate) fn alias_of(&self, tenant: TenantId, kid: &Kid) -> Option<KeyAlias> {
        self.kids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant, kid.clone()))
            .cloned()
    }

    /// Caches `entry`, read from the store after [`generation`](Self::generation) returned
    /// `generation`, unless something was invalidated since (the entry may predate that
    /// change: it is returned for the one operation that loaded it, and not cached) or a newer
    /// one was cached meanwhile.
    pub(crate) fn put(&self, tenant: TenantId, entry: Entry, generation: u64) -> Arc<Entry> {
        let entry = Arc::new(entry);
        let mut aliases = self.aliases.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return entry;
        }
        {
            let mut kids = self.kids.write().unwrap_or_else(PoisonError::into_inner);
            for version in &entry.record.versions {
                kids.insert(
                    (tenant, version.version.kid.clone()),
                    entry.record.alias.clone(),
                );
            }
        }
        let key = (tenant, entry.record.alias.clone());
        match aliases.get(&key) {
            Some(existing)
                if existing.record.last_version > entry.record.last_version
                    && existing.record.id == entry.record.id =>
            {
                Arc::clone(existing)
            }
            _ => {
                aliases.insert(key, Arc::clone(&entry));
                entry
            }
        }
    }

    /// Forgets `alias` of `tenant`.
    pub(crate) fn invalidate(&self, tenant: TenantId, alias: &KeyAlias) {
        let mut aliases = self.aliases.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        aliases.remove(&(tenant, alias.clone()));
    }

    /// Forgets every alias of `tenant`.
    pub(crate) fn invalidate_tenant(&self, tenant: TenantId) {
        {
            let mut aliases = self.aliases.write().unwrap_or_else(PoisonError::into_inner);
            self.generation.fetch_add(1, Ordering::AcqRel);
            aliases.retain(|(t, _), _| *t != tenant);
        }
        self.kids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(t, _), _| *t != tenant);
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        {
            let mut aliases = self.aliases.write().unwrap_or_else(PoisonError::into_inner);
            self.generation.fetch_add(1, Ordering::AcqRel);
            aliases.clear();
        }
        self.kids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
