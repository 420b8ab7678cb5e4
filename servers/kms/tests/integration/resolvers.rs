use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ciborium::Value as Cbor;
use serde_json::{Value, json};

use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::{Algorithm, SigningKey};

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json, expect_problem};

async fn resolve(h: &Harness, token: &str, id: &str, input: Value) -> reqwest::Response {
    h.post(
        &format!("/resolvers/{id}/resolve"),
        token,
        &json!({ "input": input }),
    )
    .await
}

#[tokio::test]
async fn every_input_form_resolves_to_the_same_public_key() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let listed = expect_json(h.get("/resolvers", &token).await, 200).await;
    let ids: Vec<&str> = listed["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["jwk", "kid", "cose-key", "x5c", "did"]);

    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let public = key.public_jwk();
    let thumbprint = public.thumbprint();
    let x = public.to_public();
    let x_value = serde_json::to_value(&x).unwrap();
    let raw_x = b64url_decode(x_value["x"].as_str().unwrap()).unwrap();

    let by_jwk = expect_json(resolve(&h, &token, "jwk", x_value.clone()).await, 200).await;
    assert_eq!(by_jwk["kid"], thumbprint.as_str());

    let did_jwk = format!("did:jwk:{}#0", b64url_encode(x_value.to_string()));
    let by_did_jwk = expect_json(resolve(&h, &token, "did", json!(did_jwk)).await, 200).await;
    assert_eq!(by_did_jwk["kid"], thumbprint.as_str());

    let mut multicodec = vec![0xed, 0x01];
    multicodec.extend_from_slice(&raw_x);
    let did_key = format!("did:key:z{}", bs58::encode(&multicodec).into_string());
    let by_did_key = expect_json(resolve(&h, &token, "did", json!(did_key)).await, 200).await;
    assert_eq!(by_did_key["kid"], thumbprint.as_str());

    let cose = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer(1.into())),
        (Cbor::Integer((-1).into()), Cbor::Integer(6.into())),
        (Cbor::Integer((-2).into()), Cbor::Bytes(raw_x.clone())),
    ]);
    let mut cbor = Vec::new();
    ciborium::into_writer(&cose, &mut cbor).unwrap();
    let by_cose = expect_json(
        resolve(&h, &token, "cose-key", json!(b64url_encode(&cbor))).await,
        200,
    )
    .await;
    assert_eq!(by_cose["kid"], thumbprint.as_str());

    let cert_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["kms.test".to_owned()])
        .unwrap()
        .self_signed(&cert_key)
        .unwrap();
    let by_x5c = expect_json(
        resolve(&h, &token, "x5c", json!([STANDARD.encode(cert.der())])).await,
        200,
    )
    .await;
    assert_eq!(by_x5c["jwk"]["crv"], "P-256");

    let created = expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "issuer.token-signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        201,
    )
    .await;
    let kid = created["versions"][0]["kid"].as_str().unwrap();
    let by_kid = expect_json(resolve(&h, &token, "kid", json!(kid)).await, 200).await;
    assert_eq!(by_kid["kid"], kid);
    let by_alias = expect_json(
        resolve(&h, &token, "kid", json!("issuer.token-signing")).await,
        200,
    )
    .await;
    assert_eq!(by_alias["kid"], kid);

    // Tenant B does not see tenant A's kid.
    let token_b = h.token_for(h.tenant_b, ALL_SCOPES).await;
    expect_problem(resolve(&h, &token_b, "kid", json!(kid)).await, 404).await;
    h.stop().await;
}

#[tokio::test]
async fn bad_resolver_inputs_are_client_errors() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    expect_problem(h.get("/resolvers/nope", &token).await, 404).await;
    expect_problem(resolve(&h, &token, "nope", json!("x")).await, 404).await;
    expect_problem(
        resolve(&h, &token, "jwk", json!("not an object")).await,
        400,
    )
    .await;
    expect_problem(
        resolve(&h, &token, "jwk", json!({ "kty": "EC" })).await,
        400,
    )
    .await;
    expect_problem(resolve(&h, &token, "cose-key", json!("!!")).await, 400).await;
    expect_problem(resolve(&h, &token, "x5c", json!(["AAAA"])).await, 400).await;
    expect_problem(
        resolve(&h, &token, "did", json!("did:web:example.com")).await,
        422,
    )
    .await;
    expect_problem(resolve(&h, &token, "did", json!("did:key:zzz0")).await, 400).await;
    expect_problem(resolve(&h, &token, "kid", json!(42)).await, 400).await;
    let unknown_field = h
        .post(
            "/resolvers/jwk/resolve",
            &token,
            &json!({ "input": {}, "extra": 1 }),
        )
        .await;
    expect_problem(unknown_field, 400).await;
    h.stop().await;
}
