//! Attestation-based client authentication over real HTTP: a test wallet (its own
//! wallet-provider key and instance key) fetches a challenge, pushes its authorization
//! request and redeems the code with `OAuth-Client-Attestation`, `-PoP` and `DPoP` headers
//! on one request; refusals carry their status, error code and challenge header.

use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{ClientId, FixedClock, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::client_attestation::{ATTESTATION_POP_TYP, ATTESTATION_TYP, CLIENT_ATTESTATION};
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{AsConfig, AuthorizationServer, NewClient, SqlStore};
use edk_server::{TestServer, spawn_server};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    ConfigSchema, DatabaseConfig, EndpointBinding, ServiceType, Tenancy, TenantDirectory as _,
    WellKnownLayout,
};
use edk_testkit::TestDb;
use serde_json::{Value, json};

use crate::support::http;

const NOW: i64 = 1_800_000_000;
const WALLET: &str = "wallet";
const REDIRECT: &str = "https://wallet.example/cb";

/// The protocol surface of one tenant, `acme`, on loopback, with a fixed clock; the tenant
/// trusts `provider` and requires a challenge in every PoP.
struct Stack {
    http: TestServer,
    issuer: String,
    base: String,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Stack {
    async fn start(database: DatabaseConfig, provider: &SigningKey) -> (Tenancy, Self) {
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let tenancy = Tenancy::builder(database)
            .clock(clock.clone())
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .config_schema(
                ConfigSchema::builder()
                    .key(&CLIENT_ATTESTATION)
                    .build()
                    .unwrap(),
            )
            .build()
            .await
            .unwrap();
        let kek = KekConfig::key(KekId::new("test").unwrap(), generate_kek().unwrap()).unwrap();
        let software = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(software)])
            .clock(clock.clone())
            .build()
            .unwrap();
        let server = Arc::new(AuthorizationServer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            Arc::new(kms),
            Arc::new(PreApprovedAuthenticator::new("alice", clock.clone())),
            clock,
            AsConfig::default(),
        ));
        let http = spawn_server(edk_as_server::ProtocolEndpoint::new(
            tenancy.clone(),
            Arc::clone(&server),
        ))
        .await
        .unwrap();
        let port = http.addr().port();
        let tenant = tenancy
            .provision(TenantSlug::new("acme").unwrap(), "Acme")
            .await
            .unwrap();
        tenancy
            .bind(
                &EndpointBinding::new(
                    tenant.id,
                    ServiceType::As,
                    "localhost",
                    Some(port),
                    "/acme",
                    WellKnownLayout::Inserted,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        let policy = json!({
            "jwks": JwkSet { keys: vec![provider.public_jwk()] },
            "challenge_required": true,
        });
        tenancy
            .set_config(Some(tenant.id), CLIENT_ATTESTATION.name(), policy, None)
            .await
            .unwrap();
        let context = tenancy
            .context_for_service(tenant.id, ServiceType::As)
            .await
            .unwrap();
        let mut metadata = ClientMetadata::new(
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        );
        metadata.redirect_uris = vec![REDIRECT.to_owned()];
        metadata.scopes = vec!["read".to_owned()];
        server
            .create_client(
                &context,
                NewClient::new(metadata).with_id(ClientId::new(WALLET).unwrap()),
            )
            .await
            .unwrap();
        let stack = Self {
            issuer: format!("https://localhost:{port}/acme"),
            base: format!("http://localhost:{port}/acme"),
            http,
            _dir: None,
            db: None,
        };
        (tenancy, stack)
    }

    async fn close(self) {
        self.http.shutdown().await.unwrap();
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

async fn sign(typ: &str, claims: &Value, key: &SigningKey, jwk: bool) -> String {
    let mut header = Header::new(Algorithm::Es256).with_typ(typ);
    if jwk {
        header = header.with_jwk(&key.public_jwk());
    }
    jws::sign(header, claims.to_string().as_bytes(), key)
        .await
        .unwrap()
}

/// A wallet instance and what it sends.
struct Wallet {
    instance: SigningKey,
    attestation: String,
}

impl Wallet {
    async fn new(provider: &SigningKey) -> Self {
        let instance = SigningKey::generate(Algorithm::Es256).unwrap();
        let claims = json!({
            "iss": "https://wallet-provider.example", "sub": WALLET,
            "iat": NOW, "exp": NOW + 3600, "cnf": { "jwk": instance.public_jwk() },
        });
        let attestation = sign(ATTESTATION_TYP, &claims, provider, false).await;
        Self {
            instance,
            attestation,
        }
    }

    async fn pop(&self, aud: &str, challenge: Option<&str>) -> String {
        let mut claims = json!({ "aud": aud, "jti": uuid::Uuid::new_v4().to_string(), "iat": NOW });
        if let Some(challenge) = challenge {
            claims["challenge"] = json!(challenge);
        }
        sign(ATTESTATION_POP_TYP, &claims, &self.instance, false).await
    }

    async fn dpop(&self, htu: &str, nonce: &str) -> String {
        let claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": htu,
            "iat": NOW, "nonce": nonce,
        });
        sign("dpop+jwt", &claims, &self.instance, true).await
    }
}

