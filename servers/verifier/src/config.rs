//! The configuration of `edk-verifier`.

use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig, RateLimitConfig};
use edk_tenancy::DatabaseConfig;
use serde::Deserialize;

/// Everything `edk-verifier` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification for `/api/oid4vp/v1`.
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
    /// Where the request object signing keys and their certificates are: `mode: remote`
    /// (the KMS server, for production) or `mode: local`.
    pub kms: KmsConfig,
    /// The platform's directory service: read tenants, bindings and configuration from it
    /// instead of the platform database (split deployments); unset, the database.
    #[serde(default)]
    pub directory: Option<Box<edk_server::directory::DirectoryConfig>>,
    /// The verifier's behaviour.
    #[serde(default)]
    pub verifier: VerifierSettings,
    /// Rate limits of the public verifier endpoints (per tenant and client address), in
    /// this process or in Redis; none by default.
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
}

/// The `verifier` section: lifetimes, status lists, retention and webhooks.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierSettings {
    /// How long a presentation request lives when `POST /requests` names no lifetime, in
    /// seconds. Default 300.
    pub request_ttl_secs: i64,
    /// The longest lifetime `POST /requests` may ask for, in seconds. Default 3600.
    pub max_request_ttl_secs: i64,
    /// How many Status Lists are cached per tenant and status list origin. Default 256.
    pub status_list_cache_size: usize,
    /// The longest a Status List is cached, whatever its `ttl` says (never past its `exp`),
    /// in seconds. Default 3600.
    pub status_list_max_ttl_secs: u64,
    /// How long fetching a Status List Token (or its issuer's metadata) may take, in
    /// seconds. Default 10.
    pub status_list_timeout_secs: u64,
    /// The largest Status List Token read, in bytes. Default 1 MiB.
    pub status_list_max_bytes: usize,
    /// Fetch Status Lists and issuer metadata over plain `http` too. Default `false`; for
    /// local development and tests only.
    pub dangerous_allow_http_status_lists: bool,
    /// How long after a session ended (`verified`, `failed` or `expired`) the retention job
    /// applies the tenant's `oid4vp.presentation_retention`, in seconds. Default 3600.
    pub retention_delay_secs: i64,
    /// Accept plain `http` webhook URLs too. Default `false`; for local development and
    /// tests only.
    pub dangerous_allow_http_webhooks: bool,
    /// How long one webhook attempt may take, in seconds. Default 10.
    pub webhook_timeout_secs: u64,
    /// The wait after a webhook's first failed attempt, in seconds, doubled after each
    /// further failure (at most an hour). Default 10.
    pub webhook_retry_base_secs: i64,
    /// How many attempts a webhook delivery gets before it is abandoned. Default 8.
    pub webhook_max_attempts: i64,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            request_ttl_secs: 300,
            max_request_ttl_secs: 3600,
            status_list_cache_size: 256,
            status_list_max_ttl_secs: 3600,
            status_list_timeout_secs: 10,
            status_list_max_bytes: 1024 * 1024,
            dangerous_allow_http_status_lists: false,
            retention_delay_secs: 3600,
            dangerous_allow_http_webhooks: false,
            webhook_timeout_secs: 10,
            webhook_retry_base_secs: 10,
            webhook_max_attempts: 8,
        }
    }
}

edk_server::impl_service_config!(VerifierServerConfig, directory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_and_kms_sections_are_required_and_unknown_keys_refused() {
        let config: VerifierServerConfig = serde_json::from_value(serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-verifier"},
            "kms": {"mode": "local", "providers": []},
            "verifier": {"request_ttl_secs": 60}
        }))
        .unwrap();
        assert_eq!(config.verifier.request_ttl_secs, 60);
        assert_eq!(config.verifier.max_request_ttl_secs, 3600);
        for bad in [
            serde_json::json!({"kms": {"mode": "local", "providers": []}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"},
                "kms": {"mode": "local", "providers": []}, "verifier": {"ttl": 1}}),
        ] {
            let err = serde_json::from_value::<VerifierServerConfig>(bad.clone()).unwrap_err();
            assert!(
                err.to_string().starts_with("missing field")
                    || err.to_string().starts_with("unknown field `ttl`"),
                "{bad}: {err}"
            );
        }
    }
}
