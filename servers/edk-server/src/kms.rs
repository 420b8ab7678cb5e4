//! The `kms` configuration section that every server shares, and opening it.
//!
//! ```yaml
//! # In process: the server holds the key providers itself (the KMS server, the all-in-one
//! # `edk`, development).
//! kms:
//!   mode: local
//!   providers:
//!     - kind: software
//!       id: software
//!       current_kek: k1
//!       keks: [{ id: k1, key_file: /run/secrets/kek }]
//!
//! # Remote: the runtime servers (AS, DID, issuer, verifier) hold no key material and no KEK;
//! # every key operation is a gRPC call to the KMS server.
//! kms:
//!   mode: remote
//!   endpoint: https://edk-kms.internal:9090
//!   server_ca_file: /run/secrets/kms-ca.pem
//!   auth:
//!     kind: service_jwt
//!     service: as
//!     audience: edk-kms
//!     key_file: /run/secrets/as-service-key.jwk
//! ```
//!
//! The KMS connection's own service tokens are signed with a key file (or the connection uses
//! mTLS): a KMS alias (`kms_alias`) cannot sign them, since signing through the KMS needs the
//! very connection they authenticate; that combination is refused at start
//! ([`KmsSetupError::CircularServiceIdentity`]). Other service tokens (the platform
//! directory's) can be signed with the service's KMS alias; see [`crate::directory`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{Jwk, SigningKey};
use edk_core::{Clock, Kid};
use edk_kms::grpc::{ClientAuth, RemoteKms, RemoteKmsOptions, ServiceTokenSource};
use edk_kms::provider::aws::{AwsKmsProvider, AwsKmsProviderConfig};
use edk_kms::provider::azure::{AzureKeyVaultProvider, AzureKeyVaultProviderConfig};
use edk_kms::provider::csc::{CscProvider, CscProviderConfig};
use edk_kms::provider::pkcs11::{Pkcs11Provider, Pkcs11ProviderConfig};
use edk_kms::provider::software::{SoftwareProvider, SoftwareProviderConfig};
use edk_kms::provider::vault::{VaultTransitProvider, VaultTransitProviderConfig};
use edk_kms::registry::{ProviderFactory, ProviderRegistration, SecretSources};
use edk_kms::store::KeyReferenceStore;
use edk_kms::store::mysql::MySqlKeyStore;
use edk_kms::{KeyProvider, Kms, LocalKms};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

/// Where a server's keys are: in process, or at a KMS server over gRPC. Tagged by `mode`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KmsConfig {
    /// An in-process [`LocalKms`] over the configured key providers.
    Local(LocalKmsConfig),
    /// The KMS server's gRPC service ([`RemoteKms`]).
    Remote(RemoteKmsConfig),
}

impl KmsConfig {
    /// A local KMS over `providers`, with the default cache lifetime.
    #[must_use]
    pub fn local(providers: Vec<ProviderConfig>) -> Self {
        Self::Local(LocalKmsConfig {
            providers,
            cache_ttl_secs: default_cache_ttl(),
            secrets_dir: None,
            database: None,
            database_max_connections: default_database_connections(),
        })
    }

    /// Whether this is the in-process mode.
    #[must_use]
    pub const fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }
}

/// `mode: local`: key providers in this process.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalKmsConfig {
    /// The key providers, in order of preference; the first is the default. At least one.
    pub providers: Vec<ProviderConfig>,
    /// How long resolved aliases are cached in process, in seconds. Default 30.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// Where Kubernetes secrets are mounted (`<secrets_dir>/<secret>/<key>`), for the
    /// `{"kubernetes": {"secret": ..., "key": ...}}` references of providers registered at
    /// run time; unset, such references are refused.
    #[serde(default)]
    pub secrets_dir: Option<PathBuf>,
    /// A MySQL or MariaDB database (`mysql://user:password@host:3306/name`) holding every
    /// tenant's key references; default each tenant's own database on the tenancy backend.
    #[serde(default)]
    pub database: Option<SecretString>,
    /// Pooled connections to `database`. Default 10.
    #[serde(default = "default_database_connections")]
    pub database_max_connections: u32,
}

