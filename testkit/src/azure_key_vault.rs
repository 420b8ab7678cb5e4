//! An Azure Key Vault-compatible test server: the REST shape of Key Vault keys (and of the
//! Entra ID token endpoint the client credentials flow uses), in memory, on `127.0.0.1`, over
//! HTTPS with a certificate of its own test CA ([`AzureKeyVaultServer::ca_pem`],
//! [`AzureKeyVaultServer::client`]): the Azure SDK takes only `https` vault URLs.
//!
//! - `POST /{tenant}/oauth2/v2.0/token` (form: `grant_type=client_credentials`, `client_id`,
//!   `client_secret` or a federated `client_assertion` with its `client_assertion_type`,
//!   `scope=https://vault.azure.net/.default`) → `{"token_type": "Bearer",
//!   "expires_in": 3599, "ext_expires_in", "access_token"}`; 401 `{"error": "invalid_client",
//!   "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}` otherwise
//!   (Entra ID's v2 shapes).
//! - Every Key Vault route needs `api-version` (else 400 `BadParameter`) and a bearer token
//!   from the token endpoint (else 401 `Unauthorized` with `WWW-Authenticate`):
//!   - `POST /keys/{name}/create` `{kty: EC|RSA, crv?, key_size?, key_ops, attributes, tags}`
//!     → a key bundle `{key: {kid, kty, crv, x, y | n, e, key_ops}, attributes, tags}`; a
//!     second create of the same name adds a version, as Key Vault does;
//!   - `GET /keys/{name}/{version}` → the bundle; 404 `KeyNotFound`;
//!   - `POST /keys/{name}/{version}/sign` `{alg, value}` (`value` the base64url digest) →
//!     `{kid, value}` (JOSE signature, base64url); 400 `BadParameter` for a digest of the
//!     wrong length or an `alg` that does not fit the key;
//!   - `POST /keys/{name}/{version}/wrapkey` and `.../unwrapkey` `{alg, value}` (`alg`
//!     `RSA-OAEP` or `RSA-OAEP-256`, `value` base64url) → `{kid, value}`; 400 `BadParameter`
//!     for a value that does not unwrap or an `alg` that does not fit the key;
//!   - `DELETE /keys/{name}` → the deleted bundle; 404 `KeyNotFound`.
//!
//!   A key does only the `key_ops` it was created with (default: all that fit its type);
//!   another operation is 403 `Forbidden` (inner error `KeyOperationForbidden`).
//!
//! Errors are `{"error": {"code", "message"}}`. [`AzureKeyVaultServer::throttle`] makes the
//! next requests answer 429 `Throttled` with `Retry-After: 0`.

// The handlers' helpers return the error response itself, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{Digest, SHA256, SHA384};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::bearer::{self, Clients, Traffic};
use crate::tls::TestCa;

enum Pair {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    /// An RSA key: the signing pair and the same key for OAEP.
    Rsa(RsaKeyPair, PrivateDecryptingKey),
}

struct Stored {
    pair: Pair,
    /// Seconds since the epoch.
    created: u64,
    key_ops: Vec<String>,
    tags: Value,
}

/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Default)]
struct ServerState {
    keys: HashMap<String, BTreeMap<String, Stored>>,
    clients: Clients,
    /// Client id to the federated token it presents as its client assertion.
    federated: HashMap<String, String>,
}

struct Shared {
    state: Mutex<ServerState>,
    traffic: Traffic,
    base: Mutex<String>,
}

type AppState = Arc<Shared>;

/// A running Key Vault-compatible server, stopped on drop.
pub struct AzureKeyVaultServer {
    addr: SocketAddr,
    ca: TestCa,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for AzureKeyVaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVaultServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVaultServer {
    /// Starts a server with no clients registered.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(ServerState::default()),
            traffic: Traffic::default(),
            base: Mutex::new(String::new()),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/keys/{name}/create", post(create_key))
            .route("/keys/{name}/{version}", get(read_key))
            .route("/keys/{name}/{version}/sign", post(sign))
            .route("/keys/{name}/{version}/wrapkey", post(wrap_key))
            .route("/keys/{name}/{version}/unwrapkey", post(unwrap_key))
            .route("/keys/{name}", delete(delete_key))
            .with_state(Arc::clone(&shared));
        let ca = TestCa::new();
        let listener = ca.listen().await;
        let addr = listener.addr();
        *shared
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = format!("https://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            ca,
            shared,
            task,
        }
    }

