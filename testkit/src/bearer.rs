//! What the key service test servers that issue OAuth 2 bearer tokens share: registered
//! clients and their secrets, the tokens issued by a client credentials grant (RFC 6749
//! §4.4), the `Authorization: Bearer` check (RFC 6750 §2.1) with its `WWW-Authenticate`
//! challenge, and the request counter with its "answer the next N requests with 429" switch.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::HeaderMap;
use axum::response::Response;

/// Registered clients and the tokens issued to them.
#[derive(Default)]
pub(crate) struct Clients {
    secrets: HashMap<String, String>,
    tokens: HashSet<String>,
}

impl Clients {
    /// Registers `client_id` with `secret`.
    pub(crate) fn add(&mut self, client_id: &str, secret: &str) {
        self.secrets.insert(client_id.to_owned(), secret.to_owned());
    }

    /// Whether `client_id` is registered with `secret`.
    pub(crate) fn authenticates(&self, client_id: &str, secret: &str) -> bool {
        self.secrets
            .get(client_id)
            .is_some_and(|known| known == secret)
    }

    /// Issues a new token, `prefix` followed by a random part.
    pub(crate) fn issue(&mut self, prefix: &str) -> String {
        let token = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
        self.tokens.insert(token.clone());
        token
    }

    /// Revokes every token issued so far.
    pub(crate) fn revoke_all(&mut self) {
        self.tokens.clear();
    }

    /// Whether the request carries `Authorization: Bearer` with a token issued here.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| self.tokens.contains(token))
    }
}

/// The fields of an `application/x-www-form-urlencoded` body.
pub(crate) fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// Adds a `WWW-Authenticate` challenge to a 401 answer.
pub(crate) fn challenge(mut response: Response, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert("www-authenticate", value.parse().expect("a header value"));
    response
}

/// Adds `Retry-After: 0` to a 429 answer.
pub(crate) fn retry_now(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("retry-after", "0".parse().expect("a header value"));
    response
}

/// Counts requests and throttles the next ones on demand.
#[derive(Default)]
pub(crate) struct Traffic {
    requests: AtomicUsize,
    throttle: AtomicUsize,
}

impl Traffic {
    /// Makes the next `requests` requests answer 429.
    pub(crate) fn throttle(&self, requests: usize) {
        self.throttle.store(requests, Ordering::SeqCst);
    }

    /// How many requests arrived.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Counts a request that is never throttled.
    pub(crate) fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a request; `true` when it is to be throttled.
    pub(crate) fn arrive(&self) -> bool {
        self.count();
        self.throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}
