//! The issuer end to end in one process, on PostgreSQL and SQLite: an offer with a
//! transaction code, the tenant's authorization server redeeming it, a nonce, proofs, and
//! credentials that verify; and the refusals a wallet meets on the way.

use std::sync::Arc;

use edk_core::jose::jwe::{self, ContentEncryption, DecryptingKey, Jwe, JweOptions, KeyManagement};
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, SigningKey};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::{Clock, FixedClock, Limits, TenantSlug};
use edk_did::methods::jwk::DidJwk;
use edk_did::{DidKeyResolver, Resolver};
use edk_kms::LocalKms;
use edk_kms::kms::{Caller, KeyAlias};
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{
    AccessTokenValidator, AsConfig, AuthenticatedSubject, AuthorizationServer,
    CredentialGrantPolicy as _, CredentialGrantRequest, EndpointCall, Params, ResourceRequest,
    ValidatedToken,
};
use edk_oid4vci::IssuerGrantPolicy;
use edk_oid4vci::issuer::{
    Encryption, IssuerEndpoints, IssuerOptions, OfferGrants, OfferRequest, RequestBody,
};
use edk_oid4vci::proof::PROOF_TYP;
use edk_oid4vci::store::{SessionStatus, SqlStore, StoredConfiguration};
use edk_oid4vci::{
    CredentialConfiguration, CredentialErrorCode, IssuanceSettings, Issuer, issuer::Error,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy, TenantContext,
    TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::ExposeSecret as _;
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const GRANT: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

struct Env {
    tenancy: Tenancy,
    kms: Arc<LocalKms>,
    server: Arc<AuthorizationServer>,
    issuer: Issuer,
    clock: Arc<FixedClock>,
    tenant: TenantContext,
    other: TenantContext,
    endpoints: IssuerEndpoints,
    proof_keys: Arc<DidKeyResolver>,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

async fn tenancy(database: DatabaseConfig) -> Tenancy {
    Tenancy::builder(database)
        .migrations(edk_kms::migrations().unwrap())
        .migrations(edk_oauth::migrations().unwrap())
        .migrations(edk_oid4vci::migrations().unwrap())
        .config_schema(
            edk_tenancy::ConfigSchema::builder()
                .key(&edk_oauth::client_attestation::CLIENT_ATTESTATION)
                .key(&edk_oid4vci::WALLET_INITIATED)
                .build()
                .unwrap(),
        )
        .build()
        .await
        .unwrap()
}

impl Env {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tenancy = tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await;
        Self::new(tenancy, Some(dir), None).await
    }

    async fn postgres() -> Self {
        let db = TestDb::new().await;
        let config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
        let tenancy = tenancy(DatabaseConfig::Postgres(config)).await;
        Self::new(tenancy, None, Some(db)).await
    }

    async fn new(tenancy: Tenancy, dir: Option<tempfile::TempDir>, db: Option<TestDb>) -> Self {
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let kek = KekConfig::key(KekId::new("k").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = Arc::new(
            LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
        let server = Arc::new(AuthorizationServer::new(
            Arc::new(edk_oauth::SqlStore::new(tenancy.clone())),
            kms.clone(),
            Arc::new(PreApprovedAuthenticator::new("alice", clock.clone())),
            clock.clone(),
            AsConfig::default(),
        ));
        let proof_keys = Arc::new(DidKeyResolver::new(Arc::new(
            Resolver::builder()
                .method(Arc::new(DidJwk))
                .build()
                .unwrap(),
        )));
        let issuer = Issuer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            kms.clone(),
            proof_keys.clone(),
            clock.clone(),
        );
        let tenant = provision(&tenancy, "acme").await;
        let other = provision(&tenancy, "other").await;
        let authorization_server = AuthorizationServer::issuer(&tenant).unwrap();
        let endpoints =
            IssuerEndpoints::under("https://issuer.example/acme", &authorization_server);
        Self {
            tenancy,
            kms,
            server,
            issuer,
            clock,
            tenant,
            other,
            endpoints,
            proof_keys,
            _dir: dir,
            db,
        }
    }

    async fn close(self) {
        drop(self.tenancy);
        if let Some(db) = self.db {
            db.close().await;
        }
    }

    async fn configure(&self) {
        let identity = StoredConfiguration {
            configuration: CredentialConfiguration::from_json(json!({
                "format": "dc+sd-jwt",
                "vct": "https://credentials.example.com/identity",
                "scope": "identity",
                "cryptographic_binding_methods_supported": ["jwk", "did:jwk"],
                "credential_signing_alg_values_supported": ["ES256"],
                "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256", "EdDSA"] } },
            }))
            .unwrap(),
            settings: IssuanceSettings::default(),
        };
        self.issuer
            .put_configuration(&self.tenant, "identity", &identity)
            .await
            .unwrap();
    }

    /// Offer → token (with tx_code): the validated access token.
    async fn token(&self, offer: &OfferRequest) -> (ValidatedToken, String) {
        let created = self
            .issuer
            .create_offer(&self.tenant, &self.server, &self.endpoints, offer)
            .await
            .unwrap();
        let grant = created.offer.grants.pre_authorized_code.unwrap();
        let tx_code = created.tx_code.map(|code| code.expose_secret().to_owned());
        let mut pairs = vec![
            ("grant_type", GRANT.to_owned()),
            ("pre-authorized_code", grant.pre_authorized_code),
        ];
        if let Some(tx_code) = tx_code {
            pairs.push(("tx_code", tx_code));
        }
        let response = self
            .server
            .token(
                &self.tenant,
                &EndpointCall::post(Params::from_pairs(
                    pairs.iter().map(|(k, v)| (*k, v.as_str())),
                )),
            )
            .await
            .unwrap()
            .response;
        let details = response.authorization_details.unwrap();
        assert_eq!(
            details[0]["credential_identifiers"],
            json!([format!("{}:identity", created.session_id)])
        );
        let validator = AccessTokenValidator::new(
            self.endpoints.authorization_server.clone(),
            self.endpoints.credential_issuer.clone(),
            self.server.access_token_keys(&self.tenant),
            self.clock.clone() as Arc<dyn Clock>,
        );
        let token = validator
            .validate(&ResourceRequest::new(
                "POST",
                &self.endpoints.credential_endpoint,
                Some(format!("Bearer {}", response.access_token)),
            ))
            .await
            .unwrap();
        (token, created.session_id)
    }

    async fn proof(&self, key: &SigningKey, nonce: &str) -> String {
        let header = Header::new(key.algorithm())
            .with_typ(PROOF_TYP)
            .with_jwk(&key.public_jwk());
        crate::signed(
            key,
            &header,
            &json!({ "aud": self.endpoints.credential_issuer, "iat": NOW, "nonce": nonce }),
        )
    }

    async fn issuer_keys(&self) -> JwksResolver {
        let caller = Caller::new(self.tenant.clone(), "test");
        let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
        let jwks: JwkSet = edk_kms::Kms::jwks(self.kms.as_ref(), &caller, &alias)
            .await
            .unwrap();
        JwksResolver::new(&jwks)
    }
}

