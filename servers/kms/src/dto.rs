//! The request and response bodies of the KMS API, with their conversions.
//!
//! Request bodies refuse unknown fields. Binary values travel as unpadded base64url; JWKs
//! as JSON objects (RFC 7517).

use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, Jwk};
use edk_kms::audit::{AuditCheckpoint, AuditEvent, AuditProblem, AuditReport};
use edk_kms::kms::{KeyVersion, RotationPolicy, RotationRecord};
use edk_kms::provider::{Capabilities, KeyRequirement, KeySpec, KeyUsage};
use edk_kms::{KeyAlias, KeyInfo, KeyProvider, KeyRef};
use poem_openapi::{Enum, Object};
use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UsageKind {
    /// JWS signing.
    Sign,
    /// JWE decryption (and key agreement, key unwrapping).
    Decrypt,
}

/// Parses a JWS algorithm name.
pub(crate) fn parse_alg(field: &'static str, name: &str) -> Result<Algorithm, Error> {
    Algorithm::from_name(name)
        .ok_or_else(|| Error::invalid(field, format!("`{name}` is not a supported JWS algorithm")))
}

/// Parses a JWE key management algorithm name.
pub(crate) fn parse_key_management(
    field: &'static str,
    name: &str,
) -> Result<KeyManagement, Error> {
    KeyManagement::from_name(name).ok_or_else(|| {
        Error::invalid(
            field,
            format!("`{name}` is not a supported JWE key management algorithm"),
        )
    })
}

/// Parses a JWE content encryption name.
pub(crate) fn parse_enc(field: &'static str, name: &str) -> Result<ContentEncryption, Error> {
    ContentEncryption::from_name(name).ok_or_else(|| {
        Error::invalid(
            field,
            format!("`{name}` is not a supported JWE content encryption"),
        )
    })
}

/// Parses a key alias (`service.purpose`).
pub(crate) fn parse_alias(field: &'static str, text: &str) -> Result<KeyAlias, Error> {
    text.parse()
        .map_err(|err: edk_core::IdError| Error::invalid(field, err.to_string()))
}

/// Parses an alias or a kid.
pub(crate) fn parse_key_ref(field: &'static str, text: &str) -> Result<KeyRef, Error> {
    text.parse()
        .map_err(|err: edk_core::IdError| Error::invalid(field, err.to_string()))
}

/// Decodes a base64url field.
pub(crate) fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    b64url_decode(text).map_err(|_| Error::InvalidBase64 { field })
}

/// Parses a JWK object.
pub(crate) fn parse_jwk(field: &'static str, value: &Value) -> Result<Jwk, Error> {
    if !value.is_object() {
        return Err(Error::invalid(field, "must be a JWK object"));
    }
    serde_json::from_value(value.clone())
        .map_err(|err| Error::invalid(field, format!("not a usable JWK: {err}")))
}

/// A JWK as JSON.
pub(crate) fn jwk_value(jwk: &Jwk) -> Value {
    serde_json::to_value(jwk).unwrap_or(Value::Null)
}

fn usage_parts(usage: KeyUsage) -> (UsageKind, String) {
    match usage {
        KeyUsage::Sign(alg) => (UsageKind::Sign, alg.name().to_owned()),
        KeyUsage::Decrypt(alg) => (UsageKind::Decrypt, alg.name().to_owned()),
        _ => (UsageKind::Sign, String::new()),
    }
}

fn usage_of(usage: UsageKind, algorithm: &str) -> Result<KeyUsage, Error> {
    Ok(match usage {
        UsageKind::Sign => KeyUsage::Sign(parse_alg("algorithm", algorithm)?),
        UsageKind::Decrypt => KeyUsage::Decrypt(parse_key_management("algorithm", algorithm)?),
    })
}

pub(crate) fn spec_of(usage: UsageKind, algorithm: &str) -> Result<KeySpec, Error> {
    Ok(match usage_of(usage, algorithm)? {
        KeyUsage::Sign(alg) => KeySpec::signing(alg),
        KeyUsage::Decrypt(alg) => KeySpec::decryption(alg),
        _ => return Err(Error::invalid("usage", "unsupported")),
    })
}

