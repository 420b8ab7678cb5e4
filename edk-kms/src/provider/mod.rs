//! Key providers: the backends that hold key material, behind the object-safe [`KeyProvider`].
//!
//! A provider generates keys for a tenant and hands back a [`KeyHandle`], an opaque,
//! serialisable reference that the KMS stores in its `key_reference` table. Later the KMS
//! passes the handle back to get a [`Signer`] or a [`Decrypter`]. A handle is bound to the
//! provider and the tenant it was made for; presented for any other tenant it finds nothing.
//!
//! What a provider can do is data ([`Capabilities`]), so the KMS can match a
//! [`KeyRequirement`] against its providers ([`select_provider`]) without trying operations
//! and reading errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::jose::jwe::{Decrypter, KeyManagement};
use edk_core::jose::{Algorithm, Jwk, Signer};
use edk_core::{IdError, Kid, TenantId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "csc")]
pub mod csc;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(any(feature = "aws", feature = "azure", feature = "csc", feature = "vault"))]
pub mod remote;
#[cfg(feature = "rest")]
pub mod rest;
pub mod software;
#[cfg(feature = "vault")]
pub mod vault;

/// A backend that holds key material: software, PKCS#11, a cloud KMS, a remote EDK KMS.
///
/// Providers only namespace keys per tenant; aliases, bindings and tenant configuration are the
/// KMS's concern. Every method that touches a key takes the tenant and must answer
/// [`Error::KeyNotFound`] for a handle made for another tenant.
#[async_trait]
pub trait KeyProvider: fmt::Debug + Send + Sync {
    /// The provider's configured id; every handle it makes carries it.
    fn id(&self) -> &ProviderId;

    /// What the provider can do.
    fn capabilities(&self) -> &Capabilities;

    /// Generates a key for `tenant`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUsage`] when the provider cannot hold such a key,
    /// [`Error::Unavailable`] when the backend cannot be reached, [`Error::Internal`] otherwise.
    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error>;

    /// Imports a private key (a private JWK) for `tenant`. Only exportable providers import.
    ///
    /// # Errors
    /// [`Error::UnsupportedOperation`] when the provider does not import (the default),
    /// [`Error::InvalidKey`] when the JWK is not a private key for `spec`.
    async fn import(
        &self,
        tenant: &TenantId,
        spec: &KeySpec,
        private_jwk: &Jwk,
    ) -> Result<ProviderKey, Error> {
        let _ = (tenant, spec, private_jwk);
        Err(Error::UnsupportedOperation {
            provider: self.id().clone(),
            operation: "import",
        })
    }

    /// Registers a key that already exists in the backend, named by the provider's own
    /// `reference` (a CSC credential id), for `tenant`. For providers that do not create keys
    /// ([`Capabilities::key_creation`]) this is how their keys come to an alias.
    ///
    /// # Errors
    /// [`Error::UnsupportedOperation`] when the provider does not register existing keys (the
    /// default), [`Error::KeyNotFound`] when `reference` names no key `tenant` may use,
    /// [`Error::UnsupportedUsage`] when the key cannot serve `spec`,
    /// [`Error::Unavailable`] when the backend cannot be reached.
    async fn register(
        &self,
        tenant: &TenantId,
        spec: &KeySpec,
        reference: &str,
    ) -> Result<ProviderKey, Error> {
        let _ = (tenant, spec, reference);
        Err(Error::UnsupportedOperation {
            provider: self.id().clone(),
            operation: "registering existing keys",
        })
    }

    /// A signer for a signing key of `tenant`.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] for an unknown, destroyed or other tenant's key,
    /// [`Error::UnsupportedOperation`] for a key that does not sign,
    /// [`Error::Unavailable`] when the backend cannot be reached.
    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error>;

