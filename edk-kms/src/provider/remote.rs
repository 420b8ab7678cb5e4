//! What every provider that calls a remote key service shares (features `aws`, `azure`, `csc`
//! and `vault`): per-attempt timeouts, retries with exponential backoff and full jitter on
//! throttling and transient failures, a circuit breaker per provider, metrics per provider,
//! bearer tokens cached until shortly before they expire, secrets given inline or in a file,
//! the reading of the JSON answers of HTTP key services (a success's body, or the status,
//! body and `Retry-After` of a refusal for the provider to classify, with the classification
//! they share) and of calls with bearer tokens, and the conversions from the DER forms such services answer with (SubjectPublicKeyInfo,
//! `Ecdsa-Sig-Value`) to JOSE.
//!
//! A guard wraps every call. Throttling (HTTP 429, `ThrottlingException`) is retried for
//! every call, after the backoff or the service's `Retry-After`, whichever is longer; other
//! transient failures (timeouts, connection errors, 5xx) are retried only for idempotent calls,
//! so that a key creation whose answer was lost is not repeated. When the attempts are spent the
//! call fails with [`Error::Unavailable`] and counts as one failure of the provider; after
//! [`RemoteOptions::breaker_failures`] consecutive failures the breaker opens and every call
//! fails at once with [`Error::Unavailable`], without reaching the service, until
//! [`RemoteOptions::breaker_cooldown_millis`] have passed; then one trial call is let through,
//! and its success closes the breaker. Answers about the request itself (an unknown key, a
//! refused algorithm, refused credentials) are returned as they are, without retries, and do not
//! count against the service. No call ever falls back to another provider.

// The DER conversions serve AWS, CSC and Vault (Azure answers JOSE forms); the bearer token
// cache serves CSC (Azure's tokens are the Azure SDK's).
#![cfg_attr(
    not(all(
        any(feature = "aws", feature = "csc", feature = "vault"),
        feature = "csc"
    )),
    allow(dead_code, unused_imports)
)]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Sequence};
use edk_core::jose::Jwk;
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use edk_core::{ErrorKind, HasKind};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::Error;
use crate::error::BoxError;
use crate::provider::ProviderId;

/// Timeouts, retries and the circuit breaker of a remote provider. Every field has a default;
/// in configuration files this is the provider's `remote` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteOptions {
    /// How long one attempt may take, in milliseconds. Default 5000.
    pub timeout_millis: u64,
    /// How long connecting may take, in milliseconds. Default 2000.
    pub connect_timeout_millis: u64,
    /// Attempts per call, the first included (at least 1). Default 4.
    pub max_attempts: u32,
    /// The backoff before the first retry, in milliseconds; it doubles with each retry, and a
    /// random part of it (full jitter) is waited. Default 50.
    pub initial_backoff_millis: u64,
    /// The longest backoff, in milliseconds (also the cap on a service's `Retry-After`).
    /// Default 2000.
    pub max_backoff_millis: u64,
    /// Consecutive failed calls that open the circuit breaker (at least 1). Default 5.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one trial call through, in
    /// milliseconds. Default 10000.
    pub breaker_cooldown_millis: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout_millis: 5_000,
            connect_timeout_millis: 2_000,
            max_attempts: 4,
            initial_backoff_millis: 50,
            max_backoff_millis: 2_000,
            breaker_failures: 5,
            breaker_cooldown_millis: 10_000,
        }
    }
}

impl RemoteOptions {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero attempts, a zero breaker threshold or a zero timeout.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_attempts == 0 {
            return Err(Error::InvalidConfig {
                field: "remote.max_attempts",
                reason: "must be at least 1",
            });
        }
        if self.breaker_failures == 0 {
            return Err(Error::InvalidConfig {
                field: "remote.breaker_failures",
                reason: "must be at least 1",
            });
        }
        if self.timeout_millis == 0 || self.connect_timeout_millis == 0 {
            return Err(Error::InvalidConfig {
                field: "remote.timeout_millis",
                reason: "must be more than 0",
            });
        }
        Ok(())
    }

    /// The per-attempt timeout.
    #[must_use]
    pub const fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_millis)
    }

    /// The connect timeout.
    #[must_use]
    pub const fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_millis)
    }
}

