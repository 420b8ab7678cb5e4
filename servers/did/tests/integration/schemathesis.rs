//! schemathesis (PyPI, pinned) fuzzes the admin, registrar and resolver APIs from the OpenAPI
//! document. No 5xx, except `501` where DID Resolution prescribes it (`METHOD_NOT_SUPPORTED`
//! for a method this resolver does not know).

use std::process::Command;

use crate::support::{Deployment, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let url = deployment.url("/openapi.json");
    let st = workspace_root().join("target/interop/venv/bin/schemathesis");
    assert!(st.exists(), "{} is missing: run scripts/test", st.display());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[checks.not_a_server_error]\nexpected-statuses = [\"2xx\", \"3xx\", \"4xx\", \"501\"]\n",
    )
    .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(&config)
            .args([
                "run",
                &url,
                "--checks",
                "not_a_server_error",
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
    assert!(stdout.contains("Tested: 13"), "{stdout}");
    deployment.close().await;
}
