//! `/api/platform/v1/tenants/{id}/admins`: tenant administrators as clients of the operator
//! authorization server.
//!
//! An operator registers a client for a tenant's administrator. The operator authorization
//! server puts the registration's fixed claims into every access token of that client
//! (edk-oauth's `ClientMetadata::token_claims` and `token_audiences`): `tenant` naming the
//! tenant, and the admin-token audience (`auth.audience`, `edk-admin` by default) besides the
//! operator issuer. Its `client_credentials` tokens are therefore tenant administrators' tokens
//! on the platform API ([`crate::PlatformAuth`] reads the claim) and admin tokens for that
//! tenant on every EDK server trusting the operator authorization server as an issuer (its
//! JWKS at `<issuer>/jwks.json`). The client may hold tenant scopes only: no `platform:*`
//! scope can be registered, and [`crate::PlatformAuth`] drops any from a token naming a
//! tenant.

use std::fmt;
use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret;

use edk_core::{ClientId, ErrorChain, ErrorKind, HasKind, TenantId};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AuthorizationServer, NewClient};
use edk_server::{ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};

use crate::operators::{PLATFORM_SCOPE_PREFIX, PlatformBearer, TENANT_CLAIM, scope};

/// The scopes a tenant administrator's client gets when the request names none.
pub const DEFAULT_TENANT_ADMIN_SCOPES: [&str; 2] =
    [scope::TENANT_CONFIG_READ, scope::TENANT_CONFIG_WRITE];

/// The clients of tenant administrators at the operator authorization server.
#[derive(Debug)]
pub struct TenantAdminApi {
    tenancy: Tenancy,
    oauth: Arc<AuthorizationServer>,
    realm: TenantId,
    audience: String,
}

impl TenantAdminApi {
    /// The API registering clients at `oauth` in the operator realm `realm`, their tokens
    /// naming `audience` (the admin-token audience of the EDK servers) besides the issuer.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        oauth: Arc<AuthorizationServer>,
        realm: TenantId,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            tenancy,
            oauth,
            realm,
            audience: audience.into(),
        }
    }

    async fn realm(&self) -> Result<TenantContext, ApiError> {
        self.tenancy
            .context_for_service(self.realm, ServiceType::As)
            .await
            .map_err(|err| failed(&err))
    }
}

#[derive(Tags)]
enum AdminTag {
    /// Tenant administrators.
    TenantAdmins,
}

/// A tenant administrator's client to register.
#[derive(Debug, Object)]
pub struct NewTenantAdmin {
    /// The client id; generated when absent.
    pub client_id: Option<String>,
    /// A display name.
    #[oai(default)]
    pub client_name: String,
    /// The scopes the client may ask for: tenant scopes (of the platform and the other EDK
    /// servers' admin APIs), never `platform:*`. Default `tenant:config:read
    /// tenant:config:write`.
    pub scopes: Option<Vec<String>>,
}

/// A registered tenant administrator's client.
#[derive(Object)]
pub struct TenantAdminClient {
    /// The client id.
    pub client_id: String,
    /// The client secret, shown once (`client_secret_basic`).
    pub client_secret: String,
    /// The tenant its tokens name in `tenant`.
    pub tenant: String,
    /// The operator authorization server's issuer identifier.
    pub issuer: String,
    /// Where the client gets tokens (`grant_type=client_credentials`).
    pub token_endpoint: String,
    /// The operator authorization server's JWK Set, for servers trusting it as an issuer.
    pub jwks_uri: String,
    /// The audiences of its tokens: the issuer and the admin-token audience.
    pub audiences: Vec<String>,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
}

impl fmt::Debug for TenantAdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantAdminClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("tenant", &self.tenant)
            .field("issuer", &self.issuer)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A created tenant administrator's client.
#[derive(ApiResponse, Debug)]
pub enum AdminCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<TenantAdminClient>),
}

fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidInput,
        Some(format!("`{field}`: {reason}")),
    )
}

fn failed(err: &(dyn HasKind + 'static)) -> ApiError {
    if err.kind() == ErrorKind::Internal {
        tracing::error!(error = %ErrorChain(err), "platform request failed");
    }
    problem_for(err)
}

#[OpenApi(prefix_path = "/api/platform/v1")]
impl TenantAdminApi {
    /// Registers a client for an administrator of a tenant at the operator authorization
    /// server: its `client_credentials` tokens name the tenant in `tenant` and carry tenant
    /// scopes only, so they manage that tenant's configuration and bindings here and act for
    /// that tenant on every EDK server trusting the operator authorization server. Requires
    /// scope `platform:tenants:write` (operators only).
    #[oai(
        path = "/tenants/:id/admins",
        method = "post",
        operation_id = "createTenantAdmin",
        tag = "AdminTag::TenantAdmins"
    )]
    async fn create_tenant_admin(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
        body: Json<NewTenantAdmin>,
    ) -> Result<AdminCreated, ApiError> {
        auth.0.require_operator(scope::TENANTS_WRITE)?;
        let tenant: TenantId = id.0.parse().map_err(|_| invalid("id", "not a tenant id"))?;
        if tenant == self.realm {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                Some("no such tenant".to_owned()),
            ));
        }
        let body = body.0;
        let scopes = body
            .scopes
            .unwrap_or_else(|| DEFAULT_TENANT_ADMIN_SCOPES.map(str::to_owned).to_vec());
        if scopes.is_empty() {
            return Err(invalid("scopes", "at least one scope is needed"));
        }
        if let Some(platform) = scopes
            .iter()
            .find(|scope| scope.starts_with(PLATFORM_SCOPE_PREFIX))
        {
            return Err(invalid(
                "scopes",
                &format!("`{platform}` is an operator scope"),
            ));
        }
        let client_id = body
            .client_id
            .map(|id| ClientId::new(id).map_err(|err| invalid("client_id", &err.to_string())))
            .transpose()?;
        self.tenancy
            .tenant(tenant)
            .await
            .map_err(|err| failed(&err))?;
        let realm = self.realm().await?;
        let mut metadata = ClientMetadata::new(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
        );
        metadata.client_name = body.client_name;
        metadata.scopes = scopes;
        metadata
            .token_claims
            .insert(TENANT_CLAIM.to_owned(), tenant.to_string().into());
        metadata.token_audiences = vec![self.audience.clone()];
        let mut request = NewClient::new(metadata);
        if let Some(id) = client_id {
            request = request.with_id(id);
        }
        let (client, secret) = self
            .oauth
            .create_client(&realm, request)
            .await
            .map_err(|err| failed(&err))?;
        let Some(secret) = secret else {
            tracing::error!(client = %client.client_id, "the tenant administrator got no secret");
            return Err(ApiError::new(ErrorKind::Internal, None));
        };
        tracing::info!(
            client = %client.client_id,
            tenant = %tenant,
            operator = %auth.0.subject,
            "tenant administrator registered"
        );
        let issuer = realm
            .binding()
            .map(|binding| binding.identifier().to_owned())
            .unwrap_or_default();
        Ok(AdminCreated::Created(Json(TenantAdminClient {
            client_id: client.client_id.to_string(),
            client_secret: secret.expose_secret().to_owned(),
            tenant: tenant.to_string(),
            token_endpoint: format!("{issuer}/token"),
            jwks_uri: format!("{issuer}/jwks.json"),
            audiences: vec![issuer.clone(), self.audience.clone()],
            issuer,
            scopes: client.metadata.scopes,
        })))
    }
}
