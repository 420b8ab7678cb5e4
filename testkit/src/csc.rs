//! A remote signing service speaking the Cloud Signature Consortium API v2, in memory, on
//! `127.0.0.1`: the JSON wire shape of the `/csc/v2` methods a server-side signer uses, and the
//! OAuth 2 token endpoint of its client credentials flow.
//!
//! - `POST /oauth2/token` (form: `grant_type=client_credentials`, `client_id`,
//!   `client_secret`, `scope=service`) → `{"access_token", "token_type": "Bearer",
//!   "expires_in": 3600}`; 401 `{"error": "invalid_client"}` otherwise.
//! - `POST /csc/v2/info` (no authorization) → `specs`, `name`, `authType: ["oauth2client"]`,
//!   `oauth2`, `methods`.
//! - Every other method needs a bearer token from the token endpoint (else 401
//!   `invalid_token` with `WWW-Authenticate`) and a JSON body:
//!   - `credentials/list` `{userID}` → `{credentialIDs}`;
//!   - `credentials/info` `{credentialID, certificates: none|single|chain, certInfo,
//!     authInfo}` → `{key: {status, algo, len, curve?}, cert: {status, certificates,
//!     issuerDN, serialNumber, subjectDN, validFrom, validTo}, auth: {mode}, SCAL: "2",
//!     multisign: 1}`;
//!   - `credentials/authorize` `{credentialID, numSignatures, hashes, hashAlgorithmOID}` →
//!     `{SAD, expiresIn}`, the SAD bound to the hashes (SCAL 2) and good for
//!     `numSignatures` signatures;
//!   - `signatures/signHash` `{credentialID, SAD, hashes, hashAlgorithmOID, signAlgo}` →
//!     `{signatures}`: ECDSA signatures DER-encoded, RSA PKCS#1 v1.5.
//!
//! Refusals are 400 `{"error": "invalid_request", "error_description"}` with the spec's
//! descriptions (`Invalid parameter credentialID`, `Invalid parameter SAD`, ...).
//! [`CscServer::throttle`] makes the next requests answer 429 with `Retry-After: 0`.
//! Credentials are made with [`CscServer::add_credential`]: a key and an end-entity
//! certificate issued by the server's own CA.

// The handlers' helpers return the error response itself, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{Digest, SHA256, SHA384};
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::bearer::{self, Clients, Traffic};

const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
const SHA384_OID: &str = "2.16.840.1.101.3.4.2.2";
const ECDSA_SHA256_OID: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384_OID: &str = "1.2.840.10045.4.3.3";
const RSA_SHA256_OID: &str = "1.2.840.113549.1.1.11";
const RSA_OID: &str = "1.2.840.113549.1.1.1";

/// The type of a credential's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CscKey {
    /// ECDSA on P-256 (`ecdsa-with-SHA256`).
    P256,
    /// ECDSA on P-384 (`ecdsa-with-SHA384`).
    P384,
    /// RSA 2048 (`sha256WithRSAEncryption`, `rsaEncryption`).
    Rsa2048,
}

enum Pair {
    Ec(EcdsaKeyPair, &'static aws_lc_rs::digest::Algorithm),
    Rsa(RsaKeyPair),
}

struct Credential {
    user: String,
    kind: CscKey,
    pair: Pair,
    certificates: Vec<Vec<u8>>,
    enabled: bool,
    auth_mode: &'static str,
}

struct Sad {
    credential_id: String,
    hashes: Vec<String>,
}

#[derive(Default)]
struct ServerState {
    clients: Clients,
    credentials: BTreeMap<String, Credential>,
    sads: HashMap<String, Sad>,
    calls: BTreeMap<String, usize>,
}

struct Shared {
    state: Mutex<ServerState>,
    traffic: Traffic,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

type AppState = Arc<Shared>;

/// A running CSC API v2 service, stopped on drop.
pub struct CscServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for CscServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CscServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl CscServer {
    /// Starts a service with no clients and no credentials.
    ///
    /// # Panics
    /// When no loopback port can be bound or the CA cannot be made.
    pub async fn start() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "EDK test qualified CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).expect("CA certificate");
        let shared = Arc::new(Shared {
            state: Mutex::new(ServerState::default()),
            traffic: Traffic::default(),
            ca,
        });
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .route("/csc/v2/info", post(info))
            .route("/csc/v2/{group}/{method}", post(method))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The CSC API base URL, `http://127.0.0.1:<port>/csc/v2`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/csc/v2", self.addr)
    }