async fn provision(tenancy: &Tenancy, slug: &str) -> TenantContext {
    let tenant = tenancy
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
    tenancy.bind(&binding).await.unwrap();
    let binding = EndpointBinding::new(
        tenant.id,
        ServiceType::Issuer,
        "issuer.example",
        None,
        &format!("/{slug}"),
        WellKnownLayout::Inserted,
    )
    .unwrap();
    tenancy.bind(&binding).await.unwrap();
    let request = EndpointRequest::new("https", "as.example", None, &format!("/{slug}/token"));
    tenancy
        .resolve(ServiceType::As, &request)
        .await
        .unwrap()
        .context
}

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                super::$name(super::Env::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                super::$name(super::Env::postgres().await).await;
            }
        }
    };
}

fn offer() -> OfferRequest {
    let mut request = OfferRequest::default();
    request.configuration_ids = vec!["identity".to_owned()];
    request.claims = json!({ "identity": { "given_name": "Erika", "family_name": "Mustermann" } })
        .as_object()
        .cloned()
        .unwrap();
    request.tx_code_digits = Some(6);
    request.correlation_id = Some("order-1".to_owned());
    request
}

fn code(err: Error) -> (CredentialErrorCode, String) {
    match err {
        Error::Protocol(err) => (err.code, err.description),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

async fn a_pre_authorized_batch_flow_issues_verifiable_bound_credentials(env: Env) {
    env.configure().await;
    let metadata = env
        .issuer
        .metadata(&env.tenant, &env.endpoints)
        .await
        .unwrap();
    metadata.validate().unwrap();
    assert_eq!(
        metadata.nonce_endpoint.as_deref(),
        Some("https://issuer.example/acme/nonce")
    );
    let (token, session_id) = env.token(&offer()).await;
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap();
    let first = SigningKey::generate(Algorithm::Es256).unwrap();
    let second = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let body = json!({
        "credential_identifier": format!("{session_id}:identity"),
        "proofs": { "jwt": [env.proof(&first, &nonce.c_nonce).await, env.proof(&second, &nonce.c_nonce).await] },
    });
    let response = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap();
    assert_eq!(response.credentials.len(), 2);
    let keys = env.issuer_keys().await;
    for (credential, holder) in response.credentials.iter().zip([&first, &second]) {
        let sd_jwt = SdJwt::parse(credential, &Limits::DEFAULT).unwrap();
        let verified = sd_jwt
            .verify_vc(&keys, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
        assert_eq!(verified.issuer(), Some("https://issuer.example/acme"));
        let claims = verified.into_sd_jwt().into_claims();
        assert_eq!(claims["given_name"], "Erika");
        assert_eq!(
            claims["cnf"]["jwk"]["x"],
            serde_json::to_value(holder.public_jwk()).unwrap()["x"]
        );
    }
    let session = env.issuer.session(&env.tenant, &session_id).await.unwrap();
    assert_eq!(session.status, SessionStatus::CredentialIssued);
    assert_eq!(session.correlation_id.as_deref(), Some("order-1"));

    // The nonce was spent: the same proofs again are invalid_nonce.
    let err = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (
            CredentialErrorCode::InvalidNonce,
            "the proof's nonce is unknown, used or expired; fetch a new c_nonce".to_owned()
        )
    );
    env.close().await;
}
on_both_backends!(a_pre_authorized_batch_flow_issues_verifiable_bound_credentials);

async fn a_wallet_meets_the_specified_refusals(env: Env) {
    env.configure().await;
    let (token, session_id) = env.token(&offer()).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let identifier = format!("{session_id}:identity");
    let cases = [
        (
            json!({ "credential_identifier": "someone-else:identity",
                "proofs": { "jwt": [env.proof(&key, &nonce).await] } }),
            CredentialErrorCode::UnknownCredentialIdentifier,
            "the access token does not grant this credential_identifier",
        ),
        (
            json!({ "credential_identifier": identifier }),
            CredentialErrorCode::InvalidProof,
            "this credential is bound to a key: send proofs",
        ),
        (
            json!({ "credential_identifier": identifier,
                "proofs": { "jwt": [env.proof(&key, &nonce).await, env.proof(&key, &nonce).await] } }),
            CredentialErrorCode::InvalidProof,
            "two proofs are for the same key",
        ),
        (
            json!({ "credential_identifier": identifier,
                "proofs": { "jwt": [env.proof(&key, "never-issued").await] } }),
            CredentialErrorCode::InvalidNonce,
            "the proof's nonce is unknown, used or expired; fetch a new c_nonce",
        ),
    ];
    for (body, expected, description) in cases {
        let err = env
            .issuer
            .credential(&env.tenant, &env.endpoints, &token, &body)
            .await
            .unwrap_err();
        assert_eq!(code(err), (expected, description.to_owned()));
    }
    // None of the refusals spent the nonce.
    let body = json!({ "credential_identifier": identifier,
        "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
    // Tenant A's token at tenant B: its session is not there.
    let err = env
        .issuer
        .credential(&env.other, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (
            CredentialErrorCode::UnknownCredentialConfiguration,
            "configuration identity is no longer offered".to_owned()
        )
    );
    env.issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap();

    // A cancelled session issues nothing more.
    env.issuer.cancel(&env.tenant, &session_id).await.unwrap();
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = json!({ "credential_identifier": identifier,
        "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
    let err = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (
            CredentialErrorCode::CredentialRequestDenied,
            "the issuance session is cancelled".to_owned()
        )
    );
    env.close().await;
}
on_both_backends!(a_wallet_meets_the_specified_refusals);

async fn the_configuration_id_names_a_single_granted_identifier_unless_strict(env: Env) {
    env.configure().await;
    let (token, _) = env.token(&offer()).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let strict = issuer_with(&env, Encryption::Supported, false);
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = json!({ "credential_configuration_id": "identity",
        "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
    let err = strict
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (
            CredentialErrorCode::InvalidCredentialRequest,
            "the token response named credential_identifiers; send credential_identifier"
                .to_owned()
        )
    );
    // Where earlier drafts are accepted, the one identifier granted for `identity` is meant.
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = json!({ "credential_configuration_id": "identity",
        "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
    let response = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap();
    assert_eq!(response.credentials.len(), 1);
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let unknown = json!({ "credential_configuration_id": "passport",
        "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
    let err = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &unknown)
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (
            CredentialErrorCode::InvalidCredentialRequest,
            "the token response named credential_identifiers; send credential_identifier"
                .to_owned()
        )
    );
    env.close().await;
}
on_both_backends!(the_configuration_id_names_a_single_granted_identifier_unless_strict);

async fn sixty_four_concurrent_requests_on_one_nonce_issue_once(env: Env) {
    env.configure().await;
    let (token, session_id) = env.token(&offer()).await;
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let env = Arc::new(env);
    let token = Arc::new(token);
    let attempts = (0..64).map(|_| {
        let env = Arc::clone(&env);
        let token = Arc::clone(&token);
        let nonce = nonce.clone();
        let identifier = format!("{session_id}:identity");
        tokio::spawn(async move {
            let key = SigningKey::generate(Algorithm::Es256).unwrap();
            let body = json!({ "credential_identifier": identifier,
                "proofs": { "jwt": [env.proof(&key, &nonce).await] } });
            env.issuer
                .credential(&env.tenant, &env.endpoints, &token, &body)
                .await
                .map_err(code)
        })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(refused.0, CredentialErrorCode::InvalidNonce);
    }
    Arc::into_inner(env).unwrap().close().await;
}
on_both_backends!(sixty_four_concurrent_requests_on_one_nonce_issue_once);

async fn offers_check_their_configurations_and_serve_references_once(env: Env) {
    env.configure().await;
    let mut unknown = offer();
    unknown.configuration_ids = vec!["passport".to_owned()];
    let err = env
        .issuer
        .create_offer(&env.tenant, &env.server, &env.endpoints, &unknown)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "credential_configuration_ids: `passport` is not a configuration of this issuer"
    );
    let mut stray_claims = offer();
    stray_claims.claims.insert("passport".to_owned(), json!({}));
    let err = env
        .issuer
        .create_offer(&env.tenant, &env.server, &env.endpoints, &stray_claims)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "claims: `passport` is not an offered configuration"
    );

    let mut by_reference = offer();
    by_reference.by_reference = true;
    by_reference.correlation_id = None;
    let created = env
        .issuer
        .create_offer(&env.tenant, &env.server, &env.endpoints, &by_reference)
        .await
        .unwrap();
    let edk_oid4vci::offer::OfferReference::Uri(uri) =
        edk_oid4vci::offer::parse_offer_uri(&created.uri).unwrap()
    else {
        panic!("expected an offer by reference")
    };
    let handle = uri
        .strip_prefix("https://issuer.example/acme/offers/")
        .unwrap();
    assert!(matches!(
        env.issuer
            .offer_by_reference(&env.other, handle)
            .await
            .unwrap_err(),
        Error::NotFound("credential offer")
    ));
    let served = env
        .issuer
        .offer_by_reference(&env.tenant, handle)
        .await
        .unwrap();
    assert_eq!(served, serde_json::to_value(&created.offer).unwrap());
    assert!(served["grants"][GRANT]["tx_code"]["length"] == 6);
    assert!(matches!(
        env.issuer
            .offer_by_reference(&env.tenant, handle)
            .await
            .unwrap_err(),
        Error::NotFound("credential offer")
    ));
    // The tx_code is not in the offer and not in Debug output.
    let tx_code = created.tx_code.as_ref().unwrap().expose_secret().to_owned();
    assert!(!served.to_string().contains(&tx_code));
    assert!(!format!("{created:?}").contains(&tx_code));
    env.close().await;
}
on_both_backends!(offers_check_their_configurations_and_serve_references_once);

/// An issuer over the environment's store, KMS and proof keys with `encryption`, accepting
/// earlier drafts' requests or not.
fn issuer_with(env: &Env, encryption: Encryption, accept_legacy: bool) -> Issuer {
    let mut options = IssuerOptions::default();
    options.encryption = encryption;
    options.accept_legacy = accept_legacy;
    Issuer::new(
        Arc::new(SqlStore::new(env.tenancy.clone())),
        env.kms.clone(),
        env.proof_keys.clone(),
        env.clock.clone(),
    )
    .with_options(options)
}

/// `body` encrypted to the issuer's advertised request encryption key.
async fn encrypt_to_issuer(issuer: &Issuer, env: &Env, body: &serde_json::Value) -> String {
    encrypt_bytes_to_issuer(issuer, env, body.to_string().as_bytes()).await
}

/// `plaintext` encrypted to the issuer's advertised request encryption key.
async fn encrypt_bytes_to_issuer(issuer: &Issuer, env: &Env, plaintext: &[u8]) -> String {
    let metadata = issuer.metadata(&env.tenant, &env.endpoints).await.unwrap();
    let encryption = metadata.credential_request_encryption.unwrap();
    let key = &encryption.jwks.keys[0];
    jwe::encrypt(
        plaintext,
        key,
        KeyManagement::from_name(key.alg.as_deref().unwrap()).unwrap(),
        ContentEncryption::A256Gcm,
        JweOptions::default(),
    )
    .unwrap()
}

async fn an_encrypted_request_gets_an_encrypted_answer_for_the_wallets_key(env: Env) {
    env.configure().await;
    let (token, session_id) = env.token(&offer()).await;
    let strict = issuer_with(&env, Encryption::Supported, false);
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let wallet_key = DecryptingKey::generate(KeyManagement::EcdhEsA128Kw).unwrap();
    let mut wallet_jwk = serde_json::to_value(wallet_key.public_jwk()).unwrap();
    wallet_jwk["kid"] = json!("wallet-1");
    let nonce = strict.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = json!({
        "credential_identifier": format!("{session_id}:identity"),
        "proofs": { "jwt": [env.proof(&holder, &nonce).await] },
        "credential_response_encryption": { "jwk": wallet_jwk, "enc": "A128GCM" },
    });
    let request = encrypt_to_issuer(&strict, &env, &body).await;
    let answer = strict
        .credential_message(
            &env.tenant,
            &env.endpoints,
            &token,
            RequestBody::Encrypted(&request),
        )
        .await
        .unwrap();
    let encrypted = answer.encrypted.unwrap();
    let (header, plaintext) = Jwe::parse(&encrypted, &Limits::default())
        .unwrap()
        .decrypt(&wallet_key)
        .await
        .unwrap();
    assert_eq!(header.alg, KeyManagement::EcdhEsA128Kw);
    assert_eq!(header.enc, ContentEncryption::A128Gcm);
    assert_eq!(header.kid.as_deref(), Some("wallet-1"));
    let decrypted: serde_json::Value = serde_json::from_slice(&plaintext).unwrap();
    assert_eq!(decrypted, answer.response.to_json());
    assert_eq!(decrypted["credentials"].as_array().unwrap().len(), 1);
    // Without credential_response_encryption the answer to an encrypted request is plain.
    let nonce = strict.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = json!({
        "credential_identifier": format!("{session_id}:identity"),
        "proofs": { "jwt": [env.proof(&holder, &nonce).await] },
    });
    let request = encrypt_to_issuer(&strict, &env, &body).await;
    let answer = strict
        .credential_message(
            &env.tenant,
            &env.endpoints,
            &token,
            RequestBody::Encrypted(&request),
        )
        .await
        .unwrap();
    assert!(answer.encrypted.is_none());
    assert_eq!(answer.response.credentials.len(), 1);
    env.close().await;
}
on_both_backends!(an_encrypted_request_gets_an_encrypted_answer_for_the_wallets_key);

async fn bad_encryption_is_refused_before_the_nonce_is_spent(env: Env) {
    env.configure().await;
    let (token, session_id) = env.token(&offer()).await;
    let strict = issuer_with(&env, Encryption::Supported, false);
    let required = issuer_with(&env, Encryption::Required, true);
    let off = issuer_with(&env, Encryption::Off, true);
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let nonce = strict.nonce(&env.tenant).await.unwrap().c_nonce;
    let proofs = json!({ "jwt": [env.proof(&holder, &nonce).await] });
    let identifier = format!("{session_id}:identity");
    let wallet_key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let wallet_jwk = serde_json::to_value(wallet_key.public_jwk()).unwrap();
    let mut without_alg = wallet_jwk.clone();
    without_alg.as_object_mut().unwrap().remove("alg");
    let private_jwk = serde_json::to_value(wallet_key.to_jwk().unwrap()).unwrap();
    let with = |encryption: serde_json::Value| {
        json!({ "credential_identifier": identifier, "proofs": proofs,
            "credential_response_encryption": encryption })
    };
    let plain = json!({ "credential_identifier": identifier, "proofs": proofs });
    let other_key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let to_another_key = jwe::encrypt(
        plain.to_string().as_bytes(),
        &other_key.public_jwk(),
        KeyManagement::EcdhEs,
        ContentEncryption::A128Gcm,
        JweOptions::default(),
    )
    .unwrap();
    let not_json = encrypt_bytes_to_issuer(&strict, &env, b"credential please").await;
    let cases: Vec<(
        &Issuer,
        Result<serde_json::Value, String>,
        CredentialErrorCode,
        &str,
    )> = vec![
        (
            &strict,
            Ok(with(json!({ "jwk": wallet_jwk, "enc": "A128GCM" }))),
            CredentialErrorCode::InvalidEncryptionParameters,
            "credential_response_encryption is accepted only in an encrypted request",
        ),
        (
            &strict,
            Err(encrypt_to_issuer(
                &strict,
                &env,
                &with(json!({ "jwk": wallet_jwk, "enc": "A192GCM" })),
            )
            .await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "credential_response_encryption enc A192GCM is not supported",
        ),
        (
            &strict,
            Err(encrypt_to_issuer(
                &strict,
                &env,
                &with(json!({ "jwk": without_alg, "enc": "A128GCM" })),
            )
            .await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "credential_response_encryption.jwk must name its alg",
        ),
        (
            &strict,
            Err(encrypt_to_issuer(
                &strict,
                &env,
                &with(json!({ "jwk": private_jwk, "enc": "A128GCM" })),
            )
            .await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "credential_response_encryption.jwk must be a public key",
        ),
        (
            &strict,
            Err(encrypt_to_issuer(
                &strict,
                &env,
                &with(json!({ "jwk": wallet_jwk, "enc": "A128GCM", "zip": "DEF" })),
            )
            .await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "compressed responses are not supported",
        ),
        (
            &strict,
            Err("a.b.c.d.e".to_owned()),
            CredentialErrorCode::InvalidEncryptionParameters,
            "the request is not a compact JWE with a supported alg and enc and no zip",
        ),
        (
            &strict,
            Err(to_another_key),
            CredentialErrorCode::InvalidEncryptionParameters,
            "the request could not be decrypted with the issuer's key",
        ),
        (
            &strict,
            Err(not_json),
            CredentialErrorCode::InvalidCredentialRequest,
            "the decrypted request is not a JSON object",
        ),
        (
            &required,
            Ok(plain.clone()),
            CredentialErrorCode::InvalidEncryptionParameters,
            "this issuer requires encrypted requests: send a JWE as application/jwt",
        ),
        (
            &required,
            Err(encrypt_to_issuer(&required, &env, &plain).await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "this issuer requires encrypted responses: send credential_response_encryption",
        ),
        (
            &off,
            Err(encrypt_to_issuer(&strict, &env, &plain).await),
            CredentialErrorCode::InvalidEncryptionParameters,
            "this issuer does not accept encrypted requests",
        ),
        (
            &off,
            Ok(with(json!({ "jwk": wallet_jwk, "enc": "A128GCM" }))),
            CredentialErrorCode::InvalidEncryptionParameters,
            "this issuer does not encrypt credential responses",
        ),
    ];
    for (issuer, body, expected, description) in cases {
        let body_ref = match &body {
            Ok(json) => RequestBody::Json(json),
            Err(jwe) => RequestBody::Encrypted(jwe),
        };
        let err = issuer
            .credential_message(&env.tenant, &env.endpoints, &token, body_ref)
            .await
            .unwrap_err();
        assert_eq!(code(err), (expected, description.to_owned()));
    }
    // Nothing was issued and the nonce is still good.
    let answer = strict
        .credential_message(
            &env.tenant,
            &env.endpoints,
            &token,
            RequestBody::Json(&plain),
        )
        .await
        .unwrap();
    assert_eq!(answer.response.credentials.len(), 1);
    // With encryption off, the metadata advertises none.
    let metadata = off.metadata(&env.tenant, &env.endpoints).await.unwrap();
    assert!(metadata.credential_request_encryption.is_none());
    assert!(metadata.credential_response_encryption.is_none());
    env.close().await;
}
on_both_backends!(bad_encryption_is_refused_before_the_nonce_is_spent);

/// A login of `subject` through `client` asking for `scopes` with `issuer_state`.
fn login(subject: &str, issuer_state: Option<&str>, scopes: &[&str]) -> CredentialGrantRequest {
    let mut request = CredentialGrantRequest::new(
        edk_core::ClientId::new("wallet").unwrap(),
        AuthenticatedSubject::new(subject, chrono::DateTime::from_timestamp(NOW, 0).unwrap()),
    );
    request.issuer_state = issuer_state.map(str::to_owned);
    request.scopes = scopes.iter().map(|scope| (*scope).to_owned()).collect();
    request
}

fn oauth_code(err: edk_oauth::Error) -> String {
    match err {
        edk_oauth::Error::OAuth { code, .. } => code.as_str().to_owned(),
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

async fn an_authorization_code_offer_is_bound_to_the_first_end_user(env: Env) {
    env.configure().await;
    let mut request = offer();
    request.tx_code_digits = None;
    request.grants = OfferGrants::new(false, true);
    let created = env
        .issuer
        .create_offer(&env.tenant, &env.server, &env.endpoints, &request)
        .await
        .unwrap();
    assert!(created.offer.grants.pre_authorized_code.is_none());
    assert!(created.tx_code.is_none());
    let issuer_state = created
        .offer
        .grants
        .authorization_code
        .and_then(|grant| grant.issuer_state)
        .unwrap();
    let policy = IssuerGrantPolicy::new(
        Arc::new(SqlStore::new(env.tenancy.clone())),
        env.tenancy.clone(),
        env.clock.clone(),
    );

    // Alice logs in with the offer's issuer_state, asking by scope: the session's dataset.
    let expected = json!([{
        "type": "openid_credential",
        "credential_configuration_id": "identity",
        "credential_identifiers": [format!("{}:identity", created.session_id)],
        "locations": ["https://issuer.example/acme"],
    }]);
    let alice = login("alice", Some(&issuer_state), &["identity"]);
    let granted = policy.grant(&env.tenant, &alice).await.unwrap();
    assert_eq!(granted, Some(expected.clone()));
    let session = env
        .issuer
        .session(&env.tenant, &created.session_id)
        .await
        .unwrap();
    assert_eq!(session.status, SessionStatus::TokenIssued);
    assert_eq!(session.subject.as_deref(), Some("alice"));
    // Alice again (a second device, a retried login): the same grant.
    assert_eq!(
        policy.grant(&env.tenant, &alice).await.unwrap(),
        Some(expected)
    );

    // Bob cannot take the session over; nor can anyone at another tenant.
    let bob = login("bob", Some(&issuer_state), &["identity"]);
    assert_eq!(
        oauth_code(policy.grant(&env.tenant, &bob).await.unwrap_err()),
        "access_denied"
    );
    assert_eq!(
        oauth_code(policy.grant(&env.other, &alice).await.unwrap_err()),
        "access_denied"
    );
    // An unknown issuer_state, and a configuration the offer does not include.
    let unknown = login("alice", Some("not-an-offer"), &[]);
    assert_eq!(
        oauth_code(policy.grant(&env.tenant, &unknown).await.unwrap_err()),
        "access_denied"
    );
    let mut other_configuration = login("alice", Some(&issuer_state), &[]);
    other_configuration.authorization_details = Some(json!([
        { "type": "openid_credential", "credential_configuration_id": "diploma" }
    ]));
    assert_eq!(
        oauth_code(
            policy
                .grant(&env.tenant, &other_configuration)
                .await
                .unwrap_err()
        ),
        "invalid_authorization_details"
    );
    // Asking for a credential without an offer is refused; a plain login passes as sent.
    let mut no_offer = login("alice", None, &[]);
    no_offer.authorization_details = Some(json!([
        { "type": "openid_credential", "credential_configuration_id": "identity" }
    ]));
    assert_eq!(
        oauth_code(policy.grant(&env.tenant, &no_offer).await.unwrap_err()),
        "access_denied"
    );
    assert_eq!(
        policy
            .grant(&env.tenant, &login("alice", None, &["openid"]))
            .await
            .unwrap(),
        None
    );

    // A cancelled offer grants nothing, even to its end user.
    env.issuer
        .cancel(&env.tenant, &created.session_id)
        .await
        .unwrap();
    assert_eq!(
        oauth_code(policy.grant(&env.tenant, &alice).await.unwrap_err()),
        "access_denied"
    );

    // Thirty-two end users log in at once with a fresh offer's issuer_state: one wins.
    request.correlation_id = None;
    let created = env
        .issuer
        .create_offer(&env.tenant, &env.server, &env.endpoints, &request)
        .await
        .unwrap();
    let issuer_state = created
        .offer
        .grants
        .authorization_code
        .unwrap()
        .issuer_state
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let policy = policy.clone();
            let tenant = env.tenant.clone();
            let request = login(&format!("user-{i}"), Some(&issuer_state), &["identity"]);
            tokio::spawn(async move { policy.grant(&tenant, &request).await })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => granted += 1,
            Err(err) => assert_eq!(oauth_code(err), "access_denied"),
        }
    }
    assert_eq!(granted, 1);
    let session = env
        .issuer
        .session(&env.tenant, &created.session_id)
        .await
        .unwrap();
    assert!(session.subject.unwrap().starts_with("user-"));
    env.close().await;
}
on_both_backends!(an_authorization_code_offer_is_bound_to_the_first_end_user);

async fn a_wallet_initiated_login_opens_a_session_only_where_the_tenant_allows_it(env: Env) {
    env.configure().await;
    let policy = IssuerGrantPolicy::new(
        Arc::new(SqlStore::new(env.tenancy.clone())),
        env.tenancy.clone(),
        env.clock.clone(),
    )
    .with_session_ttl_secs(300);
    let alice = login("alice", None, &["identity"]);
    assert_eq!(
        oauth_code(policy.grant(&env.tenant, &alice).await.unwrap_err()),
        "access_denied",
        "off by default"
    );
    env.tenancy
        .set_config(
            Some(env.tenant.id()),
            "oid4vci.wallet_initiated",
            json!(true),
            None,
        )
        .await
        .unwrap();
    let tenant = env
        .tenancy
        .context_for_service(env.tenant.id(), ServiceType::As)
        .await
        .unwrap();

    // Asking by scope opens a session for alice with the configuration and no claims.
    let granted = policy.grant(&tenant, &alice).await.unwrap().unwrap();
    let identifier = granted[0]["credential_identifiers"][0].as_str().unwrap();
    let session_id = identifier.strip_suffix(":identity").unwrap();
    assert_eq!(
        granted,
        json!([{
            "type": "openid_credential",
            "credential_configuration_id": "identity",
            "credential_identifiers": [identifier],
            "locations": ["https://issuer.example/acme"],
        }])
    );
    let session = env.issuer.session(&tenant, session_id).await.unwrap();
    assert_eq!(session.status, SessionStatus::TokenIssued);
    assert_eq!(session.subject.as_deref(), Some("alice"));
    assert_eq!(session.configuration_ids, vec!["identity".to_owned()]);
    assert!(session.claims.is_empty());
    assert_eq!(session.expires_at, NOW + 300);

    // Each login has its own session; asking by authorization_details works the same.
    let mut by_details = login("alice", None, &[]);
    by_details.authorization_details = Some(json!([
        { "type": "openid_credential", "credential_configuration_id": "identity" }
    ]));
    let again = policy.grant(&tenant, &by_details).await.unwrap().unwrap();
    assert_ne!(again[0]["credential_identifiers"][0], identifier);

    // A configuration the issuer does not have, and a plain login, open nothing.
    let mut unknown = login("alice", None, &[]);
    unknown.authorization_details = Some(json!([
        { "type": "openid_credential", "credential_configuration_id": "passport" }
    ]));
    assert_eq!(
        oauth_code(policy.grant(&tenant, &unknown).await.unwrap_err()),
        "invalid_authorization_details"
    );
    assert_eq!(
        policy
            .grant(&tenant, &login("alice", None, &["openid"]))
            .await
            .unwrap(),
        None
    );
    // The setting is the tenant's own: the other tenant grants no credential.
    assert!(
        !matches!(policy.grant(&env.other, &alice).await, Ok(Some(_))),
        "another tenant opened a session"
    );
    env.close().await;
}
on_both_backends!(a_wallet_initiated_login_opens_a_session_only_where_the_tenant_allows_it);

/// A list of 100,000 credentials with one in ten revoked: the token shows exactly the revoked
/// ones and stays within the size of the raw bit string (base64 of 12,500 bytes) plus a fixed
/// overhead for the header, claims and signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_100000_credentials_stays_within_its_size_budget() {
    use edk_core::status_list::{Bits, StatusListPolicy, StatusListToken, StatusType};
    use edk_oid4vci::StatusStore as _;
    use edk_oid4vci::status::{CredentialSelector, StatusAction, StatusListSpec, StatusPurpose};
    use edk_oid4vci::store::NewIssuedCredential;

    let env = Env::sqlite().await;
    let store = SqlStore::new(env.tenancy.clone());
    let spec = StatusListSpec {
        configuration_id: "identity".to_owned(),
        purpose: StatusPurpose::Revocation,
        bits: Bits::One,
        size: 100_000,
        issuer: env.endpoints.credential_issuer.clone(),
        uri_base: env.endpoints.status_lists.clone(),
    };
    let mut revoked = Vec::new();
    let mut list = None;
    for batch in 0..10 {
        let indices = store
            .allocate_status_indices(&env.tenant, &spec, 10_000, NOW)
            .await
            .unwrap();
        let records: Vec<NewIssuedCredential> = indices
            .iter()
            .enumerate()
            .map(|(n, index)| NewIssuedCredential {
                credential_id: format!("c{batch}-{n}"),
                // Every tenth credential in a session of its own, revoked below.
                session_id: if n % 10 == 0 {
                    format!("revoked-{batch}")
                } else {
                    format!("s{batch}")
                },
                correlation_id: None,
                configuration_id: "identity".to_owned(),
                list_id: index.list_id.clone(),
                index: index.index,
                issued_at: NOW,
                expires_at: None,
            })
            .collect();
        revoked.extend(indices.iter().step_by(10).map(|index| index.index));
        list = Some(indices[0].list_id.clone());
        store.record_issued(&env.tenant, &records).await.unwrap();
        env.issuer
            .set_credential_status(
                &env.tenant,
                &CredentialSelector::Session(format!("revoked-{batch}")),
                StatusAction::Revoke,
            )
            .await
            .unwrap();
    }
    let list = list.unwrap();
    let token = env
        .issuer
        .publish_status_list(&env.tenant, &list)
        .await
        .unwrap()
        .unwrap();
    let budget = (12_500 + 2) * 4 / 3 + 1024;
    assert!(
        token.jwt.len() < budget,
        "{} bytes over {budget}",
        token.jwt.len()
    );
    assert!(token.cwt.len() < 12_500 + 1024, "{} bytes", token.cwt.len());

    let caller = Caller::new(env.tenant.clone(), "test");
    let alias = KeyAlias::new("issuer", "status-list-signing").unwrap();
    let jwks: JwkSet = edk_kms::Kms::jwks(env.kms.as_ref(), &caller, &alias)
        .await
        .unwrap();
    let key = edk_core::jose::VerifyingKey::from_jwk(&jwks.keys[0]).unwrap();
    let uri = format!("{}/{list}", env.endpoints.status_lists);
    let verified =
        StatusListToken::verify(&token.jwt, &key, &uri, &StatusListPolicy::default(), NOW).unwrap();
    let decoded = verified.list();
    assert_eq!(decoded.len(), 100_000);
    let invalid: Vec<usize> = (0..100_000)
        .filter(|index| decoded.status(*index).unwrap() == StatusType::Invalid)
        .collect();
    let mut expected: Vec<usize> = revoked.iter().map(|index| *index as usize).collect();
    expected.sort_unstable();
    assert_eq!(invalid, expected);
    assert_eq!(invalid.len(), 10_000);
    env.close().await;
}

/// A key attestation by `provider` (`kid` `wp-1`) for `keys`, stating `key_storage`.
fn key_attestation(
    provider: &SigningKey,
    keys: &[&SigningKey],
    key_storage: &str,
    nonce: Option<&str>,
) -> String {
    let mut claims = json!({
        "iat": NOW,
        "exp": NOW + 3600,
        "attested_keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>(),
        "key_storage": [key_storage],
        "user_authentication": ["iso_18045_moderate"],
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    crate::signed(
        provider,
        &json!({ "alg": "ES256", "typ": "key-attestation+jwt", "kid": "wp-1" }),
        &claims,
    )
}

async fn key_attestations_prove_the_keys_a_configuration_requires_them_for(env: Env) {
    let requirement = json!({ "key_storage": ["iso_18045_high", "iso_18045_moderate"] });
    let identity = StoredConfiguration {
        configuration: CredentialConfiguration::from_json(json!({
            "format": "dc+sd-jwt",
            "vct": "https://credentials.example.com/identity",
            "scope": "identity",
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": {
                "jwt": { "proof_signing_alg_values_supported": ["ES256"], "key_attestations_required": requirement },
                "attestation": { "proof_signing_alg_values_supported": ["ES256"], "key_attestations_required": requirement },
            },
        }))
        .unwrap(),
        settings: IssuanceSettings::default(),
    };
    env.issuer
        .put_configuration(&env.tenant, "identity", &identity)
        .await
        .unwrap();
    let (token, session_id) = env.token(&offer()).await;
    let identifier = format!("{session_id}:identity");
    let provider = SigningKey::generate(Algorithm::Es256).unwrap();
    let first = SigningKey::generate(Algorithm::Es256).unwrap();
    let second = SigningKey::generate(Algorithm::Es256).unwrap();
    let attestation_body = |attestation: String| json!({ "credential_identifier": identifier, "proofs": { "attestation": [attestation] } });

    // A tenant that trusts no wallet provider accepts no key attestation.
    let nonce = env.issuer.nonce(&env.tenant).await.unwrap().c_nonce;
    let body = attestation_body(key_attestation(
        &provider,
        &[&first],
        "iso_18045_high",
        Some(&nonce),
    ));
    let err = env
        .issuer
        .credential(&env.tenant, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(code(err).0, CredentialErrorCode::InvalidProof);

    // The tenant trusts the wallet provider's key as a client attester.
    env.tenancy
        .set_config(
            Some(env.tenant.id()),
            edk_oauth::client_attestation::CLIENT_ATTESTATION.name(),
            json!({ "jwks": { "keys": [provider.public_jwk().with_kid("wp-1")] } }),
            None,
        )
        .await
        .unwrap();
    let tenant = env.tenancy.context(env.tenant.id()).await.unwrap();

    // An attestation proof: a credential for every attested key.
    let nonce = env.issuer.nonce(&tenant).await.unwrap().c_nonce;
    let body = attestation_body(key_attestation(
        &provider,
        &[&first, &second],
        "iso_18045_high",
        Some(&nonce),
    ));
    let response = env
        .issuer
        .credential(&tenant, &env.endpoints, &token, &body)
        .await
        .unwrap();
    assert_eq!(response.credentials.len(), 2);
    let keys = env.issuer_keys().await;
    for (credential, holder) in response.credentials.iter().zip([&first, &second]) {
        let verified = SdJwt::parse(credential, &Limits::DEFAULT)
            .unwrap()
            .verify_vc(&keys, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
        let claims = verified.into_sd_jwt().into_claims();
        assert_eq!(
            claims["cnf"]["jwk"]["x"],
            serde_json::to_value(holder.public_jwk()).unwrap()["x"]
        );
    }
    // Its nonce is spent.
    let err = env
        .issuer
        .credential(&tenant, &env.endpoints, &token, &body)
        .await
        .unwrap_err();
    assert_eq!(code(err).0, CredentialErrorCode::InvalidNonce);

    // Refusals: another signer, a storage level below the requirement, no nonce.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    for (attestation, expected) in [
        (
            key_attestation(&stranger, &[&first], "iso_18045_high", Some("n")),
            CredentialErrorCode::InvalidProof,
        ),
        (
            key_attestation(&provider, &[&first], "iso_18045_basic", Some("n")),
            CredentialErrorCode::InvalidProof,
        ),
        (
            key_attestation(&provider, &[&first], "iso_18045_high", None),
            CredentialErrorCode::InvalidNonce,
        ),
    ] {
        let err = env
            .issuer
            .credential(
                &tenant,
                &env.endpoints,
                &token,
                &attestation_body(attestation),
            )
            .await
            .unwrap_err();
        assert_eq!(code(err).0, expected);
    }

    // JWT proofs must carry an attestation of their own key in `key_attestation`.
    let jwt_proof = |key: &SigningKey, attestation: Option<String>, nonce: &str| {
        let mut header = json!({ "alg": "ES256", "typ": PROOF_TYP, "jwk": key.public_jwk() });
        if let Some(attestation) = attestation {
            header["key_attestation"] = json!(attestation);
        }
        crate::signed(
            key,
            &header,
            &json!({ "aud": env.endpoints.credential_issuer, "iat": NOW, "nonce": nonce }),
        )
    };
    let jwt_body = |proof: String| json!({ "credential_identifier": identifier, "proofs": { "jwt": [proof] } });
    let nonce = env.issuer.nonce(&tenant).await.unwrap().c_nonce;
    for proof in [
        jwt_proof(&first, None, &nonce),
        jwt_proof(
            &first,
            Some(key_attestation(
                &provider,
                &[&second],
                "iso_18045_high",
                None,
            )),
            &nonce,
        ),
    ] {
        let err = env
            .issuer
            .credential(&tenant, &env.endpoints, &token, &jwt_body(proof))
            .await
            .unwrap_err();
        assert_eq!(code(err).0, CredentialErrorCode::InvalidProof);
    }
    let proof = jwt_proof(
        &first,
        Some(key_attestation(
            &provider,
            &[&first],
            "iso_18045_moderate",
            None,
        )),
        &nonce,
    );
    let response = env
        .issuer
        .credential(&tenant, &env.endpoints, &token, &jwt_body(proof))
        .await
        .unwrap();
    assert_eq!(response.credentials.len(), 1);
    env.close().await;
}
on_both_backends!(key_attestations_prove_the_keys_a_configuration_requires_them_for);
