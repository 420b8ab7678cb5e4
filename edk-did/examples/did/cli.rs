//! The `did` command line, kept apart from `main` so the integration tests run the same code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use edk_core::clock::{Clock as _, SystemClock};
use edk_core::jose::{Algorithm, Jwk, SigningKey};
use edk_did::methods::fetch::FetchPolicy;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::methods::web::{DidWeb, DidWebConfig, client_builder_with_policy};
use edk_did::methods::webvh::{DidWebvh, HttpsLogSource, LogFiles, LogSource, StaticLogSource};
use edk_did::webvh::{self, CreateOptions, DidLog, Multikey, UpdateOptions, WebvhDid};
use edk_did::{DidResolver, ErrorStyle, ResolveOptions, Resolver, resolution_result};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// EDK DID tool.
#[derive(Debug, Parser)]
#[command(name = "did", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Resolve a DID and print the DID resolution result as JSON.
    Resolve(ResolveArgs),
    /// Create a did:webvh DID: writes `OUT/did.jsonl` and the update key `OUT/key.jwk` (with
    /// `--pre-rotation` also the committed next key `OUT/next-key.jwk`); prints the DID.
    WebvhCreate {
        /// The host (and `%3A<port>`), e.g. `example.com`.
        #[arg(long)]
        domain: String,
        /// Path below the host, e.g. `dids/issuer`.
        #[arg(long)]
        path: Option<String>,
        /// Commit to the next update key (pre-rotation).
        #[arg(long)]
        pre_rotation: bool,
        /// Allow the DID to move to another domain later.
        #[arg(long)]
        portable: bool,
        /// The folder to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Append an update to a did:webvh log; prints the new versionId. With pre-rotation
    /// active every update moves to the committed key.
    WebvhUpdate {
        /// The folder `webvh-create` wrote.
        #[arg(long)]
        dir: PathBuf,
        /// A service to add or replace: `ID,TYPE,URL` (ID may be `#name`).
        #[arg(long)]
        add_service: Vec<String>,
        /// A URI to add to `alsoKnownAs`.
        #[arg(long)]
        also_known_as: Vec<String>,
        /// Replace the update key.
        #[arg(long)]
        rotate: bool,
    },
    /// Deactivate a did:webvh DID; prints the DID.
    WebvhDeactivate {
        /// The folder `webvh-create` wrote.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the did:web document to publish beside a did:webvh log.
    WebvhDidWeb {
        /// The folder `webvh-create` wrote.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Arguments of `resolve`.
#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// The DID to resolve.
    pub(crate) did: String,
    /// A did:webvh log (did.jsonl) to resolve from instead of fetching it.
    #[arg(long)]
    pub(crate) log: Option<PathBuf>,
    /// The wanted representation (media type), e.g. application/did+json.
    #[arg(long)]
    pub(crate) accept: Option<String>,
    /// A version of the document.
    #[arg(long)]
    pub(crate) version_id: Option<String>,
    /// The version valid at this time (did:webvh), e.g. 2026-01-01T00:00:00Z.
    #[arg(long)]
    pub(crate) version_time: Option<DateTime<Utc>>,
    /// A version by number (did:webvh).
    #[arg(long)]
    pub(crate) version_number: Option<u64>,
    /// A did:webvh witness file (did-witness.json) to use with `--log`.
    #[arg(long)]
    pub(crate) witness: Option<PathBuf>,
    /// Write errors as legacy strings (`notFound`) instead of problem objects.
    #[arg(long)]
    pub(crate) legacy_errors: bool,
    /// PEM file of the trust anchors for did:web (HTTPS); without it did:web trusts nobody.
    #[arg(long)]
    pub(crate) ca_file: Option<PathBuf>,
    /// Time limit for one did:web fetch, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) timeout_ms: u64,
    /// A port DIDs may name besides 443 (repeatable).
    #[arg(long = "allow-port")]
    pub(crate) allow_ports: Vec<u16>,
    /// Also fetch from loopback, private and link-local addresses (dangerous).
    #[arg(long)]
    pub(crate) dangerous_allow_private_addresses: bool,
}

/// Runs `cli`, writing results to `out`.
pub(crate) async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    let now = DateTime::<Utc>::from(SystemClock.now());
    let printed = match cli.command {
        Command::Resolve(args) => return resolve(args, out).await,
        Command::WebvhCreate {
            domain,
            path,
            pre_rotation,
            portable,
            out: dir,
        } => webvh_create(&domain, path.as_deref(), pre_rotation, portable, &dir, now).await?,
        Command::WebvhUpdate {
            dir,
            add_service,
            also_known_as,
            rotate,
        } => webvh_update(&dir, &add_service, &also_known_as, rotate, now).await?,
        Command::WebvhDeactivate { dir } => webvh_deactivate(&dir, now).await?,
        Command::WebvhDidWeb { dir } => {
            let log = read_log(&dir)?;
            let verified = webvh::verify_log(&log, None, now);
            let current = verified
                .latest()
                .map_err(|err| anyhow!("the log does not verify: {err}"))?;
            serde_json::to_string_pretty(&webvh::did_web_document(&current.document)?)?
        }
    };
    writeln!(out, "{printed}")?;
    Ok(())
}

async fn resolve(args: ResolveArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.log.is_some() && !args.did.starts_with("did:webvh:") {
        bail!("--log is only for did:webvh DIDs");
    }
    let resolver = resolver(&args)?;
    let mut opts = ResolveOptions::default();
    if let Some(accept) = &args.accept {
        opts = opts.with_accept(accept);
    }
    if let Some(version_id) = &args.version_id {
        opts = opts.with_version_id(version_id);
    }
    if let Some(time) = args.version_time {
        opts = opts.with_version_time(time);
    }
    if let Some(number) = args.version_number {
        opts = opts.with_version_number(number);
    }
    let outcome = resolver.resolve(None, &args.did, &opts).await;
    let style = if args.legacy_errors {
        ErrorStyle::Legacy
    } else {
        ErrorStyle::Problem
    };
    let result = resolution_result(&outcome, style);
    match outcome {
        Ok(_) => {
            serde_json::to_writer_pretty(&mut *out, &result)?;
            writeln!(out)?;
            Ok(())
        }
        Err(err) => Err(anyhow::Error::new(err).context(result.to_string())),
    }
}

fn resolver(args: &ResolveArgs) -> anyhow::Result<Resolver> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &args.ca_file {
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
        {
            roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
        }
    }
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut ports = vec![443];
    ports.extend(&args.allow_ports);
    let policy = FetchPolicy::default()
        .with_allowed_ports(&ports)?
        .dangerous_allow_private_addresses(args.dangerous_allow_private_addresses);
    let client = client_builder_with_policy(roots, timeout, &policy)?.build()?;
    let web = DidWeb::new(
        client.clone(),
        DidWebConfig {
            timeout_millis: args.timeout_ms,
            ..DidWebConfig::default()
        },
    )
    .with_policy(&policy);
    // did:webvh reads the log given with --log (offline), or fetches it over HTTPS.
    let source: Arc<dyn LogSource> = match &args.log {
        Some(path) => {
            let did = WebvhDid::parse(&args.did)?;
            let log = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let witness = args
                .witness
                .as_ref()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let mut source = StaticLogSource::new();
            source.insert(&did, LogFiles { log, witness });
            Arc::new(source)
        }
        None => Arc::new(HttpsLogSource::new(client).with_policy(&policy)),
    };
    Ok(Resolver::builder()
        .method(Arc::new(DidKey::new()))
        .method(Arc::new(DidJwk))
        .method(Arc::new(web))
        .method(Arc::new(DidWebvh::new(source, Arc::new(SystemClock))))
        .build()?)
}

