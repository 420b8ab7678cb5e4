//! Credential configurations and issuer metadata: what is accepted, and the exact refusal of
//! what breaks a rule of §12.2.4 or Appendix B.3.

use std::collections::BTreeMap;

use edk_oid4vci::config::{IssuanceSettings, PathSegment};
use edk_oid4vci::metadata::{BatchIssuance, IssuerMetadata, well_known_url};
use edk_oid4vci::{ConfigError, CredentialConfiguration};
use serde_json::{Value, json};

fn sd_jwt_config() -> Value {
    json!({
        "format": "dc+sd-jwt",
        "vct": "https://credentials.example.com/identity_credential",
        "scope": "identity_credential",
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
        "credential_metadata": {
            "display": [{ "name": "Identity", "locale": "en-US" }],
            "claims": [
                { "path": ["given_name"], "display": [{ "name": "Given Name", "locale": "en-US" }] },
                { "path": ["address", "street_address"] },
                { "path": ["nationalities", null] }
            ]
        },
        "some_future_member": true
    })
}

fn reason(value: Value) -> (String, String) {
    match CredentialConfiguration::from_json(value).unwrap_err() {
        ConfigError::Invalid { field, reason } => (field, reason),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_valid_configuration_round_trips_without_unknown_members() {
    let config = CredentialConfiguration::from_json(sd_jwt_config()).unwrap();
    assert_eq!(config.profile.format(), "dc+sd-jwt");
    assert_eq!(
        config.profile.vct(),
        Some("https://credentials.example.com/identity_credential")
    );
    let claims = &config.credential_metadata.as_ref().unwrap().claims;
    assert_eq!(
        claims[2].path,
        vec![PathSegment::Name("nationalities".into()), PathSegment::All]
    );
    let mut expected = sd_jwt_config();
    expected
        .as_object_mut()
        .unwrap()
        .remove("some_future_member");
    assert_eq!(serde_json::to_value(&config).unwrap(), expected);
}

#[test]
fn format_rules_are_enforced() {
    let mut no_vct = sd_jwt_config();
    no_vct["vct"] = json!("");
    assert_eq!(reason(no_vct), ("vct".into(), "must not be empty".into()));

    assert_eq!(
        reason(json!({ "format": "jwt_vc_json",
            "credential_definition": { "type": ["UniversityDegreeCredential"] } })),
        (
            "credential_definition.type".into(),
            "must start with VerifiableCredential".into()
        )
    );

    let mut binding_without_proofs = sd_jwt_config();
    binding_without_proofs
        .as_object_mut()
        .unwrap()
        .remove("proof_types_supported");
    assert_eq!(
        reason(binding_without_proofs).1,
        "must be present exactly when cryptographic_binding_methods_supported is"
    );

    let mut bad_alg = sd_jwt_config();
    bad_alg["credential_signing_alg_values_supported"] = json!(["HS256"]);
    assert_eq!(
        reason(bad_alg),
        (
            "credential_signing_alg_values_supported[0]".into(),
            "`HS256` is not an asymmetric JWS algorithm EDK signs with".into()
        )
    );

    let mut bad_method = sd_jwt_config();
    bad_method["cryptographic_binding_methods_supported"] = json!(["did:"]);
    assert_eq!(
        reason(bad_method).1,
        "`did:` is not jwk, cose_key or did:<method>"
    );

    let mut bad_scope = sd_jwt_config();
    bad_scope["scope"] = json!("two scopes");
    assert_eq!(reason(bad_scope).0, "scope");

    let mut unknown_format = sd_jwt_config();
    unknown_format["format"] = json!("ldp_vc");
    assert_eq!(reason(unknown_format).0, "configuration");
}

#[test]
fn contradictory_claims_descriptions_are_refused() {
    let with_claims = |claims: Value| {
        let mut config = sd_jwt_config();
        config["credential_metadata"]["claims"] = claims;
        reason(config)
    };
    assert_eq!(
        with_claims(json!([{ "path": ["a"] }, { "path": ["a"] }])),
        (
            "credential_metadata.claims[1].path".into(),
            "describes the same claim twice".into()
        )
    );
    assert_eq!(
        with_claims(json!([{ "path": ["a", "b"] }, { "path": ["a", 0] }])).1,
        "treats a claim as an array where another entry treats it as an object"
    );
    assert_eq!(
        with_claims(json!([{ "path": ["a", null] }, { "path": ["a", 1] }])).1,
        "an array is selected both by index and by null"
    );
    assert_eq!(
        with_claims(json!([{ "path": [] }])).1,
        "must have between 1 and 16 segments"
    );
    assert_eq!(
        with_claims(json!([{ "path": [0] }])).1,
        "must start with a claim name"
    );
    assert_eq!(
        with_claims(json!([{ "path": ["a", -1] }])).0,
        "configuration"
    );
}

#[test]
fn issuance_settings_are_checked() {
    let settings: IssuanceSettings = serde_json::from_value(json!({
        "signing_key": "credential-signing",
        "key_identification": { "kind": "did", "kid": "did:web:issuer.example.com#key-1" },
        "lifetime_secs": 86400,
        "selectively_disclosable": ["given_name", "address.street_address"],
    }))
    .unwrap();
    settings.validate().unwrap();
    let bad: IssuanceSettings = serde_json::from_value(json!({
        "key_identification": { "kind": "did", "kid": "did:web:issuer.example.com" },
    }))
    .unwrap();
    assert_eq!(
        bad.validate().unwrap_err(),
        ConfigError::Invalid {
            field: "key_identification.kid".into(),
            reason: "must be a DID URL with a fragment naming the verification method".into(),
        }
    );
    let bad: IssuanceSettings =
        serde_json::from_value(json!({ "signing_key": "Signing Key" })).unwrap();
    assert_eq!(
        bad.validate().unwrap_err(),
        ConfigError::Invalid {
            field: "signing_key".into(),
            reason: "must be 1 to 64 lowercase letters, digits or hyphens".into(),
        }
    );
}

fn metadata() -> IssuerMetadata {
    IssuerMetadata {
        credential_issuer: "https://issuer.example.com/acme".into(),
        authorization_servers: vec!["https://issuer.example.com/acme".into()],
        credential_endpoint: "https://issuer.example.com/acme/credential".into(),
        nonce_endpoint: Some("https://issuer.example.com/acme/nonce".into()),
        deferred_credential_endpoint: None,
        notification_endpoint: None,
        credential_request_encryption: None,
        credential_response_encryption: None,
        batch_credential_issuance: Some(BatchIssuance { batch_size: 10 }),
        display: vec![],
        credential_configurations_supported: BTreeMap::from([(
            "identity".to_owned(),
            CredentialConfiguration::from_json(sd_jwt_config()).unwrap(),
        )]),
    }
}

#[test]
fn issuer_metadata_validates_and_serializes_the_spec_members() {
    let metadata = metadata();
    metadata.validate().unwrap();
    let json = metadata.to_json();
    assert_eq!(json["credential_issuer"], "https://issuer.example.com/acme");
    assert_eq!(
        json["batch_credential_issuance"],
        json!({ "batch_size": 10 })
    );
    assert_eq!(
        json["credential_configurations_supported"]["identity"]["format"],
        "dc+sd-jwt"
    );
    assert!(json.get("deferred_credential_endpoint").is_none());

    let mut small_batch = metadata.clone();
    small_batch.batch_credential_issuance = Some(BatchIssuance { batch_size: 1 });
    assert_eq!(
        small_batch.validate().unwrap_err(),
        ConfigError::Invalid {
            field: "batch_credential_issuance.batch_size".into(),
            reason: "must be at least 2".into()
        }
    );
    let mut plain_http = metadata.clone();
    plain_http.credential_endpoint = "http://issuer.example.com/credential".into();
    assert_eq!(
        plain_http.validate().unwrap_err(),
        ConfigError::Invalid {
            field: "credential_endpoint".into(),
            reason: "must be an https URL".into()
        }
    );
    let mut with_query = metadata;
    with_query.credential_issuer = "https://issuer.example.com/?tenant=acme".into();
    assert_eq!(
        with_query.validate().unwrap_err(),
        ConfigError::Invalid {
            field: "credential_issuer".into(),
            reason: "must not have a query or fragment".into()
        }
    );
}

#[test]
fn the_well_known_url_inserts_the_suffix_before_the_path() {
    assert_eq!(
        well_known_url("https://issuer.example.com/tenant").unwrap(),
        "https://issuer.example.com/.well-known/openid-credential-issuer/tenant"
    );
    assert_eq!(
        well_known_url("https://issuer.example.com").unwrap(),
        "https://issuer.example.com/.well-known/openid-credential-issuer"
    );
    assert_eq!(
        well_known_url("https://issuer.example.com:8443/a/b/").unwrap(),
        "https://issuer.example.com:8443/.well-known/openid-credential-issuer/a/b"
    );
    assert!(well_known_url("http://issuer.example.com").is_err());
}

#[tokio::test]
async fn signed_metadata_carries_sub_iat_and_the_metadata() {
    use edk_core::Limits;
    use edk_core::jose::{Algorithm, Jws, SigningKey, VerifyPolicy};
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwt = metadata().sign(&key, None, 1_800_000_000).await.unwrap();
    let verified = Jws::parse(&jwt, &Limits::DEFAULT)
        .unwrap()
        .verify(
            &edk_core::jose::VerifyingKey::from_jwk(&key.public_jwk()).unwrap(),
            &VerifyPolicy::default().with_typ("openidvci-issuer-metadata+jwt"),
        )
        .unwrap();
    let claims = verified.claims().unwrap();
    assert_eq!(claims["sub"], "https://issuer.example.com/acme");
    assert_eq!(claims["iat"], 1_800_000_000);
    assert_eq!(
        claims["credential_endpoint"],
        "https://issuer.example.com/acme/credential"
    );
}

fn mdoc_config() -> Value {
    json!({
        "format": "mso_mdoc",
        "doctype": "org.iso.18013.5.1.mDL",
        "scope": "mdl",
        "cryptographic_binding_methods_supported": ["cose_key"],
        "credential_signing_alg_values_supported": [-7, -9],
        "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
        "credential_metadata": {
            "claims": [
                { "path": ["org.iso.18013.5.1", "family_name"], "mandatory": true },
                { "path": ["org.iso.18013.5.1", "driving_privileges", null, "vehicle_category_code"] }
            ]
        }
    })
}

#[test]
fn mdoc_configurations_take_cose_algorithms_and_name_space_paths() {
    let config = CredentialConfiguration::from_json(mdoc_config()).unwrap();
    assert_eq!(config.profile.format(), "mso_mdoc");
    assert_eq!(config.profile.doctype(), Some("org.iso.18013.5.1.mDL"));
    assert_eq!(config.profile.vct(), None);
    let written = serde_json::to_value(&config).unwrap();
    assert_eq!(
        written["credential_signing_alg_values_supported"],
        json!([-7, -9])
    );
    assert_eq!(written["doctype"], "org.iso.18013.5.1.mDL");

    let with = |member: &str, value: Value| {
        let mut config = mdoc_config();
        config[member] = value;
        config
    };
    assert_eq!(reason(with("doctype", json!(" "))).0, "doctype");
    assert_eq!(
        reason(with(
            "cryptographic_binding_methods_supported",
            json!(["jwk"])
        ))
        .0,
        "cryptographic_binding_methods_supported"
    );
    assert_eq!(
        reason(with(
            "credential_signing_alg_values_supported",
            json!([-257])
        ))
        .0,
        "credential_signing_alg_values_supported[0]"
    );
    assert_eq!(
        reason(with(
            "credential_signing_alg_values_supported",
            json!([-7, "RS256"])
        ))
        .0,
        "credential_signing_alg_values_supported[1]"
    );
    let mut one_segment = mdoc_config();
    one_segment["credential_metadata"]["claims"] = json!([{ "path": ["family_name"] }]);
    assert_eq!(reason(one_segment).0, "credential_metadata.claims[0].path");
    // COSE identifiers belong to mdocs only.
    let mut cose_on_sd_jwt = sd_jwt_config();
    cose_on_sd_jwt["credential_signing_alg_values_supported"] = json!([-7]);
    assert_eq!(
        reason(cose_on_sd_jwt).0,
        "credential_signing_alg_values_supported[0]"
    );
}
