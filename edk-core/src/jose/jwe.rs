//! JWE compact serialization (RFC 7516) with ECDH-ES (RFC 7518 §4.6, RFC 8037 §3.2) and
//! RSA-OAEP-256 (RFC 7518 §4.3) key management and AES-GCM content encryption (§5.3).
//!
//! Encryption needs only the recipient's public JWK. Decryption goes through a
//! [`Decrypter`], so the private half can stay in a KMS: a KMS computes the ECDH shared
//! secret and hands it to [`ecdh_es_content_key`], or unwraps the content key itself.
//! [`DecryptingKey`] is the in-memory implementation.
//!
//! Every decryption failure, whatever its cause (wrong key, bad wrap, bad tag), is the one
//! error [`JoseError::DecryptionFailed`]; a failed RSA or AES key unwrap continues with a
//! random content key so that timing does not tell the causes apart (RFC 7516 §11.5).
//!
//! ```
//! use edk_core::jose::jwe::{self, ContentEncryption, DecryptingKey, KeyManagement};
//! # async fn demo() -> Result<(), edk_core::jose::JoseError> {
//! let verifier_key = DecryptingKey::generate(KeyManagement::EcdhEs)?;
//! let token = jwe::encrypt(
//!     br#"{"vp_token":{}}"#,
//!     &verifier_key.public_jwk(),
//!     KeyManagement::EcdhEs,
//!     ContentEncryption::A128Gcm,
//!     jwe::JweOptions::default(),
//! )?;
//! let (_header, plaintext) = jwe::Jwe::parse(&token, &Default::default())?
//!     .decrypt(&verifier_key)
//!     .await?;
//! assert_eq!(plaintext.as_slice(), br#"{"vp_token":{}}"#);
//! # Ok(()) }
//! ```

use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::encoding::{
    AsBigEndian as _, AsDer, Curve25519SeedBin, EcPrivateKeyBin, Pkcs8V1Der, PublicKeyX509Der,
};
use aws_lc_rs::kdf::{SskdfDigestAlgorithmId, get_sskdf_digest_algorithm, sskdf_digest};
use aws_lc_rs::key_wrap::{self, KeyEncryptionKey, KeyWrap as _};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::jwk::{EcCurve, OkpCurve, PrivateParams, PublicParams};
use super::{JoseError, Jwk};
use crate::encoding::{b64url_decode, b64url_encode};
use crate::limits::Limits;

/// JWE key management algorithms (`alg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyManagement {
    /// `ECDH-ES`: the agreed key is the content key.
    EcdhEs,
    /// `ECDH-ES+A128KW`: the agreed key wraps the content key with AES-128 key wrap.
    EcdhEsA128Kw,
    /// `ECDH-ES+A256KW`: the agreed key wraps the content key with AES-256 key wrap.
    EcdhEsA256Kw,
    /// `RSA-OAEP-256`: RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
}

impl KeyManagement {
    /// Every supported key management algorithm.
    pub const ALL: [Self; 4] = [
        Self::EcdhEs,
        Self::EcdhEsA128Kw,
        Self::EcdhEsA256Kw,
        Self::RsaOaep256,
    ];

    /// The JOSE name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::EcdhEs => "ECDH-ES",
            Self::EcdhEsA128Kw => "ECDH-ES+A128KW",
            Self::EcdhEsA256Kw => "ECDH-ES+A256KW",
            Self::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    /// Parses a JOSE name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    const fn is_ecdh(self) -> bool {
        !matches!(self, Self::RsaOaep256)
    }

    /// The AES key-wrap key length in bytes for the `+AxxxKW` variants.
    const fn wrap_len(self) -> Option<usize> {
        match self {
            Self::EcdhEsA128Kw => Some(16),
            Self::EcdhEsA256Kw => Some(32),
            Self::EcdhEs | Self::RsaOaep256 => None,
        }
    }
}

/// JWE content encryption algorithms (`enc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentEncryption {
    /// `A128GCM`.
    A128Gcm,
    /// `A256GCM`.
    A256Gcm,
}

