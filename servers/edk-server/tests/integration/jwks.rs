use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::endpoint::make_sync;
use poem::web::Json;
use poem::{EndpointExt, Route};
use serde_json::Value;

use edk_core::jose::{Algorithm, Header, JoseError, Jwk, JwkSet, SigningKey, jws};
use edk_core::{Clock, FixedClock};
use edk_server::auth::AuthError;
use edk_server::{AdminAuth, AuthConfig, AuthSetupError, TestServer, TrustedIssuer, spawn_server};

use crate::support::{NOW, claims, tenant};

const REMOTE_ISSUER: &str = "https://issuer.test";

/// A JWKS endpoint on loopback whose keys a test can change, counting fetches.
struct JwksServer {
    server: TestServer,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: Vec<Jwk>) -> Self {
        edk_server::install_crypto_provider();
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counter) = (Arc::clone(&keys), Arc::clone(&fetches));
        let endpoint = make_sync(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            let keys = served.lock().unwrap();
            let jwks = JwkSet { keys: keys.clone() };
            Json(serde_json::to_value(jwks).unwrap())
        });
        let server = spawn_server(Route::new().at("/jwks.json", endpoint).boxed())
            .await
            .unwrap();
        Self {
            server,
            keys,
            fetches,
        }
    }

    fn uri(&self) -> String {
        self.server.url("/jwks.json")
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn public_with_kid(key: &SigningKey) -> Jwk {
    let jwk = key.public_jwk();
    let kid = jwk.thumbprint();
    jwk.with_kid(kid)
}

async fn token_from(key: &SigningKey) -> String {
    let mut claims: Value = claims();
    claims["iss"] = REMOTE_ISSUER.into();
    let kid = key.public_jwk().thumbprint();
    jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT").with_kid(kid),
        claims.to_string().as_bytes(),
        key,
    )
    .await
    .unwrap()
}

fn auth_for(uri: &str, clock: Arc<FixedClock>) -> AdminAuth {
    edk_server::install_crypto_provider();
    let config = AuthConfig {
        issuers: vec![TrustedIssuer::with_jwks_uri(REMOTE_ISSUER, uri)],
        jwks_cache_ttl_secs: 300,
        jwks_min_refresh_secs: 30,
        ..AuthConfig::default()
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    AdminAuth::new(&config, clock, &[], Some(&client)).unwrap()
}

#[tokio::test]
async fn tokens_verify_against_a_fetched_jwks_that_is_cached() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = JwksServer::start(vec![public_with_kid(&key)]).await;
    let auth = auth_for(&jwks.uri(), Arc::new(FixedClock::at_unix(NOW)));
    let token = token_from(&key).await;
    for _ in 0..3 {
        let principal = auth.verify(&token).await.unwrap();
        assert_eq!(principal.tenant, tenant());
        assert_eq!(principal.issuer, REMOTE_ISSUER);
    }
    assert_eq!(jwks.fetches(), 1, "the JWKS is cached");
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_once_per_interval() {
    let old = SigningKey::generate(Algorithm::Es256).unwrap();
    let new = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = JwksServer::start(vec![public_with_kid(&old)]).await;
    let clock = Arc::new(FixedClock::at_unix(NOW));
    let auth = auth_for(&jwks.uri(), Arc::clone(&clock));
    auth.verify(&token_from(&old).await).await.unwrap();

    // The issuer rotates: a token with the new kid makes the server refetch at once...
    *jwks.keys.lock().unwrap() = vec![public_with_kid(&old), public_with_kid(&new)];
    clock.set_unix(NOW + 31);
    auth.verify(&token_from(&new).await).await.unwrap();
    assert_eq!(jwks.fetches(), 2);

    // ...but a flood of unknown kids within the refresh interval fetches nothing more.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    for _ in 0..5 {
        let err = auth.verify(&token_from(&stranger).await).await.unwrap_err();
        assert!(matches!(err, AuthError::InvalidToken(_)), "{err:?}");
    }
    assert_eq!(jwks.fetches(), 2, "refreshes are rate limited");

    // After the interval one more refresh is allowed.
    clock.set_unix(NOW + 62);
    let err = auth.verify(&token_from(&stranger).await).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(JoseError::KeyNotFound)),
        "{err:?}"
    );
    assert_eq!(jwks.fetches(), 3);
}

#[tokio::test]
async fn the_jwks_is_refetched_after_its_ttl() {
    let first = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = JwksServer::start(vec![public_with_kid(&first)]).await;
    let clock = Arc::new(FixedClock::at_unix(NOW));
    let auth = auth_for(&jwks.uri(), Arc::clone(&clock));
    let token = token_from(&first).await;
    auth.verify(&token).await.unwrap();

    // The issuer withdraws the key; within the TTL the cached copy still verifies.
    jwks.keys.lock().unwrap().clear();
    clock.set_unix(NOW + 100);
    auth.verify(&token).await.unwrap();
    assert_eq!(jwks.fetches(), 1);

    clock.set_unix(NOW + 301);
    let err = auth.verify(&token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(JoseError::KeyNotFound)),
        "the withdrawn key is gone: {err:?}"
    );
    assert!(jwks.fetches() >= 2);
    assert!(clock.unix_seconds() > NOW);
}

#[tokio::test]
async fn an_unreachable_jwks_refuses_the_token() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = JwksServer::start(vec![public_with_kid(&key)]).await;
    let uri = jwks.uri();
    jwks.server.shutdown().await.unwrap();
    let auth = auth_for(&uri, Arc::new(FixedClock::at_unix(NOW)));
    let err = auth.verify(&token_from(&key).await).await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidToken(_)), "{err:?}");
}

#[test]
fn issuers_need_exactly_one_key_source_and_a_client_for_urls() {
    let clock = Arc::new(FixedClock::at_unix(NOW));
    let both = AuthConfig {
        issuers: vec![TrustedIssuer {
            issuer: REMOTE_ISSUER.to_owned(),
            jwks: Some(JwkSet { keys: Vec::new() }),
            jwks_uri: Some("https://issuer.test/jwks".to_owned()),
            tenants: None,
        }],
        ..AuthConfig::default()
    };
    assert!(matches!(
        AdminAuth::new(&both, clock.clone(), &[], None),
        Err(AuthSetupError::KeySource { .. })
    ));
    let remote = AuthConfig {
        issuers: vec![TrustedIssuer::with_jwks_uri(
            REMOTE_ISSUER,
            "https://issuer.test/jwks",
        )],
        ..AuthConfig::default()
    };
    assert!(matches!(
        AdminAuth::new(&remote, clock, &[], None),
        Err(AuthSetupError::NoHttpClient { .. })
    ));
}
