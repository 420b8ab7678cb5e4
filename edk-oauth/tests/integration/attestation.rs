//! Attestation-based client authentication through the library API, on both backends: a
//! wallet made of test code (its own wallet-provider key and instance key) at PAR and token,
//! and every refusal with its exact error code.

use std::sync::Arc;

use base64::Engine as _;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{FixedClock, TenantSlug};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::client_attestation::{ATTESTATION_POP_TYP, ATTESTATION_TYP, CLIENT_ATTESTATION};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AsConfig, AuthorizationServer, AuthorizeOutcome, EndpointCall, Error, NewClient,
    OAuthErrorCode, Params, PreAuthorizedCodeRequest,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    ConfigSchema, DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy,
    TenantContext, TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{DpopKey, NOW, new_kek, pkce, server};

const ISSUER: &str = "https://as.example/acme";
const TOKEN_URL: &str = "https://as.example/acme/token";
const WALLET: &str = "wallet";

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

/// A tenancy that knows the attestation configuration key, a fixed clock and a server.
pub(crate) struct Setup {
    pub(crate) tenancy: Tenancy,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) server: Arc<AuthorizationServer>,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Setup {
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(AsConfig::default()).await
    }

    pub(crate) async fn postgres() -> Self {
        Self::postgres_with(AsConfig::default()).await
    }

    pub(crate) async fn sqlite_with(as_config: AsConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        Self::build(database, Some(dir), None, as_config).await
    }

    pub(crate) async fn postgres_with(as_config: AsConfig) -> Self {
        let db = TestDb::new().await;
        let mut config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
        config.max_connections = 20;
        Self::build(DatabaseConfig::Postgres(config), None, Some(db), as_config).await
    }

    async fn build(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
        as_config: AsConfig,
    ) -> Self {
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
        let server = server(&tenancy, &new_kek(), clock.clone(), as_config);
        Self {
            tenancy,
            clock,
            server,
            _dir: dir,
            db,
        }
    }

    /// Provisions `slug` at `https://as.example/<slug>` with `attestation` as its client
    /// attestation policy (if any).
    pub(crate) async fn tenant(&self, slug: &str, attestation: Option<Value>) -> TenantContext {
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
        if let Some(attestation) = attestation {
            self.tenancy
                .set_config(
                    Some(tenant.id),
                    CLIENT_ATTESTATION.name(),
                    attestation,
                    None,
                )
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

    pub(crate) async fn client(
        &self,
        tenant: &TenantContext,
        id: &str,
        method: ClientAuthMethod,
        grants: Vec<GrantType>,
    ) {
        let mut metadata = ClientMetadata::new(method, grants);
        metadata.scopes = vec!["read".to_owned()];
        metadata.redirect_uris = vec!["https://wallet.example/cb".to_owned()];
        let client = NewClient::new(metadata).with_id(edk_core::ClientId::new(id).unwrap());
        self.server.create_client(tenant, client).await.unwrap();
    }

    pub(crate) async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// A wallet provider: the key that signs client attestations.
pub(crate) struct Provider {
    pub(crate) key: SigningKey,
}

impl Provider {
    pub(crate) fn new() -> Self {
        Self {
            key: SigningKey::generate(Algorithm::Es256).unwrap(),
        }
    }

    /// The tenant policy trusting this provider's key.
    pub(crate) fn policy(&self) -> Value {
        json!({ "jwks": JwkSet { keys: vec![self.key.public_jwk()] } })
    }
}

/// A wallet instance: its key, and attestations for it from a provider.
pub(crate) struct Wallet {
    pub(crate) instance: SigningKey,
}

impl Wallet {
    pub(crate) fn new() -> Self {
        Self {
            instance: SigningKey::generate(Algorithm::Es256).unwrap(),
        }
    }

    /// A client attestation for `sub`, signed by `provider`, with `claims` overriding the
    /// defaults (`iat` now, `exp` in an hour).
    pub(crate) async fn attestation(
        &self,
        provider: &Provider,
        sub: &str,
        claims: Value,
    ) -> String {
        let mut payload = json!({
            "iss": "https://wallet-provider.example",
            "sub": sub,
            "iat": NOW,
            "exp": NOW + 3600,
            "cnf": { "jwk": self.instance.public_jwk() },
        });
        merge(&mut payload, claims);
        let header = Header::new(Algorithm::Es256).with_typ(ATTESTATION_TYP);
        jws::sign(header, payload.to_string().as_bytes(), &provider.key)
            .await
            .unwrap()
    }

    /// A PoP for the AS `aud` with a fresh `jti`, `claims` overriding the defaults.
    pub(crate) async fn pop(&self, aud: &str, claims: Value) -> String {
        let mut payload = json!({
            "aud": aud,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": NOW,
        });
        merge(&mut payload, claims);
        let header = Header::new(Algorithm::Es256).with_typ(ATTESTATION_POP_TYP);
        jws::sign(header, payload.to_string().as_bytes(), &self.instance)
            .await
            .unwrap()
    }

    /// Attestation and PoP headers for `sub` at the `acme` AS.
    pub(crate) async fn headers(&self, provider: &Provider, sub: &str) -> (String, String) {
        (
            self.attestation(provider, sub, json!({})).await,
            self.pop(ISSUER, json!({})).await,
        )
    }
}

fn merge(target: &mut Value, overrides: Value) {
    if let (Some(target), Value::Object(overrides)) = (target.as_object_mut(), overrides) {
        for (name, value) in overrides {
            if value.is_null() {
                target.remove(&name);
            } else {
                target.insert(name, value);
            }
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

fn client_credentials() -> EndpointCall {
    form(&[("grant_type", "client_credentials"), ("scope", "read")])
}

fn code(result: Result<impl std::fmt::Debug, Error>) -> OAuthErrorCode {
    result.unwrap_err().code()
}

/// The code of a refusal whose description names `reason`.
fn refused(result: Result<impl std::fmt::Debug, Error>, reason: &str) -> OAuthErrorCode {
    let err = result.unwrap_err();
    assert!(
        err.description().contains(reason),
        "{reason:?} is not in {:?}",
        err.description()
    );
    err.code()
}

async fn attested_wallet_uses_par_token_and_refresh(setup: Setup) {
    let provider = Provider::new();
    let acme = setup.tenant("acme", Some(provider.policy())).await;
    setup
        .client(
            &acme,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        )
        .await;
    let wallet = Wallet::new();
    let server = &setup.server;

    // PAR, authenticated by the attestation alone.
    let (verifier, challenge) = pkce();
    let (attestation, pop) = wallet.headers(&provider, WALLET).await;
    let par = form(&[
        ("response_type", "code"),
        ("client_id", WALLET),
        ("redirect_uri", "https://wallet.example/cb"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read"),
        ("state", "s1"),
    ])
    .with_client_attestation(attestation, pop);
    let pushed = server.par(&acme, &par).await.unwrap();
    let outcome = server
        .authorize(
            &acme,
            &Params::from_pairs([("client_id", WALLET), ("request_uri", &pushed.request_uri)]),
        )
        .await
        .unwrap();
    let AuthorizeOutcome::Redirect(url) = outcome else {
        panic!("expected a redirect, got {outcome:?}");
    };
    let auth_code: String = url
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .unwrap();

    // Token: attestation and DPoP on one request.
    let dpop = DpopKey::new();
    let nonce = server.current_dpop_nonce(&acme).await.unwrap();
    let (attestation, pop) = wallet.headers(&provider, WALLET).await;
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("code", &auth_code),
        ("redirect_uri", "https://wallet.example/cb"),
        ("code_verifier", &verifier),
    ])
    .with_client_attestation(attestation, pop)
    .with_dpop(dpop.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await);
    let response = server.token(&acme, &call).await.unwrap().response;
    assert_eq!(response.token_type, "DPoP");
    let claims = server
        .own_access_token(&acme, &response.access_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["client_id"], WALLET);
    assert_eq!(claims["cnf"]["jkt"], dpop.jkt());
    let refresh = response.refresh_token.unwrap();

    // The refresh token is bound to the instance key: another instance of the same wallet
    // (same provider, same client id) is refused and the token stays usable.
    let refresh_call = |attestation: String, pop: String, token: &str| {
        form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .with_client_attestation(attestation, pop)
    };
    let other = Wallet::new();
    let (attestation, pop) = other.headers(&provider, WALLET).await;
    assert_eq!(
        code(
            server
                .token(&acme, &refresh_call(attestation, pop, &refresh))
                .await
        ),
        OAuthErrorCode::InvalidGrant
    );
    let (attestation, pop) = wallet.headers(&provider, WALLET).await;
    let rotated = server
        .token(&acme, &refresh_call(attestation, pop, &refresh))
        .await
        .unwrap()
        .response;
    assert!(rotated.refresh_token.is_some());
    setup.close().await;
}
both_backends!(attested_wallet_uses_par_token_and_refresh);

async fn every_bad_attestation_is_refused_with_its_code(setup: Setup) {
    let provider = Provider::new();
    let acme = setup.tenant("acme", Some(provider.policy())).await;
    setup
        .client(
            &acme,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::ClientCredentials],
        )
        .await;
    setup
        .client(
            &acme,
            "secret-client",
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
        )
        .await;
    let server = &setup.server;
    let wallet = Wallet::new();
    let tenant = &acme;
    let token = |attestation: String, pop: String| {
        let call = client_credentials().with_client_attestation(attestation, pop);
        async move { server.token(tenant, &call).await }
    };

    // The good case first.
    let (attestation, pop) = wallet.headers(&provider, WALLET).await;
    let response = token(attestation.clone(), pop.clone()).await.unwrap();
    assert_eq!(response.response.token_type, "Bearer");

    // The same PoP again: a replay.
    assert_eq!(
        refused(token(attestation.clone(), pop).await, "used before"),
        OAuthErrorCode::InvalidClientAttestation
    );

    // Signed by a key the tenant does not trust.
    let stranger = Provider::new();
    let untrusted = wallet.attestation(&stranger, WALLET, json!({})).await;
    assert_eq!(
        refused(
            token(untrusted, wallet.pop(ISSUER, json!({})).await).await,
            "trusted client attester"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );

    // Expired.
    let expired = wallet
        .attestation(
            &provider,
            WALLET,
            json!({ "iat": NOW - 7200, "exp": NOW - 1 }),
        )
        .await;
    assert_eq!(
        refused(
            token(expired, wallet.pop(ISSUER, json!({})).await).await,
            "has expired"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );

    // A PoP for another audience.
    let wrong_aud = wallet.pop("https://as.example/globex", json!({})).await;
    assert_eq!(
        refused(token(attestation.clone(), wrong_aud).await, "`aud`"),
        OAuthErrorCode::InvalidClientAttestation
    );

    // A PoP outside the iat window, and one signed by a key other than `cnf`.
    let stale = wallet.pop(ISSUER, json!({ "iat": NOW - 3600 })).await;
    assert_eq!(
        refused(token(attestation.clone(), stale).await, "`iat`"),
        OAuthErrorCode::InvalidClientAttestation
    );
    let other_key = Wallet::new().pop(ISSUER, json!({})).await;
    assert_eq!(
        refused(token(attestation.clone(), other_key).await, "instance key"),
        OAuthErrorCode::InvalidClientAttestation
    );

    // An attestation for another client than the request names.
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "secret-client"),
    ])
    .with_client_attestation(attestation.clone(), wallet.pop(ISSUER, json!({})).await);
    assert_eq!(
        refused(server.token(&acme, &call).await, "`client_id`"),
        OAuthErrorCode::InvalidClientAttestation
    );
    // An attestation for a client registered with another method, or not registered.
    let (secret_attestation, pop) = wallet.headers(&provider, "secret-client").await;
    assert_eq!(
        refused(
            token(secret_attestation, pop).await,
            "client authentication failed"
        ),
        OAuthErrorCode::InvalidClient
    );
    let (unknown, pop) = wallet.headers(&provider, "nobody").await;
    assert_eq!(
        refused(token(unknown, pop).await, "client authentication failed"),
        OAuthErrorCode::InvalidClient
    );

    // The wrong `typ`, a private `cnf` key, an attestation without PoP.
    let header = Header::new(Algorithm::Es256).with_typ("JWT");
    let payload =
        json!({ "sub": WALLET, "exp": NOW + 60, "cnf": { "jwk": wallet.instance.public_jwk() } });
    let untyped = jws::sign(header, payload.to_string().as_bytes(), &provider.key)
        .await
        .unwrap();
    assert_eq!(
        refused(
            token(untyped, wallet.pop(ISSUER, json!({})).await).await,
            "`typ`"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );
    let private = wallet
        .attestation(
            &provider,
            WALLET,
            json!({ "cnf": { "jwk": wallet.instance.to_jwk().unwrap() } }),
        )
        .await;
    assert_eq!(
        refused(
            token(private, wallet.pop(ISSUER, json!({})).await).await,
            "private key"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );
    let mut lonely = client_credentials();
    lonely.client_attestation.push(attestation.clone());
    assert_eq!(
        refused(server.token(&acme, &lonely).await, "PoP header is missing"),
        OAuthErrorCode::InvalidClientAttestation
    );

    // Attestation and a client secret at once.
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", WALLET),
        ("client_secret", "x"),
    ])
    .with_client_attestation(attestation, wallet.pop(ISSUER, json!({})).await);
    assert_eq!(
        code(server.token(&acme, &call).await),
        OAuthErrorCode::InvalidRequest
    );

    // A tenant that trusts no attester.
    let globex = setup.tenant("globex", None).await;
    setup
        .client(
            &globex,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::ClientCredentials],
        )
        .await;
    let call = client_credentials().with_client_attestation(
        wallet.attestation(&provider, WALLET, json!({})).await,
        wallet.pop("https://as.example/globex", json!({})).await,
    );
    assert_eq!(
        refused(
            server.token(&globex, &call).await,
            "trusts no client attesters"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );
    setup.close().await;
}
both_backends!(every_bad_attestation_is_refused_with_its_code);

async fn challenges_are_required_single_use_and_expire(setup: Setup) {
    let provider = Provider::new();
    let mut policy = provider.policy();
    policy["challenge_required"] = json!(true);
    let acme = setup.tenant("acme", Some(policy)).await;
    setup
        .client(
            &acme,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::ClientCredentials],
        )
        .await;
    let server = &setup.server;
    let wallet = &Wallet::new();
    let attestation = wallet.attestation(&provider, WALLET, json!({})).await;
    let tenant = &acme;
    let token = |challenge: Option<&str>| {
        let claims = challenge.map_or(json!({}), |c| json!({ "challenge": c }));
        let attestation = attestation.clone();
        async move {
            let pop = wallet.pop(ISSUER, claims).await;
            let call = client_credentials().with_client_attestation(attestation, pop);
            server.token(tenant, &call).await
        }
    };

    // No challenge: refused with a fresh one, which then works once.
    let err = token(None).await.unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::UseAttestationChallenge);
    assert_eq!(err.code().status(), 400);
    let Error::UseAttestationChallenge { challenge, .. } = err else {
        panic!("a PoP without challenge must get use_attestation_challenge: {err:?}");
    };
    token(Some(&challenge)).await.unwrap();
    assert_eq!(
        code(token(Some(&challenge)).await),
        OAuthErrorCode::UseAttestationChallenge
    );
    // A challenge never issued.
    assert_eq!(
        code(token(Some("made-up")).await),
        OAuthErrorCode::UseAttestationChallenge
    );

    // From the challenge endpoint, with a DPoP nonce; it expires with the configured ttl.
    let issued = server.attestation_challenge(&acme).await.unwrap();
    assert_eq!(
        issued.dpop_nonce,
        Some(server.current_dpop_nonce(&acme).await.unwrap())
    );
    token(Some(&issued.attestation_challenge)).await.unwrap();
    let late = server.attestation_challenge(&acme).await.unwrap();
    setup.clock.set_unix(NOW + 301);
    let fresh_pop_time = json!({ "challenge": late.attestation_challenge, "iat": NOW + 301 });
    let attestation_later = wallet.attestation(&provider, WALLET, json!({})).await;
    let call = client_credentials()
        .with_client_attestation(attestation_later, wallet.pop(ISSUER, fresh_pop_time).await);
    assert_eq!(
        code(server.token(&acme, &call).await),
        OAuthErrorCode::UseAttestationChallenge
    );
    setup.clock.set_unix(NOW);

    // Many requests with one challenge: exactly one gets through.
    let shared = server.attestation_challenge(&acme).await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let pop = wallet
            .pop(ISSUER, json!({ "challenge": shared.attestation_challenge }))
            .await;
        calls.push(client_credentials().with_client_attestation(attestation.clone(), pop));
    }
    let results =
        futures::future::join_all(calls.iter().map(|call| server.token(&acme, call))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|err| err.code() == OAuthErrorCode::UseAttestationChallenge)
    );
    setup.close().await;
}
both_backends!(challenges_are_required_single_use_and_expire);

