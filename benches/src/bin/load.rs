//! The load harness: every server's main protocol flows over HTTP on loopback at a fixed
//! concurrency, one table of requests (or flows) per second and p50/p99 latency per flow.
//!
//! The servers run in this process, each on its own loopback port and reached only over
//! HTTP by `--concurrency` workers (each a keep-alive connection of its own):
//!
//! | flow | server | what one iteration is |
//! |---|---|---|
//! | `kms-sign` | edk-kms | `POST /api/kms/v1/signatures/raw/create` (ES256, admin bearer token) |
//! | `did-key` | edk-did | `GET /1.0/identifiers/<did:key>` |
//! | `did-web` | edk-did | `GET /1.0/identifiers/<did:web>` of a DID the server hosts (cached) |
//! | `as-token` | edk-as | `POST <tenant>/token`, `client_credentials`, `client_secret_basic`, JWT access token |
//! | `issuer-flow` | edk-issuer + edk-as | offer by reference (admin API), offer resolution, pre-authorized code token, nonce, credential (SD-JWT VC, ES256 JWT proof): five requests |
//! | `status-list` | edk-issuer | `GET <tenant>/status-lists/<id>` (`application/statuslist+jwt`) |
//! | `verifier-flow` | edk-verifier | a presentation request (admin API, stored DCQL query, `x509_san_dns`), the signed Request Object fetched from its `request_uri`, and the wallet's `direct_post` answer (an SD-JWT VC under an x5c chain to the tenant's trust anchor, two disclosures, a fresh ES256 Key Binding JWT) verified: three requests |
//!
//! EDK's servers share one PostgreSQL database (a throwaway one on the server named by
//! `EDK_TEST_DATABASE_URL`, dropped at the end; `--database sqlite` uses a temporary
//! directory instead) and a software KMS provider. Where a peer of `benches/peers/` is
//! installed (`interop/node/node_modules` from `scripts/test --setup-only`, and
//! `benches/peers/sphereon_issuer_install.sh`), it is started and loaded the same way next to
//! the EDK row: npm `did-resolver` + `key-did-resolver` for `did-key`, npm `oidc-provider` for
//! `as-token`, `@sphereon/oid4vci-issuer-server` for `issuer-flow`; a peer that is not
//! installed is reported as such.
//!
//! Run with: `cargo run --release -p edk-benches --bin load -- --duration 10s --concurrency 16`
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_did::methods::key::DidKey;
use edk_did::registrar::CreateDid;
use edk_did_server::{DidServer, ResolverSettings};
use edk_issuer_server::{IssuerParts, IssuerSettings, TokenKeys};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, Kms as _, LocalKms, NewKey};
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AsConfig, AuthorizationServer, NewClient, NoAuthenticator, SqlStore};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointScheme, ServiceType, Tenancy, TenantDirectory as _,
    WellKnownLayout,
};
use edk_verifier_server::{VerifierParts, VerifierSettings};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt as _;

const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
const ADMIN_ISSUER: &str = "https://admin.load.test";
const PROOF_TYP: &str = "openid4vci-proof+jwt";
const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";
const FLOWS: [&str; 7] = [
    "kms-sign",
    "did-key",
    "did-web",
    "as-token",
    "issuer-flow",
    "status-list",
    "verifier-flow",
];
const VCT: &str = "https://credentials.example.com/identity";

/// Drives every EDK server over HTTP at a fixed concurrency and prints a table.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// How long each flow is loaded, after its warm-up (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// The warm-up before each flow's measurement.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warm_up: Duration,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where EDK's servers keep their data: a throwaway PostgreSQL database, or SQLite files
    /// in a temporary directory.
    #[arg(long, value_enum, default_value_t = DatabaseKind::Postgres)]
    database: DatabaseKind,
    /// The flows to run (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    flows: Vec<String>,
    /// Skip the peers even when they are installed.
    #[arg(long)]
    no_peers: bool,
}

/// The `--database` choices.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DatabaseKind {
    Postgres,
    Sqlite,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text}: {err}"))
}

type Outcome = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One iteration of a flow for one worker: its client and its own state.
type Step = Arc<dyn Fn(reqwest::Client, Arc<Worker>) -> Outcome + Send + Sync>;

/// What a worker keeps across its iterations.
struct Worker {
    holder: SigningKey,
}

/// One row of the table.
struct Row {
    flow: String,
    target: String,
    unit: &'static str,
    figures: Option<Figures>,
    note: String,
}

struct Figures {
    done: usize,
    failures: Vec<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, q: f64) -> f64 {
        edk_benches::quantile(&self.latencies, q).as_secs_f64() * 1000.0
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `concurrency` workers running `step` back to back until `length` has passed.
async fn drive(step: &Step, concurrency: usize, length: Duration) -> Figures {
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let step = Arc::clone(step);
        let worker = Arc::new(Worker {
            holder: SigningKey::generate(Algorithm::Es256).unwrap(),
        });
        let client = client();
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            while started.elapsed() < length {
                let began = Instant::now();
                let outcome = step(client.clone(), Arc::clone(&worker)).await;
                latencies.push(began.elapsed());
                if let Err(failure) = outcome {
                    failures.push(failure);
                }
            }
            (latencies, failures)
        }));
    }
    let mut figures = Figures {
        done: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (latencies, failures) = worker.await.unwrap();
        figures.done += latencies.len();
        figures.failures.extend(failures);
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures.latencies.sort();
    figures
}

