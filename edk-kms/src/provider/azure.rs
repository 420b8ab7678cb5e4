//! A [`KeyProvider`] on Azure Key Vault keys (feature `azure`), over the Key Vault REST API
//! (`api-version` 7.4) with `reqwest`.
//!
//! - **Keys.** `generate` creates a key (`POST {vault}/keys/{name}/create`) of type `EC`
//!   (`P-256` for ES256, `P-384` for ES384) or `RSA` (2048 bits, RS256 and PS256), with
//!   `key_ops: [sign, verify]` and tags `edk-tenant` and `edk-provider`, named
//!   `<key_prefix>-t<tenant>-<random>`. The handle's reference is `<name>/<version>`.
//! - **Tenant binding.** The name carries the tenant and the first use of a version reads it
//!   (`GET {vault}/keys/{name}/{version}`): enabled, tagged for this tenant and provider, its
//!   public key's thumbprint the handle's `kid`. The result is cached: signing makes no
//!   metadata call.
//! - **Signing** (`POST {vault}/keys/{name}/{version}/sign`) sends the SHA-256 or SHA-384
//!   digest of the input with the JOSE `alg`; Key Vault answers JOSE signatures (`r||s` for
//!   ECDSA). Every signature is verified here with the cached public key before it is
//!   returned.
//! - **Decryption keys** (`RSA-OAEP-256`, the JWE key management algorithm): `RSA` 2048 keys
//!   with `key_ops: [wrapKey, unwrapKey]`. The KMS wraps content keys with the public key, as
//!   for any key; unwrapping is Key Vault's (`POST {vault}/keys/{name}/{version}/unwrapkey`
//!   with `alg: RSA-OAEP-256`), through the provider's [`Decrypter`]: JWE decryption and
//!   `Kms::unwrap_key`. [`AzureKeyVaultProvider::wrap`] asks Key Vault to wrap instead
//!   (`wrapkey`). Every refusal of an unwrap is the one `DecryptionFailed`.
//! - **Destroying** deletes the key (`DELETE {vault}/keys/{name}`; with soft delete on, it can
//!   be recovered by an operator until purged). A deleted key is `KeyNotFound`.
//! - **Credentials**: a service principal's client secret (OAuth 2 client credentials at
//!   `{authority_host}/{tenant_id}/oauth2/v2.0/token`), the environment (`AZURE_TENANT_ID`,
//!   `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`) or a managed identity
//!   (the instance metadata endpoint); the bearer token is cached until shortly before it
//!   expires and fetched again when Key Vault answers 401.
//! - **Failures** go through the shared remote behaviour ([`remote`]): 429 (with
//!   `Retry-After`) is retried, 5xx and connection failures too for idempotent calls, then
//!   `Unavailable`; a circuit breaker per provider. Key Vault's `{"error": {code, message}}`
//!   goes to the log, never to callers.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::jwe::{Decrypter, JweHeader, KeyManagement};
use edk_core::jose::{Algorithm, JoseError, Jwk, SignError, Signer, VerifyingKey};
use edk_core::{ErrorKind, HasKind as _, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::remote::{
    self, BearerCache, Failure, Guard, Idempotency, RemoteMetrics, RemoteOptions, TokenAnswer,
};
use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};

/// The tag naming the tenant a key belongs to.
pub const TENANT_TAG: &str = "edk-tenant";
/// The tag naming the provider that made a key.
pub const PROVIDER_TAG: &str = "edk-provider";
/// The Key Vault REST API version spoken.
pub const API_VERSION: &str = "7.4";
/// The OAuth 2 scope of Key Vault.
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// Where the provider's Azure credentials come from, tagged by `kind`.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AzureCredentialsConfig {
    /// A service principal with a client secret.
    ClientSecret {
        /// The Entra ID (Azure AD) tenant id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret (or `client_secret_file`).
        #[serde(default)]
        client_secret: Option<SecretString>,
        /// A file holding the client secret.
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        /// The authority; default `https://login.microsoftonline.com`.
        #[serde(default)]
        authority_host: Option<String>,
    },
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` and
    /// optionally `AZURE_AUTHORITY_HOST`, read when the provider is built.
    Environment,
    /// The managed identity of the host (instance metadata endpoint).
    ManagedIdentity {
        /// A user-assigned identity's client id; default the system-assigned identity.
        #[serde(default)]
        client_id: Option<String>,
        /// The token endpoint; default `http://169.254.169.254/metadata/identity/oauth2/token`.
        #[serde(default)]
        endpoint: Option<String>,
    },
}

