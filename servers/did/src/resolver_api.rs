//! The Universal Resolver HTTP API (DID Resolution v1.0 §"HTTP(S) Binding"):
//! `GET /1.0/identifiers/{did}` with `Accept` negotiation and the binding's status codes, and
//! `GET /1.0/methods`. Anonymous: it only reads public data.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use edk_did::{DidResolver, ErrorStyle, ResolveError, ResolveOptions, Resolver, resolution_result};
use percent_encoding::percent_decode_str;
use poem::Request;
use poem::http::header;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, Response};
use poem_openapi::{ApiResponse, OpenApi, Tags};
use serde_json::{Value, json};

/// `application/did-resolution`: the resolution result (v1.0).
pub const DID_RESOLUTION: &str = "application/did-resolution";
/// The legacy resolution result media type of the Universal Resolver.
pub const LEGACY_DID_RESOLUTION: &str =
    "application/ld+json;profile=\"https://w3id.org/did-resolution\"";
/// The path prefix of the resolver.
pub const IDENTIFIERS_PATH: &str = "/1.0/identifiers/";

/// The resolver API.
#[derive(Debug)]
pub struct ResolverApi {
    resolver: Arc<Resolver>,
}

impl ResolverApi {
    /// The API over `resolver`.
    #[must_use]
    pub const fn new(resolver: Arc<Resolver>) -> Self {
        Self { resolver }
    }
}

#[derive(Tags)]
enum ResolverTag {
    /// DID resolution (Universal Resolver API).
    Resolver,
}

/// A resolution answer: the resolution result (`application/did-resolution`, or the legacy
/// `application/ld+json;profile="https://w3id.org/did-resolution"`), or the DID document alone
/// when a document type (`application/did`, `application/did+ld+json`,
/// `application/did+json`) was asked for.
#[derive(ApiResponse, Debug)]
pub enum Resolved {
    /// Resolved.
    #[oai(status = 200, content_type = "application/did-resolution")]
    Ok(Json<Value>),
    /// `INVALID_DID`, `INVALID_DID_URL` or `INVALID_OPTIONS`.
    #[oai(status = 400, content_type = "application/did-resolution")]
    BadRequest(Json<Value>),
    /// `NOT_FOUND`.
    #[oai(status = 404, content_type = "application/did-resolution")]
    NotFound(Json<Value>),
    /// `REPRESENTATION_NOT_SUPPORTED`: no acceptable media type.
    #[oai(status = 406, content_type = "application/did-resolution")]
    NotAcceptable(Json<Value>),
    /// The DID is deactivated (`didDocumentMetadata.deactivated` is `true`).
    #[oai(status = 410, content_type = "application/did-resolution")]
    Gone(Json<Value>),
    /// `INTERNAL_ERROR` or `INVALID_DID_DOCUMENT`: the DID's source failed.
    #[oai(status = 500, content_type = "application/did-resolution")]
    Internal(Json<Value>),
    /// `METHOD_NOT_SUPPORTED` or `FEATURE_NOT_SUPPORTED`.
    #[oai(status = 501, content_type = "application/did-resolution")]
    NotImplemented(Json<Value>),
}

impl Resolved {
    fn with_status(status: u16, body: Value) -> Self {
        match status {
            200 => Self::Ok(Json(body)),
            400 => Self::BadRequest(Json(body)),
            404 => Self::NotFound(Json(body)),
            406 => Self::NotAcceptable(Json(body)),
            410 => Self::Gone(Json(body)),
            501 => Self::NotImplemented(Json(body)),
            _ => Self::Internal(Json(body)),
        }
    }
}

/// What the caller asked for through `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    /// The resolution result; `legacy` for the Universal Resolver's JSON-LD form.
    Result { legacy: bool },
    /// The document alone, as this media type.
    Document(&'static str),
}

impl Wanted {
    fn content_type(self) -> &'static str {
        match self {
            Self::Result { legacy: false } => DID_RESOLUTION,
            Self::Result { legacy: true } => LEGACY_DID_RESOLUTION,
            Self::Document(media_type) => media_type,
        }
    }
}

/// Picks the representation from an `Accept` header: highest `q` first, then order.
fn negotiate(accept: Option<&str>) -> Option<Wanted> {
    let default = Wanted::Document("application/did+ld+json");
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(default);
    };
    let mut ranges: Vec<(u16, usize, &str, bool)> = Vec::new();
    for (index, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        let mut q = 1000_u16;
        let mut profile = false;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = value
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .map_or(0, |q| {
                            // In 0..=1000 by the filter above.
                            #[expect(
                                clippy::cast_possible_truncation,
                                clippy::cast_sign_loss,
                                reason = "q is in 0..=1 so q * 1000 fits"
                            )]
                            let scaled = (q * 1000.0).round() as u16;
                            scaled
                        });
                }
                "profile" => {
                    profile = value
                        .split(' ')
                        .any(|p| p == "https://w3id.org/did-resolution")
                }
                _ => {}
            }
        }
        if q > 0 {
            ranges.push((q, index, media_type, profile));
        }
    }
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().find_map(|(_, _, media_type, profile)| {
        Some(match media_type.to_ascii_lowercase().as_str() {
            "application/did-resolution" => Wanted::Result { legacy: false },
            "application/ld+json" if profile => Wanted::Result { legacy: true },
            "application/did+ld+json" | "application/ld+json" => {
                Wanted::Document("application/did+ld+json")
            }
            "application/did+json" | "application/json" => Wanted::Document("application/did+json"),
            "application/did" => Wanted::Document("application/did"),
            "*/*" | "application/*" => default,
            _ => return None,
        })
    })
}