/// Why one attempt failed, as the provider classifies the service's answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The service is throttling (429, `ThrottlingException`): always retried.
    Throttled {
        /// What the service said.
        source: BoxError,
        /// The service's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The service could not be reached or failed (timeout, connection, 5xx): retried when
    /// the call is idempotent.
    Transient(BoxError),
    /// An answer about the request itself: returned as is.
    Final(Error),
}

/// Whether a call may be repeated after an attempt whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reading, signing, deleting: repeating is harmless.
    Idempotent,
    /// Creating: only throttled attempts (which the service did not carry out) are repeated.
    Once,
}

pub use super::{LATENCY_BUCKETS_MILLIS, RemoteMetrics};

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    throttles: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS_MILLIS.len() + 1],
    latency_micros: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Retries, timeouts, the circuit breaker and the metrics of one remote provider.
pub(crate) struct Guard {
    provider: ProviderId,
    options: RemoteOptions,
    breaker: Mutex<Breaker>,
    counters: Counters,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("provider", &self.provider)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Why the breaker refused a call.
#[derive(Debug, thiserror::Error)]
#[error("the circuit breaker is open after repeated failures")]
pub struct CircuitOpen;

/// The last failure of a call whose attempts are spent.
#[derive(Debug, thiserror::Error)]
#[error("{attempts} attempt(s) failed; the last: {last}")]
pub struct AttemptsExhausted {
    attempts: u32,
    #[source]
    last: BoxError,
}

impl Guard {
    pub(crate) fn new(provider: ProviderId, options: RemoteOptions) -> Self {
        Self {
            provider,
            options,
            breaker: Mutex::new(Breaker::default()),
            counters: Counters::default(),
        }
    }