const fn default_database_connections() -> u32 {
    10
}

impl LocalKmsConfig {
    /// Opens the key reference store `database` names, if any.
    ///
    /// # Errors
    /// As [`mysql_key_store`](Self::mysql_key_store).
    pub async fn key_store(&self) -> Result<Option<Arc<dyn KeyReferenceStore>>, KmsSetupError> {
        Ok(self
            .mysql_key_store()
            .await?
            .map(|store| Arc::new(store) as Arc<dyn KeyReferenceStore>))
    }

    /// Opens the MySQL or MariaDB key reference store `database` names, if any.
    ///
    /// # Errors
    /// [`KmsSetupError::Invalid`] for a URL that is not `mysql://` or `mariadb://`,
    /// [`KmsSetupError::Kms`] when the database cannot be reached or migrated.
    pub async fn mysql_key_store(&self) -> Result<Option<MySqlKeyStore>, KmsSetupError> {
        let Some(url) = &self.database else {
            return Ok(None);
        };
        let scheme_ok = ["mysql://", "mariadb://"]
            .iter()
            .any(|scheme| url.expose_secret().starts_with(scheme));
        if !scheme_ok {
            return Err(KmsSetupError::Invalid {
                field: "database",
                reason: "must be a mysql:// or mariadb:// URL",
            });
        }
        let store = MySqlKeyStore::connect(url, self.database_max_connections)
            .await
            .map_err(KmsSetupError::Kms)?;
        Ok(Some(store))
    }
}

const fn default_cache_ttl() -> u64 {
    30
}

/// One key provider, tagged by `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderConfig {
    /// Software keys sealed under a key encryption key (`id`, `current_kek`, `keks`).
    Software(SoftwareProviderConfig),
    /// A PKCS#11 token (`id`, `module`, `token_label`, `pin` or `pin_file`, `max_sessions`,
    /// `hardware_backed`).
    Pkcs11(Pkcs11ProviderConfig),
    /// AWS KMS (`id`, `region`, `endpoint`, `credentials`, `algorithms`, `message_type`,
    /// `deletion_window_days`, `remote`).
    Aws(AwsKmsProviderConfig),
    /// Azure Key Vault (`id`, `vault_url`, `credentials`, `key_prefix`, `algorithms`, `remote`).
    Azure(AzureKeyVaultProviderConfig),
    /// A Cloud Signature Consortium API v2 remote signing service (`id`, `service_url`,
    /// `token_url`, `client_id`, `client_secret` or `client_secret_file`, `users`,
    /// `algorithms`, `remote`): existing credentials, registered, never created.
    Csc(CscProviderConfig),
    /// HashiCorp Vault or OpenBao Transit (`id`, `address`, `mount`, `namespace`, `auth`,
    /// `key_prefix`, `algorithms`, `remote`).
    Vault(VaultTransitProviderConfig),
}

/// `mode: remote`: the KMS server's gRPC endpoint and how to authenticate to it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteKmsConfig {
    /// `http://host:port`, or `https://host:port` with `server_ca_file`.
    pub endpoint: String,
    /// How this server authenticates.
    pub auth: RemoteAuthConfig,
    /// The CA (PEM) the KMS server's certificate must chain to; required for `https` and for
    /// `mtls`.
    #[serde(default)]
    pub server_ca_file: Option<PathBuf>,
    /// The name to check the server certificate against; default the endpoint's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The deadline of every call, in milliseconds. Default 10000.
    #[serde(default = "default_timeout_millis")]
    pub timeout_millis: u64,
    /// How long establishing the connection may take, in milliseconds. Default 5000.
    #[serde(default = "default_connect_timeout_millis")]
    pub connect_timeout_millis: u64,
    /// How long resolved public keys are cached in process, in seconds. Default 300.
    #[serde(default = "default_resolver_ttl")]
    pub resolver_ttl_secs: u64,
}