    /// The base URL, `https://127.0.0.1:<port>`: both the vault URL and the authority host.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The certificate of the CA that issued the server's certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// A `reqwest` client that trusts the server's CA.
    #[must_use]
    pub fn client(&self) -> reqwest::Client {
        self.ca.client()
    }

    /// Registers a client (service principal) and its secret.
    pub fn add_client(&self, client_id: &str, secret: &str) {
        lock(&self.shared).clients.add(client_id, secret);
    }

    /// Registers a client that authenticates with a federated token as its client assertion
    /// (workload identity: `client_assertion_type` JWT bearer, `client_assertion`).
    pub fn add_federated_client(&self, client_id: &str, assertion: &str) {
        lock(&self.shared)
            .federated
            .insert(client_id.to_owned(), assertion.to_owned());
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

    /// The names of the keys that exist.
    #[must_use]
    pub fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.shared).keys.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Drop for AzureKeyVaultServer {
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

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// Counts the request, throttles, and checks `api-version` and the bearer token.
fn admit(shared: &Shared, headers: &HeaderMap, query: Option<&str>) -> Result<(), Response> {
    let query = bearer::form(query.unwrap_or_default());
    if shared.traffic.arrive() {
        return Err(bearer::retry_now(error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            "Request was not processed because too many requests were received.",
        )));
    }
    if query.get("api-version").is_none_or(String::is_empty) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The 'api-version' parameter is missing.",
        ));
    }
    if lock(shared).clients.admits(headers) {
        return Ok(());
    }
    Err(bearer::challenge(
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        ),
        "Bearer authorization=\"https://login.microsoftonline.com/common\", resource=\"https://vault.azure.net\"",
    ))
}

async fn token(State(shared): State<AppState>, body: String) -> Response {
    // The token endpoint is counted but never throttled.
    shared.traffic.count();
    let form = bearer::form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let mut state = lock(&shared);
    // A client secret, or (workload identity federation) a client assertion registered as
    // the client's federated token.
    let authenticated = if field("client_assertion_type") == JWT_BEARER {
        state
            .federated
            .get(field("client_id"))
            .is_some_and(|assertion| assertion == field("client_assertion"))
    } else {
        state
            .clients
            .authenticates(field("client_id"), field("client_secret"))
    };
    if field("grant_type") != "client_credentials"
        || field("scope") != "https://vault.azure.net/.default"
        || !authenticated
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7_000_215],
                "timestamp": "2026-01-01 00:00:00Z",
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "correlation_id": uuid::Uuid::new_v4().to_string(),
            })),
        )
            .into_response();
    }
    let token = state.clients.issue("eyJ0.");
    Json(json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token }))
        .into_response()
}

fn public_key(pair: &Pair) -> Value {
    match pair {
        Pair::P256(pair) | Pair::P384(pair) => {
            let point = pair.public_key().as_ref();
            let half = (point.len() - 1) / 2;
            json!({
                "kty": "EC",
                "crv": if half == 32 { "P-256" } else { "P-384" },
                "x": URL_SAFE_NO_PAD.encode(point.get(1..=half).unwrap_or_default()),
                "y": URL_SAFE_NO_PAD.encode(point.get(1 + half..).unwrap_or_default()),
            })
        }
        Pair::Rsa(pair, _) => {
            let public = pair.public_key();
            let modulus = public.modulus().big_endian_without_leading_zero();
            let exponent = public.exponent().big_endian_without_leading_zero();
            json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(modulus),
                "e": URL_SAFE_NO_PAD.encode(exponent),
            })
        }
    }
}

fn bundle(base: &str, name: &str, version: &str, stored: &Stored) -> Value {
    let mut key = public_key(&stored.pair);
    key["kid"] = json!(format!("{base}/keys/{name}/{version}"));
    key["key_ops"] = json!(stored.key_ops);
    json!({
        "key": key,
        "attributes": {
            "enabled": true,
            "exportable": false,
            "created": stored.created,
            "updated": stored.created,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        },
        "tags": stored.tags,
    })
}