async fn stale_attestations_and_unattested_public_clients_are_refused(setup: Setup) {
    let provider = Provider::new();
    let mut policy = provider.policy();
    policy["require_for_public_clients"] = json!(true);
    policy["max_age_seconds"] = json!(600);
    let acme = setup.tenant("acme", Some(policy)).await;
    setup
        .client(
            &acme,
            "app",
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
        )
        .await;
    let server = &setup.server;
    let wallet = Wallet::new();
    let (_, challenge) = pkce();
    let par = |extra: Option<(String, String)>| {
        let call = form(&[
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", "https://wallet.example/cb"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        match extra {
            Some((attestation, pop)) => call.with_client_attestation(attestation, pop),
            None => call,
        }
    };
    // A public client without attestation, and an anonymous pre-authorized code redemption.
    assert_eq!(
        refused(
            server.par(&acme, &par(None)).await,
            "client attestation is required"
        ),
        OAuthErrorCode::InvalidClient
    );
    let minted = server
        .mint_pre_authorized_code(&acme, PreAuthorizedCodeRequest::new(Grant::new("alice")))
        .await
        .unwrap();
    let redeem = form(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:pre-authorized_code",
        ),
        ("pre-authorized_code", minted.code.expose_secret()),
    ]);
    assert_eq!(
        refused(
            server.token(&acme, &redeem).await,
            "client attestation is required"
        ),
        OAuthErrorCode::InvalidClient
    );
    // The same public client with an attestation is accepted.
    let headers = wallet.headers(&provider, "app").await;
    server.par(&acme, &par(Some(headers))).await.unwrap();
    // Too old for the tenant's policy, or without `iat` to tell.
    let old = wallet
        .attestation(&provider, "app", json!({ "iat": NOW - 601 }))
        .await;
    assert_eq!(
        code(
            server
                .par(
                    &acme,
                    &par(Some((old, wallet.pop(ISSUER, json!({})).await)))
                )
                .await
        ),
        OAuthErrorCode::UseFreshAttestation
    );
    let undated = wallet
        .attestation(&provider, "app", json!({ "iat": null }))
        .await;
    assert_eq!(
        code(
            server
                .par(
                    &acme,
                    &par(Some((undated, wallet.pop(ISSUER, json!({})).await)))
                )
                .await
        ),
        OAuthErrorCode::UseFreshAttestation
    );
    setup.close().await;
}
both_backends!(stale_attestations_and_unattested_public_clients_are_refused);

