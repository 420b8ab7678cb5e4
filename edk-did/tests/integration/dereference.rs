//! DID URL dereferencing (DID Resolution §5): fragments, `service` and `serviceType` with
//! `relativeRef`, did:webvh paths (did:webvh §"DID URL Resolution") and the parameters this
//! resolver does not implement.

use std::sync::Arc;

use edk_core::FixedClock;
use edk_did::methods::key::DidKey;
use edk_did::methods::webvh::{DidWebvh, LogFiles, StaticLogSource};
use edk_did::webvh::{self, UpdateOptions, WebvhDid};
use edk_did::{DidResolver as _, ErrorCode, ResolveError, ResolveOptions, Resolver, Resource};
use serde_json::json;

use crate::webvh::{at, created, did_of, key};

/// A did:webvh at `https://example.com/dids/issuer/` whose version 2 adds an `issuer` service
/// (a URL), a `config` service (a map) and a `multi` service of two types.
async fn resolver() -> (Resolver, String) {
    let key = key();
    let mut log = created(|_| {}, &key).await;
    let mut document = log.entries()[0].state().clone();
    webvh::set_service(
        &mut document,
        "#issuer",
        "OID4VCI",
        "https://issuer.example.com/v1",
    );
    document["service"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"id": "#config", "type": "Config", "serviceEndpoint": {"origins": ["https://a.example"]}}),
            json!({"id": "#multi", "type": ["LinkedDomains", "Other"], "serviceEndpoint": ["https://multi.example/"]}),
        ]);
    let update = UpdateOptions {
        document: Some(document),
        ..UpdateOptions::default()
    };
    let entry = webvh::update(&log, update, &key.signer, &key.multikey, at(10))
        .await
        .unwrap();
    log.push(entry);
    let did = did_of(&log);
    let mut source = StaticLogSource::new();
    source.insert(
        &WebvhDid::parse(&did).unwrap(),
        LogFiles {
            log: log.to_jsonl(),
            witness: None,
        },
    );
    let clock = Arc::new(FixedClock::at_unix(at(1_000).timestamp()));
    let resolver = Resolver::builder()
        .method(Arc::new(DidWebvh::new(Arc::new(source), clock)))
        .method(Arc::new(DidKey::new()))
        .build()
        .unwrap();
    (resolver, did)
}

async fn dereference(resolver: &Resolver, url: &str) -> Result<Resource, ResolveError> {
    resolver
        .dereference(None, url, &ResolveOptions::default())
        .await
        .map(|dereferenced| dereferenced.resource)
}

fn url(resource: Result<Resource, ResolveError>) -> String {
    match resource {
        Ok(Resource::Url(url)) => url,
        other => panic!("not a URL: {other:?}"),
    }
}

