//! Token Status List cache: tokens of either form fetched once per URI, served within `ttl`,
//! fetched again after it, never served at or after `exp`, and bounded.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use edk_core::ErrorKind;
use edk_core::FixedClock;
use edk_core::HasKind as _;
use edk_core::jose::{Algorithm, Header, JoseError, JwksResolver, SigningKey};
use edk_core::status_list::{
    Bits, FetchError, FetchedToken, InMemoryFetcher, StatusList, StatusListCache, StatusListCwt,
    StatusListCwtClaims, StatusListError, StatusListFetcher, StatusListFormat, StatusListReference,
    StatusListToken, StatusListTokenClaims, StatusType,
};
use futures::channel::oneshot;
use futures::future::{FutureExt as _, Shared};

const URI: &str = "https://issuer.example/statuslists/1";
const T0: i64 = 1_700_000_000;

struct Setup {
    key: SigningKey,
    fetcher: Arc<InMemoryFetcher>,
    clock: Arc<FixedClock>,
    cache: StatusListCache,
}

fn setup() -> Setup {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let fetcher = Arc::new(InMemoryFetcher::new());
    let clock = Arc::new(FixedClock::at_unix(T0));
    let cache = StatusListCache::new(
        Arc::clone(&fetcher) as Arc<dyn StatusListFetcher>,
        Arc::new(JwksResolver::from_keys([&key.public_jwk()])),
        Arc::clone(&clock) as Arc<dyn edk_core::Clock>,
    );
    Setup {
        key,
        fetcher,
        clock,
        cache,
    }
}

/// A 1-bit list of 1,024 statuses with `revoked` set.
fn list(revoked: &[usize]) -> StatusList {
    let mut list = StatusList::new(Bits::One, 1_024);
    for &index in revoked {
        list.set_status(index, StatusType::Invalid).unwrap();
    }
    list
}

async fn jwt(
    key: &SigningKey,
    uri: &str,
    iat: i64,
    exp: Option<i64>,
    ttl: Option<u64>,
    list: &StatusList,
) -> FetchedToken {
    let mut claims = StatusListTokenClaims::new(uri, iat, list).unwrap();
    claims.exp = exp;
    claims.ttl = ttl;
    let token = StatusListToken::issue(Header::new(key.algorithm()), &claims, key)
        .await
        .unwrap();
    FetchedToken::jwt(&token)
}

async fn cwt(
    key: &SigningKey,
    uri: &str,
    iat: i64,
    exp: Option<i64>,
    ttl: Option<u64>,
    list: &StatusList,
) -> FetchedToken {
    let mut claims = StatusListCwtClaims::new(uri, iat, list).unwrap();
    claims.exp = exp;
    claims.ttl = ttl;
    FetchedToken::cwt(StatusListCwt::issue(&claims, key).await.unwrap())
}

fn at(idx: usize) -> StatusListReference {
    StatusListReference::new(idx, URI).unwrap()
}

#[tokio::test]
async fn served_from_the_cache_within_ttl_and_fetched_again_after_it() {
    for form in [StatusListFormat::Jwt, StatusListFormat::Cwt] {
        let s = setup();
        let publish = |revoked: &'static [usize], iat| {
            let (key, fetcher) = (&s.key, &s.fetcher);
            async move {
                let token = match form {
                    StatusListFormat::Jwt => {
                        jwt(key, URI, iat, Some(iat + 3_600), Some(300), &list(revoked)).await
                    }
                    _ => cwt(key, URI, iat, Some(iat + 3_600), Some(300), &list(revoked)).await,
                };
                fetcher.insert(URI, token);
            }
        };
        publish(&[3], T0).await;
        assert_eq!(s.cache.status(&at(3)).await.unwrap(), StatusType::Invalid);
        assert_eq!(s.cache.status(&at(4)).await.unwrap(), StatusType::Valid);
        assert_eq!(s.fetcher.fetches(URI), 1, "{form:?}");
        let cached = s.cache.list(URI).await.unwrap();
        assert_eq!(cached.format(), form);
        assert_eq!(cached.fetched_at(), T0);
        assert_eq!(cached.refresh_at(), T0 + 300);
        assert_eq!(cached.ttl(), Some(300));

        // The issuer revokes index 4; the cached copy is served until its ttl passes.
        publish(&[3, 4], T0 + 100).await;
        s.clock.set_unix(T0 + 299);
        assert_eq!(s.cache.status(&at(4)).await.unwrap(), StatusType::Valid);
        assert_eq!(s.fetcher.fetches(URI), 1, "{form:?}");

        s.clock.set_unix(T0 + 300);
        assert_eq!(s.cache.status(&at(4)).await.unwrap(), StatusType::Invalid);
        assert_eq!(s.fetcher.fetches(URI), 2, "{form:?}");
        assert_eq!(s.cache.list(URI).await.unwrap().refresh_at(), T0 + 600);
        assert_eq!(s.cache.len(), 1);
    }
}

