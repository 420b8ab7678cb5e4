//! The whole flow over HTTP with an in-process wallet, on SQLite and PostgreSQL: the verifier's
//! Request Object signed under an `x509_san_dns` certificate chain (and `x509_hash`, fetched
//! by POST with a `wallet_nonce`, and a `did:jwk`), fetched once and verified by the wallet;
//! an SD-JWT VC issued under a chain to the tenant's trust anchor, presented with a Key
//! Binding JWT by `direct_post` and `direct_post.jwt`; the session verified with the claims.
//! Then the refusals: a replayed response, a wrong nonce, a response sent to another tenant,
//! a missing required claim, an untrusted issuer, a JWE to a key that is not the verifier's
//! and an unencrypted answer to an encrypted request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::jwe::{DecryptingKey, KeyManagement};
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::{Clock, SystemClock};
use edk_did::methods::jwk::DidJwk;
use edk_did::{DidKeyResolver, Resolver};
use edk_kms::Kms as _;
use edk_kms::cert::{CertificateProfile, ChainName, SubjectAltName};
use edk_kms::kms::{Caller, KeyAlias, NewKey};
use edk_kms::provider::KeySpec;
use edk_oid4vp::{AuthorizationRequest, AuthorizationResponse, RequestObjectVerifier};
use edk_tenancy::TenantDirectory as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Deployment, Tenant, http, identity_query};

const VCT: &str = "https://credentials.example.com/identity";

/// An issuer's PKI: a root (the trust anchor) and a leaf that signs credentials.
pub(crate) struct Pki {
    pub(crate) root_pem: String,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) leaf: SigningKey,
}

pub(crate) fn pki(name: &str) -> Pki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, format!("{name} root"));
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(vec![format!("{name}.example")]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
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

pub(crate) fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// An identity credential for `holder` from `issuer`, both names selectively disclosable.
pub(crate) async fn issue(issuer: &Pki, holder: &SigningKey) -> SdJwt {
    SdJwtVcBuilder::new(VCT)
        .issuer("https://issuer.example")
        .issued_at(SystemClock.unix_seconds() - 60)
        .holder_key(&holder.public_jwk())
        .claim("given_name", "Erika")
        .claim("family_name", "Mustermann")
        .selectively_disclose(ClaimPath::new(["given_name"]))
        .selectively_disclose(ClaimPath::new(["family_name"]))
        .x5c(issuer.chain.iter().map(|der| b64(der)).collect())
        .issue(&issuer.leaf, &IssueOptions::default())
        .await
        .unwrap()
}

/// The holder's presentation of `disclose`, bound to `aud` and `nonce`.
pub(crate) async fn present(
    credential: &SdJwt,
    holder: &SigningKey,
    disclose: &[&str],
    aud: &str,
    nonce: &str,
) -> String {
    let paths: Vec<ClaimPath> = disclose
        .iter()
        .map(|name| ClaimPath::new([*name]))
        .collect();
    let claims = KeyBindingClaims::new(aud, nonce, SystemClock.unix_seconds());
    credential
        .present(&paths, Some((&claims, holder)))
        .await
        .unwrap()
        .to_string()
}

/// The holder's presentation of `disclose` to `request` (bound to `aud` and the request's
/// nonce), posted to its response URI as a `vp_token` for the `identity` query.
pub(crate) async fn present_and_post(
    request: &AuthorizationRequest,
    credential: &SdJwt,
    holder: &SigningKey,
    disclose: &[&str],
    aud: &str,
) -> (u16, Value) {
    let presentation = present(credential, holder, disclose, aud, &request.nonce).await;
    post(
        request,
        answer(presentation, request.state.clone()).to_form(),
    )
    .await
}

pub(crate) fn answer(presentation: String, state: Option<String>) -> AuthorizationResponse {
    AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("identity".to_owned(), vec![Value::String(presentation)])]),
        state,
    }
}

/// `https://localhost:<port>/...` as reached here, over plain HTTP.
pub(crate) fn plain(url: &str) -> String {
    url.replacen("https://", "http://", 1)
}