impl ContentEncryption {
    /// The JOSE name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A256Gcm => "A256GCM",
        }
    }

    /// Parses a JOSE name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "A128GCM" => Some(Self::A128Gcm),
            "A256GCM" => Some(Self::A256Gcm),
            _ => None,
        }
    }

    /// The content key length in bytes.
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A256Gcm => 32,
        }
    }

    const fn aead(self) -> &'static aead::Algorithm {
        match self {
            Self::A128Gcm => &aead::AES_128_GCM,
            Self::A256Gcm => &aead::AES_256_GCM,
        }
    }
}

macro_rules! jose_name_serde {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                Self::from_name(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!(concat!("unsupported ", $what, " `{}`"), name))
                })
            }
        }
    };
}

jose_name_serde!(KeyManagement, "JWE alg");
jose_name_serde!(ContentEncryption, "JWE enc");

/// A JWE protected header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JweHeader {
    /// `alg`.
    pub alg: KeyManagement,
    /// `enc`.
    pub enc: ContentEncryption,
    /// `kid` of the recipient key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `typ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// `cty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// `epk`: the sender's ephemeral public key (ECDH-ES).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epk: Option<Jwk>,
    /// `apu`: agreement PartyUInfo, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apu: Option<String>,
    /// `apv`: agreement PartyVInfo, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apv: Option<String>,
    /// Every other parameter.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Optional header values for [`encrypt`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JweOptions {
    /// `typ`.
    pub typ: Option<String>,
    /// `cty`.
    pub cty: Option<String>,
    /// `apu` as raw bytes.
    pub apu: Option<Vec<u8>>,
    /// `apv` as raw bytes.
    pub apv: Option<Vec<u8>>,
}

impl JweOptions {
    /// Options with `apu` and `apv` set (OID4VP binds the wallet and verifier nonces here).
    #[must_use]
    pub fn with_party_info(mut self, apu: Option<Vec<u8>>, apv: Option<Vec<u8>>) -> Self {
        self.apu = apu;
        self.apv = apv;
        self
    }

    /// Options with `typ` set.
    #[must_use]
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }
}

/// Encrypts `plaintext` to `recipient` (a public EC P-256/P-384, X25519 or RSA JWK).
///
/// The recipient's `kid` is copied into the header.
///
/// # Errors
/// [`JoseError::InvalidKey`] when the key cannot be used with `alg` (wrong type or curve, an
/// RSA modulus under 2,048 bits, or a key `alg` member naming another algorithm).
pub fn encrypt(
    plaintext: &[u8],
    recipient: &Jwk,
    alg: KeyManagement,
    enc: ContentEncryption,
    options: JweOptions,
) -> Result<String, JoseError> {
    if let Some(own) = &recipient.alg
        && own != alg.name()
    {
        return Err(JoseError::InvalidKey(
            "the key is for another JWE algorithm",
        ));
    }
    let rng = SystemRandom::new();
    let mut header = JweHeader {
        alg,
        enc,
        kid: recipient.kid.clone(),
        typ: options.typ,
        cty: options.cty,
        epk: None,
        apu: options.apu.as_ref().map(b64url_encode),
        apv: options.apv.as_ref().map(b64url_encode),
        extra: Map::new(),
    };
    let (cek, encrypted_key) = if alg.is_ecdh() {
        let (curve, peer) = agreement_peer(recipient.params())?;
        let ephemeral = agreement::PrivateKey::generate(curve).map_err(|_| JoseError::Crypto)?;
        let public = ephemeral
            .compute_public_key()
            .map_err(|_| JoseError::Crypto)?;
        header.epk = Some(epk_jwk(recipient.params(), public.as_ref())?);
        let shared = agreement::agree(
            &ephemeral,
            UnparsedPublicKey::new(curve, &peer),
            JoseError::InvalidKey("the recipient key is not a valid public key"),
            |z| Ok(Zeroizing::new(z.to_vec())),
        )?;
        let derived = concat_kdf(&shared, &header)?;
        match alg.wrap_len() {
            None => (derived, Vec::new()),
            Some(_) => {
                let cek = random_key(&rng, enc.key_len())?;
                let wrapped = aes_wrap(&derived, &cek)?;
                (cek, wrapped)
            }
        }
    } else {
        let PublicParams::Rsa { n, e } = recipient.params() else {
            return Err(JoseError::InvalidKey("RSA-OAEP-256 needs an RSA key"));
        };
        if n.len() * 8 < super::MIN_RSA_BITS {
            return Err(JoseError::InvalidKey("RSA modulus shorter than 2048 bits"));
        }
        let spki = AsDer::<PublicKeyX509Der<'_>>::as_der(&RsaPublicKeyComponents { n, e })
            .map_err(|_| JoseError::InvalidKey("bad RSA public key"))?;
        let public = PublicEncryptingKey::from_der(spki.as_ref())
            .ok()
            .and_then(|key| OaepPublicEncryptingKey::new(key).ok())
            .ok_or(JoseError::InvalidKey("bad RSA public key"))?;
        let cek = random_key(&rng, enc.key_len())?;
        let mut out = vec![0; public.ciphertext_size()];
        let wrapped = public
            .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut out, None)
            .map_err(|_| JoseError::Crypto)?
            .to_vec();
        (cek, wrapped)
    };

    let protected = b64url_encode(serde_json::to_vec(&header).map_err(|_| JoseError::Crypto)?);
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).map_err(|_| JoseError::Crypto)?;
    let key = LessSafeKey::new(UnboundKey::new(enc.aead(), &cek).map_err(|_| JoseError::Crypto)?);
    let mut in_out = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| JoseError::Crypto)?;
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64url_encode(&encrypted_key),
        b64url_encode(iv),
        b64url_encode(&in_out),
        b64url_encode(tag.as_ref())
    ))
}