async fn measure(args: &Args, flow: &str, target: &str, unit: &'static str, step: Step) -> Row {
    eprintln!("loading {flow} on {target}");
    drive(&step, args.concurrency, args.warm_up).await;
    let figures = drive(&step, args.concurrency, args.duration).await;
    Row {
        flow: flow.to_owned(),
        target: target.to_owned(),
        unit,
        figures: Some(figures),
        note: String::new(),
    }
}

fn unavailable(flow: &str, target: &str, why: String) -> Row {
    Row {
        flow: flow.to_owned(),
        target: target.to_owned(),
        unit: "",
        figures: None,
        note: why,
    }
}

async fn checked(response: reqwest::Response, step: &str) -> Result<Vec<u8>, String> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|err| format!("{step}: {err}"))?;
    if status.is_success() {
        Ok(body.to_vec())
    } else {
        Err(format!(
            "{step}: {status} {}",
            String::from_utf8_lossy(&body)
        ))
    }
}

async fn json_of(response: reqwest::Response, step: &str) -> Result<Value, String> {
    let body = checked(response, step).await?;
    serde_json::from_slice(&body).map_err(|err| format!("{step}: {err}"))
}

/// A GET with an `Accept` header that must answer 2xx.
fn get(url: String, accept: &'static str) -> Step {
    let url = Arc::new(url);
    Arc::new(move |client, _| {
        let url = Arc::clone(&url);
        Box::pin(async move {
            let response = client
                .get(url.as_str())
                .header("accept", accept)
                .send()
                .await
                .map_err(|err| err.to_string())?;
            checked(response, "get").await.map(drop)
        })
    })
}

/// A `client_credentials` token request that must answer 200.
fn token(url: String, client_id: String, secret: String, scope: &'static str) -> Step {
    let shared = Arc::new((url, client_id, secret));
    Arc::new(move |client, _| {
        let shared = Arc::clone(&shared);
        Box::pin(async move {
            let (url, id, secret) = shared.as_ref();
            let response = client
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .map_err(|err| err.to_string())?;
            checked(response, "token").await.map(drop)
        })
    })
}

