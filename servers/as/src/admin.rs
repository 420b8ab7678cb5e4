//! `/api/oauth2/v1`: the tenant's clients, pre-authorized codes, signing key and upstream
//! OpenID Provider. The tenant comes from the admin token, never from the request.

use std::fmt;
use std::sync::Arc;

use edk_core::{ClientId, ErrorKind, HasKind};
use edk_oauth::client::ClientMetadata;
use edk_oauth::federation::{UPSTREAM_OIDC, UpstreamOidcConfig, UpstreamSecret};
use edk_oauth::grant::Grant;
use edk_oauth::{AuthorizationServer, NewClient, PreAuthorizedCodeRequest};
use edk_server::{AdminBearer, AdminPrincipal, ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret;

/// Reads clients and the upstream OpenID Provider settings.
pub const SCOPE_READ: &str = "oauth2:read";
/// Creates, changes and deletes clients, mints pre-authorized codes, rotates the key and sets
/// the upstream OpenID Provider.
pub const SCOPE_WRITE: &str = "oauth2:write";

/// The admin API.
#[derive(Debug)]
pub struct AdminApi {
    tenancy: Tenancy,
    server: Arc<AuthorizationServer>,
}

impl AdminApi {
    /// The API over `tenancy` and `server`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, server: Arc<AuthorizationServer>) -> Self {
        Self { tenancy, server }
    }

    async fn tenant(&self, principal: &AdminPrincipal) -> Result<TenantContext, ApiError> {
        self.tenancy
            .context_for_service(principal.tenant, ServiceType::As)
            .await
            .map_err(|err| problem_for(&err))
    }
}

#[derive(Tags)]
enum AdminTag {
    /// OAuth 2 authorization server administration.
    #[oai(rename = "OAuth2")]
    OAuth2,
}

/// A client registration (RFC 7591 names).
#[derive(Clone, Debug, Object)]
pub struct ClientRegistration {
    /// The client id; generated when absent.
    pub client_id: Option<String>,
    /// A display name.
    #[oai(default)]
    pub client_name: String,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: String,
    /// Grant types: `authorization_code`, `client_credentials`, `refresh_token`,
    /// `urn:ietf:params:oauth:grant-type:pre-authorized_code`.
    pub grant_types: Vec<String>,
    /// Redirect URIs, matched exactly.
    #[oai(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    #[oai(default)]
    pub scopes: Vec<String>,
    /// The client's public keys for `private_key_jwt` (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Authorization requests must use PAR.
    #[oai(default)]
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry DPoP proofs.
    #[oai(default)]
    pub dpop_bound_access_tokens: bool,
    /// The resources (token audiences) this client serves as a resource server: its
    /// introspection of their access tokens carries the grant's end-user `claims`.
    #[oai(default)]
    pub claims_resources: Vec<String>,
    /// The resources (RFC 8707, absolute `https` URIs) the client may ask to be the
    /// audience of its access tokens; any other `resource` is `invalid_target`. Empty: none.
    #[oai(default)]
    pub resources: Vec<String>,
}

/// A registered client.
#[derive(Clone, Debug, Object)]
pub struct ClientView {
    /// The client id.
    pub client_id: String,
    /// The registration.
    pub metadata: serde_json::Value,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it last changed (Unix seconds).
    pub updated_at: i64,
}

/// A newly registered client, with its secret shown this once.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedClient {
    /// The client.
    pub client: ClientView,
    /// The client secret, for secret-based clients.
    pub client_secret: Option<String>,
}

/// Every client of the tenant.
#[derive(Clone, Debug, Object)]
pub struct ClientList {
    /// The clients, by id.
    pub clients: Vec<ClientView>,
}

/// A new client secret, shown this once.
#[derive(Clone, Debug, Object)]
pub struct NewSecret {
    /// The secret.
    pub client_secret: String,
}

/// What a pre-authorized code grants.
#[derive(Clone, Debug, Object)]
pub struct PreAuthorizedCodeSpec {
    /// The subject tokens are issued for.
    pub subject: String,
    /// OID4VCI `authorization_details` (type `openid_credential`).
    pub authorization_details: Option<serde_json::Value>,
    /// Scopes.
    #[oai(default)]
    pub scopes: Vec<String>,
    /// Generate a numeric `tx_code` of this many digits (4 to 10).
    pub tx_code_digits: Option<u8>,
    /// Lifetime in seconds (1 to 86400); the configured default when absent.
    pub ttl_secs: Option<i64>,
    /// End-user claims (a JSON object, at most 16 KiB) kept with the grant for the tenant's
    /// resource servers (the credential issuer); never put in tokens unless configured.
    pub claims: Option<serde_json::Value>,
    /// The resource (RFC 8707, an absolute https URI) the access tokens are for: their `aud`.
    pub resource: Option<String>,
}

