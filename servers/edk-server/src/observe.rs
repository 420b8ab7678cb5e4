//! The outermost middleware of every EDK server: request ids, a tracing span per request,
//! metrics, the body limit, the request timeout and problem+json for poem's own errors.
//!
//! The request span is the child of the W3C trace context the request carries (when trace
//! export is configured, see [`telemetry`](crate::telemetry)). It records the method, the
//! route template, the status and the tenant: endpoints that route by something else than
//! poem's [`Route`](poem::Route) (a tenant's protocol paths) name their template with
//! [`record_route`], and whatever resolves the tenant names it with [`record_tenant`]. The
//! raw path, the query string, headers and bodies are never recorded.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edk_core::TenantId;
use futures::StreamExt;
use opentelemetry::trace::TraceContextExt as _;
use poem::PathPattern;
use poem::http::HeaderValue;
use poem::http::header::CONTENT_LENGTH;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::{Metrics, UNMATCHED_ROUTE};
use crate::problem::{Problem, ProblemType, problem_for_poem_error};

/// The request id header: taken from the request when it is a sensible token, generated
/// otherwise, and always echoed on the response.
pub const REQUEST_ID: &str = "x-request-id";

const MAX_REQUEST_ID_LEN: usize = 128;

/// The observing middleware; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Observe {
    metrics: Metrics,
    body_limit: usize,
    timeout: Duration,
}

impl Observe {
    /// Records into `metrics`, refuses bodies over `body_limit` bytes and answers 504 after
    /// `timeout`.
    #[must_use]
    pub const fn new(metrics: Metrics, body_limit: usize, timeout: Duration) -> Self {
        Self {
            metrics,
            body_limit,
            timeout,
        }
    }
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            observe: self.clone(),
            inner,
        }
    }
}

/// The endpoint [`Observe`] wraps around another.
#[derive(Debug)]
pub struct ObserveEndpoint<E> {
    observe: Observe,
    inner: E,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .filter(|value| acceptable_request_id(value))
            .cloned()
            .unwrap_or_else(new_request_id);
        let method = req.method().as_str().to_owned();
        let span = tracing::info_span!(
            "request",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = request_id.to_str().unwrap_or_default(),
            method = %method,
            route = tracing::field::Empty,
            tenant = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let _ = span.set_parent(crate::telemetry::extract(req.headers()));
        let labels = RequestLabels::default();
        req.extensions_mut().insert(labels.clone());
        async move {
            let started = Instant::now();
            let (mut response, route) = match self.limit_body(&mut req) {
                Err(problem) => (problem.into_response(), None),
                Ok(()) => {
                    match tokio::time::timeout(self.observe.timeout, self.inner.call(req)).await {
                        Err(_) => {
                            tracing::warn!("request timed out");
                            (
                                Problem::new(ProblemType::Timeout, None).into_response(),
                                None,
                            )
                        }
                        Ok(Ok(output)) => {
                            let response = output.into_response();
                            let route = response.data::<PathPattern>().map(|p| p.0.to_string());
                            (response, route)
                        }
                        Ok(Err(err)) => {
                            let route = err.data::<PathPattern>().map(|p| p.0.to_string());
                            (problem_for_poem_error(err), route)
                        }
                    }
                }
            };
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            let (named_route, tenant) = labels.take();
            let route = named_route
                .map(str::to_owned)
                .or(route)
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
            let span = tracing::Span::current();
            span.record("route", route.as_str());
            // Renamed through its context too: the exported span may have started already
            // (a call it made carried its context), and then only that renames it.
            let name = format!("{method} {route}");
            span.context().span().update_name(name.clone());
            span.record("otel.name", name);
            span.record("status", status);
            if let Some(tenant) = tenant {
                span.record("tenant", tracing::field::display(tenant));
            }
            if status >= 500 {
                span.record("otel.status_code", "ERROR");
            }
            self.observe
                .metrics
                .observe(&method, &route, status, elapsed);
            self.observe.metrics.observe_tenant(tenant, status, elapsed);
            tracing::info!(
                latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                "request answered"
            );
            response.headers_mut().insert(REQUEST_ID, request_id);
            Ok(response)
        }
        .instrument(span)
        .await
    }
}

impl<E> ObserveEndpoint<E> {
    /// Refuses a declared length over the limit at once; caps an undeclared one while it is
    /// read, so the parse fails with [`BodyTooLarge`] (a 413 problem).
    fn limit_body(&self, req: &mut Request) -> Result<(), Problem> {
        let limit = self.observe.body_limit;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(length) = declared {
            if usize::try_from(length).map_or(true, |length| length > limit) {
                return Err(Problem::new(
                    ProblemType::PayloadTooLarge,
                    Some(format!("the request body is larger than {limit} bytes")),
                ));
            }
            return Ok(());
        }
        let mut seen = 0usize;
        let stream = req.take_body().into_bytes_stream().map(move |chunk| {
            let chunk = chunk?;
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                return Err(io::Error::other(BodyTooLarge { limit }));
            }
            Ok(chunk)
        });
        req.set_body(Body::from_bytes_stream(stream));
        Ok(())
    }
}

/// The route template and tenant of one request, named by the endpoints that know them.
#[derive(Clone, Debug, Default)]
struct RequestLabels(Arc<Mutex<(Option<&'static str>, Option<TenantId>)>>);

impl RequestLabels {
    fn take(&self) -> (Option<&'static str>, Option<TenantId>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Names the route template of `req` (`/offers/{handle}`, never the path itself) for its span
/// and metrics, when poem's router did not match it. Does nothing outside [`Observe`].
pub fn record_route(req: &Request, route: &'static str) {
    if let Some(labels) = req.extensions().get::<RequestLabels>() {
        labels.0.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(route);
    }
}

/// Names the tenant `req` is for, for its span and the per-tenant metrics. Does nothing
/// outside [`Observe`].
pub fn record_tenant(req: &Request, tenant: TenantId) {
    if let Some(labels) = req.extensions().get::<RequestLabels>() {
        labels.0.lock().unwrap_or_else(PoisonError::into_inner).1 = Some(tenant);
    }
}

/// Why reading a request body without a declared length stopped: it passed the limit.
/// [`problem_for_poem_error`] answers it with 413.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit, in bytes.
    pub limit: usize,
}

fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().to_string();
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_filtered() {
        assert!(acceptable_request_id(&HeaderValue::from_static("abc-123")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("a b")));
        assert!(!acceptable_request_id(&HeaderValue::from_static("")));
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(!acceptable_request_id(
            &HeaderValue::from_str(&long).unwrap()
        ));
    }
}
