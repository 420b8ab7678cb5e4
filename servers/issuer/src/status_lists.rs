//! The public status list surface of a tenant's issuer: `<issuer>/status-lists/<id>` serves
//! the list's Status List Token as `application/statuslist+jwt` or `application/statuslist+cwt`
//! by the `Accept` header (historical resolution with `?time=<unix seconds>`), and
//! `<issuer>/status-lists` the list of them (Status List Aggregation).

use edk_core::Clock;
use edk_core::status_list::{CWT_MEDIA_TYPE, MEDIA_TYPE};
use edk_oid4vci::issuer::Error as IssuerError;
use edk_oid4vci::{Issuer, PublishedToken};
use edk_server::{Problem, ProblemType};
use poem::http::{StatusCode, header};
use poem::{Body, Request, Response};
use serde_json::json;

use crate::protocol::{Bound, internal, json_response, not_found, set_header};

/// How long a historical token may be cached: it never changes.
const HISTORY_MAX_AGE: &str = "public, max-age=31536000, immutable";

/// The list id of a `/status-lists/<id>` path.
pub(crate) fn list_id(rest: &str) -> Option<&str> {
    rest.strip_prefix("/status-lists/").filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// `{"status_lists": [...]}`: the URIs of the tenant's lists at this issuer.
pub(crate) async fn aggregation(issuer: &Issuer, bound: &Bound) -> Response {
    match issuer
        .status_list_uris(&bound.issuer, &bound.endpoints)
        .await
    {
        Ok(uris) => {
            let mut response = json_response(StatusCode::OK, &json!({ "status_lists": uris }));
            set_header(&mut response, "cache-control", "public, max-age=60");
            response
        }
        Err(err) => internal(&err),
    }
}

fn problem(kind: ProblemType, detail: &str) -> Response {
    let mut response = Problem::new(kind, Some(detail.to_owned())).into_response();
    set_header(&mut response, "cache-control", "no-store");
    response
}

/// The token of list `id`, in the form the `Accept` header prefers (JWT unless CWT is
/// preferred), with `ETag`, `Cache-Control` from the token's `ttl` and `exp`, and 304 for a
/// matching `If-None-Match`.
pub(crate) async fn status_list(
    issuer: &Issuer,
    clock: &dyn Clock,
    bound: &Bound,
    id: &str,
    req: &Request,
) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let Some(media) = edk_server::negotiate::negotiate(accept, &[MEDIA_TYPE, CWT_MEDIA_TYPE])
    else {
        return problem(
            ProblemType::NotAcceptable,
            "status lists are served as application/statuslist+jwt or application/statuslist+cwt",
        );
    };
    let at = match req.uri().query().map(time_parameter) {
        None => None,
        Some(Ok(at)) => at,
        Some(Err(detail)) => return problem(ProblemType::InvalidRequest, detail),
    };
    let token = match issuer.status_list_token(&bound.issuer, id, at).await {
        Ok(Some(token)) => token,
        Ok(None) if at.is_some() => {
            return problem(
                ProblemType::NotFound,
                "no token of this status list was valid at that time",
            );
        }
        Ok(None) | Err(IssuerError::NotFound(_)) => return not_found(),
        Err(err) => return internal(&err),
    };
    let cwt = media == CWT_MEDIA_TYPE;
    let etag = format!(
        "\"{}-{}-{}\"",
        token.version,
        token.iat,
        if cwt { "c" } else { "j" }
    );
    let cache_control = if at.is_some() {
        HISTORY_MAX_AGE.to_owned()
    } else {
        format!("public, max-age={}", max_age(&token, clock.unix_seconds()))
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .finish()
    } else {
        let body = if cwt {
            Body::from_vec(token.cwt)
        } else {
            Body::from_string(token.jwt)
        };
        Response::builder()
            .status(StatusCode::OK)
            .content_type(media)
            .body(body)
    };
    set_header(&mut response, "etag", &etag);
    set_header(&mut response, "cache-control", &cache_control);
    set_header(&mut response, "vary", "Accept");
    response
}

/// How long a cache may keep `token` fetched at `now`: its `ttl`, but not past its `exp`.
fn max_age(token: &PublishedToken, now: i64) -> i64 {
    let ttl = i64::try_from(token.ttl).unwrap_or(i64::MAX);
    ttl.min(token.exp.saturating_sub(now)).max(0)
}

/// The `time` query parameter: `None` without one.
fn time_parameter(query: &str) -> Result<Option<i64>, &'static str> {
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "time" {
            continue;
        }
        if found.is_some() {
            return Err("time must be given once");
        }
        let at = value
            .parse::<i64>()
            .ok()
            .filter(|at| *at >= 0)
            .ok_or("time must be a number of seconds since the epoch")?;
        found = Some(at);
    }
    Ok(found)
}
