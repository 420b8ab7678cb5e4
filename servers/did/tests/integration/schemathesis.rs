//! schemathesis (PyPI, pinned) fuzzes the admin, registrar and resolver APIs from the OpenAPI
//! document with every check: no 5xx (except `501` where DID Resolution prescribes it), and
//! every status, content type, header and body as the document says.

use edk_testkit::schemathesis;
use serde_json::{Value, json};

use crate::support::Deployment;

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# DID Resolution prescribes 501 for METHOD_NOT_SUPPORTED and FEATURE_NOT_SUPPORTED.
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]

# Random identifiers are rarely DIDs, and random DIDs do not exist: the resolver answers
# them with DID Resolution's statuses (400 INVALID_DID, 404 NOT_FOUND, 501 for an unknown
# method, 410 for a deactivated DID).
[[operations]]
include-operation-id = "resolveDid"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "404", "410", "501"]

# The registrar and admin writes check what a schema cannot say: a witness threshold up to
# the number of witnesses, Ed25519 did:key witnesses, path segments, KMS aliases `did.<name>`,
# algorithms and relationships (400); a method without that operation (422).
[[operations]]
include-operation-id-regex = "^(registrar(Create|Update|Deactivate)|createIdentifier|addVerificationMethod|addWitnessProof)$"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let url = deployment.url("/openapi.json");
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
    assert!(run.output.contains("Tested: 13"), "{summary}");
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
    deployment.close().await;
}
