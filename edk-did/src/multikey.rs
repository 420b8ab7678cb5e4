//! Multikey public keys: multibase (base58btc) over a multicodec header and the raw key.
//!
//! Supported codecs: Ed25519 (`0xed`), X25519 (`0xec`), secp256k1 (`0xe7`), P-256 (`0x1200`)
//! and P-384 (`0x1201`); EC keys are compressed SEC1 points. Conversions to and from JWK
//! decompress and compress the points and refuse points not on the curve.

use std::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use edk_core::jose::Jwk;
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Map, Value};

/// Multicodec numbers of the supported public keys.
pub mod codec {
    /// Ed25519 public key.
    pub const ED25519_PUB: u64 = 0xed;
    /// X25519 public key.
    pub const X25519_PUB: u64 = 0xec;
    /// secp256k1 compressed public key.
    pub const SECP256K1_PUB: u64 = 0xe7;
    /// P-256 compressed public key.
    pub const P256_PUB: u64 = 0x1200;
    /// P-384 compressed public key.
    pub const P384_PUB: u64 = 0x1201;
}

/// Largest encoded Multikey accepted (the longest supported key is 51 bytes).
const MAX_MULTIBASE_LEN: usize = 128;

/// A public key in one of the supported Multikey types. Points are validated on construction.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Multikey {
    /// Ed25519, 32 bytes.
    Ed25519([u8; 32]),
    /// X25519, 32 bytes.
    X25519([u8; 32]),
    /// secp256k1, compressed SEC1 (33 bytes).
    Secp256k1(Vec<u8>),
    /// P-256, compressed SEC1 (33 bytes).
    P256(Vec<u8>),
    /// P-384, compressed SEC1 (49 bytes).
    P384(Vec<u8>),
}

