//! Software keys: verifying keys from JWKs, and signing keys held in memory.
//!
//! The arithmetic is aws-lc-rs's; this module only checks that a key and an algorithm belong
//! together (RFC 8725 §3.1) and converts between JWK, PKCS#8 and the library's key types.

use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::encoding::{AsBigEndian as _, AsDer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use pkcs1::der::Encode as _;
use zeroize::Zeroizing;

use super::jwk::{EcCurve, OkpCurve, PrivateParams, PublicParams, RsaPrivateParams};
use super::{Algorithm, JoseError, Jwk, SignError, Signer, Verifier};
use crate::error::ErrorKind;
use crate::id::Kid;

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// A public key that verifies JWS signatures.
///
/// Built from a [`Jwk`]; the key's `kid` defaults to its RFC 7638 thumbprint.
#[derive(Clone)]
pub struct VerifyingKey {
    jwk: Jwk,
    thumbprint: String,
}

impl VerifyingKey {
    /// A verifying key from a JWK (private members, if any, are dropped). A JWK whose `use`
    /// is not `sig`, or whose `key_ops` lists neither `verify` nor (for a private key) `sign`,
    /// is not for verifying signatures (RFC 7517 §4.2, §4.3) and is refused.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for symmetric keys, X25519 keys, RSA moduli under 2,048 bits
    /// and keys whose `use` or `key_ops` exclude verification.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        if jwk
            .key_use
            .as_deref()
            .is_some_and(|key_use| key_use != "sig")
        {
            return Err(JoseError::InvalidKey(
                "the key's `use` is not `sig`: it cannot verify signatures",
            ));
        }
        if jwk.key_ops.as_ref().is_some_and(|ops| {
            !ops.iter()
                .any(|op| op == "verify" || (op == "sign" && jwk.is_private()))
        }) {
            return Err(JoseError::InvalidKey(
                "the key's `key_ops` do not include `verify`",
            ));
        }
        match jwk.params() {
            PublicParams::Oct => {
                return Err(JoseError::InvalidKey(
                    "symmetric keys cannot verify signatures",
                ));
            }
            PublicParams::Okp {
                crv: OkpCurve::X25519,
                ..
            } => {
                return Err(JoseError::InvalidKey(
                    "X25519 keys cannot verify signatures",
                ));
            }
            PublicParams::Rsa { n, .. } if n.len() * 8 < MIN_RSA_BITS => {
                return Err(JoseError::InvalidKey("RSA modulus shorter than 2048 bits"));
            }
            _ => {}
        }
        let jwk = jwk.to_public();
        let thumbprint = jwk.thumbprint();
        Ok(Self { jwk, thumbprint })
    }

    /// The public JWK.
    #[must_use]
    pub const fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The RFC 7638 SHA-256 thumbprint.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The key id: the JWK's `kid`, or else the thumbprint.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.jwk.kid.as_deref().unwrap_or(&self.thumbprint)
    }

    /// Whether this key may verify signatures made with `alg`: the key type and curve must
    /// fit the algorithm and, if the JWK names an `alg`, it must be this one.
    #[must_use]
    pub fn supports(&self, alg: Algorithm) -> bool {
        if let Some(own) = &self.jwk.alg {
            let same = own == alg.name()
                || (alg.is_ed25519()
                    && Algorithm::from_name(own).is_some_and(Algorithm::is_ed25519));
            if !same {
                return false;
            }
        }
        key_fits(self.jwk.params(), alg)
    }

    /// Verifies `signature` over `message` (the JWS signing input).
    ///
    /// # Errors
    /// [`JoseError::KeyAlgorithmMismatch`] when the key does not support `alg`, and
    /// [`JoseError::InvalidSignature`] when the signature does not verify.
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        if !self.supports(alg) {
            return Err(JoseError::KeyAlgorithmMismatch(alg));
        }
        let result = match self.jwk.params() {
            PublicParams::Ec { crv, x, y } => {
                if signature.len() != 2 * crv.coordinate_len() {
                    return Err(JoseError::InvalidSignature);
                }
                let point = uncompressed_point(x, y);
                signature::UnparsedPublicKey::new(ecdsa_verification(*crv), point)
                    .verify(message, signature)
            }
            PublicParams::Okp { x, .. } => {
                signature::UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature)
            }
            PublicParams::Rsa { n, e } => {
                let params = if alg == Algorithm::Ps256 {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
            PublicParams::Oct => return Err(JoseError::KeyAlgorithmMismatch(alg)),
        };
        result.map_err(|_| JoseError::InvalidSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key", self.jwk.params())
            .field("kid", &self.kid())
            .finish()
    }
}

