//! did:webvh v1.0: did:web with a verifiable history.
//!
//! A DID's history is a log (`did.jsonl`) of entries, each carrying the full DID document, the
//! method parameters and an `eddsa-jcs-2022` Data Integrity proof by an authorised update key;
//! entries are chained by hash and the DID's SCID is the hash of the first entry.
//!
//! - Controllers [`create`], [`update`] and [`deactivate`] with a [`Signer`] from the KMS and
//!   the [`Multikey`] of its key; no private key is needed here.
//! - Resolvers [`verify_log`] or [`resolve_log`] (offline, from the log text), with
//!   [`VersionQuery`] for `versionId`, `versionTime` and `versionNumber`.
//!
//! [`Signer`]: edk_core::jose::Signer

mod did;
mod entry;
mod error;
mod log;
mod multikey;
mod params;
pub mod proof;
mod resolve;
pub mod scid;
mod verify;
mod witness;

pub use did::WebvhDid;
pub use entry::{DidLog, LogEntry};
pub use error::{ProofFault, TimeFault, WebvhError};
pub use log::{
    CreateOptions, DID_CONTEXT, UpdateOptions, add_also_known_as, create, deactivate,
    moved_document, set_service, sign_entry, update,
};
pub use multikey::{Multikey, MultikeyError};
pub use params::{ActiveParameters, DEFAULT_TTL, METHOD_V1_0};
pub use resolve::{
    DID_LD_JSON, LogResolution, VersionQuery, did_web_document, resolve_log, resolve_verified,
    with_implicit_services,
};
pub use verify::{MAX_CLOCK_SKEW, VerifiedLog, Version, verify_log};
pub use witness::{WitnessConfig, WitnessFile, check_witness_proof, sign_version};