/// Ten claims, as the other SD-JWT VC benchmarks use.
fn claims() -> Map<String, Value> {
    json!({
        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1963-08-12",
        "email": "erika@example.com", "phone_number": "+49-221-555-0101",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationality": "DE", "is_over_18": true, "is_over_21": true, "is_over_65": false,
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// Where an issuer's backend creates offers.
enum Backend {
    /// EDK's admin API, with an admin bearer token.
    Edk { offers: String, token: String },
    /// The Sphereon server's offer endpoint.
    Sphereon { offers: String },
}

/// The endpoints of one issuer target.
struct IssuerTarget {
    backend: Backend,
    token_endpoint: String,
    nonce_endpoint: String,
    credential_endpoint: String,
}

/// A pre-authorized code for the Sphereon backend, which takes the code from the caller.
fn fresh_code() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "load-{}-{}",
        SystemClock.unix_seconds(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn key_proof(key: &SigningKey, aud: &str, nonce: &str) -> Result<String, String> {
    let header = Header::new(Algorithm::Es256)
        .with_typ(PROOF_TYP)
        .with_jwk(&key.public_jwk());
    let claims = json!({ "aud": aud, "iat": SystemClock.unix_seconds(), "nonce": nonce });
    let header = serde_json::to_vec(&header).map_err(|err| err.to_string())?;
    let input = format!(
        "{}.{}",
        b64url_encode(header),
        b64url_encode(claims.to_string())
    );
    let signature = key
        .sign_bytes(input.as_bytes())
        .map_err(|err| err.to_string())?;
    Ok(format!("{input}.{}", b64url_encode(signature)))
}

/// One pre-authorized code flow; the answer must be an SD-JWT VC with ten disclosures.
async fn issuer_flow(
    client: &reqwest::Client,
    target: &IssuerTarget,
    holder: &SigningKey,
) -> Result<(), String> {
    let offer_uri = match &target.backend {
        Backend::Edk { offers, token } => {
            let response = client
                .post(offers)
                .bearer_auth(token)
                .json(&json!({
                    "credential_configuration_ids": ["identity"],
                    "claims": { "identity": claims() },
                    "by_reference": true,
                }))
                .send()
                .await
                .map_err(|err| format!("offer: {err}"))?;
            json_of(response, "offer").await?["credential_offer_uri"].clone()
        }
        Backend::Sphereon { offers } => {
            let response = client
                .post(offers)
                .json(&json!({
                    "credential_configuration_ids": ["identity"],
                    "offerMode": "REFERENCE",
                    "grants": { PRE_AUTHORIZED: { "pre-authorized_code": fresh_code() } },
                    "credentialDataSupplierInput": claims(),
                }))
                .send()
                .await
                .map_err(|err| format!("offer: {err}"))?;
            json_of(response, "offer").await?["uri"].clone()
        }
    };
    let offer_uri = offer_uri.as_str().ok_or("offer: no offer URI")?;
    let parsed = reqwest::Url::parse(offer_uri).map_err(|err| format!("offer URI: {err}"))?;
    let reference = parsed
        .query_pairs()
        .find(|(name, _)| name == "credential_offer_uri")
        .map(|(_, value)| value.into_owned())
        .ok_or("offer URI has no credential_offer_uri")?;
    let response = client
        .get(&reference)
        .send()
        .await
        .map_err(|err| format!("resolve: {err}"))?;
    let offer = json_of(response, "resolve").await?;
    let credential_issuer = offer["credential_issuer"]
        .as_str()
        .ok_or("resolve: no credential_issuer")?
        .to_owned();
    let code = offer["grants"][PRE_AUTHORIZED]["pre-authorized_code"]
        .as_str()
        .ok_or("resolve: no pre-authorized code")?;
    let response = client
        .post(&target.token_endpoint)
        .form(&[
            ("grant_type", PRE_AUTHORIZED),
            ("pre-authorized_code", code),
        ])
        .send()
        .await
        .map_err(|err| format!("token: {err}"))?;
    let token = json_of(response, "token").await?;
    let access_token = token["access_token"]
        .as_str()
        .ok_or("token: no access_token")?;
    let response = client
        .post(&target.nonce_endpoint)
        .send()
        .await
        .map_err(|err| format!("nonce: {err}"))?;
    let nonce = json_of(response, "nonce").await?;
    let nonce = nonce["c_nonce"].as_str().ok_or("nonce: no c_nonce")?;
    let mut request = json!({
        "proofs": { "jwt": [key_proof(holder, &credential_issuer, nonce)?] },
    });
    match token["authorization_details"][0]["credential_identifiers"][0].as_str() {
        Some(identifier) => request["credential_identifier"] = json!(identifier),
        None => request["credential_configuration_id"] = json!("identity"),
    }
    let response = client
        .post(&target.credential_endpoint)
        .bearer_auth(access_token)
        .json(&request)
        .send()
        .await
        .map_err(|err| format!("credential: {err}"))?;
    let body = json_of(response, "credential").await?;
    let credential = body["credentials"][0]["credential"]
        .as_str()
        .ok_or("credential: no credential")?;
    let mut parts = credential.split('~');
    let compact = parts.next().unwrap_or_default();
    let disclosures = parts.filter(|part| !part.is_empty()).count();
    if compact.split('.').count() == 3 && disclosures == 10 && credential.ends_with('~') {
        Ok(())
    } else {
        Err("credential: not an SD-JWT with ten disclosures".to_owned())
    }
}

fn issuer_step(target: IssuerTarget) -> Step {
    let target = Arc::new(target);
    Arc::new(move |client, worker| {
        let target = Arc::clone(&target);
        Box::pin(async move { issuer_flow(&client, &target, &worker.holder).await })
    })
}

/// The verifier's admin API and the wallet's credential, with its holder key.
struct VerifierTarget {
    requests: String,
    token: String,
    credential: SdJwt,
    holder: SigningKey,
}

/// One presentation: the request made through the admin API, the Request Object fetched
/// (its claims read, as a wallet does once it trusts it), the credential presented with a
/// fresh Key Binding JWT and posted to the `response_uri`, which answers 200 once verified.
async fn verifier_flow(client: &reqwest::Client, target: &VerifierTarget) -> Result<(), String> {
    let response = client
        .post(&target.requests)
        .bearer_auth(&target.token)
        .json(&json!({"query_id": "identity", "client_id_prefix": "x509_san_dns"}))
        .send()
        .await
        .map_err(|err| format!("request: {err}"))?;
    let made = json_of(response, "request").await?;
    let uri = made["authorization_request_uri"]
        .as_str()
        .ok_or("request: no authorization_request_uri")?;
    let uri = reqwest::Url::parse(uri).map_err(|err| format!("request: {err}"))?;
    let parameter = |name: &str| {
        uri.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .ok_or(format!("request: no {name}"))
    };
    let (client_id, request_uri) = (parameter("client_id")?, parameter("request_uri")?);
    let response = client
        .get(&request_uri)
        .send()
        .await
        .map_err(|err| format!("request object: {err}"))?;
    let jwt = checked(response, "request object").await?;
    let payload = jwt
        .split(|byte| *byte == b'.')
        .nth(1)
        .and_then(|part| edk_core::encoding::b64url_decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or("request object: not a JWT")?;
    let field = |name: &str| {
        payload[name]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("request object: no {name}"))
    };
    if field("client_id")? != client_id {
        return Err("request object: another client_id".to_owned());
    }
    let kb = KeyBindingClaims::new(client_id, field("nonce")?, SystemClock.unix_seconds());
    let presentation = target
        .credential
        .present(
            &[
                ClaimPath::new(["given_name"]),
                ClaimPath::new(["family_name"]),
            ],
            Some((&kb, &target.holder)),
        )
        .await
        .map_err(|err| format!("present: {err}"))?
        .to_string();
    let vp_token = json!({ "identity": [presentation] }).to_string();
    let response = client
        .post(field("response_uri")?)
        .form(&[("vp_token", vp_token), ("state", field("state")?)])
        .send()
        .await
        .map_err(|err| format!("response: {err}"))?;
    checked(response, "response").await.map(drop)
}

fn verifier_step(target: VerifierTarget) -> Step {
    let target = Arc::new(target);
    Arc::new(move |client, _| {
        let target = Arc::clone(&target);
        Box::pin(async move { verifier_flow(&client, &target).await })
    })
}

/// A credential issuer's root (PEM, the verifier tenant's trust anchor) and the leaf that
/// signs under it (its DER and key).
fn issuer_pki() -> (String, Vec<u8>, SigningKey) {
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(rcgen::DnType::CommonName, "load issuer root");
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    root.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let root_cert = root.self_signed(&root_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["issuer.example".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "load issuer");
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &rcgen::Issuer::new(root, root_key))
        .unwrap();
    let signer = SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap();
    (root_cert.pem(), leaf_cert.der().to_vec(), signer)
}

/// The verifier tenant's Request Object signing key with a certificate for `localhost` under
/// a CA key of its own, and `issuer_root` as its trust anchor.
async fn provision_verifier(
    kms: &LocalKms,
    certificates: &edk_kms::cert::Certificates,
    caller: &Caller,
    issuer_root: &str,
) {
    let ca = KeyAlias::new("verifier", "load-ca").unwrap();
    let signing = KeyAlias::new("verifier", "request-object-signing").unwrap();
    for alias in [&ca, &signing] {
        kms.create_key(
            caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    }
    let day = Duration::from_secs(86_400);
    certificates
        .issue(
            caller,
            &ca,
            &ca,
            &edk_kms::cert::CertificateProfile::ca(day * 365, Some(0)),
        )
        .await
        .unwrap();
    let mut leaf = edk_kms::cert::CertificateProfile::leaf(day * 30);
    leaf.sans = vec![edk_kms::cert::SubjectAltName::Dns("localhost".to_owned())];
    certificates
        .issue(caller, &ca, &signing, &leaf)
        .await
        .unwrap();
    certificates
        .put_chain(
            caller,
            &edk_kms::cert::ChainName::new("issuers").unwrap(),
            issuer_root,
            true,
        )
        .await
        .unwrap();
}

/// An admin bearer token of `ADMIN_ISSUER` for `tenant` with `scope`.
async fn admin_token(key: &SigningKey, tenant: TenantId, scope: &str) -> String {
    let now = SystemClock.unix_seconds();
    let claims = json!({
        "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "load",
        "tenant": tenant.to_string(), "scope": scope,
        "iat": now, "exp": now + 86_400,
    });
    jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT"),
        claims.to_string().as_bytes(),
        key,
    )
    .await
    .unwrap()
}

fn database_section(database: &Database, sub: &str) -> Value {
    match database {
        Database::Postgres(db) => json!({ "backend": "postgres", "platform_url": db.url() }),
        Database::Sqlite(dir) => {
            let path = dir.path().join(sub);
            std::fs::create_dir_all(&path).unwrap();
            json!({ "backend": "sqlite", "directory": path })
        }
    }
}

fn tenancy_config(database: &Database, sub: &str) -> DatabaseConfig {
    match database {
        Database::Postgres(db) => {
            let mut config = PostgresConfig::new(db.url().into());
            config.max_connections = 32;
            DatabaseConfig::Postgres(config)
        }
        Database::Sqlite(dir) => {
            let path = dir.path().join(sub);
            std::fs::create_dir_all(&path).unwrap();
            DatabaseConfig::Sqlite(SqliteConfig::new(&path))
        }
    }
}

enum Database {
    Postgres(edk_testkit::TestDb),
    Sqlite(tempfile::TempDir),
}

/// The KMS server, as its binary starts it, with tenant `load` and an ES256 alias.
async fn kms_sign(database: &Database, admin: &SigningKey) -> (Step, Box<dyn Stop>) {
    let kek = generate_kek().unwrap();
    let config: KmsServerConfig = serde_json::from_value(json!({
        "database": database_section(database, "kms"),
        "auth": { "issuers": [{ "issuer": ADMIN_ISSUER, "jwks": { "keys": [admin.public_jwk()] } }] },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": kek.expose_secret() }],
        }] },
    }))
    .unwrap();
    let kms = edk_server::service::start::<KmsServer>(&config, Arc::new(SystemClock), client())
        .await
        .unwrap();
    let tenant = kms
        .tenancy()
        .provision(TenantSlug::new("load-kms").unwrap(), "Load KMS")
        .await
        .unwrap();
    let caller = Caller::new(kms.tenancy().context(tenant.id).await.unwrap(), "load");
    let alias: KeyAlias = "issuer.credential-signing".parse().unwrap();
    kms.kms()
        .create_key(
            &caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let token = admin_token(admin, tenant.id, "kms:use").await;
    let server = spawn_server(kms.app()).await.unwrap();
    let url = server.url("/api/kms/v1/signatures/raw/create");
    let body = json!({ "key": alias.to_string(), "message": b64url_encode(MESSAGE) }).to_string();
    let shared = Arc::new((url, body, token));
    let step: Step = Arc::new(move |client, _| {
        let shared = Arc::clone(&shared);
        Box::pin(async move {
            let (url, body, token) = shared.as_ref();
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|err| err.to_string())?;
            checked(response, "sign").await.map(drop)
        })
    });
    let stop = Box::new(move || -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            server.shutdown().await.ok();
            kms.shutdown().await;
        })
    });
    (step, stop)
}

