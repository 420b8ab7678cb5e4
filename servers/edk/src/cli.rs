//! The operator command line: `edk tenants|keys|dids|clients|offers|requests|audit`, each
//! against a running server over its admin APIs.
//!
//! # Connection
//! Every command takes the server's base URL and a bearer token, in this order of precedence:
//! `--url` and `--token` (or `--token-file`), the environment (`EDK_URL`, `EDK_TOKEN`), then a
//! profile of the profile file (`--profile`, default `default`; the file is `--profile-file`,
//! `EDK_PROFILE_FILE`, or `edk/profiles.yaml` under `$XDG_CONFIG_HOME` or `~/.config`):
//!
//! ```yaml
//! profiles:
//!   default:
//!     url: http://127.0.0.1:8080
//!     token_file: ./.edk/bootstrap-token
//! ```
//!
//! The URL is `edk`'s, or the internal admin ingress of a split deployment, which routes
//! `/api/<service>/` to each service. `tenants` needs an operator token (platform scopes);
//! every other command acts for the tenant of its token.
//!
//! # Output and exit codes
//! `--output table` (the default) prints a readable view: aligned columns for lists, one
//! `field: value` line per field otherwise, the URI and a QR code for offers and requests.
//! `--output json` prints the server's answer as JSON, for scripts. Progress goes to
//! standard error. The exit code says what happened ([`CliError::exit_code`]): `0` done,
//! `1` the server refused the request (its problem is printed), `2` the command line or a
//! local file is unusable (nothing was sent), `3` the server could not be reached or failed,
//! `4` `audit verify` found the audit chain broken.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use figment::providers::Format as _;
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable columns and fields.
    #[default]
    Table,
    /// The server's answer as JSON.
    Json,
}

/// Where the server is, who calls it, and how results are printed.
#[derive(Clone, Default, Args)]
pub struct ConnectionArgs {
    /// The server's base URL (edk, or the admin ingress of a split deployment).
    #[arg(long, env = "EDK_URL", global = true)]
    pub url: Option<String>,
    /// The bearer token.
    #[arg(long, env = "EDK_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The profile to read the URL and token from [default: `default`].
    #[arg(long, env = "EDK_PROFILE", global = true)]
    pub profile: Option<String>,
    /// The profile file [default: `edk/profiles.yaml` in the user's configuration directory].
    #[arg(long, env = "EDK_PROFILE_FILE", global = true)]
    pub profile_file: Option<PathBuf>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,
}

impl fmt::Debug for ConnectionArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .field("profile", &self.profile)
            .field("profile_file", &self.profile_file)
            .field("output", &self.output)
            .finish()
    }
}

/// An operator command.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create, list, suspend and resume tenants (an operator token).
    Tenants {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: TenantsAction,
    },
    /// Create, list and rotate the tenant's keys.
    Keys {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Create the tenant's DIDs and resolve any DID.
    Dids {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: DidsAction,
    },
    /// Register clients of the tenant's authorization server.
    Clients {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Make credential offers.
    Offers {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: OffersAction,
    },
    /// Make presentation requests.
    Requests {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: RequestsAction,
    },
    /// Read and check the signing audit chain of the token's tenant, or of any tenant.
    Audit {
        /// Connection and output.
        #[command(flatten)]
        connection: ConnectionArgs,
        /// What to do.
        #[command(subcommand)]
        action: AuditAction,
    },
}

/// `edk tenants …`.
#[derive(Debug, Subcommand)]
pub enum TenantsAction {
    /// Create a tenant and run its onboarding steps.
    Create {
        /// The slug: lower-case letters, digits and `-`.
        #[arg(long)]
        slug: String,
        /// The display name [default: the slug].
        #[arg(long)]
        name: Option<String>,
        /// A service endpoint, `SERVICE=HOST[:PORT][/PREFIX]` (service `as`, `did`, `issuer`
        /// or `verifier`); repeat for each service. One for `as` is required.
        #[arg(
            long = "bind",
            value_name = "SERVICE=HOST[:PORT][/PREFIX]",
            required = true
        )]
        bindings: Vec<String>,
        /// The issuer DID's method: `web` or `webvh` (needs a `did` binding).
        #[arg(long)]
        issuer_did: Option<String>,
        /// Advertise `http` endpoints (loopback hosts only, for local development).
        #[arg(long)]
        dangerous_loopback_http: bool,
    },
    /// List the tenants.
    List,
    /// Suspend a tenant: its endpoints answer 404 until it is resumed.
    Suspend {
        /// The tenant id.
        id: String,
    },
    /// Resume a suspended tenant.
    Resume {
        /// The tenant id.
        id: String,
    },
}

