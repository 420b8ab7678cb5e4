//! The credential endpoint's refusals over HTTP, each with its exact status, error code and
//! description: no token, another tenant's token, a body that is not JSON, no proof, a proof
//! for another audience, a replayed nonce, a cancelled session.

use edk_core::jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, header, http, key_proof, nonce, redeem};

async fn credential(tenant: &Tenant, token: Option<&str>, body: String) -> reqwest::Response {
    let mut request = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn refused(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    if status == 400 {
        assert_eq!(header(&response, "cache-control"), "no-store");
    }
    (status, response.json().await.unwrap())
}

fn error(code: &str, description: &str) -> Value {
    json!({ "error": code, "error_description": description })
}

async fn the_credential_endpoint_refuses_with_the_specified_errors(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    let other = deployment.tenant("other").await;
    deployment.configure(&acme).await;
    deployment.configure(&other).await;
    let offer = deployment.offer(&acme, false).await;
    let token: Value = redeem(&acme, &offer, None).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer = acme.credential_issuer.as_str();
    let with_proof = |proof: String| {
        json!({ "credential_identifier": identifier, "proofs": { "jwt": [proof] } }).to_string()
    };

    // No token: both schemes are challenged, without an error code.
    let c_nonce = nonce(&acme).await;
    let response = credential(
        &acme,
        None,
        with_proof(key_proof(&holder, issuer, Some(&c_nonce))),
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let algs = edk_oauth::dpop::DPOP_ALGORITHMS
        .iter()
        .map(|alg| alg.name())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        challenges,
        vec!["Bearer".to_owned(), format!("DPoP algs=\"{algs}\"")]
    );

    // Tenant acme's token at tenant other: not a token of other's AS.
    let response = credential(
        &other,
        Some(token),
        with_proof(key_proof(
            &holder,
            &other.credential_issuer,
            Some(&nonce(&other).await),
        )),
    )
    .await;
    assert_eq!(
        header(&response, "www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(
        refused(response).await,
        (401, error("invalid_token", "the access token is invalid"))
    );

    // A body that is not JSON.
    assert_eq!(
        refused(credential(&acme, Some(token), "credential_identifier=x".to_owned()).await).await,
        (
            400,
            error("invalid_credential_request", "the request body is not JSON")
        )
    );

    // No proof for a key-bound credential.
    let body = json!({ "credential_identifier": identifier }).to_string();
    assert_eq!(
        refused(credential(&acme, Some(token), body).await).await,
        (
            400,
            error(
                "invalid_proof",
                "this credential is bound to a key: send proofs"
            )
        )
    );

    // A proof for another audience.
    let body = with_proof(key_proof(
        &holder,
        "https://elsewhere.example",
        Some(&c_nonce),
    ));
    assert_eq!(
        refused(credential(&acme, Some(token), body).await).await,
        (
            400,
            error(
                "invalid_proof",
                &format!("the proof's aud must be the credential issuer {issuer}")
            )
        )
    );

    // None of these spent the nonce; it is accepted once.
    let body = with_proof(key_proof(&holder, issuer, Some(&c_nonce)));
    let response = credential(&acme, Some(token), body.clone()).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        refused(credential(&acme, Some(token), body).await).await,
        (
            400,
            error(
                "invalid_nonce",
                "the proof's nonce is unknown, used or expired; fetch a new c_nonce"
            )
        )
    );

    // A cancelled session issues nothing more.
    let (status, _) = deployment
        .admin(
            &acme,
            reqwest::Method::POST,
            &format!("/sessions/{}/cancel", offer["session_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let body = with_proof(key_proof(&holder, issuer, Some(&nonce(&acme).await)));
    assert_eq!(
        refused(credential(&acme, Some(token), body).await).await,
        (
            400,
            error(
                "credential_request_denied",
                "the issuance session is cancelled"
            )
        )
    );
    deployment.close().await;
}
on_both_backends!(the_credential_endpoint_refuses_with_the_specified_errors);

async fn session_status(deployment: &Deployment, tenant: &Tenant, offer: &Value) -> String {
    let path = format!("/sessions/{}", offer["session_id"].as_str().unwrap());
    let (status, session) = deployment
        .admin(tenant, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, 200, "{session}");
    session["status"].as_str().unwrap().to_owned()
}

async fn redeeming_a_code_records_it_and_a_cancelled_offer_gets_no_token(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    deployment.configure(&acme).await;
    // The wallet's token request moves the session from `offered` to `token_issued`.
    let offer = deployment.offer(&acme, false).await;
    assert_eq!(session_status(&deployment, &acme, &offer).await, "offered");
    let response = redeem(&acme, &offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        session_status(&deployment, &acme, &offer).await,
        "token_issued"
    );

    // Once the operator cancels an offer, its pre-authorized code buys no access token.
    let cancelled = deployment.offer(&acme, false).await;
    let (status, _) = deployment
        .admin(
            &acme,
            reqwest::Method::POST,
            &format!(
                "/sessions/{}/cancel",
                cancelled["session_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let response = redeem(&acme, &cancelled, None).await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        error(
            "invalid_grant",
            "the credential offer of this pre-authorized code was cancelled or has lapsed"
        )
    );
    assert_eq!(
        session_status(&deployment, &acme, &cancelled).await,
        "cancelled"
    );
    deployment.close().await;
}
on_both_backends!(redeeming_a_code_records_it_and_a_cancelled_offer_gets_no_token);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_methods_and_offer_handles_are_refused() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let response = http()
        .get(format!("{}/nonce", acme.issuer_base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(header(&response, "allow"), "POST, OPTIONS");
    for url in [
        format!("{}/offers/never-made", acme.issuer_base),
        format!("{}/token", acme.issuer_base),
        format!(
            "{}/.well-known/openid-credential-issuer/nobody",
            acme.issuer_origin
        ),
    ] {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{url}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json",
            "{url}"
        );
    }
    let preflight = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/credential", acme.issuer_base),
        )
        .header("origin", "https://wallet.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert_eq!(
        header(&preflight, "access-control-allow-headers"),
        "Authorization, Content-Type, DPoP"
    );
    deployment.close().await;
}
