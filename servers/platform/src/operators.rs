//! The operator authorization server and the authentication of the platform API.
//!
//! Operators are clients of an edk-oauth authorization server that belongs to the platform,
//! not to a customer: its state lives in the reserved tenant [`OPERATOR_REALM_SLUG`], which
//! the tenant API never lists or changes, and it is bound on the platform host under
//! [`OPERATOR_PREFIX`]. It issues access tokens by client credentials carrying platform
//! scopes ([`scope`]). [`PlatformAuth`] checks them on every platform route against the
//! realm's access-token signing keys (the keys its JWKS publishes) and hands handlers a
//! [`PlatformPrincipal`] through [`PlatformBearer`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use poem::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use edk_core::{Clock, ErrorChain, ErrorKind, HasKind, TenantId, TenantSlug};
use edk_kms::Kms;
use edk_oauth::{AccessTokenKeys, AccessTokenValidator, ResourceRequest};
use edk_server::problem::{CHALLENGE_INVALID_TOKEN, CHALLENGE_MISSING_TOKEN};
use edk_server::{AdminAuth, ApiError, Problem, ProblemType, path_is_under};
use edk_tenancy::{
    EndpointBinding, EndpointScheme, ServiceType, Tenancy, TenantDirectory as _, WellKnownLayout,
};

/// The platform scopes an operator token may carry.
pub mod scope {
    /// Lists and reads tenants and their onboarding.
    pub const TENANTS_READ: &str = "platform:tenants:read";
    /// Creates, suspends, resumes and deletes tenants.
    pub const TENANTS_WRITE: &str = "platform:tenants:write";
    /// Reads a tenant's endpoint bindings: an operator's for every tenant, a tenant
    /// administrator's (a token naming its tenant) for that tenant only.
    pub const TENANT_CONFIG_READ: &str = "tenant:config:read";
    /// Changes a tenant's endpoint bindings and configuration, as [`TENANT_CONFIG_READ`].
    pub const TENANT_CONFIG_WRITE: &str = "tenant:config:write";
    /// Reads the upstream users allowed as operators.
    pub const OPERATORS_READ: &str = "platform:operators:read";
    /// Sets the operators' upstream OpenID Provider, allows upstream users as operators and
    /// registers operator clients.
    pub const OPERATORS_WRITE: &str = "platform:operators:write";
    /// Reads a tenant's audit chain and verifies it: an operator's for every tenant, a
    /// tenant administrator's for that tenant only.
    pub const TENANT_AUDIT_READ: &str = "tenant:audit:read";
    /// Every scope, as the first operator gets them.
    pub const ALL: [&str; 7] = [
        TENANTS_READ,
        TENANTS_WRITE,
        TENANT_CONFIG_READ,
        TENANT_CONFIG_WRITE,
        TENANT_AUDIT_READ,
        OPERATORS_READ,
        OPERATORS_WRITE,
    ];
}

/// The access-token claim naming the tenant of a tenant administrator's token.
pub const TENANT_CLAIM: &str = "tenant";

/// The prefix of the scopes only operators get.
pub const PLATFORM_SCOPE_PREFIX: &str = "platform:";

/// The slug of the reserved tenant that holds the operator authorization server's state.
/// The KMS keeps the runtime services' identity aliases there too
/// ([`edk_kms::kms::SERVICE_IDENTITY_REALM`]).
pub const OPERATOR_REALM_SLUG: &str = edk_kms::kms::SERVICE_IDENTITY_REALM;

/// The path prefix of the operator authorization server on the platform host.
pub const OPERATOR_PREFIX: &str = "/operators";

/// The path prefix of the platform API.
pub const API_PREFIX: &str = "/api/platform/v1";

/// The path of the first-run setup, served without a token.
pub const SETUP_PATH: &str = "/api/platform/v1/setup";

