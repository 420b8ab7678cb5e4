//! OpenID4VP presentation verification in process with edk-oid4vp: one `direct_post`
//! response carrying an SD-JWT VC (ES256, x5c chain to a trust anchor, two disclosures, a
//! Token Status List reference) with an ES256 Key Binding JWT, parsed from its form and
//! verified against its request (issuer signature and chain, disclosures, KB-JWT `aud`,
//! `nonce`, `sd_hash` and `iat`, status through a warm `StatusListCache`, the DCQL query),
//! next to the raw-crypto floor of the same group: the two ES256 verifies (issuer signature,
//! KB-JWT signature) any verifier must do. The presentation is verified twice: with the x5c
//! chain validated in full each time, and with validated chains kept in an `X5cChainCache`.
//!
//! A second group measures the status check alone: cold (the Status List Token fetched over
//! HTTP from a server on loopback, its signature verified and its list decompressed) and warm
//! (read from the `StatusListCache`).
//!
//! Run with: cargo bench -p edk-benches --bench oid4vp
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::ErrorKind;
use edk_core::FixedClock;
use edk_core::clock::Clock;
use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey};
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::status_list::{
    Bits, FetchedToken, InMemoryFetcher, StatusList, StatusListCache, StatusListReference,
    StatusListToken, StatusListTokenClaims,
};
use edk_core::status_list::{FetchError, StatusListFetcher};
use edk_core::x5c::{X5cChainCache, X5cResolver};
use edk_oid4vp::{
    AuthorizationRequest, AuthorizationResponse, ClientId, CredentialStatus, DcqlQuery,
    PresentationVerifier, ResponseLimits, StatusCheck, StatusReference,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};

/// 2026-06-01T00:00:00Z.
const NOW: i64 = 1_780_272_000;
const STATUS_URI: &str = "https://issuer.example/status-lists/1";
const VCT: &str = "https://credentials.example.com/identity";

/// The verifier's Status List cache as edk-oid4vp's status hook.
#[derive(Debug)]
struct CachedStatus(StatusListCache);

#[async_trait]
impl StatusCheck for CachedStatus {
    async fn status(
        &self,
        reference: &StatusReference,
    ) -> Result<CredentialStatus, Box<dyn std::error::Error + Send + Sync>> {
        let idx = usize::try_from(reference.idx)?;
        let status = self
            .0
            .status(&StatusListReference::new(idx, reference.uri.clone())?)
            .await?;
        Ok(CredentialStatus::from_value(status.value()))
    }
}

/// An issuer root (the trust anchor, DER) and the leaf that signs credentials under it.
fn issuer_pki() -> (Vec<u8>, Vec<u8>, SigningKey) {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
    root.distinguished_name
        .push(DnType::CommonName, "Bench issuer root");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = rcgen::date_time_ymd(2025, 1, 1);
    root.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let root_der = root.self_signed(&root_key).expect("root").der().to_vec();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut leaf = CertificateParams::new(vec!["issuer.example".to_owned()]).expect("params");
    leaf.distinguished_name
        .push(DnType::CommonName, "Bench issuer");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(2025, 6, 1);
    leaf.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let leaf_der = leaf
        .signed_by(&leaf_key, &Issuer::new(root, root_key))
        .expect("leaf")
        .der()
        .to_vec();
    let signer =
        SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).expect("leaf key");
    (root_der, leaf_der, signer)
}

