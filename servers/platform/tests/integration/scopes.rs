//! Every secured operation of the platform's OpenAPI document refuses an operator token
//! without its documented scope (403 naming the scope) and a request without a token (401).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use edk_platform_server::operators::scope;
use edk_testkit::openapi;

use crate::support::{Backend, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_checks_its_documented_scope() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let ops = openapi::operations(&doc);
    let documented: BTreeSet<String> = ops
        .iter()
        .filter(|op| op.secured)
        .flat_map(|op| op.scopes.clone())
        .collect();
    assert_eq!(documented, BTreeSet::from(scope::ALL.map(str::to_owned)));

    let platform = Platform::start(Backend::Sqlite).await;
    let (_, operator) = platform.setup(&platform.setup_token()).await;
    let mut tokens = BTreeMap::new();
    for missing in scope::ALL {
        let others: Vec<&str> = scope::ALL.into_iter().filter(|s| *s != missing).collect();
        let token = platform.operator_token(&operator, &others.join(" ")).await;
        tokens.insert(missing.to_owned(), token);
    }
    let realm = platform.started.realm().to_string();
    let path_value = |name: &str| match name {
        "id" => realm.clone(),
        "service" => "as".to_owned(),
        "key" => "oauth.client_attestation".to_owned(),
        other => panic!("no plausible value for the path parameter {other}"),
    };
    let (failures, checked) = openapi::scope_failures(
        &platform.client,
        &platform.url(""),
        &ops,
        path_value,
        &tokens,
    )
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 16, "every secured operation was checked");
    platform.close().await;
}
