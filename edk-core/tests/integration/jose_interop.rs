//! JOSE against foreign implementations and the RFCs' own examples.
//!
//! npm `jose` 6 (on Node's WebCrypto) checks ES256, ES384, EdDSA, Ed25519, RS256 and PS256
//! both ways. WebCrypto has no secp256k1, so jose 6 refuses ES256K; PyPI `jwcrypto` checks
//! that algorithm instead.

use std::path::PathBuf;

use async_trait::async_trait;
use edk_core::Limits;
use edk_core::encoding::b64url_encode;
use edk_core::id::Kid;
use edk_core::jose::{
    Algorithm, Header, JoseError, Jwk, Jws, SignError, Signer, SigningKey, VerifyPolicy,
    VerifyingKey, jws,
};
use serde_json::{Value, json};

use crate::support::{run_node, run_python};

/// Every algorithm npm `jose` 6 implements on Node 20.
const NODE_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Ed25519,
    Algorithm::Rs256,
    Algorithm::Ps256,
];

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn vector(name: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/vectors/jose", name]
        .iter()
        .collect();
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn ask(peer: fn(&str, &[&str], &str) -> String, script: &str, request: &Value) -> Value {
    serde_json::from_str(&peer(script, &[], &request.to_string())).unwrap()
}

fn node(request: &Value) -> Value {
    ask(run_node, "jws.mjs", request)
}

fn python(request: &Value) -> Value {
    ask(run_python, "jws.py", request)
}

fn payload_for(alg: Algorithm) -> String {
    json!({"iss": "https://issuer.example", "alg_under_test": alg.name(), "n": "ü ✓"}).to_string()
}

/// Signs with a fresh EDK key and has `peer` verify; returns the peer's answer.
fn peer_verifies_ours(alg: Algorithm, peer: fn(&Value) -> Value) {
    let key = SigningKey::generate(alg).unwrap();
    let payload = payload_for(alg);
    let token = block_on(jws::sign(
        Header::new(alg).with_typ("JWT"),
        payload.as_bytes(),
        &key,
    ))
    .unwrap();
    let answer = peer(&json!({"verify": token, "jwk": key.public_jwk()}));
    assert_eq!(answer["payload"], payload, "{alg}");
    assert_eq!(answer["protectedHeader"]["alg"], alg.name());
    assert_eq!(answer["protectedHeader"]["typ"], "JWT");
    assert_eq!(answer["protectedHeader"]["kid"], key.kid().as_str());
}

/// Has `peer` sign with a fresh key of its own and verifies the result.
fn we_verify_peers(alg: Algorithm, peer: fn(&Value) -> Value) {
    let payload = payload_for(alg);
    let answer = peer(&json!({"sign": payload, "alg": alg.name(), "typ": "JWT"}));
    let jwk: Jwk = serde_json::from_value(answer["jwk"].clone()).unwrap();
    assert!(!jwk.is_private(), "{alg}: the peer leaked its private key");
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let token = answer["token"].as_str().unwrap();
    let verified = Jws::parse(token, &Limits::DEFAULT)
        .unwrap()
        .verify(&key, &VerifyPolicy::default().with_typ("JWT"))
        .unwrap();
    assert_eq!(verified.payload(), payload.as_bytes(), "{alg}");
    assert_eq!(verified.header().alg, alg);

    let mut tampered = token.to_owned();
    tampered.insert_str(tampered.find('.').unwrap() + 1, "e30");
    let err = Jws::parse(&tampered, &Limits::DEFAULT)
        .and_then(|jws| jws.verify(&key, &VerifyPolicy::default()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            JoseError::Malformed {
                what: "JWS",
                reason: "payload is not base64url"
            }
        ),
        "{alg}: {err:?}"
    );
}

#[test]
fn node_jose_verifies_our_jws_for_every_algorithm() {
    for alg in NODE_ALGORITHMS {
        peer_verifies_ours(alg, node);
    }
}

#[test]
fn we_verify_node_jose_jws_for_every_algorithm() {
    for alg in NODE_ALGORITHMS {
        we_verify_peers(alg, node);
    }
}

#[test]
fn jwcrypto_verifies_our_es256k_jws_and_we_verify_its() {
    peer_verifies_ours(Algorithm::Es256K, python);
    we_verify_peers(Algorithm::Es256K, python);
}

#[test]
fn rfc7638_thumbprints_match_node_jose_and_jwcrypto() {
    for alg in Algorithm::ALL {
        let jwk = SigningKey::generate(alg).unwrap().public_jwk();
        let ours = jwk.thumbprint();
        if alg != Algorithm::Es256K {
            assert_eq!(
                node(&json!({"thumbprint": jwk}))["thumbprint"],
                ours,
                "{alg}"
            );
        }
        assert_eq!(
            python(&json!({"thumbprint": jwk}))["thumbprint"],
            ours,
            "{alg}"
        );
    }
}

#[test]
fn rfc7515_a3_es256_example_verifies() {
    let case = vector("rfc7515_a3.json");
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    let token = case["token"].as_str().unwrap();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let verified = Jws::parse(token, &Limits::DEFAULT)
        .unwrap()
        .verify(&key, &VerifyPolicy::default())
        .unwrap();
    assert_eq!(verified.header().alg, Algorithm::Es256);
    assert_eq!(
        verified.payload(),
        case["payload"].as_str().unwrap().as_bytes()
    );
    assert_eq!(verified.claims().unwrap()["iss"], "joe");

    // The RFC's private key signs tokens that the RFC's public key verifies.
    let signer = SigningKey::from_jwk(&jwk, Some(Algorithm::Es256)).unwrap();
    let ours = block_on(jws::sign(Header::new(Algorithm::Es256), b"{}", &signer)).unwrap();
    Jws::parse(&ours, &Limits::DEFAULT)
        .unwrap()
        .verify(&key, &VerifyPolicy::default())
        .unwrap();

    let other_payload = token.replacen(".eyJ", ".eyI", 1);
    assert!(matches!(
        Jws::parse(&other_payload, &Limits::DEFAULT)
            .unwrap()
            .verify(&key, &VerifyPolicy::default()),
        Err(JoseError::InvalidSignature)
    ));
}

/// A signer that puts no `kid` in the header, so the header is exactly `{"alg":"EdDSA"}`.
#[derive(Debug)]
struct WithoutKid(SigningKey);

#[async_trait]
impl Signer for WithoutKid {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }

    fn kid(&self) -> Option<&Kid> {
        None
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Signer::sign(&self.0, message).await
    }
}

