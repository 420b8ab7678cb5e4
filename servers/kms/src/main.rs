//! `edk-kms`: the EDK KMS server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use edk_core::SystemClock;
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_server::{ConfigLoader, bind, init_tracing, shutdown_signal};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The EDK KMS: the key management REST API, health, metrics and OpenAPI, and the gRPC
/// service when `grpc` is configured.
#[derive(Debug, Parser)]
#[command(name = "edk-kms", version, about)]
struct Cli {
    /// Address to listen on [default: `http.listen`, 127.0.0.1:8080].
    #[arg(long, env = "EDK_LISTEN")]
    listen: Option<SocketAddr>,
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
            tracing::error!(error = format!("{err:#}"), "edk-kms stopped");
            eprintln!("edk-kms: {err:#}");
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
    let mut config: KmsServerConfig = loader.env(std::env::vars()).load()?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    init_tracing(&config.log).map_err(|err| anyhow::anyhow!(err))?;
    tracing::info!(config = ?config, "effective configuration");

    let http_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the HTTP client")?;
    let server = KmsServer::build(&config, Arc::new(SystemClock), &http_client)
        .await
        .context("cannot start the KMS")?;
    let listener = bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let stop = CancellationToken::new();
    let grpc = match server.grpc() {
        Some(grpc) => {
            let grpc_listener = TcpListener::bind(grpc.listen())
                .await
                .with_context(|| format!("cannot listen for gRPC on {}", grpc.listen()))?;
            tracing::info!(listen = %grpc.listen(), "serving gRPC");
            let stopped = stop.clone();
            Some(tokio::spawn(grpc.clone().serve(
                grpc_listener,
                async move { stopped.cancelled().await },
            )))
        }
        None => None,
    };
    let stopping = stop.clone();
    let result = listener
        .run(
            server.app(),
            async move {
                shutdown_signal().await;
                stopping.cancel();
            },
            config.http.shutdown_grace(),
        )
        .await;
    stop.cancel();
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "the gRPC listener failed"),
            Err(err) => tracing::error!(error = %err, "the gRPC listener panicked"),
        }
    }
    server.shutdown().await;
    result?;
    Ok(())
}
