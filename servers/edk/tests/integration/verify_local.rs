//! EDK's own issuer and verifier end to end, in the all-in-one `edk` over loopback: the
//! `local` tenant's KMS certifies the issuer's signing key under a root the tenant's
//! verifier trusts; the issuer issues an SD-JWT VC with `x5c` and a status (suspension
//! list); the wallet presents it to the verifier (verified); the issuer suspends it through
//! its admin API and publishes the list, and once the verifier's cached copy lapses the next
//! presentation fails as suspended; reinstated it verifies again; revoked it fails as
//! revoked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey};
use edk_core::sd_jwt::{ClaimPath, KeyBindingClaims, SdJwt};
use edk_core::{Clock as _, FixedClock, Limits};
use edk_oid4vp::{AuthorizationRequest, AuthorizationResponse};
use edk_server::{TestServer, spawn_server};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const VCT: &str = "https://credentials.example.com/identity";

struct Local {
    server: TestServer,
    edk: Edk,
    clock: Arc<FixedClock>,
    client: reqwest::Client,
    token: String,
    origin: String,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn start() -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let mut config = EdkConfig::default();
        // The local tenant's status lists are http URLs on localhost.
        config.verifier.dangerous_allow_http_status_lists = true;
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let edk = Box::pin(Edk::start(&config, &data, clock.clone(), &client))
            .await
            .unwrap();
        let token = edk.bootstrap_token().unwrap().to_owned();
        let server = spawn_server(edk.app()).await.unwrap();
        let port = server.addr().port();
        edk.bind_default_tenant(port).await.unwrap();
        Self {
            origin: format!("http://localhost:{port}"),
            server,
            edk,
            clock,
            client,
            token,
            _dir: dir,
        }
    }

    /// `method` on an admin API with the bootstrap token: the status and the JSON body.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.server.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.admin(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }
}

fn pem(der_b64: &str) -> String {
    let lines: Vec<String> = der_b64
        .as_bytes()
        .chunks(64)
        .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// The local tenant's issuer signs under a certificate its verifier trusts.
async fn certify(local: &Local) {
    for alias in ["issuer.ca-root", "issuer.credential-signing"] {
        local
            .post_ok(
                "/api/kms/v1/keys",
                json!({"alias": alias, "usage": "sign", "algorithm": "ES256"}),
            )
            .await;
    }
    let root = local
        .post_ok(
            "/api/kms/v1/certificates/issue",
            json!({"ca_key": "issuer.ca-root", "subject_key": "issuer.ca-root",
                   "profile": {"kind": "ca", "path_len": 0, "subject": "CN=Local issuers",
                               "validity_secs": 31_536_000}}),
        )
        .await;
    local
        .post_ok(
            "/api/kms/v1/certificates/issue",
            json!({"ca_key": "issuer.ca-root", "subject_key": "issuer.credential-signing",
                   "profile": {"kind": "leaf", "subject": "CN=Local issuer",
                               "validity_secs": 2_592_000}}),
        )
        .await;
    local
        .post_ok(
            "/api/kms/v1/certificate-chains/local-issuers",
            json!({"chain_pem": pem(root["x5c"][0].as_str().unwrap()), "trust_anchor": true}),
        )
        .await;
}

/// An identity credential from the local issuer, by the pre-authorized code flow.
async fn issue(local: &Local, holder: &SigningKey) -> SdJwt {
    let (status, stored) = local
        .admin(
            reqwest::Method::PUT,
            "/api/oid4vci/v1/configurations/identity",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt", "vct": VCT,
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
                },
                "settings": {"signing_key": "credential-signing", "key_identification": {"kind": "x5c"},
                             "status": {"purpose": "suspension"}},
            })),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let offer = local
        .post_ok(
            "/api/oid4vci/v1/offers",
            json!({"credential_configuration_ids": ["identity"], "correlation_id": "erika",
                   "claims": {"identity": {"given_name": "Erika", "family_name": "Mustermann"}}}),
        )
        .await;
    let grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
    let code = offer["credential_offer"]["grants"][grant]["pre-authorized_code"]
        .as_str()
        .unwrap();
    let origin = &local.origin;
    let token: Value = local
        .client
        .post(format!("{origin}/token"))
        .form(&[("grant_type", grant), ("pre-authorized_code", code)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nonce: Value = local
        .client
        .post(format!("{origin}/nonce"))
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
            json!({"aud": origin, "iat": local.clock.unix_seconds(), "nonce": nonce["c_nonce"]})
                .to_string()
        )
    );
    let signature = holder.sign_bytes(signing_input.as_bytes()).unwrap();
    let response = local
        .client
        .post(format!("{origin}/credential"))
        .bearer_auth(token["access_token"].as_str().unwrap())
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

/// Presents `credential` to a new request of the local verifier: the session afterwards.
async fn present(local: &Local, credential: &SdJwt, holder: &SigningKey) -> Value {
    let made = local
        .post_ok(
            "/api/oid4vp/v1/requests",
            json!({"client_id_prefix": "redirect_uri", "dcql_query": {"credentials": [{
                "id": "identity", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]},
                "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]}]}}),
        )
        .await;
    let uri = reqwest::Url::parse(made["authorization_request_uri"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    let request = AuthorizationRequest::from_query_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .unwrap();
    let claims = KeyBindingClaims::new(
        request.client_id.as_ref().unwrap().to_string(),
        &request.nonce,
        local.clock.unix_seconds(),
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
    local
        .client
        .post(request.response_uri.as_ref().unwrap().as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(answer.to_form())
        .send()
        .await
        .unwrap();
    let id = made["session_id"].as_str().unwrap();
    let (status, session) = local
        .admin(
            reqwest::Method::GET,
            &format!("/api/oid4vp/v1/sessions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{session}");
    session
}

/// Changes the credential's status at the issuer, publishes the list, and lets the
/// verifier's cached copy (kept for the list's `ttl`) lapse.
async fn set_status(local: &Local, action: &str) {
    local
        .post_ok(
            "/api/oid4vci/v1/credentials/status",
            json!({"action": action, "target": "correlation", "id": "erika"}),
        )
        .await;
    local
        .post_ok("/api/oid4vci/v1/status-lists/publish", json!({}))
        .await;
    local.clock.advance(Duration::from_secs(3_601));
}

fn reason(session: &Value) -> &str {
    session["error"]["error_description"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_verifier_checks_credentials_of_the_local_issuer_and_their_status() {
    let local = Local::start().await;
    certify(&local).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&local, &holder).await;
    let status = credential.unverified_payload().unwrap()["status"]["status_list"].clone();
    assert!(
        status["uri"].as_str().unwrap().starts_with(&local.origin),
        "{status}"
    );

    let verified = present(&local, &credential, &holder).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");

    set_status(&local, "suspend").await;
    let suspended = present(&local, &credential, &holder).await;
    assert_eq!(suspended["status"], "failed", "{suspended}");
    assert!(reason(&suspended).ends_with("is suspended"), "{suspended}");

    set_status(&local, "reinstate").await;
    let verified = present(&local, &credential, &holder).await;
    assert_eq!(verified["status"], "verified", "{verified}");

    set_status(&local, "revoke").await;
    let revoked = present(&local, &credential, &holder).await;
    assert_eq!(revoked["status"], "failed", "{revoked}");
    assert!(reason(&revoked).ends_with("is revoked"), "{revoked}");

    local.server.shutdown().await.unwrap();
    local.edk.shutdown().await;
}
