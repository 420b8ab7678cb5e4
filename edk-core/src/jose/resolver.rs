//! The signing and key-resolution contracts: [`Signer`], [`Verifier`], [`KeyResolver`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Algorithm, JoseError, Jwk, JwkSet, SignError, VerifyingKey};
use crate::id::Kid;

/// Something that signs bytes with one key and one algorithm.
///
/// The KMS hands these out for a key alias; protocol code never sees key material.
#[async_trait]
pub trait Signer: fmt::Debug + Send + Sync {
    /// The JWS algorithm of the signatures this signer makes.
    fn algorithm(&self) -> Algorithm;

    /// The key id to put in JWS headers, if the key has one.
    fn kid(&self) -> Option<&Kid>;

    /// Signs `message`, returning the JOSE form of the signature (`r||s` for ECDSA).
    ///
    /// # Errors
    /// [`SignError`] when the backend cannot sign; its kind says whether the caller's request
    /// or the backend is at fault.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Something that verifies signatures made with one key.
#[async_trait]
pub trait Verifier: fmt::Debug + Send + Sync {
    /// Verifies `signature` over `message` with `alg`.
    ///
    /// # Errors
    /// [`JoseError::InvalidSignature`] when it does not verify, or a key/algorithm mismatch.
    async fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError>;
}

/// What a verifier knows when it looks for the key of a token: the token's protected header
/// values and, where the protocol has one, its claimed issuer.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct KeyQuery<'a> {
    /// The header's `alg`.
    pub alg: Algorithm,
    /// The header's `kid`: a plain key id, a JWK thumbprint or a DID URL.
    pub kid: Option<&'a str>,
    /// The header's `x5c` chain (standard base64 DER, leaf first).
    pub x5c: Option<&'a [String]>,
    /// The token's claimed issuer (`iss`), not yet verified; a resolver must only return keys
    /// that belong to it.
    pub issuer: Option<&'a str>,
}

impl<'a> KeyQuery<'a> {
    /// A query for `alg` with nothing else known.
    #[must_use]
    pub const fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            kid: None,
            x5c: None,
            issuer: None,
        }
    }

    /// The query with a `kid`.
    #[must_use]
    pub const fn with_kid(mut self, kid: Option<&'a str>) -> Self {
        self.kid = kid;
        self
    }

    /// The query with an `x5c` chain.
    #[must_use]
    pub const fn with_x5c(mut self, x5c: Option<&'a [String]>) -> Self {
        self.x5c = x5c;
        self
    }

    /// The query with a claimed issuer.
    #[must_use]
    pub const fn with_issuer(mut self, issuer: Option<&'a str>) -> Self {
        self.issuer = issuer;
        self
    }
}

/// Finds the public key that should verify a token: by `kid`, JWK thumbprint, DID URL or
/// `x5c` chain. Implemented by static JWK sets here, by DID resolution in edk-did and by
/// the KMS for a tenant's own keys.
#[async_trait]
pub trait KeyResolver: fmt::Debug + Send + Sync {
    /// Returns the key for `query`.
    ///
    /// # Errors
    /// [`JoseError::KeyNotFound`] when no key matches, [`JoseError::AmbiguousKey`] when the
    /// query cannot single one out, [`JoseError::UntrustedKey`] when the source refuses it and
    /// [`JoseError::KeySource`] when the source fails.
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError>;
}

/// A [`KeyResolver`] over a fixed set of keys, such as an issuer's published JWKS.
///
/// A token naming a `kid` gets the key with that `kid` (or that thumbprint); a token without
/// one gets the only key that supports its algorithm, and [`JoseError::AmbiguousKey`] if
/// several do.
#[derive(Clone, Debug, Default)]
pub struct JwksResolver {
    keys: Vec<Arc<VerifyingKey>>,
    issuer: Option<String>,
}

impl JwksResolver {
    /// A resolver over `jwks`; keys that cannot verify signatures are skipped.
    #[must_use]
    pub fn new(jwks: &JwkSet) -> Self {
        Self::from_keys(jwks.keys.iter())
    }

    /// A resolver over individual JWKs; keys that cannot verify signatures are skipped.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> Self {
        let keys = keys
            .into_iter()
            .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
            .map(Arc::new)
            .collect();
        Self { keys, issuer: None }
    }

    /// Restricts the resolver to tokens that claim `issuer`.
    #[must_use]
    pub fn for_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The keys.
    #[must_use]
    pub fn keys(&self) -> &[Arc<VerifyingKey>] {
        &self.keys
    }
}

#[async_trait]
impl KeyResolver for JwksResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        if let Some(expected) = &self.issuer
            && query.issuer != Some(expected.as_str())
        {
            return Err(JoseError::KeyNotFound);
        }
        if let Some(kid) = query.kid {
            return self
                .keys
                .iter()
                .find(|key| key.jwk().kid.as_deref() == Some(kid) || key.thumbprint() == kid)
                .cloned()
                .ok_or(JoseError::KeyNotFound);
        }
        let mut candidates = self.keys.iter().filter(|key| key.supports(query.alg));
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Ok(Arc::clone(key)),
            (Some(_), Some(_)) => Err(JoseError::AmbiguousKey),
            (None, _) => Err(JoseError::KeyNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;

    #[tokio::test]
    async fn a_jwks_key_for_encryption_verifies_nothing() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut jwk = key.public_jwk().with_kid("k1");
        jwk.key_use = Some("enc".to_owned());
        let resolver = JwksResolver::new(&JwkSet { keys: vec![jwk] });
        assert!(resolver.keys().is_empty());
        let query = KeyQuery::new(Algorithm::Es256).with_kid(Some("k1"));
        assert!(matches!(
            resolver.resolve(&query).await,
            Err(JoseError::KeyNotFound)
        ));
        let mut jwk = key.public_jwk().with_kid("k1");
        jwk.key_ops = Some(vec!["encrypt".to_owned()]);
        let resolver = JwksResolver::new(&JwkSet { keys: vec![jwk] });
        assert!(matches!(
            resolver.resolve(&query).await,
            Err(JoseError::KeyNotFound)
        ));
    }
}
