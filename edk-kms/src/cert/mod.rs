//! X.509 certificates for KMS keys: CSRs, issuing from a tenant CA alias or from a CSR,
//! registered certificates, named chains and trust anchors per tenant, and chain validation.
//!
//! Every signature goes through the [`Kms`]: the [`Certificates`] service asks it for the
//! alias's [`Signer`] and public key and never sees key material. Certificates are built with
//! `x509-cert`/`der` and validated with `rustls-webpki` (RFC 5280 §6), plus the `keyUsage` and
//! trust anchor checks webpki leaves out (see [`ValidatedChain`]).
//!
//! Certificates are stored per tenant under a [`KeyAlias`] (normally the alias of the key they
//! certify); chains under a [`ChainName`]. Both live in the tenant's schema or file, through a
//! [`store::CertificateStore`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use der::Encode;
use der::asn1::ObjectIdentifier;
use edk_core::jose::Signer;
use edk_core::{Clock, ErrorKind, HasKind, IdError, Kid};
use edk_tenancy::migrate::{MigrationScope, MigrationSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::kms::{Caller, KeyAlias, KeyRef, Kms};

mod error;
pub mod store;
mod validate;
mod x509;

pub use error::{ChainProblem, Error};
pub use validate::{MAX_CHAIN_LEN, ValidatedChain};

use store::CertificateStore;
use x509::{Issuer, general_names};

/// The migration component of the certificate tables.
pub const MIGRATION_COMPONENT: &str = "edk-kms-cert";

/// The tenant migrations of the certificate tables (`certificate`, `certificate_chain`), for
/// [`TenancyBuilder::migrations`](edk_tenancy::TenancyBuilder::migrations).
///
/// # Errors
/// [`crate::Error::Tenancy`] if the embedded migrations are malformed (a build defect).
pub fn migrations() -> Result<MigrationSet, crate::Error> {
    MigrationSet::new(
        MIGRATION_COMPONENT,
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/cert/postgres"),
        &sqlx::migrate!("migrations/cert/sqlite"),
    )
    .map_err(|err| crate::Error::Tenancy(err.into()))
}

/// The name of a tenant's certificate chain or trust anchor set: 1 to 64 of lower-case ASCII
/// letters, digits, `-` and `.`, starting with a letter.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainName(String);

impl ChainName {
    /// Parses a chain name.
    ///
    /// # Errors
    /// [`IdError`] when it is malformed.
    pub fn new(name: &str) -> Result<Self, IdError> {
        let valid = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(IdError::Malformed {
                what: "chain name",
                reason: "must be 1 to 64 of a-z, 0-9, '-' and '.', starting with a letter",
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainName({})", self.0)
    }
}

impl FromStr for ChainName {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An X.500 distinguished name, written as in RFC 4514: `CN=Issuer CA,O=Example,C=DE`.
#[derive(Clone, PartialEq, Eq)]
pub struct DistinguishedName(Name);

impl DistinguishedName {
    /// Parses an RFC 4514 string with at least one attribute.
    ///
    /// # Errors
    /// [`Error::Malformed`] when it does not parse or is empty.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let malformed = Error::Malformed {
            what: "distinguished name",
            reason: "expected RFC 4514, e.g. `CN=Example,O=Org,C=DE`",
        };
        let name = Name::from_str(text).map_err(|_| malformed)?;
        if name.is_empty() {
            return Err(Error::Malformed {
                what: "distinguished name",
                reason: "no attribute",
            });
        }
        Ok(Self(name))
    }

    pub(crate) const fn name(&self) -> &Name {
        &self.0
    }

    fn has_attribute(&self, oid: ObjectIdentifier) -> bool {
        self.0.iter().any(|attribute| attribute.oid == oid)
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistinguishedName({})", self.0)
    }
}

impl FromStr for DistinguishedName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DistinguishedName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DistinguishedName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A subject alternative name (RFC 5280 §4.2.1.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "value")]
#[non_exhaustive]
pub enum SubjectAltName {
    /// A `dNSName`.
    Dns(String),
    /// An `rfc822Name` (e-mail address).
    Email(String),
    /// An `iPAddress`.
    Ip(IpAddr),
    /// A `uniformResourceIdentifier`.
    Uri(String),
}

/// A `keyUsage` bit (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum KeyUsage {
    /// `cRLSign`.
    #[serde(rename = "cRLSign")]
    CrlSign,
    /// `dataEncipherment`.
    DataEncipherment,
    /// `digitalSignature`.
    DigitalSignature,
    /// `keyAgreement`.
    KeyAgreement,
    /// `keyCertSign`.
    KeyCertSign,
    /// `keyEncipherment`.
    KeyEncipherment,
    /// `nonRepudiation` (`contentCommitment`).
    NonRepudiation,
}

