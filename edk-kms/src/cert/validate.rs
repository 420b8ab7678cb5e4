//! Chain validation (RFC 5280 §6) by rustls-webpki, plus the checks webpki leaves out.
//!
//! webpki builds the path from the end-entity certificate to one of the anchors and checks
//! every signature, each certificate's validity at the given time, `basicConstraints` (the
//! issuers are CAs, the end entity is not) and intermediate `pathLenConstraint`s. It does not
//! read `keyUsage` or look inside the trust anchor, so this module then checks, on the path
//! webpki found: every issuing certificate that has a `keyUsage` allows `keyCertSign`
//! (RFC 5280 §4.2.1.3), and the anchor certificate is a CA, valid at the time and within its
//! own `pathLenConstraint`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage as KuExt};

use super::error::{ChainProblem, Error};
use super::x509::{ALGORITHMS, parse_der};

/// The longest chain accepted, end entity included.
pub const MAX_CHAIN_LEN: usize = 10;

/// The path a chain validated along.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidatedChain {
    /// The certificates from the end entity up to, but not including, the anchor, as DER.
    pub path: Vec<Vec<u8>>,
    /// The trust anchor the path ends at, as DER.
    pub anchor: Vec<u8>,
}

/// Validates `chain` (DER, end entity first, then intermediates in any order) against the DER
/// certificates `anchors` at `at`.
pub(crate) fn validate(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at: DateTime<Utc>,
) -> Result<ValidatedChain, Error> {
    if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
        return Err(Error::Malformed {
            what: "certificate chain",
            reason: "expected one to ten certificates",
        });
    }
    if anchors.is_empty() {
        return Err(Error::NoTrustAnchors);
    }
    let trust = anchors
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                .map(|anchor| anchor.to_owned())
                .map_err(|_| Error::Malformed {
                    what: "trust anchor",
                    reason: "not a DER X.509 certificate",
                })
        })
        .collect::<Result<Vec<TrustAnchor<'static>>, _>>()?;
    let certs: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let (leaf_der, intermediates) = certs.split_first().ok_or(Error::Malformed {
        what: "certificate chain",
        reason: "no certificate",
    })?;
    let leaf = EndEntityCert::try_from(leaf_der)
        .map_err(|_| Error::InvalidChain(ChainProblem::Malformed))?;
    let seconds =
        u64::try_from(at.timestamp()).map_err(|_| Error::InvalidChain(ChainProblem::Other))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
    let verified = leaf
        .verify_for_usage(
            ALGORITHMS,
            &trust,
            intermediates,
            time,
            AnyKeyUsage,
            None,
            None,
        )
        .map_err(|err| Error::InvalidChain(problem(&err)))?;

    let path_ders: Vec<Vec<u8>> = std::iter::once(leaf_der.as_ref().to_vec())
        .chain(
            verified
                .intermediate_certificates()
                .map(|cert| cert.der().as_ref().to_vec()),
        )
        .collect();
    let anchor_index = trust
        .iter()
        .position(|anchor| {
            anchor.subject == verified.anchor().subject
                && anchor.subject_public_key_info == verified.anchor().subject_public_key_info
        })
        .ok_or(Error::InvalidChain(ChainProblem::UnknownIssuer))?;
    let anchor_der = anchors
        .get(anchor_index)
        .ok_or(Error::InvalidChain(ChainProblem::UnknownIssuer))?;

    for der in path_ders.iter().skip(1) {
        check_key_cert_sign(&parse_der(der)?)?;
    }
    let anchor = parse_der(anchor_der)?;
    check_key_cert_sign(&anchor)?;
    check_anchor(&anchor, path_ders.len() - 1, at)?;
    Ok(ValidatedChain {
        path: path_ders,
        anchor: anchor_der.clone(),
    })
}

/// An issuing certificate with a `keyUsage` must allow `keyCertSign`.
fn check_key_cert_sign(cert: &Certificate) -> Result<(), Error> {
    let usage = cert
        .tbs_certificate()
        .get_extension::<KuExt>()
        .map_err(|_| Error::InvalidChain(ChainProblem::Malformed))?;
    match usage {
        Some((_, usage)) if !usage.key_cert_sign() => {
            Err(Error::InvalidChain(ChainProblem::KeyCertSignMissing))
        }
        _ => Ok(()),
    }
}

/// The anchor is a CA, valid at `at`, and its path length constraint allows `intermediates`
/// certificates below it before the end entity.
fn check_anchor(
    anchor: &Certificate,
    intermediates: usize,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let tbs = anchor.tbs_certificate();
    let validity = tbs.validity();
    let at = std::time::SystemTime::from(at);
    if at < validity.not_before.to_system_time() {
        return Err(Error::InvalidChain(ChainProblem::NotYetValid));
    }
    if at > validity.not_after.to_system_time() {
        return Err(Error::InvalidChain(ChainProblem::Expired));
    }
    let constraints = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|_| Error::InvalidChain(ChainProblem::Malformed))?;
    match constraints {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && intermediates > usize::from(max)
            {
                return Err(Error::InvalidChain(ChainProblem::PathLenExceeded));
            }
            Ok(())
        }
        _ => Err(Error::InvalidChain(ChainProblem::NotCa)),
    }
}

fn problem(err: &webpki::Error) -> ChainProblem {
    use webpki::Error as E;
    match err {
        E::CertExpired { .. } => ChainProblem::Expired,
        E::CertNotValidYet { .. } => ChainProblem::NotYetValid,
        E::CaUsedAsEndEntity => ChainProblem::CaAsEndEntity,
        E::EndEntityUsedAsCa => ChainProblem::NotCa,
        E::PathLenConstraintViolated => ChainProblem::PathLenExceeded,
        E::InvalidSignatureForPublicKey => ChainProblem::BadSignature,
        E::UnknownIssuer => ChainProblem::UnknownIssuer,
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            ChainProblem::UnsupportedAlgorithm
        }
        E::BadDer
        | E::BadDerTime
        | E::ExtensionValueInvalid
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension
        | E::SignatureAlgorithmMismatch
        | E::TrailingData(_) => ChainProblem::Malformed,
        _ => ChainProblem::Other,
    }
}

/// Certificates here carry any extended key usage, or none.
struct AnyKeyUsage;

impl ExtendedKeyUsageValidator for AnyKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}
