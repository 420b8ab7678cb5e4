//! JCS (RFC 8785), SHA-256 multihashes in base58btc, the SCID and entry hashes
//! (did:webvh §"SCID Generation and Verification", §"Entry Hash Generation and Verification").

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::error::WebvhError;

/// The placeholder that stands for the SCID before it is known.
pub const SCID_PLACEHOLDER: &str = "{SCID}";

/// The RFC 8785 canonical form of `value`.
///
/// # Errors
/// [`WebvhError::Canonicalization`] if the value cannot be serialised.
pub fn jcs(value: &Value) -> Result<Vec<u8>, WebvhError> {
    serde_json_canonicalizer::to_vec(value).map_err(WebvhError::Canonicalization)
}

/// `base58btc(multihash(sha-256, data))`, the `Qm…` form did:webvh uses (no multibase prefix).
#[must_use]
pub fn multihash_b58(data: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&[0x12, 0x20]);
    bytes.extend_from_slice(&Sha256::digest(data));
    bs58::encode(bytes).into_string()
}

/// The hash of an entry with `versionId` set to `predecessor` (the SCID for the first entry)
/// and without `proof`: `base58btc(multihash(JCS(entry)))`.
///
/// # Errors
/// [`WebvhError::Canonicalization`] if the entry cannot be canonicalised.
pub fn entry_hash(entry: &Value, predecessor: &str) -> Result<String, WebvhError> {
    let mut entry = entry.clone();
    if let Some(object) = entry.as_object_mut() {
        object.remove("proof");
        object.insert(
            "versionId".to_owned(),
            Value::String(predecessor.to_owned()),
        );
    }
    Ok(multihash_b58(&jcs(&entry)?))
}

/// The SCID of a preliminary first entry: every occurrence of the SCID (or of the
/// placeholder) is `{SCID}`, `versionId` is `{SCID}`, and there is no proof.
///
/// # Errors
/// [`WebvhError::Canonicalization`] if the entry cannot be canonicalised.
pub fn scid_of_preliminary(entry: &Value) -> Result<String, WebvhError> {
    entry_hash(entry, SCID_PLACEHOLDER)
}

/// Replaces every occurrence of `from` in the JSON text of `value` by `to` (did:webvh's
/// textual SCID substitution).
///
/// # Errors
/// [`WebvhError::Canonicalization`] if the value cannot be serialised or the result does not
/// parse (which a substitution of base58 text for `{SCID}` cannot cause).
pub fn replace_text(value: &Value, from: &str, to: &str) -> Result<Value, WebvhError> {
    let text = serde_json::to_string(value).map_err(WebvhError::Canonicalization)?;
    serde_json::from_str(&text.replace(from, to)).map_err(WebvhError::Canonicalization)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcs_formats_numbers_per_ecmascript() {
        let value: Value =
            serde_json::from_str(r#"{"b":1e21,"a":[1.0,0.000001,1e-7,-0.0],"€":"\u00e9\n"}"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(jcs(&value).unwrap()).unwrap(),
            "{\"a\":[1,0.000001,1e-7,0],\"b\":1e+21,\"€\":\"é\\n\"}"
        );
    }

    #[test]
    fn jcs_sorts_keys_by_utf16_code_units() {
        // U+1F600 (surrogates D83D DE00) sorts before U+FB01 in UTF-16, after it in UTF-8.
        let value: Value = serde_json::from_str(r#"{"\ufb01":1,"\ud83d\ude00":2}"#).unwrap();
        assert_eq!(
            String::from_utf8(jcs(&value).unwrap()).unwrap(),
            "{\"\u{1f600}\":2,\"\u{fb01}\":1}"
        );
    }
}
