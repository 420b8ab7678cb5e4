//! W3C trace context on the gRPC calls between EDK services (the tenant directory here, the
//! KMS in edk-kms): the client injects the context of the current `tracing` span into each
//! call's metadata (`traceparent`, `tracestate`), and the server extracts it, so the span of a
//! call on the server is the child of the caller's span and both carry one trace id.
//!
//! Both go through OpenTelemetry's global text map propagator: until a process installs one
//! (edk-server does when OTLP export is configured), nothing is injected or extracted.

use opentelemetry::propagation::{Extractor, Injector};
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Injects the trace context of the current `tracing` span into `metadata`.
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// The span of one incoming call: named after the method (`/edk.kms.v1.KeyManagement/Sign`),
/// the child of the trace context the call carries, with a `tenant` field that authentication
/// records. Nothing of the request but its path is recorded.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let method = request.uri().path();
    let span = tracing::info_span!(
        "grpc",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = method,
        tenant = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
