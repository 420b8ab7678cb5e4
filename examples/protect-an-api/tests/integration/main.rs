//! Starts an EDK authorization server (the all-in-one `edk` application, in process, on a
//! temporary data directory and a loopback port) and the compiled `protect-an-api` binary
//! pointed at it, gets tokens from the authorization server as a client would
//! (`client_credentials`, plain and DPoP-bound) and calls the API with them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{Clock as _, SystemClock};
use edk_server::{TestServer, spawn_server};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The API's resource identifier, registered for the client and required by the API.
const AUDIENCE: &str = "https://orders.example";

/// The all-in-one EDK serving the default tenant's authorization server on
/// `localhost:<port>`, with a registered client.
struct AuthorizationServer {
    server: TestServer,
    edk: Edk,
    http: reqwest::Client,
    client_secret: String,
    _dir: tempfile::TempDir,
}

impl AuthorizationServer {
    /// Starts EDK (on the system clock: the API runs in another process, on it too) and
    /// registers the client `orders-app` with the bootstrap admin token.
    async fn start() -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let http = reqwest::Client::builder().build().unwrap();
        let edk = Edk::start(&EdkConfig::default(), &data, Arc::new(SystemClock), &http)
            .await
            .unwrap();
        let admin_token = edk.bootstrap_token().unwrap().to_owned();
        let server = spawn_server(edk.app()).await.unwrap();
        edk.bind_default_tenant(server.addr().port()).await.unwrap();
        let created = http
            .post(server.url("/api/oauth2/v1/clients"))
            .bearer_auth(&admin_token)
            .json(&json!({
                "client_id": "orders-app",
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"],
                "scopes": ["orders:read", "orders:write"],
                "resources": [AUDIENCE],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        Self {
            client_secret: created["client_secret"].as_str().unwrap().to_owned(),
            server,
            edk,
            http,
            _dir: dir,
        }
    }

    /// Where the authorization server answers: `localhost` on its port, which is also its
    /// issuer (`edk` binds its local tenant's authorization server to loopback over http).
    fn local(&self) -> String {
        format!("http://localhost:{}", self.server.addr().port())
    }

    fn issuer(&self) -> String {
        format!("http://localhost:{}", self.server.addr().port())
    }

    /// A `client_credentials` token request for `scope` (and, unless `None`, `resource`).
    fn token_request(&self, scope: &str, resource: Option<&str>) -> reqwest::RequestBuilder {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        self.http
            .post(format!("{}/token", self.local()))
            .basic_auth("orders-app", Some(&self.client_secret))
            .form(&form)
    }

    /// A bearer access token.
    async fn bearer_token(&self, scope: &str, resource: Option<&str>) -> String {
        let response = self.token_request(scope, resource).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token bound to `key`: the first request learns the server's DPoP nonce
    /// (`use_dpop_nonce`), the second sends a proof with it.
    async fn dpop_token(&self, key: &DpopKey, scope: &str) -> String {
        let htu = format!("{}/token", self.issuer());
        let proof = key.proof("POST", &htu, None, None).await;
        let first = self
            .token_request(scope, Some(AUDIENCE))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 400);
        let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["error"], "use_dpop_nonce");

        let proof = key.proof("POST", &htu, Some(&nonce), None).await;
        let response = self
            .token_request(scope, Some(AUDIENCE))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.edk.shutdown().await;
    }
}

/// The running example; killed when dropped.
struct Api {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// Starts the binary on a free loopback port for the tokens of `authorization_server`.
    fn start(authorization_server: &AuthorizationServer) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_protect-an-api"))
            .args(["--listen", "127.0.0.1:0", "--audience", AUDIENCE])
            .args(["--issuer", &authorization_server.issuer()])
            .arg("--jwks-uri")
            .arg(format!("{}/jwks.json", authorization_server.local()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the API exited before listening")
                .unwrap();
            if let Some((_, address)) = line.split_once("listening on ") {
                break address.trim().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            base,
            http: reqwest::Client::builder().build().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method /orders` with `authorization` and `dpop` headers: status, challenge, body.
    async fn orders(
        &self,
        method: reqwest::Method,
        authorization: Option<String>,
        dpop: Option<String>,
    ) -> (u16, Option<String>, Value) {
        let mut request = self.http.request(method, self.url("/orders"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(proof) = dpop {
            request = request.header("dpop", proof);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, challenge, response.json().await.unwrap())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client's DPoP key (RFC 9449) and the proofs it signs.
struct DpopKey(SigningKey);

impl DpopKey {
    fn new() -> Self {
        Self(SigningKey::generate(Algorithm::Es256).unwrap())
    }

    async fn proof(
        &self,
        method: &str,
        htu: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> String {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu,
            "iat": SystemClock.unix_seconds(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(b64url_encode(sha2::Sha256::digest(token.as_bytes())));
        }
        let header = Header::new(Algorithm::Es256)
            .with_typ("dpop+jwt")
            .with_jwk(&self.0.public_jwk());
        jws::sign(header, claims.to_string().as_bytes(), &self.0)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn bearer_tokens_are_checked_for_audience_and_scope() {
    let authorization_server = Box::pin(AuthorizationServer::start()).await;
    let api = Api::start(&authorization_server);
    let read = authorization_server
        .bearer_token("orders:read", Some(AUDIENCE))
        .await;

    let (status, _, body) = api
        .orders(reqwest::Method::GET, Some(format!("Bearer {read}")), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], "orders-app");
    assert_eq!(body["dpop_jkt"], Value::Null);

    // The token does not grant `orders:write`.
    let (status, challenge, body) = api
        .orders(reqwest::Method::POST, Some(format!("Bearer {read}")), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer error="insufficient_scope""#)
    );
    let write = authorization_server
        .bearer_token("orders:write", Some(AUDIENCE))
        .await;
    let (status, _, body) = api
        .orders(reqwest::Method::POST, Some(format!("Bearer {write}")), None)
        .await;
    assert_eq!(status, 201, "{body}");

    // No token; a token for another audience (the authorization server's own issuer).
    let (status, challenge, body) = api.orders(reqwest::Method::GET, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(challenge.unwrap(), "Bearer, DPoP");
    let elsewhere = authorization_server.bearer_token("orders:read", None).await;
    let (status, _, body) = api
        .orders(
            reqwest::Method::GET,
            Some(format!("Bearer {elsewhere}")),
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    drop(api);
    authorization_server.stop().await;
}

#[tokio::test]
async fn a_token_with_a_wrong_signature_is_refused() {
    let authorization_server = Box::pin(AuthorizationServer::start()).await;
    let api = Api::start(&authorization_server);
    let read = authorization_server
        .bearer_token("orders:read", Some(AUDIENCE))
        .await;
    let write = authorization_server
        .bearer_token("orders:read orders:write", Some(AUDIENCE))
        .await;

    // The claims of one token under the signature of another.
    let (signed, _) = read.rsplit_once('.').unwrap();
    let (_, other_signature) = write.rsplit_once('.').unwrap();
    let spliced = format!("{signed}.{other_signature}");
    // The claims of a real token re-signed by a key of our own under the server's kid.
    let (header, rest) = write.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let header: Value =
        serde_json::from_slice(&edk_core::encoding::b64url_decode(header).unwrap()).unwrap();
    let claims = edk_core::encoding::b64url_decode(payload).unwrap();
    let forger = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = jws::sign(
        Header::new(Algorithm::Es256)
            .with_typ("at+jwt")
            .with_kid(header["kid"].as_str().unwrap()),
        &claims,
        &forger,
    )
    .await
    .unwrap();

    for token in [spliced, forged] {
        let (status, challenge, body) = api
            .orders(reqwest::Method::GET, Some(format!("Bearer {token}")), None)
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(
            challenge.unwrap(),
            r#"Bearer error="invalid_token", error_description="the access token is invalid""#
        );
    }
    drop(api);
    authorization_server.stop().await;
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_of_the_bound_key() {
    let authorization_server = Box::pin(AuthorizationServer::start()).await;
    let api = Api::start(&authorization_server);
    let key = DpopKey::new();
    let token = authorization_server.dpop_token(&key, "orders:read").await;
    let url = api.url("/orders");

    let proof = key.proof("GET", &url, None, Some(&token)).await;
    let (status, _, body) = api
        .orders(
            reqwest::Method::GET,
            Some(format!("DPoP {token}")),
            Some(proof.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dpop_jkt"], key.0.public_jwk().thumbprint());

    // The same proof again is a replay.
    let (status, challenge, body) = api
        .orders(
            reqwest::Method::GET,
            Some(format!("DPoP {token}")),
            Some(proof),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"DPoP error="invalid_dpop_proof""#)
    );

    // The token does not grant `orders:write`; the challenge is in the DPoP scheme.
    let proof = key.proof("POST", &url, None, Some(&token)).await;
    let (status, challenge, body) = api
        .orders(
            reqwest::Method::POST,
            Some(format!("DPoP {token}")),
            Some(proof),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"DPoP error="insufficient_scope""#)
    );

    // A proof by another key; a proof for another URL; no proof; the token as Bearer.
    let other = DpopKey::new();
    let refusals = [
        (
            "DPoP",
            Some(other.proof("GET", &url, None, Some(&token)).await),
            "invalid_dpop_proof",
        ),
        (
            "DPoP",
            Some(
                key.proof("GET", &api.url("/elsewhere"), None, Some(&token))
                    .await,
            ),
            "invalid_dpop_proof",
        ),
        ("DPoP", None, "invalid_dpop_proof"),
        (
            "Bearer",
            Some(key.proof("GET", &url, None, Some(&token)).await),
            "invalid_token",
        ),
    ];
    for (scheme, proof, error) in refusals {
        let (status, _, body) = api
            .orders(
                reqwest::Method::GET,
                Some(format!("{scheme} {token}")),
                proof,
            )
            .await;
        assert_eq!(status, 401, "{scheme}: {body}");
        assert_eq!(body["error"], error, "{scheme}: {body}");
    }
    drop(api);
    authorization_server.stop().await;
}
