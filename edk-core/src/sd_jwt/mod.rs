//! Selective Disclosure for JWTs (RFC 9901).
//!
//! - [`issue`] turns a claims set into an SD-JWT: the claims named by [`ClaimPath`]s become
//!   disclosures (object properties and array elements, nested), each `_sd` array gets decoy
//!   digests and is sorted, and the payload carries `_sd_alg` (RFC 9901 §4.1–§4.2).
//! - [`SdJwt::select`] and [`SdJwt::present`] are the holder's side (§7.2): a chosen subset of
//!   disclosures, with a Key Binding JWT signed through a [`Signer`](crate::jose::Signer) (§4.3).
//! - [`SdJwt::verify`] runs every check of §7.1 and §7.3 and returns the processed claims.
//!
//! Both serializations are supported: compact (`<jwt>~<d1>~…~[<kb-jwt>]`, §4) and JWS JSON,
//! flattened and general, with `disclosures` and `kb_jwt` in the unprotected header (§8).
//! Every parser is bounded by [`Limits`]: input size, number of disclosures, nesting depth.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey};
//! use edk_core::sd_jwt::{self, ClaimPath, IssueOptions, KeyBindingClaims, SdJwt, VerifyOptions};
//!
//! let issuer = SigningKey::generate(Algorithm::Es256)?;
//! let holder = SigningKey::generate(Algorithm::Es256)?;
//! let claims = serde_json::json!({
//!     "iss": "https://issuer.example",
//!     "cnf": {"jwk": holder.public_jwk()},
//!     "given_name": "Erika",
//!     "address": {"locality": "Berlin", "country": "DE"},
//!     "nationalities": ["DE", "FR"],
//! });
//! let sd = ["given_name", "address", "address.locality", "nationalities.1"]
//!     .map(|p| p.parse::<ClaimPath>().unwrap());
//! let header = Header::new(Algorithm::Es256).with_typ("example+sd-jwt");
//! let issued = sd_jwt::issue(header, claims.as_object().unwrap().clone(), &sd,
//!     &IssueOptions::default(), &issuer).await?;
//!
//! // The holder discloses the locality (and so its parent, `address`), with key binding.
//! let kb = KeyBindingClaims::new("https://verifier.example", "n-0S6_WzA2Mj", 1_700_000_000);
//! let presented = issued
//!     .present(&["address.locality".parse()?], Some((&kb, &holder)))
//!     .await?
//!     .to_string();
//!
//! let verified = SdJwt::parse(&presented, &Default::default())?
//!     .verify(
//!         &JwksResolver::from_keys([&issuer.public_jwk()]),
//!         &VerifyOptions::default().with_key_binding("https://verifier.example", "n-0S6_WzA2Mj"),
//!         1_700_000_010,
//!     )
//!     .await?;
//! assert_eq!(verified.claims()["address"], serde_json::json!({"locality": "Berlin"}));
//! assert!(verified.claims().get("given_name").is_none());
//! # Ok(()) }
//! ```

#![warn(clippy::indexing_slicing)]

mod disclosure;
mod error;
mod issue;
mod present;
mod verify;

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use disclosure::Disclosure;
pub use error::SdJwtError;
pub use issue::{IssueOptions, issue};
pub use present::KeyBindingClaims;
pub use verify::{KeyBindingExpectation, VerifiedSdJwt, VerifyOptions};

use crate::encoding::{HashAlg, b64url_decode};
use crate::limits::Limits;

/// The `typ` of a Key Binding JWT (RFC 9901 §4.3).
pub const KB_JWT_TYP: &str = "kb+jwt";

/// The name of a claim inside a claims set: object member names and array positions, from
/// the top-level object down.
///
/// A segment selects a member when the value at that point is an object and an element when
/// it is an array (the segment is then a decimal index, counted over the elements the holder
/// can see, so decoy digests do not shift it). The dotted text form `address.street_address`
/// or `nationalities.0` parses with [`FromStr`]; names that contain a dot are built with
/// [`ClaimPath::new`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// A path from its segments.
    pub fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        Self(segments.into_iter().map(Into::into).collect())
    }

    /// The segments.
    #[must_use]
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub(crate) fn push(&mut self, segment: String) {
        self.0.push(segment);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl FromStr for ClaimPath {
    type Err = SdJwtError;

    /// Parses a dotted path; empty segments are refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.split('.').any(str::is_empty) {
            return Err(SdJwtError::PathNotFound(error::truncate(text)));
        }
        Ok(Self::new(text.split('.')))
    }
}

/// How [`SdJwt::to_json`] lays out the JWS JSON serialization (RFC 9901 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonSerialization {
    /// Flattened JWS JSON serialization (RFC 7515 §7.2.2).
    Flattened,
    /// General JWS JSON serialization with one signature (RFC 7515 §7.2.1).
    General,
}

