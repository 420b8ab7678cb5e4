//! `multi-tenant`: one poem application serving several tenants on PostgreSQL, each on its
//! own host with its own keys, its own OAuth 2 authorization server and its own OpenID4VCI
//! credential issuer, built from EDK's crates in process: edk-tenancy routes each request to
//! its tenant by host (one schema per tenant), edk-kms keeps each tenant's keys apart,
//! edk-oauth and edk-oid4vci serve the protocols, and the issuer's admin API lets each
//! tenant's operators make offers with their own admin tokens.
//!
//! Run with: `cargo run -p multi-tenant -- --database-url postgres://… --admin-jwks
//! operators.jwks.json` (see this example's README.md).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use edk_core::jose::JwkSet;
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind as _, SystemClock, TenantId, TenantSlug};
use edk_issuer_server::{IssuerParts, IssuerSettings, TokenKeys};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, ProviderId};
use edk_kms::{Caller, KeyAlias, Kms as _, LocalKms};
use edk_oauth::federation::OidcFederation;
use edk_oauth::{AsConfig, AuthorizationServer, SqlStore};
use edk_oid4vci::StoredConfiguration;
use edk_server::{
    ANONYMOUS_PATHS, AdminAuth, AuthConfig, HealthApi, HttpConfig, Metrics, TrustedIssuer,
    openapi_routes, path_is_under,
};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, EndpointScheme, ServiceType, Tenancy,
    TenantDirectory as _, WellKnownLayout,
};
use poem::endpoint::BoxEndpoint;
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{Endpoint, EndpointExt as _, IntoResponse, Request, Response, Route};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Serves several tenants, each on its own host, from one process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The PostgreSQL database holding the tenant registry and one schema per tenant.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Address to listen on (port 0: any free port; the output says which).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// A tenant and the host it is served on, `SLUG=HOST` (repeatable).
    #[arg(
        long = "tenant",
        value_name = "SLUG=HOST",
        value_parser = parse_tenant,
        default_values = ["acme=acme.localhost", "globex=globex.localhost"],
    )]
    tenants: Vec<(TenantSlug, String)>,
    /// The port clients reach the TLS termination in front of this application on, which
    /// the tenants' URLs name (443: none); the port listened on when absent.
    #[arg(long)]
    public_port: Option<u16>,
    /// The key encryption key sealing the tenants' private keys; generated (owner-only) when
    /// the file does not exist.
    #[arg(long, default_value = ".multi-tenant/kek")]
    kek_file: PathBuf,
    /// The issuer of the operators' admin tokens (`iss`); each token's `tenant` claim says
    /// which tenant it acts for.
    #[arg(long, default_value = "https://operators.example")]
    admin_issuer: String,
    /// A JWKS file with the public keys that sign the operators' admin tokens.
    #[arg(long)]
    admin_jwks: PathBuf,
}

