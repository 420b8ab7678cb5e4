//! A [`KeyProvider`] on AWS KMS (feature `aws`), through `aws-sdk-kms`.
//!
//! - **Keys.** `generate` creates an asymmetric `SIGN_VERIFY` KMS key: `ECC_NIST_P256` (ES256),
//!   `ECC_NIST_P384` (ES384), `ECC_SECG_P256K1` (ES256K) or `RSA_2048` (RS256, PS256), tagged
//!   `edk:tenant` (the tenant id) and `edk:provider` (this provider's id). The handle's reference
//!   is the KMS key id. Decryption is not offered.
//! - **Tenant binding.** The first use of a key reads its metadata (`DescribeKey`: enabled,
//!   `SIGN_VERIFY`, the key spec the usage needs), its tags (`ListResourceTags`: this tenant and
//!   this provider) and its public key (`GetPublicKey`: its thumbprint must be the handle's
//!   `kid`), and caches the result: a handle re-labelled for another tenant, or naming another
//!   kid, is `KeyNotFound`. Signing makes no metadata call.
//! - **Signing.** `Sign` with `MessageType::DIGEST` (the SHA-256 or SHA-384 of the signing
//!   input, computed here, so inputs of any length sign) or, with `message_type: raw`, with
//!   `RAW` (inputs up to 4096 bytes). ECDSA signatures come back in DER and are turned into
//!   JOSE `r||s`. Every signature is verified here with the cached public key before it is
//!   returned, so a backend that signs the wrong thing (an emulator that hashes a digest again,
//!   a salt length a JOSE verifier refuses) is an error, never a bad token.
//! - **Destroying** schedules the key's deletion (`ScheduleKeyDeletion`, after
//!   `deletion_window_days`); a key pending deletion is `KeyNotFound`.
//! - **Credentials** come from the AWS default chain (environment, shared files, web identity,
//!   ECS and EC2 instance roles) or from static keys in the configuration.
//! - **Failures** go through the shared remote behaviour ([`remote`]): SDK
//!   retries are off and ours apply (throttling `ThrottlingException` and HTTP 429 retried
//!   with backoff and jitter, then `Unavailable`; a circuit breaker per provider).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    KeySpec as AwsKeySpec, KeyState, KeyUsageType, MessageType, SigningAlgorithmSpec, Tag,
};
use edk_core::jose::{Algorithm, Jwk, SignError, Signer, VerifyingKey};
use edk_core::{HasKind as _, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::remote::{self, Failure, Guard, Idempotency, RemoteMetrics, RemoteOptions};
use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};

/// The tag naming the tenant a key belongs to.
pub const TENANT_TAG: &str = "edk:tenant";
/// The tag naming the provider that made a key.
pub const PROVIDER_TAG: &str = "edk:provider";
/// The largest message AWS KMS signs with `MessageType::RAW`.
pub const RAW_MESSAGE_LIMIT: usize = 4096;

/// How signing inputs travel to AWS KMS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageMode {
    /// `MessageType::DIGEST`: the digest is computed here; inputs of any length (the default).
    #[default]
    Digest,
    /// `MessageType::RAW`: the input itself, at most [`RAW_MESSAGE_LIMIT`] bytes.
    Raw,
}

/// Where the provider's AWS credentials come from.
#[derive(Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AwsCredentialsConfig {
    /// The AWS default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
    /// `AWS_PROFILE` and the shared files, web identity tokens, ECS and EC2 instance roles.
    #[default]
    DefaultChain,
    /// Static keys from the configuration.
    Static {
        /// The access key id.
        access_key_id: String,
        /// The secret access key (or `secret_access_key_file`).
        #[serde(default)]
        secret_access_key: Option<SecretString>,
        /// A file holding the secret access key.
        #[serde(default)]
        secret_access_key_file: Option<std::path::PathBuf>,
        /// A session token, for temporary credentials.
        #[serde(default)]
        session_token: Option<SecretString>,
    },
}

impl fmt::Debug for AwsCredentialsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DefaultChain => f.write_str("DefaultChain"),
            Self::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Configuration of an [`AwsKmsProvider`].