/// An `extKeyUsage` purpose (RFC 5280 §4.2.1.12).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ExtendedKeyUsage {
    /// `id-kp-clientAuth`.
    ClientAuth,
    /// `id-kp-codeSigning`.
    CodeSigning,
    /// `id-kp-emailProtection`.
    EmailProtection,
    /// `id-kp-OCSPSigning`.
    OcspSigning,
    /// `id-kp-serverAuth`.
    ServerAuth,
    /// `id-kp-timeStamping`.
    TimeStamping,
    /// Any other purpose by dotted OID, e.g. ISO 18013-5's `1.0.18013.5.1.2` (mdlDS).
    Oid(String),
}

impl ExtendedKeyUsage {
    fn oid(&self) -> Result<ObjectIdentifier, Error> {
        let dotted = match self {
            Self::ClientAuth => "1.3.6.1.5.5.7.3.2",
            Self::CodeSigning => "1.3.6.1.5.5.7.3.3",
            Self::EmailProtection => "1.3.6.1.5.5.7.3.4",
            Self::OcspSigning => "1.3.6.1.5.5.7.3.9",
            Self::ServerAuth => "1.3.6.1.5.5.7.3.1",
            Self::TimeStamping => "1.3.6.1.5.5.7.3.8",
            Self::Oid(oid) => oid,
        };
        ObjectIdentifier::new(dotted)
            .map_err(|_| Error::InvalidProfile("an extended key usage is not a dotted OID"))
    }
}

/// The extended key usage of ISO/IEC 18013-5 document signer certificates
/// (`id-mdl-kp-mdlDS`).
pub const MDL_DS_EKU: &str = "1.0.18013.5.1.2";

/// The longest validity of a document signer certificate (ISO/IEC 18013-5 Annex B.1.4: 457
/// days).
pub const MAX_DS_VALIDITY: Duration = Duration::from_secs(457 * 86_400);

const COUNTRY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const COMMON_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Whether a certificate is a CA or an end entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CertificateKind {
    /// A CA: `basicConstraints` `cA` true with an optional `pathLenConstraint`.
    Ca {
        /// How many intermediate CAs may follow below this one; `None` for no limit.
        path_len: Option<u8>,
    },
    /// An end entity: `basicConstraints` `cA` false.
    Leaf,
}

/// What a certificate to issue says besides its subject key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CertificateProfile {
    /// CA or end entity.
    pub kind: CertificateKind,
    /// The subject; `None` takes the CSR's subject, or `CN=<alias>` when issuing for an alias.
    pub subject: Option<DistinguishedName>,
    /// How long the certificate is valid, from `not_before`.
    pub validity: Duration,
    /// The start of validity; `None` is the clock's now.
    pub not_before: Option<DateTime<Utc>>,
    /// The `keyUsage` bits; empty takes the default: `keyCertSign` and `cRLSign` plus
    /// `digitalSignature` for a CA, `digitalSignature` for an end entity.
    pub key_usages: Vec<KeyUsage>,
    /// The `extKeyUsage` purposes; empty leaves the extension out.
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// The subject alternative names; empty takes a CSR's requested names, if any.
    pub sans: Vec<SubjectAltName>,
    /// Made by [`CertificateProfile::iaca`] or [`CertificateProfile::document_signer`],
    /// whose rules the profile check then applies.
    #[serde(skip)]
    iso: Option<IsoProfile>,
}

/// The ISO/IEC 18013-5 profile a [`CertificateProfile`] was made as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IsoProfile {
    Iaca,
    DocumentSigner,
}

impl CertificateProfile {
    /// A CA profile valid for `validity`, with at most `path_len` intermediates below it.
    #[must_use]
    pub const fn ca(validity: Duration, path_len: Option<u8>) -> Self {
        Self::new(CertificateKind::Ca { path_len }, validity)
    }

    /// An end-entity profile valid for `validity`.
    #[must_use]
    pub const fn leaf(validity: Duration) -> Self {
        Self::new(CertificateKind::Leaf, validity)
    }

