//! The platform's tenant directory over gRPC, for split deployments.
//!
//! The platform serves edk-tenancy's `edk.tenancy.v1.TenantDirectory` on its own port
//! ([`DirectoryServerConfig`], the platform's `grpc` section); a runtime server (KMS, AS, DID,
//! issuer, verifier) with a `directory` section ([`DirectoryConfig`]) reads tenants, bindings
//! and configuration from it instead of the platform database, through a
//! [`RemoteTenantDirectory`] that the platform's `Watch` stream keeps fresh.
//!
//! Callers authenticate as the KMS gRPC callers do: a short-lived service JWT
//! (`typ: edk-service+jwt`, `iss` = `sub` = the service's name, `aud` = the platform's
//! audience, `exp` at most `max_lifetime_secs` after `iat`) signed with the service's own key,
//! checked against the JWK set configured for that service; a service may be limited to a list
//! of tenants. Directory tokens act for no single tenant: they carry no `tenant` claim, and the
//! KMS refuses them for its own calls.
//!
//! # Service identity through the KMS
//! Instead of a private key file (`directory.key_file`), a runtime server can sign its
//! directory tokens with its own KMS alias (`directory.kms_alias`, which must be
//! `<service>.service-identity`): an alias the KMS reserves for that service, kept in the
//! platform's operator realm (the tenant `edk-operators`, where the platform keeps its
//! operator authorization server's keys; `directory.kms_realm` is its tenant id), created on
//! first use and followed through rotations. The signing goes through the server's remote KMS
//! (`kms.mode: remote`), which must itself authenticate with mTLS or a key file: a server whose
//! KMS is in process reads that KMS's tenants through this very directory, and a KMS
//! connection authenticated by tokens of the alias would need itself to sign them; both are
//! refused at start ([`DirectorySetupError::CircularServiceIdentity`],
//! [`crate::kms::KmsSetupError::CircularServiceIdentity`]).
//!
//! The platform trusts such a service by the keys the KMS publishes for its alias
//! (`grpc.services[].kms_published: true` with `grpc.published_keys`), fetched from the KMS
//! server's `GET /service-identities/{service}/jwks.json` (current, pre-active and
//! still-verifiable retired versions), cached for `cache_ttl_secs`, fetched again at once for
//! an unknown `kid` (at most once per `min_refresh_secs`), so a rotated key is accepted and a
//! removed one stops being accepted after the next fetch.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::{Algorithm, Jwk, JwkSet, SigningKey};
use edk_core::{Clock, ErrorKind, HasKind, Kid, TenantId, TenantSlug};
use edk_kms::grpc::{RemoteKms, ServiceJwtAuth, ServiceTokenSource, SignerSource, TrustedServices};
use edk_kms::kms::service_identity_alias;
use edk_tenancy::Tenancy;
use edk_tenancy::events::BackgroundTask;
use edk_tenancy::grpc::{
    DirectoryAuth, DirectoryCaller, DirectoryCredentials, DirectoryGrpcService,
    RemoteDirectoryOptions, RemoteTenantDirectory,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use zeroize::Zeroizing;

/// A runtime server's `directory` section: read tenants, bindings and configuration from the
/// platform's directory service instead of the platform database.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The platform's directory service: `http://host:port`, or `https://host:port` with
    /// `server_ca_file`.
    pub endpoint: String,
    /// This server's service name: the tokens' `iss`, one of the platform's
    /// `grpc.services[].name`.
    pub service: String,
    /// The platform's `grpc.audience`.
    pub audience: String,
    /// The service's private signing key, a JWK (ES256, ES384 or EdDSA) in a file; the
    /// platform trusts its public half. Exactly one of `key_file` and `kms_alias`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Sign with this KMS alias instead, `<service>.service-identity`, created (ES256) on
    /// first use through the server's remote KMS; the platform trusts the keys the KMS
    /// publishes for it. Needs `kms_realm` and `kms.mode: remote`.
    #[serde(default)]
    pub kms_alias: Option<String>,
    /// The tenant id of the platform's operator realm (`edk-operators`), where the KMS keeps
    /// service identity aliases; required with `kms_alias`.
    #[serde(default)]
    pub kms_realm: Option<TenantId>,
    /// Token lifetime in seconds, within the platform's maximum. Default 120.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u64,
    /// The CA (PEM) the platform's certificate must chain to; required for `https`.
    #[serde(default)]
    pub server_ca_file: Option<PathBuf>,
    /// The name to check the server certificate against; default the endpoint's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// How long cached tenants and routes are trusted without an invalidation, and how long
    /// they are served while the platform cannot be reached, in seconds. Default 30.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// The deadline of every call, in milliseconds. Default 10000.
    #[serde(default = "default_timeout_millis")]
    pub timeout_millis: u64,
}

