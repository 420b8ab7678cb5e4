//! The `verifier_attestation` client identifier prefix over HTTP: an attester made here
//! attests the tenant's request signing key, the operator sets the attestation, a request made
//! with the prefix carries it, and a wallet trusting the attester verifies the Request Object
//! with edk-oid4vp and presents an SD-JWT VC that the verifier verifies. Refused: requests
//! before an attestation is set or after it is removed, attestations that do not fit the
//! tenant, another tenant reading or using it, and a wallet that does not trust the attester.

use std::collections::BTreeMap;
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, Jwk, SigningKey, jws};
use edk_core::{Clock, SystemClock};
use edk_kms::KeyRef;
use edk_kms::Kms as _;
use edk_kms::kms::{Caller, KeyAlias};
use edk_oid4vp::{AuthorizationRequest, RequestObjectError, RequestObjectVerifier};
use edk_tenancy::TenantDirectory as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::{issue, make_request, pki, plain, present_and_post, provision, session};
use crate::support::{Deployment, Tenant, http, identity_query};

const ATTESTER: &str = "https://attester.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_attestation_requests_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    attestation_flow(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_attestation_requests_on_postgres() {
    let deployment = Deployment::postgres().await;
    attestation_flow(&deployment).await;
    deployment.close().await;
}

/// The public key of `tenant`'s `verifier.request-object-signing`.
async fn signing_key(deployment: &Deployment, tenant: &Tenant) -> Jwk {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let caller = Caller::new(context, "verifier");
    let alias = KeyAlias::new("verifier", "request-object-signing").unwrap();
    let mut jwk = deployment
        .kms
        .public_key(&caller, &KeyRef::Alias(alias))
        .await
        .unwrap();
    jwk.kid = None;
    jwk
}

/// An attestation of `key` for `sub`, signed by `attester` with `typ`, with `extra` claims
/// (replacing the defaults).
async fn attest(attester: &SigningKey, typ: &str, sub: &str, key: &Jwk, extra: Value) -> String {
    let now = SystemClock.unix_seconds();
    let mut claims = json!({
        "iss": ATTESTER, "sub": sub, "iat": now - 60, "exp": now + 3600,
        "cnf": { "jwk": key },
    });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    jws::sign(
        Header::new(Algorithm::Es256).with_typ(typ),
        &serde_json::to_vec(&claims).unwrap(),
        attester,
    )
    .await
    .unwrap()
}