    /// A JWE decrypter for a decryption key of `tenant`.
    ///
    /// # Errors
    /// As [`signer`](Self::signer); [`Error::UnsupportedOperation`] when the provider does not
    /// decrypt (the default).
    async fn decrypter(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Arc<dyn Decrypter>, Error> {
        key.check(self.id(), tenant)?;
        Err(Error::UnsupportedOperation {
            provider: self.id().clone(),
            operation: "decryption",
        })
    }

    /// The raw ECDH shared secret (`Z`) of a key-agreement key of `tenant` with `peer` (a
    /// public key on the same curve).
    ///
    /// # Errors
    /// As [`decrypter`](Self::decrypter); [`Error::InvalidKey`] for a peer key on another
    /// curve; [`Error::UnsupportedOperation`] when the provider does not agree keys (the
    /// default).
    async fn agree(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
        peer: &Jwk,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        key.check(self.id(), tenant)?;
        let _ = peer;
        Err(Error::UnsupportedOperation {
            provider: self.id().clone(),
            operation: "key agreement",
        })
    }

    /// The call metrics of a provider that calls a remote service (retries, throttles,
    /// errors, latency, circuit breaker); `None` (the default) for the others.
    fn remote_metrics(&self) -> Option<RemoteMetrics> {
        None
    }

    /// Destroys a key of `tenant`. Providers whose key material lives in the handle
    /// ([`KeyStorage::InHandle`]) cannot forget it: for them the key is destroyed when the
    /// caller deletes the handle, and this only checks that the handle is the tenant's.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] for an unknown or other tenant's key, [`Error::Unavailable`]
    /// when the backend cannot be reached.
    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error>;
}

/// The upper bounds, in milliseconds, of the latency histogram's buckets (the last bucket,
/// above 5000, is unbounded).
pub const LATENCY_BUCKETS_MILLIS: [u64; 11] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 5_000];

/// A snapshot of a remote provider's metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RemoteMetrics {
    /// Calls asked of the provider (one per operation, however many attempts it took).
    pub calls: u64,
    /// Attempts sent to the service.
    pub attempts: u64,
    /// Attempts the service throttled.
    pub throttles: u64,
    /// Failed calls by kind (`not_found`, `unavailable`, `circuit_open`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Attempts per latency bucket: `LATENCY_BUCKETS_MILLIS[i]` bounds bucket `i`, the last
    /// bucket counts the slower ones.
    pub latency_buckets: Vec<u64>,
    /// The time all attempts took together, in microseconds.
    pub latency_micros_sum: u64,
    /// Whether the circuit breaker is open now.
    pub breaker_open: bool,
}

/// Whether `alg` is one of the ECDH-ES key agreement algorithms.
#[must_use]
pub const fn is_ecdh(alg: KeyManagement) -> bool {
    matches!(
        alg,
        KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw
    )
}

/// Picks the best provider for `requirement` from `providers`: among those that support it
/// and create keys, hardware-backed before software, non-exportable before exportable, then
/// the earliest in the list (the configured order of preference).
#[must_use]
pub fn select_provider<'a>(
    providers: &'a [Arc<dyn KeyProvider>],
    requirement: &KeyRequirement,
) -> Option<&'a Arc<dyn KeyProvider>> {
    let score = |caps: &Capabilities| {
        u8::from(caps.hardware_backed) * 2 + u8::from(caps.exportability == Exportability::Never)
    };
    let mut best: Option<(&Arc<dyn KeyProvider>, u8)> = None;
    for provider in providers {
        let caps = provider.capabilities();
        if !caps.supports(requirement) || !caps.key_creation() {
            continue;
        }
        let this = score(caps);
        if best.is_none_or(|(_, top)| this > top) {
            best = Some((provider, this));
        }
    }
    best.map(|(provider, _)| provider)
}

/// A provider's configured id: 1 to 64 characters of lower-case letters, digits, `-` and `_`,
/// starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(String);

impl ProviderId {
    /// Validates and wraps `value`.
    ///
    /// # Errors
    /// [`IdError`] when `value` breaks the rules above.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        const WHAT: &str = "provider id";
        let value = value.into();
        let Some(first) = value.chars().next() else {
            return Err(IdError::Empty { what: WHAT });
        };
        if value.len() > 64 {
            return Err(IdError::TooLong {
                what: WHAT,
                max: 64,
            });
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(IdError::Malformed {
                what: WHAT,
                reason: "must start with a lower-case letter or a digit",
            });
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(IdError::Malformed {
                what: WHAT,
                reason: "only lower-case letters, digits, '-' and '_' are allowed",
            });
        }
        Ok(Self(value))
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderId({:?})", self.0)
    }
}

