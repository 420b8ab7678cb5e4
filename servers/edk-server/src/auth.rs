//! Admin authentication: bearer JWTs from trusted issuers, with audience, scope and tenant.
//!
//! [`AdminAuth`] is a middleware. For every path outside its anonymous prefixes it requires
//! `Authorization: Bearer <JWT>`, verifies the signature against the issuer's configured JWKS
//! (edk-core's JOSE: explicit algorithm allow-list, no `none`, no header-embedded keys),
//! validates `exp`/`nbf`/`iat`, `iss` and `aud` against an injected [`Clock`], and reads the
//! tenant from the `tenant` claim only. The verified [`AdminPrincipal`] goes into the request's
//! extensions; handlers take it through the [`AdminBearer`] security scheme and check scopes
//! with [`AdminPrincipal::require_scope`].
//!
//! A missing token is answered `401` with `WWW-Authenticate: Bearer`, a failing one `401` with
//! `Bearer error="invalid_token"` (RFC 6750 §3.1), a missing scope `403`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use poem::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use serde::Deserialize;
use serde_json::{Map, Value};

use edk_core::jose::{JoseError, JwkSet, JwksResolver, Jws, KeyResolver, Validation, VerifyPolicy};
use edk_core::{Clock, ErrorKind, HasKind, Limits, TenantId};

use crate::jwks::{JwksCachePolicy, RemoteJwks};
use crate::problem::{
    ApiError, CHALLENGE_INVALID_TOKEN, CHALLENGE_MISSING_TOKEN, Problem, ProblemType,
};

/// Admin authentication settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The audience admin tokens must name in `aud`. Default `edk-admin`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Default 60.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u32,
    /// The issuers whose tokens are accepted. Default none.
    #[serde(default)]
    pub issuers: Vec<TrustedIssuer>,
    /// How long a JWKS fetched from a `jwks_uri` is used, in seconds. Default 300.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_ttl_secs: u64,
    /// The shortest time between two fetches of one `jwks_uri` (a token with an unknown `kid`
    /// triggers one), in seconds. Default 30.
    #[serde(default = "default_jwks_min_refresh")]
    pub jwks_min_refresh_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            audience: default_audience(),
            leeway_secs: default_leeway(),
            issuers: Vec::new(),
            jwks_cache_ttl_secs: default_jwks_ttl(),
            jwks_min_refresh_secs: default_jwks_min_refresh(),
        }
    }
}

const fn default_jwks_ttl() -> u64 {
    300
}

const fn default_jwks_min_refresh() -> u64 {
    30
}

fn default_audience() -> String {
    "edk-admin".to_owned()
}

const fn default_leeway() -> u32 {
    60
}

/// An issuer of admin tokens and where its keys come from: exactly one of `jwks` (static)
/// and `jwks_uri` (fetched and cached).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// The issuer's public keys (a JWK Set, RFC 7517 §5).
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// The URL of the issuer's JWK Set, fetched with the server's HTTP client.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The tenants (by id) this issuer's tokens may act for; unset: every tenant. A token
    /// for another tenant is refused with 403.
    #[serde(default)]
    pub tenants: Option<Vec<TenantId>>,
}

impl TrustedIssuer {
    /// `issuer` with the static `jwks`.
    #[must_use]
    pub fn with_jwks(issuer: impl Into<String>, jwks: JwkSet) -> Self {
        Self {
            issuer: issuer.into(),
            jwks: Some(jwks),
            jwks_uri: None,
            tenants: None,
        }
    }

    /// The issuer, allowed to act only for `tenants`.
    #[must_use]
    pub fn for_tenants(mut self, tenants: impl IntoIterator<Item = TenantId>) -> Self {
        self.tenants = Some(tenants.into_iter().collect());
        self
    }

    /// `issuer` with keys fetched from `jwks_uri`.
    #[must_use]
    pub fn with_jwks_uri(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks: None,
            jwks_uri: Some(jwks_uri.into()),
            tenants: None,
        }
    }
}

/// Why the admin authentication could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// An issuer has both or neither of `jwks` and `jwks_uri`.
    #[error("trusted issuer `{issuer}` needs exactly one of `jwks` and `jwks_uri`")]
    KeySource {
        /// The issuer.
        issuer: String,
    },
    /// An issuer has a `jwks_uri` but no HTTP client was given.
    #[error("trusted issuer `{issuer}` has a `jwks_uri` but the server has no HTTP client")]
    NoHttpClient {
        /// The issuer.
        issuer: String,
    },
    /// An issuer is listed twice.
    #[error("trusted issuer `{issuer}` is listed twice")]
    Duplicate {
        /// The issuer.
        issuer: String,
    },
}

