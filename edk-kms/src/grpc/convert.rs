//! Conversions between the key model and the `edk.kms.v1` messages, and between errors and
//! [`tonic::Status`].
//!
//! The server parses every request field into a domain type before it calls the [`Kms`]
//! (a malformed field is `INVALID_ARGUMENT` naming the field); the client parses every
//! response the same way (a malformed response is an internal error, never a panic).
//!
//! [`Kms`]: crate::Kms

use chrono::{DateTime, Utc};
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, Jwk, JwkSet};
use edk_core::{ErrorChain, ErrorKind, HasKind, Kid};
use tonic::{Code, Status};

use super::proto;
use crate::Error;
use crate::audit::{AuditEvent, AuditProblem, AuditReport};
use crate::kms::{
    KeyAlias, KeyInfo, KeyRef, KeyState, KeyVersion, RotationPolicy, RotationReason,
    RotationRecord, WrappedKey,
};
use crate::provider::{KeySpec, KeyUsage, ProviderId};

/// The status for an error of `kind`: client kinds carry the error's text (which names only
/// the caller's own input), `Unavailable` and `Internal` a generic message, with the whole
/// chain logged here.
pub(crate) fn status_for(err: &(dyn HasKind + 'static)) -> Status {
    let kind = err.kind();
    let code = code_for(kind);
    if kind.is_client_error() {
        return Status::new(code, err.to_string());
    }
    tracing::error!(error = %ErrorChain(err), kind = %kind, "KMS gRPC call failed");
    Status::new(code, kind.to_string())
}

/// The status code of an [`ErrorKind`].
pub(crate) const fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidInput => Code::InvalidArgument,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::AlreadyExists,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The [`ErrorKind`] of a status code, the inverse of [`code_for`] on the codes it produces.
pub(crate) const fn kind_for(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidInput,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::Forbidden,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => ErrorKind::Conflict,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            ErrorKind::Unavailable
        }
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => ErrorKind::Internal,
    }
}

/// The metadata key of the error's variant code, so the client can rebuild the variants that
/// callers match on (`InvalidSignature`, `AliasExists`, ...).
const ERROR_CODE: &str = "x-edk-error";
/// The metadata key of that variant's one argument (an alias, kid, state or algorithm).
const ERROR_ARG: &str = "x-edk-error-arg";

/// The status for a KMS error: [`status_for`], plus the variant code of client errors that
/// callers tell apart.
pub(crate) fn status_for_kms(err: &Error) -> Status {
    let mut status = status_for(err);
    if err.kind().is_client_error()
        && let Some((code, arg)) = error_detail(err)
    {
        let metadata = status.metadata_mut();
        metadata.insert(
            ERROR_CODE,
            tonic::metadata::MetadataValue::from_static(code),
        );
        if let Some(arg) = arg
            && let Ok(value) = arg.parse()
        {
            metadata.insert(ERROR_ARG, value);
        }
    }
    status
}

fn error_detail(err: &Error) -> Option<(&'static str, Option<String>)> {
    Some(match err {
        Error::AliasExists { alias } => ("alias-exists", Some(alias.to_string())),
        Error::AliasNotFound { alias } => ("alias-not-found", Some(alias.to_string())),
        Error::AlgorithmMismatch { alg } => ("algorithm-mismatch", Some((*alg).to_owned())),
        Error::DecryptionFailed => ("decryption-failed", None),
        Error::ExternalKey { alias } => ("external-key", Some(alias.to_string())),
        Error::KeyExists => ("key-exists", None),
        Error::KeyInUse { alias } => ("key-in-use", Some(alias.to_string())),
        Error::KeyNotUsable { state } => ("key-not-usable", Some(state.as_str().to_owned())),
        Error::InvalidSignature => ("invalid-signature", None),
        Error::ReservedAlias { alias } => ("reserved-alias", Some(alias.to_string())),
        Error::UnknownKid { kid } => ("unknown-kid", Some(kid.as_str().to_owned())),
        _ => return None,
    })
}

/// The client-side error for a status the server answered with: the server's variant when it
/// named one the client knows, else [`Error::Remote`] with the status's kind and message.
pub(crate) fn error_from_status(status: &Status) -> Error {
    let metadata = status.metadata();
    let code = metadata.get(ERROR_CODE).and_then(|v| v.to_str().ok());
    let arg = metadata.get(ERROR_ARG).and_then(|v| v.to_str().ok());
    code.and_then(|code| error_from_detail(code, arg))
        .filter(|err| err.kind() == kind_for(status.code()))
        .unwrap_or_else(|| Error::Remote {
            kind: kind_for(status.code()),
            message: status.message().to_owned(),
        })
}

