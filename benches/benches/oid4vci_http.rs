//! Whole OpenID4VCI pre-authorized code flows per second over HTTP, with `WALLETS` (16)
//! wallets running flows back to back: the backend creates an offer by reference through the
//! issuer's admin API, the wallet resolves it, redeems the pre-authorized code at the tenant's
//! authorization server, fetches a nonce and requests the credential with an ES256 JWT key
//! proof; the answer must be an SD-JWT VC (ES256, ten selectively disclosable claims, bound to
//! the proof's key).
//!
//! Targets, in this order (`TARGETS`, comma-separated, picks some): `sqlite` and `postgres`,
//! EDK's issuer server and authorization server on loopback over one tenancy with a software
//! `LocalKms`; `sphereon`, `@sphereon/oid4vci-issuer-server` 0.20
//! (`benches/peers/sphereon_issuer/server.mjs`, installed by `benches/peers/sphereon_issuer.sh`)
//! driven by the same wallets. Each target gets a short warm-up, then `DURATION` seconds
//! (default 10); one line per target: flows/s, p50/p99 flow latency, failed flows.
//!
//! `status-sqlite` and `status-postgres` measure credential status instead: revocations per
//! second through the admin API, and the publication of a 1,000,000-entry status list.
//!
//! Run with: cargo bench -p edk-benches --bench oid4vci_http
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantSlug};
use edk_issuer_server::{IssuerParts, IssuerSettings, TokenKeys};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::{AsConfig, AuthorizationServer, NoAuthenticator, SqlStore};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, EndpointBinding, EndpointScheme, ServiceType, Tenancy};
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt as _;

const WALLETS: usize = 16;
const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
const ADMIN_ISSUER: &str = "https://admin.example";
const PROOF_TYP: &str = "openid4vci-proof+jwt";
const FAILURES_SHOWN: usize = 5;