    /// The token endpoint, `http://127.0.0.1:<port>/oauth2/token`.
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }

    /// Registers an OAuth 2 client and its secret.
    pub fn add_client(&self, client_id: &str, secret: &str) {
        lock(&self.shared).clients.add(client_id, secret);
    }

    /// Issues a credential to `user`: a new key of `kind` and a certificate for it from the
    /// server's CA. Returns the credential id.
    ///
    /// # Panics
    /// When key or certificate generation fails.
    pub fn add_credential(&self, user: &str, kind: CscKey) -> String {
        let key = match kind {
            CscKey::P256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            CscKey::P384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            CscKey::Rsa2048 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
        }
        .expect("a credential key");
        let pkcs8 = key.serialize_der();
        let pair = match kind {
            CscKey::P256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
                    .expect("the P-256 key"),
                &SHA256,
            ),
            CscKey::P384 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &pkcs8)
                    .expect("the P-384 key"),
                &SHA384,
            ),
            CscKey::Rsa2048 => Pair::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).expect("the RSA key")),
        };
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{user} seal"));
        let certificate = params
            .signed_by(&key, &*self.shared.ca)
            .expect("the end-entity certificate");
        let id = uuid::Uuid::new_v4().to_string();
        lock(&self.shared).credentials.insert(
            id.clone(),
            Credential {
                user: user.to_owned(),
                kind,
                pair,
                certificates: vec![certificate.der().to_vec(), self.shared.ca.der().to_vec()],
                enabled: true,
                auth_mode: "implicit",
            },
        );
        id
    }

    /// Disables a credential's key (`key.status: disabled`; signing is refused).
    pub fn disable(&self, credential_id: &str) {
        if let Some(credential) = lock(&self.shared).credentials.get_mut(credential_id) {
            credential.enabled = false;
        }
    }

    /// Makes a credential need explicit authorization (a PIN: `auth.mode: explicit`).
    pub fn require_pin(&self, credential_id: &str) {
        if let Some(credential) = lock(&self.shared).credentials.get_mut(credential_id) {
            credential.auth_mode = "explicit";
        }
    }

    /// Removes a credential (the service's operator deleted it).
    pub fn remove(&self, credential_id: &str) {
        lock(&self.shared).credentials.remove(credential_id);
    }

    /// Revokes every token issued so far.
    pub fn revoke_tokens(&self) {
        lock(&self.shared).clients.revoke_all();
    }

    /// Makes the next `requests` requests answer 429.
    pub fn throttle(&self, requests: usize) {
        self.shared.traffic.throttle(requests);
    }

    /// How many requests the server received.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.shared.traffic.requests()
    }

    /// How many admitted calls each method received, by path below `/csc/v2/` (e.g.
    /// `credentials/info`).
    #[must_use]
    pub fn calls(&self, method: &str) -> usize {
        lock(&self.shared)
            .calls
            .get(method)
            .copied()
            .unwrap_or_default()
    }
}

impl Drop for CscServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, ServerState> {
    shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn invalid(description: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// Counts the request and throttles.
fn count(shared: &Shared) -> Result<(), Response> {
    if shared.traffic.arrive() {
        return Err(bearer::retry_now(error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many requests",
        )));
    }
    Ok(())
}

async fn token(State(shared): State<AppState>, body: String) -> Response {
    if let Err(response) = count(&shared) {
        return response;
    }
    let form = bearer::form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let mut state = lock(&shared);
    if field("grant_type") != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type is not supported",
        );
    }
    if !state
        .clients
        .authenticates(field("client_id"), field("client_secret"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if !matches!(field("scope"), "" | "service") {
        return error(StatusCode::BAD_REQUEST, "invalid_scope", "Invalid scope");
    }
    let token = state.clients.issue("");
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600 }))
        .into_response()
}

async fn info(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(response) = count(&shared) {
        return response;
    }
    let host = headers
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(json!({
        "specs": "2.0.0.2",
        "name": "EDK test remote signing service",
        "logo": format!("http://{host}/logo.png"),
        "region": "EU",
        "lang": "en-US",
        "description": "An in-memory CSC API v2 service for tests",
        "authType": ["oauth2client"],
        "oauth2": format!("http://{host}"),
        "methods": ["credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"],
    }))
    .into_response()
}

