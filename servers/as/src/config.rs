//! The configuration of `edk-as`.

use edk_oauth::AsConfig;
use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig, RateLimitConfig};
use edk_tenancy::DatabaseConfig;
use serde::Deserialize;

/// Everything `edk-as` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
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
    /// Trace export over OTLP (`observability.otlp`); unset, nothing is exported.
    #[serde(default)]
    pub observability: edk_server::ObservabilityConfig,
    /// The platform and tenant databases (`backend: postgres` or `backend: sqlite`).
    pub database: DatabaseConfig,
    /// Where the access-token signing keys are: `mode: remote` (the KMS server, for
    /// production) or `mode: local` (providers in this process).
    pub kms: KmsConfig,
    /// The platform's directory service: read tenants, bindings and configuration from it
    /// instead of the platform database (split deployments); unset, the database.
    #[serde(default)]
    pub directory: Option<Box<edk_server::directory::DirectoryConfig>>,
    /// The authorization server's behaviour (token lifetimes, `tx_code` attempts, DPoP).
    #[serde(default)]
    pub oauth: AsConfig,
    /// Rate limits of the protocol endpoints (`/authorize`, `/callback`, `/par`, `/token`),
    /// in this process or in Redis; none by default.
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
}

edk_server::impl_service_config!(AsServerConfig, directory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_and_kms_sections_are_required_and_checked() {
        let config: AsServerConfig = serde_json::from_value(serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-as"},
            "kms": {"mode": "remote", "endpoint": "http://127.0.0.1:9090",
                "auth": {"kind": "service_jwt", "service": "as", "audience": "edk-kms",
                    "key_file": "as.jwk"}}
        }))
        .unwrap();
        assert!(!config.kms.is_local());
        for bad in [
            serde_json::json!({"kms": {"mode": "local", "providers": []}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"}}),
            serde_json::json!({"database": {"postgres_url": "postgres://x"},
                "kms": {"mode": "local", "providers": []}}),
        ] {
            assert!(
                serde_json::from_value::<AsServerConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
