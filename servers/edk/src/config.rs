//! The configuration of the `edk` binary.

use serde::Deserialize;

use edk_did_server::ResolverSettings;
use edk_issuer_server::IssuerSettings;
use edk_oauth::AsConfig;
use edk_server::{AuthConfig, HttpConfig, KmsConfig, LogConfig, RateLimitConfig};
use edk_tenancy::DatabaseConfig;
use edk_verifier_server::VerifierSettings;

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
    /// Trace export over OTLP (`observability.otlp`); unset, nothing is exported.
    #[serde(default)]
    pub observability: edk_server::ObservabilityConfig,
    /// The platform and tenant databases, as in every server (`backend: postgres` or
    /// `backend: sqlite`). Unset: SQLite files in the data directory's `db/`.
    #[serde(default)]
    pub database: Option<DatabaseConfig>,
    /// Where the keys are, as in every server (`mode: local` or `mode: remote`). Unset:
    /// software keys sealed under the data directory's key encryption key.
    #[serde(default)]
    pub kms: Option<KmsConfig>,
    /// The authorization servers' behaviour (token lifetimes, `tx_code` attempts, DPoP), as
    /// in `edk-as`.
    #[serde(default)]
    pub oauth: AsConfig,
    /// Whether the default tenant's authorization server advertises `https://localhost:<port>`
    /// (TLS terminated in front of `edk`) instead of `http://localhost:<port>`. Default false:
    /// wallets and clients on the same machine use `edk` as it is.
    #[serde(default)]
    pub local_https: bool,
    /// How `/1.0/identifiers` resolves DIDs not published here, and its cache, as
    /// `resolver` in `edk-did`.
    #[serde(default)]
    pub did_resolver: ResolverSettings,
    /// The credential issuers' behaviour (nonce and offer lifetimes, batch size), as
    /// `issuer` in `edk-issuer`.
    #[serde(default)]
    pub issuer: IssuerSettings,
    /// The verifiers' behaviour (request lifetimes), as `verifier` in `edk-verifier`.
    #[serde(default)]
    pub verifier: VerifierSettings,
    /// Rate limits of the public endpoints of the authorization servers, issuers and
    /// verifiers, as `rate_limits` in each server (each service counts its own requests);
    /// none by default.
    #[serde(default)]
    pub rate_limits: Box<RateLimitConfig>,
}