/// Why the operator realm could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealmError {
    /// The platform host cannot be bound.
    #[error("the platform host cannot be bound")]
    Binding(#[source] edk_tenancy::error::BindingError),
    /// The tenancy refused.
    #[error("the operator realm cannot be provisioned")]
    Tenancy(#[source] edk_tenancy::Error),
}

/// The reserved tenant of the operator authorization server, provisioned if missing.
///
/// # Errors
/// [`RealmError::Tenancy`] when it cannot be read or provisioned.
pub async fn operator_realm(tenancy: &Tenancy) -> Result<TenantId, RealmError> {
    #[expect(clippy::expect_used, reason = "the realm slug is a valid constant")]
    let slug = TenantSlug::new(OPERATOR_REALM_SLUG).expect("valid tenant slug");
    let tenant = tenancy
        .provision(slug, "Platform operators")
        .await
        .map_err(RealmError::Tenancy)?;
    Ok(tenant.id)
}

/// Binds the operator authorization server of `realm` to `host` (and `port`) under
/// [`OPERATOR_PREFIX`], advertising `http` when `loopback_http` (loopback hosts only),
/// replacing a different binding.
///
/// # Errors
/// [`RealmError::Binding`] for a host that cannot be bound, [`RealmError::Tenancy`] when the
/// binding cannot be stored.
pub async fn bind_operator_endpoint(
    tenancy: &Tenancy,
    realm: TenantId,
    host: &str,
    port: Option<u16>,
    loopback_http: bool,
) -> Result<(), RealmError> {
    let binding = if loopback_http {
        EndpointBinding::dangerous_loopback_http(
            realm,
            ServiceType::As,
            host,
            port,
            OPERATOR_PREFIX,
            WellKnownLayout::Inserted,
        )
    } else {
        EndpointBinding::with_scheme(
            realm,
            ServiceType::As,
            EndpointScheme::Https,
            host,
            port,
            OPERATOR_PREFIX,
            WellKnownLayout::Inserted,
        )
    }
    .map_err(RealmError::Binding)?;
    let current = tenancy.bindings(realm).await.map_err(RealmError::Tenancy)?;
    if current.contains(&binding) {
        return Ok(());
    }
    tenancy
        .unbind(realm, ServiceType::As)
        .await
        .map_err(RealmError::Tenancy)?;
    tenancy.bind(&binding).await.map_err(RealmError::Tenancy)
}

/// The caller a token proved: an operator, or a tenant's administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformPrincipal {
    /// The token's subject (the operator's client id for client credentials).
    pub subject: String,
    /// The granted scopes.
    pub scopes: BTreeSet<String>,
    /// The tenant of a tenant administrator's token; `None` for an operator.
    pub tenant: Option<TenantId>,
}

impl PlatformPrincipal {
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

    /// Succeeds for an operator's token carrying `scope`.
    ///
    /// # Errors
    /// A `403` [`ApiError`] for a missing scope or a tenant administrator's token.
    pub fn require_operator(&self, scope: &str) -> Result<(), ApiError> {
        self.require_scope(scope)?;
        if self.tenant.is_some() {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                Some("a tenant administrator's token cannot call platform routes".to_owned()),
            ));
        }
        Ok(())
    }

    /// Succeeds for a token carrying `scope` that may act for `tenant`: an operator's, or
    /// the administrator's of that tenant.
    ///
    /// # Errors
    /// A `403` [`ApiError`] for a missing scope or another tenant's token.
    pub fn require_tenant(&self, scope: &str, tenant: TenantId) -> Result<(), ApiError> {
        self.require_scope(scope)?;
        match self.tenant {
            Some(own) if own != tenant => Err(ApiError::new(
                ErrorKind::Forbidden,
                Some("the token is for another tenant".to_owned()),
            )),
            _ => Ok(()),
        }
    }
}