/// The tenant's verifier key with a leaf certificate for `localhost` under a CA of its
/// own (the root the wallet trusts, as DER), and `issuers` as its trust anchor.
pub(crate) async fn provision(deployment: &Deployment, tenant: &Tenant, issuers: &Pki) -> Vec<u8> {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let caller = Caller::new(context, "verifier");
    let ca = KeyAlias::new("verifier", "test-ca").unwrap();
    let signing = KeyAlias::new("verifier", "request-object-signing").unwrap();
    for alias in [&ca, &signing] {
        deployment
            .kms
            .create_key(
                &caller,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
    }
    let day = Duration::from_secs(86_400);
    let root = deployment
        .certificates
        .issue(
            &caller,
            &ca,
            &ca,
            &CertificateProfile::ca(day * 365, Some(0)),
        )
        .await
        .unwrap();
    let mut leaf = CertificateProfile::leaf(day * 30);
    leaf.sans = vec![SubjectAltName::Dns("localhost".to_owned())];
    deployment
        .certificates
        .issue(&caller, &ca, &signing, &leaf)
        .await
        .unwrap();
    deployment
        .certificates
        .put_chain(
            &caller,
            &ChainName::new("issuers").unwrap(),
            &issuers.root_pem,
            true,
        )
        .await
        .unwrap();
    root.certificate.chain[0].clone()
}

pub(crate) async fn make_request(deployment: &Deployment, tenant: &Tenant, body: Value) -> Value {
    let (status, made) = deployment
        .admin(tenant, Method::POST, "/requests", Some(body))
        .await;
    assert_eq!(status, 201, "{made}");
    made
}

pub(crate) async fn session(deployment: &Deployment, tenant: &Tenant, made: &Value) -> Value {
    let id = made["session_id"].as_str().unwrap();
    let (status, session) = deployment
        .admin(tenant, Method::GET, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(status, 200, "{session}");
    session
}

/// The wallet fetches the Request Object of `made` once and verifies it.
async fn fetch(made: &Value, verifier: &RequestObjectVerifier) -> AuthorizationRequest {
    let uri = url::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: BTreeMap<String, String> = uri.query_pairs().into_owned().collect();
    let request_uri = plain(&pairs["request_uri"]);
    let response = http().get(&request_uri).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/oauth-authz-req+jwt"
    );
    let jwt = response.text().await.unwrap();
    let request = verifier
        .verify(&jwt, Some(&pairs["client_id"]), None)
        .await
        .unwrap();
    // The request object is served once.
    let again = http().get(&request_uri).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let error: Value = again.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request_uri");
    request
}

/// A request passed by value (`redirect_uri:`), as the wallet reads it.
pub(crate) fn by_value(made: &Value) -> AuthorizationRequest {
    let uri = url::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    AuthorizationRequest::from_query_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .unwrap()
}

pub(crate) async fn post(request: &AuthorizationRequest, body: String) -> (u16, Value) {
    let response = http()
        .post(plain(request.response_uri.as_ref().unwrap().as_str()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_presents_and_the_refusals_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    wallet_flow(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_presents_and_the_refusals_on_postgres() {
    let deployment = Deployment::postgres().await;
    wallet_flow(&deployment).await;
    deployment.close().await;
}

async fn wallet_flow(deployment: &Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;
    let issuer = pki("issuer");
    let verifier_root = provision(deployment, &acme, &issuer).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dids = Resolver::builder()
        .method(Arc::new(DidJwk))
        .build()
        .unwrap();
    let wallet = RequestObjectVerifier::new([verifier_root], Arc::clone(&clock))
        .unwrap()
        .with_did_resolver(Arc::new(DidKeyResolver::new(Arc::new(dids))));

    // x509_san_dns and direct_post.
    let made = make_request(
        deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "x509_san_dns",
               "correlation_id": "checkout-1"}),
    )
    .await;
    let request = fetch(&made, &wallet).await;
    assert_eq!(
        request.client_id.as_ref().unwrap().to_string(),
        "x509_san_dns:localhost"
    );
    assert_eq!(
        session(deployment, &acme, &made).await["status"],
        "retrieved"
    );
    let client_id = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &client_id,
        &request.nonce,
    )
    .await;
    let body = answer(presentation, request.state.clone()).to_form();
    let (status, reply) = post(&request, body.clone()).await;
    assert_eq!(status, 200, "{reply}");
    let verified = session(deployment, &acme, &made).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    let claims = &verified["claims"]["identity"][0];
    assert_eq!(claims["given_name"], "Erika", "{verified}");
    assert_eq!(claims["family_name"], "Mustermann", "{verified}");
    assert_eq!(claims["vct"], VCT, "{verified}");

    // The same response again is refused, and the session stays verified.
    let (status, reply) = post(&request, body).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "invalid_request");
    assert_eq!(
        session(deployment, &acme, &made).await["status"],
        "verified"
    );

    // decentralized_identifier and direct_post.jwt to the verifier's KMS key.
    let made = make_request(
        deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "decentralized_identifier",
               "response_mode": "direct_post.jwt"}),
    )
    .await;
    let request = fetch(&made, &wallet).await;
    let client_id = request.client_id.as_ref().unwrap().to_string();
    assert!(
        client_id.starts_with("decentralized_identifier:did:jwk:"),
        "{client_id}"
    );
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &client_id,
        &request.nonce,
    )
    .await;
    let response = answer(presentation, request.state.clone());
    // In the clear where encryption was asked: refused, and the session is spent.
    let (status, reply) = post(&request, response.to_form()).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(session(deployment, &acme, &made).await["status"], "failed");

    let made = make_request(
        deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "decentralized_identifier",
               "response_mode": "direct_post.jwt"}),
    )
    .await;
    let request = fetch(&made, &wallet).await;
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &client_id,
        &request.nonce,
    )
    .await;
    // Encrypted to a key that is not the verifier's: refused before any session is touched.
    let stranger = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let mut jwk = serde_json::to_value(stranger.public_jwk()).unwrap();
    jwk["kid"] = json!("stranger");
    jwk["alg"] = json!("ECDH-ES");
    let mut misdirected = request.clone();
    misdirected.client_metadata.as_mut().unwrap().jwks = Some(json!({ "keys": [jwk] }));
    let body = answer(presentation.clone(), request.state.clone())
        .to_encrypted_form(&misdirected)
        .unwrap();
    let (status, reply) = post(&request, body).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "invalid_request");
    assert_eq!(
        session(deployment, &acme, &made).await["status"],
        "retrieved"
    );

    let body = answer(presentation, request.state.clone())
        .to_encrypted_form(&request)
        .unwrap();
    let (status, reply) = post(&request, body).await;
    assert_eq!(status, 200, "{reply}");
    let verified = session(deployment, &acme, &made).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");

    // x509_hash, fetched with request_uri_method=post: the wallet_nonce is signed in.
    let made = make_request(
        deployment,
        &acme,
        json!({"dcql_query": identity_query(), "client_id_prefix": "x509_hash"}),
    )
    .await;
    let uri = url::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: BTreeMap<String, String> = uri.query_pairs().into_owned().collect();
    assert!(pairs["client_id"].starts_with("x509_hash:"), "{pairs:?}");
    let response = http()
        .post(plain(&pairs["request_uri"]))
        .form(&[("wallet_nonce", "n-0S6_WzA2Mj"), ("wallet_metadata", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwt = response.text().await.unwrap();
    assert!(
        wallet
            .verify(&jwt, Some(&pairs["client_id"]), Some("another-nonce"))
            .await
            .is_err()
    );
    let request = wallet
        .verify(&jwt, Some(&pairs["client_id"]), Some("n-0S6_WzA2Mj"))
        .await
        .unwrap();
    let client_id = request.client_id.as_ref().unwrap().to_string();
    let (status, reply) = present_and_post(
        &request,
        &credential,
        &holder,
        &["given_name", "family_name"],
        &client_id,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        session(deployment, &acme, &made).await["status"],
        "verified"
    );

    // Refusals, on requests passed by value (redirect_uri:).
    let by_value_request =
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"});

    // A wrong nonce.
    let made = make_request(deployment, &acme, by_value_request.clone()).await;
    let request = by_value(&made);
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        "wrong",
    )
    .await;
    let (status, reply) = post(
        &request,
        answer(presentation, request.state.clone()).to_form(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "invalid_request");
    let failed = session(deployment, &acme, &made).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["error"], "invalid_request", "{failed}");
    assert!(failed.get("claims").is_none(), "{failed}");

    // A response sent to another tenant's response_uri: unknown there, still open here.
    let made = make_request(deployment, &acme, by_value_request.clone()).await;
    let request = by_value(&made);
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        &request.nonce,
    )
    .await;
    let response = http()
        .post(format!("{}/response", globex.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(answer(presentation, request.state.clone()).to_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(session(deployment, &acme, &made).await["status"], "created");

    // A required claim left out.
    let (status, reply) =
        present_and_post(&request, &credential, &holder, &["given_name"], &aud).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(session(deployment, &acme, &made).await["status"], "failed");

    // An issuer whose chain ends at no trust anchor of the tenant.
    let stranger = issue(&pki("stranger"), &holder).await;
    let made = make_request(deployment, &acme, by_value_request).await;
    let request = by_value(&made);
    let (status, reply) = present_and_post(
        &request,
        &stranger,
        &holder,
        &["given_name", "family_name"],
        &aud,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(session(deployment, &acme, &made).await["status"], "failed");

    // Not a form, and no state.
    let (status, reply) = post(&request, "vp_token=%7B%7D".to_owned()).await;
    assert_eq!(status, 400, "{reply}");
    let response = http()
        .post(format!("{}/response", acme.base))
        .json(&json!({"vp_token": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
