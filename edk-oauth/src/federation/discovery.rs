//! Upstream provider metadata (OpenID Connect Discovery 1.0) and its JWKS, cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{JwkSet, JwksResolver};
use edk_core::{Clock, TenantId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::config::UpstreamOidcConfig;
use super::error::FederationError;

/// The largest discovery document or JWKS accepted, in bytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The parts of an OpenID Provider's metadata that federation uses (Discovery §3).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// `issuer`: equal to the configured issuer (Discovery §4.3).
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: url::Url,
    /// `token_endpoint`.
    pub token_endpoint: url::Url,
    /// `jwks_uri`.
    pub jwks_uri: url::Url,
    /// `response_types_supported`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `code_challenge_methods_supported` (RFC 8414); absent says nothing.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_methods_supported`; absent means `client_secret_basic`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `id_token_signing_alg_values_supported`.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl ProviderMetadata {
    /// Checks the metadata against the configuration and what federation needs.
    fn check(&self, config: &UpstreamOidcConfig) -> Result<(), FederationError> {
        let invalid = |reason| FederationError::InvalidResponse {
            what: "discovery document",
            reason,
        };
        if self.issuer != config.issuer() {
            return Err(invalid("`issuer` is not the configured issuer"));
        }
        for url in [
            &self.authorization_endpoint,
            &self.token_endpoint,
            &self.jwks_uri,
        ] {
            if !config.url_allowed(url) {
                return Err(invalid("an endpoint is not an https URL"));
            }
        }
        if !self.response_types_supported.iter().any(|t| t == "code") {
            return Err(FederationError::Unsupported("the authorization code flow"));
        }
        if let Some(methods) = &self.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(FederationError::Unsupported("PKCE with S256"));
        }
        let auth = config.client_auth().as_str();
        let supported = match &self.token_endpoint_auth_methods_supported {
            Some(methods) => methods.iter().any(|m| m == auth),
            None => auth == "client_secret_basic",
        };
        if !supported {
            return Err(FederationError::Unsupported(
                "the configured client authentication method",
            ));
        }
        Ok(())
    }
}

/// A provider's metadata with the keys its ID tokens are checked with.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) metadata: ProviderMetadata,
    pub(crate) keys: Arc<JwksResolver>,
    fetched_at: i64,
    keys_fetched_at: i64,
}

/// Metadata and JWKS per tenant and issuer, fetched on first use and kept for a while. Two
/// tenants naming one issuer each fetch and check it under their own settings (allowed
/// schemes, client authentication): one tenant's entry never answers for another.
#[derive(Debug)]
pub(crate) struct DiscoveryCache {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    ttl_seconds: i64,
    entries: Mutex<HashMap<(TenantId, String), Arc<Provider>>>,
}

/// A JWKS is refetched for an unknown `kid` at most this often (key rotation).
const MIN_KEY_REFRESH_SECONDS: i64 = 30;

impl DiscoveryCache {
    pub(crate) fn new(
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        ttl: Duration,
    ) -> Self {
        Self {
            http,
            clock,
            timeout,
            ttl_seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The provider of `tenant`'s `config`, from the cache while fresh.
    pub(crate) async fn provider(
        &self,
        tenant: TenantId,
        config: &UpstreamOidcConfig,
    ) -> Result<Arc<Provider>, FederationError> {
        let now = self.clock.unix_seconds();
        let key = (tenant, config.issuer().to_owned());
        let cached = self.entries.lock().await.get(&key).cloned();
        if let Some(entry) = cached
            && now.saturating_sub(entry.fetched_at) < self.ttl_seconds
            && entry.fetched_at <= now
        {
            // The tenant's settings may have changed since the entry was fetched.
            entry.metadata.check(config)?;
            return Ok(entry);
        }
        // Fetched without the lock: a slow or dead provider holds up only its own tenants.
        let provider = Arc::new(self.fetch(config, now).await?);
        self.entries.lock().await.insert(key, Arc::clone(&provider));
        Ok(provider)
    }

    /// Refetches the JWKS of `stale` (after a token named a key it lacks), unless that was
    /// done very recently; returns the provider to use.
    pub(crate) async fn refresh_keys(
        &self,
        tenant: TenantId,
        config: &UpstreamOidcConfig,
        stale: &Arc<Provider>,
    ) -> Result<Option<Arc<Provider>>, FederationError> {
        let now = self.clock.unix_seconds();
        if now.saturating_sub(stale.keys_fetched_at) < MIN_KEY_REFRESH_SECONDS {
            return Ok(None);
        }
        let keys = self.fetch_keys(config, &stale.metadata).await?;
        let provider = Arc::new(Provider {
            metadata: stale.metadata.clone(),
            keys: Arc::new(keys),
            fetched_at: stale.fetched_at,
            keys_fetched_at: now,
        });
        self.entries
            .lock()
            .await
            .insert((tenant, config.issuer().to_owned()), Arc::clone(&provider));
        Ok(Some(provider))
    }

    async fn fetch(
        &self,
        config: &UpstreamOidcConfig,
        now: i64,
    ) -> Result<Provider, FederationError> {
        // Discovery §4: the issuer with any trailing slash removed, then the well-known path.
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer().trim_end_matches('/')
        );
        let metadata: ProviderMetadata = self
            .get_json(&url, "discovery", "discovery document")
            .await?;
        metadata.check(config)?;
        let keys = self.fetch_keys(config, &metadata).await?;
        Ok(Provider {
            metadata,
            keys: Arc::new(keys),
            fetched_at: now,
            keys_fetched_at: now,
        })
    }

    async fn fetch_keys(
        &self,
        config: &UpstreamOidcConfig,
        metadata: &ProviderMetadata,
    ) -> Result<JwksResolver, FederationError> {
        let jwks: JwkSet = self
            .get_json(metadata.jwks_uri.as_str(), "jwks", "JWKS")
            .await?;
        let resolver = JwksResolver::new(&jwks).for_issuer(config.issuer());
        if resolver.keys().is_empty() {
            return Err(FederationError::InvalidResponse {
                what: "JWKS",
                reason: "no usable signing key",
            });
        }
        Ok(resolver)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        request: &'static str,
        what: &'static str,
    ) -> Result<T, FederationError> {
        let unreachable = |source| FederationError::Unreachable {
            what: request,
            source,
        };
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(FederationError::InvalidResponse {
                what,
                reason: "the provider answered with an error status",
            });
        }
        let body = read_limited(response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(unreachable)?
            .ok_or(FederationError::InvalidResponse {
                what,
                reason: "too large",
            })?;
        serde_json::from_slice(&body).map_err(|_| FederationError::InvalidResponse {
            what,
            reason: "not the expected JSON object",
        })
    }
}

/// Reads a response body of at most `limit` bytes; `None` when it is larger.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > limit))
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
