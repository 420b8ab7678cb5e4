//! Witnesses: the `witness` parameter and `did-witness.json` (did:webvh §"DID Witnesses").

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use edk_core::jose::Signer;
use serde::Serialize;
use serde_json::{Value, json};

use super::entry::DidLog;
use super::error::WebvhError;
use super::multikey::Multikey;
use super::proof;
use super::verify::verify_entries;

/// The witness rule of a log: `threshold` distinct witnesses must approve each entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WitnessConfig {
    threshold: u64,
    witnesses: Vec<Multikey>,
}

impl WitnessConfig {
    /// A rule with `threshold` of `witnesses` (their Ed25519 keys; the ids are `did:key`s).
    ///
    /// # Errors
    /// [`WebvhError::Refused`] when the list is empty, has duplicates, or the threshold is not
    /// from 1 to the number of witnesses.
    pub fn new(threshold: u64, witnesses: Vec<Multikey>) -> Result<Self, WebvhError> {
        Self::checked(threshold, witnesses).map_err(|reason| WebvhError::Refused { reason })
    }

    /// The number of distinct witnesses that must approve an entry.
    #[must_use]
    pub const fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The witnesses' keys.
    #[must_use]
    pub fn witnesses(&self) -> &[Multikey] {
        &self.witnesses
    }

    /// The `witness` parameter value.
    #[must_use]
    pub fn to_parameter(&self) -> Value {
        let witnesses: Vec<Value> = self
            .witnesses
            .iter()
            .map(|key| json!({"id": key.did_key()}))
            .collect();
        json!({"threshold": self.threshold, "witnesses": witnesses})
    }

    /// Reads a `witness` parameter: `{}` is `None`; anything malformed is refused (never read
    /// as "no witnesses").
    pub(crate) fn from_parameter(value: &Value) -> Result<Option<Self>, &'static str> {
        let object = value.as_object().ok_or("not an object")?;
        if object.is_empty() {
            return Ok(None);
        }
        if object
            .keys()
            .any(|key| key != "threshold" && key != "witnesses")
        {
            return Err("unknown member");
        }
        let threshold = object
            .get("threshold")
            .and_then(Value::as_u64)
            .ok_or("threshold is not a positive integer")?;
        let witnesses = object
            .get("witnesses")
            .and_then(Value::as_array)
            .ok_or("witnesses is not a list")?
            .iter()
            .map(|item| {
                item.get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.strip_prefix("did:key:"))
                    .and_then(|body| Multikey::parse(body).ok())
                    .ok_or("a witness id is not an Ed25519 did:key")
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::checked(threshold, witnesses).map(Some)
    }

    fn checked(threshold: u64, witnesses: Vec<Multikey>) -> Result<Self, &'static str> {
        if witnesses.is_empty() {
            return Err("the witness list is empty");
        }
        let distinct: BTreeSet<&str> = witnesses.iter().map(Multikey::as_str).collect();
        if distinct.len() != witnesses.len() {
            return Err("duplicate witness ids");
        }
        if threshold == 0 || threshold > witnesses.len() as u64 {
            return Err("the threshold must be from 1 to the number of witnesses");
        }
        Ok(Self {
            threshold,
            witnesses,
        })
    }
}

/// `did-witness.json`: witness proofs per `versionId`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WitnessFile {
    entries: Vec<(String, Vec<Value>)>,
}

impl WitnessFile {
    /// Parses `did-witness.json`.
    ///
    /// # Errors
    /// [`WebvhError::MalformedWitnessFile`] unless it is a list of
    /// `{"versionId": string, "proof": [object, ...]}`.
    pub fn parse(text: &str) -> Result<Self, WebvhError> {
        let malformed = |reason: &str| WebvhError::MalformedWitnessFile {
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_str(text).map_err(|_| malformed("not JSON"))?;
        let items = value.as_array().ok_or(malformed("not a JSON list"))?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let version_id = item
                .get("versionId")
                .and_then(Value::as_str)
                .ok_or(malformed("an item has no versionId"))?;
            let proofs = match item.get("proof") {
                Some(Value::Array(proofs)) => proofs.clone(),
                Some(proof @ Value::Object(_)) => vec![proof.clone()],
                _ => return Err(malformed("an item has no proof list")),
            };
            entries.push((version_id.to_owned(), proofs));
        }
        Ok(Self { entries })
    }

