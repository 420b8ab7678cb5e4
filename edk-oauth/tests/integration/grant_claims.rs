//! End-user claims of a grant: minted with a pre-authorized code or asserted by the upstream
//! OpenID Provider (npm `oidc-provider`, with the client secret sealed by the tenant's KMS),
//! available to the tenant's resource servers by access token, to no other tenant, and not
//! in the token unless configured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use edk_core::{Clock as _, FixedClock, SystemClock, TenantSlug};
use edk_kms::LocalKms;
use edk_oauth::authn::AuthnTransaction;
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::federation::{
    FederationError, OidcFederation, UPSTREAM_OIDC, UpstreamOidcConfig, UpstreamSecret,
};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AsConfig, AuthnCallback, AuthnRequest, AuthorizationServer, AuthorizeOutcome, EndpointCall,
    Error, NewClient, Params, PreAuthorizedCodeRequest, SqlStore,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    ConfigSchema, DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy,
    TenantContext, TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use edk_testkit::oidc_provider::{OidcProvider, OidcProviderMode, OidcTestClient};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};

use crate::attestation::Setup;
use crate::support::{NOW, new_kek, pkce, software_provider};

const RESOURCE: &str = "https://issuer.example/acme";
const PRE_AUTH: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// Runs `$body` (an async fn taking a `Setup`) on SQLite and on PostgreSQL.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name(super::Setup::sqlite().await).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$name(super::Setup::postgres().await).await;
            }
        }
    };
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

fn object(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("an object")
    };
    map
}

async fn mint(
    server: &AuthorizationServer,
    tenant: &TenantContext,
    claims: Map<String, Value>,
) -> String {
    let mut grant = Grant::new("holder");
    grant.claims = claims;
    grant.resource = Some(RESOURCE.to_owned());
    server
        .mint_pre_authorized_code(tenant, PreAuthorizedCodeRequest::new(grant))
        .await
        .unwrap()
        .code
        .expose_secret()
        .to_owned()
}

fn redeem(code: &str, client_id: Option<&str>) -> EndpointCall {
    let mut pairs = vec![("grant_type", PRE_AUTH), ("pre-authorized_code", code)];
    if let Some(id) = client_id {
        pairs.push(("client_id", id));
    }
    EndpointCall::post(Params::from_pairs(pairs))
}

async fn minted_claims_stay_with_the_grant_and_the_tenant(setup: Setup) {
    let acme = setup.tenant("acme", None).await;
    let globex = setup.tenant("globex", None).await;
    let server = &setup.server;
    let claims = object(json!({ "given_name": "Erika", "birthdate": "1964-08-12" }));

    let code = mint(server, &acme, claims.clone()).await;
    let token = server
        .token(&acme, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    let at = payload(&token.access_token);
    assert_eq!(at["aud"], RESOURCE);
    assert!(at.get("given_name").is_none() && at.get("birthdate").is_none());
    assert_eq!(
        server
            .grant_claims(&acme, &token.access_token)
            .await
            .unwrap(),
        Some(claims.clone())
    );
    assert_eq!(
        server
            .grant_claims(&globex, &token.access_token)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        server.grant_claims(&acme, "not-a-token").await.unwrap(),
        None
    );

    // A grant without claims: an active token, no claims.
    let code = mint(server, &acme, Map::new()).await;
    let plain = server
        .token(&acme, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    assert_eq!(
        server
            .grant_claims(&acme, &plain.access_token)
            .await
            .unwrap(),
        Some(Map::new())
    );

    // Refreshed tokens of the grant carry the claims too.
    setup
        .client(
            &acme,
            "wallet",
            ClientAuthMethod::None,
            vec![GrantType::PreAuthorizedCode, GrantType::RefreshToken],
        )
        .await;
    let code = mint(server, &acme, claims.clone()).await;
    let first = server
        .token(&acme, &redeem(&code, Some("wallet")))
        .await
        .unwrap()
        .response;
    let refresh = EndpointCall::post(Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("client_id", "wallet"),
        ("refresh_token", first.refresh_token.as_deref().unwrap()),
    ]));
    let second = server.token(&acme, &refresh).await.unwrap().response;
    assert_eq!(
        server
            .grant_claims(&acme, &second.access_token)
            .await
            .unwrap(),
        Some(claims)
    );

    // Gone with the token.
    setup.clock.set_unix(NOW + 301);
    assert_eq!(
        server
            .grant_claims(&acme, &token.access_token)
            .await
            .unwrap(),
        None
    );
    setup.close().await;
}
both_backends!(minted_claims_stay_with_the_grant_and_the_tenant);

