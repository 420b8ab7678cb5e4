//! Creating, updating and deactivating a tenant's DIDs (feature `store`): did:web and
//! did:webvh published under the tenant's DID endpoint binding, did:key and did:jwk from a KMS
//! key. Keys live in the KMS under aliases `did.<name>` (did:webvh update key
//! `did.<name>-update`); only public keys are read, signing goes through KMS signers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use edk_core::jose::{Algorithm, Jwk, VerifyingKey};
use edk_core::{Clock, Did, TenantId};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, KeyRef, Kms, NewKey};
use edk_tenancy::{EndpointBinding, TenantDirectory};
use serde_json::{Value, json};

use crate::document::{DidDocument, MethodRef, Relationship, VerificationMethod};
use crate::error::{ErrorCode, PublishError, RegistrarError, StoreError};
use crate::methods::jwk::DidJwk;
use crate::methods::key::DidKey;
use crate::methods::web::DidWeb;
use crate::resolution::ResolveOptions;
use crate::resolver::DidResolver;
use crate::store::{DidStore, StoredDid, StoredMethod, StoredService};
use crate::webvh::{
    self, CreateOptions, DidLog, Multikey, UpdateOptions, WebvhDid, WitnessConfig, WitnessFile,
};

/// The methods a [`Registrar`] creates DIDs of.
pub const REGISTRAR_METHODS: [&str; 4] = ["jwk", "key", "web", "webvh"];

/// A verification method to add: a KMS alias (created when missing) and its relationships.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMethod {
    /// The alias; `None` picks `did.<name>` (then `did.<name>-2`, ...).
    pub alias: Option<KeyAlias>,
    /// The algorithm of a key created for a missing alias.
    pub algorithm: Algorithm,
    /// The verification relationships; empty means `authentication` and `assertionMethod`.
    pub relationships: Vec<Relationship>,
}

impl Default for NewMethod {
    fn default() -> Self {
        Self {
            alias: None,
            algorithm: Algorithm::Es256,
            relationships: Vec::new(),
        }
    }
}

/// What to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateDid {
    /// The method without `did:` (`web`, `webvh`, `key`, `jwk`).
    pub method: String,
    /// Path segments below the tenant's DID binding (did:web, did:webvh); empty publishes at
    /// the binding itself (`/.well-known/did.json` when the binding has no path prefix).
    pub path: Vec<String>,
    /// The stem of the key aliases; derived from the path (or random for did:key/did:jwk)
    /// when absent.
    pub name: Option<String>,
    /// Verification methods; one default method when empty.
    pub methods: Vec<NewMethod>,
    /// Services (did:web, did:webvh).
    pub services: Vec<StoredService>,
    /// The did:webvh `witness` parameter: `threshold` of the listed witnesses must approve
    /// each entry (proofs added with [`Registrar::add_witness_proof`]). did:webvh only.
    pub witness: Option<WitnessConfig>,
}

impl CreateDid {
    /// A request for a DID of `method` with defaults.
    #[must_use]
    pub fn new(method: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            ..Self::default()
        }
    }
}

/// A change to a did:web or did:webvh.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateDid {
    /// New services, replacing all; `None` keeps them.
    pub services: Option<Vec<StoredService>>,
    /// Verification methods to add.
    pub add_methods: Vec<NewMethod>,
    /// Aliases whose verification methods are removed.
    pub remove_methods: Vec<KeyAlias>,
    /// A new did:webvh witness rule: `Some(None)` turns witnesses off, `None` keeps the
    /// rule. Changing or removing a rule applies after the new entry, which the old
    /// witnesses approve (did:webvh §"DID Witnesses"). did:webvh only.
    pub witness: Option<Option<WitnessConfig>>,
}

/// Creates, updates and deactivates tenants' DIDs, keeping them in a [`DidStore`].
#[derive(Debug)]
pub struct Registrar {
    store: Arc<dyn DidStore>,
    kms: Arc<dyn Kms>,
    clock: Arc<dyn Clock>,
    resolver: Option<Arc<dyn DidResolver>>,
    events: Option<Arc<dyn edk_tenancy::EventBus>>,
}

/// The tenancy event topic announcing that a published DID changed; its payload is
/// `{"did": "<did>"}`. Other replicas refresh their resolver's cache entry of that DID.
pub const DID_CHANGED_TOPIC: &str = "did.changed";

