//! Rate limits: fixed-window counters per client IP, OAuth client, refresh-token family,
//! pre-authorized code (`tx_code` attempts) and tenant, kept in this process or in Redis so
//! that every replica shares them.
//!
//! A server reads the `rate_limits` section ([`RateLimitConfig`]), builds one
//! [`RateLimiter`] and, before any expensive work of a request (signatures, database writes),
//! asks [`RateLimiter::check`] about every key the request counts against. The check is all
//! or nothing: a request over one limit is counted against none, so a rejected request
//! changes nothing. A tenant may override the process limits through its tenant
//! configuration key [`RATE_LIMITS`].
//!
//! Windows are aligned on the [`Clock`]: the window of a key is
//! `floor(now / window)`, its counter lives until the window ends, and `Retry-After` is the
//! time left in it. With Redis, the check of all the request's keys is one Lua script, so it
//! is atomic across replicas.
//!
//! When the backend fails (Redis down), [`OnBackendError`] decides: `open` (the default) lets
//! the request through, logs a warning at most every [`WARNING_INTERVAL`] and counts the
//! failure in `rate_limit_backend_errors_total`; `closed` refuses the request with 503 and
//! `Retry-After`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_core::Clock;
use edk_core::TenantId;
use edk_tenancy::{ConfigKey, TenantConfig, TenantContext};
use poem::http::StatusCode;
use poem::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use poem::{Request, Response};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::Metrics;
use crate::problem::{Problem, ProblemType};

/// How often at most a failing backend is logged (each failure is counted in the metrics).
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// How long a Redis call may take before it counts as a backend failure.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The tenant configuration key overriding the process's limits for one tenant: the same
/// scopes as the `rate_limits` section, each replacing the process value when set.
pub static RATE_LIMITS: ConfigKey<Limits> =
    ConfigKey::new("rate_limits", Limits::default, Limits::check);

/// The `rate_limits` section, the same in every server's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Where the counters are: unset, in this process (each replica counts on its own);
    /// set, in this Redis, shared by every replica.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// What happens when the backend fails. Default `open`.
    #[serde(default)]
    pub on_backend_error: OnBackendError,
    /// The request header holding the client's address, written by a reverse proxy in front
    /// of every replica (`x-forwarded-for`): the last address in it counts. Unset (the
    /// default): the address of the TCP peer.
    #[serde(default)]
    pub client_ip_header: Option<String>,
    /// The limits of the process; a tenant may override them ([`RATE_LIMITS`]).
    #[serde(default)]
    pub limits: Limits,
}

/// The Redis holding shared counters.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS).
    pub url: SecretString,
    /// The prefix of every key this process writes. Default `edk:rl:`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"[redacted]")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

fn default_key_prefix() -> String {
    "edk:rl:".to_owned()
}

/// What a request meets when the counters cannot be read.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnBackendError {
    /// Let the request through, with a warning and a metric.
    #[default]
    Open,
    /// Refuse it with 503 and `Retry-After`.
    Closed,
}

impl OnBackendError {
    const fn label(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// One limit: at most `requests` in each window of `window_secs` seconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests allowed per window (at least 1).
    pub requests: u32,
    /// The window, in seconds (at least 1).
    pub window_secs: u32,
}

/// The limit of each scope; an unset scope is not limited. As a tenant's [`RATE_LIMITS`], the
/// scopes set replace the process's.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Per client IP address, per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<Limit>,
    /// Per OAuth client (`client_id`), per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_client: Option<Limit>,
    /// Per refresh-token family (every rotation of one grant), per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_refresh_token_family: Option<Limit>,
    /// Per pre-authorized code: token requests redeeming it, so `tx_code` guesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_pre_authorized_code: Option<Limit>,
    /// Per tenant, every request of the endpoints that count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_tenant: Option<Limit>,
}

