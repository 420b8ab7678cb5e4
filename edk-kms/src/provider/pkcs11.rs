//! Keys on a PKCS#11 token (an HSM, or SoftHSM2 in tests), through `cryptoki`.
//!
//! - The token is found by its label, never by slot number (slot numbers change when tokens
//!   are added or re-initialised).
//! - Private keys are generated on the token as `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`
//!   and not `CKA_EXTRACTABLE`: they never leave it.
//! - Objects are named per tenant: `CKA_ID` is the tenant's 16 UUID bytes followed by 16
//!   random bytes, and `CKA_LABEL` is `edk:<tenant id>:<kid>`. Every lookup filters on both,
//!   so a handle presented for another tenant finds no object.
//! - ECDSA signs a SHA-2 digest computed here with raw `CKM_ECDSA` (which returns JOSE's
//!   `r||s`); RSA uses `CKM_SHA256_RSA_PKCS` and `CKM_SHA256_RSA_PKCS_PSS` (MGF1-SHA-256,
//!   32-byte salt); Ed25519 uses `CKM_EDDSA`; ECDH-ES JWE decryption uses `CKM_ECDH1_DERIVE`.
//!   What the token offers is read from its mechanism list when the provider connects.
//! - Every call runs in `spawn_blocking` on a session from a bounded pool; a semaphore caps
//!   the calls in flight at the pool size. A removed token, a wrong PIN or a failing device is
//!   [`Error::Unavailable`]; there is no fallback.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use edk_core::jose::jwe::{self, Decrypter, JweHeader, KeyManagement};
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use edk_core::jose::{Algorithm, JoseError, Jwk, SignError, Signer};
use edk_core::{ErrorKind, HasKind as _, Kid, TenantId};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};
use crate::Error;

const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ID_RANDOM_LEN: usize = 16;

/// Configuration of a [`Pkcs11Provider`].
///
/// Deserialises from (YAML shown), refusing unknown fields:
/// ```yaml
/// id: hsm
/// module: /usr/lib/softhsm/libsofthsm2.so
/// token_label: edk
/// pin_file: /run/secrets/hsm-pin   # or `pin: "..."`
/// max_sessions: 4                  # optional, the default
/// hardware_backed: true            # optional, the default
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawPkcs11ProviderConfig")]
pub struct Pkcs11ProviderConfig {
    id: ProviderId,
    module: PathBuf,
    token_label: String,
    pin: PinSource,
    max_sessions: usize,
    hardware_backed: bool,
}

#[derive(Clone, Debug)]
enum PinSource {
    Pin(SecretString),
    File(PathBuf),
}

impl Pkcs11ProviderConfig {
    /// The default number of sessions (and of calls in flight).
    pub const DEFAULT_MAX_SESSIONS: usize = 4;

    /// A configuration for the token labelled `token_label` in the PKCS#11 `module`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the label is empty or longer than 32 bytes.
    pub fn new(
        id: ProviderId,
        module: PathBuf,
        token_label: impl Into<String>,
        pin: SecretString,
    ) -> Result<Self, Error> {
        let token_label = token_label.into();
        check_label(&token_label)?;
        Ok(Self {
            id,
            module,
            token_label,
            pin: PinSource::Pin(pin),
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
            hardware_backed: true,
        })
    }

    /// Sets the session pool size (at least 1).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Result<Self, Error> {
        if max_sessions == 0 {
            return Err(Error::InvalidConfig {
                field: "max_sessions",
                reason: "must be at least 1",
            });
        }
        self.max_sessions = max_sessions;
        Ok(self)
    }

    /// Declares whether the token is hardware (the default) or a software token such as
    /// SoftHSM2; the flag is reported in [`Capabilities::hardware_backed`].
    #[must_use]
    pub const fn with_hardware_backing(mut self, hardware_backed: bool) -> Self {
        self.hardware_backed = hardware_backed;
        self
    }

    /// The provider id.
    #[must_use]
    pub const fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The path of the PKCS#11 module.
    #[must_use]
    pub fn module_path(&self) -> &std::path::Path {
        &self.module
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPkcs11ProviderConfig {
    id: ProviderId,
    module: PathBuf,
    token_label: String,
    pin: Option<SecretString>,
    pin_file: Option<PathBuf>,
    max_sessions: Option<usize>,
    hardware_backed: Option<bool>,
}

impl TryFrom<RawPkcs11ProviderConfig> for Pkcs11ProviderConfig {
    type Error = Error;

    fn try_from(raw: RawPkcs11ProviderConfig) -> Result<Self, Error> {
        check_label(&raw.token_label)?;
        let pin = match (raw.pin, raw.pin_file) {
            (Some(pin), None) => PinSource::Pin(pin),
            (None, Some(path)) => PinSource::File(path),
            _ => {
                return Err(Error::InvalidConfig {
                    field: "pin",
                    reason: "needs exactly one of `pin` and `pin_file`",
                });
            }
        };
        let config = Self {
            id: raw.id,
            module: raw.module,
            token_label: raw.token_label,
            pin,
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
            hardware_backed: raw.hardware_backed.unwrap_or(true),
        };
        match raw.max_sessions {
            Some(max) => config.with_max_sessions(max),
            None => Ok(config),
        }
    }
}

fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() || label.len() > 32 {
        return Err(Error::InvalidConfig {
            field: "token_label",
            reason: "must be 1 to 32 bytes long",
        });
    }
    Ok(())
}

