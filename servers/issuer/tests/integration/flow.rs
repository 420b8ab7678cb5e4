//! The pre-authorized code flow over HTTP, as a wallet walks it: metadata, the offer by
//! reference, the token at the tenant's AS, a nonce, the credential with a JWT key proof,
//! and the SD-JWT VC verified by PyPI `sd-jwt`; with Bearer and with DPoP-bound tokens.

use edk_core::jose::{Algorithm, SigningKey};
use edk_oid4vci::offer::{OfferReference, parse_offer_uri};
use serde_json::{Value, json};

use crate::support::{
    Deployment, dpop_proof, header, http, key_proof, nonce, python_verify, redeem,
};

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name(crate::support::Deployment::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name(crate::support::Deployment::postgres().await).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

async fn a_wallet_gets_a_credential_that_pypi_sd_jwt_verifies(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    let as_port = deployment.as_http.addr().port();

    // The metadata, at the path-inserted well-known URL.
    let response = http()
        .get(format!(
            "{}/.well-known/openid-credential-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=300");
    let metadata: Value = response.json().await.unwrap();
    let issuer = &tenant.credential_issuer;
    assert_eq!(metadata["credential_issuer"], issuer.as_str());
    assert_eq!(
        metadata["credential_endpoint"],
        format!("{issuer}/credential")
    );
    assert_eq!(metadata["nonce_endpoint"], format!("{issuer}/nonce"));
    assert_eq!(
        metadata["authorization_servers"],
        json!([format!("https://localhost:{as_port}/acme")])
    );
    assert_eq!(
        metadata["credential_configurations_supported"]["identity"]["vct"],
        "https://credentials.example.com/identity"
    );
    // Wallets of drafts before 1.0 append the well-known path to the issuer identifier.
    let appended: Value = http()
        .get(format!(
            "{}/acme/.well-known/openid-credential-issuer",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(appended, metadata);

    // The offer by reference, served once.
    let offer = deployment.offer(&tenant, true).await;
    let tx_code = offer["tx_code"].as_str().unwrap();
    assert_eq!(tx_code.len(), 6);
    assert!(tx_code.bytes().all(|b| b.is_ascii_digit()));
    let OfferReference::Uri(reference) =
        parse_offer_uri(offer["credential_offer_uri"].as_str().unwrap()).unwrap()
    else {
        panic!("expected an offer by reference: {offer}")
    };
    let handle = reference
        .strip_prefix(&format!("{issuer}/offers/"))
        .unwrap();
    let url = format!("{}/offers/{handle}", tenant.issuer_base);
    let served = http().get(&url).send().await.unwrap();
    assert_eq!(served.status().as_u16(), 200);
    let served: Value = served.json().await.unwrap();
    assert_eq!(served, offer["credential_offer"]);
    assert!(!served.to_string().contains(tx_code));
    let again = http().get(&url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 404);

    // The token at the tenant's AS.
    let response = redeem(&tenant, &offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    let session_id = offer["session_id"].as_str().unwrap();
    let identifier = format!("{session_id}:identity");
    assert_eq!(
        token["authorization_details"][0]["credential_identifiers"],
        json!([identifier])
    );

    // The credential.
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let c_nonce = nonce(&tenant).await;
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({
            "credential_identifier": identifier,
            "proofs": { "jwt": [key_proof(&holder, issuer, Some(&c_nonce))] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body: Value = response.json().await.unwrap();
    let credential = body["credentials"][0]["credential"].as_str().unwrap();
    assert_eq!(body["credentials"].as_array().unwrap().len(), 1);

    // A verifier finds the key by the credential's `iss` in the JWT VC Issuer Metadata.
    let response = http()
        .get(format!(
            "{}/.well-known/jwt-vc-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=300");
    let jwt_vc_issuer: Value = response.json().await.unwrap();
    assert_eq!(jwt_vc_issuer["issuer"], issuer.as_str());
    let jwks = deployment.issuer_jwks(&tenant).await;
    assert_eq!(jwt_vc_issuer["jwks"], serde_json::to_value(&jwks).unwrap());
    let issuer_jwk = jwt_vc_issuer["jwks"]["keys"][0].clone();
    let payload = python_verify(credential.to_owned(), issuer_jwk).await;
    assert_eq!(payload["iss"], issuer.as_str());
    assert_eq!(payload["vct"], "https://credentials.example.com/identity");
    assert_eq!(payload["given_name"], "Erika");
    assert_eq!(payload["family_name"], "Mustermann");
    assert_eq!(
        payload["cnf"]["jwk"]["x"],
        serde_json::to_value(holder.public_jwk()).unwrap()["x"]
    );

    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "credential_issued");
    deployment.close().await;
}
on_both_backends!(a_wallet_gets_a_credential_that_pypi_sd_jwt_verifies);

async fn a_dpop_bound_token_needs_a_fresh_proof_at_the_credential_endpoint(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    let offer = deployment.offer(&tenant, false).await;
    let wallet = SigningKey::generate(Algorithm::Es256).unwrap();
    let as_port = deployment.as_http.addr().port();
    let token_htu = format!("https://localhost:{as_port}/acme/token");
    let mut response = redeem(
        &tenant,
        &offer,
        Some(dpop_proof(&wallet, &token_htu, None, None).await),
    )
    .await;
    if response.status().as_u16() == 400 {
        let server_nonce = header(&response, "dpop-nonce").to_owned();
        response = redeem(
            &tenant,
            &offer,
            Some(dpop_proof(&wallet, &token_htu, None, Some(&server_nonce)).await),
        )
        .await;
    }
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "DPoP");
    let access_token = token["access_token"].as_str().unwrap();
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let issuer = &tenant.credential_issuer;
    let credential_htu = format!("{issuer}/credential");
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let request = |scheme: &'static str, dpop: Option<String>, nonce: String| {
        let mut request = http()
            .post(format!("{}/credential", tenant.issuer_base))
            .header("authorization", format!("{scheme} {access_token}"))
            .json(&json!({
                "credential_identifier": identifier,
                "proofs": { "jwt": [key_proof(&holder, issuer, Some(&nonce))] },
            }));
        if let Some(dpop) = dpop {
            request = request.header("dpop", dpop);
        }
        request.send()
    };
    let proof = dpop_proof(&wallet, &credential_htu, Some(access_token), None).await;
    let response = request("DPoP", Some(proof.clone()), nonce(&tenant).await)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // The same DPoP proof again.
    let response = request("DPoP", Some(proof), nonce(&tenant).await)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let algs = edk_oauth::dpop::DPOP_ALGORITHMS
        .iter()
        .map(|alg| alg.name())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        header(&response, "www-authenticate"),
        format!("DPoP error=\"invalid_dpop_proof\", algs=\"{algs}\"")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_dpop_proof", "error_description": "the proof was used before"})
    );

    // The DPoP-bound token as a Bearer token.
    let response = request("Bearer", None, nonce(&tenant).await).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_token",
            "error_description": "a DPoP-bound token was sent as Bearer"})
    );
    deployment.close().await;
}
on_both_backends!(a_dpop_bound_token_needs_a_fresh_proof_at_the_credential_endpoint);
