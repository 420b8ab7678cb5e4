//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037) and thumbprints (RFC 7638, RFC 9278).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::JoseError;
use crate::encoding::{HashAlg, b64url_decode, b64url_encode};

/// Elliptic curves for `kty: EC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// secp256k1 (RFC 8812).
    Secp256k1,
}

impl EcCurve {
    /// The JOSE `crv` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::Secp256k1 => "secp256k1",
        }
    }

    /// The length in bytes of a coordinate and of the private scalar.
    #[must_use]
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 | Self::Secp256k1 => 32,
            Self::P384 => 48,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "secp256k1" => Some(Self::Secp256k1),
            _ => None,
        }
    }
}

/// Curves for `kty: OKP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OkpCurve {
    /// Ed25519 signatures.
    Ed25519,
    /// X25519 key agreement.
    X25519,
}

impl OkpCurve {
    /// The JOSE `crv` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::X25519 => "X25519",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "Ed25519" => Some(Self::Ed25519),
            "X25519" => Some(Self::X25519),
            _ => None,
        }
    }
}

/// The public part of a key.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicParams {
    /// `kty: EC`.
    Ec {
        /// The curve.
        crv: EcCurve,
        /// The x coordinate, big-endian, exactly [`EcCurve::coordinate_len`] bytes.
        x: Vec<u8>,
        /// The y coordinate, big-endian, exactly [`EcCurve::coordinate_len`] bytes.
        y: Vec<u8>,
    },
    /// `kty: OKP`.
    Okp {
        /// The curve.
        crv: OkpCurve,
        /// The 32-byte public key.
        x: Vec<u8>,
    },
    /// `kty: RSA`.
    Rsa {
        /// The modulus, big-endian without leading zeros.
        n: Vec<u8>,
        /// The public exponent, big-endian without leading zeros.
        e: Vec<u8>,
    },
    /// `kty: oct`: a symmetric key has no public part.
    Oct,
}

impl PublicParams {
    /// The JOSE `kty`.
    #[must_use]
    pub const fn kty(&self) -> &'static str {
        match self {
            Self::Ec { .. } => "EC",
            Self::Okp { .. } => "OKP",
            Self::Rsa { .. } => "RSA",
            Self::Oct => "oct",
        }
    }
}

impl fmt::Debug for PublicParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { crv, .. } => write!(f, "EC({})", crv.name()),
            Self::Okp { crv, .. } => write!(f, "OKP({})", crv.name()),
            Self::Rsa { n, .. } => write!(f, "RSA({} bits)", n.len() * 8),
            Self::Oct => f.write_str("oct"),
        }
    }
}

/// The private part of a key. Zeroized on drop; never printed.
#[derive(Clone)]
#[non_exhaustive]
pub enum PrivateParams {
    /// The EC private scalar `d`.
    Ec {
        /// `d`, big-endian, exactly the curve's coordinate length.
        d: Zeroizing<Vec<u8>>,
    },
    /// The OKP private key `d` (the 32-byte seed).
    Okp {
        /// `d`.
        d: Zeroizing<Vec<u8>>,
    },
    /// The RSA private exponent and CRT parameters (RFC 7518 §6.3.2).
    Rsa(Box<RsaPrivateParams>),
    /// The symmetric key `k`.
    Oct {
        /// `k`.
        k: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for PrivateParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateParams(redacted)")
    }
}

/// RSA private parameters, all big-endian.
#[derive(Clone)]
#[non_exhaustive]
pub struct RsaPrivateParams {
    /// Private exponent.
    pub d: Zeroizing<Vec<u8>>,
    /// First prime factor.
    pub p: Zeroizing<Vec<u8>>,
    /// Second prime factor.
    pub q: Zeroizing<Vec<u8>>,
    /// First factor CRT exponent.
    pub dp: Zeroizing<Vec<u8>>,
    /// Second factor CRT exponent.
    pub dq: Zeroizing<Vec<u8>>,
    /// First CRT coefficient.
    pub qi: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RsaPrivateParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaPrivateParams(redacted)")
    }
}

impl RsaPrivateParams {
    /// Bundles the six private values.
    #[must_use]
    pub fn new(d: Vec<u8>, p: Vec<u8>, q: Vec<u8>, dp: Vec<u8>, dq: Vec<u8>, qi: Vec<u8>) -> Self {
        Self {
            d: Zeroizing::new(d),
            p: Zeroizing::new(p),
            q: Zeroizing::new(q),
            dp: Zeroizing::new(dp),
            dq: Zeroizing::new(dq),
            qi: Zeroizing::new(qi),
        }
    }
}