/// A [`KeyProvider`] over one PKCS#11 token; see the [module docs](self).
pub struct Pkcs11Provider {
    id: ProviderId,
    capabilities: Capabilities,
    token: Arc<Token>,
}

impl Pkcs11Provider {
    /// Loads the module, finds the token by label, logs in and reads the mechanism list, in a
    /// blocking task.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the module cannot be loaded, no token has the label, or the
    /// PIN is refused; [`Error::SecretFile`] when the PIN file cannot be read.
    pub async fn connect(config: Pkcs11ProviderConfig) -> Result<Self, Error> {
        let id = config.id.clone();
        tokio::task::spawn_blocking(move || Self::connect_blocking(config))
            .await
            .map_err(|err| Error::internal(&id, err))?
    }

    /// As [`connect`](Self::connect), on the calling thread: for startup code and for
    /// callers that must control the thread the module is initialised on.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_blocking(config: Pkcs11ProviderConfig) -> Result<Self, Error> {
        let id = config.id;
        let pin = match config.pin {
            PinSource::Pin(pin) => pin,
            PinSource::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    Error::SecretFile {
                        field: "pin_file",
                        source,
                    }
                })?);
                SecretString::from(text.trim())
            }
        };
        let unavailable = |err: CkError| Error::unavailable(&id, err);
        let ctx = Pkcs11::new(&config.module).map_err(unavailable)?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(err) => return Err(unavailable(err)),
        }
        let slot = find_slot(&ctx, &config.token_label)
            .map_err(unavailable)?
            .ok_or_else(|| Error::unavailable(&id, "no token with the configured label"))?;
        let mechanisms = ctx.get_mechanism_list(slot).map_err(unavailable)?;
        let serial = ctx
            .get_token_info(slot)
            .map_err(unavailable)?
            .serial_number()
            .to_owned();
        let token = Arc::new(Token {
            provider: id.clone(),
            ctx,
            slot,
            label: config.token_label,
            serial,
            pin,
            idle: Mutex::new(Vec::with_capacity(config.max_sessions)),
            permits: Semaphore::new(config.max_sessions),
            rng: SystemRandom::new(),
        });
        // Log in now, so that a wrong PIN fails at startup rather than at first use.
        let session = token.open_session().map_err(|err| token.classify(err))?;
        token.put_back(session);
        Ok(Self {
            capabilities: capabilities(&mechanisms, config.hardware_backed),
            id,
            token,
        })
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

    /// Finds the private key object of `key`, after checking that it is `tenant`'s.
    async fn private_key(&self, tenant: &TenantId, key: &KeyHandle) -> Result<ObjectHandle, Error> {
        key.check(&self.id, tenant)?;
        let object_id = decode_object_id(key.reference())
            .filter(|id| id.starts_with(tenant.as_uuid().as_bytes()))
            .ok_or_else(|| Error::not_found(&self.id))?;
        let label = object_label(tenant, key.kid());
        let token = Arc::clone(&self.token);
        self.token
            .run(move |session| {
                let found = session.find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Token(true),
                    Attribute::Id(object_id),
                    Attribute::Label(label.into_bytes()),
                ])?;
                Ok(match found.as_slice() {
                    [object] => Ok(*object),
                    _ if token.is_connected() => Err(Error::not_found(&token.provider)),
                    _ => Err(token.gone()),
                })
            })
            .await?
    }
}

