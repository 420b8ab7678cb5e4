//! Public key resolvers: a JWK, a kid or alias of the tenant's own keys, a COSE_Key, an `x5c`
//! chain or a DID URL, each turned into a public JWK.
//!
//! A [`ResolverRegistry`] is built once and checked for duplicate ids. DID URLs go through a
//! [`DidUrlResolver`], itself a registry of [`DidKeyMethod`]s: `did:key` and `did:jwk` are
//! built in, and further methods (edk-did's) are added with [`DidUrlResolver::with_method`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ciborium::Value as Cbor;
use der::Decode;
use edk_core::encoding::b64url_encode;
use edk_core::jose::Jwk;
use edk_core::{ErrorKind, HasKind};
use edk_kms::{Caller, KeyRef, Kms};
use serde_json::{Value, json};
use x509_cert::Certificate;

/// Why a resolver could not produce a public key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The input is malformed for this resolver.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
    /// The input is well formed but names something this deployment cannot resolve.
    #[error("unsupported: {reason}")]
    Unsupported {
        /// What is missing.
        reason: String,
    },
    /// The KMS failed (for kid and alias lookups; unknown keys are not found).
    #[error(transparent)]
    Kms(#[from] edk_kms::Error),
}

impl ResolveError {
    fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }

    fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported {
            reason: reason.into(),
        }
    }
}

impl HasKind for ResolveError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Kms(err) => err.kind(),
        }
    }
}

/// Something that turns an input (a JSON value) into a public JWK.
#[async_trait]
pub trait PublicKeyResolver: fmt::Debug + Send + Sync {
    /// The resolver's id in `/resolvers/{id}`.
    fn id(&self) -> &str;

    /// What the resolver takes, for `/resolvers`.
    fn description(&self) -> &str;

    /// Resolves `input` for `caller`.
    ///
    /// # Errors
    /// [`ResolveError`].
    async fn resolve(&self, caller: &Caller, input: &Value) -> Result<Jwk, ResolveError>;
}

/// The resolvers of a deployment, by id; checked when built.
#[derive(Clone, Debug)]
pub struct ResolverRegistry {
    resolvers: Vec<Arc<dyn PublicKeyResolver>>,
}

impl ResolverRegistry {
    /// A registry of `resolvers`.
    ///
    /// # Errors
    /// [`crate::Error::DuplicateResolver`] for an id used twice.
    pub fn new(resolvers: Vec<Arc<dyn PublicKeyResolver>>) -> Result<Self, crate::Error> {
        for (index, resolver) in resolvers.iter().enumerate() {
            if resolvers[..index]
                .iter()
                .any(|earlier| earlier.id() == resolver.id())
            {
                return Err(crate::Error::DuplicateResolver {
                    id: resolver.id().to_owned(),
                });
            }
        }
        Ok(Self { resolvers })
    }

    /// The built-in resolvers: `jwk`, `kid` (over `kms`), `cose-key`, `x5c` and `did` (with
    /// `did:key` and `did:jwk`).
    #[must_use]
    pub fn standard(kms: Arc<dyn Kms>) -> Self {
        Self {
            resolvers: vec![
                Arc::new(JwkResolver),
                Arc::new(KidResolver { kms }),
                Arc::new(CoseKeyResolver),
                Arc::new(X5cResolver),
                Arc::new(DidUrlResolver::new()),
            ],
        }
    }

    /// Every resolver.
    #[must_use]
    pub fn all(&self) -> &[Arc<dyn PublicKeyResolver>] {
        &self.resolvers
    }

    /// The resolver with `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Arc<dyn PublicKeyResolver>> {
        self.resolvers.iter().find(|resolver| resolver.id() == id)
    }
}

fn jwk_from(value: Value) -> Result<Jwk, ResolveError> {
    let jwk: Jwk = serde_json::from_value(value)
        .map_err(|err| ResolveError::invalid(format!("not a usable JWK: {err}")))?;
    let public = jwk.to_public();
    let kid = public.thumbprint();
    Ok(public.with_kid(kid))
}

/// A JWK, checked and returned without private members, with its thumbprint as `kid`.
#[derive(Debug)]
pub struct JwkResolver;

