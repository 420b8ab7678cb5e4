//! schemathesis (PyPI, pinned) fuzzes the standalone platform server from its OpenAPI
//! document with every check and an operator token with every platform scope: no 5xx, and
//! every status, content type, header and body as the document says.

use std::process::Command;

use crate::support::{Backend, Platform};

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Schema-valid input the document cannot tell apart from wrong input: a slug, host, path
# prefix, configuration value or upstream setting the rules refuse (400), a tenant id that
# names nothing (400 where it is not a tenant id, 404 where it names no tenant),
# a slug or endpoint another tenant holds or a lifecycle change the tenant's state forbids
# (409), setup once it is closed (403).
[[operations]]
include-operation-id-regex = "^(platformSetup|createTenant|getTenant|suspendTenant|resumeTenant|deleteTenant|listTenantBindings|putTenantBinding|putTenantConfig|createTenantAdmin|setOperatorUpstreamOidc|addFederatedOperator|createOperatorClient)$"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let platform = Platform::start(Backend::Sqlite).await;
    let (status, operator) = platform.setup(&platform.setup_token()).await;
    assert_eq!(status, 201, "{operator}");
    let token = platform
        .operator_token(
            &operator,
            "platform:tenants:read platform:tenants:write tenant:config:read tenant:config:write",
        )
        .await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let st = root.join("target/interop/venv/bin/schemathesis");
    assert!(st.exists(), "{} is missing: run scripts/test", st.display());
    let url = platform.url("/openapi.json");
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
            .env("NO_COLOR", "1")
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
    platform.close().await;
}