impl fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("id", &self.id)
            .field("slot", &self.token.slot)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyProvider for Pkcs11Provider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error> {
        self.ensure_supported(spec.usage)?;
        let mut object_id = tenant.as_uuid().as_bytes().to_vec();
        let mut random = [0u8; ID_RANDOM_LEN];
        self.token
            .rng
            .fill(&mut random)
            .map_err(|_| Error::Random)?;
        object_id.extend_from_slice(&random);
        let usage = spec.usage;
        let tenant_id = *tenant;
        let id_for_token = object_id.clone();
        let public = self
            .token
            .run(move |session| generate_on_token(session, &tenant_id, usage, id_for_token))
            .await?;
        let public = public.ok_or_else(|| Error::internal(&self.id, "unexpected public key"))?;
        let kid = Kid::new(public.thumbprint())?;
        let handle = KeyHandle::new(
            self.id.clone(),
            *tenant,
            kid,
            usage,
            encode_object_id(&object_id),
        );
        ProviderKey::new(handle, &public)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let object = self.private_key(tenant, key).await?;
        let KeyUsage::Sign(alg) = key.usage() else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "signing with a decryption key",
            });
        };
        Ok(Arc::new(Pkcs11Signer {
            token: Arc::clone(&self.token),
            object,
            alg,
            kid: key.kid().clone(),
        }))
    }

    async fn decrypter(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Arc<dyn Decrypter>, Error> {
        let object = self.private_key(tenant, key).await?;
        let KeyUsage::Decrypt(alg) = key.usage() else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "decryption with a signing key",
            });
        };
        Ok(Arc::new(Pkcs11Decrypter {
            token: Arc::clone(&self.token),
            object,
            alg,
            kid: key.kid().clone(),
        }))
    }

    async fn agree(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
        peer: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let object = self.private_key(tenant, key).await?;
        if !matches!(key.usage(), KeyUsage::Decrypt(alg) if crate::provider::is_ecdh(alg)) {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "key agreement with a key that is not an ECDH key",
            });
        }
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
        derive_z(&self.token, object, point)
            .await?
            .ok_or(Error::InvalidKey {
                reason: "the peer key is not a valid P-256 public key",
            })
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        let private = self.private_key(tenant, key).await?;
        let object_id = decode_object_id(key.reference()).unwrap_or_default();
        let label = object_label(tenant, key.kid());
        self.token
            .run(move |session| {
                let publics = session.find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Id(object_id),
                    Attribute::Label(label.into_bytes()),
                ])?;
                session.destroy_object(private)?;
                for public in publics {
                    session.destroy_object(public)?;
                }
                Ok(())
            })
            .await
    }
}

/// The token, its login state and its session pool. Shared by the provider and its signers.
struct Token {
    provider: ProviderId,
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    /// The serial number at connection: a re-initialised token has another.
    serial: String,
    pin: SecretString,
    idle: Mutex<Vec<Session>>,
    permits: Semaphore,
    rng: SystemRandom,
}

