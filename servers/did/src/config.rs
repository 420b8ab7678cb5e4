//! The configuration of `edk-did`.

use std::path::PathBuf;

use edk_did::CacheConfig;
use edk_did::methods::fetch::FetchPolicy;
use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig};
use edk_tenancy::DatabaseConfig;
use serde::Deserialize;

/// Everything `edk-did` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification for `/api/did/v1` and the registrar (`/1.0/create`, ...).
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
    /// Where the DID keys are: `mode: remote` (the KMS server, for production) or
    /// `mode: local` (providers in this process).
    pub kms: KmsConfig,
    /// The platform's directory service: read tenants, bindings and configuration from it
    /// instead of the platform database (split deployments); unset, the database.
    #[serde(default)]
    pub directory: Option<Box<edk_server::directory::DirectoryConfig>>,
    /// The Universal Resolver.
    #[serde(default)]
    pub resolver: ResolverSettings,
}

/// The resolver behind `/1.0/identifiers`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSettings {
    /// Trust anchors (PEM) for did:web and did:webvh DIDs hosted elsewhere. Unset (the
    /// default): only DIDs this server publishes, did:key and did:jwk resolve; other did:web
    /// and did:webvh DIDs are `notFound`.
    #[serde(default)]
    pub remote_ca_file: Option<PathBuf>,
    /// Time limit of one remote fetch, in milliseconds. Default 10000.
    #[serde(default = "default_timeout_millis")]
    pub timeout_millis: u64,
    /// Largest remote did:web document or did:webvh log accepted, in bytes. Default 1048576.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// The result cache (`capacity` 10000, `ttl_seconds` 300, `negative_ttl_seconds` 30).
    #[serde(default)]
    pub cache: CacheConfig,
    /// What remote fetches may reach: `allowed_ports` (`[443]`), `max_concurrent_fetches`
    /// (16), `queue_timeout_millis` (5000), `hosts` (fixed addresses) and
    /// `dangerous_allow_private_addresses` (`false`: loopback, private and link-local
    /// addresses are refused after DNS resolution).
    #[serde(default)]
    pub fetch: FetchPolicy,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            remote_ca_file: None,
            timeout_millis: default_timeout_millis(),
            max_bytes: default_max_bytes(),
            cache: CacheConfig::default(),
            fetch: FetchPolicy::default(),
        }
    }
}

edk_server::impl_service_config!(DidServerConfig, directory);

const fn default_timeout_millis() -> u64 {
    10_000
}

const fn default_max_bytes() -> usize {
    1024 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_keys_are_refused() {
        let config: DidServerConfig = serde_json::from_value(serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-did"},
            "kms": {"mode": "remote", "endpoint": "http://127.0.0.1:9090",
                "auth": {"kind": "service_jwt", "service": "did", "audience": "edk-kms",
                    "key_file": "did.jwk"}},
            "resolver": {"cache": {"ttl_seconds": 60}}
        }))
        .unwrap();
        assert_eq!(config.resolver.cache.ttl_seconds, 60);
        assert_eq!(config.resolver.cache.capacity, 10_000);
        assert_eq!(config.resolver.timeout_millis, 10_000);
        assert!(config.resolver.remote_ca_file.is_none());
        assert_eq!(config.resolver.fetch, FetchPolicy::default());
        let valid = serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-did"},
            "kms": {"mode": "local", "providers": []},
        });
        assert!(serde_json::from_value::<DidServerConfig>(valid.clone()).is_ok());
        for (key, value) in [
            ("resolvr", serde_json::json!({})),
            ("resolver", serde_json::json!({"remote": true})),
            ("database", serde_json::json!({"url": "x"})),
            (
                "resolver",
                serde_json::json!({"fetch": {"allowed_port": [8443]}}),
            ),
        ] {
            let mut bad = valid.clone();
            bad[key] = value;
            assert!(
                serde_json::from_value::<DidServerConfig>(bad).is_err(),
                "{key}"
            );
        }
    }
}
