//! The KMS keys of DIDs: the registrar holds every key a DID uses (so the KMS refuses to
//! delete it), releases keys a DID no longer uses, the KMS's admin API can neither rotate nor
//! delete them, a did:web is republished when one of its keys rotates, and the
//! `did.republish_stale` job republishes it when the server missed the rotation, on SQLite
//! and PostgreSQL.

use std::time::Duration;

use edk_kms::{Caller, Error as KmsError, KeyAlias, KeyRef, Kms as _};
use edk_tenancy::TenantDirectory as _;
use serde_json::{Value, json};

use crate::support::{Deployment, http};

/// Waits (on the event bus, not the clock) until the registrar announces a change of `did`.
async fn changed(receiver: &mut tokio::sync::broadcast::Receiver<edk_tenancy::Event>, did: &str) {
    let wait = async {
        loop {
            if let Ok(edk_tenancy::Event::Custom { topic, payload }) = receiver.recv().await
                && topic == edk_did::registrar::DID_CHANGED_TOPIC
                && payload["did"] == did
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the DID was not republished");
}

fn verification_kids(document: &Value) -> Vec<String> {
    document["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| {
            method["id"]
                .as_str()
                .unwrap()
                .rsplit_once('#')
                .unwrap()
                .1
                .to_owned()
        })
        .collect()
}

async fn did_keys_are_held_and_republished(deployment: &Deployment) {
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let context = deployment.tenancy.context(acme.id).await.unwrap();
    let in_process = Caller::new(context.clone(), "test");
    let admin = Caller::admin(context, "ops");

    let create = |body: Value| {
        let token = token.clone();
        let url = deployment.url("/api/did/v1/identifiers");
        async move {
            let response = http()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    let web = create(
        json!({"method": "web", "keys": [{"alias": "did.web-key"}, {"alias": "did.extra"}]}),
    )
    .await;
    let web_did = web["did"].as_str().unwrap().to_owned();
    let webvh = create(json!({"method": "webvh", "path": "vh", "name": "vh"})).await;
    let webvh_did = webvh["did"].as_str().unwrap().to_owned();
    let web_key: KeyAlias = "did.web-key".parse().unwrap();
    let extra: KeyAlias = "did.extra".parse().unwrap();
    let update_key: KeyAlias = "did.vh-update".parse().unwrap();

    // Held: even code in the process cannot delete a key a DID uses.
    for alias in [&web_key, &extra, &update_key] {
        let err = deployment
            .kms
            .delete_key(&in_process, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, KmsError::KeyInUse { alias: ref a } if a == alias),
            "{err:?}"
        );
    }
    // The KMS's admin API can neither rotate nor delete DID keys (reserved for the DID
    // service), so a did:webvh update key cannot be rotated or destroyed behind the log.
    for result in [
        deployment
            .local_kms
            .rotate(&admin, &update_key)
            .await
            .map(|_| ()),
        deployment
            .local_kms
            .delete_key(&admin, &KeyRef::Alias(update_key.clone()))
            .await,
    ] {
        assert!(
            matches!(result, Err(KmsError::ReservedAlias { ref alias }) if alias == &update_key),
            "{result:?}"
        );
    }

    // A rotation of a did:web key republishes its document: the new key is listed beside the
    // retired one (still verifiable during the overlap).
    let before: Value = http()
        .get(format!("{}/.well-known/did.json", acme_base(deployment)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verification_kids(&before).len(), 2);
    let mut events = deployment.tenancy.events().subscribe();
    let rotated = deployment.kms.rotate(&in_process, &web_key).await.unwrap();
    let new_kid = rotated.active().unwrap().kid.to_string();
    deployment.catch_up_key_changes(acme.id).await;
    changed(&mut events, &web_did).await;
    let after: Value = http()
        .get(format!("{}/.well-known/did.json", acme_base(deployment)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids = verification_kids(&after);
    assert_eq!(kids.len(), 3, "{after}");
    assert!(kids.contains(&new_kid), "{after}");
    for kid in verification_kids(&before) {
        assert!(kids.contains(&kid), "{after}");
    }
    let resolved: Value = deployment
        .resolve(&web_did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verification_kids(&resolved["didDocument"]), kids);

    // A key the DID stops using is released.
    let response = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({"did": web_did, "options": {"removeKeys": ["did.extra"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    deployment
        .kms
        .delete_key(&in_process, &KeyRef::Alias(extra.clone()))
        .await
        .unwrap();
    // A deactivated did:webvh releases its keys.
    let response = http()
        .post(deployment.url("/1.0/deactivate"))
        .bearer_auth(&token)
        .json(&json!({"did": webvh_did}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    deployment
        .kms
        .delete_key(&in_process, &KeyRef::Alias(update_key.clone()))
        .await
        .unwrap();
    // The did:web still holds its key.
    let err = deployment
        .kms
        .delete_key(&in_process, &KeyRef::Alias(web_key.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::KeyInUse { .. }), "{err:?}");
}

fn acme_base(deployment: &Deployment) -> String {
    format!("http://acme.example:{}", deployment.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_keys_are_held_and_republished_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    did_keys_are_held_and_republished(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_keys_are_held_and_republished_on_postgres() {
    let deployment = Deployment::postgres().await;
    did_keys_are_held_and_republished(&deployment).await;
    deployment.close().await;
}

/// A rotation the server did not hear of (it was not listening, or the KMS runs in another
/// process on SQLite) is published by the `did.republish_stale` job: the document lists the
/// KMS's versions again, and a second run finds nothing stale.
async fn a_missed_rotation_is_republished_by_the_job(mut deployment: Deployment) {
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({"method": "web", "keys": [{"alias": "did.web-key"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let did = response.json::<Value>().await.unwrap()["did"]
        .as_str()
        .unwrap()
        .to_owned();
    let web_key: KeyAlias = "did.web-key".parse().unwrap();
    let url = format!("{}/.well-known/did.json", acme_base(&deployment));
    let published = || async {
        let document: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
        verification_kids(&document)
    };
    assert_eq!(deployment.run_republish_job(acme.id).await, 0);

    deployment.stop_republisher().await;
    let before = published().await;
    assert_eq!(before.len(), 1);
    let context = deployment.tenancy.context(acme.id).await.unwrap();
    let rotated = deployment
        .kms
        .rotate(&Caller::new(context, "test"), &web_key)
        .await
        .unwrap();
    let new_kid = rotated.active().unwrap().kid.to_string();
    assert_eq!(published().await, before, "nothing republished it yet");

    let mut events = deployment.tenancy.events().subscribe();
    assert_eq!(deployment.run_republish_job(acme.id).await, 1);
    changed(&mut events, &did).await;
    let after = published().await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&new_kid), "{after:?}");
    assert!(after.contains(&before[0]), "{after:?}");
    let resolved: Value = deployment
        .resolve(&did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verification_kids(&resolved["didDocument"]), after);
    assert_eq!(deployment.run_republish_job(acme.id).await, 0);
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_rotation_is_republished_by_the_job_on_sqlite() {
    Box::pin(a_missed_rotation_is_republished_by_the_job(
        Deployment::sqlite().await,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_rotation_is_republished_by_the_job_on_postgres() {
    Box::pin(a_missed_rotation_is_republished_by_the_job(
        Deployment::postgres().await,
    ))
    .await;
}
