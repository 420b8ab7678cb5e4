//! Resolution from a log (did:webvh §"Read (Resolve)", §"DID URL Resolution", §"DID
//! Resolution Metadata"), with `versionId`, `versionTime` and `versionNumber` queries, and the
//! parallel did:web document.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::did::WebvhDid;
use super::entry::DidLog;
use super::error::WebvhError;
use super::log::format_time;
use super::scid::replace_text;
use super::verify::{Version, verify_log};
use super::witness::WitnessFile;

/// The media type of the resolved document.
pub const DID_LD_JSON: &str = "application/did+ld+json";

/// Which version to resolve; all `None` means the latest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionQuery {
    /// An exact `versionId`.
    pub version_id: Option<String>,
    /// The version in effect at this time.
    pub version_time: Option<DateTime<Utc>>,
    /// The 1-based version number.
    pub version_number: Option<u64>,
}

impl VersionQuery {
    /// Whether the query asks for a version (any of the three is set).
    #[must_use]
    pub const fn selects_version(&self) -> bool {
        self.version_id.is_some() || self.version_time.is_some() || self.version_number.is_some()
    }

    /// Reads `versionId`, `versionTime` and `versionNumber` from a DID URL query string
    /// (`a=b&c=d`, without `?`); other parameters are ignored.
    ///
    /// # Errors
    /// [`WebvhError::InvalidDid`] when a value is malformed or repeated.
    pub fn from_query(query: &str) -> Result<Self, WebvhError> {
        let invalid = |reason| WebvhError::InvalidDid { reason };
        let mut out = Self::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "versionId" if out.version_id.is_none() => {
                    out.version_id = Some(value.to_owned());
                }
                "versionTime" if out.version_time.is_none() => {
                    let value = value.replace("%3A", ":").replace("%3a", ":");
                    out.version_time = Some(
                        DateTime::parse_from_rfc3339(&value)
                            .map_err(|_| invalid("versionTime is not a date-time"))?
                            .with_timezone(&Utc),
                    );
                }
                "versionNumber" if out.version_number.is_none() => {
                    out.version_number = Some(
                        value
                            .parse()
                            .map_err(|_| invalid("versionNumber is not a number"))?,
                    );
                }
                "versionId" | "versionTime" | "versionNumber" => {
                    return Err(invalid("a version parameter is repeated"));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A DID resolution result: document (absent on error and for a deactivated DID) and the two
/// metadata objects.
#[derive(Clone, Debug, PartialEq)]
pub struct LogResolution {
    /// The DID document, with the implicit `#files` and `#whois` services.
    pub document: Option<Value>,
    /// `didDocumentMetadata` (did:webvh §"DID Resolution Metadata").
    pub document_metadata: Map<String, Value>,
    /// `didResolutionMetadata`: `contentType`, or `error` and `problemDetails`.
    pub resolution_metadata: Map<String, Value>,
}

impl LogResolution {
    /// The failure result for `error`.
    #[must_use]
    pub fn from_error(error: &WebvhError) -> Self {
        let code = error.resolution_error();
        let mut resolution_metadata = Map::new();
        resolution_metadata.insert("error".to_owned(), json!(code));
        resolution_metadata.insert(
            "problemDetails".to_owned(),
            json!({
                "type": format!("https://w3id.org/security#{code}"),
                "title": if code == "notFound" { "DID version not found" } else { "Invalid DID or DID log" },
                "detail": error.to_string(),
            }),
        );
        Self {
            document: None,
            document_metadata: Map::new(),
            resolution_metadata,
        }
    }

    /// The `error` code, if resolution failed.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.resolution_metadata
            .get("error")
            .and_then(Value::as_str)
    }

    /// The result as JSON: `{"@context", "didDocument", "didDocumentMetadata",
    /// "didResolutionMetadata"}`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "@context": "https://w3id.org/did-resolution/v1",
            "didDocument": self.document,
            "didDocumentMetadata": self.document_metadata,
            "didResolutionMetadata": self.resolution_metadata,
        })
    }
}

/// Resolves `did` from the text of its `did.jsonl` (and `did-witness.json`, if published),
/// offline, verifying the whole log. Errors are reported in the result, as DID resolution
/// does.
#[must_use]
pub fn resolve_log(
    did: &str,
    log: &str,
    witness: Option<&str>,
    query: &VersionQuery,
    now: DateTime<Utc>,
) -> LogResolution {
    match resolve_verified(did, log, witness, query, now) {
        Ok(resolution) => resolution,
        Err(err) => LogResolution::from_error(&err),
    }
}

/// As [`resolve_log`], with failures as errors rather than inside the result.
///
/// # Errors
/// The [`WebvhError`] that made resolution fail; [`WebvhError::resolution_error`] gives its
/// DID Resolution code.
pub fn resolve_verified(
    did: &str,
    log: &str,
    witness: Option<&str>,
    query: &VersionQuery,
    now: DateTime<Utc>,
) -> Result<LogResolution, WebvhError> {
    let did = WebvhDid::parse(did)?;
    let log = DidLog::parse(log)?;
    let witness = witness.map(WitnessFile::parse).transpose()?;
    let verified = verify_log(&log, witness.as_ref(), now);
    let (versions, failure) = verified.into_parts();
    if versions
        .first()
        .is_some_and(|first| first.parameters.scid != did.scid())
    {
        return Err(WebvhError::Scid { version: 1 });
    }
    let matches = versions
        .iter()
        .filter(|v| v.document.get("id").and_then(Value::as_str) == Some(did.as_str()))
        .count();
    if matches == 0 {
        return Err(failure.unwrap_or(WebvhError::DidNotInLog));
    }
    let version = select(&versions, failure, query)?;
    let last = versions.last().ok_or(WebvhError::EmptyLog)?;
    Ok(resolution_for(
        &versions,
        version,
        last,
        query.selects_version(),
    ))
}