/// `SLUG=HOST`.
fn parse_tenant(value: &str) -> Result<(TenantSlug, String), String> {
    let (slug, host) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not SLUG=HOST"))?;
    let slug = TenantSlug::new(slug).map_err(|err| err.to_string())?;
    Ok((slug, host.to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    edk_server::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;

    // The tenancy on PostgreSQL with the tables of every crate used here, in each tenant's
    // schema.
    let tenancy = Tenancy::builder(DatabaseConfig::Postgres(PostgresConfig::new(
        SecretString::from(args.database_url.clone()),
    )))
    .migrations(edk_kms::migrations()?)
    .migrations(edk_oauth::migrations()?)
    .migrations(edk_oauth::federation::migrations()?)
    .migrations(edk_oid4vci::migrations()?)
    .config_schema(
        edk_tenancy::ConfigSchema::builder()
            .key(&edk_oauth::federation::UPSTREAM_OIDC)
            .key(&edk_oauth::client_attestation::CLIENT_ATTESTATION)
            .build()?,
    )
    .build()
    .await
    .context("cannot open the database")?;
    tenancy.upgrade_all().await?;
    let cancel = CancellationToken::new();
    let tenancy_task = tenancy.start(&cancel);

    // One KMS for every tenant: each tenant's keys live in its own schema and are reached
    // only with that tenant's context.
    let kek = KekConfig::file(KekId::new("kek-1")?, kek_file(&args.kek_file)?);
    let software: Arc<dyn KeyProvider> = Arc::new(SoftwareProvider::new(
        SoftwareProviderConfig::new(ProviderId::new("software")?, kek),
    )?);
    let kms = Arc::new(
        LocalKms::builder(tenancy.clone(), vec![software])
            .clock(Arc::clone(&clock))
            .build()?,
    );
    let kms_task = kms.start(&cancel);

    // One authorization server and one credential issuer over the tenancy: each request
    // reaches the tenant its host is bound to, with that tenant's keys and data.
    let server = Arc::new(AuthorizationServer::new(
        Arc::new(SqlStore::new(tenancy.clone())),
        kms.clone(),
        Arc::new(
            OidcFederation::new(tenancy.clone(), http.clone(), Arc::clone(&clock))
                .with_kms(kms.clone()),
        ),
        Arc::clone(&clock),
        AsConfig::default(),
    ));
    let settings = IssuerSettings::default();
    let parts = IssuerParts::new(
        tenancy.clone(),
        Arc::new(IssuerParts::issuer(
            &tenancy,
            kms.clone(),
            Arc::clone(&clock),
            settings.options(),
        )?),
        Arc::clone(&server),
        Arc::clone(&clock),
        &settings,
        TokenKeys::Kms,
    );

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_port = args.public_port.unwrap_or(address.port());
    let mut out = std::io::stdout().lock();
    for (slug, host) in &args.tenants {
        let tenant = set_up_tenant(&tenancy, &parts, slug, host, public_port).await?;
        writeln!(
            out,
            "tenant {slug} {tenant} at https://{host}:{public_port}"
        )?;
    }

    // Operators' admin tokens are checked against their JWKS; the admin API then acts for
    // the tenant the token names, whatever host it is called on.
    let mut auth = AuthConfig::default();
    let jwks: JwkSet = serde_json::from_slice(
        &std::fs::read(&args.admin_jwks)
            .with_context(|| format!("cannot read {}", args.admin_jwks.display()))?,
    )
    .context("the admin JWKS is not a JWK set")?;
    auth.issuers
        .push(TrustedIssuer::with_jwks(args.admin_issuer.clone(), jwks));
    let admin = openapi_routes(edk_issuer_server::openapi_service(&parts, HealthApi::new()))
        .with(AdminAuth::new(
            &auth,
            Arc::clone(&clock),
            &ANONYMOUS_PATHS,
            None,
        )?)
        .boxed();
    let app = edk_server::app(
        &HttpConfig::default(),
        &Metrics::new()?,
        None,
        Route::new().nest(
            "/",
            Dispatch {
                admin,
                issuer_keys: IssuerKeys {
                    tenancy: tenancy.clone(),
                    kms: kms.clone(),
                },
                issuer: parts.protocol_endpoint(),
                authorization_server: edk_as_server::ProtocolEndpoint::new(tenancy.clone(), server)
                    .boxed(),
            },
        ),
    );

    writeln!(out, "listening on http://{address}")?;
    out.flush()?;
    drop(out);
    poem::Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(app, shutdown_signal(), None)
        .await?;
    kms_task.shutdown().await;
    tenancy_task.shutdown().await;
    Ok(())
}

/// Provisions the tenant `slug` (once; a restart finds it), binds its authorization server
/// and credential issuer to `https://{host}:{port}` and stores its credential configuration.
async fn set_up_tenant(
    tenancy: &Tenancy,
    parts: &IssuerParts,
    slug: &TenantSlug,
    host: &str,
    port: u16,
) -> anyhow::Result<TenantId> {
    let tenant = match tenancy.tenant_by_slug(slug).await {
        Ok(tenant) => tenant,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            tenancy.provision(slug.clone(), slug.as_str()).await?
        }
        Err(err) => return Err(err.into()),
    };
    let current = tenancy.bindings(tenant.id).await?;
    for service in [ServiceType::As, ServiceType::Issuer] {
        // The identifiers are https URLs: the application runs behind TLS termination, which
        // passes the request's host on.
        let binding = EndpointBinding::with_scheme(
            tenant.id,
            service,
            EndpointScheme::Https,
            host,
            (port != 443).then_some(port),
            "/",
            WellKnownLayout::Inserted,
        )?;
        if !current.contains(&binding) {
            tenancy.unbind(tenant.id, service).await?;
            tenancy.bind(&binding).await?;
        }
    }
    // Each tenant issues its own membership card, signed by its own key.
    let configuration: StoredConfiguration = serde_json::from_value(json!({
        "configuration": {
            "format": "dc+sd-jwt",
            "vct": format!("https://{host}/membership"),
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
        },
        "settings": { "lifetime_secs": 365 * 86_400 },
    }))?;
    let context = tenancy.context(tenant.id).await?;
    parts
        .issuer
        .put_configuration(&context, "membership", &configuration)
        .await?;
    Ok(tenant.id)
}

/// Sends `/api/...` and the probes to the admin surface, the SD-JWT VC issuer metadata to
/// [`IssuerKeys`], requests that a tenant's issuer
/// binding routes to an issuer path to the credential issuers, and the rest to the
/// authorization servers.
struct Dispatch {
    admin: BoxEndpoint<'static, Response>,
    issuer_keys: IssuerKeys,
    issuer: edk_issuer_server::ProtocolEndpoint,
    authorization_server: BoxEndpoint<'static, Response>,
}

impl Endpoint for Dispatch {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.original_uri().path();
        let admin = path_is_under(path, "/api")
            || ANONYMOUS_PATHS
                .iter()
                .any(|prefix| path_is_under(path, prefix));
        if admin {
            self.admin.call(req).await.map(IntoResponse::into_response)
        } else if path == JWT_VC_ISSUER {
            Ok(self.issuer_keys.answer(&req).await)
        } else if self.issuer.serves(&req).await {
            self.issuer.call(req).await
        } else {
            self.authorization_server.call(req).await
        }
    }
}

