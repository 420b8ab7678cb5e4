//! The configuration of `edk-as`.

use std::path::PathBuf;

use edk_oauth::AsConfig;
use edk_server::{AuthConfig, HttpConfig, LogConfig};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything `edk-as` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification for `/api/oauth2/v1`.
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
    /// The authorization server's behaviour (token lifetimes, `tx_code` attempts, DPoP).
    #[serde(default)]
    pub oauth: AsConfig,
}

/// The database: PostgreSQL when `postgres_url` is set, else SQLite files in `sqlite_dir`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A PostgreSQL URL (platform and tenant schemas).
    #[serde(default)]
    pub postgres_url: Option<SecretString>,
    /// The SQLite directory. Default `./.edk-as`.
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
    PathBuf::from("./.edk-as")
}

/// The software key provider.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsSettings {
    /// The key encryption key (base64url, 32 bytes); or `kek_file`.
    #[serde(default)]
    pub kek: Option<SecretString>,
    /// A file holding the key encryption key.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
}
