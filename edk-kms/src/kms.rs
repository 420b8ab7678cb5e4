//! The [`Kms`] trait that runtime services call, and the types of its key model.
//!
//! Keys are reached through aliases, `(tenant, service, purpose)`: an alias names the current
//! version of a key and keeps every earlier version, each with its own kid (the RFC 7638
//! thumbprint of its public key, which never changes for a key). Rotation adds a version;
//! earlier versions stay verifiable for the alias's overlap and then retire.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, Jwk, JwkSet, KeyResolver, Signer};
use edk_core::{ErrorKind, HasKind, IdError, Kid};
use edk_tenancy::TenantContext;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::Error;
use crate::provider::{KeySpec, KeyUsage, ProviderId};

/// The well-known services of key aliases.
pub mod service {
    /// The credential issuer.
    pub const ISSUER: &str = "issuer";
    /// The verifier.
    pub const VERIFIER: &str = "verifier";
    /// The authorization server.
    pub const AS: &str = "as";
    /// The DID service.
    pub const DID: &str = "did";
    /// The audit log.
    pub const AUDIT: &str = "audit";
}

/// The well-known purposes of key aliases.
pub mod purpose {
    /// Signing credentials.
    pub const CREDENTIAL_SIGNING: &str = "credential-signing";
    /// Signing OpenID4VP request objects.
    pub const REQUEST_OBJECT_SIGNING: &str = "request-object-signing";
    /// Decrypting encrypted authorization responses.
    pub const REQUEST_DECRYPTION: &str = "request-decryption";
    /// Signing access tokens.
    pub const ACCESS_TOKEN_SIGNING: &str = "access-token-signing";
    /// Signing status list tokens.
    pub const STATUS_LIST_SIGNING: &str = "status-list-signing";
    /// Signing DID document updates (did:webvh proofs).
    pub const DID_UPDATE: &str = "did-update";
    /// Signing audit chain checkpoints.
    pub const AUDIT_CHECKPOINT: &str = "audit-checkpoint";
    /// Signing a runtime service's own service JWTs (`<service>.service-identity`, kept in
    /// the platform's operator realm): reserved for the service its first part names.
    pub const SERVICE_IDENTITY: &str = "service-identity";
}

/// A key alias: the `service` and `purpose` of a tenant's key, written `service.purpose`.
///
/// Both parts are 1 to 64 characters of lower-case ASCII letters, digits and `-`, starting with
/// a letter. The `.` keeps an alias apart from a kid (a base64url thumbprint has none).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyAlias {
    service: String,
    purpose: String,
}

impl KeyAlias {
    /// The alias of `service` and `purpose`.
    ///
    /// # Errors
    /// [`IdError`] when either part is malformed.
    pub fn new(service: &str, purpose: &str) -> Result<Self, IdError> {
        for part in [service, purpose] {
            let valid = (1..=64).contains(&part.len())
                && part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(IdError::Malformed {
                    what: "key alias",
                    reason: "each part must be 1 to 64 of a-z, 0-9 and '-', starting with a letter",
                });
            }
        }
        Ok(Self {
            service: service.to_owned(),
            purpose: purpose.to_owned(),
        })
    }

    /// The service part.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The purpose part.
    #[must_use]
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
}

impl fmt::Display for KeyAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.purpose)
    }
}

impl fmt::Debug for KeyAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyAlias({self})")
    }
}

impl FromStr for KeyAlias {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, purpose) = s.split_once('.').ok_or(IdError::Malformed {
            what: "key alias",
            reason: "expected `service.purpose`",
        })?;
        Self::new(service, purpose)
    }
}

impl Serialize for KeyAlias {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyAlias {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A key named by its alias (the current version) or by the kid of one version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// An alias; operations that create signatures use its active version.
    Alias(KeyAlias),
    /// One version, by kid.
    Kid(Kid),
}

impl FromStr for KeyRef {
    type Err = IdError;

    /// Parses `service.purpose` as an alias and anything else as a kid.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('.') {
            s.parse().map(Self::Alias)
        } else {
            Kid::new(s).map(Self::Kid)
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alias(alias) => alias.fmt(f),
            Self::Kid(kid) => f.write_str(kid.as_str()),
        }
    }
}

impl From<KeyAlias> for KeyRef {
    fn from(alias: KeyAlias) -> Self {
        Self::Alias(alias)
    }
}

impl From<Kid> for KeyRef {
    fn from(kid: Kid) -> Self {
        Self::Kid(kid)
    }
}

