use crate::support::{Harness, assert_problem};

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/api/echo"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 400, "invalid-request").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("parse"), "{detail}");
}

#[tokio::test]
async fn wrong_shape_is_a_400_problem() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/api/echo"))
        .json(&serde_json::json!({ "nom": "x" }))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "invalid-request").await;
}

#[tokio::test]
async fn an_explicit_null_for_a_member_the_document_does_not_make_nullable_is_a_400_problem() {
    let h = Harness::start().await;
    let post = |body: serde_json::Value| h.client.post(h.url("/api/echo")).json(&body).send();
    let response = post(serde_json::json!({ "name": "x", "nickname": null }))
        .await
        .unwrap();
    let body = assert_problem(response, 400, "invalid-request").await;
    assert_eq!(
        body["detail"],
        "`nickname` must not be null: leave it out instead"
    );
    // Absent is fine, and so is null inside a free-form value.
    let response = post(serde_json::json!({ "name": "x", "extra": { "a": null } }))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echoed["extra"], serde_json::json!({ "a": null }));
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/api/echo"))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported-media-type").await;
}

#[tokio::test]
async fn oversized_body_is_a_413_problem() {
    let h = Harness::start().await;
    let name = "x".repeat(2 * 1024 * 1024);
    let response = h
        .client
        .post(h.url("/api/echo"))
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload-too-large").await;
}

#[tokio::test]
async fn oversized_body_without_length_is_refused_with_a_413_problem() {
    let h = Harness::start().await;
    let chunk = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(chunk)]);
    let response = h
        .client
        .post(h.url("/api/echo"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 413, "payload-too-large").await;
    assert_eq!(
        problem["detail"],
        format!("the request body is larger than {} bytes", 1024 * 1024)
    );
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/health/nope")).send().await.unwrap();
    assert_problem(response, 404, "not-found").await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let h = Harness::start().await;
    let response = h.client.get(h.url("/api/echo")).send().await.unwrap();
    // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
    assert_eq!(response.headers()["allow"], "POST");
    assert_problem(response, 405, "method-not-allowed").await;
    let response = h.client.delete(h.url("/health/live")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    assert_problem(response, 405, "method-not-allowed").await;
}