/// An SD-JWT or SD-JWT+KB: the issuer-signed JWT, the disclosures and, in a presentation, a
/// Key Binding JWT (RFC 9901 §4).
///
/// Parsing checks structure only; [`SdJwt::verify`] establishes trust. [`fmt::Display`]
/// writes the compact serialization.
#[derive(Clone, Debug, PartialEq)]
pub struct SdJwt {
    jwt: String,
    disclosures: Vec<Disclosure>,
    kb_jwt: Option<String>,
}

impl SdJwt {
    /// Builds an SD-JWT from its parts, without checking the JWT.
    #[must_use]
    pub const fn from_parts(
        jwt: String,
        disclosures: Vec<Disclosure>,
        kb_jwt: Option<String>,
    ) -> Self {
        Self {
            jwt,
            disclosures,
            kb_jwt,
        }
    }

    /// Parses the compact serialization or, when `input` starts with `{`, the JWS JSON
    /// serialization (flattened or general with one signature).
    ///
    /// # Errors
    /// [`SdJwtError::TooLarge`], [`SdJwtError::TooManyDisclosures`], [`SdJwtError::Malformed`]
    /// and the errors of [`Disclosure::parse`].
    pub fn parse(input: &str, limits: &Limits) -> Result<Self, SdJwtError> {
        if input.len() > limits.max_token_bytes {
            return Err(SdJwtError::TooLarge {
                size: input.len(),
                limit: limits.max_token_bytes,
            });
        }
        if input.trim_start().starts_with('{') {
            return Self::parse_json(input, limits);
        }
        let mut parts: Vec<&str> = input.split('~').collect();
        let (Some(kb), false) = (parts.pop(), parts.is_empty()) else {
            return Err(SdJwtError::Malformed(
                "expected `<jwt>~<disclosures>~[<kb-jwt>]`",
            ));
        };
        let jwt = parts.remove(0);
        Self::from_strs(jwt, &parts, (!kb.is_empty()).then_some(kb), limits)
    }

    fn parse_json(input: &str, limits: &Limits) -> Result<Self, SdJwtError> {
        #[derive(Deserialize)]
        struct Unprotected {
            #[serde(default)]
            disclosures: Option<Vec<String>>,
            #[serde(default)]
            kb_jwt: Option<String>,
        }
        #[derive(Deserialize)]
        struct Signature {
            protected: String,
            signature: String,
            #[serde(default)]
            header: Option<Unprotected>,
        }
        #[derive(Deserialize)]
        struct Serialized {
            payload: String,
            #[serde(flatten)]
            flattened: Option<Signature>,
            #[serde(default)]
            signatures: Option<Vec<Signature>>,
        }
        let serialized: Serialized = serde_json::from_str(input)
            .map_err(|_| SdJwtError::Malformed("not a JWS JSON serialization"))?;
        let signature = match (serialized.flattened, serialized.signatures) {
            (Some(signature), None) => signature,
            (None, Some(mut signatures)) if signatures.len() == 1 => signatures.remove(0),
            (None, Some(signatures)) if signatures.len() > 1 => {
                return Err(SdJwtError::Unsupported(
                    "general JSON serialization with several signatures",
                ));
            }
            _ => return Err(SdJwtError::Malformed("not a JWS JSON serialization")),
        };
        let header = signature.header.unwrap_or(Unprotected {
            disclosures: None,
            kb_jwt: None,
        });
        let jwt = format!(
            "{}.{}.{}",
            signature.protected, serialized.payload, signature.signature
        );
        let disclosures = header.disclosures.unwrap_or_default();
        let disclosures: Vec<&str> = disclosures.iter().map(String::as_str).collect();
        Self::from_strs(&jwt, &disclosures, header.kb_jwt.as_deref(), limits)
    }