fn duration() -> Duration {
    let secs = std::env::var("DURATION")
        .ok()
        .and_then(|d| d.trim_end_matches('s').parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
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

/// Where a target's backend creates offers.
#[derive(Clone)]
enum Backend {
    /// EDK's admin API, with an admin bearer token.
    Edk { offers: String, token: String },
    /// The Sphereon server's offer endpoint.
    Sphereon { offers: String },
}

/// The endpoints one target's wallets talk to.
#[derive(Clone)]
struct Target {
    backend: Backend,
    token_endpoint: String,
    nonce_endpoint: String,
    credential_endpoint: String,
}

/// A pre-authorized code for the Sphereon backend, which takes the code from the caller:
/// unique within the peer's lifetime (one run of this driver).
fn fresh_code() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench-{}-{}",
        SystemClock.unix_seconds(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn key_proof(key: &SigningKey, aud: &str, nonce: &str) -> String {
    let header = Header::new(Algorithm::Es256)
        .with_typ(PROOF_TYP)
        .with_jwk(&key.public_jwk());
    let claims = json!({ "aud": aud, "iat": SystemClock.unix_seconds(), "nonce": nonce });
    let header = b64url_encode(serde_json::to_vec(&header).unwrap());
    let payload = b64url_encode(claims.to_string());
    let signature = key
        .sign_bytes(format!("{header}.{payload}").as_bytes())
        .unwrap();
    format!("{header}.{payload}.{}", b64url_encode(signature))
}

async fn json_of(response: reqwest::Response, step: &str) -> Result<Value, String> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| format!("{step}: {err}"))?;
    if !status.is_success() {
        return Err(format!("{step}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|err| format!("{step}: {err}: {text}"))
}

/// One whole flow; `Err` says which step failed and how.
async fn flow(
    client: &reqwest::Client,
    target: &Target,
    holder: &SigningKey,
) -> Result<(), String> {
    // The backend creates the offer.
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
    let offer_uri = offer_uri
        .as_str()
        .ok_or_else(|| format!("offer: no offer URI: {offer_uri}"))?;

    // The wallet resolves the offer by reference.
    let parsed = reqwest::Url::parse(offer_uri).map_err(|err| format!("offer URI: {err}"))?;
    let reference = parsed
        .query_pairs()
        .find(|(name, _)| name == "credential_offer_uri")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| format!("offer URI has no credential_offer_uri: {offer_uri}"))?;
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

    // The token.
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

    // A nonce.
    let response = client
        .post(&target.nonce_endpoint)
        .send()
        .await
        .map_err(|err| format!("nonce: {err}"))?;
    let nonce = json_of(response, "nonce").await?;
    let nonce = nonce["c_nonce"].as_str().ok_or("nonce: no c_nonce")?;

    // The credential.
    let mut request = json!({
        "proofs": { "jwt": [key_proof(holder, &credential_issuer, nonce)] },
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
        .ok_or_else(|| format!("credential: no credential in {body}"))?;
    // An SD-JWT: a compact JWS, then ten disclosures, each followed by `~`.
    let mut parts = credential.split('~');
    let jws = parts.next().unwrap_or_default();
    let disclosures = parts.filter(|part| !part.is_empty()).count();
    if jws.split('.').count() == 3 && disclosures == 10 && credential.ends_with('~') {
        Ok(())
    } else {
        Err(format!(
            "credential: not an SD-JWT with ten disclosures: {credential}"
        ))
    }
}

struct Figures {
    flows: usize,
    failures: Vec<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.flows as f64 / self.elapsed.as_secs_f64()
    }

    fn line(&mut self) -> String {
        self.latencies.sort();
        let at = |q: f64| edk_benches::quantile(&self.latencies, q);
        format!(
            "flows_per_sec={:.1} p50_ms={:.1} p99_ms={:.1} flows={} failed={}",
            self.per_second(),
            at(0.5).as_secs_f64() * 1000.0,
            at(0.99).as_secs_f64() * 1000.0,
            self.flows,
            self.failures.len()
        )
    }
}

/// `WALLETS` wallets, each with its own connection pool and ES256 key, running flows back to
/// back until `length` has passed.
async fn load(target: &Target, length: Duration) -> Figures {
    let started = Instant::now();
    let mut wallets = Vec::new();
    for _ in 0..WALLETS {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let holder = SigningKey::generate(Algorithm::Es256).unwrap();
        let target = target.clone();
        wallets.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            while started.elapsed() < length {
                let began = Instant::now();
                let outcome = flow(&client, &target, &holder).await;
                latencies.push(began.elapsed());
                if let Err(failure) = outcome {
                    failures.push(failure);
                }
            }
            (latencies, failures)
        }));
    }
    let mut figures = Figures {
        flows: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for wallet in wallets {
        let (latencies, failures) = wallet.await.unwrap();
        figures.flows += latencies.len();
        figures.failures.extend(failures);
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures
}

async fn measure(label: &str, target: &Target) {
    let warm_up = load(target, Duration::from_secs(2)).await;
    if let Some(failure) = warm_up.failures.first() {
        println!("{label}: warm-up failure: {failure}");
    }
    let length = duration();
    let mut figures = load(target, length).await;
    println!(
        "RESULT target={label} wallets={WALLETS} duration_s={} {}",
        length.as_secs(),
        figures.line()
    );
    for failure in figures.failures.iter().take(FAILURES_SHOWN) {
        println!("  failed: {failure}");
    }
}

/// EDK's AS and issuer servers on loopback over one tenancy, with one tenant `bench`.
struct Edk {
    tenancy: Tenancy,
    issuer: Arc<edk_oid4vci::Issuer>,
    tenant: edk_core::TenantId,
    admin: String,
    as_http: TestServer,
    issuer_http: TestServer,
    cancel: tokio_util::sync::CancellationToken,
    tenancy_task: edk_tenancy::BackgroundTask,
    kms_task: edk_kms::local::KmsTask,
    target: Target,
}

impl Edk {
    async fn start(database: DatabaseConfig) -> Self {
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oid4vci::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("bench").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
            .clock(Arc::clone(&clock))
            .build()
            .unwrap();
        // As in the servers: the tenancy's event listener keeps its caches fresh, and the
        // KMS's background task writes audit records off the request path.
        let cancel = tokio_util::sync::CancellationToken::new();
        let tenancy_task = tenancy.start(&cancel);
        let kms_task = kms.start(&cancel);
        let kms = Arc::new(kms);
        // As in the servers: the issuer's grant policy records each redemption on its session.
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
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut auth = AuthConfig::default();
        auth.issuers.push(TrustedIssuer::with_jwks(
            ADMIN_ISSUER,
            JwkSet {
                keys: vec![admin_key.public_jwk()],
            },
        ));
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
        let settings = IssuerSettings::default();
        let issuer =
            IssuerParts::issuer(&tenancy, kms, Arc::clone(&clock), settings.options()).unwrap();
        let parts = IssuerParts {
            tenancy: tenancy.clone(),
            issuer: Arc::new(issuer),
            server,
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
        let as_http = spawn_server(as_app).await.unwrap();
        let issuer_http = spawn_server(issuer_app).await.unwrap();

        let tenant = tenancy
            .provision(TenantSlug::new("bench").unwrap(), "bench")
            .await
            .unwrap();
        for (service, port) in [
            (ServiceType::As, as_http.addr().port()),
            (ServiceType::Issuer, issuer_http.addr().port()),
        ] {
            let binding = EndpointBinding::with_scheme(
                tenant.id,
                service,
                EndpointScheme::Http,
                "localhost",
                Some(port),
                "/bench",
                edk_tenancy::WellKnownLayout::Inserted,
            )
            .unwrap();
            tenancy.bind(&binding).await.unwrap();
        }
        let now = SystemClock.unix_seconds();
        let token = jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            json!({
                "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "bench",
                "tenant": tenant.id.to_string(), "scope": "oid4vci:read oid4vci:write",
                "iat": now, "exp": now + 3600,
            })
            .to_string()
            .as_bytes(),
            &admin_key,
        )
        .await
        .unwrap();
        let issuer_base = format!("http://localhost:{}/bench", issuer_http.addr().port());
        let admin = issuer_http.url("/api/oid4vci/v1");
        edk_server::install_crypto_provider();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .put(format!("{admin}/configurations/identity"))
            .bearer_auth(&token)
            .json(&json!({
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
            }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "configuring the credential failed: {}",
            response.text().await.unwrap_or_default()
        );
        let target = Target {
            backend: Backend::Edk {
                offers: format!("{admin}/offers"),
                token: token.clone(),
            },
            token_endpoint: format!("http://localhost:{}/bench/token", as_http.addr().port()),
            nonce_endpoint: format!("{issuer_base}/nonce"),
            credential_endpoint: format!("{issuer_base}/credential"),
        };
        Self {
            issuer: Arc::clone(&parts.issuer),
            tenant: tenant.id,
            admin,
            tenancy,
            as_http,
            issuer_http,
            cancel,
            tenancy_task,
            kms_task,
            target,
        }
    }

    async fn stop(self) {
        self.as_http.shutdown().await.unwrap();
        self.issuer_http.shutdown().await.unwrap();
        self.cancel.cancel();
        self.kms_task.shutdown().await;
        self.tenancy_task.shutdown().await;
        drop(self.tenancy);
    }
}

/// Credentials recorded on the status list before the status load.
const STATUS_CREDENTIALS: u32 = 50_000;

/// The entries of the status list whose publication is timed.
const STATUS_LIST_SIZE: u32 = 1_000_000;

/// Status updates per second through the admin API: `WALLETS` operators revoking distinct
/// credentials of one 1,000,000-entry list back to back (each request one transaction that
/// also marks the list dirty); then the publication of that list (its entries read, the list
/// built, compressed and signed in JWT and CWT form, the token saved), timed over five runs.
async fn status(label: &str, edk: &Edk) {
    let Backend::Edk { token, .. } = &edk.target.backend else {
        return;
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .put(format!("{}/configurations/badge", edk.admin))
        .bearer_auth(token)
        .json(&json!({
            "configuration": { "format": "dc+sd-jwt", "vct": "https://credentials.example.com/badge" },
            "settings": { "status": { "purpose": "revocation", "list_size": STATUS_LIST_SIZE } },
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let context = edk_tenancy::TenantDirectory::context(&edk.tenancy, edk.tenant)
        .await
        .unwrap();
    let store = edk_oid4vci::SqlStore::new(edk.tenancy.clone());
    let spec = edk_oid4vci::status::StatusListSpec {
        configuration_id: "badge".to_owned(),
        purpose: edk_oid4vci::StatusPurpose::Revocation,
        bits: edk_core::status_list::Bits::One,
        size: STATUS_LIST_SIZE,
        issuer: "http://localhost/bench".to_owned(),
        uri_base: "http://localhost/bench/status-lists".to_owned(),
    };
    let now = SystemClock.unix_seconds();
    let mut list_id = String::new();
    for batch in 0..STATUS_CREDENTIALS / 1000 {
        let indices =
            edk_oid4vci::StatusStore::allocate_status_indices(&store, &context, &spec, 1000, now)
                .await
                .unwrap();
        let records: Vec<_> = indices
            .into_iter()
            .enumerate()
            .map(|(n, index)| {
                list_id.clone_from(&index.list_id);
                edk_oid4vci::NewIssuedCredential {
                    credential_id: format!("c{:08}", batch * 1000 + u32::try_from(n).unwrap()),
                    session_id: "bench".to_owned(),
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
    }
    let next = Arc::new(AtomicU64::new(0));
    let length = duration();
    let started = Instant::now();
    let mut operators = Vec::new();
    for _ in 0..WALLETS {
        let (client, next) = (client.clone(), Arc::clone(&next));
        let (url, token) = (format!("{}/credentials/status", edk.admin), token.clone());
        operators.push(tokio::spawn(async move {
            let (mut latencies, mut failures) = (Vec::new(), 0_usize);
            while started.elapsed() < length {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= u64::from(STATUS_CREDENTIALS) {
                    break;
                }
                let began = Instant::now();
                let ok = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "action": "revoke", "target": "credential", "id": format!("c{n:08}") }))
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success());
                latencies.push(began.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for operator in operators {
        let (more, failed) = operator.await.unwrap();
        latencies.extend(more);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| edk_benches::quantile(&latencies, q).as_secs_f64() * 1000.0;
    let mut publications = Vec::new();
    for n in 0..5 {
        // One more revocation first: each publication signs a list that changed.
        edk.issuer
            .set_credential_status(
                &context,
                &edk_oid4vci::CredentialSelector::Credential(format!(
                    "c{:08}",
                    u64::from(STATUS_CREDENTIALS) - 1 - n
                )),
                edk_oid4vci::StatusAction::Revoke,
            )
            .await
            .unwrap();
        let began = Instant::now();
        let published = edk
            .issuer
            .publish_status_list(&context, &list_id)
            .await
            .unwrap();
        publications.push(began.elapsed());
        assert!(published.is_some());
    }
    let publish_ms = publications.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / 5.0;
    println!(
        "RESULT target={label} operators={WALLETS} updates_per_sec={:.1} p50_ms={:.1} p99_ms={:.1} updates={} failed={failures} publish_1m_entries_ms={publish_ms:.1}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        latencies.len(),
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Starts the Sphereon peer and runs the flows against it; `Err` when it cannot start.
async fn sphereon() -> Result<(), String> {
    let folder = workspace_root().join("benches/peers/sphereon_issuer");
    if !folder
        .join("node_modules/@sphereon/oid4vci-issuer-server")
        .exists()
    {
        return Err(format!(
            "{} has no node_modules: run benches/peers/sphereon_issuer.sh",
            folder.display()
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("no free port: {err}"))?
        .port();
    let mut child = tokio::process::Command::new("node")
        .arg("server.mjs")
        .current_dir(&folder)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("node: {err}"))?;
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(base) = line.strip_prefix("listening ") {
                return Some(base.to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the Sphereon server did not start")?;
    // The server logs every request on stdout: keep reading so it never blocks.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let target = Target {
        backend: Backend::Sphereon {
            offers: format!("{base}/webapp/credential-offers"),
        },
        token_endpoint: format!("{base}/token"),
        nonce_endpoint: format!("{base}/nonce"),
        credential_endpoint: format!("{base}/credential"),
    };
    measure("sphereon", &target).await;
    child.kill().await.ok();
    drain.abort();
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    edk_server::install_crypto_provider();
    let targets = std::env::var("TARGETS")
        .unwrap_or_else(|_| "sqlite,postgres,sphereon,status-sqlite,status-postgres".into());
    let targets: Vec<&str> = targets.split(',').map(str::trim).collect();
    println!(
        "OpenID4VCI pre-authorized flows over HTTP (offer by reference via the backend, token, nonce, credential with an ES256 JWT proof; dc+sd-jwt, ES256, 10 selectively disclosable claims), {WALLETS} concurrent wallets"
    );
    if targets.contains(&"sqlite") || targets.contains(&"status-sqlite") {
        let dir = tempfile::tempdir().unwrap();
        let edk = Edk::start(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await;
        if targets.contains(&"sqlite") {
            measure("edk-sqlite", &edk.target).await;
        }
        if targets.contains(&"status-sqlite") {
            status("status-sqlite", &edk).await;
        }
        edk.stop().await;
    }
    if targets.contains(&"postgres") || targets.contains(&"status-postgres") {
        let db = edk_testkit::TestDb::new().await;
        let edk = Edk::start(DatabaseConfig::Postgres(
            edk_tenancy::store::postgres::PostgresConfig::new(db.url().into()),
        ))
        .await;
        if targets.contains(&"postgres") {
            measure("edk-postgres", &edk.target).await;
        }
        if targets.contains(&"status-postgres") {
            status("status-postgres", &edk).await;
        }
        edk.stop().await;
        db.close().await;
    }
    if targets.contains(&"sphereon")
        && let Err(err) = sphereon().await
    {
        println!("RESULT target=sphereon unavailable: {err}");
    }
}
