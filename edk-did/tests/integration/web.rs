//! did:web over real HTTPS on loopback: a test CA made with rcgen is the client's only trust
//! anchor, and a small HTTP/1.1 server answers with documents, errors, redirects, oversized
//! and stalled bodies. The test hosts resolve to 127.0.0.1 through the fetch policy, with the
//! `dangerous_allow_private_addresses` opt-in; without it (the default) the same requests are
//! refused before any connection, as are ports other than the allowed ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edk_core::Did;
use edk_did::methods::fetch::{FetchPolicy, REFUSED_ADDRESS};
use edk_did::methods::web::{DidWeb, DidWebConfig, client_builder_with_policy};
use edk_did::methods::webvh::{HttpsLogSource, LogSource as _};
use edk_did::webvh::WebvhDid;
use edk_did::{DidMethod, DidResolver, ErrorCode, ResolveError, ResolveOptions, Resolver};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HOST: &str = "did.example.test";
const OTHER_HOST: &str = "other.example.test";
/// A well-formed SCID (did:webvh test suite `basic-create`).
const SCID: &str = "Qmdxt11AjZewCNXX69bpEDobgjySeZ7eFwjf4tgpF6p2Dg";

/// What the server answers for a path.
#[derive(Clone, Debug)]
enum Reply {
    Json(String),
    Status(u16),
    Redirect(String),
    /// A body of this many bytes, with or without `Content-Length`.
    Large {
        bytes: usize,
        content_length: bool,
    },
    /// Headers promising a body that never comes.
    StallBody,
    /// Never answers.
    StallHeaders,
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;

struct Server {
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    /// The CA certificate as PEM.
    ca_pem: String,
    routes: Routes,
    /// TCP connections accepted so far.
    connections: Arc<AtomicUsize>,
    /// The path of every request, as it arrives.
    requests: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Server {
    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }
}

async fn serve() -> Server {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![HOST.to_owned(), OTHER_HOST.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes: Routes = Arc::default();
    let shared = Arc::clone(&routes);
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let routes = Arc::clone(&shared);
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let _ = seen.send(path.clone());
                let reply = routes.lock().unwrap().get(&path).cloned();
                let reply = reply.unwrap_or(Reply::Status(404));
                let response = match reply {
                    Reply::Json(body) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/did+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    Reply::Status(status) => format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    Reply::Redirect(location) => format!(
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    Reply::Large {
                        bytes,
                        content_length,
                    } => {
                        let length = if content_length {
                            format!("Content-Length: {bytes}\r\n")
                        } else {
                            String::new()
                        };
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{}",
                            " ".repeat(bytes)
                        )
                    }
                    Reply::StallBody => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
                            .await;
                        let _ = tls.flush().await;
                        std::future::pending::<()>().await;
                        return;
                    }
                    Reply::StallHeaders => {
                        std::future::pending::<()>().await;
                        return;
                    }
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server {
        addr,
        ca: ca.der().clone(),
        ca_pem: ca.pem(),
        routes,
        connections,
        requests,
    }
}

/// The fetch policy of the tests: the test hosts on 127.0.0.1 at the server's port, reached
/// with the private-address opt-in.
fn loopback_policy(server: &Server) -> FetchPolicy {
    FetchPolicy::default()
        .with_host(HOST, server.addr.ip())
        .with_host(OTHER_HOST, server.addr.ip())
        .with_allowed_ports(&[server.addr.port()])
        .unwrap()
        .dangerous_allow_private_addresses(true)
}

fn client(server: &Server, policy: &FetchPolicy) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.clone()).unwrap();
    client_builder_with_policy(roots, Duration::from_secs(5), policy)
        .unwrap()
        .build()
        .unwrap()
}

fn did_web_with(server: &Server, config: DidWebConfig, policy: &FetchPolicy) -> DidWeb {
    DidWeb::new(client(server, policy), config).with_policy(policy)
}

fn did_web(server: &Server, config: DidWebConfig) -> DidWeb {
    did_web_with(server, config, &loopback_policy(server))
}

fn did(server: &Server, path: &str) -> Did {
    let port = server.addr.port();
    Did::new(format!("did:web:{HOST}%3A{port}{path}")).unwrap()
}

fn document(did: &Did) -> String {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": [{
            "id": format!("{did}#key-1"),
            "type": "JsonWebKey",
            "controller": did,
            "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": "Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY"}
        }],
        "assertionMethod": ["#key-1"]
    })
    .to_string()
}

