//! Interoperability with npm `@openid4vc/openid4vp` (with npm `@sd-jwt/sd-jwt-vc` for SD-JWT
//! VCs) through `interop/node/openid4vp_wallet.mjs`: its wallet answers EDK's signed requests
//! and EDK validates the answers; EDK's wallet side answers its verifier's request and it reads
//! and verifies EDK's response.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use edk_core::encoding::b64url_encode;
use edk_core::jose::jwe::{DecryptingKey, KeyManagement};
use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
use edk_core::sd_jwt::{ClaimPath as SdPath, IssueOptions, KeyBindingClaims};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_oid4vp::{
    AuthorizationRequest, AuthorizationResponse, ClientMetadata, PresentationVerifier,
    RequestObjectKey, ResponseLimits, ResponseMode, SignOptions, ValidationError,
    sign_request_object,
};
use serde_json::{Value, json};

use crate::support::{NOW, clock, pid_query, pki, request};

fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/node");
    assert!(
        dir.join("node_modules/@openid4vc/openid4vp").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only",
        dir.display()
    );
    dir
}

/// Runs one step of `openid4vp_wallet.mjs`; its JSON answer, or its error as `Err`.
fn peer(input: &Value) -> Result<Value, Value> {
    let mut child = Command::new("node")
        .arg("openid4vp_wallet.mjs")
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "openid4vp_wallet.mjs printed no JSON:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    if output.status.success() {
        Ok(answer)
    } else {
        Err(answer)
    }
}

