//! RFC 9457 problem details: the one place errors become HTTP responses.
//!
//! Every admin error is `application/problem+json` with a stable `type` URI from
//! [`ProblemType`]. Library errors reach it through [`problem_for`], which maps their
//! [`ErrorKind`] (never their variant) to a status; poem's own failures (unknown route, wrong
//! method, malformed or oversized body, wrong content type) through [`problem_for_poem_error`].
//! Server-side failures (5xx) never show their detail to the caller: it is logged.

use poem::Response;
use poem::http::StatusCode;
use poem::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use edk_core::{ErrorChain, ErrorKind, HasKind};

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge sent with a 401 for a missing token (RFC 6750 §3.1).
pub const CHALLENGE_MISSING_TOKEN: &str = "Bearer";

/// The `WWW-Authenticate` challenge sent with a 401 for a token that failed verification.
pub const CHALLENGE_INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

/// A problem details object (RFC 9457 §3.1).
#[derive(Clone, Debug, PartialEq, Eq, Object, serde::Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, see the server documentation.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request; absent for server-side failures.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

impl Problem {
    /// The problem of kind `kind`, with an optional `detail`.
    #[must_use]
    pub fn new(kind: ProblemType, detail: Option<String>) -> Self {
        Self {
            type_uri: kind.uri().to_owned(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail,
        }
    }

    /// The response carrying this problem, with its status and `application/problem+json`.
    #[must_use]
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        });
        let mut body = body;
        if let Some(map) = body.as_object_mut()
            && self.detail.is_none()
        {
            map.remove("detail");
        }
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, PROBLEM_JSON)
            .body(body.to_string())
    }
}

/// The kinds of problem EDK servers report, each with a stable `type` URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 403: the caller may not do this (for a token: a scope is missing).
    Forbidden,
    /// 500: a fault on the server's side.
    Internal,
    /// 400: the request is malformed or semantically wrong.
    InvalidRequest,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 404: no such route or resource.
    NotFound,
    /// 406: the resource exists in no media type the `Accept` header accepts.
    NotAcceptable,
    /// 413: the request body is larger than the server accepts.
    PayloadTooLarge,
    /// 504: the request took longer than the server allows.
    Timeout,
    /// 401: the caller did not authenticate, or its credentials failed.
    Unauthenticated,
    /// 429: a rate limit is exceeded; `Retry-After` tells when to try again.
    TooManyRequests,
    /// 503: a dependency did not answer.
    Unavailable,
    /// 415: the request body has a media type the endpoint does not accept.
    UnsupportedMediaType,
    /// 422: the request is well formed but asks for something this deployment lacks.
    Unsupported,
}

impl ProblemType {
    /// Every problem type, for documentation and tests.
    pub const ALL: [Self; 14] = [
        Self::Conflict,
        Self::Forbidden,
        Self::Internal,
        Self::InvalidRequest,
        Self::MethodNotAllowed,
        Self::NotFound,
        Self::NotAcceptable,
        Self::PayloadTooLarge,
        Self::Timeout,
        Self::Unauthenticated,
        Self::TooManyRequests,
        Self::Unavailable,
        Self::UnsupportedMediaType,
        Self::Unsupported,
    ];