const fn default_timeout_millis() -> u64 {
    10_000
}

const fn default_connect_timeout_millis() -> u64 {
    5_000
}

const fn default_resolver_ttl() -> u64 {
    300
}

/// How a server authenticates to the KMS server, tagged by `kind`.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RemoteAuthConfig {
    /// Short-lived service JWTs, one per tenant, signed with this server's service key.
    ServiceJwt {
        /// This server's service name: the tokens' `iss`, one of the KMS's
        /// `grpc.auth.services[].name`.
        service: String,
        /// The KMS's `grpc.auth.audience`.
        audience: String,
        /// The service's private signing key, a JWK (ES256, ES384 or EdDSA) in a file.
        /// Required: the tokens that authenticate this connection cannot be signed through
        /// it, so `kms_alias` is refused here (use a key file or mTLS).
        #[serde(default)]
        key_file: Option<PathBuf>,
        /// A KMS alias to sign with: always refused with
        /// [`KmsSetupError::CircularServiceIdentity`] (the KMS connection would need itself to
        /// authenticate); accepted by the parser so that the error says why.
        #[serde(default)]
        kms_alias: Option<String>,
        /// Token lifetime in seconds, within the KMS's maximum. Default 120.
        #[serde(default = "default_token_lifetime")]
        lifetime_secs: u64,
    },
    /// A client certificate (requires `server_ca_file`).
    Mtls {
        /// The client certificate chain (PEM, leaf first).
        cert_file: PathBuf,
        /// The client's private key (PEM).
        key_file: PathBuf,
    },
}

impl fmt::Debug for RemoteAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceJwt {
                service,
                audience,
                key_file,
                kms_alias,
                lifetime_secs,
            } => f
                .debug_struct("ServiceJwt")
                .field("service", service)
                .field("audience", audience)
                .field("key_file", key_file)
                .field("kms_alias", kms_alias)
                .field("lifetime_secs", lifetime_secs)
                .finish(),
            Self::Mtls {
                cert_file,
                key_file,
            } => f
                .debug_struct("Mtls")
                .field("cert_file", cert_file)
                .field("key_file", key_file)
                .finish(),
        }
    }
}

const fn default_token_lifetime() -> u64 {
    120
}

/// The KMS a server was built with: in process or remote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KmsHandle {
    /// An in-process KMS.
    Local(LocalKms),
    /// A KMS server over gRPC.
    Remote(RemoteKms),
}

impl KmsHandle {
    /// The KMS as the trait the libraries take.
    #[must_use]
    pub fn kms(&self) -> Arc<dyn Kms> {
        match self {
            Self::Local(kms) => Arc::new(kms.clone()),
            Self::Remote(kms) => Arc::new(kms.clone()),
        }
    }

    /// The tenants' audit chains: the in-process KMS's own, or the remote KMS's (which
    /// answers only when it names this service among its `grpc.audit_readers`).
    #[must_use]
    pub fn audit_trail(&self) -> Arc<dyn edk_kms::audit::AuditTrail> {
        match self {
            Self::Local(kms) => Arc::new(kms.clone()),
            Self::Remote(kms) => Arc::new(kms.clone()),
        }
    }

    /// The in-process KMS, when this is one.
    #[must_use]
    pub const fn local(&self) -> Option<&LocalKms> {
        match self {
            Self::Local(kms) => Some(kms),
            Self::Remote(_) => None,
        }
    }

    /// The remote KMS, when this is one.
    #[must_use]
    pub const fn remote(&self) -> Option<&RemoteKms> {
        match self {
            Self::Remote(kms) => Some(kms),
            Self::Local(_) => None,
        }
    }
}