    fn from_strs(
        jwt: &str,
        disclosures: &[&str],
        kb_jwt: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, SdJwtError> {
        if disclosures.len() > limits.max_disclosures {
            return Err(SdJwtError::TooManyDisclosures {
                count: disclosures.len(),
                limit: limits.max_disclosures,
            });
        }
        if !is_compact_jws(jwt) {
            return Err(SdJwtError::Malformed(
                "the issuer-signed JWT is not a signed compact JWS",
            ));
        }
        if kb_jwt.is_some_and(|kb| !is_compact_jws(kb)) {
            return Err(SdJwtError::Malformed("the key binding JWT is malformed"));
        }
        let disclosures = disclosures
            .iter()
            .map(|d| {
                if d.is_empty() {
                    Err(SdJwtError::Malformed("empty disclosure"))
                } else {
                    Disclosure::parse(d, limits)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            jwt: jwt.to_owned(),
            disclosures,
            kb_jwt: kb_jwt.map(str::to_owned),
        })
    }

    /// The issuer-signed JWT, compact.
    #[must_use]
    pub fn issuer_jwt(&self) -> &str {
        &self.jwt
    }

    /// The disclosures, in the order they were issued or presented.
    #[must_use]
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }

    /// The Key Binding JWT, in an SD-JWT+KB.
    #[must_use]
    pub fn key_binding_jwt(&self) -> Option<&str> {
        self.kb_jwt.as_deref()
    }

    /// The SD-JWT without its Key Binding JWT.
    #[must_use]
    pub fn without_key_binding(mut self) -> Self {
        self.kb_jwt = None;
        self
    }

    /// The compact SD-JWT without the Key Binding JWT, ending in `~`: the input of
    /// `sd_hash` (RFC 9901 §4.3.1).
    #[must_use]
    pub fn sd_hash_input(&self) -> String {
        let len = self.jwt.len()
            + 1
            + self
                .disclosures
                .iter()
                .map(|d| d.as_str().len() + 1)
                .sum::<usize>();
        let mut out = String::with_capacity(len + self.kb_jwt.as_ref().map_or(0, String::len));
        out.push_str(&self.jwt);
        out.push('~');
        for disclosure in &self.disclosures {
            out.push_str(disclosure.as_str());
            out.push('~');
        }
        out
    }

    /// The `sd_hash` of this SD-JWT with `alg` (RFC 9901 §4.3.1).
    #[must_use]
    pub fn sd_hash(&self, alg: HashAlg) -> String {
        alg.digest_b64url(self.sd_hash_input().as_bytes())
    }

    /// The JWS JSON serialization (RFC 9901 §8.1): `disclosures` and, if present, `kb_jwt` in
    /// the unprotected header.
    #[must_use]
    pub fn to_json(&self, layout: JsonSerialization) -> Value {
        let mut parts = self.jwt.splitn(3, '.');
        let (protected, payload, signature) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let mut header = Map::new();
        header.insert(
            "disclosures".to_owned(),
            self.disclosures.iter().map(Disclosure::as_str).collect(),
        );
        if let Some(kb) = &self.kb_jwt {
            header.insert("kb_jwt".to_owned(), Value::from(kb.as_str()));
        }
        match layout {
            JsonSerialization::Flattened => json!({
                "header": header,
                "payload": payload,
                "protected": protected,
                "signature": signature,
            }),
            JsonSerialization::General => json!({
                "payload": payload,
                "signatures": [{"header": header, "protected": protected, "signature": signature}],
            }),
        }
    }

    /// The issuer-signed JWT's payload, decoded but **not verified**: for a holder's display
    /// or to pick a key, never for decisions.
    ///
    /// # Errors
    /// [`SdJwtError::Malformed`] when the JWT payload is not a base64url JSON object.
    pub fn unverified_payload(&self) -> Result<Map<String, Value>, SdJwtError> {
        let payload = self
            .jwt
            .split('.')
            .nth(1)
            .ok_or(SdJwtError::Malformed("the issuer-signed JWT is malformed"))?;
        let bytes = b64url_decode(payload)
            .map_err(|_| SdJwtError::Malformed("the issuer-signed JWT is malformed"))?;
        serde_json::from_slice(&bytes).map_err(|_| {
            SdJwtError::Malformed("the issuer-signed JWT payload is not a JSON object")
        })
    }
}

impl fmt::Display for SdJwt {
    /// The compact serialization (RFC 9901 §4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.jwt)?;
        f.write_str("~")?;
        for disclosure in &self.disclosures {
            f.write_str(disclosure.as_str())?;
            f.write_str("~")?;
        }
        if let Some(kb) = &self.kb_jwt {
            f.write_str(kb)?;
        }
        Ok(())
    }
}

/// The hash function named by a payload's `_sd_alg`; `sha-256` when absent (RFC 9901 §4.1.1).
pub(crate) fn sd_alg(payload: &Map<String, Value>) -> Result<HashAlg, SdJwtError> {
    match payload.get("_sd_alg") {
        None => Ok(HashAlg::Sha256),
        Some(Value::String(name)) => HashAlg::from_iana(name)
            .ok_or_else(|| SdJwtError::UnsupportedHashAlg(error::truncate(name))),
        Some(_) => Err(SdJwtError::Malformed("`_sd_alg` is not a string")),
    }
}

