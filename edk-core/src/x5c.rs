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
//!
//! An [`X5cChainCache`] shared by resolvers skips the chain's signature checks for a chain
//! already validated against the same trust-anchor set: entries are keyed by the SHA-256 of
//! the chain and of the anchor set, so a resolver built over changed anchors never hits an
//! entry made under the old ones, and the certificates' validity is checked against the clock
//! on every hit.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_lc_rs::digest;
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
    anchors_digest: [u8; 32],
    clock: Arc<dyn Clock>,
    check_issuer: bool,
    cache: Option<Arc<X5cChainCache>>,
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
        let mut anchor_digests = Vec::new();
        let anchors = anchors
            .into_iter()
            .map(|der| {
                anchor_digests.push(sha256(&[&der]));
                webpki::anchor_from_trusted_cert(&CertificateDer::from(der))
                    .map(|anchor| anchor.to_owned())
                    .map_err(|_| JoseError::InvalidKey("trust anchor is not a certificate"))
            })
            .collect::<Result<_, _>>()?;
        // The set's digest does not depend on the order the anchors were listed in.
        anchor_digests.sort_unstable();
        anchor_digests.dedup();
        let parts: Vec<&[u8]> = anchor_digests.iter().map(<[u8; 32]>::as_slice).collect();
        Ok(Self {
            anchors,
            anchors_digest: sha256(&parts),
            clock,
            check_issuer: false,
            cache: None,
        })
    }

    /// The resolver that remembers the chains it validated in `cache` (which may be shared
    /// with resolvers over other anchor sets) and skips their signature checks on the next
    /// token with the same chain, as long as its certificates are valid at the clock's time.
    #[must_use]
    pub fn with_chain_cache(mut self, cache: Arc<X5cChainCache>) -> Self {
        self.cache = Some(cache);
        self
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
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A bounded cache of `x5c` chains validated against a trust-anchor set, shared by
/// [`X5cResolver`]s through [`X5cResolver::with_chain_cache`].
///
/// An entry is found only by the same chain (its certificates, byte for byte) under the same
/// set of trust anchors, so removing or adding an anchor makes every entry made before
/// unreachable at once. A hit still checks every certificate of the chain's validity period
/// against the clock (a chain outside it is validated again in full) and, when the resolver
/// asks for it, the leaf's names against the token's `iss`. When full, an entry is dropped to
/// make room.
pub struct X5cChainCache {
    capacity: usize,
    entries: Mutex<HashMap<ChainKey, Arc<ValidatedChain>>>,
}

/// The digest of a chain's certificates and the digest of the anchor set it validated under.
type ChainKey = ([u8; 32], [u8; 32]);

/// What a validated chain yields, and the window in which all its certificates are valid.
struct ValidatedChain {
    key: Arc<VerifyingKey>,
    not_before: u64,
    not_after: u64,
    leaf_uris: Vec<String>,
    leaf_dns_names: Vec<String>,
}

impl X5cChainCache {
    /// A cache of at most `capacity` validated chains.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How many chains the cache holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no chain.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChainKey, Arc<ValidatedChain>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &ChainKey) -> Option<Arc<ValidatedChain>> {
        self.lock().get(key).cloned()
    }

    fn insert(&self, key: ChainKey, chain: ValidatedChain) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let victim = entries.keys().next().copied();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        entries.insert(key, Arc::new(chain));
    }
}

impl fmt::Debug for X5cChainCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X5cChainCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

/// SHA-256 over `parts`, each preceded by its length.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
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
        let seconds = u64::try_from(self.clock.unix_seconds()).unwrap_or(0);
        let cache_key = self.cache.as_ref().map(|_| {
            let parts: Vec<&[u8]> = chain.iter().map(String::as_bytes).collect();
            (sha256(&parts), self.anchors_digest)
        });
        if let (Some(cache), Some(cache_key)) = (&self.cache, &cache_key)
            && let Some(hit) = cache.get(cache_key)
            && (hit.not_before..=hit.not_after).contains(&seconds)
        {
            return self.accept(query, &hit);
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
        let (leaf_uris, leaf_dns_names) = leaf_names(&cert);
        let (mut not_before, mut not_after) = validity(&cert);
        for intermediate in intermediates {
            let intermediate = Certificate::from_der(intermediate.as_ref()).map_err(|_| {
                JoseError::UntrustedKey("an x5c certificate is not a valid certificate")
            })?;
            let (from, until) = validity(&intermediate);
            not_before = not_before.max(from);
            not_after = not_after.min(until);
        }
        let validated = ValidatedChain {
            key: Arc::new(VerifyingKey::from_jwk(&leaf_jwk(&cert)?)?),
            not_before,
            not_after,
            leaf_uris,
            leaf_dns_names,
        };
        let key = self.accept(query, &validated);
        if let (Some(cache), Some(cache_key)) = (&self.cache, cache_key) {
            cache.insert(cache_key, validated);
        }
        key
    }
}

impl X5cResolver {
    /// The key of a validated chain, when its leaf suits the token: named by its `iss` (when
    /// the resolver requires it) and of a type that signs with its `alg`.
    fn accept(
        &self,
        query: &KeyQuery<'_>,
        chain: &ValidatedChain,
    ) -> Result<Arc<VerifyingKey>, JoseError> {
        if self.check_issuer
            && let Some(issuer) = query.issuer
            && !names_issuer(&chain.leaf_uris, &chain.leaf_dns_names, issuer)
        {
            return Err(JoseError::UntrustedKey(
                "the x5c leaf is not issued to the token's issuer",
            ));
        }
        if !chain.key.supports(query.alg) {
            return Err(JoseError::KeyAlgorithmMismatch(query.alg));
        }
        Ok(Arc::clone(&chain.key))
    }
}

/// The certificate's validity period in Unix seconds, both ends included.
fn validity(cert: &Certificate) -> (u64, u64) {
    let validity = cert.tbs_certificate().validity();
    (
        validity.not_before.to_unix_duration().as_secs(),
        validity.not_after.to_unix_duration().as_secs(),
    )
}

/// The leaf's `uniformResourceIdentifier` and `dNSName` SANs.
fn leaf_names(cert: &Certificate) -> (Vec<String>, Vec<String>) {
    let Ok(Some((_, SubjectAltName(names)))) =
        cert.tbs_certificate().get_extension::<SubjectAltName>()
    else {
        return (Vec::new(), Vec::new());
    };
    let mut uris = Vec::new();
    let mut dns_names = Vec::new();
    for name in names {
        match name {
            GeneralName::UniformResourceIdentifier(uri) => uris.push(uri.as_str().to_owned()),
            GeneralName::DnsName(dns) => dns_names.push(dns.as_str().to_owned()),
            _ => {}
        }
    }
    (uris, dns_names)
}

/// Whether the leaf's SANs name `iss`: a URI SAN equal to it, or a DNS SAN equal to the host
/// of an `https` URL.
fn names_issuer(uris: &[String], dns_names: &[String], iss: &str) -> bool {
    if uris.iter().any(|uri| uri == iss) {
        return true;
    }
    let host = url::Url::parse(iss)
        .ok()
        .filter(|url| url.scheme() == "https")
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
    host.is_some_and(|host| dns_names.iter().any(|dns| dns.eq_ignore_ascii_case(&host)))
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