impl Limits {
    /// Whether every limit allows at least one request in a window of at least one second.
    ///
    /// # Errors
    /// The rule a limit breaks.
    pub fn check(&self) -> Result<(), &'static str> {
        let all = [
            self.per_ip,
            self.per_client,
            self.per_refresh_token_family,
            self.per_pre_authorized_code,
            self.per_tenant,
        ];
        if all
            .iter()
            .flatten()
            .any(|limit| limit.requests == 0 || limit.window_secs == 0)
        {
            return Err("a limit needs at least 1 request and a window of at least 1 second");
        }
        Ok(())
    }

    /// The limit of `scope`.
    #[must_use]
    pub const fn get(&self, scope: Scope) -> Option<Limit> {
        match scope {
            Scope::Ip => self.per_ip,
            Scope::Client => self.per_client,
            Scope::RefreshTokenFamily => self.per_refresh_token_family,
            Scope::PreAuthorizedCode => self.per_pre_authorized_code,
            Scope::Tenant => self.per_tenant,
        }
    }

    /// These limits with every scope `overrides` sets replaced.
    #[must_use]
    pub fn overridden_by(&self, overrides: &Self) -> Self {
        Self {
            per_ip: overrides.per_ip.or(self.per_ip),
            per_client: overrides.per_client.or(self.per_client),
            per_refresh_token_family: overrides
                .per_refresh_token_family
                .or(self.per_refresh_token_family),
            per_pre_authorized_code: overrides
                .per_pre_authorized_code
                .or(self.per_pre_authorized_code),
            per_tenant: overrides.per_tenant.or(self.per_tenant),
        }
    }
}

/// What a counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// A client IP address.
    Ip,
    /// An OAuth client.
    Client,
    /// A refresh-token family.
    RefreshTokenFamily,
    /// A pre-authorized code.
    PreAuthorizedCode,
    /// A tenant.
    Tenant,
}

impl Scope {
    /// The scope's name, in keys, logs and metrics.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Client => "client",
            Self::RefreshTokenFamily => "refresh_token_family",
            Self::PreAuthorizedCode => "pre_authorized_code",
            Self::Tenant => "tenant",
        }
    }
}

/// One key a request counts against: a scope and who in it. The subject is hashed before it
/// becomes a counter's name, so a bearer value (a code, a refresh token) never reaches the
/// backend.
#[derive(Clone, Debug)]
pub struct RateKey {
    scope: Scope,
    subject: String,
}

impl RateKey {
    /// The key of `subject` in `scope`.
    #[must_use]
    pub fn new(scope: Scope, subject: impl AsRef<str>) -> Self {
        let digest = Sha256::digest(subject.as_ref().as_bytes());
        Self {
            scope,
            subject: URL_SAFE_NO_PAD.encode(&digest[..18]),
        }
    }

    /// The key of a client address.
    #[must_use]
    pub fn ip(ip: IpAddr) -> Self {
        Self::new(Scope::Ip, ip.to_string())
    }

    /// The key of the tenant as a whole.
    #[must_use]
    pub fn tenant() -> Self {
        Self::new(Scope::Tenant, "")
    }

    /// The scope.
    #[must_use]
    pub const fn scope(&self) -> Scope {
        self.scope
    }
}

/// The answer of [`RateLimiter::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Under every limit: go on (the request is counted).
    Allowed,
    /// Over the limit of `scope`: answer 429 with `Retry-After: retry_after_secs`.
    Limited {
        /// The scope whose limit is reached.
        scope: Scope,
        /// Seconds until its window ends (at least 1).
        retry_after_secs: u64,
    },
    /// The backend failed and `on_backend_error` is `closed`: answer 503 with
    /// `Retry-After: retry_after_secs`.
    Unavailable {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
}

impl Decision {
    /// The status and `Retry-After` of a refusal; `None` for [`Decision::Allowed`].
    #[must_use]
    pub const fn refusal(self) -> Option<(StatusCode, u64)> {
        match self {
            Self::Allowed => None,
            Self::Limited {
                retry_after_secs, ..
            } => Some((StatusCode::TOO_MANY_REQUESTS, retry_after_secs)),
            Self::Unavailable { retry_after_secs } => {
                Some((StatusCode::SERVICE_UNAVAILABLE, retry_after_secs))
            }
        }
    }

    /// The refusal as problem details (`too-many-requests` or `unavailable`) with
    /// `Retry-After`; `None` for [`Decision::Allowed`].
    #[must_use]
    pub fn problem_response(self) -> Option<Response> {
        let (status, retry_after_secs) = self.refusal()?;
        let (kind, detail) = if status == StatusCode::TOO_MANY_REQUESTS {
            (ProblemType::TooManyRequests, "the rate limit is exceeded")
        } else {
            (ProblemType::Unavailable, "the rate limiter is unavailable")
        };
        let mut response = Problem::new(kind, Some(detail.to_owned())).into_response();
        set_retry_after(&mut response, retry_after_secs);
        Some(response)
    }

