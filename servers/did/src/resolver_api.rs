//! The Universal Resolver HTTP API (DID Resolution v1.0 §"HTTP(S) Binding"):
//! `GET /1.0/identifiers/{didUrl}` resolving DIDs and dereferencing DID URLs, with `Accept`
//! negotiation and the binding's status codes, and `GET /1.0/methods`. Anonymous: it only
//! reads public data.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use edk_did::{
    Dereferenced, DidResolver, ErrorStyle, ResolveError, ResolveOptions, Resolver, Resource,
    dereferencing_result, resolution_result,
};
use edk_server::Problem;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use poem::Request;
use poem::http::header;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, ResponseContent, Tags};
use serde_json::{Value, json};

/// `application/did-resolution`: the resolution result (v1.0).
pub const DID_RESOLUTION: &str = "application/did-resolution";
/// `application/did-url-dereferencing`: the DID URL dereferencing result (v1.0).
pub const DID_URL_DEREFERENCING: &str = "application/did-url-dereferencing";
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

/// The body of a resolver answer, by media type.
#[derive(ResponseContent, Debug)]
pub enum ResolutionContent {
    /// The resolution result `{didDocument, didResolutionMetadata, didDocumentMetadata}`.
    #[oai(content_type = "application/did-resolution")]
    Result(Json<Value>),
    /// The legacy resolution result (`@context`, errors as strings).
    #[oai(content_type = "application/ld+json;profile=\"https://w3id.org/did-resolution\"")]
    LegacyResult(Json<Value>),
    /// The dereferencing result `{dereferencingMetadata, contentStream, contentMetadata}`.
    #[oai(content_type = "application/did-url-dereferencing")]
    Dereferencing(Json<Value>),
    /// The DID document, or the node a DID URL selects, as JSON-LD.
    #[oai(content_type = "application/did+ld+json")]
    DidLdJson(Json<Value>),
    /// The DID document, or the node a DID URL selects, as JSON without `@context`.
    #[oai(content_type = "application/did+json")]
    DidJson(Json<Value>),
    /// The DID document, or the node a DID URL selects (v1.0 media type).
    #[oai(content_type = "application/did")]
    Did(Json<Value>),
}

/// The body of a 400: a result with `INVALID_DID`, `INVALID_DID_URL` or `INVALID_OPTIONS`,
/// or a problem when a query parameter does not parse as its declared type.
#[derive(ResponseContent, Debug)]
pub enum BadRequestContent {
    /// The resolution result with the error.
    #[oai(content_type = "application/did-resolution")]
    Result(Json<Value>),
    /// The legacy resolution result with the error.
    #[oai(content_type = "application/ld+json;profile=\"https://w3id.org/did-resolution\"")]
    LegacyResult(Json<Value>),
    /// The dereferencing result with the error.
    #[oai(content_type = "application/did-url-dereferencing")]
    Dereferencing(Json<Value>),
    /// A query parameter does not parse (`versionNumber`, `expandRelativeUrls`).
    #[oai(content_type = "application/problem+json")]
    Problem(Json<Problem>),
}

/// A resolution or dereferencing answer (DID Resolution's HTTP binding).
#[derive(ApiResponse, Debug)]
pub enum Resolved {
    /// Resolved or dereferenced: the result, or the document or node alone when a document
    /// type was asked for.
    #[oai(status = 200)]
    Ok(ResolutionContent),
    /// The DID URL dereferences to a URL (a service endpoint, with `relativeRef` resolved):
    /// `Location`, no body.
    #[oai(status = 303)]
    SeeOther(
        /// The URL.
        #[oai(header = "Location")]
        String,
    ),
    /// `INVALID_DID`, `INVALID_DID_URL` or `INVALID_OPTIONS`.
    #[oai(status = 400)]
    BadRequest(BadRequestContent),
    /// `NOT_FOUND`.
    #[oai(status = 404)]
    NotFound(ResolutionContent),
    /// `REPRESENTATION_NOT_SUPPORTED`: no acceptable media type.
    #[oai(status = 406)]
    NotAcceptable(ResolutionContent),
    /// The DID is deactivated (`didDocumentMetadata.deactivated` is `true`); a prior version
    /// asked for by `versionId`, `versionTime` or `versionNumber` still has its document.
    #[oai(status = 410)]
    Gone(ResolutionContent),
    /// `INTERNAL_ERROR` or `INVALID_DID_DOCUMENT`: the DID's source failed.
    #[oai(status = 500)]
    Internal(ResolutionContent),
    /// `METHOD_NOT_SUPPORTED` or `FEATURE_NOT_SUPPORTED`.
    #[oai(status = 501)]
    NotImplemented(ResolutionContent),
}