#[async_trait]
impl PublicKeyResolver for JwkResolver {
    fn id(&self) -> &str {
        "jwk"
    }

    fn description(&self) -> &str {
        "a JWK object; answers its public part with the RFC 7638 thumbprint as kid"
    }

    async fn resolve(&self, _caller: &Caller, input: &Value) -> Result<Jwk, ResolveError> {
        if !input.is_object() {
            return Err(ResolveError::invalid("expected a JWK object"));
        }
        jwk_from(input.clone())
    }
}

/// A kid or an alias of the caller's own keys.
#[derive(Debug)]
pub struct KidResolver {
    kms: Arc<dyn Kms>,
}

#[async_trait]
impl PublicKeyResolver for KidResolver {
    fn id(&self) -> &str {
        "kid"
    }

    fn description(&self) -> &str {
        "a kid or an alias (service.purpose) of the tenant's own keys"
    }

    async fn resolve(&self, caller: &Caller, input: &Value) -> Result<Jwk, ResolveError> {
        let Value::String(text) = input else {
            return Err(ResolveError::invalid("expected a kid or alias string"));
        };
        let key: KeyRef = text
            .parse()
            .map_err(|err: edk_core::IdError| ResolveError::invalid(err.to_string()))?;
        Ok(self.kms.public_key(caller, &key).await?)
    }
}

/// A COSE_Key (RFC 9052 §7), CBOR in base64url.
#[derive(Debug)]
pub struct CoseKeyResolver;

#[async_trait]
impl PublicKeyResolver for CoseKeyResolver {
    fn id(&self) -> &str {
        "cose-key"
    }

    fn description(&self) -> &str {
        "a COSE_Key (EC2, OKP or RSA), CBOR encoded, base64url"
    }

    async fn resolve(&self, _caller: &Caller, input: &Value) -> Result<Jwk, ResolveError> {
        let Value::String(text) = input else {
            return Err(ResolveError::invalid("expected a base64url string"));
        };
        let bytes = edk_core::encoding::b64url_decode(text)
            .map_err(|_| ResolveError::invalid("not base64url"))?;
        let cbor: Cbor = ciborium::from_reader(bytes.as_slice())
            .map_err(|_| ResolveError::invalid("not CBOR"))?;
        jwk_from(cose_to_jwk(&cbor)?)
    }
}

fn cose_to_jwk(cbor: &Cbor) -> Result<Value, ResolveError> {
    let Cbor::Map(entries) = cbor else {
        return Err(ResolveError::invalid("a COSE_Key is a CBOR map"));
    };
    let label = |wanted: i64| {
        entries.iter().find_map(|(key, value)| match key {
            Cbor::Integer(label) if i128::from(*label) == i128::from(wanted) => Some(value),
            _ => None,
        })
    };
    let int = |wanted: i64| -> Option<i128> {
        match label(wanted) {
            Some(Cbor::Integer(value)) => Some(i128::from(*value)),
            _ => None,
        }
    };
    let bytes = |wanted: i64, name: &str| -> Result<String, ResolveError> {
        match label(wanted) {
            Some(Cbor::Bytes(value)) => Ok(b64url_encode(value)),
            _ => Err(ResolveError::invalid(format!(
                "missing byte string `{name}`"
            ))),
        }
    };
    match int(1) {
        Some(1) => {
            let crv = match int(-1) {
                Some(6) => "Ed25519",
                Some(4) => "X25519",
                _ => return Err(ResolveError::unsupported("this OKP curve")),
            };
            Ok(json!({ "kty": "OKP", "crv": crv, "x": bytes(-2, "x")? }))
        }
        Some(2) => {
            let crv = match int(-1) {
                Some(1) => "P-256",
                Some(2) => "P-384",
                Some(8) => "secp256k1",
                _ => return Err(ResolveError::unsupported("this EC2 curve")),
            };
            let y = match label(-3) {
                Some(Cbor::Bytes(y)) => b64url_encode(y),
                _ => return Err(ResolveError::unsupported("compressed EC2 points")),
            };
            Ok(json!({ "kty": "EC", "crv": crv, "x": bytes(-2, "x")?, "y": y }))
        }
        Some(3) => Ok(json!({ "kty": "RSA", "n": bytes(-1, "n")?, "e": bytes(-2, "e")? })),
        _ => Err(ResolveError::unsupported("this COSE key type")),
    }
}