    /// The profile of an ISO/IEC 18013-5 IACA root (Annex B.1.2): a CA with no intermediate
    /// below it (`pathLenConstraint` 0), `keyCertSign` and `cRLSign` only, for `subject`,
    /// which must name a country (`C`) and a common name (`CN`).
    #[must_use]
    pub fn iaca(subject: DistinguishedName, validity: Duration) -> Self {
        let mut profile = Self::ca(validity, Some(0))
            .with_subject(subject)
            .with_key_usages([KeyUsage::KeyCertSign, KeyUsage::CrlSign]);
        profile.iso = Some(IsoProfile::Iaca);
        profile
    }

    /// The profile of an ISO/IEC 18013-5 document signer certificate (Annex B.1.4): an end
    /// entity with `digitalSignature` only and the extended key usage `id-mdl-kp-mdlDS`
    /// ([`MDL_DS_EKU`]), for `subject`, which must name a country (`C`) and a common name
    /// (`CN`). Its validity may not exceed [`MAX_DS_VALIDITY`].
    #[must_use]
    pub fn document_signer(subject: DistinguishedName, validity: Duration) -> Self {
        let mut profile = Self::leaf(validity)
            .with_subject(subject)
            .with_key_usages([KeyUsage::DigitalSignature])
            .with_extended_key_usages([ExtendedKeyUsage::Oid(MDL_DS_EKU.to_owned())]);
        profile.iso = Some(IsoProfile::DocumentSigner);
        profile
    }

    const fn new(kind: CertificateKind, validity: Duration) -> Self {
        Self {
            kind,
            subject: None,
            validity,
            not_before: None,
            key_usages: Vec::new(),
            extended_key_usages: Vec::new(),
            sans: Vec::new(),
            iso: None,
        }
    }

    /// Sets the subject.
    #[must_use]
    pub fn with_subject(mut self, subject: DistinguishedName) -> Self {
        self.subject = Some(subject);
        self
    }

    /// Sets the start of validity.
    #[must_use]
    pub const fn with_not_before(mut self, not_before: DateTime<Utc>) -> Self {
        self.not_before = Some(not_before);
        self
    }

    /// Sets the `keyUsage` bits (replacing the default).
    #[must_use]
    pub fn with_key_usages(mut self, usages: impl IntoIterator<Item = KeyUsage>) -> Self {
        self.key_usages = usages.into_iter().collect();
        self
    }

    /// Sets the `extKeyUsage` purposes.
    #[must_use]
    pub fn with_extended_key_usages(
        mut self,
        usages: impl IntoIterator<Item = ExtendedKeyUsage>,
    ) -> Self {
        self.extended_key_usages = usages.into_iter().collect();
        self
    }

    /// Sets the subject alternative names.
    #[must_use]
    pub fn with_sans(mut self, sans: impl IntoIterator<Item = SubjectAltName>) -> Self {
        self.sans = sans.into_iter().collect();
        self
    }

    fn effective_key_usages(&self) -> Vec<KeyUsage> {
        if !self.key_usages.is_empty() {
            return self.key_usages.clone();
        }
        match self.kind {
            CertificateKind::Ca { .. } => vec![
                KeyUsage::DigitalSignature,
                KeyUsage::KeyCertSign,
                KeyUsage::CrlSign,
            ],
            CertificateKind::Leaf => vec![KeyUsage::DigitalSignature],
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.validity.is_zero() {
            return Err(Error::InvalidProfile("the validity must be positive"));
        }
        let document_signer = self.iso == Some(IsoProfile::DocumentSigner);
        if self.iso.is_some() {
            let names_country_and_cn = self.subject.as_ref().is_some_and(|subject| {
                subject.has_attribute(COUNTRY_OID) && subject.has_attribute(COMMON_NAME_OID)
            });
            if !names_country_and_cn {
                return Err(Error::InvalidProfile(
                    "an IACA or document signer subject must name a country (C) and a common name (CN)",
                ));
            }
        }
        if document_signer {
            if !matches!(self.kind, CertificateKind::Leaf) {
                return Err(Error::InvalidProfile(
                    "a document signer certificate is an end entity",
                ));
            }
            if self.validity > MAX_DS_VALIDITY {
                return Err(Error::InvalidProfile(
                    "a document signer certificate is valid for at most 457 days",
                ));
            }
        }
        if matches!(self.kind, CertificateKind::Leaf)
            && self.key_usages.contains(&KeyUsage::KeyCertSign)
        {
            return Err(Error::InvalidProfile(
                "an end-entity certificate cannot have keyCertSign",
            ));
        }
        Ok(())
    }
}

/// A certificate with the fields callers list and search by, and its chain.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// The serial number, lower-case hex.
    pub serial: String,
    /// The subject, RFC 4514.
    pub subject: String,
    /// The issuer, RFC 4514.
    pub issuer: String,
    /// The start of validity.
    pub not_before: DateTime<Utc>,
    /// The end of validity.
    pub not_after: DateTime<Utc>,
    /// The certificate and its issuers as DER, leaf first.
    pub chain: Vec<Vec<u8>>,
}

