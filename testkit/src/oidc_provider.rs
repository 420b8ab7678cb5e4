//! A real OpenID Provider (npm `oidc-provider`, pinned in `interop/node`) as a child process.
//!
//! [`OidcProvider::start`] runs `interop/node/oidc_provider.mjs` on `127.0.0.1` with a free
//! port and the clients given; the process is killed when the value is dropped (and exits by
//! itself when the test process dies, because its stdin closes). In
//! [`OidcProviderMode::Login`] the provider has its development login and consent pages on;
//! [`OidcProvider::login`] drives them with plain HTTP requests the way a browser would.
//! [`OidcProvider::start_with_tls`] serves HTTPS with a certificate the test made.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

/// The workspace root (the folder holding the root `Cargo.toml`).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// Runs the Node peer `script` of `interop/node` with `input` (JSON on its standard input):
/// the JSON it printed on standard output.
///
/// # Panics
/// When `node_modules` is missing, or the script fails or prints no JSON.
pub async fn run_script(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let (script, input) = (script.to_owned(), input.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = Command::new("node")
            .arg(&script)
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("the input is written");
        let output = child.wait_with_output().expect("node runs");
        assert!(
            output.status.success(),
            "{script} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the script prints JSON")
    })
    .await
    .expect("the script's task")
}

/// The folder holding the Node peers and their `node_modules`.
///
/// # Panics
/// When `node_modules` is missing (run `scripts/test --setup-only`).
#[must_use]
pub fn node_dir() -> PathBuf {
    let dir = workspace_root().join("interop/node");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only, which installs the interop peers",
        dir.display()
    );
    dir
}

/// What the provider is set up for.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum OidcProviderMode {
    /// Authorization code with PKCE (S256, required) and the development login/consent pages.
    Login,
    /// The client_credentials grant issuing JWT access tokens for [`OidcProvider::RESOURCE`].
    ClientCredentials,
}

impl OidcProviderMode {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::ClientCredentials => "client-credentials",
        }
    }
}

/// A client registered at the provider (serialised as OpenID client metadata).
#[derive(Clone, Debug, Serialize)]
pub struct OidcTestClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// `redirect_uris` (empty for client_credentials clients).
    pub redirect_uris: Vec<String>,
    /// `token_endpoint_auth_method`: `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
}

impl OidcTestClient {
    /// A confidential client using `client_secret_basic`.
    #[must_use]
    pub fn new(client_id: &str, client_secret: &str, redirect_uris: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.iter().map(|uri| (*uri).to_owned()).collect(),
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
        }
    }

    /// The same client authenticating with `client_secret_post`.
    #[must_use]
    pub fn with_secret_post(mut self) -> Self {
        "client_secret_post".clone_into(&mut self.token_endpoint_auth_method);
        self
    }
}

/// The TLS identity of a provider serving HTTPS ([`OidcProvider::start_with_tls`]).
pub struct OidcTls {
    /// The certificate chain, PEM, leaf first; the leaf names the IP address `127.0.0.1`.
    pub cert_chain_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
    /// The CA certificate, PEM, that the browser of [`OidcProvider::login`] trusts.
    pub ca_pem: String,
}

impl std::fmt::Debug for OidcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcTls")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"[REDACTED]")
            .field("ca_pem", &self.ca_pem)
            .finish()
    }
}

/// A running `oidc-provider`, killed on drop.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    // Held open: the script exits when its stdin closes.
    _stdin: Option<ChildStdin>,
    issuer: url::Url,
    port: u16,
    // The CA the login browser trusts, when the provider serves HTTPS.
    ca_pem: Option<String>,
    // The certificate and key files the provider reads at start.
    _tls_dir: Option<tempfile::TempDir>,
}

impl OidcProvider {
    /// The resource indicator (and access-token audience) of the client_credentials mode.
    pub const RESOURCE: &'static str = "https://api.example.test";

    /// Starts the provider and waits until it listens.
    ///
    /// # Panics
    /// When Node or the installed peer is missing or the provider fails to start.
    pub async fn start(mode: OidcProviderMode, clients: &[OidcTestClient]) -> Self {
        let clients = serde_json::to_string(clients).expect("client metadata serialises");
        tokio::task::spawn_blocking(move || Self::start_blocking(mode, &clients, None))
            .await
            .expect("starting oidc-provider")
    }

    /// Starts the provider serving HTTPS with `tls`; its issuer is
    /// `https://127.0.0.1:<port>`.
    ///
    /// # Panics
    /// As [`OidcProvider::start`], or when the certificate files cannot be written.
    pub async fn start_with_tls(
        mode: OidcProviderMode,
        clients: &[OidcTestClient],
        tls: OidcTls,
    ) -> Self {
        let clients = serde_json::to_string(clients).expect("client metadata serialises");
        tokio::task::spawn_blocking(move || Self::start_blocking(mode, &clients, Some(tls)))
            .await
            .expect("starting oidc-provider")
    }