/// Why an operator token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformAuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    MissingToken,
    /// The token is not an access token of the operator authorization server.
    #[error("the token is not a valid operator token")]
    InvalidToken(#[source] edk_oauth::Error),
    /// The operator authorization server is not set up (the realm has no binding yet).
    #[error("the operator authorization server is not available")]
    Unavailable(#[source] edk_tenancy::Error),
}

impl HasKind for PlatformAuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Unauthenticated,
        }
    }
}

/// The operator-token middleware of the platform API: every path under [`API_PREFIX`] but
/// [`SETUP_PATH`] needs a valid operator token; other paths pass through untouched.
#[derive(Clone)]
pub struct PlatformAuth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    tenancy: Tenancy,
    kms: Arc<dyn Kms>,
    clock: Arc<dyn Clock>,
    realm: TenantId,
    admins: Option<AdminAuth>,
    tenant_admins: Option<AdminAuth>,
}

impl fmt::Debug for PlatformAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformAuth")
            .field("realm", &self.inner.realm)
            .finish_non_exhaustive()
    }
}

impl PlatformAuth {
    /// The middleware checking tokens of `realm`'s authorization server with its keys in
    /// `kms`, dated by `clock`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        kms: Arc<dyn Kms>,
        clock: Arc<dyn Clock>,
        realm: TenantId,
    ) -> Self {
        Self {
            inner: Arc::new(AuthInner {
                tenancy,
                kms,
                clock,
                realm,
                admins: None,
                tenant_admins: None,
            }),
        }
    }

    /// Also accepts the admin tokens `admins` verifies, with their scopes, as operator
    /// tokens: for a deployment whose own administrator is an operator (the all-in-one `edk`
    /// trusts its bootstrap issuer this way). Give it only issuers trusted with the whole
    /// platform, never a tenant's.
    #[must_use]
    pub fn with_admin_issuers(self, admins: AdminAuth) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(AuthInner {
                tenancy: inner.tenancy.clone(),
                kms: Arc::clone(&inner.kms),
                clock: Arc::clone(&inner.clock),
                realm: inner.realm,
                admins: Some(admins),
                tenant_admins: inner.tenant_admins.clone(),
            }),
        }
    }

    /// Also accepts the admin tokens `tenant_admins` verifies (the server's `auth` section:
    /// bearer JWTs of trusted issuers naming their tenant in `tenant`) as tokens of that
    /// tenant's administrator: they reach only the routes of their own tenant.
    #[must_use]
    pub fn with_tenant_admins(self, tenant_admins: AdminAuth) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(AuthInner {
                tenancy: inner.tenancy.clone(),
                kms: Arc::clone(&inner.kms),
                clock: Arc::clone(&inner.clock),
                realm: inner.realm,
                admins: inner.admins.clone(),
                tenant_admins: Some(tenant_admins),
            }),
        }
    }

    /// Whether `path` needs an operator token.
    #[must_use]
    pub fn guards(path: &str) -> bool {
        path_is_under(path, API_PREFIX) && !path_is_under(path, SETUP_PATH)
    }

    /// Verifies the `Authorization` header value `authorization` of a `method` request to
    /// `url`.
    ///
    /// # Errors
    /// [`PlatformAuthError`] saying why the token was refused.
    pub async fn verify(
        &self,
        method: &str,
        url: &str,
        authorization: Option<String>,
    ) -> Result<PlatformPrincipal, PlatformAuthError> {
        let inner = &self.inner;
        let bearer = authorization
            .as_deref()
            .and_then(|header| {
                header
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim())
                    .filter(|token| !token.is_empty())
            })
            .map(str::to_owned)
            .ok_or(PlatformAuthError::MissingToken)?;
        let realm = inner
            .tenancy
            .context_for_service(inner.realm, ServiceType::As)
            .await
            .map_err(PlatformAuthError::Unavailable)?;
        let issuer = realm
            .binding()
            .map(|binding| binding.identifier().to_owned())
            .unwrap_or_default();
        let validator = AccessTokenValidator::new(
            issuer.clone(),
            issuer,
            Arc::new(AccessTokenKeys::new(Arc::clone(&inner.kms), realm)),
            Arc::clone(&inner.clock),
        );
        let refused = match validator
            .validate(&ResourceRequest::new(method, url, authorization))
            .await
        {
            Ok(token) => return principal(token),
            Err(err) => err,
        };
        if let Some(admins) = &inner.admins
            && let Ok(admin) = admins.verify(&bearer).await
        {
            return Ok(PlatformPrincipal {
                subject: admin.subject.unwrap_or(admin.issuer),
                scopes: admin.scopes,
                tenant: None,
            });
        }
        if let Some(tenant_admins) = &inner.tenant_admins
            && let Ok(admin) = tenant_admins.verify(&bearer).await
        {
            return Ok(PlatformPrincipal {
                subject: admin.subject.unwrap_or(admin.issuer),
                scopes: admin.scopes,
                tenant: Some(admin.tenant),
            });
        }
        Err(PlatformAuthError::InvalidToken(refused))
    }
}