/// `edk keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key under an alias.
    Create {
        /// The alias.
        #[arg(long)]
        alias: String,
        /// The algorithm.
        #[arg(long, default_value = "ES256")]
        algorithm: String,
        /// What the key is for: `sign`, `encrypt`, `wrap` or `agree`.
        #[arg(long, default_value = "sign")]
        usage: String,
        /// The provider to create it in [default: the tenant's default].
        #[arg(long)]
        provider: Option<String>,
    },
    /// List the tenant's keys.
    List,
    /// Rotate an alias: a new active version, the previous one retired.
    Rotate {
        /// The alias.
        alias: String,
    },
}

/// `edk dids …`.
#[derive(Debug, Subcommand)]
pub enum DidsAction {
    /// Create a DID of the tenant.
    Create {
        /// The method: `web`, `webvh`, `key` or `jwk`.
        #[arg(long)]
        method: String,
        /// The name of the DID within the tenant.
        #[arg(long)]
        name: Option<String>,
        /// The path below the tenant's DID host (did:web and did:webvh).
        #[arg(long)]
        path: Option<String>,
    },
    /// Resolve a DID with the Universal Resolver interface.
    Resolve {
        /// The DID.
        did: String,
    },
}

/// `edk clients …`.
#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// Register a client; its secret, if it gets one, is printed once.
    Create {
        /// The client id [default: one the server chooses].
        #[arg(long)]
        client_id: Option<String>,
        /// A grant type; repeat for several.
        #[arg(long = "grant-type", required = true)]
        grant_types: Vec<String>,
        /// How it authenticates at the token endpoint.
        #[arg(long, default_value = "client_secret_basic")]
        auth_method: String,
        /// A redirect URI; repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A scope it may ask for; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Its display name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// `edk offers …`.
#[derive(Debug, Subcommand)]
pub enum OffersAction {
    /// Make a credential offer with a pre-authorized code and print its URI and QR code.
    Create {
        /// A credential configuration id; repeat for several.
        #[arg(long = "configuration", required = true)]
        configurations: Vec<String>,
        /// The claims, as JSON or `@file`.
        #[arg(long)]
        claims: Option<String>,
        /// Ask for a transaction code of this many digits (4 to 10).
        #[arg(long)]
        tx_code_digits: Option<u8>,
        /// Pass the offer by reference (`credential_offer_uri`).
        #[arg(long)]
        by_reference: bool,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
}

/// `edk requests …`.
#[derive(Debug, Subcommand)]
pub enum RequestsAction {
    /// Make a presentation request and print its URI and QR code.
    Create {
        /// A stored DCQL query's id.
        #[arg(long, conflicts_with = "dcql", required_unless_present = "dcql")]
        query_id: Option<String>,
        /// A DCQL query, as JSON or `@file`.
        #[arg(long)]
        dcql: Option<String>,
        /// The client identifier prefix.
        #[arg(long)]
        client_id_prefix: Option<String>,
        /// The response mode: `direct_post` or `direct_post.jwt`.
        #[arg(long)]
        response_mode: Option<String>,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
}

/// `edk audit …`: the token's tenant's chain through the KMS API, or with `--tenant` any
/// tenant's through the platform API (an operator's token, or that tenant's administrator's).
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every record, link and checkpoint of the tenant's signing audit chain.
    Verify {
        /// The tenant id, read through the platform API.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List the records of the tenant's signing audit chain, oldest first.
    Events {
        /// The tenant id, read through the platform API (needed for the filters).
        #[arg(long)]
        tenant: Option<String>,
        /// Only records after this sequence number.
        #[arg(long)]
        after: Option<u64>,
        /// The most records to list, 1 to 1000 (default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Only this operation, e.g. `sign`.
        #[arg(long, requires = "tenant")]
        operation: Option<String>,
        /// Only actors that start with this.
        #[arg(long, requires = "tenant")]
        actor: Option<String>,
        /// Only `success`, `failure` or `failure:<kind>`.
        #[arg(long, requires = "tenant")]
        outcome: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long, requires = "tenant")]
        since: Option<String>,
        /// Only records at or before this time (RFC 3339).
        #[arg(long, requires = "tenant")]
        until: Option<String>,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line, the profile or a local file is unusable; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The server refused the request.
    #[error("the server refused the request ({status}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the server said was wrong.
        detail: String,
    },
    /// The server could not be reached.
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
    /// The server failed.
    #[error("the server failed ({status}): {detail}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// What it said.
        detail: String,
    },
    /// The audit chain does not check out.
    #[error("the audit chain is broken: {0}")]
    AuditBroken(String),
}