#[test]
fn rfc8037_a4_ed25519_example_is_reproduced_exactly() {
    let case = vector("rfc8037_a4.json");
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    let token = case["token"].as_str().unwrap();
    let payload = case["payload"].as_str().unwrap();

    let key = SigningKey::from_jwk(&jwk, Some(Algorithm::EdDsa)).unwrap();
    assert_eq!(
        key.public_jwk().thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "RFC 8037 A.3"
    );
    let signed = block_on(jws::sign(
        Header::new(Algorithm::EdDsa),
        payload.as_bytes(),
        &WithoutKid(key),
    ))
    .unwrap();
    assert_eq!(signed, token);
    assert!(signed.starts_with(&format!(
        "{}.",
        b64url_encode(case["header"].as_str().unwrap())
    )));

    let public = VerifyingKey::from_jwk(&jwk.to_public()).unwrap();
    let verified = Jws::parse(token, &Limits::DEFAULT)
        .unwrap()
        .verify(&public, &VerifyPolicy::default())
        .unwrap();
    assert_eq!(verified.payload(), payload.as_bytes());
    assert!(matches!(
        Jws::parse(token, &Limits::DEFAULT).unwrap().verify(
            &public,
            &VerifyPolicy::default().with_algorithms(&[Algorithm::Ed25519])
        ),
        Err(JoseError::AlgorithmNotAllowed(Algorithm::EdDsa))
    ));
}
