//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document with every
//! check: no 5xx, and every status, content type, header and body as the document says.

use std::process::Command;

use reqwest::Method;
use serde_json::json;

use crate::support::{Deployment, identity_query, workspace_root};

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
    let st = workspace_root().join("target/interop/venv/bin/schemathesis");
    assert!(st.exists(), "{} is missing: run scripts/test", st.display());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(&config)
            .args([
                "run",
                &url,
                "--checks",
                "all",
                "--max-examples",
                "30",
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--seed",
                "1",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every operation of the document was exercised.
    assert!(stdout.contains("Tested: 12"), "{stdout}");
    deployment.close().await;
}