    /// Runs `attempt` under the breaker, with timeouts and retries.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        if !self.admit() {
            self.count_error("circuit_open");
            return Err(Error::unavailable(&self.provider, CircuitOpen));
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.options.timeout(), attempt())
                .await
                .unwrap_or_else(|_| Err(Failure::Transient("the attempt timed out".into())));
            self.observe(started.elapsed());
            let (source, wait) = match outcome {
                Ok(value) => {
                    self.succeeded();
                    return Ok(value);
                }
                Err(Failure::Final(err)) => {
                    // The service answered: it is up.
                    self.succeeded();
                    self.count_error(kind_name(err.kind()));
                    return Err(err);
                }
                Err(Failure::Throttled {
                    source,
                    retry_after,
                }) => {
                    self.counters.throttles.fetch_add(1, Ordering::Relaxed);
                    let cap = Duration::from_millis(self.options.max_backoff_millis);
                    let wait = self
                        .backoff(attempts)
                        .max(retry_after.unwrap_or_default().min(cap));
                    (source, Some(wait))
                }
                Err(Failure::Transient(source)) => {
                    let wait =
                        (idempotency == Idempotency::Idempotent).then(|| self.backoff(attempts));
                    (source, wait)
                }
            };
            match wait {
                Some(wait) if attempts < self.options.max_attempts => {
                    tracing::debug!(provider = %self.provider, attempts, ?wait, error = %source, "retrying a remote key service call");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    self.failed();
                    self.count_error("unavailable");
                    tracing::warn!(provider = %self.provider, attempts, error = %source, "remote key service call failed");
                    return Err(Error::unavailable(
                        &self.provider,
                        AttemptsExhausted {
                            attempts,
                            last: source,
                        },
                    ));
                }
            }
        }
    }

    /// A snapshot of the metrics.
    pub(crate) fn metrics(&self) -> RemoteMetrics {
        let breaker_open = {
            let breaker = self.lock_breaker();
            breaker
                .open_until
                .is_some_and(|until| Instant::now() < until)
        };
        RemoteMetrics {
            calls: self.counters.calls.load(Ordering::Relaxed),
            attempts: self.counters.attempts.load(Ordering::Relaxed),
            throttles: self.counters.throttles.load(Ordering::Relaxed),
            errors: self
                .counters
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            latency_buckets: self
                .counters
                .latency
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
            latency_micros_sum: self.counters.latency_micros.load(Ordering::Relaxed),
            breaker_open,
        }
    }

    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admit(&self) -> bool {
        let mut breaker = self.lock_breaker();
        match breaker.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if breaker.probing => false,
            Some(_) => {
                breaker.probing = true;
                true
            }
        }
    }

    fn succeeded(&self) {
        let mut breaker = self.lock_breaker();
        *breaker = Breaker::default();
    }

    fn failed(&self) {
        let mut breaker = self.lock_breaker();
        breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
        if breaker.probing || breaker.consecutive_failures >= self.options.breaker_failures {
            breaker.open_until =
                Some(Instant::now() + Duration::from_millis(self.options.breaker_cooldown_millis));
            breaker.probing = false;
            tracing::warn!(provider = %self.provider, "circuit breaker opened");
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(20);
        let ceiling = self
            .options
            .initial_backoff_millis
            .saturating_mul(1 << exponent)
            .min(self.options.max_backoff_millis);
        let mut random = [0_u8; 8];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            return Duration::from_millis(ceiling);
        }
        // Full jitter: a uniform wait in [ceiling / 2, ceiling].
        let half = ceiling / 2;
        let spread = ceiling - half + 1;
        Duration::from_millis(half + u64::from_le_bytes(random) % spread)
    }

    fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.counters
            .latency_micros
            .fetch_add(micros, Ordering::Relaxed);
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_MILLIS
            .iter()
            .position(|bound| millis <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MILLIS.len());
        if let Some(counter) = self.counters.latency.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_error(&self, kind: &str) {
        let mut errors = self
            .counters
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *errors.entry(kind.to_owned()).or_default() += 1;
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Unauthenticated => "unauthenticated",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::Conflict => "conflict",
        _ => "internal",
    }
}

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// `RSAPublicKey` (RFC 8017 §A.1.1).
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// `Ecdsa-Sig-Value` (RFC 5758 §3.2).
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// The public JWK of a DER SubjectPublicKeyInfo: EC P-256, P-384, secp256k1, Ed25519 or RSA.
pub(crate) fn jwk_from_spki(der: &[u8]) -> Result<Jwk, Error> {
    const BAD: Error = Error::InvalidKey {
        reason: "the service returned an unusable public key",
    };
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| BAD)?;
    let key = spki.subject_public_key.as_bytes().ok_or(BAD)?;
    let params = match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY => {
            let curve: ObjectIdentifier = spki
                .algorithm
                .parameters
                .ok_or(BAD)?
                .decode_as()
                .map_err(|_| BAD)?;
            let crv = match curve {
                SECP256R1 => EcCurve::P256,
                SECP384R1 => EcCurve::P384,
                SECP256K1 => EcCurve::Secp256k1,
                _ => return Err(BAD),
            };
            let len = crv.coordinate_len();
            let Some((&0x04, point)) = key.split_first() else {
                return Err(BAD);
            };
            if point.len() != 2 * len {
                return Err(BAD);
            }
            let (x, y) = point.split_at(len);
            PublicParams::Ec {
                crv,
                x: x.to_vec(),
                y: y.to_vec(),
            }
        }
        ID_ED25519 => PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            x: key.to_vec(),
        },
        RSA_ENCRYPTION => {
            let rsa = RsaPublicKey::from_der(key).map_err(|_| BAD)?;
            PublicParams::Rsa {
                n: rsa.modulus.as_bytes().to_vec(),
                e: rsa.public_exponent.as_bytes().to_vec(),
            }
        }
        _ => return Err(BAD),
    };
    Jwk::from_parts(params, None).map_err(|_| BAD)
}

/// The JOSE form (`r||s`, each `half` bytes) of a DER `Ecdsa-Sig-Value`.
pub(crate) fn ecdsa_der_to_jose(der: &[u8], half: usize) -> Option<Vec<u8>> {
    let sig = EcdsaSig::from_der(der).ok()?;
    let mut out = vec![0_u8; 2 * half];
    for (value, slot) in [sig.r, sig.s].iter().zip(out.chunks_mut(half)) {
        let bytes = value.as_bytes();
        if bytes.len() > half {
            return None;
        }
        let start = half - bytes.len();
        slot.get_mut(start..)?.copy_from_slice(bytes);
    }
    Some(out)
}

