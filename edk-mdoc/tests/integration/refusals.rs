//! What verification refuses, each with its own error; and malformed input never panics.

use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use edk_core::FixedClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_mdoc::{
    DeviceResponse, Error, IssuerSigned, IssuerSignedBuilder, IssuerSignedItem,
    IssuerSignedItemBytes, Limits, SessionTranscript, ValidityInfo, Verifier, present,
};
use serde_json::json;

use crate::support::{
    DAY, MDL, MDL_NS, NOW, at, device_key, issue, pki, transcript, validity, verifier,
};

#[tokio::test]
async fn a_tampered_element_value_fails_its_digest() {
    let pki = pki();
    let mut issued = issue(&pki, &device_key()).await;
    let items = issued.name_spaces.get_mut(MDL_NS).unwrap();
    let index = items
        .iter()
        .position(|item| item.item().element_identifier == "age_over_18")
        .unwrap();
    items[index] = IssuerSignedItemBytes::new(IssuerSignedItem {
        element_value: Value::Bool(false),
        ..items[index].item().clone()
    });
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { namespace, element }
            if namespace == MDL_NS && element == "age_over_18"),
        "{err}"
    );
}

#[tokio::test]
async fn an_item_moved_to_another_name_space_fails_its_digest() {
    let pki = pki();
    let mut issued = issue(&pki, &device_key()).await;
    let item = issued.name_spaces.get_mut(MDL_NS).unwrap().remove(0);
    issued
        .name_spaces
        .insert("org.iso.18013.5.1.aamva".to_owned(), vec![item]);
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_wrong_doctype_is_refused() {
    let pki = pki();
    let issued = issue(&pki, &device_key()).await;
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, "eu.europa.ec.eudi.pid.1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DocTypeMismatch { expected, found }
            if expected == "eu.europa.ec.eudi.pid.1" && found == MDL),
        "{err}"
    );
}

#[tokio::test]
async fn a_document_presented_under_another_doctype_is_refused() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let mut document = present(&issued, &[(MDL_NS, "family_name")], &device, &transcript())
        .await
        .unwrap();
    document.doc_type = "eu.europa.ec.eudi.pid.1".to_owned();
    let err = verifier(&pki)
        .verify_device_response(&DeviceResponse::new(vec![document]), &transcript())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DocTypeMismatch { .. }), "{err}");
}

fn verifier_at(pki: &crate::support::Pki, seconds: i64) -> Verifier {
    Verifier::new([pki.root.clone()], Arc::new(FixedClock::at_unix(seconds))).unwrap()
}

#[tokio::test]
async fn an_expired_document_is_refused() {
    let pki = pki();
    let issued = issue(&pki, &device_key()).await;
    let after = NOW + i64::try_from(365 * DAY).unwrap();
    let err = verifier_at(&pki, after)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Expired { valid_until } if valid_until == "2027-05-31T00:00:00Z"),
        "{err}"
    );
}

#[tokio::test]
async fn a_document_not_yet_valid_is_refused() {
    let pki = pki();
    let issued = issue(&pki, &device_key()).await;
    let before = NOW - i64::try_from(2 * DAY).unwrap();
    let err = verifier_at(&pki, before)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotYetValid { .. }), "{err}");
}

#[tokio::test]
async fn a_device_signature_by_another_key_is_refused() {
    let pki = pki();
    let holder = device_key();
    let issued = issue(&pki, &holder).await;
    let other = device_key();
    let document = present(&issued, &[(MDL_NS, "family_name")], &other, &transcript())
        .await
        .unwrap();
    let err = verifier(&pki)
        .verify_device_response(&DeviceResponse::new(vec![document]), &transcript())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDeviceSignature), "{err}");
}

#[tokio::test]
async fn a_device_signature_over_another_transcript_is_refused() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let document = present(&issued, &[(MDL_NS, "family_name")], &device, &transcript())
        .await
        .unwrap();
    let response = DeviceResponse::new(vec![document]);
    for other in [
        SessionTranscript::openid4vp(
            "x509_san_dns:verifier.example",
            "another nonce",
            None,
            "https://verifier.example/response",
        ),
        SessionTranscript::openid4vp(
            "x509_san_dns:attacker.example",
            "n-0S6_WzA2Mj",
            None,
            "https://verifier.example/response",
        ),
        SessionTranscript::openid4vp(
            "x509_san_dns:verifier.example",
            "n-0S6_WzA2Mj",
            Some(&[7; 32]),
            "https://verifier.example/response",
        ),
    ] {
        let err = verifier(&pki)
            .verify_device_response(&response, &other)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidDeviceSignature), "{err}");
    }
}

#[tokio::test]
async fn a_broken_issuer_signature_is_refused() {
    let pki = pki();
    let mut issued = issue(&pki, &device_key()).await;
    issued.issuer_auth.signature[5] ^= 0x01;
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidIssuerSignature), "{err}");
}

#[tokio::test]
async fn an_mso_changed_after_signing_is_refused() {
    let pki = pki();
    let mut issued = issue(&pki, &device_key()).await;
    let payload = issued.issuer_auth.payload.as_mut().unwrap();
    let at = payload
        .windows(MDL.len())
        .position(|w| w == MDL.as_bytes())
        .unwrap();
    payload[at + MDL.len() - 1] = b'X';
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidIssuerSignature), "{err}");
}

