#![doc = include_str!("../README.md")]

pub mod config;
pub mod credential;
pub mod error;
pub mod metadata;
pub mod offer;
pub mod proof;
pub mod request;

pub use config::{CredentialConfiguration, FormatProfile, IssuanceSettings, KeyIdentification};
pub use credential::{CredentialInput, issue_credential};
pub use error::{ConfigError, CredentialErrorCode, IssueError, ProtocolError};
pub use metadata::IssuerMetadata;
pub use offer::CredentialOffer;
pub use proof::{ProofPolicy, ProvenKey, verify_jwt_proof};
pub use request::{CredentialRequest, Proofs, RequestOptions, RequestedCredential};
