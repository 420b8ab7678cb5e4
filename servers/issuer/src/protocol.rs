//! The public, per-tenant issuer surface routed by the tenant's `issuer` endpoint binding:
//! Credential Issuer Metadata, the nonce endpoint, the credential, deferred credential and
//! notification endpoints and offers by reference, answering in OpenID4VCI's own formats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edk_core::jose::KeyResolver;
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind as _};
use edk_oauth::dpop::DPOP_ALGORITHMS;
use edk_oauth::{
    AccessTokenValidator, AuthorizationServer, OAuthErrorCode, RemoteJwks, ResourceRequest,
    StoreReplayCache, ValidatedToken,
};
use edk_oid4vci::RequestBody;
use edk_oid4vci::issuer::Error as IssuerError;
use edk_oid4vci::{CredentialAnswer, CredentialErrorCode, Issuer, IssuerEndpoints, ProtocolError};
use edk_server::rate_limit::{RateKey, RateLimiter};
use edk_server::routing::resolve_public;
use edk_server::{Problem, ProblemType};
use edk_tenancy::{RoutedPath, ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use serde_json::{Value, json};

/// The well-known name of the Credential Issuer Metadata (OpenID4VCI §12.2.2).
pub const METADATA_WELL_KNOWN: &str = "openid-credential-issuer";

/// The well-known name of the JWT VC Issuer Metadata (SD-JWT VC §5).
pub const JWT_VC_ISSUER_WELL_KNOWN: &str = "jwt-vc-issuer";

/// The request headers a browser-based wallet may send.
const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP";

/// The response headers a browser-based wallet may read.
const CORS_EXPOSE_HEADERS: &str = "WWW-Authenticate, DPoP-Nonce, ETag";

/// How long a tenant AS's JWKS fetched from its `jwks_uri` is cached.
const JWKS_CACHE: Duration = Duration::from_secs(300);

/// Where the credential endpoint finds the keys of the access tokens it accepts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TokenKeys {
    /// The versions of the tenant AS's access-token signing key in the KMS shared with it
    /// (`AuthorizationServer::access_token_keys`).
    Kms,
    /// The JWKS at the tenant AS's `jwks_uri`, fetched with this client (which carries the
    /// timeouts) and cached: the issuer then needs no access to the AS's keys in the KMS.
    JwksUri(reqwest::Client),
}

/// The issuer endpoint of every tenant: `/.well-known/openid-credential-issuer[/<path>]`,
/// `<issuer>/nonce`, `<issuer>/credential`, `<issuer>/deferred_credential`,
/// `<issuer>/notification`, `<issuer>/offers/<handle>`, the status lists at
/// `<issuer>/status-lists[/<id>]` and the Type Metadata at `<issuer>/types/<name>`.
#[derive(Clone, Debug)]
pub struct ProtocolEndpoint {
    tenancy: Tenancy,
    issuer: Arc<Issuer>,
    server: Arc<AuthorizationServer>,
    clock: Arc<dyn Clock>,
    metadata_max_age_secs: u32,
    keys: TokenKeys,
    jwks: Arc<Mutex<HashMap<String, Arc<RemoteJwks>>>>,
    limiter: Option<RateLimiter>,
}

/// A tenant as the issuer surface sees it: its issuer binding and its AS binding.
pub(crate) struct Bound {
    /// The tenant with its `issuer` binding.
    pub(crate) issuer: TenantContext,
    /// The tenant with its `as` binding.
    pub(crate) authorization_server: TenantContext,
    /// The URLs built from both bindings.
    pub(crate) endpoints: IssuerEndpoints,
}

/// The issuer endpoints of `tenant` (which carries its `issuer` binding), with its AS.
///
/// # Errors
/// The tenancy's error when the tenant has no AS binding or the bindings are unusable.
pub(crate) async fn bound(
    tenancy: &Tenancy,
    tenant: TenantContext,
) -> Result<Bound, edk_tenancy::Error> {
    let authorization_server = tenancy
        .context_for_service(tenant.id(), ServiceType::As)
        .await?;
    let credential_issuer = tenant
        .binding()
        .map(|binding| binding.identifier().to_owned())
        .ok_or(edk_tenancy::Error::NoBinding {
            service: ServiceType::Issuer,
        })?;
    let as_issuer = AuthorizationServer::issuer(&authorization_server).map_err(|_| {
        edk_tenancy::Error::NoBinding {
            service: ServiceType::As,
        }
    })?;
    Ok(Bound {
        endpoints: IssuerEndpoints::under(&credential_issuer, &as_issuer),
        issuer: tenant,
        authorization_server,
    })
}

