//! The resolver: registry, errors, representations, cache, tenant enablement, dereferencing.

use std::sync::Arc;
use std::time::Duration;

use edk_core::{Clock, FixedClock, HasKind, TenantSlug};
use edk_did::methods::key::DidKey;
use edk_did::{
    CacheConfig, DID_METHODS, DidResolver, ErrorCode, ErrorStyle, Representation, ResolveError,
    ResolveOptions, Resolver, Resource, resolution_result,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{ConfigSchema, DatabaseConfig, Tenancy, TenantDirectory};
use serde_json::json;

use crate::support::{Behaviour, TestMethod, local_resolver};

const ED25519_DID: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

fn code(outcome: Result<impl std::fmt::Debug, ResolveError>) -> ErrorCode {
    outcome.unwrap_err().code()
}

#[tokio::test]
async fn resolution_result_has_the_v1_shape() {
    let resolver = local_resolver();
    let outcome = resolver
        .resolve(None, ED25519_DID, &ResolveOptions::default())
        .await;
    let result = resolution_result(&outcome, ErrorStyle::Problem);
    assert_eq!(result["didDocument"]["id"], ED25519_DID);
    assert_eq!(
        result["didResolutionMetadata"],
        json!({"contentType": "application/did"})
    );
    assert_eq!(result["didDocumentMetadata"], json!({}));
}

#[tokio::test]
async fn errors_carry_problem_objects_or_legacy_strings() {
    let resolver = local_resolver();
    let outcome = resolver
        .resolve(None, "did:example:123", &ResolveOptions::default())
        .await;
    let result = resolution_result(&outcome, ErrorStyle::Problem);
    assert_eq!(
        result["didResolutionMetadata"]["error"]["type"],
        "https://www.w3.org/ns/did#METHOD_NOT_SUPPORTED"
    );
    assert!(result["didDocument"].is_null());
    assert_eq!(result["didDocumentMetadata"], json!({}));
    let legacy = resolution_result(&outcome, ErrorStyle::Legacy);
    assert_eq!(
        legacy["didResolutionMetadata"]["error"],
        "methodNotSupported"
    );
}

#[tokio::test]
async fn malformed_dids_are_invalid_did_with_a_reason() {
    let resolver = local_resolver();
    for (did, reason) in [
        ("not-a-did", "must start with `did:`"),
        ("did:key:", "malformed"),
        ("did:key:abc", "base58btc"),
        ("did:key:z0OIl", "not valid base58btc"),
        (
            "did:key:z2DQV5Tm64jwFsRi2chqem1Wt2aP6bP34vi2itLNof8JFdG",
            "invalid public key length: 31 bytes",
        ),
        // 0x1234 varint (b4 24) + 32 bytes: unknown multicodec.
        (
            "did:key:z55CKeyu6TgqRbRexfXevH21g7r8pfGbdpPoJVuotg4Maj3c",
            "unsupported multicodec",
        ),
        (
            "did:key:2:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "version",
        ),
        ("did:jwk:!!", "character outside idchar"),
        ("did:jwk:bm90LWpzb24", "not a JSON object"),
        // {"kty":"EC","crv":"P-256","x":"AA","y":"AA"}: coordinates of the wrong length.
        (
            "did:jwk:eyJrdHkiOiJFQyIsImNydiI6IlAtMjU2IiwieCI6IkFBIiwieSI6IkFBIn0",
            "invalid JWK",
        ),
        // {"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}: private key material.
        (
            "did:jwk:eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IkFBIiwiZCI6IkFBIn0",
            "private",
        ),
    ] {
        let err = resolver
            .resolve(None, did, &ResolveOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidDid, "{did}: {err}");
        assert_eq!(err.kind(), edk_core::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(reason), "{did}: {err}");
    }
}

#[tokio::test]
async fn a_method_registered_twice_fails_at_build() {
    let err = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidKey::new()))
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "DID method `key` is registered twice");
}

#[tokio::test]
async fn accept_selects_the_representation() {
    let resolver = local_resolver();
    let opts = ResolveOptions::default().with_accept("application/did+json");
    let resolution = resolver.resolve(None, ED25519_DID, &opts).await.unwrap();
    assert_eq!(resolution.representation, Representation::DidJson);
    let result = resolution_result(&Ok(resolution), ErrorStyle::Problem);
    assert!(result["didDocument"].get("@context").is_none());
    assert_eq!(
        result["didResolutionMetadata"]["contentType"],
        "application/did+json"
    );
    let opts = ResolveOptions::default().with_accept("text/html");
    assert_eq!(
        code(resolver.resolve(None, ED25519_DID, &opts).await),
        ErrorCode::RepresentationNotSupported
    );
}