/// The serde (wire) name of a unit-like enum value.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A key provider.
#[derive(Clone, Debug, Object)]
pub struct ProviderSummary {
    /// The provider's id.
    pub id: String,
    /// Whether its keys live in hardware.
    pub hardware_backed: bool,
}

impl From<&dyn KeyProvider> for ProviderSummary {
    fn from(provider: &dyn KeyProvider) -> Self {
        Self {
            id: provider.id().to_string(),
            hardware_backed: provider.capabilities().hardware_backed(),
        }
    }
}

/// Key providers.
#[derive(Clone, Debug, Object)]
pub struct ProviderList {
    /// The providers, in order of preference (the first is the default).
    pub providers: Vec<ProviderSummary>,
}

/// A key provider with what it can do.
#[derive(Clone, Debug, Object)]
pub struct ProviderDetail {
    /// The provider's id.
    pub id: String,
    /// Whether it is the default provider.
    pub default: bool,
    /// What it can do.
    pub capabilities: ProviderCapabilities,
}

/// What a key provider can do.
#[derive(Clone, Debug, Object)]
pub struct ProviderCapabilities {
    /// JWS algorithms it signs with.
    pub signing_algorithms: Vec<String>,
    /// JWE key management algorithms it decrypts with.
    pub decryption_algorithms: Vec<String>,
    /// Operations it performs (`sign`, `decrypt`, `key-agreement`, ...).
    pub operations: Vec<String>,
    /// Key types it generates (`p-256`, `ed25519`, ...).
    pub key_types: Vec<String>,
    /// Whether private keys can leave it: `never` or `exportable`.
    pub exportability: String,
    /// Whether it imports private keys.
    pub importable: bool,
    /// Whether keys live in hardware.
    pub hardware_backed: bool,
    /// Where key material lives: `in-provider` or `in-handle`.
    pub storage: String,
}

impl From<&Capabilities> for ProviderCapabilities {
    fn from(caps: &Capabilities) -> Self {
        Self {
            signing_algorithms: caps
                .signing()
                .iter()
                .map(|alg| alg.name().to_owned())
                .collect(),
            decryption_algorithms: caps
                .decryption()
                .iter()
                .map(|alg| alg.name().to_owned())
                .collect(),
            operations: caps.operations().iter().map(wire_name).collect(),
            key_types: caps.key_types().iter().map(wire_name).collect(),
            exportability: wire_name(&caps.exportability()),
            importable: caps.importable(),
            hardware_backed: caps.hardware_backed(),
            storage: wire_name(&caps.storage()),
        }
    }
}

/// Every provider's capabilities, and what the deployment can do as a whole.
#[derive(Clone, Debug, Object)]
pub struct DeploymentCapabilities {
    /// JWS algorithms some provider signs with.
    pub signing_algorithms: Vec<String>,
    /// JWE key management algorithms some provider decrypts with.
    pub decryption_algorithms: Vec<String>,
    /// JWE content encryptions the KMS encrypts and decrypts with.
    pub content_encryptions: Vec<String>,
    /// Each provider.
    pub providers: Vec<ProviderDetail>,
}

/// What a caller needs from a provider.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ProviderQuery {
    /// What the key is for.
    pub usage: UsageKind,
    /// The JWS algorithm (for `sign`) or JWE key management algorithm (for `decrypt`).
    pub algorithm: String,
    /// Only providers whose keys never leave them.
    #[oai(default)]
    pub non_exportable: bool,
    /// Only hardware-backed providers.
    #[oai(default)]
    pub hardware_backed: bool,
    /// Only providers that import private keys.
    #[oai(default)]
    pub importable: bool,
}

impl ProviderQuery {
    pub(crate) fn requirement(&self) -> Result<KeyRequirement, Error> {
        let mut requirement = KeyRequirement::new(usage_of(self.usage, &self.algorithm)?);
        if self.non_exportable {
            requirement = requirement.non_exportable();
        }
        if self.hardware_backed {
            requirement = requirement.hardware_backed();
        }
        if self.importable {
            requirement = requirement.importable();
        }
        Ok(requirement)
    }
}