/// Holds the private half of a JWE recipient key and recovers content keys.
#[async_trait]
pub trait Decrypter: fmt::Debug + Send + Sync {
    /// Whether this key can decrypt JWEs with `alg`.
    fn supports(&self, alg: KeyManagement) -> bool;

    /// Recovers the content encryption key of a JWE with `header` and `encrypted_key`.
    ///
    /// Implementations must not reveal why recovery failed: on a bad wrap they return a
    /// random key of the right length (or [`JoseError::DecryptionFailed`]).
    ///
    /// # Errors
    /// [`JoseError::DecryptionFailed`], or [`JoseError::KeySource`] when a backend fails.
    async fn content_key(
        &self,
        header: &JweHeader,
        encrypted_key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, JoseError>;
}

/// Derives the content key of an ECDH-ES JWE from the ECDH shared secret `z` (RFC 7518
/// §4.6.2): directly for `ECDH-ES`, by unwrapping `encrypted_key` for the `+AxxxKW` variants.
/// For KMS-backed [`Decrypter`]s that compute `z` with a key they never export.
///
/// # Errors
/// [`JoseError::DecryptionFailed`] when `header.alg` is not ECDH-ES or the direct mode carries
/// an encrypted key.
pub fn ecdh_es_content_key(
    z: &[u8],
    header: &JweHeader,
    encrypted_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    if !header.alg.is_ecdh() {
        return Err(JoseError::DecryptionFailed);
    }
    let derived = concat_kdf(z, header)?;
    match header.alg.wrap_len() {
        None if encrypted_key.is_empty() => Ok(derived),
        None => Err(JoseError::DecryptionFailed),
        Some(_) => aes_unwrap(&derived, encrypted_key, header.enc.key_len()),
    }
}

/// A parsed compact JWE, not yet decrypted.
#[derive(Clone, Debug)]
pub struct Jwe {
    header: JweHeader,
    protected: String,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl Jwe {
    /// Parses a compact JWE: five base64url parts and a protected header with a supported
    /// `alg` and `enc`. Compression (`zip`) and any `crit` parameter are refused.
    ///
    /// # Errors
    /// [`JoseError::TooLarge`], [`JoseError::Malformed`],
    /// [`JoseError::UnsupportedAlgorithm`] or [`JoseError::UnsupportedCritical`].
    pub fn parse(token: &str, limits: &Limits) -> Result<Self, JoseError> {
        super::jws::check_token_size(token, limits)?;
        let malformed = |reason| JoseError::Malformed {
            what: "JWE",
            reason,
        };
        let parts: Vec<&str> = token.split('.').collect();
        let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(malformed("expected five dot-separated parts"));
        };
        let decode =
            |part: &str| b64url_decode(part).map_err(|_| malformed("a part is not base64url"));
        let header_json: Map<String, Value> = serde_json::from_slice(&decode(protected)?)
            .map_err(|_| malformed("header is not a JSON object"))?;
        for (name, what) in [("alg", "JWE alg"), ("enc", "JWE enc")] {
            let value = header_json
                .get(name)
                .and_then(Value::as_str)
                .ok_or(malformed("header lacks `alg` or `enc`"))?;
            let known = if name == "alg" {
                KeyManagement::from_name(value).is_some()
            } else {
                ContentEncryption::from_name(value).is_some()
            };
            if !known {
                return Err(JoseError::UnsupportedAlgorithm(format!(
                    "{what} {}",
                    value.chars().take(32).collect::<String>()
                )));
            }
        }
        if header_json.contains_key("zip") {
            return Err(JoseError::UnsupportedAlgorithm("JWE zip".to_owned()));
        }
        if let Some(crit) = header_json.get("crit") {
            let name = crit
                .as_array()
                .and_then(|names| names.first())
                .and_then(Value::as_str)
                .unwrap_or("crit");
            return Err(JoseError::UnsupportedCritical(
                name.chars().take(64).collect(),
            ));
        }
        let header: JweHeader = serde_json::from_value(Value::Object(header_json))
            .map_err(|_| malformed("header parameters have the wrong types"))?;
        let iv = decode(iv)?;
        let tag = decode(tag)?;
        if iv.len() != 12 || tag.len() != 16 {
            return Err(malformed("AES-GCM needs a 96-bit IV and a 128-bit tag"));
        }
        Ok(Self {
            header,
            protected: (*protected).to_owned(),
            encrypted_key: decode(encrypted_key)?,
            iv,
            ciphertext: decode(ciphertext)?,
            tag,
        })
    }

