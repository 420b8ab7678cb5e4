//! `resolve-dids`: resolves did:key, did:jwk, did:web and did:webvh DIDs with edk-did's
//! cached [`Resolver`], and verifies a JWS whose `kid` is a DID URL with [`DidKeyResolver`].
//!
//! Run with: `cargo run -p resolve-dids -- <DID>... [--verify <JWS>]` (see this example's
//! README.md).

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use edk_core::jose::{Jws, VerifyPolicy};
use edk_core::{Clock, ErrorChain, Limits, SystemClock};
use edk_did::methods::fetch::FetchPolicy;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::methods::web::{DidWeb, DidWebConfig, client_builder_with_policy};
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
    /// A port did:web and did:webvh hosts may name (repeatable); 443 only when absent.
    #[arg(long = "allow-port")]
    allowed_ports: Vec<u16>,
    /// A fixed address for a host name, `NAME=IP`, used instead of DNS (repeatable).
    #[arg(long = "host", value_parser = parse_host)]
    hosts: Vec<(String, IpAddr)>,
    /// Also fetch from loopback, private and link-local addresses. Dangerous: a DID could
    /// make the resolver fetch from its own network. Only for local tests.
    #[arg(long)]
    dangerous_allow_private_addresses: bool,
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
    let resolver = Arc::new(resolver(&args)?);
    let mut failed = false;
    for did in &args.dids {
        let outcome = resolver
            .resolve(None, did, &ResolveOptions::default())
            .await;
        let result = resolution_result(&outcome, ErrorStyle::Problem);
        writeln!(std::io::stdout(), "{result}")?;
        if let Err(err) = &outcome {
            // The result hides the cause of internal errors; this program's user may see it.
            writeln!(
                std::io::stderr(),
                "cannot resolve {did}: {}",
                ErrorChain(err)
            )?;
            failed = true;
        }
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
/// only, through a client trusting the Mozilla roots and the `--ca-file`s, with time limits,
/// under a fetch policy: the allowed ports, and public addresses only unless told otherwise.
fn resolver(args: &Args) -> anyhow::Result<Resolver> {
    let mut policy = FetchPolicy::default()
        .dangerous_allow_private_addresses(args.dangerous_allow_private_addresses);
    if !args.allowed_ports.is_empty() {
        policy = policy.with_allowed_ports(&args.allowed_ports)?;
    }
    for (name, address) in &args.hosts {
        policy = policy.with_host(name, *address);
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in &args.ca_files {
        let certificates = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for certificate in certificates {
            let certificate =
                certificate.with_context(|| format!("cannot read {}", path.display()))?;
            roots.add(certificate)?;
        }
    }
    let client = client_builder_with_policy(roots, Duration::from_secs(10), &policy)?.build()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let web = DidWeb::new(client.clone(), DidWebConfig::default()).with_policy(&policy);
    let logs = HttpsLogSource::new(client).with_policy(&policy);
    let resolver = Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidJwk))
        .method(Arc::new(web))
        .method(Arc::new(DidWebvh::new(Arc::new(logs), Arc::clone(&clock))))
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

/// `NAME=IP` of `--host`.
fn parse_host(value: &str) -> Result<(String, IpAddr), String> {
    let (name, address) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not NAME=IP"))?;
    let address = address
        .parse()
        .map_err(|_| format!("`{address}` is not an IP address"))?;
    Ok((name.to_owned(), address))
}
