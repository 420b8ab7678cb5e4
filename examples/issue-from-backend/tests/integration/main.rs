//! Starts the all-in-one EDK application in process (on a temporary data directory and a
//! loopback port, its default tenant's issuer and authorization server at
//! `http://localhost:<port>`), runs the compiled `issue-from-backend` binary against it with
//! the bootstrap admin token, and acts as the person's wallet with what the binary printed:
//! the offer URI from the QR code's text, the transaction code, then token, nonce and
//! credential requests over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, SigningKey};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::{Clock as _, Limits, SystemClock};
use edk_server::{TestServer, spawn_server};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// The all-in-one EDK with its default tenant bound to `localhost:<port>`.
struct RunningEdk {
    server: TestServer,
    edk: Edk,
    http: reqwest::Client,
    admin_token: String,
    _dir: tempfile::TempDir,
}

impl RunningEdk {
    async fn start() -> Self {
        Box::pin(Self::start_with(EdkConfig::default())).await
    }

    async fn start_with(config: EdkConfig) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let edk = Edk::start(&config, &data, Arc::new(SystemClock), &http)
            .await
            .unwrap();
        let admin_token = edk.bootstrap_token().unwrap().to_owned();
        let server = spawn_server(edk.app()).await.unwrap();
        edk.bind_default_tenant(server.addr().port()).await.unwrap();
        Self {
            server,
            edk,
            http,
            admin_token,
            _dir: dir,
        }
    }

    /// The admin API's origin (what `--edk-url` takes).
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.addr().port())
    }

    /// The credential issuer identifier (and the authorization server's issuer).
    fn issuer(&self) -> String {
        format!("http://localhost:{}", self.server.addr().port())
    }

    /// `GET` on the issuer admin API with the bootstrap token.
    async fn admin_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/oid4vci/v1{path}", self.url()))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// The public keys of the default tenant's credential signing key.
    async fn credential_jwks(&self) -> JwkSet {
        self.http
            .get(format!(
                "{}/api/kms/v1/keys/issuer.credential-signing/jwks",
                self.url()
            ))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.edk.shutdown().await;
    }
}

