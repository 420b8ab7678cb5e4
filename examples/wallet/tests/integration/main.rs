//! The end-to-end smoke test of `cargo run`: the all-in-one EDK application started in
//! process (on a temporary data directory and a loopback port, its default tenant's
//! authorization server, credential issuer and verifier at `http://localhost:<port>`),
//! set up through its admin APIs with the bootstrap token only, and the compiled
//! `edk-wallet` run against it as a person would run it.
//!
//! The setup: a CA of the issuer whose leaf certifies the credential signing key (the
//! credentials carry it as `x5c`) and whose root the verifier trusts; a CA of the verifier
//! whose leaf, for `localhost`, signs its Request Objects (its root is the wallet's
//! `--trust-anchor`); an SD-JWT VC configuration. Then offers with a transaction code, and
//! presentation requests asking for one claim.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::SystemClock;
use edk_server::{TestServer, spawn_server};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

const VCT: &str = "https://credentials.example.com/identity";

/// The all-in-one EDK with its default tenant bound to `localhost:<port>`, set up for the
/// wallet.
struct RunningEdk {
    server: TestServer,
    edk: Edk,
    http: reqwest::Client,
    admin_token: String,
    dir: tempfile::TempDir,
}

impl RunningEdk {
    async fn start() -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let edk = Edk::start(&EdkConfig::default(), &data, Arc::new(SystemClock), &http)
            .await
            .unwrap();
        let admin_token = edk.bootstrap_token().unwrap().to_owned();
        let server = spawn_server(edk.app()).await.unwrap();
        edk.bind_default_tenant(server.addr().port()).await.unwrap();
        let running = Self {
            server,
            edk,
            http,
            admin_token,
            dir,
        };
        running.set_up().await;
        running
    }

    /// The credential issuer identifier, also the verifier's origin.
    fn issuer(&self) -> String {
        format!("http://localhost:{}", self.server.addr().port())
    }

    /// `method /api<path>` with the bootstrap token: the status and the JSON answered.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method,
                format!("http://127.0.0.1:{}/api{path}", self.server.addr().port()),
            )
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Like [`Self::admin`], asserting the status.
    async fn expect(&self, method: reqwest::Method, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.admin(method, path, Some(body)).await;
        assert_eq!(got, status, "{path}: {answer}");
        answer
    }

    /// A CA `ca` (a root) and a leaf for `subject`, with the DNS name `localhost`, issued by
    /// it in the KMS: the root's PEM.
    async fn certify(&self, ca: &str, subject: &str) -> String {
        for alias in [ca, subject] {
            self.expect(
                reqwest::Method::POST,
                "/kms/v1/keys",
                json!({ "alias": alias, "usage": "sign", "algorithm": "ES256" }),
                201,
            )
            .await;
        }
        let root = self
            .expect(
                reqwest::Method::POST,
                "/kms/v1/certificates/issue",
                json!({
                    "ca_key": ca, "subject_key": ca,
                    "profile": { "kind": "ca", "path_len": 0, "subject": format!("CN={ca}"), "validity_secs": 86_400 },
                }),
                200,
            )
            .await;
        self.expect(
            reqwest::Method::POST,
            "/kms/v1/certificates/issue",
            json!({
                "ca_key": ca, "subject_key": subject,
                "profile": {
                    "kind": "leaf", "subject": format!("CN={subject}"), "validity_secs": 3_600,
                    "sans": [{ "type": "dns", "value": "localhost" }],
                },
            }),
            200,
        )
        .await;
        pem(&root["x5c"][0])
    }

    /// The issuer's and the verifier's certificates, the verifier's trust in the issuer's
    /// root, the verifier's root as the wallet's trust anchor file, and the configuration.
    async fn set_up(&self) {
        let issuer_root = self
            .certify("issuer.ca-root", "issuer.credential-signing")
            .await;
        self.expect(
            reqwest::Method::POST,
            "/kms/v1/certificate-chains/issuers",
            json!({ "chain_pem": issuer_root, "trust_anchor": true }),
            200,
        )
        .await;
        let verifier_root = self
            .certify("verifier.ca-root", "verifier.request-object-signing")
            .await;
        std::fs::write(self.verifier_root(), verifier_root).unwrap();
        self.expect(
            reqwest::Method::PUT,
            "/oid4vci/v1/configurations/identity",
            json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": VCT,
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "credential_signing_alg_values_supported": ["ES256"],
                    "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
                    "credential_metadata": { "claims": [{ "path": ["given_name"] }, { "path": ["family_name"] }, { "path": ["birthdate"] }] },
                },
                "settings": { "key_identification": { "kind": "x5c" } },
            }),
            200,
        )
        .await;
    }

    /// The PEM file of the verifier's root certificate.
    fn verifier_root(&self) -> PathBuf {
        self.dir.path().join("verifier-root.pem")
    }

    /// An offer of an identity credential with a 6-digit transaction code: its URI and the
    /// code.
    async fn offer(&self, by_reference: bool) -> (String, String) {
        let offer = self
            .expect(
                reqwest::Method::POST,
                "/oid4vci/v1/offers",
                json!({
                    "credential_configuration_ids": ["identity"],
                    "claims": { "identity": {
                        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1964-08-12",
                    } },
                    "tx_code": { "digits": 6, "description": "the code in your letter" },
                    "by_reference": by_reference,
                }),
                201,
            )
            .await;
        (
            offer["credential_offer_uri"].as_str().unwrap().to_owned(),
            offer["tx_code"].as_str().unwrap().to_owned(),
        )
    }

    /// A presentation request for the identity credential's `claim` alone: its
    /// `authorization_request_uri` and session id.
    async fn request(&self, claim: &str, prefix: &str, response_mode: &str) -> (String, String) {
        self.request_with(claim, prefix, response_mode, json!({}))
            .await
    }

    /// Like [`Self::request`], with the members of `more` in the request's body.
    async fn request_with(
        &self,
        claim: &str,
        prefix: &str,
        response_mode: &str,
        more: Value,
    ) -> (String, String) {
        let mut body = json!({
            "dcql_query": { "credentials": [{
                "id": "identity", "format": "dc+sd-jwt",
                "meta": { "vct_values": [VCT] },
                "claims": [{ "path": [claim] }],
            }] },
            "client_id_prefix": prefix,
            "response_mode": response_mode,
        });
        body.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        let made = self
            .expect(reqwest::Method::POST, "/oid4vp/v1/requests", body, 201)
            .await;
        (
            made["authorization_request_uri"]
                .as_str()
                .unwrap()
                .to_owned(),
            made["session_id"].as_str().unwrap().to_owned(),
        )
    }

    /// The verifier's session `id`.
    async fn session(&self, id: &str) -> Value {
        let (status, session) = self
            .admin(
                reqwest::Method::GET,
                &format!("/oid4vp/v1/sessions/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{session}");
        session
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.edk.shutdown().await;
    }
}