/// Where wallets and verifiers find the keys of a credential issuer (SD-JWT VC §4, for an
/// issuer identifier without a path).
const JWT_VC_ISSUER: &str = "/.well-known/jwt-vc-issuer";

/// The SD-JWT VC issuer metadata of the tenant whose issuer binding the request's host
/// names: its identifier and the public keys of its credential signing key, read from the
/// KMS with that tenant's context.
struct IssuerKeys {
    tenancy: Tenancy,
    kms: Arc<LocalKms>,
}

impl IssuerKeys {
    async fn answer(&self, req: &Request) -> Response {
        match self.metadata(req).await {
            Ok(Some(metadata)) => Response::builder()
                .content_type("application/json")
                .header("cache-control", "public, max-age=300")
                .body(metadata.to_string()),
            Ok(None) => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .content_type("application/json")
                .body(json!({ "error": "not_found" }).to_string()),
            Err(err) => {
                tracing::error!(error = %ErrorChain(err.as_ref()), "cannot read the issuer keys");
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .finish()
            }
        }
    }

    /// The metadata; `None` when no tenant's issuer is bound to the request's host.
    async fn metadata(
        &self,
        req: &Request,
    ) -> Result<Option<serde_json::Value>, Box<dyn std::error::Error + Send + Sync>> {
        let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) else {
            return Ok(None);
        };
        let (host, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse::<u16>().ok()),
            None => (host, None),
        };
        // Behind TLS termination the public scheme is https.
        let request = EndpointRequest::new("https", host, port, JWT_VC_ISSUER);
        let Ok(resolved) = self.tenancy.resolve(ServiceType::Issuer, &request).await else {
            return Ok(None);
        };
        let Some(binding) = resolved.context.binding() else {
            return Ok(None);
        };
        let issuer = binding.identifier();
        let caller = Caller::new(resolved.context.clone(), "multi-tenant");
        let alias = KeyAlias::new("issuer", "credential-signing")?;
        let jwks = match self.kms.jwks(&caller, &alias).await {
            Ok(jwks) => jwks,
            // No credential issued yet: the key is made at the first issuance.
            Err(err) if err.kind() == ErrorKind::NotFound => JwkSet { keys: Vec::new() },
            Err(err) => return Err(err.into()),
        };
        Ok(Some(json!({ "issuer": issuer, "jwks": jwks })))
    }
}

/// The KEK in `path`, generated there (owner-only) when the file does not exist.
fn kek_file(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(generate_kek()?.expose_secret().as_bytes())?;
    }
    Ok(path.to_owned())
}

/// Resolves on ctrl-c.
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
