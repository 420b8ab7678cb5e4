//! A [`KeyProvider`] on the Transit secrets engine of HashiCorp Vault or OpenBao (feature
//! `vault`), over its REST API with `reqwest`.
//!
//! - **Keys.** `generate` creates a Transit key (`POST /v1/<mount>/keys/<name>`) of type
//!   `ecdsa-p256` (ES256), `ecdsa-p384` (ES384), `rsa-2048` (RS256, PS256) or `ed25519`
//!   (EdDSA), named `<key_prefix>-t<tenant>-<random>`: the tenant is in the name, so a handle
//!   re-labelled for another tenant names nothing. The handle's reference is
//!   `<name>:<version>`.
//! - **Versions.** A Transit key has versions; [`VaultTransitProvider::rotate`] rotates the
//!   Vault key and returns a handle for the new version, which signs with `key_version` set, so
//!   each of our key versions is one Vault key version. Destroying the latest version deletes
//!   the Vault key (after allowing deletion in its config); destroying an older one raises the
//!   key's `min_encryption_version` above it, so it never signs again.
//! - **Signing** (`POST /v1/<mount>/sign/<name>`) sends the input with `hash_algorithm`
//!   (`sha2-256` or `sha2-384`), `signature_algorithm` (`pkcs1v15` or `pss` with
//!   `salt_length: hash`) and `marshaling_algorithm: asn1`; ECDSA's DER is turned into JOSE
//!   `r||s`, and every signature is verified here with the cached public key before it is
//!   returned. [`VaultTransitProvider::verify`] asks Vault (`/verify`).
//! - **Metadata** (`GET /v1/<mount>/keys/<name>`: versions and public keys) is cached;
//!   signing makes no metadata call.
//! - **Authentication**: a token (`X-Vault-Token`), or AppRole (`POST
//!   /v1/auth/<mount>/login` with `role_id` and `secret_id`), whose token is renewed by logging
//!   in again before its lease ends or when Vault answers 403. `X-Vault-Namespace` is sent
//!   when a namespace is configured.
//! - **Failures** go through the shared remote behaviour ([`remote`]): 429 is
//!   retried with backoff and jitter, 5xx and connection failures too for idempotent calls,
//!   then `Unavailable`; a circuit breaker per provider. Vault's `{"errors": [...]}` messages
//!   go to the log, never to callers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edk_core::jose::jwk::{OkpCurve, PublicParams};
use edk_core::jose::{Algorithm, Jwk, SignError, Signer, VerifyingKey};
use edk_core::{HasKind as _, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::remote::{self, Failure, Guard, Idempotency, RemoteMetrics, RemoteOptions};
use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, Operation,
    ProviderId, ProviderKey,
};

/// How the provider authenticates to Vault, tagged by `kind`.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuthConfig {
    /// A Vault token, given or in a file.
    Token {
        /// The token.
        #[serde(default)]
        token: Option<SecretString>,
        /// A file holding the token.
        #[serde(default)]
        token_file: Option<PathBuf>,
    },
    /// AppRole: the provider logs in and renews its token itself.
    AppRole {
        /// The AppRole auth mount; default `approle`.
        #[serde(default = "default_approle_mount")]
        mount: String,
        /// The role id.
        role_id: String,
        /// The secret id, given or in a file.
        #[serde(default)]
        secret_id: Option<SecretString>,
        /// A file holding the secret id.
        #[serde(default)]
        secret_id_file: Option<PathBuf>,
    },
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

impl fmt::Debug for VaultAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { token_file, .. } => f
                .debug_struct("Token")
                .field("token_file", token_file)
                .finish_non_exhaustive(),
            Self::AppRole {
                mount,
                role_id,
                secret_id_file,
                ..
            } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .field("secret_id_file", secret_id_file)
                .finish_non_exhaustive(),
        }
    }
}

