//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document: no 5xx.

use std::process::Command;

use crate::support::{Deployment, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_in_the_admin_api() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let token = deployment
        .admin_token(acme.id, "oauth2:read oauth2:write")
        .await;
    let url = deployment.first().http.url("/openapi.json");
    let st = workspace_root().join("target/interop/venv/bin/schemathesis");
    assert!(st.exists(), "{} is missing: run scripts/test", st.display());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
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
    deployment.close().await;
}
