//! A [`KeyProvider`] on Azure Key Vault keys (feature `azure`), with the Azure SDK for Rust:
//! `azure_security_keyvault_keys`' `KeyClient` and an `azure_identity` credential, over the
//! application's `reqwest` client.
//!
//! - **Keys.** `generate` creates a key (`create_key`) of type `EC` (`P-256` for ES256,
//!   `P-384` for ES384) or `RSA` (2048 bits, RS256 and PS256), with `key_ops: [sign, verify]`
//!   and tags `edk-tenant` and `edk-provider`, named `<key_prefix>-t<tenant>-<random>`. The
//!   handle's reference is `<name>/<version>`.
//! - **Tenant binding.** The name carries the tenant and the first use of a version reads it
//!   (`get_key` of that version): enabled, tagged for this tenant and provider, its public
//!   key's thumbprint the handle's `kid`. The result is cached: signing makes no metadata
//!   call.
//! - **Signing** (`sign`) sends the SHA-256 or SHA-384 digest of the input with the JOSE
//!   `alg`; Key Vault answers JOSE signatures (`r||s` for ECDSA). Every signature is verified
//!   here with the cached public key before it is returned.
//! - **Decryption keys** (`RSA-OAEP-256`, the JWE key management algorithm): `RSA` 2048 keys
//!   with `key_ops: [wrapKey, unwrapKey]`. The KMS wraps content keys with the public key, as
//!   for any key; unwrapping is Key Vault's (`unwrap_key` with `RSA-OAEP-256`), through the
//!   provider's [`Decrypter`]: JWE decryption and `Kms::unwrap_key`.
//!   [`AzureKeyVaultProvider::wrap`] asks Key Vault to wrap instead (`wrap_key`). Every
//!   refusal of an unwrap is the one `DecryptionFailed`.
//! - **Destroying** deletes the key (`delete_key`; with soft delete on, it can be recovered by
//!   an operator until purged). A deleted key is `KeyNotFound`.
//! - **Credentials**, chosen by configuration (`azure_identity` 1.0 has no default chain): a
//!   service principal's client secret (`ClientSecretCredential`, inline, in a file or from
//!   `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity
//!   (`WorkloadIdentityCredential`: a federated token file, as AKS projects it) or the host's
//!   managed identity (`ManagedIdentityCredential`). The SDK caches tokens; the client learns
//!   the token scope from Key Vault's `WWW-Authenticate` challenge to its first request, and
//!   checks that the challenge's resource is the vault's domain unless
//!   `verify_challenge_resource` is off. When Key Vault refuses a token (401), the provider
//!   builds its client and credential afresh once (a revoked token is not used again) and
//!   then gives up with a clear `Unavailable` error.
//! - **Failures** go through the shared remote behaviour ([`remote`]), not the SDK's retry
//!   policy (switched off): 429 (with `Retry-After`) is retried, 5xx and connection failures
//!   too for idempotent calls, then `Unavailable`; a circuit breaker per provider; per-attempt
//!   timeouts. Key Vault's `{"error": {code, message}}` and Entra ID's refusals go to the log,
//!   never to callers.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, HttpClient, Method, Request, RequestContent,
    RetryOptions, Transport,
};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use azure_security_keyvault_keys::models::{
    CreateKeyParameters, CurveName, EncryptionAlgorithm, Key, KeyAttributes,
    KeyClientGetKeyOptions, KeyClientSignOptions, KeyClientWrapKeyOptions, KeyOperation,
    KeyOperationParameters, KeyOperationResult, KeyType, SignParameters, SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use edk_core::encoding::b64url_encode;
use edk_core::jose::jwe::{Decrypter, JweHeader, KeyManagement};
use edk_core::jose::{Algorithm, JoseError, Jwk, SignError, Signer, VerifyingKey};
use edk_core::{ErrorKind, HasKind as _, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::remote::{self, Failure, Guard, Idempotency, RemoteMetrics, RemoteOptions};
use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};

/// The tag naming the tenant a key belongs to.
pub const TENANT_TAG: &str = "edk-tenant";
/// The tag naming the provider that made a key.
pub const PROVIDER_TAG: &str = "edk-provider";
/// The OAuth 2 scope of Key Vault (the SDK learns it from Key Vault's challenge).
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// Where the provider's Azure credentials come from, tagged by `kind`.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AzureCredentialsConfig {
    /// A service principal with a client secret (`ClientSecretCredential`).
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
        /// The authority (an `https` URL); default `https://login.microsoftonline.com`.
        #[serde(default)]
        authority_host: Option<String>,
    },
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` and
    /// optionally `AZURE_AUTHORITY_HOST`, read when the provider is built
    /// (`ClientSecretCredential`).
    Environment,
    /// Workload identity federation (`WorkloadIdentityCredential`): a federated token file
    /// exchanged for a token; each field defaults to its variable (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`), as AKS sets them.
    WorkloadIdentity {
        /// The Entra ID tenant id.
        #[serde(default)]
        tenant_id: Option<String>,
        /// The application (client) id.
        #[serde(default)]
        client_id: Option<String>,
        /// The federated token file.
        #[serde(default)]
        token_file: Option<PathBuf>,
        /// The authority (an `https` URL); default `AZURE_AUTHORITY_HOST` or
        /// `https://login.microsoftonline.com`.
        #[serde(default)]
        authority_host: Option<String>,
    },
    /// The managed identity of the host (`ManagedIdentityCredential`: the instance metadata
    /// endpoint, or App Service's and Azure Arc's where their variables say so).
    ManagedIdentity {
        /// A user-assigned identity's client id; default the system-assigned identity.
        #[serde(default)]
        client_id: Option<String>,
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
            Self::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .field("authority_host", authority_host)
                .finish(),
            Self::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
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
    /// The vault's URL, `https`, e.g. `https://edk-prod.vault.azure.net`.
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
    /// Certificates (a PEM file) of further CAs to trust for the vault and the token endpoint,
    /// besides the web PKI roots: a private endpoint behind a TLS-inspecting proxy, a test
    /// server. Used when the provider builds its own HTTP client.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether the resource in Key Vault's authentication challenge must be the vault URL's
    /// domain (the SDK's check against sending tokens to a look-alike host). Default `true`;
    /// off only for a vault reached by IP address or a name outside its domain.
    #[serde(default = "default_true")]
    pub verify_challenge_resource: bool,
    /// Timeouts, retries and the circuit breaker.
    #[serde(default)]
    pub remote: RemoteOptions,
}

