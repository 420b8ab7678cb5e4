//! Logs a resolver must refuse, each with the error that names why.

use edk_did::webvh::{
    self, DidLog, LogEntry, ProofFault, TimeFault, UpdateOptions, VersionQuery, WebvhDid,
    WebvhError, scid,
};
use serde_json::{Value, json};

use crate::webvh::{Key, at, created, did_of, key};

/// Builds and signs entry `number` over `predecessor` with `signer`, correct in form.
async fn entry(
    predecessor: &str,
    number: u64,
    time: &str,
    parameters: Value,
    state: &Value,
    signer: &Key,
) -> LogEntry {
    let mut entry = json!({"versionId": predecessor, "versionTime": time,
        "parameters": parameters, "state": state});
    let hash = scid::entry_hash(&entry, predecessor).unwrap();
    entry["versionId"] = json!(format!("{number}-{hash}"));
    webvh::sign_entry(entry, &signer.signer, &signer.multikey, time)
        .await
        .unwrap()
}

/// Verifies `log`, asserts that it fails and that resolution reports `invalidDid`, and returns
/// the failure's debug form (variant, version and fault).
fn failure(log: &DidLog) -> String {
    let verified = webvh::verify_log(log, None, at(1_000_000));
    let failure = verified.failure().map(|err| format!("{err:?}"));
    let result = webvh::resolve_log(
        &did_of(log),
        &log.to_jsonl(),
        None,
        &VersionQuery::default(),
        at(1_000_000),
    );
    assert_eq!(result.error(), Some("invalidDid"), "{failure:?}");
    failure.expect("the log verified")
}

async fn two_entry_log(key: &Key) -> DidLog {
    let mut log = created(|_| {}, key).await;
    let entry = webvh::update(
        &log,
        UpdateOptions::default(),
        &key.signer,
        &key.multikey,
        at(10),
    )
    .await
    .unwrap();
    log.push(entry);
    log
}

fn replace_line(log: &DidLog, index: usize, entry: &Value) -> DidLog {
    let mut lines: Vec<String> = log.to_jsonl().lines().map(str::to_owned).collect();
    lines[index] = entry.to_string();
    DidLog::parse(&lines.join("\n")).unwrap()
}

#[tokio::test]
async fn tampered_entry_is_refused_by_its_proof() {
    let key = key();
    let log = two_entry_log(&key).await;
    let mut tampered = log.entries()[1].as_value().clone();
    tampered["state"]["alsoKnownAs"] = json!(["https://evil.example"]);
    let err = failure(&replace_line(&log, 1, &tampered));
    assert!(
        err.contains("InvalidProof { version: 2, fault: Signature }"),
        "{err}"
    );
}

#[tokio::test]
async fn tampered_and_resigned_entry_fails_its_entry_hash() {
    let key = key();
    let log = two_entry_log(&key).await;
    let mut tampered = log.entries()[1].without_proof();
    tampered["state"]["alsoKnownAs"] = json!(["https://evil.example"]);
    let time = log.entries()[1].version_time().to_owned();
    let resigned = webvh::sign_entry(tampered, &key.signer, &key.multikey, &time)
        .await
        .unwrap();
    let err = failure(&replace_line(&log, 1, resigned.as_value()));
    assert!(err.contains("EntryHash { version: 2 }"), "{err}");
}

#[tokio::test]
async fn broken_hash_chain_is_refused() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let state = log.entries()[0].state().clone();
    // Entry 2 chained to a made-up predecessor.
    let bad = entry(
        "1-QmQ6FJ4fk2xheSSQoEjVpTgx9AQPKhJgtR9hn1nr4EeCrZ",
        2,
        "2026-01-01T00:00:10Z",
        json!({}),
        &state,
        &key,
    )
    .await;
    let mut log = log;
    log.push(bad);
    let err = failure(&log);
    assert!(err.contains("EntryHash { version: 2 }"), "{err}");
    // A dropped middle entry breaks the chain too.
    let key2 = self::key();
    let full = two_entry_log(&key2).await;
    let mut three = full.clone();
    three.push(
        webvh::update(
            &full,
            UpdateOptions::default(),
            &key2.signer,
            &key2.multikey,
            at(20),
        )
        .await
        .unwrap(),
    );
    let skipped =
        DidLog::from_entries(vec![three.entries()[0].clone(), three.entries()[2].clone()]);
    let err = failure(&skipped);
    assert!(err.contains("VersionId { version: 2"), "{err}");
}

#[tokio::test]
async fn wrong_scid_is_refused() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let did = did_of(&log);
    let real = WebvhDid::parse(&did).unwrap().scid().to_owned();
    let other = "QmQ6FJ4fk2xheSSQoEjVpTgx9AQPKhJgtR9hn1nr4EeCrZ";

    // The right log asked for under another SCID.
    let asked = did.replace(&real, other);
    let result = webvh::resolve_log(
        &asked,
        &log.to_jsonl(),
        None,
        &VersionQuery::default(),
        at(10),
    );
    assert_eq!(result.error(), Some("invalidDid"));

    // A first entry whose SCID was swapped, re-hashed and re-signed.
    let first = log.entries()[0].without_proof();
    let swapped: Value = serde_json::from_str(&first.to_string().replace(&real, other)).unwrap();
    let hash = scid::entry_hash(&swapped, other).unwrap();
    let mut swapped = swapped;
    swapped["versionId"] = json!(format!("1-{hash}"));
    let time = log.entries()[0].version_time().to_owned();
    let signed = webvh::sign_entry(swapped, &key.signer, &key.multikey, &time)
        .await
        .unwrap();
    let err = failure(&DidLog::from_entries(vec![signed]));
    assert!(err.contains("Scid { version: 1 }"), "{err}");
}

