//! Credential offers: the specification's example parses, URIs round-trip by value and by
//! reference, and malformed offers are refused.

use edk_oid4vci::offer::{
    InputMode, OfferReference, PreAuthorizedCodeGrant, TxCode, parse_offer_uri, uri_by_reference,
};
use edk_oid4vci::{ConfigError, CredentialOffer};
use serde_json::json;

#[test]
fn the_specification_example_parses() {
    let offer = CredentialOffer::from_json(json!({
        "credential_issuer": "https://credential-issuer.example.com",
        "credential_configuration_ids": ["UniversityDegreeCredential", "org.iso.18013.5.1.mDL"],
        "grants": { "urn:ietf:params:oauth:grant-type:pre-authorized_code": {
            "pre-authorized_code": "oaKazRN8I0IbtZ0C7JuMn5",
            "tx_code": { "length": 4, "input_mode": "numeric",
                "description": "Please provide the one-time code that was sent via e-mail" } } }
    }))
    .unwrap();
    let grant = offer.grants.pre_authorized_code.as_ref().unwrap();
    assert_eq!(grant.pre_authorized_code, "oaKazRN8I0IbtZ0C7JuMn5");
    let tx_code = grant.tx_code.as_ref().unwrap();
    assert_eq!(tx_code.input_mode, Some(InputMode::Numeric));
    assert_eq!(tx_code.length, Some(4));
    assert!(offer.grants.authorization_code.is_none());
}

#[test]
fn an_offer_by_value_round_trips_through_its_uri() {
    let offer = CredentialOffer {
        credential_issuer: "https://issuer.example.com/acme".into(),
        credential_configuration_ids: vec!["identity".into()],
        grants: edk_oid4vci::offer::Grants {
            authorization_code: None,
            pre_authorized_code: Some(PreAuthorizedCodeGrant {
                pre_authorized_code: "code with spaces&=?".into(),
                tx_code: Some(TxCode::default()),
                authorization_server: None,
            }),
        },
    };
    let uri = offer.to_uri();
    assert!(uri.starts_with("openid-credential-offer://?credential_offer=%7B%22credential_issuer"));
    assert!(!uri.contains(' '));
    assert_eq!(parse_offer_uri(&uri).unwrap(), OfferReference::Value(offer));
}

#[test]
fn an_offer_by_reference_round_trips_and_must_be_https() {
    let uri = uri_by_reference("https://issuer.example.com/acme/offers/abc?x=1");
    assert_eq!(
        uri,
        "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fissuer.example.com%2Facme%2Foffers%2Fabc%3Fx%3D1"
    );
    assert_eq!(
        parse_offer_uri(&uri).unwrap(),
        OfferReference::Uri("https://issuer.example.com/acme/offers/abc?x=1".into())
    );
    assert_eq!(
        parse_offer_uri(
            "openid-credential-offer://?credential_offer_uri=http%3A%2F%2Fevil.example%2Fo"
        )
        .unwrap_err(),
        ConfigError::Invalid {
            field: "credential_offer_uri".into(),
            reason: "must be an https URL".into()
        }
    );
    assert_eq!(
        parse_offer_uri("openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fa.example&credential_offer=%7B%7D")
            .unwrap_err(),
        ConfigError::Invalid {
            field: "offer".into(),
            reason: "must carry exactly one of credential_offer and credential_offer_uri".into()
        }
    );
}

#[test]
fn malformed_offers_are_refused() {
    let refused = |value| match CredentialOffer::from_json(value).unwrap_err() {
        ConfigError::Invalid { field, reason } => (field, reason),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        refused(
            json!({ "credential_issuer": "https://i.example", "credential_configuration_ids": [] })
        ),
        (
            "credential_configuration_ids".into(),
            "must name at least one configuration".into()
        )
    );
    assert_eq!(
        refused(json!({ "credential_issuer": "https://i.example",
            "credential_configuration_ids": ["a", "a"] })),
        (
            "credential_configuration_ids".into(),
            "`a` is listed twice".into()
        )
    );
    assert_eq!(
        refused(json!({ "credential_issuer": "https://i.example",
            "credential_configuration_ids": ["a"],
            "grants": { "urn:ietf:params:oauth:grant-type:pre-authorized_code": {
                "pre-authorized_code": "c", "tx_code": { "description": "x".repeat(301) } } } })),
        (
            "tx_code.description".into(),
            "must be at most 300 characters".into()
        )
    );
    assert_eq!(
        refused(
            json!({ "credential_issuer": "ftp://i.example", "credential_configuration_ids": ["a"] })
        ),
        ("credential_issuer".into(), "must be an https URL".into())
    );
}
