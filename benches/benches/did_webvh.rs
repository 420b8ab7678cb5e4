//! did:webvh: verifying and resolving a 100-entry log (every entry signed, hash-chained and
//! rotating under pre-rotation), and appending one entry.
//!
//! Run with: cargo bench -p edk-benches --bench did_webvh
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use chrono::{Duration, TimeZone as _, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use edk_core::jose::{Algorithm, SigningKey};
use edk_did::webvh::{
    self, CreateOptions, DidLog, Multikey, UpdateOptions, VersionQuery, WebvhDid,
};

const ENTRIES: usize = 100;

fn key() -> (SigningKey, Multikey) {
    let key = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let multikey = Multikey::from_verifying_key(key.verifying_key()).expect("multikey");
    (key, multikey)
}

/// A log of `ENTRIES` entries: each update adds a service and rotates to the pre-rotated key.
fn build_log(runtime: &tokio::runtime::Runtime) -> DidLog {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let (mut current, mut current_mk) = key();
    let (mut next, mut next_mk) = key();
    let mut options = CreateOptions::new(
        WebvhDid::template("example.com", &["dids", "bench"]).expect("did"),
        current_mk.clone(),
    );
    options.next_key_hashes = vec![next_mk.key_hash()];
    let mut log = runtime
        .block_on(webvh::create(options, &current, &current_mk, start))
        .expect("create");
    for i in 1..ENTRIES {
        let (after, after_mk) = key();
        let mut document = log.entries().last().expect("entry").state().clone();
        webvh::set_service(
            &mut document,
            &format!("#svc-{i}"),
            "LinkedDomains",
            &format!("https://example.com/{i}"),
        );
        let update = UpdateOptions {
            document: Some(document),
            update_keys: Some(vec![next_mk.clone()]),
            next_key_hashes: Some(vec![after_mk.key_hash()]),
            ..UpdateOptions::default()
        };
        let at = start + Duration::minutes(i64::try_from(i).expect("small"));
        let entry = runtime
            .block_on(webvh::update(&log, update, &next, &next_mk, at))
            .expect("update");
        log.push(entry);
        (current, current_mk) = (next, next_mk);
        (next, next_mk) = (after, after_mk);
    }
    let _ = (current, current_mk);
    log
}

fn did_webvh(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let log = build_log(&runtime);
    let text = log.to_jsonl();
    let did = log.entries()[0].state()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    assert!(webvh::verify_log(&log, None, now).is_complete());

    let mut group = c.benchmark_group(format!("did_webvh/{ENTRIES}-entry log"));
    group.sample_size(20);
    group.bench_function("verify", |b| {
        b.iter(|| assert!(webvh::verify_log(&log, None, now).is_complete()));
    });
    group.bench_function("parse + verify + resolve latest", |b| {
        b.iter(|| {
            let result = webvh::resolve_log(&did, &text, None, &VersionQuery::default(), now);
            assert!(result.error().is_none());
        });
    });
    group.finish();

    let (key, multikey) = key();
    let mut options = CreateOptions::new(
        WebvhDid::template("example.com", &[]).expect("did"),
        multikey.clone(),
    );
    options.ttl = Some(60);
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let small = runtime
        .block_on(webvh::create(options, &key, &multikey, start))
        .expect("create");
    let mut group = c.benchmark_group("did_webvh/one entry");
    group.bench_function("create", |b| {
        b.iter(|| {
            let options = CreateOptions::new(
                WebvhDid::template("example.com", &[]).expect("did"),
                multikey.clone(),
            );
            runtime
                .block_on(webvh::create(options, &key, &multikey, start))
                .expect("create")
        });
    });
    group.bench_function("update (verifies the log first)", |b| {
        b.iter(|| {
            runtime
                .block_on(webvh::update(
                    &small,
                    UpdateOptions::default(),
                    &key,
                    &multikey,
                    start + Duration::seconds(5),
                ))
                .expect("update")
        });
    });
    group.finish();
}

criterion_group!(benches, did_webvh);
criterion_main!(benches);