#[tokio::test]
async fn configured_claims_go_into_the_access_token() {
    let mut config = AsConfig::default();
    config.access_token_claims = vec!["given_name".to_owned(), "sub".to_owned()];
    let setup = Setup::sqlite_with(config).await;
    let acme = setup.tenant("acme", None).await;
    let claims = object(json!({ "given_name": "Erika", "sub": "spoofed", "birthdate": "x" }));
    let code = mint(&setup.server, &acme, claims).await;
    let token = setup
        .server
        .token(&acme, &redeem(&code, None))
        .await
        .unwrap()
        .response;
    let at = payload(&token.access_token);
    assert_eq!(at["given_name"], "Erika");
    assert_eq!(
        at["sub"], "holder",
        "a grant claim never replaces a token claim"
    );
    assert!(at.get("birthdate").is_none());
    setup.close().await;
}

#[tokio::test]
async fn malformed_grants_are_refused_before_anything_is_minted() {
    let setup = Setup::sqlite().await;
    let acme = setup.tenant("acme", None).await;
    let mut grant = Grant::new("holder");
    grant.resource = Some("http://issuer.example".to_owned());
    let err = setup
        .server
        .mint_pre_authorized_code(&acme, PreAuthorizedCodeRequest::new(grant))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "resource",
                ..
            }
        ),
        "{err:?}"
    );
    let mut grant = Grant::new("holder");
    grant
        .claims
        .insert("blob".to_owned(), json!("x".repeat(17 * 1024)));
    let err = setup
        .server
        .mint_pre_authorized_code(&acme, PreAuthorizedCodeRequest::new(grant))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "claims",
                ..
            }
        ),
        "{err:?}"
    );
    let mut metadata = ClientMetadata::new(
        ClientAuthMethod::ClientSecretPost,
        vec![GrantType::ClientCredentials],
    );
    metadata.claims_resources = vec!["not a uri".to_owned()];
    let err = setup
        .server
        .create_client(&acme, NewClient::new(metadata))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "claims_resources",
                ..
            }
        ),
        "{err:?}"
    );
    setup.close().await;
}

const CLIENT_ID: &str = "edk-rp";
const SECRET: &str = "upstream-secret-for-sealing";
const CALLBACK: &str = "https://as.example/acme/callback";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A tenancy with the KMS, the AS, federation and its configuration key; an authorization
/// server federating to the tenant's upstream provider, unsealing secrets with the KMS.
struct Federated {
    tenancy: Tenancy,
    clock: Arc<FixedClock>,
    kms: Arc<LocalKms>,
    server: AuthorizationServer,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Federated {
    async fn start(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
    ) -> Self {
        // The provider signs ID tokens with the real time.
        let clock = Arc::new(FixedClock::at_unix(SystemClock.unix_seconds()));
        let tenancy = Tenancy::builder(database)
            .clock(clock.clone())
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oauth::federation::migrations().unwrap())
            .config_schema(ConfigSchema::builder().key(&UPSTREAM_OIDC).build().unwrap())
            .build()
            .await
            .unwrap();
        let kms = Arc::new(
            LocalKms::builder(tenancy.clone(), vec![software_provider(&new_kek())])
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
        let federation =
            OidcFederation::new(tenancy.clone(), http(), clock.clone()).with_kms(kms.clone());
        let server = AuthorizationServer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            kms.clone(),
            Arc::new(federation),
            clock.clone(),
            AsConfig::default(),
        );
        Self {
            tenancy,
            clock,
            kms,
            server,
            _dir: dir,
            db,
        }
    }

    async fn context(&self, slug: &str) -> TenantContext {
        let request = EndpointRequest::new("https", "as.example", None, &format!("/{slug}/token"));
        self.tenancy
            .resolve(ServiceType::As, &request)
            .await
            .unwrap()
            .context
    }

    async fn tenant(&self, slug: &str) -> TenantContext {
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
        self.context(slug).await
    }

    async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

async fn a_federated_login_with_a_sealed_secret_hands_claims_to_the_resource_server(
    fixture: Federated,
) {
    let op = OidcProvider::start(
        OidcProviderMode::Login,
        &[OidcTestClient::new(CLIENT_ID, SECRET, &[CALLBACK])],
    )
    .await;
    let acme = fixture.tenant("acme").await;
    let globex = fixture.tenant("globex").await;

    // The secret is sealed by the tenant's KMS key before it is written.
    let config: UpstreamOidcConfig = serde_json::from_value(json!({
        "issuer": op.issuer(), "client_id": CLIENT_ID, "client_secret": SECRET,
        "claims": { "subject_claim": "sub", "copy_claims": ["email", "email_verified", "name"] },
        "dangerous_allow_http": true
    }))
    .unwrap();
    let sealed = fixture
        .server
        .seal_upstream_secret(&acme, config)
        .await
        .unwrap();
    assert!(sealed.client_secret().is_sealed());
    fixture
        .tenancy
        .set_config(
            Some(acme.id()),
            UPSTREAM_OIDC.name(),
            serde_json::to_value(&sealed).unwrap(),
            None,
        )
        .await
        .unwrap();
    let row = fixture
        .tenancy
        .config_properties(Some(acme.id()))
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.key == UPSTREAM_OIDC.name())
        .unwrap();
    assert!(!row.value.to_string().contains(SECRET), "{}", row.value);
    let acme = fixture.context("acme").await;