/// A secret given inline or in a file (trimmed), exactly one of the two.
pub(crate) fn secret(
    value: Option<SecretString>,
    file: Option<PathBuf>,
    field: &'static str,
) -> Result<SecretString, Error> {
    match (value, file) {
        (Some(value), None) => Ok(value),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| Error::SecretFile { field, source })?;
            Ok(SecretString::from(text.trim().to_owned()))
        }
        _ => Err(Error::InvalidConfig {
            field,
            reason: "give exactly one of the value and its file",
        }),
    }
}

/// An OAuth 2 token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: SecretString,
    /// A number from most servers, a string from Azure's instance metadata endpoint.
    #[serde(default)]
    pub(crate) expires_in: Value,
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// A bearer token, cached until nine tenths of its lifetime have passed, and whether the
/// service refused it since (then the caller fetches a new one once).
#[derive(Default)]
pub(crate) struct BearerCache {
    cached: tokio::sync::Mutex<Option<CachedToken>>,
    refused: AtomicBool,
}

impl BearerCache {
    /// The cached token, or a new one from `fetch` when there is none, it is due, or `renew`.
    /// Concurrent callers wait for one fetch.
    pub(crate) async fn get<F, Fut>(&self, renew: bool, fetch: F) -> Result<SecretString, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenAnswer, Error>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref()
            && !renew
            && Instant::now() < current.refresh_at
        {
            return Ok(current.token.clone());
        }
        let answer = fetch().await?;
        let lifetime = match &answer.expires_in {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
        .unwrap_or(300);
        *cached = Some(CachedToken {
            token: answer.access_token.clone(),
            refresh_at: Instant::now() + Duration::from_secs(lifetime.saturating_mul(9) / 10),
        });
        Ok(answer.access_token)
    }