    /// The refusal in the OAuth error format (RFC 6749 §5.2): `temporarily_unavailable` with
    /// status 429 or 503 and `Retry-After`; `None` for [`Decision::Allowed`].
    #[must_use]
    pub fn oauth_response(self) -> Option<Response> {
        let (status, retry_after_secs) = self.refusal()?;
        let description = if status == StatusCode::TOO_MANY_REQUESTS {
            "too many requests: the rate limit is exceeded"
        } else {
            "the rate limiter is unavailable"
        };
        let body = serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": description,
        });
        let mut response = Response::builder()
            .status(status)
            .content_type("application/json")
            .header(CACHE_CONTROL, "no-store")
            .body(body.to_string());
        set_retry_after(&mut response, retry_after_secs);
        Some(response)
    }
}

fn set_retry_after(response: &mut Response, secs: u64) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

/// Why a [`RateLimiter`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The section is invalid.
    #[error("invalid `rate_limits` configuration: {0}")]
    Invalid(&'static str),
    /// `rate_limits.redis.url` is not a Redis URL.
    #[error("`rate_limits.redis.url` is not a valid Redis URL")]
    RedisUrl(#[source] redis::RedisError),
}

/// The rate limiter of one server process. Cheap to clone.
///
/// Its counters are named by service ([`for_service`](Self::for_service)), so that servers
/// sharing one Redis (or one process, as in the all-in-one `edk`) each count their own
/// endpoints.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
    service: Arc<str>,
}

struct Inner {
    limits: Limits,
    on_error: OnBackendError,
    client_ip_header: Option<String>,
    backend: Backend,
    clock: Arc<dyn Clock>,
    metrics: Option<Metrics>,
    last_warning_ms: AtomicI64,
}

enum Backend {
    Memory(Mutex<MemoryCounters>),
    Redis {
        client: redis::Client,
        connection: OnceCell<ConnectionManager>,
        prefix: String,
    },
}

#[derive(Default)]
struct MemoryCounters {
    /// Counter name → (count, end of its window in Unix milliseconds).
    counters: HashMap<String, (u32, i64)>,
    /// When expired counters were last swept, in Unix milliseconds.
    swept_ms: i64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.inner.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis { .. } => "redis",
        };
        f.debug_struct("RateLimiter")
            .field("service", &self.service)
            .field("backend", &backend)
            .field("limits", &self.inner.limits)
            .field("on_backend_error", &self.inner.on_error)
            .finish_non_exhaustive()
    }
}

/// Checks all of `KEYS` against their limits (`ARGV`: window start in ms, then per key its
/// limit and window in ms); when every one has room, counts the request against each and
/// returns `{0, 0}`, else returns `{index, ms left}` of the first key over its limit.
const CHECK_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= limit then
    local left = redis.call('PTTL', key)
    if left < 0 then left = tonumber(ARGV[2 * i + 1]) end
    return {i, left}
  end
end
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, ARGV[2 * i + 1]) end
end
return {0, 0}
";

impl RateLimiter {
    /// The limiter of `config`, reading time from `clock` and counting rejections and backend
    /// failures in `metrics` when given. Redis is connected to on first use, so a Redis that
    /// is down at start-up is handled as any backend failure.
    ///
    /// # Errors
    /// [`RateLimitError`] for an invalid limit or Redis URL.
    pub fn new(
        config: &RateLimitConfig,
        clock: Arc<dyn Clock>,
        metrics: Option<&Metrics>,
    ) -> Result<Self, RateLimitError> {
        config.limits.check().map_err(RateLimitError::Invalid)?;
        let backend = match &config.redis {
            None => Backend::Memory(Mutex::new(MemoryCounters::default())),
            Some(redis) => Backend::Redis {
                client: redis::Client::open(redis.url.expose_secret())
                    .map_err(RateLimitError::RedisUrl)?,
                connection: OnceCell::new(),
                prefix: redis.key_prefix.clone(),
            },
        };
        Ok(Self {
            inner: Arc::new(Inner {
                limits: config.limits,
                on_error: config.on_backend_error,
                client_ip_header: config
                    .client_ip_header
                    .as_ref()
                    .map(|name| name.to_ascii_lowercase()),
                backend,
                clock,
                metrics: metrics.cloned(),
                last_warning_ms: AtomicI64::new(i64::MIN),
            }),
            service: Arc::from("default"),
        })
    }