impl std::str::FromStr for ProviderId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl Serialize for ProviderId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What a key is for: signing with one JWS algorithm, or decrypting JWEs with one key
/// management algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyUsage {
    /// JWS signing with this algorithm.
    Sign(Algorithm),
    /// JWE decryption with this key management algorithm.
    Decrypt(KeyManagement),
}

impl KeyUsage {
    /// The type of key the usage needs: P-256 for the ECDH-ES family, RSA-2048 for RSA;
    /// `None` for an algorithm this crate does not know yet.
    #[must_use]
    pub const fn key_type(self) -> Option<KeyType> {
        Some(match self {
            Self::Sign(Algorithm::Es256)
            | Self::Decrypt(
                KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw,
            ) => KeyType::P256,
            Self::Sign(Algorithm::Es384) => KeyType::P384,
            Self::Sign(Algorithm::Es256K) => KeyType::Secp256k1,
            Self::Sign(Algorithm::EdDsa | Algorithm::Ed25519) => KeyType::Ed25519,
            Self::Sign(Algorithm::Rs256 | Algorithm::Ps256)
            | Self::Decrypt(KeyManagement::RsaOaep256) => KeyType::Rsa2048,
            _ => return None,
        })
    }

    /// A stable name, e.g. `sign:ES256` or `decrypt:ECDH-ES`.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::Sign(alg) => format!("sign:{}", alg.name()),
            Self::Decrypt(alg) => format!("decrypt:{}", alg.name()),
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sign(alg) => write!(f, "signing with {alg}"),
            Self::Decrypt(alg) => write!(f, "decryption with {}", alg.name()),
        }
    }
}

/// The type of a key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyType {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// secp256k1.
    Secp256k1,
    /// Ed25519.
    Ed25519,
    /// RSA with a 2,048-bit modulus.
    Rsa2048,
}

/// What to generate or import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// What the key is for; it fixes the key type ([`KeyUsage::key_type`]).
    pub usage: KeyUsage,
}

impl KeySpec {
    /// A signing key for `alg`.
    #[must_use]
    pub const fn signing(alg: Algorithm) -> Self {
        Self {
            usage: KeyUsage::Sign(alg),
        }
    }

    /// A JWE decryption key for `alg`.
    #[must_use]
    pub const fn decryption(alg: KeyManagement) -> Self {
        Self {
            usage: KeyUsage::Decrypt(alg),
        }
    }
}

/// A key a provider generated or imported: the handle to store, and the public half.
#[derive(Clone, Debug)]
pub struct ProviderKey {
    handle: KeyHandle,
    public_jwk: Jwk,
}

impl ProviderKey {
    /// A key from its handle and public JWK; the JWK gets the handle's `kid` and the usage's
    /// `alg`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the handle's `kid` is not the JWK's RFC 7638 thumbprint.
    pub fn new(handle: KeyHandle, public_jwk: &Jwk) -> Result<Self, Error> {
        let public_jwk = public_jwk.to_public();
        if public_jwk.thumbprint() != handle.kid().as_str() {
            return Err(Error::InvalidKey {
                reason: "the key id is not the public key's thumbprint",
            });
        }
        let alg = match handle.usage() {
            KeyUsage::Sign(alg) => alg.name(),
            KeyUsage::Decrypt(alg) => alg.name(),
        };
        let public_jwk = public_jwk.with_kid(handle.kid().as_str()).with_alg(alg);
        Ok(Self { handle, public_jwk })
    }

    /// The handle: what the KMS stores in `key_reference` and hands back to use the key.
    #[must_use]
    pub const fn handle(&self) -> &KeyHandle {
        &self.handle
    }

