//! What can go wrong while building, verifying or resolving a did:webvh log.

use std::fmt;

use edk_core::error::{ErrorKind, HasKind};
use edk_core::jose::SignError;

/// A did:webvh failure. Verification failures name the log entry (its 1-based version
/// number) where they were found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebvhError {
    /// The DID is malformed (did:webvh §1).
    #[error("invalid did:webvh DID: {reason}")]
    InvalidDid {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A log line is not a well-formed log entry.
    #[error("log entry {line} is malformed: {reason}")]
    MalformedEntry {
        /// The 1-based line number in `did.jsonl`.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The log has no entries.
    #[error("the DID log is empty")]
    EmptyLog,
    /// A parameter has the wrong type or value, or is not allowed in this entry.
    #[error("entry {version}: invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The version number of the entry.
        version: u64,
        /// The parameter name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `method` parameter names a specification version this implementation does not know.
    #[error("entry {version}: unsupported method `{method}`")]
    UnsupportedMethod {
        /// The version number of the entry.
        version: u64,
        /// The value found.
        method: String,
    },
    /// The `versionId` does not have the form `<n>-<entryHash>` or `n` is out of sequence.
    #[error("entry {version}: bad versionId `{version_id}`")]
    VersionId {
        /// The expected version number.
        version: u64,
        /// The value found.
        version_id: String,
    },
    /// The recomputed entry hash differs from the one in `versionId` (tampered entry or
    /// broken hash chain).
    #[error("entry {version}: the entry hash does not match its content and predecessor")]
    EntryHash {
        /// The version number of the entry.
        version: u64,
    },
    /// The SCID does not match the first entry, or an entry names another SCID.
    #[error("entry {version}: SCID mismatch")]
    Scid {
        /// The version number of the entry.
        version: u64,
    },
    /// `versionTime` is malformed, not after its predecessor, or in the future.
    #[error("entry {version}: versionTime {fault}")]
    VersionTime {
        /// The version number of the entry.
        version: u64,
        /// What is wrong with it.
        fault: TimeFault,
    },
    /// A Data Integrity proof is missing, malformed or does not verify.
    #[error("entry {version}: invalid proof: {fault}")]
    InvalidProof {
        /// The version number of the entry.
        version: u64,
        /// What is wrong with it.
        fault: ProofFault,
    },
    /// A proof was made by a key that is not an authorised update key for the entry.
    #[error("entry {version}: proof by a key that is not authorised: {key}")]
    UnauthorizedKey {
        /// The version number of the entry.
        version: u64,
        /// The Multikey that signed.
        key: String,
    },
    /// Pre-rotation is active and the entry's `updateKeys` are missing or not committed to in
    /// the previous entry's `nextKeyHashes`.
    #[error("entry {version}: pre-rotation violated: {reason}")]
    PreRotation {
        /// The version number of the entry.
        version: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The DID document (`state`) is not acceptable for this log.
    #[error("entry {version}: invalid DID document: {reason}")]
    InvalidDocument {
        /// The version number of the entry.
        version: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry follows a deactivating entry.
    #[error("entry {version}: the DID was deactivated by an earlier entry")]
    AfterDeactivation {
        /// The version number of the entry.
        version: u64,
    },
    /// Fewer distinct witnesses approved the entry than its threshold requires.
    #[error("entry {version}: witness threshold not met ({approvals} of {threshold})")]
    WitnessThreshold {
        /// The version number of the entry.
        version: u64,
        /// The required number of witnesses.
        threshold: u64,
        /// The number of distinct witnesses with a valid proof.
        approvals: u64,
    },
    /// A witness proof offered for `did-witness.json` is refused: unknown `versionId`, a key
    /// that is not a witness, or a proof that does not verify.
    #[error("witness proof refused: {reason}")]
    WitnessProof {
        /// Why.
        reason: String,
    },
    /// `did-witness.json` is malformed.
    #[error("did-witness.json is malformed: {reason}")]
    MalformedWitnessFile {
        /// What is wrong with it.
        reason: String,
    },
    /// No entry of the log carries the requested DID as its document `id`.
    #[error("the log does not belong to the requested DID")]
    DidNotInLog,
    /// The requested version does not exist in the verified log.
    #[error("the requested version is not in the log")]
    VersionNotFound,
    /// The caller asked for something the log state forbids (for example updating a
    /// deactivated DID or moving a DID that is not portable).
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: &'static str,
    },
    /// The signer cannot make Ed25519 signatures, or its signature does not verify with the
    /// Multikey it was given with.
    #[error("the signer does not match the update key: {reason}")]
    SignerMismatch {
        /// What is wrong.
        reason: &'static str,
    },
    /// The signer (the KMS) failed.
    #[error("signing failed")]
    Sign(#[source] SignError),
    /// A value could not be canonicalised with JCS (RFC 8785).
    #[error("JSON canonicalization failed")]
    Canonicalization(#[source] serde_json::Error),
}

impl WebvhError {
    /// The DID Resolution error code for this failure: `notFound` for a version that is not
    /// in the log, `invalidDid` for everything else (did:webvh §9).
    #[must_use]
    pub const fn resolution_error(&self) -> &'static str {
        match self {
            Self::VersionNotFound => "notFound",
            _ => "invalidDid",
        }
    }
}

impl HasKind for WebvhError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::VersionNotFound => ErrorKind::NotFound,
            Self::UnsupportedMethod { .. } => ErrorKind::Unsupported,
            Self::Refused { .. } => ErrorKind::Conflict,
            Self::Sign(err) => err.kind(),
            Self::Canonicalization(_) => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Why a `versionTime` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeFault {
    /// Not a UTC ISO 8601 date-time.
    Malformed,
    /// Not strictly after the previous entry's time.
    NotIncreasing,
    /// Later than now plus the allowed clock skew.
    InFuture,
}

impl fmt::Display for TimeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "is not a UTC date-time",
            Self::NotIncreasing => "is not after the previous entry",
            Self::InFuture => "is in the future",
        })
    }
}

/// Why a Data Integrity proof is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofFault {
    /// The entry carries no proof.
    Missing,
    /// The proof is not a JSON object or lacks a member.
    Malformed,
    /// `type` is not `DataIntegrityProof`.
    Type,
    /// `cryptosuite` is not `eddsa-jcs-2022`.
    Cryptosuite,
    /// `proofPurpose` is not `assertionMethod`.
    Purpose,
    /// `verificationMethod` is not `did:key:<mk>#<mk>` with an Ed25519 Multikey.
    VerificationMethod,
    /// `created` is not a date-time.
    Created,
    /// The proof's `@context` is not a prefix of the document's.
    Context,
    /// The signature does not verify.
    Signature,
}

impl fmt::Display for ProofFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "no proof",
            Self::Malformed => "malformed proof",
            Self::Type => "type is not DataIntegrityProof",
            Self::Cryptosuite => "cryptosuite is not eddsa-jcs-2022",
            Self::Purpose => "proofPurpose is not assertionMethod",
            Self::VerificationMethod => "verificationMethod is not an Ed25519 did:key",
            Self::Created => "created is not a date-time",
            Self::Context => "@context does not match the document",
            Self::Signature => "signature does not verify",
        })
    }
}
