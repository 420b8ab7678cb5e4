//! Signed Request Objects: signed by the verifier with the key its client identifier prefix
//! designates, verified by the wallet, and refused for each rule.

use std::sync::Arc;

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey, jws};
use edk_oid4vp::{
    ClientId, RequestObjectError, RequestObjectKey, RequestObjectVerifier, SignOptions,
    sign_request_object, x509_hash,
};
use serde_json::json;

use crate::support::{NOW, clock, pid_query, pki, request};

const SAN_CLIENT: &str = "x509_san_dns:verifier.example";

fn verifier(anchor: &[u8]) -> RequestObjectVerifier {
    RequestObjectVerifier::new([anchor.to_vec()], clock()).unwrap()
}

#[tokio::test]
async fn x509_san_dns_request_objects_round_trip() {
    let pki = pki("verifier", &["verifier.example"]);
    let request = request(SAN_CLIENT, pid_query());
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions {
            lifetime: Some(300),
            ..SignOptions::default()
        },
    )
    .await
    .unwrap();
    let header = jws::Jws::parse(&token, &Default::default()).unwrap();
    assert_eq!(header.header().typ.as_deref(), Some("oauth-authz-req+jwt"));
    assert_eq!(header.header().x5c.as_ref().map(Vec::len), Some(1));
    let read = verifier(&pki.root)
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap();
    assert_eq!(read, request);
}

#[tokio::test]
async fn x509_hash_request_objects_round_trip_and_pin_the_leaf() {
    let pki = pki("verifier", &["verifier.example"]);
    let client = format!("x509_hash:{}", x509_hash(&pki.chain[0]));
    let request = request(&client, pid_query());
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let read = verifier(&pki.root)
        .verify(&token, Some(&client), None)
        .await
        .unwrap();
    assert_eq!(read.client_id, Some(ClientId::parse(&client).unwrap()));

    // Another certificate with the same names is not the one the prefix value pins.
    let other = crate::support::pki("verifier", &["verifier.example"]);
    let err = sign_request_object(
        &request,
        &RequestObjectKey::X5c(other.chain.clone()),
        &other.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RequestObjectError::HashMismatch), "{err:?}");
}

#[tokio::test]
async fn decentralized_identifier_request_objects_are_verified_by_the_did_key() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = key.public_jwk();
    let did = format!(
        "did:jwk:{}",
        b64url_encode(serde_json::to_vec(&jwk).unwrap())
    );
    let kid = format!("{did}#0");
    let client = format!("decentralized_identifier:{did}");
    let request = request(&client, pid_query());
    let token = sign_request_object(
        &request,
        &RequestObjectKey::Kid(kid.clone()),
        &key,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let resolver = Arc::new(JwksResolver::from_keys([&jwk
        .clone()
        .with_kid(kid.clone())]));
    let wallet = verifier(&pki("unused", &["unused.example"]).root).with_did_resolver(resolver);
    assert_eq!(
        wallet.verify(&token, Some(&client), None).await.unwrap(),
        request
    );

    // A kid of another DID is refused before any resolution.
    let err = sign_request_object(
        &request,
        &RequestObjectKey::Kid("did:web:other.example#key-1".to_owned()),
        &key,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::KidNotOfClient(_)),
        "{err:?}"
    );

    // Signed by another key: the signature does not verify with the DID's key.
    let impostor = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = sign_request_object(
        &request,
        &RequestObjectKey::Kid(kid),
        &impostor,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let err = wallet
        .verify(&forged, Some(&client), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::Jws(_)), "{err:?}");
}

#[tokio::test]
async fn a_leaf_whose_san_is_not_the_client_id_is_refused() {
    let pki = pki("verifier", &["other.example"]);
    let request = request(SAN_CLIENT, pid_query());
    let err = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RequestObjectError::SanMismatch(ref name) if name == "verifier.example"));

    // Signed by hand (bypassing the signer's check): the wallet refuses it too.
    let claims = request.to_request_object_claims(None, None).unwrap();
    let header = Header::new(Algorithm::Es256)
        .with_typ("oauth-authz-req+jwt")
        .with_x5c(vec![standard(&pki.chain[0])]);
    let token = jws::sign(header, &serde_json::to_vec(&claims).unwrap(), &pki.leaf)
        .await
        .unwrap();
    let err = verifier(&pki.root)
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::SanMismatch(_)), "{err:?}");
    assert_eq!(err.error_code(), "invalid_client");
}