///
/// ```yaml
/// kind: aws
/// id: aws-eu-west-1
/// region: eu-west-1
/// # endpoint: https://kms-fips.eu-west-1.amazonaws.com   # optional
/// credentials: { kind: default_chain }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsKmsProviderConfig {
    /// This provider's id.
    pub id: ProviderId,
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Another endpoint than the region's (a FIPS or VPC endpoint, an emulator).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where credentials come from; default the AWS default chain.
    #[serde(default)]
    pub credentials: AwsCredentialsConfig,
    /// The JWS algorithms to offer; default ES256, ES384, ES256K, RS256 and PS256.
    #[serde(default)]
    pub algorithms: Option<Vec<Algorithm>>,
    /// How signing inputs are sent; default `digest`.
    #[serde(default)]
    pub message_type: MessageMode,
    /// Days before a destroyed key is deleted (7 to 30); default 7.
    #[serde(default = "default_deletion_window")]
    pub deletion_window_days: i32,
    /// Timeouts, retries and the circuit breaker.
    #[serde(default)]
    pub remote: RemoteOptions,
}

const fn default_deletion_window() -> i32 {
    7
}

impl AwsKmsProviderConfig {
    /// A configuration for `region` with the default credential chain and defaults elsewhere.
    #[must_use]
    pub fn new(id: ProviderId, region: impl Into<String>) -> Self {
        Self {
            id,
            region: region.into(),
            endpoint: None,
            credentials: AwsCredentialsConfig::DefaultChain,
            algorithms: None,
            message_type: MessageMode::Digest,
            deletion_window_days: default_deletion_window(),
            remote: RemoteOptions::default(),
        }
    }
}

/// The algorithms AWS KMS signs with, and what each needs.
const SUPPORTED: [Algorithm; 5] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::Es256K,
    Algorithm::Rs256,
    Algorithm::Ps256,
];

fn key_spec(alg: Algorithm) -> Option<AwsKeySpec> {
    Some(match alg {
        Algorithm::Es256 => AwsKeySpec::EccNistP256,
        Algorithm::Es384 => AwsKeySpec::EccNistP384,
        Algorithm::Es256K => AwsKeySpec::EccSecgP256K1,
        Algorithm::Rs256 | Algorithm::Ps256 => AwsKeySpec::Rsa2048,
        _ => return None,
    })
}

fn signing_algorithm(alg: Algorithm) -> Option<SigningAlgorithmSpec> {
    Some(match alg {
        Algorithm::Es256 | Algorithm::Es256K => SigningAlgorithmSpec::EcdsaSha256,
        Algorithm::Es384 => SigningAlgorithmSpec::EcdsaSha384,
        Algorithm::Rs256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        Algorithm::Ps256 => SigningAlgorithmSpec::RsassaPssSha256,
        _ => return None,
    })
}

/// A key whose metadata, tags and public key were read once.
struct CachedKey {
    tenant: TenantId,
    kid: Kid,
    verifying: Arc<VerifyingKey>,
}

/// A [`KeyProvider`] on AWS KMS; see the [module docs](self).
pub struct AwsKmsProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

struct Inner {
    id: ProviderId,
    client: Client,
    guard: Guard,
    message_type: MessageMode,
    deletion_window_days: i32,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
}