    /// This limiter counting for `service` (`as`, `issuer`, `verifier`): the same backend
    /// and limits, counters of its own.
    #[must_use]
    pub fn for_service(&self, service: &str) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            service: Arc::from(service),
        }
    }

    /// The clock the windows are aligned on.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The limits in force for a tenant with configuration `config`: the process limits with
    /// the tenant's [`RATE_LIMITS`] overrides.
    #[must_use]
    pub fn limits_for(&self, config: &TenantConfig) -> Limits {
        self.inner.limits.overridden_by(&config.get(&RATE_LIMITS))
    }

    /// The client address of `req`: the last address of the configured `client_ip_header`
    /// when it holds one, else the TCP peer's.
    #[must_use]
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if let Some(name) = &self.inner.client_ip_header
            && let Some(ip) = req
                .headers()
                .get_all(name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|part| part.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return Some(ip);
        }
        req.remote_addr().as_socket_addr().map(|addr| addr.ip())
    }

    /// Counts one request of `tenant` against each of `keys` whose scope has a limit (the
    /// process limits with the tenant's overrides), unless one of them is at its limit: then
    /// nothing is counted.
    pub async fn check(&self, tenant: &TenantContext, keys: &[RateKey]) -> Decision {
        let limits = self.limits_for(tenant.config());
        self.check_limits(tenant.id(), &limits, keys).await
    }

    /// As [`check`](Self::check), for the tenant `tenant` under `limits`.
    pub async fn check_limits(
        &self,
        tenant: TenantId,
        limits: &Limits,
        keys: &[RateKey],
    ) -> Decision {
        let counted: Vec<(&RateKey, Limit)> = keys
            .iter()
            .filter_map(|key| limits.get(key.scope).map(|limit| (key, limit)))
            .collect();
        if counted.is_empty() {
            return Decision::Allowed;
        }
        let now_ms = unix_millis(self.inner.clock.now());
        let counters: Vec<Counter> = counted
            .iter()
            .map(|(key, limit)| Counter::new(&self.service, tenant, key, *limit, now_ms))
            .collect();
        let outcome = match &self.inner.backend {
            Backend::Memory(counters_map) => Ok(memory_check(counters_map, &counters, now_ms)),
            Backend::Redis {
                client,
                connection,
                prefix,
            } => redis_check(client, connection, prefix, &counters, now_ms).await,
        };
        match outcome {
            Ok(None) => Decision::Allowed,
            Ok(Some((index, left_ms))) => {
                let scope = counted[index].0.scope;
                if let Some(metrics) = &self.inner.metrics {
                    metrics.observe_rate_limited(scope.name());
                }
                Decision::Limited {
                    scope,
                    retry_after_secs: retry_after(left_ms),
                }
            }
            Err(err) => self.backend_failed(&err, now_ms),
        }
    }

    fn backend_failed(&self, err: &redis::RedisError, now_ms: i64) -> Decision {
        let policy = self.inner.on_error;
        if let Some(metrics) = &self.inner.metrics {
            metrics.observe_rate_limit_backend_error(policy.label());
        }
        let interval = i64::try_from(WARNING_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        let last = self.inner.last_warning_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= interval
            && self
                .inner
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %edk_core::ErrorChain(err),
                on_backend_error = policy.label(),
                "the rate-limit backend failed"
            );
        }
        match policy {
            OnBackendError::Open => Decision::Allowed,
            OnBackendError::Closed => Decision::Unavailable {
                retry_after_secs: 1,
            },
        }
    }
}

/// One counter of one check: its name (without the backend's prefix), limit and window.
struct Counter {
    name: String,
    limit: u32,
    window_ms: i64,
    window_end_ms: i64,
}

impl Counter {
    fn new(service: &str, tenant: TenantId, key: &RateKey, limit: Limit, now_ms: i64) -> Self {
        let window_ms = i64::from(limit.window_secs) * 1000;
        let window = now_ms.div_euclid(window_ms);
        Self {
            name: format!(
                "{service}:{tenant}:{}:{}:{}:{window}",
                key.scope.name(),
                key.subject,
                limit.window_secs
            ),
            limit: limit.requests,
            window_ms,
            window_end_ms: (window + 1) * window_ms,
        }
    }
}