impl CertificateInfo {
    /// Reads the fields of the first certificate of `chain` (DER, leaf first).
    ///
    /// # Errors
    /// [`Error::Malformed`] when the chain is empty or a certificate does not parse.
    pub fn from_chain(chain: Vec<Vec<u8>>) -> Result<Self, Error> {
        let leaf_der = chain.first().ok_or(Error::Malformed {
            what: "certificate chain",
            reason: "no certificate",
        })?;
        for der in &chain {
            x509::parse_der(der)?;
        }
        let leaf = x509::parse_der(leaf_der)?;
        let tbs = leaf.tbs_certificate();
        let time = |t: &x509_cert::time::Time| DateTime::<Utc>::from(t.to_system_time());
        Ok(Self {
            serial: hex(tbs.serial_number().as_bytes()),
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            not_before: time(&tbs.validity().not_before),
            not_after: time(&tbs.validity().not_after),
            chain,
        })
    }

    /// The leaf certificate as DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        self.chain.first().map_or(&[], Vec::as_slice)
    }

    /// The chain as PEM, leaf first.
    ///
    /// # Errors
    /// [`Error::Encoding`] never in practice.
    pub fn pem(&self) -> Result<String, Error> {
        x509::to_pem(&self.chain)
    }

    /// The chain as an `x5c` header value: standard base64 DER, leaf first.
    #[must_use]
    pub fn x5c(&self) -> Vec<String> {
        use base64::Engine as _;
        self.chain
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect()
    }
}

impl fmt::Debug for CertificateInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateInfo")
            .field("serial", &self.serial)
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("chain", &self.chain.len())
            .finish()
    }
}

/// A certificate stored under an alias.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCertificate {
    /// The alias.
    pub alias: KeyAlias,
    /// The kid of the KMS key version the certificate certifies, when it is one.
    pub kid: Option<Kid>,
    /// The certificate and its chain.
    pub certificate: CertificateInfo,
}

impl StoredCertificate {
    /// The certificate `certificate` stored under `alias`, certifying key version `kid`.
    #[must_use]
    pub const fn new(alias: KeyAlias, kid: Option<Kid>, certificate: CertificateInfo) -> Self {
        Self {
            alias,
            kid,
            certificate,
        }
    }
}

/// Where runtime services read the certificate of a KMS alias (a document signer's, a
/// request signer's): [`Certificates`] in process, and `RemoteKms` (feature `grpc`) from a
/// KMS server.
#[async_trait::async_trait]
pub trait CertificateSource: fmt::Debug + Send + Sync {
    /// The certificate stored under `alias`, with its chain.
    ///
    /// # Errors
    /// [`Error::CertificateNotFound`], also for another tenant's alias;
    /// [`Error::Kms`] or [`Error::Store`] when the KMS or its database fails.
    async fn certificate(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<StoredCertificate, Error>;

    /// The DER certificates of the caller's tenant's chains marked trust anchors (what a
    /// verifier accepts issuer chains up to); empty when the tenant has none.
    ///
    /// # Errors
    /// [`Error::Kms`] or [`Error::Store`] when the KMS or its database fails.
    async fn trust_anchors(&self, caller: &Caller) -> Result<Vec<Vec<u8>>, Error>;
}

#[async_trait::async_trait]
impl CertificateSource for Certificates {
    async fn certificate(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<StoredCertificate, Error> {
        Self::certificate(self, caller, alias).await
    }

    async fn trust_anchors(&self, caller: &Caller) -> Result<Vec<Vec<u8>>, Error> {
        Self::trust_anchors(self, caller).await
    }
}

/// A named certificate chain or set of trust anchors.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateChain {
    /// The name.
    pub name: ChainName,
    /// The certificates as DER, in the order given.
    pub certificates: Vec<Vec<u8>>,
    /// Whether the certificates are trust anchors of the tenant.
    pub trust_anchor: bool,
}

impl CertificateChain {
    /// The certificates as PEM.
    ///
    /// # Errors
    /// [`Error::Encoding`] never in practice.
    pub fn pem(&self) -> Result<String, Error> {
        x509::to_pem(&self.certificates)
    }
}

impl fmt::Debug for CertificateChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateChain")
            .field("name", &self.name)
            .field("certificates", &self.certificates.len())
            .field("trust_anchor", &self.trust_anchor)
            .finish()
    }
}

