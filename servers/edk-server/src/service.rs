//! The one shape of every EDK server, and the `main` they share.
//!
//! A server crate implements [`Service`]: it declares what it needs of the shared
//! dependencies ([`Service::prepare`]: migrations, tenant configuration keys), builds itself
//! from its configuration and a [`Deps`] ([`Service::build`]), and hands out its application
//! ([`Service::app`]). Its configuration implements [`ServiceConfig`]: the same `http`, `log`,
//! `database`, `kms` and `observability` sections everywhere. [`run`] is the whole `main` of a server binary.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use poem::Response;
use poem::endpoint::BoxEndpoint;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::deps::{Deps, DepsBuilder};
use crate::kms::KmsConfig;
use crate::{ConfigLoader, HttpConfig, LogConfig, bind, shutdown_signal};
use edk_core::{Clock, SystemClock};
pub use edk_tenancy::DatabaseConfig;
use edk_tenancy::scheduler::Job;

/// A boxed error, for what a `main` reports.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A task a server runs beside its HTTP listener (the KMS's gRPC listener), ending when the
/// token it was given is cancelled.
pub type SideTask = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// The sections every server configuration has.
pub trait ServiceConfig: DeserializeOwned + std::fmt::Debug + Send + Sync {
    /// The HTTP listener and request limits.
    fn http(&self) -> &HttpConfig;
    /// The HTTP listener, to override from the command line.
    fn http_mut(&mut self) -> &mut HttpConfig;
    /// Logging.
    fn log(&self) -> &LogConfig;
    /// The platform and tenant databases.
    fn database(&self) -> &DatabaseConfig;
    /// Where keys are: in process or at the KMS server.
    fn kms(&self) -> &KmsConfig;
    /// Trace export.
    fn observability(&self) -> &crate::ObservabilityConfig;
    /// The platform's directory service to read tenants from instead of the platform
    /// database (a runtime server's `directory` section); `None` by default.
    fn directory(&self) -> Option<&crate::directory::DirectoryConfig> {
        None
    }
}

/// Implements [`ServiceConfig`] for a configuration struct whose `http`, `log`, `database`
/// `kms` and `observability` fields are the shared sections; with `, directory` also its
/// `directory: Option<Box<DirectoryConfig>>` field (runtime servers that can read tenants from the
/// platform).
#[macro_export]
macro_rules! impl_service_config {
    (@impl $config:ty, $($extra:item)*) => {
        impl $crate::ServiceConfig for $config {
            fn http(&self) -> &$crate::HttpConfig {
                &self.http
            }

            fn http_mut(&mut self) -> &mut $crate::HttpConfig {
                &mut self.http
            }

            fn log(&self) -> &$crate::LogConfig {
                &self.log
            }

            fn database(&self) -> &$crate::service::DatabaseConfig {
                &self.database
            }

            fn kms(&self) -> &$crate::KmsConfig {
                &self.kms
            }

            fn observability(&self) -> &$crate::ObservabilityConfig {
                &self.observability
            }

            $($extra)*
        }
    };
    ($config:ty, directory) => {
        $crate::impl_service_config!(@impl $config, fn directory(&self) -> ::core::option::Option<&$crate::directory::DirectoryConfig> {
            self.directory.as_deref()
        });
    };
    ($config:ty) => {
        $crate::impl_service_config!(@impl $config,);
    };
}

/// An EDK server: built from its configuration and the shared [`Deps`].
#[async_trait]
pub trait Service: Sized + Send + Sync {
    /// Its configuration.
    type Config: ServiceConfig;
    /// Why it cannot be built.
    type Error: StdError + Send + Sync + 'static;

    /// The binary's name, for logs and messages (`edk-as`).
    const NAME: &'static str;

    /// Adds what this server needs to the dependencies: its migration sets and the tenant
    /// configuration keys it reads.
    ///
    /// # Errors
    /// When a bundled migration set is malformed.
    fn prepare(deps: DepsBuilder) -> Result<DepsBuilder, Self::Error>;

    /// Builds the server on `deps` (opened with [`prepare`](Self::prepare)).
    ///
    /// # Errors
    /// When a part of the server cannot be set up.
    async fn build(config: &Self::Config, deps: &Deps) -> Result<Self, Self::Error>;

    /// The whole HTTP application.
    fn app(&self) -> BoxEndpoint<'static, Response>;

    /// The server's own housekeeping jobs, run by the scheduler beside [`Deps::jobs`] (none
    /// by default).
    fn jobs(&self) -> Vec<Arc<dyn Job>> {
        Vec::new()
    }

