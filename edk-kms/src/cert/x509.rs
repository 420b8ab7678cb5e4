//! X.509 building blocks over `&dyn Signer`: SubjectPublicKeyInfo from a JWK, signature
//! algorithm identifiers, CSRs and certificates (RFC 5280, RFC 2986), CSR verification.
//!
//! Structures are x509-cert types encoded with `der`; the to-be-signed DER goes to the signer
//! and its JOSE signature is turned into the X.509 form (DER `Ecdsa-Sig-Value` for ECDSA,
//! RFC 5758 §3.2; raw for EdDSA and RSA).

use std::net::IpAddr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use der::asn1::{AnyRef, BitString, Ia5String, Null, ObjectIdentifier, OctetString, UintRef};
use der::oid::AssociatedOid;
use der::pem::LineEnding;
use der::{Decode, DecodePem, Encode, EncodePem, Sequence};
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use edk_core::jose::{Algorithm, Jwk, Signer};
use rustls_pki_types::SignatureVerificationAlgorithm;
use x509_cert::attr::Attribute;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage as EkuExt, KeyUsage as KuExt,
    KeyUsages, SubjectAltName as SanExt, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension as _};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

use super::error::Error;
use super::{CertificateKind, CertificateProfile, DistinguishedName, KeyUsage, SubjectAltName};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Certificate and CSR signature algorithms accepted when verifying: ECDSA P-256/P-384,
/// Ed25519, RSA PKCS#1 v1.5 and PSS with SHA-2.
pub(crate) static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// RSASSA-PSS-params (RFC 4055 §3.1) for PS256: SHA-256, MGF1 with SHA-256, 32-byte salt.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u32,
}

/// `Ecdsa-Sig-Value` (RFC 5758 §3.2).
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// `RSAPublicKey` (RFC 8017 §A.1.1).
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// `Certificate` (RFC 5280 §4.1) around the exact to-be-signed bytes the signer saw.
#[derive(Sequence)]
struct SignedCertificate<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// `TBSCertificate` (RFC 5280 §4.1) as this module writes it: v3, no unique ids, extensions.
#[derive(Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// The signature AlgorithmIdentifier of `alg`.
pub(crate) fn signature_algorithm(alg: Algorithm) -> Result<AlgorithmIdentifierOwned, Error> {
    let null = || {
        der::Any::encode_from(&Null)
            .map(Some)
            .map_err(Error::encoding)
    };
    Ok(match alg {
        Algorithm::Es256 => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        },
        Algorithm::Es384 => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA384,
            parameters: None,
        },
        Algorithm::EdDsa | Algorithm::Ed25519 => AlgorithmIdentifierOwned {
            oid: ID_ED25519,
            parameters: None,
        },
        Algorithm::Rs256 => AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: null()?,
        },
        Algorithm::Ps256 => {
            let sha256 = AlgorithmIdentifierOwned {
                oid: ID_SHA256,
                parameters: null()?,
            };
            let params = PssParams {
                hash: sha256.clone(),
                mask_gen: AlgorithmIdentifierOwned {
                    oid: ID_MGF1,
                    parameters: Some(der::Any::encode_from(&sha256).map_err(Error::encoding)?),
                },
                salt_length: 32,
            };
            AlgorithmIdentifierOwned {
                oid: RSASSA_PSS,
                parameters: Some(der::Any::encode_from(&params).map_err(Error::encoding)?),
            }
        }
        other => return Err(Error::UnsupportedAlgorithm(other)),
    })
}

/// The SubjectPublicKeyInfo of a public JWK: P-256, P-384, Ed25519 or RSA; `None` for other
/// key types.
pub(crate) fn spki_from_jwk(jwk: &Jwk) -> Result<Option<SubjectPublicKeyInfoOwned>, Error> {
    let spki = match jwk.params() {
        PublicParams::Ec { crv, x, y } => {
            let curve = match crv {
                EcCurve::P256 => SECP256R1,
                EcCurve::P384 => SECP384R1,
                _ => return Ok(None),
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: ID_EC_PUBLIC_KEY,
                    parameters: Some(der::Any::encode_from(&curve).map_err(Error::encoding)?),
                },
                subject_public_key: BitString::from_bytes(&point).map_err(Error::encoding)?,
            }
        }
        PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            x,
        } => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ID_ED25519,
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(x).map_err(Error::encoding)?,
        },
        PublicParams::Rsa { n, e } => {
            let key = RsaPublicKey {
                modulus: UintRef::new(n).map_err(Error::encoding)?,
                public_exponent: UintRef::new(e).map_err(Error::encoding)?,
            }
            .to_der()
            .map_err(Error::encoding)?;
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: RSA_ENCRYPTION,
                    parameters: Some(der::Any::encode_from(&Null).map_err(Error::encoding)?),
                },
                subject_public_key: BitString::from_bytes(&key).map_err(Error::encoding)?,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(spki))
}

