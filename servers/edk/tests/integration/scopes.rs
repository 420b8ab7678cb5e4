//! Every admin operation of the all-in-one OpenAPI document (KMS, authorization server and DID
//! APIs behind one admin authentication) refuses a token without its documented scope (403
//! `forbidden`, naming the scope) and a request without a token (401).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::Value;

use edk::bootstrap::{ADMIN_SCOPES, DataDir};
use edk::{Edk, EdkConfig};
use edk_core::FixedClock;
use edk_server::spawn_server;
use edk_testkit::openapi;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_operation_checks_its_documented_scope() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let ops = openapi::operations(&doc);
    let all: BTreeSet<String> = ops
        .iter()
        .filter(|op| op.secured)
        .flat_map(|op| op.scopes.clone())
        .collect();
    assert_eq!(all, BTreeSet::from(ADMIN_SCOPES.map(str::to_owned)));

    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let config = EdkConfig::default();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let client = reqwest::Client::builder().build().unwrap();
    let edk = Edk::start(&config, &data, clock.clone(), &client)
        .await
        .unwrap();
    let server = spawn_server(edk.app()).await.unwrap();
    edk.bind_default_tenant(server.addr().port()).await.unwrap();

    let mut tokens = BTreeMap::new();
    for missing in &all {
        let others: Vec<&str> = all
            .iter()
            .filter(|s| *s != missing)
            .map(String::as_str)
            .collect();
        let token = data
            .admin_token(
                edk.default_tenant(),
                &config.auth.audience,
                &others,
                600,
                clock.as_ref(),
            )
            .await
            .unwrap();
        tokens.insert(missing.clone(), token.expose_secret().to_owned());
    }
    let did = format!("did:web:edk.localhost%3A{}", server.addr().port());
    let path_value = |name: &str| {
        match name {
            "providerId" => "software",
            "alias" | "aliasOrKid" => "issuer.credential-signing",
            "id" => "default",
            "clientId" => "wallet",
            "service" => "as",
            "key" => "oauth.client_attestation",
            "did" => return did.replace('%', "%25").replace(':', "%3A"),
            other => panic!("no plausible value for the path parameter {other}"),
        }
        .to_owned()
    };
    let (failures, checked) =
        openapi::scope_failures(&client, &server.url(""), &ops, path_value, &tokens).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 113, "every secured operation was checked");
    server.shutdown().await.unwrap();
    edk.shutdown().await;
}