/// A certificate (standard base64 DER) as PEM.
fn pem(der: &Value) -> String {
    let body = der.as_str().unwrap();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// What a run of the wallet printed, and how it ended.
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            code: output.status.code().unwrap(),
        }
    }
}

/// Runs `edk-wallet --store <store> <args>` with `stdin` as its input.
async fn wallet(store: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edk-wallet"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env("NO_PROXY", "*")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("edk-wallet ran for 60 s")
        .unwrap();
    Run::from(output)
}

/// The store's contents.
fn stored(store: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(store).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_receives_a_credential_and_discloses_only_the_requested_claim() {
    let edk = Box::pin(RunningEdk::start()).await;
    let store = edk.dir.path().join("wallet").join("wallet.json");

    // Receive: the offer by value, the transaction code, DPoP.
    let (offer, tx_code) = edk.offer(false).await;
    let run = wallet(&store, &["receive", &offer, "--tx-code", &tx_code], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("stored credential "), "{}", run.stdout);
    assert_eq!(lines[1], format!("  type: {VCT}"));
    assert_eq!(lines[2], format!("  issuer: {}", edk.issuer()));
    // The claims, in the order the issuer's disclosures came.
    let mut claims = lines[3..].to_vec();
    claims.sort_unstable();
    assert_eq!(
        claims,
        [
            "  birthdate: \"1964-08-12\"",
            "  family_name: \"Mustermann\"",
            "  given_name: \"Erika\"",
        ],
        "{}",
        run.stdout
    );
    let contents = stored(&store);
    let credentials = contents["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0]["vct"], VCT);
    assert_eq!(credentials[0]["issuer"], edk.issuer());
    assert_eq!(credentials[0]["claims"]["family_name"], "Mustermann");
    // Issued as the offer said, bound to the holder key the wallet keeps.
    let sd_jwt = credentials[0]["sd_jwt"].as_str().unwrap();
    assert_eq!(
        sd_jwt.matches('~').count(),
        4,
        "three disclosures: {sd_jwt}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&store).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The offer by reference works the same; the code is spent once used.
    let (offer, tx_code) = edk.offer(true).await;
    assert!(offer.contains("credential_offer_uri="), "{offer}");
    let run = wallet(&store, &["receive", &offer, "--tx-code", &tx_code], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = wallet(&store, &["receive", &offer, "--tx-code", &tx_code], "").await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("edk-wallet: "), "{}", run.stderr);
    assert_eq!(stored(&store)["credentials"].as_array().unwrap().len(), 2);

    let run = wallet(&store, &["list"], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("credential ").count(),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("  given_name: \"Erika\"").count(),
        2,
        "{}",
        run.stdout
    );

    // Present to an x509_san_dns verifier, encrypted (direct_post.jwt): only given_name.
    let (request, session) = edk
        .request("given_name", "x509_san_dns", "direct_post.jwt")
        .await;
    let anchor = edk.verifier_root();
    let run = wallet(
        &store,
        &[
            "present",
            &request,
            "--yes",
            "--trust-anchor",
            anchor.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0], "verifier: x509_san_dns:localhost",
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[1],
        format!("answer to: {}/response (direct_post.jwt)", edk.issuer())
    );
    assert!(
        lines[2].starts_with("identity: credential "),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[3..],
        [
            "  discloses given_name = \"Erika\"",
            "presented to x509_san_dns:localhost"
        ]
    );
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "verified", "{session}");
    let claims = session["claims"]["identity"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["given_name"], "Erika");
    assert_eq!(claims[0].get("family_name"), None, "{session}");
    assert_eq!(claims[0].get("birthdate"), None, "{session}");

    // An x509_hash verifier (the same certificate, named by its hash).
    let (request, session) = edk.request("family_name", "x509_hash", "direct_post").await;
    let run = wallet(
        &store,
        &[
            "present",
            &request,
            "--yes",
            "--trust-anchor",
            anchor.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("verifier: x509_hash:"),
        "{}",
        run.stdout
    );
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "verified", "{session}");
    assert_eq!(
        session["claims"]["identity"][0]["family_name"],
        "Mustermann"
    );
    assert_eq!(session["claims"]["identity"][0].get("given_name"), None);

    // A decentralized_identifier (did:jwk) verifier, plain direct_post: only birthdate.
    let (request, session) = edk
        .request("birthdate", "decentralized_identifier", "direct_post")
        .await;
    let run = wallet(&store, &["present", &request, "--yes"], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("  discloses birthdate = \"1964-08-12\"\n"),
        "{}",
        run.stdout
    );
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "verified", "{session}");
    let claims = &session["claims"]["identity"][0];
    assert_eq!(claims["birthdate"], "1964-08-12");
    assert_eq!(claims.get("given_name"), None, "{session}");

    // A request with transaction data: shown, and its hash signed in the Key Binding JWT.
    let payment =
        json!({ "type": "payment", "credential_ids": ["identity"], "amount": "42.00 EUR" });
    let (request, session) = edk
        .request_with(
            "given_name",
            "decentralized_identifier",
            "direct_post",
            json!({ "transaction_data": [payment] }),
        )
        .await;
    let run = wallet(&store, &["present", &request, "--yes"], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("  confirms transaction data "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(serde_json::from_str::<Value>(shown).unwrap(), payment);
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "verified", "{session}");

    // A redirect_uri verifier's unsigned request by value, agreed to at the prompt.
    let (request, session) = edk
        .request("family_name", "redirect_uri", "direct_post")
        .await;
    let run = wallet(&store, &["present", &request], "y\n").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("send this to the verifier? [y/N]"),
        "{}",
        run.stderr
    );
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "verified", "{session}");
    assert_eq!(
        session["claims"]["identity"][0]["family_name"],
        "Mustermann"
    );

    edk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_transaction_code_stores_nothing() {
    let edk = Box::pin(RunningEdk::start()).await;
    let store = edk.dir.path().join("wallet.json");
    let (offer, tx_code) = edk.offer(false).await;
    let wrong = if tx_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let run = wallet(&store, &["receive", &offer, "--tx-code", wrong], "").await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with(
            "edk-wallet: the authorization server refused the pre-authorized code and transaction code: 400 invalid_grant"
        ),
        "{}",
        run.stderr
    );
    assert!(!store.exists());

    // Without the code, or with one of the wrong length, the wallet says so before asking.
    let run = wallet(&store, &["receive", &offer], "").await;
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "edk-wallet: the offer needs a transaction code (the code in your letter): give it with --tx-code\n"
    );
    let run = wallet(&store, &["receive", &offer, "--tx-code", "12"], "").await;
    assert_eq!(
        run.stderr,
        "edk-wallet: the transaction code must have 6 characters\n"
    );
    let run = wallet(&store, &["receive", &offer, "--tx-code", "12345a"], "").await;
    assert_eq!(
        run.stderr,
        "edk-wallet: the transaction code is digits only\n"
    );
    let run = wallet(
        &store,
        &["receive", "openid-credential-offer://?nothing=here"],
        "",
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("edk-wallet: not a credential offer URI: "),
        "{}",
        run.stderr
    );
    assert!(!store.exists());

    // Without --store, the store is under the user's data directory.
    let data = edk.dir.path().join("data-home");
    let output = Command::new(env!("CARGO_BIN_EXE_edk-wallet"))
        .arg("list")
        .env("XDG_DATA_HOME", &data)
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "no credentials in {}\n",
            data.join("edk-wallet").join("wallet.json").display()
        )
    );

    // The right code still works afterwards.
    let run = wallet(&store, &["receive", &offer, "--tx-code", &tx_code], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stored(&store)["credentials"].as_array().unwrap().len(), 1);
    edk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_verifiers_declined_requests_and_unanswerable_queries_fail() {
    let edk = Box::pin(RunningEdk::start()).await;
    let store = edk.dir.path().join("wallet.json");
    let (offer, tx_code) = edk.offer(false).await;
    let run = wallet(&store, &["receive", &offer, "--tx-code", &tx_code], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    // No trust anchor for an x509_san_dns verifier: refused before anything is shown.
    let (request, session) = edk
        .request("given_name", "x509_san_dns", "direct_post")
        .await;
    let run = wallet(&store, &["present", &request, "--yes"], "").await;
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("edk-wallet: the verifier's request does not verify: "),
        "{}",
        run.stderr
    );
    assert_eq!(edk.session(&session).await["status"], "retrieved");

    // Declined at the prompt: the verifier hears access_denied.
    let (request, session) = edk
        .request("given_name", "decentralized_identifier", "direct_post")
        .await;
    let run = wallet(&store, &["present", &request], "n\n").await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .ends_with("edk-wallet: declined; the verifier was told\n"),
        "{}",
        run.stderr
    );
    let session = edk.session(&session).await;
    assert_eq!(session["status"], "failed", "{session}");
    assert_eq!(session["error"]["error"], "access_denied", "{session}");

    // A claim the credential does not have.
    let (request, session) = edk
        .request("nationality", "decentralized_identifier", "direct_post")
        .await;
    let run = wallet(&store, &["present", &request, "--yes"], "").await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no credential in the wallet answers the request (unanswered: identity)"),
        "{}",
        run.stderr
    );
    assert_eq!(edk.session(&session).await["status"], "failed");
    edk.stop().await;
}