impl Resolved {
    fn with_status(status: u16, content: ResolutionContent) -> Self {
        match status {
            200 => Self::Ok(content),
            400 => Self::BadRequest(match content {
                ResolutionContent::LegacyResult(body) => BadRequestContent::LegacyResult(body),
                ResolutionContent::Dereferencing(body) => BadRequestContent::Dereferencing(body),
                ResolutionContent::Result(body)
                | ResolutionContent::DidLdJson(body)
                | ResolutionContent::DidJson(body)
                | ResolutionContent::Did(body) => BadRequestContent::Result(body),
            }),
            404 => Self::NotFound(content),
            406 => Self::NotAcceptable(content),
            410 => Self::Gone(content),
            501 => Self::NotImplemented(content),
            _ => Self::Internal(content),
        }
    }
}

/// What the caller asked for through `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    /// The resolution result; `legacy` for the Universal Resolver's JSON-LD form.
    Result { legacy: bool },
    /// The dereferencing result.
    Dereferencing,
    /// The document (or node) alone, as this media type.
    Document(&'static str),
}

impl Wanted {
    fn style(self) -> ErrorStyle {
        match self {
            Self::Result { legacy: true } => ErrorStyle::Legacy,
            _ => ErrorStyle::Problem,
        }
    }

    /// The answer `body` of this kind.
    fn content(self, body: Value) -> ResolutionContent {
        match self {
            Self::Result { legacy: false } => ResolutionContent::Result(Json(body)),
            Self::Result { legacy: true } => ResolutionContent::LegacyResult(Json(body)),
            Self::Dereferencing => ResolutionContent::Dereferencing(Json(body)),
            Self::Document("application/did+json") => ResolutionContent::DidJson(Json(body)),
            Self::Document("application/did") => ResolutionContent::Did(Json(body)),
            Self::Document(_) => ResolutionContent::DidLdJson(Json(body)),
        }
    }