fn reason(err: &ResolveError) -> &'static str {
    match err {
        ResolveError::Unavailable { reason, .. } => reason,
        other => panic!("not unavailable: {other}"),
    }
}

#[test]
fn did_web_urls_follow_the_spec_examples() {
    for (did, url) in [
        (
            "did:web:w3c-ccg.github.io",
            "https://w3c-ccg.github.io/.well-known/did.json",
        ),
        (
            "did:web:w3c-ccg.github.io:user:alice",
            "https://w3c-ccg.github.io/user/alice/did.json",
        ),
        (
            "did:web:example.com%3A3000:user:alice",
            "https://example.com:3000/user/alice/did.json",
        ),
        (
            "did:web:example.com:a%20b",
            "https://example.com/a%20b/did.json",
        ),
    ] {
        let got = DidWeb::document_url(&Did::new(did).unwrap()).unwrap();
        assert_eq!(got.as_str(), url, "{did}");
    }
    for did in [
        "did:web:127.0.0.1",
        "did:web:localhost",
        "did:web:Example.com",
        "did:web:example.com%3A0",
        "did:web:example.com%3A99999",
        "did:web:example.com%2Fevil",
        "did:web:example.com:..",
        "did:web:example.com:%2E%2E",
        "did:web:example.com:a%2Fb",
        "did:web:example.com::x",
    ] {
        let did = Did::new(did).unwrap();
        let err = DidWeb::document_url(&did).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidDid, "{did}: {err}");
    }
    let made = DidWeb::did_for("example.com", Some(8443), &["tenants", "acme"]).unwrap();
    assert_eq!(made.as_str(), "did:web:example.com%3A8443:tenants:acme");
}

fn config() -> DidWebConfig {
    DidWebConfig {
        max_document_bytes: 16 * 1024,
        timeout_millis: 500,
    }
}

#[tokio::test]
async fn did_web_resolves_over_https_with_the_test_ca() {
    let server = serve().await;
    let method = did_web(&server, config());
    let tenant = did(&server, ":tenants:acme");
    server.route("/tenants/acme/did.json", Reply::Json(document(&tenant)));
    let root = did(&server, "");
    server.route("/.well-known/did.json", Reply::Json(document(&root)));
    for did in [&tenant, &root] {
        let resolution = method
            .resolve(did, &ResolveOptions::default())
            .await
            .unwrap();
        let document = resolution.document.unwrap();
        assert_eq!(&document.id, did.as_str());
        assert!(document.is_authorized(
            &format!("{did}#key-1"),
            edk_did::Relationship::AssertionMethod
        ));
    }
    // Through the resolver, relative references can be expanded.
    let resolver = Resolver::builder()
        .method(Arc::new(method))
        .build()
        .unwrap();
    let resolution = resolver
        .resolve(
            None,
            tenant.as_str(),
            &ResolveOptions::default().with_expand_relative_urls(true),
        )
        .await
        .unwrap();
    assert_eq!(
        resolution.document.unwrap().assertion_method,
        [edk_did::MethodRef::Reference(format!("{tenant}#key-1"))]
    );
}