const fn default_token_lifetime() -> u64 {
    120
}

const fn default_cache_ttl() -> u64 {
    30
}

const fn default_timeout_millis() -> u64 {
    10_000
}

/// The platform's `grpc` section: where it serves the directory and whom it lets read it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryServerConfig {
    /// The address to listen on, e.g. `127.0.0.1:8091`.
    pub listen: SocketAddr,
    /// The audience service tokens must name (this platform).
    pub audience: String,
    /// The services allowed to read the directory, each with the JWK set of its signing keys
    /// or trusted by the keys the KMS publishes for it.
    pub services: Vec<DirectoryServiceConfig>,
    /// Where the KMS publishes the keys of service identity aliases; required when a service
    /// is `kms_published`.
    #[serde(default)]
    pub published_keys: Option<PublishedKeysConfig>,
    /// The longest accepted token lifetime in seconds. Default 300.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: u64,
    /// TLS for the listener (advised: the directory hands out tenant configuration).
    #[serde(default)]
    pub tls: Option<DirectoryTlsConfig>,
}

const fn default_max_lifetime() -> u64 {
    300
}

/// Where the KMS server publishes the public keys of service identity aliases.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKeysConfig {
    /// The KMS server's HTTP base URL (`http(s)://host:port`); a service's keys are read from
    /// `<url>/service-identities/<service>/jwks.json`.
    pub url: String,
    /// How long fetched keys are used before they are fetched again, in seconds. Default 300.
    #[serde(default = "default_published_ttl")]
    pub cache_ttl_secs: u64,
    /// The shortest time between two fetches of one service's keys (an unknown `kid` fetches
    /// at once, but not more often), in seconds. Default 5.
    #[serde(default = "default_min_refresh")]
    pub min_refresh_secs: u64,
}

const fn default_published_ttl() -> u64 {
    300
}

const fn default_min_refresh() -> u64 {
    5
}

impl PublishedKeysConfig {
    /// The resolver of `service`'s published keys.
    #[must_use]
    pub fn resolver(
        &self,
        service: &str,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> crate::jwks::RemoteJwks {
        crate::jwks::RemoteJwks::new(
            service,
            format!(
                "{}/service-identities/{service}/jwks.json",
                self.url.trim_end_matches('/')
            ),
            http,
            clock,
            crate::jwks::JwksCachePolicy {
                ttl: Duration::from_secs(self.cache_ttl_secs),
                min_refresh_interval: Duration::from_secs(self.min_refresh_secs),
            },
        )
    }
}

/// A service allowed to read the directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryServiceConfig {
    /// The service's name: the `iss` of its tokens.
    pub name: String,
    /// The public keys that sign its tokens (a JWK set). Exactly one of `jwks` and
    /// `kms_published`.
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// Trust the keys the KMS publishes for the service's `<name>.service-identity` alias
    /// (see `published_keys`).
    #[serde(default)]
    pub kms_published: bool,
    /// The tenants (by slug) it may read; unset: every tenant.
    #[serde(default)]
    pub tenants: Option<Vec<TenantSlug>>,
}

/// The directory listener's TLS files (PEM).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryTlsConfig {
    /// The server certificate chain.
    pub cert_file: PathBuf,
    /// The server's private key.
    pub key_file: PathBuf,
}

/// Why the directory client or listener could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectorySetupError {
    /// A file named in the section could not be read.
    #[error("cannot read `{}`", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A value of the section is unusable.
    #[error("`{section}.{field}` {reason}")]
    Invalid {
        /// `directory` or `grpc`.
        section: &'static str,
        /// The key below the section.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The remote directory could not be created.
    #[error("the remote tenant directory cannot be set up")]
    Directory(#[source] edk_tenancy::Error),
    /// `directory.kms_alias` with an in-process KMS: that KMS reads its tenants through this
    /// directory, so it cannot sign the directory's own tokens.
    #[error(
        "`directory.kms_alias` needs `kms.mode: remote`: an in-process KMS reads its tenants \
         through this directory and cannot sign the tokens that authenticate it; use \
         `directory.key_file`"
    )]
    CircularServiceIdentity,
}

fn read(path: &Path) -> Result<Vec<u8>, DirectorySetupError> {
    std::fs::read(path).map_err(|source| DirectorySetupError::File {
        path: path.to_owned(),
        source,
    })
}

fn invalid(section: &'static str, field: &str, reason: &'static str) -> DirectorySetupError {
    DirectorySetupError::Invalid {
        section,
        field: field.to_owned(),
        reason,
    }
}