fn standard(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// A direct_post.jwt request of `client_id` with a fresh verifier encryption key.
fn encrypted(client_id: &str, key: &DecryptingKey) -> AuthorizationRequest {
    let mut request = request(client_id, pid_query());
    request.response_mode = ResponseMode::DirectPostJwt;
    let jwk = key
        .public_jwk()
        .with_kid("enc-1")
        .with_alg(KeyManagement::EcdhEs.name());
    request.client_metadata = Some(ClientMetadata {
        jwks: Some(json!({ "keys": [jwk] })),
        encrypted_response_enc_values_supported: Some(vec!["A128GCM".to_owned()]),
        ..ClientMetadata::default()
    });
    request.validate().unwrap();
    request
}

/// The npm wallet's answer to `token` (a Request Object of `client_id`), EDK's validation of
/// it, with the issuer key the npm side signs the SD-JWT VC with.
async fn npm_wallet_answers(
    client_id: &str,
    token: &str,
    anchor: &[u8],
    request: &AuthorizationRequest,
    key: &DecryptingKey,
    expected: &AuthorizationRequest,
) -> Result<BTreeMap<String, Vec<Value>>, ValidationError> {
    let issuer = SigningKey::generate(Algorithm::Es256).unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer_jwk = issuer.to_jwk().unwrap().with_kid("issuer-key-1");
    let answer = peer(&json!({
        "step": "wallet",
        "client_id": client_id,
        "request": token,
        "trust_anchor": standard(anchor),
        "issuer_jwk": issuer_jwk,
        "holder_jwk": holder.to_jwk().unwrap(),
        "iss": "https://issuer.example",
        "vct": "urn:eudi:pid:1",
        "claims": { "family_name": "Dent", "given_name": "Arthur", "birthdate": "1952-03-11" },
        "disclose": ["family_name", "birthdate"],
        "now": NOW,
    }))
    .unwrap_or_else(|err| panic!("the npm wallet refused: {err}"));
    assert_eq!(answer["client_id"], client_id);
    assert_eq!(answer["nonce"], request.nonce.as_str());
    let posted = &answer["posted"];
    assert_eq!(
        posted["url"].as_str(),
        request.response_uri.as_ref().map(url::Url::as_str)
    );
    assert_eq!(posted["content_type"], "application/x-www-form-urlencoded");
    let body = posted["body"].as_str().unwrap();
    let (response, used) = if request.response_mode == ResponseMode::DirectPostJwt {
        AuthorizationResponse::from_encrypted_form(
            body.as_bytes(),
            request,
            key,
            &ResponseLimits::DEFAULT,
        )
        .await
        .unwrap()
    } else {
        let response =
            AuthorizationResponse::from_form(body.as_bytes(), &ResponseLimits::DEFAULT).unwrap();
        (response, None)
    };
    assert_eq!(response.state(), request.state.as_deref());
    let resolver = JwksResolver::from_keys([&issuer.public_jwk().with_kid("issuer-key-1")]);
    PresentationVerifier::new(Arc::new(resolver), clock())
        .verify(expected, &response, used.as_ref())
        .await
        .map(|verified| verified.claims())
}

#[tokio::test]
async fn the_npm_wallet_answers_an_x509_san_dns_request_object_and_edk_validates_the_answer() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = "x509_san_dns:verifier.example";
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted(client_id, &key);
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let claims = npm_wallet_answers(client_id, &token, &pki.root, &request, &key, &request)
        .await
        .unwrap();
    assert_eq!(claims["pid"][0]["family_name"], "Dent");
    assert_eq!(claims["pid"][0]["birthdate"], "1952-03-11");
    assert!(claims["pid"][0].get("given_name").is_none());

    // The same kind of answer checked against a request with another nonce, or one asking
    // for a claim the npm wallet does not disclose, is refused.
    let mut other_nonce = request.clone();
    other_nonce.nonce = "another-nonce".to_owned();
    let err = npm_wallet_answers(client_id, &token, &pki.root, &request, &key, &other_nonce)
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::NonceMismatch(_)), "{err:?}");
    let mut more_claims = request.clone();
    more_claims.dcql_query = edk_oid4vp::DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": { "vct_values": ["urn:eudi:pid:1"] },
            "claims": [{ "path": ["family_name"] }, { "path": ["given_name"] }]
        }]
    }))
    .unwrap();
    let err = npm_wallet_answers(client_id, &token, &pki.root, &request, &key, &more_claims)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::Dcql(edk_oid4vp::PresentationError::ClaimMissing { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_npm_wallet_answers_a_did_jwk_request_object_and_edk_validates_the_answer() {
    let signer = SigningKey::generate(Algorithm::Es256).unwrap();
    let did = format!(
        "did:jwk:{}",
        b64url_encode(serde_json::to_vec(&signer.public_jwk()).unwrap())
    );
    let client_id = format!("decentralized_identifier:{did}");
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted(&client_id, &key);
    let token = sign_request_object(
        &request,
        &RequestObjectKey::Kid(format!("{did}#0")),
        &signer,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let unused = pki("unused", &["unused.example"]);
    let claims = npm_wallet_answers(&client_id, &token, &unused.root, &request, &key, &request)
        .await
        .unwrap();
    assert_eq!(claims["pid"][0]["family_name"], "Dent");
}

#[tokio::test]
async fn the_npm_wallet_refuses_a_request_object_from_an_untrusted_chain() {
    let pki = pki("verifier", &["verifier.example"]);
    let stranger = crate::support::pki("verifier", &["verifier.example"]);
    let client_id = "x509_san_dns:verifier.example";
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted(client_id, &key);
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(stranger.chain.clone()),
        &stranger.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let err = peer(&json!({
        "step": "wallet",
        "client_id": client_id,
        "request": token,
        "trust_anchor": standard(&pki.root),
        "issuer_jwk": SigningKey::generate(Algorithm::Es256).unwrap().to_jwk().unwrap(),
        "holder_jwk": SigningKey::generate(Algorithm::Es256).unwrap().to_jwk().unwrap(),
        "iss": "https://issuer.example",
        "vct": "urn:eudi:pid:1",
        "claims": { "family_name": "Dent" },
        "disclose": ["family_name"],
        "now": NOW,
    }))
    .unwrap_err();
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|message| message.contains("trust anchor")),
        "{err}"
    );
}

#[tokio::test]
async fn edk_answers_a_request_of_the_npm_verifier_and_the_npm_verifier_reads_the_response() {
    let response_uri = "https://verifier.example/response";
    let created = peer(&json!({
        "step": "verifier_request",
        "client_id": format!("redirect_uri:{response_uri}"),
        "response_uri": response_uri,
        "nonce": "npm-nonce-0123456789abcdef",
        "state": "npm-state-1",
        "dcql_query": pid_query().to_json(),
    }))
    .unwrap_or_else(|err| panic!("the npm verifier refused: {err}"));

    // EDK's wallet side reads the request from the URI the npm verifier made.
    let uri = url::Url::parse(created["authorization_request"].as_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    let request = AuthorizationRequest::from_query_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .unwrap();
    assert_eq!(request.response_mode, ResponseMode::DirectPostJwt);
    assert_eq!(request.nonce, "npm-nonce-0123456789abcdef");

    // EDK issues a PID and presents it with a KB-JWT to the request's client_id and nonce.
    let issuer = SigningKey::generate(Algorithm::Es256).unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = SdJwtVcBuilder::new("urn:eudi:pid:1")
        .issuer("https://issuer.example")
        .issued_at(NOW - 3600)
        .holder_key(&holder.public_jwk())
        .claim("family_name", "Dent")
        .claim("birthdate", "1952-03-11")
        .claim("given_name", "Arthur")
        .selectively_disclose(SdPath::new(["family_name"]))
        .selectively_disclose(SdPath::new(["birthdate"]))
        .selectively_disclose(SdPath::new(["given_name"]))
        .issue(&issuer, &IssueOptions::default())
        .await
        .unwrap();
    let client_id = request.client_id.as_ref().unwrap().to_string();
    let kb = KeyBindingClaims::new(client_id, request.nonce.clone(), NOW);
    let presentation = credential
        .present(
            &[SdPath::new(["family_name"]), SdPath::new(["birthdate"])],
            Some((&kb, &holder)),
        )
        .await
        .unwrap()
        .to_string();
    let response = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("pid".to_owned(), vec![Value::String(presentation)])]),
        state: request.state.clone(),
    };
    let jwe = response.encrypt(&request).unwrap();

    let read = peer(&json!({
        "step": "verifier_response",
        "payload": created["payload"],
        "private_jwk": created["private_jwk"],
        "response": jwe,
        "issuer_jwk": issuer.public_jwk(),
        "now": NOW,
    }))
    .unwrap_or_else(|err| panic!("the npm verifier refused EDK's response: {err}"));
    assert_eq!(read["state"], "npm-state-1");
    let claims = &read["presentations"]["pid"][0]["claims"];
    assert_eq!(claims["family_name"], "Dent");
    assert_eq!(claims["birthdate"], "1952-03-11");
    assert!(claims.get("given_name").is_none());
    assert_eq!(
        read["presentations"]["pid"][0]["kb"]["nonce"],
        "npm-nonce-0123456789abcdef"
    );
}

