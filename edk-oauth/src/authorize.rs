//! The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 9207, RFC 9396), pushed
//! authorization requests (RFC 9126) and the end-user authentication callback.

use edk_core::ClientId;
use edk_tenancy::TenantContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::authn::{
    AuthenticatedSubject, AuthnCallback, AuthnRequest, AuthnStart, AuthnTransaction,
};
use crate::client::{Client, GrantType};
use crate::error::{Error, OAuthErrorCode};
use crate::grant::{CodeGrant, Grant};
use crate::policy::CredentialGrantRequest;
use crate::request::{EndpointCall, Params};
use crate::server::AuthorizationServer;
use crate::token::granted_scopes;

/// The prefix of `request_uri`s minted by PAR (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The longest `state`, `nonce`, `prompt`, `login_hint`, `acr_values`, `ui_locales` and
/// `issuer_state` of an authorization request, in bytes; a longer one is `invalid_request`.
pub const MAX_PARAMETER_BYTES: usize = 512;

/// The longest `scope` of an authorization request, in bytes.
pub const MAX_SCOPE_BYTES: usize = 1024;

/// The longest `resource` (RFC 8707) of an authorization or token request, in bytes.
pub const MAX_RESOURCE_BYTES: usize = 2048;

/// The longest `authorization_details` (RFC 9396) of an authorization request, as JSON text,
/// in bytes.
pub const MAX_AUTHORIZATION_DETAILS_BYTES: usize = 8 * 1024;

/// The most entries in the `authorization_details` of an authorization request.
pub const MAX_AUTHORIZATION_DETAILS: usize = 16;

/// An authorization request that passed validation, as stored for PAR and while the end user
/// authenticates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ValidatedRequest {
    client_id: ClientId,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    authorization_details: Option<Value>,
    dpop_jkt: Option<String>,
    resource: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
    acr_values: Option<String>,
    ui_locales: Option<String>,
    issuer_state: Option<String>,
}

/// The answer of the authorization endpoint or the callback.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizeOutcome {
    /// Redirect the browser (303) to this URL: the client's `redirect_uri` with a `code` or an
    /// `error` (always with `state` and `iss`), or an upstream identity provider.
    Redirect(Url),
    /// The request cannot be answered by redirect (unknown client, unregistered
    /// `redirect_uri`, bad `request_uri`): show this error to the end user instead (RFC 6749
    /// §4.1.2.1).
    Refused {
        /// The error code.
        code: OAuthErrorCode,
        /// A description for the end user.
        description: String,
    },
}

