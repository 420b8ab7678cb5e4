//! The public, per-tenant protocol surface: routed by the tenant's AS endpoint binding, it
//! answers in OAuth's own formats (RFC 6749 §5.2 errors, `WWW-Authenticate`, `DPoP-Nonce`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edk_core::ErrorChain;
use edk_oauth::{
    AuthorizationServer, AuthorizeOutcome, EndpointCall, Error, OAuthErrorCode, Params,
};
use edk_server::rate_limit::{Decision, RateKey, RateLimiter, Scope};
use edk_server::routing::resolve_public;
use edk_tenancy::{RoutedPath, ServiceType, Tenancy, TenantContext};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The protocol endpoint: `/authorize`, `/callback`, `/par`, `/token`, `/introspect`,
/// `/revoke`, `/challenge`, `/jwks.json` and the well-known documents of every tenant's AS.
#[derive(Clone, Debug)]
pub struct ProtocolEndpoint {
    tenancy: Tenancy,
    server: Arc<AuthorizationServer>,
    limiter: Option<RateLimiter>,
}

impl ProtocolEndpoint {
    /// The endpoint over `tenancy`'s routing and `server`, with no rate limits.
    #[must_use]
    pub const fn new(tenancy: Tenancy, server: Arc<AuthorizationServer>) -> Self {
        Self {
            tenancy,
            server,
            limiter: None,
        }
    }

    /// The endpoint with `limiter`'s limits on `/authorize`, `/callback`, `/par` and `/token`:
    /// per client address and tenant, per client on `/authorize`, `/par` and `/token`, per
    /// refresh-token family and per pre-authorized code (`tx_code` attempts) on `/token`.
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The rate-limit refusal of a request to `endpoint` with `params`, if it is refused.
    /// Checked before any signature or database write, so a refused request changes nothing.
    async fn limited(
        &self,
        tenant: &TenantContext,
        req: &Request,
        endpoint: &str,
        params: &Params,
    ) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        let param = |name: &str| params.get(name).ok().flatten().filter(|v| !v.is_empty());
        let mut keys = vec![RateKey::tenant()];
        if let Some(ip) = limiter.client_ip(req) {
            keys.push(RateKey::ip(ip));
        }
        if endpoint != "/callback"
            && let Some(client) =
                basic_client_id(req).or_else(|| param("client_id").map(str::to_owned))
        {
            keys.push(RateKey::new(Scope::Client, client));
        }
        if endpoint == "/token" {
            match param("grant_type") {
                Some(PRE_AUTHORIZED_CODE_GRANT) => {
                    if let Some(code) = param("pre-authorized_code") {
                        keys.push(RateKey::new(Scope::PreAuthorizedCode, code));
                    }
                }
                Some("refresh_token") => {
                    if let Some(token) = param("refresh_token") {
                        keys.push(self.refresh_family(tenant, limiter, token).await);
                    }
                }
                _ => {}
            }
        }
        let decision = limiter.check(tenant, &keys).await;
        if let Decision::Limited { scope, .. } = decision {
            tracing::info!(
                tenant = %tenant.id(),
                endpoint,
                scope = scope.name(),
                "request refused by a rate limit"
            );
        }
        decision.oauth_response()
    }

    /// The refresh-token family key of `token`: the family its record names (one read), or
    /// the token itself when it has no current record.
    async fn refresh_family(
        &self,
        tenant: &TenantContext,
        limiter: &RateLimiter,
        token: &str,
    ) -> RateKey {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        let now = limiter.clock().unix_seconds();
        match self.server.store().refresh_token(tenant, &hash, now).await {
            Ok(Some(record)) => RateKey::new(Scope::RefreshTokenFamily, record.family),
            _ => RateKey::new(Scope::RefreshTokenFamily, hash),
        }
    }

    async fn resolve(&self, req: &Request) -> Option<(TenantContext, RoutedPath)> {
        let resolution =
            resolve_public(&self.tenancy, ServiceType::As, req, &APPENDED_DOCUMENTS).await?;
        Some((resolution.context, resolution.path))
    }
}