#[tokio::test]
async fn never_served_at_or_after_exp() {
    let s = setup();
    let token = jwt(&s.key, URI, T0, Some(T0 + 600), Some(3_600), &list(&[1])).await;
    s.fetcher.insert(URI, token);
    assert_eq!(s.cache.status(&at(1)).await.unwrap(), StatusType::Invalid);
    s.clock.set_unix(T0 + 599);
    s.cache.status(&at(1)).await.unwrap();
    assert_eq!(s.fetcher.fetches(URI), 1);

    // At exp the copy is dropped; the provider still serves the expired token, which the
    // verification's leeway would accept but the cache does not.
    s.clock.set_unix(T0 + 600);
    let err = s.cache.status(&at(1)).await.unwrap_err();
    assert!(matches!(err, StatusListError::Token(JoseError::Expired)));
    assert_eq!(s.fetcher.fetches(URI), 2);
    assert!(s.cache.is_empty());

    let renewed = jwt(&s.key, URI, T0 + 590, Some(T0 + 1_200), None, &list(&[])).await;
    s.fetcher.insert(URI, renewed);
    assert_eq!(s.cache.status(&at(1)).await.unwrap(), StatusType::Valid);
    assert_eq!(s.fetcher.fetches(URI), 3);
    assert_eq!(s.cache.list(URI).await.unwrap().refresh_at(), T0 + 1_200);
}

#[tokio::test]
async fn a_failing_fetch_is_a_fetch_error_and_is_not_cached() {
    let s = setup();
    let err = s.cache.status(&at(0)).await.unwrap_err();
    assert!(
        matches!(&err, StatusListError::Fetch { uri, source } if uri == URI && source.kind() == ErrorKind::NotFound)
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        err.to_string(),
        format!("fetching the status list token at `{URI}` failed")
    );
    assert!(matches!(
        s.cache.status(&at(0)).await,
        Err(StatusListError::Fetch { .. })
    ));
    assert_eq!(s.fetcher.fetches(URI), 2);

    // A stale copy is not served when fetching its successor fails.
    let token = jwt(&s.key, URI, T0, None, Some(60), &list(&[])).await;
    s.fetcher.insert(URI, token);
    s.cache.status(&at(0)).await.unwrap();
    s.fetcher.remove(URI);
    s.clock.advance(Duration::from_secs(60));
    assert!(matches!(
        s.cache.status(&at(0)).await,
        Err(StatusListError::Fetch { .. })
    ));
}

#[tokio::test]
async fn tokens_are_verified_before_they_are_cached() {
    let s = setup();
    // Published at URI but naming another list.
    let elsewhere = "https://issuer.example/statuslists/2";
    let token = jwt(&s.key, elsewhere, T0, None, Some(60), &list(&[])).await;
    s.fetcher.insert(URI, token);
    assert!(matches!(
        s.cache.status(&at(0)).await,
        Err(StatusListError::SubjectMismatch)
    ));
    // Signed by a key the resolver does not know.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = cwt(&stranger, URI, T0, None, Some(60), &list(&[])).await;
    s.fetcher.insert(URI, token);
    assert!(matches!(
        s.cache.status(&at(0)).await,
        Err(StatusListError::Token(
            JoseError::InvalidSignature | JoseError::KeyNotFound
        ))
    ));
    // A CWT served as a JWT.
    let token = cwt(&s.key, URI, T0, None, Some(60), &list(&[])).await;
    s.fetcher.insert(
        URI,
        FetchedToken::new(token.body, Some("application/statuslist+jwt".to_owned())),
    );
    assert!(matches!(
        s.cache.status(&at(0)).await,
        Err(StatusListError::Token(JoseError::Malformed { .. }))
    ));
    assert!(s.cache.is_empty());
    // Past the end of the list.
    let token = jwt(&s.key, URI, T0, None, Some(60), &list(&[])).await;
    s.fetcher.insert(URI, token);
    assert!(matches!(
        s.cache.status(&at(1_024)).await,
        Err(StatusListError::IndexOutOfRange {
            index: 1_024,
            len: 1_024
        })
    ));
}

#[tokio::test]
async fn without_a_known_content_type_the_body_decides_the_form() {
    let s = setup();
    for (form, token) in [
        (
            StatusListFormat::Cwt,
            cwt(&s.key, URI, T0, None, Some(60), &list(&[9])).await,
        ),
        (
            StatusListFormat::Jwt,
            jwt(&s.key, URI, T0, None, Some(60), &list(&[9])).await,
        ),
    ] {
        for content_type in [None, Some("application/octet-stream".to_owned())] {
            s.cache.invalidate(URI);
            s.fetcher
                .insert(URI, FetchedToken::new(token.body.clone(), content_type));
            assert_eq!(s.cache.status(&at(9)).await.unwrap(), StatusType::Invalid);
            assert_eq!(s.cache.list(URI).await.unwrap().format(), form);
        }
    }
}