impl Registrar {
    /// A registrar over `store` and `kms`, reading time from `clock`.
    #[must_use]
    pub fn new(store: Arc<dyn DidStore>, kms: Arc<dyn Kms>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            kms,
            clock,
            resolver: None,
            events: None,
        }
    }

    /// Announces every change on `events` ([`DID_CHANGED_TOPIC`]), so that other replicas
    /// sharing the tenancy refresh their caches (see [`refresh_on_change`]).
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn edk_tenancy::EventBus>) -> Self {
        self.events = Some(events);
        self
    }

    /// Refreshes `resolver`'s cache entry of a DID after every change, so that this process
    /// answers with the new document at once.
    #[must_use]
    pub fn with_resolver(mut self, resolver: Arc<dyn DidResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn DidStore> {
        &self.store
    }

    /// Creates a DID for `caller`'s tenant.
    ///
    /// # Errors
    /// [`RegistrarError::InvalidRequest`] for a bad request, [`RegistrarError::NoBinding`]
    /// for did:web/did:webvh without a DID binding, a conflict when the location or DID is
    /// taken, KMS and store failures.
    pub async fn create(
        &self,
        caller: &Caller,
        request: CreateDid,
    ) -> Result<StoredDid, RegistrarError> {
        let now = self.now();
        let stored = match request.method.as_str() {
            "web" | "webvh" => self.create_published(caller, request, now).await?,
            "key" | "jwk" => self.create_key_did(caller, request, now).await?,
            other => {
                return Err(RegistrarError::Unsupported {
                    method: short(other),
                    operation: "create",
                });
            }
        };
        // The DID holds every key it uses, so that the KMS refuses to delete them.
        let aliases = aliases_of(&stored);
        self.hold(caller, &stored.did, &aliases).await?;
        if let Err(err) = self.store.insert(caller.tenant(), &stored).await {
            // A did:webvh's DID is new (its SCID); other DIDs that conflict exist already
            // and hold the same keys under the same DID.
            if stored.method == "webvh" {
                self.release(caller, &stored.did, &aliases).await;
            }
            return Err(RegistrarError::Store(err));
        }
        self.refresh(&stored.did).await;
        Ok(stored)
    }

    /// The tenant's DID.
    ///
    /// # Errors
    /// [`RegistrarError::NotFound`] when the tenant holds no such DID.
    pub async fn get(&self, caller: &Caller, did: &str) -> Result<StoredDid, RegistrarError> {
        let not_found = || RegistrarError::NotFound {
            did: did.to_owned(),
        };
        let parsed = Did::new(did).map_err(|_| not_found())?;
        self.store
            .get(caller.tenant(), &parsed)
            .await
            .map_err(RegistrarError::Store)?
            .ok_or_else(not_found)
    }

    /// Every DID of the tenant.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<StoredDid>, RegistrarError> {
        self.store
            .list(caller.tenant())
            .await
            .map_err(RegistrarError::Store)
    }

    /// Changes services and verification methods of a did:web or did:webvh; a did:webvh gets
    /// a new signed log entry. An entry that witnesses must approve is held back
    /// ([`StoredDid::pending`]) and published by [`Registrar::add_witness_proof`] once the
    /// threshold is met, so the published log always resolves.
    ///
    /// # Errors
    /// [`RegistrarError::NotFound`], [`RegistrarError::Deactivated`],
    /// [`RegistrarError::AwaitingWitnesses`] while an entry is held back,
    /// [`RegistrarError::Unsupported`] for did:key/did:jwk, KMS, log and store failures.
    pub async fn update(
        &self,
        caller: &Caller,
        did: &str,
        change: UpdateDid,
    ) -> Result<StoredDid, RegistrarError> {
        let mut stored = self.get(caller, did).await?;
        if !matches!(stored.method.as_str(), "web" | "webvh") {
            return Err(RegistrarError::Unsupported {
                method: stored.method.clone(),
                operation: "update",
            });
        }
        let held = aliases_of(&stored);
        check_changeable(&stored)?;
        if change.witness.is_some() && stored.method != "webvh" {
            return Err(invalid("witnesses are a did:webvh parameter"));
        }
        for alias in &change.remove_methods {
            let before = stored.verification_methods.len();
            stored.verification_methods.retain(|m| &m.alias != alias);
            if stored.verification_methods.len() == before {
                return Err(invalid(format!(
                    "`{alias}` is not a verification method of the DID"
                )));
            }
        }
        let added = self
            .ensure_methods(
                caller,
                &stored.name,
                &stored.verification_methods,
                &change.add_methods,
            )
            .await?;
        stored.verification_methods.extend(added);
        if let Some(services) = change.services {
            check_services(&services)?;
            stored.services = services;
        }
        let now = self.now();
        let document = self
            .document(
                caller,
                stored.did.as_str(),
                &stored.verification_methods,
                &stored.services,
            )
            .await?;
        if stored.method == "webvh" {
            let did = WebvhDid::parse(stored.did.as_str()).map_err(RegistrarError::Webvh)?;
            let document = with_parallel_did_web(document, &did);
            let (log, signer, key) = self.webvh_state(caller, &stored).await?;
            let options = UpdateOptions {
                document: Some(document),
                witness: change.witness,
                ..UpdateOptions::default()
            };
            let entry = webvh::update(&log, options, signer.as_ref(), &key, now)
                .await
                .map_err(RegistrarError::Webvh)?;
            stored.pending.push(entry.to_line());
            publish_witnessed(&mut stored, now)?;
        } else {
            stored.document = document;
        }
        let uses = aliases_of(&stored);
        let added: Vec<KeyAlias> = uses.iter().filter(|a| !held.contains(a)).cloned().collect();
        self.hold(caller, &stored.did, &added).await?;
        self.save(caller, &mut stored, now).await?;
        let removed: Vec<KeyAlias> = held.into_iter().filter(|a| !uses.contains(a)).collect();
        self.release(caller, &stored.did, &removed).await;
        Ok(stored)
    }

    /// Deactivates a did:web (its `did.json` answers 410) or did:webvh (deactivating log
    /// entries, after which the log has no update keys; held back like any other entry while
    /// witnesses must approve them).
    ///
    /// # Errors
    /// As [`Registrar::update`].
    pub async fn deactivate(
        &self,
        caller: &Caller,
        did: &str,
    ) -> Result<StoredDid, RegistrarError> {
        let mut stored = self.get(caller, did).await?;
        if !matches!(stored.method.as_str(), "web" | "webvh") {
            return Err(RegistrarError::Unsupported {
                method: stored.method.clone(),
                operation: "deactivate",
            });
        }
        check_changeable(&stored)?;
        let now = self.now();
        if stored.method == "webvh" {
            let (log, signer, key) = self.webvh_state(caller, &stored).await?;
            let entries = webvh::deactivate(&log, signer.as_ref(), &key, now)
                .await
                .map_err(RegistrarError::Webvh)?;
            stored
                .pending
                .extend(entries.iter().map(webvh::LogEntry::to_line));
            publish_witnessed(&mut stored, now)?;
        } else {
            stored.deactivated = true;
        }
        self.save(caller, &mut stored, now).await?;
        if stored.deactivated {
            // A deactivated DID never changes again: its keys are free.
            self.release(caller, &stored.did, &aliases_of(&stored))
                .await;
        }
        Ok(stored)
    }

    /// Adds a witness's approval of `version_id` of a did:webvh to its `did-witness.json`,
    /// then publishes every held-back entry ([`StoredDid::pending`]) whose witness threshold
    /// is now met, oldest first (did:webvh §"DID Witnesses": the proofs are published before
    /// the entry). The proof must verify (an eddsa-jcs-2022 proof over `{"versionId":
    /// version_id}`) with the key of a witness of the log, for a published or held-back
    /// version. The witness's older proofs are dropped once they are superseded by a
    /// published one; a proof older than one the witness already gave changes nothing. The
    /// change is conditional on the stored revision, like every other.
    ///
    /// # Errors
    /// [`RegistrarError::NotFound`], [`RegistrarError::InvalidRequest`] for a DID that is not
    /// a did:webvh or a refused proof (saying why), [`RegistrarError::Webvh`] when the stored
    /// log or witness file does not verify, store failures (a conflict when another change
    /// came first).
    pub async fn add_witness_proof(
        &self,
        caller: &Caller,
        did: &str,
        version_id: &str,
        proof: Value,
    ) -> Result<StoredDid, RegistrarError> {
        let mut stored = self.get(caller, did).await?;
        if stored.method != "webvh" {
            return Err(invalid("witness proofs are for did:webvh DIDs"));
        }
        let now = self.now();
        let log = DidLog::parse(&stored.log_with_pending_jsonl()).map_err(RegistrarError::Webvh)?;
        webvh::check_witness_proof(&log, version_id, &proof, now).map_err(|err| match err {
            webvh::WebvhError::WitnessProof { .. } => invalid(err.to_string()),
            other => RegistrarError::Webvh(other),
        })?;
        let mut file = match &stored.witness {
            Some(text) => WitnessFile::parse(text).map_err(RegistrarError::Webvh)?,
            None => WitnessFile::default(),
        };
        let versions: Vec<&str> = log
            .entries()
            .iter()
            .map(webvh::LogEntry::version_id)
            .collect();
        if !file.add(version_id, proof, &versions, stored.log.len()) {
            return Ok(stored);
        }
        stored.witness = Some(file.to_json());
        let was_deactivated = stored.deactivated;
        publish_witnessed(&mut stored, now)?;
        self.save(caller, &mut stored, now).await?;
        if stored.deactivated && !was_deactivated {
            self.release(caller, &stored.did, &aliases_of(&stored))
                .await;
        }
        Ok(stored)
    }

    /// Rebuilds, from the KMS, the did:web documents of `caller`'s tenant that list `alias`,
    /// and publishes those that changed: after a rotation the new key is listed (and the
    /// retired one until its overlap ends). Returns the DIDs republished. A did:webvh lists
    /// its keys in signed log entries: [`Registrar::update`] it to publish a rotated key.
    ///
    /// # Errors
    /// KMS and store failures; a DID that another replica republished first is skipped.
    pub async fn republish(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<Vec<Did>, RegistrarError> {
        let mut republished = Vec::new();
        for candidate in self.published_web(caller).await? {
            if !candidate
                .verification_methods
                .iter()
                .any(|m| &m.alias == alias)
            {
                continue;
            }
            if let Some(did) = self.republish_one(caller, &candidate.did).await? {
                republished.push(did);
            }
        }
        Ok(republished)
    }

    /// Rebuilds every did:web document of `caller`'s tenant from the key versions the KMS
    /// lists now, and publishes those that differ from the published document. This catches
    /// the key changes whose `kms.key_changed` event this process never received (a KMS in
    /// another process on SQLite, whose events stay in that process; a restart; a lagging
    /// subscriber) and retired versions whose overlap ended. Returns the DIDs republished.
    ///
    /// # Errors
    /// A store failure listing the DIDs; otherwise the first KMS or store failure of one DID,
    /// returned after every other DID was tried (each failure is logged). A DID that another
    /// replica republished first is skipped.
    pub async fn republish_stale(&self, caller: &Caller) -> Result<Vec<Did>, RegistrarError> {
        let mut republished = Vec::new();
        let mut failure = None;
        for candidate in self.published_web(caller).await? {
            match self.republish_one(caller, &candidate.did).await {
                Ok(Some(did)) => republished.push(did),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(did = %candidate.did, error = %edk_core::ErrorChain(&err), "republishing a did:web failed");
                    failure.get_or_insert(err);
                }
            }
        }
        failure.map_or(Ok(republished), Err)
    }

    /// The tenant's did:web DIDs that are not deactivated.
    async fn published_web(&self, caller: &Caller) -> Result<Vec<StoredDid>, RegistrarError> {
        let mut listed = self
            .store
            .list(caller.tenant())
            .await
            .map_err(RegistrarError::Store)?;
        listed.retain(|candidate| candidate.method == "web" && !candidate.deactivated);
        Ok(listed)
    }

    /// Rebuilds `did`'s document from the KMS and publishes it when it changed; `None` when
    /// it did not, or another replica changed the DID first.
    async fn republish_one(
        &self,
        caller: &Caller,
        did: &Did,
    ) -> Result<Option<Did>, RegistrarError> {
        let mut stored = self.get(caller, did.as_str()).await?;
        if stored.deactivated {
            return Ok(None);
        }
        let document = self
            .document(
                caller,
                stored.did.as_str(),
                &stored.verification_methods,
                &stored.services,
            )
            .await?;
        if document == stored.document {
            return Ok(None);
        }
        stored.document = document;
        match self.save(caller, &mut stored, self.now()).await {
            Ok(()) => Ok(Some(stored.did)),
            Err(RegistrarError::Store(StoreError::Conflict { .. })) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn hold(
        &self,
        caller: &Caller,
        did: &Did,
        aliases: &[KeyAlias],
    ) -> Result<(), RegistrarError> {
        for alias in aliases {
            self.kms
                .hold_key(caller, alias, did.as_str())
                .await
                .map_err(RegistrarError::Kms)?;
        }
        Ok(())
    }

    /// Releases `did`'s holds on `aliases`; a failure is logged (the hold only blocks
    /// deleting the key).
    async fn release(&self, caller: &Caller, did: &Did, aliases: &[KeyAlias]) {
        for alias in aliases {
            if let Err(err) = self.kms.release_key(caller, alias, did.as_str()).await {
                tracing::warn!(did = %did, alias = %alias, error = %edk_core::ErrorChain(&err), "releasing a DID key failed");
            }
        }
    }

    /// Adds a verification method (a KMS alias, created when missing) to a DID.
    ///
    /// # Errors
    /// As [`Registrar::update`].
    pub async fn add_method(
        &self,
        caller: &Caller,
        did: &str,
        method: NewMethod,
    ) -> Result<StoredDid, RegistrarError> {
        self.update(
            caller,
            did,
            UpdateDid {
                add_methods: vec![method],
                ..UpdateDid::default()
            },
        )
        .await
    }

    async fn save(
        &self,
        caller: &Caller,
        stored: &mut StoredDid,
        now: DateTime<Utc>,
    ) -> Result<(), RegistrarError> {
        stored.revision += 1;
        stored.updated_at = now.timestamp().max(stored.updated_at);
        self.store
            .update(caller.tenant(), stored)
            .await
            .map_err(RegistrarError::Store)?;
        self.refresh(&stored.did).await;
        Ok(())
    }

    async fn refresh(&self, did: &Did) {
        if let Some(resolver) = &self.resolver {
            refresh_cached(resolver.as_ref(), did.as_str()).await;
        }
        if let Some(events) = &self.events {
            let event = edk_tenancy::Event::Custom {
                topic: DID_CHANGED_TOPIC.to_owned(),
                payload: serde_json::json!({ "did": did.as_str() }),
            };
            if let Err(err) = events.publish(event).await {
                tracing::warn!(did = %did, error = %edk_core::ErrorChain(&err), "announcing a DID change failed");
            }
        }
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.clock.now())
    }

    async fn create_published(
        &self,
        caller: &Caller,
        request: CreateDid,
        now: DateTime<Utc>,
    ) -> Result<StoredDid, RegistrarError> {
        let binding = caller.tenant().binding().ok_or(RegistrarError::NoBinding)?;
        let segments = segments(binding, &request.path)?;
        let location = segments.join("/");
        let name = match &request.name {
            Some(name) => check_name(name)?,
            None => derived_name(&segments),
        };
        check_services(&request.services)?;
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method.as_str();
        if self
            .store
            .by_location(caller.tenant(), method, &location)
            .await
            .map_err(RegistrarError::Store)?
            .is_some()
        {
            return Err(RegistrarError::Store(StoreError::Conflict {
                reason: "a DID of this method is published at this path",
            }));
        }
        let wanted = if request.methods.is_empty() {
            vec![NewMethod::default()]
        } else {
            request.methods
        };
        let methods = self.ensure_methods(caller, &name, &[], &wanted).await?;
        if method == "web" && request.witness.is_some() {
            return Err(invalid("witnesses are a did:webvh parameter"));
        }
        let mut stored = if method == "web" {
            let did =
                DidWeb::did_for(binding.host(), binding.port(), &refs).map_err(publish_invalid)?;
            let document = self
                .document(caller, did.as_str(), &methods, &request.services)
                .await?;
            StoredDid::new(did, "web", &name, document, now.timestamp())
        } else {
            let domain = match binding.port() {
                Some(port) => format!("{}%3A{port}", binding.host()),
                None => binding.host().to_owned(),
            };
            let template =
                WebvhDid::template(&domain, &refs).map_err(|err| invalid(err.to_string()))?;
            let update_alias = alias(&format!("{name}-update"))?;
            self.ensure_key(caller, &update_alias, Algorithm::EdDsa)
                .await?;
            let (signer, key) = self.update_signer(caller, &update_alias).await?;
            let document = self
                .document(caller, template.as_str(), &methods, &request.services)
                .await?;
            let document = with_parallel_did_web(document, &template);
            let mut options = CreateOptions::new(template, key.clone());
            options.document = Some(document);
            options.witness = request.witness.clone();
            let log = webvh::create(options, signer.as_ref(), &key, now)
                .await
                .map_err(RegistrarError::Webvh)?;
            let first = log.entries().first().ok_or_else(|| invalid("empty log"))?;
            let document = first.state().clone();
            let did = document
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| Did::new(id).ok())
                .ok_or_else(|| invalid("the created log has no DID"))?;
            let mut stored = StoredDid::new(did, "webvh", &name, document, now.timestamp());
            stored.update_key = Some(update_alias);
            stored.pending = log.entries().iter().map(webvh::LogEntry::to_line).collect();
            publish_witnessed(&mut stored, now)?;
            stored
        };
        stored.location = Some(location);
        stored.verification_methods = methods;
        stored.services = request.services;
        Ok(stored)
    }

    async fn create_key_did(
        &self,
        caller: &Caller,
        request: CreateDid,
        now: DateTime<Utc>,
    ) -> Result<StoredDid, RegistrarError> {
        if !request.path.is_empty() || !request.services.is_empty() || request.witness.is_some() {
            return Err(invalid(format!(
                "did:{} has no path, no services and no witnesses",
                request.method
            )));
        }
        if request.methods.len() > 1 {
            return Err(invalid(format!("did:{} has one key", request.method)));
        }
        let name = match &request.name {
            Some(name) => check_name(name)?,
            None => format!("{}-{}", request.method, random_suffix()),
        };
        let wanted = request.methods.into_iter().next().unwrap_or_default();
        let methods = self.ensure_methods(caller, &name, &[], &[wanted]).await?;
        let first = methods.first().ok_or_else(|| invalid("no key"))?;
        let jwk = self
            .kms
            .public_key(caller, &KeyRef::Alias(first.alias.clone()))
            .await
            .map_err(RegistrarError::Kms)?;
        let jwk = bare_public(&jwk)?;
        let (did, document) = if request.method == "key" {
            let did = DidKey::create(&jwk).map_err(publish_invalid)?;
            let document = DidKey::new()
                .document(&did)
                .map_err(|err| invalid(err.to_string()))?;
            (did, document)
        } else {
            let did = DidJwk::create(&jwk).map_err(publish_invalid)?;
            let document = DidJwk
                .document(&did)
                .map_err(|err| invalid(err.to_string()))?;
            (did, document)
        };
        let document = serde_json::to_value(document).map_err(|err| invalid(err.to_string()))?;
        let mut stored = StoredDid::new(did, &request.method, &name, document, now.timestamp());
        stored.verification_methods = methods;
        Ok(stored)
    }

    /// Creates missing aliases for `wanted` and returns their methods, refusing aliases
    /// already used by `existing`.
    async fn ensure_methods(
        &self,
        caller: &Caller,
        name: &str,
        existing: &[StoredMethod],
        wanted: &[NewMethod],
    ) -> Result<Vec<StoredMethod>, RegistrarError> {
        let mut taken: Vec<KeyAlias> = existing.iter().map(|m| m.alias.clone()).collect();
        let mut out = Vec::new();
        for method in wanted {
            let alias = match &method.alias {
                Some(alias) => alias.clone(),
                None => next_alias(name, &taken)?,
            };
            if taken.contains(&alias) {
                return Err(invalid(format!("`{alias}` is listed twice")));
            }
            if alias.service() != "did" {
                return Err(invalid(format!(
                    "`{alias}` is not a DID key alias (`did.<name>`)"
                )));
            }
            self.ensure_key(caller, &alias, method.algorithm).await?;
            let relationships = if method.relationships.is_empty() {
                vec![Relationship::Authentication, Relationship::AssertionMethod]
            } else {
                method.relationships.clone()
            };
            taken.push(alias.clone());
            out.push(StoredMethod::new(alias, relationships));
        }
        Ok(out)
    }

    async fn ensure_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        algorithm: Algorithm,
    ) -> Result<(), RegistrarError> {
        let request = NewKey::new(alias.clone(), KeySpec::signing(algorithm));
        self.kms
            .ensure_key(caller, &request)
            .await
            .map_err(RegistrarError::Kms)
    }

    async fn update_signer(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<(Arc<dyn edk_core::jose::Signer>, Multikey), RegistrarError> {
        let jwk = self
            .kms
            .public_key(caller, &KeyRef::Alias(alias.clone()))
            .await
            .map_err(RegistrarError::Kms)?;
        let key = VerifyingKey::from_jwk(&jwk)
            .ok()
            .and_then(|key| Multikey::from_verifying_key(&key).ok())
            .ok_or_else(|| invalid(format!("`{alias}` is not an Ed25519 key")))?;
        let signer = self
            .kms
            .signer(caller, alias)
            .await
            .map_err(RegistrarError::Kms)?;
        Ok((signer, key))
    }

    async fn webvh_state(
        &self,
        caller: &Caller,
        stored: &StoredDid,
    ) -> Result<(DidLog, Arc<dyn edk_core::jose::Signer>, Multikey), RegistrarError> {
        let alias = stored
            .update_key
            .clone()
            .ok_or_else(|| invalid("the DID has no update key"))?;
        let log = DidLog::parse(&stored.log_jsonl()).map_err(RegistrarError::Webvh)?;
        let (signer, key) = self.update_signer(caller, &alias).await?;
        Ok((log, signer, key))
    }

    /// The document of `did`: one `JsonWebKey` method per verifiable key version of each
    /// alias (`<did>#<kid>`), listed under its relationships, then the services.
    async fn document(
        &self,
        caller: &Caller,
        did: &str,
        methods: &[StoredMethod],
        services: &[StoredService],
    ) -> Result<Value, RegistrarError> {
        let mut document = DidDocument::new(did);
        for method in methods {
            let jwks = self
                .kms
                .jwks(caller, &method.alias)
                .await
                .map_err(RegistrarError::Kms)?;
            for jwk in &jwks.keys {
                let public = bare_public(jwk)?;
                let kid = jwk.kid.clone().unwrap_or_else(|| public.thumbprint());
                let id = format!("{did}#{kid}");
                if document.verification_method(&id).is_none() {
                    let Ok(Value::Object(mut members)) = serde_json::to_value(jwk) else {
                        return Err(invalid("the KMS returned a JWK that does not serialize"));
                    };
                    members.retain(|name, _| !matches!(name.as_str(), "key_ops" | "x5c"));
                    document
                        .verification_method
                        .push(VerificationMethod::json_web_key(
                            id.clone(),
                            did,
                            "JsonWebKey",
                            members,
                        ));
                }
                for relationship in &method.relationships {
                    let entries = document.relationship_mut(*relationship);
                    let reference = MethodRef::Reference(id.clone());
                    if !entries.contains(&reference) {
                        entries.push(reference);
                    }
                }
            }
        }
        let mut value = serde_json::to_value(&document).map_err(|err| invalid(err.to_string()))?;
        if !services.is_empty()
            && let Some(object) = value.as_object_mut()
        {
            let list: Vec<Value> = services
                .iter()
                .map(|service| {
                    json!({
                        "id": format!("{did}#{}", service.id),
                        "type": service.service_type,
                        "serviceEndpoint": service.endpoint,
                    })
                })
                .collect();
            object.insert("service".to_owned(), Value::Array(list));
        }
        Ok(value)
    }
}