    /// The public JWK, with `kid` and `alg`.
    #[must_use]
    pub const fn public_jwk(&self) -> &Jwk {
        &self.public_jwk
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    #[must_use]
    pub const fn kid(&self) -> &Kid {
        self.handle.kid()
    }

    /// The handle and the public JWK.
    #[must_use]
    pub fn into_parts(self) -> (KeyHandle, Jwk) {
        (self.handle, self.public_jwk)
    }
}

/// An opaque, serialisable reference to a provider's key, bound to one provider and one tenant.
///
/// The `reference` is the provider's own business: an object id on a token, a wrapped key
/// blob. `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHandle {
    provider: ProviderId,
    tenant: TenantId,
    kid: Kid,
    usage: KeyUsage,
    reference: String,
}

impl KeyHandle {
    /// A handle for a provider implementation to return.
    #[must_use]
    pub const fn new(
        provider: ProviderId,
        tenant: TenantId,
        kid: Kid,
        usage: KeyUsage,
        reference: String,
    ) -> Self {
        Self {
            provider,
            tenant,
            kid,
            usage,
            reference,
        }
    }

    /// The provider that made the handle.
    #[must_use]
    pub const fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The tenant the key belongs to.
    #[must_use]
    pub const fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The key id (RFC 7638 thumbprint).
    #[must_use]
    pub const fn kid(&self) -> &Kid {
        &self.kid
    }

    /// What the key is for.
    #[must_use]
    pub const fn usage(&self) -> KeyUsage {
        self.usage
    }

    /// The provider-specific reference.
    #[must_use]
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Checks that the handle was made by `provider` for `tenant`.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] otherwise: another tenant's key does not exist for this one.
    pub fn check(&self, provider: &ProviderId, tenant: &TenantId) -> Result<(), Error> {
        if self.provider == *provider && self.tenant == *tenant {
            Ok(())
        } else {
            Err(Error::not_found(provider))
        }
    }
}

impl fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHandle")
            .field("provider", &self.provider)
            .field("tenant", &self.tenant)
            .field("kid", &self.kid)
            .field("usage", &self.usage)
            .field(
                "reference",
                &format_args!("<{} bytes>", self.reference.len()),
            )
            .finish()
    }
}

/// An operation a provider performs with the keys it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// Makes signatures.
    Sign,
    /// Verifies signatures inside the backend.
    Verify,
    /// Recovers JWE content keys.
    Decrypt,
    /// Computes ECDH shared secrets.
    KeyAgreement,
    /// Unwraps encrypted keys (RSA-OAEP, AES key wrap).
    Wrap,
}

/// Whether private keys can leave the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Exportability {
    /// Never: the key is generated and used inside the backend.
    Never,
    /// The key material exists outside a device (wrapped), so whoever holds the unwrapping key
    /// can recover it.
    Exportable,
}

/// Where a provider keeps key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyStorage {
    /// In the backend; the handle only names the key, and destroying it is final.
    InProvider,
    /// Wrapped inside the handle; the key is gone when every copy of the handle is deleted.
    InHandle,
}

/// What a provider can do, as data for matching and for a `/capabilities` endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    signing: BTreeSet<Algorithm>,
    decryption: Vec<KeyManagement>,
    operations: BTreeSet<Operation>,
    exportability: Exportability,
    importable: bool,
    hardware_backed: bool,
    storage: KeyStorage,
    key_creation: bool,
}