/// Runs `interop/node/mdoc.mjs` (npm `@animo-id/mdoc`) with `input`.
fn animo_mdoc(input: &Value) -> Value {
    let mut child = Command::new("node")
        .arg("mdoc.mjs")
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "mdoc.mjs failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn an_mdoc_device_response_built_by_npm_animo_mdoc_is_validated() {
    const MDL: &str = "org.iso.18013.5.1.mDL";
    const MDL_NS: &str = "org.iso.18013.5.1";
    let iaca = crate::support::mdoc_pki("mdl issuer");
    let device = SigningKey::generate(Algorithm::Es256).unwrap();
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let mut request = encrypted("x509_san_dns:verifier.example", &key);
    request.dcql_query = edk_oid4vp::DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "mdl",
            "format": "mso_mdoc",
            "meta": { "doctype_value": MDL },
            "claims": [
                { "path": [MDL_NS, "family_name"] },
                { "path": [MDL_NS, "birth_date"] }
            ]
        }]
    }))
    .unwrap();
    let encryption_key = AuthorizationResponse::encryption_key(&request).unwrap();
    let transcript = edk_oid4vp::session_transcript(&request, Some(&encryption_key)).unwrap();
    // Signed the day before NOW (2026-06-01), valid for thirty days.
    let answer = animo_mdoc(&json!({
        "action": "issue_and_present",
        "issuer_jwk": iaca.leaf.to_jwk().unwrap(),
        "issuer_certificate": hex(&iaca.chain[0]),
        "device_jwk": device.to_jwk().unwrap(),
        "doc_type": MDL,
        "namespace": MDL_NS,
        "claims": { "family_name": "Jones", "given_name": "Ava", "birth_date": "2007-03-25" },
        "dates": ["birth_date"],
        "signed": "2026-05-31T00:00:00Z",
        "valid_from": "2026-05-31T00:00:00Z",
        "valid_until": "2026-06-30T00:00:00Z",
        "disclose": [[MDL_NS, "family_name"], [MDL_NS, "birth_date"]],
        "session_transcript_bytes": hex(&transcript.to_bytes()),
    }));
    let device_response = b64url_encode(unhex(answer["device_response"].as_str().unwrap()));
    let response = AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([("mdl".to_owned(), vec![Value::String(device_response)])]),
        state: request.state.clone(),
    };
    let body = response.to_encrypted_form(&request).unwrap();
    let (read, used) = AuthorizationResponse::from_encrypted_form(
        body.as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap();
    let mdoc = edk_mdoc::Verifier::new([iaca.root.clone()], clock()).unwrap();
    let verifier = PresentationVerifier::new(Arc::new(JwksResolver::default()), clock())
        .with_mdoc_verifier(Arc::new(mdoc));
    let verified = verifier
        .verify(&request, &read, used.as_ref())
        .await
        .unwrap();
    let claims = &verified.claims()["mdl"][0][MDL_NS];
    assert_eq!(claims["family_name"], "Jones");
    assert!(claims.get("given_name").is_none());

    // The same device response for a request with another nonce is refused.
    let mut other = request.clone();
    other.nonce = "another-nonce".to_owned();
    let err = verifier
        .verify(&other, &read, used.as_ref())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::Mdoc {
                source: edk_mdoc::Error::InvalidDeviceSignature,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_npm_wallet_answers_an_x509_hash_request_object_and_edk_validates_the_answer() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = format!("x509_hash:{}", edk_oid4vp::x509_hash(&pki.chain[0]));
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted(&client_id, &key);
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let claims = npm_wallet_answers(&client_id, &token, &pki.root, &request, &key, &request)
        .await
        .unwrap();
    assert_eq!(claims["pid"][0]["birthdate"], "1952-03-11");
}

#[tokio::test]
async fn the_npm_wallet_answers_a_direct_post_request_object_and_edk_validates_the_answer() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = "x509_san_dns:verifier.example";
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = request(client_id, pid_query());
    assert_eq!(request.response_mode, ResponseMode::DirectPost);
    let token = sign_request_object(
        &request,
        &RequestObjectKey::X5c(pki.chain.clone()),
        &pki.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap();
    let claims = npm_wallet_answers(client_id, &token, &pki.root, &request, &key, &request)
        .await
        .unwrap();
    assert_eq!(claims["pid"][0]["family_name"], "Dent");
}

#[tokio::test]
async fn edk_verifies_a_request_object_the_npm_verifier_signed() {
    let pki = pki("verifier", &["verifier.example"]);
    let client_id = "x509_san_dns:verifier.example";
    let created = peer(&json!({
        "step": "verifier_signed_request",
        "client_id": client_id,
        "response_uri": "https://verifier.example/response",
        "request_uri": "https://verifier.example/request/1",
        "nonce": "npm-nonce-0123456789abcdef",
        "state": "npm-state-2",
        "dcql_query": pid_query().to_json(),
        "signer_jwk": pki.leaf.to_jwk().unwrap(),
        "x5c": pki.chain.iter().map(|der| standard(der)).collect::<Vec<_>>(),
        "now": NOW,
    }))
    .unwrap_or_else(|err| panic!("the npm verifier refused: {err}"));
    // The pointer the wallet is given: client_id and request_uri.
    let uri = url::Url::parse(created["authorization_request"].as_str().unwrap()).unwrap();
    let pairs: BTreeMap<String, String> = uri.query_pairs().into_owned().collect();
    assert_eq!(pairs["client_id"], client_id);
    assert_eq!(pairs["request_uri"], "https://verifier.example/request/1");

    let token = created["request_object"].as_str().unwrap();
    let wallet = edk_oid4vp::RequestObjectVerifier::new([pki.root.clone()], clock()).unwrap();
    let request = wallet
        .verify(token, Some(&pairs["client_id"]), None)
        .await
        .unwrap();
    assert_eq!(request.nonce, "npm-nonce-0123456789abcdef");
    assert_eq!(request.state.as_deref(), Some("npm-state-2"));
    assert_eq!(request.dcql_query, pid_query());

    // Under another outer client_id, or for a wallet that trusts another root, it is refused.
    let err = wallet
        .verify(token, Some("x509_san_dns:other.example"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, edk_oid4vp::RequestObjectError::ClientIdMismatch { .. }),
        "{err:?}"
    );
    let stranger = edk_oid4vp::RequestObjectVerifier::new(
        [crate::support::pki("other", &["other.example"]).root],
        clock(),
    )
    .unwrap();
    let err = stranger
        .verify(token, Some(client_id), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, edk_oid4vp::RequestObjectError::UntrustedChain(_)),
        "{err:?}"
    );
}
