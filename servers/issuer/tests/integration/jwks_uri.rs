//! With `issuer.access_token_keys: jwks_uri` the credential endpoint checks access tokens
//! with the JWKS the tenant's AS publishes at its `jwks_uri`, fetched over HTTP from `edk-as`:
//! a token of the tenant's AS is accepted, another tenant's is `invalid_token`.

use edk_core::jose::{Algorithm, SigningKey};
use edk_issuer_server::TokenKeys;
use edk_tenancy::EndpointScheme;
use serde_json::{Value, json};

use crate::support::{Deployment, header, http, key_proof, nonce, redeem};

async fn tokens_are_checked_with_the_published_jwks(deployment: Deployment) {
    let acme = deployment.tenant_with("acme", EndpointScheme::Http).await;
    let other = deployment.tenant_with("other", EndpointScheme::Http).await;
    deployment.configure(&acme).await;
    let offer = deployment.offer(&acme, false).await;
    let token: Value = redeem(&acme, &offer, None).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let send = |base: String, issuer: String, c_nonce: String| {
        http()
            .post(format!("{base}/credential"))
            .bearer_auth(token)
            .json(&json!({
                "credential_identifier": identifier,
                "proofs": { "jwt": [key_proof(&holder, &issuer, Some(&c_nonce))] },
            }))
            .send()
    };
    let response = send(
        acme.issuer_base.clone(),
        acme.credential_issuer.clone(),
        nonce(&acme).await,
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let response = send(
        other.issuer_base.clone(),
        other.credential_issuer.clone(),
        nonce(&other).await,
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_token", "error_description": "the access token is invalid"})
    );
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let deployment = Deployment::sqlite_with(TokenKeys::JwksUri(http())).await;
    tokens_are_checked_with_the_published_jwks(deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let deployment = Deployment::postgres_with(TokenKeys::JwksUri(http())).await;
    tokens_are_checked_with_the_published_jwks(deployment).await;
}
