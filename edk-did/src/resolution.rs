//! Resolution options, results and metadata (DID Resolution v1.0 §1–§3).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::document::DidDocument;
use crate::error::ResolveError;

/// Options for one resolution (DID Resolution §1 "Resolution options").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// `accept`: the media type of the wanted representation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
    /// `versionId`: a specific version of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `versionTime`: the version valid at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_time: Option<DateTime<Utc>>,
    /// `versionNumber` (did:webvh): a version by its sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_number: Option<u64>,
    /// `expandRelativeUrls`: rewrite relative DID URLs in the document to absolute ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expand_relative_urls: bool,
    /// Skip the resolver's cache for this call (the fresh result is still cached).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
}

impl ResolveOptions {
    /// Asks for `media_type`.
    #[must_use]
    pub fn with_accept(mut self, media_type: impl Into<String>) -> Self {
        self.accept = Some(media_type.into());
        self
    }

    /// Asks for version `version_id`.
    #[must_use]
    pub fn with_version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// Asks for the version valid at `time`.
    #[must_use]
    pub const fn with_version_time(mut self, time: DateTime<Utc>) -> Self {
        self.version_time = Some(time);
        self
    }

    /// Asks for version number `number`.
    #[must_use]
    pub const fn with_version_number(mut self, number: u64) -> Self {
        self.version_number = Some(number);
        self
    }

    /// Rewrites relative DID URLs to absolute ones.
    #[must_use]
    pub const fn with_expand_relative_urls(mut self, expand: bool) -> Self {
        self.expand_relative_urls = expand;
        self
    }

    /// Bypasses the cache for this call.
    #[must_use]
    pub const fn with_no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Whether any version selector is set.
    #[must_use]
    pub const fn selects_version(&self) -> bool {
        self.version_id.is_some() || self.version_time.is_some() || self.version_number.is_some()
    }

    /// The representation asked for through `accept`.
    ///
    /// # Errors
    /// [`ResolveError::RepresentationNotSupported`] when no listed media type is one we produce.
    pub fn representation(&self) -> Result<Representation, ResolveError> {
        let Some(accept) = &self.accept else {
            return Ok(Representation::Did);
        };
        for entry in accept.split(',') {
            let media_type = entry.split(';').next().unwrap_or_default().trim();
            if let Some(representation) = Representation::from_media_type(media_type) {
                return Ok(representation);
            }
        }
        Err(ResolveError::RepresentationNotSupported {
            media_type: accept.clone(),
        })
    }
}

/// A DID document representation (media type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Representation {
    /// `application/did` (DID Resolution v1.0).
    #[default]
    Did,
    /// `application/did+json` (legacy, JSON without `@context`).
    DidJson,
    /// `application/did+ld+json` (legacy, JSON-LD).
    DidLdJson,
}

impl Representation {
    /// The media type.
    #[must_use]
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Did => "application/did",
            Self::DidJson => "application/did+json",
            Self::DidLdJson => "application/did+ld+json",
        }
    }

    /// The representation for a media type; `*/*` and `application/*` mean the default.
    #[must_use]
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type.to_ascii_lowercase().as_str() {
            "application/did" | "*/*" | "application/*" | "application/did-resolution" => {
                Some(Self::Did)
            }
            "application/did+json" | "application/json" => Some(Self::DidJson),
            "application/did+ld+json" | "application/ld+json" => Some(Self::DidLdJson),
            _ => None,
        }
    }
}

/// DID document metadata (DID Resolution §1 "DID document metadata").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMetadata {
    /// `created`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "xml_datetime"
    )]
    pub created: Option<DateTime<Utc>>,
    /// `updated`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "xml_datetime"
    )]
    pub updated: Option<DateTime<Utc>>,
    /// `deactivated`: `true` when the DID is deactivated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deactivated: bool,
    /// `nextUpdate`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "xml_datetime"
    )]
    pub next_update: Option<DateTime<Utc>>,
    /// `versionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `nextVersionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_version_id: Option<String>,
    /// `equivalentId`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equivalent_id: Vec<String>,
    /// `canonicalId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_id: Option<String>,
    /// Method-specific members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a method returns for a DID: the document (absent when deactivated) and its metadata.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Resolution {
    /// The DID document; `None` for a deactivated DID.
    pub document: Option<DidDocument>,
    /// The document metadata.
    pub document_metadata: DocumentMetadata,
    /// The representation returned (set by the resolver from `accept`).
    pub representation: Representation,
    /// How long the method allows the result to be cached (e.g. did:webvh `ttl`); the
    /// resolver uses the smaller of this and its own TTL.
    pub cache_ttl: Option<Duration>,
}