/// The KMS aliases a DID uses: its verification methods and its did:webvh update key.
fn aliases_of(stored: &StoredDid) -> Vec<KeyAlias> {
    let mut aliases: Vec<KeyAlias> = stored
        .verification_methods
        .iter()
        .map(|method| method.alias.clone())
        .collect();
    aliases.extend(stored.update_key.clone());
    aliases
}

/// Refuses changes to a deactivated DID or one with an entry awaiting witness proofs.
fn check_changeable(stored: &StoredDid) -> Result<(), RegistrarError> {
    if stored.deactivated {
        return Err(RegistrarError::Deactivated {
            did: stored.did.to_string(),
        });
    }
    if !stored.pending.is_empty() {
        return Err(RegistrarError::AwaitingWitnesses {
            did: stored.did.to_string(),
            version_id: stored.pending_version_ids().pop().unwrap_or_default(),
        });
    }
    Ok(())
}

/// Publishes the held-back entries of a did:webvh whose witnesses approved them, oldest
/// first: they move from `pending` to `log`, the document and the deactivation follow the
/// last published entry, and witness proofs superseded by a published one are dropped. An
/// entry that needs no witnesses is published at once.
fn publish_witnessed(stored: &mut StoredDid, now: DateTime<Utc>) -> Result<(), RegistrarError> {
    if stored.pending.is_empty() {
        return Ok(());
    }
    let log = DidLog::parse(&stored.log_with_pending_jsonl()).map_err(RegistrarError::Webvh)?;
    let mut file = stored
        .witness
        .as_deref()
        .map(WitnessFile::parse)
        .transpose()
        .map_err(RegistrarError::Webvh)?;
    let verified = webvh::verify_log(&log, file.as_ref(), now);
    let ready = verified
        .versions()
        .len()
        .saturating_sub(stored.log.len())
        .min(stored.pending.len());
    if ready == 0 {
        return Ok(());
    }
    stored.log.extend(stored.pending.drain(..ready));
    if let Some(last) = verified.versions().get(stored.log.len().saturating_sub(1)) {
        stored.document = last.document.clone();
        stored.deactivated = last.parameters.deactivated;
    }
    if let Some(file) = &mut file {
        let versions: Vec<&str> = log
            .entries()
            .iter()
            .map(webvh::LogEntry::version_id)
            .collect();
        file.prune(&versions, stored.log.len());
        stored.witness = Some(file.to_json());
    }
    Ok(())
}

