//! An `edk` serving over loopback on a data directory of its own, shared by the tests that
//! drive it over HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::Clock;
use edk_server::{TestServer, spawn_server};
use serde_json::{Value, json};

/// A running `edk`: its loopback server, the application, an HTTP client and the bootstrap
/// admin token.
pub(crate) struct Running {
    pub(crate) server: TestServer,
    pub(crate) edk: Edk,
    pub(crate) client: reqwest::Client,
    pub(crate) token: String,
    dir: tempfile::TempDir,
}

impl Running {
    /// Starts `edk` from `config` with `clock` on a new data directory and serves it over
    /// loopback; with `bind`, the local tenant is bound to the server's port on `localhost`.
    pub(crate) async fn start(config: &EdkConfig, clock: Arc<dyn Clock>, bind: bool) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let edk = Edk::start(config, &data, clock, &client).await.unwrap();
        let server = spawn_server(edk.app()).await.unwrap();
        if bind {
            edk.bind_default_tenant(server.addr().port()).await.unwrap();
        }
        let token = edk.bootstrap_token().unwrap().to_owned();
        Self {
            server,
            edk,
            client,
            token,
            dir,
        }
    }

    /// The data directory.
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of `path` on the server, by the name the local tenant is bound to.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.server.addr().port())
    }

    /// `method url` with `token` and an optional JSON body: the status and the JSON body
    /// (`null` when there is none).
    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `method path` on the server with the bootstrap token.
    pub(crate) async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.request(method, &self.url(path), Some(&self.token), body)
            .await
    }

    /// A token of the platform's first operator with `scope`: first-run setup with the
    /// setup token, then client credentials at the operator authorization server.
    pub(crate) async fn operator_token(&self, scope: &str) -> String {
        let setup_token = self.edk.setup_token().unwrap().to_owned();
        let (status, operator) = self
            .request(
                reqwest::Method::POST,
                &self.url("/api/platform/v1/setup"),
                None,
                Some(json!({"setup_token": setup_token, "client_name": "ops"})),
            )
            .await;
        assert_eq!(status, 201, "{operator}");
        let response = self
            .client
            .post(operator["token_endpoint"].as_str().unwrap())
            .basic_auth(
                operator["client_id"].as_str().unwrap(),
                operator["client_secret"].as_str(),
            )
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// Stops the server, then the application.
    pub(crate) async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.edk.shutdown().await;
    }
}
