//! Fetching, verifying and caching Status List Tokens for relying parties
//! (Status List §8.2, §8.3, §13.7).
//!
//! edk-core does no I/O: a [`StatusListFetcher`] brings the token's bytes and content type
//! (the HTTP one lives in a crate that has an HTTP client), and [`StatusListCache`] verifies
//! them in either form, keeps the verified list per URI for as long as `ttl` and `exp` allow,
//! and answers a Referenced Token's `status_list` reference.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::cwt::{CWT_MEDIA_TYPE, StatusListCwt};
use super::token::{MEDIA_TYPE, StatusListPolicy, StatusListToken};
use super::{StatusList, StatusListError, StatusListReference, StatusType};
use crate::clock::Clock;
use crate::error::{ErrorKind, HasKind};
use crate::jose::{JoseError, KeyResolver};

/// The two forms of a Status List Token (Status List §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusListFormat {
    /// A CWT signed as a `COSE_Sign1_Tagged`, `application/statuslist+cwt` (§5.2).
    Cwt,
    /// A compact JWS, `application/statuslist+jwt` (§5.1).
    Jwt,
}

impl StatusListFormat {
    /// The media type of the form, for `Accept` and `Content-Type` (Status List §8.1, §8.2).
    #[must_use]
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Cwt => CWT_MEDIA_TYPE,
            Self::Jwt => MEDIA_TYPE,
        }
    }

    /// The form a `Content-Type` names, ignoring parameters and case; `None` for any other
    /// media type.
    #[must_use]
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        [Self::Cwt, Self::Jwt]
            .into_iter()
            .find(|format| essence.eq_ignore_ascii_case(format.media_type()))
    }

    /// The form a token body looks like: CBOR tag 18 (`COSE_Sign1_Tagged`) starts with byte
    /// `0xd2`, which no compact JWS does.
    #[must_use]
    pub fn of_body(body: &[u8]) -> Self {
        if body.first() == Some(&0xd2) {
            Self::Cwt
        } else {
            Self::Jwt
        }
    }
}

/// A fetched Status List Token: the response body and its `Content-Type`, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchedToken {
    /// The body: a compact JWS or the binary CWT.
    pub body: Vec<u8>,
    /// The `Content-Type`, which chooses the form; without a known one the body decides.
    pub content_type: Option<String>,
}

impl FetchedToken {
    /// A fetched body with its content type.
    #[must_use]
    pub const fn new(body: Vec<u8>, content_type: Option<String>) -> Self {
        Self { body, content_type }
    }

    /// A Status List Token in JWT form, served as `application/statuslist+jwt`.
    #[must_use]
    pub fn jwt(token: &str) -> Self {
        Self::new(token.as_bytes().to_vec(), Some(MEDIA_TYPE.to_owned()))
    }

    /// A Status List Token in CWT form, served as `application/statuslist+cwt`.
    #[must_use]
    pub fn cwt(token: Vec<u8>) -> Self {
        Self::new(token, Some(CWT_MEDIA_TYPE.to_owned()))
    }
}