fn standard(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn oid4vp(c: &mut Criterion) {
    edk_server::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::at_unix(NOW));
    let (root, leaf, issuer) = issuer_pki();
    let holder = SigningKey::generate(Algorithm::Es256).expect("holder key");

    // A published status list of 100,000 entries (index 7 valid), fetched once into the cache.
    let status_key = SigningKey::generate(Algorithm::Es256).expect("status key");
    let list = StatusList::new(Bits::One, 100_000);
    let claims = StatusListTokenClaims::new(STATUS_URI, NOW - 60, &list)
        .expect("claims")
        .with_exp(NOW + 86_400)
        .with_ttl(3_600);
    let token = runtime
        .block_on(StatusListToken::issue(
            Header::new(Algorithm::Es256).with_kid("status-1"),
            &claims,
            &status_key,
        ))
        .expect("status list token");
    let fetcher = Arc::new(InMemoryFetcher::new());
    fetcher.insert(STATUS_URI, FetchedToken::jwt(&token));
    let status_keys = JwksResolver::from_keys([&status_key.public_jwk().with_kid("status-1")]);
    let status_keys: Arc<JwksResolver> = Arc::new(status_keys);
    let cache = StatusListCache::new(fetcher.clone(), status_keys.clone(), Arc::clone(&clock));
    runtime
        .block_on(cache.status(&StatusListReference::new(7, STATUS_URI).expect("reference")))
        .expect("warm the cache");
    let status: Arc<CachedStatus> = Arc::new(CachedStatus(cache));
    let full_chain = PresentationVerifier::new(
        Arc::new(X5cResolver::new([root.clone()], Arc::clone(&clock)).expect("anchors")),
        Arc::clone(&clock),
    )
    .with_status_check(status.clone());
    let chains = Arc::new(X5cChainCache::new(1_024));
    let cached_chain = PresentationVerifier::new(
        Arc::new(
            X5cResolver::new([root], Arc::clone(&clock))
                .expect("anchors")
                .with_chain_cache(Arc::clone(&chains)),
        ),
        Arc::clone(&clock),
    )
    .with_status_check(status);

    let query = DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "identity",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [VCT]},
            "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]
        }]
    }))
    .expect("query");
    let mut request = AuthorizationRequest::direct_post(
        ClientId::parse("x509_san_dns:verifier.example").expect("client id"),
        url::Url::parse("https://verifier.example/response").expect("url"),
        "n-0S6_WzA2Mj-4nGtw3fZh",
        query,
    );
    request.state = Some("st-8c2f1a".to_owned());

    let credential = runtime
        .block_on(
            SdJwtVcBuilder::new(VCT)
                .issuer("https://issuer.example")
                .issued_at(NOW - 3_600)
                .holder_key(&holder.public_jwk())
                .claim("given_name", "Erika")
                .claim("family_name", "Mustermann")
                .selectively_disclose(ClaimPath::new(["given_name"]))
                .selectively_disclose(ClaimPath::new(["family_name"]))
                .status(json!({"status_list": {"idx": 7, "uri": STATUS_URI}}))
                .x5c(vec![standard(&leaf)])
                .issue(&issuer, &IssueOptions::default()),
        )
        .expect("credential");
    let kb = KeyBindingClaims::new(
        "x509_san_dns:verifier.example",
        request.nonce.clone(),
        NOW - 5,
    );
    let presentation = runtime
        .block_on(credential.present(
            &[
                ClaimPath::new(["given_name"]),
                ClaimPath::new(["family_name"]),
            ],
            Some((&kb, &holder)),
        ))
        .expect("presentation")
        .to_string();
    let form = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("identity".to_owned(), vec![Value::String(presentation)])]),
        state: request.state.clone(),
    }
    .to_form();

    let verify = |verifier: &PresentationVerifier| {
        runtime.block_on(async {
            let response =
                AuthorizationResponse::from_form(form.as_bytes(), &ResponseLimits::DEFAULT)
                    .expect("form");
            verifier
                .verify(&request, &response, None)
                .await
                .expect("verified")
        })
    };
    for verifier in [&full_chain, &cached_chain] {
        let verified = verify(verifier);
        assert_eq!(verified.claims()["identity"][0]["given_name"], "Erika");
    }
    assert_eq!(chains.len(), 1, "the validated chain is cached");
    assert_eq!(
        fetcher.fetches(STATUS_URI),
        1,
        "the status cache stays warm"
    );

    // The floor: the issuer's and the holder's ES256 signatures over messages of the same
    // shape, verified with keys already parsed.
    let issuer_message = vec![b'a'; 700];
    let issuer_signature = issuer.sign_bytes(&issuer_message).expect("sign");
    let kb_message = vec![b'b'; 250];
    let kb_signature = holder.sign_bytes(&kb_message).expect("sign");

    let mut group = c.benchmark_group("oid4vp/verify presentation");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw-crypto floor: two ES256 verifies", |b| {
        b.iter(|| {
            issuer
                .verifying_key()
                .verify(Algorithm::Es256, &issuer_message, &issuer_signature)
                .expect("verify");
            holder
                .verifying_key()
                .verify(Algorithm::Es256, &kb_message, &kb_signature)
                .expect("verify");
        });
    });
    group.bench_function(
        "SD-JWT VC + KB-JWT, x5c chain validated in full, warm status cache, DCQL",
        |b| b.iter(|| verify(&full_chain)),
    );
    group.bench_function(
        "SD-JWT VC + KB-JWT, x5c chain from the chain cache, warm status cache, DCQL",
        |b| b.iter(|| verify(&cached_chain)),
    );
    group.finish();

    status_check(c, &runtime, &clock, &status_key, &status_keys);
}

