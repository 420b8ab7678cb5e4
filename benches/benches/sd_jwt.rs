//! SD-JWT VC issue, present (with KB-JWT) and verify (with KB-JWT), next to the raw ES256
//! signature calls they are built on, measured in the same run.
//!
//! Run with: cargo bench -p edk-benches --bench sd_jwt
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use edk_benches::{IDENTITY_VC_NOW, identity_vc};
use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::VcVerifyOptions;

const NOW: i64 = IDENTITY_VC_NOW;

fn sd_jwt(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let issuer = SigningKey::generate(Algorithm::Es256).expect("key");
    let holder = SigningKey::generate(Algorithm::Es256).expect("key");
    let resolver = JwksResolver::from_keys([&issuer.public_jwk()]);
    let options = IssueOptions::default();
    let mut group = c.benchmark_group("sd_jwt_vc/ES256");

    let message = [0x5a_u8; 600];
    group.bench_function("raw sign", |b| {
        b.iter(|| issuer.sign_bytes(&message).expect("sign"));
    });
    let signature = issuer.sign_bytes(&message).expect("sign");
    group.bench_function("raw verify", |b| {
        b.iter(|| {
            issuer
                .verifying_key()
                .verify(Algorithm::Es256, &message, &signature)
                .expect("verify");
        });
    });

    let template = identity_vc(&holder);
    group.bench_function("issue (10 claims, 8 disclosable)", |b| {
        b.iter(|| {
            runtime
                .block_on(template.clone().issue(&issuer, &options))
                .expect("issue")
        });
    });
    let issued = runtime
        .block_on(template.issue(&issuer, &options))
        .expect("issue")
        .to_string();

    let disclose: Vec<ClaimPath> = ["given_name", "family_name", "birthdate", "address"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let kb = KeyBindingClaims::new("https://verifier.example", "n-0S6_WzA2Mj", NOW);
    group.bench_function("present with KB-JWT", |b| {
        b.iter(|| {
            let parsed = SdJwt::parse(&issued, &Limits::DEFAULT).expect("parse");
            runtime
                .block_on(parsed.present(&disclose, Some((&kb, &holder))))
                .expect("present")
                .to_string()
        });
    });
    let presented = runtime
        .block_on(
            SdJwt::parse(&issued, &Limits::DEFAULT)
                .expect("parse")
                .present(&disclose, Some((&kb, &holder))),
        )
        .expect("present")
        .to_string();

    let verify_plain = VcVerifyOptions::default();
    group.bench_function("verify (all disclosed, no KB)", |b| {
        b.iter(|| {
            let parsed = SdJwt::parse(&issued, &Limits::DEFAULT).expect("parse");
            runtime
                .block_on(parsed.verify_vc(&resolver, &verify_plain, NOW))
                .expect("verify")
        });
    });
    let verify_kb =
        VcVerifyOptions::default().with_key_binding("https://verifier.example", "n-0S6_WzA2Mj");
    group.bench_function("verify with KB-JWT", |b| {
        b.iter(|| {
            let parsed = SdJwt::parse(&presented, &Limits::DEFAULT).expect("parse");
            runtime
                .block_on(parsed.verify_vc(&resolver, &verify_kb, NOW))
                .expect("verify")
        });
    });
    group.finish();
}

criterion_group!(benches, sd_jwt);
criterion_main!(benches);
