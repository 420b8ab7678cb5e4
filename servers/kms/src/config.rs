//! The configuration of the `edk-kms` binary.

use serde::Deserialize;

use edk_kms::provider::pkcs11::Pkcs11ProviderConfig;
use edk_kms::provider::software::SoftwareProviderConfig;
use edk_server::{AuthConfig, HttpConfig, LogConfig};
use edk_tenancy::DatabaseConfig;

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
    /// The platform and tenant databases (`backend: postgres` or `backend: sqlite`).
    pub database: DatabaseConfig,
    /// The key providers.
    pub kms: KmsConfig,
}

/// The KMS itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsConfig {
    /// The key providers, in order of preference; the first is the default. At least one.
    pub providers: Vec<ProviderConfig>,
    /// How long resolved aliases are cached in process, in seconds. Default 30.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
}

impl KmsConfig {
    /// The providers `providers`, with the default cache TTL.
    #[must_use]
    pub const fn new(providers: Vec<ProviderConfig>) -> Self {
        Self {
            providers,
            cache_ttl_secs: default_cache_ttl(),
        }
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
}
