//! The configuration of `edk-issuer`.

use edk_oauth::AsConfig;
use edk_oid4vci::{Encryption, IssuerOptions};
use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig, RateLimitConfig};
use edk_tenancy::DatabaseConfig;
use serde::Deserialize;

/// Everything `edk-issuer` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerServerConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification for `/api/oid4vci/v1`.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Trace export over OTLP (`observability.otlp`); unset, nothing is exported.
    #[serde(default)]
    pub observability: edk_server::ObservabilityConfig,
    /// The platform and tenant databases (`backend: postgres` or `backend: sqlite`), shared
    /// with `edk-as`.
    pub database: DatabaseConfig,
    /// Where the credential signing keys (and the authorization server's access-token keys)
    /// are: `mode: remote` (the KMS server, for production) or `mode: local`.
    pub kms: KmsConfig,
    /// The platform's directory service: read tenants, bindings and configuration from it
    /// instead of the platform database (split deployments); unset, the database.
    #[serde(default)]
    pub directory: Option<Box<edk_server::directory::DirectoryConfig>>,
    /// The in-process authorization server that mints pre-authorized codes: the same
    /// settings as `edk-as`'s `oauth` section, which it should equal.
    #[serde(default)]
    pub oauth: AsConfig,
    /// The issuer's behaviour.
    #[serde(default)]
    pub issuer: IssuerSettings,
    /// Rate limits of the public issuer endpoints (per tenant and client address), in this
    /// process or in Redis; none by default.
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
}

/// The `issuer` section: lifetimes, batch size and request leniency.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerSettings {
    /// How long a `c_nonce` lives, in seconds. Default 300.
    pub nonce_ttl_secs: i64,
    /// How long an offer (its session, pre-authorized code and reference) lives, in
    /// seconds. Default 600.
    pub offer_ttl_secs: i64,
    /// The most credentials one request may ask for; 1 disables batch issuance. Default 10.
    pub batch_size: u32,
    /// Accept the singular `proof` and `format`-based requests of earlier drafts. Default
    /// `true`.
    pub accept_legacy: bool,
    /// How old a key proof's `iat` may be, in seconds. Default 300.
    pub proof_max_age_secs: i64,
    /// How long wallets may cache the issuer metadata, in seconds. Default 300.
    pub metadata_max_age_secs: u32,
    /// The `interval` deferred responses ask wallets to wait between polls, in seconds.
    /// Default 5.
    pub deferred_interval_secs: u32,
    /// How long a deferred transaction waits to be completed and fetched, in seconds.
    /// Default 86400.
    pub deferred_ttl_secs: i64,
    /// How long wallets may send notifications about issued credentials, in seconds.
    /// Default 86400.
    pub notification_ttl_secs: i64,
    /// Where the credential endpoint finds the keys of access tokens: `kms` (default: the
    /// tenant AS's signing key versions in the shared KMS) or `jwks_uri` (the JWKS `edk-as`
    /// publishes for the tenant, fetched and cached five minutes).
    pub access_token_keys: AccessTokenKeySource,
    /// Encrypted credential requests and responses (OpenID4VCI §10): `off`, `supported`
    /// (default: advertised in the metadata with the tenant's KMS key
    /// `issuer.request-decryption`, used when a wallet asks) or `required`.
    pub encryption: EncryptionSetting,
    /// The `ttl` of Status List Tokens, in seconds: how long relying parties may cache one.
    /// Default 300.
    pub status_list_ttl_secs: u64,
    /// How long a Status List Token is valid, in seconds. Default 86400.
    pub status_list_validity_secs: i64,
    /// How long expired Status List Tokens stay for historical resolution (`?time=`), in
    /// seconds. Default 7776000 (90 days).
    pub status_list_history_secs: i64,
    /// How often the publication job signs the lists that changed, in seconds: one
    /// signature per changed list per interval. Default 60.
    pub status_list_publish_interval_secs: u64,
}