impl Capabilities {
    /// A provider that holds no key type yet: non-exportable, not importable, in-provider
    /// software storage, creating keys. Add to it with the `with_*` methods.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            signing: BTreeSet::new(),
            decryption: Vec::new(),
            operations: BTreeSet::new(),
            exportability: Exportability::Never,
            importable: false,
            hardware_backed: false,
            storage: KeyStorage::InProvider,
            key_creation: true,
        }
    }

    /// Sets whether the provider creates keys; one that does not only registers keys that
    /// exist in its backend ([`KeyProvider::register`]) and is never picked to create one.
    #[must_use]
    pub const fn with_key_creation(mut self, key_creation: bool) -> Self {
        self.key_creation = key_creation;
        self
    }

    /// Whether the provider creates keys.
    #[must_use]
    pub const fn key_creation(&self) -> bool {
        self.key_creation
    }

    /// Adds signing algorithms (and the [`Operation::Sign`] operation).
    #[must_use]
    pub fn with_signing(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.signing.extend(algs);
        if !self.signing.is_empty() {
            self.operations.insert(Operation::Sign);
        }
        self
    }

    /// Adds JWE key management algorithms (and [`Operation::Decrypt`], plus
    /// [`Operation::KeyAgreement`] for ECDH-ES and [`Operation::Wrap`] for key unwrapping).
    #[must_use]
    pub fn with_decryption(mut self, algs: impl IntoIterator<Item = KeyManagement>) -> Self {
        for alg in algs {
            if !self.decryption.contains(&alg) {
                self.decryption.push(alg);
            }
            self.operations.insert(Operation::Decrypt);
            match alg {
                KeyManagement::EcdhEs => {
                    self.operations.insert(Operation::KeyAgreement);
                }
                KeyManagement::RsaOaep256 => {
                    self.operations.insert(Operation::Wrap);
                }
                _ => {
                    self.operations.insert(Operation::KeyAgreement);
                    self.operations.insert(Operation::Wrap);
                }
            }
        }
        self
    }

    /// Adds an operation not implied by the algorithms, e.g. [`Operation::Verify`].
    #[must_use]
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operations.insert(operation);
        self
    }

    /// Sets whether keys can leave the provider.
    #[must_use]
    pub const fn with_exportability(mut self, exportability: Exportability) -> Self {
        self.exportability = exportability;
        self
    }

    /// Sets whether the provider imports private keys.
    #[must_use]
    pub const fn with_import(mut self, importable: bool) -> Self {
        self.importable = importable;
        self
    }

    /// Sets whether keys live in hardware (an HSM, a token, a cloud HSM).
    #[must_use]
    pub const fn with_hardware_backing(mut self, hardware_backed: bool) -> Self {
        self.hardware_backed = hardware_backed;
        self
    }

    /// Sets where key material lives.
    #[must_use]
    pub const fn with_storage(mut self, storage: KeyStorage) -> Self {
        self.storage = storage;
        self
    }

    /// The JWS algorithms the provider signs with.
    #[must_use]
    pub const fn signing(&self) -> &BTreeSet<Algorithm> {
        &self.signing
    }

    /// The JWE key management algorithms the provider decrypts with.
    #[must_use]
    pub fn decryption(&self) -> &[KeyManagement] {
        &self.decryption
    }

    /// The operations the provider performs.
    #[must_use]
    pub const fn operations(&self) -> &BTreeSet<Operation> {
        &self.operations
    }

    /// The key types the provider generates.
    #[must_use]
    pub fn key_types(&self) -> BTreeSet<KeyType> {
        self.signing
            .iter()
            .map(|alg| KeyUsage::Sign(*alg))
            .chain(self.decryption.iter().map(|alg| KeyUsage::Decrypt(*alg)))
            .filter_map(KeyUsage::key_type)
            .collect()
    }

    /// Whether keys can leave the provider.
    #[must_use]
    pub const fn exportability(&self) -> Exportability {
        self.exportability
    }

    /// Whether the provider imports private keys.
    #[must_use]
    pub const fn importable(&self) -> bool {
        self.importable
    }

    /// Whether keys live in hardware.
    #[must_use]
    pub const fn hardware_backed(&self) -> bool {
        self.hardware_backed
    }

    /// Where key material lives.
    #[must_use]
    pub const fn storage(&self) -> KeyStorage {
        self.storage
    }

    /// Whether the provider can hold keys for `usage`.
    #[must_use]
    pub fn supports_usage(&self, usage: KeyUsage) -> bool {
        match usage {
            KeyUsage::Sign(alg) => self.signing.contains(&alg),
            KeyUsage::Decrypt(alg) => self.decryption.contains(&alg),
        }
    }

    /// Whether the provider meets `requirement`.
    #[must_use]
    pub fn supports(&self, requirement: &KeyRequirement) -> bool {
        self.supports_usage(requirement.usage)
            && (!requirement.non_exportable || self.exportability == Exportability::Never)
            && (!requirement.hardware_backed || self.hardware_backed)
            && (!requirement.importable || self.importable)
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::new()
    }
}