/// A did:webvh document listing its parallel did:web in `alsoKnownAs` (did:webvh
/// §"Publishing a Parallel did:web DID").
fn with_parallel_did_web(mut document: Value, did: &WebvhDid) -> Value {
    webvh::add_also_known_as(&mut document, &did.did_web());
    document
}

fn invalid(reason: impl Into<String>) -> RegistrarError {
    RegistrarError::InvalidRequest {
        reason: reason.into(),
    }
}

fn publish_invalid(err: PublishError) -> RegistrarError {
    match err {
        PublishError::InvalidRequest { reason } => invalid(reason),
        other => RegistrarError::Publish(other),
    }
}

fn short(text: &str) -> String {
    text.chars().take(32).collect()
}

/// The public members of a JWK (no `kid`, `alg` or `use`), as `did:key`/`did:jwk` encode it.
fn bare_public(jwk: &Jwk) -> Result<Jwk, RegistrarError> {
    if jwk.is_private() {
        return Err(invalid("the KMS returned a private key"));
    }
    Ok(Jwk::from_public(jwk.params().clone()))
}

fn alias(purpose: &str) -> Result<KeyAlias, RegistrarError> {
    KeyAlias::new("did", purpose).map_err(|_| {
        invalid(format!(
            "`did.{purpose}` is not a valid key alias (1 to 64 of a-z, 0-9 and '-', starting with a letter)"
        ))
    })
}

