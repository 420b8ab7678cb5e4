//! Log verification (did:webvh §"Read (Resolve)", steps 2.1 to 2.8, and witnesses).

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::did::WebvhDid;
use super::entry::{DidLog, LogEntry};
use super::error::{ProofFault, TimeFault, WebvhError};
use super::params::{ActiveParameters, DEFAULT_TTL, ParameterChanges};
use super::proof;
use super::scid::{SCID_PLACEHOLDER, entry_hash, jcs, multihash_b58, replace_text};
use super::witness::{WitnessConfig, WitnessFile};

/// How far in the future a `versionTime` may be (clock skew), per the spec's SHOULD.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// One verified version of a DID.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// The 1-based version number.
    pub number: u64,
    /// The `versionId` (`<number>-<entryHash>`).
    pub version_id: String,
    /// The `versionTime`.
    pub version_time: DateTime<Utc>,
    /// The DID document.
    pub document: Value,
    /// The parameters in effect after this entry.
    pub parameters: ActiveParameters,
    /// The witness rule this entry had to meet, if any.
    pub witness: Option<WitnessConfig>,
}

/// The result of verifying a log: the versions that verified, oldest first, and the failure
/// that stopped verification, if any. Entries from the first invalid one onwards are not
/// versions (did:webvh §"Read", step 4).
#[derive(Debug)]
pub struct VerifiedLog {
    versions: Vec<Version>,
    failure: Option<WebvhError>,
}

impl VerifiedLog {
    /// The verified versions, oldest first.
    #[must_use]
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Why verification stopped early, if it did.
    #[must_use]
    pub const fn failure(&self) -> Option<&WebvhError> {
        self.failure.as_ref()
    }

    /// The latest version, or the failure if the log did not verify to its end.
    ///
    /// # Errors
    /// The verification failure.
    pub fn latest(&self) -> Result<&Version, &WebvhError> {
        if let Some(failure) = &self.failure {
            return Err(failure);
        }
        self.versions.last().ok_or(&WebvhError::EmptyLog)
    }

    /// Whether verification ran to the end of the log.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.failure.is_none()
    }

    pub(crate) fn into_parts(self) -> (Vec<Version>, Option<WebvhError>) {
        (self.versions, self.failure)
    }
}

/// Verifies every entry of `log` (SCID, entry hashes, version numbers and times, parameters,
/// proofs by authorised and pre-rotated keys, document ids) and then the witness rule against
/// `witnesses` (`did-witness.json`; `None` when none is published). `now` bounds
/// `versionTime`.
#[must_use]
pub fn verify_log(
    log: &DidLog,
    witnesses: Option<&WitnessFile>,
    now: DateTime<Utc>,
) -> VerifiedLog {
    let mut chain = Chain::default();
    let mut failure = None;
    for entry in log.entries() {
        if let Err(err) = chain.accept(entry, now) {
            failure = Some(err);
            break;
        }
    }
    let mut versions = chain.versions;
    if let Some((index, err)) = first_unwitnessed(&versions, witnesses) {
        versions.truncate(index);
        failure = Some(err);
    }
    VerifiedLog { versions, failure }
}

/// Every version of `log`, after every non-witness check (the witness rule is not applied).
///
/// # Errors
/// The first entry's [`WebvhError`] that fails a check.
pub(crate) fn verify_entries(log: &DidLog, now: DateTime<Utc>) -> Result<Vec<Version>, WebvhError> {
    let mut chain = Chain::default();
    for entry in log.entries() {
        chain.accept(entry, now)?;
    }
    Ok(chain.versions)
}

/// The verified prefix of a log, extended one entry at a time.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub(crate) versions: Vec<Version>,
}

