//! A Vault Transit-compatible test server: the REST shape of HashiCorp Vault's Transit
//! secrets engine (and OpenBao's) for the key types EDK uses, in memory, on `127.0.0.1`.
//!
//! Routes (all JSON, errors as `{"errors": [...]}` with Vault's status codes; every request
//! needs `X-Vault-Token`, else 403 `permission denied`):
//!
//! - `POST /v1/auth/approle/login` `{role_id, secret_id}` → `{"auth": {"client_token",
//!   "lease_duration", "renewable"}}` (400 `invalid role or secret ID` otherwise; no token needed)
//! - `POST /v1/transit/keys/:name` `{type}` (`ecdsa-p256`, `ecdsa-p384`, `rsa-2048`,
//!   `ed25519`) → 204; 400 when it exists with another type
//! - `GET /v1/transit/keys/:name` → `{"data": {name, type, latest_version,
//!   min_encryption_version, min_decryption_version, deletion_allowed, exportable,
//!   supports_signing, keys: {"1": {public_key, name, creation_time}}}}`; 404 `{"errors": []}`
//! - `POST /v1/transit/keys/:name/rotate` → 204
//! - `POST /v1/transit/keys/:name/config` `{deletion_allowed?, min_encryption_version?}` → 204
//! - `DELETE /v1/transit/keys/:name` → 204; 400 `deletion is not allowed for this key`
//! - `POST /v1/transit/sign/:name` `{input, key_version?, hash_algorithm?,
//!   signature_algorithm?, salt_length?, marshaling_algorithm?}` → `{"data": {signature:
//!   "vault:vN:<base64>", key_version}}`; 400 `signing key not found`
//! - `POST /v1/transit/verify/:name` `{input, signature, ...}` → `{"data": {valid}}`
//!
//! Public keys are PEM SubjectPublicKeyInfo (ECDSA, RSA) or base64 of the raw key (Ed25519);
//! ECDSA signatures are DER (`marshaling_algorithm: asn1`, the default) or `r||s` (`jws`), RSA
//! is PKCS#1 v1.5 or PSS with the hash's length as salt (`salt_length: hash`; Vault's default
//! `auto` is refused here). [`VaultTransitServer::throttle`] makes the next requests answer
//! 429 with `Retry-After: 0`.

// The handlers' helpers return the error response itself, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The token [`VaultTransitServer`] accepts from the start.
pub const ROOT_TOKEN: &str = "edk-test-root-token";

enum Pair {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

struct TransitKey {
    key_type: String,
    versions: BTreeMap<u64, Pair>,
    min_encryption_version: u64,
    deletion_allowed: bool,
}

#[derive(Default)]
struct ServerState {
    keys: HashMap<String, TransitKey>,
    tokens: HashSet<String>,
    approles: HashMap<String, String>,
}

struct Shared {
    state: Mutex<ServerState>,
    throttle: AtomicUsize,
    requests: AtomicUsize,
}

type AppState = Arc<Shared>;

/// A running Transit-compatible server, stopped on drop.
#[derive(Debug)]
pub struct VaultTransitServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl VaultTransitServer {
    /// Starts a server that accepts [`ROOT_TOKEN`].
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let mut state = ServerState::default();
        state.tokens.insert(ROOT_TOKEN.to_owned());
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            throttle: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/auth/approle/login", post(login))
            .route(
                "/v1/transit/keys/{name}",
                get(read_key).post(create_key).delete(delete_key),
            )
            .route("/v1/transit/keys/{name}/rotate", post(rotate_key))
            .route("/v1/transit/keys/{name}/config", post(configure_key))
            .route("/v1/transit/sign/{name}", post(sign))
            .route("/v1/transit/verify/{name}", post(verify))
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

    /// The address, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn address(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers an AppRole `role_id` with its `secret_id`.
    pub fn add_approle(&self, role_id: &str, secret_id: &str) {
        self.lock()
            .approles
            .insert(role_id.to_owned(), secret_id.to_owned());
    }

    /// Revokes every token but [`ROOT_TOKEN`] (AppRole clients must log in again).
    pub fn revoke_tokens(&self) {
        let mut state = self.lock();
        state.tokens.retain(|token| token == ROOT_TOKEN);
    }

