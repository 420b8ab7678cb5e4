//! Software keys held wrapped under a key encryption key (KEK).
//!
//! Keys are generated with aws-lc-rs (through edk-core's [`SigningKey`] and
//! [`DecryptingKey`]). The private key is serialised as a private JWK and sealed with
//! AES-256-GCM under the current KEK, with a random 96-bit nonce and associated data that binds
//! the provider id, the tenant id, the key id, the usage and the KEK id. The sealed blob is the
//! handle's reference, so the KMS persists it with the rest of the handle; the provider itself
//! is stateless and the plaintext key exists only while a signer or decrypter is alive.
//!
//! KEK rotation: configure the new KEK as current and keep the old ones; handles sealed under
//! an old KEK still open, and [`SoftwareProvider::rewrap`] seals them again under the current
//! one.

use std::fmt;
use std::num::NonZero;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::agreement;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edk_core::jose::jwe::{Decrypter, DecryptingKey, KeyManagement};
use edk_core::jose::jwk::{EcCurve, PrivateParams, PublicParams};
use edk_core::jose::{Algorithm, JoseError, Jwk, Signer, SigningKey};
use edk_core::{IdError, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};
use crate::Error;

/// The version tag of the sealed-key format in a handle's reference.
const FORMAT: &str = "v1";
/// Room for the largest private JWK (RSA-2048 is about 1.7 kB) and the GCM tag, so that the
/// buffer holding plaintext key material never reallocates and leaves copies behind.
const PLAINTEXT_CAPACITY: usize = 8 * 1024;
const KEK_LEN: usize = 32;

/// Generates a fresh random KEK, base64-encoded, for configuration and tests.
///
/// # Errors
/// [`Error::Internal`] if the system random generator fails.
pub fn generate_kek() -> Result<SecretString, Error> {
    let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| Error::Random)?;
    Ok(SecretString::from(STANDARD.encode(bytes.as_ref())))
}

/// The id of a key encryption key: 1 to 64 ASCII letters, digits, `-` or `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct KekId(String);

