//! `edk`: every EDK service in one process (run with `cargo run` at the workspace root), and
//! the operator command line (`edk tenants|keys|dids|clients|offers|requests|audit`, see
//! [`edk::cli`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory as _, Parser, Subcommand};
use secrecy::ExposeSecret as _;

use edk::bootstrap::{ADMIN_SCOPES, DEFAULT_TENANT_SLUG, DataDir};
use edk::{Edk, EdkConfig};
use edk_core::{SystemClock, TenantSlug};
use edk_server::{ConfigLoader, bind, shutdown_signal};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy};

/// EDK all in one: the KMS, the authorization server, the DID server, the credential issuer
/// and the verifier in one process.
#[derive(Debug, Parser)]
#[command(name = "edk", version, about)]
struct Cli {
    /// Address to listen on [default: `http.listen`, 127.0.0.1:8080].
    #[arg(long, env = "EDK_LISTEN", global = true)]
    listen: Option<SocketAddr>,
    /// Directory holding the server's state (KEK, bootstrap admin key, SQLite databases).
    #[arg(long, env = "EDK_DATA_DIR", default_value = "./.edk", global = true)]
    data_dir: PathBuf,
    /// YAML configuration files, applied in order (repeat the flag or separate with commas).
    #[arg(
        long = "config",
        env = "EDK_CONFIG",
        value_delimiter = ',',
        global = true
    )]
    config: Vec<PathBuf>,
    /// What to do; serving is the default.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every service (the default).
    Serve,
    /// Mint an admin token for the default tenant with the data directory's bootstrap key and
    /// print it on standard output.
    AdminToken {
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u32,
        /// Scopes, space- or comma-separated [default: every admin scope].
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
    },
    /// Print a shell completion script for `edk` on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Operator commands against a running server.
    #[command(flatten)]
    Operator(Box<edk::cli::OperatorCommand>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Operator(command)) => return operate(&command).await,
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "edk", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match Box::pin(run(cli)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "edk stopped");
            eprintln!("edk: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an operator command: its result on standard output, progress and errors on standard
/// error, and the exit code of [`edk::cli::CliError::exit_code`].
async fn operate(command: &edk::cli::OperatorCommand) -> ExitCode {
    edk_server::install_crypto_provider();
    let mut progress = std::io::stderr();
    match edk::cli::run(command, &mut progress).await {
        Ok(outcome) => {
            let text = outcome.render(edk::cli::output_format(command));
            let mut stdout = std::io::stdout().lock();
            let written = if text.ends_with('\n') {
                stdout.write_all(text.as_bytes())
            } else {
                writeln!(stdout, "{text}")
            };
            if written.is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("edk: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    edk_server::install_crypto_provider();
    let loader = cli
        .config
        .iter()
        .fold(ConfigLoader::new(), |loader, file| loader.file(file));
    let mut config: EdkConfig = loader.env(std::env::vars()).load()?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    let telemetry = edk_server::telemetry::init(&config.log, &config.observability, "edk")?;
    let data = DataDir::open(&cli.data_dir).context("cannot open the data directory")?;
    let result = match cli.command {
        None | Some(Command::Serve) => Box::pin(serve(config, &data)).await,
        Some(Command::AdminToken { ttl_secs, scope }) => {
            admin_token(&config, &data, ttl_secs, &scope).await
        }
        Some(Command::Completions { .. } | Command::Operator(_)) => Ok(()),
    };
    telemetry.shutdown().await;
    result
}

async fn serve(config: EdkConfig, data: &DataDir) -> anyhow::Result<()> {
    tracing::info!(config = ?config, data_dir = %data.path().display(), "effective configuration");
    let http_client = edk_server::deps::outbound_http_client(&config.http)
        .context("cannot build the HTTP client")?;
    let edk = Edk::start(&config, data, Arc::new(SystemClock), &http_client).await?;
    let server = bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    edk.bind_default_tenant(server.local_addr().port())
        .await
        .context("cannot bind the default tenant's endpoints")?;
    if edk.bootstrap_token().is_some() {
        tracing::warn!(
            path = %data.bootstrap_token_path().display(),
            "a bootstrap admin token for the default tenant was written (owner-only); mint another with `edk admin-token`"
        );
    }
    if edk.setup_token().is_some() {
        tracing::warn!(
            path = %data.path().join(edk::PLATFORM_SETUP_TOKEN_FILE).display(),
            "a platform first-run setup token was written (owner-only); POST it to /api/platform/v1/setup to create the first operator"
        );
    }
    tracing::info!(listen = %server.local_addr(), "serving");
    let result = server
        .run(edk.app(), shutdown_signal(), config.http.shutdown_grace())
        .await;
    edk.shutdown().await;
    result?;
    Ok(())
}

async fn admin_token(
    config: &EdkConfig,
    data: &DataDir,
    ttl_secs: u32,
    scope: &[String],
) -> anyhow::Result<()> {
    let database = config
        .database
        .clone()
        .unwrap_or_else(|| DatabaseConfig::Sqlite(SqliteConfig::new(data.database_dir())));
    let tenancy = Tenancy::builder(database)
        .build()
        .await
        .context("cannot open the database")?;
    let slug = TenantSlug::new(DEFAULT_TENANT_SLUG)?;
    let tenant = tenancy
        .tenant_by_slug(&slug)
        .await
        .context("the default tenant does not exist yet: start `edk` once first")?;
    let scopes: Vec<&str> = scope
        .iter()
        .flat_map(|scope| scope.split_whitespace())
        .collect();
    let scopes: &[&str] = if scopes.is_empty() {
        &ADMIN_SCOPES
    } else {
        &scopes
    };
    if let Some(unknown) = scopes.iter().find(|scope| !ADMIN_SCOPES.contains(scope)) {
        anyhow::bail!(
            "unknown scope `{unknown}`; known: {}",
            ADMIN_SCOPES.join(" ")
        );
    }
    let token = data
        .admin_token(
            tenant.id,
            &config.auth.audience,
            scopes,
            i64::from(ttl_secs),
            &SystemClock,
        )
        .await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", token.expose_secret()).context("cannot write the token")?;
    Ok(())
}