/// The lifecycle state of one key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Created but not yet used to sign; published in the JWKS so verifiers can fetch it
    /// before the switch.
    PreActive,
    /// The version that signs, decrypts and agrees keys.
    Active,
    /// Verifies (and decrypts) only, until its overlap ends.
    Retired,
    /// Gone: its key material is destroyed and it is out of every JWKS.
    Destroyed,
}

impl KeyState {
    /// The state's name as stored and shown: `pre-active`, `active`, `retired`, `destroyed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PreActive => "pre-active",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Destroyed => "destroyed",
        }
    }
}

/// How an alias rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RotationPolicy {
    /// How long a version stays verifiable after it is replaced, in seconds.
    pub overlap_secs: u64,
    /// Rotate automatically when the active version is this old, in seconds; `None` rotates
    /// only on request.
    pub period_secs: Option<u64>,
    /// With a period: stage the next version as pre-active this many seconds before the
    /// scheduled rotation, so that it is in the alias's JWKS before it signs; 0 stages
    /// nothing.
    #[serde(default)]
    pub pre_active_secs: u64,
}

impl RotationPolicy {
    /// Manual rotation with `overlap_secs` of overlap.
    #[must_use]
    pub const fn manual(overlap_secs: u64) -> Self {
        Self {
            overlap_secs,
            period_secs: None,
            pre_active_secs: 0,
        }
    }

    /// Rotation every `period_secs`, with `overlap_secs` of overlap.
    #[must_use]
    pub const fn every(period_secs: u64, overlap_secs: u64) -> Self {
        Self {
            overlap_secs,
            period_secs: Some(period_secs),
            pre_active_secs: 0,
        }
    }

    /// Stages the next version as pre-active `pre_active_secs` before each scheduled
    /// rotation (see [`LocalKms::rotate_due`](crate::LocalKms::rotate_due)).
    #[must_use]
    pub const fn with_pre_activation(mut self, pre_active_secs: u64) -> Self {
        self.pre_active_secs = pre_active_secs;
        self
    }
}

impl Default for RotationPolicy {
    /// Manual rotation with one day of overlap.
    fn default() -> Self {
        Self::manual(86_400)
    }
}

/// One version of an alias's key, as stored in `key_reference` (never with key material).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyVersion {
    /// The version number, from 1.
    pub version: u32,
    /// The RFC 7638 thumbprint of the public key.
    pub kid: Kid,
    /// The provider holding the key; `None` for a registered external public key.
    pub provider: Option<ProviderId>,
    /// The public key, with `kid`, `alg` and `use` set.
    pub public_jwk: Jwk,
    /// The lifecycle state.
    pub state: KeyState,
    /// When the version was created.
    pub created_at: DateTime<Utc>,
    /// When it became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it was retired.
    pub retired_at: Option<DateTime<Utc>>,
    /// Until when a retired version verifies.
    pub verify_until: Option<DateTime<Utc>>,
    /// When it was destroyed.
    pub destroyed_at: Option<DateTime<Utc>>,
}

/// An alias with its key's versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The alias.
    pub alias: KeyAlias,
    /// What the key is for.
    pub usage: KeyUsage,
    /// The provider new versions are made in; `None` for registered external keys.
    pub provider: Option<ProviderId>,
    /// The rotation policy.
    pub rotation: RotationPolicy,
    /// Whether the alias holds an externally managed public key (verify only).
    pub external: bool,
    /// Every version, newest first.
    pub versions: Vec<KeyVersion>,
}

impl KeyInfo {
    /// The active version, if any.
    #[must_use]
    pub fn active(&self) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.state == KeyState::Active)
    }
}

/// Why an alias rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationReason {
    /// Somebody asked for it.
    Manual,
    /// The alias's policy said so.
    Scheduled,
}

/// One rotation of an alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RotationRecord {
    /// The alias.
    pub alias: KeyAlias,
    /// The version that was active before, if any.
    pub from_version: Option<u32>,
    /// The new version.
    pub to_version: u32,
    /// Why.
    pub reason: RotationReason,
    /// Who asked for it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A request for a new alias with a freshly generated key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewKey {
    /// The alias to create.
    pub alias: KeyAlias,
    /// The kind of key.
    pub spec: KeySpec,
    /// The provider to generate it in; `None` picks the best configured provider for `spec`.
    pub provider: Option<ProviderId>,
    /// The rotation policy.
    pub rotation: RotationPolicy,
}

impl NewKey {
    /// A new key for `alias` of kind `spec`, in the default provider, rotated by hand.
    #[must_use]
    pub fn new(alias: KeyAlias, spec: KeySpec) -> Self {
        Self {
            alias,
            spec,
            provider: None,
            rotation: RotationPolicy::default(),
        }
    }