    /// The protected header.
    #[must_use]
    pub const fn header(&self) -> &JweHeader {
        &self.header
    }

    /// Decrypts with `key`, returning the header and the plaintext.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] when the key does not support the JWE's `alg`;
    /// [`JoseError::DecryptionFailed`] for every cryptographic failure.
    pub async fn decrypt(
        self,
        key: &(dyn Decrypter + '_),
    ) -> Result<(JweHeader, Zeroizing<Vec<u8>>), JoseError> {
        if !key.supports(self.header.alg) {
            return Err(JoseError::InvalidKey(
                "the key does not support this JWE algorithm",
            ));
        }
        let cek = key.content_key(&self.header, &self.encrypted_key).await?;
        if cek.len() != self.header.enc.key_len() {
            return Err(JoseError::DecryptionFailed);
        }
        let aead_key = LessSafeKey::new(
            UnboundKey::new(self.header.enc.aead(), &cek)
                .map_err(|_| JoseError::DecryptionFailed)?,
        );
        let nonce =
            Nonce::try_assume_unique_for_key(&self.iv).map_err(|_| JoseError::DecryptionFailed)?;
        let mut in_out = Zeroizing::new(self.ciphertext);
        in_out.extend_from_slice(&self.tag);
        let plaintext_len = aead_key
            .open_in_place(nonce, Aad::from(self.protected.as_bytes()), &mut in_out)
            .map_err(|_| JoseError::DecryptionFailed)?
            .len();
        in_out.truncate(plaintext_len);
        Ok((self.header, in_out))
    }
}

enum DecryptKind {
    Ecdh(agreement::PrivateKey),
    Rsa(OaepPrivateDecryptingKey),
}

/// An in-memory JWE recipient key: EC P-256/P-384 or X25519 for ECDH-ES, RSA for RSA-OAEP-256.
pub struct DecryptingKey {
    kind: DecryptKind,
    public: Jwk,
}

impl DecryptingKey {
    /// Generates a key for `alg`: P-256 for the ECDH-ES family, RSA-2048 for RSA-OAEP-256.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library fails.
    pub fn generate(alg: KeyManagement) -> Result<Self, JoseError> {
        if alg.is_ecdh() {
            let private = agreement::PrivateKey::generate(&agreement::ECDH_P256)
                .map_err(|_| JoseError::Crypto)?;
            let public = private
                .compute_public_key()
                .map_err(|_| JoseError::Crypto)?;
            let coordinates = public.as_ref().get(1..).ok_or(JoseError::Crypto)?;
            let (x, y) = coordinates.split_at(coordinates.len() / 2);
            let jwk = Jwk::from_public(PublicParams::Ec {
                crv: EcCurve::P256,
                x: x.to_vec(),
                y: y.to_vec(),
            });
            let kid = jwk.thumbprint();
            Ok(Self {
                kind: DecryptKind::Ecdh(private),
                public: jwk.with_kid(kid).with_alg(alg.name()),
            })
        } else {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| JoseError::Crypto)?;
            let der = AsDer::<Pkcs8V1Der<'_>>::as_der(&pair).map_err(|_| JoseError::Crypto)?;
            Self::from_rsa_pkcs8(der.as_ref())
        }
    }