/// How an alias rotates.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct Rotation {
    /// How long a replaced version stays verifiable, in seconds.
    pub overlap_secs: u64,
    /// Rotate automatically at this age, in seconds; absent: only on request.
    pub period_secs: Option<u64>,
    /// With a period: stage the next version pre-active (in the JWKS, not yet signing) this
    /// many seconds before the scheduled rotation. Default 0: no staging.
    #[oai(default)]
    pub pre_active_secs: u64,
}

impl From<RotationPolicy> for Rotation {
    fn from(policy: RotationPolicy) -> Self {
        Self {
            overlap_secs: policy.overlap_secs,
            period_secs: policy.period_secs,
            pre_active_secs: policy.pre_active_secs,
        }
    }
}

impl From<&Rotation> for RotationPolicy {
    fn from(rotation: &Rotation) -> Self {
        match rotation.period_secs {
            Some(period) => Self::every(period, rotation.overlap_secs),
            None => Self::manual(rotation.overlap_secs),
        }
        .with_pre_activation(rotation.pre_active_secs)
    }
}

/// A new alias with a freshly generated key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// The alias, `service.purpose`.
    pub alias: String,
    /// What the key is for.
    pub usage: UsageKind,
    /// The JWS algorithm (for `sign`) or JWE key management algorithm (for `decrypt`).
    pub algorithm: String,
    /// The provider; absent: the best configured provider for the key.
    pub provider: Option<String>,
    /// The rotation policy; absent: manual, one day of overlap.
    pub rotation: Option<Rotation>,
}

/// A new alias from an imported private key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ImportKeyRequest {
    /// The alias, `service.purpose`.
    pub alias: String,
    /// What the key is for.
    pub usage: UsageKind,
    /// The JWS algorithm (for `sign`) or JWE key management algorithm (for `decrypt`).
    pub algorithm: String,
    /// The private key, a JWK.
    pub private_jwk: Value,
    /// The provider; absent: the best importing provider.
    pub provider: Option<String>,
}

/// An externally managed public key, registered for verification only.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterKeyRequest {
    /// The alias, `service.purpose`.
    pub alias: String,
    /// The public key, a JWK.
    pub public_jwk: Value,
}

/// One version of an alias's key; a field without a value is absent, never `null`.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeyVersionBody {
    /// The version number, from 1.
    pub version: u32,
    /// The kid: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The provider holding it; absent for a registered external key.
    pub provider: Option<String>,
    /// The public key.
    pub public_jwk: Value,
    /// `pre-active`, `active`, `retired` or `destroyed`.
    pub state: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it became active.
    pub activated_at: Option<String>,
    /// When it was retired.
    pub retired_at: Option<String>,
    /// Until when a retired version verifies.
    pub verify_until: Option<String>,
    /// When it was destroyed.
    pub destroyed_at: Option<String>,
}

