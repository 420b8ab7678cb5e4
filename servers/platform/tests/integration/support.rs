//! A platform server on loopback over a real database, with a software key provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{Clock as _, SystemClock};
use edk_kms::provider::software::generate_kek;
use edk_platform_server::{PlatformServer, PlatformServerConfig};
use edk_server::service::{Started, start};
use edk_server::{Service as _, TestServer, spawn_server};
use edk_testkit::TestDb;
use edk_testkit::oidc_provider::{OidcProvider, OidcProviderMode, OidcTestClient};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;

/// The operator realm's client at the upstream provider of [`Platform::upstream`].
pub(crate) const UPSTREAM_CLIENT: &str = "edk-operators";
/// Its secret.
pub(crate) const UPSTREAM_SECRET: &str = "upstream-secret-for-operators";

/// The trusted issuer of tenant administrators' tokens.
pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A platform server and where it keeps its state.
pub(crate) struct Platform {
    pub(crate) admin_key: SigningKey,
    pub(crate) started: Started<PlatformServer>,
    pub(crate) http: TestServer,
    pub(crate) client: reqwest::Client,
    pub(crate) token_file: PathBuf,
    config: PlatformServerConfig,
    _dir: tempfile::TempDir,
    db: Option<TestDb>,
}

impl Platform {
    /// A server on `backend`, its setup token written to a file in a temporary directory.
    pub(crate) async fn start(backend: Backend) -> Self {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDb::new().await),
        };
        Self::start_on(db, software_kms()).await
    }

    /// A server on the PostgreSQL database `db` (SQLite without), with the `kms` section
    /// `kms`.
    pub(crate) async fn start_on(db: Option<TestDb>, kms: Value) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let database = match &db {
            None => json!({"backend": "sqlite", "directory": dir.path().join("db")}),
            Some(db) => json!({"backend": "postgres", "platform_url": db.url()}),
        };
        let token_file = dir.path().join("setup-token");
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let config: PlatformServerConfig = serde_json::from_value(json!({
            "database": database,
            "kms": kms,
            "auth": {"issuers": [{"issuer": ADMIN_ISSUER,
                "jwks": {"keys": [admin_key.public_jwk()]}}]},
            "platform": {"host": "localhost", "dangerous_loopback_http": true,
                "setup_token_file": token_file},
        }))
        .unwrap();
        // On the heap: the server's start-up is a large future.
        Box::pin(Self::start_with(config, admin_key, dir, db)).await
    }

    async fn start_with(
        config: PlatformServerConfig,
        admin_key: SigningKey,
        dir: tempfile::TempDir,
        db: Option<TestDb>,
    ) -> Self {
        let client = reqwest::Client::new();
        let started = start::<PlatformServer>(&config, Arc::new(SystemClock), client.clone())
            .await
            .unwrap();
        let http = spawn_server(started.app()).await.unwrap();
        started
            .bind_operator_endpoint("localhost", Some(http.addr().port()), true)
            .await
            .unwrap();
        Self {
            admin_key,
            started,
            http,
            client,
            token_file: config.platform.setup_token_file.clone().unwrap(),
            config,
            _dir: dir,
            db,
        }
    }

    /// A second replica on this one's database and KMS keys, with a setup token file of its
    /// own.
    pub(crate) async fn replica(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.config.clone();
        config.platform.setup_token_file = Some(dir.path().join("setup-token"));
        // Tenant administrators' tokens are minted on the first replica.
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        Self::start_with(config, admin_key, dir, None).await
    }

    /// The URL of `path` on the server, by the name the operator endpoint is bound to.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.http.addr().port())
    }

    /// The server's PostgreSQL database (`None` on SQLite).
    pub(crate) const fn database(&self) -> Option<&TestDb> {
        self.db.as_ref()
    }

    /// The setup token from the token file.
    pub(crate) fn setup_token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Runs setup with `token`: the status and the body.
    pub(crate) async fn setup(&self, token: &str) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/api/platform/v1/setup"))
            .json(&json!({"setup_token": token, "client_name": "first operator"}))
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// An operator token by client credentials with `scope`.
    pub(crate) async fn operator_token(&self, operator: &Value, scope: &str) -> String {
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
        let (status, body) = read(response).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Runs setup with the setup token: the first operator and its token with every
    /// platform scope.
    pub(crate) async fn first_operator(&self) -> (Value, String) {
        let (status, operator) = self.setup(&self.setup_token()).await;
        assert_eq!(status, 201, "{operator}");
        let everything = edk_platform_server::operators::scope::ALL.join(" ");
        let token = self.operator_token(&operator, &everything).await;
        (operator, token)
    }

    /// A real upstream OpenID Provider (npm `oidc-provider`) set by `ops` as the operator
    /// realm's upstream: the provider and the answer of the API that set it.
    pub(crate) async fn upstream(&self, ops: &str) -> (OidcProvider, u16, Value) {
        let op = OidcProvider::start(
            OidcProviderMode::Login,
            &[OidcTestClient::new(
                UPSTREAM_CLIENT,
                UPSTREAM_SECRET,
                &[&self.url("/operators/callback")],
            )],
        )
        .await;
        let (status, view) = self
            .call(
                reqwest::Method::PUT,
                "/api/platform/v1/operators/upstream-oidc",
                Some(ops),
                Some(json!({"issuer": op.issuer(), "client_id": UPSTREAM_CLIENT,
                    "client_secret": UPSTREAM_SECRET, "dangerous_allow_http": true})),
            )
            .await;
        (op, status, view)
    }

    /// A tenant administrator's token: from the trusted admin issuer, naming `tenant`.
    pub(crate) async fn tenant_admin_token(&self, tenant: &str, scope: &str) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "tenant-admin",
            "tenant": tenant, "scope": scope, "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }

    /// Sends `method path` with `token` and an optional JSON body.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    /// Onboards the tenant `slug` with `token`, its authorization server bound to this
    /// server under `/<slug>`: the new tenant's id.
    pub(crate) async fn onboard(&self, token: &str, slug: &str) -> String {
        let port = self.http.addr().port();
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/platform/v1/tenants",
                Some(token),
                Some(json!({
                    "slug": slug, "display_name": slug,
                    "bindings": [{"service": "as", "host": "localhost", "port": port,
                        "path_prefix": format!("/{slug}"), "dangerous_loopback_http": true}],
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn close(self) {
        self.http.shutdown().await.unwrap();
        self.started.shutdown().await;
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// The status and the JSON body (or the text as a JSON string).
pub(crate) async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A `kms` section with one software provider and a fresh KEK.
pub(crate) fn software_kms() -> Value {
    let kek = generate_kek().unwrap();
    json!({"mode": "local", "providers": [{
        "kind": "software", "id": "software", "current_kek": "k1",
        "keks": [{"id": "k1", "key": kek.expose_secret()}],
    }]})
}

/// A service key: the signing key (its `kid` the JWK thumbprint), and its public JWK; the
/// private JWK is written to `dir/<name>.jwk` for a `key_file`.
pub(crate) fn service_key(dir: &Path, name: &str) -> (SigningKey, Value) {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut public = key.public_jwk();
    let kid = public.thumbprint();
    public.kid = Some(kid.clone());
    let mut private = key.to_jwk().unwrap();
    private.kid = Some(kid.clone());
    std::fs::write(
        dir.join(format!("{name}.jwk")),
        serde_json::to_vec(&private).unwrap(),
    )
    .unwrap();
    let key = key.with_kid(edk_core::Kid::new(kid).unwrap());
    (key, serde_json::to_value(public).unwrap())
}

/// A platform server without HTTP, serving its tenant directory on a listener.
pub(crate) struct DirectoryPlatform {
    started: Started<PlatformServer>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

impl DirectoryPlatform {
    /// Starts the server from `config` and serves its directory on `listener`.
    pub(crate) async fn start(config: &PlatformServerConfig, listener: TcpListener) -> Self {
        let started =
            start::<PlatformServer>(config, Arc::new(SystemClock), reqwest::Client::new())
                .await
                .unwrap();
        let stop = CancellationToken::new();
        let serve = started
            .directory_listener()
            .unwrap()
            .serve(listener, stop.clone());
        let serving = tokio::spawn(async move { serve.await.unwrap() });
        Self {
            started,
            stop,
            serving,
        }
    }

    /// The platform's tenancy.
    pub(crate) fn tenancy(&self) -> &edk_tenancy::Tenancy {
        self.started.deps().tenancy()
    }

    /// Stops serving the directory, then the server.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.serving.await.unwrap();
        self.started.shutdown().await;
    }
}

/// A gRPC request for `message` with `token` as its bearer token.
pub(crate) fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

/// Polls `check` until it holds, for at most twenty seconds; the bound only keeps a failing
/// test from hanging.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened within twenty seconds: {what}");
}

/// A wallet provider's attestation trust setting: a JWKS of one key and a maximum age.
pub(crate) fn wallet_attestation() -> Value {
    json!({"value": {
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "wallet-provider-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]},
        "max_age_seconds": 86400,
    }})
}
