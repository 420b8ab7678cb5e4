//! did:webvh witnesses: the `witness` option on create, witness proofs added through the admin
//! API, `did-witness.json` and resolution against the threshold, on SQLite and PostgreSQL.

use edk_core::jose::{Algorithm, SigningKey, VerifyingKey};
use edk_core::{Clock as _, SystemClock};
use edk_did::webvh::{Multikey, sign_version};
use serde_json::{Value, json};

use crate::support::{Deployment, assert_problem, encode, http, python_resolve_with_witness};

/// An Ed25519 witness key generated in the test, with its Multikey.
fn witness_key() -> (SigningKey, Multikey) {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let multikey =
        Multikey::from_verifying_key(&VerifyingKey::from_jwk(&key.public_jwk()).unwrap()).unwrap();
    (key, multikey)
}

async fn post_proof(
    deployment: &Deployment,
    token: &str,
    did: &str,
    body: &Value,
) -> reqwest::Response {
    http()
        .post(deployment.url(&format!(
            "/api/did/v1/identifiers/{}/witness-proofs",
            encode(did)
        )))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn witnessed_did_webvh(deployment: &Deployment, acme_slug: &str, other_slug: &str) {
    let acme = deployment
        .tenant(acme_slug, "acme.example", "/witnessed")
        .await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let (witness, witness_mk) = witness_key();
    let (stranger, _) = witness_key();

    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({
            "method": "webvh",
            "path": "issuer",
            "witness": {"threshold": 1, "witnesses": [witness_mk.did_key()]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    let log_url = format!("{}/issuer/did.jsonl", acme.base);
    let witness_url = format!("{}/issuer/did-witness.json", acme.base);
    let log = http()
        .get(&log_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["parameters"]["witness"],
        json!({"threshold": 1, "witnesses": [{"id": witness_mk.did_key()}]})
    );
    let version_id = first["versionId"].as_str().unwrap().to_owned();

    // No proof yet: no witness file, and our resolver refuses the log.
    let missing = http().get(&witness_url).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let refused = deployment.resolve(&did, "application/did-resolution").await;
    assert!(!refused.status().is_success(), "{}", refused.status());
    let refused: Value = refused.json().await.unwrap();
    let error = &refused["didResolutionMetadata"]["error"];
    assert_eq!(
        error["type"], "https://www.w3.org/ns/did#INVALID_DID",
        "{refused}"
    );
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("witness threshold not met (0 of 1)"),
        "{refused}"
    );

    // Refused proofs: 400 problem+json, nothing stored.
    let now = chrono::DateTime::<chrono::Utc>::from(SystemClock.now());
    let by_stranger = sign_version(&version_id, &stranger, &witness_key_of(&stranger), now)
        .await
        .unwrap();
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": version_id, "proof": by_stranger}),
    )
    .await;
    let problem = assert_problem(response, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a witness"),
        "{problem}"
    );
    let unknown_version = format!("2-{}", version_id.split_once('-').unwrap().1);
    let for_unknown = sign_version(&unknown_version, &witness, &witness_mk, now)
        .await
        .unwrap();
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": unknown_version, "proof": for_unknown}),
    )
    .await;
    assert_problem(response, 400).await;
    let valid = sign_version(&version_id, &witness, &witness_mk, now)
        .await
        .unwrap();
    let mut tampered = valid.clone();
    tampered["proofValue"] = json!("z3FXQjecWufY46yg5abdVZsXqLhxhueuSoZgNSARiKBk");
    for body in [
        json!({"versionId": version_id, "proof": tampered}),
        json!({"versionId": version_id, "proof": "not a proof"}),
        json!({"versionId": version_id, "proof": {"type": "DataIntegrityProof"}}),
        json!({"versionId": version_id}),
        json!({"versionId": version_id, "proof": valid, "extra": 1}),
    ] {
        let response = post_proof(deployment, &token, &did, &body).await;
        assert_problem(response, 400).await;
    }
    let missing = http().get(&witness_url).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Another tenant cannot add proofs to the DID: 404.
    let other = deployment
        .tenant(other_slug, "other.example", "/witnessed")
        .await;
    let other_token = deployment.token(other.id, "did:read did:write").await;
    let response = post_proof(
        deployment,
        &other_token,
        &did,
        &json!({"versionId": version_id, "proof": valid}),
    )
    .await;
    assert_problem(response, 404).await;
    // A read-only token cannot either.
    let reader = deployment.token(acme.id, "did:read").await;
    let response = post_proof(
        deployment,
        &reader,
        &did,
        &json!({"versionId": version_id, "proof": valid}),
    )
    .await;
    assert_problem(response, 403).await;

    // A valid proof: published in did-witness.json, and the DID resolves.
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": version_id, "proof": valid}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().await.unwrap();
    let expected = json!([{"versionId": version_id, "proof": [valid]}]);
    assert_eq!(added["did"], did.as_str());
    assert_eq!(added["witness_file"], expected);
    let published = http().get(&witness_url).send().await.unwrap();
    assert_eq!(published.status().as_u16(), 200);
    assert_eq!(published.headers()["content-type"], "application/json");
    let published = published.text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&published).unwrap(), expected);
    let resolved = deployment.resolve(&did, "application/did-resolution").await;
    assert_eq!(resolved.status().as_u16(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["didDocument"]["id"], did.as_str(), "{resolved}");
    assert_eq!(resolved["didDocumentMetadata"]["versionNumber"], 1);

    // PyPI did-webvh verifies the witnessed log offline, and refuses it without the file.
    let theirs = python_resolve_with_witness(&log, Some(&published), &did);
    assert_eq!(theirs["didDocument"]["id"], did.as_str(), "{theirs}");
    let theirs = python_resolve_with_witness(&log, None, &did);
    assert!(theirs["didDocument"].is_null(), "{theirs}");

    // An update appends an entry the old rule's witness must approve; a proof for it
    // replaces the witness's proof for version 1.
    let response = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({"did": did, "options": {"addKeys": [{"algorithm": "EdDSA"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let updated: Value = response.json().await.unwrap();
    let second = updated["didRegistrationMetadata"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(second.starts_with("2-"), "{second}");
    let latest: Value = deployment
        .resolve(&did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        latest["didDocumentMetadata"]["versionNumber"], 2,
        "{latest}"
    );
    let proof = sign_version(
        &second,
        &witness,
        &witness_mk,
        chrono::DateTime::<chrono::Utc>::from(SystemClock.now()),
    )
    .await
    .unwrap();
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": second, "proof": proof}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().await.unwrap();
    assert_eq!(
        added["witness_file"],
        json!([{"versionId": second, "proof": [proof]}])
    );
    let latest: Value = deployment
        .resolve(&did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        latest["didDocumentMetadata"]["versionNumber"], 2,
        "{latest}"
    );
    let log = http()
        .get(&log_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let published = http()
        .get(&witness_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let theirs = python_resolve_with_witness(&log, Some(&published), &did);
    assert_eq!(
        theirs["didDocumentMetadata"]["versionNumber"], 2,
        "{theirs}"
    );
}

fn witness_key_of(key: &SigningKey) -> Multikey {
    Multikey::from_verifying_key(&VerifyingKey::from_jwk(&key.public_jwk()).unwrap()).unwrap()
}

/// Malformed witness options on create: 400.
async fn bad_witness_options(deployment: &Deployment, slug: &str) {
    let tenant = deployment.tenant(slug, "shared.example", "/bad").await;
    let token = deployment.token(tenant.id, "did:write").await;
    let (_, witness) = witness_key();
    for witness_option in [
        json!({"threshold": 2, "witnesses": [witness.did_key()]}),
        json!({"threshold": 0, "witnesses": [witness.did_key()]}),
        json!({"witnesses": [witness.did_key()]}),
        json!({"threshold": 1, "witnesses": ["did:web:example.com"]}),
        json!({"threshold": 1, "witnesses": [witness.did_key(), witness.did_key()]}),
    ] {
        let response = http()
            .post(deployment.url("/api/did/v1/identifiers"))
            .bearer_auth(&token)
            .json(&json!({"method": "webvh", "path": "x", "witness": witness_option}))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
    let response = http()
        .post(deployment.url("/1.0/create?method=web"))
        .bearer_auth(&token)
        .json(&json!({"options": {"witness": {"threshold": 1, "witnesses": [witness.did_key()]}}}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnessed_did_webvh_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    witnessed_did_webvh(&deployment, "acme", "other").await;
    bad_witness_options(&deployment, "bad").await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnessed_did_webvh_on_postgres() {
    let deployment = Deployment::postgres().await;
    witnessed_did_webvh(&deployment, "acme", "other").await;
    bad_witness_options(&deployment, "bad").await;
    deployment.close().await;
}