fn next_alias(name: &str, taken: &[KeyAlias]) -> Result<KeyAlias, RegistrarError> {
    let first = alias(name)?;
    if !taken.contains(&first) {
        return Ok(first);
    }
    for n in 2..=64 {
        let candidate = alias(&format!("{name}-{n}"))?;
        if !taken.contains(&candidate) {
            return Ok(candidate);
        }
    }
    Err(invalid("too many verification methods"))
}

fn check_name(name: &str) -> Result<String, RegistrarError> {
    // The name must leave room for `-update` and `-NN` in a 64-character alias part.
    if name.len() > 48 {
        return Err(invalid("the name is longer than 48 characters"));
    }
    alias(name)?;
    Ok(name.to_owned())
}

fn derived_name(segments: &[String]) -> String {
    let joined: String = segments
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let joined = joined.trim_matches('-');
    if joined.is_empty() {
        "root".to_owned()
    } else if joined.starts_with(|c: char| c.is_ascii_lowercase()) {
        joined.to_owned()
    } else {
        format!("d-{joined}")
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes: [u8; 10] = rand::random();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The path segments of a DID under `binding`: the binding's prefix, then `path`.
fn segments(binding: &EndpointBinding, path: &[String]) -> Result<Vec<String>, RegistrarError> {
    let mut segments: Vec<String> = binding
        .path_prefix()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if path.len() > 8 {
        return Err(invalid("the path has more than 8 segments"));
    }
    for segment in path {
        let valid = (1..=64).contains(&segment.len())
            && segment != "."
            && segment != ".."
            && segment != ".well-known"
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b));
        if !valid {
            return Err(invalid(format!(
                "path segment `{}` must be 1 to 64 of a-z, 0-9, '-', '.', '_' and '~'",
                short(segment)
            )));
        }
        segments.push(segment.clone());
    }
    Ok(segments)
}

