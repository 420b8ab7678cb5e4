//! COSE pieces of ISO/IEC 18013-5: algorithm identifiers, `COSE_Key` from and to JWK, and
//! `COSE_Sign1` signing with an [`edk_core::jose::Signer`].

use ciborium::Value;
use coset::iana::{self, EnumI64 as _};
use coset::{
    AsCborValue as _, CoseKey, CoseKeyBuilder, CoseSign1, CoseSign1Builder, Header, KeyType, Label,
    RegisteredLabelWithPrivate,
};
use edk_core::jose::jwk::{EcCurve, OkpCurve, PublicParams};
use edk_core::jose::{Algorithm, Jwk, Signer, VerifyingKey};

use crate::error::{Error, malformed};

/// The `COSE_Key` label of `kid` (RFC 9052 §7.1).
const KID: i64 = 2;

/// The COSE header label of `x5chain` (RFC 9360 §2).
pub const X5CHAIN: i64 = 33;

/// The COSE algorithm for a JOSE one: ES256 (-7), ES384 (-35) and EdDSA (-8).
///
/// # Errors
/// [`Error::Unsupported`] for any other algorithm.
pub fn cose_algorithm(alg: Algorithm) -> Result<iana::Algorithm, Error> {
    match alg {
        Algorithm::Es256 => Ok(iana::Algorithm::ES256),
        Algorithm::Es384 => Ok(iana::Algorithm::ES384),
        Algorithm::EdDsa | Algorithm::Ed25519 => Ok(iana::Algorithm::EdDSA),
        other => Err(Error::Unsupported {
            what: "signature algorithm",
            value: other.name().to_owned(),
        }),
    }
}

/// The JOSE algorithm of a COSE header's `alg`.
pub(crate) fn jose_algorithm(header: &Header) -> Result<Algorithm, Error> {
    match &header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => Ok(Algorithm::Es256),
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) => Ok(Algorithm::Es384),
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) => Ok(Algorithm::EdDsa),
        Some(other) => Err(Error::Unsupported {
            what: "COSE algorithm",
            value: format!("{other:?}"),
        }),
        None => Err(malformed("COSE_Sign1", "the protected header has no alg")),
    }
}

/// The `COSE_Key` of a public JWK: EC2 on P-256 or P-384, or OKP Ed25519.
///
/// # Errors
/// [`Error::InvalidDeviceKey`] for other key types and curves.
pub fn cose_key_from_jwk(jwk: &Jwk) -> Result<CoseKey, Error> {
    match jwk.params() {
        PublicParams::Ec { crv, x, y } => {
            let curve = match crv {
                EcCurve::P256 => iana::EllipticCurve::P_256,
                EcCurve::P384 => iana::EllipticCurve::P_384,
                _ => return Err(Error::InvalidDeviceKey("only P-256 and P-384 EC keys")),
            };
            Ok(CoseKeyBuilder::new_ec2_pub_key(curve, x.clone(), y.clone()).build())
        }
        PublicParams::Okp {
            crv: OkpCurve::Ed25519,
            x,
        } => Ok(CoseKeyBuilder::new_okp_key()
            .param(
                iana::OkpKeyParameter::Crv.to_i64(),
                Value::from(iana::EllipticCurve::Ed25519.to_i64()),
            )
            .param(iana::OkpKeyParameter::X.to_i64(), Value::Bytes(x.clone()))
            .build()),
        _ => Err(Error::InvalidDeviceKey(
            "only EC P-256/P-384 and Ed25519 keys can be device keys",
        )),
    }
}

/// The public JWK of a `COSE_Key`: EC2 on P-256 or P-384, or OKP Ed25519.
///
/// # Errors
/// [`Error::InvalidDeviceKey`] for other key types, curves and malformed coordinates.
pub fn jwk_from_cose_key(key: &CoseKey) -> Result<Jwk, Error> {
    let param = |label: i64| {
        key.params
            .iter()
            .find(|(l, _)| *l == Label::Int(label))
            .map(|(_, value)| value)
    };
    let curve = param(iana::Ec2KeyParameter::Crv.to_i64())
        .and_then(|crv| crv.as_integer())
        .and_then(|crv| i64::try_from(crv).ok());
    let bytes = |label: i64| match param(label) {
        Some(Value::Bytes(bytes)) => Ok(bytes.clone()),
        _ => Err(Error::InvalidDeviceKey(
            "a coordinate is missing or not bytes",
        )),
    };
    let params = match (&key.kty, curve) {
        (KeyType::Assigned(iana::KeyType::EC2), Some(crv)) => {
            let crv = if crv == iana::EllipticCurve::P_256.to_i64() {
                EcCurve::P256
            } else if crv == iana::EllipticCurve::P_384.to_i64() {
                EcCurve::P384
            } else {
                return Err(Error::InvalidDeviceKey("unsupported EC2 curve"));
            };
            let x = bytes(iana::Ec2KeyParameter::X.to_i64())?;
            let y = bytes(iana::Ec2KeyParameter::Y.to_i64())?;
            if x.len() != crv.coordinate_len() || y.len() != crv.coordinate_len() {
                return Err(Error::InvalidDeviceKey("coordinates of the wrong length"));
            }
            PublicParams::Ec { crv, x, y }
        }
        (KeyType::Assigned(iana::KeyType::OKP), Some(crv))
            if crv == iana::EllipticCurve::Ed25519.to_i64() =>
        {
            let x = bytes(iana::OkpKeyParameter::X.to_i64())?;
            if x.len() != 32 {
                return Err(Error::InvalidDeviceKey("an Ed25519 key is 32 bytes"));
            }
            PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                x,
            }
        }
        _ => {
            return Err(Error::InvalidDeviceKey(
                "unsupported COSE key type or curve",
            ));
        }
    };
    Jwk::from_parts(params, None).map_err(|_| Error::InvalidDeviceKey("not a valid public key"))
}

