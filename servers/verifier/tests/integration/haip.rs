//! The presentation requirements of OpenID4VC High Assurance Interoperability Profile 1.0
//! that the verifier server enforces, one test each, over HTTP.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::sd_jwt::{ClaimPath, KeyBindingClaims};
use edk_core::{Clock as _, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use crate::flow::{
    answer, by_value, issue, make_request, pki, plain, post, present, provision, session,
};
use crate::support::{Deployment, Tenant, http, identity_query};

/// A deployment with a tenant whose verifier has a certificate and trusts an issuer.
async fn setup() -> (Deployment, Tenant, crate::flow::Pki) {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let issuer = pki("issuer");
    provision(&deployment, &acme, &issuer).await;
    (deployment, acme, issuer)
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// HAIP §5: Request Objects are signed (ES256), typed `oauth-authz-req+jwt`, and carry the
/// verifier's certificate chain in `x5c` without the trust anchor; `x509_hash` identifies the
/// verifier by that certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haip_request_objects_are_signed_with_x5c_without_the_trust_anchor() {
    let (deployment, acme, _) = setup().await;
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "x509_hash"}),
    )
    .await;
    let uri = url::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: BTreeMap<String, String> = uri.query_pairs().into_owned().collect();
    assert!(pairs["client_id"].starts_with("x509_hash:"), "{pairs:?}");
    let jwt = http()
        .get(plain(&pairs["request_uri"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = decode(jwt.split('.').next().unwrap());
    assert_eq!(header["typ"], "oauth-authz-req+jwt", "{header}");
    assert_eq!(header["alg"], "ES256", "{header}");
    let chain = header["x5c"].as_array().unwrap();
    assert!(!chain.is_empty(), "{header}");
    for der in chain {
        let cert = Certificate::from_der(&STANDARD.decode(der.as_str().unwrap()).unwrap()).unwrap();
        assert_ne!(
            cert.tbs_certificate().subject(),
            cert.tbs_certificate().issuer(),
            "a self-signed trust anchor travels in x5c"
        );
    }
    let payload = decode(jwt.split('.').nth(1).unwrap());
    assert_eq!(payload["client_id"], pairs["client_id"].as_str());
    assert!(payload.get("dcql_query").is_some(), "{payload}");
    assert!(
        payload.get("presentation_definition").is_none(),
        "{payload}"
    );
    deployment.close().await;
}

/// HAIP §5: encrypted responses use ECDH-ES with P-256 keys and A128GCM or A256GCM, and an
/// answer in the clear to a request for an encrypted one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haip_encrypted_responses_use_ecdh_es_on_p256_with_aes_gcm() {
    let (deployment, acme, issuer) = setup().await;
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "response_mode": "direct_post.jwt"}),
    )
    .await;
    let request = by_value(&made);
    let metadata = request.client_metadata.as_ref().unwrap().to_json();
    let keys = metadata["jwks"]["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(key["kty"], "EC", "{key}");
        assert_eq!(key["crv"], "P-256", "{key}");
        assert_eq!(key["alg"], "ECDH-ES", "{key}");
        assert_eq!(key["use"], "enc", "{key}");
        assert!(key.get("d").is_none(), "{key}");
    }
    let encs = metadata["encrypted_response_enc_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        encs.iter().all(|enc| enc == "A128GCM" || enc == "A256GCM"),
        "{metadata}"
    );
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        &request.nonce,
    )
    .await;
    let (status, _) = post(
        &request,
        answer(presentation, request.state.clone()).to_form(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(session(&deployment, &acme, &made).await["status"], "failed");
    deployment.close().await;
}

/// HAIP §6.1: an SD-JWT VC bound to a holder key (`cnf`) is presented with a Key Binding
/// JWT, even when the query waives cryptographic holder binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haip_a_bound_sd_jwt_vc_is_refused_without_key_binding() {
    let (deployment, acme, issuer) = setup().await;
    let mut query = identity_query();
    query["credentials"][0]["require_cryptographic_holder_binding"] = json!(false);
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": query, "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let request = by_value(&made);
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let unbound = credential
        .present(
            &[
                ClaimPath::new(["given_name"]),
                ClaimPath::new(["family_name"]),
            ],
            None,
        )
        .await
        .unwrap()
        .to_string();
    let (status, reply) = post(&request, answer(unbound, request.state.clone()).to_form()).await;
    assert_eq!(status, 400, "{reply}");
    let failed = session(&deployment, &acme, &made).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]["error_description"]
            .as_str()
            .unwrap()
            .contains("lacks its key binding"),
        "{failed}"
    );
    deployment.close().await;
}

