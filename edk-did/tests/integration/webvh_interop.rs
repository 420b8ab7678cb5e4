//! Interop with the PyPI `did-webvh` package (pinned in interop/python/requirements.txt): it
//! resolves and verifies the logs we write, and we verify the logs it writes.

use std::path::Path;

use chrono::{DateTime, Utc};
use edk_core::clock::{Clock as _, SystemClock};
use edk_did::webvh::{self, DidLog, UpdateOptions, VersionQuery};
use serde_json::{Value, json};

use crate::python::python_module;
use crate::webvh::{Key, at, created, did_of, key};

/// Resolves `did` with the Python resolver from `log` written into `dir`.
fn python_resolve(dir: &Path, did: &str, log: &DidLog) -> Value {
    std::fs::write(dir.join("did.jsonl"), log.to_jsonl()).unwrap();
    let out = python_module("did_webvh.resolver", &["-f", "did.jsonl", did], dir);
    serde_json::from_str(&out).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemClock.now())
}

async fn push_update(log: &mut DidLog, options: UpdateOptions, key: &Key, time: i64) {
    let entry = webvh::update(log, options, &key.signer, &key.multikey, at(time))
        .await
        .unwrap();
    log.push(entry);
}

#[tokio::test]
async fn python_did_webvh_resolves_our_created_updated_rotated_and_deactivated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let first = key();
    let second = key();
    let third = key();
    let mut log = created(
        |c| c.next_key_hashes = vec![second.multikey.key_hash()],
        &first,
    )
    .await;
    let did = did_of(&log);

    let result = python_resolve(dir.path(), &did, &log);
    assert_eq!(result["didDocument"]["id"], did, "{result}");
    assert_eq!(
        result["didDocumentMetadata"]["versionId"],
        log.entries()[0].version_id()
    );

    // Update: a service and alsoKnownAs, rotating to the pre-rotated key.
    let mut document = log.entries()[0].state().clone();
    webvh::set_service(
        &mut document,
        "#issuer",
        "OID4VCI",
        "https://issuer.example.com",
    );
    webvh::add_also_known_as(&mut document, "did:web:example.com:dids:issuer");
    push_update(
        &mut log,
        UpdateOptions {
            document: Some(document),
            update_keys: Some(vec![second.multikey.clone()]),
            next_key_hashes: Some(vec![third.multikey.key_hash()]),
            ..UpdateOptions::default()
        },
        &second,
        60,
    )
    .await;
    let result = python_resolve(dir.path(), &did, &log);
    assert_eq!(
        result["didDocumentMetadata"]["versionNumber"], 2,
        "{result}"
    );
    assert_eq!(
        result["didDocument"]["alsoKnownAs"],
        json!(["did:web:example.com:dids:issuer"])
    );
    let services = result["didDocument"]["service"].as_array().unwrap();
    assert!(services.iter().any(|s| s["type"] == "OID4VCI"), "{result}");

    // Rotate again (pre-rotation consumed) and resolve an earlier version by versionId.
    push_update(
        &mut log,
        UpdateOptions {
            update_keys: Some(vec![third.multikey.clone()]),
            next_key_hashes: Some(vec![]),
            ..UpdateOptions::default()
        },
        &third,
        120,
    )
    .await;
    let result = python_resolve(dir.path(), &did, &log);
    assert_eq!(
        result["didDocumentMetadata"]["versionNumber"], 3,
        "{result}"
    );
    let v1 = log.entries()[0].version_id().to_owned();
    let result = python_resolve(dir.path(), &format!("{did}?versionId={v1}"), &log);
    assert_eq!(
        result["didDocumentMetadata"]["versionNumber"], 1,
        "{result}"
    );

    // Deactivate.
    for entry in webvh::deactivate(&log, &third.signer, &third.multikey, at(180))
        .await
        .unwrap()
    {
        log.push(entry);
    }
    let result = python_resolve(dir.path(), &did, &log);
    assert_eq!(
        result["didDocumentMetadata"]["deactivated"], true,
        "{result}"
    );

    // And a tampered log is refused by it.
    let tampered = log.to_jsonl().replacen("OID4VCI", "OID4VCJ", 1);
    let tampered = DidLog::parse(&tampered).unwrap();
    let result = python_resolve(dir.path(), &did, &tampered);
    assert!(
        result["didResolutionMetadata"]["error"].is_string(),
        "{result}"
    );
}

#[test]
fn we_verify_logs_python_did_webvh_creates_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let out = python_module(
        "did_webvh.provision",
        &["--auto", "example.com"],
        dir.path(),
    );
    let folder = out.trim().rsplit(' ').next().unwrap().to_owned();
    let folder = dir.path().join(folder);
    let log = std::fs::read_to_string(folder.join("did.jsonl")).unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let did = first["state"]["id"].as_str().unwrap().to_owned();

    let result = webvh::resolve_log(&did, &log, None, &VersionQuery::default(), now());
    assert_eq!(result.error(), None, "{:?}", result.resolution_metadata);
    assert_eq!(result.document.unwrap()["id"], did);

    // Python updates the document (a new service); we verify both versions.
    let doc_path = folder.join("did.json");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&doc_path).unwrap()).unwrap();
    document["service"] = json!([{"id": format!("{did}#linked"), "type": "LinkedDomains",
        "serviceEndpoint": "https://example.com/"}]);
    std::fs::write(&doc_path, document.to_string()).unwrap();
    python_module(
        "did_webvh.update",
        &["--auto", folder.to_str().unwrap()],
        dir.path(),
    );
    let log = std::fs::read_to_string(folder.join("did.jsonl")).unwrap();
    let parsed = DidLog::parse(&log).unwrap();
    assert_eq!(parsed.entries().len(), 2);
    let verified = webvh::verify_log(&parsed, None, now());
    assert!(verified.is_complete(), "{:?}", verified.failure());
    let result = webvh::resolve_log(&did, &log, None, &VersionQuery::default(), now());
    assert_eq!(result.document_metadata["versionNumber"], 2);
    assert_eq!(
        result.document.unwrap()["service"][0]["type"],
        "LinkedDomains"
    );

    // Tampering with its log is caught.
    let tampered = log.replacen("LinkedDomains", "LinkedDomainz", 1);
    let result = webvh::resolve_log(&did, &tampered, None, &VersionQuery::default(), now());
    assert_eq!(result.error(), Some("invalidDid"));
}