#[tokio::test]
async fn a_document_signer_outside_the_trust_anchors_is_refused() {
    let pki = pki();
    let stranger = crate::support::pki();
    let issued = issue(&stranger, &device_key()).await;
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedIssuer(_)), "{err}");
}

#[tokio::test]
async fn a_chain_whose_leaf_is_not_a_document_signer_is_refused() {
    let pki = crate::support::pki_with_ds_usage(false);
    let issued = issue(&pki, &device_key()).await;
    let err = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotADocumentSigner), "{err}");
}

#[tokio::test]
async fn a_date_element_that_is_not_a_full_date_is_refused_at_issuance() {
    let device = device_key();
    let claims = json!({"birth_date": "12/08/1964"});
    let err = IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity())
        .unwrap()
        .claims(MDL_NS, claims.as_object().unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidClaim { element, .. } if element == "birth_date"),
        "{err}"
    );
}

#[test]
fn a_validity_window_that_ends_before_it_starts_is_refused() {
    let device = device_key();
    let backwards = ValidityInfo {
        signed: at(NOW),
        valid_from: at(NOW),
        valid_until: at(NOW) - Duration::from_secs(1),
        expected_update: None,
    };
    assert!(matches!(
        IssuerSignedBuilder::new(MDL, &device.public_jwk(), backwards),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn an_rsa_device_key_is_refused() {
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    assert!(matches!(
        IssuerSignedBuilder::new(MDL, &rsa.public_jwk(), validity()),
        Err(Error::InvalidDeviceKey(_))
    ));
}

#[tokio::test]
async fn presenting_an_element_the_document_lacks_is_refused() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let err = present(&issued, &[(MDL_NS, "portrait")], &device, &transcript())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ElementNotFound { element, .. } if element == "portrait"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_cbor_is_an_error_never_a_panic() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let document = present(&issued, &[(MDL_NS, "family_name")], &device, &transcript())
        .await
        .unwrap();
    let good = DeviceResponse::new(vec![document]).to_cbor().unwrap();
    let limits = Limits::DEFAULT;
    // Every truncation, and every single-byte change at a spread of offsets.
    for end in 0..good.len() {
        assert!(DeviceResponse::from_cbor(&good[..end], &limits).is_err());
    }
    // A change may still parse and verify only by hiding elements (an unknown member name
    // drops the optional `nameSpaces`): it never yields a value the issuer did not sign.
    let verifier = verifier(&pki);
    let issued_values: Vec<(String, Value)> = issued.name_spaces[MDL_NS]
        .iter()
        .map(|item| {
            let item = item.item();
            (item.element_identifier.clone(), item.element_value.clone())
        })
        .collect();
    for offset in (0..good.len()).step_by(7) {
        for flip in [0x01, 0x20, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[offset] ^= flip;
            let Ok(response) = DeviceResponse::from_cbor(&bytes, &limits) else {
                continue;
            };
            let Ok(verified) = verifier
                .verify_device_response(&response, &transcript())
                .await
            else {
                continue;
            };
            for (namespace, elements) in &verified[0].name_spaces {
                assert_eq!(namespace, MDL_NS);
                for (element, value) in elements {
                    assert!(
                        issued_values.contains(&(element.clone(), value.clone())),
                        "a change at byte {offset} ({flip:#x}) yielded {element} = {value:?}"
                    );
                }
            }
        }
    }
    for garbage in [
        &b""[..],
        &[0xa0],
        &[0x80],
        &[0xff],
        &[0x1c],
        &[0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01],
    ] {
        assert!(DeviceResponse::from_cbor(garbage, &limits).is_err());
        assert!(IssuerSigned::from_cbor(garbage, &limits).is_err());
    }
    assert!(IssuerSigned::from_base64url("not base64!", &limits).is_err());
}

#[test]
fn inputs_past_the_limits_are_refused_before_decoding() {
    let tight = Limits {
        max_bytes: 64,
        max_depth: 4,
    };
    assert!(matches!(
        DeviceResponse::from_cbor(&[0x40; 65], &tight),
        Err(Error::TooLarge {
            size: 65,
            limit: 64,
            ..
        })
    ));
    let mut deep = vec![0x81; 10];
    deep.push(0x00);
    assert!(matches!(
        IssuerSigned::from_cbor(&deep, &tight),
        Err(Error::TooDeep { limit: 4, .. })
    ));
}

#[tokio::test]
async fn an_element_nested_past_the_depth_limit_is_refused() {
    let pki = pki();
    let device = device_key();
    let mut deep = Value::Null;
    for _ in 0..40 {
        deep = Value::Array(vec![deep]);
    }
    let issued = IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity())
        .unwrap()
        .element(MDL_NS, "deep", deep)
        .unwrap()
        .sign(&pki.signer, &pki.chain)
        .await
        .unwrap();
    assert!(matches!(
        IssuerSigned::from_cbor(&issued.to_cbor().unwrap(), &Limits::DEFAULT),
        Err(Error::TooDeep { .. })
    ));
}

#[tokio::test]
async fn device_mac_is_refused_as_unsupported() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let mut document = present(&issued, &[(MDL_NS, "family_name")], &device, &transcript())
        .await
        .unwrap();
    document.device_signed.device_auth = edk_mdoc::DeviceAuth::Mac(coset::CoseMac0::default());
    let err = verifier(&pki)
        .verify_device_response(&DeviceResponse::new(vec![document]), &transcript())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { value, .. } if value == "deviceMac"),
        "{err}"
    );
}
