//! Heap allocations per operation on the hot paths, counted by a counting global allocator
//! (dhat's, in testing mode):
//! one raw ES256 signature (the floor), SD-JWT VC issue, present with KB-JWT and verify with
//! KB-JWT, did:key resolution (uncached and cached), and the authorization server's token
//! endpoint (`client_credentials` and the pre-authorized code grant, SQLite, in process
//! through its HTTP endpoint, so routing, client authentication, the KMS signature, the audit
//! record and the redemption are all counted; the network stack is not).
//!
//! Each line: `ALLOC <operation>: <allocations>/op, <bytes>/op` over `ITERATIONS` operations
//! (default 2,000) after a warm-up. Allocations made by background tasks during the run (the
//! KMS's buffered audit writer) are counted with the operations that caused them.
//!
//! Run with: cargo bench -p edk-benches --bench allocations
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::Arc;

use edk_benches::{AsBench, IDENTITY_VC_NOW, identity_vc};
use edk_core::SystemClock;
use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_did::methods::key::DidKey;
use edk_did::{CacheConfig, DidResolver as _, ResolveOptions, Resolver};
use edk_oauth::PreAuthorizedCodeRequest;
use edk_oauth::grant::Grant;
use edk_tenancy::DatabaseConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use poem::Endpoint as _;
use poem::http::{Method, header};
use secrecy::ExposeSecret as _;

// dhat's allocator counts every allocation and its size while a profiler runs.
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn iterations() -> u64 {
    std::env::var("ITERATIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `op` a tenth of `n` times to warm up, then `n` times counting: prints the line.
async fn count<F, Fut>(name: &str, n: u64, mut op: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..n / 10 {
        op(n + i).await;
    }
    let before = dhat::HeapStats::get();
    for i in 0..n {
        op(i).await;
    }
    let after = dhat::HeapStats::get();
    let allocations = after.total_blocks - before.total_blocks;
    let bytes = after.total_bytes - before.total_bytes;
    println!(
        "ALLOC {name}: {:.1}/op, {:.0} B/op",
        allocations as f64 / n as f64,
        bytes as f64 / n as f64
    );
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    // Testing mode: counts only, no profile file written.
    let _profiler = dhat::Profiler::builder()
        .testing()
        .trim_backtraces(Some(4))
        .build();
    let n = iterations();
    crypto(n).await;
    did(n).await;
    token_endpoint(n).await;
}

async fn crypto(n: u64) {
    let issuer = SigningKey::generate(Algorithm::Es256).unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let message = [0x5a_u8; 600];
    count("ES256 raw sign (the floor)", n, |_| async {
        issuer.sign_bytes(&message).unwrap();
    })
    .await;

    let template = identity_vc(&holder);
    let options = IssueOptions::default();
    count("SD-JWT VC issue (10 claims, 8 disclosable)", n, |_| {
        let template = template.clone();
        let (issuer, options) = (&issuer, &options);
        async move {
            template.issue(issuer, options).await.unwrap();
        }
    })
    .await;
    let issued = template
        .clone()
        .issue(&issuer, &options)
        .await
        .unwrap()
        .to_string();

    let disclose: Vec<ClaimPath> = ["given_name", "family_name", "birthdate", "address"]
        .iter()
        .map(|path| path.parse().unwrap())
        .collect();
    let kb = KeyBindingClaims::new("https://verifier.example", "n-0S6_WzA2Mj", IDENTITY_VC_NOW);
    count("SD-JWT VC present with KB-JWT", n, |_| {
        let (issued, disclose, kb, holder) = (&issued, &disclose, &kb, &holder);
        async move {
            let parsed = SdJwt::parse(issued, &Limits::DEFAULT).unwrap();
            parsed
                .present(disclose, Some((kb, holder)))
                .await
                .unwrap()
                .to_string();
        }
    })
    .await;
    let presented = SdJwt::parse(&issued, &Limits::DEFAULT)
        .unwrap()
        .present(&disclose, Some((&kb, &holder)))
        .await
        .unwrap()
        .to_string();

    let resolver = JwksResolver::from_keys([&issuer.public_jwk()]);
    let verify =
        VcVerifyOptions::default().with_key_binding("https://verifier.example", "n-0S6_WzA2Mj");
    count("SD-JWT VC verify with KB-JWT", n, |_| {
        let (presented, resolver, verify) = (&presented, &resolver, &verify);
        async move {
            let parsed = SdJwt::parse(presented, &Limits::DEFAULT).unwrap();
            parsed
                .verify_vc(resolver, verify, IDENTITY_VC_NOW)
                .await
                .unwrap();
        }
    })
    .await;
}

async fn did(n: u64) {
    let uncached = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .build()
        .unwrap();
    let cached = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .cache(CacheConfig::default(), Arc::new(SystemClock))
        .build()
        .unwrap();
    let jwk = SigningKey::generate(Algorithm::Es256).unwrap().public_jwk();
    let did = DidKey::create(&jwk).unwrap().into_string();
    let options = ResolveOptions::default();
    count("did:key P-256 resolve, uncached", n, |_| {
        let (uncached, did, options) = (&uncached, &did, &options);
        async move {
            uncached.resolve(None, did, options).await.unwrap();
        }
    })
    .await;
    count("did:key P-256 resolve, cached", n, |_| {
        let (cached, did, options) = (&cached, &did, &options);
        async move {
            cached.resolve(None, did, options).await.unwrap();
        }
    })
    .await;
}

async fn token_endpoint(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (bench, app) = AsBench::start(DatabaseConfig::Sqlite(SqliteConfig::new(
        dir.path().join("db"),
    )))
    .await;
    let tenant = bench.tenant(8080).await;
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", tenant.client_id, tenant.client_secret)
        )
    );
    let post = |form: String, authorization: Option<&str>| {
        let mut request = poem::Request::builder()
            .method(Method::POST)
            .uri(poem::http::Uri::from_static("/bench/token"))
            .header(header::HOST, "localhost:8080")
            .content_type("application/x-www-form-urlencoded");
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        request.body(form)
    };
    count("token endpoint, client_credentials (SQLite)", n, |_| {
        let request = post(
            "grant_type=client_credentials&scope=api%3Aread".to_owned(),
            Some(&basic),
        );
        let app = &app;
        async move {
            let response = app.call(request).await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
    })
    .await;

    let mut grant = Grant::new("holder");
    grant.authorization_details = Some(
        serde_json::json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]),
    );
    let mut codes = Vec::new();
    for _ in 0..n + n / 10 {
        let minted = bench
            .server
            .mint_pre_authorized_code(
                &tenant.context,
                PreAuthorizedCodeRequest::new(grant.clone()),
            )
            .await
            .unwrap();
        codes.push(minted.code.expose_secret().to_owned());
    }
    count(
        "token endpoint, pre-authorized code redeemed (SQLite)",
        n,
        |i| {
            let code = &codes[usize::try_from(i).unwrap()];
            let request = post(
                format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Apre-authorized_code&pre-authorized_code={code}"
                ),
                None,
            );
            let app = &app;
            async move {
                let response = app.call(request).await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
            }
        },
    )
    .await;
    bench.stop().await;
}
