#![doc = include_str!("../README.md")]

pub mod audit;
pub mod cert;
pub mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod jobs;
pub mod kms;
pub mod local;
pub mod provider;
pub mod registry;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

use edk_tenancy::{MigrationScope, MigrationSet};

pub use error::Error;
pub use kms::{Caller, KeyAlias, KeyInfo, KeyRef, KeyState, Kms, NewKey};
pub use local::{DefaultAlias, LocalKms, LocalKmsBuilder};
pub use provider::{KeyProvider, ProviderId};

/// The tables of edk-kms (component `edk-kms`, in every tenant's schema or file), to pass to
/// `Tenancy::builder(..).migrations(..)`.
///
/// # Errors
/// [`Error::Tenancy`] if the embedded migrations are malformed (a build defect).
pub fn migrations() -> Result<MigrationSet, Error> {
    MigrationSet::new(
        "edk-kms",
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
    .map_err(|err| Error::Tenancy(err.into()))
}

/// The platform tables of edk-kms (component `edk-kms-platform`: run-time provider
/// registrations and alias bindings), to pass to `Tenancy::builder(..).migrations(..)`.
///
/// # Errors
/// [`Error::Tenancy`] if the embedded migrations are malformed (a build defect).
pub fn platform_migrations() -> Result<MigrationSet, Error> {
    MigrationSet::new(
        "edk-kms-platform",
        MigrationScope::Platform,
        &sqlx::migrate!("migrations/platform/postgres"),
        &sqlx::migrate!("migrations/platform/sqlite"),
    )
    .map_err(|err| Error::Tenancy(err.into()))
}
