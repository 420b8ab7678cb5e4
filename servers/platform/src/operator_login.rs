//! Operators logging in through an upstream OpenID Provider.
//!
//! The operator authorization server federates its end users as a tenant's authorization
//! server does (edk-oauth's `OidcFederation`, configured by the operator realm's
//! `oauth.upstream_oidc`), with one more check: [`OperatorLogin`] lets through only the
//! upstream users an operator allowed ([`FEDERATED_OPERATORS`], the realm's
//! `platform.federated_operators`): one whose upstream issuer and subject match a record, or
//! whose verified email (`email` with `email_verified: true`) does. Anyone else is refused
//! with `access_denied` at the callback and gets no code. Other tenants' logins go to the
//! wrapped authenticator unchanged.
//!
//! Operators log in through a client registered by [`OperatorLoginApi`]: a public client
//! with authorization code and PKCE (`S256`, mandatory for public clients) whose scopes are
//! platform scopes.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use edk_as_server::admin::{UpstreamOidcSettings, UpstreamOidcView};
use edk_core::{ClientId, Clock, ErrorChain, ErrorKind, HasKind, TenantId};
use edk_oauth::authn::{Authenticator, AuthnCallback, AuthnOutcome, AuthnRequest, AuthnStart};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::error::AuthnError;
use edk_oauth::federation::{OidcFederation, UPSTREAM_OIDC, UpstreamOidcConfig, UpstreamSecret};
use edk_oauth::{AuthorizationServer, NewClient};
use edk_server::{ApiError, problem_for};
use edk_tenancy::config::ConfigKey;
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};

use crate::operators::{OPERATOR_REALM_SLUG, PlatformBearer, scope};

/// The operator realm's property listing the upstream users allowed to log in as operators.
pub static FEDERATED_OPERATORS: ConfigKey<Vec<FederatedOperator>> = ConfigKey::new(
    "platform.federated_operators",
    Vec::new,
    |records: &Vec<FederatedOperator>| {
        if records
            .iter()
            .all(|record| record.subject.is_some() || record.email.is_some())
        {
            Ok(())
        } else {
            Err("each record needs a `subject` or an `email`")
        }
    },
);

/// An upstream user allowed to log in as an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Object)]
pub struct FederatedOperator {
    /// The upstream issuer the `subject` is of; unset: the configured upstream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub issuer: Option<String>,
    /// The upstream subject (the value of the upstream's subject claim, `sub` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// A verified email address (`email` with `email_verified: true` from the upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// Who allowed it (the operator's subject); set by the server.
    #[serde(default)]
    #[oai(default)]
    pub created_by: String,
    /// When (RFC 3339); set by the server.
    #[serde(default)]
    #[oai(default)]
    pub created_at: String,
}

impl FederatedOperator {
    /// Whether the upstream user `subject` of `issuer`, with `claims`, is this operator.
    #[must_use]
    pub fn matches(
        &self,
        issuer: &str,
        subject: &str,
        claims: &serde_json::Map<String, Value>,
    ) -> bool {
        let by_subject = self.subject.as_deref() == Some(subject)
            && self.issuer.as_deref().is_none_or(|own| own == issuer);
        let verified = claims.get("email_verified") == Some(&Value::Bool(true));
        let by_email = verified
            && self.email.as_deref().is_some_and(|email| {
                claims
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|asserted| asserted.eq_ignore_ascii_case(email))
            });
        by_subject || by_email
    }
}

/// The authenticator of an authorization server serving the operator realm: the realm's
/// logins go through `federation` and must match a [`FederatedOperator`]; other tenants'
/// go to `others`.
pub struct OperatorLogin {
    tenancy: Tenancy,
    federation: Arc<dyn Authenticator>,
    others: Arc<dyn Authenticator>,
}

impl fmt::Debug for OperatorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorLogin").finish_non_exhaustive()
    }
}

impl OperatorLogin {
    /// Operator logins through `federation` (an `OidcFederation`, reading the realm's
    /// upstream), other tenants' through `others`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        federation: Arc<dyn Authenticator>,
        others: Arc<dyn Authenticator>,
    ) -> Self {
        Self {
            tenancy,
            federation,
            others,
        }
    }

    fn is_realm(tenant: &TenantContext) -> bool {
        tenant.slug().as_str() == OPERATOR_REALM_SLUG
    }
}