fn default_prefix() -> String {
    "edk".to_owned()
}

const fn default_true() -> bool {
    true
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
            ca_file: None,
            verify_challenge_resource: true,
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

/// The create request for `usage`, with the tags.
#[expect(
    clippy::field_reassign_with_default,
    reason = "the SDK's models are non_exhaustive, so they cannot be built with a struct literal"
)]
fn create_parameters(
    usage: KeyUsage,
    tags: HashMap<String, String>,
) -> Option<CreateKeyParameters> {
    let (kty, curve, key_size, ops) = match usage {
        KeyUsage::Sign(Algorithm::Es256) => (
            KeyType::Ec,
            Some(CurveName::P256),
            None,
            vec![KeyOperation::Sign, KeyOperation::Verify],
        ),
        KeyUsage::Sign(Algorithm::Es384) => (
            KeyType::Ec,
            Some(CurveName::P384),
            None,
            vec![KeyOperation::Sign, KeyOperation::Verify],
        ),
        KeyUsage::Sign(Algorithm::Rs256 | Algorithm::Ps256) => (
            KeyType::Rsa,
            None,
            Some(2048),
            vec![KeyOperation::Sign, KeyOperation::Verify],
        ),
        KeyUsage::Decrypt(KeyManagement::RsaOaep256) => (
            KeyType::Rsa,
            None,
            Some(2048),
            vec![KeyOperation::WrapKey, KeyOperation::UnwrapKey],
        ),
        _ => return None,
    };
    let mut attributes = KeyAttributes::default();
    attributes.enabled = Some(true);
    attributes.exportable = Some(false);
    let mut parameters = CreateKeyParameters::default();
    parameters.kty = Some(kty);
    parameters.curve = curve;
    parameters.key_size = key_size;
    parameters.key_ops = Some(ops);
    parameters.key_attributes = Some(attributes);
    parameters.tags = Some(tags);
    Some(parameters)
}

