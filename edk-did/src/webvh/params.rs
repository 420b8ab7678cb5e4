//! Log parameters (did:webvh §"DID Generation and Verification Parameters").

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::did::is_scid;
use super::error::WebvhError;
use super::multikey::Multikey;
use super::witness::WitnessConfig;

/// The one `method` value this implementation knows.
pub const METHOD_V1_0: &str = "did:webvh:1.0";
/// The default `ttl`, in seconds.
pub const DEFAULT_TTL: u64 = 3600;
const MAX_TTL: u64 = 1 << 31;

/// The parameters in effect after a log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveParameters {
    /// The spec version (`did:webvh:1.0`).
    pub method: String,
    /// The SCID.
    pub scid: String,
    /// The keys allowed to sign the next entry (unless pre-rotation names others).
    pub update_keys: Vec<Multikey>,
    /// Pre-rotation commitments to the next update keys.
    pub next_key_hashes: Vec<String>,
    /// The witness rule, if witnesses are on.
    pub witness: Option<WitnessConfig>,
    /// Watcher URLs.
    pub watchers: Vec<String>,
    /// Whether the DID may move to another domain.
    pub portable: bool,
    /// Whether the DID is deactivated.
    pub deactivated: bool,
    /// Cache lifetime hint, in seconds.
    pub ttl: u64,
}

impl ActiveParameters {
    /// Whether pre-rotation is active (the next entry's keys are committed to).
    #[must_use]
    pub fn pre_rotation(&self) -> bool {
        !self.next_key_hashes.is_empty()
    }
}

/// The parameters one entry sets; `None` leaves a value as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParameterChanges {
    pub(crate) method: Option<String>,
    pub(crate) scid: Option<String>,
    pub(crate) update_keys: Option<Vec<Multikey>>,
    pub(crate) next_key_hashes: Option<Vec<String>>,
    /// `Some(None)` turns witnesses off.
    pub(crate) witness: Option<Option<WitnessConfig>>,
    pub(crate) watchers: Option<Vec<String>>,
    pub(crate) portable: Option<bool>,
    pub(crate) deactivated: Option<bool>,
    pub(crate) ttl: Option<u64>,
}

impl ParameterChanges {
    /// Reads and validates an entry's `parameters`. JSON `null` is read as the default value
    /// (legacy logs); unknown names are refused.
    pub(crate) fn parse(version: u64, map: &Map<String, Value>) -> Result<Self, WebvhError> {
        let bad = |name: &str, reason| WebvhError::InvalidParameter {
            version,
            name: name.to_owned(),
            reason,
        };
        let mut changes = Self::default();
        for (name, value) in map {
            let value = if value.is_null() {
                default_of(name).ok_or_else(|| bad(name, "null is not allowed"))?
            } else {
                value.clone()
            };
            match name.as_str() {
                "method" => {
                    let method = value.as_str().ok_or_else(|| bad(name, "not a string"))?;
                    if method != METHOD_V1_0 {
                        return Err(WebvhError::UnsupportedMethod {
                            version,
                            method: method.to_owned(),
                        });
                    }
                    changes.method = Some(method.to_owned());
                }
                "scid" => {
                    let scid = value.as_str().ok_or_else(|| bad(name, "not a string"))?;
                    if !is_scid(scid) {
                        return Err(bad(name, "not a base58btc SHA-256 multihash"));
                    }
                    changes.scid = Some(scid.to_owned());
                }
                "updateKeys" => {
                    let keys = strings(&value).ok_or_else(|| bad(name, "not a list of strings"))?;
                    let keys = keys
                        .iter()
                        .map(|key| Multikey::parse(key))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| bad(name, "not an Ed25519 Multikey"))?;
                    changes.update_keys = Some(keys);
                }
                "nextKeyHashes" => {
                    let hashes =
                        strings(&value).ok_or_else(|| bad(name, "not a list of strings"))?;
                    if !hashes.iter().all(|hash| is_scid(hash)) {
                        return Err(bad(name, "not a base58btc SHA-256 multihash"));
                    }
                    changes.next_key_hashes = Some(hashes);
                }
                "witness" => {
                    changes.witness = Some(
                        WitnessConfig::from_parameter(&value)
                            .map_err(|reason| bad(name, reason))?,
                    );
                }
                "watchers" => {
                    let urls = strings(&value).ok_or_else(|| bad(name, "not a list of strings"))?;
                    changes.watchers = Some(urls);
                }
                "portable" => {
                    changes.portable =
                        Some(value.as_bool().ok_or_else(|| bad(name, "not a boolean"))?);
                }
                "deactivated" => {
                    changes.deactivated =
                        Some(value.as_bool().ok_or_else(|| bad(name, "not a boolean"))?);
                }
                "ttl" => {
                    let ttl = value
                        .as_u64()
                        .filter(|ttl| *ttl <= MAX_TTL)
                        .ok_or_else(|| bad(name, "not an integer from 0 to 2^31"))?;
                    changes.ttl = Some(ttl);
                }
                _ => return Err(bad(name, "not a did:webvh 1.0 parameter")),
            }
        }
        Ok(changes)
    }

    /// The changes as a `parameters` object (only the values that are set).
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(method) = &self.method {
            map.insert("method".to_owned(), json!(method));
        }
        if let Some(scid) = &self.scid {
            map.insert("scid".to_owned(), json!(scid));
        }
        if let Some(keys) = &self.update_keys {
            map.insert("updateKeys".to_owned(), json!(keys));
        }
        if let Some(hashes) = &self.next_key_hashes {
            map.insert("nextKeyHashes".to_owned(), json!(hashes));
        }
        if let Some(witness) = &self.witness {
            map.insert(
                "witness".to_owned(),
                witness
                    .as_ref()
                    .map_or_else(|| json!({}), WitnessConfig::to_parameter),
            );
        }
        if let Some(watchers) = &self.watchers {
            map.insert("watchers".to_owned(), json!(watchers));
        }
        if let Some(portable) = self.portable {
            map.insert("portable".to_owned(), json!(portable));
        }
        if let Some(deactivated) = self.deactivated {
            map.insert("deactivated".to_owned(), json!(deactivated));
        }
        if let Some(ttl) = self.ttl {
            map.insert("ttl".to_owned(), json!(ttl));
        }
        map
    }
}

fn default_of(name: &str) -> Option<Value> {
    Some(match name {
        "nextKeyHashes" | "watchers" => json!([]),
        "witness" => json!({}),
        "portable" | "deactivated" => json!(false),
        "ttl" => json!(DEFAULT_TTL),
        _ => return None,
    })
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}