fn error_from_detail(code: &str, arg: Option<&str>) -> Option<Error> {
    let alias = || arg.and_then(|a| a.parse::<KeyAlias>().ok());
    Some(match code {
        "alias-exists" => Error::AliasExists { alias: alias()? },
        "alias-not-found" => Error::AliasNotFound { alias: alias()? },
        "algorithm-mismatch" => {
            let name = arg?;
            let alg = Algorithm::from_name(name)
                .map(Algorithm::name)
                .or_else(|| KeyManagement::from_name(name).map(KeyManagement::name))
                .or_else(|| ContentEncryption::from_name(name).map(ContentEncryption::name))?;
            Error::AlgorithmMismatch { alg }
        }
        "decryption-failed" => Error::DecryptionFailed,
        "external-key" => Error::ExternalKey { alias: alias()? },
        "key-exists" => Error::KeyExists,
        "key-in-use" => Error::KeyInUse { alias: alias()? },
        "key-not-usable" => {
            let state = [
                KeyState::PreActive,
                KeyState::Active,
                KeyState::Retired,
                KeyState::Destroyed,
            ]
            .into_iter()
            .find(|state| Some(state.as_str()) == arg)?;
            Error::KeyNotUsable { state }
        }
        "invalid-signature" => Error::InvalidSignature,
        "reserved-alias" => Error::ReservedAlias { alias: alias()? },
        "unknown-kid" => Error::UnknownKid {
            kid: Kid::new(arg?).ok()?,
        },
        _ => return None,
    })
}

/// A malformed response from the server.
pub(crate) fn bad_response(what: &'static str) -> Error {
    Error::Remote {
        kind: ErrorKind::Internal,
        message: format!("malformed response: {what}"),
    }
}

/// An `INVALID_ARGUMENT` status naming the request `field`.
pub(crate) fn invalid(field: &str, reason: &str) -> Status {
    Status::invalid_argument(format!("invalid `{field}`: {reason}"))
}

/// Parses a key alias field.
pub(crate) fn parse_alias(field: &str, value: &str) -> Result<KeyAlias, Status> {
    value
        .parse()
        .map_err(|_| invalid(field, "expected `service.purpose`"))
}

/// Parses a key reference field: an alias or a kid.
pub(crate) fn parse_key_ref(field: &str, value: &str) -> Result<KeyRef, Status> {
    value
        .parse()
        .map_err(|_| invalid(field, "expected an alias `service.purpose` or a kid"))
}

/// Parses a kid field.
pub(crate) fn parse_kid(field: &str, value: &str) -> Result<Kid, Status> {
    Kid::new(value).map_err(|_| invalid(field, "not a key id"))
}

/// Parses a JWS algorithm field.
pub(crate) fn parse_alg(field: &str, value: &str) -> Result<Algorithm, Status> {
    Algorithm::from_name(value).ok_or_else(|| invalid(field, "unsupported JWS algorithm"))
}

/// Parses a JWE key management algorithm field.
pub(crate) fn parse_key_management(field: &str, value: &str) -> Result<KeyManagement, Status> {
    KeyManagement::from_name(value)
        .ok_or_else(|| invalid(field, "unsupported JWE key management algorithm"))
}

/// Parses a JWE content encryption field.
pub(crate) fn parse_enc(field: &str, value: &str) -> Result<ContentEncryption, Status> {
    ContentEncryption::from_name(value)
        .ok_or_else(|| invalid(field, "unsupported JWE content encryption"))
}

/// Parses a JWK field (JSON).
pub(crate) fn parse_jwk(field: &str, value: &str) -> Result<Jwk, Status> {
    serde_json::from_str(value).map_err(|_| invalid(field, "not a supported JWK"))
}

/// Parses an optional provider id field.
pub(crate) fn parse_provider(
    field: &str,
    value: Option<&str>,
) -> Result<Option<ProviderId>, Status> {
    value
        .map(|id| ProviderId::new(id).map_err(|_| invalid(field, "not a provider id")))
        .transpose()
}

/// Parses a key usage message.
pub(crate) fn parse_usage(field: &str, value: Option<&proto::KeyUsage>) -> Result<KeySpec, Status> {
    usage_from_proto(value)
        .map(|usage| KeySpec { usage })
        .ok_or_else(|| invalid(field, "expected a supported `sign` or `decrypt` algorithm"))
}