    fn start_blocking(mode: OidcProviderMode, clients: &str, tls: Option<OidcTls>) -> Self {
        let mut command = Command::new("node");
        command
            .arg("oidc_provider.mjs")
            .args(["--mode", mode.as_arg()])
            .env("OIDC_CLIENTS", clients);
        let mut tls_dir = None;
        let mut ca_pem = None;
        if let Some(tls) = tls {
            let dir = tempfile::tempdir().expect("a folder for the TLS files");
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            std::fs::write(&cert, &tls.cert_chain_pem).expect("writing the certificate");
            std::fs::write(&key, &tls.key_pem).expect("writing the key");
            command.env("OIDC_TLS_CERT", cert).env("OIDC_TLS_KEY", key);
            tls_dir = Some(dir);
            ca_pem = Some(tls.ca_pem);
        }
        let mut child = command
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start node oidc_provider.mjs: {err}"));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        if !matches!(read, Ok(n) if n > 0) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oidc-provider exited before it was ready ({read:?})");
        }
        // Keep draining stdout so the provider never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
        let issuer = ready["issuer"]
            .as_str()
            .and_then(|issuer| url::Url::parse(issuer).ok())
            .unwrap_or_else(|| panic!("no issuer in {line:?}"));
        let port = ready["port"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self {
            child,
            _stdin: stdin,
            issuer,
            port,
            ca_pem,
            _tls_dir: tls_dir,
        }
    }

    /// The issuer identifier, `http://127.0.0.1:<port>`, or `https://…` when it serves
    /// HTTPS (no trailing slash).
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drives the development login and consent pages like a browser: starts at
    /// `authorization_url` (a request to the provider's authorization endpoint), signs in as
    /// `login` (the account id, which becomes `sub`), confirms consent and returns the
    /// redirect back to the client (the first `Location` starting with `redirect_uri`).
    ///
    /// # Panics
    /// When the provider answers anything else, e.g. an error page for a bad request.
    pub async fn login(
        &self,
        authorization_url: &str,
        login: &str,
        redirect_uri: &str,
    ) -> url::Url {
        install_crypto_provider();
        let mut browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10));
        if let Some(ca_pem) = &self.ca_pem {
            let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the CA is PEM");
            browser = browser.add_root_certificate(ca);
        }
        let browser = browser.build().expect("browser client");
        let mut response = browser.get(authorization_url).send().await.unwrap();
        for _ in 0..12 {
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .expect("redirect has a Location")
                    .to_owned();
                let next = response.url().join(&location).expect("Location is a URL");
                if next.as_str().starts_with(redirect_uri) {
                    return next;
                }
                response = browser.get(next).send().await.unwrap();
                continue;
            }
            let page = response.text().await.unwrap();
            assert!(
                status.is_success(),
                "oidc-provider answered {status}: {page}"
            );
            let action = attribute_after(&page, "<form", "action")
                .unwrap_or_else(|| panic!("no form on the page: {page}"));
            let prompt = attribute_after(&page, "name=\"prompt\"", "value")
                .unwrap_or_else(|| panic!("no prompt on the page: {page}"));
            let form: Vec<(&str, &str)> = if prompt == "login" {
                vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", "any password"),
                ]
            } else {
                vec![("prompt", prompt.as_str())]
            };
            response = browser.post(&action).form(&form).send().await.unwrap();
        }
        panic!("the login did not come back to {redirect_uri}");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `attribute="…"` in the first tag at or after `marker` (HTML-unescaped `&amp;`).
fn attribute_after(page: &str, marker: &str, attribute: &str) -> Option<String> {
    let start = page.find(marker)?;
    let tail = &page[start..];
    let needle = format!("{attribute}=\"");
    let value_start = tail.find(&needle)? + needle.len();
    let value_len = tail[value_start..].find('"')?;
    Some(tail[value_start..value_start + value_len].replace("&amp;", "&"))
}

/// Makes aws-lc-rs the process's rustls provider, which reqwest's TLS needs when the build
/// names no provider of its own.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> reqwest::Client {
        install_crypto_provider();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn login_mode_serves_discovery_for_its_issuer() {
        let client = OidcTestClient::new("rp", "secret", &["http://127.0.0.1:1/cb"]);
        let op = OidcProvider::start(OidcProviderMode::Login, &[client]).await;
        assert!(op.issuer().ends_with(&format!(":{}", op.port())));
        let metadata: serde_json::Value = http()
            .get(format!("{}/.well-known/openid-configuration", op.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], op.issuer());
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
    }

    #[tokio::test]
    async fn client_credentials_mode_issues_jwt_access_tokens() {
        let client = OidcTestClient::new("bench", "secret", &[]);
        let op = OidcProvider::start(OidcProviderMode::ClientCredentials, &[client]).await;
        let token: serde_json::Value = http()
            .post(format!("{}/token", op.issuer()))
            .basic_auth("bench", Some("secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "api:read")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access_token = token["access_token"].as_str().unwrap();
        assert_eq!(access_token.split('.').count(), 3, "{token}");
        assert_eq!(token["scope"], "api:read");
    }

    #[tokio::test]
    async fn wrong_client_secret_is_refused() {
        let client = OidcTestClient::new("bench", "secret", &[]);
        let op = OidcProvider::start(OidcProviderMode::ClientCredentials, &[client]).await;
        let response = http()
            .post(format!("{}/token", op.issuer()))
            .basic_auth("bench", Some("not the secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}
