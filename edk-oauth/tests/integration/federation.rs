//! Federation to an upstream OpenID Provider: npm `oidc-provider` (pinned in interop/node)
//! runs as a child process on loopback; the login pages are driven over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{JwkSet, JwksResolver};
use edk_core::{ClientId, Clock as _, FixedClock, SystemClock, TenantSlug};
use edk_oauth::authn::{AuthnStart, AuthnTransaction};
use edk_oauth::federation::{
    ClientAuthMethod, FederationError, IdTokenValidator, OidcFederation, UPSTREAM_OIDC,
    UpstreamOidcConfig,
};
use edk_oauth::{Authenticator as _, AuthnCallback, AuthnError, AuthnRequest};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    ConfigSchema, DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy,
    TenantContext, TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use edk_testkit::oidc_provider::{OidcProvider, OidcProviderMode, OidcTestClient};
use secrecy::SecretString;
use serde_json::json;

const CLIENT_ID: &str = "edk-rp";
const POST_CLIENT_ID: &str = "edk-rp-post";
const SECRET: &str = "upstream-secret";

fn callback_url(slug: &str) -> String {
    format!("https://as.example/{slug}/callback")
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The upstream provider with our two clients, registered for tenants `acme` and `globex`.
async fn start_provider() -> OidcProvider {
    let redirects = [callback_url("acme"), callback_url("globex")];
    let redirects: Vec<&str> = redirects.iter().map(String::as_str).collect();
    OidcProvider::start(
        OidcProviderMode::Login,
        &[
            OidcTestClient::new(CLIENT_ID, SECRET, &redirects),
            OidcTestClient::new(POST_CLIENT_ID, SECRET, &redirects).with_secret_post(),
        ],
    )
    .await
}

fn upstream_config(issuer: &str, client_id: &str, auth: ClientAuthMethod) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": SECRET,
        "client_auth": auth,
        "scopes": ["openid", "email", "profile"],
        "claims": { "subject_claim": "sub", "copy_claims": ["email", "email_verified", "name"] },
        "dangerous_allow_http": true
    })
}

/// A tenancy (SQLite or PostgreSQL) with edk-oauth's and federation's tables, a clock set to
/// the real time (the provider signs with it) and the federation authenticator.
struct Fixture {
    tenancy: Tenancy,
    clock: Arc<FixedClock>,
    federation: OidcFederation,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        Self::build(database, Some(dir), None).await
    }

    async fn postgres() -> Self {
        let db = TestDb::new().await;
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        Self::build(database, None, Some(db)).await
    }

    async fn build(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
    ) -> Self {
        let clock = Arc::new(FixedClock::at_unix(SystemClock.unix_seconds()));
        let tenancy = Tenancy::builder(database)
            .clock(clock.clone())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oauth::federation::migrations().unwrap())
            .config_schema(ConfigSchema::builder().key(&UPSTREAM_OIDC).build().unwrap())
            .build()
            .await
            .unwrap();
        let federation = OidcFederation::new(tenancy.clone(), http(), clock.clone());
        Self {
            tenancy,
            clock,
            federation,
            _dir: dir,
            db,
        }
    }

    /// Provisions `slug` bound at `https://as.example/<slug>` with `upstream` (if any) as its
    /// upstream provider, and returns its context.
    async fn tenant(&self, slug: &str, upstream: Option<serde_json::Value>) -> TenantContext {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::As,
            "as.example",
            None,
            &format!("/{slug}"),
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.tenancy.bind(&binding).await.unwrap();
        if let Some(upstream) = upstream {
            self.tenancy
                .set_config(Some(tenant.id), UPSTREAM_OIDC.name(), upstream, None)
                .await
                .unwrap();
        }
        let request = EndpointRequest::new("https", "as.example", None, &format!("/{slug}/token"));
        self.tenancy
            .resolve(ServiceType::As, &request)
            .await
            .unwrap()
            .context
    }

    async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

fn authn_request(slug: &str) -> AuthnRequest {
    AuthnRequest::new(
        AuthnTransaction::generate(),
        ClientId::new("wallet").unwrap(),
        url::Url::parse(&callback_url(slug)).unwrap(),
    )
}

fn callback(url: &url::Url) -> AuthnCallback {
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    AuthnCallback::new(params)
}

fn with_param(callback: &AuthnCallback, name: &str, value: &str) -> AuthnCallback {
    let mut params = callback.params().clone();
    params.insert(name.to_owned(), value.to_owned());
    AuthnCallback::new(params)
}