    /// Tasks to run beside the HTTP listener until `stop` is cancelled (none by default).
    ///
    /// # Errors
    /// When such a task cannot start (its address cannot be bound).
    async fn side_tasks(&self, stop: CancellationToken) -> Result<Vec<SideTask>, BoxError> {
        let _ = stop;
        Ok(Vec::new())
    }

    /// Stops the server's own background work.
    async fn shutdown(self) {}
}

/// The command line every server binary takes.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// Address to listen on [default: `http.listen`, 127.0.0.1:8080].
    #[arg(long, env = "EDK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// YAML configuration files, applied in order (repeat the flag or separate with commas).
    #[arg(long = "config", env = "EDK_CONFIG", value_delimiter = ',')]
    pub config: Vec<PathBuf>,
}

impl Cli {
    /// Loads the configuration: defaults, the files in order, then `EDK_*` variables; the
    /// `--listen` flag wins over `http.listen`.
    ///
    /// # Errors
    /// [`crate::ConfigError`] naming the first bad key.
    pub fn load<C: ServiceConfig>(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<C, crate::ConfigError> {
        let loader = self
            .config
            .iter()
            .fold(ConfigLoader::new(), |loader, file| loader.file(file));
        let mut config: C = loader.env(env).load()?;
        if let Some(listen) = self.listen {
            config.http_mut().listen = listen;
        }
        Ok(config)
    }
}

/// A server built on its own [`Deps`]: what [`start`] returns. It dereferences to the server.
#[derive(Debug)]
pub struct Started<S> {
    server: S,
    deps: Deps,
}

impl<S: Service> Started<S> {
    /// The dependencies the server was built on.
    #[must_use]
    pub const fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Stops the server's background work, then the dependencies'.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.deps.shutdown().await;
    }
}

impl<S> std::ops::Deref for Started<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.server
    }
}

/// Opens the dependencies `S` needs for `config` (with `clock` and the outbound `http`
/// client) and builds `S` on them.
///
/// # Errors
/// What could not be opened or built.
pub async fn start<S: Service>(
    config: &S::Config,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
) -> Result<Started<S>, BoxError> {
    let deps = S::prepare(
        Deps::builder(config.database().clone(), config.kms().clone())
            .directory(config.directory().cloned())
            .clock(clock)
            .http_client(http),
    )?
    .build()
    .await?;
    match S::build(config, &deps).await {
        Ok(server) => Ok(Started { server, deps }),
        Err(err) => {
            deps.shutdown().await;
            Err(err.into())
        }
    }
}

/// The whole `main` of a server binary: loads the configuration, sets up logging, opens the
/// dependencies, builds the server, serves it (and its side tasks) until SIGTERM or ctrl-c,
/// then shuts everything down in order.
///
/// # Errors
/// What failed, for the binary to print.
pub async fn run<S: Service>(cli: Cli) -> Result<(), BoxError> {
    crate::install_crypto_provider();
    let config: S::Config = cli.load(std::env::vars())?;
    let telemetry = crate::telemetry::init(config.log(), config.observability(), S::NAME)?;
    tracing::info!(config = ?config, "effective configuration");
    let result = serve_started::<S>(&config).await;
    telemetry.shutdown().await;
    result
}

async fn serve_started<S: Service>(config: &S::Config) -> Result<(), BoxError> {
    let http = crate::deps::outbound_http_client(config.http())?;
    let started = start::<S>(config, Arc::new(SystemClock), http).await?;
    started.deps().start_scheduler(started.jobs())?;
    let listener = bind(config.http().listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", config.http().listen))?;
    let stop = CancellationToken::new();
    let side = started.side_tasks(stop.clone()).await?;
    let side: Vec<_> = side.into_iter().map(tokio::spawn).collect();
    let stopping = stop.clone();
    let result = listener
        .run(
            started.app(),
            async move {
                shutdown_signal().await;
                stopping.cancel();
            },
            config.http().shutdown_grace(),
        )
        .await;
    stop.cancel();
    for task in side {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "a side task failed"),
            Err(err) => tracing::error!(error = %err, "a side task panicked"),
        }
    }
    started.shutdown().await;
    result.map_err(Into::into)
}

/// Runs [`run`] as a binary's `main`: parses the command line, and prints a failure on
/// standard error with a failing exit code.
pub async fn main<S: Service>() -> std::process::ExitCode {
    use clap::Parser as _;
    let cli = Cli::parse();
    match run::<S>(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let chain = edk_core::ErrorChain(err.as_ref()).to_string();
            tracing::error!(error = %chain, "{} stopped", S::NAME);
            eprintln!("{}: {chain}", S::NAME);
            std::process::ExitCode::FAILURE
        }
    }
}
