//! The CBOR forms of the Status List (Status List §4.3) and of the Referenced Token's
//! `Status` structure (Status List §6.3), shared by CWTs and ISO mdocs.

use std::collections::BTreeSet;
use std::fmt;

use ciborium::Value;
use serde_json::Map;

use super::list::check_uri;
use super::{Bits, StatusClaim, StatusList, StatusListError, StatusListReference};
use crate::limits::Limits;

/// The CWT claim key of the Referenced Token's `status` claim (Status List §6.3).
pub const CWT_STATUS_CLAIM: i64 = 65_535;

/// The CBOR form of a status list (Status List §4.3), as carried in the `status_list` claim
/// (65533) of a Status List Token in CWT form: `bits`, the ZLIB bytes themselves as a byte
/// string, and an optional `aggregation_uri`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CborStatusList {
    /// Bits per status.
    pub bits: Bits,
    /// The ZLIB-compressed byte array (not base64).
    pub lst: Vec<u8>,
    /// The URI of the Status List Aggregation (Status List §9), if published.
    pub aggregation_uri: Option<String>,
}

impl CborStatusList {
    /// The CBOR form of `bits` and already compressed `lst` bytes.
    #[must_use]
    pub const fn new(bits: Bits, lst: Vec<u8>) -> Self {
        Self {
            bits,
            lst,
            aggregation_uri: None,
        }
    }

    /// The CBOR form with an `aggregation_uri`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `uri` is not an absolute URI.
    pub fn with_aggregation_uri(mut self, uri: impl Into<String>) -> Result<Self, StatusListError> {
        let uri = uri.into();
        check_uri(&uri, "aggregation_uri")?;
        self.aggregation_uri = Some(uri);
        Ok(self)
    }

    /// Decompresses `lst` under `limits`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidCompression`] or [`StatusListError::TooLarge`].
    pub fn decode(&self, limits: &Limits) -> Result<StatusList, StatusListError> {
        StatusList::decompress(self.bits, &self.lst, limits)
    }

    /// The `StatusList` CBOR map.
    #[must_use]
    pub fn to_cbor(&self) -> Value {
        let mut map = vec![
            (text("bits"), Value::from(self.bits.get())),
            (text("lst"), Value::Bytes(self.lst.clone())),
        ];
        if let Some(uri) = &self.aggregation_uri {
            map.push((text("aggregation_uri"), Value::Text(uri.clone())));
        }
        Value::Map(map)
    }

    /// Reads a `StatusList` CBOR map. Members other than `bits`, `lst` and
    /// `aggregation_uri` are ignored.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming `status_list` when the value is not a map with
    /// text keys, each once, `bits` when it is missing or not an unsigned integer, and `lst`
    /// when it is missing or not a byte string; [`StatusListError::InvalidBits`] for a
    /// `bits` other than 1, 2, 4 or 8, and [`StatusListError::InvalidUri`] for an
    /// `aggregation_uri` that is not an absolute URI.
    pub fn from_cbor(value: &Value) -> Result<Self, StatusListError> {
        let map = text_map(value).ok_or(StatusListError::InvalidClaim("status_list"))?;
        let mut bits = None;
        let mut lst = None;
        let mut aggregation_uri = None;
        for (key, value) in map {
            match key {
                "bits" => {
                    let raw = unsigned(value).ok_or(StatusListError::InvalidClaim("bits"))?;
                    let raw =
                        u8::try_from(raw).map_err(|_| StatusListError::InvalidClaim("bits"))?;
                    bits = Some(Bits::try_from(raw)?);
                }
                "lst" => match value {
                    Value::Bytes(bytes) => lst = Some(bytes.clone()),
                    _ => return Err(StatusListError::InvalidClaim("lst")),
                },
                "aggregation_uri" => match value {
                    Value::Text(uri) => {
                        check_uri(uri, "aggregation_uri")?;
                        aggregation_uri = Some(uri.clone());
                    }
                    _ => return Err(StatusListError::InvalidClaim("aggregation_uri")),
                },
                _ => {}
            }
        }
        Ok(Self {
            bits: bits.ok_or(StatusListError::InvalidClaim("bits"))?,
            lst: lst.ok_or(StatusListError::InvalidClaim("lst"))?,
            aggregation_uri,
        })
    }
}

impl fmt::Debug for CborStatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CborStatusList")
            .field("bits", &self.bits)
            .field("lst_bytes", &self.lst.len())
            .field("aggregation_uri", &self.aggregation_uri)
            .finish()
    }
}

impl StatusList {
    /// The CBOR form (Status List §4.3): `bits` and the compressed bytes.
    ///
    /// # Errors
    /// [`StatusListError::Compression`] if the compressor fails.
    pub fn encode_cbor(&self) -> Result<CborStatusList, StatusListError> {
        Ok(CborStatusList::new(self.bits(), self.compress()?))
    }
}