impl Token {
    /// Runs `op` on a pooled session in a blocking task, with at most `max_sessions` in flight.
    async fn run<T, F>(self: &Arc<Self>, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Session) -> Result<T, CkError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| Error::internal(&self.provider, err))?;
        let token = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let session = token.session().map_err(|err| token.classify(err))?;
            match op(&session) {
                Ok(value) => {
                    token.put_back(session);
                    Ok(value)
                }
                Err(err) => {
                    let mut err = token.classify(err);
                    if err.kind() == ErrorKind::NotFound && !token.is_connected() {
                        err = token.gone();
                    }
                    if err.kind() != ErrorKind::Unavailable {
                        token.put_back(session);
                    }
                    Err(err)
                }
            }
        })
        .await
        .map_err(|err| Error::internal(&self.provider, err))?
    }

    /// Whether the token we logged in to is still in its slot: a missing object on a removed
    /// or re-initialised token is the token's absence, not the key's.
    fn is_connected(&self) -> bool {
        find_slot(&self.ctx, &self.label).is_ok_and(|slot| slot == Some(self.slot))
            && self
                .ctx
                .get_token_info(self.slot)
                .is_ok_and(|info| info.serial_number() == self.serial)
    }

    fn gone(&self) -> Error {
        Error::unavailable(&self.provider, "the token was removed or replaced")
    }

    fn session(&self) -> Result<Session, CkError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(session) => Ok(session),
            None => self.open_session(),
        }
    }

    fn open_session(&self) -> Result<Session, CkError> {
        let session = self.ctx.open_rw_session(self.slot)?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(err) => Err(err),
        }
    }

    fn put_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(session);
    }

    fn classify(&self, err: CkError) -> Error {
        match &err {
            CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _) => {
                Error::not_found(&self.provider)
            }
            CkError::Pkcs11(
                RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::KeyTypeInconsistent
                | RvError::CurveNotSupported
                | RvError::KeyFunctionNotPermitted,
                _,
            ) => Error::UnsupportedOperation {
                provider: self.provider.clone(),
                operation: "this operation on this token",
            },
            CkError::Pkcs11(
                RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinExpired
                | RvError::PinLocked
                | RvError::PinLenRange
                | RvError::UserNotLoggedIn
                | RvError::UserPinNotInitialized
                | RvError::SlotIdInvalid
                | RvError::GeneralError
                | RvError::CryptokiNotInitialized,
                _,
            )
            | CkError::LibraryLoading(_) => Error::unavailable(&self.provider, err),
            _ => Error::internal(&self.provider, err),
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.idle
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

struct Pkcs11Signer {
    token: Arc<Token>,
    object: ObjectHandle,
    alg: Algorithm,
    kid: Kid,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("provider", &self.token.provider)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Signer for Pkcs11Signer {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let alg = self.alg;
        let (input, expected_len) = match alg {
            Algorithm::Es256 => (
                digest::digest(&digest::SHA256, message).as_ref().to_vec(),
                Some(64),
            ),
            Algorithm::Es384 => (
                digest::digest(&digest::SHA384, message).as_ref().to_vec(),
                Some(96),
            ),
            Algorithm::EdDsa | Algorithm::Ed25519 => (message.to_vec(), Some(64)),
            _ => (message.to_vec(), None),
        };
        let object = self.object;
        let signature = self
            .token
            .run(move |session| {
                let mechanism = match alg {
                    Algorithm::Es256 | Algorithm::Es384 => Mechanism::Ecdsa,
                    Algorithm::EdDsa | Algorithm::Ed25519 => {
                        Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                    }
                    Algorithm::Ps256 => Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                        hash_alg: MechanismType::SHA256,
                        mgf: PkcsMgfType::MGF1_SHA256,
                        s_len: 32.into(),
                    }),
                    _ => Mechanism::Sha256RsaPkcs,
                };
                session.sign(&mechanism, object, &input)
            })
            .await
            .map_err(|err| SignError::new(err.kind(), err))?;
        if expected_len.is_some_and(|len| signature.len() != len) {
            return Err(SignError::new(
                ErrorKind::Internal,
                "the token returned a signature of the wrong length",
            ));
        }
        Ok(signature)
    }
}

struct Pkcs11Decrypter {
    token: Arc<Token>,
    object: ObjectHandle,
    alg: KeyManagement,
    kid: Kid,
}

impl fmt::Debug for Pkcs11Decrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Decrypter")
            .field("provider", &self.token.provider)
            .field("alg", &self.alg.name())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Decrypter for Pkcs11Decrypter {
    fn supports(&self, alg: KeyManagement) -> bool {
        alg == self.alg
    }

    async fn content_key(
        &self,
        header: &JweHeader,
        encrypted_key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        if header.alg != self.alg {
            return Err(JoseError::DecryptionFailed);
        }
        let Some(PublicParams::Ec {
            crv: EcCurve::P256,
            x,
            y,
        }) = header.epk.as_ref().map(Jwk::params)
        else {
            return Err(JoseError::DecryptionFailed);
        };
        let mut peer = Vec::with_capacity(1 + x.len() + y.len());
        peer.push(0x04);
        peer.extend_from_slice(x);
        peer.extend_from_slice(y);
        let z = derive_z(&self.token, self.object, peer)
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::Unavailable | ErrorKind::Internal => {
                    let kind = err.kind();
                    JoseError::KeySource(Box::new(err), kind)
                }
                _ => JoseError::DecryptionFailed,
            })?
            .ok_or(JoseError::DecryptionFailed)?;
        jwe::ecdh_es_content_key(&z, header, encrypted_key)
    }
}

