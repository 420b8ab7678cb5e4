//! Wallets we did not write, against the issuer and the tenant's authorization server over
//! HTTP: npm `@openid4vc/openid4vci` (the library Credo uses) through
//! `interop/node/oid4vci_wallet.mjs`, and npm `@sphereon/oid4vci-client` 0.20 (a draft-15
//! era wallet) through `interop/node/sphereon_wallet.mjs`. Every credential they receive is
//! verified by PyPI `sd-jwt`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use edk_tenancy::EndpointScheme;
use edk_testkit::oidc_provider::{OidcProvider, OidcProviderMode, OidcTestClient};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, http, python_verify};

/// `interop/node`, where `scripts/test` installed the Node peers.
fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/node");
    assert!(
        dir.join("node_modules/@openid4vc/openid4vci").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only",
        dir.display()
    );
    dir
}

/// Runs `interop/node/<script>` with `input` on stdin: whether it succeeded, and its JSON
/// answer (or a panic when it printed none).
async fn run_wallet(script: &'static str, input: Value) -> (bool, Value) {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "{script} printed no JSON:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.success(), answer)
    })
    .await
    .unwrap()
}

/// Runs `interop/node/<script>` with `input` on stdin: its JSON answer, or a panic naming
/// what the wallet reported.
pub(crate) async fn wallet(script: &'static str, input: Value) -> Value {
    let (success, answer) = run_wallet(script, input).await;
    assert!(success, "{script} failed: {answer:#}");
    answer
}

/// Checks `credential` with PyPI `sd-jwt` against the tenant's signing key: bound to
/// `holder`, with the offered claims.
async fn verify(
    deployment: &Deployment,
    tenant: &crate::support::Tenant,
    credential: &Value,
    holder: &Value,
) {
    let payload = verify_bound(deployment, tenant, credential, holder).await;
    assert_eq!(payload["given_name"], "Erika");
    assert_eq!(payload["family_name"], "Mustermann");
}

/// Checks `credential` with PyPI `sd-jwt` against the tenant's signing key: an `identity`
/// credential of the tenant bound to `holder`. Its disclosed payload.
async fn verify_bound(
    deployment: &Deployment,
    tenant: &crate::support::Tenant,
    credential: &Value,
    holder: &Value,
) -> Value {
    let jwks = deployment.issuer_jwks(tenant).await;
    let issuer_jwk = serde_json::to_value(&jwks.keys[0]).unwrap();
    let payload = python_verify(credential.as_str().unwrap().to_owned(), issuer_jwk).await;
    assert_eq!(payload["iss"], tenant.credential_issuer.as_str());
    assert_eq!(payload["vct"], "https://credentials.example.com/identity");
    assert_eq!(payload["cnf"]["jwk"]["x"], holder["x"]);
    assert_eq!(payload["cnf"]["jwk"]["y"], holder["y"]);
    payload
}

async fn openid4vc_wallet_takes_an_offer_by_reference_with_dpop_and_a_batch(
    deployment: Deployment,
) {
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, true).await;
    let answer = wallet(
        "oid4vci_wallet.mjs",
        json!({
            "offer": offer["credential_offer_uri"],
            "tx_code": offer["tx_code"],
            "dpop": true,
            "keys": 2,
        }),
    )
    .await;
    assert_eq!(answer["token"]["token_type"], "DPoP");
    let session_id = offer["session_id"].as_str().unwrap();
    assert_eq!(
        answer["token"]["authorization_details"][0]["credential_identifiers"],
        json!([format!("{session_id}:identity")])
    );
    let credentials = answer["credential"]["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 2);
    for (credential, holder) in credentials
        .iter()
        .zip(answer["holder_jwks"].as_array().unwrap())
    {
        verify(&deployment, &tenant, &credential["credential"], holder).await;
    }
    let session = deployment.session(&tenant, session_id).await;
    // The wallet acknowledged the credentials at the notification endpoint.
    assert_eq!(answer["notification"], "sent");
    assert_eq!(session["status"], "notified");
    deployment.close().await;
}
on_both_backends!(openid4vc_wallet_takes_an_offer_by_reference_with_dpop_and_a_batch);