impl fmt::Debug for AzureCredentialsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret {
                tenant_id,
                client_id,
                authority_host,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("authority_host", authority_host)
                .finish_non_exhaustive(),
            Self::Environment => f.write_str("Environment"),
            Self::ManagedIdentity {
                client_id,
                endpoint,
            } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .field("endpoint", endpoint)
                .finish(),
        }
    }
}

/// Configuration of an [`AzureKeyVaultProvider`].
///
/// ```yaml
/// kind: azure
/// id: azure-vault-prod
/// vault_url: https://edk-prod.vault.azure.net
/// credentials: { kind: managed_identity }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyVaultProviderConfig {
    /// This provider's id.
    pub id: ProviderId,
    /// The vault's URL, e.g. `https://edk-prod.vault.azure.net`.
    pub vault_url: String,
    /// Where credentials come from.
    pub credentials: AzureCredentialsConfig,
    /// The first part of every key name (letters, digits, `-`); default `edk`.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// The JWS algorithms to offer; default ES256, ES384, RS256 and PS256.
    #[serde(default)]
    pub algorithms: Option<Vec<Algorithm>>,
    /// The JWE key management algorithms to offer for decryption keys, whose content keys
    /// Key Vault unwraps: `RSA-OAEP-256` (the default) or none (`[]`).
    #[serde(default)]
    pub key_management: Option<Vec<String>>,
    /// Timeouts, retries and the circuit breaker.
    #[serde(default)]
    pub remote: RemoteOptions,
}

fn default_prefix() -> String {
    "edk".to_owned()
}

impl AzureKeyVaultProviderConfig {
    /// A configuration for `vault_url` with `credentials` and defaults elsewhere.
    #[must_use]
    pub fn new(
        id: ProviderId,
        vault_url: impl Into<String>,
        credentials: AzureCredentialsConfig,
    ) -> Self {
        Self {
            id,
            vault_url: vault_url.into(),
            credentials,
            key_prefix: default_prefix(),
            algorithms: None,
            key_management: None,
            remote: RemoteOptions::default(),
        }
    }
}

const SUPPORTED: [Algorithm; 4] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::Rs256,
    Algorithm::Ps256,
];

/// The key management algorithms Key Vault unwraps for JWE (`RSA-OAEP` uses SHA-1, which JOSE
/// here does not offer).
const SUPPORTED_KEY_MANAGEMENT: [KeyManagement; 1] = [KeyManagement::RsaOaep256];

/// The create request's key type and operations for `usage`.
fn create_body(usage: KeyUsage) -> Option<Value> {
    Some(match usage {
        KeyUsage::Sign(Algorithm::Es256) => {
            json!({ "kty": "EC", "crv": "P-256", "key_ops": ["sign", "verify"] })
        }
        KeyUsage::Sign(Algorithm::Es384) => {
            json!({ "kty": "EC", "crv": "P-384", "key_ops": ["sign", "verify"] })
        }
        KeyUsage::Sign(Algorithm::Rs256 | Algorithm::Ps256) => {
            json!({ "kty": "RSA", "key_size": 2048, "key_ops": ["sign", "verify"] })
        }
        KeyUsage::Decrypt(KeyManagement::RsaOaep256) => {
            json!({ "kty": "RSA", "key_size": 2048, "key_ops": ["wrapKey", "unwrapKey"] })
        }
        _ => return None,
    })
}

