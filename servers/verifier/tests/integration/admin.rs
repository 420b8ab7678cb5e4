//! The admin API on SQLite and PostgreSQL: stored queries with versions, requests with each
//! client identifier prefix that needs no certificate, sessions by id and correlation id,
//! refusals of unusable input, and another tenant seeing none of it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Deployment, identity_query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_requests_and_sessions_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    queries_requests_and_sessions(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_requests_and_sessions_on_postgres() {
    let deployment = Deployment::postgres().await;
    queries_requests_and_sessions(&deployment).await;
    deployment.close().await;
}

fn query_param(uri: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(uri).unwrap();
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn queries_requests_and_sessions(deployment: &Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;

    // Queries: validated, versioned, per tenant.
    let (status, body) = deployment
        .admin(
            &acme,
            Method::PUT,
            "/queries/identity",
            Some(json!({"dcql_query": {"credentials": []}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = deployment
        .admin(
            &acme,
            Method::PUT,
            "/queries/not%20an%20id",
            Some(json!({"dcql_query": identity_query()})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    for version in 1..=2 {
        let (status, body) = deployment
            .admin(
                &acme,
                Method::PUT,
                "/queries/identity",
                Some(json!({"dcql_query": identity_query()})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], version);
    }
    let (status, body) = deployment
        .admin(&acme, Method::GET, "/queries/identity", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dcql_query"], identity_query());
    let (status, _) = deployment
        .admin(&globex, Method::GET, "/queries/identity", None)
        .await;
    assert_eq!(status, 404);

    // A stored query, the redirect_uri prefix: the request travels by value.
    let (status, made) = deployment
        .admin(
            &acme,
            Method::POST,
            "/requests",
            Some(json!({
                "query_id": "identity", "client_id_prefix": "redirect_uri",
                "correlation_id": "order-1"
            })),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let uri = made["authorization_request_uri"].as_str().unwrap();
    assert!(uri.starts_with("openid4vp://?"), "{uri}");
    let response_uri = format!("{}/response", acme.verifier);
    assert_eq!(
        query_param(uri, "client_id").unwrap(),
        format!("redirect_uri:{response_uri}")
    );
    assert_eq!(query_param(uri, "response_uri").unwrap(), response_uri);
    assert!(query_param(uri, "nonce").is_some());
    assert!(made.get("request_uri").is_none(), "{made}");
    let session_id = made["session_id"].as_str().unwrap().to_owned();

    // An inline query, decentralized_identifier and direct_post.jwt: by reference.
    let (status, signed) = deployment
        .admin(
            &acme,
            Method::POST,
            "/requests",
            Some(json!({
                "dcql_query": identity_query(),
                "client_id_prefix": "decentralized_identifier",
                "response_mode": "direct_post.jwt",
                "lifetime_secs": 1
            })),
        )
        .await;
    assert_eq!(status, 201, "{signed}");
    let request_uri = signed["request_uri"].as_str().unwrap();
    assert!(
        request_uri.starts_with(&format!("{}/requests/", acme.verifier)),
        "{request_uri}"
    );
    let uri = signed["authorization_request_uri"].as_str().unwrap();
    assert_eq!(query_param(uri, "request_uri").unwrap(), request_uri);
    assert!(
        query_param(uri, "client_id")
            .unwrap()
            .starts_with("decentralized_identifier:did:jwk:"),
        "{uri}"
    );
    assert!(query_param(uri, "nonce").is_none(), "{uri}");

    // Refusals.
    for (body, expected) in [
        (
            json!({"query_id": "missing", "client_id_prefix": "redirect_uri"}),
            404,
        ),
        (
            json!({"query_id": "identity", "dcql_query": identity_query(),
                   "client_id_prefix": "redirect_uri"}),
            400,
        ),
        (json!({"client_id_prefix": "redirect_uri"}), 400),
        (
            json!({"query_id": "identity", "client_id_prefix": "redirect_uri",
                   "lifetime_secs": 0}),
            400,
        ),
        (
            json!({"query_id": "identity", "client_id_prefix": "redirect_uri",
                   "transaction_data": [{"type": "payment", "credential_ids": ["other"]}]}),
            400,
        ),
        (
            json!({"query_id": "identity", "client_id_prefix": "redirect_uri",
                   "correlation_id": "order-1"}),
            409,
        ),
        // No certificate for verifier.request-object-signing yet.
        (
            json!({"query_id": "identity", "client_id_prefix": "x509_hash"}),
            409,
        ),
        (json!({"query_id": "identity"}), 409),
    ] {
        let (status, problem) = deployment
            .admin(&acme, Method::POST, "/requests", Some(body.clone()))
            .await;
        assert_eq!(status, expected, "{body}: {problem}");
    }

    // Sessions by id and by correlation id.
    let (status, session) = deployment
        .admin(&acme, Method::GET, &format!("/sessions/{session_id}"), None)
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["status"], "created");
    assert_eq!(session["query_id"], "identity");
    assert_eq!(session["correlation_id"], "order-1");
    assert_eq!(session["response_mode"], "direct_post");
    assert_eq!(session["dcql_query"], identity_query());
    assert!(session.get("claims").is_none(), "{session}");
    let (status, found) = deployment
        .admin(&acme, Method::GET, "/sessions?correlation_id=order-1", None)
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["id"], Value::from(session_id.clone()));

    // Another tenant sees none of it.
    let (status, _) = deployment
        .admin(
            &globex,
            Method::GET,
            &format!("/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = deployment
        .admin(
            &globex,
            Method::GET,
            "/sessions?correlation_id=order-1",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // A request past its lifetime is expired.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, lapsed) = deployment
        .admin(
            &acme,
            Method::GET,
            &format!("/sessions/{}", signed["session_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{lapsed}");
    assert_eq!(lapsed["status"], "expired");
    assert_eq!(lapsed["response_mode"], "direct_post.jwt");

    // Deleting a query keeps the sessions made with it.
    let (status, _) = deployment
        .admin(&acme, Method::DELETE, "/queries/identity", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = deployment
        .admin(&acme, Method::GET, "/queries/identity", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = deployment
        .admin(&acme, Method::DELETE, "/queries/identity", None)
        .await;
    assert_eq!(status, 404);
    let (status, session) = deployment
        .admin(&acme, Method::GET, &format!("/sessions/{session_id}"), None)
        .await;
    assert_eq!(status, 200, "{session}");
}
