use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use edk_core::jose::{Algorithm, SigningKey};

use crate::support::{Harness, LIMITED_ISSUER, NOW, assert_problem, claims, sign, tenant};

async fn whoami(h: &Harness, token: &str) -> reqwest::Response {
    h.client
        .get(h.url("/api/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(response, 401, "unauthenticated").await;
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_its_tenant() {
    let h = Harness::start().await;
    let token = h.token(claims()).await;
    let response = whoami(&h, &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tenant"], tenant().to_string());
    assert_eq!(body["subject"], "alice");
}

#[tokio::test]
async fn missing_token_is_challenged() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/api/whoami")).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "unauthenticated").await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims["exp"] = (NOW - 3600).into();
    claims["iat"] = (NOW - 7200).into();
    assert_invalid_token(whoami(&h, &h.token(claims).await).await).await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims["aud"] = "someone-else".into();
    assert_invalid_token(whoami(&h, &h.token(claims).await).await).await;
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims["iss"] = "https://evil.test".into();
    assert_invalid_token(whoami(&h, &h.token(claims).await).await).await;
}

#[tokio::test]
async fn token_signed_by_another_key_is_refused() {
    let h = Harness::start().await;
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    assert_invalid_token(whoami(&h, &sign(&other, &claims()).await).await).await;
}

#[tokio::test]
async fn missing_scope_is_forbidden() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims["scope"] = "other".into();
    let response = whoami(&h, &h.token(claims).await).await;
    let body = assert_problem(response, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("test:read"));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let h = Harness::start().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let token = format!("{header}.{payload}.");
    assert_invalid_token(whoami(&h, &token).await).await;
}

#[tokio::test]
async fn missing_tenant_claim_is_refused() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("tenant");
    assert_invalid_token(whoami(&h, &h.token(claims).await).await).await;
}

#[tokio::test]
async fn malformed_tenant_claim_is_refused() {
    let h = Harness::start().await;
    let mut claims = claims();
    claims["tenant"] = "acme".into();
    assert_invalid_token(whoami(&h, &h.token(claims).await).await).await;
}

#[tokio::test]
async fn anonymous_prefixes_match_whole_segments() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = h.client.get(h.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// An issuer configured with a `tenants` list acts for those tenants only; an issuer without
/// one acts for every tenant.
#[tokio::test]
async fn an_issuer_limited_to_tenants_cannot_act_for_others() {
    let h = Harness::start().await;
    let other = "0190aaaa-0000-7000-8000-000000000001";
    let mut limited = claims();
    limited["iss"] = LIMITED_ISSUER.into();
    let own = whoami(&h, &sign(&h.limited_key, &limited).await).await;
    assert_eq!(own.status(), 200);
    let body: Value = own.json().await.unwrap();
    assert_eq!(body["tenant"], tenant().to_string());

    limited["tenant"] = other.into();
    let refused = whoami(&h, &sign(&h.limited_key, &limited).await).await;
    let problem = assert_problem(refused, 403, "forbidden").await;
    assert_eq!(
        problem["detail"],
        "the token's issuer may not act for this tenant"
    );

    let mut unlimited = claims();
    unlimited["tenant"] = other.into();
    let response = whoami(&h, &h.token(unlimited).await).await;
    assert_eq!(response.status(), 200);
}
