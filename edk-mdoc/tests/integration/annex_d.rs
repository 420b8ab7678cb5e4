//! ISO/IEC 18013-5:2021 Annex D vectors (see `tests/vectors/iso18013-5/README.md`).

use std::sync::Arc;

use edk_core::FixedClock;
use edk_mdoc::{DeviceResponse, Error, Limits, SessionTranscript, Verifier};

use crate::support::{MDL, unhex};

const DEVICE_RESPONSE: &str = include_str!("../vectors/iso18013-5/device_response.hex");
const SESSION_TRANSCRIPT: &str = include_str!("../vectors/iso18013-5/session_transcript_bytes.hex");
const IACA_ROOT: &str = include_str!("../vectors/iso18013-5/iaca_root.hex");

/// 2021-01-01T00:00:00Z: inside the MSO's and the document signer certificate's validity.
const IN_2021: i64 = 1_609_459_200;

fn verifier(at: i64) -> Verifier {
    Verifier::new([unhex(IACA_ROOT)], Arc::new(FixedClock::at_unix(at))).unwrap()
}

fn response() -> DeviceResponse {
    DeviceResponse::from_cbor(&unhex(DEVICE_RESPONSE), &Limits::DEFAULT).unwrap()
}

#[tokio::test]
async fn annex_d_4_1_2_issuer_signed_verifies_under_the_iaca_root() {
    let response = response();
    assert_eq!(response.version, "1.0");
    assert_eq!(response.status, 0);
    let document = &response.documents[0];
    assert_eq!(document.doc_type, MDL);
    let verified = verifier(IN_2021)
        .verify_issuer_signed(&document.issuer_signed, MDL)
        .await
        .unwrap();
    let mdl = &verified.name_spaces["org.iso.18013.5.1"];
    assert_eq!(mdl["family_name"], ciborium::Value::Text("Doe".to_owned()));
    assert_eq!(
        mdl["issue_date"],
        ciborium::Value::Tag(
            1004,
            Box::new(ciborium::Value::Text("2019-10-20".to_owned()))
        )
    );
    assert_eq!(
        mdl["document_number"],
        ciborium::Value::Text("123456789".to_owned())
    );
    assert_eq!(mdl.len(), 6);
    assert_eq!(verified.mso.value_digests["org.iso.18013.5.1"].len(), 13);
    assert_eq!(verified.mso.value_digests["org.iso.18013.5.1.US"].len(), 4);
    let jwk = serde_json::to_value(&verified.device_key).unwrap();
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(
        edk_core::encoding::b64url_decode(jwk["x"].as_str().unwrap()).unwrap(),
        unhex("96313d6c63e24e3372742bfdb1a33ba2c897dcd68ab8c753e4fbd48dca6b7f9a")
    );
}

#[tokio::test]
async fn annex_d_4_1_2_is_refused_once_its_document_signer_certificate_expired() {
    // 2021-10-02: after the DS certificate (until 2021-10-01T00:00:00Z) and the MSO.
    let err = verifier(1_633_132_800)
        .verify_issuer_signed(&response().documents[0].issuer_signed, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedIssuer(_)), "{err}");
}

#[tokio::test]
async fn annex_d_4_1_2_before_its_valid_from_is_not_yet_valid() {
    // 2020-10-01T12:00:00Z: the certificates are valid, the MSO only from 13:30:02.
    let err = verifier(1_601_553_600)
        .verify_issuer_signed(&response().documents[0].issuer_signed, MDL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotYetValid { valid_from } if valid_from == "2020-10-01T13:30:02Z"),
        "{err}"
    );
}

#[tokio::test]
async fn annex_d_4_1_2_tampered_family_name_fails_its_digest() {
    let mut bytes = unhex(DEVICE_RESPONSE);
    let doe = bytes.windows(4).position(|w| w == b"cDoe").unwrap();
    bytes[doe + 1] = b'F';
    let response = DeviceResponse::from_cbor(&bytes, &Limits::DEFAULT).unwrap();
    let err = verifier(IN_2021)
        .verify_issuer_signed(&response.documents[0].issuer_signed, MDL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { element, .. } if element == "family_name"),
        "{err}"
    );
}

#[tokio::test]
async fn annex_d_4_1_2_device_mac_is_refused_without_a_reader_key() {
    let transcript =
        SessionTranscript::from_cbor(&unhex(SESSION_TRANSCRIPT), &Limits::DEFAULT).unwrap();
    let err = verifier(IN_2021)
        .verify_device_response(&response(), &transcript)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { value, .. } if value == "deviceMac"),
        "{err}"
    );
}

#[test]
fn annex_d_5_1_session_transcript_bytes_round_trip() {
    let bytes = unhex(SESSION_TRANSCRIPT);
    let transcript = SessionTranscript::from_cbor(&bytes, &Limits::DEFAULT).unwrap();
    assert_eq!(transcript.to_bytes(), bytes);
}

#[test]
fn annex_d_4_1_2_re_encodes_byte_for_byte() {
    let bytes = unhex(DEVICE_RESPONSE);
    assert_eq!(
        DeviceResponse::from_cbor(&bytes, &Limits::DEFAULT)
            .unwrap()
            .to_cbor()
            .unwrap(),
        bytes
    );
}

/// `EReaderKey.Priv` of the Annex D examples (D.2.1.1).
const E_READER_KEY_D: &str = "de3b4b9e5f72dd9b58406ae3091434da48a6f9fd010d88fcb0958e2cebec947c";

#[tokio::test]
async fn annex_d_4_1_2_device_mac_verifies_with_the_reader_key() {
    let transcript =
        SessionTranscript::from_cbor(&unhex(SESSION_TRANSCRIPT), &Limits::DEFAULT).unwrap();
    let reader = edk_mdoc::EphemeralKey::from_scalar(&unhex(E_READER_KEY_D)).unwrap();
    let verified = verifier(IN_2021)
        .verify_device_response_with(&response(), &transcript, Some(&reader))
        .await
        .unwrap();
    assert_eq!(verified[0].doc_type, MDL);
    let stranger = edk_mdoc::EphemeralKey::generate().unwrap();
    assert!(matches!(
        verifier(IN_2021)
            .verify_device_response_with(&response(), &transcript, Some(&stranger))
            .await,
        Err(Error::InvalidDeviceSignature)
    ));
}