    /// Adds a witness's proof for `version_id` and returns whether the file changed.
    ///
    /// `versions` are the log's versionIds, oldest first, the first `published` of them in
    /// the published `did.jsonl` and the rest held back until witnessed (did:webvh
    /// §"DID Witnesses": the proofs are published before the entry they approve). A proof
    /// for version k approves every earlier entry, so the witness's older proofs are dropped,
    /// except its latest proof on a published version while the new one approves a version
    /// not yet published (resolvers ignore proofs for versions they do not see). A proof
    /// older than one the witness already has changes nothing.
    pub fn add(
        &mut self,
        version_id: &str,
        proof: Value,
        versions: &[&str],
        published: usize,
    ) -> bool {
        let Some(position) = versions.iter().position(|id| *id == version_id) else {
            return false;
        };
        let witness = witness_of(&proof);
        let newer_held = self.entries.iter().any(|(id, proofs)| {
            versions
                .iter()
                .position(|v| v == id)
                .is_some_and(|at| at > position)
                && proofs.iter().any(|other| witness_of(other) == witness)
        });
        if newer_held {
            return false;
        }
        for (id, proofs) in &mut self.entries {
            if id == version_id {
                proofs.retain(|other| witness_of(other) != witness);
            }
        }
        match self.entries.iter_mut().find(|(id, _)| id == version_id) {
            Some((_, proofs)) => proofs.push(proof),
            None => self.entries.push((version_id.to_owned(), vec![proof])),
        }
        self.prune(versions, published);
        true
    }

    /// Keeps, for each witness, only its proof on the latest version it approved and, when
    /// that version is not published yet, also its proof on the latest published version;
    /// proofs for versions not in `versions` are dropped. See [`WitnessFile::add`].
    pub fn prune(&mut self, versions: &[&str], published: usize) {
        let position = |id: &str| versions.iter().position(|v| *v == id);
        let mut latest: HashMap<Option<String>, usize> = HashMap::new();
        let mut latest_published: HashMap<Option<String>, usize> = HashMap::new();
        for (id, proofs) in &self.entries {
            let Some(at) = position(id) else { continue };
            for proof in proofs {
                let witness = witness_of(proof);
                let slot = latest.entry(witness.clone()).or_insert(at);
                *slot = (*slot).max(at);
                if at < published {
                    let slot = latest_published.entry(witness).or_insert(at);
                    *slot = (*slot).max(at);
                }
            }
        }
        for (id, proofs) in &mut self.entries {
            let Some(at) = position(id) else {
                proofs.clear();
                continue;
            };
            proofs.retain(|proof| {
                let witness = witness_of(proof);
                latest.get(&witness) == Some(&at) || latest_published.get(&witness) == Some(&at)
            });
        }
        self.entries.retain(|(_, proofs)| !proofs.is_empty());
    }

    /// The file as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        let items: Vec<Value> = self
            .entries
            .iter()
            .map(|(version_id, proofs)| json!({"versionId": version_id, "proof": proofs}))
            .collect();
        Value::Array(items).to_string()
    }

    /// For each witness key, the highest version number (by position in `version_ids`) it
    /// has a valid proof for. Proofs for unknown versions, by keys that are not did:keys, or
    /// that do not verify are ignored.
    pub(crate) fn approvals(&self, version_ids: &[&str]) -> HashMap<Multikey, usize> {
        let mut best: HashMap<Multikey, usize> = HashMap::new();
        for (version_id, proofs) in &self.entries {
            let Some(index) = version_ids.iter().position(|id| id == version_id) else {
                continue;
            };
            let document = json!({"versionId": version_id});
            for proof in proofs {
                if let Ok(key) = proof::verify(&document, proof) {
                    let slot = best.entry(key).or_insert(index);
                    *slot = (*slot).max(index);
                }
            }
        }
        best
    }
}