impl AwsKmsProvider {
    /// Builds the provider and its AWS client. Nothing is called yet: credentials are resolved
    /// on the first request.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty region, an endpoint that is not an http(s) URL,
    /// an algorithm AWS KMS does not sign with, a deletion window outside 7 to 30 days or bad
    /// remote options; [`Error::SecretFile`] for an unreadable secret key file.
    pub async fn connect(config: AwsKmsProviderConfig) -> Result<Self, Error> {
        config.remote.validate()?;
        if config.region.trim().is_empty() {
            return Err(Error::InvalidConfig {
                field: "region",
                reason: "must not be empty",
            });
        }
        if !(7..=30).contains(&config.deletion_window_days) {
            return Err(Error::InvalidConfig {
                field: "deletion_window_days",
                reason: "must be between 7 and 30",
            });
        }
        let algorithms: BTreeSet<Algorithm> = match &config.algorithms {
            Some(list) => list.iter().copied().collect(),
            None => SUPPORTED.into_iter().collect(),
        };
        if algorithms.is_empty() || algorithms.iter().any(|alg| !SUPPORTED.contains(alg)) {
            return Err(Error::InvalidConfig {
                field: "algorithms",
                reason: "must list some of ES256, ES384, ES256K, RS256 and PS256",
            });
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.remote.connect_timeout())
                    .operation_attempt_timeout(config.remote.timeout())
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                return Err(Error::InvalidConfig {
                    field: "endpoint",
                    reason: "must be an http(s) URL",
                });
            }
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let AwsCredentialsConfig::Static {
            access_key_id,
            secret_access_key,
            secret_access_key_file,
            session_token,
        } = &config.credentials
        {
            let secret = match (secret_access_key, secret_access_key_file) {
                (Some(secret), None) => secret.clone(),
                (None, Some(path)) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|source| Error::SecretFile {
                            field: "credentials.secret_access_key_file",
                            source,
                        })?;
                    SecretString::from(text.trim().to_owned())
                }
                _ => {
                    return Err(Error::InvalidConfig {
                        field: "credentials.secret_access_key",
                        reason: "give exactly one of secret_access_key and secret_access_key_file",
                    });
                }
            };
            let credentials = Credentials::new(
                access_key_id.clone(),
                secret.expose_secret().to_owned(),
                session_token
                    .as_ref()
                    .map(|token| token.expose_secret().to_owned()),
                None,
                "edk-static",
            );
            loader = loader.credentials_provider(SharedCredentialsProvider::new(credentials));
        }
        // The SDK's loading future is large; boxed so that callers' futures stay small.
        let sdk = Box::pin(loader.load()).await;
        let capabilities = Capabilities::new()
            .with_signing(algorithms)
            .with_exportability(Exportability::Never)
            .with_hardware_backing(true)
            .with_storage(KeyStorage::InProvider);
        Ok(Self {
            inner: Arc::new(Inner {
                guard: Guard::new(config.id.clone(), config.remote),
                id: config.id,
                client: Client::new(&sdk),
                message_type: config.message_type,
                deletion_window_days: config.deletion_window_days,
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

    fn unsupported(&self, usage: KeyUsage) -> Error {
        Error::UnsupportedUsage {
            provider: self.inner.id.clone(),
            usage,
        }
    }
}

impl Inner {
    fn cached(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key_id)
            .cloned()
    }

    fn forget(&self, key_id: &str) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key_id);
    }

    /// The key a handle names, checked against the backend once and then cached.
    async fn key(&self, tenant: &TenantId, handle: &KeyHandle) -> Result<Arc<CachedKey>, Error> {
        handle.check(&self.id, tenant)?;
        let KeyUsage::Sign(alg) = handle.usage() else {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "signing with this key",
            });
        };
        let key_id = handle.reference();
        let cached = match self.cached(key_id) {
            Some(cached) => cached,
            None => {
                let loaded = Arc::new(self.load(key_id, alg).await?);
                self.keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key_id.to_owned(), Arc::clone(&loaded));
                loaded
            }
        };
        if cached.tenant == *tenant && cached.kid == *handle.kid() {
            Ok(cached)
        } else {
            Err(Error::not_found(&self.id))
        }
    }

    /// Reads a key's state, tags and public key.
    async fn load(&self, key_id: &str, alg: Algorithm) -> Result<CachedKey, Error> {
        let metadata = self
            .guard
            .call(Idempotency::Idempotent, || async {
                self.client
                    .describe_key()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|err| self.classify(err))
            })
            .await?
            .key_metadata
            .ok_or_else(|| Error::not_found(&self.id))?;
        if metadata.key_state != Some(KeyState::Enabled)
            || metadata.key_usage != Some(KeyUsageType::SignVerify)
            || metadata.key_spec != key_spec(alg)
        {
            return Err(Error::not_found(&self.id));
        }
        let tags = self
            .guard
            .call(Idempotency::Idempotent, || async {
                self.client
                    .list_resource_tags()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|err| self.classify(err))
            })
            .await?
            .tags
            .unwrap_or_default();
        let tag = |name: &str| {
            tags.iter()
                .find(|tag| tag.tag_key == name)
                .map(|tag| tag.tag_value.clone())
        };
        if tag(PROVIDER_TAG).as_deref() != Some(self.id.as_str()) {
            return Err(Error::not_found(&self.id));
        }
        let tenant = tag(TENANT_TAG)
            .and_then(|value| value.parse::<TenantId>().ok())
            .ok_or_else(|| Error::not_found(&self.id))?;
        let jwk = self.public_key(key_id).await?;
        let verifying =
            VerifyingKey::from_jwk(&jwk).map_err(|err| Error::internal(&self.id, err))?;
        Ok(CachedKey {
            tenant,
            kid: Kid::new(jwk.thumbprint())?,
            verifying: Arc::new(verifying),
        })
    }

    async fn public_key(&self, key_id: &str) -> Result<Jwk, Error> {
        let answer = self
            .guard
            .call(Idempotency::Idempotent, || async {
                self.client
                    .get_public_key()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|err| self.classify(err))
            })
            .await?;
        let der = answer.public_key.ok_or_else(|| {
            Error::unavailable(&self.id, "GetPublicKey answered without a public key")
        })?;
        remote::jwk_from_spki(der.as_ref())
    }

    /// Classifies an SDK failure for the retry logic.
    fn classify<E>(&self, err: SdkError<E>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|raw| raw.status().as_u16());
        let retry_after = err
            .raw_response()
            .and_then(|raw| remote::retry_after(raw.headers().get("retry-after")));
        let code = err.code().map(str::to_owned);
        match (code.as_deref(), status) {
            (
                Some(
                    "ThrottlingException"
                    | "LimitExceededException"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded",
                ),
                _,
            )
            | (_, Some(429)) => Failure::Throttled {
                source: DisplayErrorContext(err).to_string().into(),
                retry_after,
            },
            (Some("NotFoundException" | "KMSInvalidStateException" | "DisabledException"), _) => {
                Failure::Final(Error::not_found(&self.id))
            }
            (
                Some(
                    "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "IncompleteSignature"
                    | "ExpiredTokenException"
                    | "MissingAuthenticationToken",
                ),
                _,
            ) => Failure::Final(Error::unavailable(
                &self.id,
                format!(
                    "AWS KMS refused the credentials ({})",
                    code.unwrap_or_default()
                ),
            )),
            (
                Some(
                    "UnsupportedOperationException"
                    | "InvalidKeyUsageException"
                    | "IncorrectKeyException",
                ),
                _,
            ) => Failure::Final(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "this operation on this key",
            }),
            (Some("ValidationException" | "InvalidArnException"), _) => {
                Failure::Final(Error::not_found(&self.id))
            }
            (_, Some(status)) if status < 500 && code.is_some() => Failure::Final(Error::internal(
                &self.id,
                DisplayErrorContext(err).to_string(),
            )),
            _ => Failure::Transient(DisplayErrorContext(err).to_string().into()),
        }
    }
}

