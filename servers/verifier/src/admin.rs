//! `/api/oid4vp/v1`: the tenant's stored DCQL queries, presentation requests and their
//! sessions. The tenant comes from the admin token, never from the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use edk_oid4vp::ResponseMode;
use edk_server::{AdminBearer, AdminPrincipal, ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, TenantContext, TenantDirectory as _};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use serde_json::Value;

use crate::store::{Session, StoredQuery};
use crate::verifier::{ClientIdPrefix, NewRequest, StoredAttestation, Verifier};

/// Reads the tenant's queries and presentation sessions.
pub const SCOPE_READ: &str = "oid4vp:read";
/// Writes queries and makes presentation requests.
pub const SCOPE_WRITE: &str = "oid4vp:write";
/// Every scope of the verifier server.
pub const SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_WRITE];

/// The admin API.
#[derive(Debug)]
pub struct AdminApi {
    tenancy: Tenancy,
    verifier: Arc<Verifier>,
}

impl AdminApi {
    /// The API over `tenancy` and `verifier`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, verifier: Arc<Verifier>) -> Self {
        Self { tenancy, verifier }
    }

    /// The token's tenant, without its bindings.
    async fn tenant(&self, principal: &AdminPrincipal) -> Result<TenantContext, ApiError> {
        self.tenancy
            .context(principal.tenant)
            .await
            .map_err(|err| problem_for(&err))
    }

    /// The token's tenant with its `verifier` binding.
    async fn bound_tenant(&self, principal: &AdminPrincipal) -> Result<TenantContext, ApiError> {
        self.tenancy
            .context_for_service(principal.tenant, ServiceType::Verifier)
            .await
            .map_err(|err| problem_for(&err))
    }

    fn session_view(&self, session: Session) -> Json<PresentationSessionView> {
        Json(session_view(session, self.verifier.now()))
    }
}

#[derive(Tags)]
enum AdminTag {
    /// OpenID4VP verifier administration.
    #[oai(rename = "OID4VP")]
    Oid4vp,
}

/// A DCQL query as the operator writes it.
#[derive(Clone, Debug, Object)]
pub struct DcqlQueryBody {
    /// The DCQL query (`credentials`, optional `credential_sets`), checked against
    /// OpenID4VP §6.
    pub dcql_query: BTreeMap<String, Value>,
}

/// A stored DCQL query.
#[derive(Clone, Debug, Object)]
pub struct DcqlQueryView {
    /// The query id.
    pub id: String,
    /// The DCQL query.
    pub dcql_query: Value,
    /// 1 when created, one more at each replacement.
    pub version: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last replaced.
    pub updated_at: i64,
}

fn query_view(id: String, stored: StoredQuery) -> DcqlQueryView {
    DcqlQueryView {
        id,
        dcql_query: stored.query,
        version: stored.version,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

/// The client identifier prefix of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ClientIdPrefixName {
    /// `x509_san_dns:`: the host of the tenant's verifier binding, with the certificate of
    /// the KMS alias `verifier.request-object-signing` in the Request Object.
    #[oai(rename = "x509_san_dns")]
    X509SanDns,
    /// `x509_hash:`: the hash of that certificate.
    #[oai(rename = "x509_hash")]
    X509Hash,
    /// `decentralized_identifier:`: the `did:jwk` of `verifier.request-object-signing`.
    #[oai(rename = "decentralized_identifier")]
    DecentralizedIdentifier,
    /// `redirect_uri:`: the `response_uri`; the request is unsigned and passed by value.
    #[oai(rename = "redirect_uri")]
    RedirectUri,
    /// `verifier_attestation:`: the `sub` of the tenant's Verifier Attestation JWT (set with
    /// `PUT /verifier-attestation`), carried in the Request Object's header `jwt`.
    #[oai(rename = "verifier_attestation")]
    VerifierAttestation,
}

/// A Verifier Attestation JWT obtained from an attester.
#[derive(Clone, Debug, Object)]
pub struct VerifierAttestationBody {
    /// The compact JWT (`typ` `verifier-attestation+jwt`): `sub` the tenant's verifier
    /// identifier, `cnf.jwk` the public key of the KMS alias
    /// `verifier.request-object-signing`, `exp` in the future, and `redirect_uris`, if
    /// present, including the tenant's `response_uri`.
    #[oai(validator(min_length = 1, max_length = 16384))]
    pub jwt: String,
}

/// The tenant's Verifier Attestation JWT.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct VerifierAttestationView {
    /// The compact JWT, as given.
    pub jwt: String,
    /// Its `iss`: the attester.
    pub iss: String,
    /// Its `sub`.
    pub sub: String,
    /// The `client_id` of requests made with the `verifier_attestation` prefix.
    pub client_id: String,
    /// Its `exp` (Unix seconds).
    pub expires_at: i64,
    /// Its `redirect_uris`, if it restricts them.
    pub redirect_uris: Option<Vec<String>>,
    /// When it was set (Unix seconds).
    pub updated_at: i64,
}

