//! The credential endpoint's work, in process: verifying an ES256 JWT key proof, issuing an
//! SD-JWT VC with ten claims bound to the proven key, and a whole credential request
//! (nonce, proof, session, KMS signing) on the embedded SQLite store.
//!
//! Run with: cargo bench -p edk-benches --bench oid4vci
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey};
use edk_core::{FixedClock, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::{
    AccessTokenValidator, AsConfig, AuthorizationServer, EndpointCall, NoAuthenticator, Params,
    ResourceRequest,
};
use edk_oid4vci::issuer::{IssuerEndpoints, OfferRequest};
use edk_oid4vci::proof::PROOF_TYP;
use edk_oid4vci::store::{SqlStore, StoredConfiguration};
use edk_oid4vci::{
    CredentialConfiguration, CredentialInput, IssuanceSettings, Issuer, ProofPolicy,
    issue_credential, verify_jwt_proof,
};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy, TenantDirectory as _,
    WellKnownLayout,
};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://issuer.example/acme";

fn proof(key: &SigningKey, nonce: &str) -> String {
    let header = Header::new(Algorithm::Es256)
        .with_typ(PROOF_TYP)
        .with_jwk(&key.public_jwk());
    let header = b64url_encode(serde_json::to_vec(&header).unwrap());
    let payload = b64url_encode(json!({ "aud": ISSUER, "iat": NOW, "nonce": nonce }).to_string());
    let signature = key
        .sign_bytes(format!("{header}.{payload}").as_bytes())
        .unwrap();
    format!("{header}.{payload}.{}", b64url_encode(signature))
}

fn configuration() -> CredentialConfiguration {
    CredentialConfiguration::from_json(json!({
        "format": "dc+sd-jwt",
        "vct": "https://credentials.example/identity",
        "scope": "identity",
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
    }))
    .unwrap()
}

/// Ten claims, as the SD-JWT benchmark and the peers use.
fn claims() -> Map<String, Value> {
    json!({
        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1963-08-12",
        "email": "erika@example.com", "phone_number": "+49-221-555-0101",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationality": "DE", "is_over_18": true, "is_over_21": true, "is_over_65": false,
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn oid4vci(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let policy = ProofPolicy::new(ISSUER, vec![Algorithm::Es256], vec!["jwk".to_owned()]);
    let no_keys = JwksResolver::default();
    let proof_jwt = proof(&holder, "n-1");
    let mut group = c.benchmark_group("oid4vci/ES256");
    group.bench_function("verify JWT key proof", |b| {
        b.iter(|| {
            runtime
                .block_on(verify_jwt_proof(&proof_jwt, &policy, &no_keys, NOW))
                .unwrap()
        });
    });

    let proven = runtime
        .block_on(verify_jwt_proof(&proof_jwt, &policy, &no_keys, NOW))
        .unwrap();
    let config = configuration();
    let settings = IssuanceSettings::default();
    let subject = claims();
    group.bench_function("issue dc+sd-jwt (10 claims, bound)", |b| {
        b.iter(|| {
            let input =
                CredentialInput::new(&config, &settings, ISSUER, &subject, NOW).bound_to(&proven);
            runtime
                .block_on(issue_credential(&input, &issuer_key))
                .unwrap()
        });
    });

    // The whole request on SQLite with a software KMS key.
    let dir = tempfile::tempdir().unwrap();
    let (issuer, tenant, token, identifier, endpoints) = runtime.block_on(async {
        let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oid4vci::migrations().unwrap())
            .build()
            .await
            .unwrap();
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
        let server = AuthorizationServer::new(
            Arc::new(edk_oauth::SqlStore::new(tenancy.clone())),
            kms.clone(),
            Arc::new(NoAuthenticator),
            clock.clone(),
            AsConfig::default(),
        );
        let issuer = Issuer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            kms,
            Arc::new(JwksResolver::default()),
            clock,
        );
        let created = tenancy
            .provision(TenantSlug::new("acme").unwrap(), "acme")
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            created.id,
            ServiceType::As,
            "as.example",
            None,
            "/acme",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
        let tenant = tenancy
            .resolve(
                ServiceType::As,
                &EndpointRequest::new("https", "as.example", None, "/acme/token"),
            )
            .await
            .unwrap()
            .context;
        issuer
            .put_configuration(
                &tenant,
                "identity",
                &StoredConfiguration {
                    configuration: configuration(),
                    settings: IssuanceSettings::default(),
                },
            )
            .await
            .unwrap();
        let mut request = OfferRequest::default();
        request.configuration_ids = vec!["identity".to_owned()];
        request.claims = json!({ "identity": claims() })
            .as_object()
            .cloned()
            .unwrap();
        let endpoints =
            IssuerEndpoints::under(ISSUER, &AuthorizationServer::issuer(&tenant).unwrap());
        let offer = issuer
            .create_offer(&tenant, &server, &endpoints, &request)
            .await
            .unwrap();
        let identifier = format!("{}:identity", offer.session_id);
        let code = offer
            .offer
            .grants
            .pre_authorized_code
            .unwrap()
            .pre_authorized_code;
        let response = server
            .token(
                &tenant,
                &EndpointCall::post(Params::from_pairs([
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                    ),
                    ("pre-authorized_code", code.as_str()),
                ])),
            )
            .await
            .unwrap()
            .response;
        let validator = AccessTokenValidator::new(
            endpoints.authorization_server.clone(),
            ISSUER,
            server.access_token_keys(&tenant),
            Arc::new(FixedClock::at_unix(NOW)),
        );
        let token = validator
            .validate(&ResourceRequest::new(
                "POST",
                &endpoints.credential_endpoint,
                Some(format!("Bearer {}", response.access_token)),
            ))
            .await
            .unwrap();
        (issuer, tenant, token, identifier, endpoints)
    });
    group.bench_function(
        "credential request (nonce, proof, SQLite, KMS signing)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let nonce = issuer.nonce(&tenant).await.unwrap();
                    let body = json!({ "credential_identifier": identifier,
                    "proofs": { "jwt": [proof(&holder, &nonce.c_nonce)] } });
                    issuer
                        .credential(&tenant, &endpoints, &token, &body)
                        .await
                        .unwrap()
                })
            });
        },
    );
    group.finish();
}

criterion_group!(benches, oid4vci);
criterion_main!(benches);
