//! `/health/live` and `/health/ready`.
//!
//! Liveness answers 200 whenever the process serves requests. Readiness runs every registered
//! [`ReadinessCheck`] and answers 200 only when all pass, 503 otherwise, listing each check.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

/// A dependency the server needs before it takes traffic (the KMS, a database).
#[async_trait]
pub trait ReadinessCheck: fmt::Debug + Send + Sync {
    /// A short name for the check, shown in the readiness report.
    fn name(&self) -> &str;

    /// Succeeds when the dependency answers.
    ///
    /// # Errors
    /// A short, caller-safe reason when it does not.
    async fn check(&self) -> Result<(), String>;
}

/// The health endpoints, with the readiness checks they run.
#[derive(Clone, Debug, Default)]
pub struct HealthApi {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl HealthApi {
    /// Health endpoints with no readiness checks (always ready).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a readiness check.
    #[must_use]
    pub fn with_check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }
}

#[derive(Tags)]
enum HealthTag {
    /// Liveness and readiness probes.
    Health,
}

/// The outcome of one readiness check.
#[derive(Clone, Debug, Object)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

/// A health report.
#[derive(Clone, Debug, Object)]
pub struct HealthReport {
    /// `ok` or `unavailable`.
    pub status: String,
    /// The readiness checks run (empty for liveness).
    pub checks: Vec<CheckReport>,
}

/// The answer of `/health/ready`.
#[derive(ApiResponse, Debug)]
pub enum ReadyResponse {
    /// Every check passed.
    #[oai(status = 200)]
    Ready(Json<HealthReport>),
    /// At least one check failed.
    #[oai(status = 503)]
    NotReady(Json<HealthReport>),
}

#[OpenApi(tag = "HealthTag::Health")]
impl HealthApi {
    /// Liveness: 200 whenever the process serves requests.
    #[oai(path = "/health/live", method = "get", operation_id = "healthLive")]
    async fn live(&self) -> Json<HealthReport> {
        Json(HealthReport {
            status: "ok".to_owned(),
            checks: Vec::new(),
        })
    }

    /// Readiness: 200 only when every dependency answers.
    #[oai(path = "/health/ready", method = "get", operation_id = "healthReady")]
    async fn ready(&self) -> ReadyResponse {
        let mut checks = Vec::with_capacity(self.checks.len());
        for check in &self.checks {
            let result = check.check().await;
            if let Err(reason) = &result {
                tracing::warn!(check = check.name(), reason, "readiness check failed");
            }
            checks.push(CheckReport {
                name: check.name().to_owned(),
                ok: result.is_ok(),
                reason: result.err(),
            });
        }
        if checks.iter().all(|check| check.ok) {
            ReadyResponse::Ready(Json(HealthReport {
                status: "ok".to_owned(),
                checks,
            }))
        } else {
            ReadyResponse::NotReady(Json(HealthReport {
                status: "unavailable".to_owned(),
                checks,
            }))
        }
    }
}
