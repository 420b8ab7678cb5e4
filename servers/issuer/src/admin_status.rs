//! `/api/oid4vci/v1/credentials` and `/api/oid4vci/v1/status-lists`: the credentials the
//! tenant's issuer handed out with a status, their revocation, suspension and reinstatement,
//! and the status lists that publish them. Claims are never stored with them, so none are
//! shown.

use std::sync::Arc;

use edk_oid4vci::{
    CredentialSelector, CredentialStatus, IssuedCredential, IssuedFilter, Issuer, StatusAction,
    StatusListInfo,
};
use edk_server::{AdminBearer, AdminPrincipal, ApiError, problem_for};
use edk_tenancy::{Tenancy, TenantContext};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Tags};

use crate::admin::{SCOPE_READ, SCOPE_WRITE};

/// The most credentials one page lists.
const MAX_PAGE: u32 = 1000;

/// The status administration API.
#[derive(Debug)]
pub struct StatusAdminApi {
    tenancy: Tenancy,
    issuer: Arc<Issuer>,
}

impl StatusAdminApi {
    /// The API over `tenancy` and `issuer`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, issuer: Arc<Issuer>) -> Self {
        Self { tenancy, issuer }
    }

    async fn tenant(&self, principal: &AdminPrincipal) -> Result<TenantContext, ApiError> {
        crate::admin::tenant_of(&self.tenancy, principal).await
    }
}

#[derive(Tags)]
enum StatusTag {
    /// Credential status: revocation, suspension and the published status lists.
    #[oai(rename = "OID4VCI credential status")]
    Status,
}

/// A credential's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StatusName {
    /// Valid.
    Valid,
    /// Revoked, for good.
    Revoked,
    /// Suspended until reinstated.
    Suspended,
}

impl From<CredentialStatus> for StatusName {
    fn from(status: CredentialStatus) -> Self {
        match status {
            CredentialStatus::Valid => Self::Valid,
            CredentialStatus::Revoked => Self::Revoked,
            CredentialStatus::Suspended => Self::Suspended,
        }
    }
}

impl From<StatusName> for CredentialStatus {
    fn from(status: StatusName) -> Self {
        match status {
            StatusName::Valid => Self::Valid,
            StatusName::Revoked => Self::Revoked,
            StatusName::Suspended => Self::Suspended,
        }
    }
}

/// What to do to credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ActionName {
    /// Revoke: final.
    Revoke,
    /// Suspend valid credentials (lists with the `suspension` purpose only).
    Suspend,
    /// Make suspended credentials valid again.
    Reinstate,
}

/// A credential the issuer handed out, with its status; never its claims.
#[derive(Clone, Debug, Object)]
pub struct CredentialView {
    /// The issuer's id of the credential.
    pub credential_id: String,
    /// The issuance session.
    pub session_id: String,
    /// The session's `correlation_id`.
    pub correlation_id: Option<String>,
    /// The credential configuration.
    pub configuration_id: String,
    /// The status list's id.
    pub list_id: String,
    /// The status list's URI (`status.status_list.uri` in the credential).
    pub uri: String,
    /// The index in the list (`status.status_list.idx`).
    pub index: u32,
    /// The current status.
    pub status: StatusName,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// When it expires (Unix seconds), if it does.
    pub expires_at: Option<i64>,
    /// When its status last changed.
    pub updated_at: i64,
}

impl From<IssuedCredential> for CredentialView {
    fn from(credential: IssuedCredential) -> Self {
        Self {
            credential_id: credential.credential_id,
            session_id: credential.session_id,
            correlation_id: credential.correlation_id,
            configuration_id: credential.configuration_id,
            list_id: credential.list_id,
            uri: credential.uri,
            index: credential.index,
            status: credential.status.into(),
            issued_at: credential.issued_at,
            expires_at: credential.expires_at,
            updated_at: credential.updated_at,
        }
    }
}

/// Credentials.
#[derive(Clone, Debug, Object)]
pub struct CredentialList {
    /// The credentials, by id.
    pub credentials: Vec<CredentialView>,
}

/// Which credentials a status change names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TargetName {
    /// One credential, by `credential_id`.
    Credential,
    /// Every credential of an issuance session, by `session_id`.
    Session,
    /// Every credential of the session made with a `correlation_id`.
    Correlation,
}

/// A status change of the credentials `target` and `id` name.
#[derive(Clone, Debug, Object)]
pub struct StatusChangeBody {
    /// What to do.
    pub action: ActionName,
    /// What `id` is.
    pub target: TargetName,
    /// A credential id, a session id or a `correlation_id`.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub id: String,
}

/// A status list.
#[derive(Clone, Debug, Object)]
pub struct StatusListView {
    /// Its id.
    pub list_id: String,
    /// Where its token is published.
    pub uri: String,
    /// The credential configuration it serves.
    pub configuration_id: String,
    /// `revocation` or `suspension`.
    pub purpose: String,
    /// Bits per credential.
    pub bits: u8,
    /// Credentials it holds.
    pub size: u32,
    /// Indices handed out.
    pub allocated: u32,
    /// Grows with every status change.
    pub version: i64,
    /// The version its newest token shows.
    pub published_version: Option<i64>,
    /// The `iat` of its newest token.
    pub published_at: Option<i64>,
    /// The `exp` of its newest token.
    pub published_until: Option<i64>,
}