/// Starts a login through the authenticator and drives the provider's pages as `login`;
/// returns the callback the browser brings back.
async fn login_at_provider(
    fixture: &Fixture,
    op: &OidcProvider,
    tenant: &TenantContext,
    request: &AuthnRequest,
    login: &str,
) -> AuthnCallback {
    let AuthnStart::Redirect { location } =
        fixture.federation.start(tenant, request).await.unwrap()
    else {
        panic!("federation must redirect to the provider");
    };
    assert!(
        location
            .as_str()
            .starts_with(&format!("{}/auth?", op.issuer())),
        "{location}"
    );
    let params: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["response_type"], "code");
    let redirect = request.callback_url.as_str().to_owned();
    callback(&op.login(location.as_str(), login, &redirect).await)
}

async fn full_login_maps_the_upstream_subject_and_claims(fixture: Fixture) {
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let request = authn_request("acme");
    let callback = login_at_provider(&fixture, &op, &acme, &request, "alice").await;
    assert_eq!(callback.get("iss"), Some(op.issuer()));

    let outcome = fixture.federation.finish(&acme, &callback).await.unwrap();
    assert_eq!(outcome.transaction, request.transaction);
    assert_eq!(outcome.subject.subject, "alice");
    assert_eq!(outcome.subject.claims["email"], "alice@example.test");
    assert_eq!(outcome.subject.claims["email_verified"], true);
    assert_eq!(outcome.subject.claims["name"], "Test User alice");
    assert!(!outcome.subject.claims.contains_key("family_name"));
    fixture.close().await;
}

#[tokio::test]
async fn full_login_maps_the_upstream_subject_and_claims_on_sqlite() {
    full_login_maps_the_upstream_subject_and_claims(Fixture::sqlite().await).await;
}

#[tokio::test]
async fn full_login_maps_the_upstream_subject_and_claims_on_postgres() {
    full_login_maps_the_upstream_subject_and_claims(Fixture::postgres().await).await;
}

#[tokio::test]
async fn client_secret_post_login_works_and_subject_can_come_from_email() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let mut config = upstream_config(
        op.issuer(),
        POST_CLIENT_ID,
        ClientAuthMethod::ClientSecretPost,
    );
    config["claims"] = json!({ "subject_claim": "email", "copy_claims": ["name"] });
    let acme = fixture.tenant("acme", Some(config)).await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "bob").await;
    let outcome = fixture.federation.finish(&acme, &callback).await.unwrap();
    assert_eq!(outcome.subject.subject, "bob@example.test");
    assert_eq!(outcome.subject.claims.len(), 1);
    fixture.close().await;
}

#[tokio::test]
async fn a_callback_works_once() {
    let fixture = Fixture::postgres().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    fixture.federation.finish(&acme, &callback).await.unwrap();
    let replay = fixture
        .federation
        .finish(&acme, &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(replay, AuthnError::InvalidCallback { .. }),
        "{replay:?}"
    );
    fixture.close().await;
}

#[tokio::test]
async fn wrong_or_missing_state_is_refused_and_burns_nothing() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    let config = OidcFederation::config(&acme).unwrap();

    let wrong = with_param(&callback, "state", "not-the-state");
    let err = fixture
        .federation
        .complete(&acme, &config, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::UnknownState), "{err:?}");

    let mut params = callback.params().clone();
    params.remove("state");
    let err = fixture
        .federation
        .complete(&acme, &config, &AuthnCallback::new(params))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::MissingParameter("state")),
        "{err:?}"
    );

    // The genuine callback still works afterwards.
    let outcome = fixture.federation.finish(&acme, &callback).await.unwrap();
    assert_eq!(outcome.subject.subject, "alice");
    fixture.close().await;
}

#[tokio::test]
async fn another_tenants_callback_is_unknown() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let upstream = upstream_config(op.issuer(), CLIENT_ID, ClientAuthMethod::ClientSecretBasic);
    let acme = fixture.tenant("acme", Some(upstream.clone())).await;
    let globex = fixture.tenant("globex", Some(upstream)).await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    let config = OidcFederation::config(&globex).unwrap();
    let err = fixture
        .federation
        .complete(&globex, &config, &callback)
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::UnknownState), "{err:?}");
    fixture.close().await;
}

#[tokio::test]
async fn a_tampered_code_is_refused_by_the_provider() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    let config = OidcFederation::config(&acme).unwrap();
    let tampered = with_param(&callback, "code", "forged-code");
    let err = fixture
        .federation
        .complete(&acme, &config, &tampered)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FederationError::TokenRefused { status: 400, error } if error == "invalid_grant"),
        "{err:?}"
    );
    fixture.close().await;
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    let config = OidcFederation::config(&acme).unwrap();
    let mixed_up = with_param(&callback, "iss", "https://evil.example");
    let err = fixture
        .federation
        .complete(&acme, &config, &mixed_up)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::CallbackIssuerMismatch),
        "{err:?}"
    );
    fixture.close().await;
}

