//! End-user authentication at a tenant's upstream OpenID Provider: [`OidcFederation`].
//!
//! Each tenant may name one upstream OpenID Provider in its configuration
//! ([`UPSTREAM_OIDC`], an [`UpstreamOidcConfig`]). When the authorization endpoint asks
//! [`OidcFederation`] to [`start`](Authenticator::start), it
//!
//! 1. reads the provider's metadata from `<issuer>/.well-known/openid-configuration`
//!    (OpenID Connect Discovery 1.0 §4, cached with its JWKS; the metadata's `issuer` must be
//!    the configured one byte for byte),
//! 2. creates a `state`, a `nonce` and a PKCE verifier (RFC 7636, `S256`), keeps them with the
//!    AS's transaction in the tenant's database (table `oauth_federation_login`, only a digest
//!    of the state) and
//! 3. redirects the browser to the provider's authorization endpoint (OIDC Core §3.1.2.1),
//!    asking to come back to the AS's callback endpoint.
//!
//! On the callback, [`finish`](Authenticator::finish)
//!
//! 1. consumes the pending login of the callback's `state` (one `DELETE … RETURNING`: a
//!    callback works once, and a state of another tenant is unknown here),
//! 2. checks the login is not older than the configured lifetime and that `iss` (RFC 9207),
//!    when sent or promised by the metadata, is the provider's,
//! 3. turns an `error` response into [`AuthnError::AccessDenied`],
//! 4. redeems the code at the token endpoint with the PKCE verifier and
//!    `client_secret_basic` or `client_secret_post` (OIDC Core §3.1.3),
//! 5. validates the ID token ([`IdTokenValidator`], OIDC Core §3.1.3.7: signature with the
//!    provider's JWKS, refetched once for an unknown `kid`; `iss`, `aud`, `azp`, `exp` and
//!    `iat` with the injected clock and the configured leeway; `nonce`) and
//! 6. maps its claims to the subject ([`ClaimMapping`]).
//!
//! Every outbound request has a timeout and a size limit; the HTTP client is injected
//! (its TLS, proxy and redirect policy are the embedding application's).
//!
//! The provider must have our client registered with the AS's callback URL
//! ([`AuthnRequest::callback_url`]) as a redirect URI.

mod config;
mod discovery;
mod error;
mod id_token;
mod secret;
mod store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use edk_core::{Clock, ErrorChain, HasKind as _};
use edk_kms::Kms;
use edk_tenancy::{Tenancy, TenantContext};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::form_urlencoded;

pub use config::{ClaimMapping, ClientAuthMethod, UPSTREAM_OIDC, UpstreamOidcConfig};
pub use discovery::ProviderMetadata;
pub use error::FederationError;
pub use id_token::{IdTokenClaims, IdTokenValidator};
pub use secret::{SEALING_PURPOSE, SealedSecret, UpstreamSecret, seal, sealing_alias, unseal};
pub use store::{MIGRATION_COMPONENT, migrations};

use self::discovery::{DiscoveryCache, Provider, read_limited};
use self::error::truncated;
use self::store::PendingLogin;
use crate::authn::{
    AuthenticatedSubject, Authenticator, AuthnCallback, AuthnOutcome, AuthnRequest, AuthnStart,
    AuthnTransaction,
};
use crate::error::AuthnError;
use crate::random;

/// The largest token response accepted, in bytes.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// An [`Authenticator`] that sends end users to the tenant's upstream OpenID Provider.
///
/// ```no_run
/// # async fn example(tenancy: edk_tenancy::Tenancy) {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use edk_oauth::federation::OidcFederation;
///
/// let http = reqwest::Client::builder()
///     .timeout(Duration::from_secs(10))
///     .redirect(reqwest::redirect::Policy::none())
///     .build()
///     .unwrap();
/// let federation = OidcFederation::new(tenancy, http, Arc::new(edk_core::SystemClock));
/// # }
/// ```
#[derive(Debug)]
pub struct OidcFederation {
    tenancy: Tenancy,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    discovery: DiscoveryCache,
    kms: Option<Arc<dyn Kms>>,
}