/// A refused admin call: the status and the problem's `detail`.
async fn problem(
    deployment: &Deployment,
    tenant: &Tenant,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let (status, reply) = deployment.admin(tenant, method, path, body).await;
    assert!(reply["type"].is_string(), "{reply}");
    (
        status,
        reply["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The wallet fetches the Request Object of `made` and verifies it with `wallet`.
async fn fetch(
    made: &Value,
    wallet: &RequestObjectVerifier,
) -> Result<AuthorizationRequest, RequestObjectError> {
    let uri = url::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: BTreeMap<String, String> = uri.query_pairs().into_owned().collect();
    let response = http()
        .get(plain(&pairs["request_uri"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwt = response.text().await.unwrap();
    let header = jws::Jws::parse(&jwt, &Default::default()).unwrap();
    assert!(header.header().extra["jwt"].is_string());
    wallet.verify(&jwt, Some(&pairs["client_id"]), None).await
}

async fn attestation_flow(deployment: &Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;
    let issuer = pki("issuer");
    provision(deployment, &acme, &issuer).await;
    let key = signing_key(deployment, &acme).await;
    let attester = SigningKey::generate(Algorithm::Es256).unwrap();
    let request_body = json!({"dcql_query": identity_query(),
                              "client_id_prefix": "verifier_attestation"});

    // Without an attestation a verifier_attestation request cannot be made.
    let (status, detail) = problem(
        deployment,
        &acme,
        Method::POST,
        "/requests",
        Some(request_body.clone()),
    )
    .await;
    assert_eq!(status, 409, "{detail}");
    assert!(detail.contains("PUT /verifier-attestation"), "{detail}");
    let (status, _) = problem(
        deployment,
        &acme,
        Method::GET,
        "/verifier-attestation",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Attestations that do not fit the tenant are refused, each naming why.
    let other_key = SigningKey::generate(Algorithm::Es256).unwrap().public_jwk();
    let now = SystemClock.unix_seconds();
    let sub = acme.verifier.as_str();
    let cases = [
        (
            attest(
                &attester,
                "verifier-attestation+jwt",
                sub,
                &other_key,
                json!({}),
            )
            .await,
            "cnf.jwk",
        ),
        (
            attest(
                &attester,
                "verifier-attestation+jwt",
                &globex.verifier,
                &key,
                json!({}),
            )
            .await,
            "sub",
        ),
        (
            attest(
                &attester,
                "verifier-attestation+jwt",
                sub,
                &key,
                json!({"iat": now - 7200, "exp": now - 3600}),
            )
            .await,
            "expired",
        ),
        (attest(&attester, "JWT", sub, &key, json!({})).await, "typ"),
        (
            attest(
                &attester,
                "verifier-attestation+jwt",
                sub,
                &key,
                json!({"redirect_uris": ["https://elsewhere.example/response"]}),
            )
            .await,
            "redirect_uris",
        ),
        ("not a jwt".to_owned(), "malformed"),
    ];
    for (jwt, named) in cases {
        let (status, detail) = problem(
            deployment,
            &acme,
            Method::PUT,
            "/verifier-attestation",
            Some(json!({ "jwt": jwt })),
        )
        .await;
        assert_eq!(status, 400, "{named}: {detail}");
        assert!(detail.contains(named), "{named}: {detail}");
    }
    let (status, _) = problem(
        deployment,
        &acme,
        Method::GET,
        "/verifier-attestation",
        None,
    )
    .await;
    assert_eq!(status, 404, "a refused attestation is not stored");

    // The attestation of the tenant's key, restricted to its response_uri.
    let response_uri = format!("{}/response", acme.verifier);
    let jwt = attest(
        &attester,
        "verifier-attestation+jwt",
        sub,
        &key,
        json!({ "redirect_uris": [response_uri] }),
    )
    .await;
    let (status, set) = deployment
        .admin(
            &acme,
            Method::PUT,
            "/verifier-attestation",
            Some(json!({ "jwt": jwt })),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    let client_id = format!("verifier_attestation:{}", acme.verifier);
    assert_eq!(set["client_id"], client_id);
    assert_eq!(set["iss"], ATTESTER);
    let (status, read) = deployment
        .admin(&acme, Method::GET, "/verifier-attestation", None)
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["jwt"], jwt.as_str());
    assert_eq!(read["redirect_uris"], json!([response_uri]));

    // Another tenant neither sees it nor makes requests with it.
    let (status, _) = problem(
        deployment,
        &globex,
        Method::GET,
        "/verifier-attestation",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, detail) = problem(
        deployment,
        &globex,
        Method::POST,
        "/requests",
        Some(request_body.clone()),
    )
    .await;
    assert_eq!(status, 409, "{detail}");
    let (status, _) = problem(
        deployment,
        &globex,
        Method::DELETE,
        "/verifier-attestation",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // A wallet trusting the attester verifies the request and presents a credential.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wallet = RequestObjectVerifier::new(Vec::<Vec<u8>>::new(), Arc::clone(&clock))
        .unwrap()
        .with_trusted_attester(ATTESTER, [&attester.public_jwk()]);
    let made = make_request(deployment, &acme, request_body.clone()).await;
    let request = fetch(&made, &wallet).await.unwrap();
    assert_eq!(request.client_id.as_ref().unwrap().to_string(), client_id);
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let (status, reply) = present_and_post(
        &request,
        &credential,
        &holder,
        &["given_name", "family_name"],
        &client_id,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let verified = session(deployment, &acme, &made).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["client_id"], client_id);
    assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");

    // A wallet trusting another attester refuses the request.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let suspicious = RequestObjectVerifier::new(Vec::<Vec<u8>>::new(), clock)
        .unwrap()
        .with_trusted_attester(ATTESTER, [&stranger.public_jwk()]);
    let made = make_request(deployment, &acme, request_body.clone()).await;
    let err = fetch(&made, &suspicious).await.unwrap_err();
    assert!(
        matches!(err, RequestObjectError::UntrustedAttester { ref issuer, .. } if issuer == ATTESTER),
        "{err:?}"
    );
    assert_eq!(err.error_code(), "invalid_client");

    // Once removed, no more such requests.
    let (status, _) = deployment
        .admin(&acme, Method::DELETE, "/verifier-attestation", None)
        .await;
    assert_eq!(status, 204);
    let (status, detail) = problem(
        deployment,
        &acme,
        Method::POST,
        "/requests",
        Some(request_body),
    )
    .await;
    assert_eq!(status, 409, "{detail}");
    let (status, _) = problem(
        deployment,
        &acme,
        Method::DELETE,
        "/verifier-attestation",
        None,
    )
    .await;
    assert_eq!(status, 404);
}
