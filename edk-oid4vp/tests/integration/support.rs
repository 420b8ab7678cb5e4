//! Shared fixtures: a test PKI for verifiers and issuers, keys, a fixed clock, requests.

use std::sync::Arc;

use edk_core::FixedClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_oid4vp::{AuthorizationRequest, ClientId, DcqlQuery};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use url::Url;

/// 2026-06-01T00:00:00Z, the time of every test.
pub(crate) const NOW: i64 = 1_780_272_000;

/// A clock at [`NOW`].
pub(crate) fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::at_unix(NOW))
}

/// A root CA and a leaf certificate under it with the dNSName SANs given, with the leaf's key.
pub(crate) struct Pki {
    /// The root certificate (DER), the trust anchor.
    pub(crate) root: Vec<u8>,
    /// The chain, leaf first, without the root.
    pub(crate) chain: Vec<Vec<u8>>,
    /// The leaf's key.
    pub(crate) leaf: SigningKey,
}

/// A P-256 root (2025–2035) and a leaf (2025–2028) for `names`.
pub(crate) fn pki(common_name: &str, names: &[&str]) -> Pki {
    pki_with(common_name, names, false)
}

/// As [`pki`], the leaf an ISO/IEC 18013-5 document signer (extended key usage
/// `id-mdl-kp-mdlDS`), the root its IACA.
pub(crate) fn mdoc_pki(common_name: &str) -> Pki {
    pki_with(common_name, &[], true)
}

fn pki_with(common_name: &str, names: &[&str], document_signer: bool) -> Pki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, format!("{common_name} root"));
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = rcgen::date_time_ymd(2025, 1, 1);
    root.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let root_cert = root.self_signed(&root_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, common_name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if document_signer {
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Other(vec![
            1, 0, 18013, 5, 1, 2,
        ])];
    }
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(2025, 6, 1);
    leaf.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::new(root, root_key))
        .unwrap();
    Pki {
        root: root_cert.der().to_vec(),
        chain: vec![leaf_cert.der().to_vec()],
        leaf: SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap(),
    }
}

/// A PID query: family name and birth date of an SD-JWT VC of type `urn:eudi:pid:1`.
pub(crate) fn pid_query() -> DcqlQuery {
    DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": { "vct_values": ["urn:eudi:pid:1"] },
            "claims": [
                { "path": ["family_name"] },
                { "path": ["birthdate"] }
            ]
        }]
    }))
    .unwrap()
}

/// A `direct_post` request of `client_id` for `query`, answered at
/// `https://verifier.example/response`, with a nonce and a state.
pub(crate) fn request(client_id: &str, query: DcqlQuery) -> AuthorizationRequest {
    let mut request = AuthorizationRequest::direct_post(
        ClientId::parse(client_id).unwrap(),
        Url::parse("https://verifier.example/response").unwrap(),
        "n-0S6_WzA2Mj-4nGtw3fZh",
        query,
    );
    request.state = Some("st-8c2f1a".to_owned());
    request
}

/// The base64url SubjectKeyIdentifier of the DER certificate `der` (what `aki` values of
/// certificates it issued name).
pub(crate) fn subject_key_id(der: &[u8]) -> String {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let (_, ski) = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    edk_core::encoding::b64url_encode(ski.0.as_bytes())
}
