//! authlib (PyPI, pinned in interop/python) as the client of every grant over real HTTP.

use edk_core::jose::{Algorithm, JwkSet, SigningKey};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{NewClient, PreAuthorizedCodeRequest};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::{Deployment, Replica, Tenant, authlib};

const REDIRECT: &str = "https://client.example/cb";

async fn client(
    replica: &Replica,
    tenant: &Tenant,
    method: ClientAuthMethod,
    grants: Vec<GrantType>,
    jwks: Option<JwkSet>,
) -> (String, Option<String>) {
    let context = replica
        .tenancy
        .context_for_service(tenant.id, edk_tenancy::ServiceType::As)
        .await
        .unwrap();
    let mut metadata = ClientMetadata::new(method, grants);
    metadata.scopes = vec!["read".to_owned(), "write".to_owned()];
    metadata.redirect_uris = vec![REDIRECT.to_owned()];
    metadata.jwks = jwks;
    let (client, secret) = replica
        .server
        .create_client(&context, NewClient::new(metadata))
        .await
        .unwrap();
    (
        client.client_id.as_str().to_owned(),
        secret.map(|s| s.expose_secret().to_owned()),
    )
}

use edk_tenancy::TenantDirectory as _;

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_client_credentials_with_each_client_authentication_method() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let replica = deployment.first();
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let (id, secret) = client(
            replica,
            &tenant,
            method,
            vec![GrantType::ClientCredentials],
            None,
        )
        .await;
        let out = authlib(json!({
            "flow": "client_credentials", "method": method.as_str(), "base": tenant.base,
            "issuer": tenant.issuer, "client_id": id, "client_secret": secret, "scope": "read",
        }))
        .await;
        let token = &out["token"];
        assert_eq!(token["token_type"], "Bearer", "{out}");
        assert_eq!(token["scope"], "read");
        let at = claims(token["access_token"].as_str().unwrap());
        assert_eq!(at["iss"], tenant.issuer.as_str());
        assert_eq!(at["client_id"], id.as_str());
    }
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    let (id, _) = client(
        replica,
        &tenant,
        ClientAuthMethod::PrivateKeyJwt,
        vec![GrantType::ClientCredentials],
        Some(jwks),
    )
    .await;
    let private = serde_json::to_value(key.to_jwk().unwrap()).unwrap();
    let out = authlib(json!({
        "flow": "client_credentials", "method": "private_key_jwt", "base": tenant.base,
        "issuer": tenant.issuer, "client_id": id, "private_jwk": private,
    }))
    .await;
    assert_eq!(
        claims(out["token"]["access_token"].as_str().unwrap())["sub"],
        id.as_str()
    );
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_authorization_code_with_pkce_and_refresh_rotation() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let (id, _) = client(
        deployment.first(),
        &tenant,
        ClientAuthMethod::None,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        None,
    )
    .await;
    let out = authlib(json!({
        "flow": "authorization_code", "base": tenant.base, "issuer": tenant.issuer,
        "client_id": id, "redirect_uri": REDIRECT, "scope": "read",
    }))
    .await;
    assert_eq!(out["authorize"]["iss"], tenant.issuer.as_str(), "{out}");
    assert_eq!(out["authorize"]["state_ok"], true);
    assert_eq!(
        claims(out["token"]["access_token"].as_str().unwrap())["sub"],
        "alice"
    );
    assert_ne!(
        out["rotated"]["refresh_token"],
        out["token"]["refresh_token"]
    );
    assert_eq!(out["reuse"], "invalid_grant");
    assert_eq!(out["after_reuse"], "invalid_grant");
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_with_pushed_authorization_requests() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let (id, secret) = client(
        deployment.first(),
        &tenant,
        ClientAuthMethod::ClientSecretBasic,
        vec![GrantType::AuthorizationCode],
        None,
    )
    .await;
    let out = authlib(json!({
        "flow": "par", "base": tenant.base, "issuer": tenant.issuer, "client_id": id,
        "client_secret": secret, "redirect_uri": REDIRECT, "scope": "read",
    }))
    .await;
    assert_eq!(out["par_status"], 201, "{out}");
    assert_eq!(out["par"]["expires_in"], 60);
    assert_eq!(out["replay_status"], 400);
    assert_eq!(out["token"]["token_type"], "Bearer");
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_introspection_and_revocation() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let (id, secret) = client(
        deployment.first(),
        &tenant,
        ClientAuthMethod::ClientSecretBasic,
        vec![GrantType::ClientCredentials],
        None,
    )
    .await;
    let out = authlib(json!({
        "flow": "introspect_and_revoke", "base": tenant.base, "client_id": id, "client_secret": secret,
    }))
    .await;
    assert_eq!(out["active"]["active"], true, "{out}");
    assert_eq!(out["active"]["client_id"], id.as_str());
    assert_eq!(out["revoke_status"], 200);
    assert_eq!(out["after"], json!({"active": false}));
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_pre_authorized_code_with_tx_code() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let replica = deployment.first();
    let context = replica
        .tenancy
        .context_for_service(tenant.id, edk_tenancy::ServiceType::As)
        .await
        .unwrap();
    let mut grant = Grant::new("holder");
    grant.authorization_details =
        Some(json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]));
    let minted = replica
        .server
        .mint_pre_authorized_code(
            &context,
            PreAuthorizedCodeRequest::new(grant).with_tx_code(6),
        )
        .await
        .unwrap();
    let (wallet, _) = client(
        replica,
        &tenant,
        ClientAuthMethod::None,
        vec![GrantType::PreAuthorizedCode],
        None,
    )
    .await;
    let out = authlib(json!({
        "flow": "pre_authorized", "base": tenant.base, "client_id": wallet,
        "code": minted.code.expose_secret(), "tx_code": minted.tx_code.unwrap().expose_secret(),
    }))
    .await;
    assert_eq!(
        out["token"]["authorization_details"][0]["credential_configuration_id"], "pid",
        "{out}"
    );
    assert_eq!(
        claims(out["token"]["access_token"].as_str().unwrap())["sub"],
        "holder"
    );
    deployment.close().await;
}