/// A successful PAR response (RFC 9126 §2.2), answered with 201.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ParResponse {
    /// The `request_uri` for the authorization request.
    pub request_uri: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl AuthorizationServer {
    /// Handles a pushed authorization request.
    ///
    /// # Errors
    /// `invalid_client` when client authentication fails; `invalid_request`,
    /// `invalid_scope`, `invalid_authorization_details` for the request.
    pub async fn par(
        &self,
        tenant: &TenantContext,
        call: &EndpointCall,
    ) -> Result<ParResponse, Error> {
        if call.method != "POST" {
            return Err(Error::invalid_request("the PAR endpoint takes POST only"));
        }
        // As at the token endpoint: the DPoP proof and its nonce before the client.
        let proof = self.verify_dpop(tenant, call, "par", None).await?;
        let mut assertion_jti = None;
        let client = self
            .authenticate_client_deferred(tenant, call, "par", &mut assertion_jti)
            .await?
            .ok_or_else(|| Error::invalid_client("the client is not identified"))?;
        if call.params.contains("request_uri") {
            return Err(Error::invalid_request(
                "`request_uri` is not allowed in PAR",
            ));
        }
        if call.params.contains("request") {
            return Err(Error::invalid_request("request objects are not supported"));
        }
        let redirect_uri = registered_redirect(&client, &call.params)?;
        let resources = self
            .allowed_resources(tenant, &client, &call.params)
            .await?;
        let mut request = validate(
            &client,
            &call.params,
            redirect_uri,
            self.config.openid,
            &resources,
        )?;
        match (&request.dpop_jkt, proof.as_ref().map(|p| &p.jkt)) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::invalid_dpop_proof(
                    "`dpop_jkt` differs from the DPoP proof's key",
                ));
            }
            (None, Some(jkt)) => request.dpop_jkt = Some(jkt.clone()),
            _ => {}
        }
        // The request is valid: only now is anything written.
        let mut single_use: Vec<_> = proof.iter().map(|p| self.dpop_single_use(p)).collect();
        single_use.extend(assertion_jti);
        self.spend(tenant, &single_use).await?;
        let handle = crate::random::token();
        let now = self.now();
        let stored = serde_json::to_value(&request).map_err(|_| Error::Internal {
            what: "serializing a pushed request",
        })?;
        self.store
            .insert_par(
                tenant,
                &crate::random::digest(&handle),
                &client.client_id,
                &stored,
                now + self.config.par_ttl,
            )
            .await?;
        Ok(ParResponse {
            request_uri: format!("{REQUEST_URI_PREFIX}{handle}"),
            expires_in: self.config.par_ttl,
        })
    }

    /// Handles an authorization request (the query of `GET /authorize`).
    ///
    /// # Errors
    /// Only faults of ours or the database's; protocol errors are outcomes.
    pub async fn authorize(
        &self,
        tenant: &TenantContext,
        params: &Params,
    ) -> Result<AuthorizeOutcome, Error> {
        let issuer = Self::issuer(tenant)?;
        let refused = |err: &Error| AuthorizeOutcome::Refused {
            code: err.code(),
            description: err.description(),
        };
        let client = match self.authorize_client(tenant, params).await {
            Ok(client) => client,
            Err(err @ Error::OAuth { .. }) => return Ok(refused(&err)),
            Err(err) => return Err(err),
        };
        let request = if let Some(request_uri) = params.get("request_uri").ok().flatten() {
            match self.pushed(tenant, &client, request_uri).await {
                Ok(request) => request,
                Err(err @ Error::OAuth { .. }) => return Ok(refused(&err)),
                Err(err) => return Err(err),
            }
        } else {
            let redirect_uri = match registered_redirect(&client, params) {
                Ok(uri) => uri,
                Err(err) => return Ok(refused(&err)),
            };
            let state = params.get("state").ok().flatten();
            if state.is_some_and(|state| state.len() > MAX_PARAMETER_BYTES) {
                // Too long to echo in a redirect.
                return Ok(refused(&too_long("state", MAX_PARAMETER_BYTES)));
            }
            let redirect_error = |err: &Error| {
                Ok(AuthorizeOutcome::Redirect(error_redirect(
                    redirect_uri,
                    err,
                    state,
                    &issuer,
                )))
            };
            if self.config.require_pushed_authorization_requests
                || client.metadata.require_pushed_authorization_requests
            {
                return redirect_error(&Error::invalid_request(
                    "this client must use pushed authorization requests",
                ));
            }
            let resources = match self.allowed_resources(tenant, &client, params).await {
                Ok(resources) => resources,
                Err(err) => return redirect_error(&err),
            };
            match validate(
                &client,
                params,
                redirect_uri,
                self.config.openid,
                &resources,
            ) {
                Ok(request) => request,
                Err(err) => return redirect_error(&err),
            }
        };
        self.start_authentication(tenant, request).await
    }

    /// Handles the end user's return from an authenticator's redirect (`/callback`).
    ///
    /// # Errors
    /// Only faults of ours or the database's; protocol errors are outcomes.
    pub async fn callback(
        &self,
        tenant: &TenantContext,
        params: &Params,
    ) -> Result<AuthorizeOutcome, Error> {
        let mut map = std::collections::BTreeMap::new();
        for (name, value) in params.iter() {
            if map.insert(name.to_owned(), value.to_owned()).is_some() {
                return Ok(AuthorizeOutcome::Refused {
                    code: OAuthErrorCode::InvalidRequest,
                    description: format!("parameter `{name}` is repeated"),
                });
            }
        }
        let outcome = match self
            .authenticator
            .finish(tenant, &AuthnCallback::new(map))
            .await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                return Ok(AuthorizeOutcome::Refused {
                    code: err.code(),
                    description: err.to_string(),
                });
            }
        };
        let Some(stored) = self
            .store
            .take_transaction(tenant, outcome.transaction.as_str(), self.now())
            .await?
        else {
            return Ok(AuthorizeOutcome::Refused {
                code: OAuthErrorCode::InvalidRequest,
                description: "the authorization request expired or was completed".to_owned(),
            });
        };
        let request: ValidatedRequest =
            serde_json::from_value(stored).map_err(|_| Error::Internal {
                what: "stored authorization request is malformed",
            })?;
        self.complete(tenant, &request, &outcome.subject).await
    }

    async fn authorize_client(
        &self,
        tenant: &TenantContext,
        params: &Params,
    ) -> Result<Client, Error> {
        let id = params.require("client_id")?;
        let client_id = ClientId::new(id).map_err(|_| Error::invalid_request("unknown client"))?;
        let client = self
            .store
            .client(tenant, &client_id)
            .await?
            .map(|(client, _)| client)
            .ok_or_else(|| Error::invalid_request("unknown client"))?;
        if !client
            .metadata
            .grant_types
            .contains(&GrantType::AuthorizationCode)
        {
            return Err(Error::oauth(
                OAuthErrorCode::UnauthorizedClient,
                "the client may not use the authorization code grant",
            ));
        }
        Ok(client)
    }

    /// The RFC 8707 resources `client` may ask for: those it registered, and the one the
    /// request names when the credential grant policy knows it as a credential issuer of the
    /// tenant (wallets name the credential issuer they want a token for).
    async fn allowed_resources(
        &self,
        tenant: &TenantContext,
        client: &Client,
        params: &Params,
    ) -> Result<Vec<String>, Error> {
        let mut allowed = client.metadata.resources.clone();
        if let (Some(policy), Some(resource)) =
            (&self.credential_grant_policy, params.get("resource")?)
            && resource.len() <= MAX_RESOURCE_BYTES
            && is_resource_uri(resource)
            && !allowed.iter().any(|known| known == resource)
            && policy.is_credential_issuer(tenant, resource).await?
        {
            allowed.push(resource.to_owned());
        }
        Ok(allowed)
    }

    async fn pushed(
        &self,
        tenant: &TenantContext,
        client: &Client,
        request_uri: &str,
    ) -> Result<ValidatedRequest, Error> {
        let handle = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| Error::invalid_request("`request_uri` was not issued here"))?;
        let stored = self
            .store
            .take_par(
                tenant,
                &crate::random::digest(handle),
                &client.client_id,
                self.now(),
            )
            .await?
            .ok_or_else(|| {
                Error::invalid_request(
                    "`request_uri` is unknown, expired, used or another client's",
                )
            })?;
        serde_json::from_value(stored).map_err(|_| Error::Internal {
            what: "stored pushed request is malformed",
        })
    }

    async fn start_authentication(
        &self,
        tenant: &TenantContext,
        request: ValidatedRequest,
    ) -> Result<AuthorizeOutcome, Error> {
        let transaction = AuthnTransaction::generate();
        let callback = tenant
            .binding()
            .ok_or(Error::Binding)?
            .advertised_url("callback")
            .map_err(|_| Error::Binding)?;
        let mut authn = AuthnRequest::new(transaction.clone(), request.client_id.clone(), callback);
        authn.scopes.clone_from(&request.scopes);
        authn
            .authorization_details
            .clone_from(&request.authorization_details);
        authn.prompt.clone_from(&request.prompt);
        authn.login_hint.clone_from(&request.login_hint);
        authn.acr_values.clone_from(&request.acr_values);
        authn.ui_locales.clone_from(&request.ui_locales);
        let issuer = Self::issuer(tenant)?;
        let redirect_error = |err: &Error| {
            Ok(AuthorizeOutcome::Redirect(error_redirect(
                &request.redirect_uri,
                err,
                request.state.as_deref(),
                &issuer,
            )))
        };
        match self.authenticator.start(tenant, &authn).await {
            Ok(AuthnStart::Redirect { location }) => {
                // Kept only while the end user authenticates elsewhere, until the callback.
                let stored = serde_json::to_value(&request).map_err(|_| Error::Internal {
                    what: "serializing an authorization request",
                })?;
                let expires_at = self.now().saturating_add(self.config.authn_ttl);
                self.store
                    .insert_transaction(tenant, transaction.as_str(), &stored, expires_at)
                    .await?;
                Ok(AuthorizeOutcome::Redirect(location))
            }
            Ok(AuthnStart::Authenticated(subject)) => {
                self.complete(tenant, &request, &subject).await
            }
            Err(err) => redirect_error(&Error::Authn(err)),
        }
    }

    async fn complete(
        &self,
        tenant: &TenantContext,
        request: &ValidatedRequest,
        subject: &AuthenticatedSubject,
    ) -> Result<AuthorizeOutcome, Error> {
        let issuer = Self::issuer(tenant)?;
        let authorization_details = match self.granted_details(tenant, request, subject).await {
            Ok(details) => details,
            Err(err @ Error::OAuth { .. }) => {
                return Ok(AuthorizeOutcome::Redirect(error_redirect(
                    &request.redirect_uri,
                    &err,
                    request.state.as_deref(),
                    &issuer,
                )));
            }
            Err(err) => return Err(err),
        };
        let mut grant = Grant::for_subject(subject);
        grant.client_id = Some(request.client_id.clone());
        grant.scopes.clone_from(&request.scopes);
        grant.authorization_details = authorization_details;
        grant.resource.clone_from(&request.resource);
        grant.dpop_jkt.clone_from(&request.dpop_jkt);
        grant.issuer_state.clone_from(&request.issuer_state);
        let code = crate::random::token();
        let family = crate::random::token();
        let code_grant = CodeGrant {
            grant,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
        };
        let now = self.now();
        self.store
            .insert_code(
                tenant,
                &crate::random::digest(&code),
                &request.client_id,
                &family,
                &code_grant,
                now + self.config.code_ttl,
            )
            .await?;
        let mut url = parse_redirect(&request.redirect_uri)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("code", &code);
            if let Some(state) = &request.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &issuer);
        }
        Ok(AuthorizeOutcome::Redirect(url))
    }
}