/// A JSON Web Key: public or private, EC (P-256, P-384, secp256k1), OKP (Ed25519, X25519),
/// RSA or symmetric.
///
/// Parsing checks coordinate and key sizes for the curve and refuses unknown `kty`/`crv`
/// values and multi-prime RSA. Members other than the key parameters round-trip unchanged.
/// `Debug` never prints key material.
///
/// ```
/// # use edk_core::jose::Jwk;
/// // RFC 7638 §3.1.
/// let jwk: Jwk = serde_json::from_str(r#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",
///   "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#)?;
/// assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Jwk {
    params: PublicParams,
    private: Option<PrivateParams>,
    /// `kid`.
    pub kid: Option<String>,
    /// `alg`: when present, the one algorithm this key may be used with.
    pub alg: Option<String>,
    /// `use` (`sig` or `enc`).
    pub key_use: Option<String>,
    /// `key_ops`.
    pub key_ops: Option<Vec<String>>,
    /// `x5c`: the certificate chain, standard base64 DER, leaf first.
    pub x5c: Option<Vec<String>>,
    /// Every other member, kept as received.
    pub extra: Map<String, Value>,
}

impl Jwk {
    /// A public key from its parameters, with no other members.
    #[must_use]
    pub fn from_public(params: PublicParams) -> Self {
        Self {
            params,
            private: None,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
            x5c: None,
            extra: Map::new(),
        }
    }

    /// A key from public and private parameters.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] when the parts do not belong to the same key type or have
    /// the wrong sizes.
    pub fn from_parts(
        params: PublicParams,
        private: Option<PrivateParams>,
    ) -> Result<Self, JoseError> {
        let jwk = Self {
            private,
            ..Self::from_public(params)
        };
        jwk.check()?;
        Ok(jwk)
    }

    /// The public parameters.
    #[must_use]
    pub const fn params(&self) -> &PublicParams {
        &self.params
    }

    /// The private parameters, if this is a private key.
    #[must_use]
    pub const fn private(&self) -> Option<&PrivateParams> {
        self.private.as_ref()
    }

    /// Whether the key carries private material.
    #[must_use]
    pub const fn is_private(&self) -> bool {
        self.private.is_some()
    }

    /// The JOSE `kty`.
    #[must_use]
    pub const fn kty(&self) -> &'static str {
        self.params.kty()
    }

    /// The same key without private material (and without `key_ops` that only a private key has).
    #[must_use]
    pub fn to_public(&self) -> Self {
        let key_ops = self.key_ops.as_ref().map(|ops| {
            ops.iter()
                .filter(|op| matches!(op.as_str(), "verify" | "encrypt" | "wrapKey"))
                .cloned()
                .collect()
        });
        Self {
            params: self.params.clone(),
            private: None,
            kid: self.kid.clone(),
            alg: self.alg.clone(),
            key_use: self.key_use.clone(),
            key_ops,
            x5c: self.x5c.clone(),
            extra: self.extra.clone(),
        }
    }

    /// Returns the key with `kid` set.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Returns the key with `alg` set.
    #[must_use]
    pub fn with_alg(mut self, alg: impl Into<String>) -> Self {
        self.alg = Some(alg.into());
        self
    }

    /// The RFC 7638 members of the key, in lexicographic order and without white space.
    #[must_use]
    pub fn thumbprint_input(&self) -> String {
        match &self.params {
            PublicParams::Ec { crv, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                crv.name(),
                b64url_encode(x),
                b64url_encode(y)
            ),
            PublicParams::Okp { crv, x } => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                crv.name(),
                b64url_encode(x)
            ),
            PublicParams::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64url_encode(e),
                b64url_encode(n)
            ),
            PublicParams::Oct => {
                let k = match &self.private {
                    Some(PrivateParams::Oct { k }) => b64url_encode(k.as_slice()),
                    _ => String::new(),
                };
                format!(r#"{{"k":"{k}","kty":"oct"}}"#)
            }
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the `kid` of every key EDK manages.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        self.thumbprint_with(HashAlg::Sha256)
    }

    /// The RFC 7638 thumbprint with another hash function.
    #[must_use]
    pub fn thumbprint_with(&self, hash: HashAlg) -> String {
        hash.digest_b64url(self.thumbprint_input().as_bytes())
    }

    /// The RFC 9278 thumbprint URI: `urn:ietf:params:oauth:jwk-thumbprint:sha-256:<thumbprint>`.
    #[must_use]
    pub fn thumbprint_uri(&self) -> String {
        format!(
            "urn:ietf:params:oauth:jwk-thumbprint:sha-256:{}",
            self.thumbprint()
        )
    }

    fn check(&self) -> Result<(), JoseError> {
        match (&self.params, &self.private) {
            (PublicParams::Ec { crv, x, y }, private) => {
                let len = crv.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(JoseError::InvalidKey(
                        "EC coordinates have the wrong length",
                    ));
                }
                match private {
                    None => Ok(()),
                    Some(PrivateParams::Ec { d }) if d.len() == len => Ok(()),
                    Some(PrivateParams::Ec { .. }) => {
                        Err(JoseError::InvalidKey("EC private key has the wrong length"))
                    }
                    Some(_) => Err(JoseError::InvalidKey("private part of another key type")),
                }
            }
            (PublicParams::Okp { x, .. }, private) => {
                if x.len() != 32 {
                    return Err(JoseError::InvalidKey("OKP public key must be 32 bytes"));
                }
                match private {
                    None => Ok(()),
                    Some(PrivateParams::Okp { d }) if d.len() == 32 => Ok(()),
                    Some(PrivateParams::Okp { .. }) => {
                        Err(JoseError::InvalidKey("OKP private key must be 32 bytes"))
                    }
                    Some(_) => Err(JoseError::InvalidKey("private part of another key type")),
                }
            }
            (PublicParams::Rsa { n, e }, private) => {
                if n.first() == Some(&0) || e.first() == Some(&0) || n.is_empty() || e.is_empty() {
                    return Err(JoseError::InvalidKey(
                        "RSA integers must be minimal and non-empty",
                    ));
                }
                match private {
                    None | Some(PrivateParams::Rsa(_)) => Ok(()),
                    Some(_) => Err(JoseError::InvalidKey("private part of another key type")),
                }
            }
            (PublicParams::Oct, Some(PrivateParams::Oct { k })) if !k.is_empty() => Ok(()),
            (PublicParams::Oct, _) => Err(JoseError::InvalidKey("oct key needs a non-empty `k`")),
        }
    }
}