    /// The stable `type` URI.
    #[must_use]
    pub const fn uri(self) -> &'static str {
        match self {
            Self::Conflict => "https://edk.dev/problems/conflict",
            Self::Forbidden => "https://edk.dev/problems/forbidden",
            Self::Internal => "https://edk.dev/problems/internal-error",
            Self::InvalidRequest => "https://edk.dev/problems/invalid-request",
            Self::MethodNotAllowed => "https://edk.dev/problems/method-not-allowed",
            Self::NotFound => "https://edk.dev/problems/not-found",
            Self::NotAcceptable => "https://edk.dev/problems/not-acceptable",
            Self::PayloadTooLarge => "https://edk.dev/problems/payload-too-large",
            Self::Timeout => "https://edk.dev/problems/timeout",
            Self::Unauthenticated => "https://edk.dev/problems/unauthenticated",
            Self::TooManyRequests => "https://edk.dev/problems/too-many-requests",
            Self::Unavailable => "https://edk.dev/problems/unavailable",
            Self::UnsupportedMediaType => "https://edk.dev/problems/unsupported-media-type",
            Self::Unsupported => "https://edk.dev/problems/unsupported",
        }
    }

    /// The `title`.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Forbidden => "forbidden",
            Self::Internal => "internal error",
            Self::InvalidRequest => "invalid request",
            Self::MethodNotAllowed => "method not allowed",
            Self::NotFound => "not found",
            Self::NotAcceptable => "not acceptable",
            Self::PayloadTooLarge => "payload too large",
            Self::Timeout => "timeout",
            Self::Unauthenticated => "unauthenticated",
            Self::TooManyRequests => "too many requests",
            Self::Unavailable => "unavailable",
            Self::UnsupportedMediaType => "unsupported media type",
            Self::Unsupported => "unsupported",
        }
    }

    /// The HTTP status.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Conflict => StatusCode::CONFLICT,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unsupported => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The problem type of an [`ErrorKind`] (STYLE §4).
    #[must_use]
    pub const fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidInput => Self::InvalidRequest,
            ErrorKind::Unauthenticated => Self::Unauthenticated,
            ErrorKind::Forbidden => Self::Forbidden,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Conflict => Self::Conflict,
            ErrorKind::Unsupported => Self::Unsupported,
            ErrorKind::Unavailable => Self::Unavailable,
            ErrorKind::Internal => Self::Internal,
        }
    }
}

/// The error half of every admin handler: one variant per status, each an
/// `application/problem+json` body, so every status appears in the OpenAPI document.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed or semantically wrong.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The caller did not authenticate, or its token failed verification.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(
        Json<Problem>,
        /// The bearer challenge (RFC 6750 §3).
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// The caller may not do this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The request body is larger than the server accepts (raised by the middleware).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The request body's media type is not accepted (raised while parsing the request).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The request asks for something this deployment does not support.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unsupported(Json<Problem>),
    /// A fault on the server's side; the detail is only logged.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency did not answer.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    /// The error for a failure of kind `kind` with an optional `detail` (shown to the caller).
    #[must_use]
    pub fn new(kind: ErrorKind, detail: Option<String>) -> Self {
        let body = Json(Problem::new(ProblemType::from_kind(kind), detail));
        match kind {
            ErrorKind::InvalidInput => Self::BadRequest(body),
            ErrorKind::Unauthenticated => {
                Self::Unauthorized(body, CHALLENGE_INVALID_TOKEN.to_owned())
            }
            ErrorKind::Forbidden => Self::Forbidden(body),
            ErrorKind::NotFound => Self::NotFound(body),
            ErrorKind::Conflict => Self::Conflict(body),
            ErrorKind::Unsupported => Self::Unsupported(body),
            ErrorKind::Unavailable => Self::Unavailable(body),
            ErrorKind::Internal => Self::Internal(body),
        }
    }

    /// The problem body.
    #[must_use]
    pub const fn body(&self) -> &Problem {
        match self {
            Self::BadRequest(body)
            | Self::Unauthorized(body, _)
            | Self::Forbidden(body)
            | Self::NotFound(body)
            | Self::Conflict(body)
            | Self::PayloadTooLarge(body)
            | Self::UnsupportedMediaType(body)
            | Self::Unsupported(body)
            | Self::Internal(body)
            | Self::Unavailable(body) => &body.0,
        }
    }
}