/// The response of the upstream token endpoint (OIDC Core §3.1.3.3); the access token is
/// neither kept nor used.
#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
}

impl OidcFederation {
    /// Federation for the tenants of `tenancy` (which must apply [`migrations`]), sending
    /// requests with `http` (10 s timeout each) and reading time from `clock`; provider
    /// metadata and keys are kept for an hour.
    #[must_use]
    pub fn new(tenancy: Tenancy, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self::with_timeouts(
            tenancy,
            http,
            clock,
            Duration::from_secs(10),
            Duration::from_secs(3600),
        )
    }

    /// As [`OidcFederation::new`] with a per-request `timeout` and a `metadata_ttl` for the
    /// cached provider metadata and JWKS.
    #[must_use]
    pub fn with_timeouts(
        tenancy: Tenancy,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        metadata_ttl: Duration,
    ) -> Self {
        let discovery =
            DiscoveryCache::new(http.clone(), Arc::clone(&clock), timeout, metadata_ttl);
        Self {
            tenancy,
            http,
            clock,
            timeout,
            discovery,
            kms: None,
        }
    }

    /// The federation unsealing client secrets sealed to the tenant's KMS key (see
    /// [`UpstreamSecret`]) with `kms`. Without it, only a secret in clear works.
    #[must_use]
    pub fn with_kms(mut self, kms: Arc<dyn Kms>) -> Self {
        self.kms = Some(kms);
        self
    }

    /// The client secret of `config`, unsealed if it is sealed.
    async fn client_secret(
        &self,
        tenant: &TenantContext,
        config: &UpstreamOidcConfig,
    ) -> Result<SecretString, FederationError> {
        match config.client_secret() {
            UpstreamSecret::Plain(secret) => Ok(secret.clone()),
            UpstreamSecret::Sealed(sealed) => {
                let kms = self.kms.as_ref().ok_or(FederationError::SealedWithoutKms)?;
                unseal(kms.as_ref(), tenant, sealed).await
            }
        }
    }

    /// The tenant's upstream provider configuration.
    ///
    /// # Errors
    /// [`FederationError::NotConfigured`] when it has none.
    pub fn config(tenant: &TenantContext) -> Result<UpstreamOidcConfig, FederationError> {
        tenant
            .config()
            .get(&UPSTREAM_OIDC)
            .ok_or(FederationError::NotConfigured)
    }

    /// The metadata of `tenant`'s provider under its `config`, from the tenant's cache entry
    /// or fetched and checked.
    ///
    /// # Errors
    /// [`FederationError::Unreachable`], [`FederationError::InvalidResponse`] or
    /// [`FederationError::Unsupported`].
    pub async fn metadata(
        &self,
        tenant: &TenantContext,
        config: &UpstreamOidcConfig,
    ) -> Result<ProviderMetadata, FederationError> {
        Ok(self
            .discovery
            .provider(tenant.id(), config)
            .await?
            .metadata
            .clone())
    }

    /// Starts a login at the provider of `config` for `request`; returns the URL of the
    /// provider's authorization endpoint to send the browser to.
    ///
    /// # Errors
    /// Discovery errors as [`OidcFederation::metadata`]; [`FederationError::Store`].
    pub async fn begin(
        &self,
        tenant: &TenantContext,
        config: &UpstreamOidcConfig,
        request: &AuthnRequest,
    ) -> Result<url::Url, FederationError> {
        warn_if_dangerous(config);
        let provider = self.discovery.provider(tenant.id(), config).await?;
        let state = random::token();
        let nonce = random::token();
        let code_verifier = random::token();
        let redirect_uri = request.callback_url.as_str().to_owned();
        let now = self.clock.unix_seconds();
        let mut location = provider.metadata.authorization_endpoint.clone();
        {
            let mut query = location.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", config.client_id())
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &config.scopes().join(" "))
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &random::s256(&code_verifier))
                .append_pair("code_challenge_method", "S256");
            for (name, value) in [
                ("prompt", &request.prompt),
                ("login_hint", &request.login_hint),
                ("acr_values", &request.acr_values),
                ("ui_locales", &request.ui_locales),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        let login = PendingLogin {
            issuer: config.issuer().to_owned(),
            nonce,
            code_verifier,
            redirect_uri,
            transaction: request.transaction.as_str().to_owned(),
            created_at: now,
            expires_at: now.saturating_add(i64::from(config.login_lifetime_seconds())),
        };
        store::insert(&self.tenancy, tenant, &state, &login).await?;
        Ok(location)
    }