impl KekId {
    /// Validates and wraps `value`.
    ///
    /// # Errors
    /// [`IdError`] when `value` is empty, too long or has other characters.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        const WHAT: &str = "KEK id";
        let value = value.into();
        if value.is_empty() {
            return Err(IdError::Empty { what: WHAT });
        }
        if value.len() > 64 {
            return Err(IdError::TooLong {
                what: WHAT,
                max: 64,
            });
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(IdError::Malformed {
                what: WHAT,
                reason: "only ASCII letters, digits, '-' and '_' are allowed",
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

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KekId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Where a KEK comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KekSource {
    /// The 32-byte key, base64 (standard alphabet).
    Key(SecretString),
    /// A file holding the base64 key (surrounding whitespace ignored), read when the provider
    /// is built.
    File(PathBuf),
}

/// One KEK of a [`SoftwareProviderConfig`].
#[derive(Clone, Debug)]
pub struct KekConfig {
    id: KekId,
    source: KekSource,
}

impl KekConfig {
    /// A KEK given inline, base64.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `key` is not the base64 of 32 bytes.
    pub fn key(id: KekId, key: SecretString) -> Result<Self, Error> {
        decode_kek(&key, "keks[].key")?;
        Ok(Self {
            id,
            source: KekSource::Key(key),
        })
    }

    /// A KEK read from a file when the provider is built.
    #[must_use]
    pub const fn file(id: KekId, path: PathBuf) -> Self {
        Self {
            id,
            source: KekSource::File(path),
        }
    }

    /// The KEK's id.
    #[must_use]
    pub const fn id(&self) -> &KekId {
        &self.id
    }
}

/// Configuration of a [`SoftwareProvider`]: its id, the current KEK that seals new keys, and
/// older KEKs that still open keys sealed before a rotation.
///
/// Deserialises from (YAML shown):
/// ```yaml
/// id: software
/// current_kek: k2
/// keks:
///   - { id: k2, key_file: /run/secrets/kms-kek-2 }
///   - { id: k1, key: "base64 of 32 bytes" }
/// ```
/// Unknown fields, duplicate KEK ids, a `current_kek` that is not listed, and a KEK with both
/// or neither of `key` and `key_file` are refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawSoftwareProviderConfig")]
pub struct SoftwareProviderConfig {
    id: ProviderId,
    current: KekId,
    keks: Vec<KekConfig>,
}

impl SoftwareProviderConfig {
    /// A configuration with one KEK, the current one.
    #[must_use]
    pub fn new(id: ProviderId, current: KekConfig) -> Self {
        Self {
            id,
            current: current.id.clone(),
            keks: vec![current],
        }
    }

    /// Adds an older KEK that still opens keys sealed under it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a KEK with this id is already configured.
    pub fn with_previous_kek(mut self, kek: KekConfig) -> Result<Self, Error> {
        if self.keks.iter().any(|known| known.id == kek.id) {
            return Err(Error::InvalidConfig {
                field: "keks[].id",
                reason: "is not unique",
            });
        }
        self.keks.push(kek);
        Ok(self)
    }

    /// The provider id.
    #[must_use]
    pub const fn id(&self) -> &ProviderId {
        &self.id
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSoftwareProviderConfig {
    /// The provider id.
    id: ProviderId,
    /// The KEK that seals new keys.
    current_kek: KekId,
    /// Every KEK, current and previous.
    keks: Vec<RawKek>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKek {
    id: KekId,
    key: Option<SecretString>,
    key_file: Option<PathBuf>,
}

impl TryFrom<RawSoftwareProviderConfig> for SoftwareProviderConfig {
    type Error = Error;

    fn try_from(raw: RawSoftwareProviderConfig) -> Result<Self, Error> {
        let mut keks = Vec::with_capacity(raw.keks.len());
        for kek in raw.keks {
            let kek = match (kek.key, kek.key_file) {
                (Some(key), None) => KekConfig::key(kek.id, key)?,
                (None, Some(path)) => KekConfig::file(kek.id, path),
                _ => {
                    return Err(Error::InvalidConfig {
                        field: "keks[]",
                        reason: "needs exactly one of `key` and `key_file`",
                    });
                }
            };
            if keks.iter().any(|known: &KekConfig| known.id == kek.id) {
                return Err(Error::InvalidConfig {
                    field: "keks[].id",
                    reason: "is not unique",
                });
            }
            keks.push(kek);
        }
        if !keks.iter().any(|kek| kek.id == raw.current_kek) {
            return Err(Error::InvalidConfig {
                field: "current_kek",
                reason: "names no configured KEK",
            });
        }
        Ok(Self {
            id: raw.id,
            current: raw.current_kek,
            keks,
        })
    }
}

struct Kek {
    id: KekId,
    key: LessSafeKey,
}

/// A [`KeyProvider`] with software keys sealed under a KEK; see the [module docs](self).
pub struct SoftwareProvider {
    id: ProviderId,
    capabilities: Capabilities,
    /// The current KEK is the first.
    keks: Vec<Kek>,
    rng: SystemRandom,
    generation: Semaphore,
}

impl SoftwareProvider {
    /// Builds the provider, reading KEK files.
    ///
    /// # Errors
    /// [`Error::SecretFile`] when a KEK file cannot be read, [`Error::InvalidConfig`] when a
    /// KEK is not the base64 of 32 bytes.
    pub fn new(config: SoftwareProviderConfig) -> Result<Self, Error> {
        let mut keks = Vec::with_capacity(config.keks.len());
        for kek in config.keks {
            let bytes = match &kek.source {
                KekSource::Key(key) => decode_kek(key, "keks[].key")?,
                KekSource::File(path) => {
                    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                        Error::SecretFile {
                            field: "keks[].key_file",
                            source,
                        }
                    })?);
                    decode_kek(&SecretString::from(text.trim()), "keks[].key_file")?
                }
            };
            let key = UnboundKey::new(&AES_256_GCM, bytes.as_ref())
                .map(LessSafeKey::new)
                .map_err(|_| Error::InvalidConfig {
                    field: "keks[]",
                    reason: "is not an AES-256 key",
                })?;
            let entry = Kek { id: kek.id, key };
            if entry.id == config.current {
                keks.insert(0, entry);
            } else {
                keks.push(entry);
            }
        }
        let parallelism = std::thread::available_parallelism().map_or(2, NonZero::get);
        Ok(Self {
            id: config.id,
            capabilities: Self::supported(),
            keks,
            rng: SystemRandom::new(),
            generation: Semaphore::new(parallelism),
        })
    }

    fn supported() -> Capabilities {
        Capabilities::new()
            .with_signing(Algorithm::ALL)
            .with_decryption(KeyManagement::ALL)
            .with_exportability(Exportability::Exportable)
            .with_import(true)
            .with_hardware_backing(false)
            .with_storage(KeyStorage::InHandle)
    }

    /// Whether `key` is sealed under an older KEK and should be [rewrapped](Self::rewrap).
    #[must_use]
    pub fn needs_rewrap(&self, key: &KeyHandle) -> bool {
        parse_reference(key.reference())
            .is_none_or(|sealed| Some(sealed.kek) != self.current().map(|kek| kek.id.as_str()))
    }

    /// Seals `key` again under the current KEK, returning the new handle to store in place of
    /// the old one. The key itself (and its `kid`) does not change.
    ///
    /// # Errors
    /// As [`KeyProvider::signer`]: [`Error::KeyNotFound`] for another tenant's or a tampered
    /// handle, [`Error::Unavailable`] when its KEK is no longer configured.
    pub fn rewrap(&self, tenant: &TenantId, key: &KeyHandle) -> Result<KeyHandle, Error> {
        let private = self.open(tenant, key)?;
        Ok(self.seal(tenant, key.usage(), &private)?.into_parts().0)
    }

    fn current(&self) -> Option<&Kek> {
        self.keks.first()
    }

    fn ensure_supported(&self, usage: KeyUsage) -> Result<(), Error> {
        if self.capabilities.supports_usage(usage) {
            Ok(())
        } else {
            Err(Error::UnsupportedUsage {
                provider: self.id.clone(),
                usage,
            })
        }
    }

    fn seal(
        &self,
        tenant: &TenantId,
        usage: KeyUsage,
        private: &Jwk,
    ) -> Result<ProviderKey, Error> {
        let kek = self
            .current()
            .ok_or_else(|| Error::unavailable(&self.id, "no key encryption key configured"))?;
        let public = private.to_public();
        let kid = Kid::new(public.thumbprint())?;
        let mut buffer = Zeroizing::new(Vec::with_capacity(PLAINTEXT_CAPACITY));
        serde_json::to_writer(&mut *buffer, private)
            .map_err(|err| Error::internal(&self.id, err))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| Error::Random)?;
        let aad = associated_data(&self.id, tenant, &kid, usage, &kek.id);
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                &mut *buffer,
            )
            .map_err(|_| Error::internal(&self.id, "sealing the key failed"))?;
        let reference = format!(
            "{FORMAT}.{}.{}.{}",
            kek.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(buffer.as_slice())
        );
        let handle = KeyHandle::new(self.id.clone(), *tenant, kid, usage, reference);
        ProviderKey::new(handle, &public)
    }

    /// Opens the private JWK sealed in `key`, after checking that the handle is `tenant`'s.
    fn open(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Jwk, Error> {
        key.check(&self.id, tenant)?;
        let not_found = || Error::not_found(&self.id);
        let sealed = parse_reference(key.reference()).ok_or_else(not_found)?;
        let kek = self
            .keks
            .iter()
            .find(|kek| kek.id.as_str() == sealed.kek)
            .ok_or_else(|| {
                Error::unavailable(&self.id, "the key's key encryption key is not configured")
            })?;
        let nonce = URL_SAFE_NO_PAD
            .decode(sealed.nonce)
            .ok()
            .and_then(|nonce| Nonce::try_assume_unique_for_key(&nonce).ok())
            .ok_or_else(not_found)?;
        let mut buffer = Zeroizing::new(Vec::with_capacity(PLAINTEXT_CAPACITY));
        URL_SAFE_NO_PAD
            .decode_vec(sealed.ciphertext, &mut buffer)
            .map_err(|_| not_found())?;
        let aad = associated_data(&self.id, tenant, key.kid(), key.usage(), &kek.id);
        let plaintext = kek
            .key
            .open_in_place(nonce, Aad::from(aad.as_slice()), &mut buffer)
            .map_err(|_| not_found())?;
        let private: Jwk =
            serde_json::from_slice(plaintext).map_err(|err| Error::internal(&self.id, err))?;
        if !private.is_private() || private.thumbprint() != key.kid().as_str() {
            return Err(Error::internal(
                &self.id,
                "the sealed key does not match its key id",
            ));
        }
        Ok(private)
    }

    fn jose_error(&self, err: JoseError) -> Error {
        Error::internal(&self.id, err)
    }
}

impl fmt::Debug for SoftwareProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareProvider")
            .field("id", &self.id)
            .field(
                "keks",
                &self
                    .keks
                    .iter()
                    .map(|kek| kek.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyProvider for SoftwareProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error> {
        self.ensure_supported(spec.usage)?;
        let usage = spec.usage;
        let private = {
            let _permit = self
                .generation
                .acquire()
                .await
                .map_err(|err| Error::internal(&self.id, err))?;
            tokio::task::spawn_blocking(move || generate_private_jwk(usage))
                .await
                .map_err(|err| Error::internal(&self.id, err))?
                .map_err(|err| self.jose_error(err))?
        };
        self.seal(tenant, usage, &private)
    }

    async fn import(
        &self,
        tenant: &TenantId,
        spec: &KeySpec,
        private_jwk: &Jwk,
    ) -> Result<ProviderKey, Error> {
        self.ensure_supported(spec.usage)?;
        let invalid = |_| Error::InvalidKey {
            reason: "not a private key for this usage",
        };
        if !private_jwk.is_private() {
            return Err(Error::InvalidKey {
                reason: "the JWK has no private part",
            });
        }
        let normalised = match spec.usage {
            KeyUsage::Sign(alg) => SigningKey::from_jwk(private_jwk, Some(alg))
                .and_then(|key| key.to_jwk())
                .map_err(invalid)?,
            KeyUsage::Decrypt(alg) => {
                let mut jwk = private_jwk.clone();
                jwk.alg = Some(alg.name().to_owned());
                let key = DecryptingKey::from_jwk(&jwk).map_err(invalid)?;
                if !key.supports(alg) {
                    return Err(Error::InvalidKey {
                        reason: "not a private key for this usage",
                    });
                }
                jwk
            }
        };
        let kid = normalised.thumbprint();
        self.seal(tenant, spec.usage, &normalised.with_kid(kid))
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let private = self.open(tenant, key)?;
        let KeyUsage::Sign(alg) = key.usage() else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "signing with a decryption key",
            });
        };
        let signer =
            SigningKey::from_jwk(&private, Some(alg)).map_err(|err| self.jose_error(err))?;
        Ok(Arc::new(signer))
    }

    async fn decrypter(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Arc<dyn Decrypter>, Error> {
        let private = self.open(tenant, key)?;
        if !matches!(key.usage(), KeyUsage::Decrypt(_)) {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "decryption with a signing key",
            });
        }
        let decrypter = DecryptingKey::from_jwk(&private).map_err(|err| self.jose_error(err))?;
        Ok(Arc::new(decrypter))
    }