    /// Makes the next `requests` requests answer 429.
    pub fn throttle(&self, requests: usize) {
        self.shared.throttle.store(requests, Ordering::SeqCst);
    }

    /// How many requests the server received.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The names of the keys that exist.
    #[must_use]
    pub fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys.keys().cloned().collect();
        names.sort();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for VaultTransitServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, Json(json!({ "errors": messages }))).into_response()
}

/// Counts the request, applies throttling and checks the token.
fn admit(shared: &Shared, headers: &HeaderMap, token_needed: bool) -> Result<(), Response> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let throttled = shared
        .throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if throttled {
        let mut response = errors(
            StatusCode::TOO_MANY_REQUESTS,
            &["request rate limit exceeded"],
        );
        response
            .headers_mut()
            .insert("retry-after", "0".parse().expect("a header value"));
        return Err(response);
    }
    if !token_needed {
        return Ok(());
    }
    let token = headers
        .get("x-vault-token")
        .and_then(|value| value.to_str().ok());
    let state = shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match token {
        Some(token) if state.tokens.contains(token) => Ok(()),
        _ => Err(errors(StatusCode::FORBIDDEN, &["permission denied"])),
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, ServerState> {
    shared
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn login(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, false) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let role = body
        .get("role_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = body
        .get("secret_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut state = lock(&shared);
    if state.approles.get(role).map(String::as_str) != Some(secret) || secret.is_empty() {
        return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
    }
    let token = format!("hvs.{}", uuid::Uuid::new_v4().simple());
    state.tokens.insert(token.clone());
    Json(json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "auth": { "client_token": token, "lease_duration": 3600, "renewable": true, "policies": ["default"] }
    }))
    .into_response()
}

fn generate(key_type: &str) -> Option<Pair> {
    let rng = SystemRandom::new();
    Some(match key_type {
        "ecdsa-p256" => {
            Pair::P256(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).ok()?)
        }
        "ecdsa-p384" => {
            Pair::P384(EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_ASN1_SIGNING).ok()?)
        }
        "rsa-2048" => Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).ok()?),
        "ed25519" => {
            let _ = &rng;
            Pair::Ed25519(Ed25519KeyPair::generate().ok()?)
        }
        _ => return None,
    })
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn public_key(pair: &Pair) -> String {
    match pair {
        Pair::P256(pair) | Pair::P384(pair) => pem(pair
            .public_key()
            .as_der()
            .expect("an EC public key in DER")
            .as_ref()),
        Pair::Rsa(pair) => pem(pair
            .public_key()
            .as_der()
            .expect("an RSA public key in DER")
            .as_ref()),
        Pair::Ed25519(pair) => STANDARD.encode(pair.public_key().as_ref()),
    }
}

async fn create_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let key_type = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("aes256-gcm96")
        .to_owned();
    let mut state = lock(&shared);
    if let Some(existing) = state.keys.get(&name) {
        if existing.key_type == key_type {
            return StatusCode::NO_CONTENT.into_response();
        }
        return errors(
            StatusCode::BAD_REQUEST,
            &["existing key has a different type"],
        );
    }
    let Some(pair) = generate(&key_type) else {
        return errors(
            StatusCode::BAD_REQUEST,
            &[&format!("unknown key type {key_type}")],
        );
    };
    state.keys.insert(
        name,
        TransitKey {
            key_type,
            versions: BTreeMap::from([(1, pair)]),
            min_encryption_version: 0,
            deletion_allowed: false,
        },
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn read_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let state = lock(&shared);
    let Some(key) = state.keys.get(&name) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let versions: serde_json::Map<String, Value> = key
        .versions
        .iter()
        .map(|(version, pair)| {
            (
                version.to_string(),
                json!({
                    "creation_time": "2026-01-01T00:00:00Z",
                    "name": key.key_type,
                    "public_key": public_key(pair),
                }),
            )
        })
        .collect();
    Json(json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "data": {
            "name": name,
            "type": key.key_type,
            "latest_version": key.versions.keys().next_back().copied().unwrap_or_default(),
            "min_available_version": 0,
            "min_decryption_version": 1,
            "min_encryption_version": key.min_encryption_version,
            "deletion_allowed": key.deletion_allowed,
            "exportable": false,
            "supports_signing": true,
            "supports_encryption": false,
            "keys": versions,
        }
    }))
    .into_response()
}

