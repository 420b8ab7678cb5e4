//! The `SessionTranscript` the device signs over (§9.1.5.1), with the handovers of
//! OpenID4VP 1.0 Appendix B.2.6.

use ciborium::Value;
use edk_core::encoding::HashAlg;

use crate::cbor::{Limits, decode, encode, untag24};
use crate::error::Error;

/// A `SessionTranscript`: `[DeviceEngagementBytes, EReaderKeyBytes, Handover]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionTranscript(Value);

impl SessionTranscript {
    /// The transcript of a redirect-based OpenID4VP 1.0 presentation (Appendix B.2.6.1):
    /// `[null, null, ["OpenID4VPHandover", SHA-256(CBOR([client_id, nonce, jwk_thumbprint,
    /// response_uri]))]]`, where `jwk_thumbprint` is the RFC 7638 SHA-256 thumbprint (the raw
    /// bytes) of the verifier's response encryption key, `None` when the response is not
    /// encrypted, and `response_uri` is the `response_uri` or, for `direct_post`-less flows,
    /// the `redirect_uri`.
    #[must_use]
    pub fn openid4vp(
        client_id: &str,
        nonce: &str,
        jwk_thumbprint: Option<&[u8]>,
        response_uri: &str,
    ) -> Self {
        let info = Value::Array(vec![
            Value::Text(client_id.to_owned()),
            Value::Text(nonce.to_owned()),
            jwk_thumbprint.map_or(Value::Null, |thumbprint| Value::Bytes(thumbprint.to_vec())),
            Value::Text(response_uri.to_owned()),
        ]);
        Self::handover("OpenID4VPHandover", &info)
    }

    /// The transcript of an OpenID4VP presentation over the Digital Credentials API
    /// (Appendix B.2.6.2): `[null, null, ["OpenID4VPDCAPIHandover", SHA-256(CBOR([origin,
    /// nonce, jwk_thumbprint]))]]`, `origin` being the web origin the browser reported.
    #[must_use]
    pub fn openid4vp_dc_api(origin: &str, nonce: &str, jwk_thumbprint: Option<&[u8]>) -> Self {
        let info = Value::Array(vec![
            Value::Text(origin.to_owned()),
            Value::Text(nonce.to_owned()),
            jwk_thumbprint.map_or(Value::Null, |thumbprint| Value::Bytes(thumbprint.to_vec())),
        ]);
        Self::handover("OpenID4VPDCAPIHandover", &info)
    }

    /// A transcript from its CBOR encoding, or from `SessionTranscriptBytes` (the encoding in
    /// a tag 24 byte string), as other transports (ISO/IEC 18013-5 proximity, Annex D) give it.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the input is not a three-element array;
    /// [`Error::TooLarge`] or [`Error::TooDeep`] past `limits`.
    pub fn from_cbor(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        let value = match decode(bytes, limits, "SessionTranscript")? {
            tagged @ Value::Tag(24, _) => decode(
                &untag24(tagged, "SessionTranscriptBytes")?,
                limits,
                "SessionTranscript",
            )?,
            value => value,
        };
        match &value {
            Value::Array(items) if items.len() == 3 => Ok(Self(value)),
            _ => Err(crate::error::malformed(
                "SessionTranscript",
                "expected an array of three items",
            )),
        }
    }

    /// The CBOR encoding of the transcript.
    #[must_use]
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(&self.0)
    }

    /// `SessionTranscriptBytes`: the encoding in a tag 24 byte string, the form several
    /// libraries take the transcript in.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&crate::cbor::tag24(self.to_cbor()))
    }

    /// The transcript as a CBOR value.
    #[must_use]
    pub const fn as_value(&self) -> &Value {
        &self.0
    }

    fn handover(name: &str, info: &Value) -> Self {
        let hash = HashAlg::Sha256.digest(&encode(info));
        Self(Value::Array(vec![
            Value::Null,
            Value::Null,
            Value::Array(vec![Value::Text(name.to_owned()), Value::Bytes(hash)]),
        ]))
    }
}

/// `DeviceAuthenticationBytes` (§9.1.3.4): `#6.24(bstr .cbor ["DeviceAuthentication",
/// SessionTranscript, DocType, DeviceNameSpacesBytes])`, the detached payload of the device
/// signature.
pub(crate) fn device_authentication_bytes(
    transcript: &SessionTranscript,
    doc_type: &str,
    device_name_spaces: &[u8],
) -> Vec<u8> {
    let authentication = Value::Array(vec![
        Value::Text("DeviceAuthentication".to_owned()),
        transcript.0.clone(),
        Value::Text(doc_type.to_owned()),
        crate::cbor::tag24(device_name_spaces.to_vec()),
    ]);
    encode(&crate::cbor::tag24(encode(&authentication)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openid4vp_handover_matches_the_appendix_b_2_6_1_example() {
        let jwk: edk_core::jose::Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "DxiH5Q4Yx3UrukE2lWCErq8N8bqC9CHLLrAwLz5BmE0",
            "y": "XtLM4-3h5o3HUH0MHVJV0kyq0iBlrBwlh8qEDMZ4-Pc"
        }))
        .unwrap();
        let thumbprint = edk_core::encoding::b64url_decode(jwk.thumbprint()).unwrap();
        let transcript = SessionTranscript::openid4vp(
            "x509_san_dns:example.com",
            "exc7gBkxjx1rdc9udRrveKvSsJIq80avlXeLHhGwqtA",
            Some(&thumbprint),
            "https://example.com/response",
        );
        let hex: String = transcript
            .to_cbor()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            hex,
            "83f6f682714f70656e494434565048616e646f7665725820048bc053c00442af9b8eed494cefdd9d95240d254b046b11b68013722aad38ac"
        );
    }

    #[test]
    fn the_dc_api_handover_binds_the_origin() {
        let a = SessionTranscript::openid4vp_dc_api("https://a.example", "n", None);
        let b = SessionTranscript::openid4vp_dc_api("https://b.example", "n", None);
        assert_ne!(a, b);
        let Value::Array(items) = a.as_value() else {
            panic!("not an array")
        };
        let Value::Array(handover) = &items[2] else {
            panic!("no handover")
        };
        assert_eq!(
            handover[0],
            Value::Text("OpenID4VPDCAPIHandover".to_owned())
        );
    }
}
