//! Prometheus metrics, rendered in the text exposition format at `/metrics`:
//!
//! - `http_requests_total{method, route, status}` and
//!   `http_request_duration_seconds{method, route, status}`: rate, errors and duration per
//!   route template (`unmatched` for a request no route matched);
//! - `http_tenant_requests_total{tenant, class}` (class `2xx`, `3xx`, `4xx`, `5xx`) and
//!   `http_tenant_request_duration_seconds{tenant}`: the same per tenant id, for the first
//!   [`DEFAULT_TENANT_LABELS`] tenants seen by the process; later ones share the label `other`
//!   and requests for no tenant have `none`, so the series count stays bounded;
//! - `rate_limited_requests_total{scope}`: requests refused by a rate limit, by the scope whose
//!   limit was reached, and `rate_limit_backend_errors_total{on_backend_error}`: checks whose
//!   backend (Redis) failed, by the policy applied (`open` let the request through, `closed`
//!   refused it).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edk_core::TenantId;

use poem::http::header::CONTENT_TYPE;
use poem::{Endpoint, Request, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The label for requests that matched no route (one value, so unknown paths cannot blow up
/// the series count).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// How many distinct tenants get a label of their own by default.
pub const DEFAULT_TENANT_LABELS: usize = 100;

/// The tenant label of tenants past the limit.
pub const OTHER_TENANT: &str = "other";

/// The tenant label of requests for no tenant (health, metrics, unresolved hosts).
pub const NO_TENANT: &str = "none";

/// The HTTP metrics of one server, in their own registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    tenant_requests: IntCounterVec,
    tenant_duration: HistogramVec,
    rate_limited: IntCounterVec,
    rate_limit_errors: IntCounterVec,
    tenants: Arc<TenantLabels>,
}

/// The tenants that have a label of their own.
#[derive(Debug)]
struct TenantLabels {
    limit: usize,
    labelled: Mutex<HashSet<TenantId>>,
}

impl TenantLabels {
    fn label(&self, tenant: Option<TenantId>) -> String {
        let Some(tenant) = tenant else {
            return NO_TENANT.to_owned();
        };
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        if labelled.contains(&tenant) || (labelled.len() < self.limit && labelled.insert(tenant)) {
            tenant.to_string()
        } else {
            OTHER_TENANT.to_owned()
        }
    }
}

impl Metrics {
    /// A fresh registry with the HTTP metrics of the [module documentation](self), labelling
    /// up to [`DEFAULT_TENANT_LABELS`] tenants.
    ///
    /// # Errors
    /// [`prometheus::Error`] if the metrics cannot be registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        Self::with_tenant_labels(DEFAULT_TENANT_LABELS)
    }

    /// A fresh registry labelling up to `limit` distinct tenants.
    ///
    /// # Errors
    /// [`prometheus::Error`] if the metrics cannot be registered.
    pub fn with_tenant_labels(limit: usize) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
            ),
            &labels,
        )?;
        let tenant_requests = IntCounterVec::new(
            Opts::new(
                "http_tenant_requests_total",
                "HTTP requests answered, by tenant and status class",
            ),
            &["tenant", "class"],
        )?;
        let tenant_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_tenant_request_duration_seconds",
                "Time to answer an HTTP request, by tenant",
            ),
            &["tenant"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_requests_total",
                "Requests refused by a rate limit, by scope",
            ),
            &["scope"],
        )?;
        let rate_limit_errors = IntCounterVec::new(
            Opts::new(
                "rate_limit_backend_errors_total",
                "Rate-limit checks whose backend failed, by the policy applied",
            ),
            &["on_backend_error"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(rate_limit_errors.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(tenant_requests.clone()))?;
        registry.register(Box::new(tenant_duration.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            tenant_requests,
            tenant_duration,
            rate_limited,
            rate_limit_errors,
            tenants: Arc::new(TenantLabels {
                limit,
                labelled: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The registry, for a server's own metrics.
    #[must_use]
    pub const fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one answered request for `tenant` (`None`: for no tenant).
    pub fn observe_tenant(&self, tenant: Option<TenantId>, status: u16, elapsed: Duration) {
        let tenant = self.tenants.label(tenant);
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.tenant_requests
            .with_label_values(&[tenant.as_str(), class])
            .inc();
        self.tenant_duration
            .with_label_values(&[tenant.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one request refused by the rate limit of `scope`.
    pub fn observe_rate_limited(&self, scope: &str) {
        self.rate_limited.with_label_values(&[scope]).inc();
    }

    /// Records one rate-limit check whose backend failed, handled by `policy` (`open` or
    /// `closed`).
    pub fn observe_rate_limit_backend_error(&self, policy: &str) {
        self.rate_limit_errors.with_label_values(&[policy]).inc();
    }

    /// The metrics in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %err, "metrics could not be encoded");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The `/metrics` endpoint.
    #[must_use]
    pub fn endpoint(&self) -> MetricsEndpoint {
        MetricsEndpoint {
            metrics: self.clone(),
        }
    }
}

/// The endpoint serving [`Metrics::render`].
#[derive(Clone, Debug)]
pub struct MetricsEndpoint {
    metrics: Metrics,
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(Response::builder()
            .header(CONTENT_TYPE, TextEncoder::new().format_type())
            .body(self.metrics.render()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_past_the_limit_share_one_label() {
        let metrics = Metrics::with_tenant_labels(2).unwrap();
        let tenants: Vec<TenantId> = (0..5)
            .map(|_| TenantId::from_uuid(uuid::Uuid::new_v4()))
            .collect();
        for tenant in &tenants {
            metrics.observe_tenant(Some(*tenant), 200, Duration::from_millis(3));
        }
        metrics.observe_tenant(Some(tenants[0]), 503, Duration::from_millis(3));
        metrics.observe_tenant(None, 200, Duration::from_millis(1));
        let text = metrics.render();
        let first = format!(
            "http_tenant_requests_total{{class=\"2xx\",tenant=\"{}\"}} 1",
            tenants[0]
        );
        assert!(text.contains(&first), "{text}");
        assert!(
            text.contains(&format!(
                "http_tenant_requests_total{{class=\"5xx\",tenant=\"{}\"}} 1",
                tenants[0]
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("tenant=\"{}\"", tenants[1])),
            "{text}"
        );
        for later in &tenants[2..] {
            assert!(!text.contains(&later.to_string()), "{text}");
        }
        assert!(
            text.contains("http_tenant_requests_total{class=\"2xx\",tenant=\"other\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("http_tenant_requests_total{class=\"2xx\",tenant=\"none\"} 1"),
            "{text}"
        );
        let series = text
            .lines()
            .filter(|line| line.starts_with("http_tenant_request_duration_seconds_count"))
            .count();
        assert_eq!(series, 4, "{text}");
    }
}