/// The running example, its standard output read line by line; killed when dropped.
struct Example {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Example {
    /// Starts the binary against `edk` with the admin token in `EDK_ADMIN_TOKEN`.
    fn start(edk: &RunningEdk, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_issue-from-backend"))
            .args(["--edk-url", &edk.url(), "--poll-interval-ms", "200"])
            .args(args)
            .env("EDK_ADMIN_TOKEN", &edk.admin_token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next line printed (`None` once the program has closed its output).
    async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the example printed nothing for 30 s")
            .unwrap()
    }

    /// Lines up to and including the one that starts with `prefix`: those before it, and
    /// what follows the prefix.
    async fn until(&mut self, prefix: &str) -> (Vec<String>, String) {
        let mut before = Vec::new();
        loop {
            let line = self
                .line()
                .await
                .unwrap_or_else(|| panic!("the example ended before {prefix:?}: {before:?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return (before, rest.to_owned());
            }
            before.push(line);
        }
    }

    /// The remaining lines and the exit code.
    async fn finish(mut self) -> (Vec<String>, i32) {
        let mut rest = Vec::new();
        while let Some(line) = self.line().await {
            rest.push(line);
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        (rest, status.code().unwrap())
    }
}

/// The offer in `uri` (`openid-credential-offer://?credential_offer=<JSON>`), as a wallet
/// reads it.
fn offer_by_value(uri: &str) -> Value {
    let url = url::Url::parse(uri).unwrap();
    assert_eq!(url.scheme(), "openid-credential-offer");
    let (name, json) = url.query_pairs().next().unwrap();
    assert_eq!(name, "credential_offer");
    serde_json::from_str(&json).unwrap()
}

/// The person's wallet: it speaks to the issuer and its authorization server only through
/// the URLs the offer and the metadata give.
struct Wallet {
    http: reqwest::Client,
    key: SigningKey,
    metadata: Value,
    token_endpoint: String,
}

impl Wallet {
    /// Reads the issuer's metadata and its authorization server's.
    async fn for_offer(offer: &Value) -> Self {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let issuer = offer["credential_issuer"].as_str().unwrap();
        let metadata: Value = http
            .get(format!("{issuer}/.well-known/openid-credential-issuer"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let authorization_server = metadata["authorization_servers"][0].as_str().unwrap();
        let as_metadata: Value = http
            .get(format!(
                "{authorization_server}/.well-known/oauth-authorization-server"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            token_endpoint: as_metadata["token_endpoint"].as_str().unwrap().to_owned(),
            http,
            key: SigningKey::generate(Algorithm::Es256).unwrap(),
            metadata,
        }
    }

    /// Redeems the offer's pre-authorized code with `tx_code`: the status and body.
    async fn redeem(&self, offer: &Value, tx_code: &str) -> (u16, Value) {
        let code = offer["grants"][PRE_AUTHORIZED]["pre-authorized_code"]
            .as_str()
            .unwrap();
        let response = self
            .http
            .post(&self.token_endpoint)
            .form(&[
                ("grant_type", PRE_AUTHORIZED),
                ("pre-authorized_code", code),
                ("tx_code", tx_code),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Asks for the credential with `token` (a token response): a fresh nonce, a key proof,
    /// and the credential request. The status and body.
    async fn request_credential(&self, token: &Value) -> (u16, Value) {
        let nonce: Value = self
            .http
            .post(self.metadata["nonce_endpoint"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = Header::new(Algorithm::Es256)
            .with_typ("openid4vci-proof+jwt")
            .with_jwk(&self.key.public_jwk());
        let claims = json!({
            "aud": self.metadata["credential_issuer"],
            "iat": SystemClock.unix_seconds(),
            "nonce": nonce["c_nonce"],
        });
        let signing_input = format!(
            "{}.{}",
            b64url_encode(serde_json::to_vec(&header).unwrap()),
            b64url_encode(claims.to_string())
        );
        let signature = self.key.sign_bytes(signing_input.as_bytes()).unwrap();
        let proof = format!("{signing_input}.{}", b64url_encode(signature));
        let response = self
            .http
            .post(self.metadata["credential_endpoint"].as_str().unwrap())
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&json!({
                "credential_identifier": token["authorization_details"][0]["credential_identifiers"][0],
                "proofs": { "jwt": [proof] },
            }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The credential for `token`.
    async fn credential(&self, token: &Value) -> String {
        let (status, body) = self.request_credential(token).await;
        assert_eq!(status, 200, "{body}");
        body["credentials"][0]["credential"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The QR code the example must have printed for `uri`, rendered as it renders it.
fn expected_qr(uri: &str) -> Vec<String> {
    QrCode::new(uri.as_bytes())
        .unwrap()
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_wallet_gets_the_offered_credential_and_the_example_sees_it_issued() {
    let edk = Box::pin(RunningEdk::start()).await;
    let mut example = Example::start(
        &edk,
        &[
            "--claim",
            "given_name=Erika",
            "--claim",
            "family_name=Mustermann",
            "--correlation-id",
            "person-42",
        ],
    );

    // The configuration did not exist: the example stored it, then printed the QR code of
    // the offer URI, the URI, the transaction code and the session.
    let (printed, uri) = example.until("offer: ").await;
    assert_eq!(printed[0], "created credential configuration identity");
    assert_eq!(printed[1..], expected_qr(&uri)[..]);
    let (printed, tx_code) = example.until("transaction code: ").await;
    assert!(printed.is_empty(), "{printed:?}");
    assert_eq!(tx_code.len(), 6);
    assert!(tx_code.bytes().all(|b| b.is_ascii_digit()), "{tx_code}");
    let (_, session_id) = example.until("session: ").await;
    assert_eq!(example.line().await.unwrap(), "status: offered");

    let offer = offer_by_value(&uri);
    assert_eq!(offer["credential_issuer"], edk.issuer());
    assert_eq!(offer["credential_configuration_ids"], json!(["identity"]));
    assert_eq!(
        offer["grants"][PRE_AUTHORIZED]["tx_code"],
        json!({
            "input_mode": "numeric",
            "length": 6,
            "description": "the code shown by the clerk who made this offer",
        })
    );
    let (status, session) = edk.admin_get(&format!("/sessions/{session_id}")).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["correlation_id"], "person-42");

    // A wrong transaction code gets no token; the right one does.
    let wallet = Wallet::for_offer(&offer).await;
    let wrong = if tx_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = wallet.redeem(&offer, wrong).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, token) = wallet.redeem(&offer, &tx_code).await;
    assert_eq!(status, 200, "{token}");
    let credential = wallet.credential(&token).await;

    // The example saw the session through to `credential_issued` and exited with success.
    let (rest, code) = example.finish().await;
    assert_eq!(
        rest.last().unwrap(),
        "status: credential_issued",
        "{rest:?}"
    );
    assert!(
        rest[..rest.len() - 1]
            .iter()
            .all(|line| line == "status: token_issued"),
        "{rest:?}"
    );
    assert_eq!(code, 0);

    // The credential carries the claims the backend gave, signed by the tenant's key.
    let claims = SdJwt::parse(&credential, &Limits::DEFAULT)
        .unwrap()
        .verify_vc(
            &JwksResolver::new(&edk.credential_jwks().await),
            &VcVerifyOptions::default(),
            SystemClock.unix_seconds(),
        )
        .await
        .unwrap()
        .into_sd_jwt()
        .into_claims();
    assert_eq!(claims["iss"], edk.issuer());
    assert_eq!(claims["vct"], "https://credentials.example.com/identity");
    assert_eq!(claims["given_name"], "Erika");
    assert_eq!(claims["family_name"], "Mustermann");
    let (status, session) = edk.admin_get(&format!("/sessions/{session_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(session["status"], "credential_issued");
    edk.stop().await;
}

#[tokio::test]
async fn an_existing_configuration_is_reused_and_ctrl_c_cancels_the_offer() {
    let edk = Box::pin(RunningEdk::start()).await;

    // A first run stores the configuration; it is cancelled before any wallet comes.
    let mut first = Example::start(&edk, &["--claim", "given_name=Ada", "--by-reference"]);
    let (printed, uri) = first.until("offer: ").await;
    assert_eq!(printed[0], "created credential configuration identity");
    assert_eq!(printed[1..], expected_qr(&uri)[..]);
    // By reference: the QR code holds the URL the wallet fetches the offer from.
    let url = url::Url::parse(&uri).unwrap();
    let (name, reference) = url.query_pairs().next().unwrap();
    assert_eq!(name, "credential_offer_uri");
    assert!(
        reference.starts_with(&format!("{}/offers/", edk.issuer())),
        "{reference}"
    );
    let (_, tx_code) = first.until("transaction code: ").await;
    let (_, session_id) = first.until("session: ").await;
    assert_eq!(first.line().await.unwrap(), "status: offered");
    let pid = first.child.id().unwrap();
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let (rest, code) = first.finish().await;
    assert_eq!(rest, ["status: cancelled"]);
    assert_eq!(code, 1);
    let (status, session) = edk.admin_get(&format!("/sessions/{session_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(session["status"], "cancelled");

    // The wallet that scans the cancelled offer gets no credential.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let offer: Value = http
        .get(reference.as_ref())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wallet = Wallet::for_offer(&offer).await;
    let (status, body) = wallet.redeem(&offer, &tx_code).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // A second run finds the configuration; without a transaction code the offer says none.
    let mut second = Example::start(
        &edk,
        &["--claim", "given_name=Grace", "--tx-code-digits", "0"],
    );
    let (printed, uri) = second.until("offer: ").await;
    assert_eq!(printed[0], "using credential configuration identity");
    let offer = offer_by_value(&uri);
    assert_eq!(offer["grants"][PRE_AUTHORIZED].get("tx_code"), None);
    let (printed, _) = second.until("session: ").await;
    assert!(printed.is_empty(), "no transaction code line: {printed:?}");
    drop(second);
    edk.stop().await;
}

#[tokio::test]
async fn a_refused_offer_is_reported_without_a_qr_code() {
    let edk = Box::pin(RunningEdk::start()).await;
    // Eleven digits are more than a transaction code may have.
    let output = Command::new(env!("CARGO_BIN_EXE_issue-from-backend"))
        .args(["--edk-url", &edk.url(), "--claim", "given_name=Erika"])
        .args(["--tx-code-digits", "11"])
        .env("EDK_ADMIN_TOKEN", &edk.admin_token)
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "created credential configuration identity\n"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("Error: POST /offers: 400 Bad Request: "),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(1));
    edk.stop().await;
}

#[tokio::test]
async fn an_offer_nobody_takes_up_is_reported_expired() {
    let mut config = EdkConfig::default();
    config.issuer.offer_ttl_secs = 1;
    let edk = Box::pin(RunningEdk::start_with(config)).await;
    let mut example = Example::start(&edk, &["--claim", "given_name=Erika"]);
    let (_, uri) = example.until("offer: ").await;
    let (_, tx_code) = example.until("transaction code: ").await;
    let (rest, code) = example.finish().await;
    assert_eq!(
        rest[1..],
        ["status: offered", "status: expired"],
        "{rest:?}"
    );
    assert!(rest[0].starts_with("session: "), "{rest:?}");
    assert_eq!(code, 1);
    // The wallet that comes too late gets no token.
    let offer = offer_by_value(&uri);
    let (status, body) = Wallet::for_offer(&offer)
        .await
        .redeem(&offer, &tx_code)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    edk.stop().await;
}