/// The problem for a library error: its [`ErrorKind`] picks status and type (STYLE §4).
///
/// Client errors carry the error's `Display` as `detail`; server-side errors (5xx) are logged
/// with their whole chain and answered without detail.
#[must_use]
pub fn problem_for(err: &(dyn HasKind + 'static)) -> ApiError {
    let kind = err.kind();
    if !kind.is_client_error() {
        tracing::error!(error = %ErrorChain(err), "request failed");
        return ApiError::new(kind, None);
    }
    ApiError::new(kind, Some(err.to_string()))
}

/// The response for an error poem or poem-openapi raised before or around a handler.
///
/// A response a handler produced on purpose (an [`ApiError`]) passes through unchanged. Parse
/// failures become 4xx problems naming what was wrong with the caller's input; anything that
/// poem reports as 5xx is logged and answered without detail.
#[must_use]
pub fn problem_for_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    if let Some(too_large) = body_too_large(&err) {
        return Problem::new(ProblemType::PayloadTooLarge, Some(too_large.to_string()))
            .into_response();
    }
    let status = err.status();
    let kind = match status {
        StatusCode::BAD_REQUEST | StatusCode::LENGTH_REQUIRED => ProblemType::InvalidRequest,
        StatusCode::UNAUTHORIZED => ProblemType::Unauthenticated,
        StatusCode::FORBIDDEN => ProblemType::Forbidden,
        StatusCode::NOT_FOUND => ProblemType::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ProblemType::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ProblemType::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemType::UnsupportedMediaType,
        StatusCode::SERVICE_UNAVAILABLE => ProblemType::Unavailable,
        status if status.is_client_error() => ProblemType::InvalidRequest,
        _ => ProblemType::Internal,
    };
    if kind.status().is_server_error() {
        tracing::error!(error = %err, "request failed");
        return Problem::new(kind, None).into_response();
    }
    let mut response = Problem::new(kind, Some(err.to_string())).into_response();
    if kind == ProblemType::Unauthenticated {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE_INVALID_TOKEN),
        );
    }
    response
}

/// The limit a body without a declared length ran into while it was read, if that is why
/// `err` was raised.
fn body_too_large(err: &poem::Error) -> Option<&crate::observe::BodyTooLarge> {
    let poem::error::ReadBodyError::Io(io) = err.downcast_ref::<poem::error::ReadBodyError>()?
    else {
        return None;
    };
    // The body stream wraps the error in I/O errors on its way to the reader.
    let mut inner = io.get_ref()?;
    loop {
        if let Some(too_large) = inner.downcast_ref::<crate::observe::BodyTooLarge>() {
            return Some(too_large);
        }
        inner = inner.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("key {0} not found")]
    struct Missing(&'static str);

    impl HasKind for Missing {
        fn kind(&self) -> ErrorKind {
            ErrorKind::NotFound
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("database password is hunter2")]
    struct Broken;

    impl HasKind for Broken {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Internal
        }
    }

    #[test]
    fn client_errors_carry_their_detail() {
        let err = problem_for(&Missing("k1"));
        assert!(matches!(err, ApiError::NotFound(_)));
        assert_eq!(err.body().detail.as_deref(), Some("key k1 not found"));
        assert_eq!(err.body().type_uri, "https://edk.dev/problems/not-found");
    }

    #[test]
    fn server_errors_hide_their_detail() {
        let err = problem_for(&Broken);
        assert_eq!(err.body().status, 500);
        assert_eq!(err.body().detail, None);
    }

    #[test]
    fn type_uris_are_unique_and_statuses_match_kinds() {
        let uris: std::collections::BTreeSet<_> =
            ProblemType::ALL.iter().map(|kind| kind.uri()).collect();
        assert_eq!(uris.len(), ProblemType::ALL.len());
        for kind in ProblemType::ALL {
            let problem = Problem::new(kind, None);
            assert_eq!(problem.status, kind.status().as_u16());
        }
        assert_eq!(
            ProblemType::from_kind(ErrorKind::Unsupported)
                .status()
                .as_u16(),
            422
        );
    }
}