impl StatusListReference {
    /// The `StatusListInfo` CBOR map (Status List §6.3): `idx` as an unsigned integer and
    /// `uri` as a text string.
    #[must_use]
    pub fn to_cbor(&self) -> Value {
        Value::Map(vec![
            (
                text("idx"),
                Value::from(u64::try_from(self.idx).unwrap_or(u64::MAX)),
            ),
            (text("uri"), Value::Text(self.uri.clone())),
        ])
    }

    /// Reads a `StatusListInfo` CBOR map; members other than `idx` and `uri` are ignored.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming `status` when `idx` or `uri` is missing or of
    /// the wrong type, or the map repeats a key; [`StatusListError::InvalidUri`] when `uri` is
    /// not an absolute URI.
    pub fn from_cbor(value: &Value) -> Result<Self, StatusListError> {
        let invalid = || StatusListError::InvalidClaim("status");
        let map = text_map(value).ok_or_else(invalid)?;
        let mut idx = None;
        let mut uri = None;
        for (key, value) in map {
            match (key, value) {
                ("idx", value) => {
                    let raw = unsigned(value).ok_or_else(invalid)?;
                    idx = Some(usize::try_from(raw).map_err(|_| invalid())?);
                }
                ("uri", Value::Text(text)) => uri = Some(text.clone()),
                ("uri", _) => return Err(invalid()),
                _ => {}
            }
        }
        Self::new(idx.ok_or_else(invalid)?, uri.ok_or_else(invalid)?)
    }
}

impl StatusClaim {
    /// The `Status` CBOR structure (Status List §6.3): a map from mechanism names to their
    /// contents, for the CWT claim [`CWT_STATUS_CLAIM`] or the `status` element of an ISO
    /// mdoc's Mobile Security Object.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming `status` when the claim names no mechanism or
    /// another mechanism's JSON value has no CBOR form.
    pub fn to_cbor(&self) -> Result<Value, StatusListError> {
        let mut map = Vec::with_capacity(self.other.len() + 1);
        if let Some(reference) = &self.status_list {
            map.push((text("status_list"), reference.to_cbor()));
        }
        for (name, value) in &self.other {
            let value =
                Value::serialized(value).map_err(|_| StatusListError::InvalidClaim("status"))?;
            map.push((Value::Text(name.clone()), value));
        }
        if map.is_empty() {
            return Err(StatusListError::InvalidClaim("status"));
        }
        Ok(Value::Map(map))
    }

    /// Reads a `Status` CBOR structure (Status List §6.3). Other mechanisms are kept in
    /// [`StatusClaim::other`] when their contents have a JSON form, and skipped otherwise.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming `status` when the value is not a non-empty map
    /// with text keys, each once, or holds a malformed `status_list`.
    pub fn from_cbor(value: &Value) -> Result<Self, StatusListError> {
        let invalid = || StatusListError::InvalidClaim("status");
        let map = text_map(value).ok_or_else(invalid)?;
        if map.is_empty() {
            return Err(invalid());
        }
        let mut claim = Self::default();
        let mut other = Map::new();
        for (name, value) in map {
            if name == "status_list" {
                claim.status_list =
                    Some(StatusListReference::from_cbor(value).map_err(|_| invalid())?);
            } else if let Ok(json) = value.deserialized::<serde_json::Value>() {
                other.insert(name.to_owned(), json);
            }
        }
        claim.other = other;
        Ok(claim)
    }

    /// Reads the `status` claim (key [`CWT_STATUS_CLAIM`]) from a CWT Claims Set.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] naming `status` when the claims are not a map, the
    /// claim is absent, or it is malformed as for [`StatusClaim::from_cbor`].
    pub fn from_cwt_claims(claims: &Value) -> Result<Self, StatusListError> {
        let Value::Map(entries) = claims else {
            return Err(StatusListError::InvalidClaim("status"));
        };
        let status = entries
            .iter()
            .find(|(key, _)| integer(key) == Some(i128::from(CWT_STATUS_CLAIM)))
            .map(|(_, value)| value)
            .ok_or(StatusListError::InvalidClaim("status"))?;
        Self::from_cbor(status)
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// The entries of a CBOR map whose keys are all text strings, each present once.
pub(super) fn text_map(value: &Value) -> Option<Vec<(&str, &Value)>> {
    let Value::Map(entries) = value else {
        return None;
    };
    let mut seen = BTreeSet::new();
    let mut map: Vec<(&str, &Value)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Value::Text(key) = key else {
            return None;
        };
        if !seen.insert(key.as_str()) {
            return None;
        }
        map.push((key.as_str(), value));
    }
    Some(map)
}

/// A CBOR integer as an `i128`, which holds every CBOR integer.
pub(super) fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Integer(integer) => Some(i128::from(*integer)),
        _ => None,
    }
}

