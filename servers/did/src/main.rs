//! `edk-did`: per-tenant did:web and did:webvh publishing, a Universal Resolver and a
//! registrar.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use edk_core::SystemClock;
use edk_did_server::{DidServer, DidServerConfig, build_app};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig};
use edk_server::{ConfigLoader, Metrics, bind, init_tracing, shutdown_signal};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{ConfigSchema, DatabaseConfig, Tenancy};
use tokio_util::sync::CancellationToken;

/// The EDK DID server.
#[derive(Debug, Parser)]
#[command(name = "edk-did", version, about)]
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
            tracing::error!(error = format!("{err:#}"), "edk-did stopped");
            eprintln!("edk-did: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut loader = ConfigLoader::new();
    for file in &cli.config {
        loader = loader.file(file);
    }
    let mut config: DidServerConfig = loader.env(std::env::vars()).load()?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    init_tracing(&config.log).map_err(|err| anyhow::anyhow!(err))?;
    tracing::info!(config = ?config, "effective configuration");
    edk_server::install_crypto_provider();

    let clock = Arc::new(SystemClock);
    let database = match &config.database.postgres_url {
        Some(url) => DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            url.clone(),
        )),
        None => DatabaseConfig::Sqlite(SqliteConfig::new(&config.database.sqlite_dir)),
    };
    let tenancy = Tenancy::builder(database)
        .migrations(edk_kms::migrations()?)
        .migrations(edk_did::store::migrations()?)
        .config_schema(ConfigSchema::builder().key(&edk_did::DID_METHODS).build()?)
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
    let resolver = Arc::new(DidServer::resolver(
        &tenancy,
        &config.resolver,
        clock.clone(),
    )?);
    let server = DidServer::new(tenancy.clone(), Arc::new(kms), resolver, clock.clone());
    let refresher = server.start(&cancel);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let metrics = Metrics::new()?;
    let app = build_app(
        &config.http,
        &config.auth,
        &metrics,
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
    if let Err(err) = refresher.await {
        tracing::warn!(error = %err, "the DID cache refresher ended abnormally");
    }
    kms_task.shutdown().await;
    background.shutdown().await;
    result.map_err(Into::into)
}
