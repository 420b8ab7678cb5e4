//! Tenant isolation: a tenant's admin token reaches only its own DIDs, and host routing never
//! serves one tenant's files on another's host.

use serde_json::{Value, json};

use crate::support::{Deployment, assert_problem, encode, http};

async fn tenants_cannot_reach_each_other(deployment: &Deployment) {
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let other = deployment.tenant("other", "other.example", "").await;
    let acme_token = deployment.token(acme.id, "did:read did:write").await;
    let other_token = deployment.token(other.id, "did:read did:write").await;

    let mut dids = Vec::new();
    for (token, method) in [(&acme_token, "web"), (&other_token, "webvh")] {
        let created: Value = http()
            .post(deployment.url("/api/did/v1/identifiers"))
            .bearer_auth(token)
            .json(&json!({"method": method, "path": "issuer"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dids.push(created["did"].as_str().unwrap().to_owned());
    }
    let other_did = &dids[1];

    // Acme's token sees, updates and deactivates nothing of other's: 404, no change.
    let get = http()
        .get(deployment.url(&format!("/api/did/v1/identifiers/{}", encode(other_did))))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_problem(get, 404).await;
    let methods = http()
        .post(deployment.url(&format!(
            "/api/did/v1/identifiers/{}/verification-methods",
            encode(other_did)
        )))
        .bearer_auth(&acme_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(methods, 404).await;
    for path in ["/1.0/update", "/1.0/deactivate"] {
        let response = http()
            .post(deployment.url(path))
            .bearer_auth(&acme_token)
            .json(&json!({"did": other_did}))
            .send()
            .await
            .unwrap();
        assert_problem(response, 404).await;
    }
    let list: Value = http()
        .get(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = list["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["did"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [dids[0].as_str()]);

    // Other's files exist on its host only.
    let theirs = http()
        .get(format!("{}/issuer/did.jsonl", other.base))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status().as_u16(), 200);
    let log = theirs.text().await.unwrap();
    assert_eq!(log.lines().count(), 1);
    for path in ["/issuer/did.jsonl", "/issuer/did.json"] {
        let on_acme = http()
            .get(format!("{}{path}", acme.base))
            .send()
            .await
            .unwrap();
        if path.ends_with(".jsonl") {
            assert_problem(on_acme, 404).await;
        } else {
            // Acme's own did:web lives at /issuer/did.json: never other's document.
            let document: Value = on_acme.json().await.unwrap();
            assert_eq!(document["id"], dids[0].as_str());
        }
    }
    // An unbound host serves nothing.
    let unbound = http()
        .get(format!(
            "http://shared.example:{}/.well-known/did.json",
            deployment.port()
        ))
        .send()
        .await
        .unwrap();
    assert_problem(unbound, 404).await;
    // Other's DID is unchanged and still resolves.
    let resolved = deployment
        .resolve(other_did, "application/did-resolution")
        .await;
    assert_eq!(resolved.status().as_u16(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["didDocumentMetadata"]["versionNumber"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_others_dids_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    tenants_cannot_reach_each_other(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_others_dids_on_postgres() {
    let deployment = Deployment::postgres().await;
    tenants_cannot_reach_each_other(&deployment).await;
    deployment.close().await;
}