impl From<&KeyVersion> for KeyVersionBody {
    fn from(version: &KeyVersion) -> Self {
        Self {
            version: version.version,
            kid: version.kid.as_str().to_owned(),
            provider: version.provider.as_ref().map(ToString::to_string),
            public_jwk: jwk_value(&version.public_jwk),
            state: version.state.as_str().to_owned(),
            created_at: version.created_at.to_rfc3339(),
            activated_at: version.activated_at.map(|at| at.to_rfc3339()),
            retired_at: version.retired_at.map(|at| at.to_rfc3339()),
            verify_until: version.verify_until.map(|at| at.to_rfc3339()),
            destroyed_at: version.destroyed_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// An alias with its key's versions; a field without a value is absent, never `null`.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeyBody {
    /// The alias.
    pub alias: String,
    /// What the key is for.
    pub usage: UsageKind,
    /// Its algorithm.
    pub algorithm: String,
    /// The provider new versions are made in; absent for registered external keys.
    pub provider: Option<String>,
    /// Whether it is an externally managed public key (verify only).
    pub external: bool,
    /// The rotation policy.
    pub rotation: Rotation,
    /// Every version, newest first.
    pub versions: Vec<KeyVersionBody>,
}

impl From<&KeyInfo> for KeyBody {
    fn from(info: &KeyInfo) -> Self {
        let (usage, algorithm) = usage_parts(info.usage);
        Self {
            alias: info.alias.to_string(),
            usage,
            algorithm,
            provider: info.provider.as_ref().map(ToString::to_string),
            external: info.external,
            rotation: info.rotation.into(),
            versions: info.versions.iter().map(KeyVersionBody::from).collect(),
        }
    }
}

/// Keys.
#[derive(Clone, Debug, Object)]
pub struct KeyList {
    /// The aliases, each with its versions.
    pub keys: Vec<KeyBody>,
}

/// One rotation of an alias; a field without a value is absent, never `null`.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RotationBody {
    /// The alias.
    pub alias: String,
    /// The version active before, if any.
    pub from_version: Option<u32>,
    /// The new version.
    pub to_version: u32,
    /// `manual` or `scheduled`.
    pub reason: String,
    /// Who asked for it.
    pub actor: String,
    /// When (RFC 3339).
    pub at: String,
}

impl From<&RotationRecord> for RotationBody {
    fn from(record: &RotationRecord) -> Self {
        Self {
            alias: record.alias.to_string(),
            from_version: record.from_version,
            to_version: record.to_version,
            reason: wire_name(&record.reason),
            actor: record.actor.clone(),
            at: record.at.to_rfc3339(),
        }
    }
}

/// The rotation history of an alias.
#[derive(Clone, Debug, Object)]
pub struct RotationList {
    /// The rotations, oldest first.
    pub rotations: Vec<RotationBody>,
}

/// A JWK Set.
#[derive(Clone, Debug, Object)]
pub struct JwksBody {
    /// The keys.
    pub keys: Vec<Value>,
}

/// Sign bytes with an alias's active key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RawSignRequest {
    /// The alias.
    pub key: String,
    /// The message, base64url.
    pub message: String,
}

/// A signature.
#[derive(Clone, Debug, Object)]
pub struct RawSignature {
    /// The kid of the version that signed.
    pub kid: String,
    /// The JWS algorithm.
    pub alg: String,
    /// The signature in JOSE form (`r||s` for ECDSA), base64url.
    pub signature: String,
}

/// Verify a signature over bytes.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RawVerifyRequest {
    /// The alias (any still-verifiable version) or the kid of one version.
    pub key: String,
    /// The JWS algorithm.
    pub alg: String,
    /// The message, base64url.
    pub message: String,
    /// The signature, base64url.
    pub signature: String,
}

/// A verified signature.
#[derive(Clone, Debug, Object)]
pub struct Verified {
    /// The kid of the version that verified it.
    pub kid: String,
}

/// Sign a compact JWS.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct JwsSignRequest {
    /// The alias.
    pub key: String,
    /// The payload, base64url.
    pub payload: String,
    /// The `typ` header, e.g. `JWT`.
    pub typ: Option<String>,
    /// The `cty` header.
    pub cty: Option<String>,
}

/// A compact JWS.
#[derive(Clone, Debug, Object)]
pub struct JwsBody {
    /// The compact serialization.
    pub jws: String,
}

/// Verify a compact JWS with the tenant's keys (by the header's `kid`).
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct JwsVerifyRequest {
    /// The compact JWS.
    pub jws: String,
}

/// A verified JWS.
#[derive(Clone, Debug, Object)]
pub struct JwsVerified {
    /// The protected header.
    pub header: Value,
    /// The payload, base64url.
    pub payload: String,
}

/// Encrypt to a key as a compact JWE.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct EncryptRequest {
    /// The alias or kid of the recipient key.
    pub key: String,
    /// The key management algorithm, e.g. `ECDH-ES`.
    pub alg: String,
    /// The content encryption, e.g. `A256GCM`.
    pub enc: String,
    /// The plaintext, base64url.
    pub plaintext: String,
}

/// A compact JWE.
#[derive(Clone, Debug, Object)]
pub struct JweBody {
    /// The compact serialization.
    pub jwe: String,
}

/// Decrypt a compact JWE with an alias's key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct DecryptRequest {
    /// The alias.
    pub key: String,
    /// The compact JWE.
    pub jwe: String,
}

/// Plaintext.
#[derive(Clone, Debug, Object)]
pub struct Plaintext {
    /// The plaintext, base64url.
    pub plaintext: String,
}