impl CliError {
    /// The process exit code: `1` refused, `2` usage, `3` unreachable or failed, `4` audit
    /// chain broken.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Refused { .. } => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) | Self::Server { .. } => 3,
            Self::AuditBroken(_) => 4,
        }
    }
}

/// A profile of the profile file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

/// A server to call: its base URL and the bearer token.
struct Connection {
    base: url::Url,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl Connection {
    fn open(args: &ConnectionArgs, needs_token: bool) -> Result<Self, CliError> {
        let profile = load_profile(args)?;
        let url =
            args.url.clone().or(profile.url).ok_or_else(|| {
                CliError::Usage("no server URL: pass --url or set EDK_URL".into())
            })?;
        let base = url::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| CliError::Usage(format!("--url {url:?} is not an http(s) URL")))?;
        let token = match (&args.token, &args.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(file)) => Some(read_token(file)?),
            (None, None) => match (profile.token, profile.token_file) {
                (Some(token), _) => Some(token),
                (None, Some(file)) => Some(read_token(&file)?),
                (None, None) => None,
            },
        };
        if needs_token && token.is_none() {
            return Err(CliError::Usage(
                "no token: pass --token or --token-file, or set EDK_TOKEN".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| CliError::Unreachable(err.to_string()))?;
        Ok(Self {
            base,
            token: token.map(SecretString::from),
            http,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|err| CliError::Usage(format!("cannot build a URL for {path}: {err}")))?;
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| CliError::Unreachable(without_url(&err)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|err| CliError::Unreachable(without_url(&err)))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(value)
        } else if status.is_client_error() {
            Err(CliError::Refused {
                status: status.as_u16(),
                detail: problem_detail(&value),
            })
        } else {
            Err(CliError::Server {
                status: status.as_u16(),
                detail: problem_detail(&value),
            })
        }
    }
}

/// A reqwest error's message without the URL (which may carry a query).
fn without_url(err: &reqwest::Error) -> String {
    let mut err = err.to_string();
    if let Some(at) = err.find(" for url (") {
        err.truncate(at);
    }
    err
}

fn load_profile(args: &ConnectionArgs) -> Result<Profile, CliError> {
    let path = args.profile_file.clone().or_else(default_profile_file);
    let Some(path) = path else {
        return Ok(Profile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if args.profile_file.is_some() || args.profile.is_some() {
                return Err(CliError::Usage(format!(
                    "the profile file {} does not exist",
                    path.display()
                )));
            }
            return Ok(Profile::default());
        }
        Err(err) => {
            return Err(CliError::Usage(format!(
                "cannot read the profile file {}: {err}",
                path.display()
            )));
        }
    };
    let mut file: ProfileFile = figment::Figment::from(figment::providers::Yaml::string(&text))
        .extract()
        .map_err(|err| {
            CliError::Usage(format!(
                "the profile file {} is malformed: {err}",
                path.display()
            ))
        })?;
    let name = args.profile.as_deref().unwrap_or("default");
    match file.profiles.remove(name) {
        Some(profile) => Ok(profile),
        None if args.profile.is_some() => Err(CliError::Usage(format!(
            "the profile file {} has no profile {name:?}",
            path.display()
        ))),
        None => Ok(Profile::default()),
    }
}

fn default_profile_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("edk").join("profiles.yaml"))
}

