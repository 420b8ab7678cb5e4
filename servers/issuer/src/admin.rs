//! `/api/oid4vci/v1`: the tenant's credential configurations, offers and issuance sessions.
//! The tenant comes from the admin token, never from the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use edk_core::ErrorKind;
use edk_oauth::AuthorizationServer;
use edk_oid4vci::{Issuer, Notification, OfferGrants, OfferRequest, Session, StoredConfiguration};
use edk_server::{AdminBearer, AdminPrincipal, ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use poem::http::HeaderMap;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::protocol::bound;
use crate::qr::{QrFormat, QrImage};

/// Reads the tenant's credential configurations and issuance sessions.
pub const SCOPE_READ: &str = "oid4vci:read";
/// Writes credential configurations, makes offers and cancels sessions.
pub const SCOPE_WRITE: &str = "oid4vci:write";
/// Every scope of the issuer server.
pub const SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_WRITE];

/// The admin API.
#[derive(Debug)]
pub struct AdminApi {
    tenancy: Tenancy,
    issuer: Arc<Issuer>,
    server: Arc<AuthorizationServer>,
}

impl AdminApi {
    /// The API over `tenancy`, `issuer` and the authorization server `server` that mints the
    /// offers' pre-authorized codes.
    #[must_use]
    pub const fn new(
        tenancy: Tenancy,
        issuer: Arc<Issuer>,
        server: Arc<AuthorizationServer>,
    ) -> Self {
        Self {
            tenancy,
            issuer,
            server,
        }
    }

    /// The session `id` after `settled` of its transactions were settled.
    async fn settled(
        &self,
        tenant: &TenantContext,
        id: &str,
        settled: usize,
    ) -> Result<Json<SettledView>, ApiError> {
        Ok(Json(SettledView {
            session: self.session_view(tenant, id).await?,
            settled: u32::try_from(settled).unwrap_or(u32::MAX),
        }))
    }

    /// Session `id` with its notifications.
    async fn session_view(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<SessionView, ApiError> {
        let session = self
            .issuer
            .session(tenant, id)
            .await
            .map_err(|err| problem_for(&err))?;
        let notifications = self
            .issuer
            .notifications(tenant, id)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(session_view(session, notifications))
    }

    /// The token's tenant (its bindings are not needed for configurations and sessions).
    async fn tenant(&self, principal: &AdminPrincipal) -> Result<TenantContext, ApiError> {
        tenant_of(&self.tenancy, principal).await
    }
}

/// The tenant of an admin token, without its bindings.
pub(crate) async fn tenant_of(
    tenancy: &Tenancy,
    principal: &AdminPrincipal,
) -> Result<TenantContext, ApiError> {
    tenancy
        .context(principal.tenant)
        .await
        .map_err(|err| problem_for(&err))
}

#[derive(Tags)]
enum AdminTag {
    /// OpenID4VCI credential issuer administration.
    #[oai(rename = "OID4VCI")]
    Oid4vci,
}

/// A credential configuration as the operator writes it.
#[derive(Clone, Debug, Object)]
pub struct ConfigurationBody {
    /// The `credential_configurations_supported` entry wallets see (`format`, `vct` or
    /// `credential_definition`, `scope`, binding methods, proof types, `credential_metadata`).
    pub configuration: BTreeMap<String, Value>,
    /// How it is issued, never shown to wallets: `signing_key` (KMS purpose under `issuer`,
    /// default `credential-signing`), `key_identification`, `lifetime_secs`,
    /// `selectively_disclosable`, `deferred` (issue through the deferred endpoint once the
    /// session is completed), `status` (`purpose` `revocation` or `suspension`, `bits`,
    /// `list_size`: credentials get a status list entry), `type_metadata` (the SD-JWT VC
    /// Type Metadata of the `vct`, served at `<issuer>/types/<name>` when the `vct` is that
    /// URL; credentials carry its `vct#integrity`).
    pub settings: Option<BTreeMap<String, Value>>,
}

/// A stored credential configuration.
#[derive(Clone, Debug, Object)]
pub struct ConfigurationView {
    /// The configuration id (the key in `credential_configurations_supported`).
    pub id: String,
    /// The entry wallets see.
    pub configuration: Value,
    /// How it is issued.
    pub settings: Value,
}

/// Every credential configuration of the tenant.
#[derive(Clone, Debug, Object)]
pub struct ConfigurationList {
    /// The configurations, by id.
    pub configurations: Vec<ConfigurationView>,
}

/// A transaction code the wallet must send with the pre-authorized code.
#[derive(Clone, Debug, Object)]
pub struct TxCodeSpec {
    /// How many digits (4 to 10).
    pub digits: u8,
    /// What the wallet tells the person about it.
    pub description: Option<String>,
}

/// What an offer is for.
#[derive(Clone, Debug, Object)]
pub struct OfferBody {
    /// The configurations offered; each must exist.
    pub credential_configuration_ids: Vec<String>,
    /// The claims of each offered credential, by configuration id.
    pub claims: Option<BTreeMap<String, Value>>,
    /// Require a numeric transaction code.
    pub tx_code: Option<TxCodeSpec>,
    /// Your own reference for the session, unique in the tenant.
    pub correlation_id: Option<String>,
    /// Serve the offer by reference (`credential_offer_uri`, fetched once).
    #[oai(default)]
    pub by_reference: bool,
    /// Defer every credential of the offer: the credential endpoint answers with a
    /// `transaction_id`, and the credentials are issued when the session is completed
    /// (`POST /sessions/{id}/complete`).
    #[oai(default)]
    pub deferred: bool,
    /// The grants of the offer (default: the pre-authorized code alone). With
    /// `authorization_code`, the offer carries an `issuer_state`: the person logs in at the
    /// tenant's authorization server, and the first end user to do so is bound to the
    /// session.
    pub grants: Option<Vec<OfferGrant>>,
}

/// A grant an offer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum OfferGrant {
    /// The pre-authorized code grant.
    #[oai(rename = "urn:ietf:params:oauth:grant-type:pre-authorized_code")]
    PreAuthorizedCode,
    /// The authorization code grant, with `issuer_state`.
    #[oai(rename = "authorization_code")]
    AuthorizationCode,
}

