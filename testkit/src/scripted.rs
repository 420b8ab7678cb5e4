//! An HTTP server that gives every request the same scripted answer and counts the requests:
//! a throttling or failing key service for testing retries and circuit breakers; or, routed,
//! a service's recorded answers replayed by method and path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use tokio::task::JoinHandle;

use crate::tls::TestCa;

/// The answer a [`ScriptedServer`] gives.
#[derive(Clone, Debug)]
pub struct ScriptedAnswer {
    /// The status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl ScriptedAnswer {
    /// AWS's answer to a throttled JSON-protocol call: 400 with `__type: ThrottlingException`.
    #[must_use]
    pub fn aws_throttling() -> Self {
        Self {
            status: 400,
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/x-amz-json-1.1".to_owned(),
                ),
                ("x-amzn-requestid".to_owned(), "test-request".to_owned()),
            ],
            body: r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
        }
    }

    /// An HTTP 429 with `Retry-After: 0` and a Vault-shaped error body.
    #[must_use]
    pub fn too_many_requests() -> Self {
        Self {
            status: 429,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("retry-after".to_owned(), "0".to_owned()),
            ],
            body: r#"{"errors":["request rate limit exceeded"]}"#.to_owned(),
        }
    }
}

/// A running scripted server on `127.0.0.1`, stopped on drop.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    ca: Option<TestCa>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts a server answering every request with `answer`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(answer: ScriptedAnswer) -> Self {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let app = Router::new().fallback(move || {
            let answer = answer.clone();
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(answer.status).expect("a status code"));
                for (name, value) in &answer.headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(answer.body)).expect("a response")
            }
        });
        Self::serve(app, requests, None).await
    }

    /// Starts a server answering each request with the answer of the first route whose method
    /// and path (without the query) match, and 404 with an empty body otherwise: recorded
    /// answers of a service, replayed.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn routed(routes: Vec<(Method, String, ScriptedAnswer)>) -> Self {
        Self::routed_with(routes, None).await
    }

    /// As [`routed`](Self::routed), over HTTPS with a certificate of a test CA of its own
    /// ([`ca_pem`](Self::ca_pem), [`client`](Self::client)).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn routed_https(routes: Vec<(Method, String, ScriptedAnswer)>) -> Self {
        Self::routed_with(routes, Some(TestCa::new())).await
    }

    async fn routed_with(
        routes: Vec<(Method, String, ScriptedAnswer)>,
        ca: Option<TestCa>,
    ) -> Self {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let routes = Arc::new(routes);
        let app = Router::new().fallback(move |request: Request<Body>| {
            let routes = Arc::clone(&routes);
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let found = routes.iter().find(|(method, path, _)| {
                    method == request.method() && path == request.uri().path()
                });
                let Some((_, _, answer)) = found else {
                    return Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::empty())
                        .expect("a response");
                };
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(answer.status).expect("a status code"));
                for (name, value) in &answer.headers {
                    response = response.header(name, value);
                }
                response
                    .body(Body::from(answer.body.clone()))
                    .expect("a response")
            }
        });
        Self::serve(app, requests, ca).await
    }

    async fn serve(app: Router, requests: Arc<AtomicUsize>, ca: Option<TestCa>) -> Self {
        let (addr, task) = match &ca {
            Some(ca) => {
                let listener = ca.listen().await;
                let addr = listener.addr();
                let task = tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                (addr, task)
            }
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a loopback port");
                let addr = listener.local_addr().expect("the bound address");
                let task = tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                (addr, task)
            }
        };
        Self {
            addr,
            ca,
            requests,
            task,
        }
    }

    /// The base URL, `http://127.0.0.1:<port>` (`https://` when served over HTTPS).
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The certificate of the test CA of a server on HTTPS, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(TestCa::ca_pem)
    }

    /// A `reqwest` client that trusts the server's test CA (a plain client for HTTP).
    #[must_use]
    pub fn client(&self) -> reqwest::Client {
        self.ca
            .as_ref()
            .map_or_else(reqwest::Client::new, TestCa::client)
    }

    /// How many requests were answered.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
