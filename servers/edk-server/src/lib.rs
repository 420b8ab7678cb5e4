#![doc = include_str!("../README.md")]

pub mod auth;
pub mod config;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod problem;
pub mod serve;

pub use auth::{AdminAuth, AdminBearer, AdminPrincipal, AuthConfig, TrustedIssuer};
pub use config::{ConfigError, ConfigLoader, HttpConfig, LogConfig};
pub use health::{HealthApi, ReadinessCheck};
pub use metrics::Metrics;
pub use observe::Observe;
pub use problem::{ApiError, Problem, ProblemType, problem_for, problem_for_poem_error};
pub use serve::{
    ANONYMOUS_PATHS, BoundServer, TestServer, app, bind, init_tracing, openapi_routes, serve,
    shutdown_signal, spawn_server,
};

/// The Prometheus client, for servers registering their own metrics in [`Metrics::registry`].
pub use prometheus;