/// `CKM_ECDH1_DERIVE` with the null KDF: the raw shared secret of `object` and `peer` (an
/// uncompressed SEC1 point), read from a session object that is destroyed at once.
async fn derive_z(
    token: &Arc<Token>,
    object: ObjectHandle,
    peer: Vec<u8>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    {
        token
            .run(move |session| {
                let params = Ecdh1DeriveParams::new(EcKdf::null(), &peer);
                let derived = session.derive_key(
                    &Mechanism::Ecdh1Derive(params),
                    object,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(false),
                        Attribute::Sensitive(false),
                        Attribute::Extractable(true),
                    ],
                )?;
                let value = session.get_attributes(derived, &[AttributeType::Value]);
                let destroyed = session.destroy_object(derived);
                let z = value?.into_iter().find_map(|attribute| match attribute {
                    Attribute::Value(z) => Some(Zeroizing::new(z)),
                    _ => None,
                });
                destroyed?;
                Ok(z)
            })
            .await
    }
}

fn capabilities(mechanisms: &[MechanismType], hardware_backed: bool) -> Capabilities {
    let has = |mechanism: MechanismType| mechanisms.contains(&mechanism);
    let mut signing = Vec::new();
    let mut decryption = Vec::new();
    if has(MechanismType::ECC_KEY_PAIR_GEN) && has(MechanismType::ECDSA) {
        signing.extend([Algorithm::Es256, Algorithm::Es384]);
    }
    if has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && has(MechanismType::EDDSA) {
        signing.extend([Algorithm::EdDsa, Algorithm::Ed25519]);
    }
    if has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
        if has(MechanismType::SHA256_RSA_PKCS) {
            signing.push(Algorithm::Rs256);
        }
        if has(MechanismType::SHA256_RSA_PKCS_PSS) {
            signing.push(Algorithm::Ps256);
        }
    }
    if has(MechanismType::ECC_KEY_PAIR_GEN) && has(MechanismType::ECDH1_DERIVE) {
        decryption.extend([
            KeyManagement::EcdhEs,
            KeyManagement::EcdhEsA128Kw,
            KeyManagement::EcdhEsA256Kw,
        ]);
    }
    Capabilities::new()
        .with_signing(signing)
        .with_decryption(decryption)
        .with_exportability(Exportability::Never)
        .with_import(false)
        .with_hardware_backing(hardware_backed)
        .with_storage(KeyStorage::InProvider)
}

fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, CkError> {
    for slot in ctx.get_slots_with_token()? {
        if ctx.get_token_info(slot)?.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Generates a key pair on the token, names it for the tenant, and returns its public JWK.
/// On any failure after generation the new objects are destroyed.
fn generate_on_token(
    session: &Session,
    tenant: &TenantId,
    usage: KeyUsage,
    object_id: Vec<u8>,
) -> Result<Option<Jwk>, CkError> {
    let pending = format!("edk:{tenant}:pending").into_bytes();
    let mut public_template = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Id(object_id.clone()),
        Attribute::Label(pending.clone()),
    ];
    let mut private_template = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Id(object_id),
        Attribute::Label(pending),
    ];
    let signing = matches!(usage, KeyUsage::Sign(_));
    if signing {
        public_template.push(Attribute::Verify(true));
        private_template.push(Attribute::Sign(true));
    } else {
        private_template.push(Attribute::Derive(true));
    }
    let mechanism = match usage {
        KeyUsage::Sign(Algorithm::Rs256 | Algorithm::Ps256) => {
            public_template.extend([
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyUsage::Sign(Algorithm::EdDsa | Algorithm::Ed25519) => {
            public_template.push(Attribute::EcParams(ED25519_OID.to_vec()));
            Mechanism::EccEdwardsKeyPairGen
        }
        KeyUsage::Sign(Algorithm::Es384) => {
            public_template.push(Attribute::EcParams(P384_OID.to_vec()));
            Mechanism::EccKeyPairGen
        }
        _ => {
            public_template.push(Attribute::EcParams(P256_OID.to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    let (public, private) =
        session.generate_key_pair(&mechanism, &public_template, &private_template)?;
    let named = public_jwk(session, public, usage).and_then(|jwk| {
        let Some(jwk) = jwk else {
            return Ok(None);
        };
        let label = object_label(
            tenant,
            &Kid::new(jwk.thumbprint()).map_err(|_| CkError::InvalidValue)?,
        );
        for object in [public, private] {
            session.update_attributes(object, &[Attribute::Label(label.clone().into_bytes())])?;
        }
        Ok(Some(jwk))
    });
    if !matches!(named, Ok(Some(_))) {
        let _ = session.destroy_object(private);
        let _ = session.destroy_object(public);
    }
    named
}

fn public_jwk(
    session: &Session,
    public: ObjectHandle,
    usage: KeyUsage,
) -> Result<Option<Jwk>, CkError> {
    let rsa = matches!(usage, KeyUsage::Sign(Algorithm::Rs256 | Algorithm::Ps256));
    let wanted = if rsa {
        vec![AttributeType::Modulus, AttributeType::PublicExponent]
    } else {
        vec![AttributeType::EcPoint]
    };
    let attributes = session.get_attributes(public, &wanted)?;
    let mut modulus = None;
    let mut exponent = None;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::Modulus(n) => modulus = Some(n),
            Attribute::PublicExponent(e) => exponent = Some(e),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let params = if rsa {
        let (Some(n), Some(e)) = (modulus, exponent) else {
            return Ok(None);
        };
        PublicParams::Rsa {
            n: strip_leading_zeros(n),
            e: strip_leading_zeros(e),
        }
    } else {
        let Some(point) = point.as_deref().and_then(der_octet_string) else {
            return Ok(None);
        };
        match usage {
            KeyUsage::Sign(Algorithm::EdDsa | Algorithm::Ed25519) if point.len() == 32 => {
                PublicParams::Okp {
                    crv: OkpCurve::Ed25519,
                    x: point.to_vec(),
                }
            }
            _ => {
                let crv = if usage == KeyUsage::Sign(Algorithm::Es384) {
                    EcCurve::P384
                } else {
                    EcCurve::P256
                };
                let Some(coordinates) = point
                    .strip_prefix(&[0x04])
                    .filter(|c| c.len() == 2 * crv.coordinate_len())
                else {
                    return Ok(None);
                };
                let (x, y) = coordinates.split_at(crv.coordinate_len());
                PublicParams::Ec {
                    crv,
                    x: x.to_vec(),
                    y: y.to_vec(),
                }
            }
        }
    };
    Ok(Some(Jwk::from_public(params)))
}

/// The contents of a DER OCTET STRING (`CKA_EC_POINT`), short or one-byte long form.
fn der_octet_string(der: &[u8]) -> Option<&[u8]> {
    match der {
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => Some(rest),
        [0x04, len, rest @ ..] if *len < 0x80 && usize::from(*len) == rest.len() => Some(rest),
        _ => None,
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros.min(bytes.len().saturating_sub(1)));
    bytes
}

fn object_label(tenant: &TenantId, kid: &Kid) -> String {
    format!("edk:{tenant}:{kid}")
}

fn encode_object_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_object_id(reference: &str) -> Option<Vec<u8>> {
    if reference.len() != 2 * (16 + ID_RANDOM_LEN) || !reference.is_ascii() {
        return None;
    }
    (0..reference.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(reference.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_and_refuse_garbage() {
        let id: Vec<u8> = (0u8..32).collect();
        assert_eq!(decode_object_id(&encode_object_id(&id)), Some(id));
        assert_eq!(decode_object_id("zz"), None);
        assert_eq!(decode_object_id(&"g".repeat(64)), None);
    }

    #[test]
    fn ec_points_are_unwrapped_from_der() {
        assert_eq!(
            der_octet_string(&[0x04, 0x02, 0xaa, 0xbb]),
            Some(&[0xaa, 0xbb][..])
        );
        let long: Vec<u8> = [0x04, 0x81, 0x81].into_iter().chain([7; 0x81]).collect();
        assert_eq!(der_octet_string(&long).map(<[u8]>::len), Some(0x81));
        assert_eq!(der_octet_string(&[0x04, 0x03, 0xaa]), None);
    }

    #[test]
    fn pin_and_pin_file_are_exclusive_and_unknown_fields_refused() {
        let ok = r#"{"id":"hsm","module":"/m.so","token_label":"t","pin":"1234"}"#;
        let config: Pkcs11ProviderConfig = serde_json::from_str(ok).unwrap();
        assert!(!format!("{config:?}").contains("1234"));
        for bad in [
            r#"{"id":"hsm","module":"/m.so","token_label":"t"}"#,
            r#"{"id":"hsm","module":"/m.so","token_label":"t","pin":"1","pin_file":"/p"}"#,
            r#"{"id":"hsm","module":"/m.so","token_label":"t","pin":"1","slot":0}"#,
            r#"{"id":"hsm","module":"/m.so","token_label":"","pin":"1"}"#,
            r#"{"id":"hsm","module":"/m.so","token_label":"t","pin":"1","max_sessions":0}"#,
        ] {
            assert!(
                serde_json::from_str::<Pkcs11ProviderConfig>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
