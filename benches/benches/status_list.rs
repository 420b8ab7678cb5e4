//! Token Status List: encode, decode and look up a list of 1,000,000 statuses, and publish
//! (encode + ES256 sign) and verify it as a Status List Token in JWT and in CWT form, next
//! to one raw ES256 signature.
//!
//! Run with: cargo bench -p edk-benches --bench status_list
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edk_core::jose::{Algorithm, Header, SigningKey};
use edk_core::limits::Limits;
use edk_core::status_list::{
    Bits, StatusList, StatusListCwt, StatusListCwtClaims, StatusListPolicy, StatusListToken,
    StatusListTokenClaims,
};

const ENTRIES: usize = 1_000_000;
const URI: &str = "https://issuer.example/statuslists/1";
const NOW: i64 = 1_700_000_000;

/// A list with about 1% of entries set to a non-zero value, spread pseudo-randomly (the
/// specification recommends random indices, Status List §13.2).
fn sample_list(bits: Bits) -> StatusList {
    let mut list = StatusList::new(bits, ENTRIES);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..ENTRIES / 100 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let index = usize::try_from(state % ENTRIES as u64).unwrap();
        let value = u8::try_from(state >> 56).unwrap() % bits.max_value() + 1;
        list.set(index, value).unwrap();
    }
    list
}

fn status_list(c: &mut Criterion) {
    for bits in [Bits::One, Bits::Two, Bits::Eight] {
        let list = sample_list(bits);
        let encoded = list.encode().expect("encode");
        let mut group = c.benchmark_group(format!("status_list/{bits}-bit"));
        group.throughput(Throughput::Elements(ENTRIES as u64));
        group.bench_function("encode 1M", |b| {
            b.iter(|| black_box(&list).encode().expect("encode"));
        });
        group.bench_function("decode 1M", |b| {
            b.iter(|| {
                black_box(&encoded)
                    .decode(&Limits::DEFAULT)
                    .expect("decode")
            });
        });
        group.bench_function("set 1M", |b| {
            b.iter_batched_ref(
                || StatusList::new(bits, ENTRIES),
                |fresh| {
                    for index in 0..ENTRIES {
                        fresh.set(index, 1).expect("set");
                    }
                },
                BatchSize::LargeInput,
            );
        });
        group.bench_function("get 1M", |b| {
            b.iter(|| {
                let mut sum = 0_u32;
                for index in 0..ENTRIES {
                    sum += u32::from(list.get(black_box(index)).expect("get"));
                }
                sum
            });
        });
        group.finish();
        println!(
            "status_list/{bits}-bit: {} bytes raw, {} bytes of zlib",
            list.as_bytes().len(),
            list.compress().expect("compress").len()
        );
    }
}

fn status_list_token(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let key = SigningKey::generate(Algorithm::Es256).expect("key");
    let policy = StatusListPolicy::default();
    c.bench_function("status_list_token/ES256 raw sign", |b| {
        b.iter(|| key.sign_bytes(black_box(b"status list")).expect("sign"));
    });
    for bits in [Bits::One, Bits::Eight] {
        let list = sample_list(bits);
        let jwt_claims = || {
            StatusListTokenClaims::new(URI, NOW, &list)
                .expect("claims")
                .with_exp(NOW + 86_400)
                .with_ttl(3_600)
        };
        let cwt_claims = || {
            StatusListCwtClaims::new(URI, NOW, &list)
                .expect("claims")
                .with_exp(NOW + 86_400)
                .with_ttl(3_600)
        };
        let jwt = runtime
            .block_on(StatusListToken::issue(
                Header::new(Algorithm::Es256),
                &jwt_claims(),
                &key,
            ))
            .expect("jwt");
        let cwt = runtime
            .block_on(StatusListCwt::issue(&cwt_claims(), &key))
            .expect("cwt");

        let mut group = c.benchmark_group(format!("status_list_token/{bits}-bit"));
        group.throughput(Throughput::Elements(ENTRIES as u64));
        group.bench_function("JWT encode+sign 1M", |b| {
            b.iter(|| {
                runtime
                    .block_on(StatusListToken::issue(
                        Header::new(Algorithm::Es256),
                        &jwt_claims(),
                        &key,
                    ))
                    .expect("jwt")
            });
        });
        group.bench_function("CWT encode+sign 1M", |b| {
            b.iter(|| {
                runtime
                    .block_on(StatusListCwt::issue(&cwt_claims(), &key))
                    .expect("cwt")
            });
        });
        group.bench_function("JWT verify 1M", |b| {
            b.iter(|| {
                StatusListToken::verify(black_box(&jwt), key.verifying_key(), URI, &policy, NOW)
                    .expect("verify")
            });
        });
        group.bench_function("CWT verify 1M", |b| {
            b.iter(|| {
                StatusListCwt::verify(black_box(&cwt), key.verifying_key(), URI, &policy, NOW)
                    .expect("verify")
            });
        });
        group.finish();
        println!(
            "status_list_token/{bits}-bit: JWT {} bytes, CWT {} bytes",
            jwt.len(),
            cwt.len()
        );
    }
}

criterion_group!(benches, status_list, status_list_token);
criterion_main!(benches);