/// Opens the remote directory of `config` and starts its watch task (stopped by `cancel` or
/// by shutting the task down). `kms` is the server's remote KMS, which signs the tokens when
/// `config` names a `kms_alias`.
///
/// # Errors
/// [`DirectorySetupError`] for an unreadable key or CA file, an unusable value, or a
/// `kms_alias` without a remote KMS.
pub fn connect(
    config: &DirectoryConfig,
    clock: Arc<dyn Clock>,
    cancel: &CancellationToken,
    kms: Option<&RemoteKms>,
) -> Result<(RemoteTenantDirectory, BackgroundTask), DirectorySetupError> {
    let https = config.endpoint.starts_with("https://");
    let mut tls = match &config.server_ca_file {
        Some(ca) => Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?))),
        None if https => {
            return Err(invalid(
                "directory",
                "server_ca_file",
                "is required for an https endpoint",
            ));
        }
        None => None,
    };
    if let (Some(name), Some(settings)) = (&config.server_name, tls.take()) {
        tls = Some(settings.domain_name(name.clone()));
    }
    let signer = token_signer(config, kms)?;
    let tokens = ServiceTokenSource::from_source(
        signer,
        config.service.clone(),
        config.audience.clone(),
        Arc::clone(&clock),
    )
    .with_lifetime(Duration::from_secs(config.token_lifetime_secs));
    let mut options = RemoteDirectoryOptions::default();
    options.cache_ttl = Duration::from_secs(config.cache_ttl_secs);
    options.timeout = Duration::from_millis(config.timeout_millis);
    options.clock = clock;
    RemoteTenantDirectory::connect(
        &config.endpoint,
        tls,
        Arc::new(ServiceTokens(tokens)),
        options,
        cancel,
    )
    .map_err(DirectorySetupError::Directory)
}

/// What signs the directory tokens: the key file, or the service identity alias through the
/// remote KMS.
fn token_signer(
    config: &DirectoryConfig,
    kms: Option<&RemoteKms>,
) -> Result<Arc<dyn SignerSource>, DirectorySetupError> {
    match (&config.key_file, &config.kms_alias) {
        (Some(path), None) => Ok(Arc::new(FileSigner(Arc::new(signing_key(path)?)))),
        (None, Some(alias)) => {
            let expected = service_identity_alias(&config.service)
                .map_err(|_| invalid("directory", "service", "is not a valid alias part"))?;
            if *alias != expected.to_string() {
                return Err(invalid(
                    "directory",
                    "kms_alias",
                    "must be `<service>.service-identity`, the alias the KMS reserves for this service",
                ));
            }
            let Some(realm) = config.kms_realm else {
                return Err(invalid(
                    "directory",
                    "kms_realm",
                    "is required with `kms_alias` (the operator realm's tenant id)",
                ));
            };
            let kms = kms.ok_or(DirectorySetupError::CircularServiceIdentity)?;
            let identity = kms
                .service_identity(realm, &config.service, Algorithm::Es256)
                .map_err(|_| invalid("directory", "service", "is not a valid alias part"))?;
            Ok(Arc::new(identity))
        }
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "directory",
            "key_file",
            "or `directory.kms_alias`: give exactly one",
        )),
    }
}

/// A key file's signer.
#[derive(Debug)]
struct FileSigner(Arc<SigningKey>);

#[async_trait]
impl SignerSource for FileSigner {
    async fn signer(&self) -> Result<Arc<dyn edk_core::jose::Signer>, edk_kms::Error> {
        Ok(Arc::clone(&self.0) as Arc<dyn edk_core::jose::Signer>)
    }
}

/// The service's private signing key from a JWK file, with its `kid` (the JWK's own, or its
/// RFC 7638 thumbprint, as the receiver finds it among the service's trusted keys).
fn signing_key(path: &Path) -> Result<SigningKey, DirectorySetupError> {
    let text = Zeroizing::new(read(path)?);
    let jwk: Jwk = serde_json::from_slice(&text)
        .map_err(|_| invalid("directory", "key_file", "does not hold a JWK"))?;
    let key = SigningKey::from_jwk(&jwk, None).map_err(|_| {
        invalid(
            "directory",
            "key_file",
            "does not hold a usable private signing key",
        )
    })?;
    let kid = jwk.kid.clone().unwrap_or_else(|| jwk.thumbprint());
    Ok(key.with_kid(Kid::new(kid).map_err(|_| {
        invalid(
            "directory",
            "key_file",
            "holds a JWK with an unusable `kid`",
        )
    })?))
}

/// Service-level tokens for the directory.
#[derive(Debug)]
struct ServiceTokens(ServiceTokenSource);

#[async_trait]
impl DirectoryCredentials for ServiceTokens {
    async fn token(&self) -> Result<Arc<str>, edk_tenancy::Error> {
        self.0
            .service_token()
            .await
            .map_err(|err| edk_tenancy::Error::RemoteDirectory {
                kind: ErrorKind::Internal,
                reason: format!("cannot sign the service token: {err}"),
            })
    }
}