/// The DID as the client sent it: percent-decoded once when it was sent encoded
/// (`did%3Aexample%3A123`), else as is (`did:web:example.com%3A8443` keeps its `%3A`).
fn identifier(req: &Request, param: &str) -> String {
    let path = req.uri().path();
    let raw = path
        .find(IDENTIFIERS_PATH)
        .and_then(|at| path.get(at + IDENTIFIERS_PATH.len()..))
        .unwrap_or(param);
    let encoded = raw
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("did%3A"));
    if encoded {
        percent_decode_str(raw).decode_utf8_lossy().into_owned()
    } else {
        raw.to_owned()
    }
}

fn answer(wanted: Wanted, status: u16, body: Value) -> Response<Resolved> {
    Response::new(Resolved::with_status(status, body))
        .header(header::CONTENT_TYPE, wanted.content_type())
}

#[OpenApi(tag = "ResolverTag::Resolver")]
impl ResolverApi {
    /// Resolves a DID. The DID goes in the path as is (`did:example:123`) or percent-encoded
    /// (`did%3Aexample%3A123`). `Accept` picks the answer: `application/did-resolution` (the
    /// resolution result), `application/ld+json;profile="https://w3id.org/did-resolution"`
    /// (the legacy result, errors as strings), or a DID document type
    /// (`application/did+ld+json`, the default; `application/did+json`; `application/did`).
    /// Errors and deactivated DIDs answer with the resolution result.
    #[oai(
        path = "/1.0/identifiers/:did",
        method = "get",
        operation_id = "resolveDid"
    )]
    async fn resolve(
        &self,
        req: &Request,
        /// The DID, raw or percent-encoded.
        did: Path<String>,
        /// A specific version (did:webvh).
        #[oai(name = "versionId")]
        version_id: Query<Option<String>>,
        /// The version valid at this time (RFC 3339).
        #[oai(name = "versionTime")]
        version_time: Query<Option<String>>,
        /// A version by its number (did:webvh).
        #[oai(name = "versionNumber")]
        version_number: Query<Option<u64>>,
        /// Rewrite relative DID URLs in the document to absolute ones.
        #[oai(name = "expandRelativeUrls")]
        expand_relative_urls: Query<Option<bool>>,
    ) -> Response<Resolved> {
        let did = identifier(req, &did.0);
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let Some(wanted) = negotiate(accept) else {
            let err = ResolveError::RepresentationNotSupported {
                media_type: accept.unwrap_or_default().chars().take(200).collect(),
            };
            let body = resolution_result(&Err(err), ErrorStyle::Problem);
            return answer(Wanted::Result { legacy: false }, 406, body);
        };
        let style = match wanted {
            Wanted::Result { legacy: true } => ErrorStyle::Legacy,
            _ => ErrorStyle::Problem,
        };
        let result_type = Wanted::Result {
            legacy: style == ErrorStyle::Legacy,
        };
        let mut opts = ResolveOptions::default()
            .with_expand_relative_urls(expand_relative_urls.0.unwrap_or(false));
        opts.version_id = version_id.0;
        opts.version_number = version_number.0;
        if let Some(time) = version_time.0 {
            match DateTime::parse_from_rfc3339(&time) {
                Ok(time) => opts.version_time = Some(time.with_timezone(&Utc)),
                Err(_) => {
                    let err = ResolveError::InvalidOptions {
                        reason: "versionTime is not an RFC 3339 date-time".to_owned(),
                    };
                    let body = resolution_result(&Err(err), style);
                    return answer(result_type, 400, legacy_context(body, style));
                }
            }
        }
        if let Wanted::Document(media_type) = wanted {
            opts = opts.with_accept(media_type);
        }
        let outcome = self.resolver.resolve(None, &did, &opts).await;
        let status = match &outcome {
            Ok(resolution) if resolution.is_deactivated() => 410,
            Ok(_) => 200,
            Err(err) => err.code().http_status(),
        };
        let body = legacy_context(resolution_result(&outcome, style), style);
        // A deactivated DID answers 410; a prior version of it still has a document.
        let document = body
            .get("didDocument")
            .filter(|document| !document.is_null());
        match (wanted, status, document) {
            (Wanted::Document(_), 200 | 410, Some(document)) => {
                answer(wanted, status, document.clone())
            }
            _ => answer(result_type, status, body),
        }
    }

    /// The DID methods this resolver supports (without `did:`).
    #[oai(path = "/1.0/methods", method = "get", operation_id = "listMethods")]
    async fn methods(&self) -> Json<Vec<String>> {
        Json(
            self.resolver
                .method_names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        )
    }
}

fn legacy_context(mut body: Value, style: ErrorStyle) -> Value {
    if style == ErrorStyle::Legacy
        && let Some(object) = body.as_object_mut()
    {
        object.insert(
            "@context".to_owned(),
            json!("https://w3id.org/did-resolution/v1"),
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_follows_q_values_and_order() {
        assert_eq!(
            negotiate(None),
            Some(Wanted::Document("application/did+ld+json"))
        );
        assert_eq!(
            negotiate(Some("application/did-resolution")),
            Some(Wanted::Result { legacy: false })
        );
        assert_eq!(
            negotiate(Some(
                "application/ld+json;profile=\"https://w3id.org/did-resolution\""
            )),
            Some(Wanted::Result { legacy: true })
        );
        assert_eq!(
            negotiate(Some(
                "application/did+json;q=0.5, application/did-resolution"
            )),
            Some(Wanted::Result { legacy: false })
        );
        assert_eq!(
            negotiate(Some("text/html, application/did+json;q=0.1")),
            Some(Wanted::Document("application/did+json"))
        );
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/did+json;q=0")), None);
    }
}