    async fn agree(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
        peer: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let private = self.open(tenant, key)?;
        if !matches!(key.usage(), KeyUsage::Decrypt(alg) if crate::provider::is_ecdh(alg)) {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "key agreement with a key that is not an ECDH key",
            });
        }
        let (
            Some(PrivateParams::Ec { d }),
            PublicParams::Ec {
                crv: EcCurve::P256, ..
            },
        ) = (private.private(), private.params())
        else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "key agreement on this curve",
            });
        };
        let PublicParams::Ec {
            crv: EcCurve::P256,
            x,
            y,
        } = peer.params()
        else {
            return Err(Error::InvalidKey {
                reason: "the peer key is not a P-256 public key",
            });
        };
        let mut point = Vec::with_capacity(1 + x.len() + y.len());
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let own = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, d)
            .map_err(|_| Error::internal(&self.id, "the sealed key is not a P-256 key"))?;
        agreement::agree(
            &own,
            agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &point),
            Error::InvalidKey {
                reason: "the peer key is not a valid P-256 public key",
            },
            |z| Ok(Zeroizing::new(z.to_vec())),
        )
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        self.open(tenant, key).map(drop)
    }
}

fn generate_private_jwk(usage: KeyUsage) -> Result<Jwk, JoseError> {
    match usage {
        KeyUsage::Sign(alg) => SigningKey::generate(alg)?.to_jwk(),
        KeyUsage::Decrypt(KeyManagement::RsaOaep256) => Ok(SigningKey::generate(Algorithm::Rs256)?
            .to_jwk()?
            .with_alg(KeyManagement::RsaOaep256.name())),
        KeyUsage::Decrypt(alg) => DecryptingKey::generate(alg)?.to_jwk(),
    }
}