#[async_trait]
impl KeyProvider for AwsKmsProvider {
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
        let KeyUsage::Sign(alg) = spec.usage else {
            return Err(self.unsupported(spec.usage));
        };
        if !self.capabilities.supports_usage(spec.usage) {
            return Err(self.unsupported(spec.usage));
        }
        let aws_spec = key_spec(alg).ok_or_else(|| self.unsupported(spec.usage))?;
        let inner = &self.inner;
        let tags = [
            (TENANT_TAG, tenant.to_string()),
            (PROVIDER_TAG, inner.id.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| Tag::builder().tag_key(key).tag_value(value).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::internal(&inner.id, err))?;
        let created = inner
            .guard
            .call(Idempotency::Once, || async {
                inner
                    .client
                    .create_key()
                    .key_usage(KeyUsageType::SignVerify)
                    .key_spec(aws_spec.clone())
                    .description(format!("EDK key of tenant {tenant} ({})", alg.name()))
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|err| inner.classify(err))
            })
            .await?;
        let key_id = created
            .key_metadata
            .map(|metadata| metadata.key_id)
            .ok_or_else(|| Error::unavailable(&inner.id, "CreateKey answered without a key"))?;
        let jwk = inner.public_key(&key_id).await?;
        let verifying =
            VerifyingKey::from_jwk(&jwk).map_err(|err| Error::internal(&inner.id, err))?;
        let kid = Kid::new(jwk.thumbprint())?;
        inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                key_id.clone(),
                Arc::new(CachedKey {
                    tenant: *tenant,
                    kid: kid.clone(),
                    verifying: Arc::new(verifying),
                }),
            );
        let handle = KeyHandle::new(inner.id.clone(), *tenant, kid, spec.usage, key_id);
        ProviderKey::new(handle, &jwk)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let cached = self.inner.key(tenant, key).await?;
        let KeyUsage::Sign(alg) = key.usage() else {
            return Err(Error::not_found(&self.inner.id));
        };
        Ok(Arc::new(AwsSigner {
            inner: Arc::clone(&self.inner),
            key_id: key.reference().to_owned(),
            alg,
            key: cached,
        }))
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        let inner = &self.inner;
        // Checks the tenant, the kid and that the key is still enabled.
        inner.key(tenant, key).await?;
        let key_id = key.reference();
        // Whether another replica destroyed it since this one cached it.
        let state = inner
            .guard
            .call(Idempotency::Idempotent, || async {
                inner
                    .client
                    .describe_key()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(|err| inner.classify(err))
            })
            .await?
            .key_metadata
            .and_then(|metadata| metadata.key_state);
        if state != Some(KeyState::Enabled) {
            inner.forget(key_id);
            return Err(Error::not_found(&inner.id));
        }
        inner
            .guard
            .call(Idempotency::Idempotent, || async {
                inner
                    .client
                    .schedule_key_deletion()
                    .key_id(key_id)
                    .pending_window_in_days(inner.deletion_window_days)
                    .send()
                    .await
                    .map_err(|err| inner.classify(err))
            })
            .await?;
        inner.forget(key_id);
        Ok(())
    }
}

