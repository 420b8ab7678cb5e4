//! Tenant administrators as clients of the operator authorization server: their
//! `client_credentials` tokens name their tenant and carry tenant scopes only; they manage
//! that tenant here, nothing else, and are admin tokens for that tenant on any EDK server
//! trusting the operator authorization server through its JWKS.

use std::sync::Arc;

use edk_core::SystemClock;
use edk_server::{AdminAuth, AuthConfig, TrustedIssuer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, Platform, read, wallet_attestation};

const TENANTS: &str = "/api/platform/v1/tenants";

/// The token response of a client-credentials request of `client` with `params`.
async fn token(platform: &Platform, client: &Value, params: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(params);
    let response = platform
        .client
        .post(client["token_endpoint"].as_str().unwrap())
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    read(response).await
}

fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn operator_as_issues_tenant_admin_tokens(backend: Backend) {
    let platform = Platform::start(backend).await;
    let (_, ops) = platform.first_operator().await;
    let acme = platform.onboard(&ops, "acme").await;
    let globex = platform.onboard(&ops, "globex").await;
    let admins = format!("{TENANTS}/{acme}/admins");

    // Only tenant scopes can be registered, only by an operator, only for a tenant.
    let (status, problem) = platform
        .call(
            Method::POST,
            &admins,
            Some(&ops),
            Some(json!({"scopes": ["tenant:config:read", "platform:tenants:read"]})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("`scopes`"));
    let realm = platform.started.realm();
    let (status, _) = platform
        .call(
            Method::POST,
            &format!("{TENANTS}/{realm}/admins"),
            Some(&ops),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status, 404,
        "the operator realm has no tenant administrators"
    );
    let (status, client) = platform
        .call(
            Method::POST,
            &admins,
            Some(&ops),
            Some(
                json!({"client_id": "acme-admin", "client_name": "Acme admin",
                "scopes": ["tenant:config:read", "tenant:config:write", "oauth2:read"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(client["tenant"], acme.as_str());
    assert_eq!(client["issuer"], platform.url("/operators").as_str());
    let (status, _) = platform
        .call(
            Method::POST,
            &admins,
            Some(&ops),
            Some(json!({"client_id": "acme-admin"})),
        )
        .await;
    assert_eq!(status, 409, "the client id is taken");

    // Its tokens name its tenant; a platform scope is refused, and nothing in the request
    // moves the token to another tenant.
    let (status, refused) = token(
        &platform,
        &client,
        &[("scope", "tenant:config:read platform:tenants:read")],
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_scope");
    let (status, issued) = token(
        &platform,
        &client,
        &[
            ("scope", "tenant:config:read tenant:config:write"),
            ("tenant", &globex),
        ],
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    let admin = issued["access_token"].as_str().unwrap().to_owned();
    let claims = payload(&admin);
    assert_eq!(claims["tenant"], acme.as_str());
    assert_eq!(
        claims["aud"],
        json!([platform.url("/operators"), "edk-admin"])
    );

    // It manages its own tenant's bindings and configuration.
    let (status, own) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{acme}/bindings"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{own}");
    let (status, written) = platform
        .call(
            Method::PUT,
            &format!("{TENANTS}/{acme}/config/oauth.client_attestation"),
            Some(&admin),
            Some(wallet_attestation()),
        )
        .await;
    assert_eq!(status, 200, "{written}");

    // Not another tenant, and no platform route.
    for (method, path) in [
        (Method::GET, format!("{TENANTS}/{globex}/bindings")),
        (
            Method::PUT,
            format!("{TENANTS}/{globex}/config/oauth.client_attestation"),
        ),
    ] {
        let body = wallet_attestation();
        let (status, problem) = platform.call(method, &path, Some(&admin), Some(body)).await;
        assert_eq!(status, 403, "{path}: {problem}");
        assert_eq!(problem["detail"], "the token is for another tenant");
    }
    let new_tenant = json!({"slug": "initech", "display_name": "Initech", "bindings": []});
    let (status, problem) = platform
        .call(Method::POST, TENANTS, Some(&admin), Some(new_tenant))
        .await;
    assert_eq!(status, 403, "{problem}");
    for (method, path) in [
        (Method::GET, TENANTS.to_owned()),
        (Method::GET, format!("{TENANTS}/{acme}")),
        (Method::POST, format!("{TENANTS}/{acme}/suspend")),
        (Method::POST, format!("{TENANTS}/{acme}/resume")),
        (Method::DELETE, format!("{TENANTS}/{acme}")),
        (Method::POST, admins.clone()),
    ] {
        let (status, problem) = platform
            .call(method, &path, Some(&admin), Some(json!({})))
            .await;
        assert_eq!(status, 403, "{path}: {problem}");
    }

    // Another EDK server trusting the operator authorization server by its JWKS takes it as
    // an admin token for its tenant; an operator's token names no tenant there.
    let config = AuthConfig {
        issuers: vec![TrustedIssuer::with_jwks_uri(
            client["issuer"].as_str().unwrap(),
            client["jwks_uri"].as_str().unwrap(),
        )],
        ..AuthConfig::default()
    };
    let auth = AdminAuth::new(&config, Arc::new(SystemClock), &[], Some(&platform.client)).unwrap();
    let principal = auth.verify(&admin).await.unwrap();
    assert_eq!(principal.tenant.to_string(), acme);
    assert!(principal.scopes.contains("tenant:config:write"));
    assert!(auth.verify(&ops).await.is_err());
    platform.close().await;
}

#[tokio::test]
async fn operator_as_issues_tenant_admin_tokens_on_sqlite() {
    Box::pin(operator_as_issues_tenant_admin_tokens(Backend::Sqlite)).await;
}

#[tokio::test]
async fn operator_as_issues_tenant_admin_tokens_on_postgres() {
    Box::pin(operator_as_issues_tenant_admin_tokens(Backend::Postgres)).await;
}
