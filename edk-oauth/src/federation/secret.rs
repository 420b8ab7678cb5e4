//! The upstream client secret, sealed by the tenant's KMS.
//!
//! A tenant's [`UpstreamOidcConfig`](super::UpstreamOidcConfig) holds our client secret at
//! the upstream OpenID Provider. Stored sealed, it is a compact JWE (`ECDH-ES`, `A256GCM`)
//! to the tenant's KMS key `as.upstream-secret-sealing` (created on first use), serialized
//! as `client_secret_sealed`; the database and the configuration read API only ever see
//! that ciphertext, and [`OidcFederation`](super::OidcFederation) decrypts it through the
//! KMS when it redeems a code. A configuration written before sealing existed holds
//! `client_secret` in clear: it is still read, and sealed the next time it is written
//! through [`AuthorizationServer::seal_upstream_secret`].
//!
//! The sealing key rotates only by hand; after a rotation, write the configuration again
//! (within the key's overlap) so that the secret is sealed to the new version.

use std::fmt;

use edk_kms::Kms;
use edk_kms::kms::{Caller, KeyAlias, service};
use edk_tenancy::TenantContext;
use secrecy::{ExposeSecret as _, SecretString};

use super::config::UpstreamOidcConfig;
use super::error::FederationError;
use crate::error::Error;
use crate::server::AuthorizationServer;

/// The purpose of the tenant key alias that seals upstream client secrets
/// (`as.upstream-secret-sealing`).
pub const SEALING_PURPOSE: &str = "upstream-secret-sealing";

/// The actor named in KMS audit records.
const KMS_ACTOR: &str = "edk-oauth";

/// Our client secret at the upstream provider, as configured.
#[derive(Clone)]
#[non_exhaustive]
pub enum UpstreamSecret {
    /// In clear, as written before sealing existed (or not yet written through the AS).
    Plain(SecretString),
    /// Sealed to the tenant's KMS key.
    Sealed(SealedSecret),
}

impl UpstreamSecret {
    /// Whether the secret is sealed.
    #[must_use]
    pub const fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

impl fmt::Debug for UpstreamSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain([redacted])"),
            Self::Sealed(_) => f.write_str("Sealed([ciphertext])"),
        }
    }
}

/// A client secret sealed to a tenant's KMS key: a compact JWE.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// A sealed secret from its compact JWE form, as stored.
    ///
    /// # Errors
    /// [`FederationError::Config`] when `jwe` is not a compact JWE (five base64url parts).
    pub fn parse(jwe: &str) -> Result<Self, FederationError> {
        let parts: Vec<&str> = jwe.split('.').collect();
        let base64url = |part: &&str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if parts.len() != 5 || !parts.iter().all(base64url) || jwe.len() > 16 * 1024 {
            return Err(FederationError::Config {
                field: "client_secret_sealed",
                reason: "must be a compact JWE",
            });
        }
        Ok(Self(jwe.to_owned()))
    }

    /// The compact JWE, as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret([ciphertext])")
    }
}

/// The tenant key alias that seals upstream client secrets.
///
/// # Errors
/// Never; the alias is well formed.
pub fn sealing_alias() -> Result<KeyAlias, FederationError> {
    KeyAlias::new(service::AS, SEALING_PURPOSE).map_err(|_| FederationError::Config {
        field: "client_secret",
        reason: "the sealing key alias is malformed",
    })
}

/// Seals `secret` to `tenant`'s sealing key, creating the key on first use.
///
/// # Errors
/// [`FederationError::Sealing`] when the KMS fails.
pub async fn seal(
    kms: &dyn Kms,
    tenant: &TenantContext,
    secret: &SecretString,
) -> Result<SealedSecret, FederationError> {
    let caller = Caller::new(tenant.clone(), KMS_ACTOR);
    let jwe = kms
        .seal(
            &caller,
            &sealing_alias()?,
            secret.expose_secret().as_bytes(),
        )
        .await
        .map_err(FederationError::Sealing)?;
    SealedSecret::parse(&jwe)
}

/// The secret `sealed` holds, decrypted by `tenant`'s sealing key.
///
/// # Errors
/// [`FederationError::Sealing`] when the KMS fails or the JWE was not sealed to this
/// tenant's key.
pub async fn unseal(
    kms: &dyn Kms,
    tenant: &TenantContext,
    sealed: &SealedSecret,
) -> Result<SecretString, FederationError> {
    let caller = Caller::new(tenant.clone(), KMS_ACTOR);
    let plaintext = kms
        .decrypt(&caller, &sealing_alias()?, sealed.as_str())
        .await
        .map_err(FederationError::Sealing)?;
    let text = String::from_utf8(plaintext.to_vec()).map_err(|_| FederationError::Config {
        field: "client_secret_sealed",
        reason: "the sealed secret is not UTF-8",
    })?;
    Ok(SecretString::from(text))
}

impl UpstreamOidcConfig {
    /// The configuration with its client secret sealed to `tenant`'s KMS key (unchanged if
    /// it is sealed already), ready to be serialized into the tenant's configuration.
    ///
    /// # Errors
    /// [`FederationError::Sealing`] when the KMS fails.
    pub async fn sealed(
        self,
        kms: &dyn Kms,
        tenant: &TenantContext,
    ) -> Result<Self, FederationError> {
        let sealed = match self.client_secret() {
            UpstreamSecret::Plain(secret) => seal(kms, tenant, secret).await?,
            UpstreamSecret::Sealed(_) => return Ok(self),
        };
        Ok(self.with_secret(UpstreamSecret::Sealed(sealed)))
    }
}

impl AuthorizationServer {
    /// `config` with its upstream client secret sealed to the tenant's KMS key, for
    /// writing to the tenant's configuration under
    /// [`UPSTREAM_OIDC`](super::UPSTREAM_OIDC).
    ///
    /// # Errors
    /// [`Error::Kms`] when the KMS fails.
    pub async fn seal_upstream_secret(
        &self,
        tenant: &TenantContext,
        config: UpstreamOidcConfig,
    ) -> Result<UpstreamOidcConfig, Error> {
        config
            .sealed(self.kms.as_ref(), tenant)
            .await
            .map_err(|err| match err {
                FederationError::Sealing(err) => Error::Kms(err),
                _ => Error::Internal {
                    what: "sealing the upstream client secret failed",
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_compact_jwes_are_sealed_secrets() {
        assert!(SealedSecret::parse("a.b.c.d.e").is_ok());
        assert!(SealedSecret::parse("a.b.c").is_err());
        assert!(SealedSecret::parse("a.b.c.d.e f").is_err());
        let sealed = UpstreamSecret::Sealed(SealedSecret::parse("aa.bb.cc.dd.ee").unwrap());
        assert!(!format!("{sealed:?}").contains("aa"));
        let plain = UpstreamSecret::Plain(SecretString::from("hunter2"));
        assert!(!format!("{plain:?}").contains("hunter2"));
    }
}
