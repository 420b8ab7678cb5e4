//! `/api/platform/v1`: first-run setup and the tenants.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret;

use edk_core::{ClientId, ErrorChain, ErrorKind, HasKind, TenantId};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AuthorizationServer, NewClient};
use edk_server::{ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, Tenant, TenantDirectory as _};

use crate::operators::{PlatformBearer, scope};
use crate::setup;

/// The platform API.
#[derive(Debug)]
pub struct PlatformApi {
    tenancy: Tenancy,
    oauth: Arc<AuthorizationServer>,
    realm: TenantId,
}

impl PlatformApi {
    /// The API over `tenancy`, with the operator authorization server `oauth` holding its
    /// state in the reserved tenant `realm`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, oauth: Arc<AuthorizationServer>, realm: TenantId) -> Self {
        Self {
            tenancy,
            oauth,
            realm,
        }
    }

    /// The tenant `id`, unless it is the reserved operator realm.
    async fn customer(&self, id: &str) -> Result<Tenant, ApiError> {
        let id: TenantId = id
            .parse()
            .map_err(|_| invalid("id", "not a tenant id".to_owned()))?;
        if id == self.realm {
            return Err(not_found());
        }
        self.tenancy.tenant(id).await.map_err(|err| failed(&err))
    }
}

#[derive(Tags)]
enum PlatformTag {
    /// First-run setup of the platform.
    Setup,
    /// Tenants and their onboarding.
    Tenants,
}

/// The first-run setup request.
#[derive(Debug, Object)]
#[oai(rename = "SetupRequest")]
pub struct SetupRequest {
    /// The one-time setup token the platform printed or wrote to its token file.
    pub setup_token: String,
    /// The first operator's client id; generated when absent.
    pub client_id: Option<String>,
    /// A display name for the first operator.
    #[oai(default)]
    pub client_name: String,
}

/// The first operator: a client of the operator authorization server.
#[derive(Debug, Object)]
pub struct SetupResult {
    /// The operator's client id.
    pub client_id: String,
    /// The operator's client secret, shown once (`client_secret_basic`).
    pub client_secret: String,
    /// The operator authorization server's issuer identifier.
    pub issuer: String,
    /// Where the operator gets tokens (`grant_type=client_credentials`).
    pub token_endpoint: String,
    /// The scopes the operator may ask for.
    pub scopes: Vec<String>,
}

/// A tenant.
#[derive(Debug, Object)]
#[oai(rename = "PlatformTenant")]
pub struct TenantView {
    /// The tenant id.
    pub id: String,
    /// The slug.
    pub slug: String,
    /// The display name.
    pub display_name: String,
    /// `provisioning`, `active`, `suspended` or `deleted`.
    pub status: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was deleted (RFC 3339), if it was.
    pub deleted_at: Option<String>,
}

/// The tenants.
#[derive(Debug, Object)]
pub struct TenantList {
    /// Every tenant, deleted ones within their grace period included.
    pub tenants: Vec<TenantView>,
}

/// A created resource.
#[derive(ApiResponse, Debug)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

fn view(tenant: &Tenant) -> TenantView {
    TenantView {
        id: tenant.id.to_string(),
        slug: tenant.slug.to_string(),
        display_name: tenant.display_name.clone(),
        status: tenant.status.as_str().to_owned(),
        created_at: tenant.created_at.to_rfc3339(),
        deleted_at: tenant.deleted_at.map(|at| at.to_rfc3339()),
    }
}

/// A 400 naming the request field `field`.
pub(crate) fn invalid(field: &str, reason: String) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidInput,
        Some(format!("`{field}`: {reason}")),
    )
}

fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, Some("no such tenant".to_owned()))
}

/// The problem of a library error, logging server-side failures.
pub(crate) fn failed(err: &(dyn HasKind + 'static)) -> ApiError {
    if err.kind() == ErrorKind::Internal {
        tracing::error!(error = %ErrorChain(err), "platform request failed");
    }
    problem_for(err)
}

#[OpenApi(prefix_path = "/api/platform/v1")]
impl PlatformApi {
    /// Creates the first operator with the one-time setup token and closes setup for good:
    /// a second call, or the same token again, is refused (403). Needs no bearer token.
    #[oai(
        path = "/setup",
        method = "post",
        operation_id = "platformSetup",
        tag = "PlatformTag::Setup"
    )]
    async fn setup(&self, body: Json<SetupRequest>) -> Result<Created<SetupResult>, ApiError> {
        let body = body.0;
        let client_id = body
            .client_id
            .map(|id| ClientId::new(id).map_err(|err| invalid("client_id", err.to_string())))
            .transpose()?;
        let realm = self
            .tenancy
            .context_for_service(self.realm, ServiceType::As)
            .await
            .map_err(|err| failed(&err))?;
        let label = client_id
            .as_ref()
            .map_or_else(|| "generated".to_owned(), ToString::to_string);
        let version = setup::close(&self.tenancy, &body.setup_token, &label)
            .await
            .map_err(|err| failed(&err))?;
        let mut metadata = ClientMetadata::new(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
        );
        metadata.client_name = body.client_name;
        metadata.scopes = scope::ALL.map(str::to_owned).to_vec();
        let mut request = NewClient::new(metadata);
        if let Some(id) = client_id {
            request = request.with_id(id);
        }
        let created = self.oauth.create_client(&realm, request).await;
        let (client, secret) = match created {
            Ok((client, Some(secret))) => (client, secret),
            Ok((client, None)) => {
                tracing::error!(client = %client.client_id, "the operator got no secret");
                return Err(ApiError::new(ErrorKind::Internal, None));
            }
            Err(err) => {
                if let Err(reopen) = setup::reopen(&self.tenancy, &body.setup_token, version).await
                {
                    tracing::error!(error = %ErrorChain(&reopen), "setup could not be reopened");
                }
                return Err(failed(&err));
            }
        };
        tracing::info!(operator = %client.client_id, "first-run setup done; setup is closed");
        let issuer = realm
            .binding()
            .map(|binding| binding.identifier().to_owned())
            .unwrap_or_default();
        Ok(Created::Created(Json(SetupResult {
            client_id: client.client_id.to_string(),
            client_secret: secret.expose_secret().to_owned(),
            token_endpoint: format!("{issuer}/token"),
            issuer,
            scopes: client.metadata.scopes,
        })))
    }

    /// Lists the tenants. Requires scope `platform:tenants:read`.
    #[oai(
        path = "/tenants",
        method = "get",
        operation_id = "listTenants",
        tag = "PlatformTag::Tenants"
    )]
    async fn list_tenants(&self, auth: PlatformBearer) -> Result<Json<TenantList>, ApiError> {
        auth.0.require_scope(scope::TENANTS_READ)?;
        let tenants = self.tenancy.tenants().await.map_err(|err| failed(&err))?;
        Ok(Json(TenantList {
            tenants: tenants
                .iter()
                .filter(|tenant| tenant.id != self.realm)
                .map(view)
                .collect(),
        }))
    }

    /// One tenant. Requires scope `platform:tenants:read`.
    #[oai(
        path = "/tenants/:id",
        method = "get",
        operation_id = "getTenant",
        tag = "PlatformTag::Tenants"
    )]
    async fn get_tenant(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<TenantView>, ApiError> {
        auth.0.require_scope(scope::TENANTS_READ)?;
        let tenant = self.customer(&id.0).await?;
        Ok(Json(view(&tenant)))
    }
}