/// The leaf public key of an `x5c` chain (standard base64 DER, leaf first). The chain is not
/// validated here; `/certificate-chains` validation does that.
#[derive(Debug)]
pub struct X5cResolver;

#[async_trait]
impl PublicKeyResolver for X5cResolver {
    fn id(&self) -> &str {
        "x5c"
    }

    fn description(&self) -> &str {
        "an x5c array (standard base64 DER, leaf first); answers the leaf's public key"
    }

    async fn resolve(&self, _caller: &Caller, input: &Value) -> Result<Jwk, ResolveError> {
        let leaf = match input {
            Value::Array(chain) => chain.first(),
            _ => None,
        };
        let Some(Value::String(leaf)) = leaf else {
            return Err(ResolveError::invalid(
                "expected a non-empty array of base64 strings",
            ));
        };
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(leaf)
            .map_err(|_| ResolveError::invalid("the leaf is not standard base64"))?;
        let cert = Certificate::from_der(&der)
            .map_err(|_| ResolveError::invalid("the leaf is not a DER certificate"))?;
        let spki = &cert.tbs_certificate().subject_public_key_info();
        jwk_from(spki_to_jwk(spki)?)
    }
}

const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_SECP256K1: &str = "1.3.132.0.10";
const OID_ED25519: &str = "1.3.101.112";
const OID_X25519: &str = "1.3.101.110";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

fn spki_to_jwk(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<Value, ResolveError> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| ResolveError::invalid("the public key has unused bits"))?;
    match spki.algorithm.oid.to_string().as_str() {
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|params| params.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            let (crv, len) = match curve.as_deref() {
                Some(OID_P256) => ("P-256", 32),
                Some(OID_P384) => ("P-384", 48),
                Some(OID_SECP256K1) => ("secp256k1", 32),
                _ => return Err(ResolveError::unsupported("this EC curve")),
            };
            match key.split_first() {
                Some((4, point)) if point.len() == 2 * len => {
                    let (x, y) = point.split_at(len);
                    Ok(
                        json!({ "kty": "EC", "crv": crv, "x": b64url_encode(x), "y": b64url_encode(y) }),
                    )
                }
                _ => Err(ResolveError::unsupported(
                    "compressed or malformed EC points",
                )),
            }
        }
        OID_ED25519 => Ok(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key) })),
        OID_X25519 => Ok(json!({ "kty": "OKP", "crv": "X25519", "x": b64url_encode(key) })),
        OID_RSA => {
            let rsa = pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(key)
                .map_err(|_| ResolveError::invalid("malformed RSA public key"))?;
            Ok(json!({
                "kty": "RSA",
                "n": b64url_encode(rsa.modulus.as_bytes()),
                "e": b64url_encode(rsa.public_exponent.as_bytes()),
            }))
        }
        _ => Err(ResolveError::unsupported("this public key algorithm")),
    }
}

/// A DID method that resolves a DID URL to a public key.
#[async_trait]
pub trait DidKeyMethod: fmt::Debug + Send + Sync {
    /// The method name without `did:`, e.g. `key`.
    fn method(&self) -> &str;

    /// The key `did_url` names.
    ///
    /// # Errors
    /// [`ResolveError`].
    async fn resolve_key(&self, did_url: &str) -> Result<Jwk, ResolveError>;
}

/// DID URLs to public keys, over a set of [`DidKeyMethod`]s.
#[derive(Clone, Debug)]
pub struct DidUrlResolver {
    methods: Vec<Arc<dyn DidKeyMethod>>,
}

impl DidUrlResolver {
    /// The resolver with `did:key` and `did:jwk`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            methods: vec![Arc::new(DidKey), Arc::new(DidJwk)],
        }
    }

    /// Adds (or replaces) the resolver of `method.method()`.
    #[must_use]
    pub fn with_method(mut self, method: Arc<dyn DidKeyMethod>) -> Self {
        self.methods
            .retain(|known| known.method() != method.method());
        self.methods.push(method);
        self
    }
}