fn attestation_view(stored: StoredAttestation) -> VerifierAttestationView {
    let attestation = stored.attestation;
    VerifierAttestationView {
        jwt: stored.jwt,
        client_id: format!("verifier_attestation:{}", attestation.subject),
        iss: attestation.issuer,
        sub: attestation.subject,
        expires_at: attestation.expires_at,
        redirect_uris: attestation.redirect_uris,
        updated_at: stored.updated_at,
    }
}

/// The response mode of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ResponseModeName {
    /// The wallet posts the `vp_token` form-encoded to the `response_uri`.
    #[oai(rename = "direct_post")]
    DirectPost,
    /// The wallet posts the response as a JWE to the key of `client_metadata`.
    #[oai(rename = "direct_post.jwt")]
    DirectPostJwt,
}

/// What a presentation request asks for.
#[derive(Clone, Debug, Object)]
pub struct PresentationRequestBody {
    /// A stored query (or give `dcql_query`).
    pub query_id: Option<String>,
    /// An inline DCQL query (or give `query_id`).
    pub dcql_query: Option<BTreeMap<String, Value>>,
    /// How the verifier is identified to the wallet (default `x509_san_dns`).
    pub client_id_prefix: Option<ClientIdPrefixName>,
    /// How the wallet answers (default `direct_post`).
    pub response_mode: Option<ResponseModeName>,
    /// `transaction_data` entries, each a JSON object with `type` and `credential_ids`.
    pub transaction_data: Option<Vec<BTreeMap<String, Value>>>,
    /// Your own reference for the session, unique in the tenant.
    pub correlation_id: Option<String>,
    /// How long the wallet may answer, in seconds (default from the configuration).
    pub lifetime_secs: Option<i64>,
    /// Same-device flows: where the wallet sends the person back once it has answered
    /// (an https URL), with `#response_code=…` appended. The session's result is then read
    /// once, with that `response_code`.
    pub redirect_uri: Option<String>,
    /// Where the verifier POSTs an HMAC-signed notification (`session_id`,
    /// `correlation_id`, `status`, `event_id`) when the session settles as `verified`,
    /// `failed` or `expired`: an https URL. Needs the tenant's webhook secret.
    pub webhook_url: Option<String>,
}

/// The tenant's webhook HMAC key. Never returned by a read.
#[derive(Clone, Object)]
pub struct WebhookSecretBody {
    /// The key, base64url without padding, 32 to 256 bytes; absent: a random 32-byte key
    /// is made and returned once.
    #[oai(validator(
        min_length = 43,
        max_length = 342,
        pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
    ))]
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookSecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecretBody([redacted])")
    }
}

/// A generated webhook secret, shown this once.
#[derive(Clone, Object)]
pub struct GeneratedWebhookSecret {
    /// The key, base64url (32 bytes).
    pub secret: String,
}

impl std::fmt::Debug for GeneratedWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GeneratedWebhookSecret([redacted])")
    }
}

/// The answer to setting the webhook secret.
#[derive(ApiResponse, Debug)]
pub enum WebhookSecretSet {
    /// The given secret is set.
    #[oai(status = 204)]
    Set,
    /// A secret was generated and set: this is the only time it is shown.
    #[oai(status = 201)]
    Generated(Json<GeneratedWebhookSecret>),
}

/// A made presentation request: show `authorization_request_uri` to the wallet (as a QR
/// code or a link), then follow the session.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PresentationRequestView {
    /// The presentation session.
    pub session_id: String,
    /// Where the wallet fetches the signed Request Object (absent for `redirect_uri`).
    pub request_uri: Option<String>,
    /// The `openid4vp://` URI.
    pub authorization_request_uri: String,
    /// When the wallet can no longer answer (Unix seconds).
    pub expires_at: i64,
}

