//! Every operation of the committed OpenAPI document that needs the admin bearer token
//! refuses a token without its documented scope (403 `forbidden`, naming the scope) and a
//! request without a token (401 `unauthenticated`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use edk_testkit::openapi;

use crate::support::{Backend, Harness};

/// Plausible values for the document's path parameters.
fn path_value(name: &str) -> String {
    match name {
        "providerId" => "software",
        "alias" | "aliasOrKid" => "issuer.credential-signing",
        "id" => "default",
        other => panic!("no plausible value for the path parameter {other}"),
    }
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_operation_checks_its_documented_scope() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let ops = openapi::operations(&doc);
    let all: BTreeSet<String> = ops
        .iter()
        .filter(|op| op.secured)
        .flat_map(|op| op.scopes.clone())
        .collect();
    assert_eq!(
        all,
        BTreeSet::from(
            ["kms:read", "kms:use", "kms:write", "platform:kms:providers"].map(str::to_owned)
        )
    );

    let h = Harness::start(Backend::Sqlite).await;
    let mut tokens = BTreeMap::new();
    for missing in &all {
        let others: Vec<&str> = all
            .iter()
            .filter(|s| *s != missing)
            .map(String::as_str)
            .collect();
        let token = h.token_for(h.tenant_a, &others.join(" ")).await;
        tokens.insert(missing.clone(), token);
    }
    let (failures, checked) =
        openapi::scope_failures(&h.client, &h.server.url(""), &ops, path_value, &tokens).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 54,
        "every secured operation was checked: {checked}"
    );
    h.stop().await;
}
