//! The wallet-facing protocol surface over HTTP: CORS with `DPoP-Nonce` exposed, cacheable
//! metadata and JWKS, `WWW-Authenticate` on every 401, the OpenID configuration in its
//! appended form, and wallets redeeming pre-authorized codes under a `client_id` of their own.

use base64::Engine as _;
use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{Clock as _, SystemClock};
use edk_oauth::AsConfig;
use serde_json::{Value, json};

use crate::support::{Deployment, Tenant, http};

const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

async fn register(deployment: &Deployment, tenant: &Tenant, body: Value) -> reqwest::Response {
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    http()
        .post(deployment.first().http.url("/api/oauth2/v1/clients"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn mint(deployment: &Deployment, tenant: &Tenant) -> String {
    let token = deployment.admin_token(tenant.id, "oauth2:write").await;
    let minted: Value = http()
        .post(
            deployment
                .first()
                .http
                .url("/api/oauth2/v1/pre-authorized-codes"),
        )
        .bearer_auth(token)
        .json(&json!({"subject": "holder"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minted["pre-authorized_code"].as_str().unwrap().to_owned()
}

async fn dpop_proof(key: &SigningKey, htu: &str) -> String {
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": htu,
        "iat": SystemClock.unix_seconds(),
    });
    let header = Header::new(Algorithm::Es256)
        .with_typ("dpop+jwt")
        .with_jwk(&key.public_jwk());
    jws::sign(header, claims.to_string().as_bytes(), key)
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_endpoints_allow_cors_and_expose_the_dpop_nonce() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let created: Value = register(
        &deployment,
        &tenant,
        json!({"token_endpoint_auth_method": "client_secret_post",
               "grant_types": ["client_credentials"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let token_url = format!("{}/token", tenant.base);

    // The preflight of a browser wallet's token request.
    let preflight = http()
        .request(reqwest::Method::OPTIONS, &token_url)
        .header("host", &tenant.host)
        .header("origin", "https://wallet.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "dpop, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    assert!(header(&preflight, "access-control-allow-headers").contains("DPoP"));

    // `use_dpop_nonce`: the nonce is in a header the wallet may read.
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let response = http()
        .post(&token_url)
        .header("host", &tenant.host)
        .header("origin", "https://wallet.example")
        .header(
            "dpop",
            dpop_proof(&key, &format!("{}/token", tenant.issuer)).await,
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", created["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    assert!(header(&response, "access-control-expose-headers").contains("DPoP-Nonce"));
    assert!(!header(&response, "dpop-nonce").is_empty());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");

    // The authorization endpoint is a navigation, not a CORS endpoint.
    let response = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/authorize", tenant.base),
        )
        .header("host", &tenant.host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Metadata and JWKS: cacheable, CORS-enabled.
    let port = tenant.host.rsplit_once(':').unwrap().1;
    for url in [
        format!("http://localhost:{port}/.well-known/oauth-authorization-server/acme"),
        format!("{}/jwks.json", tenant.base),
    ] {
        let response = http()
            .get(&url)
            .header("host", &tenant.host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=300");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
    }
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_401_carries_www_authenticate() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let created: Value = register(
        &deployment,
        &tenant,
        json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post",
               "grant_types": ["client_credentials"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(created["client"]["client_id"], "svc");
    let basic = base64::engine::general_purpose::STANDARD.encode("svc:wrong");
    for (form, authorization) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "wrong"),
            ],
            None,
        ),
        (
            vec![("grant_type", "client_credentials")],
            Some(format!("Basic {basic}")),
        ),
        (vec![("grant_type", "client_credentials")], None),
    ] {
        let mut request = http()
            .post(format!("{}/token", tenant.base))
            .header("host", &tenant.host)
            .form(&form);
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{form:?}");
        assert!(
            header(&response, "www-authenticate").starts_with("Basic"),
            "{form:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // Introspection without client authentication.
    let response = http()
        .post(format!("{}/introspect", tenant.base))
        .header("host", &tenant.host)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(header(&response, "www-authenticate").starts_with("Basic"));
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openid_configuration_is_served_in_the_appended_form_when_oidc_is_on() {
    let mut config = AsConfig::default();
    config.openid = true;
    let deployment = Deployment::sqlite_with(config).await;
    let tenant = deployment.tenant("acme").await;
    let port = tenant.host.rsplit_once(':').unwrap().1;
    for url in [
        format!("{}/.well-known/openid-configuration", tenant.base),
        format!("http://localhost:{port}/.well-known/openid-configuration/acme"),
    ] {
        let response = http()
            .get(&url)
            .header("host", &tenant.host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=300");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], tenant.issuer.as_str());
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
    }
    // Not below the issuer path, nor for another path.
    let response = http()
        .get(format!(
            "{}/token/.well-known/openid-configuration",
            tenant.base
        ))
        .header("host", &tenant.host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    deployment.close().await;

    // With OIDC off there is no OpenID configuration in either form.
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let response = http()
        .get(format!("{}/.well-known/openid-configuration", tenant.base))
        .header("host", &tenant.host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_naming_its_own_client_id_redeems_a_pre_authorized_code() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    register(
        &deployment,
        &tenant,
        json!({"client_id": "issuer-backend", "token_endpoint_auth_method": "client_secret_basic",
               "grant_types": [PRE_AUTHORIZED]}),
    )
    .await;
    // As npm @openid4vc/openid4vci does: its own client_id, no client authentication.
    let code = mint(&deployment, &tenant).await;
    let response = http()
        .post(format!("{}/token", tenant.base))
        .header("host", &tenant.host)
        .form(&[
            ("grant_type", PRE_AUTHORIZED),
            ("pre-authorized_code", code.as_str()),
            ("client_id", "wallet-6f1d"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["client_id"], edk_oauth::token::ANONYMOUS_CLIENT_ID);

    // A registered confidential client_id without its credentials is refused.
    let code = mint(&deployment, &tenant).await;
    let response = http()
        .post(format!("{}/token", tenant.base))
        .header("host", &tenant.host)
        .form(&[
            ("grant_type", PRE_AUTHORIZED),
            ("pre-authorized_code", code.as_str()),
            ("client_id", "issuer-backend"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_resources_are_registered_through_the_admin_api() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let response = register(
        &deployment,
        &tenant,
        json!({"token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["client_credentials"],
               "resources": ["https://api.example/orders"]}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["client"]["metadata"]["resources"],
        json!(["https://api.example/orders"])
    );
    let response = register(
        &deployment,
        &tenant,
        json!({"token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["client_credentials"],
               "resources": ["http://api.example/orders"]}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // The token endpoint enforces the list.
    let id = created["client"]["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    for (resource, status) in [
        ("https://api.example/orders", 200),
        ("https://api.example/payments", 400),
    ] {
        let response = http()
            .post(format!("{}/token", tenant.base))
            .header("host", &tenant.host)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("resource", resource)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{resource}");
        if status == 400 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_target");
        }
    }
    deployment.close().await;
}
