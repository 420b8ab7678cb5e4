//! End-user claims through the admin API and introspection over HTTP, and the upstream
//! OpenID Provider settings, whose client secret is stored sealed and never returned.

use edk_oauth::federation::UPSTREAM_OIDC;
use edk_tenancy::{ServiceType, TenantDirectory as _};
use serde_json::{Value, json};

use crate::support::{Deployment, http};

const RESOURCE: &str = "https://issuer.example/acme";

fn payload(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn minted_claims_reach_only_the_tenants_resource_server(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;
    let admin = deployment.first().http.url("/api/oauth2/v1");
    let write = deployment
        .admin_token(acme.id, "oauth2:read oauth2:write")
        .await;
    let claims = json!({ "given_name": "Erika", "birthdate": "1964-08-12" });

    // Malformed claims and resources are refused with nothing minted.
    for bad in [
        json!({ "subject": "holder", "claims": ["not", "an", "object"] }),
        json!({ "subject": "holder", "resource": "http://issuer.example/acme" }),
        json!({ "subject": "holder", "claims": { "blob": "x".repeat(17 * 1024) } }),
    ] {
        let refused = http()
            .post(format!("{admin}/pre-authorized-codes"))
            .bearer_auth(&write)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 400, "{bad}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
    }

    let minted: Value = http()
        .post(format!("{admin}/pre-authorized-codes"))
        .bearer_auth(&write)
        .json(&json!({ "subject": "holder", "claims": claims, "resource": RESOURCE }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http()
        .post(format!("{}/token", acme.base))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            ),
            (
                "pre-authorized_code",
                minted["pre-authorized_code"].as_str().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let access_token = token["access_token"].as_str().unwrap();
    assert!(token.get("claims").is_none());
    let at = payload(access_token);
    assert_eq!(at["aud"], RESOURCE);
    assert!(at.get("given_name").is_none() && at.get("claims").is_none());

    // The issuer of the tenant, in process: the claims; another tenant: nothing.
    let replica = deployment.first();
    let acme_context = replica
        .tenancy
        .context_for_service(acme.id, ServiceType::As)
        .await
        .unwrap();
    let globex_context = replica
        .tenancy
        .context_for_service(globex.id, ServiceType::As)
        .await
        .unwrap();
    assert_eq!(
        replica
            .server
            .grant_claims(&acme_context, access_token)
            .await
            .unwrap(),
        Some(claims.as_object().unwrap().clone())
    );
    assert_eq!(
        replica
            .server
            .grant_claims(&globex_context, access_token)
            .await
            .unwrap(),
        None
    );

    // Introspection: the resource server registered for the token's audience gets the
    // claims; another confidential client of the tenant does not; another tenant's resource
    // server sees an inactive token.
    let register = |token: String, base: String, id: &'static str, resources: Vec<&str>| {
        let resources: Vec<String> = resources.into_iter().map(str::to_owned).collect();
        async move {
            let created: Value = http()
                .post(format!("{base}/clients"))
                .bearer_auth(token)
                .json(&json!({
                    "client_id": id, "token_endpoint_auth_method": "client_secret_post",
                    "grant_types": ["client_credentials"], "claims_resources": resources,
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            created["client_secret"].as_str().unwrap().to_owned()
        }
    };
    let rs_secret = register(write.clone(), admin.clone(), "issuer-rs", vec![RESOURCE]).await;
    let other_secret = register(
        write.clone(),
        admin.clone(),
        "other-rs",
        vec!["https://elsewhere.example"],
    )
    .await;
    let globex_write = deployment
        .admin_token(globex.id, "oauth2:read oauth2:write")
        .await;
    let globex_secret = register(globex_write, admin.clone(), "issuer-rs", vec![RESOURCE]).await;
    let introspect = |base: &str, id: &str, secret: &str| {
        let request = http()
            .post(format!("{base}/introspect"))
            .form(&[
                ("client_id", id),
                ("client_secret", secret),
                ("token", access_token),
            ])
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let seen = introspect(&acme.base, "issuer-rs", &rs_secret).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["claims"], claims);
    let seen = introspect(&acme.base, "other-rs", &other_secret).await;
    assert_eq!(seen["active"], true);
    assert!(seen.get("claims").is_none());
    let seen = introspect(&globex.base, "issuer-rs", &globex_secret).await;
    assert_eq!(seen, json!({ "active": false }));

    let bad_registration = http()
        .post(format!("{admin}/clients"))
        .bearer_auth(&write)
        .json(&json!({
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["client_credentials"], "claims_resources": ["not a uri"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_registration.status().as_u16(), 400);
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_claims_reach_only_the_tenants_resource_server_on_sqlite() {
    minted_claims_reach_only_the_tenants_resource_server(Deployment::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_claims_reach_only_the_tenants_resource_server_on_postgres() {
    minted_claims_reach_only_the_tenants_resource_server(Deployment::postgres(1).await).await;
}

async fn the_upstream_secret_is_stored_sealed_and_never_returned(deployment: Deployment) {
    const SECRET: &str = "the-upstream-secret-value";
    let acme = deployment.tenant("acme").await;
    let admin = deployment.first().http.url("/api/oauth2/v1");
    let write = deployment
        .admin_token(acme.id, "oauth2:read oauth2:write")
        .await;
    let read = deployment.admin_token(acme.id, "oauth2:read").await;
    let tenancy = &deployment.first().tenancy;
    let stored = || async {
        tenancy
            .config_properties(Some(acme.id))
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.key == UPSTREAM_OIDC.name())
            .unwrap()
    };

    let missing = http()
        .get(format!("{admin}/upstream-oidc"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let no_secret = http()
        .put(format!("{admin}/upstream-oidc"))
        .bearer_auth(&write)
        .json(&json!({ "issuer": "https://login.example", "client_id": "edk-acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_secret.status().as_u16(), 400);

    // A legacy row with the secret in clear is still read, and sealed by the next write.
    tenancy
        .set_config(
            Some(acme.id),
            UPSTREAM_OIDC.name(),
            json!({ "issuer": "https://login.example", "client_id": "edk-acme", "client_secret": SECRET }),
            None,
        )
        .await
        .unwrap();
    let view: Value = http()
        .get(format!("{admin}/upstream-oidc"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["client_secret_sealed"], false);
    assert!(!view.to_string().contains(SECRET));
    let response = http()
        .put(format!("{admin}/upstream-oidc"))
        .bearer_auth(&write)
        .json(&json!({
            "issuer": "https://login.example", "client_id": "edk-acme",
            "copy_claims": ["email", "given_name"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["client_secret_sealed"], true);
    assert_eq!(view["copy_claims"], json!(["email", "given_name"]));
    let row = stored().await;
    assert!(!row.value.to_string().contains(SECRET), "{}", row.value);
    assert_eq!(
        row.value["client_secret_sealed"]
            .as_str()
            .unwrap()
            .split('.')
            .count(),
        5
    );
    assert!(row.value.get("client_secret").is_none());

    // A new secret is sealed too; reads never carry it, sealed or not.
    let response = http()
        .put(format!("{admin}/upstream-oidc"))
        .bearer_auth(&write)
        .json(&json!({
            "issuer": "https://login.example", "client_id": "edk-acme",
            "client_secret": "another-secret-value",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    assert!(!body.contains("another-secret-value"));
    let row = stored().await;
    assert!(!row.value.to_string().contains("another-secret-value"));
    let view = http()
        .get(format!("{admin}/upstream-oidc"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !view.contains("another-secret-value")
            && !view.contains(row.value["client_secret_sealed"].as_str().unwrap())
    );
    let forbidden = http()
        .put(format!("{admin}/upstream-oidc"))
        .bearer_auth(&read)
        .json(&json!({ "issuer": "https://login.example", "client_id": "edk-acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status().as_u16(), 403);
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_secret_is_stored_sealed_and_never_returned_on_sqlite() {
    the_upstream_secret_is_stored_sealed_and_never_returned(Deployment::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_secret_is_stored_sealed_and_never_returned_on_postgres() {
    the_upstream_secret_is_stored_sealed_and_never_returned(Deployment::postgres(1).await).await;
}
