//! EDK's own issuer and verifier end to end, in the all-in-one `edk` over loopback: the
//! `local` tenant's KMS certifies the issuer's signing key under a root the tenant's
//! verifier trusts; the issuer issues an SD-JWT VC with `x5c` and a status (suspension
//! list); the wallet presents it to the verifier (verified); the issuer suspends it through
//! its admin API and publishes the list, and once the verifier's cached copy lapses the next
//! presentation fails as suspended; reinstated it verifies again; revoked it fails as
//! revoked. Likewise an mDL signed by a document signer under the tenant's IACA, presented as
//! a `DeviceResponse` made with edk-mdoc's holder side over the OpenID4VP session transcript.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edk::EdkConfig;
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey};
use edk_core::sd_jwt::{ClaimPath, KeyBindingClaims, SdJwt};
use edk_core::{Clock as _, FixedClock, Limits};
use edk_mdoc::{DeviceResponse, IssuerSigned};
use edk_oid4vp::{AuthorizationRequest, AuthorizationResponse};
use serde_json::{Value, json};

use crate::support::Running;

const NOW: i64 = 1_800_000_000;
const VCT: &str = "https://credentials.example.com/identity";

/// The running `edk` with its local tenant bound, on a fixed clock.
struct Local {
    running: Running,
    clock: Arc<FixedClock>,
    origin: String,
}

impl std::ops::Deref for Local {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.running
    }
}