/// A JWK as JSON text. Public JWKs only, except an imported private key on its way in.
pub(crate) fn jwk_json(jwk: &Jwk) -> String {
    serde_json::to_string(jwk).unwrap_or_default()
}

/// A JWK set as JSON text.
pub(crate) fn jwks_json(jwks: &JwkSet) -> String {
    serde_json::to_string(jwks).unwrap_or_default()
}

/// The message of a key usage.
pub(crate) fn usage_to_proto(usage: KeyUsage) -> proto::KeyUsage {
    use proto::key_usage::Usage;
    let usage = match usage {
        KeyUsage::Sign(alg) => Some(Usage::Sign(alg.name().to_owned())),
        KeyUsage::Decrypt(alg) => Some(Usage::Decrypt(alg.name().to_owned())),
    };
    proto::KeyUsage { usage }
}

/// The key usage of a message, if it names a supported algorithm.
pub(crate) fn usage_from_proto(usage: Option<&proto::KeyUsage>) -> Option<KeyUsage> {
    use proto::key_usage::Usage;
    match usage?.usage.as_ref()? {
        Usage::Sign(alg) => Algorithm::from_name(alg).map(KeyUsage::Sign),
        Usage::Decrypt(alg) => KeyManagement::from_name(alg).map(KeyUsage::Decrypt),
    }
}

/// The message of a rotation policy.
pub(crate) const fn rotation_to_proto(policy: RotationPolicy) -> proto::RotationPolicy {
    proto::RotationPolicy {
        overlap_secs: policy.overlap_secs,
        period_secs: policy.period_secs,
        pre_active_secs: policy.pre_active_secs,
    }
}

