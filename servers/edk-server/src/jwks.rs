//! A [`KeyResolver`] over an issuer's JWKS URL: fetched with an injected HTTP client, cached
//! for a TTL, refetched at once for an unknown `kid` (at most once per refresh interval).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::{JoseError, JwkSet, JwksResolver, KeyQuery, KeyResolver, VerifyingKey};
use edk_core::{Clock, ErrorChain, ErrorKind};
use tokio::sync::Mutex;

/// The largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How a [`RemoteJwks`] caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksCachePolicy {
    /// How long a fetched JWKS is used before it is fetched again.
    pub ttl: Duration,
    /// The shortest time between two fetches, so unknown `kid`s cannot make the server hammer
    /// the issuer.
    pub min_refresh_interval: Duration,
}

/// Why a JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFetchError {
    /// The request failed or the issuer did not answer 200.
    #[error("cannot fetch the JWKS of `{issuer}`")]
    Http {
        /// The issuer.
        issuer: String,
        /// The HTTP error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is larger than [`MAX_JWKS_BYTES`].
    #[error("the JWKS of `{issuer}` is too large")]
    TooLarge {
        /// The issuer.
        issuer: String,
    },
    /// The answer is not a JWK Set.
    #[error("the JWKS of `{issuer}` is not a JWK Set")]
    Malformed {
        /// The issuer.
        issuer: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The keys of an issuer, fetched from its `jwks_uri` and cached; see the [module
/// documentation](self).
pub struct RemoteJwks {
    issuer: String,
    uri: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    policy: JwksCachePolicy,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Option<JwksResolver>,
    fetched_at: Option<i64>,
    attempted_at: Option<i64>,
}

impl RemoteJwks {
    /// The keys of `issuer` at `uri`, fetched with `client` (which carries the timeouts and
    /// TLS settings), aged by `clock`.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        uri: impl Into<String>,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
        policy: JwksCachePolicy,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            uri: uri.into(),
            client,
            clock,
            policy,
            cache: Mutex::new(Cache::default()),
        }
    }

    async fn fetch(&self) -> Result<JwksResolver, JwksFetchError> {
        let http = |source| JwksFetchError::Http {
            issuer: self.issuer.clone(),
            source,
        };
        let mut response = self
            .client
            .get(&self.uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(http)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksFetchError::TooLarge {
                    issuer: self.issuer.clone(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let jwks: JwkSet =
            serde_json::from_slice(&body).map_err(|source| JwksFetchError::Malformed {
                issuer: self.issuer.clone(),
                source,
            })?;
        Ok(JwksResolver::new(&jwks).for_issuer(self.issuer.clone()))
    }

    /// Fetches into `cache` unless the last attempt is more recent than the refresh interval.
    /// A failed fetch keeps the keys already cached.
    async fn refresh(&self, cache: &mut Cache, now: i64) -> Result<(), JoseError> {
        let min = i64::try_from(self.policy.min_refresh_interval.as_secs()).unwrap_or(i64::MAX);
        if cache
            .attempted_at
            .is_some_and(|at| now.saturating_sub(at) < min)
        {
            return Ok(());
        }
        cache.attempted_at = Some(now);
        match self.fetch().await {
            Ok(keys) => {
                cache.keys = Some(keys);
                cache.fetched_at = Some(now);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "JWKS refresh failed");
                if cache.keys.is_some() {
                    Ok(())
                } else {
                    Err(JoseError::KeySource(Box::new(err), ErrorKind::Unavailable))
                }
            }
        }
    }
}

#[async_trait]
impl KeyResolver for RemoteJwks {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let now = self.clock.unix_seconds();
        let ttl = i64::try_from(self.policy.ttl.as_secs()).unwrap_or(i64::MAX);
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| now.saturating_sub(at) >= ttl);
        if stale {
            self.refresh(&mut cache, now).await?;
        }
        let Some(keys) = &cache.keys else {
            return Err(JoseError::KeyNotFound);
        };
        match keys.resolve(query).await {
            Err(JoseError::KeyNotFound) if query.kid.is_some() => {
                // An unknown kid may be a key the issuer just rotated in.
                self.refresh(&mut cache, now).await?;
                match &cache.keys {
                    Some(keys) => keys.resolve(query).await,
                    None => Err(JoseError::KeyNotFound),
                }
            }
            other => other,
        }
    }
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("issuer", &self.issuer)
            .field("uri", &self.uri)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