/// The `wrapkey` and `unwrapkey` parameters for `value` with `RSA-OAEP-256`.
#[expect(
    clippy::field_reassign_with_default,
    reason = "the SDK's models are non_exhaustive, so they cannot be built with a struct literal"
)]
fn oaep_parameters(value: &[u8]) -> KeyOperationParameters {
    let mut parameters = KeyOperationParameters::default();
    parameters.algorithm = Some(EncryptionAlgorithm::RsaOaep256);
    parameters.value = Some(value.to_vec());
    parameters
}

fn signature_algorithm(alg: Algorithm) -> SignatureAlgorithm {
    match alg {
        Algorithm::Es384 => SignatureAlgorithm::Es384,
        Algorithm::Rs256 => SignatureAlgorithm::Rs256,
        Algorithm::Ps256 => SignatureAlgorithm::Ps256,
        _ => SignatureAlgorithm::Es256,
    }
}

struct CachedKey {
    kid: Kid,
    verifying: VerifyingKey,
}

/// A [`KeyProvider`] on Azure Key Vault; see the [module docs](self).
pub struct AzureKeyVaultProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

/// What builds a `KeyClient` (again, when Key Vault refused its token).
struct ClientFactory {
    vault: String,
    credentials: AzureCredentialsConfig,
    /// The client secret, read once (inline, file or environment).
    secret: Option<SecretString>,
    http: reqwest::Client,
    verify_challenge_resource: bool,
}

struct Inner {
    id: ProviderId,
    vault: String,
    prefix: String,
    factory: ClientFactory,
    client: RwLock<Arc<KeyClient>>,
    /// Key Vault refused a token since the last look (HTTP 401).
    refused: AtomicBool,
    guard: Guard,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
}

fn valid_prefix(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn https(value: &str) -> bool {
    value.starts_with("https://")
}

/// Why a credential could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the Azure credential could not be built: {0}")]
struct CredentialSetup(String);

/// Why a call failed, as said to callers (Key Vault's and Entra ID's texts go to the log).
#[derive(Debug, thiserror::Error)]
enum AzureFailure {
    #[error("Key Vault refused the bearer token (401 Unauthorized)")]
    TokenRefused,
    #[error("Key Vault refused the operation (403 Forbidden)")]
    Forbidden,
    #[error("Entra ID refused the credentials")]
    CredentialRefused,
    #[error("Key Vault answered {0}")]
    Status(u16),
    #[error("Key Vault could not be reached")]
    Unreachable,
    #[error("Key Vault answered an unexpected body")]
    UnexpectedBody,
}

/// The SDK's HTTP transport on the application's `reqwest` client (the SDK's own adapter is
/// for another `reqwest` major version): requests as the SDK built them, answers read whole.
#[derive(Debug)]
struct ReqwestTransport(reqwest::Client);

#[async_trait]
impl HttpClient for ReqwestTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::ErrorKind as Kind;
        use azure_core::http::headers::{HeaderName, HeaderValue, Headers};

        let method = match request.method() {
            Method::Delete => reqwest::Method::DELETE,
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Patch => reqwest::Method::PATCH,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            _ => {
                return Err(azure_core::Error::with_message(
                    Kind::Other,
                    "an HTTP method this transport does not send",
                ));
            }
        };
        let mut builder = self.0.request(method, request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            Body::SeekableStream(_) => {
                return Err(azure_core::Error::with_message(
                    Kind::Other,
                    "streamed request bodies are not supported",
                ));
            }
        };
        let response = builder.send().await.map_err(|err| {
            let kind = if err.is_connect() {
                Kind::Connection
            } else {
                Kind::Io
            };
            azure_core::Error::with_error(kind, err, "the request failed")
        })?;
        let status = response.status().as_u16();
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(
                    HeaderName::from(name.as_str().to_owned()),
                    HeaderValue::from(value.to_owned()),
                );
            }
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| azure_core::Error::with_error(Kind::Io, err, "the answer was cut"))?;
        Ok(AsyncRawResponse::from_bytes(status.into(), headers, body))
    }
}