async fn rotate_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let mut state = lock(&shared);
    let Some(key) = state.keys.get_mut(&name) else {
        return errors(StatusCode::BAD_REQUEST, &["key not found"]);
    };
    let Some(pair) = generate(&key.key_type) else {
        return errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            &["key generation failed"],
        );
    };
    let next = key.versions.keys().next_back().copied().unwrap_or_default() + 1;
    key.versions.insert(next, pair);
    StatusCode::NO_CONTENT.into_response()
}

async fn configure_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let mut state = lock(&shared);
    let Some(key) = state.keys.get_mut(&name) else {
        return errors(StatusCode::BAD_REQUEST, &["key not found"]);
    };
    if let Some(allowed) = body.get("deletion_allowed").and_then(Value::as_bool) {
        key.deletion_allowed = allowed;
    }
    if let Some(min) = body.get("min_encryption_version").and_then(Value::as_u64) {
        let latest = key.versions.keys().next_back().copied().unwrap_or_default();
        if min > latest {
            return errors(
                StatusCode::BAD_REQUEST,
                &["cannot set min encryption version greater than latest version"],
            );
        }
        key.min_encryption_version = min;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let mut state = lock(&shared);
    match state.keys.get(&name) {
        None => errors(
            StatusCode::BAD_REQUEST,
            &["could not delete key; not found"],
        ),
        Some(key) if !key.deletion_allowed => errors(
            StatusCode::BAD_REQUEST,
            &["deletion is not allowed for this key"],
        ),
        Some(_) => {
            state.keys.remove(&name);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// The version a request names (`key_version`, default the latest), checked.
fn version_of(key: &TransitKey, body: &Value) -> Result<u64, Response> {
    let latest = key.versions.keys().next_back().copied().unwrap_or_default();
    let version = match body.get("key_version").and_then(Value::as_u64) {
        None | Some(0) => latest,
        Some(version) => version,
    };
    if version > latest || !key.versions.contains_key(&version) {
        return Err(errors(StatusCode::BAD_REQUEST, &["invalid key version"]));
    }
    if version < key.min_encryption_version {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            &["cannot use key version below the key's min encryption version"],
        ));
    }
    Ok(version)
}

/// Signs `input` as the request asks, in Vault's wire form (before the `vault:vN:` prefix).
fn sign_input(pair: &Pair, body: &Value, input: &[u8]) -> Result<String, Response> {
    let bad = |message: &str| errors(StatusCode::BAD_REQUEST, &[message]);
    let hash = body
        .get("hash_algorithm")
        .and_then(Value::as_str)
        .unwrap_or("sha2-256");
    let rng = SystemRandom::new();
    let jws = body.get("marshaling_algorithm").and_then(Value::as_str) == Some("jws");
    let raw = match pair {
        Pair::P256(pair) | Pair::P384(pair) => {
            let expected = if matches!(pair_kind(pair), 256) {
                "sha2-256"
            } else {
                "sha2-384"
            };
            if hash != expected {
                return Err(bad("unsupported hash algorithm for this test server"));
            }
            let der = pair.sign(&rng, input).map_err(|_| bad("signing failed"))?;
            if jws {
                return Ok(URL_SAFE_NO_PAD.encode(der_to_fixed(der.as_ref(), pair_kind(pair) / 8)));
            }
            der.as_ref().to_vec()
        }
        Pair::Rsa(pair) => {
            if hash != "sha2-256" {
                return Err(bad("unsupported hash algorithm for this test server"));
            }
            let padding: &'static dyn signature::RsaEncoding = match body
                .get("signature_algorithm")
                .and_then(Value::as_str)
            {
                None | Some("pss") => {
                    if body.get("salt_length").and_then(Value::as_str) != Some("hash") {
                        return Err(bad("this test server signs PSS only with salt_length hash"));
                    }
                    &signature::RSA_PSS_SHA256
                }
                Some("pkcs1v15") => &signature::RSA_PKCS1_SHA256,
                Some(_) => return Err(bad("unsupported signature algorithm")),
            };
            let mut out = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &rng, input, &mut out)
                .map_err(|_| bad("signing failed"))?;
            out
        }
        Pair::Ed25519(pair) => pair.sign(input).as_ref().to_vec(),
    };
    Ok(STANDARD.encode(raw))
}

