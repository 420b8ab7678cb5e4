//! mso_mdoc issuing and verifying (ISO/IEC 18013-5), next to one raw ES256 sign and verify.
//!
//! Run with: cargo bench -p edk-benches --bench mdoc
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::FixedClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_mdoc::{
    DeviceResponse, IssuerSignedBuilder, Limits, SessionTranscript, ValidityInfo, Verifier, present,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const NOW: u64 = 1_780_272_000;
const MDL: &str = "org.iso.18013.5.1.mDL";
const NS: &str = "org.iso.18013.5.1";

/// An IACA root and a document signer under it: (root DER, signer certificate DER, signer key).
fn pki() -> (Vec<u8>, Vec<u8>, SigningKey) {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
    root.distinguished_name
        .push(DnType::CommonName, "Bench IACA");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.not_before = rcgen::date_time_ymd(2025, 1, 1);
    root.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let root_der = root.self_signed(&root_key).expect("root").der().to_vec();
    let ds_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut ds = CertificateParams::new(Vec::<String>::new()).expect("params");
    ds.distinguished_name.push(DnType::CommonName, "Bench DS");
    ds.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Other(vec![
        1, 0, 18013, 5, 1, 2,
    ])];
    ds.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ds.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let ds_der = ds
        .signed_by(&ds_key, &Issuer::new(root, root_key))
        .expect("ds")
        .der()
        .to_vec();
    let signer =
        SigningKey::from_pkcs8_der(Algorithm::Es256, &ds_key.serialize_der()).expect("ds key");
    (root_der, ds_der, signer)
}

fn mdoc(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (root, ds_cert, signer) = pki();
    let chain = vec![ds_cert];
    let device = SigningKey::generate(Algorithm::Es256).expect("device key");
    let signed = UNIX_EPOCH + Duration::from_secs(NOW - 86_400);
    let validity = ValidityInfo {
        signed,
        valid_from: signed,
        valid_until: signed + Duration::from_secs(365 * 86_400),
        expected_update: None,
    };
    let claims = serde_json::json!({
        "family_name": "Mustermann", "given_name": "Erika", "birth_date": "1964-08-12",
        "age_over_18": true, "document_number": "T22000129",
        "driving_privileges": [{"vehicle_category_code": "B", "issue_date": "2020-01-01"}]
    });
    let claims = claims.as_object().expect("object").clone();
    let issue = || {
        runtime.block_on(async {
            IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity)
                .expect("builder")
                .claims(NS, &claims)
                .expect("claims")
                .sign(&signer, &chain)
                .await
                .expect("issue")
        })
    };
    let verifier = Verifier::new(
        [root],
        Arc::new(FixedClock::at_unix(i64::try_from(NOW).expect("time"))),
    )
    .expect("verifier");
    let transcript = SessionTranscript::openid4vp(
        "x509_san_dns:verifier.example",
        "nonce",
        None,
        "https://verifier.example/response",
    );

    let mut group = c.benchmark_group("mdoc/ES256");
    group.throughput(Throughput::Elements(1));
    let message = issue().to_cbor().expect("encode");
    group.bench_function("raw ES256 sign", |b| {
        b.iter(|| signer.sign_bytes(&message).expect("sign"));
    });
    let signature = signer.sign_bytes(&message).expect("sign");
    group.bench_function("raw ES256 verify", |b| {
        b.iter(|| {
            signer
                .verifying_key()
                .verify(Algorithm::Es256, &message, &signature)
                .expect("verify");
        });
    });
    group.bench_function("issue (6 elements)", |b| b.iter(&issue));
    let credential = issue().to_base64url().expect("encode");
    group.bench_function("verify IssuerSigned (parse, chain, digests)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let parsed = edk_mdoc::IssuerSigned::from_base64url(&credential, verifier.limits())
                    .expect("parse");
                verifier
                    .verify_issuer_signed(&parsed, MDL)
                    .await
                    .expect("verify")
            })
        });
    });
    let issuer_signed = issue();
    group.bench_function("present (2 elements)", |b| {
        b.iter(|| {
            runtime
                .block_on(present(
                    &issuer_signed,
                    &[(NS, "family_name"), (NS, "age_over_18")],
                    &device,
                    &transcript,
                ))
                .expect("present")
        });
    });
    let document = runtime
        .block_on(present(
            &issuer_signed,
            &[(NS, "family_name"), (NS, "age_over_18")],
            &device,
            &transcript,
        ))
        .expect("present");
    let response = DeviceResponse::new(vec![document])
        .to_cbor()
        .expect("encode");
    group.bench_function("verify DeviceResponse (parse, issuer, device)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let parsed = DeviceResponse::from_cbor(&response, &Limits::DEFAULT).expect("parse");
                verifier
                    .verify_device_response(&parsed, &transcript)
                    .await
                    .expect("verify")
            })
        });
    });
    group.finish();
}

criterion_group!(benches, mdoc);
criterion_main!(benches);