fn pkce() -> (String, String) {
    use base64::Engine as _;
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

async fn error_of(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("oauth-client-attestation-challenge")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        challenge,
    )
}

async fn a_wallet_authenticates_at_par_and_token_over_http(
    database: DatabaseConfig,
    dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
) {
    let provider = SigningKey::generate(Algorithm::Es256).unwrap();
    let (_tenancy, mut stack) = Stack::start(database, &provider).await;
    stack._dir = dir;
    stack.db = db;
    let client = http();
    let issuer = stack.issuer.clone();
    let base = stack.base.clone();
    let wallet = Wallet::new(&provider).await;

    // The metadata names the challenge endpoint and the method.
    let port = stack.http.addr().port();
    let metadata: Value = client
        .get(format!(
            "http://localhost:{port}/.well-known/oauth-authorization-server/acme"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["challenge_endpoint"],
        format!("{issuer}/challenge")
    );
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("attest_jwt_client_auth"))
    );

    // PAR without a challenge: 400 use_attestation_challenge with a fresh one in the header.
    let (verifier, code_challenge) = pkce();
    let par_form = [
        ("response_type", "code"),
        ("client_id", WALLET),
        ("redirect_uri", REDIRECT),
        ("code_challenge", code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", "read"),
        ("state", "s1"),
    ];
    let par = |pop: String| {
        client
            .post(format!("{base}/par"))
            .header("OAuth-Client-Attestation", &wallet.attestation)
            .header("OAuth-Client-Attestation-PoP", pop)
            .form(&par_form)
            .send()
    };
    let (status, error, challenge) =
        error_of(par(wallet.pop(&issuer, None).await).await.unwrap()).await;
    assert_eq!((status, error.as_str()), (400, "use_attestation_challenge"));
    let challenge = challenge.expect("a fresh challenge in OAuth-Client-Attestation-Challenge");
    let pushed = par(wallet.pop(&issuer, Some(&challenge)).await)
        .await
        .unwrap();
    assert_eq!(pushed.status().as_u16(), 201);
    let pushed: Value = pushed.json().await.unwrap();

    // The same challenge twice: refused again, with another fresh challenge.
    let (status, error, again) = error_of(
        par(wallet.pop(&issuer, Some(&challenge)).await)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "use_attestation_challenge"));
    assert_ne!(again.unwrap(), challenge);

    let authorize = client
        .get(format!("{base}/authorize"))
        .query(&[
            ("client_id", WALLET),
            ("request_uri", pushed["request_uri"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status().as_u16(), 303);
    let location = url::Url::parse(authorize.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();

    // The challenge endpoint: a challenge and a DPoP nonce, not cached.
    let answer = client
        .post(format!("{base}/challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let nonce = answer.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = answer.json().await.unwrap();
    let challenge = body["attestation_challenge"].as_str().unwrap().to_owned();
    assert_eq!(
        client
            .get(format!("{base}/challenge"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        405
    );

    // Token: attestation, PoP and DPoP on one request.
    let token_url = format!("{issuer}/token");
    let pop = wallet.pop(&issuer, Some(&challenge)).await;
    let response = client
        .post(format!("{base}/token"))
        .header("OAuth-Client-Attestation", &wallet.attestation)
        .header("OAuth-Client-Attestation-PoP", &pop)
        .header("DPoP", wallet.dpop(&token_url, &nonce).await)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "DPoP");
    assert!(token["refresh_token"].is_string());

    // The same PoP again (its challenge spent, its jti seen), and an untrusted attester.
    let replay = client
        .post(format!("{base}/token"))
        .header("OAuth-Client-Attestation", &wallet.attestation)
        .header("OAuth-Client-Attestation-PoP", &pop)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(replay).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client_attestation")
    );
    let stranger = Wallet::new(&SigningKey::generate(Algorithm::Es256).unwrap()).await;
    let fresh = client
        .post(format!("{base}/challenge"))
        .send()
        .await
        .unwrap();
    let fresh: Value = fresh.json().await.unwrap();
    let untrusted = client
        .post(format!("{base}/par"))
        .header("OAuth-Client-Attestation", &stranger.attestation)
        .header(
            "OAuth-Client-Attestation-PoP",
            stranger
                .pop(&issuer, fresh["attestation_challenge"].as_str())
                .await,
        )
        .form(&par_form)
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(untrusted).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client_attestation")
    );
    stack.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_authenticates_at_par_and_token_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
    a_wallet_authenticates_at_par_and_token_over_http(database, Some(dir), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_authenticates_at_par_and_token_over_http_on_postgres() {
    let db = TestDb::new().await;
    let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
        db.url().into(),
    ));
    a_wallet_authenticates_at_par_and_token_over_http(database, None, Some(db)).await;
}