impl Chain {
    /// Verifies `entry` as the next one (every non-witness check) and records it.
    pub(crate) fn accept(
        &mut self,
        entry: &LogEntry,
        now: DateTime<Utc>,
    ) -> Result<(), WebvhError> {
        let previous = self.versions.last();
        let number = previous.map_or(1, |version| version.number + 1);
        let changes = ParameterChanges::parse(number, entry.parameters())?;
        let bad_param = |name: &str, reason| WebvhError::InvalidParameter {
            version: number,
            name: name.to_owned(),
            reason,
        };

        // 2.1: merge the parameters; find the keys allowed to sign this entry.
        let (parameters, authorized, witness) = match previous {
            None => {
                if changes.method.is_none() {
                    return Err(bad_param("method", "required in the first entry"));
                }
                let scid = changes
                    .scid
                    .clone()
                    .ok_or_else(|| bad_param("scid", "required in the first entry"))?;
                let update_keys = changes
                    .update_keys
                    .clone()
                    .ok_or_else(|| bad_param("updateKeys", "required in the first entry"))?;
                let parameters = ActiveParameters {
                    method: changes.method.clone().unwrap_or_default(),
                    scid,
                    update_keys: update_keys.clone(),
                    next_key_hashes: changes.next_key_hashes.clone().unwrap_or_default(),
                    witness: changes.witness.clone().flatten(),
                    watchers: changes.watchers.clone().unwrap_or_default(),
                    portable: changes.portable.unwrap_or(false),
                    deactivated: changes.deactivated.unwrap_or(false),
                    ttl: changes.ttl.unwrap_or(DEFAULT_TTL),
                };
                let witness = parameters.witness.clone();
                (parameters, update_keys, witness)
            }
            Some(previous) => {
                let before = &previous.parameters;
                if before.deactivated {
                    return Err(WebvhError::AfterDeactivation { version: number });
                }
                if changes.scid.is_some() {
                    return Err(bad_param("scid", "only allowed in the first entry"));
                }
                if changes.portable == Some(true) && !before.portable {
                    return Err(bad_param("portable", "can only be set in the first entry"));
                }
                let authorized = if before.pre_rotation() {
                    // Pre-rotation: this entry names its keys, each committed to before.
                    let keys = changes.update_keys.clone().ok_or(WebvhError::PreRotation {
                        version: number,
                        reason: "updateKeys must be present",
                    })?;
                    if changes.next_key_hashes.is_none() {
                        return Err(WebvhError::PreRotation {
                            version: number,
                            reason: "nextKeyHashes must be present",
                        });
                    }
                    if keys
                        .iter()
                        .any(|key| !before.next_key_hashes.contains(&key.key_hash()))
                    {
                        return Err(WebvhError::PreRotation {
                            version: number,
                            reason: "an update key was not committed to in nextKeyHashes",
                        });
                    }
                    keys
                } else {
                    before.update_keys.clone()
                };
                // Turning witnesses on applies at once; changing or removing them applies
                // after this entry.
                let witness = match (&before.witness, &changes.witness) {
                    (None, Some(new)) => new.clone(),
                    (old, _) => old.clone(),
                };
                let parameters = ActiveParameters {
                    method: changes
                        .method
                        .clone()
                        .unwrap_or_else(|| before.method.clone()),
                    scid: before.scid.clone(),
                    update_keys: changes
                        .update_keys
                        .clone()
                        .unwrap_or_else(|| before.update_keys.clone()),
                    next_key_hashes: changes
                        .next_key_hashes
                        .clone()
                        .unwrap_or_else(|| before.next_key_hashes.clone()),
                    witness: changes
                        .witness
                        .clone()
                        .unwrap_or_else(|| before.witness.clone()),
                    watchers: changes
                        .watchers
                        .clone()
                        .unwrap_or_else(|| before.watchers.clone()),
                    portable: changes.portable.unwrap_or(before.portable),
                    deactivated: changes.deactivated.unwrap_or(before.deactivated),
                    ttl: changes.ttl.unwrap_or(before.ttl),
                };
                (parameters, authorized, witness)
            }
        };

        // 2.2: proofs, each valid and by an authorised key.
        let proofs = entry.proofs();
        if proofs.is_empty() {
            return Err(WebvhError::InvalidProof {
                version: number,
                fault: ProofFault::Missing,
            });
        }
        let unsigned = entry.without_proof();
        for proof in proofs {
            let key =
                proof::verify(&unsigned, proof).map_err(|fault| WebvhError::InvalidProof {
                    version: number,
                    fault,
                })?;
            if !authorized.contains(&key) {
                return Err(WebvhError::UnauthorizedKey {
                    version: number,
                    key: key.as_str().to_owned(),
                });
            }
        }

        // 2.3: versionId and entry hash over the predecessor's versionId.
        let version_id = entry.version_id();
        let bad_id = || WebvhError::VersionId {
            version: number,
            version_id: version_id.to_owned(),
        };
        let (n, hash) = version_id.split_once('-').ok_or_else(bad_id)?;
        if hash.contains('-') || n.parse::<u64>().ok() != Some(number) || n.starts_with('0') {
            return Err(bad_id());
        }
        let predecessor = previous.map_or(parameters.scid.as_str(), |v| v.version_id.as_str());
        if entry_hash(entry.as_value(), predecessor)? != hash {
            return Err(WebvhError::EntryHash { version: number });
        }

        // 2.4: versionTime.
        let version_time = parse_time(entry.version_time()).ok_or(WebvhError::VersionTime {
            version: number,
            fault: TimeFault::Malformed,
        })?;
        if previous.is_some_and(|v| version_time <= v.version_time) {
            return Err(WebvhError::VersionTime {
                version: number,
                fault: TimeFault::NotIncreasing,
            });
        }
        if version_time > now + MAX_CLOCK_SKEW {
            return Err(WebvhError::VersionTime {
                version: number,
                fault: TimeFault::InFuture,
            });
        }

        // 2.5: the SCID of the first entry.
        if previous.is_none() && scid_of_first(entry, &parameters.scid)? != parameters.scid {
            return Err(WebvhError::Scid { version: number });
        }

        // 2.6: the document id is a did:webvh DID with this SCID; moves need portability.
        let document = entry.state();
        let bad_doc = |reason| WebvhError::InvalidDocument {
            version: number,
            reason,
        };
        let id = document
            .get("id")
            .and_then(Value::as_str)
            .ok_or(bad_doc("no id"))?;
        let did = WebvhDid::parse(id)?;
        if did.as_str() != id {
            return Err(bad_doc("the id is not a bare DID"));
        }
        if did.scid() != parameters.scid {
            return Err(WebvhError::Scid { version: number });
        }
        if let Some(previous) = previous {
            let previous_id = previous.document.get("id").and_then(Value::as_str);
            if previous_id != Some(id) {
                if !parameters.portable {
                    return Err(bad_doc("the DID moved but is not portable"));
                }
                let listed = document
                    .get("alsoKnownAs")
                    .and_then(Value::as_array)
                    .is_some_and(|aka| aka.iter().any(|v| v.as_str() == previous_id));
                if !listed {
                    return Err(bad_doc(
                        "a moved DID must list its previous id in alsoKnownAs",
                    ));
                }
            }
        }

        // 2.8: record.
        self.versions.push(Version {
            number,
            version_id: version_id.to_owned(),
            version_time,
            document: document.clone(),
            parameters,
            witness,
        });
        Ok(())
    }
}