impl PartialEq for Jwk {
    /// Two JWKs are equal when they hold the same public key (RFC 7638 members).
    fn eq(&self, other: &Self) -> bool {
        self.thumbprint_input() == other.thumbprint_input()
    }
}

impl Eq for Jwk {}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("key", &self.params)
            .field("private", &self.private.is_some())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The wire form, every member optional, checked in [`Jwk::try_from`].
#[derive(Deserialize, Serialize, Default)]
struct RawJwk {
    kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oth: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    key_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_ops: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn member(value: Option<&str>, reason: &'static str) -> Result<Vec<u8>, JoseError> {
    let text = value.ok_or(JoseError::Malformed {
        what: "JWK",
        reason,
    })?;
    b64url_decode(text).map_err(|_| JoseError::Malformed {
        what: "JWK",
        reason: "a key member is not base64url",
    })
}

fn secret(value: Option<&String>, reason: &'static str) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    member(value.map(String::as_str), reason).map(Zeroizing::new)
}

impl Drop for RawJwk {
    fn drop(&mut self) {
        for member in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
            &mut self.k,
        ] {
            member.zeroize();
        }
    }
}

impl TryFrom<RawJwk> for Jwk {
    type Error = JoseError;

    fn try_from(mut raw: RawJwk) -> Result<Self, JoseError> {
        let unknown_curve = || JoseError::UnsupportedKey(format!("curve {:?}", raw.crv));
        let (params, private) = match raw.kty.as_str() {
            "EC" => {
                let crv = raw
                    .crv
                    .as_deref()
                    .and_then(EcCurve::from_name)
                    .ok_or_else(unknown_curve)?;
                let params = PublicParams::Ec {
                    crv,
                    x: member(raw.x.as_deref(), "EC key without `x`")?,
                    y: member(raw.y.as_deref(), "EC key without `y`")?,
                };
                let private = match &raw.d {
                    Some(d) => Some(PrivateParams::Ec {
                        d: secret(Some(d), "EC key without `d`")?,
                    }),
                    None => None,
                };
                (params, private)
            }
            "OKP" => {
                let crv = raw
                    .crv
                    .as_deref()
                    .and_then(OkpCurve::from_name)
                    .ok_or_else(unknown_curve)?;
                let params = PublicParams::Okp {
                    crv,
                    x: member(raw.x.as_deref(), "OKP key without `x`")?,
                };
                let private = match &raw.d {
                    Some(d) => Some(PrivateParams::Okp {
                        d: secret(Some(d), "OKP key without `d`")?,
                    }),
                    None => None,
                };
                (params, private)
            }
            "RSA" => {
                if raw.oth.is_some() {
                    return Err(JoseError::UnsupportedKey("multi-prime RSA".to_owned()));
                }
                let params = PublicParams::Rsa {
                    n: member(raw.n.as_deref(), "RSA key without `n`")?,
                    e: member(raw.e.as_deref(), "RSA key without `e`")?,
                };
                let private = match &raw.d {
                    Some(d) => Some(PrivateParams::Rsa(Box::new(RsaPrivateParams {
                        d: secret(Some(d), "RSA key without `d`")?,
                        p: secret(raw.p.as_ref(), "RSA private key without `p`")?,
                        q: secret(raw.q.as_ref(), "RSA private key without `q`")?,
                        dp: secret(raw.dp.as_ref(), "RSA private key without `dp`")?,
                        dq: secret(raw.dq.as_ref(), "RSA private key without `dq`")?,
                        qi: secret(raw.qi.as_ref(), "RSA private key without `qi`")?,
                    }))),
                    None => None,
                };
                (params, private)
            }
            "oct" => (
                PublicParams::Oct,
                Some(PrivateParams::Oct {
                    k: secret(raw.k.as_ref(), "oct key without `k`")?,
                }),
            ),
            other => return Err(JoseError::UnsupportedKey(format!("kty {other:?}"))),
        };
        let jwk = Self {
            params,
            private,
            kid: raw.kid.take(),
            alg: raw.alg.take(),
            key_use: raw.key_use.take(),
            key_ops: raw.key_ops.take(),
            x5c: raw.x5c.take(),
            extra: std::mem::take(&mut raw.extra),
        };
        jwk.check()?;
        Ok(jwk)
    }
}