async fn method(
    State(shared): State<AppState>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(response) = count(&shared) {
        return response;
    }
    let mut state = lock(&shared);
    if !state.clients.admits(&headers) {
        return bearer::challenge(
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is missing, expired or revoked",
            ),
            "Bearer error=\"invalid_token\"",
        );
    }
    let method = format!("{group}/{name}");
    *state.calls.entry(method.clone()).or_default() += 1;
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return invalid("The request body is not JSON");
    };
    let outcome = match method.as_str() {
        "credentials/list" => list(&state, &body),
        "credentials/info" => credential_info(&state, &body),
        "credentials/authorize" => authorize(&mut state, &body),
        "signatures/signHash" => sign_hash(&mut state, &body),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "invalid_request",
                "The method is not supported",
            );
        }
    };
    match outcome {
        Ok(answer) => Json(answer).into_response(),
        Err(response) => response,
    }
}

fn string<'a>(body: &'a Value, name: &str, kind: &str) -> Result<&'a str, Response> {
    body.get(name).and_then(Value::as_str).ok_or_else(|| {
        invalid(&format!(
            "Missing (or invalid type) {kind} parameter {name}"
        ))
    })
}

fn credential<'a>(
    state: &'a ServerState,
    body: &Value,
) -> Result<(&'a str, &'a Credential), Response> {
    let id = string(body, "credentialID", "string")?;
    state
        .credentials
        .get_key_value(id)
        .map(|(id, credential)| (id.as_str(), credential))
        .ok_or_else(|| invalid("Invalid parameter credentialID"))
}

fn hashes(body: &Value) -> Result<Vec<String>, Response> {
    let list = body
        .get("hashes")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Missing (or invalid type) array parameter hashes"))?;
    list.iter()
        .map(|hash| {
            hash.as_str()
                .filter(|hash| STANDARD.decode(hash).is_ok())
                .map(str::to_owned)
                .ok_or_else(|| invalid("Invalid Base64 hashes string parameter"))
        })
        .collect()
}

fn list(state: &ServerState, body: &Value) -> Result<Value, Response> {
    let user = string(body, "userID", "string")?;
    let ids: Vec<&String> = state
        .credentials
        .iter()
        .filter(|(_, credential)| credential.user == user)
        .map(|(id, _)| id)
        .collect();
    Ok(json!({ "credentialIDs": ids }))
}

fn credential_info(state: &ServerState, body: &Value) -> Result<Value, Response> {
    let (_, credential) = credential(state, body)?;
    let (algo, len, curve) = match credential.kind {
        CscKey::P256 => (vec![ECDSA_SHA256_OID], 256, Some("1.2.840.10045.3.1.7")),
        CscKey::P384 => (vec![ECDSA_SHA384_OID], 384, Some("1.3.132.0.34")),
        CscKey::Rsa2048 => (vec![RSA_SHA256_OID, RSA_OID], 2048, None),
    };
    let mut key = json!({
        "status": if credential.enabled { "enabled" } else { "disabled" },
        "algo": algo,
        "len": len,
    });
    if let Some(curve) = curve {
        key["curve"] = json!(curve);
    }
    let certificates: Vec<String> = match body
        .get("certificates")
        .and_then(Value::as_str)
        .unwrap_or("single")
    {
        "none" => Vec::new(),
        "single" => credential
            .certificates
            .iter()
            .take(1)
            .map(|der| STANDARD.encode(der))
            .collect(),
        "chain" => credential
            .certificates
            .iter()
            .map(|der| STANDARD.encode(der))
            .collect(),
        _ => return Err(invalid("Invalid parameter certificates")),
    };
    let mut answer = json!({
        "description": format!("Qualified seal of {}", credential.user),
        "signatureQualifier": "eu_eidas_qeseal",
        "key": key,
        "cert": { "status": "valid", "certificates": certificates },
        "SCAL": "2",
        "multisign": 1,
        "lang": "en-US",
    });
    if body.get("certInfo").and_then(Value::as_bool) == Some(true) {
        answer["cert"]["issuerDN"] = json!("CN=EDK test qualified CA");
        answer["cert"]["subjectDN"] = json!(format!("CN={} seal", credential.user));
        answer["cert"]["serialNumber"] = json!("01");
        answer["cert"]["validFrom"] = json!("20250101000000Z");
        answer["cert"]["validTo"] = json!("40960101000000Z");
    }
    if body.get("authInfo").and_then(Value::as_bool) == Some(true) {
        answer["auth"] = match credential.auth_mode {
            "explicit" => json!({
                "mode": "explicit",
                "expression": "PIN",
                "objects": [{ "type": "Password", "id": "PIN", "format": "N", "label": "PIN" }],
            }),
            mode => json!({ "mode": mode }),
        };
    }
    Ok(answer)
}

