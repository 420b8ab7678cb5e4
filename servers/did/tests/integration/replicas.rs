use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Deployment, http};

/// Polls `replica`'s resolver for `did` until it answers `status` (bounded: the cache TTL is
/// 300 s, so only the change event can make this pass in time).
async fn await_status(replica: &Deployment, did: &str, status: u16) -> Value {
    for _ in 0..100 {
        let response = replica.resolve(did, "application/did-resolution").await;
        if response.status().as_u16() == status {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{did} never answered {status} on the other replica");
}

/// A DID changed through one replica is answered fresh by the other, whose resolver had it
/// cached: the registrar's change event crosses replicas over PostgreSQL NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_replicas_refresh_a_changed_did() {
    let first = Deployment::postgres().await;
    let second = first.replica().await;
    let acme = first.tenant("acme", "acme.example", "").await;
    let token = first.token(acme.id, "did:read did:write").await;
    let created: Value = http()
        .post(first.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({ "method": "web", "path": "issuer" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let did = created["did"].as_str().unwrap().to_owned();

    let before = await_status(&second, &did, 200).await;
    assert_eq!(before["didDocument"]["id"], did.as_str());
    // Cached on the second replica now.
    assert_eq!(
        second
            .resolve(&did, "application/did-resolution")
            .await
            .status()
            .as_u16(),
        200
    );

    let deactivated = http()
        .post(first.url("/1.0/deactivate"))
        .bearer_auth(&token)
        .json(&json!({ "did": did }))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivated.status().as_u16(), 200);
    let gone = await_status(&second, &did, 410).await;
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);

    second.close().await;
    first.close().await;
}
