//! A tenant made through the platform API alone, then used: in the all-in-one `edk` over
//! loopback, an operator (first-run setup, then client credentials) onboards `acme` with its
//! authorization server, issuer and verifier under `localhost/acme` and its DIDs on
//! `acme.localhost`; with nothing else set up, its issuer issues an SD-JWT VC by a
//! pre-authorized offer (the wallet side written with the library crates) and its verifier
//! verifies the presentation.

use std::collections::BTreeMap;
use std::sync::Arc;

use edk::EdkConfig;
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::sd_jwt::{ClaimPath, KeyBindingClaims, SdJwt};
use edk_core::{Clock as _, Limits, SystemClock};
use edk_oid4vp::{AuthorizationRequest, AuthorizationResponse};
use edk_server::TrustedIssuer;
use serde_json::{Value, json};

use crate::support::Running;

/// The issuer of the tenant administrators' tokens the test mints.
const TENANT_ADMINS: &str = "https://tenant-admins.test";

/// A running `edk` that trusts the tenant administrators' tokens `admin_key` signs.
struct Deployment {
    running: Running,
    admin_key: SigningKey,
}

impl std::ops::Deref for Deployment {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.running
    }
}

impl Deployment {
    async fn start() -> Self {
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut config = EdkConfig::default();
        config.auth.issuers.push(TrustedIssuer::with_jwks(
            TENANT_ADMINS,
            JwkSet {
                keys: vec![admin_key.public_jwk()],
            },
        ));
        Self {
            running: Running::start(&config, Arc::new(SystemClock), true).await,
            admin_key,
        }
    }

    /// A tenant administrator's admin token for `tenant` with `scope`.
    async fn tenant_admin_token(&self, tenant: &str, scope: &str) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": TENANT_ADMINS, "aud": "edk-admin", "sub": "acme-admin",
            "tenant": tenant, "scope": scope, "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_tenant_onboarded_through_the_platform_api_issues_and_verifies() {
    let deployment = Deployment::start().await;
    let port = deployment.server.addr().port();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // The operator: first-run setup, then a token by client credentials.
    let operator_token = deployment
        .operator_token("platform:tenants:read platform:tenants:write")
        .await;

