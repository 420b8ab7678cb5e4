//! `edk-as`: the tenant authorization server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use edk_as_server::{AsServerConfig, build_app};
use edk_core::SystemClock;
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig};
use edk_oauth::federation::{OidcFederation, UPSTREAM_OIDC};
use edk_oauth::{AuthorizationServer, SqlStore};
use edk_server::{ConfigLoader, Metrics, bind, init_tracing, shutdown_signal};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{ConfigSchema, DatabaseConfig, Tenancy};
use tokio_util::sync::CancellationToken;

/// The EDK tenant authorization server.
#[derive(Debug, Parser)]
#[command(name = "edk-as", version, about)]
struct Cli {
    /// Address to listen on [default: `http.listen`, 127.0.0.1:8080].
    #[arg(long, env = "EDK_LISTEN")]
    listen: Option<SocketAddr>,
    /// YAML configuration files, applied in order.
    #[arg(long = "config", env = "EDK_CONFIG", value_delimiter = ',')]
    config: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "edk-as stopped");
            eprintln!("edk-as: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut loader = ConfigLoader::new();
    for file in &cli.config {
        loader = loader.file(file);
    }
    let mut config: AsServerConfig = loader.env(std::env::vars()).load()?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    init_tracing(&config.log).map_err(|err| anyhow::anyhow!(err))?;
    tracing::info!(config = ?config, "effective configuration");

    let clock = Arc::new(SystemClock);
    let database = match &config.database.postgres_url {
        Some(url) => DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            url.clone(),
        )),
        None => DatabaseConfig::Sqlite(SqliteConfig::new(&config.database.sqlite_dir)),
    };
    let tenancy = Tenancy::builder(database)
        .migrations(edk_kms::migrations()?)
        .migrations(edk_oauth::migrations()?)
        .migrations(edk_oauth::federation::migrations()?)
        .config_schema(ConfigSchema::builder().key(&UPSTREAM_OIDC).build()?)
        .build()
        .await
        .context("cannot open the database")?;
    tenancy.upgrade_all().await?;
    let cancel = CancellationToken::new();
    let background = tenancy.start(&cancel);

    let kek = match (&config.kms.kek, &config.kms.kek_file) {
        (Some(key), None) => KekConfig::key(KekId::new("kek")?, key.clone())?,
        (None, Some(path)) => KekConfig::file(KekId::new("kek")?, path.clone()),
        _ => anyhow::bail!("configure exactly one of `kms.kek` and `kms.kek_file`"),
    };
    let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new("software")?,
        kek,
    ))?;
    let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
        .clock(clock.clone())
        .build()?;
    let kms_task = kms.start(&cancel);
    // End users authenticate at each tenant's upstream OpenID Provider (tenant configuration
    // `UPSTREAM_OIDC`); a tenant without one answers authorization requests with an error.
    edk_server::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let server = Arc::new(AuthorizationServer::new(
        Arc::new(SqlStore::new(tenancy.clone())),
        Arc::new(kms),
        Arc::new(OidcFederation::new(
            tenancy.clone(),
            http.clone(),
            clock.clone(),
        )),
        clock.clone(),
        config.oauth.clone(),
    ));
    let metrics = Metrics::new()?;
    let app = build_app(
        &config.http,
        &config.auth,
        &metrics,
        &tenancy,
        &server,
        clock,
        Some(&http),
    )?;
    let listener = bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let result = listener
        .run(app, shutdown_signal(), config.http.shutdown_grace())
        .await;
    cancel.cancel();
    kms_task.shutdown().await;
    background.shutdown().await;
    result.map_err(Into::into)
}