/// A presentation session.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PresentationSessionView {
    /// The session id.
    pub id: String,
    /// The caller's reference.
    pub correlation_id: Option<String>,
    /// `created`, `retrieved`, `responded`, `verified`, `failed` or `expired`.
    pub status: String,
    /// The `client_id` of the request.
    pub client_id: String,
    /// The response mode of the request.
    pub response_mode: String,
    /// The stored query the request was made from.
    pub query_id: Option<String>,
    /// The DCQL query of the request.
    pub dcql_query: Value,
    /// When verified: the verified claims per credential query id.
    pub claims: Option<Value>,
    /// When failed: why.
    pub error: Option<Value>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When the wallet can no longer answer.
    pub expires_at: i64,
}

fn session_view(session: Session, now: i64) -> PresentationSessionView {
    let status = session.status_at(now).as_str().to_owned();
    let (claims, error) = match session.outcome {
        Some(Value::Object(mut outcome)) => (outcome.remove("claims"), outcome.remove("error")),
        _ => (None, None),
    };
    PresentationSessionView {
        id: session.id,
        correlation_id: session.correlation_id,
        status,
        client_id: session.request.client_id,
        response_mode: session.request.response_mode,
        query_id: session.request.query_id,
        dcql_query: session.request.dcql_query,
        claims,
        error,
        created_at: session.created_at,
        updated_at: session.updated_at,
        expires_at: session.expires_at,
    }
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

#[OpenApi(prefix_path = "/api/oid4vp/v1", tag = "AdminTag::Oid4vp")]
impl AdminApi {
    /// Creates or replaces a DCQL query after validating it; each replacement is a new
    /// version. Requires scope `oid4vp:write`.
    #[oai(path = "/queries/:id", method = "put", operation_id = "putDcqlQuery")]
    async fn put_query(
        &self,
        auth: AdminBearer,
        /// The query id.
        id: Path<String>,
        body: Json<DcqlQueryBody>,
    ) -> Result<Json<DcqlQueryView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let query = Value::Object(body.0.dcql_query.into_iter().collect());
        self.verifier
            .put_query(&tenant, &id.0, &query)
            .await
            .map_err(|err| problem_for(&err))?;
        let stored = self
            .verifier
            .query(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(query_view(id.0, stored)))
    }

    /// One stored DCQL query. Requires scope `oid4vp:read`.
    #[oai(path = "/queries/:id", method = "get", operation_id = "getDcqlQuery")]
    async fn get_query(
        &self,
        auth: AdminBearer,
        /// The query id.
        id: Path<String>,
    ) -> Result<Json<DcqlQueryView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let stored = self
            .verifier
            .query(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(query_view(id.0, stored)))
    }

    /// Deletes a stored DCQL query; requests already made keep their copy. Requires scope
    /// `oid4vp:write`.
    #[oai(
        path = "/queries/:id",
        method = "delete",
        operation_id = "deleteDcqlQuery"
    )]
    async fn delete_query(
        &self,
        auth: AdminBearer,
        /// The query id.
        id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        self.verifier
            .delete_query(&tenant, &id.0)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(NoContent::NoContent)
    }

    /// Makes a presentation request with a stored or inline DCQL query and starts its
    /// session. Requires scope `oid4vp:write`.
    #[oai(
        path = "/requests",
        method = "post",
        operation_id = "createPresentationRequest"
    )]
    async fn create_request(
        &self,
        auth: AdminBearer,
        body: Json<PresentationRequestBody>,
    ) -> Result<Created<PresentationRequestView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.bound_tenant(&auth.0).await?;
        let body = body.0;
        let new = NewRequest {
            query_id: body.query_id,
            dcql_query: body
                .dcql_query
                .map(|query| Value::Object(query.into_iter().collect())),
            client_id_prefix: match body.client_id_prefix {
                None | Some(ClientIdPrefixName::X509SanDns) => ClientIdPrefix::X509SanDns,
                Some(ClientIdPrefixName::X509Hash) => ClientIdPrefix::X509Hash,
                Some(ClientIdPrefixName::DecentralizedIdentifier) => {
                    ClientIdPrefix::DecentralizedIdentifier
                }
                Some(ClientIdPrefixName::RedirectUri) => ClientIdPrefix::RedirectUri,
                Some(ClientIdPrefixName::VerifierAttestation) => {
                    ClientIdPrefix::VerifierAttestation
                }
            },
            response_mode: match body.response_mode {
                None | Some(ResponseModeName::DirectPost) => ResponseMode::DirectPost,
                Some(ResponseModeName::DirectPostJwt) => ResponseMode::DirectPostJwt,
            },
            transaction_data: body.transaction_data.map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| Value::Object(entry.into_iter().collect()))
                    .collect()
            }),
            correlation_id: body.correlation_id,
            lifetime_secs: body.lifetime_secs,
            redirect_uri: body.redirect_uri,
            webhook_url: body.webhook_url,
        };
        let created = self
            .verifier
            .create_request(&tenant, new)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Created::Created(Json(PresentationRequestView {
            session_id: created.session_id,
            request_uri: created.request_uri,
            authorization_request_uri: created.authorization_request_uri,
            expires_at: created.expires_at,
        })))
    }

    /// Sets the tenant's webhook HMAC key (stored sealed by the tenant's KMS key, never
    /// returned by a read), or generates one and returns it this once. Requires scope
    /// `oid4vp:write`.
    #[oai(
        path = "/webhook-secret",
        method = "put",
        operation_id = "putWebhookSecret"
    )]
    async fn put_webhook_secret(
        &self,
        auth: AdminBearer,
        body: Json<WebhookSecretBody>,
    ) -> Result<WebhookSecretSet, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        let generated = self
            .verifier
            .webhooks()
            .put_secret(&tenant, body.0.secret.as_deref(), self.verifier.now())
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(match generated {
            Some(secret) => WebhookSecretSet::Generated(Json(GeneratedWebhookSecret { secret })),
            None => WebhookSecretSet::Set,
        })
    }

    /// Sets the tenant's Verifier Attestation JWT, obtained from an attester for the public
    /// key of the KMS alias `verifier.request-object-signing`, which requests made with the
    /// `verifier_attestation` client identifier prefix carry. Refused (400) when its `typ`,
    /// `sub`, validity, `cnf.jwk` or `redirect_uris` do not fit the tenant. Requires scope
    /// `oid4vp:write`.
    #[oai(
        path = "/verifier-attestation",
        method = "put",
        operation_id = "putVerifierAttestation"
    )]
    async fn put_verifier_attestation(
        &self,
        auth: AdminBearer,
        body: Json<VerifierAttestationBody>,
    ) -> Result<Json<VerifierAttestationView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.bound_tenant(&auth.0).await?;
        let stored = self
            .verifier
            .put_verifier_attestation(&tenant, &body.0.jwt)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(attestation_view(stored)))
    }

    /// The tenant's Verifier Attestation JWT. Requires scope `oid4vp:read`.
    #[oai(
        path = "/verifier-attestation",
        method = "get",
        operation_id = "getVerifierAttestation"
    )]
    async fn get_verifier_attestation(
        &self,
        auth: AdminBearer,
    ) -> Result<Json<VerifierAttestationView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let stored = self
            .verifier
            .verifier_attestation(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(Json(attestation_view(stored)))
    }

    /// Removes the tenant's Verifier Attestation JWT; `verifier_attestation` requests can no
    /// longer be made or fetched. Requires scope `oid4vp:write`.
    #[oai(
        path = "/verifier-attestation",
        method = "delete",
        operation_id = "deleteVerifierAttestation"
    )]
    async fn delete_verifier_attestation(&self, auth: AdminBearer) -> Result<NoContent, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let tenant = self.tenant(&auth.0).await?;
        self.verifier
            .delete_verifier_attestation(&tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(NoContent::NoContent)
    }

    /// A presentation session, with the verified claims once verified. A same-device session
    /// (made with a `redirect_uri`) is read once, with the `response_code` of its redirect;
    /// without it, or with another: 403. Requires scope `oid4vp:read`.
    #[oai(
        path = "/sessions/:id",
        method = "get",
        operation_id = "getPresentationSession"
    )]
    async fn get_session(
        &self,
        auth: AdminBearer,
        /// The session id.
        id: Path<String>,
        /// The `response_code` of a same-device session's redirect.
        response_code: Query<Option<String>>,
    ) -> Result<Json<PresentationSessionView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let session = self
            .verifier
            .session(&tenant, &id.0, response_code.0.as_deref())
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(self.session_view(session))
    }

    /// The presentation session made with a `correlation_id` (unique per tenant), read as
    /// `GET /sessions/{id}` reads it. Requires scope `oid4vp:read`.
    #[oai(
        path = "/sessions",
        method = "get",
        operation_id = "findPresentationSession"
    )]
    async fn find_session(
        &self,
        auth: AdminBearer,
        /// The `correlation_id` given when the request was made.
        correlation_id: Query<String>,
        /// The `response_code` of a same-device session's redirect.
        response_code: Query<Option<String>>,
    ) -> Result<Json<PresentationSessionView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let tenant = self.tenant(&auth.0).await?;
        let session = self
            .verifier
            .session_by_correlation(&tenant, &correlation_id.0, response_code.0.as_deref())
            .await
            .map_err(|err| problem_for(&err))?;
        Ok(self.session_view(session))
    }
}