async fn webvh_create(
    domain: &str,
    path: Option<&str>,
    pre_rotation: bool,
    portable: bool,
    out: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let segments: Vec<&str> = path
        .map(|p| p.split('/').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let template = WebvhDid::template(domain, &segments)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if out.join("did.jsonl").exists() {
        bail!("{} already holds a did.jsonl", out.display());
    }
    let key = new_key()?;
    let multikey = multikey_of(&key)?;
    let mut options = CreateOptions::new(template.clone(), multikey.clone());
    options.portable = portable;
    options.document = Some(document_with_key(template.as_str(), &multikey));
    if pre_rotation {
        let next = new_key()?;
        options.next_key_hashes = vec![multikey_of(&next)?.key_hash()];
        save_key(&out.join("next-key.jwk"), &next)?;
    }
    let log = webvh::create(options, &key, &multikey, now).await?;
    save_key(&out.join("key.jwk"), &key)?;
    write(&out.join("did.jsonl"), &log.to_jsonl())?;
    did_of(&log)
}

async fn webvh_update(
    dir: &Path,
    add_service: &[String],
    also_known_as: &[String],
    rotate: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut log = read_log(dir)?;
    let verified = webvh::verify_log(&log, None, now);
    let current = verified
        .latest()
        .map_err(|err| anyhow!("the log does not verify: {err}"))?;
    let mut document = current.document.clone();
    for service in add_service {
        let mut parts = service.splitn(3, ',');
        let (Some(id), Some(kind), Some(url)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("--add-service takes ID,TYPE,URL, got `{service}`");
        };
        webvh::set_service(&mut document, id, kind, url);
    }
    for uri in also_known_as {
        webvh::add_also_known_as(&mut document, uri);
    }
    // With pre-rotation active every update moves to the committed key and commits to a
    // fresh one; otherwise `--rotate` replaces the key, signed by the old one.
    let pre_rotation = current.parameters.pre_rotation();
    let mut options = UpdateOptions::default();
    let mut next_key = None;
    let mut rotated_to = None;
    let signer = if pre_rotation {
        let new = load_key(&dir.join("next-key.jwk"))?;
        let next = new_key()?;
        options.update_keys = Some(vec![multikey_of(&new)?]);
        options.next_key_hashes = Some(vec![multikey_of(&next)?.key_hash()]);
        replace_key(&mut document, &multikey_of(&new)?);
        next_key = Some(next);
        new
    } else {
        load_key(&dir.join("key.jwk"))?
    };
    if rotate && !pre_rotation {
        let new = new_key()?;
        options.update_keys = Some(vec![multikey_of(&new)?]);
        replace_key(&mut document, &multikey_of(&new)?);
        rotated_to = Some(new);
    }
    options.document = Some(document);
    let multikey = multikey_of(&signer)?;
    let entry = webvh::update(&log, options, &signer, &multikey, now).await?;
    let version_id = entry.version_id().to_owned();
    log.push(entry);
    if let Some(next) = next_key {
        save_key(&dir.join("key.jwk"), &signer)?;
        save_key(&dir.join("next-key.jwk"), &next)?;
    }
    if let Some(new) = rotated_to {
        save_key(&dir.join("key.jwk"), &new)?;
    }
    write(&dir.join("did.jsonl"), &log.to_jsonl())?;
    Ok(version_id)
}

async fn webvh_deactivate(dir: &Path, now: DateTime<Utc>) -> anyhow::Result<String> {
    let mut log = read_log(dir)?;
    let verified = webvh::verify_log(&log, None, now);
    let current = verified
        .latest()
        .map_err(|err| anyhow!("the log does not verify: {err}"))?;
    let file = if current.parameters.pre_rotation() {
        "next-key.jwk"
    } else {
        "key.jwk"
    };
    let key = load_key(&dir.join(file))?;
    let multikey = multikey_of(&key)?;
    for entry in webvh::deactivate(&log, &key, &multikey, now).await? {
        log.push(entry);
    }
    write(&dir.join("did.jsonl"), &log.to_jsonl())?;
    did_of(&log)
}

fn new_key() -> anyhow::Result<SigningKey> {
    Ok(SigningKey::generate(Algorithm::EdDsa)?)
}

fn multikey_of(key: &SigningKey) -> anyhow::Result<Multikey> {
    Ok(Multikey::from_verifying_key(key.verifying_key())?)
}

fn document_with_key(did: &str, key: &Multikey) -> Value {
    json!({
        "@context": [webvh::DID_CONTEXT, "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{"id": format!("{did}#key-1"), "type": "Multikey",
            "controller": did, "publicKeyMultibase": key.as_str()}],
        "authentication": [format!("{did}#key-1")],
        "assertionMethod": [format!("{did}#key-1")],
    })
}

fn replace_key(document: &mut Value, key: &Multikey) {
    if let Some(vm) = document
        .get_mut("verificationMethod")
        .and_then(|list| list.get_mut(0))
    {
        vm["publicKeyMultibase"] = json!(key.as_str());
    }
}

fn did_of(log: &DidLog) -> anyhow::Result<String> {
    log.entries()
        .last()
        .and_then(|entry| entry.state().get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the log has no DID"))
}

fn read_log(dir: &Path) -> anyhow::Result<DidLog> {
    let path = dir.join("did.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(DidLog::parse(&text)?)
}

fn load_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let jwk: Jwk =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JWK", path.display()))?;
    Ok(SigningKey::from_jwk(&jwk, Some(Algorithm::EdDsa))?)
}

fn save_key(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let jwk = serde_json::to_string(&key.to_jwk()?)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(jwk.as_bytes())?;
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
