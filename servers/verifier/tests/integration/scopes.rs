//! Every admin operation of the committed OpenAPI document refuses a token without its
//! documented scope (403 `forbidden`, naming the scope) and a request without a token (401).

use std::collections::{BTreeMap, BTreeSet};

use edk_testkit::openapi;
use serde_json::Value;

use crate::support::{Deployment, http};

fn path_value(name: &str) -> String {
    match name {
        "id" => "identity".to_owned(),
        other => panic!("no plausible value for the path parameter {other}"),
    }
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
        BTreeSet::from(edk_verifier_server::SCOPES.map(str::to_owned))
    );

    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let mut tokens = BTreeMap::new();
    for missing in &all {
        let others: Vec<&str> = all
            .iter()
            .filter(|s| *s != missing)
            .map(String::as_str)
            .collect();
        let token = deployment.admin_token(acme.id, &others.join(" ")).await;
        tokens.insert(missing.clone(), token);
    }
    let base = deployment.verifier_http.url("");
    let (failures, checked) =
        openapi::scope_failures(&http(), &base, &ops, path_value, &tokens).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 10, "every secured operation was checked");
    deployment.close().await;
}
