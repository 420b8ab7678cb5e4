//! `/api/platform/v1`: first-run setup and the tenants.

use std::fmt;
use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret;

use chrono::{DateTime, Utc};
use poem_openapi::param::Query;

use edk_core::{ClientId, Clock, ErrorChain, ErrorKind, HasKind, TenantId};
use edk_kms::Kms;
use edk_kms::audit::{AuditEvent, AuditTrail};
use edk_kms::kms::Caller;
use edk_kms_server::dto::{AuditEventBody, AuditEventList, AuditReportBody};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AuthorizationServer, NewClient};
use edk_server::{ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, Tenant, TenantDirectory as _};

use crate::onboarding::{self, Onboarder, Onboarding};
use crate::operators::{PlatformBearer, scope};
use crate::setup;

/// The platform API.
#[derive(Debug)]
pub struct PlatformApi {
    tenancy: Tenancy,
    oauth: Arc<AuthorizationServer>,
    realm: TenantId,
    onboarder: Onboarder,
    audit: Arc<dyn AuditTrail>,
}

impl PlatformApi {
    /// The API over `tenancy`, with the operator authorization server `oauth` holding its
    /// state in the reserved tenant `realm` (`oauth` also serves the tenants' authorization
    /// servers onboarding prepares), tenants' keys in `kms` and their audit chains in
    /// `audit`, dated by `clock`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        oauth: Arc<AuthorizationServer>,
        kms: Arc<dyn Kms>,
        audit: Arc<dyn AuditTrail>,
        clock: Arc<dyn Clock>,
        realm: TenantId,
    ) -> Self {
        Self {
            onboarder: Onboarder::new(tenancy.clone(), kms, Arc::clone(&oauth), clock, realm),
            tenancy,
            oauth,
            realm,
            audit,
        }
    }

    /// The KMS caller reading `tenant`'s audit chain for `auth`.
    async fn audit_caller(
        &self,
        auth: &PlatformBearer,
        tenant: TenantId,
    ) -> Result<Caller, ApiError> {
        let context = self
            .tenancy
            .context(tenant)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Caller::new(
            context,
            format!("edk-platform/{}", auth.0.subject),
        ))
    }

    /// The tenant `id` once `auth` may act for it with `scope` (checked before the tenant is
    /// looked up, so another tenant's administrator learns nothing of it).
    async fn authorized(
        &self,
        auth: &PlatformBearer,
        scope: &str,
        id: &str,
    ) -> Result<Tenant, ApiError> {
        auth.0.require_scope(scope)?;
        let tenant: TenantId = id.parse().map_err(|_| invalid("id", "not a tenant id"))?;
        auth.0.require_tenant(scope, tenant)?;
        self.customer(id).await
    }

    async fn detail(&self, tenant: &Tenant) -> Result<TenantDetail, ApiError> {
        let record = self
            .onboarder
            .record(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        Ok(TenantDetail {
            tenant: view(tenant),
            onboarding: record.as_ref().map(steps).unwrap_or_default(),
            issuer_did: record.as_ref().and_then(|record| record.issuer_did.clone()),
            credential_configuration: record.and_then(|record| record.credential_configuration),
        })
    }

    /// The tenant `id`, unless it is the reserved operator realm.
    async fn customer(&self, id: &str) -> Result<Tenant, ApiError> {
        let id: TenantId = id.parse().map_err(|_| invalid("id", "not a tenant id"))?;
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
    /// Tenants' audit chains.
    Audit,
}

/// The first-run setup request.
#[derive(Object)]
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
#[derive(Object)]
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

impl fmt::Debug for SetupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupRequest")
            .field("setup_token", &"[redacted]")
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name)
            .finish()
    }
}

impl fmt::Debug for SetupResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupResult")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("scopes", &self.scopes)
            .finish()
    }
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
    #[oai(skip_serializing_if_is_none)]
    pub deleted_at: Option<String>,
}

/// The tenants.
#[derive(Debug, Object)]
pub struct TenantList {
    /// Every tenant, deleted ones within their grace period included.
    pub tenants: Vec<TenantView>,
}

