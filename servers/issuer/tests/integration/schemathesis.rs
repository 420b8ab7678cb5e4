//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document with every
//! check: no 5xx, and every status, content type, header and body as the document says.

use std::process::Command;

use crate::support::{Deployment, workspace_root};

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
    assert!(stdout.contains("Tested: 17"), "{stdout}");
    deployment.close().await;
}
