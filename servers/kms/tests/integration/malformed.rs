use serde_json::json;

use crate::support::{Backend, Harness, expect_json, expect_problem};

async fn no_keys(h: &Harness, token: &str) {
    let listed = expect_json(h.get("/keys", token).await, 200).await;
    assert_eq!(listed["keys"], json!([]), "nothing changed");
}

#[tokio::test]
async fn malformed_requests_are_4xx_problems_and_change_nothing() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let raw = |body: &'static str, content_type: &'static str| {
        h.client
            .post(h.url("/keys"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (raw("{\"alias\": ", "application/json"), 400),
        (raw("not json at all", "application/json"), 400),
        (
            raw(
                r#"{"alias":"issuer.x","usage":"sign","algorithm":"ES256"}"#,
                "text/plain",
            ),
            415,
        ),
        (
            raw(
                r#"{"alias":"issuer.x","usage":"sign","algorithm":"ES256","extra":1}"#,
                "application/json",
            ),
            400,
        ),
        (
            raw(
                r#"{"alias":"issuer.x","usage":"sideways","algorithm":"ES256"}"#,
                "application/json",
            ),
            400,
        ),
        (
            raw(
                r#"{"alias":"Not An Alias","usage":"sign","algorithm":"ES256"}"#,
                "application/json",
            ),
            400,
        ),
        (
            raw(
                r#"{"alias":"issuer.x","usage":"sign","algorithm":"none"}"#,
                "application/json",
            ),
            400,
        ),
        (raw("[]", "application/json"), 400),
    ];
    for (request, status) in cases {
        expect_problem(request.send().await.unwrap(), status).await;
    }
    let oversized = format!(
        r#"{{"alias":"issuer.x","usage":"sign","algorithm":"ES256","provider":"{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let response = h
        .client
        .post(h.url("/keys"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    expect_problem(response, 413).await;
    no_keys(&h, &token).await;
    h.stop().await;
}

#[tokio::test]
async fn invalid_base64_and_jwks_name_the_field() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        201,
    )
    .await;
    let body = expect_problem(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "issuer.credential-signing", "message": "not base64!" }),
        )
        .await,
        400,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("`message`"),
        "{body}"
    );
    let body = expect_problem(
        h.post(
            "/keys/register",
            &token,
            &json!({ "alias": "verifier.partner", "public_jwk": "not a jwk" }),
        )
        .await,
        400,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("`public_jwk`"),
        "{body}"
    );
    expect_problem(
        h.post(
            "/keys/register",
            &token,
            &json!({ "alias": "verifier.partner", "public_jwk": { "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" } }),
        )
        .await,
        400,
    )
    .await;
    expect_problem(
        h.post(
            "/encryption/decrypt",
            &token,
            &json!({ "key": "issuer.credential-signing", "jwe": "a.b.c.d.e" }),
        )
        .await,
        400,
    )
    .await;
    expect_problem(
        h.post("/signatures/jws/verify", &token, &json!({ "jws": "x" }))
            .await,
        400,
    )
    .await;
    let listed = expect_json(h.get("/keys", &token).await, 200).await;
    assert_eq!(
        listed["keys"].as_array().unwrap().len(),
        1,
        "nothing changed"
    );
    h.stop().await;
}

#[tokio::test]
async fn writing_needs_the_write_scope_and_using_the_use_scope() {
    let h = Harness::start(Backend::Sqlite).await;
    let reader = h.token_for(h.tenant_a, "kms:read").await;
    expect_problem(
        h.post(
            "/keys",
            &reader,
            &json!({ "alias": "issuer.x", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        403,
    )
    .await;
    expect_problem(
        h.post(
            "/signatures/raw/create",
            &reader,
            &json!({ "key": "issuer.x", "message": "aGk" }),
        )
        .await,
        403,
    )
    .await;
    no_keys(&h, &reader).await;
    h.stop().await;
}