impl ProtocolEndpoint {
    /// The endpoint over `tenancy`'s routing, issuing with `issuer` and validating access
    /// tokens of the tenants' authorization server `server` (in this process) at the time
    /// of `clock`, with the keys `keys` names; wallets may cache the metadata for
    /// `metadata_max_age_secs`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        issuer: Arc<Issuer>,
        server: Arc<AuthorizationServer>,
        clock: Arc<dyn Clock>,
        metadata_max_age_secs: u32,
        keys: TokenKeys,
    ) -> Self {
        Self {
            tenancy,
            issuer,
            server,
            clock,
            metadata_max_age_secs,
            keys,
            jwks: Arc::default(),
            limiter: None,
        }
    }

    /// The endpoint with `limiter`'s per-tenant and per-address limits on every request of
    /// the public surface, checked before any signature or database write.
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The rate-limit refusal of `req` for `tenant` (OAuth error format), if it is refused.
    async fn limited(&self, tenant: &TenantContext, req: &Request) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        let mut keys = vec![RateKey::tenant()];
        if let Some(ip) = limiter.client_ip(req) {
            keys.push(RateKey::ip(ip));
        }
        limiter.check(tenant, &keys).await.oauth_response()
    }

    /// The keys of the access tokens of `bound`'s authorization server.
    fn token_keys(&self, bound: &Bound) -> Result<Arc<dyn KeyResolver>, edk_oauth::Error> {
        let TokenKeys::JwksUri(http) = &self.keys else {
            return Ok(self.server.access_token_keys(&bound.authorization_server));
        };
        let url = AuthorizationServer::endpoint_url(&bound.authorization_server, "jwks.json")?;
        let mut cache = self.jwks.lock().map_err(|_| edk_oauth::Error::Internal {
            what: "JWKS cache poisoned",
        })?;
        let jwks = cache.entry(url.clone()).or_insert_with(|| {
            Arc::new(RemoteJwks::new(
                url,
                http.clone(),
                Arc::clone(&self.clock),
                JWKS_CACHE,
            ))
        });
        Ok(Arc::clone(jwks) as Arc<dyn KeyResolver>)
    }

    /// Whether `req` is for a path of this surface (a tenant's issuer binding resolves it to
    /// the metadata, nonce, credential or offer path), so that a server that also serves
    /// other surfaces on the same hosts (the all-in-one `edk`) sends it here.
    pub async fn serves(&self, req: &Request) -> bool {
        self.resolve(req)
            .await
            .is_some_and(|(_, path)| methods_of(&path).is_some())
    }

    async fn resolve(&self, req: &Request) -> Option<(TenantContext, RoutedPath)> {
        // Drafts before OpenID4VCI 1.0 appended the well-known path to the issuer identifier;
        // wallets of those drafts find the metadata there while earlier drafts are accepted.
        let appended: &[&str] = if self.issuer.options().accept_legacy {
            &[METADATA_WELL_KNOWN]
        } else {
            &[]
        };
        let resolution = resolve_public(&self.tenancy, ServiceType::Issuer, req, appended).await?;
        Some((resolution.context, resolution.path))
    }

    async fn jwt_vc_issuer(&self, bound: &Bound) -> Response {
        let metadata = self
            .issuer
            .jwt_vc_issuer_metadata(&bound.issuer, &bound.endpoints)
            .await;
        self.document(metadata)
    }

    /// The Credential Issuer Metadata: JSON, or a signed JWT (`application/jwt`) when the
    /// `Accept` header prefers it (OpenID4VCI 1.0 §12.2.2); `Vary: Accept` either way.
    async fn metadata(&self, bound: &Bound, accept: Option<&str>) -> Response {
        let mut response = if prefers_jwt(accept) {
            match self
                .issuer
                .signed_metadata(
                    &bound.issuer,
                    &bound.endpoints,
                    i64::from(self.metadata_max_age_secs),
                )
                .await
            {
                Ok(jwt) => {
                    let mut response = Response::builder()
                        .status(StatusCode::OK)
                        .content_type("application/jwt")
                        .body(jwt);
                    set_header(
                        &mut response,
                        "cache-control",
                        &format!("public, max-age={}", self.metadata_max_age_secs),
                    );
                    response
                }
                Err(err) => internal(&err),
            }
        } else {
            let metadata = self.issuer.metadata(&bound.issuer, &bound.endpoints).await;
            self.document(metadata.map(|metadata| json!(metadata)))
        };
        set_header(&mut response, "vary", "accept");
        response
    }

    /// A public metadata document that wallets and verifiers may cache.
    fn document(&self, document: Result<Value, IssuerError>) -> Response {
        match document {
            Ok(document) => {
                let mut response = json_response(StatusCode::OK, &document);
                set_header(
                    &mut response,
                    "cache-control",
                    &format!("public, max-age={}", self.metadata_max_age_secs),
                );
                response
            }
            Err(err) => internal(&err),
        }
    }

    /// The SD-JWT VC Type Metadata of the configuration whose `vct` is this URL.
    async fn type_metadata(&self, bound: &Bound, name: &str) -> Response {
        match self
            .issuer
            .type_metadata(&bound.issuer, &bound.endpoints, name)
            .await
        {
            Ok(Some(document)) => {
                let mut response = Response::builder()
                    .status(StatusCode::OK)
                    .content_type("application/json")
                    .body(Body::from_vec(document));
                set_header(
                    &mut response,
                    "cache-control",
                    &format!("public, max-age={}", self.metadata_max_age_secs),
                );
                response
            }
            Ok(None) => not_found(),
            Err(err) => internal(&err),
        }
    }

    async fn nonce(&self, bound: &Bound) -> Response {
        match self.issuer.nonce(&bound.issuer).await {
            Ok(nonce) => json_response(StatusCode::OK, &json!({ "c_nonce": nonce.c_nonce })),
            Err(err) => internal(&err),
        }
    }

    async fn offer(&self, bound: &Bound, handle: &str) -> Response {
        match self.issuer.offer_by_reference(&bound.issuer, handle).await {
            Ok(offer) => json_response(StatusCode::OK, &offer),
            Err(IssuerError::NotFound(_)) => not_found(),
            Err(err) => internal(&err),
        }
    }

    /// The access token of `req` for `endpoint`, validated for the tenant's issuer; the
    /// refusal to answer otherwise.
    async fn authorize(
        &self,
        bound: &Bound,
        req: &Request,
        endpoint: &str,
    ) -> Result<ValidatedToken, Response> {
        let keys = self.token_keys(bound).map_err(|err| internal(&err))?;
        let validator = AccessTokenValidator::new(
            bound.endpoints.authorization_server.clone(),
            bound.endpoints.credential_issuer.clone(),
            keys,
            Arc::clone(&self.clock),
        )
        .with_replay_cache(Arc::new(StoreReplayCache::new(
            Arc::clone(self.server.store()),
            bound.authorization_server.clone(),
        )));
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let Some(authorization) = authorization else {
            return Err(token_challenge(None));
        };
        let dpop_scheme = authorization
            .split_once(' ')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("dpop"));
        let mut resource =
            ResourceRequest::new(req.method().as_str(), endpoint, Some(authorization));
        for proof in req.headers().get_all("dpop") {
            if let Ok(proof) = proof.to_str() {
                resource = resource.with_dpop(proof);
            }
        }
        validator
            .validate(&resource)
            .await
            .map_err(|err| token_refused(&err, dpop_scheme))
    }

    async fn credential(&self, bound: &Bound, req: &mut Request) -> poem::Result<Response> {
        let token = match self
            .authorize(bound, req, &bound.endpoints.credential_endpoint)
            .await
        {
            Ok(token) => token,
            Err(response) => return Ok(response),
        };
        let body = match request_body(req).await? {
            Ok(body) => body,
            Err(err) => return Ok(protocol_error(&err)),
        };
        let result = self
            .issuer
            .credential_message(&bound.issuer, &bound.endpoints, &token, body.as_request())
            .await;
        Ok(credential_answer(result))
    }

    async fn deferred_credential(
        &self,
        bound: &Bound,
        req: &mut Request,
    ) -> poem::Result<Response> {
        let token = match self
            .authorize(bound, req, &bound.endpoints.deferred_credential_endpoint)
            .await
        {
            Ok(token) => token,
            Err(response) => return Ok(response),
        };
        let body = match request_body(req).await? {
            Ok(body) => body,
            Err(err) => return Ok(protocol_error(&err)),
        };
        let result = self
            .issuer
            .deferred_credential_message(&bound.issuer, &token, body.as_request())
            .await;
        Ok(credential_answer(result))
    }
}