/// HAIP §6.1 with OpenID4VP §14.1: a Key Binding JWT is fresh (its `iat` within minutes) and
/// bound to this request's nonce and full client identifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haip_key_binding_is_fresh_and_bound_to_nonce_and_client_id() {
    let (deployment, acme, issuer) = setup().await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let paths = [
        ClaimPath::new(["given_name"]),
        ClaimPath::new(["family_name"]),
    ];
    for case in ["stale", "audience", "nonce"] {
        let made = make_request(
            &deployment,
            &acme,
            json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"}),
        )
        .await;
        let request = by_value(&made);
        let client_id = request.client_id.as_ref().unwrap().to_string();
        // Without its prefix, the client identifier is another audience.
        let bare = client_id.trim_start_matches("redirect_uri:").to_owned();
        let now = SystemClock.unix_seconds();
        let claims = match case {
            "stale" => KeyBindingClaims::new(&client_id, &request.nonce, now - 3_600),
            "audience" => KeyBindingClaims::new(&bare, &request.nonce, now),
            _ => KeyBindingClaims::new(&client_id, "n-another", now),
        };
        let presentation = credential
            .present(&paths, Some((&claims, &holder)))
            .await
            .unwrap()
            .to_string();
        let (status, reply) = post(
            &request,
            answer(presentation, request.state.clone()).to_form(),
        )
        .await;
        assert_eq!(status, 400, "{case}: {reply}");
        assert_eq!(
            session(&deployment, &acme, &made).await["status"],
            "failed",
            "{case}"
        );
    }
    deployment.close().await;
}

/// HAIP §5 with OpenID4VP §14.1: every request has a fresh `nonce` and `state` of at least
/// 128 bits, asks with DCQL, and names the algorithms HAIP requires (ES256) for SD-JWT VCs
/// and mdocs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haip_requests_carry_fresh_nonces_dcql_and_es256() {
    let (deployment, acme, _) = setup().await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let made = make_request(
            &deployment,
            &acme,
            json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"}),
        )
        .await;
        let request = by_value(&made);
        let state = request.state.clone().unwrap();
        for value in [&request.nonce, &state] {
            assert!(
                URL_SAFE_NO_PAD.decode(value).unwrap().len() >= 16,
                "{value}"
            );
            assert!(seen.insert(value.clone()), "{value} was used twice");
        }
        let metadata = request.client_metadata.as_ref().unwrap().to_json();
        let formats = &metadata["vp_formats_supported"];
        assert_eq!(formats["dc+sd-jwt"]["sd-jwt_alg_values"], json!(["ES256"]));
        assert_eq!(formats["dc+sd-jwt"]["kb-jwt_alg_values"], json!(["ES256"]));
        assert_eq!(formats["mso_mdoc"]["issuerauth_alg_values"], json!([-7]));
        assert_eq!(formats["mso_mdoc"]["deviceauth_alg_values"], json!([-7]));
    }
    // A request without a DCQL query is refused.
    let (status, problem) = deployment
        .admin(
            &acme,
            Method::POST,
            "/requests",
            Some(json!({"client_id_prefix": "redirect_uri"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    deployment.close().await;
}