impl fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("id", &self.inner.id)
            .field("message_type", &self.inner.message_type)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Signs with one AWS KMS key.
struct AwsSigner {
    inner: Arc<Inner>,
    key_id: String,
    alg: Algorithm,
    key: Arc<CachedKey>,
}

impl AwsSigner {
    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let id = &inner.id;
        let algorithm = signing_algorithm(self.alg).ok_or_else(|| Error::UnsupportedOperation {
            provider: id.clone(),
            operation: "this algorithm",
        })?;
        let (payload, message_type) = match inner.message_type {
            MessageMode::Digest => {
                let digest = match self.alg {
                    Algorithm::Es384 => &aws_lc_rs::digest::SHA384,
                    _ => &aws_lc_rs::digest::SHA256,
                };
                (
                    aws_lc_rs::digest::digest(digest, message).as_ref().to_vec(),
                    MessageType::Digest,
                )
            }
            MessageMode::Raw if message.len() <= RAW_MESSAGE_LIMIT => {
                (message.to_vec(), MessageType::Raw)
            }
            MessageMode::Raw => {
                return Err(Error::UnsupportedOperation {
                    provider: id.clone(),
                    operation: "RAW signing of more than 4096 bytes",
                });
            }
        };
        let answer = inner
            .guard
            .call(Idempotency::Idempotent, || async {
                inner
                    .client
                    .sign()
                    .key_id(&self.key_id)
                    .message(Blob::new(payload.clone()))
                    .message_type(message_type.clone())
                    .signing_algorithm(algorithm.clone())
                    .send()
                    .await
                    .map_err(|err| inner.classify(err))
            })
            .await;
        let answer = match answer {
            Err(Error::KeyNotFound { provider }) => {
                // Destroyed elsewhere: the next signer reloads.
                inner.forget(&self.key_id);
                return Err(Error::KeyNotFound { provider });
            }
            other => other?,
        };
        let signature = answer
            .signature
            .ok_or_else(|| Error::unavailable(id, "Sign answered without a signature"))?
            .into_inner();
        let signature = match self.alg {
            Algorithm::Es256 | Algorithm::Es256K => remote::ecdsa_der_to_jose(&signature, 32),
            Algorithm::Es384 => remote::ecdsa_der_to_jose(&signature, 48),
            _ => Some(signature),
        }
        .ok_or_else(|| Error::internal(id, "AWS KMS returned a malformed ECDSA signature"))?;
        self.key
            .verifying
            .verify(self.alg, message, &signature)
            .map_err(|_| {
                Error::internal(
                    id,
                    "AWS KMS returned a signature that does not verify with the key's public key",
                )
            })?;
        Ok(signature)
    }
}

#[async_trait]
impl Signer for AwsSigner {
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

impl fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSigner")
            .field("provider", &self.inner.id)
            .field("kid", &self.key.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn configuration_is_checked() {
        let id = ProviderId::new("aws").unwrap();
        let mut config = AwsKmsProviderConfig::new(id.clone(), "");
        let err = AwsKmsProvider::connect(config.clone()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `region` must not be empty"
        );
        config.region = "eu-west-1".to_owned();
        config.algorithms = Some(vec![Algorithm::EdDsa]);
        let err = AwsKmsProvider::connect(config.clone()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `algorithms` must list some of ES256, ES384, ES256K, RS256 and PS256"
        );
        config.algorithms = None;
        config.deletion_window_days = 3;
        let err = AwsKmsProvider::connect(config.clone()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `deletion_window_days` must be between 7 and 30"
        );
        let parsed: AwsKmsProviderConfig = serde_json::from_value(serde_json::json!({
            "id": "aws-eu-west-1",
            "region": "eu-west-1",
            "credentials": {"kind": "static", "access_key_id": "AKIA", "secret_access_key": "shh"},
        }))
        .unwrap();
        assert!(!format!("{parsed:?}").contains("shh"));
        let provider = AwsKmsProvider::connect(parsed).await.unwrap();
        assert_eq!(provider.capabilities().signing().len(), SUPPORTED.len());
        assert!(
            serde_json::from_value::<AwsKmsProviderConfig>(serde_json::json!({
                "id": "aws", "region": "eu-west-1", "surprise": true,
            }))
            .is_err()
        );
    }
}