/// How a bearer token is obtained.
enum TokenSource {
    ClientSecret {
        url: String,
        client_id: String,
        secret: SecretString,
    },
    ManagedIdentity {
        url: String,
    },
}

struct CachedKey {
    kid: Kid,
    verifying: VerifyingKey,
}

#[derive(Deserialize)]
struct KeyBundle {
    key: Value,
    #[serde(default)]
    attributes: Attributes,
    #[serde(default)]
    tags: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Attributes {
    #[serde(default = "enabled_default")]
    enabled: bool,
}

const fn enabled_default() -> bool {
    true
}

/// Key Vault's `KeyOperationResult`: the answer of `sign`, `wrapkey` and `unwrapkey`.
#[derive(Deserialize)]
struct OperationResult {
    value: String,
}

/// A [`KeyProvider`] on Azure Key Vault; see the [module docs](self).
pub struct AzureKeyVaultProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

struct Inner {
    id: ProviderId,
    vault: String,
    prefix: String,
    client: reqwest::Client,
    source: TokenSource,
    bearer: BearerCache,
    guard: Guard,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
}

fn valid_prefix(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn https_or_http(value: &str) -> bool {
    value.starts_with("https://") || value.starts_with("http://")
}

impl AzureKeyVaultProvider {
    /// Builds the provider with a reqwest client of its own, with the configured timeouts:
    /// `https` vault URLs need a reqwest TLS feature in the application (the EDK servers
    /// enable rustls on aws-lc-rs and install it as the process's crypto provider first).
    ///
    /// # Errors
    /// As [`with_client`](Self::with_client).
    pub fn new(config: AzureKeyVaultProviderConfig) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.remote.connect_timeout())
            .timeout(config.remote.timeout())
            .build()
            .map_err(|err| Error::internal(&config.id, err))?;
        Self::with_client(config, client)
    }

