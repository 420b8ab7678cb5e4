#![doc = include_str!("../README.md")]

pub mod auth;
pub mod config;
pub mod deps;
pub mod directory;
pub mod health;
pub mod jwks;
pub mod kms;
pub mod metrics;
pub mod negotiate;
mod nulls;
pub mod observe;
pub mod pool_metrics;
pub mod problem;
pub mod provider_metrics;
pub mod rate_limit;
pub mod routing;
pub mod scheduler;
pub mod serve;
pub mod service;
pub mod telemetry;

pub use auth::{AdminAuth, AdminBearer, AdminPrincipal, AuthConfig, AuthSetupError, TrustedIssuer};
pub use config::{ConfigError, ConfigLoader, HttpConfig, LogConfig};
pub use deps::{DatabaseCheck, Deps, DepsBuilder, DepsError, KmsCheck};
pub use health::{HealthApi, ReadinessCheck};
pub use jwks::{JwksCachePolicy, RemoteJwks};
pub use kms::{KmsConfig, KmsHandle};
pub use metrics::Metrics;
pub use observe::Observe;
pub use pool_metrics::PoolMetrics;
pub use problem::{ApiError, Problem, ProblemType, problem_for, problem_for_poem_error};
pub use provider_metrics::ProviderMetrics;
pub use rate_limit::{Decision, RateKey, RateLimitConfig, RateLimiter, Scope};
pub use scheduler::JobMetrics;
pub use serve::{
    ANONYMOUS_PATHS, BoundServer, SurfaceDispatch, TestServer, app, bind, init_tracing,
    openapi_routes, path_is_under, serve, shutdown_signal, spawn_server,
};
pub use service::{Cli, Service, ServiceConfig, SideTask};
pub use telemetry::{ObservabilityConfig, OtlpConfig, Telemetry};

/// The Prometheus client, for servers registering their own metrics in [`Metrics::registry`].
pub use prometheus;

/// Installs aws-lc-rs as the process's TLS crypto provider, for rustls users that find it
/// through the process default (the HTTP client that fetches JWKS among them). Call it first
/// in `main` and in test set-up; later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
