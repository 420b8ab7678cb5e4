//! Device authentication by MAC (ISO/IEC 18013-5 §9.1.3.5): `deviceMac`, a `COSE_Mac0` with
//! HMAC-SHA-256 under `EMacKey`, the key both sides derive from an ECDH agreement between the
//! device key and the reader's ephemeral key.
//!
//! `EMacKey` = HKDF-SHA-256 (RFC 5869) with the ECDH shared secret as input keying material,
//! SHA-256 of `SessionTranscriptBytes` as salt, `"EMacKey"` as info, 32 bytes long.

use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::{digest, hkdf, hmac};
use coset::{CoseMac0, CoseMac0Builder, HeaderBuilder, MacContext, iana, mac_structure_data};
use edk_core::jose::Jwk;
use edk_core::jose::jwk::{EcCurve, PrivateParams, PublicParams};
use zeroize::Zeroizing;

use crate::error::{Error, malformed};
use crate::transcript::SessionTranscript;

/// One side of the MAC key agreement: the reader's ephemeral key (verifying) or the device
/// key (presenting), computing the raw ECDH shared secret with the other side's public key.
#[async_trait]
pub trait MacKeyAgreement: fmt::Debug + Send + Sync {
    /// The raw ECDH shared secret (the x-coordinate, `Z_AB`) with `peer`.
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when `peer` is not a key of this key's curve.
    async fn shared_secret(&self, peer: &Jwk) -> Result<Zeroizing<Vec<u8>>, Error>;
}

/// A P-256 key agreement key held in memory: a reader's ephemeral key (`EReaderKey`), or a
/// device key in tests and software wallets.
pub struct EphemeralKey {
    key: PrivateKey,
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralKey").finish_non_exhaustive()
    }
}

impl EphemeralKey {
    /// A fresh P-256 key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when the key cannot be generated.
    pub fn generate() -> Result<Self, Error> {
        PrivateKey::generate(&ECDH_P256)
            .map(|key| Self { key })
            .map_err(|_| Error::InvalidDeviceKey("a P-256 key could not be generated"))
    }

    /// The key from the private JWK of a P-256 key (`d`, `x`, `y`).
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when the JWK is not a private P-256 key.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        let invalid = || Error::InvalidDeviceKey("not a private P-256 JWK");
        if !matches!(
            jwk.params(),
            PublicParams::Ec {
                crv: EcCurve::P256,
                ..
            }
        ) {
            return Err(invalid());
        }
        let Some(PrivateParams::Ec { d }) = jwk.private() else {
            return Err(invalid());
        };
        let key = PrivateKey::from_private_key(&ECDH_P256, d).map_err(|_| invalid())?;
        Ok(Self { key })
    }

    /// The key from its private scalar (32 bytes, big-endian).
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when the bytes are not a P-256 private key.
    pub fn from_scalar(d: &[u8]) -> Result<Self, Error> {
        PrivateKey::from_private_key(&ECDH_P256, d)
            .map(|key| Self { key })
            .map_err(|_| Error::InvalidDeviceKey("not a P-256 private scalar"))
    }

    /// The public key as a JWK (`EC`, `P-256`).
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when the public key cannot be computed.
    pub fn public_jwk(&self) -> Result<Jwk, Error> {
        let public = self
            .key
            .compute_public_key()
            .map_err(|_| Error::InvalidDeviceKey("the public key could not be computed"))?;
        let point = public.as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::InvalidDeviceKey("unexpected public key encoding"));
        }
        Ok(Jwk::from_public(PublicParams::Ec {
            crv: EcCurve::P256,
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        }))
    }
}

#[async_trait]
impl MacKeyAgreement for EphemeralKey {
    async fn shared_secret(&self, peer: &Jwk) -> Result<Zeroizing<Vec<u8>>, Error> {
        let point = uncompressed_p256(peer)?;
        agreement::agree(
            &self.key,
            UnparsedPublicKey::new(&ECDH_P256, point),
            Error::InvalidDeviceKey("the agreement with the peer key failed"),
            |secret| Ok(Zeroizing::new(secret.to_vec())),
        )
    }
}

/// The uncompressed point of a public P-256 JWK.
fn uncompressed_p256(jwk: &Jwk) -> Result<Vec<u8>, Error> {
    let PublicParams::Ec {
        crv: EcCurve::P256,
        x,
        y,
    } = jwk.params()
    else {
        return Err(Error::InvalidDeviceKey(
            "the peer key is not a P-256 public key",
        ));
    };
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok(point)
}

/// `EMacKey` for `transcript` from the shared secret of `agreement` with `peer`.
async fn emac_key(
    agreement: &dyn MacKeyAgreement,
    peer: &Jwk,
    transcript: &SessionTranscript,
) -> Result<hmac::Key, Error> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let secret = agreement.shared_secret(peer).await?;
    let salt = digest::digest(&digest::SHA256, &transcript.to_bytes());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.as_ref()).extract(&secret);
    let mut key = Zeroizing::new([0_u8; 32]);
    prk.expand(&[b"EMacKey"], Len32)
        .and_then(|okm| okm.fill(key.as_mut_slice()))
        .map_err(|_| Error::InvalidDeviceKey("EMacKey could not be derived"))?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, key.as_slice()))
}

/// A `deviceMac` over `payload` (the `DeviceAuthenticationBytes`, detached).
pub(crate) async fn mac0(
    agreement: &dyn MacKeyAgreement,
    peer: &Jwk,
    transcript: &SessionTranscript,
    payload: &[u8],
) -> Result<CoseMac0, Error> {
    let key = emac_key(agreement, peer, transcript).await?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::HMAC_256_256)
        .build();
    let mut mac = CoseMac0Builder::new().protected(protected).build();
    let data = mac_structure_data(MacContext::CoseMac0, mac.protected.clone(), &[], payload);
    mac.tag = hmac::sign(&key, &data).as_ref().to_vec();
    Ok(mac)
}

/// Verifies a `deviceMac` over `payload` with the key agreed between `agreement` and `peer`.
pub(crate) async fn verify_mac0(
    mac: &CoseMac0,
    agreement: &dyn MacKeyAgreement,
    peer: &Jwk,
    transcript: &SessionTranscript,
    payload: &[u8],
) -> Result<(), Error> {
    if mac.payload.is_some() {
        return Err(malformed("deviceMac", "the payload must be detached"));
    }
    let alg = mac.protected.header.alg.clone();
    if alg
        != Some(coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::HMAC_256_256,
        ))
    {
        return Err(Error::Unsupported {
            what: "deviceMac algorithm",
            value: format!("{alg:?}"),
        });
    }
    let key = emac_key(agreement, peer, transcript).await?;
    let data = mac_structure_data(MacContext::CoseMac0, mac.protected.clone(), &[], payload);
    hmac::verify(&key, &data, &mac.tag).map_err(|_| Error::InvalidDeviceSignature)
}