    /// A decrypting key from a private JWK.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for public, symmetric, Ed25519 or secp256k1 keys.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        let private = jwk
            .private()
            .ok_or(JoseError::InvalidKey("the JWK has no private part"))?;
        let bad = |_| JoseError::InvalidKey("the private key is not valid for key agreement");
        let kind = match (jwk.params(), private) {
            (
                PublicParams::Ec { .. } | PublicParams::Okp { .. },
                PrivateParams::Ec { d } | PrivateParams::Okp { d },
            ) => {
                let (curve, _) = agreement_peer(jwk.params())?;
                let key = agreement::PrivateKey::from_private_key(curve, d).map_err(bad)?;
                let public = key.compute_public_key().map_err(|_| JoseError::Crypto)?;
                if epk_jwk(jwk.params(), public.as_ref())? != jwk.to_public() {
                    return Err(JoseError::InvalidKey(
                        "the private key does not match the public key",
                    ));
                }
                DecryptKind::Ecdh(key)
            }
            (PublicParams::Rsa { n, e }, PrivateParams::Rsa(rsa)) => {
                let jwk_der = super::key::rsa_private_der(n, e, rsa)?;
                let pair = RsaKeyPair::from_der(&jwk_der).map_err(bad)?;
                let der = AsDer::<Pkcs8V1Der<'_>>::as_der(&pair).map_err(|_| JoseError::Crypto)?;
                return Self::from_rsa_pkcs8(der.as_ref()).map(|key| Self {
                    public: jwk.to_public(),
                    ..key
                });
            }
            _ => return Err(JoseError::InvalidKey("the key cannot decrypt JWEs")),
        };
        Ok(Self {
            kind,
            public: jwk.to_public(),
        })
    }

    fn from_rsa_pkcs8(der: &[u8]) -> Result<Self, JoseError> {
        let private = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|_| JoseError::InvalidKey("bad RSA private key"))?;
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|_| JoseError::InvalidKey("bad RSA private key"))?;
        let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
        let jwk = Jwk::from_public(PublicParams::Rsa {
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        });
        let kid = jwk.thumbprint();
        let key = OaepPrivateDecryptingKey::new(private).map_err(|_| JoseError::Crypto)?;
        Ok(Self {
            kind: DecryptKind::Rsa(key),
            public: jwk.with_kid(kid).with_alg(KeyManagement::RsaOaep256.name()),
        })
    }

    /// The public JWK to publish (with `kid` and, for generated keys, `alg`).
    #[must_use]
    pub fn public_jwk(&self) -> Jwk {
        self.public.clone()
    }

    /// The private JWK of an ECDH key, for storage under a key encryption key.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the key cannot be exported (RSA decrypting keys cannot).
    pub fn to_jwk(&self) -> Result<Jwk, JoseError> {
        let DecryptKind::Ecdh(key) = &self.kind else {
            return Err(JoseError::Crypto);
        };
        let d = AsBigEndianBytes::bytes(key)?;
        let private = match self.public.params() {
            PublicParams::Okp { .. } => PrivateParams::Okp { d },
            _ => PrivateParams::Ec { d },
        };
        let mut jwk = Jwk::from_parts(self.public.params().clone(), Some(private))?;
        jwk.kid.clone_from(&self.public.kid);
        jwk.alg.clone_from(&self.public.alg);
        Ok(jwk)
    }
}

trait AsBigEndianBytes {
    fn bytes(&self) -> Result<Zeroizing<Vec<u8>>, JoseError>;
}