/// Why the `kms` section could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsSetupError {
    /// A key provider or the KMS could not be opened.
    #[error("the KMS could not be set up")]
    Kms(#[source] edk_kms::Error),
    /// A file named in the section could not be read.
    #[error("cannot read `{}`", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The section is inconsistent or a value is unusable.
    #[error("`kms.{field}` {reason}")]
    Invalid {
        /// The key, below `kms.`.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `kms.auth.kms_alias`: the service tokens that authenticate the KMS connection would be
    /// signed through that same connection, which cannot authenticate before they exist.
    #[error(
        "`kms.auth.kms_alias` cannot sign the tokens of the KMS connection itself (they would \
         be signed through that connection); use `kms.auth.key_file` or `kms.auth.kind: mtls`"
    )]
    CircularServiceIdentity,
}

/// Opens the configured providers, in order.
///
/// # Errors
/// [`KmsSetupError::Kms`] for a provider that cannot be opened.
pub async fn open_providers(
    configs: &[ProviderConfig],
) -> Result<Vec<Arc<dyn KeyProvider>>, KmsSetupError> {
    let mut providers: Vec<Arc<dyn KeyProvider>> = Vec::with_capacity(configs.len());
    for config in configs {
        let provider: Arc<dyn KeyProvider> = match config {
            ProviderConfig::Software(config) => {
                Arc::new(SoftwareProvider::new(config.clone()).map_err(KmsSetupError::Kms)?)
            }
            ProviderConfig::Pkcs11(config) => Arc::new(
                Pkcs11Provider::connect(config.clone())
                    .await
                    .map_err(KmsSetupError::Kms)?,
            ),
            ProviderConfig::Aws(config) => Arc::new(
                AwsKmsProvider::connect(config.clone())
                    .await
                    .map_err(KmsSetupError::Kms)?,
            ),
            ProviderConfig::Azure(config) => {
                Arc::new(AzureKeyVaultProvider::new(config.clone()).map_err(KmsSetupError::Kms)?)
            }
            ProviderConfig::Vault(config) => {
                Arc::new(VaultTransitProvider::new(config.clone()).map_err(KmsSetupError::Kms)?)
            }
            ProviderConfig::Csc(config) => {
                Arc::new(CscProvider::new(config.clone()).map_err(KmsSetupError::Kms)?)
            }
        };
        providers.push(provider);
    }
    Ok(providers)
}

/// Builds the providers registered at run time ([`LocalKms::register_provider`]) exactly
/// as [`open_providers`] builds those of the configuration file, after resolving their
/// secret references.
#[derive(Clone, Debug, Default)]
pub struct ConfigProviderFactory {
    secrets: SecretSources,
}

/// The provider kinds a registration may name.
pub const PROVIDER_KINDS: [&str; 6] = ["aws", "azure", "csc", "pkcs11", "software", "vault"];

impl ConfigProviderFactory {
    /// A factory resolving Kubernetes references under `secrets_dir`, when set.
    #[must_use]
    pub fn new(secrets_dir: Option<&Path>) -> Self {
        let secrets = match secrets_dir {
            Some(dir) => SecretSources::new().with_kubernetes_dir(dir),
            None => SecretSources::new(),
        };
        Self { secrets }
    }
}

#[async_trait::async_trait]
impl ProviderFactory for ConfigProviderFactory {
    async fn build(
        &self,
        registration: &ProviderRegistration,
    ) -> Result<Arc<dyn KeyProvider>, edk_kms::Error> {
        if !PROVIDER_KINDS.contains(&registration.kind.as_str()) {
            return Err(edk_kms::Error::InvalidRegistration {
                field: "kind".to_owned(),
                reason: format!("must be one of {}", PROVIDER_KINDS.join(", ")),
            });
        }
        let entry = self.secrets.resolve_config(&registration.entry())?;
        let config: ProviderConfig =
            serde_path_to_error::deserialize(serde_json::Value::Object(entry)).map_err(|err| {
                let message = unquoted(&err.inner().to_string());
                let path = err.path().to_string();
                let field = if path.is_empty() || path == "." {
                    message
                        .split('`')
                        .nth(1)
                        .map_or_else(|| "config".to_owned(), str::to_owned)
                } else {
                    path
                };
                edk_kms::Error::InvalidRegistration {
                    field,
                    reason: format!("is invalid: {message}"),
                }
            })?;
        let mut providers = open_providers(std::slice::from_ref(&config))
            .await
            .map_err(|err| match err {
                KmsSetupError::Kms(err) => err,
                other => edk_kms::Error::InvalidRegistration {
                    field: "config".to_owned(),
                    reason: other.to_string(),
                },
            })?;
        providers.pop().ok_or(edk_kms::Error::InvalidRegistration {
            field: "kind".to_owned(),
            reason: "built no provider".to_owned(),
        })
    }
}

