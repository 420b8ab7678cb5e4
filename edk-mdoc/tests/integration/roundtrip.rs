//! Issue → present → verify with our own holder and verifier.

use ciborium::Value;
use edk_core::jose::{Algorithm, SigningKey};
use edk_mdoc::{
    DeviceAuth, DeviceResponse, IssuerSigned, IssuerSignedBuilder, Limits, SessionTranscript,
    present,
};

use crate::support::{MDL, MDL_NS, device_key, issue, pki, transcript, validity, verifier};

#[tokio::test]
async fn issued_mdl_verifies_with_every_claim() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;

    let parsed =
        IssuerSigned::from_base64url(&issued.to_base64url().unwrap(), &Limits::DEFAULT).unwrap();
    assert_eq!(parsed.to_cbor().unwrap(), issued.to_cbor().unwrap());
    let verified = verifier(&pki)
        .verify_issuer_signed(&parsed, MDL)
        .await
        .unwrap();
    let mdl = &verified.name_spaces[MDL_NS];
    assert_eq!(mdl.len(), 6);
    assert_eq!(mdl["family_name"], Value::Text("Mustermann".to_owned()));
    assert_eq!(mdl["age_over_18"], Value::Bool(true));
    assert_eq!(
        mdl["birth_date"],
        Value::Tag(1004, Box::new(Value::Text("1964-08-12".to_owned())))
    );
    assert_eq!(verified.device_key, device.public_jwk());
    assert_eq!(verified.document_signer, pki.chain[0]);
    assert_eq!(verified.mso.validity_info, validity());
}

#[tokio::test]
async fn items_have_distinct_random_digest_ids_and_long_salts() {
    let pki = pki();
    let issued = issue(&pki, &device_key()).await;
    let items = &issued.name_spaces[MDL_NS];
    let mut ids: Vec<u64> = items.iter().map(|item| item.item().digest_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), items.len());
    assert_ne!(
        ids,
        (0..6).collect::<Vec<u64>>(),
        "digest IDs are not sequential"
    );
    for item in items {
        assert!(item.item().random.len() >= 16);
    }
    let other = issue(&pki, &device_key()).await;
    assert_ne!(
        other.name_spaces[MDL_NS][0].item().random,
        items[0].item().random
    );
}

#[tokio::test]
async fn a_device_response_with_selected_elements_verifies() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let document = present(
        &issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        &device,
        &transcript(),
    )
    .await
    .unwrap();
    assert!(matches!(
        &document.device_signed.device_auth,
        DeviceAuth::Signature(signature) if signature.payload.is_none()
    ));
    let encoded = DeviceResponse::new(vec![document]).to_cbor().unwrap();
    let response = DeviceResponse::from_cbor(&encoded, &Limits::DEFAULT).unwrap();
    let verified = verifier(&pki)
        .verify_device_response(&response, &transcript())
        .await
        .unwrap();
    assert_eq!(verified.len(), 1);
    let disclosed: Vec<&String> = verified[0].name_spaces[MDL_NS].keys().collect();
    assert_eq!(disclosed, ["age_over_18", "family_name"]);
}

#[tokio::test]
async fn the_dc_api_transcript_round_trips() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let transcript = SessionTranscript::openid4vp_dc_api("https://verifier.example", "n", None);
    let document = present(&issued, &[(MDL_NS, "given_name")], &device, &transcript)
        .await
        .unwrap();
    verifier(&pki)
        .verify_device_response(&DeviceResponse::new(vec![document]), &transcript)
        .await
        .unwrap();
}

#[tokio::test]
async fn es384_and_eddsa_signers_and_device_keys_round_trip() {
    let pki = pki();
    for alg in [Algorithm::Es384, Algorithm::EdDsa] {
        let device = SigningKey::generate(alg).unwrap();
        let issued = IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity())
            .unwrap()
            .claims(MDL_NS, &crate::support::mdl_claims())
            .unwrap()
            .sign(&pki.signer, &pki.chain)
            .await
            .unwrap();
        let document = present(&issued, &[(MDL_NS, "family_name")], &device, &transcript())
            .await
            .unwrap();
        verifier(&pki)
            .verify_device_response(&DeviceResponse::new(vec![document]), &transcript())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn raw_cbor_elements_are_carried_unchanged() {
    let pki = pki();
    let device = device_key();
    let portrait = Value::Bytes(vec![0xff, 0xd8, 0xff, 0xe0]);
    let issued = IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity())
        .unwrap()
        .element(MDL_NS, "portrait", portrait.clone())
        .unwrap()
        .sign(&pki.signer, &pki.chain)
        .await
        .unwrap();
    let verified = verifier(&pki)
        .verify_issuer_signed(&issued, MDL)
        .await
        .unwrap();
    assert_eq!(verified.name_spaces[MDL_NS]["portrait"], portrait);
}
