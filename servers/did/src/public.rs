//! The public, per-tenant files: `/.well-known/did.json`, `/{path}/did.json`
//! (`application/did+json`), and for did:webvh `did.jsonl` (`text/jsonl`) and
//! `did-witness.json` (`application/json`). The tenant and location come from the request's
//! host and path through the tenants' DID endpoint bindings; nothing else is served.

use std::sync::Arc;

use edk_core::ErrorKind;
use edk_did::store::{HostedDids, PublishedFile, locate};
use edk_server::Problem;
use edk_server::ProblemType;
use edk_server::routing::resolve_public;
use edk_tenancy::{ServiceType, Tenancy};
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};

/// `application/did+json`.
pub const DID_JSON: &str = "application/did+json";
/// `text/jsonl`, for `did.jsonl` (did:webvh §"The DID to HTTPS Transformation").
pub const JSONL: &str = "text/jsonl";

/// The endpoint serving every tenant's published DID files.
#[derive(Clone, Debug)]
pub struct PublicEndpoint {
    tenancy: Tenancy,
    hosted: Arc<HostedDids>,
}

impl PublicEndpoint {
    /// The endpoint over `tenancy`'s DID bindings and `hosted` DIDs.
    #[must_use]
    pub const fn new(tenancy: Tenancy, hosted: Arc<HostedDids>) -> Self {
        Self { tenancy, hosted }
    }

    /// Whether `path` names a file this endpoint may serve (`…/did.json`, `…/did.jsonl`,
    /// `…/did-witness.json`); for dispatching in a server that mounts several surfaces.
    #[must_use]
    pub fn serves(path: &str) -> bool {
        path.rsplit_once('/')
            .and_then(|(_, name)| PublishedFile::from_name(name))
            .is_some()
    }

    async fn answer(&self, req: &Request) -> Response {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .header(header::ALLOW, "GET, HEAD")
                .finish();
        }
        let Some(routed) = resolve_public(&self.tenancy, ServiceType::Did, req, &[]).await else {
            return not_found();
        };
        let Some((location, file)) = routed
            .context
            .binding()
            .and_then(|binding| locate(binding, &routed.path))
        else {
            return not_found();
        };
        let tenant = &routed.context;
        edk_server::observe::record_route(
            req,
            match file {
                PublishedFile::DidJson => "/{binding}/{path}/did.json",
                PublishedFile::DidJsonl => "/{binding}/{path}/did.jsonl",
                PublishedFile::DidWitness => "/{binding}/{path}/did-witness.json",
                _ => "/{binding}/{path}/{file}",
            },
        );
        let outcome = match file {
            PublishedFile::DidJson => {
                self.hosted
                    .did_json(tenant, &location)
                    .await
                    .map(|published| match published {
                        Some(Some(document)) => file_response(DID_JSON, document.to_string()),
                        Some(None) => gone(),
                        None => not_found(),
                    })
            }
            PublishedFile::DidJsonl => {
                self.hosted
                    .at(tenant, "webvh", &location)
                    .await
                    .map(|record| match record {
                        // A deactivated DID's log stays published: it is what tells resolvers.
                        // Entries awaiting witnesses are not published.
                        Some(record) if !record.log.is_empty() => {
                            file_response(JSONL, record.log_jsonl())
                        }
                        _ => not_found(),
                    })
            }
            PublishedFile::DidWitness => {
                self.hosted
                    .at(tenant, "webvh", &location)
                    .await
                    .map(|record| match record.and_then(|r| r.witness) {
                        Some(witness) => file_response("application/json", witness),
                        None => not_found(),
                    })
            }
            _ => Ok(not_found()),
        };
        outcome.unwrap_or_else(|err| {
            tracing::error!(error = %edk_core::ErrorChain(&err), "serving a DID file failed");
            Problem::new(ProblemType::from_kind(ErrorKind::Unavailable), None).into_response()
        })
    }
}

impl Endpoint for PublicEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(self.answer(&req).await)
    }
}

fn file_response(content_type: &'static str, body: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("access-control-allow-origin", "*")
        .body(Body::from_string(body))
}

fn not_found() -> Response {
    Problem::new(
        ProblemType::from_kind(ErrorKind::NotFound),
        Some("no DID is published here".to_owned()),
    )
    .into_response()
}

fn gone() -> Response {
    Problem {
        type_uri: "https://www.w3.org/ns/did#DEACTIVATED".to_owned(),
        title: "DID deactivated".to_owned(),
        status: StatusCode::GONE.as_u16(),
        detail: Some("the DID is deactivated".to_owned()),
    }
    .into_response()
}