    /// Completes a login from the provider's callback to the AS.
    ///
    /// # Errors
    /// [`FederationError::MissingParameter`], [`FederationError::UnknownState`],
    /// [`FederationError::LoginExpired`], [`FederationError::CallbackIssuerMismatch`],
    /// [`FederationError::Denied`], [`FederationError::TokenRefused`], the ID token checks of
    /// [`IdTokenValidator::validate`], [`FederationError::SubjectClaim`],
    /// [`FederationError::EmailNotVerified`], [`FederationError::Sealing`] or
    /// [`FederationError::SealedWithoutKms`] for a sealed secret that cannot be unsealed, and
    /// transport and store failures.
    pub async fn complete(
        &self,
        tenant: &TenantContext,
        config: &UpstreamOidcConfig,
        callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, FederationError> {
        let state = callback
            .get("state")
            .ok_or(FederationError::MissingParameter("state"))?;
        let login = store::consume(&self.tenancy, tenant, state)
            .await?
            .ok_or(FederationError::UnknownState)?;
        let now = self.clock.unix_seconds();
        // A login started under another provider configuration cannot finish under this one.
        if now > login.expires_at || login.issuer != config.issuer() {
            return Err(FederationError::LoginExpired);
        }
        let provider = self.discovery.provider(tenant.id(), config).await?;
        match callback.get("iss") {
            Some(iss) if iss != config.issuer() => {
                return Err(FederationError::CallbackIssuerMismatch);
            }
            None if provider
                .metadata
                .authorization_response_iss_parameter_supported =>
            {
                return Err(FederationError::MissingParameter("iss"));
            }
            _ => {}
        }
        if let Some(error) = callback.get("error") {
            return Err(FederationError::Denied {
                error: truncated(error),
                description: callback.get("error_description").map(truncated),
            });
        }
        let code = callback
            .get("code")
            .ok_or(FederationError::MissingParameter("code"))?;
        let secret = self.client_secret(tenant, config).await?;
        let id_token = self
            .redeem(config, &secret, &provider, &login, code)
            .await?;
        let claims = self
            .validate_id_token(tenant, config, provider, &id_token, &login.nonce, now)
            .await?;
        let subject = map_subject(config.claims(), &claims, now)?;
        Ok(AuthnOutcome::new(
            AuthnTransaction::from_stored(login.transaction),
            subject,
        ))
    }

    /// Redeems `code` at the token endpoint (OIDC Core §3.1.3.1) and returns the ID token.
    async fn redeem(
        &self,
        config: &UpstreamOidcConfig,
        secret: &SecretString,
        provider: &Provider,
        login: &PendingLogin,
        code: &str,
    ) -> Result<String, FederationError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.code_verifier.as_str()),
        ];
        let mut request = self
            .http
            .post(provider.metadata.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let secret = secret.expose_secret();
        match config.client_auth() {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
                let id: String =
                    form_urlencoded::byte_serialize(config.client_id().as_bytes()).collect();
                let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                request = request.basic_auth(id, Some(secret));
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", config.client_id()));
                form.push(("client_secret", secret));
            }
        }
        let response =
            request
                .form(&form)
                .send()
                .await
                .map_err(|source| FederationError::Unreachable {
                    what: "token",
                    source,
                })?;
        let status = response.status();
        let body = read_limited(response, MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(|source| FederationError::Unreachable {
                what: "token",
                source,
            })?
            .ok_or(FederationError::InvalidResponse {
                what: "token response",
                reason: "too large",
            })?;
        if !status.is_success() {
            let error = serde_json::from_slice::<TokenErrorResponse>(&body)
                .map_or_else(|_| "unknown".to_owned(), |body| truncated(&body.error));
            return Err(FederationError::TokenRefused {
                status: status.as_u16(),
                error,
            });
        }
        let tokens: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| FederationError::InvalidResponse {
                what: "token response",
                reason: "not the expected JSON object",
            })?;
        tokens.id_token.ok_or(FederationError::InvalidResponse {
            what: "token response",
            reason: "no `id_token`",
        })
    }

    async fn validate_id_token(
        &self,
        tenant: &TenantContext,
        config: &UpstreamOidcConfig,
        provider: Arc<Provider>,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims, FederationError> {
        let validator = |provider: &Provider| {
            let mut validator = IdTokenValidator::new(
                config.issuer(),
                config.client_id(),
                Arc::clone(&provider.keys) as _,
            )
            .with_leeway(config.leeway_seconds());
            let algorithms: Vec<_> = provider
                .metadata
                .id_token_signing_alg_values_supported
                .iter()
                .filter_map(|name| edk_core::jose::Algorithm::from_name(name))
                .collect();
            if !algorithms.is_empty() {
                validator = validator.with_algorithms(&algorithms);
            }
            validator
        };
        match validator(&provider).validate(id_token, nonce, now).await {
            Err(err) if id_token::is_unknown_key(&err) => {
                // The provider may have rotated its keys since we fetched them.
                match self
                    .discovery
                    .refresh_keys(tenant.id(), config, &provider)
                    .await?
                {
                    Some(fresh) => validator(&fresh).validate(id_token, nonce, now).await,
                    None => Err(err),
                }
            }
            result => result,
        }
    }
}