impl From<&Jwk> for RawJwk {
    fn from(jwk: &Jwk) -> Self {
        let mut raw = Self::default();
        jwk.kty().clone_into(&mut raw.kty);
        raw.kid.clone_from(&jwk.kid);
        raw.alg.clone_from(&jwk.alg);
        raw.key_use.clone_from(&jwk.key_use);
        raw.key_ops.clone_from(&jwk.key_ops);
        raw.x5c.clone_from(&jwk.x5c);
        raw.extra.clone_from(&jwk.extra);
        match &jwk.params {
            PublicParams::Ec { crv, x, y } => {
                raw.crv = Some(crv.name().to_owned());
                raw.x = Some(b64url_encode(x));
                raw.y = Some(b64url_encode(y));
            }
            PublicParams::Okp { crv, x } => {
                raw.crv = Some(crv.name().to_owned());
                raw.x = Some(b64url_encode(x));
            }
            PublicParams::Rsa { n, e } => {
                raw.n = Some(b64url_encode(n));
                raw.e = Some(b64url_encode(e));
            }
            PublicParams::Oct => {}
        }
        let enc = |bytes: &Zeroizing<Vec<u8>>| Some(b64url_encode(bytes.as_slice()));
        match &jwk.private {
            Some(PrivateParams::Ec { d } | PrivateParams::Okp { d }) => raw.d = enc(d),
            Some(PrivateParams::Rsa(rsa)) => {
                raw.d = enc(&rsa.d);
                raw.p = enc(&rsa.p);
                raw.q = enc(&rsa.q);
                raw.dp = enc(&rsa.dp);
                raw.dq = enc(&rsa.dq);
                raw.qi = enc(&rsa.qi);
            }
            Some(PrivateParams::Oct { k }) => raw.k = enc(k),
            None => {}
        }
        raw
    }
}

impl Serialize for Jwk {
    /// Serializes every member, private ones included: call [`Jwk::to_public`] first to
    /// publish a key.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawJwk::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJwk::deserialize(deserializer)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl<'de> Deserialize<'de> for JwkSet {
    /// Keys of a type or curve EDK does not support are skipped, as RFC 7517 §5 asks.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect();
        Ok(Self { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8037_a3_ed25519_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn private_material_never_reaches_debug() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        let debug = format!("{jwk:?}");
        assert!(!debug.contains("nWGxne"), "{debug}");
        assert!(jwk.is_private());
        let public = serde_json::to_value(jwk.to_public()).unwrap();
        assert!(public.get("d").is_none());
    }

    #[test]
    fn wrong_sizes_and_unknown_types_are_refused() {
        for bad in [
            r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#,
            r#"{"kty":"EC","crv":"P-521","x":"AAAA","y":"AAAA"}"#,
            r#"{"kty":"OKP","crv":"Ed448","x":"AAAA"}"#,
            r#"{"kty":"XYZ"}"#,
            r#"{"kty":"oct"}"#,
            r#"{"kty":"RSA","n":"AAEC","e":"AQAB"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=="}"#,
        ] {
            assert!(serde_json::from_str::<Jwk>(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn extra_members_round_trip() {
        let text = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","use":"sig","ext":true}"#;
        let jwk: Jwk = serde_json::from_str(text).unwrap();
        let back: Value = serde_json::to_value(&jwk).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn jwk_sets_skip_unsupported_keys() {
        let set: JwkSet = serde_json::from_str(
            r#"{"keys":[{"kty":"OKP","crv":"Ed448","x":"AA"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        )
        .unwrap();
        assert_eq!(set.keys.len(), 1);
    }
}