/// The `COSE_Key` map in a CBOR value. A text `kid` (label 2), which some libraries write
/// where RFC 9052 asks for bytes, is read as its UTF-8 bytes.
pub(crate) fn cose_key_from_value(value: Value) -> Result<CoseKey, Error> {
    let value = match value {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(label, value)| match (label, value) {
                    (label, Value::Text(kid)) if label == Value::from(KID) => {
                        (label, Value::Bytes(kid.into_bytes()))
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    };
    CoseKey::from_cbor_value(value).map_err(|_| malformed("deviceKey", "not a COSE_Key"))
}

/// The `COSE_Key` as a CBOR value.
pub(crate) fn cose_key_to_value(key: CoseKey) -> Result<Value, Error> {
    key.to_cbor_value()
        .map_err(|_| Error::Unencodable { what: "deviceKey" })
}

/// A `COSE_Sign1` over `payload` (attached, or detached when `detached`) by `signer`, with
/// `unprotected` header parameters.
pub(crate) async fn sign1(
    signer: &dyn Signer,
    payload: Vec<u8>,
    detached: bool,
    unprotected: Header,
) -> Result<CoseSign1, Error> {
    let protected = coset::HeaderBuilder::new()
        .algorithm(cose_algorithm(signer.algorithm())?)
        .build();
    let unsigned = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .build();
    let tbs = unsigned.tbs_data(&[]);
    let signature = signer.sign(&tbs).await.map_err(Error::Sign)?;
    let mut signed = unsigned;
    signed.signature = signature;
    if detached {
        signed.payload = None;
    }
    Ok(signed)
}

/// Verifies a `COSE_Sign1`'s signature with `key`, over its own payload or over `detached`.
pub(crate) fn verify1(
    sign1: &CoseSign1,
    key: &VerifyingKey,
    detached: Option<&[u8]>,
) -> Result<(), ()> {
    let alg = jose_algorithm(&sign1.protected.header).map_err(|_| ())?;
    let tbs = match detached {
        Some(payload) => sign1.tbs_detached_data(payload, &[]),
        None => sign1.tbs_data(&[]),
    };
    key.verify(alg, &tbs, &sign1.signature).map_err(|_| ())
}

/// The `x5chain` of a header: one DER certificate as a byte string, or an array of them.
pub(crate) fn x5chain(header: &Header) -> Result<Vec<Vec<u8>>, Error> {
    let value = header
        .rest
        .iter()
        .find(|(label, _)| *label == Label::Int(X5CHAIN))
        .map(|(_, value)| value)
        .ok_or(malformed(
            "issuerAuth",
            "the unprotected header has no x5chain",
        ))?;
    match value {
        Value::Bytes(der) => Ok(vec![der.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Bytes(der) => Ok(der.clone()),
                _ => Err(malformed("x5chain", "a certificate is not a byte string")),
            })
            .collect(),
        _ => Err(malformed("x5chain", "expected bytes or an array of bytes")),
    }
}

/// An unprotected header carrying `chain` as `x5chain` (a single certificate as bytes).
pub(crate) fn x5chain_header(chain: &[Vec<u8>]) -> Header {
    let value = match chain {
        [single] => Value::Bytes(single.clone()),
        many => Value::Array(many.iter().cloned().map(Value::Bytes).collect()),
    };
    coset::HeaderBuilder::new().value(X5CHAIN, value).build()
}

#[cfg(test)]
mod tests {
    use edk_core::jose::SigningKey;

    use super::*;

    #[test]
    fn device_keys_round_trip_through_cose_key() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
            let jwk = SigningKey::generate(alg).unwrap().public_jwk();
            let key = cose_key_from_jwk(&jwk).unwrap();
            let value = cose_key_to_value(key).unwrap();
            let back = jwk_from_cose_key(&cose_key_from_value(value).unwrap()).unwrap();
            assert_eq!(back.params(), jwk.params(), "{alg}");
        }
    }

    #[test]
    fn a_text_kid_is_read_as_bytes() {
        let jwk = SigningKey::generate(Algorithm::Es256).unwrap().public_jwk();
        let Value::Map(mut entries) = cose_key_to_value(cose_key_from_jwk(&jwk).unwrap()).unwrap()
        else {
            panic!("a COSE_Key is a map")
        };
        entries.push((Value::from(KID), Value::Text("key-1".to_owned())));
        let key = cose_key_from_value(Value::Map(entries)).unwrap();
        assert_eq!(key.key_id, b"key-1");
    }

    #[test]
    fn coordinates_of_the_wrong_length_are_refused() {
        let key =
            CoseKeyBuilder::new_ec2_pub_key(iana::EllipticCurve::P_256, vec![1; 31], vec![2; 32])
                .build();
        assert!(matches!(
            jwk_from_cose_key(&key),
            Err(Error::InvalidDeviceKey(_))
        ));
    }
}