/// The caller an admin token proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminPrincipal {
    /// The token's issuer.
    pub issuer: String,
    /// The token's subject, if it has one.
    pub subject: Option<String>,
    /// The tenant from the token's `tenant` claim.
    pub tenant: TenantId,
    /// The scopes from the token's `scope` claim (space-separated, RFC 8693 §4.2).
    pub scopes: BTreeSet<String>,
}

impl AdminPrincipal {
    /// Succeeds when the token carries `scope`.
    ///
    /// # Errors
    /// A `403` [`ApiError`] naming the missing scope.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorKind::Forbidden,
            Some(format!("the token lacks the scope `{scope}`")),
        ))
    }
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    MissingToken,
    /// The token is not a well-formed, correctly signed and currently valid JWT.
    #[error("the token is not valid")]
    InvalidToken(#[source] JoseError),
    /// The token's `iss` is not a trusted issuer.
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    /// The token has no usable `tenant` claim.
    #[error("the token has no valid `tenant` claim")]
    MissingTenant,
    /// The token's issuer may not act for the token's tenant.
    #[error("the token's issuer may not act for this tenant")]
    TenantNotAllowed,
}

impl HasKind for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TenantNotAllowed => ErrorKind::Forbidden,
            _ => ErrorKind::Unauthenticated,
        }
    }
}

/// The admin-token middleware; see the [module documentation](self).
#[derive(Clone)]
pub struct AdminAuth {
    inner: Arc<Inner>,
}

/// A trusted issuer: its keys and the tenants it may act for (`None`: all).
struct Issuer {
    name: String,
    keys: Arc<dyn KeyResolver>,
    tenants: Option<BTreeSet<TenantId>>,
}

struct Inner {
    audience: String,
    leeway: i64,
    issuers: Vec<Issuer>,
    policy: VerifyPolicy,
    clock: Arc<dyn Clock>,
    anonymous: Vec<String>,
}

impl AdminAuth {
    /// The middleware for `config`, reading time from `clock`, letting requests to the
    /// `anonymous` path prefixes (e.g. `/health`) through without a token. A prefix matches
    /// whole path segments: `/docs` covers `/docs` and `/docs/x`, not `/docsx`. Issuers with a
    /// `jwks_uri` fetch their keys with `http` (its timeouts and TLS settings apply).
    ///
    /// # Errors
    /// [`AuthSetupError`] for an issuer without exactly one key source, listed twice, or with
    /// a `jwks_uri` and no `http` client.
    pub fn new(
        config: &AuthConfig,
        clock: Arc<dyn Clock>,
        anonymous: &[&str],
        http: Option<&reqwest::Client>,
    ) -> Result<Self, AuthSetupError> {
        let policy = JwksCachePolicy {
            ttl: Duration::from_secs(config.jwks_cache_ttl_secs),
            min_refresh_interval: Duration::from_secs(config.jwks_min_refresh_secs),
        };
        let mut issuers: Vec<Issuer> = Vec::new();
        for trusted in &config.issuers {
            let issuer = trusted.issuer.clone();
            if issuers.iter().any(|known| known.name == issuer) {
                return Err(AuthSetupError::Duplicate { issuer });
            }
            let resolver: Arc<dyn KeyResolver> = match (&trusted.jwks, &trusted.jwks_uri) {
                (Some(jwks), None) => Arc::new(JwksResolver::new(jwks).for_issuer(issuer.clone())),
                (None, Some(uri)) => {
                    let client = http.ok_or_else(|| AuthSetupError::NoHttpClient {
                        issuer: issuer.clone(),
                    })?;
                    Arc::new(RemoteJwks::new(
                        issuer.clone(),
                        uri.clone(),
                        client.clone(),
                        Arc::clone(&clock),
                        policy,
                    ))
                }
                _ => return Err(AuthSetupError::KeySource { issuer }),
            };
            issuers.push(Issuer {
                name: issuer,
                keys: resolver,
                tenants: trusted
                    .tenants
                    .as_ref()
                    .map(|tenants| tenants.iter().copied().collect()),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                audience: config.audience.clone(),
                leeway: i64::from(config.leeway_secs),
                issuers,
                policy: VerifyPolicy::default(),
                clock,
                anonymous: anonymous
                    .iter()
                    .map(|prefix| prefix.trim_end_matches('/').to_owned())
                    .collect(),
            }),
        })
    }

    /// Whether `path` is served without a token.
    #[must_use]
    pub fn is_anonymous(&self, path: &str) -> bool {
        self.inner
            .anonymous
            .iter()
            .any(|prefix| prefix.is_empty() || crate::serve::path_is_under(path, prefix))
    }

    /// Verifies the compact JWT `token`.
    ///
    /// # Errors
    /// [`AuthError`] saying why the token was refused.
    pub async fn verify(&self, token: &str) -> Result<AdminPrincipal, AuthError> {
        let inner = &self.inner;
        let jws = Jws::parse(token, &Limits::DEFAULT).map_err(AuthError::InvalidToken)?;
        let unverified: Map<String, Value> = serde_json::from_slice(jws.unverified_payload())
            .map_err(|_| AuthError::InvalidToken(JoseError::MissingClaim("iss")))?;
        let Some(Value::String(issuer)) = unverified.get("iss") else {
            return Err(AuthError::UntrustedIssuer);
        };
        let Some(trusted) = inner.issuers.iter().find(|known| known.name == *issuer) else {
            return Err(AuthError::UntrustedIssuer);
        };
        let issuer = &trusted.name;
        let verified = jws
            .verify_with(trusted.keys.as_ref(), &inner.policy, Some(issuer))
            .await
            .map_err(AuthError::InvalidToken)?;
        let claims = verified.claims().map_err(AuthError::InvalidToken)?;
        Validation::default()
            .with_issuer(issuer.clone())
            .with_audience(inner.audience.clone())
            .with_leeway(inner.leeway)
            .validate(&claims, inner.clock.unix_seconds())
            .map_err(AuthError::InvalidToken)?;
        let tenant: TenantId = match claims.get("tenant") {
            Some(Value::String(tenant)) => tenant.parse().map_err(|_| AuthError::MissingTenant)?,
            _ => return Err(AuthError::MissingTenant),
        };
        if trusted
            .tenants
            .as_ref()
            .is_some_and(|tenants| !tenants.contains(&tenant))
        {
            return Err(AuthError::TenantNotAllowed);
        }
        let scopes = match claims.get("scope") {
            Some(Value::String(scope)) => {
                scope.split_ascii_whitespace().map(str::to_owned).collect()
            }
            _ => BTreeSet::new(),
        };
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) => Some(sub.clone()),
            _ => None,
        };
        Ok(AdminPrincipal {
            issuer: issuer.clone(),
            subject,
            tenant,
            scopes,
        })
    }

    async fn authenticate(&self, req: &Request) -> Result<AdminPrincipal, AuthError> {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(AuthError::MissingToken)?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MissingToken)?;
        self.verify(token).await
    }
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminAuth")
            .field("audience", &self.inner.audience)
            .field(
                "issuers",
                &self
                    .inner
                    .issuers
                    .iter()
                    .map(|issuer| &issuer.name)
                    .collect::<Vec<_>>(),
            )
            .field("anonymous", &self.inner.anonymous)
            .finish_non_exhaustive()
    }
}

