//! The configuration of `edk-platform`.

use std::path::PathBuf;

use edk_oauth::AsConfig;
use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig};
use edk_tenancy::DatabaseConfig;
use serde::Deserialize;

/// Everything `edk-platform` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Trusted admin-token issuers, as in every server: their tokens (naming a tenant in
    /// `tenant`) are tenant administrators' tokens on the platform API, limited to the
    /// routes of their own tenant. Operators use the operator authorization server.
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
    /// Where the operator authorization server's signing keys are: `mode: remote` (the KMS
    /// server) or `mode: local` (providers in this process).
    pub kms: KmsConfig,
    /// The operator authorization server's behaviour (token lifetimes).
    #[serde(default)]
    pub oauth: AsConfig,
    /// The platform host and the first-run setup.
    #[serde(default)]
    pub platform: PlatformSettings,
    /// The tenant directory service for the runtime servers (`edk.tenancy.v1` over gRPC, on
    /// its own port, service JWTs); off when absent.
    #[serde(default)]
    pub grpc: Option<edk_server::directory::DirectoryServerConfig>,
}

edk_server::impl_service_config!(PlatformServerConfig);

/// Where the platform is reached and how its first-run setup token is handed out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// The platform host (`platform.<base domain>`): the operator authorization server's
    /// identifier is `https://<host>[:<port>]/operators`. Default `localhost`.
    #[serde(default = "default_host")]
    pub host: String,
    /// The port the platform host is advertised on; unset: the scheme's default.
    #[serde(default)]
    pub port: Option<u16>,
    /// Advertise `http` instead of `https` (loopback hosts only, for local development).
    #[serde(default)]
    pub dangerous_loopback_http: bool,
    /// Where the one-time setup token is written (owner-only, `0600`); unset: it is printed
    /// on standard error.
    #[serde(default)]
    pub setup_token_file: Option<PathBuf>,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: None,
            dangerous_loopback_http: false,
            setup_token_file: None,
        }
    }
}

fn default_host() -> String {
    "localhost".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_and_kms_sections_are_required_and_checked() {
        let config: PlatformServerConfig = serde_json::from_value(serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-platform"},
            "kms": {"mode": "local", "providers": []},
            "platform": {"host": "platform.example.com", "setup_token_file": "setup-token"}
        }))
        .unwrap();
        assert_eq!(config.platform.host, "platform.example.com");
        assert!(!config.platform.dangerous_loopback_http);
        for bad in [
            serde_json::json!({"kms": {"mode": "local", "providers": []}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"},
                "kms": {"mode": "local", "providers": []}, "platform": {"hots": "x"}}),
        ] {
            assert!(
                serde_json::from_value::<PlatformServerConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
