//! The X.509 functions over `&dyn Signer`, with edk-core software keys.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use der::{Decode as _, DecodePem as _, EncodePem as _};
use edk_core::jose::{Algorithm, SigningKey};
use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::x509::{self, Issuer};
use super::{
    CertificateProfile, ChainProblem, DistinguishedName, Error, KeyUsage, SubjectAltName, validate,
};

const DAY: Duration = Duration::from_secs(86_400);

struct Ca {
    key: SigningKey,
    spki: SubjectPublicKeyInfoOwned,
    name: Name,
    der: Vec<u8>,
}

fn start() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    x509::spki_from_jwk(&key.public_jwk()).unwrap().unwrap()
}

fn name(dn: &str) -> Name {
    DistinguishedName::parse(dn).unwrap().name().clone()
}

async fn root(alg: Algorithm, profile: &CertificateProfile) -> Ca {
    let key = SigningKey::generate(alg).unwrap();
    let spki = spki(&key);
    let name = name("CN=Root CA,O=EDK Test");
    let issuer = Issuer {
        signer: &key,
        name: name.clone(),
        public_key: &spki,
    };
    let der = x509::build_certificate(&issuer, &name, spki.clone(), profile, &[], start())
        .await
        .unwrap();
    Ca {
        key,
        spki,
        name,
        der,
    }
}

async fn issue(
    ca: &Ca,
    alg: Algorithm,
    subject: &str,
    profile: &CertificateProfile,
) -> (SigningKey, Vec<u8>) {
    let key = SigningKey::generate(alg).unwrap();
    let issuer = Issuer {
        signer: &ca.key,
        name: ca.name.clone(),
        public_key: &ca.spki,
    };
    let der = x509::build_certificate(&issuer, &name(subject), spki(&key), profile, &[], start())
        .await
        .unwrap();
    (key, der)
}

async fn sub_ca(ca: &Ca, profile: &CertificateProfile) -> Ca {
    let (key, der) = issue(ca, Algorithm::Es256, "CN=Sub CA", profile).await;
    Ca {
        spki: spki(&key),
        key,
        name: name("CN=Sub CA"),
        der,
    }
}

fn at(days: i64) -> DateTime<Utc> {
    start() + chrono::TimeDelta::days(days)
}

fn problem(result: Result<validate::ValidatedChain, Error>) -> ChainProblem {
    match result {
        Err(Error::InvalidChain(problem)) => problem,
        other => panic!("expected an invalid chain, got {other:?}"),
    }
}

#[tokio::test]
async fn certificates_of_every_algorithm_validate_to_their_root() {
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ] {
        let ca = root(alg, &CertificateProfile::ca(DAY * 365, None)).await;
        let (_, leaf) = issue(&ca, alg, "CN=Leaf", &CertificateProfile::leaf(DAY * 30)).await;
        let verified = validate::validate(
            std::slice::from_ref(&leaf),
            std::slice::from_ref(&ca.der),
            at(1),
        )
        .unwrap_or_else(|err| panic!("{alg:?}: {err:?}"));
        assert_eq!(verified.path, vec![leaf.clone()]);
        assert_eq!(verified.anchor, ca.der);
        let cert = Certificate::from_der(&leaf).unwrap();
        assert_eq!(cert.tbs_certificate().issuer(), &ca.name, "{alg:?}");
    }
}

#[tokio::test]
async fn an_intermediate_chain_validates_and_reports_its_path() {
    let ca = root(
        Algorithm::Es384,
        &CertificateProfile::ca(DAY * 365, Some(1)),
    )
    .await;
    let sub = sub_ca(&ca, &CertificateProfile::ca(DAY * 100, Some(0))).await;
    let (_, leaf) = issue(
        &sub,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    let verified = validate::validate(
        &[leaf.clone(), sub.der.clone()],
        std::slice::from_ref(&ca.der),
        at(0),
    )
    .unwrap();
    assert_eq!(verified.path, vec![leaf, sub.der]);
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let (_, leaf) = issue(
        &ca,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY * 10),
    )
    .await;
    assert_eq!(
        problem(validate::validate(
            std::slice::from_ref(&leaf),
            std::slice::from_ref(&ca.der),
            at(11)
        )),
        ChainProblem::Expired
    );
    assert_eq!(
        problem(validate::validate(
            &[leaf],
            std::slice::from_ref(&ca.der),
            at(-1)
        )),
        ChainProblem::NotYetValid
    );
}

#[tokio::test]
async fn an_expired_trust_anchor_is_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 10, None)).await;
    let (_, leaf) = issue(
        &ca,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY * 100),
    )
    .await;
    assert_eq!(
        problem(validate::validate(&[leaf], &[ca.der], at(20))),
        ChainProblem::Expired
    );
}

#[tokio::test]
async fn an_issuer_without_the_ca_flag_is_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let not_ca = sub_ca(&ca, &CertificateProfile::leaf(DAY * 100)).await;
    let (_, leaf) = issue(
        &not_ca,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    let result = validate::validate(&[leaf, not_ca.der], &[ca.der], at(0));
    assert_eq!(problem(result), ChainProblem::NotCa);
}

