//! `DidKeyResolver`: tokens whose `kid` is a DID URL verify with the key the DID names.

use std::sync::Arc;

use edk_core::Limits;
use edk_core::jose::jws::sign;
use edk_core::jose::{Algorithm, Header, JoseError, Jws, SigningKey, VerifyPolicy};
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::{DidKeyResolver, Relationship};
use serde_json::Value;

use crate::support::local_resolver;

async fn token(key: &SigningKey, kid: &str) -> Jws {
    let header = Header::new(key.algorithm()).with_kid(kid);
    let jws = sign(header, br#"{"iss":"x"}"#, key).await.unwrap();
    Jws::parse(&jws, &Limits::default()).unwrap()
}

fn did_key_url(key: &SigningKey) -> String {
    let did = DidKey::create(&key.public_jwk()).unwrap();
    format!("{did}#{}", &did.as_str()[8..])
}

#[tokio::test]
async fn did_key_tokens_verify_for_every_curve() {
    let resolver = DidKeyResolver::new(local_resolver());
    for alg in [
        Algorithm::EdDsa,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es256K,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let kid = did_key_url(&key);
        let did = kid.split('#').next().unwrap().to_owned();
        let verified = token(&key, &kid)
            .await
            .verify_with(&resolver, &VerifyPolicy::default(), Some(&did))
            .await;
        assert!(verified.is_ok(), "{alg:?}: {verified:?}");
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_does_not_verify() {
    let resolver = DidKeyResolver::new(local_resolver());
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let err = token(&other, &did_key_url(&key))
        .await
        .verify_with(&resolver, &VerifyPolicy::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, JoseError::InvalidSignature), "{err:?}");
}

#[tokio::test]
async fn the_issuer_must_be_the_did() {
    let resolver = DidKeyResolver::new(local_resolver());
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let err = token(&key, &did_key_url(&key))
        .await
        .verify_with(
            &resolver,
            &VerifyPolicy::default(),
            Some("did:key:zSomeoneElse"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, JoseError::UntrustedKey(_)), "{err:?}");
}

#[tokio::test]
async fn keys_outside_the_relationship_are_refused() {
    // A did:jwk with `use: "enc"` is only for key agreement.
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
    jwk["use"] = Value::String("enc".to_owned());
    let did = DidJwk::create(&serde_json::from_value(jwk).unwrap()).unwrap();
    let kid = format!("{did}#0");
    let assertion = DidKeyResolver::new(local_resolver());
    let err = token(&key, &kid)
        .await
        .verify_with(&assertion, &VerifyPolicy::default(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the key is not trusted: the key is not authorised for assertionMethod"
    );
    // The X25519 key derived for a did:key is not an assertion key either.
    let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let did = DidKey::create(&ed.public_jwk()).unwrap();
    let document = DidKey::new().document(&did).unwrap();
    let x25519 = document.verification_method[1].id.clone();
    let err = token(&ed, &x25519)
        .await
        .verify_with(&assertion, &VerifyPolicy::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, JoseError::UntrustedKey(_)), "{err:?}");
    // Asked for authentication, a did:key's signing key is fine.
    let authentication =
        DidKeyResolver::new(local_resolver()).with_relationship(Relationship::Authentication);
    token(&ed, &did_key_url(&ed))
        .await
        .verify_with(&authentication, &VerifyPolicy::default(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn kids_that_are_not_did_urls_with_fragments_find_no_key() {
    let resolver: Arc<DidKeyResolver> = Arc::new(DidKeyResolver::new(local_resolver()));
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let did = DidKey::create(&key.public_jwk()).unwrap();
    for kid in ["plain-kid", did.as_str(), &format!("{did}#unknown")] {
        let err = token(&key, kid)
            .await
            .verify_with(resolver.as_ref(), &VerifyPolicy::default(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, JoseError::KeyNotFound), "{kid}: {err:?}");
    }
}