    /// The result kind errors are answered with.
    fn result(self) -> Self {
        match self {
            Self::Document(_) => Self::Result { legacy: false },
            other => other,
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
            "application/did-url-dereferencing" => Wanted::Dereferencing,
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

/// The DID URL as the client sent it. Sent percent-encoded as a whole (`did%3Aexample%3A123`,
/// the binding's form when there are options) it is decoded once; sent raw
/// (`did:web:example.com%3A8443`) it keeps its own escapes, except that `%2F`, `%3F` and
/// `%23` stand for the DID URL's `/`, `?` and `#` (which cannot travel unescaped in an HTTP
/// path segment).
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
        return percent_decode_str(raw).decode_utf8_lossy().into_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('%') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let escape = rest.get(at..at + 3).unwrap_or_default();
        let delimiter = match escape.to_ascii_uppercase().as_str() {
            "%2F" => Some('/'),
            "%3F" => Some('?'),
            "%23" => Some('#'),
            _ => None,
        };
        match delimiter {
            Some(delimiter) => {
                out.push(delimiter);
                rest = rest.get(at + 3..).unwrap_or_default();
            }
            None => {
                out.push('%');
                rest = rest.get(at + 1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// What is escaped in a DID parameter value added to a DID URL's query.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// `did_url` with the DID parameters of the HTTP query (`service`, `serviceType`,
/// `relativeRef`) added to its own query, each value percent-encoded.
fn with_parameters(did_url: &str, parameters: &[(&str, Option<&str>)]) -> String {
    let (before, fragment) = match did_url.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (did_url, None),
    };
    let mut url = before.to_owned();
    for (name, value) in parameters {
        let Some(value) = value else { continue };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// The HTTP status of a resolution or dereferencing outcome.
fn status_of<T>(outcome: &Result<T, ResolveError>, deactivated: impl Fn(&T) -> bool) -> u16 {
    match outcome {
        Ok(value) if deactivated(value) => 410,
        Ok(_) => 200,
        Err(err) => err.code().http_status(),
    }
}

#[OpenApi(tag = "ResolverTag::Resolver")]
impl ResolverApi {
    /// Resolves a DID or dereferences a DID URL. The DID URL goes in the path as is
    /// (`did:example:123`) or percent-encoded as a whole (`did%3Aexample%3A123%23key-1`); in
    /// the raw form `%2F`, `%3F` and `%23` stand for the DID URL's `/`, `?` and `#`.
    /// `Accept` picks the answer: `application/did-resolution` (the resolution result),
    /// `application/ld+json;profile="https://w3id.org/did-resolution"` (the legacy result,
    /// errors as strings), `application/did-url-dereferencing` (the dereferencing result), or
    /// a DID document type (`application/did+ld+json`, the default; `application/did+json`;
    /// `application/did`). A fragment selects a verification method or service; `service`
    /// or `serviceType` (with `relativeRef`) and did:webvh paths (`/whois`, files) select a
    /// URL, answered with 303 and `Location`. Errors answer with the result.
    #[oai(
        path = "/1.0/identifiers/:did",
        method = "get",
        operation_id = "resolveDid"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "each query parameter of the binding is an argument"
    )]
    async fn resolve(
        &self,
        req: &Request,
        /// The DID or DID URL, raw or percent-encoded.
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
        /// The id (fragment) of the service to select.
        service: Query<Option<String>>,
        /// The type of the service to select.
        #[oai(name = "serviceType")]
        service_type: Query<Option<String>>,
        /// A reference resolved against the selected service's endpoint.
        #[oai(name = "relativeRef")]
        relative_ref: Query<Option<String>>,
    ) -> Resolved {
        let did_url = identifier(req, &did.0);
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let Some(wanted) = negotiate(accept) else {
            let err = ResolveError::RepresentationNotSupported {
                media_type: accept.unwrap_or_default().chars().take(200).collect(),
            };
            let body = resolution_result(&Err(err), ErrorStyle::Problem);
            return Resolved::NotAcceptable(ResolutionContent::Result(Json(body)));
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
                    let wanted = wanted.result();
                    let body = legacy_context(resolution_result(&Err(err), wanted.style()), wanted);
                    return Resolved::with_status(400, wanted.content(body));
                }
            }
        }
        if let Wanted::Document(media_type) = wanted {
            opts = opts.with_accept(media_type);
        }
        let parameters = [
            ("service", service.0.as_deref()),
            ("serviceType", service_type.0.as_deref()),
            ("relativeRef", relative_ref.0.as_deref()),
        ];
        let is_url = did_url.contains(['/', '?', '#'])
            || parameters.iter().any(|(_, value)| value.is_some());
        if is_url {
            let did_url = with_parameters(&did_url, &parameters);
            let outcome = self.resolver.dereference(None, &did_url, &opts).await;
            return dereferenced(wanted, &outcome);
        }
        let outcome = self.resolver.resolve(None, &did_url, &opts).await;
        let status = status_of(&outcome, edk_did::Resolution::is_deactivated);
        let style = if wanted == Wanted::Dereferencing {
            ErrorStyle::Problem
        } else {
            wanted.style()
        };
        let body = legacy_context(resolution_result(&outcome, style), wanted);
        // A deactivated DID answers 410; a prior version of it still has a document.
        let document = body
            .get("didDocument")
            .filter(|document| !document.is_null());
        match (wanted, status, document) {
            (Wanted::Document(_), 200 | 410, Some(document)) => {
                Resolved::with_status(status, wanted.content(document.clone()))
            }
            (Wanted::Dereferencing, _, _) => {
                let outcome =
                    outcome.map(|resolution| Dereferenced::new(resolution, Resource::Document));
                let body = dereferencing_result(&outcome, ErrorStyle::Problem);
                Resolved::with_status(status, Wanted::Dereferencing.content(body))
            }
            _ => Resolved::with_status(status, wanted.result().content(body)),
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

/// The answer to a dereferenced DID URL: 303 to a URL (unless the dereferencing result was
/// asked for), the node or document alone for a document type, else the result.
fn dereferenced(wanted: Wanted, outcome: &Result<Dereferenced, ResolveError>) -> Resolved {
    let status = status_of(outcome, |dereferenced| {
        dereferenced.resolution.is_deactivated()
    });
    if let Ok(dereferenced) = outcome {
        if let Resource::Url(url) = &dereferenced.resource
            && wanted != Wanted::Dereferencing
        {
            return Resolved::SeeOther(url.clone());
        }
        if let Wanted::Document(_) = wanted {
            let body = dereferencing_result(outcome, ErrorStyle::Problem);
            let content = body.get("contentStream").cloned().unwrap_or(Value::Null);
            return Resolved::with_status(status, wanted.content(content));
        }
    }
    let body = dereferencing_result(outcome, wanted.style());
    let wanted = match wanted {
        Wanted::Result { legacy: true } => wanted,
        _ => Wanted::Dereferencing,
    };
    Resolved::with_status(status, wanted.content(legacy_context(body, wanted)))
}

fn legacy_context(mut body: Value, wanted: Wanted) -> Value {
    if wanted == (Wanted::Result { legacy: true })
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