/// A root CA and a wallet-provider certificate under it, valid around `NOW` (2027).
struct Pki {
    root: String,
    chain: Vec<String>,
    leaf: SigningKey,
}

fn new_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = rcgen::date_time_ymd(2026, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(vec!["wallet-provider.example".to_owned()]).unwrap();
    leaf.not_before = rcgen::date_time_ymd(2026, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let leaf_cert = leaf.signed_by(&leaf_key, &Issuer::new(ca, ca_key)).unwrap();
    Pki {
        root: b64(ca_cert.der()),
        chain: vec![b64(leaf_cert.der())],
        leaf: SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap(),
    }
}

/// An attestation of `wallet` at `now`, signed by `pki`'s leaf with the chain in `x5c`.
async fn x5c_attestation(pki: &Pki, wallet: &Wallet, now: i64) -> String {
    let header = Header::new(Algorithm::Es256)
        .with_typ(ATTESTATION_TYP)
        .with_x5c(pki.chain.clone());
    let payload = json!({
        "sub": WALLET, "iat": now, "exp": now + 3600,
        "cnf": { "jwk": wallet.instance.public_jwk() },
    });
    jws::sign(header, payload.to_string().as_bytes(), &pki.leaf)
        .await
        .unwrap()
}

async fn x5c_attestations_chain_to_the_tenants_trust_anchor(setup: Setup) {
    let pki = new_pki();
    let other = new_pki();
    let acme = setup
        .tenant("acme", Some(json!({ "trust_anchors": [pki.root] })))
        .await;
    setup
        .client(
            &acme,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::ClientCredentials],
        )
        .await;
    let wallet = Wallet::new();
    let call = client_credentials().with_client_attestation(
        x5c_attestation(&pki, &wallet, NOW).await,
        wallet.pop(ISSUER, json!({})).await,
    );
    setup.server.token(&acme, &call).await.unwrap();
    let call = client_credentials().with_client_attestation(
        x5c_attestation(&other, &wallet, NOW).await,
        wallet.pop(ISSUER, json!({})).await,
    );
    assert_eq!(
        refused(
            setup.server.token(&acme, &call).await,
            "trusted client attester"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );
    // After the certificates expire (2028), the same chain no longer validates.
    let later = 1_840_000_000;
    setup.clock.set_unix(later);
    let expired_chain = x5c_attestation(&pki, &wallet, later).await;
    let pop = wallet.pop(ISSUER, json!({ "iat": later })).await;
    let call = client_credentials().with_client_attestation(expired_chain, pop);
    assert_eq!(
        refused(
            setup.server.token(&acme, &call).await,
            "trusted client attester"
        ),
        OAuthErrorCode::InvalidClientAttestation
    );
    setup.close().await;
}
both_backends!(x5c_attestations_chain_to_the_tenants_trust_anchor);

#[tokio::test]
async fn metadata_advertises_attestation_only_where_configured() {
    let setup = Setup::sqlite().await;
    let provider = Provider::new();
    let mut policy = provider.policy();
    policy["challenge_required"] = json!(true);
    let acme = setup.tenant("acme", Some(policy)).await;
    let globex = setup.tenant("globex", None).await;
    let doc = setup.server.metadata(&acme).unwrap();
    assert!(
        doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("attest_jwt_client_auth"))
    );
    assert_eq!(
        doc["challenge_endpoint"],
        "https://as.example/acme/challenge"
    );
    assert_eq!(doc["client_attestation_pop_nonce_required"], true);
    assert!(
        doc["client_attestation_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    assert!(
        doc["client_attestation_pop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    let doc = setup.server.metadata(&globex).unwrap();
    assert!(doc.get("challenge_endpoint").is_none());
    assert!(
        !doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("attest_jwt_client_auth"))
    );
    setup.close().await;
}

/// Runs `interop/python/wallet_attestation.py` (PyPI `jwcrypto`) with `request`.
fn jwcrypto_wallet(request: &Value) -> Value {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let root = edk_testkit::oidc_provider::workspace_root();
    let interpreter = root.join("target/interop/venv/bin/python");
    assert!(
        interpreter.exists(),
        "{} is missing: run scripts/test, which installs the interop peers",
        interpreter.display()
    );
    let mut child = Command::new(&interpreter)
        .arg("wallet_attestation.py")
        .current_dir(root.join("interop/python"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "wallet_attestation.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn a_jwcrypto_wallet_authenticates(setup: Setup) {
    let challenge_policy =
        |jwk: &Value| json!({ "jwks": { "keys": [jwk] }, "challenge_required": true });
    // The wallet brings its own provider key: the tenant trusts it once the wallet exists.
    let acme = setup.tenant("acme", None).await;
    let challenge = setup
        .server
        .attestation_challenge(&acme)
        .await
        .unwrap()
        .attestation_challenge;
    let wallet = tokio::task::spawn_blocking(move || {
        jwcrypto_wallet(&json!({
            "sub": WALLET, "iat": NOW, "exp": NOW + 3600,
            "pops": [
                { "aud": ISSUER, "iat": NOW, "challenge": challenge },
                { "aud": ISSUER, "iat": NOW },
            ],
        }))
    })
    .await
    .unwrap();
    setup
        .tenancy
        .set_config(
            Some(acme.id()),
            CLIENT_ATTESTATION.name(),
            challenge_policy(&wallet["provider_jwk"]),
            None,
        )
        .await
        .unwrap();
    let request = EndpointRequest::new("https", "as.example", None, "/acme/token");
    let acme = setup
        .tenancy
        .resolve(ServiceType::As, &request)
        .await
        .unwrap()
        .context;
    setup
        .client(
            &acme,
            WALLET,
            ClientAuthMethod::AttestJwtClientAuth,
            vec![GrantType::ClientCredentials],
        )
        .await;
    let attestation = wallet["attestation"].as_str().unwrap();
    let pops = wallet["pops"].as_array().unwrap();
    let call = client_credentials().with_client_attestation(attestation, pops[0].as_str().unwrap());
    let token = setup.server.token(&acme, &call).await.unwrap().response;
    assert_eq!(token.token_type, "Bearer");
    // The second PoP carries no challenge, which this tenant requires.
    let call = client_credentials().with_client_attestation(attestation, pops[1].as_str().unwrap());
    assert_eq!(
        code(setup.server.token(&acme, &call).await),
        OAuthErrorCode::UseAttestationChallenge
    );
    setup.close().await;
}
both_backends!(a_jwcrypto_wallet_authenticates);