fn decode_kek(key: &SecretString, field: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = STANDARD
        .decode(key.expose_secret().trim())
        .map(Zeroizing::new)
        .map_err(|_| Error::InvalidConfig {
            field,
            reason: "is not base64",
        })?;
    if bytes.len() != KEK_LEN {
        return Err(Error::InvalidConfig {
            field,
            reason: "is not 32 bytes long",
        });
    }
    Ok(bytes)
}

struct Sealed<'a> {
    kek: &'a str,
    nonce: &'a str,
    ciphertext: &'a str,
}

fn parse_reference(reference: &str) -> Option<Sealed<'_>> {
    let mut parts = reference.split('.');
    let (Some(FORMAT), Some(kek), Some(nonce), Some(ciphertext), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some(Sealed {
        kek,
        nonce,
        ciphertext,
    })
}

/// The AEAD associated data: every field that names the key, length-prefixed.
fn associated_data(
    provider: &ProviderId,
    tenant: &TenantId,
    kid: &Kid,
    usage: KeyUsage,
    kek: &KekId,
) -> Vec<u8> {
    let tenant = tenant.to_string();
    let usage = usage.name();
    let mut aad = Vec::with_capacity(256);
    for part in [
        "edk-kms/software/v1",
        provider.as_str(),
        &tenant,
        kid.as_str(),
        &usage,
        kek.as_str(),
    ] {
        aad.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_json(extra: &str) -> String {
        let key = generate_kek().unwrap();
        format!(
            r#"{{"id":"soft","current_kek":"k1","keks":[{{"id":"k1","key":"{}"}}]{extra}}}"#,
            key.expose_secret()
        )
    }

    #[test]
    fn config_is_validated_when_deserialised() {
        assert!(serde_json::from_str::<SoftwareProviderConfig>(&config_json("")).is_ok());
        assert!(serde_json::from_str::<SoftwareProviderConfig>(&config_json(r#","x":1"#)).is_err());
        for bad in [
            r#"{"id":"soft","current_kek":"k2","keks":[{"id":"k1","key":"AAAA"}]}"#,
            r#"{"id":"soft","current_kek":"k1","keks":[{"id":"k1"}]}"#,
            r#"{"id":"soft","current_kek":"k1","keks":[{"id":"k1","key_file":"/x","key":"AAAA"}]}"#,
        ] {
            assert!(
                serde_json::from_str::<SoftwareProviderConfig>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn short_keks_are_refused_without_echoing_them() {
        let err =
            KekConfig::key(KekId::new("k").unwrap(), SecretString::from("c2hvcnQ=")).unwrap_err();
        assert!(!err.to_string().contains("c2hvcnQ"));
        assert!(format!("{err:?}").contains("32 bytes"));
    }

    #[test]
    fn associated_data_is_unambiguous() {
        let provider = ProviderId::new("soft").unwrap();
        let tenant = TenantId::generate();
        let usage = KeyUsage::Sign(Algorithm::Es256);
        let a = associated_data(
            &provider,
            &tenant,
            &Kid::new("ab").unwrap(),
            usage,
            &KekId::new("c").unwrap(),
        );
        let b = associated_data(
            &provider,
            &tenant,
            &Kid::new("a").unwrap(),
            usage,
            &KekId::new("bc").unwrap(),
        );
        assert_ne!(a, b);
    }
}