/// The claims that complete a deferred session.
#[derive(Clone, Debug, Object)]
pub struct CompleteBody {
    /// The claims of each deferred credential, by configuration id; a configuration without
    /// an entry is issued with the claims of the offer.
    pub claims: Option<BTreeMap<String, Value>>,
}

/// Why a deferred session fails.
#[derive(Clone, Debug, Object)]
pub struct FailBody {
    /// What the wallet is told (`error_description` of `credential_request_denied`).
    pub description: Option<String>,
}

/// The outcome of settling a deferred session.
#[derive(Clone, Debug, Object)]
pub struct SettledView {
    /// The session as it is now.
    pub session: SessionView,
    /// How many deferred transactions were settled.
    pub settled: u32,
}

/// A made offer: show `credential_offer_uri` to the wallet and send `tx_code` by another
/// channel. The transaction code is shown this once.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OfferView {
    /// The issuance session.
    pub session_id: String,
    /// The credential offer.
    pub credential_offer: Value,
    /// The `openid-credential-offer://` URI, by value or by reference.
    pub credential_offer_uri: String,
    /// The transaction code.
    pub tx_code: Option<String>,
    /// When the offer lapses (Unix seconds).
    pub expires_at: i64,
}

/// An issuance session; the claims stay in the store.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionView {
    /// The session id.
    pub id: String,
    /// The caller's reference.
    pub correlation_id: Option<String>,
    /// `offered`, `token_issued`, `credential_issued`, `deferred`, `notified`, `failed`,
    /// `expired` or `cancelled`.
    pub status: String,
    /// The offered configurations.
    pub credential_configuration_ids: Vec<String>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it lapses if unfinished.
    pub expires_at: i64,
    /// Whether the offer deferred its credentials.
    pub deferred: bool,
    /// The end user who logged in for the session (authorization code grant).
    pub subject: Option<String>,
    /// What the wallet notified about the issued credentials, oldest first.
    pub notifications: Vec<NotificationView>,
}

/// A wallet's notification about the credentials of a session.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NotificationView {
    /// `credential_accepted`, `credential_failure` or `credential_deleted`.
    pub event: String,
    /// The wallet's `event_description`.
    pub event_description: Option<String>,
    /// When it was received (Unix seconds).
    pub received_at: i64,
}

fn session_view(session: Session, notifications: Vec<Notification>) -> SessionView {
    SessionView {
        id: session.id,
        correlation_id: session.correlation_id,
        status: session.status.as_str().to_owned(),
        credential_configuration_ids: session.configuration_ids,
        created_at: session.created_at,
        updated_at: session.updated_at,
        expires_at: session.expires_at,
        deferred: session.deferred,
        subject: session.subject,
        notifications: notifications
            .into_iter()
            .map(|notification| NotificationView {
                event: notification.event.as_str().to_owned(),
                event_description: notification.description,
                received_at: notification.received_at,
            })
            .collect(),
    }
}

fn configuration_view(id: String, stored: &StoredConfiguration) -> ConfigurationView {
    ConfigurationView {
        id,
        configuration: serde_json::to_value(&stored.configuration).unwrap_or_default(),
        settings: serde_json::to_value(&stored.settings).unwrap_or_default(),
    }
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, Some(detail.into()))
}