fn base(shared: &Shared) -> String {
    shared
        .base
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

async fn create_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, query.as_deref()) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let pair = match (
        body.get("kty").and_then(Value::as_str),
        body.get("crv").and_then(Value::as_str),
    ) {
        (Some("EC" | "EC-HSM"), Some("P-256")) => {
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map(Pair::P256)
        }
        (Some("EC" | "EC-HSM"), Some("P-384")) => {
            EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).map(Pair::P384)
        }
        (Some("RSA" | "RSA-HSM"), _) => rsa_pair(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "Property kty or crv is invalid or not supported by this test server.",
            );
        }
    };
    let Ok(pair) = pair else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "key generation failed",
        );
    };
    let version = uuid::Uuid::new_v4().simple().to_string();
    let all_ops: &[&str] = match pair {
        Pair::Rsa(..) => &[
            "sign",
            "verify",
            "encrypt",
            "decrypt",
            "wrapKey",
            "unwrapKey",
        ],
        _ => &["sign", "verify"],
    };
    let key_ops = match body.get("key_ops").and_then(Value::as_array) {
        Some(ops) => {
            let ops: Vec<String> = ops
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            if ops.iter().any(|op| !all_ops.contains(&op.as_str())) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "Property key_ops lists an operation the key type does not support.",
                );
            }
            ops
        }
        None => all_ops.iter().map(|op| (*op).to_owned()).collect(),
    };
    let stored = Stored {
        pair,
        created: now(),
        key_ops,
        tags: body.get("tags").cloned().unwrap_or_else(|| json!({})),
    };
    let answer = bundle(&base(&shared), &name, &version, &stored);
    lock(&shared)
        .keys
        .entry(name)
        .or_default()
        .insert(version, stored);
    Json(answer).into_response()
}

async fn read_key(
    State(shared): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&shared, &headers, query.as_deref()) {
        return response;
    }
    let base = base(&shared);
    let state = lock(&shared);
    match state
        .keys
        .get(&name)
        .and_then(|versions| versions.get(&version))
    {
        Some(stored) => Json(bundle(&base, &name, &version, stored)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            &format!("A key with (name/id) {name}/{version} was not found in this key vault."),
        ),
    }
}

async fn sign(
    State(shared): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(response) = admit(&shared, &headers, query.as_deref()) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let base = base(&shared);
    let state = lock(&shared);
    let Some(stored) = state
        .keys
        .get(&name)
        .and_then(|versions| versions.get(&version))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            &format!("A key with (name/id) {name}/{version} was not found in this key vault."),
        );
    };
    if let Err(response) = permitted(stored, "sign") {
        return response;
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "BadParameter", message);
    let Some(digest) = body
        .get("value")
        .and_then(Value::as_str)
        .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
    else {
        return bad("Property value is required and must be base64url.");
    };
    let alg = body.get("alg").and_then(Value::as_str).unwrap_or_default();
    let signed = match (&stored.pair, alg) {
        (Pair::P256(pair), "ES256") => Digest::import_less_safe(&digest, &SHA256)
            .ok()
            .and_then(|digest| pair.sign_digest(&digest).ok())
            .map(|signature| signature.as_ref().to_vec()),
        (Pair::P384(pair), "ES384") => Digest::import_less_safe(&digest, &SHA384)
            .ok()
            .and_then(|digest| pair.sign_digest(&digest).ok())
            .map(|signature| signature.as_ref().to_vec()),
        (Pair::Rsa(pair, _), "RS256" | "PS256") => {
            let padding: &'static dyn signature::RsaEncoding = if alg == "RS256" {
                &signature::RSA_PKCS1_SHA256
            } else {
                &signature::RSA_PSS_SHA256
            };
            let mut out = vec![0; pair.public_modulus_len()];
            Digest::import_less_safe(&digest, &SHA256)
                .ok()
                .and_then(|digest| pair.sign_digest(padding, &digest, &mut out).ok())
                .map(|()| out)
        }
        _ => return bad("The algorithm does not fit the key."),
    };
    match signed {
        Some(signature) => Json(json!({
            "kid": format!("{base}/keys/{name}/{version}"),
            "value": URL_SAFE_NO_PAD.encode(signature),
        }))
        .into_response(),
        None => bad("The digest has the wrong length for the algorithm."),
    }
}

