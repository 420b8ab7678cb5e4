//! The authorization code flow of an offer over HTTP, as a wallet walks it: the offer's
//! `issuer_state`, a pushed authorization request with PKCE and a DPoP key, the login at the
//! tenant's AS (the pre-approved test end user `alice`), the DPoP-bound token whose
//! `authorization_details` name the session's dataset, and the credential that PyPI `sd-jwt`
//! verifies; and the refusals when the login does not match the offer.

use std::sync::{Arc, Mutex};

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::flow::on_both_backends;
use crate::support::{
    Deployment, Tenant, dpop_proof, header, http, key_proof, nonce, python_verify,
};

const REDIRECT: &str = "https://wallet.example/cb";

/// Registers the public client `wallet` at the tenant's AS.
async fn register_wallet(deployment: &Deployment, tenant: &Tenant) {
    register_wallet_with(deployment, tenant, json!({})).await;
}

/// Registers the public client `wallet` at the tenant's AS, with `extra` fields.
async fn register_wallet_with(deployment: &Deployment, tenant: &Tenant, extra: Value) {
    let token = deployment.admin_token(tenant.id, "oauth2:write").await;
    let mut client = json!({
        "client_id": "wallet", "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT],
    });
    for (name, value) in extra.as_object().unwrap() {
        client[name] = value.clone();
    }
    let response = http()
        .post(deployment.as_http.url("/api/oauth2/v1/clients"))
        .bearer_auth(token)
        .json(&client)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

/// An offer of `identity` with the authorization code grant alone.
async fn authorization_code_offer(deployment: &Deployment, tenant: &Tenant) -> Value {
    let (status, offer) = deployment
        .admin(
            tenant,
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
    offer
}

/// A pushed authorization request (with a DPoP proof of `dpop` for `htu` when given, and
/// the AS's DPoP nonce when it asks for one) and the login: the redirect's query parameters.
async fn authorize(
    tenant: &Tenant,
    form: &[(&str, &str)],
    dpop: Option<(&SigningKey, &str)>,
) -> Vec<(String, String)> {
    let push = |nonce: Option<String>| async move {
        let mut par = http().post(format!("{}/par", tenant.as_base)).form(form);
        if let Some((key, htu)) = dpop {
            par = par.header("dpop", dpop_proof(key, htu, None, nonce.as_deref()).await);
        }
        par.send().await.unwrap()
    };
    let mut pushed = push(None).await;
    if pushed.status().as_u16() == 400 && pushed.headers().contains_key("dpop-nonce") {
        let nonce = header(&pushed, "dpop-nonce").to_owned();
        pushed = push(Some(nonce)).await;
    }
    let status = pushed.status().as_u16();
    let pushed: Value = pushed.json().await.unwrap();
    assert_eq!(status, 201, "{pushed}");
    let response = http()
        .get(format!("{}/authorize", tenant.as_base))
        .query(&[
            ("client_id", "wallet"),
            ("request_uri", pushed["request_uri"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = url::Url::parse(header(&response, "location")).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    location.query_pairs().into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn the_authorization_code_flow_issues_to_the_end_user_who_logged_in(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    register_wallet(&deployment, &tenant).await;
    let offer = authorization_code_offer(&deployment, &tenant).await;
    let grants = &offer["credential_offer"]["grants"];
    assert!(
        grants.get(crate::support::PRE_AUTHORIZED).is_none(),
        "{grants}"
    );
    assert!(offer.get("tx_code").is_none());
    let issuer_state = grants["authorization_code"]["issuer_state"]
        .as_str()
        .unwrap();
    let session_id = offer["session_id"].as_str().unwrap();

    let wallet = SigningKey::generate(Algorithm::Es256).unwrap();
    let as_port = deployment.as_http.addr().port();
    let as_issuer = format!("https://localhost:{as_port}/acme");
    let verifier = b64url_encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let challenge = b64url_encode(Sha256::digest(verifier.as_bytes()));
    let details = json!([{
        "type": "openid_credential", "credential_configuration_id": "identity",
    }])
    .to_string();
    let form = [
        ("response_type", "code"),
        ("client_id", "wallet"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("authorization_details", details.as_str()),
        ("issuer_state", issuer_state),
        ("state", "s-1"),
    ];
    let par_htu = format!("{as_issuer}/par");
    let params = authorize(&tenant, &form, Some((&wallet, &par_htu))).await;
    assert_eq!(param(&params, "state"), Some("s-1"));
    let code = param(&params, "code").expect("a code").to_owned();
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "token_issued");
    assert_eq!(session["subject"], "alice");

    // The token, DPoP-bound (with the AS's DPoP nonce when it asks for one).
    let token_form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "wallet"),
        ("code_verifier", verifier.as_str()),
    ];
    let token_htu = format!("{as_issuer}/token");
    let redeem = |dpop: String| {
        http()
            .post(format!("{}/token", tenant.as_base))
            .header("dpop", dpop)
            .form(&token_form)
            .send()
    };
    let mut response = redeem(dpop_proof(&wallet, &token_htu, None, None).await)
        .await
        .unwrap();
    if response.status().as_u16() == 400 {
        let server_nonce = header(&response, "dpop-nonce").to_owned();
        response = redeem(dpop_proof(&wallet, &token_htu, None, Some(&server_nonce)).await)
            .await
            .unwrap();
    }
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "DPoP");
    let identifier = format!("{session_id}:identity");
    assert_eq!(
        token["authorization_details"],
        json!([{
            "type": "openid_credential", "credential_configuration_id": "identity",
            "credential_identifiers": [identifier],
            "locations": [tenant.credential_issuer],
        }])
    );
    let access_token = token["access_token"].as_str().unwrap();

    // The credential, for the key the wallet proves.
    let issuer = &tenant.credential_issuer;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .header("authorization", format!("DPoP {access_token}"))
        .header(
            "dpop",
            dpop_proof(
                &wallet,
                &format!("{issuer}/credential"),
                Some(access_token),
                None,
            )
            .await,
        )
        .json(&json!({
            "credential_identifier": identifier,
            "proofs": { "jwt": [key_proof(&holder, issuer, Some(&nonce(&tenant).await))] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let credential = body["credentials"][0]["credential"].as_str().unwrap();
    let jwks = deployment.issuer_jwks(&tenant).await;
    let verified = python_verify(
        credential.to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(verified["given_name"], "Erika");
    assert_eq!(
        verified["cnf"]["jwk"]["x"],
        serde_json::to_value(holder.public_jwk()).unwrap()["x"]
    );
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "credential_issued");
    deployment.close().await;
}
on_both_backends!(the_authorization_code_flow_issues_to_the_end_user_who_logged_in);

async fn a_login_that_does_not_match_the_offer_gets_an_error_redirect(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    register_wallet(&deployment, &tenant).await;
    let offer = authorization_code_offer(&deployment, &tenant).await;
    let issuer_state = offer["credential_offer"]["grants"]["authorization_code"]["issuer_state"]
        .as_str()
        .unwrap();
    let challenge = b64url_encode(Sha256::digest(b"a verifier of the wallet, long enough"));
    let identity = json!([{
        "type": "openid_credential", "credential_configuration_id": "identity",
    }])
    .to_string();
    let diploma = json!([{
        "type": "openid_credential", "credential_configuration_id": "diploma",
    }])
    .to_string();
    let cases = [
        // An issuer_state of no offer.
        (identity.as_str(), "forged-issuer-state", "access_denied"),
        // A configuration the offer does not include.
        (
            diploma.as_str(),
            issuer_state,
            "invalid_authorization_details",
        ),
        // Credentials without an offer.
        (identity.as_str(), "", "access_denied"),
    ];
    for (details, state, error) in cases {
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", "wallet"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("authorization_details", details),
        ];
        if !state.is_empty() {
            form.push(("issuer_state", state));
        }
        let params = authorize(&tenant, &form, None).await;
        assert_eq!(param(&params, "error"), Some(error), "{params:?}");
        assert!(param(&params, "code").is_none());
    }
    // None of these bound the session to the end user.
    let session = deployment
        .session(&tenant, offer["session_id"].as_str().unwrap())
        .await;
    assert_eq!(session["status"], "offered");
    assert!(session.get("subject").is_none(), "{session}");
    deployment.close().await;
}
on_both_backends!(a_login_that_does_not_match_the_offer_gets_an_error_redirect);

/// A tenant's claims backend: at `/claims`, the claims of `alice`'s `identity` credential,
/// 404 for anyone and anywhere else; every request it got.
async fn claims_backend() -> (edk_server::TestServer, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let app = poem::endpoint::make(move |mut req: poem::Request| {
        let recorded = Arc::clone(&recorded);
        async move {
            let known = req.uri().path() == "/claims";
            let body: Value = req.take_body().into_json().await.unwrap();
            recorded.lock().unwrap().push(body.clone());
            if known
                && body["subject"] == "alice"
                && body["credential_configuration_id"] == "identity"
            {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(json!({ "given_name": "Alice", "family_name": "Backend" }).to_string())
            } else {
                poem::Response::builder()
                    .status(poem::http::StatusCode::NOT_FOUND)
                    .finish()
            }
        }
    });
    (edk_server::spawn_server(app).await.unwrap(), seen)
}

/// An offer of `identity` without claims (the authorization code grant, `offer_extra` merged
/// into the request), alice's login, her Bearer token and a credential request for a fresh
/// key: the offer's session id and the credential endpoint's answer.
async fn offer_login_and_request(
    deployment: &Deployment,
    tenant: &Tenant,
    offer_extra: Value,
) -> (String, u16, Value) {
    let mut request = json!({
        "credential_configuration_ids": ["identity"],
        "grants": ["authorization_code"],
    });
    for (name, value) in offer_extra.as_object().unwrap() {
        request[name] = value.clone();
    }
    let (status, offer) = deployment
        .admin(tenant, reqwest::Method::POST, "/offers", Some(request))
        .await;
    assert_eq!(status, 201, "{offer}");
    let session_id = offer["session_id"].as_str().unwrap().to_owned();
    let issuer_state = offer["credential_offer"]["grants"]["authorization_code"]["issuer_state"]
        .as_str()
        .unwrap();
    let verifier = b64url_encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let challenge = b64url_encode(Sha256::digest(verifier.as_bytes()));
    let details = json!([{
        "type": "openid_credential", "credential_configuration_id": "identity",
    }])
    .to_string();
    let form = [
        ("response_type", "code"),
        ("client_id", "wallet"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("authorization_details", details.as_str()),
        ("issuer_state", issuer_state),
    ];
    let params = authorize(tenant, &form, None).await;
    let code = param(&params, "code").expect("a code").to_owned();
    let token: Value = http()
        .post(format!("{}/token", tenant.as_base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "wallet"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = &tenant.credential_issuer;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({
            "credential_identifier": format!("{session_id}:identity"),
            "proofs": { "jwt": [key_proof(&holder, issuer, Some(&nonce(tenant).await))] },
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (session_id, status, response.json().await.unwrap())
}

async fn claims_come_from_the_tenants_backend_at_credential_time(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    register_wallet(&deployment, &tenant).await;
    let (backend, seen) = claims_backend().await;
    let set_endpoint = |value: Value| {
        deployment
            .tenancy
            .set_config(Some(tenant.id), "oid4vci.claims_endpoint", value, None)
    };
    // Only https, unless the tenant says otherwise.
    assert!(
        set_endpoint(json!({ "url": backend.url("/claims") }))
            .await
            .is_err()
    );
    set_endpoint(json!({ "url": backend.url("/claims"), "dangerous_allow_http": true }))
        .await
        .unwrap();

    // An offer without claims: they come from the backend once alice has logged in.
    let (session_id, status, body) =
        offer_login_and_request(&deployment, &tenant, json!({ "correlation_id": "hr-4711" })).await;
    assert_eq!(status, 200, "{body}");
    let jwks = deployment.issuer_jwks(&tenant).await;
    let verified = python_verify(
        body["credentials"][0]["credential"]
            .as_str()
            .unwrap()
            .to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(verified["given_name"], "Alice");
    assert_eq!(verified["family_name"], "Backend");
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["subject"], "alice");
    assert_eq!(asked[0]["credential_configuration_id"], "identity");
    assert_eq!(asked[0]["session_id"], session_id.as_str());
    assert_eq!(asked[0]["correlation_id"], "hr-4711");

    // A backend without data for the person: credential_request_denied, nothing issued.
    set_endpoint(json!({ "url": backend.url("/nobody"), "dangerous_allow_http": true }))
        .await
        .unwrap();
    let (session_id, status, body) = offer_login_and_request(&deployment, &tenant, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "credential_request_denied");
    let session = deployment.session(&tenant, &session_id).await;
    assert_eq!(session["status"], "token_issued");
    backend.shutdown().await.unwrap();
    deployment.close().await;
}
on_both_backends!(claims_come_from_the_tenants_backend_at_credential_time);

/// Alice's login with PKCE asking by `scope` and, when given, by `authorization_details`,
/// without an `issuer_state`: the redirect's query parameters and the PKCE verifier.
async fn wallet_initiated_login(
    tenant: &Tenant,
    scope: &str,
    details: Option<&Value>,
) -> (Vec<(String, String)>, String) {
    let verifier = b64url_encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let challenge = b64url_encode(Sha256::digest(verifier.as_bytes()));
    let details = details.map(Value::to_string);
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", "wallet"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", tenant.credential_issuer.as_str()),
    ];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    if let Some(details) = &details {
        form.push(("authorization_details", details.as_str()));
    }
    (authorize(tenant, &form, None).await, verifier)
}

/// Wallet-initiated issuance (OpenID4VCI §3.3.3): a wallet that starts from the issuer's
/// metadata, with no offer, asks for `identity` by its scope. Refused while the tenant's
/// `oid4vci.wallet_initiated` is off; once it is on, the login opens a session for alice,
/// the token names its dataset, and the claims come from the tenant's backend.
async fn a_wallet_starting_from_the_metadata_gets_a_credential_when_the_tenant_allows_it(
    deployment: Deployment,
) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    // A wallet asking by scope names the configuration's scope among its client's scopes.
    let wallet_scopes = json!({ "scopes": ["identity"] });
    register_wallet_with(&deployment, &tenant, wallet_scopes.clone()).await;
    let (backend, seen) = claims_backend().await;
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
    let (params, _) = wallet_initiated_login(&tenant, "identity", None).await;
    assert_eq!(param(&params, "error"), Some("access_denied"), "{params:?}");
    assert!(param(&params, "code").is_none());

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
    // A configuration the issuer does not have opens nothing.
    let unknown =
        json!([{ "type": "openid_credential", "credential_configuration_id": "passport" }]);
    let (params, _) = wallet_initiated_login(&tenant, "", Some(&unknown)).await;
    assert_eq!(
        param(&params, "error"),
        Some("invalid_authorization_details"),
        "{params:?}"
    );

    let (params, verifier) = wallet_initiated_login(&tenant, "identity", None).await;
    let code = param(&params, "code").expect("a code").to_owned();
    let token: Value = http()
        .post(format!("{}/token", tenant.as_base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "wallet"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let granted = &token["authorization_details"][0];
    assert_eq!(
        granted["credential_configuration_id"], "identity",
        "{token}"
    );
    let identifier = granted["credential_identifiers"][0].as_str().unwrap();
    let session_id = identifier.strip_suffix(":identity").unwrap();
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "token_issued");
    assert_eq!(session["subject"], "alice");

    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let proof = key_proof(
        &holder,
        &tenant.credential_issuer,
        Some(&nonce(&tenant).await),
    );
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({
            "credential_identifier": identifier,
            "proofs": { "jwt": [proof] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let jwks = deployment.issuer_jwks(&tenant).await;
    let verified = python_verify(
        body["credentials"][0]["credential"]
            .as_str()
            .unwrap()
            .to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(verified["given_name"], "Alice");
    assert_eq!(verified["family_name"], "Backend");
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["subject"], "alice");
    assert_eq!(asked[0]["session_id"], session_id);
    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "credential_issued");

    // The setting is the tenant's own: another tenant stays closed.
    let other = deployment.tenant("globex").await;
    deployment.configure(&other).await;
    register_wallet_with(&deployment, &other, wallet_scopes).await;
    let (params, _) = wallet_initiated_login(&other, "identity", None).await;
    assert_eq!(param(&params, "error"), Some("access_denied"), "{params:?}");
    backend.shutdown().await.unwrap();
    deployment.close().await;
}
on_both_backends!(a_wallet_starting_from_the_metadata_gets_a_credential_when_the_tenant_allows_it);
