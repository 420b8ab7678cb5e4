//! Two replicas on one PostgreSQL database: a request made on one has its Request Object
//! served once across both, and the same response posted to both at once is accepted by
//! exactly one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::{answer, by_value, issue, pki, present, provision};
use crate::support::{Deployment, http, identity_query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_used_once_across_replicas() {
    let (first, second) = Deployment::postgres_replicas().await;
    let acme = first.tenant("acme").await;
    let issuer = pki("issuer");
    provision(&first, &acme, &issuer).await;
    // Both replicas answer for the host of the tenant's binding.
    let host = format!("localhost:{}", first.verifier_http.addr().port());
    let on = |replica: &Deployment, path: &str| {
        format!(
            "http://127.0.0.1:{}/acme{path}",
            replica.verifier_http.addr().port()
        )
    };

    // The Request Object of a request made on the first replica is served once, whichever
    // replica the wallet reaches.
    let (status, made) = first
        .admin(
            &acme,
            Method::POST,
            "/requests",
            Some(json!({"dcql_query": identity_query(), "client_id_prefix": "x509_san_dns"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let handle = made["request_uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let path = format!("/requests/{handle}");
    let fetched = http()
        .get(on(&second, &path))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    let again = http()
        .get(on(&first, &path))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // One response posted to both replicas at once: one verifies it, the other refuses it.
    let (status, made) = first
        .admin(
            &acme,
            Method::POST,
            "/requests",
            Some(json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let request = by_value(&made);
    let holder = edk_core::jose::SigningKey::generate(edk_core::jose::Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        &request.nonce,
    )
    .await;
    let body = answer(presentation, request.state.clone()).to_form();
    let post = |url: String| {
        let body = body.clone();
        let host = host.clone();
        async move {
            http()
                .post(url)
                .header("host", host)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (one, other) = tokio::join!(
        post(on(&first, "/response")),
        post(on(&second, "/response"))
    );
    let mut statuses = [one, other];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let (status, session) = second
        .admin(
            &acme,
            Method::GET,
            &format!("/sessions/{}", made["session_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["status"], "verified", "{session}");
    assert_eq!(
        session["claims"]["identity"][0]["family_name"],
        Value::from("Mustermann")
    );
    second.close().await;
    first.close().await;
}