/// The grant type of OpenID4VCI's pre-authorized code flow.
const PRE_AUTHORIZED_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// The client id of an HTTP Basic `Authorization` header (RFC 6749 §2.3.1), as sent.
fn basic_client_id(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, _) = decoded.split_once(':')?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// The metadata documents also served at `<issuer>/.well-known/<name>`: OpenID Connect
/// Discovery §4 knows only that form, and wallets of drafts before OpenID4VCI 1.0 append
/// `oauth-authorization-server` too.
const APPENDED_DOCUMENTS: [&str; 2] = [OPENID_CONFIGURATION, "oauth-authorization-server"];

/// The well-known name of the OpenID Provider configuration.
const OPENID_CONFIGURATION: &str = "openid-configuration";

/// How long clients may cache the metadata documents and the JWKS, in seconds.
pub const DOCUMENT_MAX_AGE_SECS: u32 = 300;

/// The request headers a browser-based wallet may send to the CORS-enabled endpoints.
const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, DPoP, OAuth-Client-Attestation, OAuth-Client-Attestation-PoP";

/// The response headers a browser-based wallet may read.
const CORS_EXPOSE_HEADERS: &str =
    "DPoP-Nonce, WWW-Authenticate, OAuth-Client-Attestation-Challenge, Retry-After";

/// The methods of a wallet-facing path, when it is one (CORS-enabled: the metadata
/// documents, the JWKS, the token, PAR, challenge and revocation endpoints).
fn wallet_facing(path: &RoutedPath) -> Option<&'static str> {
    match path {
        RoutedPath::WellKnown { .. } => Some("GET, OPTIONS"),
        RoutedPath::Service { rest } => match rest.as_str() {
            "/jwks.json" => Some("GET, OPTIONS"),
            "/token" | "/par" | "/challenge" | "/revoke" => Some("POST, OPTIONS"),
            _ => None,
        },
        _ => None,
    }
}

/// The route template of a tenant's path, for the request's span and metrics: `{binding}`
/// stands for the tenant's binding; an unknown path is `/{binding}/unknown`.
fn route_of(path: &RoutedPath) -> &'static str {
    match path {
        RoutedPath::WellKnown { name, .. } => match name.as_str() {
            "oauth-authorization-server" => "/.well-known/oauth-authorization-server/{binding}",
            OPENID_CONFIGURATION => "/.well-known/openid-configuration/{binding}",
            _ => "/.well-known/unknown/{binding}",
        },
        RoutedPath::Service { rest } => match rest.as_str() {
            "/jwks.json" => "/{binding}/jwks.json",
            "/challenge" => "/{binding}/challenge",
            "/authorize" => "/{binding}/authorize",
            "/callback" => "/{binding}/callback",
            "/token" => "/{binding}/token",
            "/par" => "/{binding}/par",
            "/introspect" => "/{binding}/introspect",
            "/revoke" => "/{binding}/revoke",
            _ => "/{binding}/unknown",
        },
        _ => "/{binding}/unknown",
    }
}

/// The answer to a CORS preflight for a path allowing `methods`.
fn preflight(methods: &str) -> Response {
    let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
    set_header(&mut response, "access-control-allow-methods", methods);
    set_header(
        &mut response,
        "access-control-allow-headers",
        CORS_ALLOW_HEADERS,
    );
    set_header(&mut response, "access-control-max-age", "600");
    response
}

/// CORS for any origin: these endpoints use no cookies, so credentials are never allowed.
fn allow_any_origin(response: &mut Response) {
    set_header(response, "access-control-allow-origin", "*");
    set_header(
        response,
        "access-control-expose-headers",
        CORS_EXPOSE_HEADERS,
    );
}

/// A response that clients may cache for [`DOCUMENT_MAX_AGE_SECS`].
fn cacheable(mut response: Response) -> Response {
    if response.status() == StatusCode::OK {
        set_header(
            &mut response,
            "cache-control",
            &format!("public, max-age={DOCUMENT_MAX_AGE_SECS}"),
        );
    }
    response
}

