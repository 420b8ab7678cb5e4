//! Issued credentials: SD-JWT VCs verify with edk-core's verifier and disclose what the
//! settings say; JWT VCs carry the W3C data model; binding and key naming follow the settings.

use edk_core::jose::{Algorithm, JwkSet, JwksResolver, Jws, SigningKey, VerifyPolicy};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::{Limits, encoding::b64url_decode};
use edk_oid4vci::config::{CredentialConfiguration, IssuanceSettings, KeyIdentification};
use edk_oid4vci::{
    CredentialInput, IssueError, ProofPolicy, ProvenKey, issue_credential, verify_jwt_proof,
};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://issuer.example.com/acme";
const NOW: i64 = 1_800_000_000;

fn sd_jwt_config() -> CredentialConfiguration {
    CredentialConfiguration::from_json(json!({
        "format": "dc+sd-jwt",
        "vct": "https://credentials.example.com/identity",
        "cryptographic_binding_methods_supported": ["jwk", "did:jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
    }))
    .unwrap()
}

fn claims() -> Map<String, Value> {
    json!({
        "given_name": "Erika",
        "family_name": "Mustermann",
        "address": { "street_address": "Heidestraße 17", "locality": "Köln" },
    })
    .as_object()
    .cloned()
    .unwrap()
}

async fn holder() -> ProvenKey {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let header = edk_core::jose::Header::new(Algorithm::Es256)
        .with_typ(edk_oid4vci::proof::PROOF_TYP)
        .with_jwk(&key.public_jwk());
    let proof = crate::signed(
        &key,
        &header,
        &json!({ "aud": ISSUER, "iat": NOW, "nonce": "n" }),
    );
    let policy = ProofPolicy::new(ISSUER, vec![Algorithm::Es256], vec!["jwk".to_owned()]);
    verify_jwt_proof(&proof, &policy, &JwksResolver::default(), NOW)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_sd_jwt_vc_verifies_and_hides_every_top_level_claim_by_default() {
    let issuer_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let config = sd_jwt_config();
    let settings = IssuanceSettings {
        lifetime_secs: Some(3600),
        ..IssuanceSettings::default()
    };
    let claims = claims();
    let holder = holder().await;
    let input = CredentialInput::new(&config, &settings, ISSUER, &claims, NOW)
        .bound_to(&holder)
        .with_status(
            json!({ "status_list": { "idx": 7, "uri": "https://issuer.example.com/s/1" } }),
        );
    let compact = issue_credential(&input, &issuer_key).await.unwrap();

    let sd_jwt = SdJwt::parse(&compact, &Limits::DEFAULT).unwrap();
    assert_eq!(sd_jwt.disclosures().len(), 3);
    let payload = sd_jwt.unverified_payload().unwrap();
    for hidden in ["given_name", "family_name", "address"] {
        assert!(payload.get(hidden).is_none(), "{hidden} is in the clear");
    }
    assert_eq!(payload["exp"], NOW + 3600);
    assert_eq!(
        payload["cnf"]["jwk"],
        serde_json::to_value(&holder.jwk).unwrap()
    );

    let resolver = JwksResolver::new(&JwkSet {
        keys: vec![issuer_key.public_jwk()],
    });
    let verified = sd_jwt
        .verify_vc(
            &resolver,
            &VcVerifyOptions::default().accepting_vct("https://credentials.example.com/identity"),
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(verified.issuer(), Some(ISSUER));
    assert_eq!(verified.status().unwrap()["status_list"]["idx"], 7);
    let all = verified.into_sd_jwt();
    assert_eq!(all.claims()["address"]["locality"], "Köln");
}

#[tokio::test]
async fn selectively_disclosable_paths_and_did_key_naming_follow_the_settings() {
    let issuer_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let config = sd_jwt_config();
    let settings = IssuanceSettings {
        key_identification: KeyIdentification::Did {
            kid: "did:web:issuer.example.com:acme#key-1".into(),
        },
        selectively_disclosable: Some(vec!["address.street_address".into()]),
        ..IssuanceSettings::default()
    };
    let claims = claims();
    let holder = holder().await;
    let input = CredentialInput::new(&config, &settings, ISSUER, &claims, NOW).bound_to(&holder);
    let compact = issue_credential(&input, &issuer_key).await.unwrap();
    let sd_jwt = SdJwt::parse(&compact, &Limits::DEFAULT).unwrap();
    assert_eq!(sd_jwt.disclosures().len(), 1);
    let payload = sd_jwt.unverified_payload().unwrap();
    assert_eq!(payload["iss"], "did:web:issuer.example.com:acme");
    assert_eq!(payload["given_name"], "Erika");
    assert!(payload["address"].get("street_address").is_none());
    let jws = Jws::parse(sd_jwt.issuer_jwt(), &Limits::DEFAULT).unwrap();
    assert_eq!(
        jws.header().kid.as_deref(),
        Some("did:web:issuer.example.com:acme#key-1")
    );

    let wrong = IssuanceSettings {
        selectively_disclosable: Some(vec!["birthdate".into()]),
        ..IssuanceSettings::default()
    };
    let input = CredentialInput::new(&config, &wrong, ISSUER, &claims, NOW).bound_to(&holder);
    match issue_credential(&input, &issuer_key).await.unwrap_err() {
        IssueError::Claims(reason) => {
            assert_eq!(reason, "no claim `birthdate` to make disclosable")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_bound_configuration_needs_a_holder_key_and_registered_claims_cannot_be_overridden() {
    let issuer_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let config = sd_jwt_config();
    let settings = IssuanceSettings::default();
    let claims = claims();
    let input = CredentialInput::new(&config, &settings, ISSUER, &claims, NOW);
    match issue_credential(&input, &issuer_key).await.unwrap_err() {
        IssueError::Claims(reason) => assert_eq!(
            reason,
            "the configuration binds credentials to a holder key and none was proven"
        ),
        other => panic!("unexpected {other:?}"),
    }
    let mut with_iss = claims.clone();
    with_iss.insert("iss".into(), json!("https://forged.example"));
    let holder = holder().await;
    let input = CredentialInput::new(&config, &settings, ISSUER, &with_iss, NOW).bound_to(&holder);
    match issue_credential(&input, &issuer_key).await.unwrap_err() {
        IssueError::Claims(reason) => {
            assert_eq!(reason, "claim `iss` clashes with a registered claim");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_jwt_vc_carries_the_w3c_data_model_and_the_holder_key() {
    let issuer_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let config = CredentialConfiguration::from_json(json!({
        "format": "jwt_vc_json",
        "credential_definition": { "type": ["VerifiableCredential", "UniversityDegreeCredential"] },
        "cryptographic_binding_methods_supported": ["jwk"],
        "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
    }))
    .unwrap();
    let settings = IssuanceSettings::default();
    let claims = json!({ "degree": { "type": "BachelorDegree" } })
        .as_object()
        .cloned()
        .unwrap();
    let holder = holder().await;
    let input = CredentialInput::new(&config, &settings, ISSUER, &claims, NOW).bound_to(&holder);
    let jwt = issue_credential(&input, &issuer_key).await.unwrap();
    let verified = Jws::parse(&jwt, &Limits::DEFAULT)
        .unwrap()
        .verify(
            &edk_core::jose::VerifyingKey::from_jwk(&issuer_key.public_jwk()).unwrap(),
            &VerifyPolicy::default().with_typ("JWT"),
        )
        .unwrap();
    let payload = verified.claims().unwrap();
    assert_eq!(payload["iss"], ISSUER);
    assert_eq!(payload["nbf"], NOW);
    assert_eq!(
        payload["vc"]["type"],
        json!(["VerifiableCredential", "UniversityDegreeCredential"])
    );
    assert_eq!(
        payload["vc"]["@context"],
        json!(["https://www.w3.org/2018/credentials/v1"])
    );
    assert_eq!(
        payload["vc"]["credentialSubject"]["degree"]["type"],
        "BachelorDegree"
    );
    assert_eq!(
        payload["cnf"]["jwk"],
        serde_json::to_value(&holder.jwk).unwrap()
    );
    let jti = payload["jti"].as_str().unwrap();
    assert!(jti.starts_with("urn:uuid:") && jti.len() == 45);
    // The header names no x5c unless the settings ask for it.
    let header = b64url_decode(jwt.split('.').next().unwrap()).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    assert!(header.get("x5c").is_none());
}
