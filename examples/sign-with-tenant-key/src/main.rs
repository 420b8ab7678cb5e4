//! `sign-with-tenant-key`: an axum service that signs JWTs with a tenant's key held by EDK's
//! KMS ([`LocalKms`] on SQLite, a software key provider), addressed by alias; publishes the
//! alias's JWKS; and rotates the key, tokens signed before still verifying for the overlap.
//!
//! Run with: `cargo run -p sign-with-tenant-key` (see this example's README.md).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, Jws, Validation, VerifyPolicy, jws};
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind as _, Limits, SystemClock, TenantSlug};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, KeyInfo, KeyState, Kms as _, LocalKms, NewKey};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// How long the tokens this service signs are valid.
const TOKEN_TTL_SECS: i64 = 600;

/// Signs JWTs with a tenant key of EDK's KMS.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port; the log says which).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory for the SQLite databases and the key encryption key, created if missing;
    /// a temporary directory, removed on exit, when absent.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The `iss` of the tokens.
    #[arg(long, default_value = "https://tokens.example")]
    issuer: String,
}

/// What the handlers share: the KMS, who calls it, and which alias signs.
#[derive(Clone, Debug)]
struct AppState {
    kms: LocalKms,
    caller: Caller,
    alias: KeyAlias,
    issuer: String,
    clock: Arc<dyn Clock>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let temporary;
    let dir = if let Some(dir) = args.data_dir {
        dir
    } else {
        temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
        temporary.path().to_owned()
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    // The tenancy layer: one SQLite file per tenant, with edk-kms's tables in each.
    let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.join("db"))))
        .migrations(edk_kms::migrations()?)
        .build()
        .await
        .context("cannot open the databases")?;
    // A software key provider: private keys sealed under a key encryption key (KEK) that
    // stays outside the database.
    let kek = KekConfig::file(KekId::new("kek-1")?, kek_file(&dir)?);
    let software: Arc<dyn KeyProvider> = Arc::new(SoftwareProvider::new(
        SoftwareProviderConfig::new(ProviderId::new("software")?, kek),
    )?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let kms = LocalKms::builder(tenancy.clone(), vec![software])
        .clock(Arc::clone(&clock))
        .build()?;
    // Writes the audit chain in the background; shut down last.
    let kms_task = kms.start(&CancellationToken::new());

    let tenant = demo_tenant(&tenancy).await?;
    let caller = Caller::new(tenancy.context(tenant).await?, "sign-with-tenant-key");
    let alias = KeyAlias::new("issuer", "credential-signing")?;
    let created = kms
        .create_key(
            &caller,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await;
    match created {
        Ok(key) => tracing::info!(%alias, kid = %active_kid(&key), "created the key"),
        Err(edk_kms::Error::AliasExists { .. }) => tracing::info!(%alias, "the key exists"),
        Err(err) => return Err(err).context("cannot create the key"),
    }

    let app = router(AppState {
        kms: kms.clone(),
        caller,
        alias,
        issuer: args.issuer,
        clock,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    kms_task.shutdown().await;
    Ok(())
}

/// The routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/sign", post(sign))
        .route("/verify", post(verify))
        .route("/rotate", post(rotate))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state)
}

/// `POST /sign` with a JSON object of claims: a JWT signed by the alias's active key, with
/// `iss`, `iat` and `exp` set by the service.
async fn sign(
    State(app): State<AppState>,
    Json(mut claims): Json<Map<String, Value>>,
) -> Result<Json<Value>, AppError> {
    let signer = app.kms.signer(&app.caller, &app.alias).await?;
    let kid = signer
        .kid()
        .map(|kid| kid.as_str().to_owned())
        .unwrap_or_default();
    let now = app.clock.unix_seconds();
    claims.insert("iss".to_owned(), json!(app.issuer));
    claims.insert("iat".to_owned(), json!(now));
    claims.insert("exp".to_owned(), json!(now + TOKEN_TTL_SECS));
    let header = Header::new(signer.algorithm())
        .with_typ("JWT")
        .with_kid(&kid);
    let payload = serde_json::to_vec(&claims).map_err(AppError::internal)?;
    let token = jws::sign(header, &payload, &*signer)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({ "token": token, "kid": kid })))
}