impl AuthorizationServer {
    /// The `authorization_details` an authorization code grants: the credential grant
    /// policy's answer, else the request's.
    async fn granted_details(
        &self,
        tenant: &TenantContext,
        request: &ValidatedRequest,
        subject: &AuthenticatedSubject,
    ) -> Result<Option<Value>, Error> {
        let Some(policy) = &self.credential_grant_policy else {
            return Ok(request.authorization_details.clone());
        };
        let asked = CredentialGrantRequest {
            client_id: request.client_id.clone(),
            subject: subject.clone(),
            scopes: request.scopes.clone(),
            authorization_details: request.authorization_details.clone(),
            issuer_state: request.issuer_state.clone(),
        };
        let granted = policy.grant(tenant, &asked).await?;
        if check_authorization_details(granted.as_ref()).is_err() {
            tracing::error!(
                tenant = %tenant.id(),
                "the credential grant policy returned malformed authorization_details"
            );
            return Err(Error::Internal {
                what: "the credential grant policy returned malformed authorization_details",
            });
        }
        Ok(granted)
    }
}

fn parse_redirect(uri: &str) -> Result<Url, Error> {
    Url::parse(uri).map_err(|_| Error::Internal {
        what: "a registered redirect URI does not parse",
    })
}

/// The `redirect_uri` of `params`, which must be one of the client's, character for
/// character (RFC 9700 §4.1.3).
fn registered_redirect<'a>(client: &'a Client, params: &Params) -> Result<&'a str, Error> {
    let uri = params.require("redirect_uri")?;
    client
        .metadata
        .redirect_uris
        .iter()
        .find(|registered| registered.as_str() == uri)
        .map(String::as_str)
        .ok_or_else(|| Error::invalid_request("`redirect_uri` is not registered for the client"))
}

