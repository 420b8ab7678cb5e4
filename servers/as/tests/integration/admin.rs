//! The admin API: scoped bearer tokens, tenant from the token, problem+json errors.

use serde_json::{Value, json};

use crate::support::{Deployment, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_codes_and_keys_through_the_admin_api() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let other = deployment.tenant("other").await;
    let base = deployment.first().http.url("/api/oauth2/v1");
    let write = deployment
        .admin_token(acme.id, "oauth2:read oauth2:write")
        .await;
    let read = deployment.admin_token(acme.id, "oauth2:read").await;
    let other_token = deployment
        .admin_token(other.id, "oauth2:read oauth2:write")
        .await;

    let response = http().post(format!("{base}/clients")).bearer_auth(&write)
        .json(&json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}))
        .send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created["client_secret"].as_str().unwrap().len() >= 43);

    let duplicate = http().post(format!("{base}/clients")).bearer_auth(&write)
        .json(&json!({"client_id": "svc", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"], "redirect_uris": ["https://c.example/cb"]}))
        .send().await.unwrap();
    assert_eq!(duplicate.status().as_u16(), 409);
    assert_eq!(
        duplicate.headers()["content-type"],
        "application/problem+json"
    );

    let bad = http()
        .post(format!("{base}/clients"))
        .bearer_auth(&write)
        .json(
            &json!({"token_endpoint_auth_method": "magic", "grant_types": ["client_credentials"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    let list: Value = http()
        .get(format!("{base}/clients"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);
    assert_eq!(
        http()
            .post(format!("{base}/clients/svc/secret"))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        http()
            .get(format!("{base}/clients"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // Another tenant's admin sees nothing of acme's.
    assert_eq!(
        http()
            .get(format!("{base}/clients/svc"))
            .bearer_auth(&other_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    let rotated: Value = http()
        .post(format!("{base}/clients/svc/secret"))
        .bearer_auth(&write)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(rotated["client_secret"], created["client_secret"]);

    let minted = http().post(format!("{base}/pre-authorized-codes")).bearer_auth(&write)
        .json(&json!({"subject": "holder", "tx_code_digits": 5, "authorization_details": [{"type": "openid_credential", "credential_configuration_id": "pid"}]}))
        .send().await.unwrap();
    assert_eq!(minted.status().as_u16(), 201);
    let minted: Value = minted.json().await.unwrap();
    assert_eq!(minted["tx_code"].as_str().unwrap().len(), 5);
    let refused = http()
        .post(format!("{base}/pre-authorized-codes"))
        .bearer_auth(&write)
        .json(&json!({"subject": "holder", "tx_code_digits": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);

    let rotated: Value = http()
        .post(format!("{base}/signing-key/rotate"))
        .bearer_auth(&write)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["kids"].as_array().unwrap().len(), 2);
    let jwks: Value = http()
        .get(format!("{}/jwks.json", acme.base))
        .header("host", &acme.host)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    assert_eq!(
        http()
            .delete(format!("{base}/clients/svc"))
            .bearer_auth(&write)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        http()
            .delete(format!("{base}/clients/svc"))
            .bearer_auth(&write)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_metadata_is_served_with_path_insertion() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let port = deployment.first().http.addr().port();
    let url = format!("http://localhost:{port}/.well-known/oauth-authorization-server/acme");
    let doc: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], acme.issuer.as_str());
    assert_eq!(doc["token_endpoint"], format!("{}/token", acme.issuer));
    let missing = http()
        .get(format!(
            "http://localhost:{port}/.well-known/oauth-authorization-server/nobody"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // Wallets of drafts before OpenID4VCI 1.0 append the well-known path to the issuer.
    let appended: Value = http()
        .get(format!(
            "http://localhost:{port}/acme/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(appended, doc);
    let missing = http()
        .get(format!(
            "http://localhost:{port}/nobody/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let token = http()
        .post(format!("{}/token", acme.base))
        .form(&[("grant_type", "client_credentials")])
        .basic_auth("ghost", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status().as_u16(), 401);
    assert!(token.headers().contains_key("www-authenticate"));
    assert_eq!(token.headers()["cache-control"], "no-store");
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    deployment.close().await;
}