/// A minted pre-authorized code.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MintedCode {
    /// The code for the credential offer.
    #[oai(rename = "pre-authorized_code")]
    pub pre_authorized_code: String,
    /// The transaction code to give the end user out of band.
    pub tx_code: Option<String>,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// The signing key after rotation.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SigningKeyView {
    /// The kid of the active version.
    pub active_kid: Option<String>,
    /// Every version's kid, newest first.
    pub kids: Vec<String>,
}

/// The tenant's upstream OpenID Provider, as written: the client secret is write-only.
#[derive(Clone, Object)]
pub struct UpstreamOidcSettings {
    /// The provider's issuer identifier (an https URL).
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret at the provider. Stored sealed by the tenant's KMS key and never
    /// returned; when absent, the stored secret is kept (and sealed if it was in clear).
    pub client_secret: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub client_auth: Option<String>,
    /// Scopes to ask for; must contain `openid` (default `openid email profile`).
    pub scopes: Option<Vec<String>>,
    /// The ID token claim that is the subject (default `sub`).
    pub subject_claim: Option<String>,
    /// ID token claims kept with the grant for the tenant's resource servers (default
    /// `email`, `email_verified`, `name`).
    pub copy_claims: Option<Vec<String>>,
    /// Allowed clock skew in seconds (default 60, at most 300).
    pub leeway_seconds: Option<u32>,
    /// How long a user may take at the provider, in seconds (default 600).
    pub login_lifetime_seconds: Option<u32>,
    /// Accept `http` provider URLs: for tests against a provider on loopback only.
    #[oai(default)]
    pub dangerous_allow_http: bool,
}

impl fmt::Debug for UpstreamOidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamOidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// The tenant's upstream OpenID Provider, as stored: never the client secret.
#[derive(Clone, Debug, Object)]
pub struct UpstreamOidcView {
    /// The provider's issuer identifier.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Whether the stored client secret is sealed by the tenant's KMS key (`false`: it is
    /// still in clear, from before sealing; writing the settings again seals it).
    pub client_secret_sealed: bool,
    /// The client authentication method.
    pub client_auth: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The subject claim.
    pub subject_claim: String,
    /// The claims kept with the grant.
    pub copy_claims: Vec<String>,
    /// Allowed clock skew in seconds.
    pub leeway_seconds: u32,
    /// How long a user may take at the provider, in seconds.
    pub login_lifetime_seconds: u32,
    /// Whether `http` provider URLs are accepted.
    pub dangerous_allow_http: bool,
    /// The stored version, increased by every write.
    pub version: i64,
}

fn upstream_view(config: &UpstreamOidcConfig, version: i64) -> UpstreamOidcView {
    UpstreamOidcView {
        issuer: config.issuer().to_owned(),
        client_id: config.client_id().to_owned(),
        client_secret_sealed: config.client_secret().is_sealed(),
        client_auth: config.client_auth().as_str().to_owned(),
        scopes: config.scopes().to_vec(),
        subject_claim: config.claims().subject_claim.clone(),
        copy_claims: config.claims().copy_claims.clone(),
        leeway_seconds: config.leeway_seconds(),
        login_lifetime_seconds: config.login_lifetime_seconds(),
        dangerous_allow_http: config.allows_http(),
        version,
    }
}

/// An empty success.
#[derive(ApiResponse, Debug)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

/// A creation.
#[derive(ApiResponse, Debug)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, Some(detail.into()))
}

fn view(client: &edk_oauth::client::Client) -> ClientView {
    ClientView {
        client_id: client.client_id.as_str().to_owned(),
        metadata: serde_json::to_value(&client.metadata).unwrap_or_default(),
        created_at: client.created_at,
        updated_at: client.updated_at,
    }
}

fn client_id(text: String) -> Result<ClientId, ApiError> {
    ClientId::new(text).map_err(|err| problem_for(&err))
}

