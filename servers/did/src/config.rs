//! The configuration of `edk-did`.

use std::path::PathBuf;

use edk_did::CacheConfig;
use edk_server::{AuthConfig, HttpConfig, LogConfig};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything `edk-did` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Default, Deserialize)]
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
    /// Where tenant state lives.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// The software key provider's key encryption key.
    #[serde(default)]
    pub kms: KmsSettings,
    /// The Universal Resolver.
    #[serde(default)]
    pub resolver: ResolverSettings,
}

/// The database: PostgreSQL when `postgres_url` is set, else SQLite files in `sqlite_dir`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A PostgreSQL URL (platform and tenant schemas).
    #[serde(default)]
    pub postgres_url: Option<SecretString>,
    /// The SQLite directory. Default `./.edk-did`.
    #[serde(default = "default_sqlite_dir")]
    pub sqlite_dir: PathBuf,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            postgres_url: None,
            sqlite_dir: default_sqlite_dir(),
        }
    }
}

fn default_sqlite_dir() -> PathBuf {
    PathBuf::from("./.edk-did")
}

/// The software key provider.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsSettings {
    /// The key encryption key (standard base64, 32 bytes); or `kek_file`.
    #[serde(default)]
    pub kek: Option<SecretString>,
    /// A file holding the key encryption key.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
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
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            remote_ca_file: None,
            timeout_millis: default_timeout_millis(),
            max_bytes: default_max_bytes(),
            cache: CacheConfig::default(),
        }
    }
}

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
            "resolver": {"cache": {"ttl_seconds": 60}}
        }))
        .unwrap();
        assert_eq!(config.resolver.cache.ttl_seconds, 60);
        assert_eq!(config.resolver.cache.capacity, 10_000);
        assert_eq!(config.resolver.timeout_millis, 10_000);
        assert!(config.resolver.remote_ca_file.is_none());
        assert_eq!(config.database.sqlite_dir, PathBuf::from("./.edk-did"));
        for bad in [
            serde_json::json!({"resolvr": {}}),
            serde_json::json!({"resolver": {"remote": true}}),
            serde_json::json!({"database": {"url": "x"}}),
        ] {
            assert!(serde_json::from_value::<DidServerConfig>(bad).is_err());
        }
    }
}
