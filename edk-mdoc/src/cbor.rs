//! CBOR reading under limits, and the encodings ISO/IEC 18013-5 builds on it: tag 24
//! embedded CBOR, `tdate` (tag 0) and `full-date` (tag 1004), and the JSON mapping of claims.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ciborium::Value;

use crate::error::{Error, malformed};

/// CBOR tag 24: an encoded CBOR data item carried in a byte string (RFC 8949 §3.4.5.1).
pub const TAG_ENCODED_CBOR: u64 = 24;
/// CBOR tag 0: a date-time text string (RFC 8949 §3.4.1), the `tdate` of ISO/IEC 18013-5.
pub const TAG_TDATE: u64 = 0;
/// CBOR tag 1004: a `full-date` text string (RFC 8943), used for dates such as `birth_date`.
pub const TAG_FULL_DATE: u64 = 1004;

/// Bounds on what is read from untrusted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest encoded input accepted, in bytes (a whole `DeviceResponse` or `IssuerSigned`).
    pub max_bytes: usize,
    /// The deepest nesting of arrays, maps and tags accepted in one encoded item.
    pub max_depth: usize,
}

impl Limits {
    /// 4 MiB and 32 levels: room for a portrait and nested driving privileges.
    pub const DEFAULT: Self = Self {
        max_bytes: 4 * 1024 * 1024,
        max_depth: 32,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Decodes one CBOR item filling `bytes`, within `limits`.
pub(crate) fn decode(bytes: &[u8], limits: &Limits, what: &'static str) -> Result<Value, Error> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            what,
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut reader = bytes;
    let value: Value =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, limits.max_depth).map_err(
            |err| match err {
                ciborium::de::Error::RecursionLimitExceeded => Error::TooDeep {
                    what,
                    limit: limits.max_depth,
                },
                _ => malformed(what, "not well-formed CBOR"),
            },
        )?;
    if !reader.is_empty() {
        return Err(malformed(what, "bytes follow the CBOR item"));
    }
    Ok(value)
}

/// Encodes `value`.
#[expect(
    clippy::expect_used,
    reason = "writing a Value into a Vec cannot fail: the writer is infallible and every Value variant is encodable"
)]
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("a Value encodes into a Vec");
    out
}

/// `#6.24(bstr)` around already encoded CBOR.
pub(crate) fn tag24(encoded: Vec<u8>) -> Value {
    Value::Tag(TAG_ENCODED_CBOR, Box::new(Value::Bytes(encoded)))
}

/// The byte string inside `#6.24(bstr)`.
pub(crate) fn untag24(value: Value, what: &'static str) -> Result<Vec<u8>, Error> {
    match value {
        Value::Tag(TAG_ENCODED_CBOR, inner) => match *inner {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(malformed(what, "tag 24 does not hold a byte string")),
        },
        _ => Err(malformed(what, "expected embedded CBOR (tag 24)")),
    }
}

/// A CBOR map being taken apart by text keys.
pub(crate) struct Fields {
    entries: Vec<(Value, Value)>,
    what: &'static str,
}

impl Fields {
    /// The entries of `value`, which must be a map.
    pub(crate) fn new(value: Value, what: &'static str) -> Result<Self, Error> {
        match value {
            Value::Map(entries) => Ok(Self { entries, what }),
            _ => Err(malformed(what, "expected a map")),
        }
    }

    /// Removes and returns the value of `key`, if present.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let index = self
            .entries
            .iter()
            .position(|(k, _)| k.as_text() == Some(key))?;
        Some(self.entries.swap_remove(index).1)
    }

    /// Removes and returns the value of `key`, which must be present.
    pub(crate) fn require(&mut self, key: &'static str) -> Result<Value, Error> {
        self.take(key)
            .ok_or(malformed(self.what, "a required member is missing"))
    }

    /// The text value of `key`.
    pub(crate) fn text(&mut self, key: &'static str) -> Result<String, Error> {
        into_text(self.require(key)?, self.what)
    }
}

/// The string in a text value.
pub(crate) fn into_text(value: Value, what: &'static str) -> Result<String, Error> {
    match value {
        Value::Text(text) => Ok(text),
        _ => Err(malformed(what, "expected a text string")),
    }
}

/// The bytes in a byte string value.
pub(crate) fn into_bytes(value: Value, what: &'static str) -> Result<Vec<u8>, Error> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        _ => Err(malformed(what, "expected a byte string")),
    }
}

/// The items of an array value.
pub(crate) fn into_array(value: Value, what: &'static str) -> Result<Vec<Value>, Error> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(malformed(what, "expected an array")),
    }
}

/// The entries of a map value whose keys are text strings.
pub(crate) fn into_text_map(
    value: Value,
    what: &'static str,
) -> Result<Vec<(String, Value)>, Error> {
    match value {
        Value::Map(entries) => entries
            .into_iter()
            .map(|(key, value)| Ok((into_text(key, what)?, value)))
            .collect(),
        _ => Err(malformed(what, "expected a map")),
    }
}

/// A non-negative integer that fits `u64`.
pub(crate) fn into_u64(value: &Value, what: &'static str) -> Result<u64, Error> {
    value
        .as_integer()
        .and_then(|int| u64::try_from(int).ok())
        .ok_or(malformed(what, "expected an unsigned integer"))
}

/// `time` as a `tdate`: tag 0 over an RFC 3339 date-time in UTC with whole seconds.
pub(crate) fn tdate(time: SystemTime) -> Value {
    let time: DateTime<Utc> = time.into();
    Value::Tag(
        TAG_TDATE,
        Box::new(Value::Text(time.to_rfc3339_opts(SecondsFormat::Secs, true))),
    )
}