/// Wrap a content key to a key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct WrapRequest {
    /// The alias or kid of the recipient key.
    pub key: String,
    /// The key management algorithm.
    pub alg: String,
    /// The content encryption the key is for.
    pub enc: String,
    /// The content key, base64url.
    pub cek: String,
}

/// A wrapped content key; `epk` is absent, never `null`, without an ephemeral key.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WrappedKeyBody {
    /// The key management algorithm.
    pub alg: String,
    /// The recipient key's kid.
    pub kid: String,
    /// The wrapped key, base64url (empty for direct `ECDH-ES`).
    pub encrypted_key: String,
    /// The ephemeral public key of ECDH-ES algorithms.
    pub epk: Option<Value>,
}

/// Unwrap a content key with an alias's key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UnwrapRequest {
    /// The alias.
    pub key: String,
    /// The content encryption the key is for.
    pub enc: String,
    /// The wrapped key as `/encryption/wrap` returned it.
    pub wrapped: UnwrapInput,
}

/// A wrapped key to unwrap.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UnwrapInput {
    /// The key management algorithm.
    pub alg: String,
    /// The recipient key's kid.
    pub kid: String,
    /// The wrapped key, base64url.
    pub encrypted_key: String,
    /// The ephemeral public key of ECDH-ES algorithms.
    pub epk: Option<Value>,
}

/// A content key.
#[derive(Clone, Debug, Object)]
pub struct ContentKey {
    /// The content key, base64url.
    pub cek: String,
}

/// ECDH with an alias's active key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct KeyAgreementRequest {
    /// The alias.
    pub key: String,
    /// The peer's public key, a JWK on the same curve.
    pub peer_jwk: Value,
}

/// A raw ECDH shared secret.
#[derive(Clone, Debug, Object)]
pub struct SharedSecret {
    /// The shared secret, base64url.
    pub shared_secret: String,
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    b64url_encode(bytes)
}

/// A public key resolver.
#[derive(Clone, Debug, Object)]
pub struct ResolverBody {
    /// The resolver's id.
    pub id: String,
    /// What it takes.
    pub description: String,
}

/// The resolvers.
#[derive(Clone, Debug, Object)]
pub struct ResolverList {
    /// Every resolver.
    pub resolvers: Vec<ResolverBody>,
}

/// What to resolve.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The input: a JWK object, a kid or alias string, a base64url COSE_Key, an x5c array or
    /// a DID URL string, as the resolver expects.
    pub input: Value,
}

/// A resolved public key.
#[derive(Clone, Debug, Object)]
pub struct ResolvedKey {
    /// The public JWK.
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub kid: String,
}

/// One record of the tenant's audit chain.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEventBody {
    /// The position in the chain, from 1.
    pub seq: u64,
    /// When the operation happened (RFC 3339).
    pub at: String,
    /// Who asked: the token's subject, or its issuer.
    pub actor: String,
    /// The operation, e.g. `sign`.
    pub operation: String,
    /// The alias, if the operation named or found one.
    pub alias: Option<String>,
    /// The kid, if the operation used one key version.
    pub kid: Option<String>,
    /// `success` or `failure:<kind>`.
    pub outcome: String,
    /// The previous record's hash (empty for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<&AuditEvent> for AuditEventBody {
    fn from(event: &AuditEvent) -> Self {
        Self {
            seq: event.seq,
            at: event.at.to_rfc3339(),
            actor: event.actor.clone(),
            operation: event.operation.clone(),
            alias: event.alias.clone(),
            kid: event.kid.clone(),
            outcome: event.outcome.clone(),
            prev_hash: event.prev_hash.clone(),
            hash: event.hash.clone(),
        }
    }
}

/// A page of audit records, oldest first.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEventList {
    /// The records.
    pub events: Vec<AuditEventBody>,
    /// The `after` to pass for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// What is wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AuditProblemKind {
    /// A record's hash does not match its content (edited).
    HashMismatch,
    /// A record does not link to the one before (inserted, deleted or reordered).
    BrokenLink,
    /// A sequence number is missing or repeated.
    SequenceGap,
    /// The chain ends before or after its recorded head.
    HeadMismatch,
    /// A checkpoint's signature or hash does not match the chain.
    BadCheckpoint,
}