async fn delete_key(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&shared, &headers, query.as_deref()) {
        return response;
    }
    let base = base(&shared);
    let removed = lock(&shared).keys.remove(&name);
    match removed
        .as_ref()
        .and_then(|versions| versions.iter().next_back())
    {
        Some((version, stored)) => {
            let mut answer = bundle(&base, &name, version, stored);
            answer["recoveryId"] = json!(format!("{base}/deletedkeys/{name}"));
            answer["deletedDate"] = json!(now());
            answer["scheduledPurgeDate"] = json!(now() + 90 * 86_400);
            Json(answer).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            &format!("A key with (name/id) {name} was not found in this key vault."),
        ),
    }
}

/// A new RSA 2048 key, for signing and for OAEP.
fn rsa_pair() -> Result<Pair, aws_lc_rs::error::Unspecified> {
    let decrypting = PrivateDecryptingKey::generate(KeySize::Rsa2048)?;
    let pkcs8 = decrypting.as_der()?;
    let signing =
        RsaKeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| aws_lc_rs::error::Unspecified)?;
    Ok(Pair::Rsa(signing, decrypting))
}

/// 403 unless the key was created with `operation` in its `key_ops`.
fn permitted(stored: &Stored, operation: &str) -> Result<(), Response> {
    if stored.key_ops.iter().any(|op| op == operation) {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        Json(json!({ "error": {
            "code": "Forbidden",
            "message": format!("Operation \"{operation}\" is not allowed on this key."),
            "innererror": { "code": "KeyOperationForbidden" },
        } })),
    )
        .into_response())
}

fn oaep(alg: &str) -> Option<&'static OaepAlgorithm> {
    match alg {
        "RSA-OAEP" => Some(&OAEP_SHA1_MGF1SHA1),
        "RSA-OAEP-256" => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

async fn wrap_key(
    State(shared): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    key_operation(&shared, &name, &version, query, &headers, body, "wrapKey").await
}

async fn unwrap_key(
    State(shared): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    key_operation(&shared, &name, &version, query, &headers, body, "unwrapKey").await
}

/// `wrapkey` and `unwrapkey`: RSA-OAEP or RSA-OAEP-256 with the key's RSA pair.
async fn key_operation(
    shared: &Shared,
    name: &str,
    version: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: Option<Json<Value>>,
    operation: &str,
) -> Response {
    if let Err(response) = admit(shared, headers, query.as_deref()) {
        return response;
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let base = base(shared);
    let state = lock(shared);
    let Some(stored) = state
        .keys
        .get(name)
        .and_then(|versions| versions.get(version))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            &format!("A key with (name/id) {name}/{version} was not found in this key vault."),
        );
    };
    if let Err(response) = permitted(stored, operation) {
        return response;
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "BadParameter", message);
    let Some(value) = body
        .get("value")
        .and_then(Value::as_str)
        .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
    else {
        return bad("Property value is required and must be base64url.");
    };
    let alg = body.get("alg").and_then(Value::as_str).unwrap_or_default();
    let (Pair::Rsa(_, decrypting), Some(padding)) = (&stored.pair, oaep(alg)) else {
        return bad("The algorithm does not fit the key.");
    };
    let outcome = if operation == "wrapKey" {
        OaepPublicEncryptingKey::new(decrypting.public_key()).and_then(|public| {
            let mut out = vec![0; public.ciphertext_size()];
            public
                .encrypt(padding, &value, &mut out, None)
                .map(|out| out.to_vec())
        })
    } else {
        OaepPrivateDecryptingKey::new(decrypting.clone()).and_then(|private| {
            let mut out = vec![0; private.min_output_size()];
            private
                .decrypt(padding, &value, &mut out, None)
                .map(|out| out.to_vec())
        })
    };
    match outcome {
        Ok(result) => Json(json!({
            "kid": format!("{base}/keys/{name}/{version}"),
            "value": URL_SAFE_NO_PAD.encode(result),
        }))
        .into_response(),
        Err(_) => bad("The parameter is incorrect."),
    }
}

/// Seconds since the epoch, as Key Vault's attributes carry times.
#[expect(
    clippy::disallowed_methods,
    reason = "the test server stamps key attributes with the wall clock, as Key Vault does"
)]
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}