#[async_trait]
impl Authenticator for OperatorLogin {
    async fn start(
        &self,
        tenant: &TenantContext,
        request: &AuthnRequest,
    ) -> Result<AuthnStart, AuthnError> {
        if !Self::is_realm(tenant) {
            return self.others.start(tenant, request).await;
        }
        match self.federation.start(tenant, request).await? {
            AuthnStart::Redirect { location } => Ok(AuthnStart::Redirect { location }),
            _ => Err(AuthnError::NotConfigured),
        }
    }

    async fn finish(
        &self,
        tenant: &TenantContext,
        callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, AuthnError> {
        if !Self::is_realm(tenant) {
            return self.others.finish(tenant, callback).await;
        }
        let outcome = self.federation.finish(tenant, callback).await?;
        let issuer = OidcFederation::config(tenant)
            .map_err(|_| AuthnError::NotConfigured)?
            .issuer()
            .to_owned();
        let records = allowed(&self.tenancy, tenant.id())
            .await
            .map_err(|err| AuthnError::Unavailable(Box::new(err)))?;
        let subject = &outcome.subject;
        if records
            .iter()
            .any(|record| record.matches(&issuer, &subject.subject, &subject.claims))
        {
            tracing::info!(upstream = %issuer, "operator logged in");
            return Ok(outcome);
        }
        tracing::info!(upstream = %issuer, "upstream user is not an operator");
        Err(AuthnError::AccessDenied {
            reason: "this account is not an operator".to_owned(),
        })
    }
}

/// The stored records of the realm, read from the database.
async fn allowed(
    tenancy: &Tenancy,
    realm: TenantId,
) -> Result<Vec<FederatedOperator>, edk_tenancy::Error> {
    Ok(stored(tenancy, realm, FEDERATED_OPERATORS.name())
        .await?
        .and_then(|(value, _)| serde_json::from_value(value).ok())
        .unwrap_or_default())
}

/// The stored value and version of the realm's property `key`.
async fn stored(
    tenancy: &Tenancy,
    realm: TenantId,
    key: &str,
) -> Result<Option<(Value, i64)>, edk_tenancy::Error> {
    Ok(tenancy
        .config_properties(Some(realm))
        .await?
        .into_iter()
        .find(|property| property.key == key && !property.value.is_null())
        .map(|property| (property.value, property.version)))
}

/// `/api/platform/v1/operators`: the operator realm's upstream OpenID Provider, the upstream
/// users allowed as operators, and operator clients.
#[derive(Debug)]
pub struct OperatorLoginApi {
    tenancy: Tenancy,
    oauth: Arc<AuthorizationServer>,
    clock: Arc<dyn Clock>,
    realm: TenantId,
}

impl OperatorLoginApi {
    /// The API over the operator realm `realm` of `oauth`, dated by `clock`.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        oauth: Arc<AuthorizationServer>,
        clock: Arc<dyn Clock>,
        realm: TenantId,
    ) -> Self {
        Self {
            tenancy,
            oauth,
            clock,
            realm,
        }
    }

    async fn context(&self) -> Result<TenantContext, ApiError> {
        self.tenancy
            .context_for_service(self.realm, ServiceType::As)
            .await
            .map_err(|err| failed(&err))
    }
}

#[derive(Tags)]
enum OperatorTag {
    /// Operators and how they log in.
    Operators,
}

/// The upstream users allowed as operators.
#[derive(Debug, Object)]
pub struct FederatedOperatorList {
    /// Every record.
    pub operators: Vec<FederatedOperator>,
}

/// An operator client to register.
#[derive(Debug, Object)]
pub struct NewOperatorClient {
    /// The client id; generated when absent.
    pub client_id: Option<String>,
    /// A display name.
    #[oai(default)]
    pub client_name: String,
    /// Redirect URIs: the client is then a public client logging operators in by
    /// authorization code with PKCE; without any, a `client_secret_basic` client for
    /// `client_credentials` (automation).
    #[oai(default)]
    pub redirect_uris: Vec<String>,
    /// The platform scopes it may ask for (default: all).
    pub scopes: Option<Vec<String>>,
}

/// A registered operator client.
#[derive(Object)]
pub struct OperatorClient {
    /// The client id.
    pub client_id: String,
    /// The client secret, shown once, for a `client_credentials` client.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Option<String>,
    /// The operator authorization server's issuer identifier.
    pub issuer: String,
    /// Its authorization endpoint.
    pub authorization_endpoint: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// The scopes the client may ask for.
    pub scopes: Vec<String>,
}

