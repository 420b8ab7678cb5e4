//! Controller operations: create, update (keys, pre-rotation, services, `alsoKnownAs`,
//! witnesses, moves) and deactivate (did:webvh §"Create", §"Update", §"Deactivate").
//!
//! Every operation signs through a [`Signer`] (from the KMS) together with the Multikey of
//! the key the signer holds, and verifies the entry it built against the log before
//! returning it: an entry these functions return is one a resolver accepts.

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use edk_core::jose::Signer;
use serde_json::{Value, json};

use super::did::WebvhDid;
use super::entry::{DidLog, LogEntry};
use super::error::WebvhError;
use super::multikey::Multikey;
use super::params::{METHOD_V1_0, ParameterChanges};
use super::proof;
use super::scid::{SCID_PLACEHOLDER, entry_hash, replace_text, scid_of_preliminary};
use super::verify::{Chain, Version};
use super::witness::WitnessConfig;

/// The default `@context` of a new DID document.
pub const DID_CONTEXT: &str = "https://www.w3.org/ns/did/v1";

/// What a new DID starts with.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// The DID with the `{SCID}` placeholder, from [`WebvhDid::template`].
    pub did: WebvhDid,
    /// The keys allowed to sign the next entry (must include the signing key).
    pub update_keys: Vec<Multikey>,
    /// Pre-rotation commitments ([`Multikey::key_hash`] of the next keys); empty for none.
    pub next_key_hashes: Vec<String>,
    /// Whether the DID may later move to another domain.
    pub portable: bool,
    /// Witnesses, if any.
    pub witness: Option<WitnessConfig>,
    /// Watcher URLs.
    pub watchers: Vec<String>,
    /// Cache lifetime hint in seconds (`None`: the default, not written).
    pub ttl: Option<u64>,
    /// The DID document, using `{SCID}` wherever the SCID belongs (its `id` must be the
    /// template DID). `None`: a minimal document with only `@context` and `id`.
    pub document: Option<Value>,
}

impl CreateOptions {
    /// Options for `did` with one update key and everything else defaulted.
    #[must_use]
    pub fn new(did: WebvhDid, update_key: Multikey) -> Self {
        Self {
            did,
            update_keys: vec![update_key],
            next_key_hashes: Vec::new(),
            portable: false,
            witness: None,
            watchers: Vec::new(),
            ttl: None,
            document: None,
        }
    }
}

/// A change to a DID: `None` fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct UpdateOptions {
    /// The new DID document (`None`: the current one, unchanged).
    pub document: Option<Value>,
    /// New update keys (required when pre-rotation is active).
    pub update_keys: Option<Vec<Multikey>>,
    /// New pre-rotation commitments (required when pre-rotation is active; `[]` stops it).
    pub next_key_hashes: Option<Vec<String>>,
    /// New witness rule: `Some(None)` turns witnesses off.
    pub witness: Option<Option<WitnessConfig>>,
    /// New watcher URLs.
    pub watchers: Option<Vec<String>>,
    /// New cache lifetime hint.
    pub ttl: Option<u64>,
}