fn check_services(services: &[StoredService]) -> Result<(), RegistrarError> {
    let mut seen = Vec::new();
    for service in services {
        let valid_id = (1..=64).contains(&service.id.len())
            && service
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !valid_id {
            return Err(invalid(format!(
                "service id `{}` must be 1 to 64 of A-Z, a-z, 0-9, '-', '.', '_' and '~'",
                short(&service.id)
            )));
        }
        if seen.contains(&&service.id) {
            return Err(invalid(format!(
                "service id `{}` is listed twice",
                service.id
            )));
        }
        seen.push(&service.id);
        if service.service_type.is_empty() || service.service_type.len() > 128 {
            return Err(invalid("a service type must be 1 to 128 characters"));
        }
        let endpoint_ok = match &service.endpoint {
            Value::String(url) => url::Url::parse(url).is_ok(),
            Value::Object(_) | Value::Array(_) => true,
            _ => false,
        };
        if !endpoint_ok {
            return Err(invalid(format!(
                "the endpoint of service `{}` must be a URL, a map or a list",
                service.id
            )));
        }
    }
    Ok(())
}

/// Drops `resolver`'s cached results for `did` (every version option: a deactivation changes
/// the metadata of prior versions too) and re-resolves it, which caches the fresh result.
async fn refresh_cached(resolver: &dyn DidResolver, did: &str) {
    resolver.invalidate(did);
    let opts = ResolveOptions::default().with_no_cache(true);
    if let Err(err) = resolver.resolve(None, did, &opts).await
        && err.code() != ErrorCode::NotFound
    {
        tracing::warn!(did = %did, error = %edk_core::ErrorChain(&err), "refreshing a published DID failed");
    }
}

