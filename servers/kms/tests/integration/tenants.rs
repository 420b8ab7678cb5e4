use edk_core::encoding::b64url_encode;
use serde_json::{Value, json};

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json, expect_problem};

/// Every request tenant A can make about tenant B's key answers 404 and changes nothing.
async fn other_tenants_keys_do_not_exist(backend: Backend) {
    let h = Harness::start(backend).await;
    let token_a = h.token().await;
    let token_b = h.token_for(h.tenant_b, ALL_SCOPES).await;
    let alias = "issuer.credential-signing";
    let created = expect_json(
        h.post(
            "/keys",
            &token_b,
            &json!({ "alias": alias, "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        201,
    )
    .await;
    let kid = created["versions"][0]["kid"].as_str().unwrap().to_owned();
    let decrypting = "verifier.request-decryption";
    let dec = expect_json(
        h.post(
            "/keys",
            &token_b,
            &json!({ "alias": decrypting, "usage": "decrypt", "algorithm": "ECDH-ES" }),
        )
        .await,
        201,
    )
    .await;
    let dec_kid = dec["versions"][0]["kid"].as_str().unwrap().to_owned();
    let signed = expect_json(
        h.post(
            "/signatures/raw/create",
            &token_b,
            &json!({ "key": alias, "message": "aGk" }),
        )
        .await,
        200,
    )
    .await;
    let jws = expect_json(
        h.post(
            "/signatures/jws/create",
            &token_b,
            &json!({ "key": alias, "payload": "e30" }),
        )
        .await,
        200,
    )
    .await;
    let jwe = expect_json(
        h.post(
            "/encryption/encrypt",
            &token_b,
            &json!({ "key": decrypting, "alg": "ECDH-ES", "enc": "A128GCM", "plaintext": "aGk" }),
        )
        .await,
        200,
    )
    .await;

    for path in [
        format!("/keys/{alias}"),
        format!("/keys/{kid}"),
        format!("/keys/{dec_kid}"),
        format!("/keys/{alias}/rotations"),
        format!("/keys/{alias}/jwks"),
        format!("/providers/software/keys/{alias}"),
        format!("/providers/software/keys/{kid}"),
    ] {
        expect_problem(h.get(&path, &token_a).await, 404).await;
    }
    for path in [
        format!("/keys/{alias}"),
        format!("/keys/{kid}"),
        format!("/providers/software/keys/{alias}"),
    ] {
        expect_problem(h.delete(&path, &token_a).await, 404).await;
    }
    let posts: Vec<(&str, Value)> = vec![
        ("/keys/issuer.credential-signing/rotate", json!({})),
        (
            "/signatures/raw/create",
            json!({ "key": alias, "message": "aGk" }),
        ),
        (
            "/signatures/raw/verify",
            json!({ "key": kid, "alg": "ES256", "message": "aGk", "signature": signed["signature"] }),
        ),
        (
            "/signatures/raw/verify",
            json!({ "key": alias, "alg": "ES256", "message": "aGk", "signature": signed["signature"] }),
        ),
        (
            "/signatures/jws/create",
            json!({ "key": alias, "payload": "e30" }),
        ),
        (
            "/encryption/encrypt",
            json!({ "key": dec_kid, "alg": "ECDH-ES", "enc": "A128GCM", "plaintext": "aGk" }),
        ),
        (
            "/encryption/decrypt",
            json!({ "key": decrypting, "jwe": jwe["jwe"] }),
        ),
        (
            "/encryption/wrap",
            json!({ "key": decrypting, "alg": "ECDH-ES", "enc": "A128GCM", "cek": b64url_encode([1_u8; 16]) }),
        ),
    ];
    for (path, body) in posts {
        expect_problem(h.post(path, &token_a, &body).await, 404).await;
    }
    // A JWS signed by tenant B finds no key among tenant A's.
    let refused = h
        .post(
            "/signatures/jws/verify",
            &token_a,
            &json!({ "jws": jws["jws"] }),
        )
        .await;
    let problem = expect_problem(refused, 400).await;
    assert_eq!(problem["type"], "https://edk.dev/problems/invalid-request");
    assert_eq!(problem["detail"], "no key found to verify the token");
    // Tenant A sees no keys, and tenant B's keys are intact.
    let listed = expect_json(h.get("/keys", &token_a).await, 200).await;
    assert_eq!(listed["keys"], json!([]));
    let still = expect_json(h.get(&format!("/keys/{alias}"), &token_b).await, 200).await;
    assert_eq!(still["versions"].as_array().unwrap().len(), 1);
    assert_eq!(still["versions"][0]["kid"], kid.as_str());
    h.stop().await;
}

#[tokio::test]
async fn other_tenants_keys_do_not_exist_on_postgres() {
    other_tenants_keys_do_not_exist(Backend::Postgres).await;
}

#[tokio::test]
async fn other_tenants_keys_do_not_exist_on_sqlite() {
    other_tenants_keys_do_not_exist(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_token_for_an_unknown_tenant_finds_nothing() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h
        .token_for(edk_core::TenantId::generate(), ALL_SCOPES)
        .await;
    expect_problem(h.get("/keys", &token).await, 404).await;
    h.stop().await;
}
