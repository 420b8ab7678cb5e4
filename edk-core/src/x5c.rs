//! Issuer keys from `x5c` certificate chains (RFC 7515 §4.1.6, SD-JWT VC §3.5).
//!
//! [`X5cResolver`] validates the chain in a token's header against the trust anchors the
//! caller configured: signatures, validity at the [`Clock`]'s time and CA basic constraints,
//! by `rustls-webpki` (on aws-lc-rs). The verifying key is then read from the leaf
//! certificate's SubjectPublicKeyInfo. The issuer is the leaf's subject (SD-JWT VC -18 §3.5
//! asks nothing of `iss` and the leaf's names); a profile that does can opt in with
//! [`X5cResolver::require_issuer_in_san`]: when the token names an `iss`, the leaf must then
//! be issued to it, a `uniformResourceIdentifier` SAN equal to `iss`, or a `dNSName` SAN
//! equal to the host of an `https` `iss`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs1::der::Decode as _;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::clock::Clock;
use crate::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use crate::jose::{JoseError, Jwk, KeyQuery, KeyResolver, VerifyingKey};

/// The longest chain accepted in a header, leaf included.
pub const MAX_CHAIN_LEN: usize = 8;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Certificate signature algorithms accepted in chains: ECDSA P-256/P-384, Ed25519, RSA
/// PKCS#1 v1.5 and PSS with SHA-2.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
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

/// A [`KeyResolver`] for tokens carrying an `x5c` chain that ends at one of the caller's
/// trust anchors.
///
/// ```
/// # fn demo(root_der: Vec<u8>) -> Result<(), edk_core::jose::JoseError> {
/// use std::sync::Arc;
/// use edk_core::clock::SystemClock;
/// use edk_core::x5c::X5cResolver;
///
/// let resolver = X5cResolver::new([root_der], Arc::new(SystemClock))?;
/// # Ok(()) }
/// ```
pub struct X5cResolver {
    anchors: Vec<TrustAnchor<'static>>,
    clock: Arc<dyn Clock>,
    check_issuer: bool,
}

impl X5cResolver {
    /// A resolver trusting the DER certificates `anchors`, checking validity at `clock`'s time.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] when an anchor is not a parseable certificate.
    pub fn new(
        anchors: impl IntoIterator<Item = Vec<u8>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, JoseError> {
        let anchors = anchors
            .into_iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(der))
                    .map(|anchor| anchor.to_owned())
                    .map_err(|_| JoseError::InvalidKey("trust anchor is not a certificate"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            anchors,
            clock,
            check_issuer: false,
        })
    }

    /// The resolver that also requires the leaf to name the token's `iss` (when it has one):
    /// a `uniformResourceIdentifier` SAN equal to `iss`, or a `dNSName` SAN equal to the host
    /// of an `https` `iss`. Earlier SD-JWT VC drafts asked for this; draft -18 does not, so
    /// it is a policy to opt into.
    #[must_use]
    pub const fn require_issuer_in_san(mut self) -> Self {
        self.check_issuer = true;
        self
    }
}

impl fmt::Debug for X5cResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X5cResolver")
            .field("anchors", &self.anchors.len())
            .field("check_issuer", &self.check_issuer)
            .finish_non_exhaustive()
    }
}

/// Issuer certificates carry no standard extended key usage; any is accepted.
struct AnyKeyUsage;

impl ExtendedKeyUsageValidator for AnyKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

#[async_trait]
impl KeyResolver for X5cResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let chain = query.x5c.ok_or(JoseError::KeyNotFound)?;
        if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
            return Err(JoseError::Malformed {
                what: "x5c",
                reason: "expected one to eight certificates",
            });
        }
        let ders = chain
            .iter()
            .map(|cert| {
                STANDARD.decode(cert).map_err(|_| JoseError::Malformed {
                    what: "x5c",
                    reason: "a certificate is not standard base64",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let certs: Vec<CertificateDer<'_>> = ders
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let (leaf_der, intermediates) = certs.split_first().ok_or(JoseError::KeyNotFound)?;
        let leaf = EndEntityCert::try_from(leaf_der)
            .map_err(|_| JoseError::UntrustedKey("the x5c leaf is not a valid certificate"))?;
        let seconds = u64::try_from(self.clock.unix_seconds()).unwrap_or(0);
        leaf.verify_for_usage(
            ALGORITHMS,
            &self.anchors,
            intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds)),
            AnyKeyUsage,
            None,
            None,
        )
        .map_err(|_| {
            JoseError::UntrustedKey("the x5c chain does not validate to a trust anchor")
        })?;

        let cert = Certificate::from_der(leaf_der.as_ref())
            .map_err(|_| JoseError::UntrustedKey("the x5c leaf is not a valid certificate"))?;
        if self.check_issuer
            && let Some(issuer) = query.issuer
            && !names_issuer(&cert, issuer)
        {
            return Err(JoseError::UntrustedKey(
                "the x5c leaf is not issued to the token's issuer",
            ));
        }
        let key = VerifyingKey::from_jwk(&leaf_jwk(&cert)?)?;
        if !key.supports(query.alg) {
            return Err(JoseError::KeyAlgorithmMismatch(query.alg));
        }
        Ok(Arc::new(key))
    }
}

/// Whether the certificate's SANs name `iss`: a URI SAN equal to it, or a DNS SAN equal to
/// the host of an `https` URL.
fn names_issuer(cert: &Certificate, iss: &str) -> bool {
    let Ok(Some((_, SubjectAltName(names)))) =
        cert.tbs_certificate().get_extension::<SubjectAltName>()
    else {
        return false;
    };
    let host = url::Url::parse(iss)
        .ok()
        .filter(|url| url.scheme() == "https")
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    names.iter().any(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => uri.as_str() == iss,
        GeneralName::DnsName(dns) => host
            .as_deref()
            .is_some_and(|host| dns.as_str().eq_ignore_ascii_case(host)),
        _ => false,
    })
}

/// The leaf's public key as a JWK.
fn leaf_jwk(cert: &Certificate) -> Result<Jwk, JoseError> {
    let unsupported = || JoseError::UnsupportedKey("x5c leaf key type".to_owned());
    let spki = cert.tbs_certificate().subject_public_key_info();
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or(JoseError::InvalidKey(
            "x5c leaf key is not a whole number of bytes",
        ))?;
    let params = if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        let curve_oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(unsupported)?;
        let crv = match curve_oid {
            SECP256R1 => EcCurve::P256,
            SECP384R1 => EcCurve::P384,
            _ => return Err(unsupported()),
        };
        let len = crv.coordinate_len();
        let (Some(0x04), Some(x), Some(y)) = (
            key.first(),
            key.get(1..=len),
            key.get(1 + len..).filter(|y| y.len() == len),
        ) else {
            return Err(JoseError::InvalidKey(
                "x5c leaf EC point is not uncompressed",
            ));
        };
        PublicParams::Ec {
            crv,
            x: x.to_vec(),
            y: y.to_vec(),
        }
    } else if spki.algorithm.oid == ID_ED25519 {
        PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            x: key.to_vec(),
        }
    } else if spki.algorithm.oid == RSA_ENCRYPTION {
        let rsa = pkcs1::RsaPublicKey::<pkcs1::UintRef<'_>>::from_der(key)
            .map_err(|_| JoseError::InvalidKey("x5c leaf RSA key is malformed"))?;
        PublicParams::Rsa {
            n: rsa.modulus.as_bytes().to_vec(),
            e: rsa.public_exponent.as_bytes().to_vec(),
        }
    } else {
        return Err(unsupported());
    };
    Jwk::from_parts(params, None)
}
