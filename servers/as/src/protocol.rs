//! The public, per-tenant protocol surface: routed by the tenant's AS endpoint binding, it
//! answers in OAuth's own formats (RFC 6749 §5.2 errors, `WWW-Authenticate`, `DPoP-Nonce`).

use std::sync::Arc;

use edk_core::ErrorChain;
use edk_oauth::{
    AuthorizationServer, AuthorizeOutcome, EndpointCall, Error, OAuthErrorCode, Params,
};
use edk_tenancy::{
    EndpointRequest, RoutedPath, ServiceType, Tenancy, TenantContext, TenantDirectory as _,
};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use serde_json::{Value, json};

/// The protocol endpoint: `/authorize`, `/callback`, `/par`, `/token`, `/introspect`,
/// `/revoke`, `/challenge`, `/jwks.json` and the well-known documents of every tenant's AS.
#[derive(Clone, Debug)]
pub struct ProtocolEndpoint {
    tenancy: Tenancy,
    server: Arc<AuthorizationServer>,
}

impl ProtocolEndpoint {
    /// The endpoint over `tenancy`'s routing and `server`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, server: Arc<AuthorizationServer>) -> Self {
        Self { tenancy, server }
    }

    async fn resolve(&self, req: &Request) -> Option<(TenantContext, RoutedPath)> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())?;
        let (host, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => {
                (name, port.parse::<u16>().ok())
            }
            _ => (host, None),
        };
        // The server runs behind TLS termination: the public scheme is https.
        let request = EndpointRequest::new("https", host, port, req.uri().path());
        let resolution = self.tenancy.resolve(ServiceType::As, &request).await.ok()?;
        Some((resolution.context, resolution.path))
    }
}

impl Endpoint for ProtocolEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some((tenant, path)) = self.resolve(&req).await else {
            return Ok(not_found());
        };
        let method = req.method().clone();
        let call = |params: Params, req: &Request| {
            let mut call = EndpointCall::post(params);
            call.method = req.method().as_str().to_owned();
            call.authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let all = |name: &str| -> Vec<String> {
                req.headers()
                    .get_all(name)
                    .iter()
                    .filter_map(|h| h.to_str().ok().map(str::to_owned))
                    .collect()
            };
            call.dpop = all("dpop");
            call.client_attestation = all("oauth-client-attestation");
            call.client_attestation_pop = all("oauth-client-attestation-pop");
            call
        };
        let server = &self.server;
        let response = match (&path, &method) {
            (RoutedPath::WellKnown { name, rest }, &Method::GET) if rest.is_empty() => {
                match name.as_str() {
                    "oauth-authorization-server" => json_result(server.metadata(&tenant)),
                    "openid-configuration" => match server.openid_configuration(&tenant) {
                        Err(Error::NotFound { .. }) => not_found(),
                        other => json_result(other),
                    },
                    _ => not_found(),
                }
            }
            (RoutedPath::Service { rest }, _) => match (rest.as_str(), &method) {
                ("/jwks.json", &Method::GET) => match server.jwks(&tenant).await {
                    Ok(jwks) => json_response(StatusCode::OK, &json!(jwks)),
                    Err(err) => oauth_error(&err, false),
                },
                ("/challenge", &Method::POST) => {
                    match server.attestation_challenge(&tenant).await {
                        Ok(challenge) => {
                            let mut response = json_response(StatusCode::OK, &json!(challenge));
                            if let Some(nonce) = challenge.dpop_nonce {
                                set_header(&mut response, "dpop-nonce", &nonce);
                            }
                            response
                        }
                        Err(err) => oauth_error(&err, false),
                    }
                }
                ("/authorize" | "/callback", &Method::GET) => {
                    let params = Params::parse(req.uri().query().unwrap_or_default());
                    authorize(server, &tenant, rest, &params).await
                }
                ("/authorize" | "/callback", &Method::POST) => {
                    let params = form(&mut req).await?;
                    authorize(server, &tenant, rest, &params).await
                }
                ("/token" | "/par" | "/introspect" | "/revoke", &Method::POST) => {
                    let params = form(&mut req).await?;
                    let call = call(params, &req);
                    let basic = call.authorization.is_some();
                    match rest.as_str() {
                        "/token" => match server.token(&tenant, &call).await {
                            Ok(outcome) => {
                                let mut response =
                                    json_response(StatusCode::OK, &json!(outcome.response));
                                if let Some(nonce) = outcome.dpop_nonce {
                                    set_header(&mut response, "dpop-nonce", &nonce);
                                }
                                response
                            }
                            Err(err) => oauth_error(&err, basic),
                        },
                        "/par" => match server.par(&tenant, &call).await {
                            Ok(par) => json_response(StatusCode::CREATED, &json!(par)),
                            Err(err) => oauth_error(&err, basic),
                        },
                        "/introspect" => match server.introspect(&tenant, &call).await {
                            Ok(body) => json_response(StatusCode::OK, &body),
                            Err(err) => oauth_error(&err, basic),
                        },
                        _ => match server.revoke(&tenant, &call).await {
                            Ok(()) => json_response(StatusCode::OK, &json!({})),
                            Err(err) => oauth_error(&err, basic),
                        },
                    }
                }
                (
                    "/jwks.json" | "/authorize" | "/callback" | "/token" | "/par" | "/introspect"
                    | "/revoke" | "/challenge",
                    _,
                ) => Response::builder()
                    .status(StatusCode::METHOD_NOT_ALLOWED)
                    .finish(),
                _ => not_found(),
            },
            _ => not_found(),
        };
        Ok(response)
    }
}