impl Multikey {
    /// Decodes a `z…` (base58btc) Multikey.
    ///
    /// # Errors
    /// A message saying what is wrong: the multibase prefix, the encoding, an unknown codec,
    /// the key length or an invalid point.
    pub fn from_multibase(value: &str) -> Result<Self, String> {
        if value.len() > MAX_MULTIBASE_LEN {
            return Err(format!(
                "multibase value is longer than {MAX_MULTIBASE_LEN} characters"
            ));
        }
        let Some(encoded) = value.strip_prefix('z') else {
            return Err("multibase value must be base58btc (start with `z`)".to_owned());
        };
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| "multibase value is not valid base58btc".to_owned())?;
        Self::from_multicodec(&bytes)
    }

    /// Decodes multicodec bytes: an unsigned varint codec, then the raw key.
    ///
    /// # Errors
    /// As [`Multikey::from_multibase`].
    pub fn from_multicodec(bytes: &[u8]) -> Result<Self, String> {
        let (codec, key) = read_varint(bytes)?;
        Self::from_raw(codec, key)
    }

    /// A key from its multicodec number and raw bytes.
    ///
    /// # Errors
    /// As [`Multikey::from_multibase`].
    pub fn from_raw(codec: u64, key: &[u8]) -> Result<Self, String> {
        let expected = match codec {
            codec::ED25519_PUB | codec::X25519_PUB => 32,
            codec::SECP256K1_PUB | codec::P256_PUB => 33,
            codec::P384_PUB => 49,
            other => return Err(format!("unsupported multicodec 0x{other:x}")),
        };
        if key.len() != expected {
            return Err(format!(
                "invalid public key length: {} bytes for multicodec 0x{codec:x}, expected {expected}",
                key.len()
            ));
        }
        let point_error = |_| "invalid public key: not a point on the curve".to_owned();
        let compressed = matches!(key.first(), Some(0x02 | 0x03));
        if matches!(
            codec,
            codec::SECP256K1_PUB | codec::P256_PUB | codec::P384_PUB
        ) && !compressed
        {
            return Err("invalid public key: not a compressed SEC1 point".to_owned());
        }
        match codec {
            codec::ED25519_PUB => {
                let raw: [u8; 32] = key.try_into().map_err(|_| "bad length".to_owned())?;
                if CompressedEdwardsY(raw).decompress().is_none() {
                    return Err("invalid public key: not an Ed25519 point".to_owned());
                }
                Ok(Self::Ed25519(raw))
            }
            codec::X25519_PUB => Ok(Self::X25519(
                key.try_into().map_err(|_| "bad length".to_owned())?,
            )),
            codec::SECP256K1_PUB => {
                k256::PublicKey::from_sec1_bytes(key).map_err(point_error)?;
                Ok(Self::Secp256k1(key.to_vec()))
            }
            codec::P256_PUB => {
                p256::PublicKey::from_sec1_bytes(key).map_err(point_error)?;
                Ok(Self::P256(key.to_vec()))
            }
            _ => {
                p384::PublicKey::from_sec1_bytes(key).map_err(point_error)?;
                Ok(Self::P384(key.to_vec()))
            }
        }
    }

    /// The key from a public JWK (`OKP` Ed25519/X25519, `EC` P-256/P-384/secp256k1).
    ///
    /// # Errors
    /// A message when the key type is unsupported or the point is invalid.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        match jwk.params() {
            PublicParams::Okp { crv, x } => {
                let codec = match crv {
                    OkpCurve::Ed25519 => codec::ED25519_PUB,
                    OkpCurve::X25519 => codec::X25519_PUB,
                    _ => return Err("unsupported OKP curve".to_owned()),
                };
                Self::from_raw(codec, x)
            }
            PublicParams::Ec { crv, x, y } => {
                let mut uncompressed = Vec::with_capacity(1 + x.len() + y.len());
                uncompressed.push(0x04);
                uncompressed.extend_from_slice(x);
                uncompressed.extend_from_slice(y);
                let point_error = |_| "invalid public key: not a point on the curve".to_owned();
                match crv {
                    EcCurve::P256 => {
                        let key =
                            p256::PublicKey::from_sec1_bytes(&uncompressed).map_err(point_error)?;
                        Ok(Self::P256(key.to_sec1_point(true).as_bytes().to_vec()))
                    }
                    EcCurve::P384 => {
                        let key =
                            p384::PublicKey::from_sec1_bytes(&uncompressed).map_err(point_error)?;
                        Ok(Self::P384(key.to_sec1_point(true).as_bytes().to_vec()))
                    }
                    EcCurve::Secp256k1 => {
                        let key =
                            k256::PublicKey::from_sec1_bytes(&uncompressed).map_err(point_error)?;
                        Ok(Self::Secp256k1(key.to_sec1_point(true).as_bytes().to_vec()))
                    }
                    _ => Err("unsupported EC curve".to_owned()),
                }
            }
            _ => Err(format!(
                "unsupported key type `{}` for a Multikey",
                jwk.kty()
            )),
        }
    }

    /// The multicodec number.
    #[must_use]
    pub const fn codec(&self) -> u64 {
        match self {
            Self::Ed25519(_) => codec::ED25519_PUB,
            Self::X25519(_) => codec::X25519_PUB,
            Self::Secp256k1(_) => codec::SECP256K1_PUB,
            Self::P256(_) => codec::P256_PUB,
            Self::P384(_) => codec::P384_PUB,
        }
    }

    /// The raw key bytes (compressed points for EC keys).
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        match self {
            Self::Ed25519(key) | Self::X25519(key) => key,
            Self::Secp256k1(key) | Self::P256(key) | Self::P384(key) => key,
        }
    }

    /// The multicodec bytes: varint codec, then the raw key.
    #[must_use]
    pub fn to_multicodec(&self) -> Vec<u8> {
        let mut out = write_varint(self.codec());
        out.extend_from_slice(self.raw());
        out
    }

    /// The `z…` base58btc Multikey.
    #[must_use]
    pub fn to_multibase(&self) -> String {
        format!("z{}", bs58::encode(self.to_multicodec()).into_string())
    }

    /// The public JWK (EC points decompressed; never a `d`).
    ///
    /// # Errors
    /// A message if a stored point fails to decompress (not expected for a validated key).
    pub fn to_jwk(&self) -> Result<Jwk, String> {
        let params = match self {
            Self::Ed25519(x) => PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                x: x.to_vec(),
            },
            Self::X25519(x) => PublicParams::Okp {
                crv: OkpCurve::X25519,
                x: x.to_vec(),
            },
            Self::Secp256k1(point) => {
                let key = k256::PublicKey::from_sec1_bytes(point)
                    .map_err(|_| "invalid secp256k1 point".to_owned())?;
                ec_params(EcCurve::Secp256k1, key.to_sec1_point(false).as_bytes())?
            }
            Self::P256(point) => {
                let key = p256::PublicKey::from_sec1_bytes(point)
                    .map_err(|_| "invalid P-256 point".to_owned())?;
                ec_params(EcCurve::P256, key.to_sec1_point(false).as_bytes())?
            }
            Self::P384(point) => {
                let key = p384::PublicKey::from_sec1_bytes(point)
                    .map_err(|_| "invalid P-384 point".to_owned())?;
                ec_params(EcCurve::P384, key.to_sec1_point(false).as_bytes())?
            }
        };
        Ok(Jwk::from_public(params))
    }

    /// The X25519 key birationally equivalent to an Ed25519 key (did:key
    /// `enableEncryptionKeyDerivation`); `None` for other key types.
    #[must_use]
    pub fn derive_x25519(&self) -> Option<Self> {
        let Self::Ed25519(raw) = self else {
            return None;
        };
        let point = CompressedEdwardsY(*raw).decompress()?;
        Some(Self::X25519(point.to_montgomery().to_bytes()))
    }

    /// A short name of the key type, e.g. `Ed25519`.
    #[must_use]
    pub const fn key_type(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "Ed25519",
            Self::X25519(_) => "X25519",
            Self::Secp256k1(_) => "secp256k1",
            Self::P256(_) => "P-256",
            Self::P384(_) => "P-384",
        }
    }
}