/// The time of a `tdate`.
pub(crate) fn parse_tdate(value: Value, what: &'static str) -> Result<SystemTime, Error> {
    let Value::Tag(TAG_TDATE, inner) = value else {
        return Err(malformed(what, "expected a tdate (tag 0)"));
    };
    let text = into_text(*inner, what)?;
    let time = DateTime::parse_from_rfc3339(&text)
        .map_err(|_| malformed(what, "the tdate is not an RFC 3339 date-time"))?;
    let seconds = time.timestamp();
    let nanos = time.timestamp_subsec_nanos();
    let offset = Duration::new(seconds.unsigned_abs(), 0);
    let whole = if seconds >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    whole
        .and_then(|whole| whole.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or(malformed(what, "the tdate is out of range"))
}

/// `time` as RFC 3339 text, for messages.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `full-date` (`YYYY-MM-DD`) as tag 1004, or `None` when `text` is not one.
pub(crate) fn full_date(text: &str) -> Option<Value> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    (date.format("%Y-%m-%d").to_string() == text)
        .then(|| Value::Tag(TAG_FULL_DATE, Box::new(Value::Text(text.to_owned()))))
}

/// A JSON value as CBOR: `null`, booleans, numbers (integers when they are, floats
/// otherwise), strings, arrays and objects (text-keyed maps) map one to one.
#[must_use]
pub fn json_to_cbor(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Null,
        Json::Bool(bool) => Value::Bool(*bool),
        Json::Number(number) => {
            if let Some(int) = number.as_u64() {
                Value::Integer(int.into())
            } else if let Some(int) = number.as_i64() {
                Value::Integer(int.into())
            } else {
                Value::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(text) => Value::Text(text.clone()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_cbor).collect()),
        Json::Object(members) => Value::Map(
            members
                .iter()
                .map(|(key, value)| (Value::Text(key.clone()), json_to_cbor(value)))
                .collect(),
        ),
    }
}

/// A CBOR element value as JSON, for applications that hand claims on: byte strings become
/// base64url text, `tdate` and `full-date` their text, other tags their content; map keys
/// that are not text are written in their diagnostic form; `undefined` and NaN become `null`.
#[must_use]
pub fn cbor_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Integer(int) => {
            let int = i128::from(*int);
            i64::try_from(int)
                .map(Json::from)
                .or_else(|_| u64::try_from(int).map(Json::from))
                .unwrap_or_else(|_| Json::String(int.to_string()))
        }
        Value::Bytes(bytes) => Json::String(edk_core::encoding::b64url_encode(bytes)),
        Value::Float(float) => {
            serde_json::Number::from_f64(*float).map_or(Json::Null, Json::Number)
        }
        Value::Text(text) => Json::String(text.clone()),
        Value::Bool(bool) => Json::Bool(*bool),
        Value::Tag(_, inner) => cbor_to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(cbor_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Value::Text(text) => text.clone(),
                        other => cbor_to_json(other).to_string(),
                    };
                    (key, cbor_to_json(value))
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_it_is_built() {
        let mut bytes = vec![0x81; 1000];
        bytes.push(0x00);
        assert!(matches!(
            decode(&bytes, &Limits::DEFAULT, "input"),
            Err(Error::TooDeep { limit: 32, .. })
        ));
    }

    #[test]
    fn a_byte_string_longer_than_the_input_is_malformed() {
        let bytes = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode(&bytes, &Limits::DEFAULT, "input"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(matches!(
            decode(&[0x01, 0x02], &Limits::DEFAULT, "input"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn tdate_round_trips_at_second_precision() {
        let time = UNIX_EPOCH + Duration::from_secs(1_601_559_002);
        let value = tdate(time);
        assert_eq!(
            value,
            Value::Tag(0, Box::new(Value::Text("2020-10-01T13:30:02Z".to_owned())))
        );
        assert_eq!(parse_tdate(value, "t").unwrap(), time);
    }

    #[test]
    fn full_dates_are_exactly_yyyy_mm_dd() {
        assert!(full_date("1990-01-31").is_some());
        assert!(full_date("1990-1-31").is_none());
        assert!(full_date("1990-02-30").is_none());
        assert!(full_date("1990-01-31T00:00:00Z").is_none());
    }

    #[test]
    fn element_values_read_as_json() {
        let value = Value::Map(vec![
            (
                Value::Text("portrait".to_owned()),
                Value::Bytes(vec![0xff, 0xd8]),
            ),
            (
                Value::Text("birth_date".to_owned()),
                Value::Tag(
                    TAG_FULL_DATE,
                    Box::new(Value::Text("1964-08-12".to_owned())),
                ),
            ),
            (Value::Integer(1.into()), Value::Integer((-3).into())),
            (Value::Text("nan".to_owned()), Value::Float(f64::NAN)),
        ]);
        assert_eq!(
            cbor_to_json(&value),
            serde_json::json!({"portrait": "_9g", "birth_date": "1964-08-12", "1": -3, "nan": null})
        );
    }

    #[test]
    fn json_numbers_keep_integers_apart_from_floats() {
        let value = json_to_cbor(&serde_json::json!({"a": 1, "b": -2, "c": 1.5}));
        assert_eq!(
            value,
            Value::Map(vec![
                (Value::Text("a".to_owned()), Value::Integer(1.into())),
                (Value::Text("b".to_owned()), Value::Integer((-2).into())),
                (Value::Text("c".to_owned()), Value::Float(1.5)),
            ])
        );
    }
}
