//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document with every
//! check: no 5xx, and every status, content type, header and body as the document says.

use edk_testkit::schemathesis;
use serde_json::{Value, json};

use crate::support::Deployment;

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Random configurations break their format's rules, random offers name configurations that
# do not exist, random session ids name no session, and a session that is not deferred
# cannot be completed or failed (400, 404, 409), which no schema can say.
[[operations]]
include-operation-id-regex = "^(putConfiguration|getConfiguration|deleteConfiguration|createOffer|getSession|cancelSession|completeSession|failSession|getOfferQr)$"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    deployment.configure(&acme).await;
    let token = deployment
        .admin_token(acme.id, "oid4vci:read oid4vci:write")
        .await;
    let url = deployment.issuer_http.url("/openapi.json");
    let document: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let secured = schemathesis::secured_operations(&document);
    let run = tokio::task::spawn_blocking(move || {
        schemathesis::run_document(CONFIG, &url, &token, &json!({}), &json!({}))
    })
    .await
    .unwrap();
    let summary = run.summary(&secured);
    assert!(run.success, "schemathesis found failures:\n{}", run.output);
    // Every operation of the document was exercised, and got past authentication.
    assert!(run.output.contains("Tested: 17"), "{summary}");
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
    deployment.close().await;
}
