//! Every admin operation of the committed OpenAPI document (the DID admin API and the
//! Universal Registrar operations) refuses a token without its documented scope (403
//! `forbidden`, naming the scope) and a request without a token (401).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use edk_testkit::openapi;

use crate::support::{Deployment, encode, http};

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
        BTreeSet::from(["did:read", "did:write"].map(str::to_owned))
    );

    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let did = format!("did:web:{}", acme.authority);
    let path_value = |name: &str| match name {
        "did" => encode(&did),
        other => panic!("no plausible value for the path parameter {other}"),
    };
    let mut tokens = BTreeMap::new();
    for missing in &all {
        let others: Vec<&str> = all
            .iter()
            .filter(|s| *s != missing)
            .map(String::as_str)
            .collect();
        let token = deployment.token(acme.id, &others.join(" ")).await;
        tokens.insert(missing.clone(), token);
    }
    let base = deployment.http.url("");
    let (failures, checked) =
        openapi::scope_failures(&http(), &base, &ops, path_value, &tokens).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 9,
        "every secured operation was checked: {checked}"
    );
    deployment.close().await;
}