    // Another tenant cannot unseal it.
    let UpstreamSecret::Sealed(ciphertext) = sealed.client_secret() else {
        panic!("sealed");
    };
    let err = edk_oauth::federation::unseal(fixture.kms.as_ref(), &globex, ciphertext)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            FederationError::Sealing(edk_kms::Error::AliasNotFound { alias })
                if *alias == edk_oauth::federation::sealing_alias().unwrap()
        ),
        "{err:?}"
    );
    assert_eq!(
        edk_oauth::federation::unseal(fixture.kms.as_ref(), &acme, ciphertext)
            .await
            .unwrap()
            .expose_secret(),
        SECRET
    );

    // A wallet's authorization code flow through the upstream login.
    let mut metadata =
        ClientMetadata::new(ClientAuthMethod::None, vec![GrantType::AuthorizationCode]);
    metadata.redirect_uris = vec!["https://wallet.example/cb".to_owned()];
    fixture
        .server
        .create_client(
            &acme,
            NewClient::new(metadata).with_id(edk_core::ClientId::new("wallet").unwrap()),
        )
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let outcome = fixture
        .server
        .authorize(
            &acme,
            &Params::from_pairs([
                ("response_type", "code"),
                ("client_id", "wallet"),
                ("redirect_uri", "https://wallet.example/cb"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await
        .unwrap();
    let AuthorizeOutcome::Redirect(location) = outcome else {
        panic!("expected the upstream login, got {outcome:?}");
    };
    let back = op.login(location.as_str(), "alice", CALLBACK).await;
    let params = Params::from_pairs(back.query_pairs().into_owned());
    let outcome = fixture.server.callback(&acme, &params).await.unwrap();
    let AuthorizeOutcome::Redirect(done) = outcome else {
        panic!("expected the wallet's redirect, got {outcome:?}");
    };
    let code: String = done
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no code in {done}"));
    let token = fixture
        .server
        .token(
            &acme,
            &EndpointCall::post(Params::from_pairs([
                ("grant_type", "authorization_code"),
                ("client_id", "wallet"),
                ("code", code.as_str()),
                ("redirect_uri", "https://wallet.example/cb"),
                ("code_verifier", verifier.as_str()),
            ])),
        )
        .await
        .unwrap()
        .response;
    let at = payload(&token.access_token);
    assert_eq!(at["sub"], "alice");
    assert!(at.get("email").is_none() && at.get("name").is_none());
    let claims = fixture
        .server
        .grant_claims(&acme, &token.access_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Test User alice");
    assert_eq!(
        fixture
            .server
            .grant_claims(&globex, &token.access_token)
            .await
            .unwrap(),
        None
    );

    // Federation without a KMS cannot use a sealed secret, and says so.
    let no_kms = OidcFederation::new(fixture.tenancy.clone(), http(), fixture.clock.clone());
    let request = AuthnRequest::new(
        AuthnTransaction::generate(),
        edk_core::ClientId::new("wallet").unwrap(),
        url::Url::parse(CALLBACK).unwrap(),
    );
    let config = OidcFederation::config(&acme).unwrap();
    let location = no_kms.begin(&acme, &config, &request).await.unwrap();
    let back = op.login(location.as_str(), "alice", CALLBACK).await;
    let callback: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    let err = no_kms
        .complete(&acme, &config, &AuthnCallback::new(callback))
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::SealedWithoutKms), "{err:?}");
    fixture.close().await;
}

#[tokio::test]
async fn a_federated_login_with_a_sealed_secret_hands_claims_to_the_resource_server_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
    a_federated_login_with_a_sealed_secret_hands_claims_to_the_resource_server(
        Federated::start(database, Some(dir), None).await,
    )
    .await;
}

#[tokio::test]
async fn a_federated_login_with_a_sealed_secret_hands_claims_to_the_resource_server_on_postgres() {
    let db = TestDb::new().await;
    let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
        db.url().into(),
    ));
    a_federated_login_with_a_sealed_secret_hands_claims_to_the_resource_server(
        Federated::start(database, None, Some(db)).await,
    )
    .await;
}