    /// Generates the key in `provider`.
    #[must_use]
    pub fn in_provider(mut self, provider: ProviderId) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Rotates by `rotation`.
    #[must_use]
    pub const fn with_rotation(mut self, rotation: RotationPolicy) -> Self {
        self.rotation = rotation;
        self
    }
}

/// The services whose aliases are reserved for them: `as.*` (the authorization server's
/// access-token key), `audit.*` (the audit checkpoint key) and `did.*` (DID keys, did:webvh
/// update keys). A [`Caller`] from an admin API never creates, imports, registers, rotates,
/// deletes, holds or uses the private key of such an alias; a remote service only those of
/// its own name. See [`Caller::check_reserved`].
pub const RESERVED_SERVICES: [&str; 3] = [service::AS, service::AUDIT, service::DID];

/// The service `alias` is reserved for, if any (see [`RESERVED_SERVICES`]). A service
/// identity alias (`<service>.service-identity`, [`purpose::SERVICE_IDENTITY`]) is reserved
/// for the service it names, whatever that service is.
#[must_use]
pub fn reserved_for(alias: &KeyAlias) -> Option<&str> {
    if alias.purpose() == purpose::SERVICE_IDENTITY {
        return Some(alias.service());
    }
    RESERVED_SERVICES
        .into_iter()
        .find(|service| *service == alias.service())
}

/// The slug of the tenant where the KMS keeps platform-level keys: the platform's operator
/// realm (its operator authorization server's keys), and the service identity aliases of the
/// runtime services (`<service>.service-identity`).
pub const SERVICE_IDENTITY_REALM: &str = "edk-operators";

/// The service identity alias of `service`: `<service>.service-identity`.
///
/// # Errors
/// [`IdError`] when `service` is not a valid alias part.
pub fn service_identity_alias(service: &str) -> Result<KeyAlias, IdError> {
    KeyAlias::new(service, purpose::SERVICE_IDENTITY)
}

/// Where a KMS call comes from, which decides the reserved aliases it may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Code in the process that holds the KMS: the authorization server, the DID registrar,
    /// the KMS itself. Every alias.
    InProcess,
    /// A user of an admin API (the KMS server's REST API): no reserved alias.
    Admin,
    /// A remote service authenticated by the KMS's gRPC port, by its name (the service JWT's
    /// `iss`, or the accepted certificate identity): the reserved aliases whose service part
    /// is that name, and every unreserved alias.
    Service(String),
}

/// Who asks the KMS: a tenant, an actor (a user, service or client id) for the audit log,
/// and where the call comes from ([`Origin`]).
#[derive(Clone, Debug)]
pub struct Caller {
    tenant: TenantContext,
    actor: String,
    origin: Origin,
    acts_as: Option<Arc<BTreeSet<String>>>,
}

impl Caller {
    /// `actor` acting in `tenant` from code in this process ([`Origin::InProcess`]).
    #[must_use]
    pub fn new(tenant: TenantContext, actor: impl Into<String>) -> Self {
        Self {
            tenant,
            actor: actor.into(),
            origin: Origin::InProcess,
            acts_as: None,
        }
    }

    /// `actor` acting in `tenant` through an admin API ([`Origin::Admin`]).
    #[must_use]
    pub fn admin(tenant: TenantContext, actor: impl Into<String>) -> Self {
        Self {
            tenant,
            actor: actor.into(),
            origin: Origin::Admin,
            acts_as: None,
        }
    }

    /// `actor` acting in `tenant` for the remote `service` ([`Origin::Service`]). `actor` is
    /// recorded as given; the gRPC server qualifies it with the service first.
    #[must_use]
    pub fn remote(
        tenant: TenantContext,
        service: impl Into<String>,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            tenant,
            actor: actor.into(),
            origin: Origin::Service(service.into()),
            acts_as: None,
        }
    }

    /// This remote caller, also allowed the aliases reserved for the services `names` (the
    /// KMS server's configuration grants them per service).
    #[must_use]
    pub fn acting_as(mut self, names: Arc<BTreeSet<String>>) -> Self {
        self.acts_as = Some(names);
        self
    }

    /// The tenant.
    #[must_use]
    pub const fn tenant(&self) -> &TenantContext {
        &self.tenant
    }

    /// The actor.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Where the call comes from.
    #[must_use]
    pub const fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether this caller may create, import, register, rotate, delete, hold or release
    /// `alias`, or use its private key (sign, decrypt, unwrap, agree): always for an
    /// unreserved alias and in process; for an alias reserved for a service (see
    /// [`RESERVED_SERVICES`] and [`reserved_for`], which also reserves every
    /// `<service>.service-identity`) only when the caller is that remote service, or a remote
    /// service allowed to act as it ([`Caller::acting_as`]).
    ///
    /// # Errors
    /// [`Error::ReservedAlias`] (kind `Forbidden`). It does not depend on whether the alias
    /// exists.
    pub fn check_reserved(&self, alias: &KeyAlias) -> Result<(), Error> {
        let Some(owner) = reserved_for(alias) else {
            return Ok(());
        };
        match &self.origin {
            Origin::InProcess => Ok(()),
            Origin::Service(name)
                if name == owner
                    || self
                        .acts_as
                        .as_ref()
                        .is_some_and(|names| names.contains(owner)) =>
            {
                Ok(())
            }
            Origin::Admin | Origin::Service(_) => Err(Error::ReservedAlias {
                alias: alias.clone(),
            }),
        }
    }
}