/// The result of checking the tenant's audit chain.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditReportBody {
    /// Whether every record, link, the head and every checkpoint check out.
    pub intact: bool,
    /// How many records were checked.
    pub records: u64,
    /// How many signed checkpoints were checked.
    pub checkpoints: u64,
    /// The first sequence number that does not fit.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    pub problem: Option<AuditProblemKind>,
}

impl From<&AuditReport> for AuditReportBody {
    fn from(report: &AuditReport) -> Self {
        Self {
            intact: report.is_intact(),
            records: report.records,
            checkpoints: report.checkpoints,
            first_bad_seq: report.first_bad_seq,
            problem: report.problem.map(|problem| match problem {
                AuditProblem::HashMismatch => AuditProblemKind::HashMismatch,
                AuditProblem::BrokenLink => AuditProblemKind::BrokenLink,
                AuditProblem::SequenceGap => AuditProblemKind::SequenceGap,
                AuditProblem::HeadMismatch => AuditProblemKind::HeadMismatch,
                _ => AuditProblemKind::BadCheckpoint,
            }),
        }
    }
}

/// A signed checkpoint of the chain head.
#[derive(Clone, Debug, Object)]
pub struct AuditCheckpointBody {
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash.
    pub hash: String,
    /// When it was signed (RFC 3339).
    pub at: String,
    /// The compact JWS (`typ` of an audit checkpoint) over the tenant, `seq`, `hash` and `at`,
    /// signed by the tenant's `audit.audit-checkpoint` key.
    pub jws: String,
}

impl From<&AuditCheckpoint> for AuditCheckpointBody {
    fn from(checkpoint: &AuditCheckpoint) -> Self {
        Self {
            seq: checkpoint.seq,
            hash: checkpoint.hash.clone(),
            at: checkpoint.at.to_rfc3339(),
            jws: checkpoint.jws.clone(),
        }
    }
}

/// A provider registered at run time; secrets appear only as references.
#[derive(Clone, Debug, Object)]
pub struct RegistrationBody {
    /// The provider's id.
    pub id: String,
    /// The provider kind.
    pub kind: String,
    /// The configuration fields (secret fields as references).
    pub config: Value,
    /// When it was registered (seconds since the epoch).
    pub created_at: i64,
    /// When it last changed (seconds since the epoch).
    pub updated_at: i64,
}

impl From<&edk_kms::registry::ProviderRegistration> for RegistrationBody {
    fn from(registration: &edk_kms::registry::ProviderRegistration) -> Self {
        Self {
            id: registration.id.to_string(),
            kind: registration.kind.clone(),
            config: Value::Object(registration.config.clone()),
            created_at: registration.created_at,
            updated_at: registration.updated_at,
        }
    }
}

/// The run-time provider registrations.
#[derive(Clone, Debug, Object)]
pub struct RegistrationList {
    /// The registrations, oldest first.
    pub registrations: Vec<RegistrationBody>,
}

/// Binds an alias to a provider.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct AliasBindingRequest {
    /// The provider's id.
    pub provider: String,
    /// The JWS algorithm the alias's keys sign with; the provider must support it.
    pub algorithm: String,
}

/// An alias bound to a provider.
#[derive(Clone, Debug, Object)]
pub struct AliasBindingBody {
    /// The alias.
    pub alias: String,
    /// The provider new keys of the alias are created in.
    pub provider: String,
    /// The JWS algorithm the binding was checked for.
    pub algorithm: String,
}

impl From<&edk_kms::registry::AliasBinding> for AliasBindingBody {
    fn from(binding: &edk_kms::registry::AliasBinding) -> Self {
        Self {
            alias: binding.alias.to_string(),
            provider: binding.provider.to_string(),
            algorithm: binding.algorithm.name().to_owned(),
        }
    }
}

/// A tenant's alias bindings.
#[derive(Clone, Debug, Object)]
pub struct AliasBindingList {
    /// The bindings, by alias.
    pub bindings: Vec<AliasBindingBody>,
}