/// Configuration of a [`VaultTransitProvider`].
///
/// ```yaml
/// kind: vault
/// id: vault-prod
/// address: https://vault.internal:8200
/// auth: { kind: app_role, role_id: edk-kms, secret_id_file: /run/secrets/vault-secret-id }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultTransitProviderConfig {
    /// This provider's id.
    pub id: ProviderId,
    /// Vault's address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// The Transit mount; default `transit`.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// A Vault Enterprise or OpenBao namespace, sent as `X-Vault-Namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// How to authenticate.
    pub auth: VaultAuthConfig,
    /// The first part of every key name; default `edk`.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// The JWS algorithms to offer; default ES256, ES384, EdDSA, RS256 and PS256.
    #[serde(default)]
    pub algorithms: Option<Vec<Algorithm>>,
    /// Timeouts, retries and the circuit breaker.
    #[serde(default)]
    pub remote: RemoteOptions,
}

fn default_mount() -> String {
    "transit".to_owned()
}

fn default_prefix() -> String {
    "edk".to_owned()
}

impl VaultTransitProviderConfig {
    /// A configuration for `address` with `auth` and defaults elsewhere.
    #[must_use]
    pub fn new(id: ProviderId, address: impl Into<String>, auth: VaultAuthConfig) -> Self {
        Self {
            id,
            address: address.into(),
            mount: default_mount(),
            namespace: None,
            auth,
            key_prefix: default_prefix(),
            algorithms: None,
            remote: RemoteOptions::default(),
        }
    }
}

const SUPPORTED: [Algorithm; 5] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Rs256,
    Algorithm::Ps256,
];

fn key_type(alg: Algorithm) -> Option<&'static str> {
    Some(match alg {
        Algorithm::Es256 => "ecdsa-p256",
        Algorithm::Es384 => "ecdsa-p384",
        Algorithm::EdDsa | Algorithm::Ed25519 => "ed25519",
        Algorithm::Rs256 | Algorithm::Ps256 => "rsa-2048",
        _ => return None,
    })
}

fn valid_name_part(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The secret the provider authenticates with.
enum Auth {
    Token(SecretString),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretString,
    },
}

/// A token from an AppRole login and when to log in again.
struct Session {
    token: SecretString,
    renew_at: Option<Instant>,
}

/// A Transit key's versions, as last read.
struct KeyInfo {
    key_type: String,
    latest_version: u64,
    min_encryption_version: u64,
    versions: BTreeMap<u64, Arc<VersionKey>>,
}

struct VersionKey {
    kid: Kid,
    jwk: Jwk,
    verifying: VerifyingKey,
}

#[derive(Deserialize)]
struct VaultData<T> {
    data: T,
}

#[derive(Deserialize)]
struct RawKeyInfo {
    #[serde(rename = "type")]
    key_type: String,
    latest_version: u64,
    #[serde(default)]
    min_encryption_version: u64,
    keys: HashMap<String, RawVersion>,
}

#[derive(Deserialize)]
struct RawVersion {
    #[serde(default)]
    public_key: String,
}

#[derive(Deserialize)]
struct SignData {
    signature: String,
}

#[derive(Deserialize)]
struct VerifyData {
    valid: bool,
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: LoginAuth,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: SecretString,
    #[serde(default)]
    lease_duration: u64,
}

/// A [`KeyProvider`] on Vault Transit; see the [module docs](self).
pub struct VaultTransitProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

struct Inner {
    id: ProviderId,
    base: String,
    namespace: Option<String>,
    prefix: String,
    client: reqwest::Client,
    auth: Auth,
    session: tokio::sync::Mutex<Option<Session>>,
    guard: Guard,
    forbidden: AtomicBool,
    keys: RwLock<HashMap<String, Arc<KeyInfo>>>,
}