    /// Runs `call` with the token, fetching a new one once when the service refused it (the
    /// token may have been revoked or have expired early) and the call failed for that.
    pub(crate) async fn call<T, G, GF, C, CF>(&self, fetch: G, call: C) -> Result<T, Error>
    where
        G: Fn() -> GF,
        GF: Future<Output = Result<TokenAnswer, Error>>,
        C: Fn(SecretString) -> CF,
        CF: Future<Output = Result<T, Error>>,
    {
        let mut renewed = false;
        loop {
            let token = self.get(renewed, &fetch).await?;
            match call(token).await {
                Err(Error::Unavailable { .. }) if !renewed && self.take_refused() => {
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    /// Notes that the service refused the token (HTTP 401).
    pub(crate) fn refuse(&self) {
        self.refused.store(true, Ordering::SeqCst);
    }

    /// Whether the service refused the token since the last look.
    fn take_refused(&self) -> bool {
        self.refused.swap(false, Ordering::SeqCst)
    }
}

/// A key service's HTTP answer that is not a success, for the provider to classify.
#[cfg(any(feature = "csc", feature = "vault"))]
pub(crate) struct ErrorAnswer {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The body as JSON (`null` when it is not JSON).
    pub(crate) body: Value,
    /// The answer's `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
}

#[cfg(any(feature = "csc", feature = "vault"))]
impl ErrorAnswer {
    /// The classification the HTTP key services share, `detail` saying what the service
    /// answered: 429 is throttling (honouring `Retry-After`), 401 and 403 refused credentials
    /// (`Unavailable`), any other 4xx an answer about the request (`Internal`), the rest
    /// (5xx) transient. Answers a provider reads otherwise (404, a service's own codes) it
    /// classifies before calling this.
    pub(crate) fn failure(self, provider: &ProviderId, detail: String) -> Failure {
        match self.status {
            429 => Failure::Throttled {
                source: detail.into(),
                retry_after: self.retry_after,
            },
            401 | 403 => Failure::Final(Error::unavailable(provider, detail)),
            400..=499 => Failure::Final(Error::internal(provider, detail)),
            _ => Failure::Transient(detail.into()),
        }
    }
}

/// Sends `request` and reads the JSON answer of `service` (a name for messages): a success's
/// body (an empty one read as `null`) as `T`, any other answer through `classify`. A request
/// that cannot be sent, or an answer that cannot be read, is transient; a success whose body
/// is not a `T` is `Unavailable`.
#[cfg(any(feature = "csc", feature = "vault"))]
pub(crate) async fn send_json<T, F>(
    provider: &ProviderId,
    service: &str,
    request: reqwest::RequestBuilder,
    classify: F,
) -> Result<T, Failure>
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(ErrorAnswer) -> Failure,
{
    let response = request
        .send()
        .await
        .map_err(|err| Failure::Transient(err.into()))?;
    decode_json(provider, service, response, classify).await
}

/// Reads the JSON answer of `service`, as [`send_json`] does.
#[cfg(any(feature = "csc", feature = "vault"))]
pub(crate) async fn decode_json<T, F>(
    provider: &ProviderId,
    service: &str,
    response: reqwest::Response,
    classify: F,
) -> Result<T, Failure>
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(ErrorAnswer) -> Failure,
{
    let status = response.status().as_u16();
    let retry_after = retry_after(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok()),
    );
    let bytes = response
        .bytes()
        .await
        .map_err(|err| Failure::Transient(err.into()))?;
    if (200..300).contains(&status) {
        let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        return serde_json::from_slice(text).map_err(|err| {
            Failure::Final(Error::unavailable(
                provider,
                format!("{service} answered an unexpected body: {err}"),
            ))
        });
    }
    Err(classify(ErrorAnswer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or_default(),
        retry_after,
    }))
}

/// A call to a service that takes OAuth 2 bearer tokens: `request` builds the request with the
/// token, `decode` reads the answer, under `guard` (timeouts, retries, the breaker), with the
/// token from `bearer`, fetched by `fetch` when none is cached and once more when the service
/// refused it.
#[cfg(feature = "csc")]
pub(crate) async fn bearer_call<T, G, GF, R, D, DF>(
    bearer: &BearerCache,
    guard: &Guard,
    idempotency: Idempotency,
    fetch: G,
    request: R,
    decode: D,
) -> Result<T, Error>
where
    G: Fn() -> GF,
    GF: Future<Output = Result<TokenAnswer, Error>>,
    R: Fn(&str) -> reqwest::RequestBuilder,
    D: Fn(reqwest::Response) -> DF,
    DF: Future<Output = Result<T, Failure>>,
{
    use secrecy::ExposeSecret as _;

    bearer
        .call(fetch, |token| {
            let (request, decode) = (&request, &decode);
            guard.call(idempotency, move || {
                let token = token.clone();
                async move {
                    let response = request(token.expose_secret())
                        .send()
                        .await
                        .map_err(|err| Failure::Transient(err.into()))?;
                    decode(response).await
                }
            })
        })
        .await
}

/// Asks a token endpoint for a bearer token with `request`, read by `decode`, under `guard`;
/// any failure, the endpoint refusing the client included, is `Unavailable`: the service
/// cannot be used without a token.
#[cfg(feature = "csc")]
pub(crate) async fn fetch_token<R, D, DF>(
    provider: &ProviderId,
    guard: &Guard,
    request: R,
    decode: D,
) -> Result<TokenAnswer, Error>
where
    R: Fn() -> reqwest::RequestBuilder,
    D: Fn(reqwest::Response) -> DF,
    DF: Future<Output = Result<TokenAnswer, Failure>>,
{
    guard
        .call(Idempotency::Idempotent, || async {
            let response = request()
                .send()
                .await
                .map_err(|err| Failure::Transient(err.into()))?;
            decode(response).await
        })
        .await
        .map_err(|err| match err {
            Error::Unavailable { .. } => err,
            other => Error::unavailable(provider, other),
        })
}

/// The `Retry-After` of an HTTP answer, in whole seconds.
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicU32;

    use super::*;

    fn options() -> RemoteOptions {
        RemoteOptions {
            initial_backoff_millis: 1,
            max_backoff_millis: 4,
            max_attempts: 3,
            breaker_failures: 2,
            breaker_cooldown_millis: 200,
            ..RemoteOptions::default()
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_then_unavailable_and_the_breaker_opens() {
        let guard = Guard::new(ProviderId::new("remote").unwrap(), options());
        let tries = AtomicU32::new(0);
        let throttled = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::Throttled {
                source: "slow down".into(),
                retry_after: None,
            })
        };
        let err = guard.call(Idempotency::Once, throttled).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        guard.call(Idempotency::Once, throttled).await.unwrap_err();
        assert_eq!(tries.load(Ordering::SeqCst), 6);
        // Open: refused without an attempt.
        let err = guard.call(Idempotency::Once, throttled).await.unwrap_err();
        assert_eq!(tries.load(Ordering::SeqCst), 6);
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "the circuit breaker is open after repeated failures"
        );
        let metrics = guard.metrics();
        assert_eq!(metrics.calls, 3);
        assert_eq!(metrics.attempts, 6);
        assert_eq!(metrics.throttles, 6);
        assert!(metrics.breaker_open);
        assert_eq!(metrics.errors.get("circuit_open"), Some(&1));
        assert_eq!(metrics.errors.get("unavailable"), Some(&2));
        // After the cooldown one trial call passes and closes the breaker.
        tokio::time::sleep(Duration::from_millis(250)).await;
        guard
            .call(Idempotency::Once, || async { Ok::<_, Failure>(7) })
            .await
            .unwrap();
        assert!(!guard.metrics().breaker_open);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_only_when_idempotent() {
        let guard = Guard::new(ProviderId::new("remote").unwrap(), options());
        let tries = AtomicU32::new(0);
        let flaky = || async {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Failure::Transient("connection reset".into()))
            } else {
                Ok(1)
            }
        };
        assert_eq!(guard.call(Idempotency::Idempotent, flaky).await.unwrap(), 1);
        assert_eq!(tries.load(Ordering::SeqCst), 2);
        tries.store(0, Ordering::SeqCst);
        let err = guard.call(Idempotency::Once, flaky).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn final_answers_are_not_retried_and_keep_the_breaker_closed() {
        let guard = Guard::new(ProviderId::new("remote").unwrap(), options());
        let tries = AtomicU32::new(0);
        for _ in 0..4 {
            let err = guard
                .call(Idempotency::Idempotent, || async {
                    tries.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Failure::Final(Error::not_found(
                        &ProviderId::new("remote").unwrap(),
                    )))
                })
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        let metrics = guard.metrics();
        assert!(!metrics.breaker_open);
        assert_eq!(metrics.errors.get("not_found"), Some(&4));
    }

