//! schemathesis (PyPI, pinned) fuzzes the standalone platform server from its OpenAPI
//! document with every check and an operator token with every platform scope: no 5xx, and
//! every status, content type, header and body as the document says.

use edk_testkit::schemathesis;
use serde_json::{Value, json};

use crate::support::{Backend, Platform};

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Schema-valid input the document cannot tell apart from wrong input: a slug, host, path
# prefix, configuration value or upstream setting the rules refuse (400), a tenant id that
# names nothing (400 where it is not a tenant id, 404 where it names no tenant),
# a slug or endpoint another tenant holds or a lifecycle change the tenant's state forbids
# (409), setup once it is closed (403), an audit filter that is not an outcome or an RFC 3339
# time (400).
[[operations]]
include-operation-id-regex = "^(platformSetup|createTenant|getTenant|suspendTenant|resumeTenant|deleteTenant|listTenantBindings|putTenantBinding|putTenantConfig|createTenantAdmin|setOperatorUpstreamOidc|addFederatedOperator|createOperatorClient|listTenantAuditEvents|verifyTenantAuditChain)$"
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
            "platform:tenants:read platform:tenants:write tenant:config:read tenant:config:write \
             tenant:audit:read",
        )
        .await;
    let url = platform.url("/openapi.json");
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
    assert!(run.output.contains("Tested: 19"), "{summary}");
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
    platform.close().await;
}