/// The body of `POST /verify`.
#[derive(Debug, Deserialize)]
struct VerifyRequest {
    token: String,
}

/// `POST /verify` with `{"token": "..."}`: the claims when the token verifies with a key in
/// the alias's JWKS (the active version, or a retired one within its overlap) and is neither
/// expired nor from another issuer; 401 `invalid_token` otherwise.
async fn verify(
    State(app): State<AppState>,
    Json(request): Json<VerifyRequest>,
) -> Result<Json<Value>, AppError> {
    let jwks = app.kms.jwks(&app.caller, &app.alias).await?;
    let keys = JwksResolver::new(&jwks);
    let policy = VerifyPolicy::default()
        .with_algorithms(&[Algorithm::Es256])
        .with_typ("JWT");
    let verified = match Jws::parse(&request.token, &Limits::default()) {
        Ok(jws) => jws.verify_with(&keys, &policy, Some(&app.issuer)).await,
        Err(err) => Err(err),
    };
    let claims = verified
        .and_then(|verified| verified.claims())
        .map_err(|_| AppError::invalid_token())?;
    Validation::default()
        .with_issuer(app.issuer.clone())
        .validate(&claims, app.clock.unix_seconds())
        .map_err(|_| AppError::invalid_token())?;
    Ok(Json(Value::Object(claims)))
}

/// `POST /rotate`: a new version of the key signs from now on; the previous one stays in the
/// JWKS and verifies for the alias's overlap (one day by default).
async fn rotate(State(app): State<AppState>) -> Result<Json<Value>, AppError> {
    let key = app.kms.rotate(&app.caller, &app.alias).await?;
    tracing::info!(alias = %app.alias, kid = %active_kid(&key), "rotated the key");
    let versions: Vec<Value> = key
        .versions
        .iter()
        .map(|version| {
            json!({
                "version": version.version,
                "kid": version.kid.as_str(),
                "state": version.state.as_str(),
                "verify_until": version.verify_until.map(|at| at.timestamp()),
            })
        })
        .collect();
    Ok(Json(
        json!({ "kid": active_kid(&key), "versions": versions }),
    ))
}

/// `GET /.well-known/jwks.json`: the public keys that verify the alias's tokens.
async fn jwks(State(app): State<AppState>) -> Result<Json<JwkSet>, AppError> {
    Ok(Json(app.kms.jwks(&app.caller, &app.alias).await?))
}

/// The kid of the key's active version.
fn active_kid(key: &KeyInfo) -> &str {
    key.versions
        .iter()
        .find(|version| version.state == KeyState::Active)
        .map_or("", |version| version.kid.as_str())
}

/// The tenant this service signs for, provisioned on the first start.
async fn demo_tenant(tenancy: &Tenancy) -> anyhow::Result<edk_core::TenantId> {
    let slug = TenantSlug::new("demo")?;
    match tenancy.tenant_by_slug(&slug).await {
        Ok(tenant) => Ok(tenant.id),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            Ok(tenancy.provision(slug, "Demo tenant").await?.id)
        }
        Err(err) => Err(err.into()),
    }
}

/// The file holding the KEK, generated on the first start (owner-only). In production the
/// KEK comes from a secret store mounted as a file, and never from the service itself.
fn kek_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("kek");
    if path.exists() {
        return Ok(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(generate_kek()?.expose_secret().as_bytes())?;
    Ok(path)
}

/// Resolves on ctrl-c.
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// An error answer: the status and a JSON `error`; details of our own faults are only logged.
#[derive(Debug)]
struct AppError {
    status: StatusCode,
    error: &'static str,
}

impl AppError {
    const fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
        }
    }

    fn internal(err: impl std::error::Error + 'static) -> Self {
        tracing::error!(error = %ErrorChain(&err), "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal_error",
        }
    }
}

impl From<edk_kms::Error> for AppError {
    fn from(err: edk_kms::Error) -> Self {
        match err.kind() {
            ErrorKind::Unavailable => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "unavailable",
            },
            _ => Self::internal(err),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.error }))).into_response()
    }
}
