//! Two platform replicas on one PostgreSQL database, behind one public host (the first
//! replica's `localhost:<port>`; requests to the second carry that `Host`): setup closed on
//! one is closed on the other, a tenant onboarded on one is read and managed on the other,
//! and a change made on one (a binding, a suspension) is served by the other at once
//! through the tenancy's events.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, Platform, eventually, read};

const TENANTS: &str = "/api/platform/v1/tenants";

/// Sends `method path` to `replica` as a request for the public host `host`.
async fn call(
    replica: &Platform,
    host: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}{path}", replica.http.addr().port());
    let mut request = replica.client.request(method, url).header("host", host);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn two_replicas_share_setup_tenants_and_changes_on_postgres() {
    let a = Platform::start(Backend::Postgres).await;
    let b = a.replica().await;
    let port = a.http.addr().port();
    let host = format!("localhost:{port}");
    // One public host for both: the operator authorization server is bound there again.
    b.started
        .bind_operator_endpoint("localhost", Some(port), true)
        .await
        .unwrap();

    // B started while setup was open and handed out the current token; setup through A
    // closes it for B too.
    let token = b.setup_token();
    let (status, operator) = call(
        &a,
        &host,
        Method::POST,
        "/api/platform/v1/setup",
        None,
        Some(json!({"setup_token": token, "client_name": "ops"})),
    )
    .await;
    assert_eq!(status, 201, "{operator}");
    let (status, problem) = call(
        &b,
        &host,
        Method::POST,
        "/api/platform/v1/setup",
        None,
        Some(json!({"setup_token": token})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");

    // An operator token from the operator authorization server, through B.
    let (status, answer) = read(
        b.client
            .post(format!(
                "http://127.0.0.1:{}/operators/token",
                b.http.addr().port()
            ))
            .header("host", &host)
            .basic_auth(
                operator["client_id"].as_str().unwrap(),
                operator["client_secret"].as_str(),
            )
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "scope",
                    "platform:tenants:read platform:tenants:write tenant:config:write",
                ),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let operator_token = answer["access_token"].as_str().unwrap().to_owned();

    // Onboarded on A; read and managed on B.
    let (status, tenant) = call(
        &a,
        &host,
        Method::POST,
        TENANTS,
        Some(&operator_token),
        Some(json!({"slug": "acme", "display_name": "Acme", "bindings": [
            {"service": "as", "host": "localhost", "port": port, "path_prefix": "/acme",
             "dangerous_loopback_http": true}]})),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_owned();
    let (status, seen) = call(
        &b,
        &host,
        Method::GET,
        &format!("{TENANTS}/{id}"),
        Some(&operator_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["onboarding"], tenant["onboarding"]);
    let metadata = |replica: &'static str, prefix: &'static str| {
        let (replica, host) = (if replica == "a" { &a } else { &b }, host.clone());
        async move {
            call(
                replica,
                &host,
                Method::GET,
                &format!("/.well-known/oauth-authorization-server/{prefix}"),
                None,
                None,
            )
            .await
            .0
        }
    };
    eventually("B serving the tenant's authorization server", || async {
        metadata("b", "acme").await == 200
    })
    .await;

    // A binding changed on A is served by B.
    let (status, binding) = call(
        &a,
        &host,
        Method::PUT,
        &format!("{TENANTS}/{id}/bindings/as"),
        Some(&operator_token),
        Some(
            json!({"host": "localhost", "port": port, "path_prefix": "/acme-2",
                    "dangerous_loopback_http": true}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{binding}");
    eventually("B following the new binding", || async {
        metadata("b", "acme-2").await == 200 && metadata("b", "acme").await == 404
    })
    .await;

    // Suspended on B: A stops serving it; resumed on A: B serves it again.
    let (status, suspended) = call(
        &b,
        &host,
        Method::POST,
        &format!("{TENANTS}/{id}/suspend"),
        Some(&operator_token),
        None,
    )
    .await;
    assert_eq!(
        (status, suspended["status"].as_str()),
        (200, Some("suspended"))
    );
    eventually("A stopping the suspended tenant", || async {
        metadata("a", "acme-2").await == 404
    })
    .await;
    let (status, _) = call(
        &a,
        &host,
        Method::POST,
        &format!("{TENANTS}/{id}/resume"),
        Some(&operator_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    eventually("B serving the resumed tenant", || async {
        metadata("b", "acme-2").await == 200
    })
    .await;

    b.close().await;
    a.close().await;
}