/// The caller of a token of the operator authorization server: a tenant administrator when
/// its client was registered with a `tenant` claim ([`TENANT_CLAIM`]), with its tenant scopes
/// only; an operator otherwise.
fn principal(token: edk_oauth::ValidatedToken) -> Result<PlatformPrincipal, PlatformAuthError> {
    let tenant = match token.claims.get(TENANT_CLAIM) {
        None => None,
        Some(serde_json::Value::String(tenant)) => Some(tenant.parse().map_err(|_| {
            PlatformAuthError::InvalidToken(edk_oauth::Error::invalid_token(
                "the token's `tenant` claim is not a tenant id",
            ))
        })?),
        Some(_) => {
            return Err(PlatformAuthError::InvalidToken(
                edk_oauth::Error::invalid_token("the token's `tenant` claim is not a tenant id"),
            ));
        }
    };
    let scopes = token
        .scopes
        .into_iter()
        .filter(|scope| tenant.is_none() || !scope.starts_with(PLATFORM_SCOPE_PREFIX))
        .collect();
    Ok(PlatformPrincipal {
        subject: token.subject,
        scopes,
        tenant,
    })
}

impl<E: Endpoint> Middleware<E> for PlatformAuth {
    type Output = PlatformAuthEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        PlatformAuthEndpoint {
            auth: self.clone(),
            inner,
        }
    }
}

/// The endpoint [`PlatformAuth`] wraps around another.
#[derive(Debug)]
pub struct PlatformAuthEndpoint<E> {
    auth: PlatformAuth,
    inner: E,
}

impl<E: Endpoint> Endpoint for PlatformAuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if !PlatformAuth::guards(req.uri().path()) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let authorization = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let url = req.original_uri().to_string();
        match self
            .auth
            .verify(req.method().as_str(), &url, authorization)
            .await
        {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                self.inner.call(req).await.map(IntoResponse::into_response)
            }
            Err(PlatformAuthError::Unavailable(err)) => {
                tracing::warn!(error = %ErrorChain(&err), "operator realm unavailable");
                Ok(Problem::new(ProblemType::Unavailable, None).into_response())
            }
            Err(err) => {
                tracing::info!(error = %ErrorChain(&err), "operator token refused");
                let challenge = match err {
                    PlatformAuthError::MissingToken => CHALLENGE_MISSING_TOKEN,
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

/// The operator bearer-token security scheme, for platform handlers behind [`PlatformAuth`].
#[derive(Debug, SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "JWT",
    checker = "principal_of",
    rename = "OperatorBearer"
)]
pub struct PlatformBearer(pub PlatformPrincipal);

async fn principal_of(req: &Request, _bearer: Bearer) -> poem::Result<PlatformPrincipal> {
    req.extensions()
        .get::<PlatformPrincipal>()
        .cloned()
        .ok_or_else(|| {
            poem::Error::from_response(
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    Some(PlatformAuthError::MissingToken.to_string()),
                )
                .into_response(),
            )
        })
}