impl fmt::Debug for OperatorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A creation.
#[derive(ApiResponse, Debug)]
pub enum OperatorCreated<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
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

#[OpenApi(prefix_path = "/api/platform/v1")]
impl OperatorLoginApi {
    /// Sets the upstream OpenID Provider operators log in through (the operator realm's
    /// `oauth.upstream_oidc`). The client secret is sealed by the realm's KMS key and never
    /// returned; without `client_secret`, the stored one is kept. Requires scope
    /// `platform:operators:write`.
    #[oai(
        path = "/operators/upstream-oidc",
        method = "put",
        operation_id = "setOperatorUpstreamOidc",
        tag = "OperatorTag::Operators"
    )]
    async fn set_upstream(
        &self,
        auth: PlatformBearer,
        body: Json<UpstreamOidcSettings>,
    ) -> Result<Json<UpstreamOidcView>, ApiError> {
        auth.0.require_operator(scope::OPERATORS_WRITE)?;
        let realm = self.context().await?;
        let body = body.0;
        let current: Option<UpstreamOidcConfig> =
            stored(&self.tenancy, self.realm, UPSTREAM_OIDC.name())
                .await
                .map_err(|err| failed(&err))?
                .and_then(|(value, _)| serde_json::from_value(value).ok());
        let mut raw = serde_json::json!({
            "issuer": body.issuer,
            "client_id": body.client_id,
            "dangerous_allow_http": body.dangerous_allow_http,
        });
        if let Some(map) = raw.as_object_mut() {
            match (
                body.client_secret,
                current.as_ref().map(UpstreamOidcConfig::client_secret),
            ) {
                (Some(secret), _) => {
                    map.insert("client_secret".to_owned(), secret.into());
                }
                (None, Some(UpstreamSecret::Sealed(sealed))) => {
                    map.insert("client_secret_sealed".to_owned(), sealed.as_str().into());
                }
                (None, Some(UpstreamSecret::Plain(secret))) => {
                    map.insert("client_secret".to_owned(), secret.expose_secret().into());
                }
                (None, _) => return Err(invalid("client_secret", "it is required")),
            }
            if let Some(method) = body.client_auth {
                map.insert("client_auth".to_owned(), method.into());
            }
            if let Some(scopes) = body.scopes {
                map.insert("scopes".to_owned(), scopes.into());
            }
            let mut claims = serde_json::Map::new();
            if let Some(subject) = body.subject_claim {
                claims.insert("subject_claim".to_owned(), subject.into());
            }
            if let Some(copy) = body.copy_claims {
                claims.insert("copy_claims".to_owned(), copy.into());
            }
            if !claims.is_empty() {
                map.insert("claims".to_owned(), claims.into());
            }
            if let Some(leeway) = body.leeway_seconds {
                map.insert("leeway_seconds".to_owned(), leeway.into());
            }
            if let Some(lifetime) = body.login_lifetime_seconds {
                map.insert("login_lifetime_seconds".to_owned(), lifetime.into());
            }
        }
        let config: UpstreamOidcConfig = serde_json::from_value(raw).map_err(|err| {
            ApiError::new(
                ErrorKind::InvalidInput,
                Some(format!("invalid upstream provider settings: {err}")),
            )
        })?;
        let sealed = self
            .oauth
            .seal_upstream_secret(&realm, config)
            .await
            .map_err(|err| failed(&err))?;
        let value =
            serde_json::to_value(&sealed).map_err(|_| ApiError::new(ErrorKind::Internal, None))?;
        let written = self
            .tenancy
            .set_config(Some(self.realm), UPSTREAM_OIDC.name(), value, None)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(upstream_view(&sealed, written.version)))
    }

    /// Allows an upstream user to log in as an operator, by upstream subject (of `issuer`,
    /// default the configured upstream) or verified email. Requires scope
    /// `platform:operators:write`.
    #[oai(
        path = "/operators/federated",
        method = "post",
        operation_id = "addFederatedOperator",
        tag = "OperatorTag::Operators"
    )]
    async fn add_federated(
        &self,
        auth: PlatformBearer,
        body: Json<FederatedOperator>,
    ) -> Result<OperatorCreated<FederatedOperator>, ApiError> {
        auth.0.require_operator(scope::OPERATORS_WRITE)?;
        let mut record = body.0;
        let blank = |value: &Option<String>| value.as_deref().is_some_and(str::is_empty);
        if blank(&record.subject) || blank(&record.email) || blank(&record.issuer) {
            return Err(invalid(
                "subject",
                "`issuer`, `subject` and `email` cannot be empty",
            ));
        }
        if record.subject.is_none() && record.email.is_none() {
            return Err(invalid("subject", "a `subject` or an `email` is required"));
        }
        record.created_by.clone_from(&auth.0.subject);
        record.created_at = chrono::DateTime::from_timestamp(self.clock.unix_seconds(), 0)
            .unwrap_or_default()
            .to_rfc3339();
        let current = stored(&self.tenancy, self.realm, FEDERATED_OPERATORS.name())
            .await
            .map_err(|err| failed(&err))?;
        let (mut records, version): (Vec<FederatedOperator>, i64) = match current {
            Some((value, version)) => (
                serde_json::from_value(value)
                    .map_err(|_| ApiError::new(ErrorKind::Internal, None))?,
                version,
            ),
            None => (Vec::new(), 0),
        };
        let same = |other: &FederatedOperator| {
            other.issuer == record.issuer
                && other.subject == record.subject
                && other.email == record.email
        };
        if records.iter().any(same) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                Some("this upstream user is already an operator".to_owned()),
            ));
        }
        records.push(record.clone());
        let value =
            serde_json::to_value(&records).map_err(|_| ApiError::new(ErrorKind::Internal, None))?;
        self.tenancy
            .set_config(
                Some(self.realm),
                FEDERATED_OPERATORS.name(),
                value,
                Some(version),
            )
            .await
            .map_err(|err| failed(&err))?;
        Ok(OperatorCreated::Created(Json(record)))
    }

    /// The upstream users allowed as operators. Requires scope `platform:operators:read`.
    #[oai(
        path = "/operators/federated",
        method = "get",
        operation_id = "listFederatedOperators",
        tag = "OperatorTag::Operators"
    )]
    async fn list_federated(
        &self,
        auth: PlatformBearer,
    ) -> Result<Json<FederatedOperatorList>, ApiError> {
        auth.0.require_operator(scope::OPERATORS_READ)?;
        let operators = allowed(&self.tenancy, self.realm)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(FederatedOperatorList { operators }))
    }

    /// Registers an operator client at the operator authorization server: with redirect URIs
    /// a public client logging operators in through the upstream provider (authorization
    /// code with PKCE), without a `client_credentials` client for automation. Its scopes are
    /// platform scopes. Requires scope `platform:operators:write`.
    #[oai(
        path = "/operators/clients",
        method = "post",
        operation_id = "createOperatorClient",
        tag = "OperatorTag::Operators"
    )]
    async fn create_client(
        &self,
        auth: PlatformBearer,
        body: Json<NewOperatorClient>,
    ) -> Result<OperatorCreated<OperatorClient>, ApiError> {
        auth.0.require_operator(scope::OPERATORS_WRITE)?;
        let body = body.0;
        let scopes = body
            .scopes
            .unwrap_or_else(|| scope::ALL.map(str::to_owned).to_vec());
        if let Some(unknown) = scopes.iter().find(|s| !scope::ALL.contains(&s.as_str())) {
            return Err(invalid(
                "scopes",
                &format!("`{unknown}` is not a platform scope"),
            ));
        }
        let client_id = body
            .client_id
            .map(|id| ClientId::new(id).map_err(|err| invalid("client_id", &err.to_string())))
            .transpose()?;
        let mut metadata = if body.redirect_uris.is_empty() {
            ClientMetadata::new(
                ClientAuthMethod::ClientSecretBasic,
                vec![GrantType::ClientCredentials],
            )
        } else {
            let mut metadata =
                ClientMetadata::new(ClientAuthMethod::None, vec![GrantType::AuthorizationCode]);
            metadata.redirect_uris = body.redirect_uris;
            metadata
        };
        metadata.client_name = body.client_name;
        metadata.scopes = scopes;
        let mut request = NewClient::new(metadata);
        if let Some(id) = client_id {
            request = request.with_id(id);
        }
        let realm = self.context().await?;
        let (client, secret) = self
            .oauth
            .create_client(&realm, request)
            .await
            .map_err(|err| failed(&err))?;
        let issuer = realm
            .binding()
            .map(|binding| binding.identifier().to_owned())
            .unwrap_or_default();
        Ok(OperatorCreated::Created(Json(OperatorClient {
            client_id: client.client_id.to_string(),
            client_secret: secret.map(|secret| secret.expose_secret().to_owned()),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            issuer,
            scopes: client.metadata.scopes,
        })))
    }
}