impl AsBigEndianBytes for agreement::PrivateKey {
    fn bytes(&self) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        if *self.algorithm() == agreement::X25519 {
            let bin: Curve25519SeedBin<'_> = self.as_be_bytes().map_err(|_| JoseError::Crypto)?;
            Ok(Zeroizing::new(bin.as_ref().to_vec()))
        } else {
            let bin: EcPrivateKeyBin<'_> = self.as_be_bytes().map_err(|_| JoseError::Crypto)?;
            Ok(Zeroizing::new(bin.as_ref().to_vec()))
        }
    }
}

impl fmt::Debug for DecryptingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingKey")
            .field("key", self.public.params())
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Decrypter for DecryptingKey {
    fn supports(&self, alg: KeyManagement) -> bool {
        let by_type = match self.kind {
            DecryptKind::Ecdh(_) => alg.is_ecdh(),
            DecryptKind::Rsa(_) => alg == KeyManagement::RsaOaep256,
        };
        by_type
            && self
                .public
                .alg
                .as_deref()
                .is_none_or(|own| own == alg.name())
    }

    async fn content_key(
        &self,
        header: &JweHeader,
        encrypted_key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        match &self.kind {
            DecryptKind::Ecdh(private) => {
                let epk = header.epk.as_ref().ok_or(JoseError::DecryptionFailed)?;
                let (curve, peer) =
                    agreement_peer(epk.params()).map_err(|_| JoseError::DecryptionFailed)?;
                if curve != private.algorithm() {
                    return Err(JoseError::DecryptionFailed);
                }
                let z = agreement::agree(
                    private,
                    UnparsedPublicKey::new(curve, &peer),
                    JoseError::DecryptionFailed,
                    |z| Ok(Zeroizing::new(z.to_vec())),
                )?;
                ecdh_es_content_key(&z, header, encrypted_key)
            }
            DecryptKind::Rsa(private) => {
                let mut out = Zeroizing::new(vec![0; private.min_output_size()]);
                match private.decrypt(&OAEP_SHA256_MGF1SHA256, encrypted_key, &mut out, None) {
                    Ok(cek) if cek.len() == header.enc.key_len() => {
                        Ok(Zeroizing::new(cek.to_vec()))
                    }
                    _ => random_key(&SystemRandom::new(), header.enc.key_len()),
                }
            }
        }
    }
}

fn agreement_peer(
    params: &PublicParams,
) -> Result<(&'static agreement::Algorithm, Vec<u8>), JoseError> {
    match params {
        PublicParams::Ec { crv, x, y } => {
            let curve = match crv {
                EcCurve::P256 => &agreement::ECDH_P256,
                EcCurve::P384 => &agreement::ECDH_P384,
                EcCurve::Secp256k1 => {
                    return Err(JoseError::InvalidKey(
                        "secp256k1 is not a JWE key agreement curve",
                    ));
                }
            };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            Ok((curve, point))
        }
        PublicParams::Okp {
            crv: OkpCurve::X25519,
            x,
        } => Ok((&agreement::X25519, x.clone())),
        _ => Err(JoseError::InvalidKey(
            "ECDH-ES needs a P-256, P-384 or X25519 key",
        )),
    }
}

fn epk_jwk(recipient: &PublicParams, public: &[u8]) -> Result<Jwk, JoseError> {
    let params = match recipient {
        PublicParams::Ec { crv, .. } => {
            let coordinates = public.get(1..).ok_or(JoseError::Crypto)?;
            let (x, y) = coordinates.split_at(coordinates.len() / 2);
            PublicParams::Ec {
                crv: *crv,
                x: x.to_vec(),
                y: y.to_vec(),
            }
        }
        PublicParams::Okp { crv, .. } => PublicParams::Okp {
            crv: *crv,
            x: public.to_vec(),
        },
        _ => return Err(JoseError::Crypto),
    };
    Jwk::from_parts(params, None)
}