impl VaultTransitProvider {
    /// Builds the provider. Nothing is called yet: an AppRole login happens on first use.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an address that is not an http(s) URL, a mount, namespace
    /// or prefix with other characters than letters, digits, `-`, `_` (and `/` in mounts), an
    /// algorithm Transit does not sign with, auth with both or neither of a secret and its
    /// file, or bad remote options; [`Error::SecretFile`] for an unreadable secret file.
    ///
    /// The HTTP client is reqwest's, with the configured timeouts: `https` addresses need a
    /// reqwest TLS feature in the application (the EDK servers enable rustls on aws-lc-rs and
    /// install it as the process's crypto provider first).
    pub fn new(config: VaultTransitProviderConfig) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.remote.connect_timeout())
            .timeout(config.remote.timeout())
            .build()
            .map_err(|err| Error::internal(&config.id, err))?;
        Self::with_client(config, client)
    }

    /// As [`new`](Self::new), with the application's HTTP client (its TLS roots, proxy and
    /// timeouts); the per-attempt timeout of `remote` still applies.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_client(
        config: VaultTransitProviderConfig,
        client: reqwest::Client,
    ) -> Result<Self, Error> {
        config.remote.validate()?;
        if !(config.address.starts_with("https://") || config.address.starts_with("http://")) {
            return Err(Error::InvalidConfig {
                field: "address",
                reason: "must be an http(s) URL",
            });
        }
        if !config.mount.split('/').all(valid_name_part) {
            return Err(Error::InvalidConfig {
                field: "mount",
                reason: "must be letters, digits, '-', '_' and '/'",
            });
        }
        if !valid_name_part(&config.key_prefix) {
            return Err(Error::InvalidConfig {
                field: "key_prefix",
                reason: "must be letters, digits, '-' and '_'",
            });
        }
        let algorithms: BTreeSet<Algorithm> = match &config.algorithms {
            Some(list) => list.iter().copied().collect(),
            None => SUPPORTED.into_iter().collect(),
        };
        if algorithms.is_empty() || algorithms.iter().any(|alg| !SUPPORTED.contains(alg)) {
            return Err(Error::InvalidConfig {
                field: "algorithms",
                reason: "must list some of ES256, ES384, EdDSA, RS256 and PS256",
            });
        }
        let auth = match config.auth {
            VaultAuthConfig::Token { token, token_file } => {
                Auth::Token(remote::secret(token, token_file, "auth.token")?)
            }
            VaultAuthConfig::AppRole {
                mount,
                role_id,
                secret_id,
                secret_id_file,
            } => {
                if !mount.split('/').all(valid_name_part) {
                    return Err(Error::InvalidConfig {
                        field: "auth.mount",
                        reason: "must be letters, digits, '-', '_' and '/'",
                    });
                }
                Auth::AppRole {
                    mount,
                    role_id,
                    secret_id: remote::secret(secret_id, secret_id_file, "auth.secret_id")?,
                }
            }
        };
        let capabilities = Capabilities::new()
            .with_signing(algorithms)
            .with_operation(Operation::Verify)
            .with_exportability(Exportability::Never)
            .with_storage(KeyStorage::InProvider);
        Ok(Self {
            inner: Arc::new(Inner {
                guard: Guard::new(config.id.clone(), config.remote),
                id: config.id,
                base: format!(
                    "{}/v1/{}",
                    config.address.trim_end_matches('/'),
                    config.mount
                ),
                namespace: config.namespace,
                prefix: config.key_prefix,
                client,
                auth,
                session: tokio::sync::Mutex::new(None),
                forbidden: AtomicBool::new(false),
                keys: RwLock::new(HashMap::new()),
            }),
            capabilities,
        })
    }

    /// The provider's call metrics.
    #[must_use]
    pub fn metrics(&self) -> RemoteMetrics {
        self.inner.guard.metrics()
    }

    /// Rotates the Vault key behind `key` and returns the handle of its new version (Vault's
    /// `latest_version`), for the same usage.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] for another tenant's or a deleted key, [`Error::Unavailable`]
    /// when Vault cannot be reached.
    pub async fn rotate(&self, tenant: &TenantId, key: &KeyHandle) -> Result<ProviderKey, Error> {
        let inner = &self.inner;
        let (name, _) = inner.name_of(tenant, key)?;
        inner
            .send(
                reqwest::Method::POST,
                &format!("/keys/{name}/rotate"),
                None,
                Idempotency::Once,
            )
            .await?;
        let info = inner.refresh(name).await?;
        let version = info
            .versions
            .get(&info.latest_version)
            .ok_or_else(|| Error::unavailable(&inner.id, "the rotated key has no new version"))?;
        let handle = KeyHandle::new(
            inner.id.clone(),
            *tenant,
            version.kid.clone(),
            key.usage(),
            format!("{name}:{}", info.latest_version),
        );
        ProviderKey::new(handle, &version.jwk)
    }

    /// Asks Vault whether `signature` (JOSE form) over `message` verifies with `key`.
    ///
    /// # Errors
    /// As [`rotate`](Self::rotate).
    pub async fn verify(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, Error> {
        let inner = &self.inner;
        let (name, version) = inner.name_of(tenant, key)?;
        let (alg, _) = inner.version(tenant, key).await?;
        let wire = match alg {
            Algorithm::Es256 | Algorithm::Es384 => {
                let half = if alg == Algorithm::Es256 { 32 } else { 48 };
                match jose_to_der(signature, half) {
                    Some(der) => der,
                    None => return Ok(false),
                }
            }
            _ => signature.to_vec(),
        };
        let mut body = sign_body(alg, message);
        body["signature"] = json!(format!("vault:v{version}:{}", STANDARD.encode(wire)));
        let answer: VaultData<VerifyData> = inner
            .call(
                reqwest::Method::POST,
                &format!("/verify/{name}"),
                Some(&body),
                Idempotency::Idempotent,
            )
            .await?;
        Ok(answer.data.valid)
    }
}