/// The SCID recomputed from the first entry: no proof, `versionId` and every occurrence of the
/// SCID replaced by `{SCID}`.
fn scid_of_first(entry: &LogEntry, scid: &str) -> Result<String, WebvhError> {
    let mut preliminary = replace_text(&entry.without_proof(), scid, SCID_PLACEHOLDER)?;
    if let Some(object) = preliminary.as_object_mut() {
        object.insert(
            "versionId".to_owned(),
            Value::String(SCID_PLACEHOLDER.to_owned()),
        );
    }
    Ok(multihash_b58(&jcs(&preliminary)?))
}

/// Parses a UTC ISO 8601 date-time (`Z` or `+00:00`).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if !(text.ends_with('Z') || text.ends_with("+00:00")) {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The index of the first version whose witness rule is not met, with the error.
fn first_unwitnessed(
    versions: &[Version],
    witnesses: Option<&WitnessFile>,
) -> Option<(usize, WebvhError)> {
    let ids: Vec<&str> = versions.iter().map(|v| v.version_id.as_str()).collect();
    let approvals = witnesses
        .map(|file| file.approvals(&ids))
        .unwrap_or_default();
    versions.iter().enumerate().find_map(|(index, version)| {
        let rule = version.witness.as_ref()?;
        let count = rule
            .witnesses()
            .iter()
            .filter(|key| approvals.get(*key).is_some_and(|latest| *latest >= index))
            .count() as u64;
        (count < rule.threshold()).then(|| {
            (
                index,
                WebvhError::WitnessThreshold {
                    version: version.number,
                    threshold: rule.threshold(),
                    approvals: count,
                },
            )
        })
    })
}