#[tokio::test]
async fn a_ca_certificate_is_refused_as_end_entity() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let sub = sub_ca(&ca, &CertificateProfile::ca(DAY * 100, None)).await;
    assert_eq!(
        problem(validate::validate(&[sub.der], &[ca.der], at(0))),
        ChainProblem::CaAsEndEntity
    );
}

#[tokio::test]
async fn an_issuer_without_key_cert_sign_is_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let no_sign = CertificateProfile::ca(DAY * 100, None)
        .with_key_usages([KeyUsage::DigitalSignature, KeyUsage::CrlSign]);
    let sub = sub_ca(&ca, &no_sign).await;
    let (_, leaf) = issue(
        &sub,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    assert_eq!(
        problem(validate::validate(
            &[leaf.clone(), sub.der.clone()],
            &[ca.der],
            at(0)
        )),
        ChainProblem::KeyCertSignMissing
    );

    let anchor_without = root(Algorithm::Es256, &no_sign).await;
    let (_, leaf) = issue(
        &anchor_without,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    assert_eq!(
        problem(validate::validate(&[leaf], &[anchor_without.der], at(0))),
        ChainProblem::KeyCertSignMissing
    );
}

#[tokio::test]
async fn path_length_constraints_are_enforced_on_intermediates_and_anchors() {
    // The root allows no intermediate.
    let ca = root(
        Algorithm::Es256,
        &CertificateProfile::ca(DAY * 365, Some(0)),
    )
    .await;
    let sub = sub_ca(&ca, &CertificateProfile::ca(DAY * 100, None)).await;
    let (_, leaf) = issue(
        &sub,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    assert_eq!(
        problem(validate::validate(&[leaf, sub.der], &[ca.der], at(0))),
        ChainProblem::PathLenExceeded
    );

    // An intermediate that allows none below it, followed by another.
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let sub = sub_ca(&ca, &CertificateProfile::ca(DAY * 100, Some(0))).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer = Issuer {
        signer: &sub.key,
        name: sub.name.clone(),
        public_key: &sub.spki,
    };
    let sub2_der = x509::build_certificate(
        &issuer,
        &name("CN=Sub CA 2"),
        spki(&key),
        &CertificateProfile::ca(DAY * 50, None),
        &[],
        start(),
    )
    .await
    .unwrap();
    let sub2 = Ca {
        spki: spki(&key),
        key,
        name: name("CN=Sub CA 2"),
        der: sub2_der,
    };
    let (_, leaf) = issue(
        &sub2,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    assert_eq!(
        problem(validate::validate(
            &[leaf, sub2.der, sub.der],
            &[ca.der],
            at(0)
        )),
        ChainProblem::PathLenExceeded
    );
}

#[tokio::test]
async fn a_certificate_signed_by_another_key_is_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let impostor = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer = Issuer {
        signer: &impostor,
        name: ca.name.clone(),
        public_key: &ca.spki,
    };
    let leaf = x509::build_certificate(
        &issuer,
        &name("CN=Leaf"),
        spki(&SigningKey::generate(Algorithm::Es256).unwrap()),
        &CertificateProfile::leaf(DAY),
        &[],
        start(),
    )
    .await
    .unwrap();
    assert_eq!(
        problem(validate::validate(&[leaf], &[ca.der], at(0))),
        ChainProblem::BadSignature
    );
}

#[tokio::test]
async fn a_chain_to_an_unknown_root_is_refused() {
    let ca = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let other = root(Algorithm::Es256, &CertificateProfile::ca(DAY * 365, None)).await;
    let other_named = Ca {
        name: name("CN=Other Root"),
        ..other
    };
    let (_, leaf) = issue(
        &ca,
        Algorithm::Es256,
        "CN=Leaf",
        &CertificateProfile::leaf(DAY),
    )
    .await;
    let anchor = root_with_name(&other_named).await;
    assert_eq!(
        problem(validate::validate(&[leaf], &[anchor], at(0))),
        ChainProblem::UnknownIssuer
    );
    assert!(matches!(
        validate::validate(std::slice::from_ref(&ca.der), &[], at(0)),
        Err(Error::NoTrustAnchors)
    ));
}

async fn root_with_name(ca: &Ca) -> Vec<u8> {
    let issuer = Issuer {
        signer: &ca.key,
        name: ca.name.clone(),
        public_key: &ca.spki,
    };
    x509::build_certificate(
        &issuer,
        &ca.name,
        ca.spki.clone(),
        &CertificateProfile::ca(DAY * 365, None),
        &[],
        start(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn csrs_of_every_algorithm_verify_and_carry_their_names() {
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let subject = DistinguishedName::parse("CN=issuer.example,O=Example,C=DE").unwrap();
        let sans = [
            SubjectAltName::Dns("issuer.example".to_owned()),
            SubjectAltName::Uri("https://issuer.example".to_owned()),
            SubjectAltName::Ip("192.0.2.1".parse().unwrap()),
        ];
        let pem = x509::build_csr(&key, spki(&key), &subject, &sans)
            .await
            .unwrap();
        assert!(
            pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{alg:?}"
        );
        let verified = x509::verify_csr(&pem).unwrap_or_else(|err| panic!("{alg:?}: {err:?}"));
        assert_eq!(&verified.subject, subject.name());
        assert_eq!(verified.public_key, spki(&key));
        assert_eq!(verified.sans.unwrap(), x509::general_names(&sans).unwrap());
    }
}

#[tokio::test]
async fn a_csr_with_a_bad_self_signature_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let subject = DistinguishedName::parse("CN=x").unwrap();
    // Signed by one key, claiming another.
    let pem = x509::build_csr(&key, spki(&other), &subject, &[])
        .await
        .unwrap();
    assert!(matches!(
        x509::verify_csr(&pem),
        Err(Error::InvalidCsrSignature)
    ));

    // A flipped signature bit.
    let pem = x509::build_csr(&key, spki(&key), &subject, &[])
        .await
        .unwrap();
    let mut csr = CertReq::from_pem(pem.as_bytes()).unwrap();
    let mut sig = csr.signature.raw_bytes().to_vec();
    *sig.last_mut().unwrap() ^= 1;
    csr.signature = der::asn1::BitString::from_bytes(&sig).unwrap();
    let tampered = csr.to_pem(der::pem::LineEnding::LF).unwrap();
    assert!(matches!(
        x509::verify_csr(&tampered),
        Err(Error::InvalidCsrSignature)
    ));

    assert!(matches!(
        x509::verify_csr("not a csr"),
        Err(Error::Malformed { what: "CSR", .. })
    ));
}

#[test]
fn distinguished_names_and_chain_names_are_checked() {
    assert_eq!(
        DistinguishedName::parse("CN=Example,O=Org,C=DE")
            .unwrap()
            .to_string(),
        "CN=Example,O=Org,C=DE"
    );
    assert!(DistinguishedName::parse("").is_err());
    assert!(DistinguishedName::parse("no equals sign").is_err());
    assert!(super::ChainName::new("eudi.pid-roots").is_ok());
    assert!(super::ChainName::new("Roots").is_err());
    assert!(super::ChainName::new("").is_err());
}

#[test]
fn pem_chains_round_trip_and_garbage_is_refused() {
    assert!(matches!(
        x509::parse_pem_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        x509::parse_pem_chain(""),
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn iso_18013_profiles_make_an_iaca_root_and_a_document_signer_that_validate() {
    let iaca_subject = DistinguishedName::parse("C=DE,O=EDK Test,CN=EDK IACA").unwrap();
    let iaca_profile = CertificateProfile::iaca(iaca_subject.clone(), DAY * 3650);
    iaca_profile.check().unwrap();
    let ca = root(Algorithm::Es256, &iaca_profile).await;
    let ds_profile = CertificateProfile::document_signer(
        DistinguishedName::parse("C=DE,O=EDK Test,CN=EDK DS").unwrap(),
        DAY * 365,
    );
    ds_profile.check().unwrap();
    let (_, ds) = issue(&ca, Algorithm::Es256, "C=DE,CN=EDK DS", &ds_profile).await;

    let root_cert = Certificate::from_der(&ca.der).unwrap();
    let constraints = root_cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::BasicConstraints>()
        .unwrap()
        .unwrap()
        .1;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let usage = root_cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::KeyUsage>()
        .unwrap()
        .unwrap()
        .1;
    assert!(usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature());

    let ds_cert = Certificate::from_der(&ds).unwrap();
    let (_, eku) = ds_cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .unwrap()
        .unwrap();
    assert_eq!(
        eku.0,
        vec![der::asn1::ObjectIdentifier::new_unwrap(super::MDL_DS_EKU)]
    );
    let usage = ds_cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::KeyUsage>()
        .unwrap()
        .unwrap()
        .1;
    assert!(usage.digital_signature() && !usage.key_cert_sign());
    let validated = validate::validate(
        std::slice::from_ref(&ds),
        std::slice::from_ref(&ca.der),
        at(1),
    )
    .unwrap();
    assert_eq!(validated.path, vec![ds]);
}

#[test]
fn iso_18013_profiles_refuse_what_the_standard_forbids() {
    let without_country = DistinguishedName::parse("O=EDK Test,CN=EDK IACA").unwrap();
    assert!(matches!(
        CertificateProfile::iaca(without_country.clone(), DAY).check(),
        Err(Error::InvalidProfile(_))
    ));
    assert!(matches!(
        CertificateProfile::document_signer(without_country, DAY).check(),
        Err(Error::InvalidProfile(_))
    ));
    let without_cn = DistinguishedName::parse("C=DE,O=EDK Test").unwrap();
    assert!(matches!(
        CertificateProfile::document_signer(without_cn, DAY).check(),
        Err(Error::InvalidProfile(_))
    ));
    let subject = DistinguishedName::parse("C=DE,CN=EDK DS").unwrap();
    assert!(matches!(
        CertificateProfile::document_signer(subject.clone(), DAY * 458).check(),
        Err(Error::InvalidProfile(_))
    ));
    CertificateProfile::document_signer(subject, super::MAX_DS_VALIDITY)
        .check()
        .unwrap();
}
