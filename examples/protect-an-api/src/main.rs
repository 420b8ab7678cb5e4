//! `protect-an-api`: an axum resource server whose routes require RFC 9068 JWT access tokens
//! issued by an EDK authorization server, sent as `Bearer` tokens (RFC 6750) or as DPoP-bound
//! tokens with a proof of possession (RFC 9449). Tokens are checked by edk-oauth's
//! [`AccessTokenValidator`] with the authorization server's keys fetched over HTTP
//! ([`RemoteJwks`]).
//!
//! Run with: `cargo run -p protect-an-api` next to a running `edk` (see this example's
//! README.md).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use edk_core::{Clock, ErrorChain, SystemClock};
use edk_oauth::{
    AccessTokenValidator, OAuthErrorCode, RemoteJwks, ResourceRequest, ValidatedToken,
};
use serde_json::{Value, json};

/// A resource server for the tokens of an EDK authorization server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port; the log says which).
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: SocketAddr,
    /// The URL clients address this API at, as DPoP proofs name it (`htu`); `http://` and the
    /// address listened on when absent.
    #[arg(long)]
    public_url: Option<String>,
    /// The authorization server's issuer: tokens must carry it in `iss`.
    #[arg(long, default_value = "http://localhost:8080")]
    issuer: String,
    /// Where the authorization server publishes its signing keys.
    #[arg(long, default_value = "http://localhost:8080/jwks.json")]
    jwks_uri: String,
    /// This API's resource identifier (RFC 8707): tokens must carry it in `aud`.
    #[arg(long, default_value = "https://orders.example")]
    audience: String,
}

/// What the handlers share.
#[derive(Clone, Debug)]
struct AppState {
    validator: Arc<AccessTokenValidator>,
    public_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    // reqwest's rustls (for an https `jwks_uri`) uses the process's crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    // The authorization server's keys, fetched with a client that has time limits, cached
    // for five minutes and refetched when a token names an unknown key (after a rotation).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = RemoteJwks::new(
        args.jwks_uri,
        http,
        Arc::clone(&clock),
        Duration::from_secs(300),
    );
    // Accepted DPoP proofs are remembered in this process; replicas of one API share them
    // with `with_replay_cache(StoreReplayCache)`.
    let validator = AccessTokenValidator::new(args.issuer, args.audience, Arc::new(keys), clock);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{address}"));
    let app = router(AppState {
        validator: Arc::new(validator),
        public_url: public_url.trim_end_matches('/').to_owned(),
    });
    tracing::info!("listening on http://{address}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// The routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .with_state(state)
}

/// `GET /orders`: needs scope `orders:read`.
async fn list_orders(token: AccessToken) -> Result<Json<Value>, TokenError> {
    let token = token.require_scope("orders:read")?;
    Ok(Json(json!({
        "orders": [{ "id": "o-1", "item": "tea" }],
        "client_id": token.client_id,
        "dpop_jkt": token.jkt,
    })))
}

/// `POST /orders`: needs scope `orders:write`.
async fn create_order(token: AccessToken) -> Result<(StatusCode, Json<Value>), TokenError> {
    token.require_scope("orders:write")?;
    Ok((StatusCode::CREATED, Json(json!({ "id": "o-2" }))))
}

/// A valid access token of the request: the extractor that protects a handler.
#[derive(Debug)]
struct AccessToken(ValidatedToken);

impl AccessToken {
    /// The token, when it grants `scope`; else `insufficient_scope` (403).
    fn require_scope(&self, scope: &str) -> Result<&ValidatedToken, TokenError> {
        let scheme = if self.0.jkt.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        };
        match self.0.require_scope(scope) {
            Ok(()) => Ok(&self.0),
            Err(error) => Err(TokenError { error, scheme }),
        }
    }
}

impl FromRequestParts<AppState> for AccessToken {
    type Rejection = TokenError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, TokenError> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let scheme = match authorization.as_deref() {
            None => Scheme::Missing,
            Some(value)
                if value
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("dpop ")) =>
            {
                Scheme::Dpop
            }
            Some(_) => Scheme::Bearer,
        };
        // DPoP proofs name the URL without query or fragment (RFC 9449 §4.2).
        let url = format!("{}{}", state.public_url, parts.uri.path());
        let mut request = ResourceRequest::new(parts.method.as_str(), &url, authorization);
        for proof in parts.headers.get_all("dpop") {
            request = request.with_dpop(String::from_utf8_lossy(proof.as_bytes()));
        }
        match state.validator.validate(&request).await {
            Ok(token) => Ok(Self(token)),
            Err(error) => Err(TokenError { error, scheme }),
        }
    }
}

/// How a request presented its access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// No `Authorization` header.
    Missing,
    /// `Bearer` (or another scheme).
    Bearer,
    /// `DPoP`.
    Dpop,
}

/// A refused request: the OAuth error with its status and `WWW-Authenticate` challenge
/// (RFC 6750 §3, RFC 9449 §7.1) in the scheme the request used.
#[derive(Debug)]
struct TokenError {
    error: edk_oauth::Error,
    scheme: Scheme,
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let code = self.error.code();
        let status = match code {
            OAuthErrorCode::InvalidToken | OAuthErrorCode::InvalidDpopProof => {
                StatusCode::UNAUTHORIZED
            }
            OAuthErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            tracing::error!(error = %ErrorChain(&self.error), "token validation failed");
        }
        let description = self.error.description().replace(['"', '\\'], "'");
        let error = format!(
            r#"error="{}", error_description="{description}""#,
            code.as_str()
        );
        let challenge = match self.scheme {
            // No credentials: the schemes, without an error code (RFC 6750 §3.1).
            Scheme::Missing => "Bearer, DPoP".to_owned(),
            Scheme::Bearer if code != OAuthErrorCode::InvalidDpopProof => format!("Bearer {error}"),
            Scheme::Bearer | Scheme::Dpop => format!("DPoP {error}"),
        };
        let mut response = (
            status,
            Json(json!({ "error": code.as_str(), "error_description": description })),
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Resolves on ctrl-c.
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