/// Signs `tbs` with `signer`, returning the X.509 form of the signature.
async fn sign_x509(signer: &dyn Signer, tbs: &[u8]) -> Result<BitString, Error> {
    let alg = signer.algorithm();
    let jose = signer.sign(tbs).await?;
    let bytes = match alg {
        Algorithm::Es256 | Algorithm::Es384 => {
            let half = if alg == Algorithm::Es256 { 32 } else { 48 };
            if jose.len() != 2 * half {
                return Err(Error::encoding(
                    "the signer returned an ECDSA signature of the wrong length",
                ));
            }
            let (r, s) = jose.split_at(half);
            EcdsaSig {
                r: UintRef::new(r).map_err(Error::encoding)?,
                s: UintRef::new(s).map_err(Error::encoding)?,
            }
            .to_der()
            .map_err(Error::encoding)?
        }
        _ => jose,
    };
    BitString::from_bytes(&bytes).map_err(Error::encoding)
}

/// A PEM CSR for `public_key` with `subject` and `sans`, self-signed by `signer` (RFC 2986).
pub(crate) async fn build_csr(
    signer: &dyn Signer,
    public_key: SubjectPublicKeyInfoOwned,
    subject: &DistinguishedName,
    sans: &[SubjectAltName],
) -> Result<String, Error> {
    let algorithm = signature_algorithm(signer.algorithm())?;
    let mut info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: subject.name().clone(),
        public_key,
        attributes: Default::default(),
    };
    if !sans.is_empty() {
        let names = general_names(sans)?;
        let extension = SanExt(names)
            .to_extension(subject.name(), &[])
            .map_err(Error::encoding)?;
        let attribute =
            Attribute::try_from(ExtensionReq(vec![extension])).map_err(Error::encoding)?;
        info.attributes.insert(attribute).map_err(Error::encoding)?;
    }
    let tbs = info.to_der().map_err(Error::encoding)?;
    let signature = sign_x509(signer, &tbs).await?;
    let csr = CertReq {
        info,
        algorithm,
        signature,
    };
    csr.to_pem(LineEnding::LF).map_err(Error::encoding)
}

/// A parsed CSR whose self-signature verified.
#[derive(Debug)]
pub(crate) struct VerifiedCsr {
    pub(crate) subject: Name,
    pub(crate) public_key: SubjectPublicKeyInfoOwned,
    pub(crate) sans: Option<Vec<GeneralName>>,
}

/// Parses a PEM CSR and verifies its self-signature with the key it carries.
pub(crate) fn verify_csr(pem: &str) -> Result<VerifiedCsr, Error> {
    let csr = CertReq::from_pem(pem.trim().as_bytes()).map_err(|_| Error::Malformed {
        what: "CSR",
        reason: "expected one PEM `CERTIFICATE REQUEST`",
    })?;
    let message = csr.info.to_der().map_err(Error::encoding)?;
    verify_signature(
        &csr.info.public_key,
        &csr.algorithm,
        &message,
        csr.signature.raw_bytes(),
    )
    .map_err(|()| Error::InvalidCsrSignature)?;
    let mut sans = None;
    for attribute in csr.info.attributes.iter() {
        if attribute.oid != <ExtensionReq as AssociatedOid>::OID {
            continue;
        }
        for value in attribute.values.iter() {
            let request = ExtensionReq::from_der(&value.to_der().map_err(Error::encoding)?)
                .map_err(|_| Error::Malformed {
                    what: "CSR",
                    reason: "the extension request is malformed",
                })?;
            for extension in request.0 {
                if extension.extn_id == <SanExt as AssociatedOid>::OID {
                    let names =
                        SanExt::from_der(extension.extn_value.as_bytes()).map_err(|_| {
                            Error::Malformed {
                                what: "CSR",
                                reason: "the subjectAltName is malformed",
                            }
                        })?;
                    sans = Some(names.0);
                }
            }
        }
    }
    Ok(VerifiedCsr {
        subject: csr.info.subject,
        public_key: csr.info.public_key,
        sans,
    })
}