/// Something to shut down at the end.
trait Stop: Send {
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<F> Stop for F
where
    F: FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
{
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        (*self)()
    }
}

/// The DID, AS and issuer servers over one tenancy (as a deployment whose services share the
/// platform database) with one software `LocalKms`, tenant `load`.
struct Edk {
    tenancy: Tenancy,
    cancel: tokio_util::sync::CancellationToken,
    tenancy_task: edk_tenancy::BackgroundTask,
    kms_task: edk_kms::local::KmsTask,
    servers: Vec<TestServer>,
    did_key: String,
    did_web: String,
    did_http: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    issuer: Option<IssuerTarget>,
    status_list_url: String,
    verifier: Option<VerifierTarget>,
}

impl Edk {
    #[expect(clippy::too_many_lines, reason = "one deployment, set up step by step")]
    async fn start(database: DatabaseConfig, admin: &SigningKey) -> Self {
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oid4vci::migrations().unwrap())
            .migrations(edk_did::store::migrations().unwrap())
            .migrations(edk_kms::cert::migrations().unwrap())
            .migrations(edk_verifier_server::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("load").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
            .clock(Arc::clone(&clock))
            .build()
            .unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let tenancy_task = tenancy.start(&cancel);
        let kms_task = kms.start(&cancel);
        let kms = Arc::new(kms);
        let mut auth = AuthConfig::default();
        auth.issuers.push(TrustedIssuer::with_jwks(
            ADMIN_ISSUER,
            JwkSet {
                keys: vec![admin.public_jwk()],
            },
        ));

        // The DID server.
        let resolver = Arc::new(
            DidServer::resolver(&tenancy, &ResolverSettings::default(), Arc::clone(&clock))
                .unwrap(),
        );
        let did_server = DidServer::new(tenancy.clone(), kms.clone(), resolver, Arc::clone(&clock));
        let did_app = edk_did_server::build_app(
            &HttpConfig::default(),
            &AuthConfig::default(),
            &Metrics::new().unwrap(),
            &did_server,
            Arc::clone(&clock),
            None,
        )
        .unwrap();
        let did_http = spawn_server(did_app).await.unwrap();

        // The authorization server, with the issuer's grant policy as in the servers.
        let server = Arc::new(
            AuthorizationServer::new(
                Arc::new(SqlStore::new(tenancy.clone())),
                kms.clone(),
                Arc::new(NoAuthenticator),
                Arc::clone(&clock),
                AsConfig::default(),
            )
            .with_credential_grant_policy(Arc::new(
                edk_oid4vci::IssuerGrantPolicy::new(
                    Arc::new(edk_oid4vci::SqlStore::new(tenancy.clone())),
                    tenancy.clone(),
                    Arc::clone(&clock),
                ),
            )),
        );
        let as_app = edk_as_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &tenancy,
            &server,
            edk_server::HealthApi::new(),
            Arc::clone(&clock),
            None,
            None,
        )
        .unwrap();
        let as_http = spawn_server(as_app).await.unwrap();