fn pair_kind(pair: &EcdsaKeyPair) -> usize {
    if pair.public_key().as_ref().len() == 65 {
        256
    } else {
        384
    }
}

fn der_to_fixed(der: &[u8], half: usize) -> Vec<u8> {
    let mut out = vec![0; 2 * half];
    let mut rest = der.get(2..).unwrap_or_default();
    for slot in out.chunks_mut(half) {
        let len = usize::from(*rest.get(1).unwrap_or(&0));
        let value = rest.get(2..2 + len).unwrap_or_default();
        let value = value
            .get(value.len().saturating_sub(half)..)
            .unwrap_or_default();
        if let Some(target) = slot.get_mut(half - value.len()..) {
            target.copy_from_slice(value);
        }
        rest = rest.get(2 + len..).unwrap_or_default();
    }
    out
}

fn input_of(body: &Value) -> Result<Vec<u8>, Response> {
    body.get("input")
        .and_then(Value::as_str)
        .and_then(|input| STANDARD.decode(input).ok())
        .ok_or_else(|| errors(StatusCode::BAD_REQUEST, &["missing or malformed input"]))
}

async fn sign(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let state = lock(&shared);
    let Some(key) = state.keys.get(&name) else {
        return errors(StatusCode::BAD_REQUEST, &["signing key not found"]);
    };
    let result = version_of(key, &body).and_then(|version| {
        let input = input_of(&body)?;
        let pair = key
            .versions
            .get(&version)
            .ok_or_else(|| errors(StatusCode::BAD_REQUEST, &["invalid key version"]))?;
        let signature = sign_input(pair, &body, &input)?;
        Ok((version, signature))
    });
    match result {
        Ok((version, signature)) => Json(json!({
            "request_id": uuid::Uuid::new_v4().to_string(),
            "data": { "signature": format!("vault:v{version}:{signature}"), "key_version": version }
        }))
        .into_response(),
        Err(response) => response,
    }
}

async fn verify(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, true) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let state = lock(&shared);
    let Some(key) = state.keys.get(&name) else {
        return errors(
            StatusCode::BAD_REQUEST,
            &["signature verification key not found"],
        );
    };
    let input = match input_of(&body) {
        Ok(input) => input,
        Err(response) => return response,
    };
    let Some((version, encoded)) = body
        .get("signature")
        .and_then(Value::as_str)
        .and_then(|signature| signature.strip_prefix("vault:v"))
        .and_then(|rest| rest.split_once(':'))
    else {
        return errors(StatusCode::BAD_REQUEST, &["invalid signature format"]);
    };
    let (Ok(version), Ok(signature)) = (version.parse::<u64>(), STANDARD.decode(encoded)) else {
        return errors(StatusCode::BAD_REQUEST, &["invalid signature format"]);
    };
    let Some(pair) = key.versions.get(&version) else {
        return errors(StatusCode::BAD_REQUEST, &["invalid key version"]);
    };
    let (algorithm, public): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) = match pair {
        Pair::P256(pair) => (
            &signature::ECDSA_P256_SHA256_ASN1,
            pair.public_key().as_ref().to_vec(),
        ),
        Pair::P384(pair) => (
            &signature::ECDSA_P384_SHA384_ASN1,
            pair.public_key().as_ref().to_vec(),
        ),
        Pair::Rsa(pair) => {
            let der = pair.public_key().as_ref().to_vec();
            let pss = body.get("signature_algorithm").and_then(Value::as_str) != Some("pkcs1v15");
            (
                if pss {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                },
                der,
            )
        }
        Pair::Ed25519(pair) => (&signature::ED25519, pair.public_key().as_ref().to_vec()),
    };
    let valid = signature::UnparsedPublicKey::new(algorithm, public)
        .verify(&input, &signature)
        .is_ok();
    Json(json!({ "data": { "valid": valid } })).into_response()
}