/// Picks the queried version. When the log failed verification, a query that could have
/// reached the invalid part fails with that error.
fn select<'a>(
    versions: &'a [Version],
    failure: Option<WebvhError>,
    query: &VersionQuery,
) -> Result<&'a Version, WebvhError> {
    let found = if let Some(id) = &query.version_id {
        versions.iter().find(|v| &v.version_id == id)
    } else if let Some(number) = query.version_number {
        versions.iter().find(|v| v.number == number)
    } else if let Some(time) = query.version_time {
        let found = versions.iter().rev().find(|v| v.version_time <= time);
        if let Some(failure) = failure
            && found.is_some_and(|v| Some(v.number) == versions.last().map(|l| l.number))
        {
            return Err(failure);
        }
        return found.ok_or(WebvhError::VersionNotFound);
    } else {
        if let Some(failure) = failure {
            return Err(failure);
        }
        versions.last()
    };
    match (found, failure) {
        (Some(version), _) => Ok(version),
        (None, Some(failure)) => Err(failure),
        (None, None) => Err(WebvhError::VersionNotFound),
    }
}

fn resolution_for(
    versions: &[Version],
    version: &Version,
    last: &Version,
    selected: bool,
) -> LogResolution {
    let params = &last.parameters;
    let mut metadata = Map::new();
    let created = versions.first().map(|v| format_time(v.version_time));
    metadata.insert("created".to_owned(), json!(created));
    metadata.insert("updated".to_owned(), json!(format_time(last.version_time)));
    metadata.insert("versionId".to_owned(), json!(version.version_id));
    metadata.insert(
        "versionTime".to_owned(),
        json!(format_time(version.version_time)),
    );
    metadata.insert("versionNumber".to_owned(), json!(version.number));
    metadata.insert("scid".to_owned(), json!(params.scid));
    metadata.insert("portable".to_owned(), json!(params.portable));
    metadata.insert("deactivated".to_owned(), json!(params.deactivated));
    metadata.insert("ttl".to_owned(), json!(params.ttl.to_string()));
    if let Some(witness) = &params.witness {
        let ids: Vec<Value> = witness
            .witnesses()
            .iter()
            .map(|key| json!({"id": key.did_key()}))
            .collect();
        metadata.insert(
            "witness".to_owned(),
            json!({"threshold": witness.threshold().to_string(), "witnesses": ids}),
        );
    }
    if !params.watchers.is_empty() {
        metadata.insert("watchers".to_owned(), json!(params.watchers));
    }
    let mut resolution_metadata = Map::new();
    resolution_metadata.insert("contentType".to_owned(), json!(DID_LD_JSON));
    // did:webvh §"Deactivate (Revoke)": a deactivated DID resolves to no document, but a
    // prior version asked for by versionId, versionTime or versionNumber still resolves to
    // its document; the metadata says `deactivated: true` either way.
    let shown = !version.parameters.deactivated && (!params.deactivated || selected);
    let document = shown.then(|| with_implicit_services(&version.document));
    LogResolution {
        document,
        document_metadata: metadata,
        resolution_metadata,
    }
}

/// The document with the implicit `#files` and `#whois` services added, unless it defines
/// services with those ids (did:webvh §"DID URL Resolution").
#[must_use]
pub fn with_implicit_services(document: &Value) -> Value {
    let mut document = document.clone();
    let Some(id) = document
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return document;
    };
    let Ok(did) = WebvhDid::parse(&id) else {
        return document;
    };
    let base = did.base_url();
    let Some(object) = document.as_object_mut() else {
        return document;
    };
    let services = object
        .entry("service")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = services.as_array_mut() else {
        return document;
    };
    let has = |list: &[Value], name: &str| {
        list.iter().any(|service| {
            service
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|sid| sid == format!("#{name}") || sid == format!("{id}#{name}"))
        })
    };
    if !has(list, "files") {
        list.push(
            json!({"id": format!("{id}#files"), "type": "relativeRef", "serviceEndpoint": base}),
        );
    }
    if !has(list, "whois") {
        list.push(json!({
            "@context": "https://identity.foundation/linked-vp/contexts/v1",
            "id": format!("{id}#whois"),
            "type": "LinkedVerifiablePresentation",
            "serviceEndpoint": format!("{base}whois.vp"),
        }));
    }
    document
}

/// The did:web document to publish beside the log (did:webvh §"Publishing a Parallel did:web
/// DID"): the implicit services added, `did:webvh:<SCID>:` replaced by `did:web:` throughout,
/// and the did:webvh DID in `alsoKnownAs` (without duplicates).
///
/// # Errors
/// [`WebvhError::InvalidDocument`] when the document's `id` is not a did:webvh DID.
pub fn did_web_document(document: &Value) -> Result<Value, WebvhError> {
    let invalid = WebvhError::InvalidDocument {
        version: 0,
        reason: "the id is not a did:webvh DID",
    };
    let id = document
        .get("id")
        .and_then(Value::as_str)
        .ok_or(invalid)?
        .to_owned();
    let did = WebvhDid::parse(&id)?;
    let document = with_implicit_services(document);
    let mut web = replace_text(&document, &format!("did:webvh:{}:", did.scid()), "did:web:")?;
    if let Some(object) = web.as_object_mut() {
        let list = object
            .entry("alsoKnownAs")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(items) = list.as_array_mut() {
            items.retain(|item| item.as_str() != Some(did.did_web().as_str()));
            items.insert(0, Value::String(id));
            let mut seen = Vec::new();
            items.retain(|item| {
                let fresh = !seen.contains(item);
                seen.push(item.clone());
                fresh
            });
        }
    }
    Ok(web)
}
