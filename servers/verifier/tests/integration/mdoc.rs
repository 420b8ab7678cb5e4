//! mso_mdoc presentations through the server: a DCQL query for an mDL
//! (`org.iso.18013.5.1.mDL`), answered with a `DeviceResponse` made by edk-mdoc's holder side
//! over the OpenID4VP session transcript, by `direct_post` and by `direct_post.jwt` (whose
//! transcript binds the verifier's encryption key), verified against the tenant's IACA (a
//! trust anchor in its KMS certificate store). An mDL from an IACA the tenant does not
//! trust, and a device signature over another request's transcript, fail the session.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock as _, SystemClock};
use edk_mdoc::{
    DeviceResponse, IssuerSigned, IssuerSignedBuilder, SessionTranscript, ValidityInfo,
};
use edk_oid4vp::{AuthorizationRequest, AuthorizationResponse, session_transcript};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};

use crate::flow::{Pki, by_value, make_request, post, provision, session};
use crate::support::Deployment;

const MDL: &str = "org.iso.18013.5.1.mDL";
const MDL_NS: &str = "org.iso.18013.5.1";

/// An IACA (the trust anchor) and a document signer certificate (`id-mdl-kp-mdlDS`).
fn iaca(name: &str) -> Pki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, format!("{name} IACA"));
    root.distinguished_name.push(DnType::CountryName, "DE");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{name} document signer"));
    leaf.distinguished_name.push(DnType::CountryName, "DE");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![1, 0, 18013, 5, 1, 2])];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::new(root, root_key))
        .unwrap();
    Pki {
        root_pem: root_cert.pem(),
        chain: vec![leaf_cert.der().to_vec()],
        leaf: SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap(),
    }
}

async fn issue_mdl(iaca: &Pki, device: &SigningKey) -> IssuerSigned {
    let yesterday = u64::try_from(SystemClock.unix_seconds() - 86_400).unwrap();
    let from = SystemTime::UNIX_EPOCH + Duration::from_secs(yesterday);
    let validity = ValidityInfo {
        signed: from,
        valid_from: from,
        valid_until: from + Duration::from_secs(365 * 86_400),
        expected_update: None,
    };
    IssuerSignedBuilder::new(MDL, &device.public_jwk(), validity)
        .unwrap()
        .claims(
            MDL_NS,
            json!({"family_name": "Mustermann", "given_name": "Erika", "age_over_18": true})
                .as_object()
                .unwrap(),
        )
        .unwrap()
        .sign(&iaca.leaf, &iaca.chain)
        .await
        .unwrap()
}

fn mdl_query() -> Value {
    json!({"credentials": [{
        "id": "mdl", "format": "mso_mdoc", "meta": {"doctype_value": MDL},
        "claims": [{"path": [MDL_NS, "family_name"]}, {"path": [MDL_NS, "age_over_18"]}]
    }]})
}

/// The wallet's `DeviceResponse` disclosing the two elements, signed over `transcript`.
async fn device_response(
    issued: &IssuerSigned,
    device: &SigningKey,
    transcript: &SessionTranscript,
) -> AuthorizationResponse {
    let document = edk_mdoc::present(
        issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        device,
        transcript,
    )
    .await
    .unwrap();
    let encoded = b64url_encode(DeviceResponse::new(vec![document]).to_cbor().unwrap());
    AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("mdl".to_owned(), vec![Value::String(encoded)])]),
        state: None,
    }
}

fn with_state(
    response: AuthorizationResponse,
    request: &AuthorizationRequest,
) -> AuthorizationResponse {
    match response {
        AuthorizationResponse::VpToken { vp_token, .. } => AuthorizationResponse::VpToken {
            vp_token,
            state: request.state.clone(),
        },
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mdl_is_presented_and_verified_against_the_tenants_iaca() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let authority = iaca("Musterland");
    provision(&deployment, &acme, &authority).await;
    let device = SigningKey::generate(Algorithm::Es256).unwrap();
    let issued = issue_mdl(&authority, &device).await;

    // direct_post.
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": mdl_query(), "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let request = by_value(&made);
    let transcript = session_transcript(&request, None).unwrap();
    let response = with_state(
        device_response(&issued, &device, &transcript).await,
        &request,
    );
    let (status, reply) = post(&request, response.to_form()).await;
    assert_eq!(status, 200, "{reply}");
    let verified = session(&deployment, &acme, &made).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    let claims = &verified["claims"]["mdl"][0][MDL_NS];
    assert_eq!(claims["family_name"], "Mustermann", "{verified}");
    assert_eq!(claims["age_over_18"], true, "{verified}");
    assert!(claims.get("given_name").is_none(), "{verified}");

    // direct_post.jwt: the transcript carries the thumbprint of the verifier's key.
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": mdl_query(), "client_id_prefix": "redirect_uri",
               "response_mode": "direct_post.jwt"}),
    )
    .await;
    let request = by_value(&made);
    let key = AuthorizationResponse::encryption_key(&request).unwrap();
    let transcript = session_transcript(&request, Some(&key)).unwrap();
    let response = with_state(
        device_response(&issued, &device, &transcript).await,
        &request,
    );
    let (status, reply) = post(&request, response.to_encrypted_form(&request).unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    let verified = session(&deployment, &acme, &made).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(
        verified["claims"]["mdl"][0][MDL_NS]["family_name"],
        "Mustermann"
    );

    // Signed over another request's transcript.
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": mdl_query(), "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let request = by_value(&made);
    let (status, reply) = post(&request, with_state(response.clone(), &request).to_form()).await;
    assert_eq!(status, 400, "{reply}");
    let failed = session(&deployment, &acme, &made).await;
    assert_eq!(failed["status"], "failed", "{failed}");

    // An mDL from an IACA the tenant does not trust.
    let stranger = issue_mdl(&iaca("Elsewhere"), &device).await;
    let made = make_request(
        &deployment,
        &acme,
        json!({"dcql_query": mdl_query(), "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let request = by_value(&made);
    let transcript = session_transcript(&request, None).unwrap();
    let response = with_state(
        device_response(&stranger, &device, &transcript).await,
        &request,
    );
    let (status, reply) = post(&request, response.to_form()).await;
    assert_eq!(status, 400, "{reply}");
    let failed = session(&deployment, &acme, &made).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]["error_description"]
            .as_str()
            .unwrap()
            .contains("mdoc"),
        "{failed}"
    );
    deployment.close().await;
}