#[async_trait]
impl Verifier for VerifyingKey {
    async fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        Self::verify(self, alg, message, signature)
    }
}

fn key_fits(params: &PublicParams, alg: Algorithm) -> bool {
    match (params, alg) {
        (
            PublicParams::Ec {
                crv: EcCurve::P256, ..
            },
            Algorithm::Es256,
        )
        | (
            PublicParams::Ec {
                crv: EcCurve::P384, ..
            },
            Algorithm::Es384,
        )
        | (
            PublicParams::Ec {
                crv: EcCurve::Secp256k1,
                ..
            },
            Algorithm::Es256K,
        )
        | (PublicParams::Rsa { .. }, Algorithm::Rs256 | Algorithm::Ps256) => true,
        (
            PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                ..
            },
            alg,
        ) => alg.is_ed25519(),
        _ => false,
    }
}

fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

fn ecdsa_verification(crv: EcCurve) -> &'static signature::EcdsaVerificationAlgorithm {
    match crv {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        EcCurve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED,
    }
}

fn ecdsa_signing(alg: Algorithm) -> Option<(&'static signature::EcdsaSigningAlgorithm, EcCurve)> {
    match alg {
        Algorithm::Es256 => Some((&signature::ECDSA_P256_SHA256_FIXED_SIGNING, EcCurve::P256)),
        Algorithm::Es384 => Some((&signature::ECDSA_P384_SHA384_FIXED_SIGNING, EcCurve::P384)),
        Algorithm::Es256K => Some((
            &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            EcCurve::Secp256k1,
        )),
        _ => None,
    }
}

