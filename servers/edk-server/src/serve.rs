//! Assembling and running a server: OpenAPI mounting, the middleware stack, graceful
//! shutdown, logging set-up and a loopback test server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::endpoint::BoxEndpoint;
use poem::http::header::ALLOW;
use poem::http::{HeaderValue, StatusCode};
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, EndpointExt, Response, Route, Server};
use poem_openapi::{OpenApi, OpenApiService};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::AdminAuth;
use crate::config::{HttpConfig, LogConfig};
use crate::metrics::Metrics;
use crate::observe::Observe;

/// The paths every EDK server serves without a token: health probes, metrics, the OpenAPI
/// document and its UI.
pub const ANONYMOUS_PATHS: [&str; 4] = ["/health", "/metrics", "/openapi.json", "/docs"];

/// Whether `path` is `prefix` or lies below it (`prefix/…`): a prefix matches whole path
/// segments only, so `/docs` covers `/docs/x` but not `/docsx`.
#[must_use]
pub fn path_is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Splits one listener between a server's two surfaces: paths under `/api`, under any extra
/// admin prefix, and the anonymous probe and documentation paths ([`ANONYMOUS_PATHS`]) go to
/// the admin surface (the OpenAPI service, whose authentication lets the anonymous ones
/// through); every other path goes to the protocol surface, which routes by the tenants'
/// endpoint bindings.
pub struct SurfaceDispatch {
    admin: BoxEndpoint<'static, Response>,
    protocol: BoxEndpoint<'static, Response>,
    admin_prefixes: &'static [&'static str],
}

impl SurfaceDispatch {
    /// Sends the admin paths to `admin` and the rest to `protocol`.
    #[must_use]
    pub fn new(
        admin: BoxEndpoint<'static, Response>,
        protocol: BoxEndpoint<'static, Response>,
    ) -> Self {
        Self {
            admin,
            protocol,
            admin_prefixes: &[],
        }
    }

    /// Also sends the paths under each of `prefixes` (whole segments, as [`path_is_under`]) to
    /// the admin surface.
    #[must_use]
    pub const fn with_admin_prefixes(mut self, prefixes: &'static [&'static str]) -> Self {
        self.admin_prefixes = prefixes;
        self
    }

    /// Whether `path` belongs to the admin surface.
    #[must_use]
    pub fn is_admin(&self, path: &str) -> bool {
        path_is_under(path, "/api")
            || self
                .admin_prefixes
                .iter()
                .chain(ANONYMOUS_PATHS.iter())
                .any(|prefix| path_is_under(path, prefix))
    }
}

impl std::fmt::Debug for SurfaceDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurfaceDispatch")
            .field("admin_prefixes", &self.admin_prefixes)
            .finish_non_exhaustive()
    }
}

impl Endpoint for SurfaceDispatch {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        if self.is_admin(req.original_uri().path()) {
            self.admin.call(req).await
        } else {
            self.protocol.call(req).await
        }
    }
}

/// Mounts `service` at the root, its OpenAPI document at `/openapi.json` and a browsable UI
/// at `/docs`.
#[must_use]
pub fn openapi_routes<T: OpenApi + 'static>(service: OpenApiService<T, ()>) -> Route {
    let spec = service.spec();
    let allowed = AllowedMethods::from_spec(&spec);
    let bodies = Arc::new(crate::nulls::BodySchemas::from_spec(&spec));
    Route::new()
        .at("/openapi.json", service.spec_endpoint())
        .nest("/docs", service.swagger_ui())
        .nest(
            "/",
            service.around(move |ep, mut req| {
                let allowed = Arc::clone(&allowed);
                let bodies = Arc::clone(&bodies);
                async move {
                    let path = req.uri().path().to_owned();
                    if let Some(refusal) = bodies.refuse_null_members(&mut req).await? {
                        return Ok(refusal);
                    }
                    match ep.call(req).await {
                        Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED => {
                            let mut response = crate::problem::problem_for_poem_error(err);
                            if let Some(methods) = allowed.for_path(&path)
                                && let Ok(value) = HeaderValue::from_str(methods)
                            {
                                response.headers_mut().insert(ALLOW, value);
                            }
                            Ok(response)
                        }
                        other => other,
                    }
                }
            }),
        )
}

/// The methods of each path template of an OpenAPI document, for the `Allow` header of a
/// 405 (RFC 9110 §15.5.6).
#[derive(Debug, Default)]
struct AllowedMethods {
    paths: Vec<(Vec<String>, String)>,
}