async fn openid4vc_wallet_takes_an_offer_by_value_with_a_bearer_token(deployment: Deployment) {
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, false).await;
    let answer = wallet(
        "oid4vci_wallet.mjs",
        json!({
            "offer": offer["credential_offer_uri"],
            "tx_code": offer["tx_code"],
            "dpop": false,
            "keys": 1,
        }),
    )
    .await;
    assert_eq!(answer["token"]["token_type"], "Bearer");
    let credentials = answer["credential"]["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    verify(
        &deployment,
        &tenant,
        &credentials[0]["credential"],
        &answer["holder_jwks"][0],
    )
    .await;
    deployment.close().await;
}
on_both_backends!(openid4vc_wallet_takes_an_offer_by_value_with_a_bearer_token);

async fn openid4vc_wallet_with_the_wrong_transaction_code_gets_no_token(deployment: Deployment) {
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, false).await;
    let tx_code = offer["tx_code"].as_str().unwrap();
    let wrong: String = tx_code
        .chars()
        .map(|digit| if digit == '0' { '1' } else { '0' })
        .collect();
    let (success, answer) = run_wallet(
        "oid4vci_wallet.mjs",
        json!({ "offer": offer["credential_offer_uri"], "tx_code": wrong }),
    )
    .await;
    assert!(!success, "{answer:#}");
    let body: Value = serde_json::from_str(answer["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["response"]["status"], 400);
    assert_eq!(body["error"], "invalid_grant");
    deployment.close().await;
}
on_both_backends!(openid4vc_wallet_with_the_wrong_transaction_code_gets_no_token);

async fn sphereon_wallet_takes_an_offer_by_reference(deployment: Deployment) {
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, true).await;
    let answer = wallet(
        "sphereon_wallet.mjs",
        json!({
            "offer": offer["credential_offer_uri"],
            "tx_code": offer["tx_code"],
            "configuration": "identity",
            "format": "dc+sd-jwt",
        }),
    )
    .await;
    assert!(answer["token"]["access_token"].is_string(), "{answer:#}");
    let credential = answer["credential"]["credential"]
        .as_str()
        .map(|credential| Value::String(credential.to_owned()))
        .unwrap_or_else(|| answer["credential"]["credentials"][0]["credential"].clone());
    verify(&deployment, &tenant, &credential, &answer["holder_jwk"]).await;
    deployment.close().await;
}
on_both_backends!(sphereon_wallet_takes_an_offer_by_reference);

async fn openid4vc_wallet_sends_an_encrypted_request_and_jose_decrypts_the_answer(
    deployment: Deployment,
) {
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, false).await;
    let answer = wallet(
        "oid4vci_wallet.mjs",
        json!({
            "offer": offer["credential_offer_uri"],
            "tx_code": offer["tx_code"],
            "dpop": false,
            "keys": 1,
            "encrypt": true,
        }),
    )
    .await;
    // npm jose decrypted an answer encrypted to the key the wallet named.
    assert_eq!(answer["response_header"]["alg"], "ECDH-ES");
    assert_eq!(answer["response_header"]["enc"], "A128GCM");
    assert_eq!(answer["response_header"]["kid"], "wallet-response-key");
    let credentials = answer["credential"]["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    verify(
        &deployment,
        &tenant,
        &credentials[0]["credential"],
        &answer["holder_jwks"][0],
    )
    .await;
    assert!(answer["credential"]["notification_id"].is_string());
    deployment.close().await;
}
on_both_backends!(openid4vc_wallet_sends_an_encrypted_request_and_jose_decrypts_the_answer);

const REDIRECT: &str = "https://wallet.example/cb";