/// The digest held by an array element `{"...": "<digest>"}` (RFC 9901 §4.2.4.2).
pub(crate) fn array_digest(element: &Value) -> Option<&str> {
    match element {
        Value::Object(map) if map.len() == 1 => map.get("...").and_then(Value::as_str),
        _ => None,
    }
}

/// Whether `token` has the shape of a signed compact JWS: three non-empty base64url parts.
/// An SD-JWT is always signed (RFC 9901 §4.1), so an empty signature part is malformed.
fn is_compact_jws(token: &str) -> bool {
    let mut parts = token.split('.');
    let well_formed = |part: Option<&str>| {
        part.is_some_and(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    well_formed(parts.next())
        && well_formed(parts.next())
        && well_formed(parts.next())
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln";

    #[test]
    fn compact_parse_round_trips() {
        let d = Disclosure::property("s", "n", Value::from(1)).unwrap();
        let text = format!("{JWT}~{}~", d.as_str());
        let sd_jwt = SdJwt::parse(&text, &Limits::DEFAULT).unwrap();
        assert_eq!(sd_jwt.disclosures().len(), 1);
        assert_eq!(sd_jwt.key_binding_jwt(), None);
        assert_eq!(sd_jwt.to_string(), text);
        assert_eq!(sd_jwt.sd_hash_input(), text);
        let with_kb = format!("{text}a.b.c");
        let sd_jwt = SdJwt::parse(&with_kb, &Limits::DEFAULT).unwrap();
        assert_eq!(sd_jwt.key_binding_jwt(), Some("a.b.c"));
        assert_eq!(sd_jwt.sd_hash_input(), text);
        assert_eq!(sd_jwt.to_string(), with_kb);
    }

    #[test]
    fn json_serializations_round_trip() {
        let d = Disclosure::element("s", Value::from(1));
        let sd_jwt = SdJwt::from_parts(JWT.to_owned(), vec![d], Some("a.b.c".to_owned()));
        for layout in [JsonSerialization::Flattened, JsonSerialization::General] {
            let json = sd_jwt.to_json(layout).to_string();
            assert_eq!(SdJwt::parse(&json, &Limits::DEFAULT).unwrap(), sd_jwt);
        }
    }

    #[test]
    fn structural_errors_are_typed() {
        for input in [
            "",
            "~",
            "abc",
            "~~",
            "a.b.c~~~",
            "{",
            r#"{"payload":"e30"}"#,
        ] {
            assert!(SdJwt::parse(input, &Limits::DEFAULT).is_err(), "{input}");
        }
        let many = format!("{JWT}~{}", "WyJzIiwxXQ~".repeat(3));
        assert!(matches!(
            SdJwt::parse(&many, &Limits::DEFAULT.with_max_disclosures(2)),
            Err(SdJwtError::TooManyDisclosures { count: 3, limit: 2 })
        ));
        assert!(matches!(
            SdJwt::parse(&many, &Limits::DEFAULT.with_max_token_bytes(10)),
            Err(SdJwtError::TooLarge { .. })
        ));
        let general = json!({"payload": "e30", "signatures": [
            {"protected": "a", "signature": "b"}, {"protected": "c", "signature": "d"}]});
        assert!(matches!(
            SdJwt::parse(&general.to_string(), &Limits::DEFAULT),
            Err(SdJwtError::Unsupported(_))
        ));
    }

    #[test]
    fn unsigned_or_misshapen_jwts_are_refused_in_both_serializations() {
        for jwt in [
            "eyJhbGciOiJFUzI1NiJ9.e30.",
            "eyJhbGciOiJFUzI1NiJ9.e30",
            "a.b.c.d",
            "a.b+.c",
        ] {
            let compact = format!("{jwt}~");
            assert!(
                matches!(
                    SdJwt::parse(&compact, &Limits::DEFAULT),
                    Err(SdJwtError::Malformed(_))
                ),
                "{compact}"
            );
        }
        let flattened =
            json!({"payload": "e30", "protected": "eyJhbGciOiJFUzI1NiJ9", "signature": ""});
        assert!(matches!(
            SdJwt::parse(&flattened.to_string(), &Limits::DEFAULT),
            Err(SdJwtError::Malformed(_))
        ));
        let bad_kb = format!("{JWT}~a.b.");
        assert!(matches!(
            SdJwt::parse(&bad_kb, &Limits::DEFAULT),
            Err(SdJwtError::Malformed(_))
        ));
    }

    #[test]
    fn claim_paths_parse_dotted() {
        let path: ClaimPath = "address.street_address".parse().unwrap();
        assert_eq!(path.segments(), ["address", "street_address"]);
        assert_eq!(path.to_string(), "address.street_address");
        assert!("a..b".parse::<ClaimPath>().is_err());
        assert!("".parse::<ClaimPath>().is_err());
    }
}
