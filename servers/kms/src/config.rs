//! The configuration of the `edk-kms` binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use edk_core::TenantSlug;
use edk_core::jose::JwkSet;
use serde::Deserialize;

use edk_server::{AuthConfig, HttpConfig, LogConfig};
use edk_tenancy::DatabaseConfig;

pub use edk_server::kms::{KmsConfig, LocalKmsConfig, ProviderConfig};

/// Everything `edk-kms` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Trace export over OTLP (`observability.otlp`); unset, nothing is exported.
    #[serde(default)]
    pub observability: edk_server::ObservabilityConfig,
    /// The platform and tenant databases (`backend: postgres` or `backend: sqlite`).
    pub database: DatabaseConfig,
    /// The key providers: `mode: local` (the KMS server holds the keys; `mode: remote` is
    /// refused).
    pub kms: KmsConfig,
    /// The platform's directory service: read tenants, bindings and configuration from it
    /// instead of the platform database (split deployments); unset, the database.
    #[serde(default)]
    pub directory: Option<Box<edk_server::directory::DirectoryConfig>>,
    /// The gRPC listener for services that use this KMS remotely; off when absent.
    #[serde(default)]
    pub grpc: Option<GrpcConfig>,
}

/// The gRPC listener (`edk.kms.v1.KeyManagement`), on its own port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// The address to listen on, e.g. `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// How callers authenticate.
    pub auth: GrpcAuthConfig,
    /// TLS for the listener; required for `mtls`, optional (but advised) for `service_jwt`.
    #[serde(default)]
    pub tls: Option<GrpcTlsConfig>,
    /// The callers (service names, or mTLS identities) that may read the tenants' audit
    /// chains over gRPC (`ListAuditEvents`, `VerifyAuditChain`): the platform, for its
    /// audit API. Nobody by default.
    #[serde(default)]
    pub audit_readers: Vec<String>,
}

/// How gRPC callers authenticate, tagged by `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum GrpcAuthConfig {
    /// A short-lived service JWT in `authorization: Bearer`, signed by a key of a trusted
    /// service (the token's `iss`), for the audience `audience`.
    ServiceJwt {
        /// The audience tokens must name (this KMS).
        audience: String,
        /// The services allowed to call, each with the JWK set of its signing keys.
        services: Vec<TrustedServiceConfig>,
        /// The longest accepted token lifetime in seconds. Default 300.
        #[serde(default = "default_max_token_lifetime")]
        max_lifetime_secs: u64,
        /// How long the published keys of `kms_published` services are used before they are
        /// read again, in seconds (an unknown `kid` reads them at once, at most every 5 s).
        /// Default 60.
        #[serde(default = "default_published_keys_ttl")]
        published_keys_ttl_secs: u64,
    },
    /// A client certificate chaining to `tls.client_ca_file`; the service is its SAN URI or
    /// DNS name, the tenant the `x-edk-tenant` metadata.
    Mtls {
        /// The accepted service identities (SAN URI or DNS name); any certificate from the CA
        /// when empty.
        #[serde(default)]
        allow: Vec<String>,
        /// Identities that may act only for the listed tenants (by slug); an identity not
        /// named here acts for every tenant.
        #[serde(default)]
        tenants: BTreeMap<String, Vec<TenantSlug>>,
        /// Identity → the services whose reserved aliases (`as.*`, `audit.*`, `did.*`) it may
        /// use: a certificate identity is never such a name itself, so the authorization
        /// server's identity needs `[as]`, the DID server's `[did]`, the platform's
        /// `[as, did]`.
        #[serde(default)]
        acts_as: BTreeMap<String, Vec<String>>,
    },
}

const fn default_published_keys_ttl() -> u64 {
    60
}

/// A service allowed to call the KMS over gRPC with service JWTs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedServiceConfig {
    /// The service's name: the `iss` of its tokens.
    pub name: String,
    /// The public keys that sign its tokens (a JWK set). Exactly one of `jwks` and
    /// `kms_published`.
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// Trust the keys this KMS publishes for the service's identity alias
    /// (`<name>.service-identity` in the operator realm; see `GET
    /// /service-identities/{service}/jwks.json`), read from its own store and cached for
    /// `published_keys_ttl_secs` of the `grpc.auth` section.
    #[serde(default)]
    pub kms_published: bool,
    /// The tenants (by slug) the service may act for; unset: every tenant. A service that
    /// runs for some tenants only should always be given its list.
    #[serde(default)]
    pub tenants: Option<Vec<TenantSlug>>,
    /// The other services whose reserved aliases (`as.*`, `audit.*`, `did.*`) this one may
    /// use beside its own: the platform, which runs the operator authorization server and
    /// makes the tenants' `as.*` and `did.*` keys when it onboards them, needs `[as, did]`.
    #[serde(default)]
    pub acts_as: Vec<String>,
}

/// The gRPC listener's TLS files (PEM).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsConfig {
    /// The server certificate chain.
    pub cert_file: PathBuf,
    /// The server's private key.
    pub key_file: PathBuf,
    /// The CA that client certificates must chain to (required for `mtls`).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

const fn default_max_token_lifetime() -> u64 {
    300
}

edk_server::impl_service_config!(KmsServerConfig, directory);