        // The verifier, reading certificates and trust anchors from the tenant's KMS store.
        let certificate_store = Arc::new(edk_kms::cert::store::SqlCertificateStore::new(
            tenancy.clone(),
        ));
        let certificates = edk_kms::cert::Certificates::new(
            kms.clone(),
            certificate_store.clone(),
            Arc::clone(&clock),
        );
        let verifier_parts = VerifierParts::new(
            tenancy.clone(),
            kms.clone(),
            Arc::new(certificates.clone()),
            Arc::clone(&clock),
            &VerifierSettings::default(),
        )
        .unwrap();
        let verifier_app = edk_verifier_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &verifier_parts,
            edk_server::HealthApi::new(),
            None,
        )
        .unwrap();
        let verifier_http = spawn_server(verifier_app).await.unwrap();

        // The issuer.
        let settings = IssuerSettings::default();
        let issuer = IssuerParts::issuer(
            &tenancy,
            kms.clone(),
            Arc::clone(&clock),
            settings.options(),
        )
        .unwrap();
        let parts = IssuerParts {
            tenancy: tenancy.clone(),
            issuer: Arc::new(issuer),
            server: server.clone(),
            clock,
            metadata_max_age_secs: settings.metadata_max_age_secs,
            status_list_publish_interval: Duration::from_secs(60),
            token_keys: TokenKeys::Kms,
        };
        let issuer_app = edk_issuer_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &parts,
            edk_server::HealthApi::new(),
            None,
        )
        .unwrap();
        let issuer_http = spawn_server(issuer_app).await.unwrap();

        // The tenant, its bindings, its did:web, its client and its credential configurations.
        let tenant = tenancy
            .provision(TenantSlug::new("load").unwrap(), "Load")
            .await
            .unwrap();
        for (service, port) in [
            (ServiceType::As, as_http.addr().port()),
            (ServiceType::Issuer, issuer_http.addr().port()),
            (ServiceType::Verifier, verifier_http.addr().port()),
        ] {
            let binding = EndpointBinding::with_scheme(
                tenant.id,
                service,
                EndpointScheme::Http,
                "localhost",
                Some(port),
                "/load",
                WellKnownLayout::Inserted,
            )
            .unwrap();
            tenancy.bind(&binding).await.unwrap();
        }
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::Did,
            "load.example",
            None,
            "",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
        let did_context = tenancy
            .context_for_service(tenant.id, ServiceType::Did)
            .await
            .unwrap();
        let did_web = did_server
            .registrar()
            .create(&Caller::new(did_context, "load"), CreateDid::new("web"))
            .await
            .unwrap()
            .did
            .to_string();
        let did_key = DidKey::create(&SigningKey::generate(Algorithm::EdDsa).unwrap().public_jwk())
            .unwrap()
            .to_string();

        let as_context = tenancy
            .context_for_service(tenant.id, ServiceType::As)
            .await
            .unwrap();
        let mut metadata = ClientMetadata::new(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
        );
        metadata.scopes = vec!["api:read".to_owned()];
        let (registered, secret) = server
            .create_client(&as_context, NewClient::new(metadata))
            .await
            .unwrap();

        let token = admin_token(admin, tenant.id, "oid4vci:read oid4vci:write").await;
        let admin_api = issuer_http.url("/api/oid4vci/v1");
        let http = client();
        for (id, body) in [
            (
                "identity",
                json!({
                    "configuration": {
                        "format": "dc+sd-jwt",
                        "vct": "https://credentials.example.com/identity",
                        "scope": "identity",
                        "cryptographic_binding_methods_supported": ["jwk"],
                        "credential_signing_alg_values_supported": ["ES256"],
                        "proof_types_supported": {
                            "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
                        },
                    },
                    "settings": { "lifetime_secs": 86400 },
                }),
            ),
            (
                "badge",
                json!({
                    "configuration": { "format": "dc+sd-jwt", "vct": "https://credentials.example.com/badge" },
                    "settings": { "status": { "purpose": "revocation", "list_size": 100_000 } },
                }),
            ),
        ] {
            let response = http
                .put(format!("{admin_api}/configurations/{id}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "configuring {id} failed: {}",
                response.text().await.unwrap_or_default()
            );
        }

        // A status list with 1,000 recorded credentials, published once.
        let issuer_base = format!("http://localhost:{}/load", issuer_http.addr().port());
        let context = tenancy.context(tenant.id).await.unwrap();
        let store = edk_oid4vci::SqlStore::new(tenancy.clone());
        let spec = edk_oid4vci::status::StatusListSpec {
            configuration_id: "badge".to_owned(),
            purpose: edk_oid4vci::StatusPurpose::Revocation,
            bits: edk_core::status_list::Bits::One,
            size: 100_000,
            issuer: issuer_base.clone(),
            uri_base: format!("{issuer_base}/status-lists"),
        };
        let now = SystemClock.unix_seconds();
        let indices =
            edk_oid4vci::StatusStore::allocate_status_indices(&store, &context, &spec, 1000, now)
                .await
                .unwrap();
        let mut list_id = String::new();
        let records: Vec<_> = indices
            .into_iter()
            .enumerate()
            .map(|(n, index)| {
                list_id.clone_from(&index.list_id);
                edk_oid4vci::NewIssuedCredential {
                    credential_id: format!("c{n:06}"),
                    session_id: "load".to_owned(),
                    correlation_id: None,
                    configuration_id: "badge".to_owned(),
                    list_id: index.list_id,
                    index: index.index,
                    issued_at: now,
                    expires_at: None,
                }
            })
            .collect();
        edk_oid4vci::StatusStore::record_issued(&store, &context, &records)
            .await
            .unwrap();
        parts
            .issuer
            .set_credential_status(
                &context,
                &edk_oid4vci::CredentialSelector::Credential("c000007".to_owned()),
                edk_oid4vci::StatusAction::Revoke,
            )
            .await
            .unwrap();
        let published = parts
            .issuer
            .publish_status_list(&context, &list_id)
            .await
            .unwrap();
        assert!(published.is_some(), "the status list was published");

        // The verifier's keys, certificate and trust anchor, a stored DCQL query, and the
        // wallet's credential from an issuer under that anchor.
        let (issuer_root, issuer_leaf, issuer_key) = issuer_pki();
        provision_verifier(
            &kms,
            &certificates,
            &Caller::new(context.clone(), "verifier"),
            &issuer_root,
        )
        .await;
        let verifier_token = admin_token(admin, tenant.id, "oid4vp:read oid4vp:write").await;
        let verifier_api = verifier_http.url("/api/oid4vp/v1");
        let response = http
            .put(format!("{verifier_api}/queries/identity"))
            .bearer_auth(&verifier_token)
            .json(&json!({"dcql_query": {"credentials": [{
                "id": "identity", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]},
                "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]}]}}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "storing the DCQL query failed: {}",
            response.text().await.unwrap_or_default()
        );
        let holder = SigningKey::generate(Algorithm::Es256).unwrap();
        let credential = {
            use base64::Engine as _;
            let mut builder = SdJwtVcBuilder::new(VCT)
                .issuer("https://issuer.example")
                .issued_at(now - 60)
                .holder_key(&holder.public_jwk())
                .x5c(vec![
                    base64::engine::general_purpose::STANDARD.encode(&issuer_leaf),
                ]);
            for (name, value) in claims() {
                builder = builder
                    .selectively_disclose(ClaimPath::new([name.as_str()]))
                    .claim(name, value);
            }
            builder
                .issue(&issuer_key, &IssueOptions::default())
                .await
                .unwrap()
        };
        let verifier = VerifierTarget {
            requests: format!("{verifier_api}/requests"),
            token: verifier_token,
            credential,
            holder,
        };

        let issuer = IssuerTarget {
            backend: Backend::Edk {
                offers: format!("{admin_api}/offers"),
                token,
            },
            token_endpoint: format!("http://localhost:{}/load/token", as_http.addr().port()),
            nonce_endpoint: format!("{issuer_base}/nonce"),
            credential_endpoint: format!("{issuer_base}/credential"),
        };
        Self {
            did_http: did_http.url(""),
            token_url: format!("http://localhost:{}/load/token", as_http.addr().port()),
            client_id: registered.client_id.as_str().to_owned(),
            client_secret: secret.unwrap().expose_secret().to_owned(),
            issuer: Some(issuer),
            status_list_url: format!("{issuer_base}/status-lists/{list_id}"),
            verifier: Some(verifier),
            did_key,
            did_web,
            tenancy,
            cancel,
            tenancy_task,
            kms_task,
            servers: vec![did_http, as_http, issuer_http, verifier_http],
        }
    }

    async fn stop(self) {
        for server in self.servers {
            server.shutdown().await.ok();
        }
        self.cancel.cancel();
        self.kms_task.shutdown().await;
        self.tenancy_task.shutdown().await;
        drop(self.tenancy);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A Node peer started for the run: killed when dropped.
struct Peer {
    child: tokio::process::Child,
    drain: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.child.start_kill().ok();
        self.drain.abort();
    }
}

/// Starts `node <script>` in `folder` (which needs `module` installed) and returns it with
/// what `pick` finds in the first of its stdout lines it accepts.
async fn node_peer(
    folder: &Path,
    module: &str,
    script: &[&str],
    env: &[(&str, String)],
    pick: fn(&str) -> Option<String>,
) -> Result<(Peer, String), String> {
    if !folder.join("node_modules").join(module).exists() {
        return Err(format!(
            "not installed ({} has no node_modules/{module})",
            folder
                .strip_prefix(workspace_root())
                .unwrap_or(folder)
                .display()
        ));
    }
    let mut command = tokio::process::Command::new("node");
    command
        .args(script)
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().map_err(|err| format!("node: {err}"))?;
    let stdout = child.stdout.take().ok_or("node: no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(found) = pick(&line) {
                return Some(found);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the peer did not start")?;
    // Peers may log every request: keep reading so they never block.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((Peer { child, drain }, found))
}

fn json_field(line: &str, field: &str) -> Option<String> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("no free port: {err}"))
}

fn wants(args: &Args, flow: &str) -> bool {
    args.flows.is_empty() || args.flows.iter().any(|f| f == flow)
}

fn print_table(args: &Args, database: &str, rows: &[Row]) {
    println!();
    println!(
        "{} workers, {:?} per flow after a {:?} warm-up, EDK on {database}",
        args.concurrency, args.duration, args.warm_up
    );
    println!();
    println!("| flow | target | per second | p50 ms | p99 ms | done | failed |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        match &row.figures {
            Some(figures) => println!(
                "| {} | {} | {:.0} {} | {:.2} | {:.2} | {} | {} |",
                row.flow,
                row.target,
                figures.per_second(),
                row.unit,
                figures.ms(0.5),
                figures.ms(0.99),
                figures.done,
                figures.failures.len()
            ),
            None => println!("| {} | {} | {} | | | | |", row.flow, row.target, row.note),
        }
    }
    for row in rows {
        if let Some(figures) = &row.figures
            && let Some(first) = figures.failures.first()
        {
            println!("{} on {}: first failure: {first}", row.flow, row.target);
        }
    }
}

#[expect(clippy::too_many_lines, reason = "the flows, in the table's order")]
async fn run(args: Args) {
    edk_server::install_crypto_provider();
    for flow in &args.flows {
        assert!(
            FLOWS.contains(&flow.as_str()),
            "unknown flow {flow}: one of {FLOWS:?}"
        );
    }
    let database = match args.database {
        DatabaseKind::Postgres => Database::Postgres(edk_testkit::TestDb::new().await),
        DatabaseKind::Sqlite => Database::Sqlite(tempfile::tempdir().unwrap()),
    };
    let label = match &database {
        Database::Postgres(_) => "PostgreSQL",
        Database::Sqlite(_) => "SQLite",
    };
    let admin = SigningKey::generate(Algorithm::Es256).unwrap();
    let peers = !args.no_peers;
    let node_dir = workspace_root().join("interop/node");
    let mut rows = Vec::new();

    if wants(&args, "kms-sign") {
        let (step, stop) = kms_sign(&database, &admin).await;
        rows.push(measure(&args, "kms-sign", "edk-kms (REST)", "req/s", step).await);
        stop.stop().await;
    }

    let edk = Edk::start(tenancy_config(&database, "services"), &admin).await;
    if wants(&args, "did-key") {
        let url = format!("{}/1.0/identifiers/{}", edk.did_http, edk.did_key);
        let step = get(url, "application/did-resolution");
        rows.push(measure(&args, "did-key", "edk-did", "req/s", step).await);
        if peers {
            match node_peer(
                &node_dir,
                "key-did-resolver",
                &["did_resolver_server.mjs"],
                &[],
                |line| json_field(line, "url"),
            )
            .await
            {
                Ok((peer, base)) => {
                    let url = format!(
                        "{}/1.0/identifiers/{}",
                        base.trim_end_matches('/'),
                        edk.did_key
                    );
                    let step = get(url, "application/did-resolution");
                    rows.push(
                        measure(&args, "did-key", "npm did-resolver (peer)", "req/s", step).await,
                    );
                    drop(peer);
                }
                Err(why) => rows.push(unavailable("did-key", "npm did-resolver (peer)", why)),
            }
        }
    }
    if wants(&args, "did-web") {
        let url = format!("{}/1.0/identifiers/{}", edk.did_http, edk.did_web);
        let step = get(url, "application/did-resolution");
        rows.push(measure(&args, "did-web", "edk-did (cached)", "req/s", step).await);
    }
    if wants(&args, "as-token") {
        let step = token(
            edk.token_url.clone(),
            edk.client_id.clone(),
            edk.client_secret.clone(),
            "api:read",
        );
        rows.push(measure(&args, "as-token", "edk-as", "req/s", step).await);
        if peers {
            let clients = r#"[{"client_id":"bench","client_secret":"bench-secret"}]"#;
            match node_peer(
                &node_dir,
                "oidc-provider",
                &[
                    "oidc_provider.mjs",
                    "--mode",
                    "client-credentials",
                    "--ignore-stdin",
                ],
                &[("OIDC_CLIENTS", clients.to_owned())],
                |line| json_field(line, "issuer"),
            )
            .await
            {
                Ok((peer, issuer)) => {
                    let step = token(
                        format!("{issuer}/token"),
                        "bench".to_owned(),
                        "bench-secret".to_owned(),
                        "api:read",
                    );
                    rows.push(
                        measure(&args, "as-token", "npm oidc-provider (peer)", "req/s", step).await,
                    );
                    drop(peer);
                }
                Err(why) => rows.push(unavailable("as-token", "npm oidc-provider (peer)", why)),
            }
        }
    }
    let mut edk = edk;
    if wants(&args, "issuer-flow")
        && let Some(target) = edk.issuer.take()
    {
        rows.push(
            measure(
                &args,
                "issuer-flow",
                "edk-issuer + edk-as",
                "flows/s",
                issuer_step(target),
            )
            .await,
        );
        if peers {
            let folder = workspace_root().join("benches/peers/sphereon_issuer");
            let started = match free_port() {
                Ok(port) => {
                    node_peer(
                        &folder,
                        "@sphereon/oid4vci-issuer-server",
                        &["server.mjs"],
                        &[("PORT", port.to_string())],
                        |line| line.strip_prefix("listening ").map(str::to_owned),
                    )
                    .await
                }
                Err(why) => Err(why),
            };
            match started {
                Ok((peer, base)) => {
                    let target = IssuerTarget {
                        backend: Backend::Sphereon {
                            offers: format!("{base}/webapp/credential-offers"),
                        },
                        token_endpoint: format!("{base}/token"),
                        nonce_endpoint: format!("{base}/nonce"),
                        credential_endpoint: format!("{base}/credential"),
                    };
                    rows.push(
                        measure(
                            &args,
                            "issuer-flow",
                            "Sphereon issuer (peer)",
                            "flows/s",
                            issuer_step(target),
                        )
                        .await,
                    );
                    drop(peer);
                }
                Err(why) => rows.push(unavailable("issuer-flow", "Sphereon issuer (peer)", why)),
            }
        }
    }
    if wants(&args, "status-list") {
        let step = get(edk.status_list_url.clone(), "application/statuslist+jwt");
        rows.push(measure(&args, "status-list", "edk-issuer", "req/s", step).await);
    }
    if wants(&args, "verifier-flow")
        && let Some(target) = edk.verifier.take()
    {
        rows.push(
            measure(
                &args,
                "verifier-flow",
                "edk-verifier",
                "flows/s",
                verifier_step(target),
            )
            .await,
        );
    }
    edk.stop().await;
    if let Database::Postgres(db) = database {
        db.close().await;
    }
    print_table(&args, label, &rows);
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(args));
}