fn error_redirect(redirect_uri: &str, err: &Error, state: Option<&str>, issuer: &str) -> Url {
    // A registered redirect URI was validated at registration.
    let mut url = Url::parse(redirect_uri).unwrap_or_else(|_| unreachable_url());
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", err.code().as_str());
        query.append_pair("error_description", &err.description());
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    url
}

#[expect(clippy::expect_used, reason = "a literal URL that always parses")]
fn unreachable_url() -> Url {
    Url::parse("data:,").expect("a literal URL")
}

fn validate(
    client: &Client,
    params: &Params,
    redirect_uri: &str,
    openid: bool,
    resources: &[String],
) -> Result<ValidatedRequest, Error> {
    if params.require("response_type")? != "code" {
        return Err(Error::oauth(
            OAuthErrorCode::UnsupportedResponseType,
            "only `response_type=code` is supported",
        ));
    }
    if let Some(mode) = params.get("response_mode")?
        && mode != "query"
    {
        return Err(Error::invalid_request(
            "only `response_mode=query` is supported",
        ));
    }
    let code_challenge = params
        .get("code_challenge")?
        .ok_or_else(|| Error::invalid_request("PKCE `code_challenge` is required"))?;
    match params.get("code_challenge_method")? {
        Some("S256") => {}
        _ => {
            return Err(Error::invalid_request(
                "`code_challenge_method` must be S256 (plain is refused)",
            ));
        }
    }
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid_request(
            "`code_challenge` is not a base64url SHA-256 digest",
        ));
    }
    let mut allowed = client.metadata.scopes.clone();
    if openid {
        allowed.push("openid".to_owned());
    }
    let scopes = granted_scopes(bounded(params, "scope", MAX_SCOPE_BYTES)?, &allowed, false)?;
    let authorization_details = requested_authorization_details(params)?;
    let dpop_jkt = match params.get("dpop_jkt")? {
        Some(jkt)
            if jkt.len() != 43
                || !jkt
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            return Err(Error::invalid_request(
                "`dpop_jkt` is not a JWK SHA-256 thumbprint",
            ));
        }
        jkt => jkt.map(str::to_owned),
    };
    let resource = allowed_resource(bounded(params, "resource", MAX_RESOURCE_BYTES)?, resources)?;
    let text = |name| bounded(params, name, MAX_PARAMETER_BYTES).map(|v| v.map(str::to_owned));
    Ok(ValidatedRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: text("state")?,
        nonce: text("nonce")?,
        code_challenge: code_challenge.to_owned(),
        authorization_details,
        dpop_jkt,
        resource,
        prompt: text("prompt")?,
        login_hint: text("login_hint")?,
        acr_values: text("acr_values")?,
        ui_locales: text("ui_locales")?,
        issuer_state: text("issuer_state")?,
    })
}