fn read_token(path: &Path) -> Result<String, CliError> {
    let token = std::fs::read_to_string(path).map_err(|err| {
        CliError::Usage(format!(
            "cannot read the token file {}: {err}",
            path.display()
        ))
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(CliError::Usage(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// What a problem+json or OAuth error body says, or the body itself.
fn problem_detail(body: &Value) -> String {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    match (
        field("title").or_else(|| field("error")),
        field("detail").or_else(|| field("error_description")),
    ) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => match body {
            Value::Null => "no details".to_owned(),
            Value::String(text) => text.chars().take(300).collect(),
            other => other.to_string(),
        },
    }
}

/// JSON given inline or as `@file`.
fn json_argument(flag: &str, value: &str) -> Result<Value, CliError> {
    let text = match value.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|err| CliError::Usage(format!("cannot read {flag} file {file}: {err}")))?,
        None => value.to_owned(),
    };
    serde_json::from_str(&text).map_err(|err| CliError::Usage(format!("{flag} is not JSON: {err}")))
}

/// `SERVICE=HOST[:PORT][/PREFIX]` as a platform binding.
fn binding(value: &str, loopback_http: bool) -> Result<Value, CliError> {
    let bad = |why: &str| CliError::Usage(format!("--bind {value:?}: {why}"));
    let (service, target) = value
        .split_once('=')
        .ok_or_else(|| bad("expected SERVICE=HOST[:PORT][/PREFIX]"))?;
    if !matches!(service, "as" | "did" | "issuer" | "verifier") {
        return Err(bad("the service is one of as, did, issuer, verifier"));
    }
    let (authority, prefix) = match target.find('/') {
        Some(at) => (&target[..at], &target[at..]),
        None => (target, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            Some(
                port.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
            ),
        ),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(bad("the host is missing"));
    }
    let mut out = json!({"service": service, "host": host, "path_prefix": prefix});
    if let Some(port) = port {
        out["port"] = json!(port);
    }
    if loopback_http {
        out["dangerous_loopback_http"] = json!(true);
    }
    Ok(out)
}

/// What a command printed: the server's answer, and its readable view.
#[derive(Debug)]
pub struct Outcome {
    /// The answer, printed as is with `--output json`.
    pub json: Value,
    /// The readable view, printed with `--output table`.
    pub table: String,
}

impl Outcome {
    /// The text to print in `format`.
    #[must_use]
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Json => {
                serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| "null".to_owned())
            }
            OutputFormat::Table => self.table.clone(),
        }
    }
}

/// The format `command` prints in.
#[must_use]
pub const fn output_format(command: &OperatorCommand) -> OutputFormat {
    match command {
        OperatorCommand::Tenants { connection, .. }
        | OperatorCommand::Keys { connection, .. }
        | OperatorCommand::Dids { connection, .. }
        | OperatorCommand::Clients { connection, .. }
        | OperatorCommand::Offers { connection, .. }
        | OperatorCommand::Requests { connection, .. }
        | OperatorCommand::Audit { connection, .. } => connection.output,
    }
}

