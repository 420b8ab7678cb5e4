//! Authorization Responses: `direct_post` form bodies and `direct_post.jwt` JWEs, written by a
//! wallet and read by a verifier, and refused when malformed, oversized or encrypted to
//! another key.

use std::collections::BTreeMap;

use edk_core::jose::jwe::{self, ContentEncryption, DecryptingKey, JweOptions, KeyManagement};
use edk_oid4vp::{
    AuthorizationRequest, AuthorizationResponse, ClientMetadata, ResponseError, ResponseLimits,
    ResponseMode,
};
use serde_json::{Value, json};

use crate::support::{pid_query, request};

fn vp_token() -> AuthorizationResponse {
    AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("pid".to_owned(), vec![json!("eyJ.a.b~WyJ~")])]),
        state: Some("st-8c2f1a".to_owned()),
    }
}

/// A `direct_post.jwt` request with the verifier's key (kid `enc-1`, `alg`) and `enc` values.
pub(crate) fn encrypted_request(
    key: &DecryptingKey,
    alg: KeyManagement,
    enc: Option<Vec<&str>>,
) -> AuthorizationRequest {
    let mut request = request("x509_san_dns:verifier.example", pid_query());
    request.response_mode = ResponseMode::DirectPostJwt;
    let jwk = key.public_jwk().with_kid("enc-1").with_alg(alg.name());
    request.client_metadata = Some(ClientMetadata {
        jwks: Some(json!({ "keys": [jwk] })),
        encrypted_response_enc_values_supported: enc
            .map(|values| values.into_iter().map(str::to_owned).collect()),
        ..ClientMetadata::default()
    });
    request.validate().unwrap();
    request
}

#[test]
fn direct_post_bodies_round_trip() {
    let limits = ResponseLimits::DEFAULT;
    let response = vp_token();
    let body = response.to_form();
    assert!(body.contains("vp_token=%7B%22pid%22"), "{body}");
    assert_eq!(
        AuthorizationResponse::from_form(body.as_bytes(), &limits).unwrap(),
        response
    );

    let error = AuthorizationResponse::Error {
        error: "access_denied".to_owned(),
        error_description: Some("the user declined".to_owned()),
        state: Some("st-8c2f1a".to_owned()),
    };
    let read = AuthorizationResponse::from_form(error.to_form().as_bytes(), &limits).unwrap();
    assert_eq!(read, error);
    assert_eq!(read.state(), Some("st-8c2f1a"));
}

#[test]
fn malformed_direct_post_bodies_are_refused() {
    let limits = ResponseLimits::DEFAULT;
    for body in [
        "state=x",
        "vp_token=%5B%5D",
        "vp_token=%7B%22pid%22%3A%22x%22%7D",
        "vp_token=%7B%22pid%22%3A%5B%5D%7D",
        "vp_token=%7B%22pid%22%3A%5B1%5D%7D",
        "vp_token=not-json",
        "vp_token=%7B%7D&vp_token=%7B%7D",
        "vp_token=%7B%7D&error=access_denied",
    ] {
        let err = AuthorizationResponse::from_form(body.as_bytes(), &limits).unwrap_err();
        assert!(
            matches!(err, ResponseError::Malformed(_)),
            "{body}: {err:?}"
        );
    }
}