/// Whether `resource` is an RFC 8707 resource indicator this server accepts: an absolute
/// `https` URI without fragment, at most [`MAX_RESOURCE_BYTES`].
pub(crate) fn is_resource_uri(resource: &str) -> bool {
    resource.len() <= MAX_RESOURCE_BYTES
        && Url::parse(resource)
            .is_ok_and(|url| is_https_or_loopback(&url) && url.fragment().is_none())
}

/// An `https` URL, or an `http` one on a loopback host: what a binding for local development
/// advertises (`http://localhost:8080/...`), and nothing a public host can be.
pub(crate) fn is_https_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(host)) => host == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// The RFC 8707 `resource` of a request, which must be one of the client's registered
/// `allowed` resources.
///
/// # Errors
/// `invalid_target` for a malformed resource or one the client may not ask for.
pub(crate) fn allowed_resource(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Option<String>, Error> {
    let Some(resource) = requested else {
        return Ok(None);
    };
    if !is_resource_uri(resource) {
        return Err(Error::oauth(
            OAuthErrorCode::InvalidTarget,
            "`resource` must be an absolute https URI without fragment",
        ));
    }
    if !allowed.iter().any(|allowed| allowed == resource) {
        return Err(Error::oauth(
            OAuthErrorCode::InvalidTarget,
            "the client may not ask for this `resource`",
        ));
    }
    Ok(Some(resource.to_owned()))
}

/// The value of `name`, refused when longer than `max` bytes.
fn bounded<'a>(
    params: &'a Params,
    name: &'static str,
    max: usize,
) -> Result<Option<&'a str>, Error> {
    match params.get(name)? {
        Some(value) if value.len() > max => Err(too_long(name, max)),
        value => Ok(value),
    }
}