/// Runs `command`; progress goes to `progress` (standard error in the binary).
///
/// # Errors
/// [`CliError`] when the command line is unusable, the server refuses or fails, or the audit
/// chain is broken.
pub async fn run(
    command: &OperatorCommand,
    progress: &mut (dyn std::io::Write + Send),
) -> Result<Outcome, CliError> {
    match command {
        OperatorCommand::Tenants { connection, action } => {
            tenants(&Connection::open(connection, true)?, action, progress).await
        }
        OperatorCommand::Keys { connection, action } => {
            keys(&Connection::open(connection, true)?, action).await
        }
        OperatorCommand::Dids { connection, action } => {
            let needs_token = !matches!(action, DidsAction::Resolve { .. });
            dids(&Connection::open(connection, needs_token)?, action).await
        }
        OperatorCommand::Clients { connection, action } => {
            clients(&Connection::open(connection, true)?, action).await
        }
        OperatorCommand::Offers { connection, action } => {
            offers(&Connection::open(connection, true)?, action).await
        }
        OperatorCommand::Requests { connection, action } => {
            requests(&Connection::open(connection, true)?, action).await
        }
        OperatorCommand::Audit { connection, action } => {
            audit(&Connection::open(connection, true)?, action).await
        }
    }
}

async fn tenants(
    conn: &Connection,
    action: &TenantsAction,
    progress: &mut (dyn std::io::Write + Send),
) -> Result<Outcome, CliError> {
    const BASE: &str = "/api/platform/v1/tenants";
    match action {
        TenantsAction::Create {
            slug,
            name,
            bindings,
            issuer_did,
            dangerous_loopback_http,
        } => {
            let bindings = bindings
                .iter()
                .map(|b| binding(b, *dangerous_loopback_http))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({
                "slug": slug,
                "display_name": name.as_deref().unwrap_or(slug),
                "bindings": bindings,
            });
            if let Some(method) = issuer_did {
                body["issuer_did"] = json!({"method": method});
            }
            let _ = writeln!(
                progress,
                "creating tenant {slug} and running its onboarding…"
            );
            let created = conn.call(Method::POST, BASE, Some(&body)).await?;
            let steps = created["onboarding"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for step in &steps {
                let _ = writeln!(
                    progress,
                    "  {:<20} {}",
                    text(&step["step"]),
                    text(&step["state"])
                );
            }
            let table = fields(
                &created,
                &["id", "slug", "display_name", "status", "issuer_did"],
            );
            Ok(Outcome {
                json: created,
                table,
            })
        }
        TenantsAction::List => {
            let list = conn.call(Method::GET, BASE, None).await?;
            let table = columns(
                list["tenants"].as_array().map_or(&[][..], Vec::as_slice),
                &["id", "slug", "display_name", "status", "created_at"],
            );
            Ok(Outcome { json: list, table })
        }
        TenantsAction::Suspend { id } | TenantsAction::Resume { id } => {
            let verb = if matches!(action, TenantsAction::Suspend { .. }) {
                "suspend"
            } else {
                "resume"
            };
            let id = path_segment("tenant id", id)?;
            let tenant = conn
                .call(Method::POST, &format!("{BASE}/{id}/{verb}"), None)
                .await?;
            let table = fields(&tenant, &["id", "slug", "status"]);
            Ok(Outcome {
                json: tenant,
                table,
            })
        }
    }
}

async fn keys(conn: &Connection, action: &KeysAction) -> Result<Outcome, CliError> {
    const BASE: &str = "/api/kms/v1/keys";
    let key_view = |key: &Value| {
        let mut out = fields(key, &["alias", "usage", "algorithm", "provider"]);
        let versions = key["versions"].as_array().map_or(&[][..], Vec::as_slice);
        out.push_str(&columns(
            versions,
            &["version", "kid", "state", "created_at"],
        ));
        out
    };
    match action {
        KeysAction::Create {
            alias,
            algorithm,
            usage,
            provider,
        } => {
            let mut body = json!({"alias": alias, "algorithm": algorithm, "usage": usage});
            if let Some(provider) = provider {
                body["provider"] = json!(provider);
            }
            let key = conn.call(Method::POST, BASE, Some(&body)).await?;
            let table = key_view(&key);
            Ok(Outcome { json: key, table })
        }
        KeysAction::List => {
            let list = conn.call(Method::GET, BASE, None).await?;
            let rows: Vec<Value> = list["keys"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|key| {
                    let active = key["versions"]
                        .as_array()
                        .and_then(|v| v.iter().find(|v| v["state"] == "active"));
                    json!({
                        "alias": key["alias"],
                        "algorithm": key["algorithm"],
                        "usage": key["usage"],
                        "versions": key["versions"].as_array().map_or(0, Vec::len),
                        "active_kid": active.map_or(Value::Null, |v| v["kid"].clone()),
                    })
                })
                .collect();
            let table = columns(
                &rows,
                &["alias", "algorithm", "usage", "versions", "active_kid"],
            );
            Ok(Outcome { json: list, table })
        }
        KeysAction::Rotate { alias } => {
            let alias = path_segment("alias", alias)?;
            let key = conn
                .call(Method::POST, &format!("{BASE}/{alias}/rotate"), None)
                .await?;
            let table = key_view(&key);
            Ok(Outcome { json: key, table })
        }
    }
}

async fn dids(conn: &Connection, action: &DidsAction) -> Result<Outcome, CliError> {
    match action {
        DidsAction::Create { method, name, path } => {
            let mut body = json!({"method": method});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(path) = path {
                body["path"] = json!(path);
            }
            let did = conn
                .call(Method::POST, "/api/did/v1/identifiers", Some(&body))
                .await?;
            let table = fields(&did, &["did", "method", "name", "document_url"]);
            Ok(Outcome { json: did, table })
        }
        DidsAction::Resolve { did } => {
            if !did.starts_with("did:") {
                return Err(CliError::Usage(format!("{did:?} is not a DID")));
            }
            let id = path_segment("DID", did)?;
            let resolved = conn
                .call(Method::GET, &format!("/1.0/identifiers/{id}"), None)
                .await?;
            let table =
                serde_json::to_string_pretty(resolved.get("didDocument").unwrap_or(&resolved))
                    .unwrap_or_default()
                    + "\n";
            Ok(Outcome {
                json: resolved,
                table,
            })
        }
    }
}

async fn clients(conn: &Connection, action: &ClientsAction) -> Result<Outcome, CliError> {
    let ClientsAction::Create {
        client_id,
        grant_types,
        auth_method,
        redirect_uris,
        scopes,
        name,
    } = action;
    let mut body = json!({
        "token_endpoint_auth_method": auth_method,
        "grant_types": grant_types,
    });
    if let Some(id) = client_id {
        body["client_id"] = json!(id);
    }
    if !redirect_uris.is_empty() {
        body["redirect_uris"] = json!(redirect_uris);
    }
    if !scopes.is_empty() {
        body["scopes"] = json!(scopes);
    }
    if let Some(name) = name {
        body["client_name"] = json!(name);
    }
    let created = conn
        .call(Method::POST, "/api/oauth2/v1/clients", Some(&body))
        .await?;
    let mut view = Map::new();
    view.insert("client_id".into(), created["client"]["client_id"].clone());
    if let Some(secret) = created.get("client_secret") {
        view.insert("client_secret".into(), secret.clone());
    }
    let table = fields(&Value::Object(view), &["client_id", "client_secret"]);
    Ok(Outcome {
        json: created,
        table,
    })
}

async fn offers(conn: &Connection, action: &OffersAction) -> Result<Outcome, CliError> {
    let OffersAction::Create {
        configurations,
        claims,
        tx_code_digits,
        by_reference,
        no_qr,
    } = action;
    let mut body = json!({
        "credential_configuration_ids": configurations,
        "by_reference": by_reference,
    });
    if let Some(claims) = claims {
        body["claims"] = json_argument("--claims", claims)?;
    }
    if let Some(digits) = tx_code_digits {
        body["tx_code"] = json!({"digits": digits});
    }
    let offer = conn
        .call(Method::POST, "/api/oid4vci/v1/offers", Some(&body))
        .await?;
    let uri = text(&offer["credential_offer_uri"]);
    let mut table = fields(&offer, &["session_id", "credential_offer_uri", "tx_code"]);
    if !no_qr {
        table.push_str(&terminal_qr(&uri)?);
    }
    Ok(Outcome { json: offer, table })
}

async fn requests(conn: &Connection, action: &RequestsAction) -> Result<Outcome, CliError> {
    let RequestsAction::Create {
        query_id,
        dcql,
        client_id_prefix,
        response_mode,
        no_qr,
    } = action;
    let mut body = json!({});
    if let Some(id) = query_id {
        body["query_id"] = json!(id);
    }
    if let Some(dcql) = dcql {
        body["dcql_query"] = json_argument("--dcql", dcql)?;
    }
    if let Some(prefix) = client_id_prefix {
        body["client_id_prefix"] = json!(prefix);
    }
    if let Some(mode) = response_mode {
        body["response_mode"] = json!(mode);
    }
    let request = conn
        .call(Method::POST, "/api/oid4vp/v1/requests", Some(&body))
        .await?;
    let uri = text(&request["authorization_request_uri"]);
    let mut table = fields(&request, &["session_id", "authorization_request_uri"]);
    if !no_qr {
        table.push_str(&terminal_qr(&uri)?);
    }
    Ok(Outcome {
        json: request,
        table,
    })
}

async fn audit(conn: &Connection, action: &AuditAction) -> Result<Outcome, CliError> {
    match action {
        AuditAction::Verify { tenant } => {
            let path = audit_path(tenant.as_deref(), "verify")?;
            let report = conn.call(Method::POST, &path, None).await?;
            if report["intact"] != Value::Bool(true) {
                return Err(CliError::AuditBroken(format!(
                    "{} at record {} ({} records checked)",
                    text(&report["problem"]),
                    text(&report["first_bad_seq"]),
                    text(&report["records"]),
                )));
            }
            let table = fields(&report, &["intact", "records", "checkpoints"]);
            Ok(Outcome {
                json: report,
                table,
            })
        }
        AuditAction::Events {
            tenant,
            after,
            limit,
            operation,
            actor,
            outcome,
            since,
            until,
        } => {
            // The filters need `--tenant` (clap refuses them without it).
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in [
                ("after", after.map(|after| after.to_string())),
                ("limit", limit.map(|limit| limit.to_string())),
                ("operation", operation.clone()),
                ("actor", actor.clone()),
                ("outcome", outcome.clone()),
                ("since", since.clone()),
                ("until", until.clone()),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, &value);
                }
            }
            let query = query.finish();
            let mut path = audit_path(tenant.as_deref(), "events")?;
            if !query.is_empty() {
                path = format!("{path}?{query}");
            }
            let page = conn.call(Method::GET, &path, None).await?;
            let rows = page["events"].as_array().map_or(&[][..], Vec::as_slice);
            let mut table = columns(
                rows,
                &["seq", "at", "actor", "operation", "alias", "outcome"],
            );
            if let Some(next) = page.get("next_after").filter(|v| !v.is_null()) {
                table.push_str(&format!("next page: --after {}\n", text(next)));
            }
            Ok(Outcome { json: page, table })
        }
    }
}