impl fmt::Debug for Multikey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Multikey({}, {})", self.key_type(), self.to_multibase())
    }
}

/// Whether a JSON object JWK carries private members (`d`, RSA CRT values, `oth`) or is a
/// symmetric key.
#[must_use]
pub fn has_private_members(jwk: &Map<String, Value>) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|member| jwk.contains_key(*member))
        || jwk.get("kty").and_then(Value::as_str) == Some("oct")
}

fn ec_params(crv: EcCurve, uncompressed: &[u8]) -> Result<PublicParams, String> {
    let len = crv.coordinate_len();
    let (x, y) = uncompressed
        .get(1..)
        .filter(|rest| rest.len() == 2 * len)
        .map(|rest| rest.split_at(len))
        .ok_or_else(|| "unexpected point encoding".to_owned())?;
    Ok(PublicParams::Ec {
        crv,
        x: x.to_vec(),
        y: y.to_vec(),
    })
}

/// Reads an unsigned varint (multiformats: at most 9 bytes, minimal encoding).
fn read_varint(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if *byte == 0 && i > 0 {
                return Err("multicodec varint is not minimally encoded".to_owned());
            }
            let rest = bytes.get(i + 1..).unwrap_or_default();
            return Ok((value, rest));
        }
    }
    Err("multicodec header is not a valid varint".to_owned())
}

fn write_varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(2);
    loop {
        let low = u8::try_from(value & 0x7f).unwrap_or_default();
        value >>= 7;
        if value == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_match_the_spec_table() {
        assert_eq!(write_varint(0xed), [0xed, 0x01]);
        assert_eq!(write_varint(0x1200), [0x80, 0x24]);
        assert_eq!(write_varint(0x1201), [0x81, 0x24]);
        assert_eq!(write_varint(0xe7), [0xe7, 0x01]);
        assert_eq!(read_varint(&[0x80, 0x24, 7]).unwrap(), (0x1200, &[7u8][..]));
        assert!(read_varint(&[0x80, 0x00]).is_err());
        assert!(read_varint(&[0x80; 12]).is_err());
        assert!(read_varint(&[]).is_err());
    }

    #[test]
    fn unknown_codecs_and_bad_lengths_are_named() {
        let err = Multikey::from_raw(0x1234, &[0; 33]).unwrap_err();
        assert!(err.contains("unsupported multicodec 0x1234"), "{err}");
        let err = Multikey::from_raw(codec::ED25519_PUB, &[0; 31]).unwrap_err();
        assert!(err.contains("length"), "{err}");
        let err = Multikey::from_raw(codec::P256_PUB, &[0x05; 33]).unwrap_err();
        assert!(err.contains("not a compressed SEC1 point"), "{err}");
        let mut off_curve = [0xff; 33];
        off_curve[0] = 0x02;
        let err = Multikey::from_raw(codec::P256_PUB, &off_curve).unwrap_err();
        assert!(err.contains("not a point"), "{err}");
    }
}