impl Resolution {
    /// A resolution of an active DID to `document`.
    #[must_use]
    pub fn found(document: DidDocument) -> Self {
        Self {
            document: Some(document),
            document_metadata: DocumentMetadata::default(),
            representation: Representation::Did,
            cache_ttl: None,
        }
    }

    /// A resolution of a deactivated DID: no document, `deactivated: true`.
    #[must_use]
    pub fn deactivated() -> Self {
        Self {
            document: None,
            document_metadata: DocumentMetadata {
                deactivated: true,
                ..DocumentMetadata::default()
            },
            representation: Representation::Did,
            cache_ttl: None,
        }
    }

    /// The resolution with `metadata`.
    #[must_use]
    pub fn with_metadata(mut self, metadata: DocumentMetadata) -> Self {
        self.document_metadata = metadata;
        self
    }

    /// The resolution with a method cache hint.
    #[must_use]
    pub const fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// Whether the DID is deactivated.
    #[must_use]
    pub const fn is_deactivated(&self) -> bool {
        self.document_metadata.deactivated
    }
}

/// How errors are written into `didResolutionMetadata.error`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorStyle {
    /// An RFC 9457 problem object with a `https://www.w3.org/ns/did#…` type (v1.0).
    #[default]
    Problem,
    /// A bare legacy string such as `notFound` (DID Core 1.0, Universal Resolver).
    Legacy,
}

/// The DID resolution result as JSON: `{didDocument, didResolutionMetadata,
/// didDocumentMetadata}` (DID Resolution §4, media type `application/did-resolution`).
///
/// # Example
/// ```
/// use edk_did::{ErrorStyle, ResolveError, resolution_result};
/// let result = resolution_result(
///     &Err(ResolveError::NotFound { what: "did:web:example.com".into() }),
///     ErrorStyle::Legacy,
/// );
/// assert_eq!(result["didResolutionMetadata"]["error"], "notFound");
/// assert!(result["didDocument"].is_null());
/// ```
#[must_use]
pub fn resolution_result(outcome: &Result<Resolution, ResolveError>, style: ErrorStyle) -> Value {
    match outcome {
        Ok(resolution) => {
            let document = match &resolution.document {
                Some(document) => serde_json::to_value(document).unwrap_or(Value::Null),
                None => Value::Null,
            };
            let document = match (resolution.representation, document) {
                (Representation::DidJson, Value::Object(mut object)) => {
                    object.remove("@context");
                    Value::Object(object)
                }
                (_, document) => document,
            };
            json!({
                "didDocument": document,
                "didResolutionMetadata": {
                    "contentType": resolution.representation.media_type(),
                },
                "didDocumentMetadata": serde_json::to_value(&resolution.document_metadata)
                    .unwrap_or_else(|_| json!({})),
            })
        }
        Err(err) => {
            let error = match style {
                ErrorStyle::Problem => err.problem(),
                ErrorStyle::Legacy => Value::String(err.code().legacy().to_owned()),
            };
            json!({
                "didDocument": null,
                "didResolutionMetadata": { "error": error },
                "didDocumentMetadata": {},
            })
        }
    }
}

/// XML datetimes in UTC without sub-second precision (DID Resolution §1).
mod xml_datetime {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(time) => {
                serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let value = Option::<String>::deserialize(deserializer)?;
        value
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// Formats a time the way DID metadata wants it: `2020-12-20T19:17:47Z`.
#[must_use]
pub fn format_datetime(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
