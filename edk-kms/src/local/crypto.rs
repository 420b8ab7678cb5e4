//! Encryption, decryption, key wrapping and key agreement of [`LocalKms`](super::LocalKms).

use std::sync::Arc;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::kdf;
use aws_lc_rs::key_wrap::{self, KeyWrap as _};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::RsaPublicKeyComponents;
use edk_core::jose::jwe::{self, ContentEncryption, Decrypter, JweOptions, KeyManagement};
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use edk_core::jose::{Algorithm, JoseError, Jwk};
use edk_core::{ErrorKind, HasKind, Kid, Limits};
use zeroize::Zeroizing;

use super::cache::Entry;
use super::{Inner, verifiable};
use crate::Error;
use crate::kms::{Caller, KeyAlias, KeyRef, KeyState, WrappedKey};
use crate::provider::{KeyUsage, ProviderId};
use crate::store::VersionRecord;

/// The usage of an external public key: its `alg` member if it names one, else the signing
/// algorithm its type implies.
pub(super) fn external_usage(jwk: &Jwk) -> Result<KeyUsage, Error> {
    if let Some(alg) = &jwk.alg {
        if let Some(alg) = Algorithm::from_name(alg) {
            return Ok(KeyUsage::Sign(alg));
        }
        if let Some(alg) = KeyManagement::from_name(alg) {
            return Ok(KeyUsage::Decrypt(alg));
        }
        return Err(Error::InvalidKey {
            reason: "the JWK's `alg` is not supported",
        });
    }
    Ok(KeyUsage::Sign(match jwk.params() {
        PublicParams::Ec { crv, .. } => match crv {
            EcCurve::P256 => Algorithm::Es256,
            EcCurve::P384 => Algorithm::Es384,
            EcCurve::Secp256k1 => Algorithm::Es256K,
            _ => {
                return Err(Error::InvalidKey {
                    reason: "unsupported curve",
                });
            }
        },
        PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            ..
        } => Algorithm::EdDsa,
        PublicParams::Rsa { .. } => Algorithm::Rs256,
        _ => {
            return Err(Error::InvalidKey {
                reason: "the JWK needs an `alg` for this key type",
            });
        }
    }))
}

/// A compact JWE of `plaintext` to `recipient`.
pub(super) fn encrypt(
    recipient: &Jwk,
    alg: KeyManagement,
    enc: ContentEncryption,
    plaintext: &[u8],
) -> Result<String, Error> {
    check_alg(recipient, alg)?;
    jwe::encrypt(plaintext, recipient, alg, enc, JweOptions::default()).map_err(|err| match err {
        JoseError::InvalidKey(_) | JoseError::UnsupportedKey(_) => {
            Error::AlgorithmMismatch { alg: alg.name() }
        }
        other => Error::Crypto(Box::new(other)),
    })
}

/// Wraps `key_bytes` (a content key for `enc`) to `recipient` with `alg`: RSA-OAEP-256, or
/// ECDH-ES+A128KW / ECDH-ES+A256KW with a fresh ephemeral P-256 key (RFC 7518 §4.6, the
/// Concat KDF without `apu`/`apv`). Direct `ECDH-ES` agrees the content key itself and
/// cannot wrap a given one.
pub(super) fn wrap(
    recipient: &Jwk,
    alg: KeyManagement,
    enc: ContentEncryption,
    key_bytes: &[u8],
) -> Result<WrappedKey, Error> {
    check_alg(recipient, alg)?;
    if key_bytes.len() != enc.key_len() {
        return Err(Error::InvalidKey {
            reason: "the key to wrap does not have the length of `enc`",
        });
    }
    let kid = Kid::new(recipient.thumbprint())?;
    match alg {
        KeyManagement::RsaOaep256 => {
            let PublicParams::Rsa { n, e } = recipient.params() else {
                return Err(Error::AlgorithmMismatch { alg: alg.name() });
            };
            let spki = AsDer::<PublicKeyX509Der<'_>>::as_der(&RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            })
            .map_err(wrap_failed)?;
            let public = PublicEncryptingKey::from_der(spki.as_ref()).map_err(wrap_failed)?;
            let public = OaepPublicEncryptingKey::new(public).map_err(wrap_failed)?;
            let mut out = vec![0; public.ciphertext_size()];
            let wrapped = public
                .encrypt(&OAEP_SHA256_MGF1SHA256, key_bytes, &mut out, None)
                .map_err(wrap_failed)?
                .to_vec();
            Ok(WrappedKey {
                alg,
                kid,
                encrypted_key: wrapped,
                epk: None,
            })
        }
        KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
            let PublicParams::Ec {
                crv: EcCurve::P256,
                x,
                y,
            } = recipient.params()
            else {
                return Err(Error::AlgorithmMismatch { alg: alg.name() });
            };
            let ephemeral =
                agreement::PrivateKey::generate(&agreement::ECDH_P256).map_err(wrap_failed)?;
            let public = ephemeral.compute_public_key().map_err(wrap_failed)?;
            let epk = epk_jwk(public.as_ref())?;
            let z = agreement::agree(
                &ephemeral,
                agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, uncompressed(x, y)),
                Error::InvalidKey {
                    reason: "the recipient key is not a valid P-256 public key",
                },
                |z| Ok(Zeroizing::new(z.to_vec())),
            )?;
            let kek_len = if alg == KeyManagement::EcdhEsA128Kw {
                16
            } else {
                32
            };
            let kek = concat_kdf(&z, alg.name(), kek_len)?;
            let cipher = if kek_len == 16 {
                &key_wrap::AES_128
            } else {
                &key_wrap::AES_256
            };
            let kek = key_wrap::KeyEncryptionKey::new(cipher, &kek).map_err(wrap_failed)?;
            let mut out = vec![0; key_bytes.len() + 16];
            let wrapped = kek.wrap(key_bytes, &mut out).map_err(wrap_failed)?.to_vec();
            Ok(WrappedKey {
                alg,
                kid,
                encrypted_key: wrapped,
                epk: Some(epk),
            })
        }
        _ => Err(Error::AlgorithmMismatch { alg: alg.name() }),
    }
}