impl ProtocolEndpoint {
    /// The notification endpoint (§11): 204, or 400 with `invalid_notification_id` or
    /// `invalid_notification_request`.
    async fn notification(&self, bound: &Bound, req: &mut Request) -> poem::Result<Response> {
        let token = match self
            .authorize(bound, req, &bound.endpoints.notification_endpoint)
            .await
        {
            Ok(token) => token,
            Err(response) => return Ok(response),
        };
        let body = req.take_body().into_bytes().await?;
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return Ok(protocol_error(&ProtocolError::new(
                CredentialErrorCode::InvalidNotificationRequest,
                "the request body is not JSON",
            )));
        };
        Ok(
            match self.issuer.notification(&bound.issuer, &token, &body).await {
                Ok(()) => {
                    let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
                    set_header(&mut response, "cache-control", "no-store");
                    response
                }
                Err(IssuerError::Protocol(err)) => protocol_error(&err),
                Err(err) => internal(&err),
            },
        )
    }
}

/// The answer of the credential and deferred credential endpoints: 200 with credentials,
/// 202 with a transaction to poll (§8.3, §9.2), 400 with the protocol's error.
/// Whether the request says its body is a JWT (an encrypted request, §10).
fn is_jwt(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/jwt"))
}

/// A request body read for the credential or deferred credential endpoint.
enum ReadBody {
    Json(Value),
    Jwt(String),
}