/// An empty success.
#[derive(ApiResponse, Debug)]
pub enum NoContent {
    /// Done.
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

#[OpenApi(prefix_path = "/api/oid4vci/v1", tag = "AdminTag::Oid4vci")]
impl AdminApi {
    /// Every credential configuration of the tenant. Requires scope `oid4vci:read`.
    #[oai(
        path = "/configurations",
        method = "get",
        operation_id = "listConfigurations"
    )]
    async fn list_configurations(
        &self,
        auth: AdminBearer,
    ) -> Result<Json<ConfigurationList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let all = self
            .issuer
            .configurations(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(ConfigurationList {
            configurations: all
                .into_iter()
                .map(|(id, stored)| configuration_view(id, &stored))
                .collect(),
        }))
    }

    /// Creates or replaces a credential configuration after checking it against its
    /// format's rules. Requires scope `oid4vci:write`.
    #[oai(
        path = "/configurations/:id",
        method = "put",
        operation_id = "putConfiguration"
    )]
    async fn put_configuration(
        &self,
        auth: AdminBearer,
        /// The configuration id.
        id: Path<String>,
        body: Json<ConfigurationBody>,
    ) -> Result<Json<ConfigurationView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let body = body.0;
        let configuration = edk_oid4vci::CredentialConfiguration::from_json(Value::Object(
            body.configuration.into_iter().collect(),
        ))
        .map_err(|err| problem_for(&err))?;
        let settings = match body.settings {
            None => edk_oid4vci::IssuanceSettings::default(),
            Some(settings) => serde_json::from_value(Value::Object(settings.into_iter().collect()))
                .map_err(|err| invalid(format!("settings: {err}")))?,
        };
        let stored = StoredConfiguration {
            configuration,
            settings,
        };
        self.issuer
            .put_configuration(&tenant, &id.0, &stored)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(configuration_view(id.0, &stored)))
    }

    /// One credential configuration. Requires scope `oid4vci:read`.
    #[oai(
        path = "/configurations/:id",
        method = "get",
        operation_id = "getConfiguration"
    )]
    async fn get_configuration(
        &self,
        auth: AdminBearer,
        /// The configuration id.
        id: Path<String>,
    ) -> Result<Json<ConfigurationView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let all = self
            .issuer
            .configurations(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        all.into_iter()
            .find(|(stored_id, _)| *stored_id == id.0)
            .map(|(stored_id, stored)| Json(configuration_view(stored_id, &stored)))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    Some("credential configuration not found".to_owned()),
                )
            })
    }

    /// Deletes a credential configuration: it is no longer offered nor issued. Requires
    /// scope `oid4vci:write`.
    #[oai(
        path = "/configurations/:id",
        method = "delete",
        operation_id = "deleteConfiguration"
    )]
    async fn delete_configuration(
        &self,
        auth: AdminBearer,
        /// The configuration id.
        id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        self.issuer
            .delete_configuration(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(NoContent::NoContent)
    }

    /// Makes a credential offer with a pre-authorized code minted by the tenant's
    /// authorization server (the tenant needs `issuer` and `as` endpoint bindings). Requires
    /// scope `oid4vci:write`.
    #[oai(path = "/offers", method = "post", operation_id = "createOffer")]
    async fn create_offer(
        &self,
        auth: AdminBearer,
        body: Json<OfferBody>,
    ) -> Result<Created<OfferView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self
            .tenancy
            .context_for_service(auth.0.tenant, ServiceType::Issuer)
            .await
            .map_err(|err| problem_for(&err))?;
        let bound = bound(&self.tenancy, tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        let body = body.0;
        let mut request = OfferRequest::default();
        request.configuration_ids = body.credential_configuration_ids;
        request.claims = body.claims.unwrap_or_default().into_iter().collect();
        if let Some(tx_code) = body.tx_code {
            request.tx_code_digits = Some(tx_code.digits);
            request.tx_code_description = tx_code.description;
        }
        request.correlation_id = body.correlation_id;
        request.by_reference = body.by_reference;
        request.deferred = body.deferred;
        if let Some(grants) = body.grants {
            request.grants = OfferGrants::new(
                grants.contains(&OfferGrant::PreAuthorizedCode),
                grants.contains(&OfferGrant::AuthorizationCode),
            );
        }
        let created = self
            .issuer
            .create_offer(
                &bound.authorization_server,
                &self.server,
                &bound.endpoints,
                &request,
            )
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Created::Created(Json(OfferView {
            session_id: created.session_id,
            credential_offer: serde_json::to_value(&created.offer).unwrap_or_default(),
            credential_offer_uri: created.uri,
            tx_code: created.tx_code.map(|code| code.expose_secret().to_owned()),
            expires_at: created.expires_at,
        })))
    }

    /// The offer URI of an open offer as a QR code, to show a wallet: PNG (`image/png`) or
    /// SVG (`image/svg+xml`), by the `format` parameter or else the `Accept` header (PNG
    /// unless SVG is preferred). 409 once a credential was requested for the offer, or it
    /// was cancelled or has lapsed.
    /// Requires scope `oid4vci:read`.
    #[oai(path = "/offers/:id/qr", method = "get", operation_id = "getOfferQr")]
    async fn offer_qr(
        &self,
        auth: AdminBearer,
        /// The offer's session id.
        id: Path<String>,
        /// `png` or `svg`; overrides `Accept`.
        format: Query<Option<String>>,
        headers: &HeaderMap,
    ) -> Result<QrImage, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let accept = headers
            .get(poem::http::header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let format = QrFormat::negotiate(format.0.as_deref(), accept).map_err(invalid)?;
        let tenant = self.tenant(&auth.0).await?;
        let uri = self
            .issuer
            .offer_uri(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        crate::qr::render(&uri, format).map_err(|err| problem_for(&err))
    }

    /// The issuance session made with a `correlation_id` (at most one: they are unique per
    /// tenant), as a list that is empty when there is none. Requires scope `oid4vci:read`.
    #[oai(path = "/sessions", method = "get", operation_id = "findSessions")]
    async fn find_sessions(
        &self,
        auth: AdminBearer,
        /// The `correlation_id` given when the offer was made.
        correlation_id: Query<String>,
    ) -> Result<Json<Vec<SessionView>>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let session = match self
            .issuer
            .session_by_correlation_id(&tenant, &correlation_id.0)
            .await
        {
            Ok(session) => session,
            Err(edk_oid4vci::issuer::Error::NotFound(_)) => return Ok(Json(Vec::new())),
            Err(err) => return Err(problem_for(&err)),
        };
        Ok(Json(vec![self.session_view(&tenant, &session.id).await?]))
    }

    /// One issuance session. Requires scope `oid4vci:read`.
    #[oai(path = "/sessions/:id", method = "get", operation_id = "getSession")]
    async fn session(
        &self,
        auth: AdminBearer,
        /// The session id.
        id: Path<String>,
    ) -> Result<Json<SessionView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        Ok(Json(self.session_view(&tenant, &id.0).await?))
    }

    /// Cancels an open issuance session: its credentials can no longer be requested.
    /// Requires scope `oid4vci:write`.
    #[oai(
        path = "/sessions/:id/cancel",
        method = "post",
        operation_id = "cancelSession"
    )]
    async fn cancel(
        &self,
        auth: AdminBearer,
        /// The session id.
        id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        self.issuer
            .cancel(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(NoContent::NoContent)
    }

    /// Completes a deferred session: the credentials of its pending deferred requests are
    /// issued with the given claims, for the wallet to fetch once at the deferred credential
    /// endpoint. 409 when the session is not `deferred`. Requires scope `oid4vci:write`.
    #[oai(
        path = "/sessions/:id/complete",
        method = "post",
        operation_id = "completeSession"
    )]
    async fn complete(
        &self,
        auth: AdminBearer,
        /// The session id.
        id: Path<String>,
        body: Json<CompleteBody>,
    ) -> Result<Json<SettledView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self
            .tenancy
            .context_for_service(auth.0.tenant, ServiceType::Issuer)
            .await
            .map_err(|err| problem_for(&err))?;
        let bound = bound(&self.tenancy, tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        let claims = body.0.claims.unwrap_or_default().into_iter().collect();
        let settled = self
            .issuer
            .complete_deferred(&bound.issuer, &bound.endpoints, &id.0, &claims)
            .await
            .map_err(|err| problem_for(&err))?;
        self.settled(&bound.issuer, &id.0, settled).await
    }

    /// Fails a deferred session: the wallet's deferred requests are refused with
    /// `credential_request_denied` and the session is `failed`. 409 when the session is not
    /// `deferred`. Requires scope `oid4vci:write`.
    #[oai(
        path = "/sessions/:id/fail",
        method = "post",
        operation_id = "failSession"
    )]
    async fn fail(
        &self,
        auth: AdminBearer,
        /// The session id.
        id: Path<String>,
        body: Json<FailBody>,
    ) -> Result<Json<SettledView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let description = body
            .0
            .description
            .unwrap_or_else(|| "the issuer will not issue this credential".to_owned());
        let settled = self
            .issuer
            .fail_deferred(&tenant, &id.0, &description)
            .await
            .map_err(|err| problem_for(&err))?;
        self.settled(&tenant, &id.0, settled).await
    }
}