/// A tenant with its onboarding.
#[derive(Debug, Object)]
pub struct TenantDetail {
    /// The tenant.
    #[oai(flatten)]
    pub tenant: TenantView,
    /// Each onboarding step in order (empty for a tenant not onboarded here).
    pub onboarding: Vec<StepView>,
    /// The issuer DID onboarding made (also the tenant property `platform.issuer_did`).
    #[oai(skip_serializing_if_is_none)]
    pub issuer_did: Option<String>,
    /// The id of the default credential configuration onboarding stored for the issuer.
    #[oai(skip_serializing_if_is_none)]
    pub credential_configuration: Option<String>,
}

/// The state of one onboarding step.
#[derive(Debug, Object)]
pub struct StepView {
    /// `registry`, `kms_aliases`, `bindings`, `authorization_server`, `issuer_did`,
    /// `issuer_settings` or `verifier_settings`.
    pub step: String,
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// When it last changed (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub at: Option<String>,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

/// Where one service of a new tenant is reached.
#[derive(Debug, Object)]
pub struct NewBinding {
    /// `as`, `did`, `issuer` or `verifier`.
    pub service: String,
    /// The DNS host.
    pub host: String,
    /// The port, when not the scheme's default.
    pub port: Option<u16>,
    /// The path prefix (`/` for the host root).
    pub path_prefix: String,
    /// `inserted` (`/.well-known/<name><prefix>`, the default) or `appended`.
    pub well_known: Option<String>,
    /// Advertise `http` (loopback hosts only, for local development).
    #[oai(default)]
    pub dangerous_loopback_http: bool,
}

/// The issuer DID of a new tenant.
#[derive(Debug, Object)]
pub struct NewIssuerDid {
    /// `web` (the default) or `webvh`.
    pub method: String,
}

/// The default credential configuration of a new tenant's issuer: an SD-JWT VC
/// (`dc+sd-jwt`) bound to a `jwk` holder key, signed by `issuer.credential-signing` and named
/// by its `x5c` chain, which the tenant's verifier trusts.
#[derive(Debug, Object)]
pub struct NewCredentialConfiguration {
    /// The configuration id.
    pub id: String,
    /// The SD-JWT VC type (`vct`).
    pub vct: String,
    /// The credential's lifetime in seconds; unset: no `exp`.
    pub lifetime_secs: Option<u64>,
}

/// A tenant to onboard.
#[derive(Debug, Object)]
pub struct NewTenant {
    /// The slug: lower-case letters, digits and `-`.
    pub slug: String,
    /// The display name.
    pub display_name: String,
    /// The endpoints of its services; one of service `as` is required.
    pub bindings: Vec<NewBinding>,
    /// The issuer DID, published under the `did` binding (which it needs); unset: did:web
    /// when a `did` binding is given, none otherwise.
    pub issuer_did: Option<NewIssuerDid>,
    /// The default credential configuration; unset: `identity`, of type
    /// `<issuer identifier>/identity`, valid a year, when an `issuer` binding is given.
    pub credential_configuration: Option<NewCredentialConfiguration>,
}

fn steps(record: &Onboarding) -> Vec<StepView> {
    record
        .steps
        .iter()
        .map(|step| StepView {
            step: step.step.as_str().to_owned(),
            state: step.state.clone(),
            at: step.at.clone(),
            error: step.error.clone(),
        })
        .collect()
}

/// An endpoint binding.
#[derive(Debug, Object)]
pub struct BindingView {
    /// `as`, `did`, `issuer` or `verifier`.
    pub service: String,
    /// The identifier URL the service advertises.
    pub url: String,
    /// The host.
    pub host: String,
    /// The port, when not the scheme's default.
    #[oai(skip_serializing_if_is_none)]
    pub port: Option<u16>,
    /// The path prefix.
    pub path_prefix: String,
}

/// A tenant's bindings.
#[derive(Debug, Object)]
pub struct BindingList {
    /// One per bound service.
    pub bindings: Vec<BindingView>,
}

/// Where a service of a tenant is reached.
#[derive(Debug, Object)]
pub struct BindingUpdate {
    /// The DNS host.
    pub host: String,
    /// The port, when not the scheme's default.
    pub port: Option<u16>,
    /// The path prefix (`/` for the host root).
    pub path_prefix: String,
    /// `inserted` (the default) or `appended`.
    pub well_known: Option<String>,
    /// Advertise `http` (loopback hosts only, for local development).
    #[oai(default)]
    pub dangerous_loopback_http: bool,
}

/// A configuration value to write.
#[derive(Debug, Object)]
pub struct ConfigUpdate {
    /// The value, checked against the key's type and rules.
    pub value: serde_json::Value,
    /// Write only if the stored version is this one (`0`: only if unset).
    pub expected_version: Option<i64>,
}

/// A written configuration key.
#[derive(Debug, Object)]
pub struct ConfigView {
    /// The key.
    pub key: String,
    /// Its new version.
    pub version: i64,
}

/// Keys holding secrets that their own service seals before storing them.
const PROTECTED_KEYS: [&str; 1] = ["oauth.upstream_oidc"];

fn binding_view(binding: &edk_tenancy::EndpointBinding) -> BindingView {
    BindingView {
        service: binding.service().as_str().to_owned(),
        url: binding.identifier().to_owned(),
        host: binding.host().to_owned(),
        port: binding.port(),
        path_prefix: binding.path_prefix(),
    }
}

/// A created resource.
#[derive(ApiResponse, Debug)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// The largest page of audit records.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// The page size when a request names none.
pub const DEFAULT_AUDIT_PAGE: u32 = 100;

/// How many records one filtered request reads from the chain at most; a filtered page
/// that reaches it ends early, with `next_after` where the reading stopped.
const AUDIT_SCAN_LIMIT: u32 = 10 * MAX_AUDIT_PAGE;

/// The filters of an audit query.
#[derive(Debug, Default)]
struct AuditFilter {
    operation: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn is_empty(&self) -> bool {
        self.operation.is_none()
            && self.actor.is_none()
            && self.outcome.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn matches(&self, event: &AuditEvent) -> bool {
        self.operation
            .as_ref()
            .is_none_or(|operation| event.operation == *operation)
            && self
                .actor
                .as_ref()
                .is_none_or(|actor| event.actor.starts_with(actor.as_str()))
            && self.outcome.as_ref().is_none_or(|outcome| {
                event.outcome == *outcome
                    || (outcome == "failure" && event.outcome.starts_with("failure:"))
            })
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at <= until)
    }
}

fn time_filter(field: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|value| {
            DateTime::parse_from_rfc3339(&value)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| invalid(field, "not an RFC 3339 date-time"))
        })
        .transpose()
}

