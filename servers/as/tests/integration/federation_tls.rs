//! The production login path over TLS: `edk-as` started as its binary starts it (the
//! federation authenticator, the outbound HTTP client built from `http.outbound_ca_files`),
//! a tenant whose upstream OpenID Provider (npm `oidc-provider`) serves HTTPS with a
//! certificate from a CA made here, without `dangerous_allow_http`. `/authorize` sends the
//! browser to the provider, its login comes back to `/callback`, and `/token` issues an
//! access token carrying the provider's claims; a server that does not trust the CA refuses
//! the same provider.

use std::sync::Arc;

use base64::Engine as _;
use edk_as_server::{AsServer, AsServerConfig};
use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{Clock as _, SystemClock};
use edk_oauth::NewClient;
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::federation::{FederationError, OidcFederation};
use edk_server::service::Started;
use edk_server::{HttpConfig, TestServer, spawn_server};
use edk_tenancy::{EndpointBinding, ServiceType, TenantDirectory as _, WellKnownLayout};
use edk_testkit::TestDb;
use edk_testkit::oidc_provider::{OidcProvider, OidcProviderMode, OidcTestClient, OidcTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{ADMIN_ISSUER, http};

const UPSTREAM_CLIENT: &str = "edk-acme";
const UPSTREAM_SECRET: &str = "upstream-secret-of-acme";
const WALLET_REDIRECT: &str = "https://wallet.example/cb";

/// A CA made for one test, and the provider certificate it issues.
struct TestCa {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "EDK test private CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `127.0.0.1`, where the provider listens.
    fn provider_tls(&self) -> OidcTls {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        OidcTls {
            cert_chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.ca_pem.clone(),
        }
    }
}

/// `edk-as` on its own database, serving on loopback, with the tenant `acme` bound at
/// `https://localhost:<port>/acme`.
struct Edk {
    started: Started<AsServer>,
    server: TestServer,
    admin_key: SigningKey,
    tenant: edk_core::TenantId,
    base: String,
    issuer: String,
    _dir: tempfile::TempDir,
    db: Option<TestDb>,
}

impl Edk {
    /// Starts the server on PostgreSQL or SQLite, trusting `ca_pem` for its outbound
    /// requests when given.
    async fn start(postgres: bool, ca_pem: Option<&str>) -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (database, db) = if postgres {
            let db = TestDb::new().await;
            let database = json!({ "backend": "postgres", "platform_url": db.url() });
            (database, Some(db))
        } else {
            let database = json!({ "backend": "sqlite", "directory": dir.path().join("db") });
            (database, None)
        };
        let mut outbound_ca_files = Vec::new();
        if let Some(ca_pem) = ca_pem {
            let file = dir.path().join("private-ca.pem");
            std::fs::write(&file, ca_pem).unwrap();
            outbound_ca_files.push(file);
        }
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let kek = edk_kms::provider::software::generate_kek().unwrap();
        let config: AsServerConfig = serde_json::from_value(json!({
            "http": { "outbound_ca_files": outbound_ca_files },
            "auth": { "issuers": [{ "issuer": ADMIN_ISSUER,
                "jwks": { "keys": [admin_key.public_jwk()] } }] },
            "database": database,
            "kms": { "mode": "local", "providers": [{
                "kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{ "id": "k1", "key": kek.expose_secret() }],
            }] },
            "oauth": { "access_token_claims": ["email", "email_verified", "name"] },
        }))
        .unwrap();
        // The client the binary builds from this configuration.
        let outbound = edk_server::deps::outbound_http_client(&config.http).unwrap();
        let started =
            edk_server::service::start::<AsServer>(&config, Arc::new(SystemClock), outbound)
                .await
                .unwrap();
        let server = spawn_server(edk_server::Service::app(&*started))
            .await
            .unwrap();
        let port = server.addr().port();
        let tenancy = started.deps().tenancy();
        let tenant = tenancy
            .provision(edk_core::TenantSlug::new("acme").unwrap(), "Acme")
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::As,
            "localhost",
            Some(port),
            "/acme",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
        Self {
            started,
            server,
            admin_key,
            tenant: tenant.id,
            base: format!("http://localhost:{port}/acme"),
            issuer: format!("https://localhost:{port}/acme"),
            _dir: dir,
            db,
        }
    }

    /// The callback URL the tenant's authorization server advertises to the provider.
    fn callback_url(&self) -> String {
        format!("{}/callback", self.issuer)
    }

    /// Sets the provider at `issuer` as the tenant's upstream through the admin API.
    async fn set_upstream(&self, issuer: &str) {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "ops",
            "tenant": self.tenant.to_string(), "scope": "oauth2:read oauth2:write",
            "iat": now, "exp": now + 600,
        });
        let token = jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap();
        let response = http()
            .put(self.server.url("/api/oauth2/v1/upstream-oidc"))
            .bearer_auth(token)
            .json(&json!({
                "issuer": issuer, "client_id": UPSTREAM_CLIENT, "client_secret": UPSTREAM_SECRET,
                "scopes": ["openid", "email", "profile"],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["client_secret_sealed"], true, "{view}");
        assert_eq!(view["dangerous_allow_http"], false, "{view}");
    }

    /// Registers the wallet, a public client using the authorization code grant.
    async fn wallet(&self) -> String {
        let context = self
            .started
            .deps()
            .tenancy()
            .context_for_service(self.tenant, ServiceType::As)
            .await
            .unwrap();
        let mut metadata =
            ClientMetadata::new(ClientAuthMethod::None, vec![GrantType::AuthorizationCode]);
        metadata.redirect_uris = vec![WALLET_REDIRECT.to_owned()];
        metadata.scopes = vec!["credential".to_owned()];
        let (client, _) = self
            .started
            .authorization_server()
            .create_client(&context, NewClient::new(metadata))
            .await
            .unwrap();
        client.client_id.as_str().to_owned()
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.started.shutdown().await;
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// The provider on HTTPS with a certificate from `ca`, our client registered with
/// `callback`.
async fn provider(ca: &TestCa, callback: &str) -> OidcProvider {
    let op = OidcProvider::start_with_tls(
        OidcProviderMode::Login,
        &[OidcTestClient::new(
            UPSTREAM_CLIENT,
            UPSTREAM_SECRET,
            &[callback],
        )],
        ca.provider_tls(),
    )
    .await;
    assert!(
        op.issuer().starts_with("https://127.0.0.1:"),
        "{}",
        op.issuer()
    );
    op
}

fn pkce() -> (String, String) {
    use sha2::Digest as _;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn location(response: &reqwest::Response) -> url::Url {
    let location = response.headers()["location"].to_str().unwrap();
    url::Url::parse(location).unwrap()
}

fn query(url: &url::Url) -> std::collections::BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The wallet's authorization request to the tenant's `/authorize`.
async fn authorize(edk: &Edk, client_id: &str, challenge: &str) -> reqwest::Response {
    http()
        .get(format!("{}/authorize", edk.base))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", WALLET_REDIRECT),
            ("scope", "credential"),
            ("state", "wallet-state"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn federated_login_through_a_provider_behind_a_private_ca(postgres: bool) {
    let ca = TestCa::new();
    let edk = Edk::start(postgres, Some(&ca.ca_pem)).await;
    let op = provider(&ca, &edk.callback_url()).await;
    edk.set_upstream(op.issuer()).await;
    let client_id = edk.wallet().await;
    let (verifier, challenge) = pkce();

    // /authorize: discovery over TLS, then the browser goes to the provider.
    let response = authorize(&edk, &client_id, &challenge).await;
    assert_eq!(response.status().as_u16(), 303);
    let to_provider = location(&response);
    assert_eq!(
        to_provider.as_str().split('?').next(),
        Some(format!("{}/auth", op.issuer()).as_str())
    );
    assert_eq!(query(&to_provider)["redirect_uri"], edk.callback_url());

    // The provider's login pages, then back to /callback (served here over plain HTTP).
    let back = op
        .login(to_provider.as_str(), "alice", &edk.callback_url())
        .await;
    let back_query = query(&back);
    assert_eq!(back_query["iss"], op.issuer());
    let response = http()
        .get(format!("{}/callback?{}", edk.base, back.query().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let to_wallet = location(&response);
    assert!(
        to_wallet.as_str().starts_with(WALLET_REDIRECT),
        "{to_wallet}"
    );
    let to_wallet = query(&to_wallet);
    assert_eq!(to_wallet["state"], "wallet-state");
    assert_eq!(to_wallet["iss"], edk.issuer);

    // /token: the code exchange over TLS happened at the callback; the access token
    // carries the provider's subject and claims.
    let response = http()
        .post(format!("{}/token", edk.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", to_wallet["code"].as_str()),
            ("redirect_uri", WALLET_REDIRECT),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let at = payload(token["access_token"].as_str().unwrap());
    assert_eq!(at["iss"], edk.issuer.as_str());
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["client_id"], client_id.as_str());
    assert_eq!(at["email"], "alice@example.test");
    assert_eq!(at["email_verified"], true);
    assert_eq!(at["name"], "Test User alice");
    drop(op);
    edk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_login_through_a_provider_behind_a_private_ca_on_sqlite() {
    federated_login_through_a_provider_behind_a_private_ca(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_login_through_a_provider_behind_a_private_ca_on_postgres() {
    federated_login_through_a_provider_behind_a_private_ca(true).await;
}

/// The TLS error at the bottom of `err`'s chain (through the I/O errors that wrap it).
fn rustls_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

async fn a_provider_whose_ca_is_not_trusted_is_refused(postgres: bool) {
    let ca = TestCa::new();
    let edk = Edk::start(postgres, None).await;
    let op = provider(&ca, &edk.callback_url()).await;
    edk.set_upstream(op.issuer()).await;
    let client_id = edk.wallet().await;
    let (_, challenge) = pkce();

    // The wallet is sent back with `temporarily_unavailable`: discovery failed.
    let response = authorize(&edk, &client_id, &challenge).await;
    assert_eq!(response.status().as_u16(), 303);
    let to_wallet = location(&response);
    assert!(
        to_wallet.as_str().starts_with(WALLET_REDIRECT),
        "{to_wallet}"
    );
    let to_wallet = query(&to_wallet);
    assert_eq!(to_wallet["error"], "temporarily_unavailable");
    assert_eq!(
        to_wallet["error_description"],
        "the identity provider is unavailable"
    );
    assert_eq!(to_wallet["state"], "wallet-state");

    // Why: the provider's certificate chains to no trusted root.
    let tenancy = edk.started.deps().tenancy();
    let context = tenancy
        .context_for_service(edk.tenant, ServiceType::As)
        .await
        .unwrap();
    let federation = OidcFederation::new(
        tenancy.clone(),
        edk_server::deps::outbound_http_client(&HttpConfig::default()).unwrap(),
        Arc::new(SystemClock),
    );
    let config = OidcFederation::config(&context).unwrap();
    let err = federation.metadata(&context, &config).await.unwrap_err();
    let FederationError::Unreachable { what, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*what, "discovery");
    assert!(source.is_connect(), "{source:?}");
    assert_eq!(
        rustls_cause(source),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{source:?}"
    );
    drop(op);
    edk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_whose_ca_is_not_trusted_is_refused_on_sqlite() {
    a_provider_whose_ca_is_not_trusted_is_refused(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_whose_ca_is_not_trusted_is_refused_on_postgres() {
    a_provider_whose_ca_is_not_trusted_is_refused(true).await;
}