/// Creates a DID: builds the first entry, computes the SCID, signs with `signer` (holding
/// `key`, one of `options.update_keys`) at `now`, and returns the one-entry log.
///
/// # Errors
/// [`WebvhError::Refused`] for options that cannot make a valid log, signing errors, and
/// any verification error of the built entry.
pub async fn create(
    options: CreateOptions,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<DidLog, WebvhError> {
    if options.did.scid() != SCID_PLACEHOLDER {
        return Err(WebvhError::Refused {
            reason: "the DID must carry the {SCID} placeholder",
        });
    }
    if !options.update_keys.contains(key) {
        return Err(WebvhError::Refused {
            reason: "the signing key must be one of the update keys",
        });
    }
    let document = match options.document {
        Some(document) => {
            if document.get("id").and_then(Value::as_str) != Some(options.did.as_str()) {
                return Err(WebvhError::Refused {
                    reason: "the document id must be the DID with the {SCID} placeholder",
                });
            }
            document
        }
        None => json!({"@context": [DID_CONTEXT], "id": options.did.as_str()}),
    };
    let changes = ParameterChanges {
        method: Some(METHOD_V1_0.to_owned()),
        scid: Some(SCID_PLACEHOLDER.to_owned()),
        update_keys: Some(options.update_keys),
        next_key_hashes: (!options.next_key_hashes.is_empty()).then_some(options.next_key_hashes),
        witness: options.witness.map(Some),
        watchers: (!options.watchers.is_empty()).then_some(options.watchers),
        portable: options.portable.then_some(true),
        deactivated: None,
        ttl: options.ttl,
    };
    let time = format_time(truncate(now));
    let preliminary = json!({
        "versionId": SCID_PLACEHOLDER,
        "versionTime": time,
        "parameters": changes.to_map(),
        "state": document,
    });
    let scid = scid_of_preliminary(&preliminary)?;
    let mut entry = replace_text(&preliminary, SCID_PLACEHOLDER, &scid)?;
    let hash = entry_hash(&entry, &scid)?;
    set(&mut entry, "versionId", json!(format!("1-{hash}")));
    let entry = sign_entry(entry, signer, key, &time).await?;
    let mut chain = Chain::default();
    chain.accept(&entry, now)?;
    Ok(DidLog::from_entries(vec![entry]))
}

/// Builds, signs and checks the next entry of `log`, applying `options`. The entry's time is
/// `now` (whole seconds), or one second after the last entry if that is later. Returns the
/// entry; the caller appends it (after publishing witness proofs, if witnesses are on).
///
/// # Errors
/// [`WebvhError::Refused`] for a deactivated DID; the log's own verification error if it
/// does not verify; any verification error of the new entry (for example
/// [`WebvhError::UnauthorizedKey`] or [`WebvhError::PreRotation`] when `key` may not sign).
pub async fn update(
    log: &DidLog,
    options: UpdateOptions,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<LogEntry, WebvhError> {
    let mut chain = verified_chain(log, now)?;
    let (entry, at) = next_entry(&chain, options, signer, key, now).await?;
    chain.accept(&entry, at)?;
    Ok(entry)
}

/// Deactivates the DID: `deactivated: true` and empty `updateKeys`. When pre-rotation is
/// active, a first entry (signed by `key`, which must be pre-rotated) turns it off. Returns
/// the entries to append, in order.
///
/// # Errors
/// As [`update`].
pub async fn deactivate(
    log: &DidLog,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<Vec<LogEntry>, WebvhError> {
    let mut chain = verified_chain(log, now)?;
    let mut entries = Vec::new();
    let mut time = now;
    if chain
        .versions
        .last()
        .is_some_and(|v| v.parameters.pre_rotation())
    {
        let options = UpdateOptions {
            update_keys: Some(vec![key.clone()]),
            next_key_hashes: Some(Vec::new()),
            ..UpdateOptions::default()
        };
        let (entry, at) = next_entry(&chain, options, signer, key, time).await?;
        chain.accept(&entry, at)?;
        entries.push(entry);
        time = at;
    }
    let last = chain.versions.last().ok_or(WebvhError::EmptyLog)?;
    let mut changes = ParameterChanges {
        update_keys: Some(Vec::new()),
        deactivated: Some(true),
        ..ParameterChanges::default()
    };
    if last.parameters.pre_rotation() {
        changes.next_key_hashes = Some(Vec::new());
    }
    let (entry, at) = build_entry(last, changes, last.document.clone(), signer, key, time).await?;
    chain.accept(&entry, at)?;
    entries.push(entry);
    Ok(entries)
}

/// The current document of `log` moved to `new_did` (same SCID, another domain or path):
/// every occurrence of the old DID is replaced and the old DID is added to `alsoKnownAs`.
/// Pass the result as [`UpdateOptions::document`]; the log must be portable.
///
/// # Errors
/// [`WebvhError::Refused`] when the log is not portable or the SCIDs differ; the log's
/// verification error.
pub fn moved_document(
    log: &DidLog,
    new_did: &WebvhDid,
    now: DateTime<Utc>,
) -> Result<Value, WebvhError> {
    let chain = verified_chain(log, now)?;
    let last = chain.versions.last().ok_or(WebvhError::EmptyLog)?;
    if !last.parameters.portable {
        return Err(WebvhError::Refused {
            reason: "the DID is not portable",
        });
    }
    if new_did.scid() != last.parameters.scid {
        return Err(WebvhError::Refused {
            reason: "a moved DID keeps its SCID",
        });
    }
    let old = last
        .document
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut document = replace_text(&last.document, &old, new_did.as_str())?;
    add_also_known_as(&mut document, &old);
    Ok(document)
}

/// Adds (or replaces, by `id`) a service in a DID document. `id` may be relative (`#name`).
pub fn set_service(document: &mut Value, id: &str, service_type: &str, endpoint: &str) {
    let Some(object) = document.as_object_mut() else {
        return;
    };
    let services = object
        .entry("service")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !services.is_array() {
        *services = Value::Array(Vec::new());
    }
    if let Some(list) = services.as_array_mut() {
        list.retain(|service| service.get("id").and_then(Value::as_str) != Some(id));
        list.push(json!({"id": id, "type": service_type, "serviceEndpoint": endpoint}));
    }
}

/// Adds `uri` to a DID document's `alsoKnownAs` unless it is there already.
pub fn add_also_known_as(document: &mut Value, uri: &str) {
    let Some(object) = document.as_object_mut() else {
        return;
    };
    let list = object
        .entry("alsoKnownAs")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|item| item.as_str() == Some(uri))
    {
        list.push(Value::String(uri.to_owned()));
    }
}

/// Signs an entry (without proof) and returns it as a [`LogEntry`].
///
/// # Errors
/// As [`proof::sign`].
pub async fn sign_entry(
    entry: Value,
    signer: &dyn Signer,
    key: &Multikey,
    created: &str,
) -> Result<LogEntry, WebvhError> {
    let proof = proof::sign(&entry, signer, key, created).await?;
    let mut entry = entry;
    set(&mut entry, "proof", json!([proof]));
    LogEntry::from_value(0, entry)
}

fn verified_chain(log: &DidLog, now: DateTime<Utc>) -> Result<Chain, WebvhError> {
    let mut chain = Chain::default();
    for entry in log.entries() {
        chain.accept(entry, now)?;
    }
    if chain.versions.is_empty() {
        return Err(WebvhError::EmptyLog);
    }
    Ok(chain)
}

async fn next_entry(
    chain: &Chain,
    options: UpdateOptions,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<(LogEntry, DateTime<Utc>), WebvhError> {
    let last = chain.versions.last().ok_or(WebvhError::EmptyLog)?;
    let changes = ParameterChanges {
        update_keys: options.update_keys,
        next_key_hashes: options.next_key_hashes,
        witness: options.witness,
        watchers: options.watchers,
        ttl: options.ttl,
        ..ParameterChanges::default()
    };
    let document = options.document.unwrap_or_else(|| last.document.clone());
    build_entry(last, changes, document, signer, key, now).await
}

async fn build_entry(
    last: &Version,
    changes: ParameterChanges,
    document: Value,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<(LogEntry, DateTime<Utc>), WebvhError> {
    if last.parameters.deactivated {
        return Err(WebvhError::Refused {
            reason: "the DID is deactivated",
        });
    }
    let at = truncate(now).max(last.version_time + Duration::seconds(1));
    let time = format_time(at);
    let mut entry = json!({
        "versionId": last.version_id,
        "versionTime": time,
        "parameters": Value::Object(changes.to_map()),
        "state": document,
    });
    let hash = entry_hash(&entry, &last.version_id)?;
    set(
        &mut entry,
        "versionId",
        json!(format!("{}-{hash}", last.number + 1)),
    );
    Ok((sign_entry(entry, signer, key, &time).await?, at.max(now)))
}

fn set(entry: &mut Value, name: &str, value: Value) {
    if let Some(object) = entry.as_object_mut() {
        object.insert(name.to_owned(), value);
    }
}

fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::seconds(1)).unwrap_or(time)
}

/// Formats a time as did:webvh writes it: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