#[test]
fn oversized_responses_are_refused_before_parsing() {
    let limits = ResponseLimits::DEFAULT.with_max_body_bytes(1024);
    let big = vec![b'a'; 2048];
    let err = AuthorizationResponse::from_form(&big, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ResponseError::TooLarge {
                what: "body",
                size: 2048,
                limit: 1024
            }
        ),
        "{err:?}"
    );

    let many: Vec<Value> = (0..5).map(|i| json!(format!("p{i}"))).collect();
    let response = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("pid".to_owned(), many)]),
        state: None,
    };
    let limits = ResponseLimits::DEFAULT.with_max_presentations(4);
    let err = AuthorizationResponse::from_form(response.to_form().as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ResponseError::TooLarge {
                what: "number of presentations",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn direct_post_jwt_round_trips_with_each_ecdh_es_variant_and_enc() {
    for alg in [
        KeyManagement::EcdhEs,
        KeyManagement::EcdhEsA128Kw,
        KeyManagement::EcdhEsA256Kw,
    ] {
        for enc in ["A128GCM", "A256GCM"] {
            let key = DecryptingKey::generate(alg).unwrap();
            let request = encrypted_request(&key, alg, Some(vec![enc]));
            let response = vp_token();
            let body = response.to_encrypted_form(&request).unwrap();
            let token = body.strip_prefix("response=").unwrap();
            let header = jwe::Jwe::parse(token, &Default::default()).unwrap();
            assert_eq!(header.header().enc.name(), enc);
            assert_eq!(header.header().kid.as_deref(), Some("enc-1"));
            let (read, used) = AuthorizationResponse::from_encrypted_form(
                body.as_bytes(),
                &request,
                &key,
                &ResponseLimits::DEFAULT,
            )
            .await
            .unwrap();
            assert_eq!(read, response);
            assert_eq!(
                used.unwrap().thumbprint(),
                key.public_jwk().thumbprint(),
                "the key the response was encrypted to"
            );
        }
    }
}

#[tokio::test]
async fn a_jwe_to_another_key_is_refused() {
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted_request(&key, KeyManagement::EcdhEs, None);
    // Encrypted to a key of the same kid that is not the verifier's.
    let other = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let stranger = encrypted_request(&other, KeyManagement::EcdhEs, None);
    let body = vp_token().to_encrypted_form(&stranger).unwrap();
    let err = AuthorizationResponse::from_encrypted_form(
        body.as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ResponseError::Jwe(_)), "{err:?}");
}

#[tokio::test]
async fn a_jwe_with_an_enc_the_request_did_not_offer_is_refused() {
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted_request(&key, KeyManagement::EcdhEs, None);
    let jwk = key.public_jwk().with_kid("enc-1");
    let token = jwe::encrypt(
        &serde_json::to_vec(&vp_token().to_json()).unwrap(),
        &jwk,
        KeyManagement::EcdhEs,
        ContentEncryption::A256Gcm,
        JweOptions::default(),
    )
    .unwrap();
    let err = AuthorizationResponse::decrypt(&token, &request, &key, &ResponseLimits::DEFAULT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResponseError::UnexpectedEncryption(ref enc) if enc == "A256GCM"),
        "{err:?}"
    );
}

#[tokio::test]
async fn encrypted_bodies_are_checked_for_size_and_form() {
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted_request(&key, KeyManagement::EcdhEs, None);
    let body = vp_token().to_encrypted_form(&request).unwrap();
    let limits = ResponseLimits::DEFAULT.with_max_body_bytes(body.len() - 1);
    let err = AuthorizationResponse::from_encrypted_form(body.as_bytes(), &request, &key, &limits)
        .await
        .unwrap_err();
    assert!(matches!(err, ResponseError::TooLarge { .. }), "{err:?}");

    // A vp_token in the clear where an encrypted response is expected.
    let clear = vp_token().to_form();
    let err = AuthorizationResponse::from_encrypted_form(
        clear.as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ResponseError::Malformed(_)), "{err:?}");

    // An unencrypted error is accepted (§8.3).
    let error = AuthorizationResponse::Error {
        error: "invalid_request".to_owned(),
        error_description: None,
        state: None,
    };
    let (read, used) = AuthorizationResponse::from_encrypted_form(
        error.to_form().as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap();
    assert_eq!(read, error);
    assert!(used.is_none());
}

#[test]
fn a_request_without_keys_cannot_be_answered_encrypted() {
    let request = request("x509_san_dns:verifier.example", pid_query());
    let err = vp_token().encrypt(&request).unwrap_err();
    assert!(matches!(err, ResponseError::NoEncryptionKey), "{err:?}");
}

mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any body is read or refused, never a panic.
        #[test]
        fn any_form_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AuthorizationResponse::from_form(&body, &ResponseLimits::DEFAULT);
        }

        /// Any vp_token JSON is read or refused, and what is read writes back as itself.
        #[test]
        fn vp_token_entries_round_trip(
            entries in proptest::collection::btree_map(
                "[a-z]{1,8}",
                proptest::collection::vec("[ -~]{0,40}", 1..4),
                0..4,
            ),
            state in proptest::option::of("[a-zA-Z0-9_-]{1,16}"),
        ) {
            let response = AuthorizationResponse::VpToken {
                vp_token: entries
                    .into_iter()
                    .map(|(id, values)| (id, values.into_iter().map(Value::String).collect()))
                    .collect(),
                state,
            };
            let read = AuthorizationResponse::from_form(
                response.to_form().as_bytes(),
                &ResponseLimits::DEFAULT,
            );
            prop_assert_eq!(read.unwrap(), response);
        }
    }

    #[tokio::test]
    async fn garbage_jwes_are_refused() {
        let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
        let request = encrypted_request(&key, KeyManagement::EcdhEs, None);
        for token in [
            "",
            "a.b.c.d.e",
            "....",
            "eyJhbGciOiJFQ0RILUVTIn0.a.b.c.d",
            "x".repeat(3000).as_str(),
        ] {
            let err =
                AuthorizationResponse::decrypt(token, &request, &key, &ResponseLimits::DEFAULT)
                    .await
                    .unwrap_err();
            assert!(
                matches!(
                    err,
                    ResponseError::Jwe(_) | ResponseError::UnexpectedEncryption(_)
                ),
                "{token}: {err:?}"
            );
        }
    }
}
