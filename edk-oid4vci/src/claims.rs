//! Claims from the tenant's own backend at credential time: when a session of the
//! authorization code flow holds no claims for the requested credential, the issuer asks a
//! [`ClaimsSource`]. [`HttpClaimsSource`] posts the question to the HTTPS endpoint of the
//! tenant configuration key [`CLAIMS_ENDPOINT`] (`oid4vci.claims_endpoint`).
//!
//! The request body is a JSON [`ClaimsRequest`]: the end user's `subject`, the claims of their
//! login (`login_claims`), the `credential_configuration_id`, the `session_id` and the
//! offer's `correlation_id`. The backend answers 200 with the claims as a JSON object, or 404
//! when it has no data for this person; anything else is an outage.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use edk_tenancy::TenantContext;
use edk_tenancy::config::ConfigKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest answer a claims endpoint may give, in bytes.
pub const MAX_CLAIMS_BYTES: usize = 64 * 1024;

/// Where a tenant's claims endpoint is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsEndpoint {
    /// The endpoint's URL: `https`, or `http` with `dangerous_allow_http`.
    pub url: String,
    /// Allow a plain `http` URL (a backend on the same host or in a test).
    #[serde(default)]
    pub dangerous_allow_http: bool,
}

fn check_endpoint(endpoint: &Option<ClaimsEndpoint>) -> Result<(), &'static str> {
    let Some(endpoint) = endpoint else {
        return Ok(());
    };
    let url = url::Url::parse(&endpoint.url).map_err(|_| "url is not a URL")?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if endpoint.dangerous_allow_http => Ok(()),
        _ => Err("url must be https (or http with dangerous_allow_http)"),
    }
}

/// The tenant configuration key `oid4vci.claims_endpoint`: `{"url", "dangerous_allow_http"}`,
/// unset by default. Register it in the deployment's `ConfigSchema`.
pub static CLAIMS_ENDPOINT: ConfigKey<Option<ClaimsEndpoint>> =
    ConfigKey::new("oid4vci.claims_endpoint", || None, check_endpoint);

/// What the issuer asks a claims source.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ClaimsRequest<'a> {
    /// The end user who logged in (the access token's `sub`).
    pub subject: &'a str,
    /// The claims of that login, from the upstream OpenID Provider.
    pub login_claims: &'a Map<String, Value>,
    /// The credential asked for.
    pub credential_configuration_id: &'a str,
    /// The issuance session.
    pub session_id: &'a str,
    /// The operator's reference of the offer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<&'a str>,
}

/// Why a claims source gave no claims.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The backend has no data for this person.
    #[error("the claims backend has no data for this person")]
    NotFound,
    /// The backend did not answer as it should.
    #[error("the claims backend failed: {0}")]
    Unavailable(String),
}

/// Where the claims of a credential come from when the session holds none.
#[async_trait]
pub trait ClaimsSource: fmt::Debug + Send + Sync {
    /// The claims for `request` of `tenant`, or `None` when the tenant has no source.
    ///
    /// # Errors
    /// [`ClaimsError`] when the source has no data or fails.
    async fn claims(
        &self,
        tenant: &TenantContext,
        request: &ClaimsRequest<'_>,
    ) -> Result<Option<Map<String, Value>>, ClaimsError>;
}

/// The [`ClaimsSource`] that posts to each tenant's [`CLAIMS_ENDPOINT`].
#[derive(Debug, Clone)]
pub struct HttpClaimsSource {
    http: reqwest::Client,
    timeout: Duration,
}

impl HttpClaimsSource {
    /// Posts with `http` (its redirect and proxy policy), waiting at most ten seconds.
    #[must_use]
    pub const fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            timeout: Duration::from_secs(10),
        }
    }
}

#[async_trait]
impl ClaimsSource for HttpClaimsSource {
    async fn claims(
        &self,
        tenant: &TenantContext,
        request: &ClaimsRequest<'_>,
    ) -> Result<Option<Map<String, Value>>, ClaimsError> {
        let Some(endpoint) = tenant.config().get(&CLAIMS_ENDPOINT) else {
            return Ok(None);
        };
        let response = self
            .http
            .post(&endpoint.url)
            .timeout(self.timeout)
            .json(request)
            .send()
            .await
            .map_err(|_| ClaimsError::Unavailable("the endpoint did not answer".to_owned()))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(ClaimsError::NotFound),
            status => {
                return Err(ClaimsError::Unavailable(format!(
                    "the endpoint answered {status}"
                )));
            }
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_CLAIMS_BYTES as u64)
        {
            return Err(ClaimsError::Unavailable(
                "the answer is too long".to_owned(),
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| ClaimsError::Unavailable("the answer was cut off".to_owned()))?;
        if body.len() > MAX_CLAIMS_BYTES {
            return Err(ClaimsError::Unavailable(
                "the answer is too long".to_owned(),
            ));
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Object(claims)) => Ok(Some(claims)),
            _ => Err(ClaimsError::Unavailable(
                "the answer is not a JSON object".to_owned(),
            )),
        }
    }
}
