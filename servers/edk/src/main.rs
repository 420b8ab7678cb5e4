//! `edk`: every EDK service in one process. Run with `cargo run` at the workspace root.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::SystemClock;
use edk_server::{ConfigLoader, bind, init_tracing, shutdown_signal};

/// EDK all in one: the KMS API, health, metrics and OpenAPI in one process, on SQLite.
#[derive(Debug, Parser)]
#[command(name = "edk", version, about)]
struct Cli {
    /// Address to listen on [default: `http.listen`, 127.0.0.1:8080].
    #[arg(long, env = "EDK_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory holding the server's state (KEK, bootstrap admin key, SQLite databases).
    #[arg(long, env = "EDK_DATA_DIR", default_value = "./.edk")]
    data_dir: PathBuf,
    /// YAML configuration files, applied in order (repeat the flag or separate with commas).
    #[arg(long = "config", env = "EDK_CONFIG", value_delimiter = ',')]
    config: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "edk stopped");
            eprintln!("edk: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    edk_server::install_crypto_provider();
    let mut loader = ConfigLoader::new();
    for file in &cli.config {
        loader = loader.file(file);
    }
    let mut config: EdkConfig = loader.env(std::env::vars()).load()?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    init_tracing(&config.log).map_err(|err| anyhow::anyhow!(err))?;
    tracing::info!(config = ?config, data_dir = %cli.data_dir.display(), "effective configuration");

    let data = DataDir::open(&cli.data_dir).context("cannot open the data directory")?;
    let http_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the HTTP client")?;
    let edk = Edk::start(&config, &data, Arc::new(SystemClock), &http_client).await?;

    let server = bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    edk.bind_default_tenant(server.local_addr().port())
        .await
        .context("cannot bind the default tenant's endpoints")?;
    if let Some(token) = edk.bootstrap_token() {
        print_bootstrap_token(token, server.local_addr());
    }
    let result = server
        .run(edk.app(), shutdown_signal(), config.http.shutdown_grace())
        .await;
    edk.shutdown().await;
    result?;
    Ok(())
}

#[expect(
    clippy::print_stdout,
    reason = "the bootstrap token is shown once, to the operator who started the server"
)]
fn print_bootstrap_token(token: &str, addr: SocketAddr) {
    println!("bootstrap admin token (shown only on this first start): {token}");
    println!("try: curl -H 'Authorization: Bearer <token>' http://{addr}/api/kms/v1/providers");
}