/// Checks the service JWTs of directory callers.
#[derive(Debug)]
pub struct ServiceJwtDirectoryAuth(ServiceJwtAuth);

impl ServiceJwtDirectoryAuth {
    /// Over a configured [`ServiceJwtAuth`] (audience, trusted services, tenant lists).
    #[must_use]
    pub const fn new(auth: ServiceJwtAuth) -> Self {
        Self(auth)
    }
}

#[async_trait]
impl DirectoryAuth for ServiceJwtDirectoryAuth {
    async fn authenticate(&self, metadata: &MetadataMap) -> Result<DirectoryCaller, tonic::Status> {
        let token = metadata
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                tonic::Status::unauthenticated("missing credentials: a bearer service token")
            })?;
        match self.0.authenticate_service(token).await {
            Ok((service, tenants)) => Ok(DirectoryCaller::new(service, tenants)),
            Err(err) => {
                let message = edk_core::ErrorChain(&err).to_string();
                Err(match err.kind() {
                    ErrorKind::Forbidden => tonic::Status::permission_denied(message),
                    _ => tonic::Status::unauthenticated(message),
                })
            }
        }
    }
}

/// The platform's directory listener, built from its `grpc` section.
pub struct DirectoryListener {
    listen: SocketAddr,
    service: DirectoryGrpcService,
    tls: Option<ServerTlsConfig>,
}

impl fmt::Debug for DirectoryListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryListener")
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl DirectoryListener {
    /// The service over `tenancy` as `config` describes it; `http` fetches the keys the KMS
    /// publishes.
    ///
    /// # Errors
    /// [`DirectorySetupError`] for a private key among the trusted keys, a service with both
    /// or neither of `jwks` and `kms_published`, `kms_published` without `published_keys`, or
    /// an unreadable TLS file.
    pub fn new(
        config: &DirectoryServerConfig,
        tenancy: Tenancy,
        clock: Arc<dyn Clock>,
        http: &reqwest::Client,
    ) -> Result<Self, DirectorySetupError> {
        let mut trusted = TrustedServices::new();
        for service in &config.services {
            let field = format!("services.{}", service.name);
            match (&service.jwks, service.kms_published) {
                (Some(jwks), false) => {
                    if jwks.keys.iter().any(Jwk::is_private) {
                        return Err(invalid(
                            "grpc",
                            &field,
                            "holds a private key; give public keys only",
                        ));
                    }
                    trusted = trusted.with_service(service.name.clone(), jwks);
                }
                (None, true) => {
                    let Some(published) = &config.published_keys else {
                        return Err(invalid(
                            "grpc",
                            "published_keys",
                            "is required when a service is `kms_published`",
                        ));
                    };
                    trusted = trusted.with_resolver(
                        service.name.clone(),
                        Arc::new(published.resolver(
                            &service.name,
                            http.clone(),
                            Arc::clone(&clock),
                        )),
                    );
                }
                _ => {
                    return Err(invalid(
                        "grpc",
                        &field,
                        "needs exactly one of `jwks` and `kms_published: true`",
                    ));
                }
            }
        }
        let auth = ServiceJwtAuth::new(config.audience.clone(), Arc::new(trusted), clock)
            .with_max_lifetime(Duration::from_secs(config.max_lifetime_secs));
        let auth = config
            .services
            .iter()
            .fold(auth, |auth, service| match &service.tenants {
                Some(tenants) => auth.with_tenants(
                    service.name.clone(),
                    tenants.iter().cloned().collect::<BTreeSet<_>>(),
                ),
                None => auth,
            });
        let tls = match &config.tls {
            Some(tls) => Some(ServerTlsConfig::new().identity(Identity::from_pem(
                read(&tls.cert_file)?,
                Zeroizing::new(read(&tls.key_file)?).as_slice(),
            ))),
            None => None,
        };
        Ok(Self {
            listen: config.listen,
            service: DirectoryGrpcService::new(
                tenancy,
                Arc::new(ServiceJwtDirectoryAuth::new(auth)),
            ),
            tls,
        })
    }

    /// The configured address.
    #[must_use]
    pub const fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Serves on `listener` until `stop` is cancelled; open `Watch` streams end then.
    ///
    /// # Errors
    /// A transport error when TLS is unusable or the server fails.
    pub fn serve(
        &self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), tonic::transport::Error>> + Send + 'static {
        let service = self.service.clone().with_shutdown(stop.clone());
        let tls = self.tls.clone();
        async move {
            edk_tenancy::grpc::serve(listener, service.into_server(), tls, async move {
                stop.cancelled().await;
            })
            .await
        }
    }
}