#[tokio::test]
async fn ttl_is_clamped_to_the_configured_bounds() {
    let s = setup();
    let cache = s.cache.with_ttl_bounds(60, 600);
    let token = jwt(&s.key, URI, T0, None, Some(1), &list(&[])).await;
    s.fetcher.insert(URI, token);
    cache.status(&at(0)).await.unwrap();
    s.clock.set_unix(T0 + 59);
    cache.status(&at(0)).await.unwrap();
    assert_eq!(s.fetcher.fetches(URI), 1, "a 1 s ttl is raised to 60 s");

    let token = jwt(&s.key, URI, T0, None, None, &list(&[])).await;
    s.fetcher.insert(URI, token);
    s.clock.set_unix(T0 + 60);
    cache.status(&at(0)).await.unwrap();
    assert_eq!(s.fetcher.fetches(URI), 2);
    assert_eq!(
        cache.list(URI).await.unwrap().refresh_at(),
        T0 + 660,
        "no ttl is the upper bound"
    );
}

#[tokio::test]
async fn the_cache_keeps_at_most_its_capacity_and_byte_budget() {
    let s = setup();
    let uris: Vec<String> = (0..3)
        .map(|n| format!("https://issuer.example/statuslists/{n}"))
        .collect();
    for (n, uri) in uris.iter().enumerate() {
        let ttl = 100 * (u64::try_from(n).unwrap() + 1);
        let token = jwt(&s.key, uri, T0, None, Some(ttl), &list(&[])).await;
        s.fetcher.insert(uri.as_str(), token);
    }
    let cache = s.cache.with_capacity(2);
    for uri in &uris {
        cache.list(uri).await.unwrap();
    }
    assert_eq!(cache.len(), 2);
    // The list due for refresh soonest (the first, ttl 100) made room for the third.
    cache.list(&uris[1]).await.unwrap();
    cache.list(&uris[2]).await.unwrap();
    assert_eq!(
        uris.iter()
            .map(|uri| s.fetcher.fetches(uri))
            .collect::<Vec<_>>(),
        [1, 1, 1]
    );
    cache.list(&uris[0]).await.unwrap();
    assert_eq!(s.fetcher.fetches(&uris[0]), 2);
    assert_eq!(cache.len(), 2);

    // Each list is 128 bytes: a budget of 200 bytes keeps one, the one fetched last.
    let cache = cache.with_capacity(10).with_max_bytes(200);
    cache.invalidate(&uris[0]);
    cache.invalidate(&uris[2]);
    for uri in &uris {
        cache.list(uri).await.unwrap();
    }
    assert_eq!(cache.len(), 1);
    cache.list(&uris[2]).await.unwrap();
    assert_eq!(
        uris.iter()
            .map(|uri| s.fetcher.fetches(uri))
            .collect::<Vec<_>>(),
        [3, 2, 2]
    );
}

/// A fetcher that holds every fetch until the gate opens.
#[derive(Debug)]
struct GatedFetcher {
    inner: InMemoryFetcher,
    gate: Shared<oneshot::Receiver<()>>,
}

#[async_trait]
impl StatusListFetcher for GatedFetcher {
    async fn fetch(&self, uri: &str) -> Result<FetchedToken, FetchError> {
        self.gate.clone().await.unwrap();
        self.inner.fetch(uri).await
    }
}

#[tokio::test]
async fn concurrent_requests_for_one_uri_share_one_fetch() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let (open, gate) = oneshot::channel();
    let fetcher = Arc::new(GatedFetcher {
        inner: InMemoryFetcher::new(),
        gate: gate.shared(),
    });
    fetcher
        .inner
        .insert(URI, cwt(&key, URI, T0, None, Some(60), &list(&[2])).await);
    let cache = StatusListCache::new(
        Arc::clone(&fetcher) as Arc<dyn StatusListFetcher>,
        Arc::new(JwksResolver::from_keys([&key.public_jwk()])),
        Arc::new(FixedClock::at_unix(T0)),
    );
    let (two, three) = (at(2), at(3));
    let request = cache.status(&two);
    assert_send(&request);
    let (first, second, third, ()) = futures::join!(
        request,
        cache.status(&two),
        cache.status(&three),
        async move { open.send(()).unwrap() },
    );
    assert_eq!(first.unwrap(), StatusType::Invalid);
    assert_eq!(second.unwrap(), StatusType::Invalid);
    assert_eq!(third.unwrap(), StatusType::Valid);
    assert_eq!(fetcher.inner.fetches(URI), 1);
}

fn assert_send<T: Send>(_: &T) {}