/// What a caller needs from a provider, for [`Capabilities::supports`] and [`select_provider`].
///
/// ```
/// use edk_core::jose::Algorithm;
/// use edk_kms::provider::{KeyRequirement, KeyUsage};
///
/// let requirement = KeyRequirement::new(KeyUsage::Sign(Algorithm::Es256)).non_exportable();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRequirement {
    usage: KeyUsage,
    non_exportable: bool,
    hardware_backed: bool,
    importable: bool,
}

impl KeyRequirement {
    /// A requirement for keys with `usage`, nothing else asked.
    #[must_use]
    pub const fn new(usage: KeyUsage) -> Self {
        Self {
            usage,
            non_exportable: false,
            hardware_backed: false,
            importable: false,
        }
    }

    /// Also require keys that can never leave the provider.
    #[must_use]
    pub const fn non_exportable(mut self) -> Self {
        self.non_exportable = true;
        self
    }

    /// Also require hardware-backed keys.
    #[must_use]
    pub const fn hardware_backed(mut self) -> Self {
        self.hardware_backed = true;
        self
    }

    /// Also require a provider that imports keys.
    #[must_use]
    pub const fn importable(mut self) -> Self {
        self.importable = true;
        self
    }

    /// The usage asked for.
    #[must_use]
    pub const fn usage(&self) -> KeyUsage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_validated() {
        for good in ["soft", "hsm-1", "a_b", "0"] {
            assert!(ProviderId::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Soft", "-x", "a b", "a.b", &"x".repeat(65)] {
            assert!(ProviderId::new(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ProviderId>("\"UPPER\"").is_err());
    }

    #[test]
    fn handles_round_trip_and_refuse_unknown_fields() {
        let handle = KeyHandle::new(
            ProviderId::new("soft").unwrap(),
            TenantId::generate(),
            Kid::new("abc").unwrap(),
            KeyUsage::Sign(Algorithm::Es256),
            "opaque".to_owned(),
        );
        let json = serde_json::to_value(&handle).unwrap();
        assert_eq!(json["usage"], serde_json::json!({"sign": "ES256"}));
        assert_eq!(
            serde_json::from_value::<KeyHandle>(json.clone()).unwrap(),
            handle
        );
        let mut extra = json;
        extra["x"] = serde_json::json!(1);
        assert!(serde_json::from_value::<KeyHandle>(extra).is_err());
        assert!(!format!("{handle:?}").contains("opaque"));
    }

    #[test]
    fn requirements_match_capabilities() {
        let soft = Capabilities::new()
            .with_signing([Algorithm::Es256])
            .with_exportability(Exportability::Exportable);
        let es256 = KeyRequirement::new(KeyUsage::Sign(Algorithm::Es256));
        assert!(soft.supports(&es256));
        assert!(!soft.supports(&es256.non_exportable()));
        assert!(!soft.supports(&es256.hardware_backed()));
        assert!(!soft.supports(&KeyRequirement::new(KeyUsage::Sign(Algorithm::Rs256))));
        assert_eq!(
            soft.operations().iter().copied().collect::<Vec<_>>(),
            [Operation::Sign]
        );
        let hsm = Capabilities::new()
            .with_signing([Algorithm::Es256])
            .with_decryption([KeyManagement::EcdhEs])
            .with_hardware_backing(true);
        assert!(hsm.supports(&es256.non_exportable().hardware_backed()));
        assert!(hsm.operations().contains(&Operation::KeyAgreement));
        assert_eq!(
            hsm.key_types().into_iter().collect::<Vec<_>>(),
            [KeyType::P256]
        );
    }
}