fn standard(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Signs `claims` with the leaf of `pki` under `typ`, without any check.
async fn raw(pki: &crate::support::Pki, typ: &str, claims: &serde_json::Value) -> String {
    let header = Header::new(Algorithm::Es256)
        .with_typ(typ)
        .with_x5c(vec![standard(&pki.chain[0])]);
    jws::sign(header, &serde_json::to_vec(claims).unwrap(), &pki.leaf)
        .await
        .unwrap()
}

#[tokio::test]
async fn request_objects_are_refused_for_each_rule() {
    let pki = pki("verifier", &["verifier.example"]);
    let wallet = verifier(&pki.root);
    let request = request(SAN_CLIENT, pid_query());
    let claims = request.to_request_object_claims(None, None).unwrap();

    // typ
    let token = raw(&pki, "JWT", &claims).await;
    let err = wallet
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::WrongType), "{err:?}");

    // client_id outside differs from the one inside
    let token = raw(&pki, "oauth-authz-req+jwt", &claims).await;
    let err = wallet
        .verify(&token, Some("x509_san_dns:evil.example"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::ClientIdMismatch { ref outer, ref inner }
            if outer == "x509_san_dns:evil.example" && inner == SAN_CLIENT),
        "{err:?}"
    );
    // ...and the same token with the right outer client_id passes.
    wallet.verify(&token, Some(SAN_CLIENT), None).await.unwrap();

    // aud
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("https://another-wallet.example");
    let token = raw(&pki, "oauth-authz-req+jwt", &wrong_aud).await;
    let err = wallet
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::WrongAudience), "{err:?}");
    // A wallet whose issuer is that audience accepts it.
    verifier(&pki.root)
        .with_audience("https://another-wallet.example")
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap();

    // exp
    let mut expired = claims.clone();
    expired["exp"] = json!(NOW - 3600);
    let token = raw(&pki, "oauth-authz-req+jwt", &expired).await;
    let err = wallet
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::Expired), "{err:?}");

    // wallet_nonce
    let token = raw(
        &pki,
        "oauth-authz-req+jwt",
        &request
            .to_request_object_claims(None, Some("wn-1"))
            .unwrap(),
    )
    .await;
    wallet
        .verify(&token, Some(SAN_CLIENT), Some("wn-1"))
        .await
        .unwrap();
    let err = wallet
        .verify(&token, Some(SAN_CLIENT), Some("wn-2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::WalletNonceMismatch),
        "{err:?}"
    );

    // a chain that does not end at the wallet's anchors
    let stranger = crate::support::pki("verifier", &["verifier.example"]);
    let token = raw(&stranger, "oauth-authz-req+jwt", &claims).await;
    let err = wallet
        .verify(&token, Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::UntrustedChain(_)),
        "{err:?}"
    );

    // a tampered payload
    let token = raw(&pki, "oauth-authz-req+jwt", &claims).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut tampered = claims.clone();
    tampered["nonce"] = json!("attacker-nonce");
    parts[1] = b64url_encode(serde_json::to_vec(&tampered).unwrap());
    let err = wallet
        .verify(&parts.join("."), Some(SAN_CLIENT), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::Jws(_)), "{err:?}");
}

#[tokio::test]
async fn redirect_uri_requests_are_never_signed() {
    let pki = pki("verifier", &["verifier.example"]);
    let client = "redirect_uri:https://verifier.example/response";
    let request = request(client, pid_query());
    let err = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::SignedRedirectUri),
        "{err:?}"
    );

    // A signed request claiming a redirect_uri client is refused by the wallet.
    let mut claims = request_claims_without_check(&request);
    claims["aud"] = json!("https://self-issued.me/v2");
    let token = raw(&pki, "oauth-authz-req+jwt", &claims).await;
    let err = verifier(&pki.root)
        .verify(&token, Some(client), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::SignedRedirectUri),
        "{err:?}"
    );
}

/// The request's parameters as JSON (what a misbehaving verifier would sign).
fn request_claims_without_check(request: &edk_oid4vp::AuthorizationRequest) -> serde_json::Value {
    let pairs = request.to_query_pairs().unwrap();
    let mut object = serde_json::Map::new();
    for (name, value) in pairs {
        let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
        object.insert(name, value);
    }
    serde_json::Value::Object(object)
}

#[tokio::test]
async fn the_key_reference_must_fit_the_prefix() {
    let pki = pki("verifier", &["verifier.example"]);
    let request = request(SAN_CLIENT, pid_query());
    let err = sign_request_object(
        &request,
        &RequestObjectKey::Kid("did:example:123#k".to_owned()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::KeyReference("x509_san_dns", "x5c")),
        "{err:?}"
    );
}

mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any token is refused with an error, never a panic.
        #[test]
        fn any_token_is_refused(token in "[A-Za-z0-9._~-]{0,300}") {
            let wallet = verifier(&pki("v", &["v.example"]).root);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let result = runtime.block_on(wallet.verify(&token, None, None));
            prop_assert!(result.is_err());
        }
    }
}
