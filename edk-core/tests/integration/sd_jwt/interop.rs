//! Interop with PyPI `sd-jwt` 0.10.4 in both directions (compact serialization).
//!
//! Its quirks: the default `typ` is `example+sd-jwt` (set explicitly here), it checks no
//! time claims, it accepts unreferenced disclosures, and its JSON serialization puts
//! `disclosures` at the top level instead of the unprotected header (RFC 9901 §8), so only
//! the compact form is exchanged.

use edk_core::clock::{Clock as _, SystemClock};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{KeyBindingClaims, SdJwt, VerifyOptions};
use edk_core::sd_jwt_vc::VcVerifyOptions;
use serde_json::{Value, json};

use super::{NOW, holder_key, issue_sample, issuer_key, issuer_resolver, paths, vector};
use crate::support::run_python;

fn python_verify(sd_jwt: &str, kb: Option<(&str, &str)>) -> Value {
    let request = json!({
        "sd_jwt": sd_jwt,
        "issuer_jwk": issuer_key().public_jwk(),
        "aud": kb.map(|(aud, _)| aud),
        "nonce": kb.map(|(_, nonce)| nonce),
    });
    let out = run_python("sd_jwt_verify.py", &[], &request.to_string());
    serde_json::from_str::<Value>(&out).unwrap()["payload"].clone()
}

fn python_issue(request: &Value) -> Value {
    serde_json::from_str(&run_python("sd_jwt_issue.py", &[], &request.to_string())).unwrap()
}

fn private_jwk(name: &str) -> Value {
    serde_json::from_str(&vector(name)).unwrap()
}

#[tokio::test]
async fn python_verifies_our_sd_jwt() {
    let issued = issue_sample().await;
    let payload = python_verify(&issued.to_string(), None);
    let ours = issued
        .verify(&issuer_resolver(), &VerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert_eq!(&payload, &Value::Object(ours.claims().clone()));
    assert_eq!(payload["address"]["street_address"], "Heidestraße 17");
    assert_eq!(payload["nationalities"], json!(["DE", "FR", "US"]));
}

#[tokio::test]
async fn python_verifies_our_presentation_with_key_binding() {
    let kb = KeyBindingClaims::new("https://verifier.example", "n-0S6", NOW);
    let presented = issue_sample()
        .await
        .present(
            &paths(&["address.locality", "nationalities.0"]),
            Some((&kb, &holder_key())),
        )
        .await
        .unwrap();
    let payload = python_verify(
        &presented.to_string(),
        Some(("https://verifier.example", "n-0S6")),
    );
    assert_eq!(
        payload["address"],
        json!({"locality": "Köln", "country": "DE"})
    );
    assert_eq!(payload["nationalities"], json!(["DE", "FR"]));
    assert!(payload.get("given_name").is_none());
}

#[tokio::test]
async fn python_verifies_our_sd_jwt_vc() {
    let issued = edk_core::sd_jwt_vc::SdJwtVcBuilder::new("urn:example:vct")
        .issuer("https://issuer.example")
        .holder_key(&holder_key().public_jwk())
        .claim("given_name", "Erika")
        .selectively_disclose("given_name".parse().unwrap())
        .issue(&issuer_key(), &Default::default())
        .await
        .unwrap();
    let payload = python_verify(&issued.to_string(), None);
    assert_eq!(payload["vct"], "urn:example:vct");
    assert_eq!(payload["given_name"], "Erika");
}

fn python_request(present: Option<&Value>) -> Value {
    json!({
        "claims": {
            "iss": "https://issuer.example",
            "vct": "urn:example:vct",
            "given_name": "Erika",
            "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
            "nationalities": ["DE", "FR", {"code": "US", "since": 2001}],
        },
        "sd": [["given_name"], ["address"], ["address", "street_address"], ["nationalities", 0], ["nationalities", 2]],
        "issuer_jwk": private_jwk("issuer_key.jwk.json"),
        "holder_jwk": private_jwk("holder_key.jwk.json"),
        "typ": "dc+sd-jwt",
        "decoys": true,
        "present": present,
    })
}

#[tokio::test]
async fn we_verify_python_issuance_with_nested_and_array_disclosures() {
    let out = python_issue(&python_request(None));
    let issued = SdJwt::parse(out["issuance"].as_str().unwrap(), &Limits::DEFAULT).unwrap();
    assert_eq!(issued.disclosures().len(), 5);
    let verified = issued
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    let claims = verified.claims();
    assert_eq!(claims["given_name"], "Erika");
    assert_eq!(claims["address"]["street_address"], "Heidestraße 17");
    assert_eq!(
        claims["nationalities"],
        json!(["DE", "FR", {"code": "US", "since": 2001}])
    );
    // And we present what it issued.
    let presented = issued
        .select(&paths(&["address.street_address", "nationalities.2"]))
        .unwrap();
    assert_eq!(presented.disclosures().len(), 3);
}

#[tokio::test]
async fn we_verify_python_presentation_with_key_binding() {
    let present = json!({
        "disclose": {"address": {"street_address": true}, "nationalities": [null, null, true]},
        "aud": "https://verifier.example",
        "nonce": "n-0S6",
    });
    let out = python_issue(&python_request(Some(&present)));
    let presentation =
        SdJwt::parse(out["presentation"].as_str().unwrap(), &Limits::DEFAULT).unwrap();
    // The peer stamps `iat` from the wall clock.
    let now = SystemClock.unix_seconds();
    let verified = presentation
        .verify_vc(
            &issuer_resolver(),
            &VcVerifyOptions::default().with_key_binding("https://verifier.example", "n-0S6"),
            now,
        )
        .await
        .unwrap();
    let claims = verified.claims();
    assert_eq!(
        claims["address"],
        json!({"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"})
    );
    assert_eq!(
        claims["nationalities"],
        json!(["FR", {"code": "US", "since": 2001}])
    );
    assert!(claims.get("given_name").is_none());
}
