//! did:webvh through the resolver: the `DidWebvh` method over an in-memory source and over
//! HTTPS on loopback.

use std::collections::HashMap;
use std::sync::Arc;

use edk_core::FixedClock;
use edk_did::methods::fetch::FetchPolicy;
use edk_did::methods::webvh::{DidWebvh, HttpsLogSource, LogFiles, LogSource, StaticLogSource};
use edk_did::webvh::{self, UpdateOptions, WebvhDid};
use edk_did::{DidResolver as _, ErrorCode, ResolveOptions, Resolver};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::webvh::{at, created, did_of, key};

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::at_unix(at(1_000).timestamp()))
}

#[tokio::test]
async fn resolver_resolves_did_webvh_versions_from_a_static_source() {
    let key = key();
    let mut log = created(|_| {}, &key).await;
    let entry = webvh::update(
        &log,
        UpdateOptions::default(),
        &key.signer,
        &key.multikey,
        at(10),
    )
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
    let resolver = Resolver::builder()
        .method(Arc::new(DidWebvh::new(Arc::new(source), clock())))
        .build()
        .unwrap();

    let latest = resolver
        .resolve(None, &did, &ResolveOptions::default())
        .await
        .unwrap();
    let document = latest.document.unwrap();
    assert_eq!(document.id, did);
    assert!(document.service.len() >= 2, "implicit #files and #whois");
    assert_eq!(
        latest.document_metadata.version_id.as_deref(),
        Some(log.entries()[1].version_id())
    );
    assert_eq!(latest.document_metadata.extra["versionNumber"], 2);
    assert_eq!(latest.cache_ttl, Some(std::time::Duration::from_secs(3600)));

    let first = resolver
        .resolve(
            None,
            &did,
            &ResolveOptions::default().with_version_number(1),
        )
        .await
        .unwrap();
    assert_eq!(
        first.document_metadata.version_id.as_deref(),
        Some(log.entries()[0].version_id())
    );
    let missing = resolver
        .resolve(
            None,
            &did,
            &ResolveOptions::default().with_version_id("7-Qmabc"),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);

    // An unknown DID is not found; a tampered log is an invalid DID.
    let other = did.replace("dids:issuer", "dids:other");
    let err = resolver
        .resolve(None, &other, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let mut tampered = StaticLogSource::new();
    tampered.insert(
        &WebvhDid::parse(&did).unwrap(),
        LogFiles {
            log: log.to_jsonl().replacen("example.com", "example.org", 1),
            witness: None,
        },
    );
    let method = DidWebvh::new(Arc::new(tampered), clock());
    let resolver = Resolver::builder()
        .method(Arc::new(method))
        .build()
        .unwrap();
    let err = resolver
        .resolve(None, &did, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidDid);
}

/// Serves `files` by path over HTTPS as `example.com` on `listener`, one connection at a
/// time; returns the certificate to trust.
fn serve(listener: TcpListener, files: HashMap<String, String>) -> CertificateDer<'static> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["example.com".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
            let response = match files.get(&path) {
                Some(body) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/jsonl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
            };
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    cert
}

#[tokio::test]
async fn did_webvh_resolves_over_https_on_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = key();
    let mut options = webvh::CreateOptions::new(
        WebvhDid::template(&format!("example.com%3A{port}"), &["dids", "issuer"]).unwrap(),
        key.multikey.clone(),
    );
    options.ttl = Some(60);
    let log = webvh::create(options, &key.signer, &key.multikey, at(0))
        .await
        .unwrap();
    let did = did_of(&log);
    let files = HashMap::from([("/dids/issuer/did.jsonl".to_owned(), log.to_jsonl())]);
    let cert = serve(listener, files);

    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(&cert).unwrap())
        .resolve(
            "example.com",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    // The loopback server's port (the default policy allows 443 only).
    let policy = FetchPolicy::default().with_allowed_ports(&[port]).unwrap();
    let source = HttpsLogSource::new(client.clone()).with_policy(&policy);
    let method = DidWebvh::new(Arc::new(source), clock());
    let resolver = Resolver::builder()
        .method(Arc::new(method))
        .build()
        .unwrap();
    let resolution = resolver
        .resolve(None, &did, &ResolveOptions::default())
        .await
        .unwrap();
    assert_eq!(resolution.document.unwrap().id, did);
    assert_eq!(
        resolution.cache_ttl,
        Some(std::time::Duration::from_secs(60))
    );

    // Another path on the same host has no log: not found.
    let other = did.replace("dids:issuer", "dids:nobody");
    let err = resolver
        .resolve(None, &other, &ResolveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);

    // A log larger than the limit is refused.
    let small = HttpsLogSource::new(client)
        .with_policy(&policy)
        .with_max_bytes(16);
    let err = small
        .fetch(&WebvhDid::parse(&did).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InternalError);
}