/// The error a [`StatusListFetcher`] returns: a kind and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{kind} while fetching")]
pub struct FetchError {
    kind: ErrorKind,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl FetchError {
    /// A fetch error of `kind` caused by `source`.
    pub fn new(kind: ErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// A fetch error of `kind` without further detail.
    #[must_use]
    pub const fn of_kind(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }
}

impl HasKind for FetchError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Fetches the Status List Token a Referenced Token points to (Status List §8.1).
///
/// An HTTP implementation sends `GET uri` with an `Accept` naming both media types, follows
/// a bounded number of redirects, bounds the body by the policy's token size limit and the
/// time spent, and returns the body with the response's `Content-Type`.
#[async_trait]
pub trait StatusListFetcher: fmt::Debug + Send + Sync {
    /// Fetches the token published at `uri`.
    ///
    /// # Errors
    /// [`FetchError`] when the token cannot be had; its kind says whether it is missing
    /// ([`ErrorKind::NotFound`]) or the source is failing ([`ErrorKind::Unavailable`]).
    async fn fetch(&self, uri: &str) -> Result<FetchedToken, FetchError>;
}

/// A [`StatusListFetcher`] over tokens held in memory, which counts the fetches of each URI:
/// for tests, and for relying parties that receive Status List Tokens out of band.
#[derive(Debug, Default)]
pub struct InMemoryFetcher {
    tokens: Mutex<HashMap<String, FetchedToken>>,
    fetches: Mutex<HashMap<String, usize>>,
}

impl InMemoryFetcher {
    /// A fetcher without tokens.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `token` at `uri`, replacing what was there.
    pub fn insert(&self, uri: impl Into<String>, token: FetchedToken) {
        lock(&self.tokens).insert(uri.into(), token);
    }

    /// Withdraws the token at `uri`: fetching it fails with [`ErrorKind::NotFound`].
    pub fn remove(&self, uri: &str) {
        lock(&self.tokens).remove(uri);
    }

    /// How many times `uri` was fetched.
    #[must_use]
    pub fn fetches(&self, uri: &str) -> usize {
        lock(&self.fetches).get(uri).copied().unwrap_or(0)
    }
}

#[async_trait]
impl StatusListFetcher for InMemoryFetcher {
    async fn fetch(&self, uri: &str) -> Result<FetchedToken, FetchError> {
        *lock(&self.fetches).entry(uri.to_owned()).or_default() += 1;
        lock(&self.tokens)
            .get(uri)
            .cloned()
            .ok_or(FetchError::of_kind(ErrorKind::NotFound))
    }
}

/// A verified status list as a [`StatusListCache`] keeps it.
#[derive(Debug)]
pub struct CachedStatusList {
    format: StatusListFormat,
    uri: String,
    iat: i64,
    exp: Option<i64>,
    ttl: Option<u64>,
    fetched_at: i64,
    refresh_at: i64,
    list: StatusList,
}

impl CachedStatusList {
    /// The form of the token it came from.
    #[must_use]
    pub const fn format(&self) -> StatusListFormat {
        self.format
    }

    /// The URI it was fetched from, equal to the token's `sub`.
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The token's `iat`.
    #[must_use]
    pub const fn iat(&self) -> i64 {
        self.iat
    }

    /// The token's `exp`, if any.
    #[must_use]
    pub const fn exp(&self) -> Option<i64> {
        self.exp
    }

    /// The token's `ttl`, if any.
    #[must_use]
    pub const fn ttl(&self) -> Option<u64> {
        self.ttl
    }

    /// When the token was fetched, in seconds since the epoch.
    #[must_use]
    pub const fn fetched_at(&self) -> i64 {
        self.fetched_at
    }

    /// From when the cache fetches the token again instead of serving this copy: never later
    /// than `exp`.
    #[must_use]
    pub const fn refresh_at(&self) -> i64 {
        self.refresh_at
    }

    /// The decompressed list.
    #[must_use]
    pub const fn list(&self) -> &StatusList {
        &self.list
    }

    /// The status a Referenced Token's `status_list` reference points to
    /// (Status List §8.3 steps 4a, 6 and 7).
    ///
    /// # Errors
    /// [`StatusListError::SubjectMismatch`] when the reference names another list, and
    /// [`StatusListError::IndexOutOfRange`] when its index is past the end of this one.
    pub fn status(&self, reference: &StatusListReference) -> Result<StatusType, StatusListError> {
        if reference.uri != self.uri {
            return Err(StatusListError::SubjectMismatch);
        }
        self.list.status(reference.idx)
    }

    const fn is_fresh(&self, now: i64) -> bool {
        now < self.refresh_at
    }
}

/// A relying party's cache of verified Status List Tokens, keyed by URI
/// (Status List §8.3, §13.7).
///
/// - A token is fetched through the [`StatusListFetcher`], verified in the form its content
///   type names (or, without a known one, the form its bytes have) with a key from the
///   [`KeyResolver`] under the [`StatusListPolicy`], and its `sub` must be the URI fetched.
/// - A verified list is served until `fetched_at + ttl`, never at or after `exp` (whatever
///   the policy's leeway); then it is dropped and fetched again, and a token fetched at or
///   after its `exp` is refused with [`JoseError::Expired`]. `ttl` is clamped to [`StatusListCache::with_ttl_bounds`]
///   (a token without `ttl` is kept for the upper bound, or until `exp`), so a hostile
///   issuer can neither make relying parties hammer its endpoint nor be trusted forever.
/// - Time comes from the injected [`Clock`].
/// - At most [`StatusListCache::with_capacity`] URIs and
///   [`StatusListCache::with_max_bytes`] decompressed bytes are kept; the lists due for
///   refresh soonest are evicted first.
/// - Concurrent requests for a URI being fetched wait for that one fetch. A failed fetch or
///   verification is not cached: the next request fetches again.
pub struct StatusListCache {
    fetcher: Arc<dyn StatusListFetcher>,
    resolver: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
    policy: StatusListPolicy,
    capacity: usize,
    max_bytes: usize,
    min_ttl: u64,
    max_ttl: u64,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl StatusListCache {
    /// A cache fetching with `fetcher`, verifying with keys from `resolver` under the default
    /// [`StatusListPolicy`], reading the time from `clock`; it keeps up to 1,024 lists and
    /// 64 MiB, and honours `ttl` between 0 seconds and one day.
    #[must_use]
    pub fn new(
        fetcher: Arc<dyn StatusListFetcher>,
        resolver: Arc<dyn KeyResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            fetcher,
            resolver,
            clock,
            policy: StatusListPolicy::default(),
            capacity: 1_024,
            max_bytes: 64 * 1024 * 1024,
            min_ttl: 0,
            max_ttl: 86_400,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cache verifying under `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: StatusListPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The cache keeping at most `lists` URIs (at least one).
    #[must_use]
    pub fn with_capacity(mut self, lists: usize) -> Self {
        self.capacity = lists.max(1);
        self
    }

    /// The cache keeping at most `bytes` of decompressed lists; the most recent list is kept
    /// even if it alone is larger.
    #[must_use]
    pub const fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The cache keeping a list for at least `min` and at most `max` seconds after fetching
    /// it, whatever its `ttl` says, and never at or after its `exp`.
    #[must_use]
    pub fn with_ttl_bounds(mut self, min: u64, max: u64) -> Self {
        self.min_ttl = min.min(max);
        self.max_ttl = max;
        self
    }

    /// The status a Referenced Token's `status_list` reference points to, from the cached
    /// list or a freshly fetched one (Status List §8.3 steps 2–7).
    ///
    /// # Errors
    /// [`StatusListError::Fetch`] when the token cannot be fetched, every verification error
    /// of [`StatusListToken::verify`] and [`StatusListCwt::verify`], and
    /// [`StatusListError::IndexOutOfRange`] when the index is past the end of the list.
    pub async fn status(
        &self,
        reference: &StatusListReference,
    ) -> Result<StatusType, StatusListError> {
        self.list(&reference.uri).await?.status(reference)
    }

    /// The verified list published at `uri`, from the cache while it is fresh, fetched and
    /// verified otherwise.
    ///
    /// # Errors
    /// As [`StatusListCache::status`].
    pub async fn list(&self, uri: &str) -> Result<Arc<CachedStatusList>, StatusListError> {
        let slot = self.slot(uri);
        if let Some(cached) = slot.fresh(self.clock.unix_seconds()) {
            return Ok(cached);
        }
        let _fetching = slot.fetching.lock().await;
        if let Some(cached) = slot.fresh(self.clock.unix_seconds()) {
            return Ok(cached);
        }
        slot.set(None);
        let fetched = self
            .fetcher
            .fetch(uri)
            .await
            .map_err(|source| StatusListError::Fetch {
                uri: uri.to_owned(),
                source,
            })?;
        let cached = Arc::new(self.verify(uri, &fetched).await?);
        slot.set(Some(Arc::clone(&cached)));
        self.trim(uri);
        Ok(cached)
    }

    /// Forgets the list of `uri`, so that the next request fetches it.
    pub fn invalidate(&self, uri: &str) {
        lock(&self.slots).remove(uri);
    }

    /// How many lists the cache holds, fresh or not.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.slots)
            .values()
            .filter(|slot| lock(&slot.entry).is_some())
            .count()
    }

    /// Whether the cache holds no list.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn verify(
        &self,
        uri: &str,
        fetched: &FetchedToken,
    ) -> Result<CachedStatusList, StatusListError> {
        let format = fetched
            .content_type
            .as_deref()
            .and_then(StatusListFormat::from_content_type)
            .unwrap_or_else(|| StatusListFormat::of_body(&fetched.body));
        let now = self.clock.unix_seconds();
        let (iat, exp, ttl, list) = match format {
            StatusListFormat::Jwt => {
                let token = std::str::from_utf8(&fetched.body).map_err(|_| {
                    StatusListError::Token(JoseError::Malformed {
                        what: "JWS",
                        reason: "the body is not UTF-8",
                    })
                })?;
                let verified = StatusListToken::verify_with(
                    token.trim_ascii(),
                    self.resolver.as_ref(),
                    uri,
                    &self.policy,
                    now,
                )
                .await?;
                let claims = verified.claims();
                (claims.iat, claims.exp, claims.ttl, verified.into_list())
            }
            StatusListFormat::Cwt => {
                let verified = StatusListCwt::verify_with(
                    &fetched.body,
                    self.resolver.as_ref(),
                    uri,
                    &self.policy,
                    now,
                )
                .await?;
                let claims = verified.claims();
                (claims.iat, claims.exp, claims.ttl, verified.into_list())
            }
        };
        if exp.is_some_and(|exp| now >= exp) {
            return Err(StatusListError::Token(JoseError::Expired));
        }
        let keep = ttl
            .unwrap_or(self.max_ttl)
            .clamp(self.min_ttl, self.max_ttl);
        let by_ttl = now.saturating_add(i64::try_from(keep).unwrap_or(i64::MAX));
        Ok(CachedStatusList {
            format,
            uri: uri.to_owned(),
            iat,
            exp,
            ttl,
            fetched_at: now,
            refresh_at: exp.map_or(by_ttl, |exp| by_ttl.min(exp)),
            list,
        })
    }

    /// The slot of `uri`, made room for if it is new.
    fn slot(&self, uri: &str) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(uri) {
            return Arc::clone(slot);
        }
        while slots.len() >= self.capacity {
            if !evict_one(&mut slots, uri) {
                break;
            }
        }
        let slot = Arc::new(Slot::default());
        slots.insert(uri.to_owned(), Arc::clone(&slot));
        slot
    }

    /// Evicts lists other than `keep` while the cache holds more than its byte budget.
    fn trim(&self, keep: &str) {
        let mut slots = lock(&self.slots);
        while slots.values().map(|slot| slot.bytes()).sum::<usize>() > self.max_bytes {
            if !evict_one(&mut slots, keep) {
                break;
            }
        }
    }
}

impl fmt::Debug for StatusListCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusListCache")
            .field("fetcher", &self.fetcher)
            .field("resolver", &self.resolver)
            .field("policy", &self.policy)
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("ttl_bounds", &(self.min_ttl, self.max_ttl))
            .field("uris", &lock(&self.slots).len())
            .finish_non_exhaustive()
    }
}

/// One URI's place in the cache: its verified list, if any, and the lock that makes
/// concurrent requests share one fetch.
#[derive(Debug, Default)]
struct Slot {
    fetching: futures::lock::Mutex<()>,
    entry: Mutex<Option<Arc<CachedStatusList>>>,
}

impl Slot {
    fn fresh(&self, now: i64) -> Option<Arc<CachedStatusList>> {
        lock(&self.entry)
            .as_ref()
            .filter(|cached| cached.is_fresh(now))
            .cloned()
    }

    fn set(&self, cached: Option<Arc<CachedStatusList>>) {
        *lock(&self.entry) = cached;
    }

    /// When the slot's list is due for refresh; an empty slot goes first.
    fn refresh_at(&self) -> i64 {
        lock(&self.entry)
            .as_ref()
            .map_or(i64::MIN, |cached| cached.refresh_at)
    }

    fn bytes(&self) -> usize {
        lock(&self.entry)
            .as_ref()
            .map_or(0, |cached| cached.list.as_bytes().len())
    }
}

/// Removes the slot other than `keep` that is due for refresh soonest; `false` if there is
/// none.
fn evict_one(slots: &mut HashMap<String, Arc<Slot>>, keep: &str) -> bool {
    let victim = slots
        .iter()
        .filter(|(uri, _)| uri.as_str() != keep)
        .min_by_key(|(_, slot)| slot.refresh_at())
        .map(|(uri, _)| uri.clone());
    victim.is_some_and(|uri| slots.remove(&uri).is_some())
}

/// Locks `mutex`; a panic elsewhere while it was held leaves data that is still consistent
/// (every critical section is a single read or write), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_choose_the_form_and_bodies_decide_otherwise() {
        assert_eq!(
            StatusListFormat::from_content_type("application/statuslist+jwt"),
            Some(StatusListFormat::Jwt)
        );
        assert_eq!(
            StatusListFormat::from_content_type("Application/StatusList+CWT; charset=binary"),
            Some(StatusListFormat::Cwt)
        );
        assert_eq!(
            StatusListFormat::from_content_type("application/json"),
            None
        );
        assert_eq!(
            StatusListFormat::of_body(&[0xd2, 0x84]),
            StatusListFormat::Cwt
        );
        assert_eq!(StatusListFormat::of_body(b"eyJh"), StatusListFormat::Jwt);
        assert_eq!(StatusListFormat::of_body(b""), StatusListFormat::Jwt);
    }

    #[tokio::test]
    async fn in_memory_fetcher_counts_fetches_and_misses_are_not_found() {
        let fetcher = InMemoryFetcher::new();
        fetcher.insert("https://e.example/1", FetchedToken::jwt("a.b.c"));
        let fetched = fetcher.fetch("https://e.example/1").await.unwrap();
        assert_eq!(fetched.body, b"a.b.c");
        assert_eq!(fetched.content_type.as_deref(), Some(MEDIA_TYPE));
        fetcher.remove("https://e.example/1");
        let missing = fetcher.fetch("https://e.example/1").await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(fetcher.fetches("https://e.example/1"), 2);
        assert_eq!(fetcher.fetches("https://e.example/2"), 0);
    }
}
