//! Interop with npm `@animo-id/mdoc` through `interop/node/mdoc.mjs`: it verifies what we
//! issue and present, and issues and presents what we verify.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ciborium::Value;
use edk_mdoc::{DeviceResponse, IssuerSignedItem, IssuerSignedItemBytes, Limits, present};
use serde_json::json;

use crate::support::{
    DAY, MDL, MDL_NS, NOW, at, device_key, hex, issue, pki, transcript, unhex, verifier,
};

/// `interop/node`, where `scripts/test` installed the Node peers.
fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/node");
    assert!(
        dir.join("node_modules/@animo-id/mdoc").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only",
        dir.display()
    );
    dir
}

/// Runs `interop/node/mdoc.mjs` with `input` on stdin and returns its JSON answer.
async fn animo(input: serde_json::Value) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg("mdoc.mjs")
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "mdoc.mjs failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    })
    .await
    .unwrap()
}

const NOW_TEXT: &str = "2026-06-01T00:00:00Z";

#[tokio::test]
async fn animo_verifies_our_issuer_signed() {
    let pki = pki();
    let issued = issue(&pki, &device_key()).await;
    let answer = animo(json!({
        "action": "verify_issuer_signed",
        "issuer_signed": issued.to_base64url().unwrap(),
        "doc_type": MDL,
        "trusted": [hex(&pki.root)],
        "now": NOW_TEXT,
    }))
    .await;
    assert_eq!(answer["failed"], json!([]), "{answer:#}");
    let claims = &answer["claims"][MDL_NS];
    assert_eq!(claims["family_name"], "Mustermann");
    assert_eq!(claims["birth_date"], "1964-08-12");
    assert_eq!(claims["age_over_18"], true);
    assert_eq!(
        claims["driving_privileges"][0]["vehicle_category_code"],
        "B"
    );
}

#[tokio::test]
async fn animo_reports_our_tampered_issuer_signed() {
    let pki = pki();
    let mut issued = issue(&pki, &device_key()).await;
    let items = issued.name_spaces.get_mut(MDL_NS).unwrap();
    items[0] = IssuerSignedItemBytes::new(IssuerSignedItem {
        element_value: Value::Text("Mallory".to_owned()),
        ..items[0].item().clone()
    });
    let answer = animo(json!({
        "action": "verify_issuer_signed",
        "issuer_signed": issued.to_base64url().unwrap(),
        "doc_type": MDL,
        "trusted": [hex(&pki.root)],
        "now": NOW_TEXT,
    }))
    .await;
    let failed = answer["failed"].as_array().unwrap();
    assert!(
        failed
            .iter()
            .any(|check| check.as_str().unwrap().contains("digest")),
        "{answer:#}"
    );
}

#[tokio::test]
async fn animo_verifies_our_device_response() {
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
    let answer = animo(json!({
        "action": "verify_device_response",
        "device_response": hex(&DeviceResponse::new(vec![document]).to_cbor().unwrap()),
        "session_transcript_bytes": hex(&transcript().to_bytes()),
        "trusted": [hex(&pki.root)],
        "now": NOW_TEXT,
    }))
    .await;
    assert_eq!(answer["failed"], json!([]), "{answer:#}");
    assert_eq!(answer["documents"][0]["doc_type"], MDL);
    assert_eq!(
        answer["documents"][0]["claims"][MDL_NS],
        json!({"family_name": "Mustermann", "age_over_18": true})
    );
}

#[tokio::test]
async fn we_verify_animo_presenting_our_mdoc() {
    let pki = pki();
    let device = device_key();
    let issued = issue(&pki, &device).await;
    let answer = animo(json!({
        "action": "present",
        "issuer_signed": issued.to_base64url().unwrap(),
        "doc_type": MDL,
        "device_jwk": device.to_jwk().unwrap(),
        "disclose": [[MDL_NS, "given_name"], [MDL_NS, "birth_date"]],
        "session_transcript_bytes": hex(&transcript().to_bytes()),
    }))
    .await;
    let bytes = unhex(answer["device_response"].as_str().unwrap());
    let response = DeviceResponse::from_cbor(&bytes, &Limits::DEFAULT).unwrap();
    let verified = verifier(&pki)
        .verify_device_response(&response, &transcript())
        .await
        .unwrap();
    let disclosed: Vec<&String> = verified[0].name_spaces[MDL_NS].keys().collect();
    assert_eq!(disclosed, ["birth_date", "given_name"]);
}

#[tokio::test]
async fn we_verify_an_mdoc_animo_issued_and_presented() {
    let pki = pki();
    let device = device_key();
    let from = at(NOW) - Duration::from_secs(DAY);
    let until = from + Duration::from_secs(30 * DAY);
    let rfc3339 = |time| chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339();
    let answer = animo(json!({
        "action": "issue_and_present",
        "issuer_jwk": pki.signer.to_jwk().unwrap(),
        "issuer_certificate": hex(&pki.chain[0]),
        "device_jwk": device.to_jwk().unwrap(),
        "doc_type": MDL,
        "namespace": MDL_NS,
        "claims": {"family_name": "Jones", "given_name": "Ava", "birth_date": "2007-03-25"},
        "dates": ["birth_date"],
        "signed": rfc3339(from),
        "valid_from": rfc3339(from),
        "valid_until": rfc3339(until),
        "disclose": [[MDL_NS, "family_name"], [MDL_NS, "birth_date"]],
        "session_transcript_bytes": hex(&transcript().to_bytes()),
    }))
    .await;
    let bytes = unhex(answer["device_response"].as_str().unwrap());
    let response = DeviceResponse::from_cbor(&bytes, &Limits::DEFAULT).unwrap();
    let verified = verifier(&pki)
        .verify_device_response(&response, &transcript())
        .await
        .unwrap();
    let mdl = &verified[0].name_spaces[MDL_NS];
    assert_eq!(mdl["family_name"], Value::Text("Jones".to_owned()));
    assert_eq!(
        mdl["birth_date"],
        Value::Tag(1004, Box::new(Value::Text("2007-03-25".to_owned())))
    );
    assert_eq!(verified[0].device_key, device.public_jwk());

    let err = verifier(&pki)
        .verify_device_response(
            &response,
            &edk_mdoc::SessionTranscript::openid4vp_dc_api("https://other.example", "n", None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, edk_mdoc::Error::InvalidDeviceSignature),
        "{err}"
    );
}