/// Who made a witness proof: its `verificationMethod`.
fn witness_of(proof: &Value) -> Option<String> {
    proof
        .get("verificationMethod")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A witness's approval of `version_id` (and every earlier entry): an eddsa-jcs-2022 proof
/// over `{"versionId": version_id}`, signed by `signer` whose key is `key`.
///
/// # Errors
/// As [`proof::sign`].
pub async fn sign_version(
    version_id: &str,
    signer: &dyn Signer,
    key: &Multikey,
    now: DateTime<Utc>,
) -> Result<Value, WebvhError> {
    let created = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    proof::sign(&json!({"versionId": version_id}), signer, key, &created).await
}

/// Checks a witness proof offered for `version_id` of `log` before it goes into
/// `did-witness.json`, and returns the witness's key: the log passes every non-witness
/// check, `version_id` is one of its versions, `proof` is a valid eddsa-jcs-2022 proof over
/// `{"versionId": version_id}`, and its key is a witness of the rule of that entry or of an
/// earlier one (a proof for a version approves every earlier entry).
///
/// # Errors
/// [`WebvhError::WitnessProof`] for an unknown version, a proof that does not verify or a
/// key that is not a witness; the log's own error when it does not verify.
pub fn check_witness_proof(
    log: &DidLog,
    version_id: &str,
    proof: &Value,
    now: DateTime<Utc>,
) -> Result<Multikey, WebvhError> {
    let refused = |reason: String| WebvhError::WitnessProof { reason };
    let versions = verify_entries(log, now)?;
    let index = versions
        .iter()
        .position(|version| version.version_id == version_id)
        .ok_or_else(|| refused("the versionId is not in the log".to_owned()))?;
    let key = proof::verify(&json!({"versionId": version_id}), proof)
        .map_err(|fault| refused(fault.to_string()))?;
    let rules: Vec<&WitnessConfig> = versions
        .iter()
        .take(index + 1)
        .filter_map(|version| version.witness.as_ref())
        .collect();
    if rules.is_empty() {
        return Err(refused(
            "the log has no witnesses up to this version".to_owned(),
        ));
    }
    if !rules.iter().any(|rule| rule.witnesses().contains(&key)) {
        return Err(refused("the key is not a witness of the log".to_owned()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(witness: &str, n: u32) -> Value {
        json!({"verificationMethod": format!("did:key:{witness}#{witness}"), "proofValue": n})
    }

    fn file(items: &[(&str, &[Value])]) -> WitnessFile {
        WitnessFile {
            entries: items
                .iter()
                .map(|(id, proofs)| ((*id).to_owned(), proofs.to_vec()))
                .collect(),
        }
    }

    const VERSIONS: [&str; 3] = ["1-a", "2-b", "3-c"];

    #[test]
    fn a_newer_published_proof_replaces_the_witness_s_older_one() {
        let mut witnesses = file(&[("1-a", &[proof("w", 1), proof("v", 1)])]);
        assert!(witnesses.add("2-b", proof("w", 2), &VERSIONS, 3));
        assert_eq!(
            witnesses,
            file(&[("1-a", &[proof("v", 1)]), ("2-b", &[proof("w", 2)])])
        );
    }

    #[test]
    fn an_older_proof_never_drops_the_witness_s_newer_one() {
        let mut witnesses = file(&[("2-b", &[proof("w", 2)])]);
        assert!(!witnesses.add("1-a", proof("w", 1), &VERSIONS, 3));
        assert_eq!(witnesses, file(&[("2-b", &[proof("w", 2)])]));
    }

    #[test]
    fn a_proof_for_a_held_back_version_keeps_the_published_one_until_published() {
        let mut witnesses = file(&[("1-a", &[proof("w", 1)])]);
        // Version 3 is held back: the proof on version 1 keeps version 1 witnessed.
        assert!(witnesses.add("3-c", proof("w", 3), &VERSIONS, 2));
        assert_eq!(
            witnesses,
            file(&[("1-a", &[proof("w", 1)]), ("3-c", &[proof("w", 3)])])
        );
        // Once version 3 is published the older proof goes.
        witnesses.prune(&VERSIONS, 3);
        assert_eq!(witnesses, file(&[("3-c", &[proof("w", 3)])]));
    }

    #[test]
    fn the_same_version_is_replaced_and_unknown_versions_are_dropped() {
        let mut witnesses = file(&[("9-z", &[proof("w", 9)]), ("2-b", &[proof("w", 2)])]);
        assert!(witnesses.add("2-b", proof("w", 22), &VERSIONS, 3));
        assert_eq!(witnesses, file(&[("2-b", &[proof("w", 22)])]));
        assert!(!witnesses.add("9-z", proof("w", 9), &VERSIONS, 3));
    }
}
