//! The public, per-tenant verifier surface routed by the tenant's `verifier` endpoint
//! binding: the Request Objects at `<verifier>/requests/<handle>` and the `response_uri`
//! `<verifier>/response`, answering wallets in OpenID4VP's own formats.

use std::sync::Arc;

use edk_core::{ErrorChain, ErrorKind, HasKind as _};
use edk_oid4vp::REQUEST_OBJECT_TYP;
use edk_server::rate_limit::{RateKey, RateLimiter};
use edk_server::routing::resolve_public;
use edk_server::{Problem, ProblemType};
use edk_tenancy::{RoutedPath, ServiceType, Tenancy, TenantContext};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, Request, Response};
use serde_json::{Value, json};

use crate::verifier::{Verifier, WalletError};

/// The largest body the `response_uri` and a `request_uri` POST read, in bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The verifier endpoint of every tenant.
#[derive(Clone, Debug)]
pub struct ProtocolEndpoint {
    tenancy: Tenancy,
    verifier: Arc<Verifier>,
    limiter: Option<RateLimiter>,
}

impl ProtocolEndpoint {
    /// The endpoint over `tenancy`'s routing, answering with `verifier`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, verifier: Arc<Verifier>) -> Self {
        Self {
            tenancy,
            verifier,
            limiter: None,
        }
    }

    /// The endpoint with `limiter`'s per-tenant and per-address limits on the request
    /// objects and the `response_uri`, checked before any signature or database write: a
    /// refusal is a `too-many-requests` problem (429) with `Retry-After`.
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Whether `req` is for a path of this surface (a tenant's verifier binding resolves it to
    /// `/response` or `/requests/<handle>`), so that a server that also serves other surfaces
    /// on the same hosts (the all-in-one `edk`) sends it here.
    pub async fn serves(&self, req: &Request) -> bool {
        resolve_public(&self.tenancy, ServiceType::Verifier, req, &[])
            .await
            .is_some_and(|resolution| {
                matches!(&resolution.path, RoutedPath::Service { rest } if route_of(rest).is_some())
            })
    }

    async fn request_object(
        &self,
        tenant: &TenantContext,
        handle: &str,
        req: &mut Request,
    ) -> poem::Result<Response> {
        let wallet_nonce = if req.method() == Method::POST {
            let body = req.take_body().into_bytes_limit(MAX_BODY_BYTES).await;
            let Ok(body) = body else {
                return Ok(wallet_error(&WalletError::InvalidRequest(
                    "the body is unreadable or too large".to_owned(),
                )));
            };
            url::form_urlencoded::parse(&body)
                .find(|(name, _)| name == "wallet_nonce")
                .map(|(_, value)| value.into_owned())
        } else {
            None
        };
        Ok(
            match self
                .verifier
                .request_object(tenant, handle, wallet_nonce.as_deref())
                .await
            {
                Ok(jwt) => {
                    let mut response = Response::builder()
                        .status(StatusCode::OK)
                        .content_type(format!("application/{REQUEST_OBJECT_TYP}"))
                        .body(jwt);
                    set_header(&mut response, "cache-control", "no-store");
                    response
                }
                Err(err) => wallet_error(&err),
            },
        )
    }

    async fn response(&self, tenant: &TenantContext, req: &mut Request) -> Response {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value.split(';').next().is_some_and(|mime| {
                    mime.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form {
            return wallet_error(&WalletError::InvalidRequest(
                "the response is sent as application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let Ok(body) = req.take_body().into_bytes_limit(MAX_BODY_BYTES).await else {
            return wallet_error(&WalletError::InvalidRequest(
                "the body is unreadable or too large".to_owned(),
            ));
        };
        match self.verifier.respond(tenant, &body).await {
            Ok(None) => json_response(StatusCode::OK, &json!({})),
            Ok(Some(redirect_uri)) => {
                json_response(StatusCode::OK, &json!({ "redirect_uri": redirect_uri }))
            }
            Err(err) => wallet_error(&err),
        }
    }
}

/// The methods and the route template (for the request's span and metrics) of a path below a
/// verifier binding, if it is one of this surface's.
fn route_of(rest: &str) -> Option<(&'static str, &'static str)> {
    if rest == "/response" {
        Some(("POST", "/{binding}/response"))
    } else if request_handle(rest).is_some() {
        Some(("GET, POST", "/{binding}/requests/{handle}"))
    } else {
        None
    }
}

/// The handle of a `/requests/<handle>` path.
fn request_handle(rest: &str) -> Option<&str> {
    rest.strip_prefix("/requests/").filter(|handle| {
        !handle.is_empty()
            && handle.len() <= 128
            && handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

impl Endpoint for ProtocolEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some(resolution) =
            resolve_public(&self.tenancy, ServiceType::Verifier, &req, &[]).await
        else {
            return Ok(not_found());
        };
        let RoutedPath::Service { rest } = &resolution.path else {
            return Ok(not_found());
        };
        let tenant = resolution.context;
        let Some((methods, route)) = route_of(rest) else {
            return Ok(not_found());
        };
        edk_server::observe::record_route(&req, route);
        let method = req.method().clone();
        if !methods
            .split(", ")
            .any(|allowed| allowed == method.as_str())
        {
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            let mut response = Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .finish();
            set_header(&mut response, "allow", methods);
            return Ok(response);
        }
        if let Some(limiter) = &self.limiter {
            let mut keys = vec![RateKey::tenant()];
            if let Some(ip) = limiter.client_ip(&req) {
                keys.push(RateKey::ip(ip));
            }
            if let Some(refused) = limiter.check(&tenant, &keys).await.problem_response() {
                return Ok(refused);
            }
        }
        match request_handle(rest) {
            Some(handle) => {
                let handle = handle.to_owned();
                self.request_object(&tenant, &handle, &mut req).await
            }
            None => Ok(self.response(&tenant, &mut req).await),
        }
    }
}

/// An OpenID4VP error answer: 400 `{"error","error_description"}` for a refused call, 404
/// for a request object that is not there, a problem without detail for the verifier's own
/// failures.
fn wallet_error(err: &WalletError) -> Response {
    match err {
        WalletError::InvalidRequest(description) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": description}),
        ),
        WalletError::NotFound => json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "error": "invalid_request_uri",
                "error_description": "the request object is unknown, already fetched or expired"
            }),
        ),
        WalletError::Failed(err) => {
            let mut response = if err.kind() == ErrorKind::Unavailable {
                tracing::warn!(
                    error = %ErrorChain(err),
                    "verifier request failed: a dependency is unavailable"
                );
                let mut response = Problem::new(ProblemType::Unavailable, None).into_response();
                set_header(&mut response, "retry-after", "1");
                response
            } else {
                tracing::error!(error = %ErrorChain(err), "verifier request failed");
                Problem::new(ProblemType::Internal, None).into_response()
            };
            set_header(&mut response, "cache-control", "no-store");
            response
        }
    }
}

fn not_found() -> Response {
    let mut response = Problem::new(ProblemType::NotFound, None).into_response();
    set_header(&mut response, "cache-control", "no-store");
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string());
    set_header(&mut response, "cache-control", "no-store");
    response
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
