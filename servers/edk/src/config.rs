//! The configuration of the `edk` binary.

use serde::Deserialize;

use edk_did_server::ResolverSettings;
use edk_oauth::AsConfig;
use edk_server::{AuthConfig, HttpConfig, LogConfig};

/// Everything `edk` reads from its defaults, YAML files and `EDK_*` variables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdkConfig {
    /// The HTTP listener and request limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Admin token verification; the bootstrap issuer is added at start-up.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The authorization servers' behaviour (token lifetimes, `tx_code` attempts, DPoP), as
    /// in `edk-as`.
    #[serde(default)]
    pub oauth: AsConfig,
    /// How `/1.0/identifiers` resolves DIDs not published here, and its cache, as
    /// `resolver` in `edk-did`.
    #[serde(default)]
    pub did_resolver: ResolverSettings,
}