/// A cloud whose token endpoint is under `authority_host`.
fn custom_cloud(authority_host: String) -> azure_core::cloud::CloudConfiguration {
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = authority_host;
    custom.into()
}

impl ClientFactory {
    fn credential(&self) -> Result<Arc<dyn TokenCredential>, String> {
        let client_options = || ClientOptions {
            transport: Some(Transport::new(Arc::new(ReqwestTransport(
                self.http.clone(),
            )))),
            retry: RetryOptions::none(),
            ..Default::default()
        };
        let client_secret = |tenant_id: &str,
                             client_id: &str,
                             secret: &SecretString,
                             authority: Option<String>|
         -> Result<Arc<dyn TokenCredential>, String> {
            let mut client_options = client_options();
            if let Some(authority) = authority {
                client_options.cloud = Some(Arc::new(custom_cloud(authority)));
            }
            let credential = ClientSecretCredential::new(
                tenant_id,
                client_id.to_owned(),
                Secret::new(secret.expose_secret().to_owned()),
                Some(ClientSecretCredentialOptions { client_options }),
            )
            .map_err(|err| err.to_string())?;
            Ok(credential)
        };
        match &self.credentials {
            AzureCredentialsConfig::ClientSecret {
                tenant_id,
                client_id,
                authority_host,
                ..
            } => client_secret(
                tenant_id,
                client_id,
                self.secret.as_ref().ok_or("no client secret")?,
                authority_host.clone(),
            ),
            AzureCredentialsConfig::Environment => client_secret(
                &std::env::var("AZURE_TENANT_ID").map_err(|_| "AZURE_TENANT_ID is not set")?,
                &std::env::var("AZURE_CLIENT_ID").map_err(|_| "AZURE_CLIENT_ID is not set")?,
                self.secret.as_ref().ok_or("no client secret")?,
                std::env::var("AZURE_AUTHORITY_HOST").ok(),
            ),
            AzureCredentialsConfig::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => {
                let mut client_options = client_options();
                if let Some(authority) = authority_host {
                    client_options.cloud = Some(Arc::new(custom_cloud(authority.clone())));
                }
                let credential =
                    WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                        credential_options: azure_identity::ClientAssertionCredentialOptions {
                            client_options,
                        },
                        tenant_id: tenant_id.clone(),
                        client_id: client_id.clone(),
                        token_file_path: token_file.clone(),
                    }))
                    .map_err(|err| err.to_string())?;
                Ok(credential)
            }
            AzureCredentialsConfig::ManagedIdentity { client_id } => {
                let credential =
                    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                        client_options: client_options(),
                    }))
                    .map_err(|err| err.to_string())?;
                Ok(credential)
            }
        }
    }

    fn client(&self) -> Result<KeyClient, String> {
        let credential = self.credential()?;
        let options = KeyClientOptions {
            client_options: ClientOptions {
                transport: Some(Transport::new(Arc::new(ReqwestTransport(
                    self.http.clone(),
                )))),
                retry: RetryOptions::none(),
                ..Default::default()
            },
            verify_challenge_resource: Some(self.verify_challenge_resource),
            ..Default::default()
        };
        KeyClient::new(&self.vault, credential, Some(options)).map_err(|err| err.to_string())
    }
}