fn wrap_failed<E>(_: E) -> Error {
    Error::Crypto("key wrapping failed".into())
}

fn uncompressed(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// The public JWK of an ephemeral P-256 key from its uncompressed SEC1 point.
fn epk_jwk(point: &[u8]) -> Result<Jwk, Error> {
    let coordinates = point
        .get(1..)
        .filter(|c| c.len() == 64 && point.first() == Some(&4));
    let Some((x, y)) = coordinates.map(|c| c.split_at(32)) else {
        return Err(Error::Crypto("unexpected ephemeral key encoding".into()));
    };
    Jwk::from_parts(
        PublicParams::Ec {
            crv: EcCurve::P256,
            x: x.to_vec(),
            y: y.to_vec(),
        },
        None,
    )
    .map_err(|err| Error::Crypto(Box::new(err)))
}

/// The Concat KDF of RFC 7518 §4.6.2 with SHA-256 and empty `apu`/`apv`.
fn concat_kdf(z: &[u8], algorithm_id: &str, key_len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut other_info = Vec::with_capacity(16 + algorithm_id.len());
    for field in [algorithm_id.as_bytes(), &[], &[]] {
        let len = u32::try_from(field.len()).map_err(|_| Error::Crypto("KDF input".into()))?;
        other_info.extend_from_slice(&len.to_be_bytes());
        other_info.extend_from_slice(field);
    }
    let bits = u32::try_from(key_len * 8).map_err(|_| Error::Crypto("KDF length".into()))?;
    other_info.extend_from_slice(&bits.to_be_bytes());
    let digest = kdf::get_sskdf_digest_algorithm(kdf::SskdfDigestAlgorithmId::Sha256)
        .ok_or_else(|| Error::Crypto("no SSKDF digest".into()))?;
    let mut out = Zeroizing::new(vec![0; key_len]);
    kdf::sskdf_digest(digest, z, &other_info, &mut out)
        .map_err(|_| Error::Crypto("the KDF failed".into()))?;
    Ok(out)
}

fn check_alg(recipient: &Jwk, alg: KeyManagement) -> Result<(), Error> {
    if recipient.alg.as_deref() == Some(alg.name()) {
        Ok(())
    } else {
        Err(Error::AlgorithmMismatch { alg: alg.name() })
    }
}

impl Inner {
    /// The entry and version `key` names for encryption: the alias's active version, or the
    /// version of a kid if it is active or pre-active.
    pub(super) async fn encryption_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
    ) -> Result<(Arc<Entry>, VersionRecord), Error> {
        let (entry, version) = match key {
            KeyRef::Alias(alias) => {
                let entry = self.entry(caller, alias).await?;
                let version = super::active_version(&entry.record)?.clone();
                (entry, version)
            }
            KeyRef::Kid(kid) => {
                let entry = self.entry_by_kid(caller, kid).await?;
                let version = entry
                    .record
                    .version_by_kid(kid)
                    .ok_or_else(|| Error::UnknownKid { kid: kid.clone() })?
                    .clone();
                if !matches!(
                    version.version.state,
                    KeyState::Active | KeyState::PreActive
                ) {
                    return Err(Error::KeyNotUsable {
                        state: version.version.state,
                    });
                }
                (entry, version)
            }
        };
        if !matches!(entry.record.usage, KeyUsage::Decrypt(_)) {
            return Err(Error::AlgorithmMismatch {
                alg: super::usage_alg(entry.record.usage),
            });
        }
        Ok((entry, version))
    }

    /// The decrypter of `alias`'s version `kid` (or its active one).
    async fn decrypter(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        kid: Option<&str>,
    ) -> Result<(Kid, ProviderId, Arc<dyn Decrypter>), Error> {
        let entry = self.entry(caller, alias).await?;
        if entry.record.external {
            return Err(Error::ExternalKey {
                alias: alias.clone(),
            });
        }
        if !matches!(entry.record.usage, KeyUsage::Decrypt(_)) {
            return Err(Error::AlgorithmMismatch {
                alg: super::usage_alg(entry.record.usage),
            });
        }
        let now = self.now();
        let version = match kid {
            Some(kid) => entry
                .record
                .versions
                .iter()
                .find(|v| v.version.kid.as_str() == kid)
                .ok_or(Error::DecryptionFailed)?,
            None => super::active_version(&entry.record)?,
        };
        if !verifiable(&version.version, now) {
            return Err(Error::KeyNotUsable {
                state: version.version.state,
            });
        }
        let handle = version.handle.as_ref().ok_or(Error::KeyNotUsable {
            state: KeyState::Destroyed,
        })?;
        let decrypter = self
            .provider(handle.provider())?
            .decrypter(&caller.tenant().id(), handle)
            .await?;
        Ok((
            version.version.kid.clone(),
            handle.provider().clone(),
            decrypter,
        ))
    }

    /// Decrypts a compact JWE addressed to one of `alias`'s versions.
    pub(super) async fn decrypt(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        token: &str,
    ) -> Result<(Kid, Zeroizing<Vec<u8>>), Error> {
        caller.check_reserved(alias)?;
        let parsed =
            jwe::Jwe::parse(token, &Limits::default()).map_err(|_| Error::DecryptionFailed)?;
        let (kid, provider, decrypter) = self
            .decrypter(caller, alias, parsed.header().kid.as_deref())
            .await?;
        match parsed.decrypt(&*decrypter).await {
            Ok((_, plaintext)) => Ok((kid, plaintext)),
            Err(err) => Err(decryption_error(&provider, err)),
        }
    }

    /// Unwraps a key wrapped to one of `alias`'s versions.
    pub(super) async fn unwrap(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        enc: ContentEncryption,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        caller.check_reserved(alias)?;
        let mut header = serde_json::json!({
            "alg": wrapped.alg.name(),
            "enc": enc.name(),
            "kid": wrapped.kid.as_str(),
        });
        if let Some(epk) = &wrapped.epk {
            header["epk"] = serde_json::to_value(epk).map_err(|_| Error::DecryptionFailed)?;
        }
        let header: jwe::JweHeader =
            serde_json::from_value(header).map_err(|_| Error::DecryptionFailed)?;
        let (_, provider, decrypter) = self
            .decrypter(caller, alias, Some(wrapped.kid.as_str()))
            .await?;
        if !decrypter.supports(wrapped.alg) {
            return Err(Error::AlgorithmMismatch {
                alg: wrapped.alg.name(),
            });
        }
        let key = decrypter
            .content_key(&header, &wrapped.encrypted_key)
            .await
            .map_err(|err| decryption_error(&provider, err))?;
        if key.len() != enc.key_len() {
            return Err(Error::DecryptionFailed);
        }
        Ok(key)
    }

    /// The raw ECDH shared secret of `alias`'s active key with `peer`.
    pub(super) async fn agree(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        peer: &Jwk,
    ) -> Result<(Kid, Zeroizing<Vec<u8>>), Error> {
        caller.check_reserved(alias)?;
        let entry = self.entry(caller, alias).await?;
        if entry.record.external {
            return Err(Error::ExternalKey {
                alias: alias.clone(),
            });
        }
        if !matches!(entry.record.usage, KeyUsage::Decrypt(alg) if crate::provider::is_ecdh(alg)) {
            return Err(Error::AlgorithmMismatch {
                alg: super::usage_alg(entry.record.usage),
            });
        }
        let active = super::active_version(&entry.record)?;
        let handle = active.handle.as_ref().ok_or(Error::KeyNotUsable {
            state: KeyState::Destroyed,
        })?;
        let z = self
            .provider(handle.provider())?
            .agree(&caller.tenant().id(), handle, peer)
            .await?;
        Ok((active.version.kid.clone(), z))
    }
}

fn decryption_error(provider: &ProviderId, err: JoseError) -> Error {
    match err.kind() {
        ErrorKind::Unavailable => Error::Unavailable {
            provider: provider.clone(),
            source: Box::new(err),
        },
        _ => Error::DecryptionFailed,
    }
}