/// What a chain validates against.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anchors {
    /// Every certificate of every chain of the tenant marked as trust anchors.
    Tenant,
    /// The certificates of one named chain.
    Chain(ChainName),
    /// These DER certificates.
    Certificates(Vec<Vec<u8>>),
}

/// Certificates for a tenant's KMS keys; see the [module](self) documentation.
#[derive(Clone)]
pub struct Certificates {
    kms: Arc<dyn Kms>,
    store: Arc<dyn CertificateStore>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("kms", &self.kms)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// The service over `kms` and `store`, reading time from `clock`.
    #[must_use]
    pub fn new(kms: Arc<dyn Kms>, store: Arc<dyn CertificateStore>, clock: Arc<dyn Clock>) -> Self {
        Self { kms, store, clock }
    }

    /// A PEM certificate signing request (RFC 2986) for `alias`'s active key, signed by it.
    ///
    /// # Errors
    /// [`Error::Kms`] for an unknown alias; [`Error::UnsupportedKey`] or
    /// [`Error::UnsupportedAlgorithm`] for keys X.509 cannot carry here.
    pub async fn csr(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        subject: &DistinguishedName,
        sans: &[SubjectAltName],
    ) -> Result<String, Error> {
        let (signer, spki) = self.signing_key(caller, alias).await?;
        x509::build_csr(&*signer, spki, subject, sans).await
    }

    /// Issues a certificate for `subject_alias`'s active key, signed by `ca_alias`'s, and
    /// stores it under `subject_alias` (replacing an earlier one). When both aliases are the
    /// same the certificate is self-signed (a root); otherwise `ca_alias` must have a stored
    /// certificate for its current key, whose chain is appended.
    ///
    /// # Errors
    /// [`Error::NoCaCertificate`], [`Error::InvalidProfile`], [`Error::Kms`], and the errors
    /// of [`csr`](Self::csr).
    pub async fn issue(
        &self,
        caller: &Caller,
        ca_alias: &KeyAlias,
        subject_alias: &KeyAlias,
        profile: &CertificateProfile,
    ) -> Result<StoredCertificate, Error> {
        profile.check()?;
        let subject = match &profile.subject {
            Some(subject) => subject.name().clone(),
            None => DistinguishedName::parse(&format!("CN={subject_alias}"))?.0,
        };
        let (subject_spki, kid) = {
            let jwk = self
                .kms
                .public_key(caller, &KeyRef::Alias(subject_alias.clone()))
                .await?;
            let spki = x509::spki_from_jwk(&jwk)?.ok_or_else(|| Error::UnsupportedKey {
                alias: subject_alias.clone(),
            })?;
            (spki, jwk.kid.as_deref().and_then(|kid| Kid::new(kid).ok()))
        };
        let sans = general_names(&profile.sans)?;
        let chain = self
            .sign_certificate(caller, ca_alias, subject, subject_spki, profile, &sans)
            .await?;
        let stored = StoredCertificate {
            alias: subject_alias.clone(),
            kid,
            certificate: CertificateInfo::from_chain(chain)?,
        };
        self.store
            .put_certificate(caller.tenant(), &stored, self.now())
            .await?;
        Ok(stored)
    }