/// Publishes a Status List Token of 100,000 entries (index 7 valid) signed by `key` as
/// `application/statuslist+jwt` on a loopback port; returns its URI.
fn serve_status_list(runtime: &tokio::runtime::Runtime, key: &SigningKey) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let uri = format!(
        "http://{}/status-lists/1",
        listener.local_addr().expect("address")
    );
    let list = StatusList::new(Bits::One, 100_000);
    let claims = StatusListTokenClaims::new(&uri, NOW - 60, &list)
        .expect("claims")
        .with_exp(NOW + 86_400)
        .with_ttl(3_600);
    let token = runtime
        .block_on(StatusListToken::issue(
            Header::new(Algorithm::Es256).with_kid("status-1"),
            &claims,
            key,
        ))
        .expect("status list token");
    let app = axum::Router::new().route(
        "/status-lists/1",
        axum::routing::get(move || {
            let token = token.clone();
            async move { ([("content-type", "application/statuslist+jwt")], token) }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    uri
}

/// A [`StatusListFetcher`] over HTTP with one `reqwest` client (connections kept alive).
#[derive(Debug)]
struct HttpFetcher(reqwest::Client);

#[async_trait]
impl StatusListFetcher for HttpFetcher {
    async fn fetch(&self, uri: &str) -> Result<FetchedToken, FetchError> {
        let unavailable = |err: reqwest::Error| FetchError::new(ErrorKind::Unavailable, err);
        let response = self
            .0
            .get(uri)
            .header("accept", "application/statuslist+jwt")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(unavailable)?;
        Ok(FetchedToken::new(body.to_vec(), content_type))
    }
}

/// The status check of one credential: cold (the list fetched over loopback HTTP, its token
/// verified, the list decompressed) and warm (from the cache).
fn status_check(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    clock: &Arc<dyn Clock>,
    key: &SigningKey,
    keys: &Arc<JwksResolver>,
) {
    let uri = serve_status_list(runtime, key);
    let cache = StatusListCache::new(
        Arc::new(HttpFetcher(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        )),
        keys.clone(),
        Arc::clone(clock),
    );
    let reference = StatusListReference::new(7, uri.as_str()).expect("reference");
    let check = || {
        runtime
            .block_on(cache.status(&reference))
            .expect("status")
            .value()
    };
    assert_eq!(check(), 0, "index 7 is valid");

    let mut group = c.benchmark_group("oid4vp/status check");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "cold: Status List Token fetched over loopback HTTP and verified, 100,000 entries",
        |b| {
            b.iter(|| {
                cache.invalidate(&uri);
                check()
            });
        },
    );
    group.bench_function("warm: from the StatusListCache", |b| b.iter(&check));
    group.finish();
}

criterion_group!(benches, oid4vp);
criterion_main!(benches);