/// The `issuer.encryption` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EncryptionSetting {
    /// Not advertised, encrypted requests refused.
    Off,
    /// Wallets may encrypt.
    #[default]
    Supported,
    /// Wallets must encrypt requests and ask for encrypted responses.
    Required,
}

impl From<EncryptionSetting> for Encryption {
    fn from(setting: EncryptionSetting) -> Self {
        match setting {
            EncryptionSetting::Off => Self::Off,
            EncryptionSetting::Supported => Self::Supported,
            EncryptionSetting::Required => Self::Required,
        }
    }
}

/// The `issuer.access_token_keys` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccessTokenKeySource {
    /// The KMS shared with the authorization server.
    #[default]
    Kms,
    /// The authorization server's `jwks_uri`.
    JwksUri,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        let options = IssuerOptions::default();
        Self {
            nonce_ttl_secs: options.nonce_ttl_secs,
            offer_ttl_secs: options.offer_ttl_secs,
            batch_size: options.batch_size,
            accept_legacy: options.accept_legacy,
            proof_max_age_secs: options.proof_max_age_secs,
            metadata_max_age_secs: 300,
            deferred_interval_secs: options.deferred_interval_secs,
            deferred_ttl_secs: options.deferred_ttl_secs,
            notification_ttl_secs: options.notification_ttl_secs,
            access_token_keys: AccessTokenKeySource::Kms,
            encryption: EncryptionSetting::Supported,
            status_list_ttl_secs: options.status_list_ttl_secs,
            status_list_validity_secs: options.status_list_validity_secs,
            status_list_history_secs: options.status_list_history_secs,
            status_list_publish_interval_secs: 60,
        }
    }
}

impl IssuerSettings {
    /// The library's options of these settings.
    #[must_use]
    pub fn options(&self) -> IssuerOptions {
        let mut options = IssuerOptions::default();
        options.nonce_ttl_secs = self.nonce_ttl_secs;
        options.offer_ttl_secs = self.offer_ttl_secs;
        options.batch_size = self.batch_size;
        options.accept_legacy = self.accept_legacy;
        options.proof_max_age_secs = self.proof_max_age_secs;
        options.deferred_interval_secs = self.deferred_interval_secs;
        options.deferred_ttl_secs = self.deferred_ttl_secs;
        options.notification_ttl_secs = self.notification_ttl_secs;
        options.encryption = self.encryption.into();
        options.status_list_ttl_secs = self.status_list_ttl_secs.max(1);
        options.status_list_validity_secs = self.status_list_validity_secs.max(60);
        options.status_list_history_secs = self.status_list_history_secs.max(0);
        options
    }
}

edk_server::impl_service_config!(IssuerServerConfig, directory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_and_kms_sections_are_required_and_unknown_keys_refused() {
        let config: IssuerServerConfig = serde_json::from_value(serde_json::json!({
            "database": {"backend": "sqlite", "directory": "./.edk-issuer"},
            "kms": {"mode": "local", "providers": []},
            "issuer": {"nonce_ttl_secs": 60, "batch_size": 1, "access_token_keys": "jwks_uri"}
        }))
        .unwrap();
        let options = config.issuer.options();
        assert_eq!(options.nonce_ttl_secs, 60);
        assert_eq!(options.batch_size, 1);
        assert_eq!(options.offer_ttl_secs, 600);
        assert_eq!(config.issuer.metadata_max_age_secs, 300);
        assert_eq!(
            config.issuer.access_token_keys,
            AccessTokenKeySource::JwksUri
        );
        for bad in [
            serde_json::json!({"kms": {"mode": "local", "providers": []}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"}}),
            serde_json::json!({"database": {"backend": "sqlite", "directory": "x"},
                "kms": {"mode": "local", "providers": []}, "issuer": {"nonce_ttl": 1}}),
        ] {
            let err = serde_json::from_value::<IssuerServerConfig>(bad.clone()).unwrap_err();
            assert!(
                err.to_string().starts_with("missing field")
                    || err.to_string().starts_with("unknown field `nonce_ttl`"),
                "{bad}: {err}"
            );
        }
    }
}
