//! JWT key proofs (Appendix F.4): the specification's example verifies, and every check
//! refuses with its own error.

use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey, jws};
use edk_did::methods::jwk::DidJwk;
use edk_did::{DidKeyResolver, Resolver};
use edk_oid4vci::proof::PROOF_TYP;
use edk_oid4vci::{CredentialErrorCode, ProofPolicy, ProtocolError, verify_jwt_proof};
use serde_json::{Value, json};

const ISSUER: &str = "https://credential-issuer.example.com";
const NOW: i64 = 1_800_000_000;

fn policy() -> ProofPolicy {
    ProofPolicy::new(
        ISSUER,
        vec![Algorithm::Es256, Algorithm::EdDsa],
        vec!["jwk".to_owned(), "did:jwk".to_owned()],
    )
}

async fn proof(key: &SigningKey, header: Header, claims: Value) -> String {
    if header.kid.is_some() {
        return jws::sign(header, claims.to_string().as_bytes(), key)
            .await
            .unwrap();
    }
    crate::signed(key, &header, &claims)
}

fn jwk_header(key: &SigningKey) -> Header {
    Header::new(key.algorithm())
        .with_typ(PROOF_TYP)
        .with_jwk(&key.public_jwk())
}

fn claims() -> Value {
    json!({ "aud": ISSUER, "iat": NOW - 10, "nonce": "n-1" })
}

async fn refused(jwt: &str, policy: &ProofPolicy) -> ProtocolError {
    verify_jwt_proof(jwt, policy, &JwksResolver::default(), NOW)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn the_specification_example_verifies_within_its_window() {
    let jwt = include_str!("../vectors/oid4vci/proof-jwt-8.2.txt");
    let policy = ProofPolicy::new(ISSUER, vec![Algorithm::Es256], vec!["jwk".to_owned()]);
    let proven = verify_jwt_proof(jwt, &policy, &JwksResolver::default(), 1_701_960_500)
        .await
        .unwrap();
    assert_eq!(proven.nonce.as_deref(), Some("LarRGSbmUPYtRYO6BQ4yn8"));
    assert_eq!(
        serde_json::to_value(&proven.jwk).unwrap(),
        json!({"kty": "EC", "crv": "P-256",
            "x": "nUWAoAv3XZith8E7i19OdaxOLYFOwM-Z2EuM02TirT4",
            "y": "HskHU8BjUi1U9Xqi7Swmj8gwAK_0xkcDjEW_71SosEY"})
    );
    // The same proof an hour later is too old.
    let err = verify_jwt_proof(jwt, &policy, &JwksResolver::default(), 1_701_964_044)
        .await
        .unwrap_err();
    assert_eq!(err.code, CredentialErrorCode::InvalidProof);
    assert_eq!(err.description, "the proof's iat is too old");
}

#[tokio::test]
async fn a_proof_with_an_embedded_key_verifies_and_returns_that_key() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let jwt = proof(&key, jwk_header(&key), claims()).await;
    let proven = verify_jwt_proof(&jwt, &policy(), &JwksResolver::default(), NOW)
        .await
        .unwrap();
    assert_eq!(proven.jwk.thumbprint(), key.public_jwk().thumbprint());
    assert_eq!(proven.nonce.as_deref(), Some("n-1"));
    assert!(proven.did_url.is_none());
}

#[tokio::test]
async fn a_proof_naming_a_did_url_verifies_with_the_resolved_key() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let did = DidJwk::create(&key.public_jwk()).unwrap();
    let kid = format!("{did}#0");
    let header = Header::new(Algorithm::Es256)
        .with_typ(PROOF_TYP)
        .with_kid(kid.clone());
    let jwt = proof(&key, header, claims()).await;
    let resolver = DidKeyResolver::new(Arc::new(
        Resolver::builder()
            .method(Arc::new(DidJwk))
            .build()
            .unwrap(),
    ));
    let proven = verify_jwt_proof(&jwt, &policy(), &resolver, NOW)
        .await
        .unwrap();
    assert_eq!(proven.did_url.unwrap().as_str(), kid);
    assert_eq!(proven.jwk.thumbprint(), key.public_jwk().thumbprint());

    let jwk_only = ProofPolicy::new(ISSUER, vec![Algorithm::Es256], vec!["jwk".to_owned()]);
    let err = verify_jwt_proof(&jwt, &jwk_only, &resolver, NOW)
        .await
        .unwrap_err();
    assert_eq!(
        err.description,
        "this credential is not bound to did:jwk DIDs"
    );
}

