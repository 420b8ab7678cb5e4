//! Access tokens checked by a third-party JWT library: npm `jose` (pinned in interop/node)
//! fetches the tenant's `/jwks.json` over HTTP and verifies an RFC 9068 access token the
//! running server issued, as a resource server that knows nothing of EDK would.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use edk_core::{Clock as _, SystemClock};
use edk_oauth::NewClient;
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_tenancy::{ServiceType, TenantDirectory as _};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{Deployment, http, workspace_root};

const RESOURCE: &str = "https://api.example/orders";

/// Runs `interop/node/at_jwt.mjs` with `request` and returns its answer.
async fn jose_verify(request: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let dir = workspace_root().join("interop/node");
        assert!(
            dir.join("node_modules/jose").exists(),
            "{}/node_modules is missing: run scripts/test --setup-only",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("at_jwt.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "at_jwt.mjs failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// `token` with the first byte of its signature flipped.
fn flip_signature_byte(token: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = b64.decode(signature).unwrap();
    signature[0] ^= 0x01;
    format!("{signing_input}.{}", b64.encode(signature))
}

async fn jose_verifies_access_tokens_against_the_served_jwks(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    let replica = deployment.first();
    let context = replica
        .tenancy
        .context_for_service(tenant.id, ServiceType::As)
        .await
        .unwrap();
    let mut metadata = ClientMetadata::new(
        ClientAuthMethod::ClientSecretBasic,
        vec![GrantType::ClientCredentials],
    );
    metadata.scopes = vec!["orders:read".to_owned()];
    metadata.resources = vec![RESOURCE.to_owned()];
    let (client, secret) = replica
        .server
        .create_client(&context, NewClient::new(metadata))
        .await
        .unwrap();
    let client_id = client.client_id.as_str().to_owned();
    let secret = secret.unwrap().expose_secret().to_owned();

    let response = http()
        .post(format!("{}/token", tenant.base))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
            ("resource", RESOURCE),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // The JWKS the metadata advertises, reached over this test server's plain HTTP.
    let metadata: Value = http()
        .get(format!(
            "http://{}/.well-known/oauth-authorization-server/acme",
            tenant.host
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["jwks_uri"],
        format!("{}/jwks.json", tenant.issuer).as_str()
    );
    let jwks_uri = format!("{}/jwks.json", tenant.base);
    let request = |token: &str, audience: &str| {
        json!({
            "token": token, "jwks_uri": jwks_uri, "issuer": tenant.issuer, "audience": audience,
        })
    };

    let verified = jose_verify(request(&token, RESOURCE)).await;
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["header"]["typ"], "at+jwt");
    let payload = &verified["payload"];
    assert_eq!(payload["iss"], tenant.issuer.as_str());
    assert_eq!(payload["aud"], RESOURCE);
    assert_eq!(payload["client_id"], client_id.as_str());
    assert_eq!(payload["sub"], client_id.as_str());
    assert_eq!(payload["scope"], "orders:read");
    let exp = payload["exp"].as_i64().unwrap();
    let now = SystemClock.unix_seconds();
    assert!(exp > now && exp <= now + 3600, "exp {exp} at {now}");

    // A flipped signature byte, another audience, a time after `exp`: refused by jose.
    let flipped = jose_verify(request(&flip_signature_byte(&token), RESOURCE)).await;
    assert_eq!(
        flipped,
        json!({ "verified": false, "code": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" })
    );
    let elsewhere = jose_verify(request(&token, "https://api.example/other")).await;
    assert_eq!(
        elsewhere,
        json!({ "verified": false, "code": "ERR_JWT_CLAIM_VALIDATION_FAILED", "claim": "aud" })
    );
    let mut late = request(&token, RESOURCE);
    late["current_date"] = json!(exp + 1);
    let expired = jose_verify(late).await;
    assert_eq!(
        expired,
        json!({ "verified": false, "code": "ERR_JWT_EXPIRED", "claim": "exp" })
    );
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose_verifies_access_tokens_against_the_served_jwks_on_sqlite() {
    jose_verifies_access_tokens_against_the_served_jwks(Deployment::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose_verifies_access_tokens_against_the_served_jwks_on_postgres() {
    jose_verifies_access_tokens_against_the_served_jwks(Deployment::postgres(1).await).await;
}