impl AzureKeyVaultProvider {
    /// Builds the provider with a reqwest client of its own, with the configured timeouts and
    /// the web PKI roots (plus `ca_file`'s): the application must have a reqwest TLS feature
    /// with rustls (the EDK servers enable rustls on aws-lc-rs and install it as the process's
    /// crypto provider first).
    ///
    /// # Errors
    /// As [`with_client`](Self::with_client); [`Error::InvalidConfig`] for an unreadable or
    /// malformed `ca_file`.
    pub fn new(config: AzureKeyVaultProviderConfig) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.remote.connect_timeout())
            .timeout(config.remote.timeout());
        if let Some(path) = &config.ca_file {
            const BAD: Error = Error::InvalidConfig {
                field: "ca_file",
                reason: "must be a readable PEM file of CA certificates",
            };
            let pem = std::fs::read(path).map_err(|_| BAD)?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| BAD)?;
            if certificates.is_empty() {
                return Err(BAD);
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|err| Error::internal(&config.id, err))?;
        Self::with_client(config, client)
    }

    /// Builds the provider with `client` (the application's HTTP client) as the SDK's
    /// transport, for Key Vault and for the token endpoint. Nothing is called yet: the first
    /// request draws Key Vault's challenge and fetches a token.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a vault URL or authority that is not an `https` URL, a
    /// prefix with other characters than letters, digits and `-`, an algorithm or key
    /// management algorithm this provider does not offer, a secret given both or neither
    /// inline and in a file, a missing variable (`environment`), or a credential the SDK
    /// refuses (a malformed tenant id); [`Error::SecretFile`] for an unreadable secret file.
    pub fn with_client(
        config: AzureKeyVaultProviderConfig,
        client: reqwest::Client,
    ) -> Result<Self, Error> {
        config.remote.validate()?;
        if !https(&config.vault_url) {
            return Err(Error::InvalidConfig {
                field: "vault_url",
                reason: "must be an https URL",
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
        let secret = read_secret(&config.credentials)?;
        let vault = config.vault_url.trim_end_matches('/').to_owned();
        let factory = ClientFactory {
            vault: vault.clone(),
            credentials: config.credentials,
            secret,
            http: client,
            verify_challenge_resource: config.verify_challenge_resource,
        };
        let key_client = factory.client().map_err(|reason| {
            tracing::warn!(provider = %config.id, %reason, "the Azure Key Vault client could not be built");
            Error::InvalidConfig {
                field: "credentials",
                reason: "the Azure SDK refused the credentials' configuration",
            }
        })?;
        let capabilities = Capabilities::new()
            .with_signing(algorithms)
            .with_decryption(key_management)
            .with_exportability(Exportability::Never)
            .with_storage(KeyStorage::InProvider);
        Ok(Self {
            inner: Arc::new(Inner {
                guard: Guard::new(config.id.clone(), config.remote),
                id: config.id,
                vault,
                prefix: config.key_prefix,
                factory,
                client: RwLock::new(Arc::new(key_client)),
                refused: AtomicBool::new(false),
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
    /// (`wrap_key`, `RSA-OAEP-256`): the `encrypted_key` of a JWE to that key. Wrapping needs
    /// only the public key, so the KMS does it itself (`Kms::wrap_key`); this asks the vault
    /// instead.
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
        if !matches!(key.usage(), KeyUsage::Decrypt(_)) {
            key.check(&inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: inner.id.clone(),
                operation: "wrapping with this key",
            });
        }
        inner.key(tenant, key).await?;
        let (name, version) = inner.name_of(tenant, key)?;
        let parameters = oaep_parameters(key_bytes);
        let answer: KeyOperationResult = inner
            .call(Idempotency::Idempotent, |client| {
                let parameters = parameters.clone();
                async move {
                    let body: RequestContent<KeyOperationParameters> = parameters.try_into()?;
                    client
                        .wrap_key(
                            name,
                            body,
                            Some(KeyClientWrapKeyOptions {
                                key_version: Some(version.into()),
                                ..Default::default()
                            }),
                        )
                        .await?
                        .into_model()
                }
            })
            .await?;
        answer
            .result
            .ok_or_else(|| Error::internal(&inner.id, "Azure returned no wrapped key"))
    }
}

/// The client secret of `credentials`, read when the provider is built.
fn read_secret(credentials: &AzureCredentialsConfig) -> Result<Option<SecretString>, Error> {
    match credentials {
        AzureCredentialsConfig::ClientSecret {
            tenant_id,
            client_secret,
            client_secret_file,
            authority_host,
            ..
        } => {
            if authority_host.as_deref().is_some_and(|host| !https(host)) {
                return Err(Error::InvalidConfig {
                    field: "credentials.authority_host",
                    reason: "must be an https URL",
                });
            }
            check_tenant(tenant_id)?;
            remote::secret(
                client_secret.clone(),
                client_secret_file.clone(),
                "credentials.client_secret",
            )
            .map(Some)
        }
        AzureCredentialsConfig::Environment => {
            let var = |name: &'static str| {
                std::env::var(name).map_err(|_| Error::InvalidConfig {
                    field: name,
                    reason: "is not set",
                })
            };
            check_tenant(&var("AZURE_TENANT_ID")?)?;
            var("AZURE_CLIENT_ID")?;
            if std::env::var("AZURE_AUTHORITY_HOST").is_ok_and(|host| !https(&host)) {
                return Err(Error::InvalidConfig {
                    field: "AZURE_AUTHORITY_HOST",
                    reason: "must be an https URL",
                });
            }
            Ok(Some(SecretString::from(var("AZURE_CLIENT_SECRET")?)))
        }
        AzureCredentialsConfig::WorkloadIdentity {
            tenant_id,
            authority_host,
            ..
        } => {
            if authority_host.as_deref().is_some_and(|host| !https(host)) {
                return Err(Error::InvalidConfig {
                    field: "credentials.authority_host",
                    reason: "must be an https URL",
                });
            }
            if let Some(tenant_id) = tenant_id {
                check_tenant(tenant_id)?;
            }
            Ok(None)
        }
        AzureCredentialsConfig::ManagedIdentity { .. } => Ok(None),
    }
}

fn check_tenant(tenant_id: &str) -> Result<(), Error> {
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
    Ok(())
}

/// The `Retry-After` of an SDK error's raw response, in whole seconds.
fn retry_after(err: &azure_core::Error) -> Option<Duration> {
    let azure_core::error::ErrorKind::HttpResponse { raw_response, .. } = err.kind() else {
        return None;
    };
    let response = raw_response.as_ref()?;
    remote::retry_after(
        response
            .headers()
            .get_optional_str(&azure_core::http::headers::RETRY_AFTER),
    )
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

    fn current_client(&self) -> Arc<KeyClient> {
        Arc::clone(
            &self
                .client
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// A new client with a new credential (and so no cached token).
    fn renew_client(&self) -> Result<(), Error> {
        let client = self
            .factory
            .client()
            .map_err(|reason| Error::unavailable(&self.id, CredentialSetup(reason)))?;
        *self
            .client
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(client);
        Ok(())
    }

    /// Classifies an SDK error: 404 is `KeyNotFound`, 429 throttling (with `Retry-After`),
    /// 401 a refused token (noted, for one renewal), 403 and a refused credential
    /// `Unavailable`, other 4xx `Internal`, 5xx and transport failures transient.
    fn classify(&self, err: &azure_core::Error) -> Failure {
        use azure_core::error::ErrorKind as Kind;
        match err.kind() {
            Kind::HttpResponse {
                status, error_code, ..
            } => {
                let code = error_code.as_deref().unwrap_or_default();
                let status = u16::from(*status);
                tracing::debug!(provider = %self.id, status, code, error = %err, "Key Vault refused a call");
                match status {
                    404 => Failure::Final(Error::not_found(&self.id)),
                    429 => Failure::Throttled {
                        source: Box::new(AzureFailure::Status(429)),
                        retry_after: retry_after(err),
                    },
                    401 => {
                        self.refused.store(true, Ordering::SeqCst);
                        Failure::Final(Error::unavailable(&self.id, AzureFailure::TokenRefused))
                    }
                    403 => Failure::Final(Error::unavailable(&self.id, AzureFailure::Forbidden)),
                    400..=499 => {
                        Failure::Final(Error::internal(&self.id, AzureFailure::Status(status)))
                    }
                    _ => Failure::Transient(Box::new(AzureFailure::Status(status))),
                }
            }
            Kind::Credential => {
                tracing::warn!(provider = %self.id, error = %err, "Entra ID refused the credentials");
                Failure::Final(Error::unavailable(
                    &self.id,
                    AzureFailure::CredentialRefused,
                ))
            }
            Kind::DataConversion => {
                tracing::warn!(provider = %self.id, error = %err, "Key Vault answered an unexpected body");
                Failure::Final(Error::unavailable(&self.id, AzureFailure::UnexpectedBody))
            }
            _ => {
                tracing::debug!(provider = %self.id, error = %err, "Key Vault could not be reached");
                Failure::Transient(Box::new(AzureFailure::Unreachable))
            }
        }
    }

    /// Runs `operation` with the client under the guard (timeouts, retries, the breaker);
    /// when Key Vault refused the token, once more with a new client and credential.
    async fn call<T, F, Fut>(&self, idempotency: Idempotency, operation: F) -> Result<T, Error>
    where
        F: Fn(Arc<KeyClient>) -> Fut,
        Fut: Future<Output = azure_core::Result<T>>,
    {
        let mut renewed = false;
        loop {
            let client = self.current_client();
            let outcome = self
                .guard
                .call(idempotency, || {
                    let attempt = operation(Arc::clone(&client));
                    async move { attempt.await.map_err(|err| self.classify(&err)) }
                })
                .await;
            match outcome {
                Err(Error::Unavailable { .. })
                    if !renewed && self.refused.swap(false, Ordering::SeqCst) =>
                {
                    renewed = true;
                    self.renew_client()?;
                }
                other => {
                    self.refused.store(false, Ordering::SeqCst);
                    return other;
                }
            }
        }
    }

    /// Reads a key version, checks it belongs to `tenant`, and caches its public key.
    async fn load(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
    ) -> Result<(Arc<CachedKey>, Jwk), Error> {
        let key: Key = self
            .call(Idempotency::Idempotent, |client| async move {
                client
                    .get_key(
                        name,
                        Some(KeyClientGetKeyOptions {
                            key_version: Some(version.into()),
                            ..Default::default()
                        }),
                    )
                    .await?
                    .into_model()
            })
            .await?;
        self.accept(tenant, name, version, &key)
    }

    /// Checks a key read or created for `tenant` and caches its public key.
    fn accept(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
        key: &Key,
    ) -> Result<(Arc<CachedKey>, Jwk), Error> {
        let enabled = key
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.enabled)
            .unwrap_or(true);
        let tag = |name: &str| {
            key.tags
                .as_ref()
                .and_then(|tags| tags.get(name))
                .map(String::as_str)
        };
        if !enabled
            || tag(TENANT_TAG) != Some(&tenant.to_string())
            || tag(PROVIDER_TAG) != Some(self.id.as_str())
        {
            return Err(Error::not_found(&self.id));
        }
        let jwk = public_jwk(key)?;
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
fn public_jwk(key: &Key) -> Result<Jwk, Error> {
    const BAD: Error = Error::InvalidKey {
        reason: "Azure returned an unusable public key",
    };
    let key = key.key.as_ref().ok_or(BAD)?;
    let field = |value: &Option<Vec<u8>>| value.as_deref().map(b64url_encode).ok_or(BAD);
    let public = match key.kty.as_ref().ok_or(BAD)? {
        KeyType::Ec | KeyType::EcHsm => {
            let crv = match key.crv.as_ref().ok_or(BAD)? {
                CurveName::P256 => "P-256",
                CurveName::P384 => "P-384",
                _ => return Err(BAD),
            };
            json!({ "kty": "EC", "crv": crv, "x": field(&key.x)?, "y": field(&key.y)? })
        }
        KeyType::Rsa | KeyType::RsaHsm => {
            json!({ "kty": "RSA", "n": field(&key.n)?, "e": field(&key.e)? })
        }
        _ => return Err(BAD),
    };
    serde_json::from_value(public).map_err(|_| BAD)
}

/// The version in a key's `kid` (`{vault}/keys/{name}/{version}`).
fn version_of(key: &Key) -> Option<String> {
    let kid = key.key.as_ref()?.kid.as_deref()?;
    kid.rsplit('/').next().map(str::to_owned)
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
        let tags = HashMap::from([
            (TENANT_TAG.to_owned(), tenant.to_string()),
            (PROVIDER_TAG.to_owned(), inner.id.as_str().to_owned()),
        ]);
        let parameters = create_parameters(spec.usage, tags).ok_or_else(unsupported)?;
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{}{}", inner.tenant_prefix(tenant), &random[..16]);
        let created: Key = inner
            .call(Idempotency::Once, |client| {
                let parameters = parameters.clone();
                let name = name.as_str();
                async move {
                    let body: RequestContent<CreateKeyParameters> = parameters.try_into()?;
                    client.create_key(name, body, None).await?.into_model()
                }
            })
            .await?;
        let version = version_of(&created)
            .ok_or_else(|| Error::unavailable(&inner.id, "the new key has no version"))?;
        // The creation's answer is the new version's bundle: checked and cached as a read
        // would be, without another call.
        let (cached, jwk) = inner.accept(tenant, &name, &version, &created)?;
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
        inner
            .call(Idempotency::Idempotent, |client| async move {
                client.delete_key(name, None).await.map(|_| ())
            })
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
    #[expect(
        clippy::field_reassign_with_default,
        reason = "the SDK's models are non_exhaustive, so they cannot be built with a struct literal"
    )]
    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let digest = match self.alg {
            Algorithm::Es384 => &aws_lc_rs::digest::SHA384,
            _ => &aws_lc_rs::digest::SHA256,
        };
        let digest = aws_lc_rs::digest::digest(digest, message);
        let (name, version) = self
            .reference
            .split_once('/')
            .ok_or_else(|| Error::not_found(&inner.id))?;
        let mut parameters = SignParameters::default();
        parameters.algorithm = Some(signature_algorithm(self.alg));
        parameters.value = Some(digest.as_ref().to_vec());
        let answer: Result<KeyOperationResult, Error> = inner
            .call(Idempotency::Idempotent, |client| {
                let parameters = parameters.clone();
                async move {
                    let body: RequestContent<SignParameters> = parameters.try_into()?;
                    client
                        .sign(
                            name,
                            body,
                            Some(KeyClientSignOptions {
                                key_version: Some(version.into()),
                                ..Default::default()
                            }),
                        )
                        .await?
                        .into_model()
                }
            })
            .await;
        let answer = match answer {
            Err(Error::KeyNotFound { provider }) => {
                inner.forget(name);
                return Err(Error::KeyNotFound { provider });
            }
            other => other?,
        };
        let signature = answer
            .result
            .ok_or_else(|| Error::internal(&inner.id, "Azure returned no signature"))?;
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
    /// `unwrap_key` with `RSA-OAEP-256`.
    async fn unwrap_remote(&self, encrypted_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let inner = &self.inner;
        let (name, version) = self
            .reference
            .split_once('/')
            .ok_or_else(|| Error::not_found(&inner.id))?;
        let parameters = oaep_parameters(encrypted_key);
        let answer: Result<KeyOperationResult, Error> = inner
            .call(Idempotency::Idempotent, |client| {
                let parameters = parameters.clone();
                async move {
                    let body: RequestContent<KeyOperationParameters> = parameters.try_into()?;
                    client
                        .unwrap_key(name, version, body, None)
                        .await?
                        .into_model()
                }
            })
            .await;
        if let Err(Error::KeyNotFound { .. }) = &answer {
            inner.forget(name);
        }
        answer?
            .result
            .map(Zeroizing::new)
            .ok_or_else(|| Error::internal(&inner.id, "Azure returned no key"))
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