impl ReadBody {
    fn as_request(&self) -> RequestBody<'_> {
        match self {
            Self::Json(value) => RequestBody::Json(value),
            Self::Jwt(token) => RequestBody::Encrypted(token),
        }
    }
}

/// The body of a credential or deferred credential request: JSON, or a compact JWE when it
/// came as `application/jwt`.
async fn request_body(req: &mut Request) -> poem::Result<Result<ReadBody, ProtocolError>> {
    let jwt = is_jwt(req);
    let body = req.take_body().into_bytes().await?;
    if jwt {
        return Ok(match std::str::from_utf8(&body) {
            Ok(token) => Ok(ReadBody::Jwt(token.trim().to_owned())),
            Err(_) => Err(ProtocolError::new(
                CredentialErrorCode::InvalidEncryptionParameters,
                "the request body is not a compact JWE",
            )),
        });
    }
    Ok(serde_json::from_slice::<Value>(&body)
        .map(ReadBody::Json)
        .map_err(|_| {
            ProtocolError::new(
                CredentialErrorCode::InvalidCredentialRequest,
                "the request body is not JSON",
            )
        }))
}

fn credential_answer(result: Result<CredentialAnswer, IssuerError>) -> Response {
    match result {
        Ok(answer) => {
            let status = if answer.response.is_deferred() {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            match answer.encrypted {
                Some(jwe) => {
                    let mut response = Response::builder()
                        .status(status)
                        .content_type("application/jwt")
                        .body(Body::from_string(jwe));
                    set_header(&mut response, "cache-control", "no-store");
                    response
                }
                None => json_response(status, &answer.response.to_json()),
            }
        }
        Err(IssuerError::Protocol(err)) => protocol_error(&err),
        Err(err) if err.kind().is_client_error() => protocol_error(&ProtocolError::new(
            CredentialErrorCode::InvalidCredentialRequest,
            err.to_string(),
        )),
        Err(err) => internal(&err),
    }
}

/// The methods of each path of the surface, for CORS and `405`.
fn methods_of(path: &RoutedPath) -> Option<&'static str> {
    match path {
        RoutedPath::WellKnown { name, rest }
            if (name == METADATA_WELL_KNOWN || name == JWT_VC_ISSUER_WELL_KNOWN)
                && rest.is_empty() =>
        {
            Some("GET, OPTIONS")
        }
        RoutedPath::Service { rest } => match rest.as_str() {
            "/nonce" | "/credential" | "/deferred_credential" | "/notification" => {
                Some("POST, OPTIONS")
            }
            "/status-lists" => Some("GET, OPTIONS"),
            _ if type_name(rest).is_some() => Some("GET, OPTIONS"),
            _ if offer_handle(rest).is_some() => Some("GET, OPTIONS"),
            _ if crate::status_lists::list_id(rest).is_some() => Some("GET, OPTIONS"),
            _ => None,
        },
        _ => None,
    }
}

