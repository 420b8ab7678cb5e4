//! Deferred issuance over HTTP (OpenID4VCI 1.0 §8.3, §9): the credential endpoint answers
//! 202 with a `transaction_id`, the wallet polls the deferred credential endpoint, the
//! operator completes or fails the session through the admin API, and the credentials are
//! handed out exactly once.

use edk_core::jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, http, key_proof, nonce, python_verify, redeem};

/// An offer of `identity` with a 6-digit transaction code, deferred when `deferred`.
async fn offer(deployment: &Deployment, tenant: &Tenant, deferred: bool) -> Value {
    let (status, body) = deployment
        .admin(
            tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika", "family_name": "Mustermann" } },
                "tx_code": { "digits": 6 },
                "deferred": deferred,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// A wallet that redeemed `offer`: its access token and the credential identifier.
struct Wallet {
    token: String,
    identifier: String,
    holder: SigningKey,
}

impl Wallet {
    async fn of(tenant: &Tenant, offer: &Value) -> Self {
        let response = redeem(tenant, offer, None).await;
        assert_eq!(response.status().as_u16(), 200);
        let token: Value = response.json().await.unwrap();
        Self {
            token: token["access_token"].as_str().unwrap().to_owned(),
            identifier: format!("{}:identity", offer["session_id"].as_str().unwrap()),
            holder: SigningKey::generate(Algorithm::Es256).unwrap(),
        }
    }

    /// The credential request with a fresh proof: status and body.
    async fn request_credential(&self, tenant: &Tenant) -> (u16, Value) {
        let c_nonce = nonce(tenant).await;
        let response = http()
            .post(format!("{}/credential", tenant.issuer_base))
            .bearer_auth(&self.token)
            .json(&json!({
                "credential_identifier": self.identifier,
                "proofs": { "jwt": [key_proof(&self.holder, &tenant.credential_issuer, Some(&c_nonce))] },
            }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        (status, response.json().await.unwrap())
    }

    /// A deferred credential request with `body`: status and body.
    async fn poll(&self, tenant: &Tenant, body: &Value) -> (u16, Value) {
        deferred_request(tenant, Some(&self.token), body).await
    }
}

async fn deferred_request(tenant: &Tenant, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = http()
        .post(format!("{}/deferred_credential", tenant.issuer_base))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn session_status(deployment: &Deployment, tenant: &Tenant, session_id: &str) -> Value {
    let session = deployment.session(tenant, session_id).await;
    session["status"].clone()
}

fn invalid_transaction() -> Value {
    json!({
        "error": "invalid_transaction_id",
        "error_description": "the transaction_id is unknown, expired or was already used",
    })
}

async fn a_deferred_credential_is_handed_out_once_after_the_operator_completes_it(
    deployment: Deployment,
) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    let issuer = &tenant.credential_issuer;
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/openid-credential-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["deferred_credential_endpoint"],
        format!("{issuer}/deferred_credential")
    );

    let offer = offer(&deployment, &tenant, true).await;
    let session_id = offer["session_id"].as_str().unwrap();
    let wallet = Wallet::of(&tenant, &offer).await;
    let (status, body) = wallet.request_credential(&tenant).await;
    assert_eq!(status, 202, "{body}");
    let transaction_id = body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({ "transaction_id": transaction_id, "interval": 5 })
    );
    assert_eq!(
        session_status(&deployment, &tenant, session_id).await,
        "deferred"
    );

    // Pending: the same transaction and the interval, as often as the wallet asks.
    let poll = json!({ "transaction_id": transaction_id });
    for _ in 0..2 {
        assert_eq!(wallet.poll(&tenant, &poll).await, (202, body.clone()));
    }
    assert_eq!(
        wallet
            .poll(&tenant, &json!({ "transaction_id": "not-a-transaction" }))
            .await,
        (400, invalid_transaction())
    );
    assert_eq!(
        wallet.poll(&tenant, &json!({})).await,
        (
            400,
            json!({"error": "invalid_credential_request",
                "error_description": "transaction_id is missing"})
        )
    );
    assert_eq!(
        wallet.poll(&tenant, &json!({ "transaction_id": 7 })).await,
        (
            400,
            json!({"error": "invalid_credential_request",
                "error_description": "transaction_id must be a non-empty string"})
        )
    );
    assert_eq!(
        deferred_request(&tenant, None, &poll).await,
        (401, Value::Null)
    );

    // The operator completes the session with the claims it now has.
    let (status, settled) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            &format!("/sessions/{session_id}/complete"),
            Some(json!({ "claims": { "identity": { "given_name": "Max", "family_name": "Mustermann" } } })),
        )
        .await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(settled["settled"], 1);
    assert_eq!(settled["session"]["status"], "deferred");
    let (status, again) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            &format!("/sessions/{session_id}/complete"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["settled"], 0);

    // Many concurrent redemptions of the transaction: exactly one gets the credential.
    let attempts = 32;
    let answers = futures::future::join_all(
        (0..attempts).map(|_| deferred_request(&tenant, Some(&wallet.token), &poll)),
    )
    .await;
    let delivered: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(delivered.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!((*status, body.clone()), (400, invalid_transaction()));
    }
    let credentials = delivered[0]["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    assert!(
        delivered[0]["notification_id"].is_string(),
        "{}",
        delivered[0]
    );
    let jwks = deployment.issuer_jwks(&tenant).await;
    let payload = python_verify(
        credentials[0]["credential"].as_str().unwrap().to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(payload["given_name"], "Max");
    assert_eq!(payload["iss"], issuer.as_str());
    assert_eq!(
        payload["cnf"]["jwk"]["x"],
        serde_json::to_value(wallet.holder.public_jwk()).unwrap()["x"]
    );
    assert_eq!(
        wallet.poll(&tenant, &poll).await,
        (400, invalid_transaction())
    );
    assert_eq!(
        session_status(&deployment, &tenant, session_id).await,
        "credential_issued"
    );
    let (status, problem) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            &format!("/sessions/{session_id}/complete"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["detail"], "the issuance session is not deferred");
    deployment.close().await;
}
on_both_backends!(a_deferred_credential_is_handed_out_once_after_the_operator_completes_it);

async fn a_transaction_is_redeemed_only_in_its_own_session_and_tenant(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    deployment.configure(&acme).await;
    let globex = deployment.tenant("globex").await;
    // globex defers by configuration, not by offer.
    let (status, body) = deployment
        .admin(
            &globex,
            reqwest::Method::PUT,
            "/configurations/identity",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": "https://credentials.example.com/identity",
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "proof_types_supported": {
                        "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
                    },
                },
                "settings": { "deferred": true },
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["deferred"], true);

    let acme_offer = offer(&deployment, &acme, true).await;
    let acme_wallet = Wallet::of(&acme, &acme_offer).await;
    let (status, acme_tx) = acme_wallet.request_credential(&acme).await;
    assert_eq!(status, 202, "{acme_tx}");
    let other_offer = offer(&deployment, &acme, true).await;
    let other_wallet = Wallet::of(&acme, &other_offer).await;
    let globex_offer = offer(&deployment, &globex, false).await;
    let globex_wallet = Wallet::of(&globex, &globex_offer).await;
    let (status, globex_tx) = globex_wallet.request_credential(&globex).await;
    assert_eq!(status, 202, "{globex_tx}");

    let acme_poll = json!({ "transaction_id": acme_tx["transaction_id"] });
    // Another session of the tenant, and another tenant, cannot use acme's transaction.
    assert_eq!(
        other_wallet.poll(&acme, &acme_poll).await,
        (400, invalid_transaction())
    );
    assert_eq!(
        globex_wallet.poll(&globex, &acme_poll).await,
        (400, invalid_transaction())
    );
    // acme's token is not valid at globex.
    let (status, body) = acme_wallet.poll(&globex, &acme_poll).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");

    // The operator fails globex's session: the wallet is told once, the session has failed.
    let globex_session = globex_offer["session_id"].as_str().unwrap();
    let (status, failed) = deployment
        .admin(
            &globex,
            reqwest::Method::POST,
            &format!("/sessions/{globex_session}/fail"),
            Some(json!({ "description": "the applicant withdrew" })),
        )
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["settled"], 1);
    assert_eq!(failed["session"]["status"], "failed");
    let globex_poll = json!({ "transaction_id": globex_tx["transaction_id"] });
    assert_eq!(
        globex_wallet.poll(&globex, &globex_poll).await,
        (
            400,
            json!({"error": "credential_request_denied",
                "error_description": "the applicant withdrew"})
        )
    );
    assert_eq!(
        globex_wallet.poll(&globex, &globex_poll).await,
        (400, invalid_transaction())
    );
    let (status, problem) = deployment
        .admin(
            &globex,
            reqwest::Method::POST,
            &format!("/sessions/{globex_session}/fail"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // acme's own wallet still finds its transaction pending, and an unknown session 404s.
    assert_eq!(acme_wallet.poll(&acme, &acme_poll).await.0, 202);
    let (status, _) = deployment
        .admin(
            &acme,
            reqwest::Method::POST,
            "/sessions/00000000-0000-4000-8000-000000000000/complete",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    deployment.close().await;
}
on_both_backends!(a_transaction_is_redeemed_only_in_its_own_session_and_tenant);
