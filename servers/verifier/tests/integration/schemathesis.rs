//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document with every
//! check: no 5xx, and every status, content type, header and body as the document says.

use edk_testkit::schemathesis;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Deployment, identity_query};

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Random DCQL queries break the query rules, random query and session ids name nothing, a
# request names both or neither of query_id and dcql_query, the x509 prefixes need a
# certificate and the verifier_attestation prefix an attestation the tenant does not have, and
# random strings are no verifier attestation of the tenant's key (400, 404, 409), which no
# schema can say.
[[operations]]
include-operation-id-regex = "^(putDcqlQuery|getDcqlQuery|deleteDcqlQuery|createPresentationRequest|getPresentationSession|findPresentationSession|putVerifierAttestation|getVerifierAttestation|deleteVerifierAttestation)$"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let (status, _) = deployment
        .admin(
            &acme,
            Method::PUT,
            "/queries/identity",
            Some(json!({"dcql_query": identity_query()})),
        )
        .await;
    assert_eq!(status, 200);
    let token = deployment
        .admin_token(acme.id, "oid4vp:read oid4vp:write")
        .await;
    let url = deployment.verifier_http.url("/openapi.json");
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
    assert!(run.output.contains("Tested: 12"), "{summary}");
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
    deployment.close().await;
}
