//! Rate limits on the public verifier surface: a refusal is a `too-many-requests` problem
//! with `Retry-After`, counted per tenant, before the request is read.

use std::sync::Arc;

use edk_core::SystemClock;
use edk_server::{HttpConfig, Metrics, RateLimitConfig, RateLimiter, spawn_server};
use poem::Route;
use serde_json::{Value, json};

use crate::support::{Deployment, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_uri_is_cut_off_past_the_tenant_limit_with_a_problem() {
    let deployment = Deployment::sqlite().await;
    deployment.tenant("acme").await;
    deployment.tenant("other").await;
    let config: RateLimitConfig = serde_json::from_value(json!({
        "limits": {"per_tenant": {"requests": 2, "window_secs": 60}}
    }))
    .unwrap();
    let metrics = Metrics::new().unwrap();
    let limiter = RateLimiter::new(&config, Arc::new(SystemClock), Some(&metrics)).unwrap();
    let limited = deployment
        .parts
        .protocol_endpoint()
        .with_rate_limiter(limiter);
    let server = spawn_server(edk_server::app(
        &HttpConfig::default(),
        &metrics,
        None,
        Route::new().nest("/", limited),
    ))
    .await
    .unwrap();
    let host = format!("localhost:{}", deployment.verifier_http.addr().port());
    let post = |slug: &str| {
        http()
            .post(server.url(&format!("/{slug}/response")))
            .header("host", &host)
            .form(&[("response", "not-a-response")])
            .send()
    };
    for _ in 0..2 {
        let status = post("acme").await.unwrap().status().as_u16();
        assert_eq!(status, 400);
    }
    let refused = post("acme").await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://edk.dev/problems/too-many-requests"
    );
    assert_eq!(problem["status"], 429);
    // The other tenant has a budget of its own.
    assert_eq!(post("other").await.unwrap().status().as_u16(), 400);
    server.shutdown().await.unwrap();
    deployment.close().await;
}