/// The route template of a path [`methods_of`] accepts, for the request's span and metrics:
/// `{binding}` stands for the tenant's binding, and an offer's handle is never named.
fn route_of(path: &RoutedPath) -> &'static str {
    match path {
        RoutedPath::WellKnown { name, .. } if name == JWT_VC_ISSUER_WELL_KNOWN => {
            "/.well-known/jwt-vc-issuer/{binding}"
        }
        RoutedPath::WellKnown { .. } => "/.well-known/openid-credential-issuer/{binding}",
        RoutedPath::Service { rest } => match rest.as_str() {
            "/nonce" => "/{binding}/nonce",
            "/credential" => "/{binding}/credential",
            "/deferred_credential" => "/{binding}/deferred_credential",
            "/notification" => "/{binding}/notification",
            _ => "/{binding}/offers/{handle}",
        },
        _ => "/{binding}",
    }
}

/// The name of a `/types/<name>` path.
fn type_name(rest: &str) -> Option<&str> {
    rest.strip_prefix("/types/").filter(|name| {
        !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
}

/// The handle of an `/offers/<handle>` path.
fn offer_handle(rest: &str) -> Option<&str> {
    rest.strip_prefix("/offers/")
        .filter(|handle| !handle.is_empty() && !handle.contains('/'))
}

impl Endpoint for ProtocolEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some((tenant, path)) = self.resolve(&req).await else {
            return Ok(not_found());
        };
        let Some(methods) = methods_of(&path) else {
            return Ok(not_found());
        };
        edk_server::observe::record_route(&req, route_of(&path));
        let method = req.method().clone();
        let mut response = if method == Method::OPTIONS {
            let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
            set_header(&mut response, "access-control-allow-methods", methods);
            set_header(
                &mut response,
                "access-control-allow-headers",
                CORS_ALLOW_HEADERS,
            );
            set_header(&mut response, "access-control-max-age", "600");
            response
        } else if !methods.starts_with(method.as_str()) {
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            let mut response = Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .finish();
            set_header(&mut response, "allow", methods);
            response
        } else if let Some(refused) = self.limited(&tenant, &req).await {
            refused
        } else {
            match bound(&self.tenancy, tenant).await {
                Err(err) => internal(&err),
                Ok(bound) => match &path {
                    RoutedPath::WellKnown { name, .. } if name == JWT_VC_ISSUER_WELL_KNOWN => {
                        self.jwt_vc_issuer(&bound).await
                    }
                    RoutedPath::WellKnown { .. } => {
                        let accept = req
                            .headers()
                            .get(header::ACCEPT)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned);
                        self.metadata(&bound, accept.as_deref()).await
                    }
                    RoutedPath::Service { rest } => match rest.as_str() {
                        "/nonce" => self.nonce(&bound).await,
                        "/credential" => self.credential(&bound, &mut req).await?,
                        "/deferred_credential" => {
                            self.deferred_credential(&bound, &mut req).await?
                        }
                        "/notification" => self.notification(&bound, &mut req).await?,
                        "/status-lists" => {
                            crate::status_lists::aggregation(&self.issuer, &bound).await
                        }
                        other => {
                            if let Some(handle) = offer_handle(other) {
                                self.offer(&bound, handle).await
                            } else if let Some(name) = type_name(other) {
                                self.type_metadata(&bound, name).await
                            } else if let Some(id) = crate::status_lists::list_id(other) {
                                crate::status_lists::status_list(
                                    &self.issuer,
                                    self.clock.as_ref(),
                                    &bound,
                                    id,
                                    &req,
                                )
                                .await
                            } else {
                                not_found()
                            }
                        }
                    },
                    _ => not_found(),
                },
            }
        };
        set_header(&mut response, "access-control-allow-origin", "*");
        set_header(
            &mut response,
            "access-control-expose-headers",
            CORS_EXPOSE_HEADERS,
        );
        Ok(response)
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("application/json")
        .body(Body::from_string(body.to_string()));
    set_header(&mut response, "cache-control", "no-store");
    response
}

