//! Interop with pinned Node peers (`interop/node/did.mjs`): npm `did-resolver` +
//! `key-did-resolver` resolve the did:keys we create and we resolve theirs to the same keys;
//! npm `@digitalbazaar/did-method-jwk` resolves the did:jwks we create (and `jose` verifies
//! our tokens with the key it resolved), and we resolve the did:jwks it creates.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use edk_core::jose::jws::sign;
use edk_core::jose::{Algorithm, Header, Jwk, Jws, SigningKey, VerifyPolicy};
use edk_core::{Did, Limits};
use edk_did::DidKeyResolver;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use serde_json::{Value, json};

use crate::support::local_resolver;

fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/node");
    assert!(
        dir.join("node_modules").exists(),
        "{}/node_modules is missing: run scripts/test, which installs the interop peers",
        dir.display()
    );
    dir
}

/// Runs `interop/node/did.mjs` with `request` on stdin and returns its JSON answer.
fn node(request: &Value) -> Value {
    let mut child = Command::new("node")
        .arg("did.mjs")
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "did.mjs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// key-did-resolver drops leading zero bytes of EC coordinates (RFC 7518 §6.2.1.2 asks for the
/// full length, and our JWK parser insists on it); put them back before comparing keys.
fn full_length_coordinates(mut jwk: Value) -> Value {
    let size: usize = match jwk["crv"].as_str() {
        Some("P-256" | "secp256k1") => 32,
        Some("P-384") => 48,
        _ => return jwk,
    };
    for coordinate in ["x", "y"] {
        if let Some(text) = jwk[coordinate].as_str() {
            let bytes = edk_core::encoding::b64url_decode(text).unwrap();
            let mut padded = vec![0_u8; size.saturating_sub(bytes.len())];
            padded.extend_from_slice(&bytes);
            jwk[coordinate] = json!(edk_core::encoding::b64url_encode(&padded));
        }
    }
    jwk
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn node_key_did_resolver_reads_our_did_keys() {
    let keys: Vec<SigningKey> = [
        Algorithm::EdDsa,
        Algorithm::Es256K,
        Algorithm::Es256,
        Algorithm::Es384,
    ]
    .into_iter()
    .map(|alg| SigningKey::generate(alg).unwrap())
    .collect();
    let dids: Vec<Did> = keys
        .iter()
        .map(|key| DidKey::create(&key.public_jwk()).unwrap())
        .collect();
    let answer = node(&json!({ "resolveKey": dids }));
    let answer = answer.as_array().unwrap();
    assert_eq!(answer.len(), keys.len());
    for ((key, did), theirs) in keys.iter().zip(&dids).zip(answer) {
        assert_eq!(theirs["did"], did.as_str());
        let jwk: Jwk =
            serde_json::from_value(full_length_coordinates(theirs["jwk"].clone())).unwrap();
        assert_eq!(jwk, key.public_jwk(), "{did}");
        // Ed25519: both derive the same X25519 key-agreement key.
        if let Some(x25519) = theirs.get("keyAgreementX25519Hex") {
            let ours = DidKey::key(did).unwrap().derive_x25519().unwrap();
            assert_eq!(hex(ours.raw()), x25519.as_str().unwrap());
        }
    }
}

#[test]
fn we_resolve_did_keys_made_in_node_to_the_same_keys() {
    let answer = node(&json!({ "createKey": ["Ed25519", "secp256k1", "P-256", "P-384"] }));
    for theirs in answer.as_array().unwrap() {
        let did = Did::new(theirs["did"].as_str().unwrap()).unwrap();
        let document = DidKey::new().document(&did).unwrap();
        let jwk = document.verification_method[0].jwk().unwrap();
        let expected: Jwk =
            serde_json::from_value(full_length_coordinates(theirs["jwk"].clone())).unwrap();
        assert_eq!(jwk, expected, "{did}");
        assert_eq!(DidKey::create(&expected).unwrap(), did);
    }
}

#[tokio::test]
async fn an_independent_did_jwk_resolver_resolves_our_dids_and_verifies_our_tokens() {
    for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Es384] {
        let key = SigningKey::generate(alg).unwrap();
        let did = DidJwk::create(&key.public_jwk()).unwrap();
        let kid = format!("{did}#0");
        let header = Header::new(alg).with_kid(kid.clone());
        let token = sign(header, b"from rust", &key).await.unwrap();
        let answer = node(&json!({ "verifyJwk": token }));
        assert_eq!(answer["payload"], "from rust", "{alg:?}");
        let theirs = &answer["document"];
        assert_eq!(theirs["id"], did.as_str());
        assert_eq!(theirs["assertionMethod"], json!([kid]));
        let method = &theirs["verificationMethod"][0];
        assert_eq!(method["id"], kid);
        assert_eq!(method["controller"], did.as_str());
        let resolved: Jwk = serde_json::from_value(method["publicKeyJwk"].clone()).unwrap();
        assert_eq!(resolved, key.public_jwk(), "{alg:?}");
        let ours = DidJwk.document(&did).unwrap();
        assert_eq!(ours.verification_method[0].jwk().unwrap(), resolved);
    }
}

#[tokio::test]
async fn we_resolve_did_jwks_made_by_an_independent_implementation() {
    let resolver = DidKeyResolver::new(local_resolver());
    for alg in ["ES256", "ES384", "EdDSA"] {
        let answer = node(&json!({ "signJwk": "from node", "alg": alg }));
        let did = answer["did"].as_str().unwrap();
        let jws = Jws::parse(answer["token"].as_str().unwrap(), &Limits::default()).unwrap();
        assert_eq!(
            jws.header().kid.as_deref(),
            Some(format!("{did}#0").as_str())
        );
        let verified = jws
            .verify_with(&resolver, &VerifyPolicy::default(), Some(did))
            .await
            .unwrap();
        assert_eq!(verified.payload(), b"from node");
    }
}