impl AdminApi {
    /// The tenant's stored upstream provider settings and their version, read from the
    /// database (not from a cached context).
    async fn stored_upstream(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<(UpstreamOidcConfig, i64)>, ApiError> {
        let properties = self
            .tenancy
            .config_properties(Some(tenant.id()))
            .await
            .map_err(|err| problem_for(&err))?;
        let Some(property) = properties
            .into_iter()
            .find(|property| property.key == UPSTREAM_OIDC.name())
        else {
            return Ok(None);
        };
        if property.value.is_null() {
            return Ok(None);
        }
        let config = serde_json::from_value(property.value)
            .map_err(|_| ApiError::new(ErrorKind::Internal, None))?;
        Ok(Some((config, property.version)))
    }
}

fn failed(err: &edk_oauth::Error) -> ApiError {
    if err.kind() == ErrorKind::Internal {
        tracing::error!(error = %edk_core::ErrorChain(err), "admin request failed");
    }
    problem_for(err)
}

#[OpenApi(prefix_path = "/api/oauth2/v1", tag = "AdminTag::OAuth2")]
impl AdminApi {
    /// Registers a client. Requires scope `oauth2:write`.
    #[oai(path = "/clients", method = "post", operation_id = "createClient")]
    async fn create_client(
        &self,
        auth: AdminBearer,
        body: Json<ClientRegistration>,
    ) -> Result<Created<CreatedClient>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let body = body.0;
        let mut raw = serde_json::json!({
            "client_name": body.client_name,
            "token_endpoint_auth_method": body.token_endpoint_auth_method,
            "grant_types": body.grant_types,
            "redirect_uris": body.redirect_uris,
            "scopes": body.scopes,
            "require_pushed_authorization_requests": body.require_pushed_authorization_requests,
            "dpop_bound_access_tokens": body.dpop_bound_access_tokens,
            "claims_resources": body.claims_resources,
            "resources": body.resources,
        });
        if let (Some(jwks), Some(map)) = (body.jwks, raw.as_object_mut()) {
            map.insert("jwks".to_owned(), jwks);
        }
        let metadata: ClientMetadata = serde_json::from_value(raw)
            .map_err(|err| invalid(format!("invalid client registration: {err}")))?;
        let mut request = NewClient::new(metadata);
        if let Some(id) = body.client_id {
            request = request.with_id(client_id(id)?);
        }
        let (client, secret) = self
            .server
            .create_client(&tenant, request)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(CreatedClient {
            client: view(&client),
            client_secret: secret.map(|s| s.expose_secret().to_owned()),
        })))
    }

    /// Lists the tenant's clients. Requires scope `oauth2:read`.
    #[oai(path = "/clients", method = "get", operation_id = "listClients")]
    async fn list_clients(&self, auth: AdminBearer) -> Result<Json<ClientList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let clients = self
            .server
            .clients(&tenant)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(ClientList {
            clients: clients.iter().map(view).collect(),
        }))
    }

    /// One client. Requires scope `oauth2:read`.
    #[oai(
        path = "/clients/:clientId",
        method = "get",
        operation_id = "getClient"
    )]
    async fn get_client(
        &self,
        auth: AdminBearer,
        /// The client id.
        #[oai(name = "clientId")]
        id: Path<String>,
    ) -> Result<Json<ClientView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let client = self
            .server
            .client(&tenant, &client_id(id.0)?)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(view(&client)))
    }

    /// Replaces a client's secret; the old one stops working at once. Requires scope
    /// `oauth2:write`.
    #[oai(
        path = "/clients/:clientId/secret",
        method = "post",
        operation_id = "rotateClientSecret"
    )]
    async fn rotate_secret(
        &self,
        auth: AdminBearer,
        /// The client id.
        #[oai(name = "clientId")]
        id: Path<String>,
    ) -> Result<Json<NewSecret>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let secret = self
            .server
            .rotate_client_secret(&tenant, &client_id(id.0)?)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(NewSecret {
            client_secret: secret.expose_secret().to_owned(),
        }))
    }

    /// Deletes a client. Requires scope `oauth2:write`.
    #[oai(
        path = "/clients/:clientId",
        method = "delete",
        operation_id = "deleteClient"
    )]
    async fn delete_client(
        &self,
        auth: AdminBearer,
        /// The client id.
        #[oai(name = "clientId")]
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        self.server
            .delete_client(&tenant, &client_id(id.0)?)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Deleted::NoContent)
    }

    /// Mints a pre-authorized code (OID4VCI), with a `tx_code` if asked for. A wrong
    /// `tx_code` counts one attempt; after the configured maximum (default 5) the code is
    /// revoked. Requires scope `oauth2:write`.
    #[oai(
        path = "/pre-authorized-codes",
        method = "post",
        operation_id = "mintPreAuthorizedCode"
    )]
    async fn mint_code(
        &self,
        auth: AdminBearer,
        body: Json<PreAuthorizedCodeSpec>,
    ) -> Result<Created<MintedCode>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let spec = body.0;
        let mut grant = Grant::new(spec.subject);
        grant.authorization_details = spec.authorization_details;
        grant.scopes = spec.scopes;
        grant.resource = spec.resource;
        grant.claims = match spec.claims {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(claims)) => claims,
            Some(_) => return Err(invalid("invalid claims: must be a JSON object")),
        };
        let mut request = PreAuthorizedCodeRequest::new(grant);
        request.tx_code_digits = spec.tx_code_digits;
        request.ttl = spec.ttl_secs;
        let minted = self
            .server
            .mint_pre_authorized_code(&tenant, request)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(MintedCode {
            pre_authorized_code: minted.code.expose_secret().to_owned(),
            tx_code: minted.tx_code.map(|t| t.expose_secret().to_owned()),
            expires_in: minted.expires_in,
        })))
    }

    /// Sets the tenant's upstream OpenID Provider (end users of the tenant log in there). The
    /// client secret is sealed by the tenant's KMS key before it is stored and is never
    /// returned; without `client_secret`, the stored one is kept (and sealed, if it was
    /// stored in clear before). Requires scope `oauth2:write`.
    #[oai(
        path = "/upstream-oidc",
        method = "put",
        operation_id = "setUpstreamOidc"
    )]
    async fn set_upstream(
        &self,
        auth: AdminBearer,
        body: Json<UpstreamOidcSettings>,
    ) -> Result<Json<UpstreamOidcView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let body = body.0;
        let current = self.stored_upstream(&tenant).await?;
        let mut raw = serde_json::json!({
            "issuer": body.issuer,
            "client_id": body.client_id,
            "dangerous_allow_http": body.dangerous_allow_http,
        });
        if let Some(map) = raw.as_object_mut() {
            let mut put = |name: &str, value: serde_json::Value| {
                map.insert(name.to_owned(), value);
            };
            match (
                body.client_secret,
                current.as_ref().map(|(c, _)| c.client_secret()),
            ) {
                (Some(secret), _) => put("client_secret", secret.into()),
                (None, Some(UpstreamSecret::Sealed(sealed))) => {
                    put("client_secret_sealed", sealed.as_str().into());
                }
                (None, Some(UpstreamSecret::Plain(secret))) => {
                    put("client_secret", secret.expose_secret().into());
                }
                (None, _) => return Err(invalid("invalid client_secret: it is required")),
            }
            if let Some(method) = body.client_auth {
                put("client_auth", method.into());
            }
            if let Some(scopes) = body.scopes {
                put("scopes", scopes.into());
            }
            if body.subject_claim.is_some() || body.copy_claims.is_some() {
                let mut claims = serde_json::Map::new();
                if let Some(subject) = body.subject_claim {
                    claims.insert("subject_claim".to_owned(), subject.into());
                }
                if let Some(copy) = body.copy_claims {
                    claims.insert("copy_claims".to_owned(), copy.into());
                }
                put("claims", claims.into());
            }
            if let Some(leeway) = body.leeway_seconds {
                put("leeway_seconds", leeway.into());
            }
            if let Some(lifetime) = body.login_lifetime_seconds {
                put("login_lifetime_seconds", lifetime.into());
            }
        }
        let config: UpstreamOidcConfig = serde_json::from_value(raw)
            .map_err(|err| invalid(format!("invalid upstream provider settings: {err}")))?;
        let sealed = self
            .server
            .seal_upstream_secret(&tenant, config)
            .await
            .map_err(|err| failed(&err))?;
        let value =
            serde_json::to_value(&sealed).map_err(|_| ApiError::new(ErrorKind::Internal, None))?;
        let written = self
            .tenancy
            .set_config(Some(tenant.id()), UPSTREAM_OIDC.name(), value, None)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(upstream_view(&sealed, written.version)))
    }

    /// The tenant's upstream OpenID Provider, without the client secret. Requires scope
    /// `oauth2:read`.
    #[oai(
        path = "/upstream-oidc",
        method = "get",
        operation_id = "getUpstreamOidc"
    )]
    async fn get_upstream(&self, auth: AdminBearer) -> Result<Json<UpstreamOidcView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let (config, version) = self.stored_upstream(&tenant).await?.ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                Some("no upstream OpenID Provider is configured".to_owned()),
            )
        })?;
        Ok(Json(upstream_view(&config, version)))
    }

    /// Rotates the access-token signing key; the old key stays in the JWKS for its overlap.
    /// Requires scope `oauth2:write`.
    #[oai(
        path = "/signing-key/rotate",
        method = "post",
        operation_id = "rotateSigningKey"
    )]
    async fn rotate_key(&self, auth: AdminBearer) -> Result<Json<SigningKeyView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let info = self
            .server
            .rotate_signing_key(&tenant)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(SigningKeyView {
            active_kid: info.active().map(|v| v.kid.as_str().to_owned()),
            kids: info
                .versions
                .iter()
                .map(|v| v.kid.as_str().to_owned())
                .collect(),
        }))
    }
}
