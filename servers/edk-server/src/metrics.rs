//! Prometheus metrics: request counts and latency histograms by method, route template and
//! status, rendered in the text exposition format at `/metrics`.

use std::time::Duration;

use poem::http::header::CONTENT_TYPE;
use poem::{Endpoint, Request, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The label for requests that matched no route (one value, so unknown paths cannot blow up
/// the series count).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The HTTP metrics of one server, in their own registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl Metrics {
    /// A fresh registry with `http_requests_total` and `http_request_duration_seconds`.
    ///
    /// # Errors
    /// [`prometheus::Error`] if the metrics cannot be registered.
    pub fn new() -> Result<Self, prometheus::Error> {
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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
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
