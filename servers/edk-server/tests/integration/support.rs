use std::sync::Arc;

use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi, OpenApiService};
use serde_json::{Value, json};
use tokio::sync::Notify;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{FixedClock, TenantId};
use edk_server::{
    ANONYMOUS_PATHS, AdminAuth, AdminBearer, ApiError, AuthConfig, HealthApi, HttpConfig, Metrics,
    TestServer, TrustedIssuer, app, openapi_routes, spawn_server,
};

pub(crate) const NOW: i64 = 1_700_000_000;
pub(crate) const ISSUER: &str = "https://issuer.test";
/// An issuer trusted only for [`tenant()`].
pub(crate) const LIMITED_ISSUER: &str = "https://limited.test";
pub(crate) const AUDIENCE: &str = "edk-admin";
pub(crate) const TENANT: &str = "0190c7a4-8e2b-7cde-9f00-0123456789ab";

#[derive(Debug, Object, serde::Serialize, serde::Deserialize)]
pub(crate) struct Greeting {
    pub(crate) name: String,
    /// Optional, and not nullable in the document.
    pub(crate) nickname: Option<String>,
    /// Free-form: any JSON, `null` included.
    pub(crate) extra: Option<Value>,
}

#[derive(Debug, Object)]
struct Whoami {
    tenant: String,
    subject: Option<String>,
}

/// Lets a test hold a request inside its handler.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) entered: Notify,
    pub(crate) release: Notify,
}

struct TestApi {
    gate: Arc<Gate>,
}

#[OpenApi]
impl TestApi {
    #[oai(path = "/api/echo", method = "post")]
    async fn echo(&self, body: Json<Greeting>) -> Result<Json<Greeting>, ApiError> {
        Ok(body)
    }

    #[oai(path = "/api/whoami", method = "get")]
    async fn whoami(&self, auth: AdminBearer) -> Result<Json<Whoami>, ApiError> {
        auth.0.require_scope("test:read")?;
        Ok(Json(Whoami {
            tenant: auth.0.tenant.to_string(),
            subject: auth.0.subject,
        }))
    }

    #[oai(path = "/api/slow", method = "get")]
    async fn slow(&self) -> PlainText<&'static str> {
        self.gate.entered.notify_one();
        self.gate.release.notified().await;
        PlainText("done")
    }
}

pub(crate) struct Harness {
    pub(crate) server: TestServer,
    pub(crate) client: reqwest::Client,
    pub(crate) key: SigningKey,
    pub(crate) gate: Arc<Gate>,
    /// The key of [`LIMITED_ISSUER`].
    pub(crate) limited_key: SigningKey,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::start_with(HealthApi::new(), HttpConfig::default()).await
    }

    pub(crate) async fn start_with(health: HealthApi, http: HttpConfig) -> Self {
        edk_server::install_crypto_provider();
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let limited_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let auth_config = AuthConfig {
            issuers: vec![
                TrustedIssuer::with_jwks(
                    ISSUER,
                    JwkSet {
                        keys: vec![key.public_jwk()],
                    },
                ),
                TrustedIssuer::with_jwks(
                    LIMITED_ISSUER,
                    JwkSet {
                        keys: vec![limited_key.public_jwk()],
                    },
                )
                .for_tenants([tenant()]),
            ],
            ..AuthConfig::default()
        };
        let mut anonymous = ANONYMOUS_PATHS.to_vec();
        anonymous.extend(["/api/echo", "/api/slow"]);
        let auth = AdminAuth::new(
            &auth_config,
            Arc::new(FixedClock::at_unix(NOW)),
            &anonymous,
            None,
        )
        .unwrap();
        let gate = Arc::new(Gate::default());
        let service = OpenApiService::new(
            (
                health,
                TestApi {
                    gate: Arc::clone(&gate),
                },
            ),
            "test",
            "1",
        );
        let metrics = Metrics::new().unwrap();
        let endpoint = app(&http, &metrics, Some(auth), openapi_routes(service));
        let server = spawn_server(endpoint).await.unwrap();
        let client = reqwest::Client::builder().build().unwrap();
        Self {
            server,
            client,
            key,
            limited_key,
            gate,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub(crate) async fn token(&self, claims: Value) -> String {
        sign(&self.key, &claims).await
    }
}

pub(crate) async fn sign(key: &SigningKey, claims: &Value) -> String {
    let payload = serde_json::to_vec(claims).unwrap();
    jws::sign(Header::new(Algorithm::Es256).with_typ("JWT"), &payload, key)
        .await
        .unwrap()
}

/// Claims of a valid admin token, for tests to alter.
pub(crate) fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": TENANT,
        "scope": "test:read other",
        "iat": NOW - 10,
        "exp": NOW + 300,
    })
}

pub(crate) fn tenant() -> TenantId {
    TENANT.parse().unwrap()
}

/// Asserts a problem+json response with `status` and `type` ending in `slug`.
pub(crate) async fn assert_problem(response: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], format!("https://edk.dev/problems/{slug}"));
    assert!(body["title"].is_string());
    body
}