#[tokio::test]
async fn the_providers_refusal_becomes_access_denied() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    // prompt=none without a session: the provider answers at once with login_required.
    let mut request = authn_request("acme");
    request.prompt = Some("none".to_owned());
    let callback = login_at_provider(&fixture, &op, &acme, &request, "alice").await;
    assert_eq!(callback.get("error"), Some("login_required"));
    let err = fixture
        .federation
        .finish(&acme, &callback)
        .await
        .unwrap_err();
    match err {
        AuthnError::AccessDenied { reason } => {
            assert!(reason.contains("login_required"), "{reason}")
        }
        other => panic!("expected access denied, got {other:?}"),
    }
    fixture.close().await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused_by_our_clock() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    // The provider's ID tokens live 300 s; 60 s leeway; the login itself may take 600 s.
    fixture.clock.advance(Duration::from_secs(400));
    let config = OidcFederation::config(&acme).unwrap();
    let err = fixture
        .federation
        .complete(&acme, &config, &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::Expired)
        ),
        "{err:?}"
    );
    fixture.close().await;
}

#[tokio::test]
async fn a_login_older_than_its_lifetime_is_refused() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    fixture.clock.advance(Duration::from_secs(601));
    let err = fixture
        .federation
        .finish(&acme, &callback)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthnError::InvalidCallback { .. }), "{err:?}");
    fixture.close().await;
}

#[tokio::test]
async fn provider_down_is_a_clear_unavailable_error() {
    let fixture = Fixture::sqlite().await;
    let issuer = {
        let op = start_provider().await;
        op.issuer().to_owned()
    }; // dropped: nothing listens there any more
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                &issuer,
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let err = fixture
        .federation
        .start(&acme, &authn_request("acme"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthnError::Unavailable(_)), "{err:?}");
    let config = OidcFederation::config(&acme).unwrap();
    let err = fixture
        .federation
        .begin(&acme, &config, &authn_request("acme"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::Unreachable {
                what: "discovery",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the upstream OpenID Provider could not be reached (discovery)"
    );
    fixture.close().await;
}

#[tokio::test]
async fn a_tenant_without_upstream_is_not_configured() {
    let fixture = Fixture::sqlite().await;
    let plain = fixture.tenant("plain", None).await;
    let err = fixture
        .federation
        .start(&plain, &authn_request("plain"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthnError::NotConfigured), "{err:?}");
    fixture.close().await;
}

/// Logs in at the provider as a plain client would (own PKCE and nonce) and returns the raw
/// ID token with the provider's keys, for the validator's own checks.
async fn provider_id_token(op: &OidcProvider, nonce: &str) -> (String, Arc<JwksResolver>) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"; // RFC 7636 Appendix B
    let redirect = callback_url("acme");
    let mut auth = url::Url::parse(&format!("{}/auth", op.issuer())).unwrap();
    auth.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid email")
        .append_pair("state", "s")
        .append_pair("nonce", nonce)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let back = op.login(auth.as_str(), "carol", &redirect).await;
    let code = back
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: serde_json::Value = http()
        .post(format!("{}/token", op.issuer()))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: JwkSet = http()
        .get(format!("{}/jwks", op.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        tokens["id_token"].as_str().unwrap().to_owned(),
        Arc::new(JwksResolver::new(&jwks)),
    )
}

#[tokio::test]
async fn id_token_validator_checks_signature_audience_nonce_and_time() {
    let op = start_provider().await;
    let (id_token, keys) = provider_id_token(&op, "nonce-1").await;
    let now = SystemClock.unix_seconds();
    let validator = IdTokenValidator::new(op.issuer(), CLIENT_ID, keys.clone());

    let claims = validator.validate(&id_token, "nonce-1", now).await.unwrap();
    assert_eq!(claims.subject, "carol");

    let err = validator
        .validate(&id_token, "nonce-2", now)
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::NonceMismatch), "{err:?}");

    let other_audience = IdTokenValidator::new(op.issuer(), "someone-else", keys.clone());
    let err = other_audience
        .validate(&id_token, "nonce-1", now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::AudienceMismatch)
        ),
        "{err:?}"
    );

    let other_issuer = IdTokenValidator::new("https://evil.example", CLIENT_ID, keys.clone());
    let err = other_issuer
        .validate(&id_token, "nonce-1", now)
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::IdToken(_)), "{err:?}");

    let err = validator
        .validate(&id_token, "nonce-1", now + 3600)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::Expired)
        ),
        "{err:?}"
    );
    let err = validator
        .validate(&id_token, "nonce-1", now - 3600)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::IssuedAtOutOfRange)
        ),
        "{err:?}"
    );

    // Tampered payload: `sub` changed, signature kept.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&edk_core::encoding::b64url_decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        edk_core::encoding::b64url_encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let err = validator
        .validate(&forged, "nonce-1", now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::InvalidSignature)
        ),
        "{err:?}"
    );

    // Signed by someone else's key with the provider's kid: no key of the provider verifies it.
    let other = start_provider().await;
    let (foreign, _) = provider_id_token(&other, "nonce-1").await;
    let err = validator
        .validate(&foreign, "nonce-1", now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(edk_core::jose::JoseError::InvalidSignature)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn metadata_is_discovered_and_checked() {
    let fixture = Fixture::sqlite().await;
    let op = start_provider().await;
    let good: UpstreamOidcConfig = serde_json::from_value(upstream_config(
        op.issuer(),
        CLIENT_ID,
        ClientAuthMethod::ClientSecretBasic,
    ))
    .unwrap();
    let tenant = fixture.tenant("acme", None).await;
    let metadata = fixture.federation.metadata(&tenant, &good).await.unwrap();
    assert_eq!(metadata.issuer, op.issuer());
    assert!(metadata.authorization_response_iss_parameter_supported);

    // Without the dangerous switch an http provider is refused outright.
    let err =
        UpstreamOidcConfig::new(op.issuer(), CLIENT_ID, SecretString::from(SECRET)).unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::Config {
                field: "issuer",
                ..
            }
        ),
        "{err:?}"
    );

    // Discovery §4.3: the document's issuer must be the configured one exactly.
    let with_slash: UpstreamOidcConfig = serde_json::from_value(upstream_config(
        &format!("{}/", op.issuer()),
        CLIENT_ID,
        ClientAuthMethod::ClientSecretBasic,
    ))
    .unwrap();
    let err = fixture
        .federation
        .metadata(&tenant, &with_slash)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::InvalidResponse { .. }),
        "{err:?}"
    );
    fixture.close().await;
}