impl<E: Endpoint> Middleware<E> for AdminAuth {
    type Output = AdminAuthEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AdminAuthEndpoint {
            auth: self.clone(),
            inner,
        }
    }
}

/// The endpoint [`AdminAuth`] wraps around another.
#[derive(Debug)]
pub struct AdminAuthEndpoint<E> {
    auth: AdminAuth,
    inner: E,
}

impl<E: Endpoint> Endpoint for AdminAuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if self.auth.is_anonymous(req.uri().path()) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        match self.auth.authenticate(&req).await {
            Ok(principal) => {
                crate::observe::record_tenant(&req, principal.tenant);
                req.extensions_mut().insert(principal);
                self.inner.call(req).await.map(IntoResponse::into_response)
            }
            Err(AuthError::TenantNotAllowed) => {
                tracing::info!("admin token refused: its issuer may not act for its tenant");
                Ok(Problem::new(
                    ProblemType::Forbidden,
                    Some(AuthError::TenantNotAllowed.to_string()),
                )
                .into_response())
            }
            Err(err) => {
                tracing::info!(error = %edk_core::ErrorChain(&err), "admin token refused");
                let challenge = match err {
                    AuthError::MissingToken => CHALLENGE_MISSING_TOKEN,
                    _ => CHALLENGE_INVALID_TOKEN,
                };
                let mut response =
                    Problem::new(ProblemType::Unauthenticated, Some(err.to_string()))
                        .into_response();
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                Ok(response)
            }
        }
    }
}

/// The admin bearer-token security scheme, for poem-openapi handlers behind [`AdminAuth`].
///
/// Taking it as a handler argument documents the scheme in the OpenAPI document and hands
/// the handler the verified [`AdminPrincipal`].
#[derive(Debug, SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "principal_of")]
pub struct AdminBearer(pub AdminPrincipal);

async fn principal_of(req: &Request, _bearer: Bearer) -> poem::Result<AdminPrincipal> {
    req.extensions()
        .get::<AdminPrincipal>()
        .cloned()
        .ok_or_else(|| {
            poem::Error::from_response(
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    Some(AuthError::MissingToken.to_string()),
                )
                .into_response(),
            )
        })
}