impl Local {
    async fn start() -> Self {
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let mut config = EdkConfig::default();
        // The local tenant's status lists are http URLs on localhost.
        config.verifier.dangerous_allow_http_status_lists = true;
        let running = Running::start(&config, clock.clone(), true).await;
        Self {
            origin: running.url(""),
            running,
            clock,
        }
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
    let credential = redeem(
        local,
        "identity",
        json!({"given_name": "Erika", "family_name": "Mustermann"}),
        holder,
    )
    .await;
    SdJwt::parse(&credential, &Limits::DEFAULT).unwrap()
}

/// Redeems an offer of `configuration` with `claims` and asks for the credential with a
/// proof of `holder`: the credential as the issuer answered it.
async fn redeem(local: &Local, configuration: &str, claims: Value, holder: &SigningKey) -> String {
    let offer = local
        .post_ok(
            "/api/oid4vci/v1/offers",
            json!({"credential_configuration_ids": [configuration],
                   "claims": {configuration: claims}}),
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
    body["credentials"][0]["credential"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new request of the local verifier for `dcql_query`, as the wallet reads it, and its
/// session id.
async fn request(local: &Local, dcql_query: Value) -> (AuthorizationRequest, String) {
    let made = local
        .post_ok(
            "/api/oid4vp/v1/requests",
            json!({"client_id_prefix": "redirect_uri", "dcql_query": dcql_query}),
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
    (request, made["session_id"].as_str().unwrap().to_owned())
}

/// Posts `vp_token` for `request` and reads the session afterwards.
async fn answer(
    local: &Local,
    request: &AuthorizationRequest,
    id: &str,
    entry: (&str, String),
) -> Value {
    let answer = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([(entry.0.to_owned(), vec![Value::String(entry.1)])]),
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

/// Presents `credential` to a new request of the local verifier: the session afterwards.
async fn present(local: &Local, credential: &SdJwt, holder: &SigningKey) -> Value {
    let (request, id) = request(
        local,
        json!({"credentials": [{
            "id": "identity", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]},
            "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]}]}),
    )
    .await;
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
    answer(local, &request, &id, ("identity", presentation)).await
}

/// Changes the credential's status at the issuer, publishes the list, and lets the
/// verifier's cached copy (kept for the list's `ttl`) lapse.
async fn set_status(local: &Local, credential_id: &str, action: &str) {
    local
        .post_ok(
            "/api/oid4vci/v1/credentials/status",
            json!({"action": action, "target": "credential", "id": credential_id}),
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

    let (_, listed) = local
        .admin(reqwest::Method::GET, "/api/oid4vci/v1/credentials", None)
        .await;
    let credential_id = listed["credentials"][0]["credential_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let verified = present(&local, &credential, &holder).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");

    set_status(&local, &credential_id, "suspend").await;
    let suspended = present(&local, &credential, &holder).await;
    assert_eq!(suspended["status"], "failed", "{suspended}");
    assert!(reason(&suspended).ends_with("is suspended"), "{suspended}");

    set_status(&local, &credential_id, "reinstate").await;
    let verified = present(&local, &credential, &holder).await;
    assert_eq!(verified["status"], "verified", "{verified}");

    set_status(&local, &credential_id, "revoke").await;
    let revoked = present(&local, &credential, &holder).await;
    assert_eq!(revoked["status"], "failed", "{revoked}");
    assert!(reason(&revoked).ends_with("is revoked"), "{revoked}");

    local.running.stop().await;
}

const MDL: &str = "org.iso.18013.5.1.mDL";
const MDL_NS: &str = "org.iso.18013.5.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_verifier_checks_an_mdl_of_the_local_issuer_against_its_iaca() {
    let local = Local::start().await;
    for alias in ["issuer.iaca", "issuer.mdoc-signing"] {
        local
            .post_ok(
                "/api/kms/v1/keys",
                json!({"alias": alias, "usage": "sign", "algorithm": "ES256"}),
            )
            .await;
    }
    let iaca = local
        .post_ok(
            "/api/kms/v1/certificates/issue",
            json!({"ca_key": "issuer.iaca", "subject_key": "issuer.iaca",
                   "profile": {"kind": "iaca", "subject": "C=DE,CN=Local IACA",
                               "validity_secs": 315_360_000}}),
        )
        .await;
    local
        .post_ok(
            "/api/kms/v1/certificates/issue",
            json!({"ca_key": "issuer.iaca", "subject_key": "issuer.mdoc-signing",
                   "profile": {"kind": "document_signer", "subject": "C=DE,CN=Local DS",
                               "validity_secs": 90 * 86_400}}),
        )
        .await;
    local
        .post_ok(
            "/api/kms/v1/certificate-chains/local-iaca",
            json!({"chain_pem": pem(iaca["x5c"][0].as_str().unwrap()), "trust_anchor": true}),
        )
        .await;
    let (status, stored) = local
        .admin(
            reqwest::Method::PUT,
            "/api/oid4vci/v1/configurations/mdl",
            Some(json!({
                "configuration": {
                    "format": "mso_mdoc", "doctype": MDL,
                    "cryptographic_binding_methods_supported": ["cose_key"],
                    "credential_signing_alg_values_supported": [-7],
                    "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
                },
                "settings": {"signing_key": "mdoc-signing"},
            })),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let device = SigningKey::generate(Algorithm::Es256).unwrap();
    let encoded = redeem(
        &local,
        "mdl",
        json!({MDL_NS: {"family_name": "Mustermann", "given_name": "Erika", "age_over_18": true}}),
        &device,
    )
    .await;
    let issued = IssuerSigned::from_base64url(&encoded, &edk_mdoc::Limits::DEFAULT).unwrap();

    let (request, id) = request(
        &local,
        json!({"credentials": [{"id": "mdl", "format": "mso_mdoc", "meta": {"doctype_value": MDL},
            "claims": [{"path": [MDL_NS, "family_name"]}, {"path": [MDL_NS, "age_over_18"]}]}]}),
    )
    .await;
    let transcript = edk_oid4vp::session_transcript(&request, None).unwrap();
    let document = edk_mdoc::present(
        &issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        &device,
        &transcript,
    )
    .await
    .unwrap();
    let device_response = b64url_encode(DeviceResponse::new(vec![document]).to_cbor().unwrap());
    let verified = answer(&local, &request, &id, ("mdl", device_response)).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    let claims = &verified["claims"]["mdl"][0][MDL_NS];
    assert_eq!(claims["family_name"], "Mustermann", "{verified}");
    assert_eq!(claims["age_over_18"], true, "{verified}");
    assert!(claims.get("given_name").is_none(), "{verified}");

    local.running.stop().await;
}
