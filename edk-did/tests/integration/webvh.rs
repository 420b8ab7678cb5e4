//! did:webvh: spec vectors, create / update / rotate / deactivate / move, version queries,
//! witnesses and the did:web document.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use edk_core::jose::{Algorithm, SigningKey};
use edk_did::webvh::{
    self, CreateOptions, DidLog, Multikey, UpdateOptions, VersionQuery, WebvhDid, WebvhError,
    WitnessConfig, WitnessFile,
};
use serde_json::json;

/// A software Ed25519 key with its Multikey.
pub(crate) struct Key {
    pub(crate) signer: SigningKey,
    pub(crate) multikey: Multikey,
}

pub(crate) fn key() -> Key {
    let signer = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let multikey = Multikey::from_verifying_key(signer.verifying_key()).unwrap();
    Key { signer, multikey }
}

/// 2026-01-01T00:00:00Z plus `seconds`.
pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

pub(crate) fn did_of(log: &DidLog) -> String {
    log.entries()[0].state()["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn created(options: impl FnOnce(&mut CreateOptions), key: &Key) -> DidLog {
    let mut create = CreateOptions::new(
        WebvhDid::template("example.com", &["dids", "issuer"]).unwrap(),
        key.multikey.clone(),
    );
    options(&mut create);
    webvh::create(create, &key.signer, &key.multikey, at(0))
        .await
        .unwrap()
}

pub(crate) fn resolve(did: &str, log: &DidLog, query: &VersionQuery) -> webvh::LogResolution {
    webvh::resolve_log(did, &log.to_jsonl(), None, query, at(1_000_000))
}

fn vector(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/vectors/didwebvh/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn test_suite_basic_create_vector_resolves() {
    let did = "did:webvh:QmUy89VrfryQ254CeHZzQfmcKqByPoKNGqYykP3SeXuegQ:example.com";
    let result = webvh::resolve_log(
        did,
        &vector("basic-create.jsonl"),
        None,
        &VersionQuery::default(),
        at(0),
    );
    assert_eq!(result.error(), None, "{:?}", result.resolution_metadata);
    let meta = &result.document_metadata;
    assert_eq!(
        meta["versionId"],
        "1-QmRqMp6AtLbWzMyLa6ZdCjiQXo1HaLpUStJFwqAMY7pVfo"
    );
    assert_eq!(meta["created"], "2000-01-01T00:00:00Z");
    assert_eq!(meta["ttl"], "3600");
    let document = result.document.unwrap();
    let services = document["service"].as_array().unwrap();
    assert_eq!(services[0]["id"], format!("{did}#files"));
    assert_eq!(services[0]["serviceEndpoint"], "https://example.com/");
    assert_eq!(
        services[1]["serviceEndpoint"],
        "https://example.com/whois.vp"
    );
}

#[test]
fn test_suite_pre_rotation_consume_vector_resolves_each_version() {
    let did = "did:webvh:QmUQVmu7yyX6x9jCUH863pBacUmg8Wuu4ZZtsdfv7Uv5iD:example.com";
    let log = vector("pre-rotation-consume.jsonl");
    let latest = webvh::resolve_log(did, &log, None, &VersionQuery::default(), at(0));
    assert_eq!(latest.error(), None, "{:?}", latest.resolution_metadata);
    assert_eq!(latest.document_metadata["versionNumber"], 3);
    let second = webvh::resolve_log(
        did,
        &log,
        None,
        &VersionQuery::from_query("versionTime=2000-01-02T12:00:00Z").unwrap(),
        at(0),
    );
    assert_eq!(
        second.document_metadata["versionId"],
        "2-QmRUBVSMad4vNeSq14193UzmyEnsPATo5YFZPeRA1f7tq3"
    );
    // Entry 2 swapped for entry 3 breaks the chain.
    let lines: Vec<&str> = log.lines().collect();
    let swapped = [lines[0], lines[2], lines[1]].join("\n");
    let broken = webvh::resolve_log(did, &swapped, None, &VersionQuery::default(), at(0));
    assert_eq!(broken.error(), Some("invalidDid"));
}

#[tokio::test]
async fn create_then_resolve_round_trips() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let did = did_of(&log);
    let parsed = WebvhDid::parse(&did).unwrap();
    assert_eq!(
        parsed.log_url(),
        "https://example.com/dids/issuer/did.jsonl"
    );
    assert_eq!(log.to_jsonl().lines().count(), 1);
    let reparsed = DidLog::parse(&log.to_jsonl()).unwrap();
    let verified = webvh::verify_log(&reparsed, None, at(10));
    assert!(verified.is_complete(), "{:?}", verified.failure());
    let version = verified.latest().unwrap();
    assert_eq!(version.number, 1);
    assert_eq!(version.parameters.update_keys, vec![key.multikey.clone()]);
    assert_eq!(version.parameters.scid, parsed.scid());
    let result = resolve(&did, &log, &VersionQuery::default());
    assert_eq!(result.error(), None);
    assert_eq!(result.document.unwrap()["id"], did);
}

#[tokio::test]
async fn updates_with_pre_rotation_services_and_also_known_as_resolve_by_version() {
    let first = key();
    let second = key();
    let third = key();
    let mut log = created(
        |c| c.next_key_hashes = vec![second.multikey.key_hash()],
        &first,
    )
    .await;
    let did = did_of(&log);

    // Version 2: rotate to the pre-rotated key, commit to the third, add a service.
    let mut document = log.entries()[0].state().clone();
    webvh::set_service(
        &mut document,
        "#issuer",
        "OID4VCI",
        "https://issuer.example.com",
    );
    let entry = webvh::update(
        &log,
        UpdateOptions {
            document: Some(document),
            update_keys: Some(vec![second.multikey.clone()]),
            next_key_hashes: Some(vec![third.multikey.key_hash()]),
            ..UpdateOptions::default()
        },
        &second.signer,
        &second.multikey,
        at(100),
    )
    .await
    .unwrap();
    log.push(entry);

    // Version 3: alsoKnownAs, stop pre-rotation.
    let mut document = log.entries()[1].state().clone();
    webvh::add_also_known_as(&mut document, "https://issuer.example.com");
    let entry = webvh::update(
        &log,
        UpdateOptions {
            document: Some(document),
            update_keys: Some(vec![third.multikey.clone()]),
            next_key_hashes: Some(vec![]),
            ..UpdateOptions::default()
        },
        &third.signer,
        &third.multikey,
        at(200),
    )
    .await
    .unwrap();
    log.push(entry);

    let latest = resolve(&did, &log, &VersionQuery::default());
    assert_eq!(latest.error(), None, "{:?}", latest.resolution_metadata);
    let document = latest.document.unwrap();
    assert_eq!(
        document["alsoKnownAs"],
        json!(["https://issuer.example.com"])
    );
    assert_eq!(document["service"][0]["type"], "OID4VCI");
    assert_eq!(latest.document_metadata["versionNumber"], 3);
    assert_eq!(latest.document_metadata["updated"], "2026-01-01T00:03:20Z");

    let v2 = log.entries()[1].version_id().to_owned();
    let by_id = resolve(
        &did,
        &log,
        &VersionQuery::from_query(&format!("versionId={v2}")).unwrap(),
    );
    assert_eq!(by_id.document_metadata["versionNumber"], 2);
    assert!(by_id.document.unwrap().get("alsoKnownAs").is_none());

    let by_time = resolve(
        &did,
        &log,
        &VersionQuery::from_query("versionTime=2026-01-01T00:01:00Z").unwrap(),
    );
    assert_eq!(by_time.document_metadata["versionNumber"], 1);
    let by_number = resolve(
        &did,
        &log,
        &VersionQuery::from_query("versionNumber=2").unwrap(),
    );
    assert_eq!(by_number.document_metadata["versionId"], json!(v2));

    let missing = resolve(
        &did,
        &log,
        &VersionQuery::from_query("versionNumber=9").unwrap(),
    );
    assert_eq!(missing.error(), Some("notFound"));
    let before = resolve(
        &did,
        &log,
        &VersionQuery::from_query("versionTime=2025-01-01T00:00:00Z").unwrap(),
    );
    assert_eq!(before.error(), Some("notFound"));

    // The old key may no longer sign: refused before anything is written.
    let refused = webvh::update(
        &log,
        UpdateOptions::default(),
        &first.signer,
        &first.multikey,
        at(300),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, WebvhError::UnauthorizedKey { version: 4, .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn key_rotation_without_pre_rotation_is_signed_by_the_old_key() {
    let old = key();
    let new = key();
    let mut log = created(|_| {}, &old).await;
    let entry = webvh::update(
        &log,
        UpdateOptions {
            update_keys: Some(vec![new.multikey.clone()]),
            ..UpdateOptions::default()
        },
        &old.signer,
        &old.multikey,
        at(10),
    )
    .await
    .unwrap();
    log.push(entry);
    let entry = webvh::update(
        &log,
        UpdateOptions::default(),
        &new.signer,
        &new.multikey,
        at(20),
    )
    .await
    .unwrap();
    log.push(entry);
    assert!(webvh::verify_log(&log, None, at(30)).is_complete());
}

#[tokio::test]
async fn deactivation_with_pre_rotation_takes_two_entries_and_keeps_prior_versions() {
    let first = key();
    let second = key();
    let mut log = created(
        |c| c.next_key_hashes = vec![second.multikey.key_hash()],
        &first,
    )
    .await;
    let did = did_of(&log);
    let entries = webvh::deactivate(&log, &second.signer, &second.multikey, at(50))
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        log.push(entry);
    }
    let result = resolve(&did, &log, &VersionQuery::default());
    assert_eq!(result.error(), None);
    assert!(result.document.is_none());
    assert_eq!(result.document_metadata["deactivated"], true);
    // did:webvh §"Deactivate (Revoke)": prior versions asked for by versionId, versionTime
    // or versionNumber still resolve, with `deactivated: true`.
    let v1 = log.entries()[0].version_id().to_owned();
    let v2 = log.entries()[1].version_id().to_owned();
    for (query, version_id) in [
        ("versionNumber=1".to_owned(), &v1),
        (format!("versionId={v1}"), &v1),
        ("versionTime=2026-01-01T00:00:30Z".to_owned(), &v1),
        ("versionNumber=2".to_owned(), &v2),
    ] {
        let historic = resolve(&did, &log, &VersionQuery::from_query(&query).unwrap());
        assert_eq!(historic.error(), None, "{query}");
        assert_eq!(
            historic.document.as_ref().unwrap()["id"],
            did.as_str(),
            "{query}"
        );
        assert_eq!(historic.document_metadata["versionId"], version_id.as_str());
        assert_eq!(historic.document_metadata["deactivated"], true, "{query}");
    }
    // The deactivating entry itself has no document.
    let last = resolve(
        &did,
        &log,
        &VersionQuery::from_query("versionNumber=3").unwrap(),
    );
    assert!(last.document.is_none());
    assert_eq!(last.document_metadata["deactivated"], true);

    let err = webvh::update(
        &log,
        UpdateOptions::default(),
        &second.signer,
        &second.multikey,
        at(99),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WebvhError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn portable_did_moves_domain_and_keeps_its_history() {
    let key = key();
    let mut log = created(|c| c.portable = true, &key).await;
    let old = did_of(&log);
    let scid = WebvhDid::parse(&old).unwrap().scid().to_owned();
    let new = WebvhDid::parse(&format!(
        "did:webvh:{scid}:new.example.org%3A8443:people:alice"
    ))
    .unwrap();
    let document = webvh::moved_document(&log, &new, at(10)).unwrap();
    assert_eq!(document["id"], new.as_str());
    assert_eq!(document["alsoKnownAs"], json!([old]));
    let entry = webvh::update(
        &log,
        UpdateOptions {
            document: Some(document),
            ..UpdateOptions::default()
        },
        &key.signer,
        &key.multikey,
        at(10),
    )
    .await
    .unwrap();
    log.push(entry);
    let result = resolve(new.as_str(), &log, &VersionQuery::default());
    assert_eq!(result.error(), None, "{:?}", result.resolution_metadata);
    let document = result.document.unwrap();
    assert_eq!(
        document["service"][0]["serviceEndpoint"],
        "https://new.example.org:8443/people/alice/"
    );
    assert_eq!(
        new.log_url(),
        "https://new.example.org:8443/people/alice/did.jsonl"
    );
}

#[tokio::test]
async fn a_did_that_is_not_portable_cannot_move() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let scid = WebvhDid::parse(&did_of(&log)).unwrap().scid().to_owned();
    let new = WebvhDid::parse(&format!("did:webvh:{scid}:elsewhere.example")).unwrap();
    assert!(matches!(
        webvh::moved_document(&log, &new, at(10)),
        Err(WebvhError::Refused { .. })
    ));
    // A hand-made move is refused too.
    let mut document = log.entries()[0].state().clone();
    document["id"] = json!(new.as_str());
    webvh::add_also_known_as(&mut document, &did_of(&log));
    let err = webvh::update(
        &log,
        UpdateOptions {
            document: Some(document),
            ..UpdateOptions::default()
        },
        &key.signer,
        &key.multikey,
        at(10),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, WebvhError::InvalidDocument { version: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn did_web_document_replaces_the_method_and_links_back() {
    let key = key();
    let log = created(|_| {}, &key).await;
    let did = did_of(&log);
    let mut document = log.entries()[0].state().clone();
    document["verificationMethod"] = json!([{"id": format!("{did}#key-1"), "type": "Multikey",
        "controller": did, "publicKeyMultibase": key.multikey.as_str()}]);
    let web = webvh::did_web_document(&document).unwrap();
    assert_eq!(web["id"], "did:web:example.com:dids:issuer");
    assert_eq!(
        web["verificationMethod"][0]["id"],
        "did:web:example.com:dids:issuer#key-1"
    );
    assert_eq!(web["alsoKnownAs"], json!([did]));
    assert_eq!(
        web["service"][0]["id"],
        "did:web:example.com:dids:issuer#files"
    );
    assert!(!web.to_string().contains(&format!("{did}#")));
}

#[tokio::test]
async fn witnessed_entries_need_the_threshold_of_distinct_witnesses() {
    let controller = key();
    let witnesses = [key(), key(), key()];
    let rule =
        WitnessConfig::new(2, witnesses.iter().map(|w| w.multikey.clone()).collect()).unwrap();
    let mut log = created(|c| c.witness = Some(rule.clone()), &controller).await;
    let did = did_of(&log);
    let entry = webvh::update(
        &log,
        UpdateOptions::default(),
        &controller.signer,
        &controller.multikey,
        at(10),
    )
    .await
    .unwrap();
    log.push(entry);
    let v1 = log.entries()[0].version_id().to_owned();
    let v2 = log.entries()[1].version_id().to_owned();
    let versions = [v1.clone(), v2.clone()];
    let versions: Vec<&str> = versions.iter().map(String::as_str).collect();

    let mut file = WitnessFile::default();
    // One witness approves the latest version (and so version 1 too).
    file.add(
        &v2,
        webvh::sign_version(&v2, &witnesses[0].signer, &witnesses[0].multikey, at(11))
            .await
            .unwrap(),
        &versions,
        2,
    );
    let check = |file: &WitnessFile| {
        webvh::resolve_log(
            &did,
            &log.to_jsonl(),
            Some(&file.to_json()),
            &VersionQuery::default(),
            at(100),
        )
    };
    let short = check(&file);
    assert_eq!(short.error(), Some("invalidDid"));
    assert!(
        short.resolution_metadata["problemDetails"]["detail"]
            .as_str()
            .unwrap()
            .contains("witness threshold not met (1 of 2)")
    );
    let verified = webvh::verify_log(&log, Some(&file), at(100));
    assert!(matches!(
        verified.failure(),
        Some(WebvhError::WitnessThreshold {
            version: 1,
            threshold: 2,
            approvals: 1
        })
    ));

    // The same witness twice still counts once.
    let twice = webvh::sign_version(&v2, &witnesses[0].signer, &witnesses[0].multikey, at(12))
        .await
        .unwrap();
    let doubled = WitnessFile::parse(
        &json!([{"versionId": v2, "proof": [twice.clone(), twice]}]).to_string(),
    )
    .unwrap();
    assert_eq!(check(&doubled).error(), Some("invalidDid"));

    // A proof by a key that is not a witness is ignored.
    let stranger = key();
    file.add(
        &v2,
        webvh::sign_version(&v2, &stranger.signer, &stranger.multikey, at(12))
            .await
            .unwrap(),
        &versions,
        2,
    );
    assert_eq!(check(&file).error(), Some("invalidDid"));

    // A second witness on version 1 only: version 2 is still short.
    file.add(
        &v1,
        webvh::sign_version(&v1, &witnesses[1].signer, &witnesses[1].multikey, at(13))
            .await
            .unwrap(),
        &versions,
        2,
    );
    let partial = webvh::verify_log(&log, Some(&file), at(100));
    assert_eq!(partial.versions().len(), 1);
    assert!(matches!(
        partial.failure(),
        Some(WebvhError::WitnessThreshold { version: 2, .. })
    ));
    let historic = webvh::resolve_log(
        &did,
        &log.to_jsonl(),
        Some(&file.to_json()),
        &VersionQuery::from_query("versionNumber=1").unwrap(),
        at(100),
    );
    assert_eq!(historic.error(), None);

    // Moving the second witness's approval to version 2 meets the threshold for both.
    file.add(
        &v2,
        webvh::sign_version(&v2, &witnesses[1].signer, &witnesses[1].multikey, at(14))
            .await
            .unwrap(),
        &versions,
        2,
    );
    let ok = check(&file);
    assert_eq!(ok.error(), None, "{:?}", ok.resolution_metadata);
    assert_eq!(ok.document_metadata["witness"]["threshold"], "2");

    // Without did-witness.json nothing verifies.
    let none = webvh::resolve_log(
        &did,
        &log.to_jsonl(),
        None,
        &VersionQuery::default(),
        at(100),
    );
    assert_eq!(none.error(), Some("invalidDid"));
}

#[test]
fn malformed_witness_rules_are_refused() {
    let a = key().multikey;
    let threshold = "the threshold must be from 1 to the number of witnesses";
    for (config, reason) in [
        (WitnessConfig::new(0, vec![a.clone()]), threshold),
        (WitnessConfig::new(2, vec![a.clone()]), threshold),
        (
            WitnessConfig::new(1, vec![a.clone(), a]),
            "duplicate witness ids",
        ),
        (WitnessConfig::new(1, vec![]), "the witness list is empty"),
    ] {
        let err = config.unwrap_err();
        assert!(
            matches!(err, WebvhError::Refused { reason: r } if r == reason),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_signer_that_does_not_hold_the_key_is_caught() {
    let key = key();
    let other = key_other();
    let create = CreateOptions::new(
        WebvhDid::template("example.com", &[]).unwrap(),
        key.multikey.clone(),
    );
    let err = webvh::create(create, &other, &key.multikey, at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, WebvhError::SignerMismatch { .. }), "{err}");
    let es256 = SigningKey::generate(Algorithm::Es256).unwrap();
    let create = CreateOptions::new(
        WebvhDid::template("example.com", &[]).unwrap(),
        key.multikey.clone(),
    );
    let err = webvh::create(create, &es256, &key.multikey, at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, WebvhError::SignerMismatch { .. }), "{err}");
}

fn key_other() -> SigningKey {
    SigningKey::generate(Algorithm::EdDsa).unwrap()
}
