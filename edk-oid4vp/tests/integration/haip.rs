//! The presentation requirements of the OpenID4VC High Assurance Interoperability Profile 1.0
//! that fall to this library, one named test each (HAIP §5, §6.1).

use std::collections::BTreeMap;
use std::sync::Arc;

use edk_core::jose::jwe::{self, ContentEncryption, DecryptingKey, Jwe, JweOptions, KeyManagement};
use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
use edk_core::sd_jwt::{ClaimPath as SdPath, IssueOptions};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_oid4vp::{
    AuthorizationResponse, DcqlQuery, PresentationVerifier, RequestObjectError, RequestObjectKey,
    RequestObjectVerifier, ResponseLimits, SignOptions, ValidationError, sign_request_object,
    x509_hash,
};
use rcgen::{CertificateParams, KeyPair};
use serde_json::{Value, json};

use crate::response::encrypted_request;
use crate::support::{NOW, clock, pid_query, pki, request};

/// HAIP §5: signed requests with the `x509_hash` prefix, verified by the wallet.
#[tokio::test]
async fn haip_5_x509_hash_signed_requests_are_accepted() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = format!("x509_hash:{}", x509_hash(&pki.chain[0]));
    let request = request(&client_id, pid_query());
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let wallet = RequestObjectVerifier::new([pki.root.clone()], clock()).unwrap();
    assert_eq!(
        wallet.verify(&token, Some(&client_id), None).await.unwrap(),
        request
    );
}

/// HAIP §5: the `x5c` of a signed request carries no trust anchor.
#[tokio::test]
async fn haip_5_request_x5c_without_the_trust_anchor() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = format!("x509_hash:{}", x509_hash(&pki.chain[0]));
    let request = request(&client_id, pid_query());
    let with_root = vec![pki.chain[0].clone(), pki.root.clone()];
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(with_root),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let wallet = RequestObjectVerifier::new([pki.root.clone()], clock()).unwrap();
    let err = wallet
        .verify(&token, Some(&client_id), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestObjectError::X5cProfile(_)), "{err:?}");
}

/// HAIP §5: the request signing certificate is not self-signed.
#[tokio::test]
async fn haip_5_request_signing_certificate_not_self_signed() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["verifier.example".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let signer = SigningKey::from_pkcs8_der(Algorithm::Es256, &key.serialize_der()).unwrap();
    let client_id = format!("x509_hash:{}", x509_hash(cert.der()));
    let request = request(&client_id, pid_query());
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(vec![cert.der().to_vec()]),
        &signer,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let other = pki("anchor", &["anchor.example"]);
    let wallet = RequestObjectVerifier::new([other.root], clock()).unwrap();
    let err = wallet
        .verify(&token, Some(&client_id), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::X5cProfile(reason) if reason.contains("self-signed")),
        "{err:?}"
    );
}

/// HAIP §5: `ECDH-ES` on P-256; verifiers accept both `A128GCM` and `A256GCM`, wallets prefer
/// `A256GCM`.
#[tokio::test]
async fn haip_5_response_encryption_ecdh_es_p256_a128gcm_and_a256gcm() {
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let public = serde_json::to_value(key.public_jwk()).unwrap();
    assert_eq!(public["crv"], "P-256", "the verifier's ephemeral key");
    let request = encrypted_request(
        &key,
        KeyManagement::EcdhEs,
        Some(vec!["A128GCM", "A256GCM"]),
    );
    let response = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("pid".to_owned(), vec![json!("x~y~")])]),
        state: request.state.clone(),
    };

    // The wallet side picks A256GCM.
    let token = response.encrypt(&request).unwrap();
    let header = Jwe::parse(&token, &Default::default()).unwrap();
    assert_eq!(header.header().enc, ContentEncryption::A256Gcm);
    assert_eq!(header.header().alg, KeyManagement::EcdhEs);

    // The verifier side reads both.
    let jwk = AuthorizationResponse::encryption_key(&request).unwrap();
    for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
        let token = jwe::encrypt(
            &serde_json::to_vec(&response.to_json()).unwrap(),
            &jwk,
            KeyManagement::EcdhEs,
            enc,
            JweOptions::default(),
        )
        .unwrap();
        let (read, _) =
            AuthorizationResponse::decrypt(&token, &request, &key, &ResponseLimits::DEFAULT)
                .await
                .unwrap();
        assert_eq!(read, response);
    }
}

/// HAIP §6.1: a presentation of a holder-bound SD-JWT VC always carries a Key Binding JWT,
/// even when the credential query waives holder binding.
#[tokio::test]
async fn haip_6_1_key_binding_jwt_always_present_for_holder_bound_credentials() {
    let issuer = SigningKey::generate(Algorithm::Es256).unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let query = DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": { "vct_values": ["urn:eudi:pid:1"] },
            "require_cryptographic_holder_binding": false,
            "claims": [{ "path": ["family_name"] }]
        }]
    }))
    .unwrap();
    let request = request("x509_san_dns:verifier.example", query);
    let credential = SdJwtVcBuilder::new("urn:eudi:pid:1")
        .issuer("https://issuer.example")
        .issued_at(NOW - 60)
        .holder_key(&holder.public_jwk())
        .claim("family_name", "Dent")
        .selectively_disclose(SdPath::new(["family_name"]))
        .issue(&issuer, &IssueOptions::default())
        .await
        .unwrap();
    let unbound = credential
        .select(&[SdPath::new(["family_name"])])
        .unwrap()
        .to_string();
    let response = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("pid".to_owned(), vec![Value::String(unbound)])]),
        state: request.state.clone(),
    };
    let issuers = Arc::new(JwksResolver::from_keys([&issuer.public_jwk()]));

    // OpenID4VP alone accepts it: the query waived holder binding.
    PresentationVerifier::new(issuers.clone(), clock())
        .verify(&request, &response, None)
        .await
        .unwrap();
    // Under HAIP it is refused.
    let err = PresentationVerifier::new(issuers, clock())
        .requiring_key_binding_when_bound()
        .verify(&request, &response, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::KeyBindingMissing(ref id) if id == "pid"),
        "{err:?}"
    );
}