    #[tokio::test]
    async fn slow_attempts_time_out() {
        let guard = Guard::new(
            ProviderId::new("remote").unwrap(),
            RemoteOptions {
                timeout_millis: 20,
                max_attempts: 1,
                ..options()
            },
        );
        let started = Instant::now();
        let err = guard
            .call(Idempotency::Idempotent, || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, Failure>(())
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(1));
        let metrics = guard.metrics();
        assert!(metrics.latency_micros_sum >= 20_000, "{metrics:?}");
        assert_eq!(metrics.latency_buckets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn ecdsa_signatures_become_fixed_length() {
        // r = 0x01, s = 0x00ff (a leading zero for the sign bit).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0xff];
        let jose = ecdsa_der_to_jose(&der, 4).unwrap();
        assert_eq!(jose, [0, 0, 0, 1, 0, 0, 0, 0xff]);
        assert!(ecdsa_der_to_jose(&der[..5], 4).is_none());
    }

    #[test]
    fn spki_of_generated_keys_round_trips() {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
            KeyPair as _,
        };
        use edk_core::jose::{Algorithm, SigningKey};
        for (alg, signing) in [
            (Algorithm::Es256, &ECDSA_P256_SHA256_FIXED_SIGNING),
            (Algorithm::Es384, &ECDSA_P384_SHA384_FIXED_SIGNING),
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(signing, &key.to_pkcs8_der().unwrap()).unwrap();
            let spki = pair.public_key().as_der().unwrap();
            assert_eq!(
                jwk_from_spki(spki.as_ref()).unwrap().thumbprint(),
                key.public_jwk().thumbprint()
            );
        }
        assert!(jwk_from_spki(b"\x30\x00").is_err());
    }
}