/// The request body of `sign` and `verify` for `alg`.
fn sign_body(alg: Algorithm, message: &[u8]) -> Value {
    let mut body = json!({ "input": STANDARD.encode(message) });
    match alg {
        Algorithm::Es256 => {
            body["hash_algorithm"] = json!("sha2-256");
            body["marshaling_algorithm"] = json!("asn1");
        }
        Algorithm::Es384 => {
            body["hash_algorithm"] = json!("sha2-384");
            body["marshaling_algorithm"] = json!("asn1");
        }
        Algorithm::Rs256 => {
            body["hash_algorithm"] = json!("sha2-256");
            body["signature_algorithm"] = json!("pkcs1v15");
        }
        Algorithm::Ps256 => {
            body["hash_algorithm"] = json!("sha2-256");
            body["signature_algorithm"] = json!("pss");
            body["salt_length"] = json!("hash");
        }
        _ => {}
    }
    body
}

/// The DER `Ecdsa-Sig-Value` of a JOSE `r||s`.
fn jose_to_der(signature: &[u8], half: usize) -> Option<Vec<u8>> {
    if signature.len() != 2 * half {
        return None;
    }
    let (r, s) = signature.split_at(half);
    let mut body = Vec::with_capacity(2 * half + 8);
    for part in [r, s] {
        let trimmed = match part.iter().position(|byte| *byte != 0) {
            Some(start) => part.get(start..)?,
            None => &[0][..],
        };
        let pad = trimmed.first().is_some_and(|byte| byte & 0x80 != 0);
        let len = trimmed.len() + usize::from(pad);
        body.push(0x02);
        body.push(u8::try_from(len).ok()?);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut der = vec![0x30];
    if body.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(u8::try_from(body.len()).ok()?);
    der.extend_from_slice(&body);
    Some(der)
}

impl Inner {
    fn tenant_prefix(&self, tenant: &TenantId) -> String {
        format!("{}-t{}-", self.prefix, tenant.as_uuid().simple())
    }

    /// The Vault key name and version a handle names, if it is `tenant`'s.
    fn name_of<'a>(&self, tenant: &TenantId, key: &'a KeyHandle) -> Result<(&'a str, u64), Error> {
        key.check(&self.id, tenant)?;
        let (name, version) = key
            .reference()
            .rsplit_once(':')
            .ok_or_else(|| Error::not_found(&self.id))?;
        let version: u64 = version.parse().map_err(|_| Error::not_found(&self.id))?;
        if !name.starts_with(&self.tenant_prefix(tenant)) || !valid_name_part(name) {
            return Err(Error::not_found(&self.id));
        }
        Ok((name, version))
    }

    /// The algorithm and the cached public key of the version a handle names.
    async fn version(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<(Algorithm, Arc<VersionKey>), Error> {
        let (name, version) = self.name_of(tenant, key)?;
        let KeyUsage::Sign(alg) = key.usage() else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "signing with this key",
            });
        };
        let cached = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned();
        let info = match cached {
            Some(info) if info.versions.contains_key(&version) => info,
            _ => self.refresh(name).await?,
        };
        let found = info
            .versions
            .get(&version)
            .filter(|found| {
                found.kid == *key.kid()
                    && version >= info.min_encryption_version
                    && Some(info.key_type.as_str()) == key_type(alg)
            })
            .ok_or_else(|| Error::not_found(&self.id))?;
        Ok((alg, Arc::clone(found)))
    }

    /// Reads a key's versions and caches them.
    async fn refresh(&self, name: &str) -> Result<Arc<KeyInfo>, Error> {
        let raw: VaultData<RawKeyInfo> = self
            .call(
                reqwest::Method::GET,
                &format!("/keys/{name}"),
                None,
                Idempotency::Idempotent,
            )
            .await?;
        let raw = raw.data;
        let mut versions = BTreeMap::new();
        for (version, key) in raw.keys {
            let version: u64 = version
                .parse()
                .map_err(|_| Error::unavailable(&self.id, "Vault listed a malformed version"))?;
            let jwk = public_jwk(&raw.key_type, &key.public_key)?;
            let verifying =
                VerifyingKey::from_jwk(&jwk).map_err(|err| Error::internal(&self.id, err))?;
            versions.insert(
                version,
                Arc::new(VersionKey {
                    kid: Kid::new(jwk.thumbprint())?,
                    jwk,
                    verifying,
                }),
            );
        }
        let info = Arc::new(KeyInfo {
            key_type: raw.key_type,
            latest_version: raw.latest_version,
            min_encryption_version: raw.min_encryption_version,
            versions,
        });
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&info));
        Ok(info)
    }

    fn forget(&self, name: &str) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
    }

    /// The token to send, logging in with AppRole when needed.
    async fn token(&self, renew: bool) -> Result<SecretString, Error> {
        let (mount, role_id, secret_id) = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => (mount, role_id, secret_id),
        };
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref() {
            let fresh = current.renew_at.is_none_or(|at| Instant::now() < at);
            if fresh && !renew {
                return Ok(current.token.clone());
            }
        }
        let url = format!(
            "{}/v1/auth/{mount}/login",
            self.base
                .rsplit_once("/v1/")
                .map_or(self.base.as_str(), |(address, _)| address)
        );
        let body = json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() });
        let answer: LoginAnswer = self
            .guard
            .call(Idempotency::Idempotent, || {
                self.exchange(self.with_namespace(self.client.post(&url)).json(&body))
            })
            .await
            .map_err(|err| match err {
                Error::Unavailable { .. } => err,
                // Vault answers 400 to a wrong role or secret id: credentials refused.
                other => Error::unavailable(&self.id, other),
            })?;
        let lease = answer.auth.lease_duration;
        let renew_at =
            (lease > 0).then(|| Instant::now() + Duration::from_secs(lease.saturating_mul(9) / 10));
        let token = answer.auth.client_token;
        *session = Some(Session {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    fn with_namespace(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.namespace {
            Some(namespace) => request.header("X-Vault-Namespace", namespace),
            None => request,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<T, Error> {
        let mut renewed = false;
        loop {
            let token = self.token(renewed).await?;
            let result = self
                .guard
                .call(idempotency, || async {
                    let mut request = self
                        .with_namespace(
                            self.client
                                .request(method.clone(), format!("{}{path}", self.base)),
                        )
                        .header("X-Vault-Token", token.expose_secret());
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    self.exchange(request).await
                })
                .await;
            match result {
                // An AppRole token may have been revoked or expired early: log in once more.
                Err(Error::Unavailable { .. })
                    if !renewed
                        && matches!(self.auth, Auth::AppRole { .. })
                        && self.last_was_forbidden() =>
                {
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<(), Error> {
        let _: Value = self.call(method, path, body, idempotency).await?;
        Ok(())
    }

    /// Whether Vault refused a token since the last look (then the token is renewed once).
    fn last_was_forbidden(&self) -> bool {
        self.forbidden.swap(false, Ordering::SeqCst)
    }

    /// Sends a request and classifies the answer; `204 No Content` decodes as JSON `null`.
    async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Failure> {
        remote::send_json(&self.id, "Vault", request, |answer| {
            let messages = answer
                .body
                .get("errors")
                .cloned()
                .and_then(|errors| serde_json::from_value::<Vec<String>>(errors).ok())
                .unwrap_or_default()
                .join("; ");
            let detail = format!("Vault answered {}: {messages}", answer.status);
            match answer.status {
                404 => Failure::Final(Error::not_found(&self.id)),
                400 if messages.contains("not found") => Failure::Final(Error::not_found(&self.id)),
                401 | 403 => {
                    self.forbidden.store(true, Ordering::SeqCst);
                    answer.failure(&self.id, detail)
                }
                _ => answer.failure(&self.id, detail),
            }
        })
        .await
    }
}

/// The JWK of a Transit version's `public_key`: PEM SubjectPublicKeyInfo for ECDSA and RSA,
/// base64 of the raw key for Ed25519.
fn public_jwk(key_type: &str, public_key: &str) -> Result<Jwk, Error> {
    const BAD: Error = Error::InvalidKey {
        reason: "Vault returned an unusable public key",
    };
    if key_type == "ed25519" {
        let x = STANDARD.decode(public_key.trim()).map_err(|_| BAD)?;
        return Jwk::from_parts(
            PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                x,
            },
            None,
        )
        .map_err(|_| BAD);
    }
    let body: String = public_key
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body.trim()).map_err(|_| BAD)?;
    remote::jwk_from_spki(&der)
}

#[async_trait]
impl KeyProvider for VaultTransitProvider {
    fn id(&self) -> &ProviderId {
        &self.inner.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn remote_metrics(&self) -> Option<RemoteMetrics> {
        Some(self.metrics())
    }

    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error> {
        let inner = &self.inner;
        let unsupported = || Error::UnsupportedUsage {
            provider: inner.id.clone(),
            usage: spec.usage,
        };
        let KeyUsage::Sign(alg) = spec.usage else {
            return Err(unsupported());
        };
        if !self.capabilities.supports_usage(spec.usage) {
            return Err(unsupported());
        }
        let key_type = key_type(alg).ok_or_else(unsupported)?;
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{}{}", inner.tenant_prefix(tenant), &random[..16]);
        inner
            .send(
                reqwest::Method::POST,
                &format!("/keys/{name}"),
                Some(&json!({ "type": key_type, "exportable": false })),
                Idempotency::Once,
            )
            .await?;
        let info = inner.refresh(&name).await?;
        let version = info
            .versions
            .get(&info.latest_version)
            .ok_or_else(|| Error::unavailable(&inner.id, "the new key has no version"))?;
        let handle = KeyHandle::new(
            inner.id.clone(),
            *tenant,
            version.kid.clone(),
            spec.usage,
            format!("{name}:{}", info.latest_version),
        );
        ProviderKey::new(handle, &version.jwk)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let (alg, version_key) = self.inner.version(tenant, key).await?;
        let (name, version) = self.inner.name_of(tenant, key)?;
        Ok(Arc::new(VaultSigner {
            inner: Arc::clone(&self.inner),
            name: name.to_owned(),
            version,
            alg,
            key: version_key,
        }))
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        let inner = &self.inner;
        let (name, version) = inner.name_of(tenant, key)?;
        // Always from Vault: another replica may have destroyed it.
        let info = inner.refresh(name).await?;
        let live = info
            .versions
            .get(&version)
            .is_some_and(|found| found.kid == *key.kid() && version >= info.min_encryption_version);
        if !live {
            return Err(Error::not_found(&inner.id));
        }
        if version >= info.latest_version {
            inner
                .send(
                    reqwest::Method::POST,
                    &format!("/keys/{name}/config"),
                    Some(&json!({ "deletion_allowed": true })),
                    Idempotency::Idempotent,
                )
                .await?;
            inner
                .send(
                    reqwest::Method::DELETE,
                    &format!("/keys/{name}"),
                    None,
                    Idempotency::Idempotent,
                )
                .await?;
        } else {
            inner
                .send(
                    reqwest::Method::POST,
                    &format!("/keys/{name}/config"),
                    Some(&json!({ "min_encryption_version": version + 1 })),
                    Idempotency::Idempotent,
                )
                .await?;
        }
        inner.forget(name);
        Ok(())
    }
}

impl fmt::Debug for VaultTransitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultTransitProvider")
            .field("id", &self.inner.id)
            .field("base", &self.inner.base)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Signs with one version of a Transit key.
struct VaultSigner {
    inner: Arc<Inner>,
    name: String,
    version: u64,
    alg: Algorithm,
    key: Arc<VersionKey>,
}

impl VaultSigner {
    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let mut body = sign_body(self.alg, message);
        body["key_version"] = json!(self.version);
        let answer: Result<VaultData<SignData>, Error> = inner
            .call(
                reqwest::Method::POST,
                &format!("/sign/{}", self.name),
                Some(&body),
                Idempotency::Idempotent,
            )
            .await;
        let answer = match answer {
            Err(Error::KeyNotFound { provider }) => {
                inner.forget(&self.name);
                return Err(Error::KeyNotFound { provider });
            }
            other => other?,
        };
        let encoded = answer
            .data
            .signature
            .strip_prefix(&format!("vault:v{}:", self.version))
            .ok_or_else(|| Error::internal(&inner.id, "Vault signed with another key version"))?
            .to_owned();
        let raw = STANDARD
            .decode(encoded)
            .map_err(|_| Error::internal(&inner.id, "Vault returned a malformed signature"))?;
        let signature = match self.alg {
            Algorithm::Es256 => remote::ecdsa_der_to_jose(&raw, 32),
            Algorithm::Es384 => remote::ecdsa_der_to_jose(&raw, 48),
            _ => Some(raw),
        }
        .ok_or_else(|| Error::internal(&inner.id, "Vault returned a malformed ECDSA signature"))?;
        self.key
            .verifying
            .verify(self.alg, message, &signature)
            .map_err(|_| {
                Error::internal(
                    &inner.id,
                    "Vault returned a signature that does not verify with the key's public key",
                )
            })?;
        Ok(signature)
    }
}

#[async_trait]
impl Signer for VaultSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.key.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_remote(message)
            .await
            .map_err(|err| SignError::new(err.kind(), err))
    }
}

impl fmt::Debug for VaultSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSigner")
            .field("provider", &self.inner.id)
            .field("version", &self.version)
            .field("kid", &self.key.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn jose_signatures_become_der_and_back() {
        for jose in [
            [[0x80_u8; 32], [0x01; 32]].concat(),
            [[0_u8; 32], [0x7f; 32]].concat(),
        ] {
            let der = jose_to_der(&jose, 32).unwrap();
            assert_eq!(remote::ecdsa_der_to_jose(&der, 32).unwrap(), jose);
        }
        assert!(jose_to_der(&[0; 63], 32).is_none());
    }

    #[test]
    fn configuration_is_checked_and_secrets_stay_hidden() {
        // In a workspace build with the servers, reqwest uses rustls without a built-in
        // provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let id = ProviderId::new("vault").unwrap();
        let token = || VaultAuthConfig::Token {
            token: Some(SecretString::from("s.secret")),
            token_file: None,
        };
        let err = VaultTransitProvider::new(VaultTransitProviderConfig::new(
            id.clone(),
            "vault:8200",
            token(),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `address` must be an http(s) URL"
        );
        let mut config = VaultTransitProviderConfig::new(id.clone(), "http://127.0.0.1:1", token());
        config.mount = "transit/../sys".to_owned();
        let err = VaultTransitProvider::new(config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `mount` must be letters, digits, '-', '_' and '/'"
        );
        let err = VaultTransitProvider::new(VaultTransitProviderConfig::new(
            id,
            "http://127.0.0.1:1",
            VaultAuthConfig::Token {
                token: None,
                token_file: None,
            },
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `auth.token` give exactly one of the value and its file"
        );
        let parsed: VaultTransitProviderConfig = serde_json::from_value(json!({
            "id": "vault-prod",
            "address": "https://vault.internal:8200",
            "auth": {"kind": "app_role", "role_id": "edk", "secret_id": "very-secret"},
        }))
        .unwrap();
        assert!(!format!("{parsed:?}").contains("very-secret"));
        let provider = VaultTransitProvider::new(parsed).unwrap();
        assert!(!format!("{provider:?}").contains("very-secret"));
        assert!(
            provider
                .capabilities()
                .operations()
                .contains(&Operation::Verify)
        );
    }
}
