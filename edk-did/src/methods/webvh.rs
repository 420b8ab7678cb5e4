//! did:webvh as a [`DidMethod`]: fetches `did.jsonl` (and `did-witness.json`) from a
//! [`LogSource`], verifies the whole log and resolves the asked-for version. The log format,
//! verification and the controller operations live in [`crate::webvh`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{Clock, Did};
use serde_json::Value;

use crate::document::DidDocument;
use crate::error::ResolveError;
use crate::method::DidMethod;
use crate::methods::fetch::{FetchGate, FetchPolicy, REFUSED_ADDRESS, is_refused_address};
use crate::resolution::{DocumentMetadata, Resolution, ResolveOptions};
use crate::webvh::{self, VersionQuery, WebvhDid, WebvhError};

/// The largest `did.jsonl` or `did-witness.json` [`HttpsLogSource`] reads, by default.
pub const DEFAULT_MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// The published files of one did:webvh DID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFiles {
    /// `did.jsonl`.
    pub log: String,
    /// `did-witness.json`, when published.
    pub witness: Option<String>,
}

/// Where did:webvh logs are read from.
#[async_trait]
pub trait LogSource: fmt::Debug + Send + Sync {
    /// The files of `did`.
    ///
    /// # Errors
    /// [`ResolveError::NotFound`] when there is no log, [`ResolveError::Unavailable`] when the
    /// source cannot be reached or answers too much.
    async fn fetch(&self, did: &WebvhDid) -> Result<LogFiles, ResolveError>;
}

/// Reads logs over HTTPS from [`WebvhDid::log_url`] with an injected client (its timeouts,
/// redirect policy and TLS roots apply), at most `max_bytes` per file.
#[derive(Clone, Debug)]
pub struct HttpsLogSource {
    client: reqwest::Client,
    max_bytes: usize,
    gate: FetchGate,
}

impl HttpsLogSource {
    /// A source over `client` (see [`client_builder`](crate::methods::web::client_builder)),
    /// reading at most [`DEFAULT_MAX_LOG_BYTES`] per file, with the default [`FetchPolicy`]
    /// (port 443 only, at most 16 fetches at once).
    #[must_use]
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            max_bytes: DEFAULT_MAX_LOG_BYTES,
            gate: FetchGate::default(),
        }
    }

    /// The source fetching only from `policy`'s ports, with at most its number of fetches
    /// in flight.
    #[must_use]
    pub fn with_policy(mut self, policy: &FetchPolicy) -> Self {
        self.gate = FetchGate::new(policy);
        self
    }

    /// The source with another size limit.
    #[must_use]
    pub const fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    async fn get(&self, did: &WebvhDid, url: &str) -> Result<Option<String>, ResolveError> {
        let unavailable = |reason, source: Option<reqwest::Error>| ResolveError::Unavailable {
            did: did.to_string(),
            reason,
            source: source.map(|err| Box::new(err) as _),
        };
        let parsed = url::Url::parse(url).map_err(|_| ResolveError::InvalidDid {
            did: did.to_string(),
            reason: "the log URL is not valid".to_owned(),
        })?;
        let _slot = self.gate.admit(did.as_str(), &parsed).await?;
        let mut response = self.client.get(parsed).send().await.map_err(|err| {
            let reason = if is_refused_address(&err) {
                REFUSED_ADDRESS
            } else {
                "the request failed"
            };
            unavailable(reason, Some(err))
        })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(unavailable("the server did not answer 200", None));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| unavailable("reading the body failed", Some(err)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(unavailable("the file is too large", None));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map(Some)
            .map_err(|_| unavailable("the file is not UTF-8", None))
    }
}

#[async_trait]
impl LogSource for HttpsLogSource {
    async fn fetch(&self, did: &WebvhDid) -> Result<LogFiles, ResolveError> {
        let log = self
            .get(did, &did.log_url())
            .await?
            .ok_or_else(|| ResolveError::not_found(did.as_str()))?;
        let witness = self.get(did, &did.witness_url()).await?;
        Ok(LogFiles { log, witness })
    }
}

/// Logs held in memory, by log URL: offline resolution and tests.
#[derive(Clone, Debug, Default)]
pub struct StaticLogSource {
    files: HashMap<String, LogFiles>,
}

impl StaticLogSource {
    /// An empty source.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the files of `did`.
    pub fn insert(&mut self, did: &WebvhDid, files: LogFiles) {
        self.files.insert(did.log_url(), files);
    }
}

#[async_trait]
impl LogSource for StaticLogSource {
    async fn fetch(&self, did: &WebvhDid) -> Result<LogFiles, ResolveError> {
        self.files
            .get(&did.log_url())
            .cloned()
            .ok_or_else(|| ResolveError::not_found(did.as_str()))
    }
}

/// The did:webvh method.
#[derive(Debug)]
pub struct DidWebvh {
    source: Arc<dyn LogSource>,
    clock: Arc<dyn Clock>,
}

impl DidWebvh {
    /// The method reading logs from `source`; `clock` bounds `versionTime`.
    #[must_use]
    pub fn new(source: Arc<dyn LogSource>, clock: Arc<dyn Clock>) -> Self {
        Self { source, clock }
    }
}

#[async_trait]
impl DidMethod for DidWebvh {
    fn name(&self) -> &'static str {
        "webvh"
    }

    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        let parsed = WebvhDid::parse(did.as_str()).map_err(|err| invalid(did, &err))?;
        let files = self.source.fetch(&parsed).await?;
        let query = VersionQuery {
            version_id: opts.version_id.clone(),
            version_time: opts.version_time,
            version_number: opts.version_number,
        };
        let now = DateTime::<Utc>::from(self.clock.now());
        let result = webvh::resolve_verified(
            did.as_str(),
            &files.log,
            files.witness.as_deref(),
            &query,
            now,
        )
        .map_err(|err| match err {
            WebvhError::VersionNotFound => ResolveError::not_found(did.as_str()),
            err => invalid(did, &err),
        })?;
        let mut extra = result.document_metadata;
        let time = |extra: &mut serde_json::Map<String, Value>, name: &str| {
            extra
                .remove(name)
                .and_then(|value| value.as_str().and_then(webvh_time))
        };
        let created = time(&mut extra, "created");
        let updated = time(&mut extra, "updated");
        let version_id = extra
            .remove("versionId")
            .and_then(|value| value.as_str().map(str::to_owned));
        let deactivated = extra
            .remove("deactivated")
            .and_then(|value| value.as_bool())
            .unwrap_or(false);
        let ttl = extra
            .get("ttl")
            .and_then(Value::as_str)
            .and_then(|ttl| ttl.parse::<u64>().ok());
        let metadata = DocumentMetadata {
            created,
            updated,
            deactivated,
            version_id,
            extra,
            ..DocumentMetadata::default()
        };
        // A deactivated DID has a document only for a prior version asked for explicitly.
        let resolution = match result.document {
            Some(document) => {
                let document: DidDocument = serde_json::from_value(document).map_err(|err| {
                    ResolveError::InvalidDidDocument {
                        did: did.to_string(),
                        reason: err.to_string(),
                    }
                })?;
                Resolution::found(document)
            }
            None => Resolution::deactivated(),
        };
        let resolution = resolution.with_metadata(metadata);
        Ok(match ttl {
            Some(ttl) => resolution.with_cache_ttl(Duration::from_secs(ttl)),
            None => resolution,
        })
    }
}

fn invalid(did: &Did, err: &WebvhError) -> ResolveError {
    ResolveError::InvalidDid {
        did: did.to_string(),
        reason: err.to_string(),
    }
}

fn webvh_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}