/// `message` with every quoted value blanked, so that no value (a resolved secret among
/// them) is repeated in an error.
fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            quoted = !quoted;
            out.push_str(if quoted { "\"…" } else { "\"" });
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Connects to the remote KMS as `config` says. The connection is made lazily: a server
/// starts while the KMS is down, and readiness reports it.
///
/// # Errors
/// [`KmsSetupError`] for unreadable files, an unusable key or certificate, or a bad endpoint.
pub fn connect_remote(
    config: &RemoteKmsConfig,
    clock: Arc<dyn Clock>,
) -> Result<RemoteKms, KmsSetupError> {
    let options = RemoteKmsOptions::default()
        .with_timeout(Duration::from_millis(config.timeout_millis))
        .with_resolver_ttl(Duration::from_secs(config.resolver_ttl_secs))
        .with_clock(Arc::clone(&clock));
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|_| KmsSetupError::Invalid {
            field: "endpoint",
            reason: "is not a valid URL",
        })?
        .timeout(Duration::from_millis(config.timeout_millis))
        .connect_timeout(Duration::from_millis(config.connect_timeout_millis))
        .tcp_nodelay(true);
    let https = config.endpoint.starts_with("https://");
    let mut tls = match &config.server_ca_file {
        Some(ca) => Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?))),
        None if https => {
            return Err(KmsSetupError::Invalid {
                field: "server_ca_file",
                reason: "is required for an https endpoint",
            });
        }
        None => None,
    };
    if let (Some(name), Some(settings)) = (&config.server_name, tls.take()) {
        tls = Some(settings.domain_name(name.clone()));
    }
    let auth = match &config.auth {
        RemoteAuthConfig::ServiceJwt {
            service,
            audience,
            key_file,
            kms_alias,
            lifetime_secs,
        } => {
            if kms_alias.is_some() {
                return Err(KmsSetupError::CircularServiceIdentity);
            }
            let Some(key_file) = key_file else {
                return Err(KmsSetupError::Invalid {
                    field: "auth.key_file",
                    reason: "is required for `auth.kind: service_jwt`",
                });
            };
            let text = Zeroizing::new(read(key_file)?);
            let jwk: Jwk = serde_json::from_slice(&text).map_err(|_| KmsSetupError::Invalid {
                field: "auth.key_file",
                reason: "does not hold a JWK",
            })?;
            let unusable = KmsSetupError::Invalid {
                field: "auth.key_file",
                reason: "does not hold a usable private signing key",
            };
            let key = SigningKey::from_jwk(&jwk, None).map_err(|_| unusable)?;
            // The KMS finds the key among the service's trusted keys by `kid`: the JWK's own,
            // or its RFC 7638 thumbprint.
            let kid = jwk.kid.clone().unwrap_or_else(|| jwk.thumbprint());
            let key = key.with_kid(Kid::new(kid).map_err(|_| KmsSetupError::Invalid {
                field: "auth.key_file",
                reason: "holds a JWK with an unusable `kid`",
            })?);
            ClientAuth::ServiceJwt(Arc::new(
                ServiceTokenSource::new(Arc::new(key), service.clone(), audience.clone(), clock)
                    .with_lifetime(Duration::from_secs(*lifetime_secs)),
            ))
        }
        RemoteAuthConfig::Mtls {
            cert_file,
            key_file,
        } => {
            let Some(settings) = tls.take() else {
                return Err(KmsSetupError::Invalid {
                    field: "server_ca_file",
                    reason: "is required for `auth.kind: mtls`",
                });
            };
            let cert = read(cert_file)?;
            let key = Zeroizing::new(read(key_file)?);
            tls = Some(settings.identity(Identity::from_pem(&cert, key.as_slice())));
            let server_ca_pem = match &config.server_ca_file {
                Some(ca) => read(ca)?,
                None => Vec::new(),
            };
            ClientAuth::Mtls {
                cert_chain_pem: cert,
                key_pem: key,
                server_ca_pem,
                server_name: config.server_name.clone(),
            }
        }
    };
    if let Some(settings) = tls {
        endpoint = endpoint
            .tls_config(settings)
            .map_err(|_| KmsSetupError::Invalid {
                field: "server_ca_file",
                reason: "does not hold usable TLS settings",
            })?;
    }
    Ok(RemoteKms::from_channel(
        endpoint.connect_lazy(),
        auth,
        &options,
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, KmsSetupError> {
    std::fs::read(path).map_err(|source| KmsSetupError::File {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_sections_parse_and_typos_are_refused() {
        let local: KmsConfig = serde_json::from_value(serde_json::json!({
            "mode": "local",
            "providers": [{"kind": "software", "id": "software", "current_kek": "k1",
                "keks": [{"id": "k1", "key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}]
        }))
        .unwrap();
        assert!(local.is_local());
        let remote: KmsConfig = serde_json::from_value(serde_json::json!({
            "mode": "remote",
            "endpoint": "http://127.0.0.1:9090",
            "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms",
                "key_file": "/run/secrets/as.jwk"}
        }))
        .unwrap();
        let KmsConfig::Remote(remote) = remote else {
            panic!("remote expected")
        };
        assert_eq!(remote.timeout_millis, 10_000);
        for bad in [
            serde_json::json!({"mode": "remote", "endpoint": "http://x", "auth":
                {"kind": "service_jwt", "service": "as", "audience": "a", "key_file": "k",
                 "secret": "x"}}),
            serde_json::json!({"mode": "remote", "endpoint": "http://x", "auth":
                {"kind": "mtls", "cert_file": "c", "key_file": "k"}, "ca": "x"}),
            serde_json::json!({"mode": "elsewhere"}),
            serde_json::json!({"providers": []}),
        ] {
            assert!(
                serde_json::from_value::<KmsConfig>(bad.clone()).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[tokio::test]
    async fn aws_and_vault_providers_are_configured_and_opened() {
        crate::install_crypto_provider();
        let local: KmsConfig = serde_json::from_value(serde_json::json!({
            "mode": "local",
            "providers": [
                {"kind": "aws", "id": "aws-eu-west-1", "region": "eu-west-1",
                 "endpoint": "http://127.0.0.1:1",
                 "credentials": {"kind": "static", "access_key_id": "AKIATEST",
                     "secret_access_key": "aws-secret-value"},
                 "algorithms": ["ES256", "RS256"], "remote": {"max_attempts": 2}},
                {"kind": "vault", "id": "vault-prod", "address": "http://127.0.0.1:1",
                 "auth": {"kind": "token", "token": "vault-secret-value"}},
                {"kind": "azure", "id": "azure-vault-prod", "vault_url": "https://127.0.0.1:1",
                 "credentials": {"kind": "client_secret", "tenant_id": "contoso",
                     "client_id": "edk", "client_secret": "azure-secret-value"}},
                {"kind": "csc", "id": "csc-qualified", "service_url": "http://127.0.0.1:1/csc/v2",
                 "client_id": "edk", "client_secret": "csc-secret-value",
                 "users": {"0190c6e4-5f1e-7a41-9d2b-2f6c1a9e8b11": "acme-seal"}},
            ]
        }))
        .unwrap();
        assert!(!format!("{local:?}").contains("secret-value"));
        let KmsConfig::Local(local) = local else {
            panic!("local expected")
        };
        let providers = open_providers(&local.providers).await.unwrap();
        let ids: Vec<&str> = providers.iter().map(|p| p.id().as_str()).collect();
        assert_eq!(
            ids,
            [
                "aws-eu-west-1",
                "vault-prod",
                "azure-vault-prod",
                "csc-qualified"
            ]
        );
        let aws: Vec<&str> = providers[0]
            .capabilities()
            .signing()
            .iter()
            .map(|alg| alg.name())
            .collect();
        assert_eq!(aws, ["ES256", "RS256"]);
        assert!(providers[0].capabilities().hardware_backed());
        assert_eq!(providers[1].capabilities().signing().len(), 5);
        assert_eq!(providers[2].capabilities().signing().len(), 4);
        assert!(!providers[3].capabilities().key_creation());
        assert!(!format!("{providers:?}").contains("secret-value"));

        let bad: KmsConfig = serde_json::from_value(serde_json::json!({
            "mode": "local",
            "providers": [{"kind": "vault", "id": "vault", "address": "vault:8200",
                "auth": {"kind": "token", "token": "t"}}]
        }))
        .unwrap();
        let KmsConfig::Local(bad) = bad else {
            panic!("local expected")
        };
        let err = open_providers(&bad.providers).await.unwrap_err();
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "invalid configuration: `address` must be an http(s) URL"
        );
        assert!(
            serde_json::from_value::<KmsConfig>(serde_json::json!({
                "mode": "local",
                "providers": [{"kind": "aws", "id": "aws", "region": "eu-west-1", "regoin": "x"}]
            }))
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_key_store_database_must_be_mysql_or_mariadb() {
        let config = |database: &str| -> LocalKmsConfig {
            serde_json::from_value(serde_json::json!({
                "providers": [], "database": database,
            }))
            .unwrap()
        };
        let err = config("postgres://edk@db/edk")
            .key_store()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`kms.database` must be a mysql:// or mariadb:// URL"
        );
        let err = config("mysql://root:db-secret-value@127.0.0.1:3306")
            .key_store()
            .await
            .unwrap_err();
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "invalid configuration: `database` must be a mysql:// or mariadb:// URL naming a database"
        );
        assert!(
            !format!("{:?}", config("mysql://root:db-secret-value@h/k"))
                .contains("db-secret-value")
        );
        assert!(config("mysql://h/k").database_max_connections == 10);
    }

    /// The error `connect_remote` refuses the remote section `section` with.
    fn refused(section: serde_json::Value) -> KmsSetupError {
        let config: RemoteKmsConfig = serde_json::from_value(section).unwrap();
        connect_remote(&config, Arc::new(edk_core::SystemClock)).unwrap_err()
    }

    #[test]
    fn an_https_endpoint_without_a_ca_is_refused() {
        let err = refused(serde_json::json!({
            "endpoint": "https://kms.internal:9090",
            "auth": {"kind": "mtls", "cert_file": "c.pem", "key_file": "k.pem"}
        }));
        assert!(
            matches!(
                err,
                KmsSetupError::Invalid {
                    field: "server_ca_file",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_kms_alias_cannot_sign_the_kms_connection_itself() {
        let err = refused(serde_json::json!({
            "endpoint": "http://127.0.0.1:9090",
            "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms",
                "kms_alias": "as.service-identity"}
        }));
        assert!(
            matches!(err, KmsSetupError::CircularServiceIdentity),
            "{err}"
        );
        assert!(err.to_string().contains("`kms.auth.kms_alias`"), "{err}");
        let err = refused(serde_json::json!({
            "endpoint": "http://127.0.0.1:9090",
            "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms"}
        }));
        assert!(
            matches!(
                err,
                KmsSetupError::Invalid {
                    field: "auth.key_file",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_service_key_file_is_named() {
        let err = refused(serde_json::json!({
            "endpoint": "http://127.0.0.1:9090",
            "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms",
                "key_file": "/nonexistent/as.jwk"}
        }));
        assert!(
            matches!(&err, KmsSetupError::File { path, .. } if path == Path::new("/nonexistent/as.jwk")),
            "{err}"
        );
    }
}