#[tokio::test]
async fn a_missing_document_is_not_found() {
    let server = serve().await;
    let method = did_web(&server, config());
    let gone = did(&server, ":gone");
    server.route("/gone/did.json", Reply::Status(410));
    for did in [did(&server, ":nobody"), gone] {
        let err = method
            .resolve(&did, &ResolveOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{did}");
    }
    let broken = did(&server, ":broken");
    server.route("/broken/did.json", Reply::Status(500));
    let err = method
        .resolve(&broken, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "the server answered with an error status");
}

#[tokio::test]
async fn a_document_for_another_did_or_not_json_is_invalid() {
    let server = serve().await;
    let method = did_web(&server, config());
    let alice = did(&server, ":alice");
    let bob = did(&server, ":bob");
    server.route("/alice/did.json", Reply::Json(document(&bob)));
    server.route("/bob/did.json", Reply::Json("<html>".to_owned()));
    for did in [alice, bob] {
        let err = method
            .resolve(&did, &ResolveOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidDidDocument, "{did}: {err}");
    }
}

#[tokio::test]
async fn oversized_documents_are_refused() {
    let server = serve().await;
    let method = did_web(&server, config());
    let declared = did(&server, ":declared");
    server.route(
        "/declared/did.json",
        Reply::Large {
            bytes: 64 * 1024,
            content_length: true,
        },
    );
    let streamed = did(&server, ":streamed");
    server.route(
        "/streamed/did.json",
        Reply::Large {
            bytes: 64 * 1024,
            content_length: false,
        },
    );
    for did in [declared, streamed] {
        let err = method
            .resolve(&did, &ResolveOptions::default())
            .await
            .unwrap_err();
        assert_eq!(reason(&err), "the document is too large", "{did}");
    }
}

#[tokio::test]
async fn slow_servers_hit_the_time_limit() {
    let server = serve().await;
    let method = did_web(&server, config());
    let no_headers = did(&server, ":silent");
    server.route("/silent/did.json", Reply::StallHeaders);
    let no_body = did(&server, ":trickle");
    server.route("/trickle/did.json", Reply::StallBody);
    for did in [no_headers, no_body] {
        let err = method
            .resolve(&did, &ResolveOptions::default())
            .await
            .unwrap_err();
        assert_eq!(reason(&err), "the request timed out", "{did}");
    }
}

#[tokio::test]
async fn redirects_stay_on_the_same_host() {
    let server = serve().await;
    let method = did_web(&server, config());
    let port = server.addr.port();
    // Same host: followed.
    let moved = did(&server, ":moved");
    server.route(
        "/moved/did.json",
        Reply::Redirect("/new/did.json".to_owned()),
    );
    server.route("/new/did.json", Reply::Json(document(&moved)));
    method
        .resolve(&moved, &ResolveOptions::default())
        .await
        .unwrap();
    // Another host (which would serve a matching document): refused.
    let away = did(&server, ":away");
    server.route(
        "/away/did.json",
        Reply::Redirect(format!("https://{OTHER_HOST}:{port}/elsewhere/did.json")),
    );
    server.route("/elsewhere/did.json", Reply::Json(document(&away)));
    let err = method
        .resolve(&away, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "a redirect was refused");
    // Plain HTTP: refused.
    let plain = did(&server, ":plain");
    server.route(
        "/plain/did.json",
        Reply::Redirect(format!("http://{HOST}:{port}/new/did.json")),
    );
    let err = method
        .resolve(&plain, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "a redirect was refused");
}

#[tokio::test]
async fn a_server_outside_the_trust_anchors_is_refused() {
    let server = serve().await;
    let stranger = serve().await;
    // Trust `stranger`'s CA while talking to `server`.
    let method = did_web(
        &Server {
            addr: server.addr,
            ca: stranger.ca.clone(),
            ca_pem: stranger.ca_pem.clone(),
            routes: Arc::default(),
            connections: Arc::default(),
            requests: tokio::sync::mpsc::unbounded_channel().1,
        },
        config(),
    );
    let tenant = did(&server, ":tenants:acme");
    server.route("/tenants/acme/did.json", Reply::Json(document(&tenant)));
    let err = method
        .resolve(&tenant, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "the request failed");
}

#[tokio::test]
async fn did_web_has_no_versions() {
    let server = serve().await;
    let method = did_web(&server, config());
    let tenant = did(&server, ":t");
    let err = method
        .resolve(&tenant, &ResolveOptions::default().with_version_id("1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FeatureNotSupported);
}

#[tokio::test]
async fn a_host_on_a_loopback_address_is_refused_before_connecting() {
    let server = serve().await;
    let tenant = did(&server, ":tenants:acme");
    server.route("/tenants/acme/did.json", Reply::Json(document(&tenant)));
    // The same host, port and trust anchor as the other tests, without the opt-in.
    let policy = loopback_policy(&server).dangerous_allow_private_addresses(false);
    let method = did_web_with(&server, config(), &policy);
    let err = method
        .resolve(&tenant, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InternalError);
    assert_eq!(reason(&err), REFUSED_ADDRESS);
    // did:webvh logs are fetched under the same rule.
    let logs = HttpsLogSource::new(client(&server, &policy)).with_policy(&policy);
    let webvh = WebvhDid::parse(&format!(
        "did:webvh:{SCID}:{HOST}%3A{}:dids",
        server.addr.port()
    ))
    .unwrap();
    let err = logs.fetch(&webvh).await.unwrap_err();
    assert_eq!(reason(&err), REFUSED_ADDRESS);
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
    // With the opt-in the same DID resolves.
    let method = did_web(&server, config());
    method
        .resolve(&tenant, &ResolveOptions::default())
        .await
        .unwrap();
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ports_other_than_the_allowed_ones_are_refused() {
    let server = serve().await;
    let tenant = did(&server, ":t");
    server.route("/t/did.json", Reply::Json(document(&tenant)));
    // The default policy allows 443 only.
    let policy = FetchPolicy::default()
        .with_host(HOST, server.addr.ip())
        .dangerous_allow_private_addresses(true);
    let method = did_web_with(&server, config(), &policy);
    let err = method
        .resolve(&tenant, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "the DID's port is not allowed");
    let logs = HttpsLogSource::new(client(&server, &policy));
    let webvh =
        WebvhDid::parse(&format!("did:webvh:{SCID}:{HOST}%3A{}", server.addr.port())).unwrap();
    let err = logs.fetch(&webvh).await.unwrap_err();
    assert_eq!(reason(&err), "the DID's port is not allowed");
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn concurrent_fetches_are_bounded() {
    let mut server = serve().await;
    let policy = loopback_policy(&server)
        .with_max_concurrent_fetches(1)
        .unwrap()
        .with_queue_timeout(Duration::from_millis(100));
    let config = DidWebConfig {
        max_document_bytes: 16 * 1024,
        timeout_millis: 2_000,
    };
    let method = Arc::new(did_web_with(&server, config, &policy));
    let silent = did(&server, ":silent");
    server.route("/silent/did.json", Reply::StallHeaders);
    let busy = Arc::clone(&method);
    let stalled =
        tokio::spawn(async move { busy.resolve(&silent, &ResolveOptions::default()).await });
    // Once the first fetch reached the server it holds the only slot.
    assert_eq!(server.requests.recv().await.unwrap(), "/silent/did.json");
    let other = did(&server, ":other");
    server.route("/other/did.json", Reply::Json(document(&other)));
    let err = method
        .resolve(&other, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "too many DID documents are being fetched");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    let stalled = stalled.await.unwrap().unwrap_err();
    assert_eq!(reason(&stalled), "the request timed out");
    // The slot is free again.
    method
        .resolve(&other, &ResolveOptions::default())
        .await
        .unwrap();
}

/// Remote resolution as the DID server composes it when `resolver.remote_ca_file` is set: the
/// trust anchors read from a PEM file, one client for did:web and did:webvh, both methods in a
/// resolver; the test host on 127.0.0.1 through the fetch policy's opt-in.
#[tokio::test]
async fn did_web_and_did_webvh_resolve_remotely_with_anchors_from_a_pem_file() {
    use edk_core::FixedClock;
    use edk_did::methods::webvh::DidWebvh;
    use edk_did::webvh::{self, CreateOptions};
    use rustls::pki_types::pem::PemObject as _;

    let server = serve().await;
    let policy = loopback_policy(&server);
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &server.ca_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = client_builder_with_policy(roots, Duration::from_secs(5), &policy)
        .unwrap()
        .build()
        .unwrap();

    // A did:webvh log at https://did.example.test:<port>/dids/issuer/did.jsonl.
    let key = crate::webvh::key();
    let template = WebvhDid::template(
        &format!("{HOST}%3A{}", server.addr.port()),
        &["dids", "issuer"],
    )
    .unwrap();
    let log = webvh::create(
        CreateOptions::new(template, key.multikey.clone()),
        &key.signer,
        &key.multikey,
        crate::webvh::at(0),
    )
    .await
    .unwrap();
    let webvh_did = crate::webvh::did_of(&log);
    server.route("/dids/issuer/did.jsonl", Reply::Json(log.to_jsonl()));
    let web_did = did(&server, ":tenants:acme");
    server.route("/tenants/acme/did.json", Reply::Json(document(&web_did)));

    let clock = Arc::new(FixedClock::at_unix(crate::webvh::at(60).timestamp()));
    let logs = HttpsLogSource::new(client.clone()).with_policy(&policy);
    let resolver = Resolver::builder()
        .method(Arc::new(DidWeb::new(client, config()).with_policy(&policy)))
        .method(Arc::new(DidWebvh::new(Arc::new(logs), clock)))
        .build()
        .unwrap();
    for did in [web_did.as_str(), webvh_did.as_str()] {
        let resolution = resolver
            .resolve(None, did, &ResolveOptions::default())
            .await
            .unwrap();
        assert_eq!(resolution.document.unwrap().id, did);
    }
    // A PEM file with another CA: the TLS handshake fails.
    let stranger = serve().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(stranger.ca.clone()).unwrap();
    let untrusted = client_builder_with_policy(roots, Duration::from_secs(5), &policy)
        .unwrap()
        .build()
        .unwrap();
    let logs = HttpsLogSource::new(untrusted).with_policy(&policy);
    let err = logs
        .fetch(&WebvhDid::parse(&webvh_did).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "the request failed");
}