    /// Builds the provider with `client` (the application's HTTP client). Nothing is called
    /// yet: the first request fetches a token.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a vault URL or authority that is not an http(s) URL, a
    /// prefix with other characters than letters, digits and `-`, an algorithm this provider
    /// or key management algorithm this provider does not offer, a secret given both or
    /// neither inline and in a file, or (for
    /// `environment`) a missing variable; [`Error::SecretFile`] for an unreadable secret file.
    pub fn with_client(
        config: AzureKeyVaultProviderConfig,
        client: reqwest::Client,
    ) -> Result<Self, Error> {
        config.remote.validate()?;
        if !https_or_http(&config.vault_url) {
            return Err(Error::InvalidConfig {
                field: "vault_url",
                reason: "must be an http(s) URL",
            });
        }
        if !valid_prefix(&config.key_prefix) {
            return Err(Error::InvalidConfig {
                field: "key_prefix",
                reason: "must be letters, digits and '-'",
            });
        }
        let algorithms: BTreeSet<Algorithm> = match &config.algorithms {
            Some(list) => list.iter().copied().collect(),
            None => SUPPORTED.into_iter().collect(),
        };
        if algorithms.is_empty() || algorithms.iter().any(|alg| !SUPPORTED.contains(alg)) {
            return Err(Error::InvalidConfig {
                field: "algorithms",
                reason: "must list some of ES256, ES384, RS256 and PS256",
            });
        }
        let key_management = match &config.key_management {
            Some(names) => names
                .iter()
                .map(|name| {
                    KeyManagement::from_name(name)
                        .filter(|alg| SUPPORTED_KEY_MANAGEMENT.contains(alg))
                        .ok_or(Error::InvalidConfig {
                            field: "key_management",
                            reason: "must list RSA-OAEP-256 or nothing",
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => SUPPORTED_KEY_MANAGEMENT.to_vec(),
        };
        let source = token_source(config.credentials)?;
        let capabilities = Capabilities::new()
            .with_signing(algorithms)
            .with_decryption(key_management)
            .with_exportability(Exportability::Never)
            .with_storage(KeyStorage::InProvider);
        Ok(Self {
            inner: Arc::new(Inner {
                guard: Guard::new(config.id.clone(), config.remote),
                id: config.id,
                vault: config.vault_url.trim_end_matches('/').to_owned(),
                prefix: config.key_prefix,
                client,
                source,
                bearer: BearerCache::default(),
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

    /// Wraps `key_bytes` (a content key) with `tenant`'s decryption key `key` in Key Vault
    /// (`POST {vault}/keys/{name}/{version}/wrapkey`, `RSA-OAEP-256`): the `encrypted_key` of
    /// a JWE to that key. Wrapping needs only the public key, so the KMS does it itself
    /// (`Kms::wrap_key`); this asks the vault instead.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] for an unknown, deleted or other tenant's key,
    /// [`Error::UnsupportedOperation`] for a key that does not decrypt,
    /// [`Error::Unavailable`] when Key Vault cannot be reached.
    pub async fn wrap(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
        key_bytes: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let KeyUsage::Decrypt(alg) = key.usage() else {
            key.check(&inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: inner.id.clone(),
                operation: "wrapping with this key",
            });
        };
        inner.key(tenant, key).await?;
        let body = json!({ "alg": alg.name(), "value": b64url_encode(key_bytes) });
        let answer: OperationResult = inner
            .call(
                reqwest::Method::POST,
                &format!("/keys/{}/wrapkey", key.reference()),
                Some(&body),
                Idempotency::Idempotent,
            )
            .await?;
        b64url_decode(&answer.value)
            .map_err(|_| Error::internal(&inner.id, "Azure returned a malformed wrapped key"))
    }
}

fn token_source(credentials: AzureCredentialsConfig) -> Result<TokenSource, Error> {
    let client_secret =
        |tenant_id: String, client_id: String, secret: SecretString, authority: Option<String>| {
            let authority =
                authority.unwrap_or_else(|| "https://login.microsoftonline.com".to_owned());
            if !https_or_http(&authority) {
                return Err(Error::InvalidConfig {
                    field: "credentials.authority_host",
                    reason: "must be an http(s) URL",
                });
            }
            if tenant_id.is_empty()
                || !tenant_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(Error::InvalidConfig {
                    field: "credentials.tenant_id",
                    reason: "must be a tenant id or domain",
                });
            }
            Ok(TokenSource::ClientSecret {
                url: format!(
                    "{}/{tenant_id}/oauth2/v2.0/token",
                    authority.trim_end_matches('/')
                ),
                client_id,
                secret,
            })
        };
    match credentials {
        AzureCredentialsConfig::ClientSecret {
            tenant_id,
            client_id,
            client_secret: secret,
            client_secret_file,
            authority_host,
        } => {
            let secret = remote::secret(secret, client_secret_file, "credentials.client_secret")?;
            client_secret(tenant_id, client_id, secret, authority_host)
        }
        AzureCredentialsConfig::Environment => {
            let var = |name: &'static str| {
                std::env::var(name).map_err(|_| Error::InvalidConfig {
                    field: name,
                    reason: "is not set",
                })
            };
            client_secret(
                var("AZURE_TENANT_ID")?,
                var("AZURE_CLIENT_ID")?,
                SecretString::from(var("AZURE_CLIENT_SECRET")?),
                std::env::var("AZURE_AUTHORITY_HOST").ok(),
            )
        }
        AzureCredentialsConfig::ManagedIdentity {
            client_id,
            endpoint,
        } => {
            let endpoint = endpoint.unwrap_or_else(|| {
                "http://169.254.169.254/metadata/identity/oauth2/token".to_owned()
            });
            if !https_or_http(&endpoint) {
                return Err(Error::InvalidConfig {
                    field: "credentials.endpoint",
                    reason: "must be an http(s) URL",
                });
            }
            let mut url =
                format!("{endpoint}?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
            if let Some(client_id) = client_id {
                url.push_str("&client_id=");
                url.extend(
                    client_id
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-'),
                );
            }
            Ok(TokenSource::ManagedIdentity { url })
        }
    }
}

impl Inner {
    fn tenant_prefix(&self, tenant: &TenantId) -> String {
        format!("{}-t{}-", self.prefix, tenant.as_uuid().simple())
    }

    /// The key name and version a handle names, if it is `tenant`'s.
    fn name_of<'a>(
        &self,
        tenant: &TenantId,
        key: &'a KeyHandle,
    ) -> Result<(&'a str, &'a str), Error> {
        key.check(&self.id, tenant)?;
        let (name, version) = key
            .reference()
            .split_once('/')
            .ok_or_else(|| Error::not_found(&self.id))?;
        let plain = |value: &str| {
            !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !name.starts_with(&self.tenant_prefix(tenant)) || !plain(name) || !plain(version) {
            return Err(Error::not_found(&self.id));
        }
        Ok((name, version))
    }

    async fn fetch_token(&self) -> Result<TokenAnswer, Error> {
        remote::fetch_token(
            &self.id,
            &self.guard,
            || match &self.source {
                TokenSource::ClientSecret {
                    url,
                    client_id,
                    secret,
                } => self.client.post(url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.expose_secret()),
                    ("scope", SCOPE),
                ]),
                TokenSource::ManagedIdentity { url } => {
                    self.client.get(url).header("Metadata", "true")
                }
            },
            |response| self.decode(response),
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<T, Error> {
        let url = format!("{}{path}?api-version={API_VERSION}", self.vault);
        remote::bearer_call(
            &self.bearer,
            &self.guard,
            idempotency,
            || self.fetch_token(),
            |token| {
                let request = self.client.request(method.clone(), &url).bearer_auth(token);
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            },
            |response| self.decode(response),
        )
        .await
    }

    /// Reads an answer of Key Vault (or of its token endpoint): errors are
    /// `{"error": {"code", "message"}}` (Entra ID's token endpoint: `{"error": "<code>"}`).
    async fn decode<T: DeserializeOwned>(&self, response: reqwest::Response) -> Result<T, Failure> {
        remote::decode_json(&self.id, "Azure", response, |answer| {
            let code = answer
                .body
                .pointer("/error/code")
                .and_then(Value::as_str)
                .or_else(|| answer.body.get("error").and_then(Value::as_str))
                .unwrap_or_default();
            let detail = format!("Azure answered {} ({code})", answer.status);
            match answer.status {
                404 => Failure::Final(Error::not_found(&self.id)),
                401 => {
                    self.bearer.refuse();
                    answer.failure(&self.id, detail)
                }
                _ => answer.failure(&self.id, detail),
            }
        })
        .await
    }

    /// Reads a key version, checks it belongs to `tenant`, and caches its public key.
    async fn load(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
    ) -> Result<(Arc<CachedKey>, Jwk), Error> {
        let bundle: KeyBundle = self
            .call(
                reqwest::Method::GET,
                &format!("/keys/{name}/{version}"),
                None,
                Idempotency::Idempotent,
            )
            .await?;
        if !bundle.attributes.enabled
            || bundle.tags.get(TENANT_TAG).map(String::as_str) != Some(&tenant.to_string())
            || bundle.tags.get(PROVIDER_TAG).map(String::as_str) != Some(self.id.as_str())
        {
            return Err(Error::not_found(&self.id));
        }
        let jwk = public_jwk(&bundle.key)?;
        let cached = Arc::new(CachedKey {
            kid: Kid::new(jwk.thumbprint())?,
            verifying: VerifyingKey::from_jwk(&jwk)
                .map_err(|err| Error::internal(&self.id, err))?,
        });
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{name}/{version}"), Arc::clone(&cached));
        Ok((cached, jwk))
    }

    async fn key(&self, tenant: &TenantId, handle: &KeyHandle) -> Result<Arc<CachedKey>, Error> {
        let (name, version) = self.name_of(tenant, handle)?;
        let cached = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(handle.reference())
            .cloned();
        let key = match cached {
            Some(key) => key,
            None => self.load(tenant, name, version).await?.0,
        };
        if key.kid == *handle.kid() {
            Ok(key)
        } else {
            Err(Error::not_found(&self.id))
        }
    }

    fn forget(&self, name: &str) {
        let prefix = format!("{name}/");
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|reference, _| !reference.starts_with(&prefix));
    }
}

/// The public JWK of Key Vault's JSON web key (`kty` `EC`, `EC-HSM`, `RSA` or `RSA-HSM`).
fn public_jwk(key: &Value) -> Result<Jwk, Error> {
    const BAD: Error = Error::InvalidKey {
        reason: "Azure returned an unusable public key",
    };
    let field = |name: &str| key.get(name).and_then(Value::as_str).ok_or(BAD);
    let public = match field("kty")? {
        "EC" | "EC-HSM" => json!({
            "kty": "EC", "crv": field("crv")?, "x": field("x")?, "y": field("y")?,
        }),
        "RSA" | "RSA-HSM" => json!({ "kty": "RSA", "n": field("n")?, "e": field("e")? }),
        _ => return Err(BAD),
    };
    serde_json::from_value(public).map_err(|_| BAD)
}

#[async_trait]
impl KeyProvider for AzureKeyVaultProvider {
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
        if !self.capabilities.supports_usage(spec.usage) {
            return Err(unsupported());
        }
        let mut body = create_body(spec.usage).ok_or_else(unsupported)?;
        body["attributes"] = json!({ "enabled": true, "exportable": false });
        body["tags"] = json!({ TENANT_TAG: tenant.to_string(), PROVIDER_TAG: inner.id.as_str() });
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{}{}", inner.tenant_prefix(tenant), &random[..16]);
        let bundle: KeyBundle = inner
            .call(
                reqwest::Method::POST,
                &format!("/keys/{name}/create"),
                Some(&body),
                Idempotency::Once,
            )
            .await?;
        let version = bundle
            .key
            .get("kid")
            .and_then(Value::as_str)
            .and_then(|kid| kid.rsplit('/').next())
            .ok_or_else(|| Error::unavailable(&inner.id, "the new key has no version"))?
            .to_owned();
        let (cached, jwk) = inner.load(tenant, &name, &version).await?;
        let handle = KeyHandle::new(
            inner.id.clone(),
            *tenant,
            cached.kid.clone(),
            spec.usage,
            format!("{name}/{version}"),
        );
        ProviderKey::new(handle, &jwk)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let KeyUsage::Sign(alg) = key.usage() else {
            key.check(&self.inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: self.inner.id.clone(),
                operation: "signing with this key",
            });
        };
        let cached = self.inner.key(tenant, key).await?;
        Ok(Arc::new(AzureSigner {
            inner: Arc::clone(&self.inner),
            reference: key.reference().to_owned(),
            alg,
            key: cached,
        }))
    }

    async fn decrypter(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Arc<dyn Decrypter>, Error> {
        let KeyUsage::Decrypt(alg) = key.usage() else {
            key.check(&self.inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: self.inner.id.clone(),
                operation: "decryption with this key",
            });
        };
        self.inner.key(tenant, key).await?;
        Ok(Arc::new(AzureDecrypter {
            inner: Arc::clone(&self.inner),
            reference: key.reference().to_owned(),
            alg,
        }))
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        let inner = &self.inner;
        let (name, version) = inner.name_of(tenant, key)?;
        // From Key Vault, not the cache: another replica may have deleted it.
        let (cached, _) = inner.load(tenant, name, version).await?;
        if cached.kid != *key.kid() {
            return Err(Error::not_found(&inner.id));
        }
        let _: Value = inner
            .call(
                reqwest::Method::DELETE,
                &format!("/keys/{name}"),
                None,
                Idempotency::Idempotent,
            )
            .await?;
        inner.forget(name);
        Ok(())
    }
}

impl fmt::Debug for AzureKeyVaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultProvider")
            .field("id", &self.inner.id)
            .field("vault", &self.inner.vault)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Signs with one version of a Key Vault key.
struct AzureSigner {
    inner: Arc<Inner>,
    reference: String,
    alg: Algorithm,
    key: Arc<CachedKey>,
}

impl AzureSigner {
    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let digest = match self.alg {
            Algorithm::Es384 => &aws_lc_rs::digest::SHA384,
            _ => &aws_lc_rs::digest::SHA256,
        };
        let digest = aws_lc_rs::digest::digest(digest, message);
        let body = json!({ "alg": self.alg.name(), "value": b64url_encode(digest.as_ref()) });
        let answer: Result<OperationResult, Error> = inner
            .call(
                reqwest::Method::POST,
                &format!("/keys/{}/sign", self.reference),
                Some(&body),
                Idempotency::Idempotent,
            )
            .await;
        let answer = match answer {
            Err(Error::KeyNotFound { provider }) => {
                if let Some((name, _)) = self.reference.split_once('/') {
                    inner.forget(name);
                }
                return Err(Error::KeyNotFound { provider });
            }
            other => other?,
        };
        let signature = b64url_decode(&answer.value)
            .map_err(|_| Error::internal(&inner.id, "Azure returned a malformed signature"))?;
        self.key
            .verifying
            .verify(self.alg, message, &signature)
            .map_err(|_| {
                Error::internal(
                    &inner.id,
                    "Azure returned a signature that does not verify with the key's public key",
                )
            })?;
        Ok(signature)
    }
}

#[async_trait]
impl Signer for AzureSigner {
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

impl fmt::Debug for AzureSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureSigner")
            .field("provider", &self.inner.id)
            .field("kid", &self.key.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Unwraps JWE content keys with one version of a Key Vault decryption key.
struct AzureDecrypter {
    inner: Arc<Inner>,
    reference: String,
    alg: KeyManagement,
}

impl AzureDecrypter {
    /// `POST {vault}/keys/{name}/{version}/unwrapkey`.
    async fn unwrap_remote(&self, encrypted_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let inner = &self.inner;
        let body = json!({ "alg": self.alg.name(), "value": b64url_encode(encrypted_key) });
        let answer: Result<OperationResult, Error> = inner
            .call(
                reqwest::Method::POST,
                &format!("/keys/{}/unwrapkey", self.reference),
                Some(&body),
                Idempotency::Idempotent,
            )
            .await;
        if let Err(Error::KeyNotFound { .. }) = &answer
            && let Some((name, _)) = self.reference.split_once('/')
        {
            inner.forget(name);
        }
        let answer = answer?;
        b64url_decode(&answer.value)
            .map(Zeroizing::new)
            .map_err(|_| Error::internal(&inner.id, "Azure returned a malformed key"))
    }
}

#[async_trait]
impl Decrypter for AzureDecrypter {
    fn supports(&self, alg: KeyManagement) -> bool {
        alg == self.alg
    }

    async fn content_key(
        &self,
        header: &JweHeader,
        encrypted_key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        if header.alg != self.alg || encrypted_key.is_empty() {
            return Err(JoseError::DecryptionFailed);
        }
        self.unwrap_remote(encrypted_key)
            .await
            .map_err(|err| match err.kind() {
                // Key Vault refuses a bad ciphertext with 400, which is `Internal` here: like
                // every other refusal it is the one `DecryptionFailed`, no oracle.
                ErrorKind::Unavailable => {
                    JoseError::KeySource(Box::new(err), ErrorKind::Unavailable)
                }
                _ => JoseError::DecryptionFailed,
            })
    }
}

impl fmt::Debug for AzureDecrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureDecrypter")
            .field("provider", &self.inner.id)
            .field("alg", &self.alg.name())
            .finish_non_exhaustive()
    }
}