/// Verifies `signature` over `message` by the key in `spki` with the signature algorithm
/// `alg`, among [`ALGORITHMS`].
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), ()> {
    let contents = |id: &AlgorithmIdentifierOwned| -> Result<Vec<u8>, ()> {
        let mut out = id.oid.to_der().map_err(|_| ())?;
        if let Some(params) = &id.parameters {
            out.extend(params.to_der().map_err(|_| ())?);
        }
        Ok(out)
    };
    let key_alg = contents(&spki.algorithm)?;
    let sig_alg = contents(alg)?;
    let verifier = ALGORITHMS
        .iter()
        .find(|v| {
            v.public_key_alg_id().as_ref() == key_alg.as_slice()
                && v.signature_alg_id().as_ref() == sig_alg.as_slice()
        })
        .ok_or(())?;
    verifier
        .verify_signature(spki.subject_public_key.raw_bytes(), message, signature)
        .map_err(|_| ())
}

/// What the issuer contributes to a certificate.
#[derive(Debug)]
pub(crate) struct Issuer<'a> {
    /// The issuer's signer.
    pub(crate) signer: &'a dyn Signer,
    /// The issuer's name: its certificate's subject, or the subject itself for self-signed.
    pub(crate) name: Name,
    /// The issuer's public key, for the authority key identifier.
    pub(crate) public_key: &'a SubjectPublicKeyInfoOwned,
}

/// Issues a DER certificate for `subject`/`public_key` under `profile`, signed by `issuer`,
/// valid from `not_before`.
pub(crate) async fn build_certificate(
    issuer: &Issuer<'_>,
    subject: &Name,
    public_key: SubjectPublicKeyInfoOwned,
    profile: &CertificateProfile,
    sans: &[GeneralName],
    not_before: DateTime<Utc>,
) -> Result<Vec<u8>, Error> {
    let validity = validity(profile, not_before)?;
    let algorithm = signature_algorithm(issuer.signer.algorithm())?;
    let extensions = extensions(profile, &public_key, issuer.public_key, sans, subject)?;
    let tbs = Tbs {
        version: Version::V3,
        serial_number: serial()?,
        signature: algorithm.clone(),
        issuer: issuer.name.clone(),
        validity,
        subject: subject.clone(),
        subject_public_key_info: public_key,
        extensions,
    }
    .to_der()
    .map_err(Error::encoding)?;
    // The TBS parses back as an RFC 5280 TBSCertificate before it is signed.
    TbsCertificate::from_der(&tbs).map_err(Error::encoding)?;
    let signature = sign_x509(issuer.signer, &tbs).await?;
    let der = SignedCertificate {
        tbs_certificate: AnyRef::from_der(&tbs).map_err(Error::encoding)?,
        signature_algorithm: algorithm,
        signature,
    }
    .to_der()
    .map_err(Error::encoding)?;
    Certificate::from_der(&der).map_err(Error::encoding)?;
    Ok(der)
}

/// The SANs of `sans` as GeneralNames.
pub(crate) fn general_names(sans: &[SubjectAltName]) -> Result<Vec<GeneralName>, Error> {
    let ia5 = |text: &str| {
        Ia5String::new(text)
            .map_err(|_| Error::InvalidProfile("a subject alternative name is not ASCII"))
    };
    sans.iter()
        .map(|san| {
            Ok(match san {
                SubjectAltName::Dns(name) => GeneralName::DnsName(ia5(name)?),
                SubjectAltName::Email(email) => GeneralName::Rfc822Name(ia5(email)?),
                SubjectAltName::Ip(ip) => ip_name(*ip)?,
                SubjectAltName::Uri(uri) => GeneralName::UniformResourceIdentifier(ia5(uri)?),
            })
        })
        .collect()
}

fn ip_name(ip: IpAddr) -> Result<GeneralName, Error> {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    Ok(GeneralName::IpAddress(
        OctetString::new(bytes).map_err(Error::encoding)?,
    ))
}

