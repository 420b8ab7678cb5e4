//! The outermost middleware of every EDK server: request ids, a tracing span per request,
//! metrics, the body limit, the request timeout and problem+json for poem's own errors.

use std::io;
use std::time::{Duration, Instant};

use futures::StreamExt;
use poem::PathPattern;
use poem::http::HeaderValue;
use poem::http::header::CONTENT_LENGTH;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;

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
            request_id = request_id.to_str().unwrap_or_default(),
            method = %method,
            path = %req.uri().path(),
        );
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
            let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
            self.observe
                .metrics
                .observe(&method, route, status, elapsed);
            tracing::info!(
                status,
                route,
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

/// Why reading a request body without a declared length stopped: it passed the limit.
/// [`problem_for_poem_error`](crate::problem_for_poem_error) answers it with 413.
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
