//! The admin API over HTTP: configurations checked and stored, offers by value with their
//! transaction code shown once, sessions read and cancelled, RFC 9457 problems.

use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::Deployment;

const NOT_FOUND: &str = "https://edk.dev/problems/not-found";

async fn configurations_offers_and_sessions_are_managed(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    let other = deployment.tenant("other").await;

    let (status, body) = deployment
        .admin(
            &acme,
            Method::PUT,
            "/configurations/identity",
            Some(json!({ "configuration": { "format": "dc+sd-jwt" } })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "configuration: missing field `vct`");

    deployment.configure(&acme).await;
    let (status, list) = deployment
        .admin(&acme, Method::GET, "/configurations", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["configurations"][0]["id"], "identity");
    assert_eq!(
        list["configurations"][0]["settings"]["lifetime_secs"],
        86400
    );
    let (status, one) = deployment
        .admin(&acme, Method::GET, "/configurations/identity", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one, list["configurations"][0]);
    // Another tenant's token sees none of it.
    let (status, body) = deployment
        .admin(&other, Method::GET, "/configurations/identity", None)
        .await;
    assert_eq!((status, &body["type"]), (404, &json!(NOT_FOUND)));

    let (status, body) = deployment
        .admin(
            &acme,
            Method::POST,
            "/offers",
            Some(json!({ "credential_configuration_ids": ["passport"] })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "credential_configuration_ids: `passport` is not a configuration of this issuer"
    );

    let (status, offer) = deployment
        .admin(
            &acme,
            Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika" } },
                "correlation_id": "order-7",
            })),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    assert!(offer.get("tx_code").is_none());
    assert!(
        offer["credential_offer_uri"]
            .as_str()
            .unwrap()
            .starts_with("openid-credential-offer://?credential_offer=")
    );
    assert_eq!(
        offer["credential_offer"]["credential_issuer"],
        acme.credential_issuer.as_str()
    );
    let session_id = offer["session_id"].as_str().unwrap();
    let session = deployment.session(&acme, session_id).await;
    assert_eq!(
        (
            &session["status"],
            &session["correlation_id"],
            &session["credential_configuration_ids"]
        ),
        (&json!("offered"), &json!("order-7"), &json!(["identity"]))
    );
    assert!(session.get("claims").is_none());
    // The operator finds it again by its correlation_id; another tenant does not.
    let (status, found) = deployment
        .admin(&acme, Method::GET, "/sessions?correlation_id=order-7", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(found, json!([session]));
    let (status, found) = deployment
        .admin(
            &other,
            Method::GET,
            "/sessions?correlation_id=order-7",
            None,
        )
        .await;
    assert_eq!((status, found), (200, json!([])));
    let (status, found) = deployment
        .admin(&acme, Method::GET, "/sessions?correlation_id=order-8", None)
        .await;
    assert_eq!((status, found), (200, json!([])));
    let (status, _) = deployment
        .admin(&acme, Method::GET, "/sessions", None)
        .await;
    assert_eq!(status, 400);

    let cancel = format!("/sessions/{session_id}/cancel");
    let (status, body) = deployment.admin(&other, Method::POST, &cancel, None).await;
    assert_eq!(
        (status, &body["detail"]),
        (404, &json!("open issuance session not found"))
    );
    let (status, _) = deployment.admin(&acme, Method::POST, &cancel, None).await;
    assert_eq!(status, 204);
    let (status, body) = deployment.admin(&acme, Method::POST, &cancel, None).await;
    assert_eq!(
        (status, &body["detail"]),
        (404, &json!("open issuance session not found"))
    );
    let (_, session) = deployment
        .admin(&acme, Method::GET, &format!("/sessions/{session_id}"), None)
        .await;
    assert_eq!(session["status"], "cancelled");

    let (status, _) = deployment
        .admin(&acme, Method::DELETE, "/configurations/identity", None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = deployment
        .admin(&acme, Method::DELETE, "/configurations/identity", None)
        .await;
    assert_eq!(
        (status, &body["detail"]),
        (404, &json!("credential configuration not found"))
    );
    let (_, list) = deployment
        .admin(&acme, Method::GET, "/configurations", None)
        .await;
    assert_eq!(list, json!({ "configurations": Value::Array(Vec::new()) }));
    deployment.close().await;
}
on_both_backends!(configurations_offers_and_sessions_are_managed);