/// A provider's discovery document and JWKS served over loopback by a minimal HTTP/1.1
/// responder that counts the requests for each path.
struct StaticProvider {
    issuer: String,
    hits: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StaticProvider {
    /// A provider whose token endpoint accepts `client_secret_basic` only.
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = edk_core::jose::SigningKey::generate(edk_core::jose::Algorithm::Es256).unwrap();
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
        .to_string();
        let jwks = json!({ "keys": [key.public_jwk().with_kid("k1")] }).to_string();
        let hits = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let counted = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                *counted.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                let body = match path.as_str() {
                    "/.well-known/openid-configuration" => discovery.clone(),
                    "/jwks" => jwks.clone(),
                    _ => "{}".to_owned(),
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        Self { issuer, hits, task }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

#[tokio::test]
async fn discovery_is_cached_per_tenant_and_checked_under_each_tenants_settings() {
    let fixture = Fixture::sqlite().await;
    let op = StaticProvider::start().await;
    let acme = fixture.tenant("acme", None).await;
    let globex = fixture.tenant("globex", None).await;
    let config = |auth| -> UpstreamOidcConfig {
        serde_json::from_value(upstream_config(&op.issuer, CLIENT_ID, auth)).unwrap()
    };
    // The same issuer URL: acme authenticates as the provider allows, globex does not.
    let basic = config(ClientAuthMethod::ClientSecretBasic);
    let post = config(ClientAuthMethod::ClientSecretPost);
    let metadata = fixture.federation.metadata(&acme, &basic).await.unwrap();
    assert_eq!(metadata.issuer, op.issuer);
    fixture.federation.metadata(&acme, &basic).await.unwrap();
    assert_eq!(op.hits("/.well-known/openid-configuration"), 1);
    // acme's entry does not answer for globex: globex fetches and checks for itself.
    let err = fixture
        .federation
        .metadata(&globex, &post)
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::Unsupported(_)), "{err:?}");
    assert_eq!(op.hits("/.well-known/openid-configuration"), 2);
    // A tenant whose settings change is checked again, even from its cached entry.
    let err = fixture.federation.metadata(&acme, &post).await.unwrap_err();
    assert!(matches!(err, FederationError::Unsupported(_)), "{err:?}");
    op.task.abort();
    fixture.close().await;
}

#[tokio::test]
async fn concurrent_callbacks_with_one_state_succeed_once() {
    let fixture = Fixture::postgres().await;
    let op = start_provider().await;
    let acme = fixture
        .tenant(
            "acme",
            Some(upstream_config(
                op.issuer(),
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic,
            )),
        )
        .await;
    let callback = login_at_provider(&fixture, &op, &acme, &authn_request("acme"), "alice").await;
    let attempts = (0..8).map(|_| fixture.federation.finish(&acme, &callback));
    let results = futures::future::join_all(attempts).await;
    let successes = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(successes, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|result| result.as_ref().err())
            .all(|err| matches!(err, AuthnError::InvalidCallback { .. }))
    );
    fixture.close().await;
}