#[tokio::test]
async fn each_broken_rule_is_refused_with_its_own_description() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            proof(&key, jwk_header(&key), json!({ "iat": NOW, "nonce": "n" })).await,
            "the proof's aud must be the credential issuer https://credential-issuer.example.com",
        ),
        (
            proof(
                &key,
                jwk_header(&key),
                json!({ "aud": "https://other.example", "iat": NOW, "nonce": "n" }),
            )
            .await,
            "the proof's aud must be the credential issuer https://credential-issuer.example.com",
        ),
        (
            proof(
                &key,
                jwk_header(&key),
                json!({ "aud": ISSUER, "nonce": "n" }),
            )
            .await,
            "the proof's iat is missing or not an integer",
        ),
        (
            proof(
                &key,
                jwk_header(&key),
                json!({ "aud": ISSUER, "iat": NOW - 301, "nonce": "n" }),
            )
            .await,
            "the proof's iat is too old",
        ),
        (
            proof(
                &key,
                jwk_header(&key),
                json!({ "aud": ISSUER, "iat": NOW + 61, "nonce": "n" }),
            )
            .await,
            "the proof's iat is in the future",
        ),
        (
            proof(
                &key,
                Header::new(Algorithm::Es256).with_jwk(&key.public_jwk()),
                claims(),
            )
            .await,
            "the proof's typ must be openid4vci-proof+jwt",
        ),
        (
            proof(
                &key,
                Header::new(Algorithm::Es256)
                    .with_typ("JWT")
                    .with_jwk(&key.public_jwk()),
                claims(),
            )
            .await,
            "the proof's typ must be openid4vci-proof+jwt",
        ),
        (
            // Signed by another key than the one in the header.
            proof(&other, jwk_header(&key), claims()).await,
            "the proof's signature does not verify",
        ),
        (
            proof(&key, jwk_header(&key).with_kid("did:jwk:abc#0"), claims()).await,
            "the proof header must carry exactly one of kid, jwk and x5c",
        ),
        (
            proof(
                &key,
                Header::new(Algorithm::Es256)
                    .with_typ(PROOF_TYP)
                    .with_kid("key-1"),
                claims(),
            )
            .await,
            "the proof's kid must be a DID URL naming the holder's key",
        ),
    ];
    for (jwt, description) in cases {
        let err = refused(&jwt, &policy()).await;
        assert_eq!(err.code, CredentialErrorCode::InvalidProof, "{description}");
        assert_eq!(err.description, description);
    }
}

#[tokio::test]
async fn alg_none_a_private_key_and_an_unlisted_alg_are_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let valid = proof(&key, jwk_header(&key), claims()).await;
    let (_, rest) = valid.split_once('.').unwrap();
    let none_header = edk_core::encoding::b64url_encode(
        json!({ "alg": "none", "typ": PROOF_TYP, "jwk": key.public_jwk() })
            .to_string()
            .as_bytes(),
    );
    let (payload, _) = rest.split_once('.').unwrap();
    let err = refused(&format!("{none_header}.{payload}."), &policy()).await;
    assert_eq!(
        err.description,
        "alg none is not an asymmetric signature algorithm accepted for proofs"
    );

    let private = json!({ "alg": "ES256", "typ": PROOF_TYP, "jwk": key.to_jwk().unwrap() });
    let err = refused(&crate::signed(&key, &private, &claims()), &policy()).await;
    assert_eq!(err.description, "the proof header carries a private key");

    let es384 = SigningKey::generate(Algorithm::Es384).unwrap();
    let err = refused(
        &proof(&es384, jwk_header(&es384), claims()).await,
        &policy(),
    )
    .await;
    assert_eq!(
        err.description,
        "alg ES384 is not accepted for this credential"
    );
}

#[tokio::test]
async fn a_missing_nonce_is_invalid_nonce_and_iss_must_name_the_client() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let no_nonce = proof(&key, jwk_header(&key), json!({ "aud": ISSUER, "iat": NOW })).await;
    let err = refused(&no_nonce, &policy()).await;
    assert_eq!(err.code, CredentialErrorCode::InvalidNonce);
    let relaxed = policy().with_nonce_required(false);
    let proven = verify_jwt_proof(&no_nonce, &relaxed, &JwksResolver::default(), NOW)
        .await
        .unwrap();
    assert!(proven.nonce.is_none());

    let with_iss = proof(
        &key,
        jwk_header(&key),
        json!({ "aud": ISSUER, "iat": NOW, "nonce": "n", "iss": "wallet-a" }),
    )
    .await;
    let for_a = policy().with_client(Some("wallet-a".to_owned()));
    verify_jwt_proof(&with_iss, &for_a, &JwksResolver::default(), NOW)
        .await
        .unwrap();
    let for_b = policy().with_client(Some("wallet-b".to_owned()));
    let err = refused(&with_iss, &for_b).await;
    assert_eq!(
        err.description,
        "the proof's iss is not the client of the access token"
    );
    // Anonymous access: a wallet's own iss is ignored.
    verify_jwt_proof(&with_iss, &policy(), &JwksResolver::default(), NOW)
        .await
        .unwrap();
}