impl AllowedMethods {
    fn from_spec(spec: &str) -> Arc<Self> {
        let mut table = Self::default();
        let document: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        if let Some(paths) = document.get("paths").and_then(serde_json::Value::as_object) {
            for (template, operations) in paths {
                let Some(operations) = operations.as_object() else {
                    continue;
                };
                let methods: Vec<String> = operations
                    .keys()
                    .filter(|m| {
                        [
                            "get", "put", "post", "delete", "options", "head", "patch", "trace",
                        ]
                        .contains(&m.as_str())
                    })
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                if !methods.is_empty() {
                    let segments = template.split('/').map(str::to_owned).collect();
                    table.paths.push((segments, methods.join(", ")));
                }
            }
        }
        Arc::new(table)
    }

    fn for_path(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.paths
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(want, got)| {
                        (want.starts_with('{') && want.ends_with('}') && !got.is_empty())
                            || want == got
                    })
            })
            // A literal segment wins over a parameter (`/keys/capabilities` over `/keys/{alias}`).
            .max_by_key(|(template, _)| template.iter().filter(|s| !s.starts_with('{')).count())
            .map(|(_, methods)| methods.as_str())
    }
}

/// The whole application: `routes` plus `/metrics`, behind `auth` (when given) and the
/// [`Observe`] middleware configured from `config`.
#[must_use]
pub fn app(
    config: &HttpConfig,
    metrics: &Metrics,
    auth: Option<AdminAuth>,
    routes: Route,
) -> BoxEndpoint<'static, Response> {
    let routes = routes.at("/metrics", metrics.endpoint());
    let inner = match auth {
        Some(auth) => routes.with(auth).boxed(),
        None => routes.boxed(),
    };
    inner
        .with(Observe::new(
            metrics.clone(),
            config.body_limit_bytes.get(),
            config.request_timeout(),
        ))
        .boxed()
}

/// Serves `app` on `config.listen` until SIGTERM or ctrl-c, then lets in-flight requests
/// finish for up to `config.shutdown_grace_ms`.
///
/// # Errors
/// The I/O error when the address cannot be bound or the server fails.
pub async fn serve<E: Endpoint + 'static>(config: &HttpConfig, app: E) -> io::Result<()> {
    bind(config.listen)
        .await?
        .run(app, shutdown_signal(), config.shutdown_grace())
        .await
}

/// Binds `addr` (port 0 picks a free one).
///
/// # Errors
/// The I/O error when the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> io::Result<BoundServer> {
    let acceptor = TcpListener::bind(addr).into_acceptor().await?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|local| local.as_socket_addr().copied())
        .ok_or_else(|| io::Error::other("the listener has no socket address"))?;
    Ok(BoundServer { acceptor, addr })
}

/// A bound listener, ready to serve.
pub struct BoundServer {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// The address actually bound.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `app` until `shutdown` completes, then waits up to `grace` for in-flight
    /// requests.
    ///
    /// # Errors
    /// The I/O error when the server fails.
    pub async fn run<E: Endpoint + 'static>(
        self,
        app: E,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> io::Result<()> {
        tracing::info!(listen = %self.addr, "serving");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(grace))
            .await
    }
}

/// Completes on ctrl-c or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Serves `app` on `127.0.0.1:0` in a task owned by the returned [`TestServer`].
///
/// # Errors
/// The I/O error when no loopback port can be bound.
pub async fn spawn_server<E: Endpoint + 'static>(app: E) -> io::Result<TestServer> {
    let bound = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = bound.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.run(
        app,
        shutdown.clone().cancelled_owned(),
        Duration::from_secs(10),
    ));
    Ok(TestServer {
        addr,
        shutdown,
        task,
    })
}

/// A server started by [`spawn_server`]; stop it with [`TestServer::shutdown`].
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl TestServer {
    /// The bound address.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting connections, waits for in-flight requests and returns the server's
    /// result.
    ///
    /// # Errors
    /// The server's I/O error, or an error if its task panicked.
    pub async fn shutdown(self) -> io::Result<()> {
        self.shutdown.cancel();
        self.task.await.map_err(io::Error::other)?
    }
}

/// Installs the process-wide `tracing` subscriber: JSON lines (or text) on stderr, filtered by
/// `config.filter`, exporting no spans. Call once, from a binary's `main`;
/// [`telemetry::init`](crate::telemetry::init) also exports spans.
///
/// # Errors
/// When the filter does not parse or a subscriber is already installed.
pub fn init_tracing(config: &LogConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    crate::telemetry::init(config, &crate::ObservabilityConfig::default(), "edk")?;
    Ok(())
}