#[tokio::test]
async fn proof_by_a_key_that_is_not_authorised_is_refused() {
    let key = key();
    let stranger = self::key();
    let log = created(|_| {}, &key).await;
    let state = log.entries()[0].state().clone();
    let v1 = log.entries()[0].version_id().to_owned();
    let mut log = log;
    log.push(entry(&v1, 2, "2026-01-01T00:00:10Z", json!({}), &state, &stranger).await);
    let err = failure(&log);
    assert!(err.contains("UnauthorizedKey { version: 2"), "{err}");
}

#[tokio::test]
async fn keys_that_were_not_pre_rotated_are_refused() {
    let key = key();
    let next = self::key();
    let stranger = self::key();
    let log = created(|c| c.next_key_hashes = vec![next.multikey.key_hash()], &key).await;
    let state = log.entries()[0].state().clone();
    let v1 = log.entries()[0].version_id().to_owned();

    // A key that was not committed to.
    let mut bad = log.clone();
    bad.push(
        entry(
            &v1,
            2,
            "2026-01-01T00:00:10Z",
            json!({"updateKeys": [stranger.multikey.as_str()], "nextKeyHashes": []}),
            &state,
            &stranger,
        )
        .await,
    );
    let err = failure(&bad);
    assert!(err.contains("PreRotation { version: 2"), "{err}");

    // The committed key, but updateKeys omitted (negative-pre-rotation-omit-updatekeys).
    let mut omitted = log.clone();
    omitted.push(
        entry(
            &v1,
            2,
            "2026-01-01T00:00:10Z",
            json!({"nextKeyHashes": []}),
            &state,
            &next,
        )
        .await,
    );
    let err = failure(&omitted);
    assert!(err.contains("PreRotation { version: 2"), "{err}");

    // The old key may not sign once pre-rotation is on.
    let mut old = log.clone();
    old.push(
        entry(
            &v1,
            2,
            "2026-01-01T00:00:10Z",
            json!({"updateKeys": [next.multikey.as_str()], "nextKeyHashes": []}),
            &state,
            &key,
        )
        .await,
    );
    let err = failure(&old);
    assert!(err.contains("UnauthorizedKey { version: 2"), "{err}");

    // And the library refuses to build such entries in the first place.
    let refused = webvh::update(
        &log,
        UpdateOptions::default(),
        &key.signer,
        &key.multikey,
        at(10),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, WebvhError::PreRotation { version: 2, .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn version_time_in_the_future_or_out_of_order_is_refused() {
    let key = key();
    let log = created(|_| {}, &key).await;
    // Created at at(0); verified an hour earlier, it is in the future.
    let verified = webvh::verify_log(&log, None, at(-3600));
    assert!(matches!(
        verified.failure(),
        Some(WebvhError::VersionTime {
            version: 1,
            fault: TimeFault::InFuture
        })
    ));
    // Within the allowed clock skew it is fine.
    assert!(webvh::verify_log(&log, None, at(-60)).is_complete());

    let state = log.entries()[0].state().clone();
    let v1 = log.entries()[0].version_id().to_owned();
    for time in ["2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"] {
        let mut bad = log.clone();
        bad.push(entry(&v1, 2, time, json!({}), &state, &key).await);
        let err = failure(&bad);
        assert!(err.contains("NotIncreasing"), "{err}");
    }
    let mut local = log.clone();
    local.push(entry(&v1, 2, "2026-01-01T02:00:00+02:00", json!({}), &state, &key).await);
    let err = failure(&local);
    assert!(err.contains("Malformed"), "{err}");
}

#[tokio::test]
async fn other_cryptosuites_and_method_versions_are_refused() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let mut suite = log.entries()[0].as_value().clone();
    suite["proof"][0]["cryptosuite"] = json!("eddsa-rdfc-2022");
    let err = failure(&replace_line(&log, 0, &suite));
    assert!(
        err.contains(&format!("{:?}", ProofFault::Cryptosuite)),
        "{err}"
    );

    let mut method = log.entries()[0].as_value().clone();
    method["parameters"]["method"] = json!("did:webvh:1.1");
    let err = failure(&replace_line(&log, 0, &method));
    assert!(err.contains("UnsupportedMethod"), "{err}");
}

#[tokio::test]
async fn updates_after_deactivation_are_refused() {
    let key = key();
    let mut log = created(|_| {}, &key).await;
    for entry in webvh::deactivate(&log, &key.signer, &key.multikey, at(10))
        .await
        .unwrap()
    {
        log.push(entry);
    }
    let state = log.entries()[0].state().clone();
    let v2 = log.entries()[1].version_id().to_owned();
    log.push(
        entry(
            &v2,
            3,
            "2026-01-01T00:00:20Z",
            json!({"deactivated": false}),
            &state,
            &key,
        )
        .await,
    );
    let err = failure(&log);
    assert!(err.contains("AfterDeactivation { version: 3 }"), "{err}");
}

#[test]
fn malformed_logs_are_refused_with_the_line() {
    assert!(matches!(DidLog::parse(""), Err(WebvhError::EmptyLog)));
    assert!(matches!(
        DidLog::parse("{\n"),
        Err(WebvhError::MalformedEntry { line: 1, .. })
    ));
    let extra = r#"{"versionId":"1-x","versionTime":"t","parameters":{},"state":{},"extra":1}"#;
    assert!(matches!(
        DidLog::parse(extra),
        Err(WebvhError::MalformedEntry { line: 1, .. })
    ));
    let result = webvh::resolve_log(
        "did:webvh:{SCID}:example.com",
        "[]",
        None,
        &VersionQuery::default(),
        at(0),
    );
    assert_eq!(result.error(), Some("invalidDid"));
}
