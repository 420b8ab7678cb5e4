use edk_server::HttpConfig;

use crate::support::Harness;

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = h.client.get(h.url("/no/such/path")).send().await.unwrap();
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains(r#"http_requests_total{method="GET",route="/health/live",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(!metrics.contains("/no/such/path"), "{metrics}");
}

#[tokio::test]
async fn request_id_is_echoed() {
    let h = Harness::start().await;
    let response = h
        .client
        .get(h.url("/health/live"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
}

#[tokio::test]
async fn request_id_is_generated_when_absent() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/health/live")).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn slow_request_times_out_with_a_problem() {
    let http = HttpConfig {
        request_timeout_ms: std::num::NonZeroU64::new(50).unwrap(),
        ..HttpConfig::default()
    };
    let h = Harness::start_with(edk_server::HealthApi::new(), http).await;
    let response = h.client.get(h.url("/api/slow")).send().await.unwrap();
    crate::support::assert_problem(response, 504, "timeout").await;
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let h = Harness::start().await;
    let request = tokio::spawn(h.client.get(h.url("/api/slow")).send());
    h.gate.entered.notified().await;
    let gate = std::sync::Arc::clone(&h.gate);
    let addr = h.server.addr();
    let shutdown = tokio::spawn(h.server.shutdown());
    // The listener closes while the request is still inside its handler.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the listener closes on shutdown");
    gate.release.notify_one();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    shutdown.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_count_requests_per_tenant() {
    let h = Harness::start().await;
    let token = h.token(crate::support::claims()).await;
    for _ in 0..2 {
        let response = h
            .client
            .get(h.url("/api/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = h.client.get(h.url("/api/whoami")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tenant = crate::support::tenant();
    assert!(
        metrics.contains(&format!(
            r#"http_tenant_requests_total{{class="2xx",tenant="{tenant}"}} 2"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_tenant_requests_total{class="4xx",tenant="none"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"http_tenant_request_duration_seconds_count{{tenant="{tenant}"}} 2"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/api/whoami",status="200"} 2"#),
        "{metrics}"
    );
}
