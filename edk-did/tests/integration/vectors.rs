//! Spec test vectors: did:key v0.9 §"Test Vectors" and did:jwk v1.0 §"Examples".

use std::path::Path;

use edk_core::Did;
use edk_core::jose::Jwk;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::multikey::Multikey;
use serde_json::Value;

fn vector(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(path);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn codec_name(key: &Multikey) -> &'static str {
    match key {
        Multikey::Ed25519(_) => "ed25519-pub",
        Multikey::X25519(_) => "x25519-pub",
        Multikey::Secp256k1(_) => "secp256k1-pub",
        Multikey::P256(_) => "p256-pub",
        Multikey::P384(_) => "p384-pub",
        _ => "other",
    }
}

#[test]
fn did_key_test_vectors_decode_to_their_keys_and_back() {
    for case in vector("did-key/vectors.json").as_array().unwrap() {
        let did = Did::new(case["did"].as_str().unwrap()).unwrap();
        let key = DidKey::key(&did).unwrap();
        assert_eq!(codec_name(&key), case["codec"], "{did}");
        if let Some(raw) = case["rawKeyHex"].as_str() {
            assert_eq!(hex(key.raw()), raw, "{did}");
        }
        if let Some(prefix) = case["rawKeyPrefixHex"].as_str() {
            assert!(hex(key.raw()).starts_with(prefix), "{did}");
            assert_eq!(key.raw().len(), 49);
        }
        let jwk = key.to_jwk().unwrap();
        if let Some(expected) = case.get("jwk") {
            assert_eq!(&serde_json::to_value(&jwk).unwrap(), expected, "{did}");
        }
        // Creation is the inverse of resolution.
        assert_eq!(DidKey::create(&jwk).unwrap(), did);
        if let Some(x25519) = case["x25519"].as_str() {
            assert_eq!(key.derive_x25519().unwrap().to_multibase(), x25519);
        }
    }
}

#[test]
fn did_key_test_vectors_ed25519_seed_gives_the_published_multikey() {
    let case = vector("did-key/vectors.json")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c.get("ed25519SeedHex").is_some())
        .cloned()
        .unwrap();
    let mut seed = [0u8; 32];
    seed[31] = 1;
    assert_eq!(hex(&seed), case["ed25519SeedHex"]);
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let public: [u8; 32] = aws_lc_rs::signature::KeyPair::public_key(&pair)
        .as_ref()
        .try_into()
        .unwrap();
    let did = DidKey::did_for(&Multikey::Ed25519(public));
    assert_eq!(did.as_str(), case["did"]);
}

#[test]
fn did_key_test_vectors_ed25519_document_matches_the_spec() {
    let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let expected = vector(&format!("did-key/{}.json", &did[8..]));
    let document = DidKey::new().document(&Did::new(did).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&document).unwrap(), expected);
}

#[test]
fn did_jwk_examples_p256_document_matches_the_spec() {
    let case = vector("did-jwk/p256.json");
    check_did_jwk(&case);
}

#[test]
fn did_jwk_examples_x25519_enc_key_is_only_for_key_agreement() {
    let case = vector("did-jwk/x25519.json");
    check_did_jwk(&case);
    let document = &case["document"];
    assert!(document.get("assertionMethod").is_none());
}

fn check_did_jwk(case: &Value) {
    let did = Did::new(case["did"].as_str().unwrap()).unwrap();
    assert_eq!(
        Value::Object(DidJwk::jwk_object(&did).unwrap()),
        case["jwk"]
    );
    let document = DidJwk.document(&did).unwrap();
    assert_eq!(serde_json::to_value(&document).unwrap(), case["document"]);
    // Our own did:jwk for the same key resolves to the same key.
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    let ours = DidJwk::create(&jwk).unwrap();
    let ours_jwk: Jwk =
        serde_json::from_value(Value::Object(DidJwk::jwk_object(&ours).unwrap())).unwrap();
    assert_eq!(ours_jwk, jwk);
}
