use serde_json::{Value, json};

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json, expect_problem};

async fn events(h: &Harness, token: &str, query: &str) -> Value {
    expect_json(h.get(&format!("/audit/events{query}"), token).await, 200).await
}

/// Each tenant reads its own chain, in order and paged; verification finds it intact and
/// checkpoints are signed on request.
async fn audit_chain_per_tenant(backend: Backend) {
    let h = Harness::start(backend).await;
    let token_a = h.token().await;
    let token_b = h.token_for(h.tenant_b, ALL_SCOPES).await;
    let key = json!({ "alias": "issuer.signing", "usage": "sign", "algorithm": "ES256" });
    expect_json(h.post("/keys", &token_a, &key).await, 201).await;
    let sign = json!({ "key": "issuer.signing", "message": "aGk" });
    for _ in 0..2 {
        expect_json(h.post("/signatures/raw/create", &token_a, &sign).await, 200).await;
    }
    let unknown = json!({ "key": "issuer.unknown", "message": "aGk" });
    expect_problem(
        h.post("/signatures/raw/create", &token_a, &unknown).await,
        404,
    )
    .await;
    let b_key =
        json!({ "alias": "b-service.secret-purpose", "usage": "sign", "algorithm": "ES256" });
    expect_json(h.post("/keys", &token_b, &b_key).await, 201).await;

    let page = events(&h, &token_a, "").await;
    let list = page["events"].as_array().unwrap();
    let operations: Vec<(&str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        operations,
        [
            ("create_key", "success"),
            ("sign", "success"),
            ("sign", "success"),
            ("sign", "failure:not found"),
        ]
    );
    for (index, event) in list.iter().enumerate() {
        assert_eq!(event["seq"], index + 1);
        assert_eq!(event["actor"], "ops@example.test");
        if index > 0 {
            assert_eq!(event["prev_hash"], list[index - 1]["hash"]);
        }
    }
    assert!(page["next_after"].is_null());
    let text = page.to_string();
    assert!(!text.contains("b-service"), "{text}");
    assert!(
        !text.contains("aGk"),
        "no message bytes in the audit: {text}"
    );

    let b_page = events(&h, &token_b, "").await;
    let b_list = b_page["events"].as_array().unwrap();
    assert_eq!(b_list.len(), 1);
    assert_eq!(b_list[0]["seq"], 1);
    assert_eq!(b_list[0]["alias"], "b-service.secret-purpose");

    let first = events(&h, &token_a, "?limit=2").await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_after"], 2);
    let rest = events(&h, &token_a, "?after=2&limit=2").await;
    assert_eq!(rest["events"][0]["seq"], 3);
    assert_eq!(rest["events"][1]["seq"], 4);

    let report = expect_json(h.post("/audit/verify", &token_a, &json!({})).await, 200).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"], 4);
    assert!(report["problem"].is_null());

    let checkpoint = expect_json(
        h.post("/audit/checkpoints", &token_a, &json!({})).await,
        201,
    )
    .await;
    assert_eq!(checkpoint["seq"], 4);
    assert_eq!(checkpoint["hash"], list[3]["hash"]);
    assert_eq!(checkpoint["jws"].as_str().unwrap().split('.').count(), 3);
    // The first checkpoint created the tenant's checkpoint key (an audited operation), so
    // the head moved once; after one more checkpoint it is up to date.
    expect_json(
        h.post("/audit/checkpoints", &token_a, &json!({})).await,
        201,
    )
    .await;
    let up_to_date = h.post("/audit/checkpoints", &token_a, &json!({})).await;
    assert_eq!(up_to_date.status(), 204);

    let report = expect_json(h.post("/audit/verify", &token_a, &json!({})).await, 200).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["checkpoints"], 2);
    let b_report = expect_json(h.post("/audit/verify", &token_b, &json!({})).await, 200).await;
    assert_eq!(b_report["records"], 1);
    assert_eq!(b_report["checkpoints"], 0);

    h.stop().await;
}

#[tokio::test]
async fn audit_chain_per_tenant_on_postgres() {
    audit_chain_per_tenant(Backend::Postgres).await;
}

#[tokio::test]
async fn audit_chain_per_tenant_on_sqlite() {
    audit_chain_per_tenant(Backend::Sqlite).await;
}

/// Paging limits and scopes are enforced.
#[tokio::test]
async fn audit_requests_are_checked() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    for query in ["?limit=0", "?limit=1001", "?after=-1", "?limit=abc"] {
        let response = h.get(&format!("/audit/events{query}"), &token).await;
        expect_problem(response, 400).await;
    }
    let reader = h.token_for(h.tenant_a, "kms:read").await;
    events(&h, &reader, "").await;
    expect_problem(h.post("/audit/checkpoints", &reader, &json!({})).await, 403).await;
    let signer = h.token_for(h.tenant_a, "kms:use").await;
    expect_problem(h.get("/audit/events", &signer).await, 403).await;
    h.stop().await;
}