/// The Concat KDF of RFC 7518 §4.6.2 (NIST SP 800-56A single-step KDF with SHA-256).
fn concat_kdf(z: &[u8], header: &JweHeader) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    let (algorithm_id, key_len) = match header.alg.wrap_len() {
        None => (header.enc.name(), header.enc.key_len()),
        Some(len) => (header.alg.name(), len),
    };
    let decode = |value: &Option<String>| match value {
        Some(text) => b64url_decode(text).map_err(|_| JoseError::DecryptionFailed),
        None => Ok(Vec::new()),
    };
    let apu = decode(&header.apu)?;
    let apv = decode(&header.apv)?;
    let mut other_info = Vec::with_capacity(16 + algorithm_id.len() + apu.len() + apv.len());
    for field in [algorithm_id.as_bytes(), &apu, &apv] {
        let len = u32::try_from(field.len()).map_err(|_| JoseError::DecryptionFailed)?;
        other_info.extend_from_slice(&len.to_be_bytes());
        other_info.extend_from_slice(field);
    }
    let bits = u32::try_from(key_len * 8).map_err(|_| JoseError::Crypto)?;
    other_info.extend_from_slice(&bits.to_be_bytes());
    let algorithm =
        get_sskdf_digest_algorithm(SskdfDigestAlgorithmId::Sha256).ok_or(JoseError::Crypto)?;
    let mut out = Zeroizing::new(vec![0; key_len]);
    sskdf_digest(algorithm, z, &other_info, &mut out).map_err(|_| JoseError::DecryptionFailed)?;
    Ok(out)
}

fn random_key(rng: &SystemRandom, len: usize) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    let mut key = Zeroizing::new(vec![0; len]);
    rng.fill(&mut key).map_err(|_| JoseError::Crypto)?;
    Ok(key)
}

fn kek_cipher(kek: &[u8]) -> Result<&'static key_wrap::AesBlockCipher, JoseError> {
    match kek.len() {
        16 => Ok(&key_wrap::AES_128),
        32 => Ok(&key_wrap::AES_256),
        _ => Err(JoseError::Crypto),
    }
}