/// A signature and the key version that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Signature {
    /// The signing key's kid.
    pub kid: Kid,
    /// The algorithm.
    pub alg: Algorithm,
    /// The JOSE form of the signature (`r||s` for ECDSA).
    pub bytes: Vec<u8>,
}

/// A content encryption key wrapped to a recipient key (the JWE key management step alone).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedKey {
    /// The key management algorithm.
    pub alg: KeyManagement,
    /// The kid of the recipient key.
    pub kid: Kid,
    /// The wrapped key (empty for direct `ECDH-ES`).
    pub encrypted_key: Vec<u8>,
    /// The ephemeral public key for ECDH-ES algorithms.
    pub epk: Option<Jwk>,
}

impl WrappedKey {
    /// A wrapped key as received from elsewhere (a JWE header and `encrypted_key`).
    #[must_use]
    pub const fn new(
        alg: KeyManagement,
        kid: Kid,
        encrypted_key: Vec<u8>,
        epk: Option<Jwk>,
    ) -> Self {
        Self {
            alg,
            kid,
            encrypted_key,
            epk,
        }
    }
}

/// The KMS operations runtime services call. Every method acts for `caller.tenant()` only:
/// another tenant's alias or kid is [`Error::KeyNotFound`]-shaped, never a hint that it exists.
/// Every call is audited.
#[async_trait]
pub trait Kms: fmt::Debug + Send + Sync {
    /// Creates `request.alias` with a new active key.
    ///
    /// # Errors
    /// A conflict when the alias exists; unsupported when no provider can hold the key.
    async fn create_key(&self, caller: &Caller, request: &NewKey) -> Result<KeyInfo, Error>;

