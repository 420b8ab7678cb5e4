//! The notification endpoint over HTTP (OpenID4VCI 1.0 §11): the `notification_id` of a
//! credential response, the events recorded on the session and published on the tenancy's
//! event bus, and the specified refusals.

use edk_core::jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, http, key_proof, nonce, redeem};

/// Redeems `offer` and fetches its credential: the access token and the response body.
async fn credential(tenant: &Tenant, offer: &Value) -> (String, Value) {
    let response = redeem(tenant, offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let c_nonce = nonce(tenant).await;
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(&token)
        .json(&json!({
            "credential_identifier": format!("{}:identity", offer["session_id"].as_str().unwrap()),
            "proofs": { "jwt": [key_proof(&holder, &tenant.credential_issuer, Some(&c_nonce))] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    (token, response.json().await.unwrap())
}

/// A notification request with `body` (sent as is): status and body.
async fn notify(tenant: &Tenant, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = http()
        .post(format!("{}/notification", tenant.issuer_base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn refusal(code: &str, description: &str) -> (u16, Value) {
    (
        400,
        json!({ "error": code, "error_description": description }),
    )
}

async fn a_wallet_notifies_the_issuer_about_its_credentials(deployment: Deployment) {
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
        metadata["notification_endpoint"],
        format!("{issuer}/notification")
    );

    let offer = deployment.offer(&tenant, false).await;
    let session_id = offer["session_id"].as_str().unwrap();
    let (token, body) = credential(&tenant, &offer).await;
    let notification_id = body["notification_id"].as_str().unwrap().to_owned();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    let mut events = deployment.tenancy.events().subscribe();
    let accepted = json!({ "notification_id": notification_id, "event": "credential_accepted",
        "event_description": "stored in the wallet" })
    .to_string();
    assert_eq!(
        notify(&tenant, Some(&token), &accepted).await,
        (204, Value::Null)
    );
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let edk_tenancy::Event::Custom { topic, payload } = events.recv().await.unwrap()
                && topic == "oid4vci.notification"
            {
                return payload;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        event,
        json!({ "tenant": tenant.id, "session_id": session_id, "event": "credential_accepted" })
    );
    let deleted = json!({ "notification_id": notification_id, "event": "credential_deleted" });
    assert_eq!(
        notify(&tenant, Some(&token), &deleted.to_string()).await,
        (204, Value::Null)
    );

    let session = deployment.session(&tenant, session_id).await;
    assert_eq!(session["status"], "notified");
    let notifications = session["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 2, "{session}");
    assert_eq!(notifications[0]["event"], "credential_accepted");
    assert_eq!(
        notifications[0]["event_description"],
        "stored in the wallet"
    );
    assert!(notifications[0]["received_at"].as_i64().unwrap() > 0);
    assert_eq!(
        notifications[1],
        json!({ "event": "credential_deleted", "received_at": notifications[1]["received_at"] })
    );

    // Refusals, none of which records anything.
    let id = notification_id.as_str();
    for (body, expected) in [
        (
            json!({ "notification_id": "unknown", "event": "credential_accepted" }).to_string(),
            refusal(
                "invalid_notification_id",
                "the notification_id is unknown or expired",
            ),
        ),
        (
            json!({ "notification_id": id }).to_string(),
            refusal("invalid_notification_request", "event is missing"),
        ),
        (
            json!({ "event": "credential_accepted" }).to_string(),
            refusal("invalid_notification_request", "notification_id is missing"),
        ),
        (
            json!({ "notification_id": id, "event": "credential_lost" }).to_string(),
            refusal(
                "invalid_notification_request",
                "event must be credential_accepted, credential_failure or credential_deleted",
            ),
        ),
        (
            json!({ "notification_id": id, "event": "credential_failure",
                "event_description": "a \"quoted\" reason" })
            .to_string(),
            refusal(
                "invalid_notification_request",
                "event_description must be printable ASCII without double quote or backslash",
            ),
        ),
        (
            json!({ "notification_id": id, "event": "credential_failure", "extra": 1 }).to_string(),
            refusal(
                "invalid_notification_request",
                "unsupported parameter extra",
            ),
        ),
        (
            "{\"notification_id\":".to_owned(),
            refusal(
                "invalid_notification_request",
                "the request body is not JSON",
            ),
        ),
        (
            "[]".to_owned(),
            refusal(
                "invalid_notification_request",
                "the request body is not a JSON object",
            ),
        ),
    ] {
        assert_eq!(
            notify(&tenant, Some(&token), &body).await,
            expected,
            "{body}"
        );
    }
    assert_eq!(notify(&tenant, None, &accepted).await, (401, Value::Null));

    // Another session's wallet cannot use this notification_id.
    let other = deployment.offer(&tenant, false).await;
    let (other_token, _) = credential(&tenant, &other).await;
    assert_eq!(
        notify(&tenant, Some(&other_token), &accepted).await,
        refusal(
            "invalid_notification_id",
            "the notification_id is unknown or expired"
        )
    );
    let (_, session) = deployment
        .admin(
            &tenant,
            reqwest::Method::GET,
            &format!("/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(session["notifications"].as_array().unwrap().len(), 2);
    deployment.close().await;
}
on_both_backends!(a_wallet_notifies_the_issuer_about_its_credentials);