fn validity(profile: &CertificateProfile, not_before: DateTime<Utc>) -> Result<Validity, Error> {
    let not_after = i64::try_from(profile.validity.as_secs())
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|delta| not_before.checked_add_signed(delta))
        .ok_or(Error::InvalidProfile("the validity is too long"))?;
    let time = |at: DateTime<Utc>| {
        Time::try_from(SystemTime::from(at))
            .map_err(|_| Error::InvalidProfile("the validity is outside what X.509 can express"))
    };
    Ok(Validity::new(time(not_before)?, time(not_after)?))
}

/// A positive random 128-bit serial number (RFC 5280 §4.1.2.2: at most 20 octets).
fn serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::encoding("the random generator failed"))?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    SerialNumber::new(&bytes).map_err(Error::encoding)
}

/// The key identifier of a public key: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey bits (RFC 7093 §2, method 1).
pub(crate) fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        spki.subject_public_key.raw_bytes(),
    );
    digest.as_ref().iter().take(20).copied().collect()
}

fn extensions(
    profile: &CertificateProfile,
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer_key: &SubjectPublicKeyInfoOwned,
    sans: &[GeneralName],
    subject: &Name,
) -> Result<Vec<Extension>, Error> {
    let mut out = Vec::new();
    let mut push = |ext: Result<Extension, der::Error>| -> Result<(), Error> {
        out.push(ext.map_err(Error::encoding)?);
        Ok(())
    };
    let constraints = match profile.kind {
        CertificateKind::Ca { path_len } => BasicConstraints {
            ca: true,
            path_len_constraint: path_len,
        },
        CertificateKind::Leaf => BasicConstraints {
            ca: false,
            path_len_constraint: None,
        },
    };
    push(constraints.to_extension(subject, &[]))?;

    let mut usage = KuExt(KeyUsages::DigitalSignature.into());
    usage.0.clear();
    for bit in profile.effective_key_usages() {
        usage.0 |= match bit {
            KeyUsage::CrlSign => KeyUsages::CRLSign,
            KeyUsage::DataEncipherment => KeyUsages::DataEncipherment,
            KeyUsage::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsage::KeyAgreement => KeyUsages::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsages::KeyCertSign,
            KeyUsage::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsage::NonRepudiation => KeyUsages::NonRepudiation,
        };
    }
    if !usage.0.is_empty() {
        push(usage.to_extension(subject, &[]))?;
    }
    if !profile.extended_key_usages.is_empty() {
        let oids = profile
            .extended_key_usages
            .iter()
            .map(|eku| eku.oid())
            .collect::<Result<Vec<_>, _>>()?;
        push(EkuExt(oids).to_extension(subject, &[]))?;
    }
    if !sans.is_empty() {
        push(SanExt(sans.to_vec()).to_extension(subject, &[]))?;
    }
    push(
        SubjectKeyIdentifier(
            OctetString::new(key_identifier(subject_key)).map_err(Error::encoding)?,
        )
        .to_extension(subject, &[]),
    )?;
    push(
        AuthorityKeyIdentifier {
            key_identifier: Some(
                OctetString::new(key_identifier(issuer_key)).map_err(Error::encoding)?,
            ),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        }
        .to_extension(subject, &[]),
    )?;
    Ok(out)
}

/// Parses one or more PEM certificates, leaf first, into DER.
pub(crate) fn parse_pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let certs =
        Certificate::load_pem_chain(pem.trim().as_bytes()).map_err(|_| Error::Malformed {
            what: "certificate chain",
            reason: "expected PEM `CERTIFICATE` blocks",
        })?;
    if certs.is_empty() {
        return Err(Error::Malformed {
            what: "certificate chain",
            reason: "no certificate",
        });
    }
    certs
        .iter()
        .map(|cert| cert.to_der().map_err(Error::encoding))
        .collect()
}

/// Parses one DER certificate.
pub(crate) fn parse_der(der: &[u8]) -> Result<Certificate, Error> {
    Certificate::from_der(der).map_err(|_| Error::Malformed {
        what: "certificate",
        reason: "not a DER X.509 certificate",
    })
}

/// PEM of DER certificates, concatenated.
pub(crate) fn to_pem(ders: &[Vec<u8>]) -> Result<String, Error> {
    let mut out = String::new();
    for der in ders {
        out.push_str(
            &der::pem::encode_string("CERTIFICATE", LineEnding::LF, der)
                .map_err(Error::encoding)?,
        );
    }
    Ok(out)
}