fn aes_wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, JoseError> {
    let key = KeyEncryptionKey::new(kek_cipher(kek)?, kek).map_err(|_| JoseError::Crypto)?;
    let mut out = vec![0; cek.len() + 8];
    let len = key
        .wrap(cek, &mut out)
        .map_err(|_| JoseError::Crypto)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// Unwraps `wrapped` (RFC 3394). AES key wrap carries its own integrity check, so a wrapped
/// key that fails it, or unwraps to the wrong length, is [`JoseError::DecryptionFailed`]: the
/// same error as every other decryption failure.
fn aes_unwrap(kek: &[u8], wrapped: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    let cipher = kek_cipher(kek).map_err(|_| JoseError::DecryptionFailed)?;
    let key = KeyEncryptionKey::new(cipher, kek).map_err(|_| JoseError::DecryptionFailed)?;
    let mut out = Zeroizing::new(vec![0; wrapped.len()]);
    let len = key
        .unwrap(wrapped, &mut out)
        .map_err(|_| JoseError::DecryptionFailed)?
        .len();
    out.truncate(len);
    if len == key_len {
        Ok(out)
    } else {
        Err(JoseError::DecryptionFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn every_algorithm_round_trips() {
        for alg in KeyManagement::ALL {
            let key = DecryptingKey::generate(alg).unwrap();
            for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
                let options = JweOptions::default()
                    .with_party_info(Some(b"wallet".to_vec()), Some(b"verifier".to_vec()));
                let token =
                    encrypt(b"secret payload", &key.public_jwk(), alg, enc, options).unwrap();
                let jwe = Jwe::parse(&token, &Limits::DEFAULT).unwrap();
                assert_eq!(jwe.header().kid, key.public_jwk().kid);
                let (header, plaintext) = block_on(jwe.decrypt(&key)).unwrap();
                assert_eq!(header.alg, alg);
                assert_eq!(plaintext.as_slice(), b"secret payload");
            }
        }
    }

    #[test]
    fn x25519_and_p384_recipients_work() {
        let x25519 = agreement::PrivateKey::generate(&agreement::X25519).unwrap();
        let public = x25519.compute_public_key().unwrap();
        let seed = x25519.bytes().unwrap();
        let jwk = Jwk::from_parts(
            PublicParams::Okp {
                crv: OkpCurve::X25519,
                x: public.as_ref().to_vec(),
            },
            Some(PrivateParams::Okp { d: seed }),
        )
        .unwrap();
        let key = DecryptingKey::from_jwk(&jwk).unwrap();
        let token = encrypt(
            b"hi",
            &jwk.to_public(),
            KeyManagement::EcdhEsA256Kw,
            ContentEncryption::A256Gcm,
            JweOptions::default(),
        )
        .unwrap();
        let (_, plaintext) =
            block_on(Jwe::parse(&token, &Limits::DEFAULT).unwrap().decrypt(&key)).unwrap();
        assert_eq!(plaintext.as_slice(), b"hi");
        assert_eq!(key.to_jwk().unwrap().thumbprint(), jwk.thumbprint());
    }

    #[test]
    fn tampering_and_wrong_keys_give_one_error() {
        let key = DecryptingKey::generate(KeyManagement::EcdhEsA128Kw).unwrap();
        let other = DecryptingKey::generate(KeyManagement::EcdhEsA128Kw).unwrap();
        let token = encrypt(
            b"payload",
            &key.public_jwk(),
            KeyManagement::EcdhEsA128Kw,
            ContentEncryption::A128Gcm,
            JweOptions::default(),
        )
        .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut bad_ct = b64url_decode(parts[3]).unwrap();
        bad_ct[0] ^= 1;
        let tampered = [
            parts[0],
            parts[1],
            parts[2],
            &b64url_encode(&bad_ct),
            parts[4],
        ]
        .join(".");
        let mut bad_wrap = b64url_decode(parts[1]).unwrap();
        bad_wrap[3] ^= 1;
        let rewrapped = [
            parts[0],
            &b64url_encode(&bad_wrap),
            parts[2],
            parts[3],
            parts[4],
        ]
        .join(".");
        for (token, key) in [(&token, &other), (&tampered, &key), (&rewrapped, &key)] {
            let result = block_on(Jwe::parse(token, &Limits::DEFAULT).unwrap().decrypt(key));
            assert!(
                matches!(result, Err(JoseError::DecryptionFailed)),
                "{result:?}"
            );
        }
    }

    #[test]
    fn rsa_decryption_failures_are_indistinguishable() {
        let key = DecryptingKey::generate(KeyManagement::RsaOaep256).unwrap();
        let token = encrypt(
            b"payload",
            &key.public_jwk(),
            KeyManagement::RsaOaep256,
            ContentEncryption::A128Gcm,
            JweOptions::default(),
        )
        .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut bad = b64url_decode(parts[1]).unwrap();
        bad[10] ^= 1;
        let broken = [parts[0], &b64url_encode(&bad), parts[2], parts[3], parts[4]].join(".");
        let result = block_on(Jwe::parse(&broken, &Limits::DEFAULT).unwrap().decrypt(&key));
        assert!(matches!(result, Err(JoseError::DecryptionFailed)));
    }

    #[test]
    fn unsupported_headers_are_refused() {
        let header = |json: &str| {
            format!(
                "{}.AA.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                b64url_encode(json)
            )
        };
        for json in [
            r#"{"alg":"RSA1_5","enc":"A128GCM"}"#,
            r#"{"alg":"dir","enc":"A128GCM"}"#,
            r#"{"alg":"ECDH-ES","enc":"A128CBC-HS256"}"#,
            r#"{"alg":"ECDH-ES","enc":"A128GCM","zip":"DEF"}"#,
        ] {
            assert!(
                matches!(
                    Jwe::parse(&header(json), &Limits::DEFAULT),
                    Err(JoseError::UnsupportedAlgorithm(_))
                ),
                "{json}"
            );
        }
        assert!(matches!(
            Jwe::parse(
                &header(r#"{"alg":"ECDH-ES","enc":"A128GCM","crit":["x"],"x":1}"#),
                &Limits::DEFAULT
            ),
            Err(JoseError::UnsupportedCritical(_))
        ));
    }

    #[test]
    fn a_key_pinned_to_one_alg_refuses_others() {
        let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
        assert!(matches!(
            encrypt(
                b"x",
                &key.public_jwk(),
                KeyManagement::EcdhEsA128Kw,
                ContentEncryption::A128Gcm,
                JweOptions::default()
            ),
            Err(JoseError::InvalidKey(_))
        ));
        assert!(!key.supports(KeyManagement::EcdhEsA256Kw));
    }
}
