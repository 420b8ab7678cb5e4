//! did:webvh witnesses: the `witness` option on create, entries held back until witnessed,
//! witness proofs added through the admin API, `did-witness.json` and resolution against the
//! threshold by our resolver and PyPI did-webvh at every step, on SQLite and PostgreSQL.

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

/// What is published for a DID at one moment.
struct Published {
    log: Option<String>,
    witness: Option<String>,
}

async fn published(base: &str) -> Published {
    Published {
        log: fetch(&format!("{base}/issuer/did.jsonl")).await,
        witness: fetch(&format!("{base}/issuer/did-witness.json")).await,
    }
}

/// The body of `url`, `None` on 404.
async fn fetch(url: &str) -> Option<String> {
    let response = http().get(url).send().await.unwrap();
    match response.status().as_u16() {
        200 => Some(response.text().await.unwrap()),
        404 => None,
        status => panic!("{url}: {status}"),
    }
}

/// The published files resolve, with our resolver and with PyPI did-webvh, to version
/// `expected` (`None`: nothing is published and our resolver answers 404 `NOT_FOUND`).
async fn assert_resolves(deployment: &Deployment, base: &str, did: &str, expected: Option<u64>) {
    let files = published(base).await;
    let ours = deployment.resolve(did, "application/did-resolution").await;
    let status = ours.status().as_u16();
    let ours: Value = ours.json().await.unwrap();
    let Some(version) = expected else {
        assert!(files.log.is_none(), "a log is published");
        assert_eq!(status, 404, "{ours}");
        assert_eq!(
            ours["didResolutionMetadata"]["error"]["type"],
            "https://www.w3.org/ns/did#NOT_FOUND"
        );
        return;
    };
    assert_eq!(status, 200, "{ours}");
    assert_eq!(ours["didDocument"]["id"], did, "{ours}");
    assert_eq!(
        ours["didDocumentMetadata"]["versionNumber"], version,
        "{ours}"
    );
    let log = files.log.unwrap();
    assert_eq!(log.lines().count() as u64, version);
    let theirs = python_resolve_with_witness(&log, files.witness.as_deref(), did);
    assert_eq!(theirs["didDocument"]["id"], did, "{theirs}");
    assert_eq!(
        theirs["didDocumentMetadata"]["versionNumber"], version,
        "{theirs}"
    );
}

async fn proof_for(version_id: &str, witness: &(SigningKey, Multikey)) -> Value {
    let now = chrono::DateTime::<chrono::Utc>::from(SystemClock.now());
    sign_version(version_id, &witness.0, &witness.1, now)
        .await
        .unwrap()
}