impl From<StatusListInfo> for StatusListView {
    fn from(list: StatusListInfo) -> Self {
        Self {
            list_id: list.list_id,
            uri: list.uri,
            configuration_id: list.configuration_id,
            purpose: list.purpose.as_str().to_owned(),
            bits: list.bits,
            size: list.size,
            allocated: list.allocated,
            version: list.version,
            published_version: list.published_version,
            published_at: list.published_at,
            published_until: list.published_until,
        }
    }
}

/// The tenant's status lists.
#[derive(Clone, Debug, Object)]
pub struct StatusListList {
    /// The lists, oldest first.
    pub status_lists: Vec<StatusListView>,
}

/// What a publication did.
#[derive(Clone, Debug, Object)]
pub struct PublishedView {
    /// How many lists got a new token.
    pub published: u32,
}

#[OpenApi(prefix_path = "/api/oid4vci/v1", tag = "StatusTag::Status")]
impl StatusAdminApi {
    /// The credentials issued with a status (configurations with `settings.status`), a page
    /// at a time by credential id, optionally only those matching every filter given
    /// (credential id, session, `correlation_id`, status). Claims are not kept and not shown. Requires
    /// scope `oid4vci:read`.
    #[oai(
        path = "/credentials",
        method = "get",
        operation_id = "listIssuedCredentials"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_credentials(
        &self,
        auth: AdminBearer,
        /// Only this credential.
        credential_id: Query<Option<String>>,
        /// Only the credentials of this issuance session.
        session_id: Query<Option<String>>,
        /// Only the credentials of the session with this `correlation_id`.
        correlation_id: Query<Option<String>>,
        /// Only credentials with this status.
        status: Query<Option<StatusName>>,
        /// The page starts after this credential id.
        after: Query<Option<String>>,
        /// The page size (1 to 1000, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<CredentialList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let selectors = [
            credential_id.0.map(CredentialSelector::Credential),
            session_id.0.map(CredentialSelector::Session),
            correlation_id.0.map(CredentialSelector::Correlation),
        ]
        .into_iter()
        .flatten()
        .collect();
        let limit = limit.0.unwrap_or(100).clamp(1, MAX_PAGE);
        let tenant = self.tenant(&auth.0).await?;
        let filter = IssuedFilter {
            selectors,
            status: status.0.map(Into::into),
            after: after.0,
            limit,
        };
        let credentials = self
            .issuer
            .issued_credentials(&tenant, &filter)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(CredentialList {
            credentials: credentials.into_iter().map(Into::into).collect(),
        }))
    }

    /// Revokes, suspends or reinstates the credentials `target` and `id` name (one
    /// credential, a session's, or those of a `correlation_id`): all of them, or none when the action cannot apply to one (409: a
    /// revoked credential cannot be suspended or reinstated, and a revocation list cannot
    /// express suspension). Credentials already in the target status stay as they are. The
    /// change is published with the lists' next token. Requires scope `oid4vci:write`.
    #[oai(
        path = "/credentials/status",
        method = "post",
        operation_id = "setCredentialStatus"
    )]
    async fn set_status(
        &self,
        auth: AdminBearer,
        body: Json<StatusChangeBody>,
    ) -> Result<Json<CredentialList>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let body = body.0;
        let selector = match body.target {
            TargetName::Credential => CredentialSelector::Credential(body.id),
            TargetName::Session => CredentialSelector::Session(body.id),
            TargetName::Correlation => CredentialSelector::Correlation(body.id),
        };
        let action = match body.action {
            ActionName::Revoke => StatusAction::Revoke,
            ActionName::Suspend => StatusAction::Suspend,
            ActionName::Reinstate => StatusAction::Reinstate,
        };
        let tenant = self.tenant(&auth.0).await?;
        let credentials = self
            .issuer
            .set_credential_status(&tenant, &selector, action)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(CredentialList {
            credentials: credentials.into_iter().map(Into::into).collect(),
        }))
    }

    /// The tenant's status lists, with how full they are and what was published. Requires
    /// scope `oid4vci:read`.
    #[oai(
        path = "/status-lists",
        method = "get",
        operation_id = "listStatusLists"
    )]
    async fn list_status_lists(&self, auth: AdminBearer) -> Result<Json<StatusListList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let lists = self
            .issuer
            .status_lists(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(StatusListList {
            status_lists: lists.into_iter().map(Into::into).collect(),
        }))
    }

    /// Publishes now, without waiting for the publication job, a new token for every list
    /// that changed since its last one. Requires scope `oid4vci:write`.
    #[oai(
        path = "/status-lists/publish",
        method = "post",
        operation_id = "publishStatusLists"
    )]
    async fn publish(&self, auth: AdminBearer) -> Result<Json<PublishedView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let published = self
            .issuer
            .publish_status_lists(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(PublishedView {
            published: u32::try_from(published).unwrap_or(u32::MAX),
        }))
    }
}