/// The path of the audit route `action`: the platform's for `tenant`, else the KMS's for the
/// token's tenant.
fn audit_path(tenant: Option<&str>, action: &str) -> Result<String, CliError> {
    Ok(match tenant {
        Some(tenant) => format!(
            "/api/platform/v1/tenants/{}/audit/{action}",
            path_segment("tenant", tenant)?
        ),
        None => format!("/api/kms/v1/audit/{action}"),
    })
}

/// `value` percent-encoded as one path segment; refused when empty.
fn path_segment(what: &str, value: &str) -> Result<String, CliError> {
    if value.is_empty() {
        return Err(CliError::Usage(format!("the {what} is empty")));
    }
    Ok(url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20"))
}

/// A value as text: strings bare, nothing for null.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One `field: value` line per present field of `object`.
fn fields(object: &Value, names: &[&str]) -> String {
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for name in names {
        if let Some(value) = object.get(*name).filter(|v| !v.is_null()) {
            out.push_str(&format!("{name:<width$}  {}\n", text(value)));
        }
    }
    out
}

/// `rows` as aligned columns under a header of `names`.
fn columns(rows: &[Value], names: &[&str]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| names.iter().map(|n| text(&row[*n])).collect())
        .collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let mut out = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(names.iter().map(|n| n.to_uppercase()).collect());
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

/// `text` as a QR code of Unicode half blocks, for a terminal.
fn terminal_qr(text: &str) -> Result<String, CliError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|err| CliError::Usage(format!("the URI does not fit a QR code: {err}")))?;
    let mut out = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse_service_host_port_and_prefix() {
        assert_eq!(
            binding("issuer=acme.example:8443/vci", false).unwrap(),
            json!({"service": "issuer", "host": "acme.example", "port": 8443, "path_prefix": "/vci"})
        );
        assert_eq!(
            binding("as=127.0.0.1", true).unwrap(),
            json!({"service": "as", "host": "127.0.0.1", "path_prefix": "/", "dangerous_loopback_http": true})
        );
        for bad in [
            "acme.example",
            "kms=acme.example",
            "as=",
            "as=host:99999",
            "as=:80/x",
        ] {
            assert!(
                matches!(binding(bad, false), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn columns_align_and_fields_skip_absent_values() {
        let rows = [json!({"a": "x", "b": 1}), json!({"a": "longer", "b": null})];
        assert_eq!(
            columns(&rows, &["a", "b"]),
            "A       B\nx       1\nlonger\n"
        );
        assert_eq!(
            fields(&json!({"id": "t1", "none": null}), &["id", "none", "gone"]),
            "id    t1\n"
        );
    }

    #[test]
    fn problems_are_summarised_from_problem_json_or_oauth_errors() {
        assert_eq!(
            problem_detail(&json!({"title": "Bad Request", "detail": "slug is taken"})),
            "Bad Request: slug is taken"
        );
        assert_eq!(
            problem_detail(&json!({"error": "invalid_token"})),
            "invalid_token"
        );
        assert_eq!(problem_detail(&Value::Null), "no details");
    }

    #[test]
    fn exit_codes_tell_failures_apart() {
        let codes = [
            CliError::Refused {
                status: 400,
                detail: String::new(),
            }
            .exit_code(),
            CliError::Usage(String::new()).exit_code(),
            CliError::Unreachable(String::new()).exit_code(),
            CliError::AuditBroken(String::new()).exit_code(),
        ];
        assert_eq!(codes, [1, 2, 3, 4]);
    }

    #[test]
    fn tokens_stay_out_of_debug_output() {
        let args = ConnectionArgs {
            token: Some("secret-token-value".into()),
            ..ConnectionArgs::default()
        };
        assert!(!format!("{args:?}").contains("secret-token-value"));
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(
            path_segment("DID", "did:web:a.example:b c/d").unwrap(),
            "did%3Aweb%3Aa.example%3Ab%20c%2Fd"
        );
        assert!(path_segment("alias", "").is_err());
    }
}
