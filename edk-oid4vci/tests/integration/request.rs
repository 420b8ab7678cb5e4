//! Credential requests: the 1.0 forms, the earlier drafts' forms where allowed, and the
//! specification's error code for each malformed request.

use edk_oid4vci::request::RequestOptions;
use edk_oid4vci::{CredentialErrorCode, CredentialRequest, Proofs, RequestedCredential};
use serde_json::{Value, json};

fn parse(body: &Value) -> Result<CredentialRequest, (CredentialErrorCode, String)> {
    CredentialRequest::parse(body, &RequestOptions::default().with_batch_size(3))
        .map_err(|err| (err.code, err.description))
}

#[test]
fn the_final_forms_parse() {
    let request = parse(&json!({
        "credential_identifier": "CivilEngineeringDegree-2023",
        "proofs": { "jwt": ["a.b.c", "d.e.f"] }
    }))
    .unwrap();
    assert_eq!(
        request.credential,
        RequestedCredential::Identifier("CivilEngineeringDegree-2023".into())
    );
    assert_eq!(
        request.proofs,
        Some(Proofs::Jwt(vec!["a.b.c".into(), "d.e.f".into()]))
    );
    let request = parse(&json!({ "credential_configuration_id": "identity" })).unwrap();
    assert_eq!(
        request.credential,
        RequestedCredential::Configuration("identity".into())
    );
    assert!(request.proofs.is_none());
    let request = parse(&json!({
        "credential_configuration_id": "identity",
        "proofs": { "attestation": ["k.a.t"] },
        "credential_response_encryption": {
            "jwk": { "kty": "EC", "crv": "P-256", "alg": "ECDH-ES",
                "x": "nUWAoAv3XZith8E7i19OdaxOLYFOwM-Z2EuM02TirT4",
                "y": "HskHU8BjUi1U9Xqi7Swmj8gwAK_0xkcDjEW_71SosEY" },
            "enc": "A128GCM"
        }
    }))
    .unwrap();
    assert_eq!(request.proofs, Some(Proofs::Attestation("k.a.t".into())));
    assert_eq!(request.response_encryption.unwrap().enc, "A128GCM");
}

#[test]
fn earlier_drafts_parse_unless_strict() {
    let legacy = json!({
        "format": "vc+sd-jwt",
        "vct": "https://credentials.example.com/identity",
        "proof": { "proof_type": "jwt", "jwt": "a.b.c" }
    });
    let request = parse(&legacy).unwrap();
    assert_eq!(
        request.credential,
        RequestedCredential::Legacy {
            format: "vc+sd-jwt".into(),
            vct: Some("https://credentials.example.com/identity".into()),
            types: None,
            doctype: None,
        }
    );
    assert_eq!(request.proofs, Some(Proofs::Jwt(vec!["a.b.c".into()])));
    let strict =
        CredentialRequest::parse(&legacy, &RequestOptions::default().strict()).unwrap_err();
    assert_eq!(strict.code, CredentialErrorCode::InvalidCredentialRequest);
    assert_eq!(
        strict.description,
        "one of credential_identifier and credential_configuration_id is required"
    );
    let singular = json!({ "credential_configuration_id": "x",
        "proof": { "proof_type": "jwt", "jwt": "a.b.c" } });
    let strict =
        CredentialRequest::parse(&singular, &RequestOptions::default().strict()).unwrap_err();
    assert_eq!(strict.code, CredentialErrorCode::InvalidProof);
    assert_eq!(
        strict.description,
        "the singular proof parameter is not accepted; send proofs"
    );
}

#[test]
fn malformed_requests_get_their_error_codes() {
    use CredentialErrorCode::{
        InvalidCredentialRequest, InvalidEncryptionParameters, InvalidProof,
    };
    let cases = [
        (
            json!([]),
            InvalidCredentialRequest,
            "the request body must be a JSON object",
        ),
        (
            json!({}),
            InvalidCredentialRequest,
            "one of credential_identifier and credential_configuration_id is required",
        ),
        (
            json!({ "credential_identifier": "a", "credential_configuration_id": "b" }),
            InvalidCredentialRequest,
            "credential_identifier and credential_configuration_id are mutually exclusive",
        ),
        (
            json!({ "credential_identifier": 7 }),
            InvalidCredentialRequest,
            "credential_identifier must be a non-empty string of at most 256 characters",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "jwt": [] } }),
            InvalidProof,
            "proofs.jwt is empty",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "jwt": ["a", "b", "c", "d"] } }),
            InvalidProof,
            "at most 3 proofs may be sent in one request",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "jwt": ["a"], "attestation": ["b"] } }),
            InvalidProof,
            "proofs must have exactly one proof type",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "di_vp": [{}] } }),
            InvalidProof,
            "proofs.di_vp must hold strings",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "cwt": ["x"] } }),
            InvalidProof,
            "proof type cwt is not supported",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "attestation": ["x", "y"] } }),
            InvalidProof,
            "proofs.attestation must hold exactly one key attestation",
        ),
        (
            json!({ "credential_identifier": "a", "proofs": { "jwt": ["x"] },
            "proof": { "proof_type": "jwt", "jwt": "x" } }),
            InvalidProof,
            "proof and proofs are mutually exclusive",
        ),
        (
            json!({ "credential_identifier": "a", "credential_response_encryption": { "enc": "A128GCM" } }),
            InvalidEncryptionParameters,
            "credential_response_encryption.jwk is required",
        ),
        (
            json!({ "credential_identifier": "a", "credential_response_encryption": {
            "jwk": { "kty": "EC", "crv": "P-256", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
                "x": "nUWAoAv3XZith8E7i19OdaxOLYFOwM-Z2EuM02TirT4",
                "y": "HskHU8BjUi1U9Xqi7Swmj8gwAK_0xkcDjEW_71SosEY" }, "enc": "A128GCM" } }),
            InvalidEncryptionParameters,
            "credential_response_encryption.jwk must be a public key",
        ),
    ];
    for (body, code, description) in cases {
        assert_eq!(parse(&body).err(), Some((code, description.to_owned())));
    }
}
