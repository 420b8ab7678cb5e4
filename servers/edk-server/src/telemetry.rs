//! Logging and OpenTelemetry traces: the process-wide `tracing` subscriber, and when the
//! `observability.otlp` section is set, the export of every span over OTLP/gRPC with W3C
//! trace context propagation.
//!
//! ```yaml
//! observability:
//!   otlp:
//!     endpoint: http://otel-collector:4317   # OTLP over gRPC (plain HTTP/2)
//!     service_name: edk-issuer               # default: the binary's name
//!     sample_ratio: 0.25                     # default 1.0; parent-based
//!     filter: info                           # which spans are exported; default info
//! ```
//!
//! Without the section nothing is exported and no trace context is read or written: the
//! subscriber only writes log lines. With it, the request span of every HTTP request (see
//! [`Observe`](crate::Observe)) and of every KMS gRPC call is exported, the child of the
//! `traceparent` the request carried; calls to the KMS server carry the caller's context.
//! Span attributes are the method, the route template, the status and the tenant id: never a
//! raw path, a query string, a header or a body.

use std::io;
use std::num::NonZeroU64;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use poem::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogConfig;

/// The `observability` section of every server's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// OpenTelemetry trace export over OTLP/gRPC; unset (the default), nothing is exported.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

/// Where and how spans are exported.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/gRPC endpoint, `http://host:port` (usually port 4317).
    pub endpoint: url::Url,
    /// The `service.name` resource attribute. Default: the binary's name (`edk-issuer`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// The share of new traces recorded, from 0.0 to 1.0; a request that carries a sampled
    /// `traceparent` follows its caller's decision. Default 1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// How long one export may take, in milliseconds. Default 10 s.
    #[serde(default = "default_export_timeout")]
    pub timeout_ms: NonZeroU64,
    /// Which spans are exported: a `tracing` filter directive, independent of `log.filter`
    /// (a server logging only warnings still exports its request spans). Default `info`.
    #[serde(default = "default_span_filter")]
    pub filter: String,
}

fn default_span_filter() -> String {
    "info".to_owned()
}

const fn default_sample_ratio() -> f64 {
    1.0
}

const fn default_export_timeout() -> NonZeroU64 {
    match NonZeroU64::new(10_000) {
        Some(value) => value,
        None => NonZeroU64::MIN,
    }
}

/// Why logging or trace export could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `log.filter` or `observability.otlp.filter` does not parse.
    #[error("invalid filter")]
    Filter(#[source] tracing_subscriber::filter::ParseError),
    /// A field of `observability.otlp` is invalid.
    #[error("invalid configuration at `observability.otlp.{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The OTLP exporter could not be built.
    #[error("the OTLP exporter could not be built")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// A subscriber is already installed in this process.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// The installed telemetry: keeps the span exporter of an `observability.otlp` section; call
/// [`shutdown`](Self::shutdown) before the process exits so the last spans are sent.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    #[must_use]
    pub const fn exports(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans ended so far to the collector and waits for the answer.
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            let result = tokio::task::spawn_blocking(move || provider.force_flush()).await;
            if let Ok(Err(err)) = result {
                tracing::warn!(error = %err, "spans could not be exported");
            }
        }
    }

    /// Sends the last spans and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(err)) = result {
                tracing::warn!(error = %err, "the span exporter did not stop cleanly");
            }
        }
    }
}

/// Installs the process-wide `tracing` subscriber: JSON lines (or text) on stderr, filtered by
/// `log.filter`, and with `observability.otlp` set, span export to the collector under the
/// service name `service` (unless the section names another) and the W3C trace context
/// propagator. Call once, from a binary's `main`, inside the Tokio runtime.
///
/// # Errors
/// [`TelemetryError`] when the filter or the OTLP section is invalid, or a subscriber is
/// already installed.
pub fn init(
    log: &LogConfig,
    observability: &ObservabilityConfig,
    service: &str,
) -> Result<Telemetry, TelemetryError> {
    let log_filter = || EnvFilter::try_new(&log.filter).map_err(TelemetryError::Filter);
    let provider = observability
        .otlp
        .as_ref()
        .map(|otlp| tracer_provider(otlp, service))
        .transpose()?;
    let otel = match (&provider, &observability.otlp) {
        (Some(provider), Some(otlp)) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("edk"))
                .with_filter(EnvFilter::try_new(&otlp.filter).map_err(TelemetryError::Filter)?),
        ),
        _ => None,
    };
    let json = log.writes_json(io::IsTerminal::is_terminal(&io::stderr()));
    let (json_layer, text_layer) = if json {
        (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(io::stderr)
                    .with_filter(log_filter()?),
            ),
            None,
        )
    } else {
        (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(io::stderr)
                    .with_filter(log_filter()?),
            ),
        )
    };
    tracing_subscriber::registry()
        .with(json_layer)
        .with(text_layer)
        .with(otel)
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    if let Some(provider) = &provider {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(otlp: &OtlpConfig, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    if !(0.0..=1.0).contains(&otlp.sample_ratio) {
        return Err(TelemetryError::Invalid {
            field: "sample_ratio",
            reason: "must be between 0.0 and 1.0",
        });
    }
    if !otlp.endpoint.username().is_empty() || otlp.endpoint.password().is_some() {
        return Err(TelemetryError::Invalid {
            field: "endpoint",
            reason: "must not carry credentials (the configuration is logged)",
        });
    }
    if otlp.endpoint.scheme() != "http" || otlp.endpoint.host().is_none() {
        return Err(TelemetryError::Invalid {
            field: "endpoint",
            reason: "must be an http:// URL (OTLP over gRPC to a collector beside the server)",
        });
    }
    let name = otlp
        .service_name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(service)
        .to_owned();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otlp.endpoint.as_str().trim_end_matches('/'))
        .with_timeout(Duration::from_millis(otlp.timeout_ms.get()))
        .build()
        .map_err(TelemetryError::Exporter)?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            otlp.sample_ratio,
        ))))
        .with_resource(Resource::builder().with_service_name(name).build())
        .build())
}

/// The trace context an incoming request carries in its `traceparent` and `tracestate`
/// headers (empty when none, or when no propagator is installed).
#[must_use]
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

/// Writes the trace context of the current span into `headers`, for an outgoing HTTP request
/// (nothing when no propagator is installed).
pub fn inject_current(headers: &mut HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_otlp_section_is_checked() {
        let otlp = |value: serde_json::Value| serde_json::from_value::<OtlpConfig>(value).unwrap();
        let err = tracer_provider(
            &otlp(serde_json::json!({"endpoint": "http://127.0.0.1:4317", "sample_ratio": 1.5})),
            "edk",
        )
        .unwrap_err();
        assert!(err.to_string().contains("sample_ratio"), "{err}");
        let err = tracer_provider(
            &otlp(serde_json::json!({"endpoint": "https://collector:4317"})),
            "edk",
        )
        .unwrap_err();
        assert!(err.to_string().contains("endpoint"), "{err}");
        let err = tracer_provider(
            &otlp(serde_json::json!({"endpoint": "http://user:secret@collector:4317"})),
            "edk",
        )
        .unwrap_err();
        assert!(err.to_string().contains("credentials"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(
            serde_json::from_value::<OtlpConfig>(serde_json::json!({"endpoint": "x", "ratio": 1}))
                .is_err()
        );
    }

    #[test]
    fn without_a_propagator_nothing_is_read_or_written() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        use opentelemetry::trace::TraceContextExt as _;
        assert!(!extract(&headers).span().span_context().is_valid());
        let mut out = HeaderMap::new();
        inject_current(&mut out);
        assert!(out.is_empty());
    }
}