fn too_long(name: &str, max: usize) -> Error {
    Error::invalid_request(format!("`{name}` is longer than {max} bytes"))
}

/// The `authorization_details` a client sent with an authorization, PAR or token request:
/// at most [`MAX_AUTHORIZATION_DETAILS_BYTES`] of JSON with at most
/// [`MAX_AUTHORIZATION_DETAILS`] entries, each valid for [`check_authorization_details`] and
/// without `credential_identifiers`, which only the authorization server assigns.
///
/// # Errors
/// `invalid_request` beyond the limits; `invalid_authorization_details` otherwise.
pub(crate) fn requested_authorization_details(params: &Params) -> Result<Option<Value>, Error> {
    let Some(text) = bounded(
        params,
        "authorization_details",
        MAX_AUTHORIZATION_DETAILS_BYTES,
    )?
    else {
        return Ok(None);
    };
    let details = serde_json::from_str::<Value>(text).map_err(|_| {
        Error::oauth(
            OAuthErrorCode::InvalidAuthorizationDetails,
            "`authorization_details` is not JSON",
        )
    })?;
    if details
        .as_array()
        .is_some_and(|entries| entries.len() > MAX_AUTHORIZATION_DETAILS)
    {
        return Err(Error::invalid_request(format!(
            "`authorization_details` has more than {MAX_AUTHORIZATION_DETAILS} entries"
        )));
    }
    check_authorization_details(Some(&details))?;
    if details
        .as_array()
        .into_iter()
        .flatten()
        .any(|entry| entry.get("credential_identifiers").is_some())
    {
        return Err(Error::oauth(
            OAuthErrorCode::InvalidAuthorizationDetails,
            "`credential_identifiers` are assigned by the authorization server and cannot be \
             requested",
        ));
    }
    Ok(Some(details))
}

/// Checks `authorization_details` (RFC 9396 §2): a non-empty array of objects, each of type
/// `openid_credential` with a `credential_configuration_id` string (OID4VCI §5.1.1).
///
/// # Errors
/// `invalid_authorization_details` naming the problem.
pub(crate) fn check_authorization_details(details: Option<&Value>) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::oauth(
            OAuthErrorCode::InvalidAuthorizationDetails,
            reason.to_owned(),
        ))
    };
    let Some(details) = details else {
        return Ok(());
    };
    let Some(entries) = details.as_array() else {
        return invalid("`authorization_details` must be an array");
    };
    if entries.is_empty() {
        return invalid("`authorization_details` must not be empty");
    }
    for entry in entries {
        let Some(object) = entry.as_object() else {
            return invalid("each authorization detail must be an object");
        };
        if object.get("type").and_then(Value::as_str) != Some("openid_credential") {
            return invalid("the only supported authorization detail type is `openid_credential`");
        }
        if !object
            .get("credential_configuration_id")
            .is_some_and(Value::is_string)
        {
            return invalid("`credential_configuration_id` is required in each detail");
        }
        // RFC 9396 §2.2: the resource servers (here: credential issuers) the detail is for;
        // they become the access token's audience.
        if let Some(locations) = object.get("locations")
            && !locations.as_array().is_some_and(|locations| {
                !locations.is_empty()
                    && locations
                        .iter()
                        .all(|l| l.as_str().is_some_and(is_resource_uri))
            })
        {
            return invalid(
                "`locations` must be a non-empty array of absolute https URLs without fragment",
            );
        }
        if let Some(identifiers) = object.get("credential_identifiers")
            && !identifiers.as_array().is_some_and(|identifiers| {
                !identifiers.is_empty()
                    && identifiers
                        .iter()
                        .all(|i| i.as_str().is_some_and(|i| !i.is_empty()))
            })
        {
            return invalid("`credential_identifiers` must be a non-empty array of strings");
        }
    }
    Ok(())
}

/// The `locations` of every entry of `details`, each once, in order.
pub(crate) fn locations(details: Option<&Value>) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    for entry in details.and_then(Value::as_array).into_iter().flatten() {
        for location in entry
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !found.contains(&location) {
                found.push(location);
            }
        }
    }
    found
}