#[tokio::test]
async fn did_key_has_one_version() {
    let resolver = local_resolver();
    let opts = ResolveOptions::default().with_version_id("2");
    assert_eq!(
        code(resolver.resolve(None, ED25519_DID, &opts).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn deactivated_dids_have_no_document_and_say_so() {
    let method = TestMethod::new(Behaviour::Deactivated);
    let resolver = Resolver::builder().method(method).build().unwrap();
    let resolution = resolver
        .resolve(None, "did:test:gone", &ResolveOptions::default())
        .await
        .unwrap();
    assert!(resolution.document.is_none());
    let result = resolution_result(&Ok(resolution), ErrorStyle::Problem);
    assert_eq!(result["didDocumentMetadata"], json!({"deactivated": true}));
}

#[tokio::test]
async fn a_document_for_another_did_is_refused() {
    let method = TestMethod::new(Behaviour::WrongId);
    let resolver = Resolver::builder().method(method).build().unwrap();
    assert_eq!(
        code(
            resolver
                .resolve(None, "did:test:me", &ResolveOptions::default())
                .await
        ),
        ErrorCode::InvalidDidDocument
    );
}

fn cached_resolver(method: Arc<TestMethod>, clock: Arc<FixedClock>, capacity: usize) -> Resolver {
    Resolver::builder()
        .method(method)
        .cache(
            CacheConfig {
                capacity,
                ttl_seconds: 300,
                negative_ttl_seconds: 30,
            },
            clock,
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn cached_results_are_reused_until_the_ttl_passes() {
    let method = TestMethod::new(Behaviour::Found);
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let resolver = cached_resolver(Arc::clone(&method), Arc::clone(&clock), 100);
    let opts = ResolveOptions::default();
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    assert_eq!(method.calls(), 1);
    // Version options are part of the key.
    resolver
        .resolve(None, "did:test:a", &opts.clone().with_version_id("1"))
        .await
        .unwrap();
    assert_eq!(method.calls(), 2);
    // `no_cache` goes to the method.
    resolver
        .resolve(None, "did:test:a", &opts.clone().with_no_cache(true))
        .await
        .unwrap();
    assert_eq!(method.calls(), 3);
    clock.advance(Duration::from_secs(299));
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    assert_eq!(method.calls(), 3);
    clock.advance(Duration::from_secs(2));
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    assert_eq!(method.calls(), 4);
}

#[tokio::test]
async fn invalidating_a_did_drops_every_cached_version_of_it() {
    let method = TestMethod::new(Behaviour::Found);
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let resolver = cached_resolver(Arc::clone(&method), clock, 100);
    let latest = ResolveOptions::default();
    let prior = ResolveOptions::default().with_version_number(1);
    for opts in [&latest, &prior] {
        resolver.resolve(None, "did:test:a", opts).await.unwrap();
        resolver.resolve(None, "did:test:b", opts).await.unwrap();
    }
    assert_eq!(method.calls(), 4);
    resolver.invalidate("did:test:a");
    for opts in [&latest, &prior] {
        resolver.resolve(None, "did:test:a", opts).await.unwrap();
        resolver.resolve(None, "did:test:b", opts).await.unwrap();
    }
    // Both versions of `a` were read again; `b` came from the cache.
    assert_eq!(method.calls(), 6);
}

#[tokio::test]
async fn a_resync_empties_the_cache_of_a_resolver_refreshed_on_change() {
    let method = TestMethod::new(Behaviour::Found);
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let resolver = Arc::new(cached_resolver(Arc::clone(&method), clock, 100));
    let bus = Arc::new(edk_tenancy::events::InProcessBus::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let refresher = tokio::spawn(edk_did::registrar::refresh_on_change(
        resolver.clone(),
        bus.clone(),
        cancel.clone(),
    ));
    let opts = ResolveOptions::default();
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    assert_eq!(method.calls(), 1, "the second answer came from the cache");

    // What the tenancy's listener publishes after it reconnects. Published until seen: the
    // refresher subscribes when its task first runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while method.calls() == 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resync never emptied the cache"
        );
        edk_tenancy::EventBus::publish(bus.as_ref(), edk_tenancy::Event::Resync)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        resolver.resolve(None, "did:test:a", &opts).await.unwrap();
    }
    assert_eq!(method.calls(), 2, "read again once, then cached again");
    cancel.cancel();
    refresher.await.unwrap();
}

#[tokio::test]
async fn negative_answers_expire_sooner() {
    let method = TestMethod::new(Behaviour::NotFound);
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let resolver = cached_resolver(Arc::clone(&method), Arc::clone(&clock), 100);
    let opts = ResolveOptions::default();
    for _ in 0..3 {
        assert_eq!(
            code(resolver.resolve(None, "did:test:missing", &opts).await),
            ErrorCode::NotFound
        );
    }
    assert_eq!(method.calls(), 1);
    clock.advance(Duration::from_secs(31));
    let _ = resolver.resolve(None, "did:test:missing", &opts).await;
    assert_eq!(method.calls(), 2);
    assert!(clock.unix_seconds() < 1_700_000_300);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let method = TestMethod::new(Behaviour::Found);
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let resolver = cached_resolver(Arc::clone(&method), clock, 8);
    let opts = ResolveOptions::default();
    for round in 0..2 {
        for i in 0..100 {
            resolver
                .resolve(None, &format!("did:test:{i}"), &opts)
                .await
                .unwrap();
        }
        if round == 0 {
            assert_eq!(method.calls(), 100);
        }
    }
    // At most 8 of the 100 can still be cached for the second round.
    assert!(method.calls() >= 192, "calls: {}", method.calls());
}

#[test]
fn a_negative_ttl_longer_than_the_ttl_is_refused() {
    let err = Resolver::builder()
        .cache(
            CacheConfig {
                capacity: 10,
                ttl_seconds: 10,
                negative_ttl_seconds: 20,
            },
            Arc::new(FixedClock::at_unix(0)),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("negative cache TTL"));
}

#[tokio::test]
async fn a_tenant_resolves_only_the_methods_it_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
        .config_schema(ConfigSchema::builder().key(&DID_METHODS).build().unwrap())
        .build()
        .await
        .unwrap();
    let acme = tenancy
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let other = tenancy
        .provision(TenantSlug::new("other").unwrap(), "Other")
        .await
        .unwrap();
    tenancy
        .set_config(Some(acme.id), DID_METHODS.name(), json!(["jwk"]), None)
        .await
        .unwrap();
    // A bad value is refused by the key's rule.
    let err = tenancy
        .set_config(Some(acme.id), DID_METHODS.name(), json!(["did:key"]), None)
        .await
        .unwrap_err();
    assert_eq!(
        edk_core::ErrorChain(&err).to_string(),
        "invalid value for configuration key `did.methods`: method names are lower-case \
         letters and digits, without `did:`",
        "{err:?}"
    );
    let acme = tenancy.context(acme.id).await.unwrap();
    let other = tenancy.context(other.id).await.unwrap();
    let resolver = local_resolver();
    let opts = ResolveOptions::default();
    let err = resolver
        .resolve(Some(&acme), ED25519_DID, &opts)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MethodNotSupported);
    assert_eq!(err.to_string(), "DID method `key` is not supported");
    // The default enables every method EDK ships.
    resolver
        .resolve(Some(&other), ED25519_DID, &opts)
        .await
        .unwrap();
    resolver.resolve(None, ED25519_DID, &opts).await.unwrap();
    let jwk_did = DidKey::key(&edk_core::Did::new(ED25519_DID).unwrap())
        .unwrap()
        .to_jwk()
        .unwrap();
    let jwk_did = edk_did::methods::jwk::DidJwk::create(&jwk_did).unwrap();
    resolver
        .resolve(Some(&acme), jwk_did.as_str(), &opts)
        .await
        .unwrap();
}

#[tokio::test]
async fn fragments_dereference_to_verification_methods() {
    let resolver = local_resolver();
    let opts = ResolveOptions::default();
    let fragment = &ED25519_DID[8..];
    let url = format!("{ED25519_DID}#{fragment}");
    let dereferenced = resolver.dereference(None, &url, &opts).await.unwrap();
    let Resource::VerificationMethod(method) = dereferenced.resource else {
        panic!("not a verification method");
    };
    assert_eq!(method.id, url);
    let jwk = method.jwk().unwrap();
    assert_eq!(
        serde_json::to_value(&jwk).unwrap()["x"],
        "Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY"
    );
    // No fragment: the document.
    let whole = resolver
        .dereference(None, ED25519_DID, &opts)
        .await
        .unwrap();
    assert_eq!(whole.resource, Resource::Document);
    // A fragment naming nothing, duplicate parameters, paths.
    for (url, expected) in [
        (format!("{ED25519_DID}#nope"), ErrorCode::NotFound),
        (
            format!("{ED25519_DID}?versionId=1&versionId=2#{fragment}"),
            ErrorCode::InvalidDidUrl,
        ),
        (
            format!("{ED25519_DID}/path"),
            ErrorCode::FeatureNotSupported,
        ),
        ("did:key:#x".to_owned(), ErrorCode::InvalidDidUrl),
    ] {
        assert_eq!(
            code(resolver.dereference(None, &url, &opts).await),
            expected,
            "{url}"
        );
    }
}

#[tokio::test]
async fn expand_relative_urls_makes_references_absolute() {
    let method = TestMethod::new(Behaviour::Found);
    let resolver = Resolver::builder().method(method).build().unwrap();
    let resolution = resolver
        .resolve(
            None,
            "did:test:a",
            &ResolveOptions::default().with_expand_relative_urls(true),
        )
        .await
        .unwrap();
    let document = resolution.document.unwrap();
    assert_eq!(document.verification_method[0].id, "did:test:a#k");
    assert_eq!(
        document.assertion_method,
        [edk_did::MethodRef::Reference("did:test:a#k".to_owned())]
    );
}