    /// Creates `alias` from an imported private key, in `provider` or the best importing one.
    ///
    /// # Errors
    /// As [`create_key`](Self::create_key); invalid input when the JWK is not a private key
    /// for `spec`.
    async fn import_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        spec: &KeySpec,
        private_jwk: &Jwk,
        provider: Option<&ProviderId>,
    ) -> Result<KeyInfo, Error>;

    /// Registers an externally managed public key under `alias`, for verification only.
    ///
    /// # Errors
    /// A conflict when the alias exists; invalid input for a private or malformed JWK.
    async fn register_public_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        public_jwk: &Jwk,
    ) -> Result<KeyInfo, Error>;

    /// The alias that `key` names (for a kid, the alias holding that version).
    ///
    /// # Errors
    /// Not found for an unknown alias or kid.
    async fn key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo, Error>;

    /// Every alias of the tenant.
    ///
    /// # Errors
    /// When the store fails.
    async fn keys(&self, caller: &Caller) -> Result<Vec<KeyInfo>, Error>;

    /// Rotates `alias`: a new active version (the staged pre-active one if the alias has one,
    /// else a fresh key); the previous one retires and stays verifiable for the overlap.
    /// Concurrent rotations of one alias make exactly one new active version each.
    ///
    /// # Errors
    /// Not found for an unknown alias; invalid input for an external key.
    async fn rotate(&self, caller: &Caller, alias: &KeyAlias) -> Result<KeyInfo, Error>;

    /// The rotations of `alias`, oldest first.
    ///
    /// # Errors
    /// Not found for an unknown alias.
    async fn rotations(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, Error>;

    /// Destroys `key`: every version of an alias, or one version by kid (which must not be the
    /// active one). Refused with a conflict while the key is in use.
    ///
    /// # Errors
    /// Not found, or a conflict while in use.
    async fn delete_key(&self, caller: &Caller, key: &KeyRef) -> Result<(), Error>;

    /// Marks `alias` as in use by `user` (a DID, a client, a credential configuration), which
    /// blocks its deletion until [`release_key`](Self::release_key).
    ///
    /// # Errors
    /// Not found for an unknown alias.
    async fn hold_key(&self, caller: &Caller, alias: &KeyAlias, user: &str) -> Result<(), Error>;

    /// Removes the hold of `user` on `alias`.
    ///
    /// # Errors
    /// Not found for an unknown alias.
    async fn release_key(&self, caller: &Caller, alias: &KeyAlias, user: &str)
    -> Result<(), Error>;

    /// A signer for the active version of `alias`, for JWS and SD-JWT signing.
    ///
    /// # Errors
    /// Not found; a refusal when the alias has no active signing key.
    async fn signer(&self, caller: &Caller, alias: &KeyAlias) -> Result<Arc<dyn Signer>, Error>;

    /// Signs `message` with the active version of `alias`.
    ///
    /// # Errors
    /// As [`signer`](Self::signer); unavailable when the provider cannot be reached.
    async fn sign(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        message: &[u8],
    ) -> Result<Signature, Error>;

    /// Verifies `signature` over `message` with `key` (the alias's active or any
    /// still-verifiable version, or the version `kid` names).
    ///
    /// # Errors
    /// Invalid input when the signature does not verify or `alg` does not fit the key.
    async fn verify(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<Kid, Error>;

    /// Encrypts `plaintext` to `key`'s public key as a compact JWE.
    ///
    /// # Errors
    /// Invalid input when the key does not fit `alg`.
    async fn encrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        plaintext: &[u8],
    ) -> Result<String, Error>;

    /// Decrypts a compact JWE addressed to one of `alias`'s versions (by the header's `kid`,
    /// else the active one).
    ///
    /// # Errors
    /// Invalid input, with one message for every cryptographic failure.
    async fn decrypt(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        jwe: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// Wraps `key_bytes` (a content key) to `key`'s public key with `alg`, for `enc`.
    ///
    /// # Errors
    /// Invalid input when the key does not fit `alg` or the key length does not fit `enc`.
    async fn wrap_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        key_bytes: &[u8],
    ) -> Result<WrappedKey, Error>;

    /// Unwraps a key wrapped to one of `alias`'s versions.
    ///
    /// # Errors
    /// Invalid input, with one message for every cryptographic failure.
    async fn unwrap_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        enc: ContentEncryption,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// The raw ECDH shared secret of `alias`'s active key-agreement key with `peer` (a public
    /// EC or X25519 JWK on the same curve).
    ///
    /// # Errors
    /// Invalid input for a peer key on another curve.
    async fn key_agreement(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        peer: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// The public key of `key`.
    ///
    /// # Errors
    /// Not found.
    async fn public_key(&self, caller: &Caller, key: &KeyRef) -> Result<Jwk, Error>;

    /// The JWKS of `alias`: its pre-active, active and still-verifiable retired versions.
    ///
    /// # Errors
    /// Not found.
    async fn jwks(&self, caller: &Caller, alias: &KeyAlias) -> Result<JwkSet, Error>;

    /// A [`KeyResolver`] over the tenant's own keys (by kid or thumbprint, including retired
    /// versions within their overlap), cached in process.
    fn resolver(&self, caller: &Caller) -> Arc<dyn KeyResolver>;

    /// Creates `request.alias` unless the tenant has it already: how services create their
    /// keys on first use. An alias that another replica creates at the same moment counts as
    /// created; an existing alias is left as it is, whatever its kind.
    ///
    /// # Errors
    /// As [`key`](Self::key) and [`create_key`](Self::create_key), except not found and
    /// conflict.
    async fn ensure_key(&self, caller: &Caller, request: &NewKey) -> Result<(), Error> {
        match self
            .key(caller, &KeyRef::Alias(request.alias.clone()))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                match self.create_key(caller, request).await {
                    Ok(_) => Ok(()),
                    Err(err) if err.kind() == ErrorKind::Conflict => Ok(()),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Seals `plaintext` (a secret a service must store) to `alias`: a compact JWE with
    /// `ECDH-ES` and `A256GCM`, creating `alias` as a P-256 key-agreement key on first use.
    /// [`decrypt`](Self::decrypt) with the same alias opens it.
    ///
    /// # Errors
    /// As [`ensure_key`](Self::ensure_key) and [`encrypt`](Self::encrypt).
    async fn seal(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        plaintext: &[u8],
    ) -> Result<String, Error> {
        let request = NewKey::new(alias.clone(), KeySpec::decryption(KeyManagement::EcdhEs));
        self.ensure_key(caller, &request).await?;
        self.encrypt(
            caller,
            &KeyRef::Alias(alias.clone()),
            KeyManagement::EcdhEs,
            ContentEncryption::A256Gcm,
            plaintext,
        )
        .await
    }
}