impl Endpoint for ProtocolEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some((tenant, path)) = self.resolve(&req).await else {
            return Ok(not_found());
        };
        edk_server::observe::record_route(&req, route_of(&path));
        let method = req.method().clone();
        let cors = wallet_facing(&path);
        if let Some(methods) = cors
            && method == Method::OPTIONS
        {
            let mut response = preflight(methods);
            allow_any_origin(&mut response);
            return Ok(response);
        }
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
        let mut response = match (&path, &method) {
            (RoutedPath::WellKnown { name, rest }, &Method::GET) if rest.is_empty() => {
                match name.as_str() {
                    "oauth-authorization-server" => {
                        cacheable(json_result(server.metadata(&tenant)))
                    }
                    OPENID_CONFIGURATION => match server.openid_configuration(&tenant) {
                        Err(Error::NotFound { .. }) => not_found(),
                        other => cacheable(json_result(other)),
                    },
                    _ => not_found(),
                }
            }
            (RoutedPath::Service { rest }, _) => match (rest.as_str(), &method) {
                ("/jwks.json", &Method::GET) => match server.jwks(&tenant).await {
                    Ok(jwks) => cacheable(json_response(StatusCode::OK, &json!(jwks))),
                    Err(err) => oauth_error(&err),
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
                        Err(err) => oauth_error(&err),
                    }
                }
                ("/authorize" | "/callback", &Method::GET) => {
                    let params = Params::parse(req.uri().query().unwrap_or_default());
                    match self.limited(&tenant, &req, rest, &params).await {
                        Some(refused) => refused,
                        None => authorize(server, &tenant, rest, &params).await,
                    }
                }
                ("/authorize" | "/callback", &Method::POST) => {
                    let params = form(&mut req).await?;
                    match self.limited(&tenant, &req, rest, &params).await {
                        Some(refused) => refused,
                        None => authorize(server, &tenant, rest, &params).await,
                    }
                }
                ("/token" | "/par" | "/introspect" | "/revoke", &Method::POST) => {
                    let params = form(&mut req).await?;
                    let limited = if matches!(rest.as_str(), "/token" | "/par") {
                        self.limited(&tenant, &req, rest, &params).await
                    } else {
                        None
                    };
                    if let Some(mut refused) = limited {
                        if cors.is_some() {
                            allow_any_origin(&mut refused);
                        }
                        return Ok(refused);
                    }
                    let call = call(params, &req);
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
                            Err(err) => oauth_error(&err),
                        },
                        "/par" => match server.par(&tenant, &call).await {
                            Ok(par) => json_response(StatusCode::CREATED, &json!(par)),
                            Err(err) => oauth_error(&err),
                        },
                        "/introspect" => match server.introspect(&tenant, &call).await {
                            Ok(body) => json_response(StatusCode::OK, &body),
                            Err(err) => oauth_error(&err),
                        },
                        _ => match server.revoke(&tenant, &call).await {
                            Ok(()) => json_response(StatusCode::OK, &json!({})),
                            Err(err) => oauth_error(&err),
                        },
                    }
                }
                (
                    endpoint @ ("/jwks.json" | "/authorize" | "/callback" | "/token" | "/par"
                    | "/introspect" | "/revoke" | "/challenge"),
                    _,
                ) => {
                    // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
                    let allow = match (endpoint, cors) {
                        (_, Some(methods)) => methods,
                        ("/authorize" | "/callback", None) => "GET, POST",
                        _ => "POST",
                    };
                    let mut response = Response::builder()
                        .status(StatusCode::METHOD_NOT_ALLOWED)
                        .finish();
                    set_header(&mut response, "allow", allow);
                    response
                }
                _ => not_found(),
            },
            _ => not_found(),
        };
        if cors.is_some() {
            allow_any_origin(&mut response);
        }
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
        Err(err) => oauth_error(&err),
    }
}

fn json_result(result: Result<Value, Error>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(err) => oauth_error(&err),
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

/// The RFC 6749 §5.2 error response for `err`. Every 401 carries `WWW-Authenticate` (RFC 9110
/// §11.6.1): `Bearer` for `invalid_token`, else the `Basic` challenge of client
/// authentication; a 503 carries `Retry-After`.
#[must_use]
pub fn oauth_error(err: &Error) -> Response {
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
        _ => {}
    }
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if code == OAuthErrorCode::InvalidToken {
            "Bearer error=\"invalid_token\""
        } else {
            "Basic realm=\"oauth\""
        };
        set_header(&mut response, "www-authenticate", challenge);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        set_header(&mut response, "retry-after", "1");
    }
    response
}