    /// Issues a certificate for the key in `csr_pem`, signed by `ca_alias`, after verifying
    /// the CSR's self-signature. The subject is the profile's or else the CSR's; the SANs the
    /// profile's or else the CSR's. The certificate is returned, not stored: store it with
    /// [`register`](Self::register) if it certifies a tenant key.
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::InvalidCsrSignature`] for a bad CSR, and the errors of
    /// [`issue`](Self::issue).
    pub async fn issue_from_csr(
        &self,
        caller: &Caller,
        ca_alias: &KeyAlias,
        csr_pem: &str,
        profile: &CertificateProfile,
    ) -> Result<CertificateInfo, Error> {
        profile.check()?;
        let csr = x509::verify_csr(csr_pem)?;
        let subject = match &profile.subject {
            Some(subject) => subject.name().clone(),
            None => csr.subject,
        };
        if subject.is_empty() {
            return Err(Error::InvalidProfile("the certificate needs a subject"));
        }
        let sans = if profile.sans.is_empty() {
            csr.sans.unwrap_or_default()
        } else {
            general_names(&profile.sans)?
        };
        let chain = self
            .sign_certificate(caller, ca_alias, subject, csr.public_key, profile, &sans)
            .await?;
        CertificateInfo::from_chain(chain)
    }

    /// Stores an externally issued certificate (PEM, leaf first, then its issuers) under
    /// `alias`, replacing an earlier one. When `alias` is a KMS key, the certificate's public
    /// key must be one of its versions' keys, whose kid is recorded.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad PEM; [`Error::KeyMismatch`] for another key.
    pub async fn register(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        chain_pem: &str,
    ) -> Result<StoredCertificate, Error> {
        let chain = x509::parse_pem_chain(chain_pem)?;
        let certificate = CertificateInfo::from_chain(chain)?;
        let leaf = x509::parse_der(certificate.der())?;
        let leaf_spki = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(Error::encoding)?;
        let kid = match self.kms.key(caller, &KeyRef::Alias(alias.clone())).await {
            Ok(info) => {
                let mut found = None;
                for version in &info.versions {
                    let Some(spki) = x509::spki_from_jwk(&version.public_jwk)? else {
                        continue;
                    };
                    if spki.to_der().map_err(Error::encoding)? == leaf_spki {
                        found = Some(version.kid.clone());
                        break;
                    }
                }
                Some(found.ok_or_else(|| Error::KeyMismatch {
                    alias: alias.clone(),
                })?)
            }
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => return Err(err.into()),
        };
        let stored = StoredCertificate {
            alias: alias.clone(),
            kid,
            certificate,
        };
        self.store
            .put_certificate(caller.tenant(), &stored, self.now())
            .await?;
        Ok(stored)
    }

    /// The certificate stored under `alias`.
    ///
    /// # Errors
    /// [`Error::CertificateNotFound`], also for another tenant's alias.
    pub async fn certificate(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<StoredCertificate, Error> {
        self.store
            .certificate(caller.tenant(), alias)
            .await?
            .ok_or_else(|| Error::CertificateNotFound {
                alias: alias.clone(),
            })
    }

    /// The tenant's certificates, by alias.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn certificates(&self, caller: &Caller) -> Result<Vec<StoredCertificate>, Error> {
        self.store.certificates(caller.tenant()).await
    }

    /// Deletes the certificate stored under `alias`.
    ///
    /// # Errors
    /// [`Error::CertificateNotFound`].
    pub async fn delete_certificate(&self, caller: &Caller, alias: &KeyAlias) -> Result<(), Error> {
        if self
            .store
            .delete_certificate(caller.tenant(), alias)
            .await?
        {
            Ok(())
        } else {
            Err(Error::CertificateNotFound {
                alias: alias.clone(),
            })
        }
    }

    /// Stores `chain_pem` under `name`, replacing an earlier chain; `trust_anchor` makes its
    /// certificates trust anchors of the tenant ([`Anchors::Tenant`]).
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad PEM.
    pub async fn put_chain(
        &self,
        caller: &Caller,
        name: &ChainName,
        chain_pem: &str,
        trust_anchor: bool,
    ) -> Result<CertificateChain, Error> {
        let certificates = x509::parse_pem_chain(chain_pem)?;
        if certificates.len() > MAX_CHAIN_LEN {
            return Err(Error::Malformed {
                what: "certificate chain",
                reason: "more than ten certificates",
            });
        }
        let chain = CertificateChain {
            name: name.clone(),
            certificates,
            trust_anchor,
        };
        self.store
            .put_chain(caller.tenant(), &chain, self.now())
            .await?;
        Ok(chain)
    }

    /// The chain stored under `name`.
    ///
    /// # Errors
    /// [`Error::ChainNotFound`], also for another tenant's chain.
    pub async fn chain(
        &self,
        caller: &Caller,
        name: &ChainName,
    ) -> Result<CertificateChain, Error> {
        self.store
            .chain(caller.tenant(), name)
            .await?
            .ok_or_else(|| Error::ChainNotFound { name: name.clone() })
    }

    /// The tenant's chains, by name.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn chains(&self, caller: &Caller) -> Result<Vec<CertificateChain>, Error> {
        self.store.chains(caller.tenant()).await
    }

    /// The DER certificates of the tenant's chains marked trust anchors, chain by chain.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn trust_anchors(&self, caller: &Caller) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self
            .store
            .chains(caller.tenant())
            .await?
            .into_iter()
            .filter(|chain| chain.trust_anchor)
            .flat_map(|chain| chain.certificates)
            .collect())
    }

    /// Deletes the chain stored under `name`.
    ///
    /// # Errors
    /// [`Error::ChainNotFound`].
    pub async fn delete_chain(&self, caller: &Caller, name: &ChainName) -> Result<(), Error> {
        if self.store.delete_chain(caller.tenant(), name).await? {
            Ok(())
        } else {
            Err(Error::ChainNotFound { name: name.clone() })
        }
    }

    /// Validates `chain_pem` (end entity first, then intermediates) against `anchors` at
    /// `at` (the clock's now when `None`): signatures, validity, `basicConstraints`,
    /// `keyUsage` `keyCertSign`, path length constraints and name chaining.
    ///
    /// # Errors
    /// [`Error::InvalidChain`] saying why; [`Error::NoTrustAnchors`] when there are none.
    pub async fn validate_chain(
        &self,
        caller: &Caller,
        chain_pem: &str,
        anchors: &Anchors,
        at: Option<DateTime<Utc>>,
    ) -> Result<ValidatedChain, Error> {
        let chain = x509::parse_pem_chain(chain_pem)?;
        let anchors = match anchors {
            Anchors::Tenant => self.trust_anchors(caller).await?,
            Anchors::Chain(name) => self.chain(caller, name).await?.certificates,
            Anchors::Certificates(ders) => ders.clone(),
        };
        let at = at.unwrap_or_else(|| self.now());
        validate::validate(&chain, &anchors, at)
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from(self.clock.now())
    }

    async fn signing_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<(Arc<dyn Signer>, SubjectPublicKeyInfoOwned), Error> {
        let signer = self.kms.signer(caller, alias).await?;
        let jwk = self
            .kms
            .public_key(caller, &KeyRef::Alias(alias.clone()))
            .await?;
        let spki = x509::spki_from_jwk(&jwk)?.ok_or_else(|| Error::UnsupportedKey {
            alias: alias.clone(),
        })?;
        Ok((signer, spki))
    }

    /// Signs a certificate for `subject`/`spki` by `ca_alias`; the chain, leaf first.
    async fn sign_certificate(
        &self,
        caller: &Caller,
        ca_alias: &KeyAlias,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        profile: &CertificateProfile,
        sans: &[x509_cert::ext::pkix::name::GeneralName],
    ) -> Result<Vec<Vec<u8>>, Error> {
        let (signer, ca_spki) = self.signing_key(caller, ca_alias).await?;
        let self_signed = spki == ca_spki;
        let (issuer_name, mut chain) = if self_signed {
            (subject.clone(), Vec::new())
        } else {
            let no_ca = || Error::NoCaCertificate {
                alias: ca_alias.clone(),
            };
            let ca = self
                .store
                .certificate(caller.tenant(), ca_alias)
                .await?
                .ok_or_else(no_ca)?;
            let ca_cert = x509::parse_der(ca.certificate.der())?;
            if ca_cert.tbs_certificate().subject_public_key_info() != &ca_spki {
                return Err(no_ca());
            }
            (
                ca_cert.tbs_certificate().subject().clone(),
                ca.certificate.chain,
            )
        };
        let issuer = Issuer {
            signer: &*signer,
            name: issuer_name,
            public_key: &ca_spki,
        };
        let not_before = profile.not_before.unwrap_or_else(|| self.now());
        let der =
            x509::build_certificate(&issuer, &subject, spki, profile, sans, not_before).await?;
        chain.insert(0, der);
        Ok(chain)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests;