impl Default for DidUrlResolver {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl PublicKeyResolver for DidUrlResolver {
    fn id(&self) -> &str {
        "did"
    }

    fn description(&self) -> &str {
        "a DID or DID URL (did:key, did:jwk and any added method)"
    }

    async fn resolve(&self, _caller: &Caller, input: &Value) -> Result<Jwk, ResolveError> {
        let Value::String(did_url) = input else {
            return Err(ResolveError::invalid("expected a DID URL string"));
        };
        let method = did_url
            .strip_prefix("did:")
            .and_then(|rest| rest.split_once(':'))
            .map(|(method, _)| method)
            .ok_or_else(|| ResolveError::invalid("not a DID URL"))?;
        let resolver = self
            .methods
            .iter()
            .find(|known| known.method() == method)
            .ok_or_else(|| ResolveError::unsupported(format!("the DID method `{method}`")))?;
        resolver.resolve_key(did_url).await
    }
}

/// The method-specific id of `did_url` (before any `#`, `?` or `/`).
fn method_specific_id<'a>(did_url: &'a str, prefix: &str) -> Result<&'a str, ResolveError> {
    let rest = did_url
        .strip_prefix(prefix)
        .ok_or_else(|| ResolveError::invalid("not a DID URL of this method"))?;
    let end = rest.find(['#', '?', '/']).unwrap_or(rest.len());
    Ok(&rest[..end])
}

/// `did:key` (Ed25519, X25519 and `jwk_jcs-pub` keys).
#[derive(Debug)]
pub struct DidKey;

#[async_trait]
impl DidKeyMethod for DidKey {
    fn method(&self) -> &str {
        "key"
    }

    async fn resolve_key(&self, did_url: &str) -> Result<Jwk, ResolveError> {
        let id = method_specific_id(did_url, "did:key:")?;
        let encoded = id
            .strip_prefix('z')
            .ok_or_else(|| ResolveError::invalid("did:key needs base58btc multibase (`z`)"))?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| ResolveError::invalid("not base58btc"))?;
        match bytes.as_slice() {
            [0xed, 0x01, key @ ..] if key.len() == 32 => {
                jwk_from(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key) }))
            }
            [0xec, 0x01, key @ ..] if key.len() == 32 => {
                jwk_from(json!({ "kty": "OKP", "crv": "X25519", "x": b64url_encode(key) }))
            }
            [0xeb, 0x51, json @ ..] => jwk_from(
                serde_json::from_slice(json)
                    .map_err(|_| ResolveError::invalid("jwk_jcs-pub is not JSON"))?,
            ),
            _ => Err(ResolveError::unsupported("this did:key key type")),
        }
    }
}

/// `did:jwk`.
#[derive(Debug)]
pub struct DidJwk;

#[async_trait]
impl DidKeyMethod for DidJwk {
    fn method(&self) -> &str {
        "jwk"
    }

    async fn resolve_key(&self, did_url: &str) -> Result<Jwk, ResolveError> {
        let id = method_specific_id(did_url, "did:jwk:")?;
        let json = edk_core::encoding::b64url_decode(id)
            .map_err(|_| ResolveError::invalid("did:jwk is not base64url"))?;
        jwk_from(
            serde_json::from_slice(&json)
                .map_err(|_| ResolveError::invalid("did:jwk is not a JSON JWK"))?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cose_ec2_keys_become_jwks() {
        let x = vec![1_u8; 32];
        let y = vec![2_u8; 32];
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(x.clone())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(y)),
        ]);
        let jwk = cose_to_jwk(&cose).unwrap();
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["x"], b64url_encode(&x));
        let okp_unknown = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(99.into())),
        ]);
        assert!(matches!(
            cose_to_jwk(&okp_unknown),
            Err(ResolveError::Unsupported { .. })
        ));
    }

    #[test]
    fn did_urls_lose_their_fragment() {
        assert_eq!(
            method_specific_id("did:key:z6Mk#z6Mk", "did:key:").unwrap(),
            "z6Mk"
        );
    }
}