/// A tenant of a federated deployment whose AS logs people in at an upstream OpenID Provider
/// (npm `oidc-provider`, running) and knows the public client `wallet`, registered with
/// `client_extra` merged in.
async fn federated_tenant(
    postgres: bool,
    client_extra: Value,
) -> (Deployment, crate::support::Tenant, OidcProvider) {
    const UPSTREAM_SECRET: &str = "upstream-secret-of-acme";
    let deployment = Deployment::federated(postgres).await;
    let tenant = deployment.tenant_with("acme", EndpointScheme::Http).await;
    deployment.configure(&tenant).await;
    let callback = format!("{}/callback", tenant.as_base);
    let op = OidcProvider::start(
        OidcProviderMode::Login,
        &[OidcTestClient::new(
            "edk-acme",
            UPSTREAM_SECRET,
            &[&callback],
        )],
    )
    .await;
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    let response = http()
        .put(deployment.as_http.url("/api/oauth2/v1/upstream-oidc"))
        .bearer_auth(&token)
        .json(&json!({
            "issuer": op.issuer(), "client_id": "edk-acme", "client_secret": UPSTREAM_SECRET,
            "scopes": ["openid", "email", "profile"], "dangerous_allow_http": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut client = json!({
        "client_id": "wallet", "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT],
    });
    for (name, value) in client_extra.as_object().unwrap() {
        client[name] = value.clone();
    }
    let response = http()
        .post(deployment.as_http.url("/api/oauth2/v1/clients"))
        .bearer_auth(&token)
        .json(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    (deployment, tenant, op)
}

/// The wallet's two runs around the person's login: it pushes its authorization request
/// (`start` names the offer or the issuer and configurations), the browser goes through the
/// tenant AS to the provider's login as alice and back, and the wallet redeems the code with
/// DPoP and takes the credential. The wallet's answer.
async fn authorization_code_flow(op: &OidcProvider, start: Value) -> Value {
    let mut input = start.clone();
    input["step"] = json!("authorize");
    input["client_id"] = json!("wallet");
    input["redirect_uri"] = json!(REDIRECT);
    let pushed = wallet("oid4vci_wallet.mjs", input.clone()).await;
    let authorization_url = pushed["authorization_request_url"].as_str().unwrap();
    assert!(
        authorization_url.contains("request_uri="),
        "the wallet pushed its request: {authorization_url}"
    );
    // The tenant AS sends the browser to the provider's login first.
    let to_provider = http().get(authorization_url).send().await.unwrap();
    assert_eq!(to_provider.status().as_u16(), 303);
    let provider_login = to_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        provider_login.starts_with(&format!("{}/auth", op.issuer())),
        "{provider_login}"
    );
    let back = op.login(&provider_login, "alice", REDIRECT).await;
    input["step"] = json!("redeem");
    input["redirect_url"] = json!(back.as_str());
    input["code_verifier"] = pushed["code_verifier"].clone();
    input["dpop_key"] = pushed["dpop_key"].clone();
    wallet("oid4vci_wallet.mjs", input).await
}

/// The authorization code flow of an offer with the `@openid4vc/openid4vci` wallet and a
/// person logging in at the tenant's upstream OpenID Provider (npm `oidc-provider`): the
/// wallet pushes its authorization request (PAR, PKCE, a DPoP key, the offer's
/// `issuer_state`), the browser goes through the tenant AS to the provider's login and
/// back, and the wallet redeems the code with DPoP and takes the credential.
async fn openid4vc_wallet_logs_in_upstream_for_an_authorization_code_offer(postgres: bool) {
    let (deployment, tenant, op) = federated_tenant(postgres, json!({})).await;
    let (status, offer) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika", "family_name": "Mustermann" } },
                "grants": ["authorization_code"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    let answer =
        authorization_code_flow(&op, json!({ "offer": offer["credential_offer_uri"] })).await;
    assert_eq!(answer["token"]["token_type"], "DPoP");
    let session_id = offer["session_id"].as_str().unwrap();
    assert_eq!(
        answer["token"]["authorization_details"][0]["credential_identifiers"],
        json!([format!("{session_id}:identity")])
    );
    let credential = &answer["credential"]["credentials"][0]["credential"];
    verify(&deployment, &tenant, credential, &answer["holder_jwks"][0]).await;
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "notified");
    assert!(session["subject"].is_string(), "{session}");
    drop(op);
    deployment.close().await;
}

/// Wallet-initiated issuance with the `@openid4vc/openid4vci` wallet: no offer; the wallet
/// reads the issuer's metadata, asks for `identity` by its scope, the person logs in
/// upstream, and the claims come from the tenant's backend. Refused until the tenant turns
/// `oid4vci.wallet_initiated` on.
async fn openid4vc_wallet_starts_from_the_issuer_metadata(postgres: bool) {
    let (deployment, tenant, op) =
        federated_tenant(postgres, json!({ "scopes": ["identity"] })).await;
    // The tenant's backend knows the person who logged in upstream.
    let backend =
        edk_server::spawn_server(poem::endpoint::make(|mut req: poem::Request| async move {
            let body: Value = req.take_body().into_json().await.unwrap_or(Value::Null);
            let known =
                body["subject"].is_string() && body["credential_configuration_id"] == "identity";
            let claims = json!({ "given_name": "Alice", "family_name": "Upstream" });
            if known {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(claims.to_string())
            } else {
                poem::Response::builder()
                    .status(poem::http::StatusCode::NOT_FOUND)
                    .finish()
            }
        }))
        .await
        .unwrap();
    deployment
        .tenancy
        .set_config(
            Some(tenant.id),
            "oid4vci.claims_endpoint",
            json!({ "url": backend.url("/claims"), "dangerous_allow_http": true }),
            None,
        )
        .await
        .unwrap();
    let start = json!({
        "issuer": tenant.credential_issuer, "configurations": ["identity"],
    });
    let refused = run_wallet("oid4vci_wallet.mjs", {
        let mut input = start.clone();
        input["step"] = json!("authorize");
        input["client_id"] = json!("wallet");
        input["redirect_uri"] = json!(REDIRECT);
        input
    })
    .await;
    assert!(refused.0, "pushing the request succeeds: {}", refused.1);
    let to_login = http()
        .get(refused.1["authorization_request_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let provider_login = to_login.headers()["location"].to_str().unwrap().to_owned();
    let back = op.login(&provider_login, "alice", REDIRECT).await;
    assert!(
        back.query_pairs()
            .any(|(name, value)| name == "error" && value == "access_denied"),
        "{back}"
    );

    deployment
        .tenancy
        .set_config(
            Some(tenant.id),
            "oid4vci.wallet_initiated",
            json!(true),
            None,
        )
        .await
        .unwrap();
    let answer = authorization_code_flow(&op, start).await;
    assert_eq!(answer["token"]["token_type"], "DPoP");
    let granted = &answer["token"]["authorization_details"][0];
    assert_eq!(
        granted["credential_configuration_id"], "identity",
        "{answer}"
    );
    let identifier = granted["credential_identifiers"][0].as_str().unwrap();
    let session_id = identifier.strip_suffix(":identity").unwrap();
    let credential = &answer["credential"]["credentials"][0]["credential"];
    let verified = verify_bound(&deployment, &tenant, credential, &answer["holder_jwks"][0]).await;
    assert_eq!(verified["given_name"], "Alice", "{verified}");
    assert_eq!(verified["family_name"], "Upstream");
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "notified");
    assert!(session["subject"].is_string(), "{session}");
    backend.shutdown().await.unwrap();
    drop(op);
    deployment.close().await;
}

mod openid4vc_wallet_starts_from_the_issuer_metadata {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        super::openid4vc_wallet_starts_from_the_issuer_metadata(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        super::openid4vc_wallet_starts_from_the_issuer_metadata(true).await;
    }
}

mod openid4vc_wallet_logs_in_upstream_for_an_authorization_code_offer {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        super::openid4vc_wallet_logs_in_upstream_for_an_authorization_code_offer(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        super::openid4vc_wallet_logs_in_upstream_for_an_authorization_code_offer(true).await;
    }
}
