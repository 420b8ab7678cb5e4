#![doc = include_str!("../README.md")]

pub mod authn;
pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_attestation;
mod client_auth;
pub mod config;
pub mod dpop;
pub mod error;
pub mod federation;
pub mod grant;
pub mod hashing;
mod introspect;
pub mod jobs;
pub mod policy;
mod random;
pub mod request;
pub mod resource;
mod secret;
pub mod server;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod token;

use edk_tenancy::{MigrationScope, MigrationSet};

pub use authn::{
    AuthenticatedSubject, Authenticator, AuthnCallback, AuthnRequest, AuthnStart, NoAuthenticator,
};
pub use authorize::{AuthorizeOutcome, ParResponse};
pub use client_auth::JWT_BEARER_ASSERTION;
pub use config::AsConfig;
pub use error::{AuthnError, Error, OAuthErrorCode};
pub use policy::{CredentialGrantPolicy, CredentialGrantRequest};
pub use request::{EndpointCall, Params};
pub use resource::{
    AccessTokenKeys, AccessTokenValidator, DpopReplayCache, MemoryReplayCache, RemoteJwks,
    ResourceRequest, StoreReplayCache, ValidatedToken,
};
pub use server::{AuthorizationServer, NewClient, PreAuthorizedCode, PreAuthorizedCodeRequest};
pub use store::{OAuthStore, SqlStore};
pub use token::{TokenOutcome, TokenResponse};

/// The migration component name of this crate's tables.
pub const MIGRATION_COMPONENT: &str = "edk-oauth";

/// This crate's tenant-scope migrations, for `TenancyBuilder::migrations`.
///
/// # Errors
/// Never for the embedded migrations; the error type is the tenancy's.
pub fn migrations() -> Result<MigrationSet, edk_tenancy::error::MigrationError> {
    MigrationSet::new(
        MIGRATION_COMPONENT,
        MigrationScope::Tenant,
        &sqlx::migrate!("migrations/postgres"),
        &sqlx::migrate!("migrations/sqlite"),
    )
}