enum KeyPair {
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key held in memory that signs JWS for one algorithm.
///
/// For tests, command-line tools and the KMS's software provider; services sign through a
/// KMS [`Signer`] and never hold a `SigningKey`.
///
/// ```
/// # use edk_core::jose::{Algorithm, SigningKey};
/// let key = SigningKey::generate(Algorithm::Es256)?;
/// let signature = key.sign_bytes(b"message")?;
/// key.verifying_key().verify(Algorithm::Es256, b"message", &signature)?;
/// # Ok::<(), edk_core::jose::JoseError>(())
/// ```
pub struct SigningKey {
    alg: Algorithm,
    kid: Kid,
    pair: KeyPair,
    public: VerifyingKey,
    rng: SystemRandom,
}

impl SigningKey {
    /// Generates a fresh key for `alg` (RSA keys are 2,048 bits).
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library fails.
    pub fn generate(alg: Algorithm) -> Result<Self, JoseError> {
        let pair = if let Some((signing, _)) = ecdsa_signing(alg) {
            KeyPair::Ec(EcdsaKeyPair::generate(signing).map_err(|_| JoseError::Crypto)?)
        } else if alg.is_ed25519() {
            KeyPair::Ed25519(Ed25519KeyPair::generate().map_err(|_| JoseError::Crypto)?)
        } else {
            KeyPair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| JoseError::Crypto)?)
        };
        Self::from_pair(alg, pair)
    }

    /// A signing key from a private JWK, for `alg` (or the JWK's own `alg` when `None`).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for a public or inconsistent JWK,
    /// [`JoseError::KeyAlgorithmMismatch`] when the key cannot sign with `alg`.
    pub fn from_jwk(jwk: &Jwk, alg: Option<Algorithm>) -> Result<Self, JoseError> {
        let alg = match (alg, jwk.alg.as_deref()) {
            (Some(alg), _) => alg,
            (None, Some(own)) => own.parse()?,
            (None, None) => default_algorithm(jwk.params())
                .ok_or(JoseError::InvalidKey("the key cannot sign"))?,
        };
        let private = jwk
            .private()
            .ok_or(JoseError::InvalidKey("the JWK has no private part"))?;
        if !key_fits(jwk.params(), alg) {
            return Err(JoseError::KeyAlgorithmMismatch(alg));
        }
        let bad = |_| JoseError::InvalidKey("the private key does not match the public key");
        let pair = match (jwk.params(), private) {
            (PublicParams::Ec { x, y, .. }, PrivateParams::Ec { d }) => {
                let (signing, _) =
                    ecdsa_signing(alg).ok_or(JoseError::KeyAlgorithmMismatch(alg))?;
                KeyPair::Ec(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        signing,
                        d,
                        &uncompressed_point(x, y),
                    )
                    .map_err(bad)?,
                )
            }
            (PublicParams::Okp { x, .. }, PrivateParams::Okp { d }) => {
                KeyPair::Ed25519(Ed25519KeyPair::from_seed_and_public_key(d, x).map_err(bad)?)
            }
            (PublicParams::Rsa { n, e }, PrivateParams::Rsa(rsa)) => {
                let der = rsa_private_der(n, e, rsa)?;
                KeyPair::Rsa(RsaKeyPair::from_der(&der).map_err(bad)?)
            }
            _ => {
                return Err(JoseError::InvalidKey(
                    "the private key does not match the public key",
                ));
            }
        };
        let mut key = Self::from_pair(alg, pair)?;
        if let Some(kid) = &jwk.kid {
            key.kid = Kid::new(kid.clone()).map_err(|_| JoseError::InvalidKey("bad `kid`"))?;
        }
        Ok(key)
    }

    /// A signing key from a PKCS#8 v1 DER private key.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] when the DER is not a key for `alg`.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self, JoseError> {
        let bad = |_| JoseError::InvalidKey("not a PKCS#8 key for this algorithm");
        let pair = if let Some((signing, _)) = ecdsa_signing(alg) {
            KeyPair::Ec(EcdsaKeyPair::from_pkcs8(signing, der).map_err(bad)?)
        } else if alg.is_ed25519() {
            KeyPair::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?)
        } else {
            KeyPair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?)
        };
        Self::from_pair(alg, pair)
    }

    /// The private key as PKCS#8 v1 DER, zeroized on drop.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library cannot encode the key.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let der = match &self.pair {
            KeyPair::Ec(pair) => pair
                .to_pkcs8v1()
                .map_err(|_| JoseError::Crypto)?
                .as_ref()
                .to_vec(),
            KeyPair::Ed25519(pair) => pair
                .to_pkcs8v1()
                .map_err(|_| JoseError::Crypto)?
                .as_ref()
                .to_vec(),
            KeyPair::Rsa(pair) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(pair)
                .map_err(|_| JoseError::Crypto)?
                .as_ref()
                .to_vec(),
        };
        Ok(Zeroizing::new(der))
    }

    fn from_pair(alg: Algorithm, pair: KeyPair) -> Result<Self, JoseError> {
        let params = match &pair {
            KeyPair::Ec(kp) => {
                let (_, crv) = ecdsa_signing(alg).ok_or(JoseError::KeyAlgorithmMismatch(alg))?;
                let point = kp.public_key().as_ref();
                let len = crv.coordinate_len();
                let (x, y) = point
                    .get(1..=len)
                    .zip(point.get(1 + len..1 + 2 * len))
                    .ok_or(JoseError::Crypto)?;
                PublicParams::Ec {
                    crv,
                    x: x.to_vec(),
                    y: y.to_vec(),
                }
            }
            KeyPair::Ed25519(kp) => PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                x: kp.public_key().as_ref().to_vec(),
            },
            KeyPair::Rsa(kp) => {
                let public = kp.public_key();
                PublicParams::Rsa {
                    n: public.modulus().big_endian_without_leading_zero().to_vec(),
                    e: public.exponent().big_endian_without_leading_zero().to_vec(),
                }
            }
        };
        let public = VerifyingKey::from_jwk(&Jwk::from_public(params))?;
        let kid = Kid::new(public.thumbprint().to_owned()).map_err(|_| JoseError::Crypto)?;
        Ok(Self {
            alg,
            kid,
            pair,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// Returns the key with another `kid` (the default is the RFC 7638 thumbprint).
    #[must_use]
    pub fn with_kid(mut self, kid: Kid) -> Self {
        self.kid = kid;
        self
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    #[must_use]
    pub const fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The public half.
    #[must_use]
    pub const fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The public JWK with `kid` and `alg` set.
    #[must_use]
    pub fn public_jwk(&self) -> Jwk {
        self.public
            .jwk()
            .clone()
            .with_kid(self.kid.as_str())
            .with_alg(self.alg.name())
    }

    /// The private JWK with `kid` and `alg` set. Handle with care: it is the key.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library cannot export the key.
    pub fn to_jwk(&self) -> Result<Jwk, JoseError> {
        let private = match &self.pair {
            KeyPair::Ec(kp) => PrivateParams::Ec {
                d: Zeroizing::new(
                    kp.private_key()
                        .as_be_bytes()
                        .map_err(|_| JoseError::Crypto)?
                        .as_ref()
                        .to_vec(),
                ),
            },
            KeyPair::Ed25519(kp) => PrivateParams::Okp {
                d: Zeroizing::new(
                    kp.seed()
                        .map_err(|_| JoseError::Crypto)?
                        .as_be_bytes()
                        .map_err(|_| JoseError::Crypto)?
                        .as_ref()
                        .to_vec(),
                ),
            },
            KeyPair::Rsa(_) => {
                let der = self.to_pkcs8_der()?;
                PrivateParams::Rsa(Box::new(rsa_private_from_pkcs8(&der)?))
            }
        };
        let jwk = Jwk::from_parts(self.public.jwk().params().clone(), Some(private))?;
        Ok(jwk.with_kid(self.kid.as_str()).with_alg(self.alg.name()))
    }

    /// Signs `message` synchronously, returning the JOSE signature (raw `r||s` for ECDSA).
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library fails.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.pair {
            KeyPair::Ec(kp) => Ok(kp
                .sign(&self.rng, message)
                .map_err(|_| JoseError::Crypto)?
                .as_ref()
                .to_vec()),
            KeyPair::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            KeyPair::Rsa(kp) => {
                let padding: &'static dyn signature::RsaEncoding = if self.alg == Algorithm::Ps256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &self.rng, message, &mut out)
                    .map_err(|_| JoseError::Crypto)?;
                Ok(out)
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Signer for SigningKey {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_bytes(message)
            .map_err(|err| SignError::new(ErrorKind::Internal, err))
    }
}

fn default_algorithm(params: &PublicParams) -> Option<Algorithm> {
    match params {
        PublicParams::Ec {
            crv: EcCurve::P256, ..
        } => Some(Algorithm::Es256),
        PublicParams::Ec {
            crv: EcCurve::P384, ..
        } => Some(Algorithm::Es384),
        PublicParams::Ec {
            crv: EcCurve::Secp256k1,
            ..
        } => Some(Algorithm::Es256K),
        PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            ..
        } => Some(Algorithm::EdDsa),
        PublicParams::Rsa { .. } => Some(Algorithm::Rs256),
        _ => None,
    }
}

pub(super) fn rsa_private_der(
    n: &[u8],
    e: &[u8],
    rsa: &RsaPrivateParams,
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    fn uint(bytes: &[u8]) -> Result<pkcs1::UintRef<'_>, JoseError> {
        pkcs1::UintRef::new(bytes).map_err(|_| JoseError::InvalidKey("bad RSA integer"))
    }
    let key = pkcs1::RsaPrivateKeyRef {
        modulus: uint(n)?,
        public_exponent: uint(e)?,
        private_exponent: uint(&rsa.d)?,
        prime1: uint(&rsa.p)?,
        prime2: uint(&rsa.q)?,
        exponent1: uint(&rsa.dp)?,
        exponent2: uint(&rsa.dq)?,
        coefficient: uint(&rsa.qi)?,
        other_prime_infos: None,
    };
    key.to_der()
        .map(Zeroizing::new)
        .map_err(|_| JoseError::InvalidKey("bad RSA key"))
}

fn rsa_private_from_pkcs8(der: &[u8]) -> Result<RsaPrivateParams, JoseError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(|_| JoseError::Crypto)?;
    let key = pkcs1::RsaPrivateKeyRef::try_from(info.private_key).map_err(|_| JoseError::Crypto)?;
    let bytes = |uint: pkcs1::UintRef<'_>| uint.as_bytes().to_vec();
    Ok(RsaPrivateParams::new(
        bytes(key.private_exponent),
        bytes(key.prime1),
        bytes(key.prime2),
        bytes(key.exponent1),
        bytes(key.exponent2),
        bytes(key.coefficient),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_round_trips_through_jwk() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let sig = key.sign_bytes(b"payload").unwrap();
            key.verifying_key().verify(alg, b"payload", &sig).unwrap();
            assert!(matches!(
                key.verifying_key().verify(alg, b"other", &sig),
                Err(JoseError::InvalidSignature)
            ));

            let jwk = key.to_jwk().unwrap();
            let again = SigningKey::from_jwk(&jwk, Some(alg)).unwrap();
            assert_eq!(again.kid(), key.kid());
            let sig = again.sign_bytes(b"payload").unwrap();
            key.verifying_key().verify(alg, b"payload", &sig).unwrap();

            let der = key.to_pkcs8_der().unwrap();
            let from_der = SigningKey::from_pkcs8_der(alg, &der).unwrap();
            assert_eq!(
                from_der.verifying_key().thumbprint(),
                key.verifying_key().thumbprint()
            );
        }
    }

    #[test]
    fn keys_refuse_algorithms_of_other_types() {
        let es256 = SigningKey::generate(Algorithm::Es256).unwrap();
        let sig = es256.sign_bytes(b"m").unwrap();
        for alg in [
            Algorithm::Es384,
            Algorithm::Es256K,
            Algorithm::EdDsa,
            Algorithm::Rs256,
        ] {
            assert!(matches!(
                es256.verifying_key().verify(alg, b"m", &sig),
                Err(JoseError::KeyAlgorithmMismatch(_))
            ));
        }
        let jwk = es256.public_jwk().with_alg("ES384");
        let pinned = VerifyingKey::from_jwk(&jwk).unwrap();
        assert!(!pinned.supports(Algorithm::Es256));
    }

    #[test]
    fn keys_whose_use_or_key_ops_exclude_verification_do_not_verify() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let public = key.public_jwk();
        let mut for_encryption = public.clone();
        for_encryption.key_use = Some("enc".to_owned());
        let mut only_encrypt = public.clone();
        only_encrypt.key_ops = Some(vec!["encrypt".to_owned(), "wrapKey".to_owned()]);
        let mut no_ops = public.clone();
        no_ops.key_ops = Some(Vec::new());
        for (jwk, message) in [
            (
                for_encryption,
                "invalid key: the key's `use` is not `sig`: it cannot verify signatures",
            ),
            (
                only_encrypt,
                "invalid key: the key's `key_ops` do not include `verify`",
            ),
            (
                no_ops,
                "invalid key: the key's `key_ops` do not include `verify`",
            ),
        ] {
            let err = VerifyingKey::from_jwk(&jwk).unwrap_err();
            assert!(matches!(err, JoseError::InvalidKey(_)), "{err:?}");
            assert_eq!(err.to_string(), message);
        }
        // `use: sig` and `key_ops` with `verify` (or `sign` on a private key) are fine.
        let mut signing = public;
        signing.key_use = Some("sig".to_owned());
        signing.key_ops = Some(vec!["verify".to_owned()]);
        let verifier = VerifyingKey::from_jwk(&signing).unwrap();
        let sig = key.sign_bytes(b"m").unwrap();
        verifier.verify(Algorithm::Es256, b"m", &sig).unwrap();
        let mut private = key.to_jwk().unwrap();
        private.key_ops = Some(vec!["sign".to_owned()]);
        VerifyingKey::from_jwk(&private).unwrap();
    }

    #[test]
    fn public_jwks_cannot_sign() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
        assert!(matches!(
            SigningKey::from_jwk(&key.public_jwk(), None),
            Err(JoseError::InvalidKey(_))
        ));
    }
}