/// The rotation policy of a message; absent is the default policy.
pub(crate) fn rotation_from_proto(policy: Option<&proto::RotationPolicy>) -> RotationPolicy {
    policy.map_or_else(RotationPolicy::default, |policy| {
        let base = match policy.period_secs {
            Some(period) => RotationPolicy::every(period, policy.overlap_secs),
            None => RotationPolicy::manual(policy.overlap_secs),
        };
        base.with_pre_activation(policy.pre_active_secs)
    })
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn from_timestamp(at: Option<&prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, Error> {
    at.map(|at| {
        u32::try_from(at.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
            .ok_or_else(|| bad_response("timestamp"))
    })
    .transpose()
}

const fn state_to_proto(state: KeyState) -> proto::KeyState {
    match state {
        KeyState::PreActive => proto::KeyState::PreActive,
        KeyState::Active => proto::KeyState::Active,
        KeyState::Retired => proto::KeyState::Retired,
        KeyState::Destroyed => proto::KeyState::Destroyed,
    }
}

fn state_from_proto(state: i32) -> Result<KeyState, Error> {
    match proto::KeyState::try_from(state) {
        Ok(proto::KeyState::PreActive) => Ok(KeyState::PreActive),
        Ok(proto::KeyState::Active) => Ok(KeyState::Active),
        Ok(proto::KeyState::Retired) => Ok(KeyState::Retired),
        Ok(proto::KeyState::Destroyed) => Ok(KeyState::Destroyed),
        Ok(proto::KeyState::Unspecified) | Err(_) => Err(bad_response("key state")),
    }
}

/// The message of a key version.
fn version_to_proto(version: &KeyVersion) -> proto::KeyVersion {
    proto::KeyVersion {
        version: version.version,
        kid: version.kid.as_str().to_owned(),
        provider: version.provider.as_ref().map(|p| p.as_str().to_owned()),
        public_jwk: jwk_json(&version.public_jwk.to_public()),
        state: state_to_proto(version.state).into(),
        created_at: Some(timestamp(version.created_at)),
        activated_at: version.activated_at.map(timestamp),
        retired_at: version.retired_at.map(timestamp),
        verify_until: version.verify_until.map(timestamp),
        destroyed_at: version.destroyed_at.map(timestamp),
    }
}

fn version_from_proto(version: &proto::KeyVersion) -> Result<KeyVersion, Error> {
    Ok(KeyVersion {
        version: version.version,
        kid: Kid::new(version.kid.as_str()).map_err(|_| bad_response("kid"))?,
        provider: version
            .provider
            .as_deref()
            .map(ProviderId::new)
            .transpose()
            .map_err(|_| bad_response("provider id"))?,
        public_jwk: serde_json::from_str(&version.public_jwk)
            .map_err(|_| bad_response("public JWK"))?,
        state: state_from_proto(version.state)?,
        created_at: from_timestamp(version.created_at.as_ref())?
            .ok_or_else(|| bad_response("created_at"))?,
        activated_at: from_timestamp(version.activated_at.as_ref())?,
        retired_at: from_timestamp(version.retired_at.as_ref())?,
        verify_until: from_timestamp(version.verify_until.as_ref())?,
        destroyed_at: from_timestamp(version.destroyed_at.as_ref())?,
    })
}

/// The message of an alias with its versions.
pub(crate) fn key_info_to_proto(info: &KeyInfo) -> proto::KeyInfo {
    proto::KeyInfo {
        alias: info.alias.to_string(),
        usage: Some(usage_to_proto(info.usage)),
        provider: info.provider.as_ref().map(|p| p.as_str().to_owned()),
        rotation: Some(rotation_to_proto(info.rotation)),
        external: info.external,
        versions: info.versions.iter().map(version_to_proto).collect(),
    }
}

/// An alias with its versions, from a response.
pub(crate) fn key_info_from_proto(info: &proto::KeyInfo) -> Result<KeyInfo, Error> {
    Ok(KeyInfo {
        alias: info.alias.parse().map_err(|_| bad_response("alias"))?,
        usage: usage_from_proto(info.usage.as_ref()).ok_or_else(|| bad_response("usage"))?,
        provider: info
            .provider
            .as_deref()
            .map(ProviderId::new)
            .transpose()
            .map_err(|_| bad_response("provider id"))?,
        rotation: rotation_from_proto(info.rotation.as_ref()),
        external: info.external,
        versions: info
            .versions
            .iter()
            .map(version_from_proto)
            .collect::<Result<_, _>>()?,
    })
}

/// The message of a rotation record.
pub(crate) fn rotation_record_to_proto(record: &RotationRecord) -> proto::RotationRecord {
    let reason = match record.reason {
        RotationReason::Manual => proto::RotationReason::Manual,
        RotationReason::Scheduled => proto::RotationReason::Scheduled,
    };
    proto::RotationRecord {
        alias: record.alias.to_string(),
        from_version: record.from_version,
        to_version: record.to_version,
        reason: reason.into(),
        actor: record.actor.clone(),
        at: Some(timestamp(record.at)),
    }
}

/// A rotation record from a response.
pub(crate) fn rotation_record_from_proto(
    record: &proto::RotationRecord,
) -> Result<RotationRecord, Error> {
    let reason = match proto::RotationReason::try_from(record.reason) {
        Ok(proto::RotationReason::Manual) => RotationReason::Manual,
        Ok(proto::RotationReason::Scheduled) => RotationReason::Scheduled,
        Ok(proto::RotationReason::Unspecified) | Err(_) => {
            return Err(bad_response("rotation reason"));
        }
    };
    Ok(RotationRecord {
        alias: record.alias.parse().map_err(|_| bad_response("alias"))?,
        from_version: record.from_version,
        to_version: record.to_version,
        reason,
        actor: record.actor.clone(),
        at: from_timestamp(record.at.as_ref())?.ok_or_else(|| bad_response("at"))?,
    })
}

/// The message of a wrapped key.
pub(crate) fn wrapped_to_proto(wrapped: &WrappedKey) -> proto::WrappedKey {
    proto::WrappedKey {
        alg: wrapped.alg.name().to_owned(),
        kid: wrapped.kid.as_str().to_owned(),
        encrypted_key: wrapped.encrypted_key.clone(),
        epk: wrapped.epk.as_ref().map(jwk_json),
    }
}

/// A wrapped key from a request (`Status` on bad input).
pub(crate) fn wrapped_from_request(
    field: &str,
    wrapped: Option<&proto::WrappedKey>,
) -> Result<WrappedKey, Status> {
    let wrapped = wrapped.ok_or_else(|| invalid(field, "missing"))?;
    Ok(WrappedKey {
        alg: parse_key_management(&format!("{field}.alg"), &wrapped.alg)?,
        kid: parse_kid(&format!("{field}.kid"), &wrapped.kid)?,
        encrypted_key: wrapped.encrypted_key.clone(),
        epk: wrapped
            .epk
            .as_deref()
            .map(|epk| parse_jwk(&format!("{field}.epk"), epk))
            .transpose()?,
    })
}

/// A wrapped key from a response.
pub(crate) fn wrapped_from_response(wrapped: &proto::WrappedKey) -> Result<WrappedKey, Error> {
    Ok(WrappedKey {
        alg: KeyManagement::from_name(&wrapped.alg).ok_or_else(|| bad_response("alg"))?,
        kid: Kid::new(wrapped.kid.as_str()).map_err(|_| bad_response("kid"))?,
        encrypted_key: wrapped.encrypted_key.clone(),
        epk: wrapped
            .epk
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| bad_response("epk"))?,
    })
}

/// An audit record as its message.
pub(super) fn audit_event_to_proto(event: &AuditEvent) -> proto::AuditEvent {
    proto::AuditEvent {
        seq: event.seq,
        at: Some(timestamp(event.at)),
        actor: event.actor.clone(),
        operation: event.operation.clone(),
        alias: event.alias.clone(),
        kid: event.kid.clone(),
        outcome: event.outcome.clone(),
        prev_hash: event.prev_hash.clone(),
        hash: event.hash.clone(),
    }
}

/// An audit record from the server's message.
pub(super) fn audit_event_from_proto(event: proto::AuditEvent) -> Result<AuditEvent, Error> {
    Ok(AuditEvent {
        seq: event.seq,
        at: from_timestamp(event.at.as_ref())?.ok_or_else(|| bad_response("at"))?,
        actor: event.actor,
        operation: event.operation,
        alias: event.alias,
        kid: event.kid,
        outcome: event.outcome,
        prev_hash: event.prev_hash,
        hash: event.hash,
    })
}

/// A chain check's report as its message.
pub(super) fn audit_report_to_proto(report: &AuditReport) -> proto::AuditReport {
    proto::AuditReport {
        records: report.records,
        checkpoints: report.checkpoints,
        first_bad_seq: report.first_bad_seq,
        problem: report.problem.map(|problem| problem.as_str().to_owned()),
    }
}

/// A chain check's report from the server's message.
pub(super) fn audit_report_from_proto(report: proto::AuditReport) -> Result<AuditReport, Error> {
    let problem = report
        .problem
        .map(|problem| AuditProblem::from_name(&problem).ok_or_else(|| bad_response("problem")))
        .transpose()?;
    Ok(AuditReport {
        records: report.records,
        checkpoints: report.checkpoints,
        first_bad_seq: report.first_bad_seq,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_round_trip_through_a_status_code() {
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Unsupported,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_for(code_for(kind)), kind, "{kind}");
        }
    }

    #[test]
    fn internal_errors_keep_their_detail_off_the_wire() {
        let err = Error::Internal {
            provider: ProviderId::new("soft").unwrap(),
            source: "secret detail: token 1234".into(),
        };
        let status = status_for(&err);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("1234"), "{}", status.message());
        assert!(!status.message().contains("soft"), "{}", status.message());
    }

    #[test]
    fn client_errors_name_the_callers_input() {
        let err = Error::InvalidKey {
            reason: "not a P-256 key",
        };
        let status = status_for(&err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid key: not a P-256 key");
        let back = error_from_status(&status);
        assert_eq!(back.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn variants_callers_match_on_survive_the_wire() {
        let alias: KeyAlias = "issuer.credential-signing".parse().unwrap();
        for err in [
            Error::AliasExists {
                alias: alias.clone(),
            },
            Error::AlgorithmMismatch { alg: "ES384" },
            Error::DecryptionFailed,
            Error::KeyInUse { alias },
            Error::ReservedAlias {
                alias: "as.access-token-signing".parse().unwrap(),
            },
            Error::KeyNotUsable {
                state: KeyState::Destroyed,
            },
            Error::InvalidSignature,
        ] {
            let back = error_from_status(&status_for_kms(&err));
            assert_eq!(back.to_string(), err.to_string());
            assert_eq!(format!("{back:?}"), format!("{err:?}"));
        }
    }

    #[test]
    fn usages_round_trip() {
        for usage in [
            KeyUsage::Sign(Algorithm::Es256),
            KeyUsage::Sign(Algorithm::EdDsa),
            KeyUsage::Decrypt(KeyManagement::EcdhEsA256Kw),
        ] {
            assert_eq!(usage_from_proto(Some(&usage_to_proto(usage))), Some(usage));
        }
        let bogus = proto::KeyUsage {
            usage: Some(proto::key_usage::Usage::Sign("HS256".to_owned())),
        };
        assert_eq!(usage_from_proto(Some(&bogus)), None);
        assert!(parse_usage("usage", None).is_err());
    }
}