/// The problem of a failed audit read. A remote KMS that does not serve its audit chains to
/// the platform refuses (`Forbidden`) or has none (`Unsupported`): that is the deployment's
/// configuration, not the caller's fault, so it is a 503 saying what to change.
fn audit_failed(err: &edk_kms::Error) -> ApiError {
    match err.kind() {
        ErrorKind::Forbidden | ErrorKind::Unsupported => {
            tracing::warn!(error = %ErrorChain(err), "the KMS does not serve its audit chains to the platform");
            ApiError::new(
                ErrorKind::Unavailable,
                Some(
                    "the KMS does not serve its audit chains to the platform: name the platform \
                     in the KMS's `grpc.audit_readers`"
                        .to_owned(),
                ),
            )
        }
        _ => failed(err),
    }
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
fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidInput,
        Some(format!("`{field}`: {reason}")),
    )
}

fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, Some("no such tenant".to_owned()))
}

/// The problem of a library error, logging server-side failures.
fn failed(err: &(dyn HasKind + 'static)) -> ApiError {
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
            .map(|id| ClientId::new(id).map_err(|err| invalid("client_id", &err.to_string())))
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
        auth.0.require_operator(scope::TENANTS_READ)?;
        let tenants = self.tenancy.tenants().await.map_err(|err| failed(&err))?;
        Ok(Json(TenantList {
            tenants: tenants
                .iter()
                .filter(|tenant| tenant.id != self.realm)
                .map(view)
                .collect(),
        }))
    }

    /// Onboards a tenant: registry row, schema and migrations, default KMS aliases, endpoint
    /// bindings, its authorization server, its issuer DID and the default issuer and verifier
    /// settings (certificates, trust anchor, credential configuration), each step recorded. Sending the same request
    /// again resumes an unfinished onboarding at its first unfinished step. Requires scope
    /// `platform:tenants:write`.
    #[oai(
        path = "/tenants",
        method = "post",
        operation_id = "createTenant",
        tag = "PlatformTag::Tenants"
    )]
    async fn create_tenant(
        &self,
        auth: PlatformBearer,
        body: Json<NewTenant>,
    ) -> Result<Created<TenantDetail>, ApiError> {
        auth.0.require_operator(scope::TENANTS_WRITE)?;
        let body = body.0;
        let request = onboarding::OnboardingRequest {
            slug: body.slug,
            display_name: body.display_name,
            bindings: body
                .bindings
                .into_iter()
                .map(|binding| onboarding::BindingRequest {
                    service: binding.service,
                    host: binding.host,
                    port: binding.port,
                    path_prefix: binding.path_prefix,
                    well_known: binding.well_known,
                    dangerous_loopback_http: binding.dangerous_loopback_http,
                })
                .collect(),
            issuer_did: body
                .issuer_did
                .map(|did| onboarding::IssuerDidRequest { method: did.method }),
            credential_configuration: body.credential_configuration.map(|wanted| {
                onboarding::CredentialConfigurationRequest {
                    id: wanted.id,
                    vct: wanted.vct,
                    lifetime_secs: wanted.lifetime_secs,
                }
            }),
        };
        let (tenant, _) = self
            .onboarder
            .onboard(request)
            .await
            .map_err(|err| failed(&err))?;
        let tenant = self
            .tenancy
            .tenant(tenant)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(self.detail(&tenant).await?)))
    }

    /// One tenant with its onboarding steps. Requires scope `platform:tenants:read`.
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
    ) -> Result<Json<TenantDetail>, ApiError> {
        auth.0.require_operator(scope::TENANTS_READ)?;
        let tenant = self.customer(&id.0).await?;
        Ok(Json(self.detail(&tenant).await?))
    }

    /// Suspends a tenant: its endpoints stop serving at once. Requires scope
    /// `platform:tenants:write`.
    #[oai(
        path = "/tenants/:id/suspend",
        method = "post",
        operation_id = "suspendTenant",
        tag = "PlatformTag::Tenants"
    )]
    async fn suspend_tenant(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<TenantView>, ApiError> {
        auth.0.require_operator(scope::TENANTS_WRITE)?;
        let tenant = self.customer(&id.0).await?;
        let tenant = self
            .tenancy
            .suspend(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(view(&tenant)))
    }

    /// Resumes a suspended tenant. Requires scope `platform:tenants:write`.
    #[oai(
        path = "/tenants/:id/resume",
        method = "post",
        operation_id = "resumeTenant",
        tag = "PlatformTag::Tenants"
    )]
    async fn resume_tenant(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<TenantView>, ApiError> {
        auth.0.require_operator(scope::TENANTS_WRITE)?;
        let tenant = self.customer(&id.0).await?;
        let tenant = self
            .tenancy
            .resume(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(view(&tenant)))
    }

    /// Deletes a tenant: it stops serving at once, and its data is purged once the grace
    /// period has passed (the `tenancy.purge_deleted` job). Requires scope
    /// `platform:tenants:write`.
    #[oai(
        path = "/tenants/:id",
        method = "delete",
        operation_id = "deleteTenant",
        tag = "PlatformTag::Tenants"
    )]
    async fn delete_tenant(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<TenantView>, ApiError> {
        auth.0.require_operator(scope::TENANTS_WRITE)?;
        let tenant = self.customer(&id.0).await?;
        let tenant = self
            .tenancy
            .delete(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(view(&tenant)))
    }

    /// A tenant's endpoint bindings. Requires scope `tenant:config:read`; a tenant
    /// administrator's token reaches its own tenant only.
    #[oai(
        path = "/tenants/:id/bindings",
        method = "get",
        operation_id = "listTenantBindings",
        tag = "PlatformTag::Tenants"
    )]
    async fn list_bindings(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<BindingList>, ApiError> {
        let tenant = self
            .authorized(&auth, scope::TENANT_CONFIG_READ, &id.0)
            .await?;
        let bindings = self
            .tenancy
            .bindings(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(BindingList {
            bindings: bindings.iter().map(binding_view).collect(),
        }))
    }

    /// Binds one service of a tenant to a host and path prefix, replacing its binding; every
    /// replica follows at once (events). Requires scope `tenant:config:write`; a tenant
    /// administrator's token reaches its own tenant only.
    #[oai(
        path = "/tenants/:id/bindings/:service",
        method = "put",
        operation_id = "putTenantBinding",
        tag = "PlatformTag::Tenants"
    )]
    async fn put_binding(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
        /// `as`, `did`, `issuer` or `verifier`.
        service: Path<String>,
        body: Json<BindingUpdate>,
    ) -> Result<Json<BindingView>, ApiError> {
        let tenant = self
            .authorized(&auth, scope::TENANT_CONFIG_WRITE, &id.0)
            .await?;
        let body = body.0;
        let request = onboarding::BindingRequest {
            service: service.0,
            host: body.host,
            port: body.port,
            path_prefix: body.path_prefix,
            well_known: body.well_known,
            dangerous_loopback_http: body.dangerous_loopback_http,
        };
        let binding = request
            .binding(tenant.id)
            .map_err(|(field, reason)| invalid(field, &reason))?;
        let current = self
            .tenancy
            .bindings(tenant.id)
            .await
            .map_err(|err| failed(&err))?;
        if !current.contains(&binding) {
            self.tenancy
                .unbind(tenant.id, binding.service())
                .await
                .map_err(|err| failed(&err))?;
            self.tenancy
                .bind(&binding)
                .await
                .map_err(|err| failed(&err))?;
        }
        Ok(Json(binding_view(&binding)))
    }

    /// Sets one typed configuration key of a tenant (the keys the services register, e.g.
    /// `oauth.client_attestation`); a value the key refuses is a 400 naming the key.
    /// `expected_version` makes the write conditional. Requires scope `tenant:config:write`;
    /// a tenant administrator's token reaches its own tenant only.
    #[oai(
        path = "/tenants/:id/config/:key",
        method = "put",
        operation_id = "putTenantConfig",
        tag = "PlatformTag::Tenants"
    )]
    async fn put_config(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
        /// The configuration key.
        key: Path<String>,
        body: Json<ConfigUpdate>,
    ) -> Result<Json<ConfigView>, ApiError> {
        let tenant = self
            .authorized(&auth, scope::TENANT_CONFIG_WRITE, &id.0)
            .await?;
        if key.0.starts_with("platform.") || PROTECTED_KEYS.contains(&key.0.as_str()) {
            return Err(invalid(
                "key",
                &format!("`{}` is not set through the platform API", key.0),
            ));
        }
        let body = body.0;
        let written = self
            .tenancy
            .set_config(Some(tenant.id), &key.0, body.value, body.expected_version)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(ConfigView {
            key: written.key,
            version: written.version,
        }))
    }
    /// A tenant's KMS audit records after `after`, oldest first, filtered: by operation, by
    /// actor (a prefix), by outcome (`success`, `failure` or `failure:<kind>`) and by time.
    /// A filtered request reads at most 10,000 records of the chain; `next_after` says
    /// where to go on. Requires scope `tenant:audit:read`; a tenant administrator's token
    /// reaches its own tenant only.
    #[oai(
        path = "/tenants/:id/audit/events",
        method = "get",
        operation_id = "listTenantAuditEvents",
        tag = "PlatformTag::Audit"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per query parameter"
    )]
    async fn audit_events(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
        /// Only records with a larger sequence number (default 0, from the start).
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<u64>>,
        /// The most records to return, 1 to 1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Only this operation, e.g. `sign`.
        operation: Query<Option<String>>,
        /// Only actors that start with this, e.g. `service:issuer/`.
        actor: Query<Option<String>>,
        /// Only `success`, `failure` (any kind) or one `failure:<kind>`.
        outcome: Query<Option<String>>,
        /// Only records at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Only records at or before this time (RFC 3339).
        until: Query<Option<String>>,
    ) -> Result<Json<AuditEventList>, ApiError> {
        let tenant = self
            .authorized(&auth, scope::TENANT_AUDIT_READ, &id.0)
            .await?;
        let limit = limit.0.unwrap_or(DEFAULT_AUDIT_PAGE);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(invalid(
                "limit",
                &format!("must be between 1 and {MAX_AUDIT_PAGE}"),
            ));
        }
        if let Some(outcome) = &outcome.0
            && outcome != "success"
            && outcome != "failure"
            && !outcome.starts_with("failure:")
        {
            return Err(invalid(
                "outcome",
                "must be `success`, `failure` or `failure:<kind>`",
            ));
        }
        let filter = AuditFilter {
            operation: operation.0,
            actor: actor.0,
            outcome: outcome.0,
            since: time_filter("since", since.0)?,
            until: time_filter("until", until.0)?,
        };
        let caller = self.audit_caller(&auth, tenant.id).await?;
        // Unfiltered, one page of the chain is the answer; filtered, whole pages are read
        // until the answer is full, the chain ends, or the scan limit is reached. A record
        // past `until` does not end the scan: times are not ordered by sequence number, as
        // several KMS replicas buffer their records and append them to one chain.
        let batch = if filter.is_empty() {
            limit
        } else {
            MAX_AUDIT_PAGE
        };
        let mut cursor = after.0.unwrap_or(0);
        let mut events = Vec::new();
        let mut read = 0;
        let next_after = 'scan: loop {
            let page = self
                .audit
                .events(&caller, cursor, batch)
                .await
                .map_err(|err| audit_failed(&err))?;
            let more = u32::try_from(page.len()).is_ok_and(|n| n == batch);
            read += batch;
            for event in page {
                cursor = event.seq;
                if filter.matches(&event) {
                    events.push(AuditEventBody::from(&event));
                    if u32::try_from(events.len()).is_ok_and(|n| n == limit) {
                        break 'scan Some(cursor);
                    }
                }
            }
            if !more {
                break None;
            }
            if read >= AUDIT_SCAN_LIMIT {
                break Some(cursor);
            }
        };
        Ok(Json(AuditEventList { events, next_after }))
    }

    /// Checks a tenant's KMS audit chain: every record's hash and link, the head, and every
    /// signed checkpoint. A broken chain is a 200 report naming the first record that does
    /// not fit. Requires scope `tenant:audit:read`; a tenant administrator's token reaches
    /// its own tenant only.
    #[oai(
        path = "/tenants/:id/audit/verify",
        method = "post",
        operation_id = "verifyTenantAuditChain",
        tag = "PlatformTag::Audit"
    )]
    async fn audit_verify(
        &self,
        auth: PlatformBearer,
        /// The tenant id.
        id: Path<String>,
    ) -> Result<Json<AuditReportBody>, ApiError> {
        let tenant = self
            .authorized(&auth, scope::TENANT_AUDIT_READ, &id.0)
            .await?;
        let caller = self.audit_caller(&auth, tenant.id).await?;
        let report = self
            .audit
            .verify(&caller)
            .await
            .map_err(|err| audit_failed(&err))?;
        Ok(Json(AuditReportBody::from(&report)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let request = SetupRequest {
            setup_token: "setup-secret".to_owned(),
            client_id: None,
            client_name: String::new(),
        };
        let result = SetupResult {
            client_id: "ops".to_owned(),
            client_secret: "client-secret".to_owned(),
            issuer: String::new(),
            token_endpoint: String::new(),
            scopes: Vec::new(),
        };
        let printed = format!("{request:?} {result:?}");
        assert!(!printed.contains("setup-secret") && !printed.contains("client-secret"));
    }
}