/// A CBOR unsigned integer (major type 0).
pub(super) fn unsigned(value: &Value) -> Option<u64> {
    integer(value).and_then(|integer| u64::try_from(integer).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(bytes: &[u8]) -> Value {
        ciborium::from_reader(bytes).unwrap()
    }

    #[test]
    fn status_list_4_3_example_reads_and_writes_the_same_bytes() {
        // Status List §4.3: {"bits": 1, "lst": h'78dadbb918000217015d'}.
        let bytes = [
            0xa2, 0x64, 0x62, 0x69, 0x74, 0x73, 0x01, 0x63, 0x6c, 0x73, 0x74, 0x4a, 0x78, 0xda,
            0xdb, 0xb9, 0x18, 0x00, 0x02, 0x17, 0x01, 0x5d,
        ];
        let list = CborStatusList::from_cbor(&cbor(&bytes)).unwrap();
        assert_eq!(list.bits, Bits::One);
        assert_eq!(
            list.decode(&Limits::DEFAULT).unwrap().as_bytes(),
            [0xb9, 0xa3]
        );
        let mut written = Vec::new();
        ciborium::into_writer(&list.to_cbor(), &mut written).unwrap();
        assert_eq!(written, bytes);
    }

    #[test]
    fn malformed_cbor_status_lists_name_the_bad_member() {
        let lst = Value::Bytes(vec![0x78, 0xda]);
        let cases = [
            (Value::Text("x".to_owned()), "status_list"),
            (
                Value::Map(vec![
                    (Value::from(1), Value::from(1)),
                    (text("lst"), lst.clone()),
                ]),
                "status_list",
            ),
            (Value::Map(vec![(text("lst"), lst.clone())]), "bits"),
            (
                Value::Map(vec![
                    (text("bits"), Value::from(-1)),
                    (text("lst"), lst.clone()),
                ]),
                "bits",
            ),
            (
                Value::Map(vec![
                    (text("bits"), Value::from(300)),
                    (text("lst"), lst.clone()),
                ]),
                "bits",
            ),
            (Value::Map(vec![(text("bits"), Value::from(1))]), "lst"),
            (
                Value::Map(vec![
                    (text("bits"), Value::from(1)),
                    (text("lst"), text("eNrbuRgAAhcBXQ")),
                ]),
                "lst",
            ),
            (
                Value::Map(vec![
                    (text("bits"), Value::from(1)),
                    (text("lst"), lst.clone()),
                    (text("lst"), lst.clone()),
                ]),
                "status_list",
            ),
        ];
        for (value, name) in cases {
            assert!(
                matches!(
                    CborStatusList::from_cbor(&value),
                    Err(StatusListError::InvalidClaim(claim)) if claim == name
                ),
                "{value:?}"
            );
        }
        assert!(matches!(
            CborStatusList::from_cbor(&Value::Map(vec![
                (text("bits"), Value::from(3)),
                (text("lst"), lst),
            ])),
            Err(StatusListError::InvalidBits(3))
        ));
    }

    #[test]
    fn status_6_3_example_claim_reads_and_round_trips() {
        // The `Status` structure of the Referenced Token in CWT format of Status List §6.3.
        let status = Value::Map(vec![(
            text("status_list"),
            Value::Map(vec![
                (text("idx"), Value::from(0)),
                (text("uri"), text("https://example.com/statuslists/1")),
            ]),
        )]);
        let claims = Value::Map(vec![
            (Value::from(1), text("https://example.com")),
            (Value::from(CWT_STATUS_CLAIM), status.clone()),
        ]);
        let claim = StatusClaim::from_cwt_claims(&claims).unwrap();
        let reference = claim.reference().unwrap();
        assert_eq!(reference.idx, 0);
        assert_eq!(reference.uri, "https://example.com/statuslists/1");
        assert_eq!(claim.to_cbor().unwrap(), status);
    }

    #[test]
    fn malformed_cbor_status_claims_are_refused() {
        let reference = |idx: Value, uri: Value| {
            Value::Map(vec![(
                text("status_list"),
                Value::Map(vec![(text("idx"), idx), (text("uri"), uri)]),
            )])
        };
        for value in [
            Value::Null,
            Value::Map(vec![]),
            Value::Map(vec![(Value::from(1), Value::Map(vec![]))]),
            reference(Value::from(-1), text("https://e.example/1")),
            reference(Value::Float(1.5), text("https://e.example/1")),
            reference(text("1"), text("https://e.example/1")),
            reference(Value::from(1), text("not a uri")),
            reference(
                Value::from(1),
                Value::Bytes(b"https://e.example/1".to_vec()),
            ),
        ] {
            assert!(
                matches!(
                    StatusClaim::from_cbor(&value),
                    Err(StatusListError::InvalidClaim("status"))
                ),
                "{value:?}"
            );
        }
        assert!(matches!(
            StatusClaim::from_cwt_claims(&Value::Map(vec![(Value::from(1), text("x"))])),
            Err(StatusListError::InvalidClaim("status"))
        ));
    }
}