/// Republishes the did:web documents that list a key the KMS announces as changed
/// (`edk_kms::local::KEY_CHANGED_TOPIC`, on this replica or, through the tenancy's event bus,
/// another) with [`Registrar::republish`], until `cancel`. Only `did.*` aliases are looked
/// at. Spawn it once per process next to the registrar; every replica may run it (a
/// republication that another replica made first is skipped).
pub async fn republish_on_key_change(
    registrar: Arc<Registrar>,
    directory: Arc<dyn TenantDirectory>,
    events: Arc<dyn edk_tenancy::EventBus>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut receiver = events.subscribe();
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            received = receiver.recv() => match received {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        let edk_tenancy::Event::Custom { topic, payload } = event else {
            continue;
        };
        if topic != edk_kms::local::KEY_CHANGED_TOPIC {
            continue;
        }
        let tenant = payload
            .get("tenant")
            .and_then(|t| serde_json::from_value::<TenantId>(t.clone()).ok());
        let alias = payload
            .get("alias")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<KeyAlias>().ok())
            .filter(|alias| alias.service() == "did");
        let (Some(tenant), Some(alias)) = (tenant, alias) else {
            continue;
        };
        let context = match directory.context(tenant).await {
            Ok(context) => context,
            Err(err) => {
                tracing::warn!(%tenant, error = %edk_core::ErrorChain(&err), "no tenant context for a key change");
                continue;
            }
        };
        let caller = Caller::new(context, "edk-did");
        match registrar.republish(&caller, &alias).await {
            Ok(dids) => {
                for did in dids {
                    tracing::info!(did = %did, alias = %alias, "republished a DID after a key change");
                }
            }
            Err(err) => {
                tracing::warn!(alias = %alias, error = %edk_core::ErrorChain(&err), "republishing DIDs after a key change failed");
            }
        }
    }
}

/// Refreshes `resolver`'s cache entry of every DID announced on `events` as changed (by a
/// [`Registrar`] with [`Registrar::with_events`], on this replica or, through the tenancy's
/// event bus, another), until `cancel`. When announcements may have been missed
/// ([`edk_tenancy::Event::Resync`], which the tenancy's listener publishes after it reconnects,
/// or a subscription that fell behind), it empties the resolver's cache
/// ([`DidResolver::invalidate_all`]). Spawn it once per process next to the resolver.
pub async fn refresh_on_change(
    resolver: Arc<dyn DidResolver>,
    events: Arc<dyn edk_tenancy::EventBus>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut receiver = events.subscribe();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            received = receiver.recv() => match received {
                Ok(edk_tenancy::Event::Custom { topic, payload }) if topic == DID_CHANGED_TOPIC => {
                    if let Some(did) = payload.get("did").and_then(Value::as_str) {
                        refresh_cached(resolver.as_ref(), did).await;
                    }
                }
                Ok(edk_tenancy::Event::Resync)
                | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    resolver.invalidate_all();
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