fn authorize(state: &mut ServerState, body: &Value) -> Result<Value, Response> {
    let (id, credential) = credential(state, body)?;
    let count = body
        .get("numSignatures")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("Missing (or invalid type) integer parameter numSignatures"))?;
    if count == 0 {
        return Err(invalid("Invalid parameter numSignatures"));
    }
    if count > 1 {
        return Err(invalid("Numbers of signatures is too high"));
    }
    let hashes = hashes(body)?;
    if u64::try_from(hashes.len()).ok() != Some(count) {
        return Err(invalid("Numbers of signatures and hashes do not match"));
    }
    string(body, "hashAlgorithmOID", "string")?;
    if credential.auth_mode == "explicit" && body.get("authData").is_none() {
        return Err(invalid(
            "Missing (or invalid type) array parameter authData",
        ));
    }
    let sad = uuid::Uuid::new_v4().simple().to_string();
    let id = id.to_owned();
    state.sads.insert(
        sad.clone(),
        Sad {
            credential_id: id,
            hashes,
        },
    );
    Ok(json!({ "SAD": sad, "expiresIn": 300 }))
}

fn sign_hash(state: &mut ServerState, body: &Value) -> Result<Value, Response> {
    let id = credential(state, body)?.0.to_owned();
    let sad_value = string(body, "SAD", "string")?;
    let hashes = hashes(body)?;
    let hash_oid = body.get("hashAlgorithmOID").and_then(Value::as_str);
    let sign_algo = string(body, "signAlgo", "string")?;
    let Some(sad) = state.sads.remove(sad_value) else {
        return Err(invalid("Invalid parameter SAD"));
    };
    if sad.credential_id != id || hashes.is_empty() || hashes != sad.hashes {
        return Err(invalid("Invalid parameter SAD"));
    }
    let credential = state
        .credentials
        .get(&id)
        .ok_or_else(|| invalid("Invalid parameter credentialID"))?;
    if !credential.enabled {
        return Err(invalid("The signing key is disabled"));
    }
    let mut signatures = Vec::new();
    for hash in &hashes {
        let digest = STANDARD.decode(hash).unwrap_or_default();
        let signed = match (&credential.pair, sign_algo) {
            (Pair::Ec(pair, alg), ECDSA_SHA256_OID | ECDSA_SHA384_OID) => {
                let fits = (sign_algo == ECDSA_SHA256_OID) == std::ptr::eq(*alg, &SHA256);
                if !fits {
                    return Err(invalid("Invalid parameter signAlgo"));
                }
                Digest::import_less_safe(&digest, alg)
                    .ok()
                    .and_then(|digest| pair.sign_digest(&digest).ok())
                    .map(|signature| signature.as_ref().to_vec())
            }
            (Pair::Rsa(pair), RSA_SHA256_OID | RSA_OID) => {
                if sign_algo == RSA_OID && hash_oid != Some(SHA256_OID) {
                    return Err(invalid("Invalid parameter hashAlgorithmOID"));
                }
                let mut out = vec![0; pair.public_modulus_len()];
                Digest::import_less_safe(&digest, &SHA256)
                    .ok()
                    .and_then(|digest| {
                        pair.sign_digest(&signature::RSA_PKCS1_SHA256, &digest, &mut out)
                            .ok()
                    })
                    .map(|()| out)
            }
            _ => return Err(invalid("Invalid parameter signAlgo")),
        };
        let expected_oid = match credential.kind {
            CscKey::P384 => SHA384_OID,
            _ => SHA256_OID,
        };
        if hash_oid.is_some_and(|oid| oid != expected_oid) {
            return Err(invalid("Invalid parameter hashAlgorithmOID"));
        }
        match signed {
            Some(signature) => signatures.push(STANDARD.encode(signature)),
            None => return Err(invalid("Invalid digest value length")),
        }
    }
    Ok(json!({ "signatures": signatures }))
}
