use std::path::PathBuf;
use std::process::Command;

use crate::support::{Backend, Harness};

fn schemathesis() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cli = root.join("target/interop/venv/bin/schemathesis");
    assert!(
        cli.exists(),
        "{} is missing: run scripts/test (or scripts/test --setup-only) to install the pinned Python peers",
        cli.display()
    );
    cli
}

/// Fuzzes the live server from its own OpenAPI document: no request may get a 5xx and every
/// response must match the documented schema, status and content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let schema = h.server.url("/openapi.json");
    let base = h.server.url("");
    let report = tempfile::tempdir().unwrap();
    let report_dir = report.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis())
            .arg("run")
            .arg(&schema)
            .arg("--url")
            .arg(&base)
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"))
            .arg("--checks")
            .arg("not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance")
            .arg("--max-examples")
            .arg("5")
            .arg("--seed")
            .arg("20261123")
            .arg("--workers")
            .arg("4")
            .arg("--request-timeout")
            .arg("10")
            .arg("--report-dir")
            .arg(&report_dir)
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    h.stop().await;
    assert!(
        output.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
}
