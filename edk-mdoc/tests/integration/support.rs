//! A test PKI (IACA root and document signer), a device key, a fixed clock and an mDL.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edk_core::FixedClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_mdoc::{IssuerSigned, IssuerSignedBuilder, SessionTranscript, ValidityInfo, Verifier};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The ISO/IEC 18013-5 mDL document type and name space.
pub(crate) const MDL: &str = "org.iso.18013.5.1.mDL";
pub(crate) const MDL_NS: &str = "org.iso.18013.5.1";

/// 2026-06-01T00:00:00Z, the verifiers' time.
pub(crate) const NOW: i64 = 1_780_272_000;
pub(crate) const DAY: u64 = 86_400;

pub(crate) fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap())
}

/// An IACA root and a document signer certificate under it, with the signer's key.
pub(crate) struct Pki {
    pub(crate) root: Vec<u8>,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) signer: SigningKey,
}

/// A root `CN=EDK test IACA, C=US` (2025–2035) and a document signer `CN=EDK test DS, C=US`
/// (2025-06 – 2028) with the mdoc DS extended key usage, both on P-256.
pub(crate) fn pki() -> Pki {
    pki_with_ds_usage(true)
}

/// As [`pki`], the document signer with or without its `id-mdl-kp-mdlDS` usage.
pub(crate) fn pki_with_ds_usage(ds_usage: bool) -> Pki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, "EDK test IACA");
    root.distinguished_name.push(DnType::CountryName, "US");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = rcgen::date_time_ymd(2025, 1, 1);
    root.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let root_cert = root.self_signed(&root_key).unwrap();

    let ds_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ds = CertificateParams::new(Vec::<String>::new()).unwrap();
    ds.distinguished_name
        .push(DnType::CommonName, "EDK test DS");
    ds.distinguished_name.push(DnType::CountryName, "US");
    ds.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ds.extended_key_usages = if ds_usage {
        vec![ExtendedKeyUsagePurpose::Other(vec![1, 0, 18013, 5, 1, 2])]
    } else {
        vec![ExtendedKeyUsagePurpose::ServerAuth]
    };
    ds.not_before = rcgen::date_time_ymd(2025, 6, 1);
    ds.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let ds_cert = ds.signed_by(&ds_key, &Issuer::new(root, root_key)).unwrap();
    Pki {
        root: root_cert.der().to_vec(),
        chain: vec![ds_cert.der().to_vec()],
        signer: SigningKey::from_pkcs8_der(Algorithm::Es256, &ds_key.serialize_der()).unwrap(),
    }
}

/// Signed a day before [`NOW`], valid from then for a year.
pub(crate) fn validity() -> ValidityInfo {
    let from = at(NOW) - Duration::from_secs(DAY);
    ValidityInfo {
        signed: from,
        valid_from: from,
        valid_until: from + Duration::from_secs(365 * DAY),
        expected_update: None,
    }
}

pub(crate) fn device_key() -> SigningKey {
    SigningKey::generate(Algorithm::Es256).unwrap()
}

pub(crate) fn mdl_claims() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "family_name": "Mustermann",
        "given_name": "Erika",
        "birth_date": "1964-08-12",
        "age_over_18": true,
        "document_number": "T22000129",
        "driving_privileges": [{"vehicle_category_code": "B", "issue_date": "2020-01-01"}]
    })
    .as_object()
    .unwrap()
    .clone()
}

/// An mDL for `device` signed by `pki`'s document signer.
pub(crate) async fn issue(pki: &Pki, device: &SigningKey) -> IssuerSigned {
    IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity())
        .unwrap()
        .claims(MDL_NS, &mdl_claims())
        .unwrap()
        .sign(&pki.signer, &pki.chain)
        .await
        .unwrap()
}

pub(crate) fn verifier(pki: &Pki) -> Verifier {
    Verifier::new([pki.root.clone()], Arc::new(FixedClock::at_unix(NOW))).unwrap()
}

pub(crate) fn transcript() -> SessionTranscript {
    SessionTranscript::openid4vp(
        "x509_san_dns:verifier.example",
        "n-0S6_WzA2Mj",
        None,
        "https://verifier.example/response",
    )
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
