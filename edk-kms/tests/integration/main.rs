//! Integration tests of edk-kms: the provider conformance suite on every provider, each
//! provider's own guarantees, and LocalKms (the KMS suite, audit, interop, HSM faults).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit;
mod audit_replicas;
#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "azure")]
mod azure;
#[cfg(feature = "azure")]
mod azure_fixtures;
mod cache;
mod cert;
#[cfg(feature = "csc")]
mod csc;
mod dump;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "pkcs11")]
mod hsm;
mod interop;
mod jobs;
mod local;
#[cfg(feature = "mysql")]
mod mysql_store;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod reserved;
mod software;
mod support;
#[cfg(feature = "vault")]
mod vault;