async fn form(req: &mut Request) -> poem::Result<Params> {
    let body = req.take_body().into_string().await?;
    Ok(Params::parse(&body))
}

async fn authorize(
    server: &AuthorizationServer,
    tenant: &TenantContext,
    path: &str,
    params: &Params,
) -> Response {
    let outcome = if path == "/callback" {
        server.callback(tenant, params).await
    } else {
        server.authorize(tenant, params).await
    };
    match outcome {
        Ok(AuthorizeOutcome::Redirect(url)) => {
            let mut response = Response::builder().status(StatusCode::SEE_OTHER).finish();
            set_header(&mut response, "location", url.as_str());
            set_header(&mut response, "cache-control", "no-store");
            response
        }
        Ok(AuthorizeOutcome::Refused { code, description }) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": code.as_str(), "error_description": description }),
        ),
        Ok(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "server_error"}),
        ),
        Err(err) => oauth_error(&err, false),
    }
}

fn json_result(result: Result<Value, Error>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => oauth_error(&err, false),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("application/json")
        .body(Body::from_string(body.to_string()));
    set_header(&mut response, "cache-control", "no-store");
    response
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error": "invalid_request", "error_description": "not found" }),
    )
}

/// The RFC 6749 §5.2 error response for `err`; `http_auth` says whether the client used the
/// `Authorization` header (then `invalid_client` carries `WWW-Authenticate`).
#[must_use]
pub fn oauth_error(err: &Error, http_auth: bool) -> Response {
    let code = err.code();
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::error!(error = %ErrorChain(err), "authorization server request failed");
    }
    let mut response = json_response(
        status,
        &json!({ "error": code.as_str(), "error_description": err.description() }),
    );
    match (err, code) {
        (Error::UseDpopNonce { nonce }, _) => {
            set_header(&mut response, "dpop-nonce", nonce);
        }
        (Error::UseAttestationChallenge { challenge, .. }, _) => {
            set_header(
                &mut response,
                "oauth-client-attestation-challenge",
                challenge,
            );
        }
        (_, OAuthErrorCode::InvalidClient) if http_auth => {
            set_header(&mut response, "www-authenticate", "Basic realm=\"oauth\"");
        }
        _ => {}
    }
    response
}