async fn add_proof(
    deployment: &Deployment,
    token: &str,
    did: &str,
    version_id: &str,
    witness: &(SigningKey, Multikey),
) -> Value {
    let proof = proof_for(version_id, witness).await;
    let response = post_proof(
        deployment,
        token,
        did,
        &json!({"versionId": version_id, "proof": proof}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

/// Witnessed entries are held back until `threshold` witnesses approve them, and the
/// published log resolves at every step (did:webvh §"DID Witnesses": proofs are published
/// before the entry).
async fn witnessed_did_webvh(deployment: &Deployment, acme_slug: &str, other_slug: &str) {
    let acme = deployment
        .tenant(acme_slug, "acme.example", "/witnessed")
        .await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let a = witness_key();
    let b = witness_key();
    let (stranger, _) = witness_key();

    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({
            "method": "webvh",
            "path": "issuer",
            "witness": {"threshold": 2, "witnesses": [a.1.did_key(), b.1.did_key()]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    assert_eq!(created["log_entries"], 0);
    assert!(created["version_id"].is_null());
    let v1 = created["pending_version_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(v1.starts_with("1-"), "{created}");
    assert_eq!(
        created["document"]["id"], did,
        "the document it will publish"
    );

    // Nothing is published before the witnesses approve: no log, no did.json, 404.
    assert_resolves(deployment, &acme.base, &did, None).await;
    let web = http()
        .get(format!("{}/issuer/did.json", acme.base))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status().as_u16(), 404);

    // Refused proofs: 400 problem+json, nothing stored.
    let now = chrono::DateTime::<chrono::Utc>::from(SystemClock.now());
    let by_stranger = sign_version(&v1, &stranger, &witness_key_of(&stranger), now)
        .await
        .unwrap();
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": v1, "proof": by_stranger}),
    )
    .await;
    let problem = assert_problem(response, 400).await;
    assert_eq!(
        problem["detail"],
        "invalid request: witness proof refused: the key is not a witness of the log"
    );
    let unknown_version = format!("2-{}", v1.split_once('-').unwrap().1);
    let for_unknown = proof_for(&unknown_version, &a).await;
    let response = post_proof(
        deployment,
        &token,
        &did,
        &json!({"versionId": unknown_version, "proof": for_unknown}),
    )
    .await;
    let problem = assert_problem(response, 400).await;
    assert_eq!(
        problem["detail"],
        "invalid request: witness proof refused: the versionId is not in the log"
    );
    let valid = proof_for(&v1, &a).await;
    let mut tampered = valid.clone();
    tampered["proofValue"] = json!("z3FXQjecWufY46yg5abdVZsXqLhxhueuSoZgNSARiKBk");
    for body in [
        json!({"versionId": v1, "proof": tampered}),
        json!({"versionId": v1, "proof": "not a proof"}),
        json!({"versionId": v1, "proof": {"type": "DataIntegrityProof"}}),
        json!({"versionId": v1}),
        json!({"versionId": v1, "proof": valid, "extra": 1}),
    ] {
        let response = post_proof(deployment, &token, &did, &body).await;
        assert_problem(response, 400).await;
    }
    assert!(published(&acme.base).await.witness.is_none());

    // Another tenant cannot add proofs to the DID: 404; a read-only token: 403.
    let other = deployment
        .tenant(other_slug, "other.example", "/witnessed")
        .await;
    let other_token = deployment.token(other.id, "did:read did:write").await;
    let body = json!({"versionId": v1, "proof": valid});
    assert_problem(post_proof(deployment, &other_token, &did, &body).await, 404).await;
    let reader = deployment.token(acme.id, "did:read").await;
    assert_problem(post_proof(deployment, &reader, &did, &body).await, 403).await;

    // One of two witnesses: the proof is published, the entry is still held back.
    let response = post_proof(deployment, &token, &did, &body).await;
    assert_eq!(response.status().as_u16(), 201);
    let added: Value = response.json().await.unwrap();
    assert_eq!(
        added["witness_file"],
        json!([{"versionId": v1, "proof": [valid]}])
    );
    assert_eq!(added["pending_version_ids"], json!([v1]));
    assert!(added["version_id"].is_null());
    assert_resolves(deployment, &acme.base, &did, None).await;

    // The second witness: the threshold is met and version 1 is published after its proofs.
    let added = add_proof(deployment, &token, &did, &v1, &b).await;
    assert_eq!(added["version_id"], v1.as_str());
    assert_eq!(added["pending_version_ids"], json!([]));
    assert_resolves(deployment, &acme.base, &did, Some(1)).await;

    // An update is held back until witnessed; version 1 stays published and resolvable.
    let response = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({"did": did, "options": {"addKeys": [{"algorithm": "EdDSA"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["didState"]["state"], "wait");
    assert_eq!(updated["didRegistrationMetadata"]["versionId"], v1.as_str());
    let v2 = updated["didRegistrationMetadata"]["pendingVersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(v2.starts_with("2-"), "{v2}");
    assert_resolves(deployment, &acme.base, &did, Some(1)).await;

    // No other change until then: 409.
    let response = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({"did": did, "didDocument": {"service": []}}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 409).await;
    assert_eq!(
        problem["detail"],
        format!("`{did}` has an entry awaiting witness proofs: `{v2}`")
    );

    // Witness A approves version 2: its proof on version 1 stays until version 2 is
    // published, so the published log keeps resolving.
    let added = add_proof(deployment, &token, &did, &v2, &a).await;
    let file = &added["witness_file"];
    assert_eq!(file.as_array().unwrap().len(), 2, "{file}");
    assert_eq!(file[0]["versionId"], v1.as_str());
    assert_eq!(file[0]["proof"].as_array().unwrap().len(), 2, "{file}");
    assert_eq!(added["pending_version_ids"], json!([v2]));
    assert_resolves(deployment, &acme.base, &did, Some(1)).await;

    // Witness B approves version 2: published; the superseded proofs on version 1 go.
    let added = add_proof(deployment, &token, &did, &v2, &b).await;
    assert_eq!(added["version_id"], v2.as_str());
    let file = &added["witness_file"];
    assert_eq!(file.as_array().unwrap().len(), 1, "{file}");
    assert_eq!(file[0]["versionId"], v2.as_str());
    assert_eq!(file[0]["proof"].as_array().unwrap().len(), 2, "{file}");
    assert_resolves(deployment, &acme.base, &did, Some(2)).await;

    // An older proof does not drop the witness's newer one: nothing changes.
    let again = add_proof(deployment, &token, &did, &v1, &a).await;
    assert_eq!(&again["witness_file"], file);
    assert_resolves(deployment, &acme.base, &did, Some(2)).await;

    // Deactivation is witnessed too; until then the DID stays active.
    let response = http()
        .post(deployment.url("/1.0/deactivate"))
        .bearer_auth(&token)
        .json(&json!({"did": did}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let deactivating: Value = response.json().await.unwrap();
    assert_eq!(deactivating["didState"]["state"], "wait");
    assert!(
        deactivating["didDocumentMetadata"]
            .get("deactivated")
            .is_none()
    );
    let v3 = deactivating["didRegistrationMetadata"]["pendingVersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_resolves(deployment, &acme.base, &did, Some(2)).await;
    add_proof(deployment, &token, &did, &v3, &a).await;
    let added = add_proof(deployment, &token, &did, &v3, &b).await;
    assert_eq!(added["version_id"], v3.as_str());
    let gone = deployment.resolve(&did, "application/did-resolution").await;
    assert_eq!(gone.status().as_u16(), 410);
    let files = published(&acme.base).await;
    let theirs = python_resolve_with_witness(&files.log.unwrap(), files.witness.as_deref(), &did);
    assert_eq!(
        theirs["didDocumentMetadata"]["deactivated"], true,
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