fn memory_check(
    counters: &Mutex<MemoryCounters>,
    check: &[Counter],
    now_ms: i64,
) -> Option<(usize, i64)> {
    let mut state = counters.lock().unwrap_or_else(PoisonError::into_inner);
    if now_ms.saturating_sub(state.swept_ms) >= 1000 {
        state.counters.retain(|_, (_, end)| *end > now_ms);
        state.swept_ms = now_ms;
    }
    for (index, counter) in check.iter().enumerate() {
        if let Some((count, _)) = state.counters.get(&counter.name)
            && *count >= counter.limit
        {
            return Some((index, counter.window_end_ms - now_ms));
        }
    }
    for counter in check {
        state
            .counters
            .entry(counter.name.clone())
            .or_insert((0, counter.window_end_ms))
            .0 += 1;
    }
    None
}

async fn redis_check(
    client: &redis::Client,
    connection: &OnceCell<ConnectionManager>,
    prefix: &str,
    check: &[Counter],
    now_ms: i64,
) -> Result<Option<(usize, i64)>, redis::RedisError> {
    let manager = connection
        .get_or_try_init(|| async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client.clone(), config).await
        })
        .await?;
    let mut connection = manager.clone();
    let script = redis::Script::new(CHECK_SCRIPT);
    let mut invocation = script.prepare_invoke();
    invocation.arg(now_ms);
    for counter in check {
        // The key outlives its window by one window, so that a replica whose clock is
        // slightly behind still finds it.
        let ttl = (counter.window_end_ms - now_ms) + counter.window_ms;
        invocation
            .key(format!("{prefix}{}", counter.name))
            .arg(counter.limit)
            .arg(ttl);
    }
    let (index, _left): (usize, i64) = invocation.invoke_async(&mut connection).await?;
    Ok(index
        .checked_sub(1)
        .map(|index| (index, check[index].window_end_ms - now_ms)))
}

fn retry_after(left_ms: i64) -> u64 {
    u64::try_from(left_ms.max(1)).unwrap_or(1).div_ceil(1000)
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |after| {
        i64::try_from(after.as_millis()).unwrap_or(i64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edk_core::FixedClock;

    fn config(value: serde_json::Value) -> RateLimitConfig {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn a_key_is_limited_until_its_window_ends_and_a_refusal_counts_nothing() {
        let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
        let limiter = RateLimiter::new(
            &config(serde_json::json!({"limits": {
                "per_ip": {"requests": 2, "window_secs": 60},
                "per_tenant": {"requests": 3, "window_secs": 60}
            }})),
            clock.clone(),
            None,
        )
        .unwrap();
        let tenant = TenantId::from_uuid(uuid::Uuid::new_v4());
        let tenant_config = limiter.limits_for(&TenantConfig::default());
        let a = [RateKey::ip([10, 0, 0, 1].into()), RateKey::tenant()];
        let b = [RateKey::ip([10, 0, 0, 2].into()), RateKey::tenant()];
        for _ in 0..2 {
            assert_eq!(
                limiter.check_limits(tenant, &tenant_config, &a).await,
                Decision::Allowed
            );
        }
        let Decision::Limited {
            scope,
            retry_after_secs,
        } = limiter.check_limits(tenant, &tenant_config, &a).await
        else {
            panic!("the third request of one address passes");
        };
        assert_eq!(scope, Scope::Ip);
        assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
        // The refused request took nothing from the tenant's budget: one more fits.
        assert_eq!(
            limiter.check_limits(tenant, &tenant_config, &b).await,
            Decision::Allowed
        );
        assert!(matches!(
            limiter.check_limits(tenant, &tenant_config, &b).await,
            Decision::Limited {
                scope: Scope::Tenant,
                ..
            }
        ));
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            limiter.check_limits(tenant, &tenant_config, &a).await,
            Decision::Allowed
        );
    }

    #[test]
    fn invalid_limits_and_urls_are_refused() {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::at_unix(0));
        let zero =
            config(serde_json::json!({"limits": {"per_ip": {"requests": 0, "window_secs": 1}}}));
        assert!(matches!(
            RateLimiter::new(&zero, Arc::clone(&clock), None),
            Err(RateLimitError::Invalid(_))
        ));
        let url = config(serde_json::json!({"redis": {"url": "http://nowhere"}}));
        assert!(matches!(
            RateLimiter::new(&url, clock, None),
            Err(RateLimitError::RedisUrl(_))
        ));
        assert!(
            serde_json::from_value::<RateLimitConfig>(
                serde_json::json!({"limits": {"per_ipp": {}}})
            )
            .is_err()
        );
    }

    #[test]
    fn the_redis_url_is_never_shown() {
        let config = config(serde_json::json!({
            "redis": {"url": "redis://user:hunter2@127.0.0.1:6379"}
        }));
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