#[async_trait]
impl Authenticator for OidcFederation {
    async fn start(
        &self,
        tenant: &TenantContext,
        request: &AuthnRequest,
    ) -> Result<AuthnStart, AuthnError> {
        let config = Self::config(tenant).map_err(authn_error)?;
        let location = self
            .begin(tenant, &config, request)
            .await
            .map_err(authn_error)?;
        Ok(AuthnStart::Redirect { location })
    }

    async fn finish(
        &self,
        tenant: &TenantContext,
        callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, AuthnError> {
        let config = Self::config(tenant).map_err(authn_error)?;
        self.complete(tenant, &config, callback)
            .await
            .map_err(authn_error)
    }
}

/// The subject of a validated ID token under `mapping`.
fn map_subject(
    mapping: &ClaimMapping,
    token: &IdTokenClaims,
    now: i64,
) -> Result<AuthenticatedSubject, FederationError> {
    let claims = &token.claims;
    let subject = match claims.get(&mapping.subject_claim) {
        Some(Value::String(value)) if !value.is_empty() && value.len() <= 255 => value.clone(),
        _ => return Err(FederationError::SubjectClaim(mapping.subject_claim.clone())),
    };
    if mapping.subject_claim == "email" && claims.get("email_verified") != Some(&Value::Bool(true))
    {
        return Err(FederationError::EmailNotVerified);
    }
    let auth_time = DateTime::from_timestamp(token.auth_time.unwrap_or(now), 0)
        .or_else(|| DateTime::from_timestamp(now, 0))
        .unwrap_or_default();
    let mut mapped = AuthenticatedSubject::new(subject, auth_time);
    mapped.acr = claims.get("acr").and_then(Value::as_str).map(str::to_owned);
    mapped.amr = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|amr| {
            amr.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    mapped.claims = mapping
        .copy_claims
        .iter()
        .filter_map(|name| claims.get(name).map(|value| (name.clone(), value.clone())))
        .collect::<Map<String, Value>>();
    Ok(mapped)
}

/// The [`AuthnError`] the authorization endpoint handles for a federation failure.
fn authn_error(err: FederationError) -> AuthnError {
    use edk_core::ErrorKind;

    match &err {
        FederationError::NotConfigured => AuthnError::NotConfigured,
        FederationError::UnknownState
        | FederationError::LoginExpired
        | FederationError::MissingParameter(_)
        | FederationError::CallbackIssuerMismatch => AuthnError::InvalidCallback {
            reason: err.to_string(),
        },
        _ => match err.kind() {
            ErrorKind::Unavailable => {
                tracing::warn!(error = %ErrorChain(&err), "upstream OpenID Provider unavailable");
                AuthnError::Unavailable(Box::new(err))
            }
            ErrorKind::Unauthenticated | ErrorKind::InvalidInput | ErrorKind::Forbidden => {
                tracing::info!(error = %ErrorChain(&err), "federated login refused");
                AuthnError::AccessDenied {
                    reason: err.to_string(),
                }
            }
            _ => {
                tracing::error!(error = %ErrorChain(&err), "federated login failed");
                AuthnError::Internal(Box::new(err))
            }
        },
    }
}

fn warn_if_dangerous(config: &UpstreamOidcConfig) {
    if config.allows_http() {
        tracing::warn!(
            issuer = config.issuer(),
            "dangerous_allow_http is on: the upstream OpenID Provider is reached without TLS"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: Value) -> IdTokenClaims {
        let Value::Object(claims) = claims else {
            panic!("claims are an object")
        };
        IdTokenClaims {
            subject: claims["sub"].as_str().unwrap().to_owned(),
            auth_time: None,
            claims,
        }
    }

    #[test]
    fn subject_from_email_needs_a_verified_email() {
        let mapping = ClaimMapping {
            subject_claim: "email".to_owned(),
            copy_claims: vec![],
        };
        let unverified = token(serde_json::json!({"sub": "u1", "email": "a@example.test"}));
        assert!(matches!(
            map_subject(&mapping, &unverified, 0),
            Err(FederationError::EmailNotVerified)
        ));
        let verified = token(
            serde_json::json!({"sub": "u1", "email": "a@example.test", "email_verified": true}),
        );
        let subject = map_subject(&mapping, &verified, 0).unwrap();
        assert_eq!(subject.subject, "a@example.test");
    }

    #[test]
    fn a_missing_or_non_string_subject_claim_is_refused() {
        let mapping = ClaimMapping {
            subject_claim: "employee_id".to_owned(),
            copy_claims: vec![],
        };
        let numeric = token(serde_json::json!({"sub": "u1", "employee_id": 42}));
        assert!(matches!(
            map_subject(&mapping, &numeric, 0),
            Err(FederationError::SubjectClaim(claim)) if claim == "employee_id"
        ));
    }

    #[test]
    fn acr_amr_auth_time_and_listed_claims_are_carried_over() {
        let claims = token(serde_json::json!({
            "sub": "u1", "acr": "urn:mace:incommon:iap:silver", "amr": ["pwd", "otp"],
            "name": "U One", "secret_internal": "x"
        }));
        let claims = IdTokenClaims {
            auth_time: Some(1_700_000_000),
            ..claims
        };
        let subject = map_subject(&ClaimMapping::default(), &claims, 1_800_000_000).unwrap();
        assert_eq!(subject.subject, "u1");
        assert_eq!(subject.acr.as_deref(), Some("urn:mace:incommon:iap:silver"));
        assert_eq!(subject.amr, ["pwd", "otp"]);
        assert_eq!(subject.auth_time.timestamp(), 1_700_000_000);
        assert_eq!(subject.claims.len(), 1);
        assert_eq!(subject.claims["name"], "U One");
    }

    #[test]
    fn callback_problems_become_invalid_callback_and_refusals_access_denied() {
        assert!(matches!(
            authn_error(FederationError::UnknownState),
            AuthnError::InvalidCallback { .. }
        ));
        assert!(matches!(
            authn_error(FederationError::NonceMismatch),
            AuthnError::AccessDenied { .. }
        ));
        assert!(matches!(
            authn_error(FederationError::NotConfigured),
            AuthnError::NotConfigured
        ));
        assert!(matches!(
            authn_error(FederationError::TokenRefused {
                status: 503,
                error: "unknown".to_owned()
            }),
            AuthnError::Unavailable(_)
        ));
    }
}
