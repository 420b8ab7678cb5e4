//! Device authentication by MAC (ISO/IEC 18013-5 §9.1.3.5): the holder MACs with the key its
//! device key agrees with the reader's ephemeral key; the reader verifies with the same
//! agreement from its side.

use edk_mdoc::{
    DeviceResponse, EphemeralKey, Error, IssuerSignedBuilder, Limits, MacKeyAgreement as _,
    SessionTranscript, present_with_mac,
};

use crate::support::{MDL, MDL_NS, mdl_claims, pki, transcript, validity, verifier};

#[tokio::test]
async fn a_device_mac_verifies_with_the_readers_ephemeral_key_and_nothing_else() {
    let pki = pki();
    let device = EphemeralKey::generate().unwrap();
    let issued = IssuerSignedBuilder::new(MDL, &device.public_jwk().unwrap(), validity())
        .unwrap()
        .claims(MDL_NS, &mdl_claims())
        .unwrap()
        .sign(&pki.signer, &pki.chain)
        .await
        .unwrap();
    let reader = EphemeralKey::generate().unwrap();
    let document = present_with_mac(
        &issued,
        &[(MDL_NS, "family_name")],
        &device,
        &reader.public_jwk().unwrap(),
        &transcript(),
    )
    .await
    .unwrap();
    let response = DeviceResponse::from_cbor(
        &DeviceResponse::new(vec![document]).to_cbor().unwrap(),
        &Limits::DEFAULT,
    )
    .unwrap();

    // Both sides derive the same shared secret.
    assert_eq!(
        *device
            .shared_secret(&reader.public_jwk().unwrap())
            .await
            .unwrap(),
        *reader
            .shared_secret(&device.public_jwk().unwrap())
            .await
            .unwrap()
    );

    let verified = verifier(&pki)
        .verify_device_response_with(&response, &transcript(), Some(&reader))
        .await
        .unwrap();
    assert_eq!(verified[0].name_spaces[MDL_NS].len(), 1);

    // Without the reader's key a MAC cannot be checked; with another reader key, or over
    // another session, it does not verify.
    assert!(matches!(
        verifier(&pki)
            .verify_device_response(&response, &transcript())
            .await,
        Err(Error::Unsupported { .. })
    ));
    let stranger = EphemeralKey::generate().unwrap();
    assert!(matches!(
        verifier(&pki)
            .verify_device_response_with(&response, &transcript(), Some(&stranger))
            .await,
        Err(Error::InvalidDeviceSignature)
    ));
    let other_session = SessionTranscript::openid4vp(
        "x509_san_dns:verifier.example",
        "another-nonce",
        None,
        "https://verifier.example/response",
    );
    assert!(matches!(
        verifier(&pki)
            .verify_device_response_with(&response, &other_session, Some(&reader))
            .await,
        Err(Error::InvalidDeviceSignature)
    ));
}

#[test]
fn an_ephemeral_key_round_trips_through_its_private_jwk_only() {
    let public = EphemeralKey::generate().unwrap().public_jwk().unwrap();
    assert!(!public.is_private());
    assert!(matches!(
        EphemeralKey::from_jwk(&public),
        Err(Error::InvalidDeviceKey(_))
    ));
    let signing = edk_core::jose::SigningKey::generate(edk_core::jose::Algorithm::Es256).unwrap();
    let private = signing.to_jwk().unwrap();
    let key = EphemeralKey::from_jwk(&private).unwrap();
    assert_eq!(key.public_jwk().unwrap(), signing.public_jwk().to_public());
    assert_eq!(format!("{key:?}"), "EphemeralKey { .. }");
}
