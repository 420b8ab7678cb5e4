//! `resolve-dids`: resolves did:key, did:jwk, did:web and did:webvh DIDs with edk-did's
//! cached [`Resolver`], and verifies a JWS whose `kid` is a DID URL with [`DidKeyResolver`].
//!
//! Run with: `cargo run -p resolve-dids -- <DID>... [--verify <JWS>]` (see this example's
//! README.md).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use edk_core::jose::{Jws, VerifyPolicy};
use edk_core::{Clock, Limits, SystemClock};
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::methods::web::{DidWeb, DidWebConfig, client_builder};
use edk_did::methods::webvh::{DidWebvh, HttpsLogSource};
use edk_did::{
    CacheConfig, DidKeyResolver, DidResolver as _, ErrorStyle, ResolveOptions, Resolver,
    resolution_result,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Map, Value, json};

/// Resolves DIDs and verifies JWSs signed by DID keys.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A PEM file of trust anchors for did:web and did:webvh over HTTPS, in addition to the
    /// Mozilla root store (repeatable).
    #[arg(long = "ca-file")]
    ca_files: Vec<PathBuf>,
    /// A compact JWS to verify (repeatable): its `kid` is a DID URL naming an
    /// `assertionMethod` key of the DID, and its `iss`, when present, is that DID.
    #[arg(long)]
    verify: Vec<String>,
    /// The DIDs to resolve; each resolution result is printed as one line of JSON.
    dids: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let resolver = Arc::new(resolver(&args.ca_files)?);
    let mut failed = false;
    for did in &args.dids {
        let outcome = resolver
            .resolve(None, did, &ResolveOptions::default())
            .await;
        failed |= outcome.is_err();
        let result = resolution_result(&outcome, ErrorStyle::Problem);
        writeln!(std::io::stdout(), "{result}")?;
    }
    for token in &args.verify {
        // Resolves the DID of the `kid` again: served from the cache if resolved above.
        match verify(Arc::clone(&resolver), token).await {
            Ok((kid, claims)) => {
                let verified = json!({ "verified": true, "kid": kid, "claims": claims });
                writeln!(std::io::stdout(), "{verified}")?;
            }
            Err(err) => {
                writeln!(std::io::stderr(), "the JWS does not verify: {err:#}")?;
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A resolver for the four methods with a cache. did:web and did:webvh fetch over HTTPS
/// only, through a client trusting the Mozilla roots and `ca_files`, with time limits.
fn resolver(ca_files: &[PathBuf]) -> anyhow::Result<Resolver> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in ca_files {
        let certificates = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for certificate in certificates {
            let certificate =
                certificate.with_context(|| format!("cannot read {}", path.display()))?;
            roots.add(certificate)?;
        }
    }
    let client = client_builder(roots, Duration::from_secs(10))?
        .dns_resolver(Arc::new(LocalhostIsLoopback))
        .build()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let resolver = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidJwk))
        .method(Arc::new(DidWeb::new(
            client.clone(),
            DidWebConfig::default(),
        )))
        .method(Arc::new(DidWebvh::new(
            Arc::new(HttpsLogSource::new(client)),
            Arc::clone(&clock),
        )))
        .cache(CacheConfig::default(), clock)
        .build()?;
    Ok(resolver)
}

/// Verifies `token` with the key its `kid` (a DID URL) names: the kid and the claims.
async fn verify(
    resolver: Arc<Resolver>,
    token: &str,
) -> anyhow::Result<(String, Map<String, Value>)> {
    let jws = Jws::parse(token, &Limits::default())?;
    let kid = jws.header().kid.clone().context("the JWS has no kid")?;
    // The claimed issuer, read before verification only to require that the key is the
    // issuer's own.
    let issuer = serde_json::from_slice::<Value>(jws.unverified_payload())
        .ok()
        .and_then(|claims| claims.get("iss")?.as_str().map(str::to_owned));
    let keys = DidKeyResolver::new(resolver);
    let verified = jws
        .verify_with(&keys, &VerifyPolicy::default(), issuer.as_deref())
        .await?;
    Ok((kid, verified.claims()?))
}

/// Name resolution that answers the loopback address for `localhost` and its subdomains (as
/// RFC 6761 §6.3 asks; some system resolvers do not) and asks the system for other names.
#[derive(Debug)]
struct LocalhostIsLoopback;

impl reqwest::dns::Resolve for LocalhostIsLoopback {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = if host == "localhost" || host.ends_with(".localhost")
            {
                vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}