pub(crate) fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub(crate) fn not_found() -> Response {
    let mut response = Problem::new(ProblemType::NotFound, None).into_response();
    set_header(&mut response, "cache-control", "no-store");
    response
}

/// A failure on the issuer's side: logged with its chain, answered without detail.
/// A failure of the issuer or of what it depends on, the detail only logged: 503 with
/// `Retry-After` when a dependency is unavailable (the database, the KMS), so clients retry
/// and nothing unsigned or stale is served; 500 otherwise.
pub(crate) fn internal<E: std::error::Error + edk_core::HasKind + 'static>(err: &E) -> Response {
    let mut response = if err.kind() == ErrorKind::Unavailable {
        tracing::warn!(error = %ErrorChain(err), "issuer request failed: a dependency is unavailable");
        let mut response = Problem::new(ProblemType::Unavailable, None).into_response();
        set_header(&mut response, "retry-after", "1");
        response
    } else {
        tracing::error!(error = %ErrorChain(err), "issuer request failed");
        Problem::new(ProblemType::Internal, None).into_response()
    };
    set_header(&mut response, "cache-control", "no-store");
    response
}

/// A credential endpoint refusal (§8.3.1.2): 400 with `{"error","error_description"}`.
fn protocol_error(err: &ProtocolError) -> Response {
    json_response(StatusCode::BAD_REQUEST, &err.to_json())
}

/// The `algs` parameter of a DPoP challenge (RFC 9449 §7.1).
fn dpop_algs() -> String {
    DPOP_ALGORITHMS
        .iter()
        .map(|alg| alg.name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// 401 for a request without an access token: both schemes are challenged, without an error
/// code (RFC 6750 §3.1).
fn token_challenge(error: Option<(&str, &str, bool)>) -> Response {
    let mut response = match error {
        None => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("cache-control", "no-store")
            .finish(),
        Some((code, description, _)) => json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": code, "error_description": description }),
        ),
    };
    let challenges = match error {
        None => vec![
            "Bearer".to_owned(),
            format!("DPoP algs=\"{}\"", dpop_algs()),
        ],
        Some((code, _, true)) => vec![format!("DPoP error=\"{code}\", algs=\"{}\"", dpop_algs())],
        Some((code, _, false)) => vec![format!("Bearer error=\"{code}\"")],
    };
    for challenge in challenges {
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// The answer to an access token that failed validation (RFC 6750 §3.1, RFC 9449 §7.1).
fn token_refused(err: &edk_oauth::Error, dpop_scheme: bool) -> Response {
    let code = err.code();
    let description = err.description();
    match code {
        OAuthErrorCode::InvalidToken | OAuthErrorCode::InvalidDpopProof => {
            token_challenge(Some((code.as_str(), &description, dpop_scheme)))
        }
        OAuthErrorCode::InvalidRequest => {
            let mut response = json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": code.as_str(), "error_description": description }),
            );
            let challenge = if dpop_scheme {
                format!("DPoP error=\"invalid_request\", algs=\"{}\"", dpop_algs())
            } else {
                "Bearer error=\"invalid_request\"".to_owned()
            };
            set_header(&mut response, "www-authenticate", &challenge);
            response
        }
        _ if err.kind() == ErrorKind::Unavailable => {
            tracing::warn!(error = %ErrorChain(err), "access token keys unavailable");
            let mut response = Problem::new(ProblemType::Unavailable, None).into_response();
            set_header(&mut response, "retry-after", "1");
            set_header(&mut response, "cache-control", "no-store");
            response
        }
        _ => internal(err),
    }
}

/// Whether `accept` prefers `application/jwt` to `application/json` (a higher quality; a
/// header without `application/jwt`, or none, keeps JSON).
fn prefers_jwt(accept: Option<&str>) -> bool {
    edk_server::negotiate::negotiate(accept, &["application/json", "application/jwt"])
        == Some("application/jwt")
}