#[tokio::test]
async fn service_parameters_select_the_endpoint_url() {
    let (resolver, did) = resolver().await;
    let base = "https://example.com/dids/issuer/";
    for (query, expected) in [
        (
            "?service=issuer",
            "https://issuer.example.com/v1".to_owned(),
        ),
        (
            "?serviceType=OID4VCI",
            "https://issuer.example.com/v1".to_owned(),
        ),
        (
            "?service=issuer&serviceType=OID4VCI",
            "https://issuer.example.com/v1".to_owned(),
        ),
        // RFC 3986 §5 against the endpoint.
        (
            "?service=issuer&relativeRef=credentials",
            "https://issuer.example.com/credentials".to_owned(),
        ),
        (
            "?service=issuer&relativeRef=%2Fstatus%3Fid%3D1",
            "https://issuer.example.com/status?id=1".to_owned(),
        ),
        ("?serviceType=Other", "https://multi.example/".to_owned()),
        // The implicit `#files` service holds files below the DID's base.
        (
            "?service=files&relativeRef=/path/to/file.txt",
            format!("{base}path/to/file.txt"),
        ),
        ("?service=whois", format!("{base}whois.vp")),
        // The DID URL's fragment goes to the URL.
        (
            "?service=issuer#section",
            "https://issuer.example.com/v1#section".to_owned(),
        ),
    ] {
        assert_eq!(
            url(dereference(&resolver, &format!("{did}{query}")).await),
            expected,
            "{query}"
        );
    }
    // A service whose endpoint is a map is the service itself.
    let Ok(Resource::Service(service)) =
        dereference(&resolver, &format!("{did}?service=config")).await
    else {
        panic!("not a service");
    };
    assert_eq!(service.id, format!("{did}#config"));
    // Version 1 has no `issuer` service.
    assert_eq!(
        code(dereference(&resolver, &format!("{did}?versionNumber=1&service=issuer")).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn did_webvh_paths_name_files_and_whois() {
    let (resolver, did) = resolver().await;
    let base = "https://example.com/dids/issuer/";
    assert_eq!(
        url(dereference(&resolver, &format!("{did}/whois")).await),
        format!("{base}whois.vp")
    );
    assert_eq!(
        url(dereference(&resolver, &format!("{did}/path/to/file.txt")).await),
        format!("{base}path/to/file.txt")
    );
    assert_eq!(
        url(dereference(&resolver, &format!("{did}/a%20b.json?versionNumber=1")).await),
        format!("{base}a%20b.json")
    );
    // Fragments still select nodes of the document.
    let Ok(Resource::Service(whois)) = dereference(&resolver, &format!("{did}#whois")).await else {
        panic!("not a service");
    };
    assert_eq!(whois.service_type, "LinkedVerifiablePresentation");
}

#[tokio::test]
async fn refused_did_urls_say_why() {
    let (resolver, did) = resolver().await;
    let key = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    for (url, expected) in [
        // Standard DID parameters this resolver does not implement, and unknown ones.
        (
            format!("{did}?hl=zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e"),
            ErrorCode::FeatureNotSupported,
        ),
        (
            format!("{did}?transformKey=x"),
            ErrorCode::FeatureNotSupported,
        ),
        (format!("{key}/path"), ErrorCode::FeatureNotSupported),
        // Malformed: repeated, relativeRef alone, path and service together.
        (
            format!("{did}?service=issuer&service=files"),
            ErrorCode::InvalidDidUrl,
        ),
        (format!("{did}?relativeRef=/x"), ErrorCode::InvalidDidUrl),
        (format!("{did}/x?service=files"), ErrorCode::InvalidDidUrl),
        (
            format!("{did}?versionTime=yesterday"),
            ErrorCode::InvalidDidUrl,
        ),
        // relativeRef may not leave the endpoint, nor go to a map endpoint.
        (
            format!("{did}?service=files&relativeRef=/../secret"),
            ErrorCode::InvalidDidUrl,
        ),
        (
            format!("{did}?service=files&relativeRef=%2E%2E%2Fsecret"),
            ErrorCode::InvalidDidUrl,
        ),
        (format!("{did}/a/../../secret"), ErrorCode::InvalidDidUrl),
        (
            format!("{did}?service=issuer&relativeRef=%2F%2Fevil.example%2Fx"),
            ErrorCode::InvalidDidUrl,
        ),
        (
            format!("{did}?service=issuer&relativeRef=https%3A%2F%2Fevil.example"),
            ErrorCode::InvalidDidUrl,
        ),
        (
            format!("{did}?service=config&relativeRef=x"),
            ErrorCode::InvalidDidUrl,
        ),
        // Nothing of that name or type.
        (format!("{did}?service=nope"), ErrorCode::NotFound),
        (format!("{did}?serviceType=Nope"), ErrorCode::NotFound),
        (
            format!("{did}?service=issuer&serviceType=Config"),
            ErrorCode::NotFound,
        ),
    ] {
        assert_eq!(code(dereference(&resolver, &url).await), expected, "{url}");
    }
    let err = dereference(&resolver, &format!("{did}?hl=x"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "DID URL parameter `hl` is not supported");
}

fn code(outcome: Result<Resource, ResolveError>) -> ErrorCode {
    outcome.unwrap_err().code()
}