    // The tenant, by one request.
    let binding = |service: &str| {
        json!({"service": service, "host": "localhost", "port": port, "path_prefix": "/acme",
               "dangerous_loopback_http": true})
    };
    let (status, tenant) = deployment
        .request(
            post.clone(),
            &deployment.url("/api/platform/v1/tenants"),
            Some(&operator_token),
            Some(json!({
                "slug": "acme", "display_name": "Acme",
                "bindings": [binding("as"), binding("issuer"), binding("verifier"),
                    {"service": "did", "host": "acme.localhost", "port": port, "path_prefix": "/"}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{tenant}");
    let id = tenant["id"].as_str().unwrap().to_owned();
    let (status, detail) = deployment
        .request(
            get.clone(),
            &deployment.url(&format!("/api/platform/v1/tenants/{id}")),
            Some(&operator_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let steps: Vec<(&str, &str)> = detail["onboarding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["step"].as_str().unwrap(),
                step["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("registry", "done"),
            ("kms_aliases", "done"),
            ("bindings", "done"),
            ("authorization_server", "done"),
            ("issuer_did", "done"),
            ("issuer_settings", "done"),
            ("verifier_settings", "done"),
        ]
    );
    assert_eq!(
        detail["issuer_did"],
        format!("did:web:acme.localhost%3A{port}:issuer")
    );
    assert_eq!(detail["credential_configuration"], "identity");

    let admin = deployment
        .tenant_admin_token(&id, "oid4vci:read oid4vci:write oid4vp:read oid4vp:write")
        .await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&deployment, &admin, &holder).await;
    let issuer = deployment.url("/acme");

    // The verifier: a request by the default client identifier prefix (its certificate
    // names the verifier's host) is made; the wallet answers one by `redirect_uri`.
    let (status, made) = deployment
        .request(
            post.clone(),
            &deployment.url("/api/oid4vp/v1/requests"),
            Some(&admin),
            Some(json!({"dcql_query": query(&issuer)})),
        )
        .await;
    assert_eq!(status, 201, "x509_san_dns needs no setup: {made}");
    let session = present(&deployment, &admin, &credential, &holder, &issuer).await;
    assert_eq!(session["status"], "verified", "{session}");
    assert_eq!(
        session["claims"]["identity"][0]["given_name"], "Erika",
        "{session}"
    );

    // The tenant's administrator reaches only its tenant: the default tenant's sessions
    // are not its.
    let (status, _) = deployment
        .request(
            get,
            &deployment.url(&format!(
                "/api/oid4vp/v1/sessions/{}",
                session["id"].as_str().unwrap_or_default()
            )),
            Some(deployment.edk.bootstrap_token().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 404);

    deployment.running.stop().await;
}

fn query(issuer: &str) -> Value {
    json!({"credentials": [{
        "id": "identity", "format": "dc+sd-jwt",
        "meta": {"vct_values": [format!("{issuer}/identity")]},
        "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]}]})
}

/// The wallet's side of the pre-authorized code flow, from the offer the tenant's
/// administrator makes: the SD-JWT VC issued to `holder`.
async fn issue(deployment: &Deployment, admin: &str, holder: &SigningKey) -> SdJwt {
    let (status, offer) = deployment
        .request(
            reqwest::Method::POST,
            &deployment.url("/api/oid4vci/v1/offers"),
            Some(admin),
            Some(json!({"credential_configuration_ids": ["identity"],
                        "claims": {"identity": {"given_name": "Erika", "family_name": "Mustermann"}}})),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    let offer = &offer["credential_offer"];
    let issuer = offer["credential_issuer"].as_str().unwrap();
    let port = deployment.server.addr().port();
    assert_eq!(issuer, format!("http://localhost:{port}/acme"));
    let client = &deployment.client;
    let fetch = |url: String| async move {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.json::<Value>().await.unwrap()
    };
    let metadata = fetch(deployment.url("/.well-known/openid-credential-issuer/acme")).await;
    let authorization_server = metadata["authorization_servers"][0]
        .as_str()
        .unwrap_or(issuer)
        .to_owned();
    let as_path = authorization_server
        .strip_prefix(&format!("http://localhost:{port}"))
        .unwrap()
        .to_owned();
    let as_metadata =
        fetch(deployment.url(&format!("/.well-known/oauth-authorization-server{as_path}"))).await;
    let grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
    let code = offer["grants"][grant]["pre-authorized_code"]
        .as_str()
        .unwrap();
    let token: Value = client
        .post(as_metadata["token_endpoint"].as_str().unwrap())
        .form(&[("grant_type", grant), ("pre-authorized_code", code)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().expect("an access token");
    let nonce: Value = client
        .post(metadata["nonce_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = Header::new(Algorithm::Es256)
        .with_typ("openid4vci-proof+jwt")
        .with_jwk(&holder.public_jwk());
    let signing_input = format!(
        "{}.{}",
        b64url_encode(serde_json::to_vec(&header).unwrap()),
        b64url_encode(
            json!({"aud": issuer, "iat": SystemClock.unix_seconds(), "nonce": nonce["c_nonce"]})
                .to_string()
        )
    );
    let signature = holder.sign_bytes(signing_input.as_bytes()).unwrap();
    let response = client
        .post(metadata["credential_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .json(&json!({
            "credential_identifier": token["authorization_details"][0]["credential_identifiers"][0],
            "proofs": {"jwt": [format!("{signing_input}.{}", b64url_encode(signature))]},
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    SdJwt::parse(
        body["credentials"][0]["credential"].as_str().unwrap(),
        &Limits::DEFAULT,
    )
    .unwrap()
}

/// Presents `credential` to a new request of the tenant's verifier: the session afterwards.
async fn present(
    deployment: &Deployment,
    admin: &str,
    credential: &SdJwt,
    holder: &SigningKey,
    issuer: &str,
) -> Value {
    let (status, made) = deployment
        .request(
            reqwest::Method::POST,
            &deployment.url("/api/oid4vp/v1/requests"),
            Some(admin),
            Some(json!({"client_id_prefix": "redirect_uri", "dcql_query": query(issuer)})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let uri = reqwest::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    let request = AuthorizationRequest::from_query_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .unwrap();
    let response_uri = request.response_uri.as_ref().unwrap().as_str().to_owned();
    assert_eq!(
        response_uri,
        deployment.url("/acme/response"),
        "the tenant's verifier answers"
    );
    let claims = KeyBindingClaims::new(
        request.client_id.as_ref().unwrap().to_string(),
        &request.nonce,
        SystemClock.unix_seconds(),
    );
    let presentation = credential
        .present(
            &[
                ClaimPath::new(["given_name"]),
                ClaimPath::new(["family_name"]),
            ],
            Some((&claims, holder)),
        )
        .await
        .unwrap()
        .to_string();
    let answer = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("identity".to_owned(), vec![Value::String(presentation)])]),
        state: request.state.clone(),
    };
    let response = deployment
        .client
        .post(&response_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(answer.to_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, session) = deployment
        .request(
            reqwest::Method::GET,
            &deployment.url(&format!(
                "/api/oid4vp/v1/sessions/{}",
                made["session_id"].as_str().unwrap()
            )),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{session}");
    json!({"id": made["session_id"], "status": session["status"], "claims": session["claims"],
           "error": session["error"]})
}
