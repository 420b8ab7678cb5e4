//! The route handlers, one API struct per area of `/api/kms/v1`.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Tags};

use edk_core::HasKind;
use edk_kms::Caller;
use edk_server::{AdminPrincipal, ApiError, problem_for};

use crate::dto::KeyBody;
use crate::state::KmsState;

pub mod audit;
pub mod certificates;
pub mod crypto;
pub mod keys;
pub mod providers;
pub mod registrations;
pub mod resolvers;

/// The admin scopes of the KMS API.
pub mod scope {
    /// Reads providers, capabilities, keys, public keys and rotation history.
    pub const READ: &str = "kms:read";
    /// Creates, imports, registers, rotates and deletes keys.
    pub const WRITE: &str = "kms:write";
    /// Uses keys: signs, verifies, encrypts, decrypts, wraps, unwraps, agrees keys.
    pub const USE: &str = "kms:use";
    /// Every scope, for tokens of a tenant's KMS administrator.
    pub const ALL: [&str; 3] = [READ, WRITE, USE];
    /// Registers, replaces and removes key providers at run time: an operator's (platform)
    /// scope, never in a tenant administrator's token.
    pub const PROVIDERS: &str = "platform:kms:providers";
}

/// The path prefix of every KMS route.
pub const PREFIX: &str = "/api/kms/v1";

#[derive(Tags)]
pub(crate) enum KmsTag {
    /// Key providers and what they can do.
    Providers,
    /// Key aliases: creation, import, registration, rotation, deletion.
    Keys,
    /// Raw and JWS signatures.
    Signatures,
    /// JWE encryption, key wrapping and key agreement.
    Encryption,
    /// Public keys from JWKs, kids, COSE_Keys, x5c chains and DID URLs.
    Resolvers,
    /// X.509 certificates and chains for the tenant's keys.
    Certificates,
    /// The tenant's audit chain of KMS operations.
    Audit,
}

/// A key created or imported: 201 with the key.
#[derive(ApiResponse, Debug)]
pub enum KeyCreated {
    /// The new key.
    #[oai(status = 201)]
    Created(Json<KeyBody>),
}

/// A deletion: 204.
#[derive(ApiResponse, Debug)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

/// The caller of an admin request: the token's tenant and subject, as an admin
/// ([`Caller::admin`]), so that the aliases reserved for EDK's own services
/// ([`edk_kms::kms::RESERVED_SERVICES`]: `as.*`, `audit.*`, `did.*`) are refused with 403
/// for every operation that creates, changes or uses their private key.
pub(crate) async fn admin_caller(
    state: &KmsState,
    principal: &AdminPrincipal,
) -> Result<Caller, ApiError> {
    let caller = state.caller(principal).await?;
    Ok(Caller::admin(caller.tenant().clone(), caller.actor()))
}

/// Maps any library or server error to its problem.
#[expect(
    clippy::needless_pass_by_value,
    reason = "taken by value so handlers can write `.map_err(problem)`"
)]
pub(crate) fn problem<E: HasKind + 'static>(err: E) -> ApiError {
    problem_for(&err)
}
