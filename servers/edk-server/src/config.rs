//! Process configuration: built-in defaults, then YAML files in order, then `EDK_*`
//! environment variables.
//!
//! A variable names a key by its path with `__` between the parts, after the `EDK_` prefix:
//! `EDK_HTTP__LISTEN=0.0.0.0:8080` sets `http.listen`. Only variables with a `__` are read,
//! because every top-level key is a section; plain ones such as `EDK_LISTEN` belong to the
//! binaries' command lines. Values are parsed as scalars (`true`, `42`, `a string`); a
//! numbered part addresses a list item (`EDK_KMS__PROVIDERS__0__KIND=software`), and maps are
//! built from the key paths.
//!
//! The target type decides what is valid: `#[serde(deny_unknown_fields)]` refuses typos and
//! field types validate by conversion, so a configuration that loads is a valid one. A failure
//! is one line naming the key and where its value came from.

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Value};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "EDK_";

/// The separator between key parts in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

/// Loads configuration of type `T` from its defaults, YAML files and environment variables.
///
/// ```
/// use edk_server::config::{ConfigLoader, HttpConfig};
///
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct MyConfig {
///     #[serde(default)]
///     http: HttpConfig,
/// }
///
/// let config: MyConfig = ConfigLoader::new()
///     .env([("EDK_HTTP__LISTEN".to_owned(), "127.0.0.1:9000".to_owned())])
///     .load()?;
/// assert_eq!(config.http.listen.port(), 9000);
///
/// let err = ConfigLoader::new()
///     .env([("EDK_HTTP__LISTEN".to_owned(), "nowhere".to_owned())])
///     .load::<MyConfig>()
///     .unwrap_err();
/// assert!(err.to_string().contains("http.listen"));
/// # Ok::<(), edk_server::config::ConfigError>(())
/// ```
#[derive(Debug, Default)]
pub struct ConfigLoader {
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl ConfigLoader {
    /// A loader with only the built-in defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a YAML file; later files override earlier ones. A missing file is an error.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(path.into());
        self
    }

    /// Adds environment variables (typically `std::env::vars()`); those without the `EDK_`
    /// prefix or without a `__` are ignored. They override every file.
    #[must_use]
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// Loads and validates the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first key that is missing, unknown or invalid, or the file
    /// that could not be read.
    pub fn load<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut figment = Figment::new();
        for file in &self.files {
            if !file.is_file() {
                return Err(ConfigError {
                    key: None,
                    source_name: Some(file.display().to_string()),
                    message: "the file does not exist".to_owned(),
                });
            }
            figment = figment.merge(Yaml::file_exact(file));
        }
        let mut env: Vec<&(String, String)> = self
            .env
            .iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains(ENV_SEPARATOR))
            .collect();
        env.sort();
        let mut origins = Vec::with_capacity(env.len());
        for (name, value) in env {
            let key = env_key(name);
            origins.push((key.clone(), name.clone()));
            let value: Value = value
                .parse()
                .unwrap_or_else(|_| Value::from(value.as_str()));
            let dict: Dict = figment::util::nest(&key, value)
                .into_dict()
                .unwrap_or_default();
            figment = figment.merge(Serialized::defaults(dict));
        }
        // `EDK_KMS__PROVIDERS__0__KIND`: numbered keys address list items.
        let indexed = origins.iter().any(|(key, _)| key.split('.').any(is_index));
        let result = if indexed {
            match figment.extract::<Value>() {
                Ok(merged) => {
                    Figment::from(Serialized::defaults(indexed_to_lists(merged))).extract()
                }
                Err(err) => Err(err),
            }
        } else {
            figment.extract()
        };
        result.map_err(|err| {
            let mut err = ConfigError::from_figment(&err);
            if let Some(key) = &err.key
                && let Some((_, name)) = origins.iter().rev().find(|(origin, _)| origin == key)
            {
                err.source_name = Some(name.clone());
            }
            err
        })
    }
}

/// Whether a key part is a list index (`0`, `1`, ...).
fn is_index(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// Turns every map whose keys are all list indices into a list, in index order.
fn indexed_to_lists(value: Value) -> Value {
    match value {
        Value::Dict(tag, dict) => {
            let dict: Dict = dict
                .into_iter()
                .map(|(key, value)| (key, indexed_to_lists(value)))
                .collect();
            if !dict.is_empty() && dict.keys().all(|key| is_index(key)) {
                let mut items: Vec<(u64, Value)> = dict
                    .into_iter()
                    .map(|(key, value)| (key.parse().unwrap_or(u64::MAX), value))
                    .collect();
                items.sort_by_key(|(index, _)| *index);
                Value::Array(tag, items.into_iter().map(|(_, value)| value).collect())
            } else {
                Value::Dict(tag, dict)
            }
        }
        Value::Array(tag, items) => {
            Value::Array(tag, items.into_iter().map(indexed_to_lists).collect())
        }
        other => other,
    }
}

/// `EDK_HTTP__LISTEN` → `http.listen`.
fn env_key(name: &str) -> String {
    name.trim_start_matches(ENV_PREFIX)
        .split(ENV_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// A configuration that failed to load: one line naming the key and the value's origin.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    key: Option<String>,
    source_name: Option<String>,
    message: String,
}

impl ConfigError {
    fn from_figment(err: &figment::Error) -> Self {
        let key = (!err.path.is_empty()).then(|| err.path.join("."));
        let source_name = err.metadata.as_ref().map(|meta| match &meta.source {
            Some(source) => source.to_string(),
            None => meta.name.to_string(),
        });
        Self {
            key,
            source_name,
            message: err.kind.to_string(),
        }
    }

    /// The dotted path of the offending key, when the failure is about one.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if let Some(key) = &self.key {
            write!(f, " at `{key}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(source) = &self.source_name {
            write!(f, " (from {source})")?;
        }
        Ok(())
    }
}

/// The HTTP listener and the limits every request is held to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes. Default 1 MiB.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: NonZeroUsize,
    /// How long one request may take, in milliseconds. Default 30 s.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: NonZeroU64,
    /// How long a shutdown waits for in-flight requests, in milliseconds. Default 30 s.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_ms: NonZeroU64,
    /// PEM files of CA certificates that the outbound HTTP client (tenants' upstream OpenID
    /// Providers, admin issuers' `jwks_uri`) trusts beside the public web PKI roots it ships
    /// with, each file holding one or more: for a host whose certificate a private CA
    /// issued. Default none.
    #[serde(default)]
    pub outbound_ca_files: Vec<PathBuf>,
}

impl HttpConfig {
    /// The request timeout.
    #[must_use]
    pub const fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.get())
    }

    /// The shutdown grace period.
    #[must_use]
    pub const fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms.get())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit_bytes: default_body_limit(),
            request_timeout_ms: default_request_timeout(),
            shutdown_grace_ms: default_shutdown_grace(),
            outbound_ca_files: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

const fn default_body_limit() -> NonZeroUsize {
    match NonZeroUsize::new(1024 * 1024) {
        Some(value) => value,
        None => NonZeroUsize::MIN,
    }
}

const fn default_request_timeout() -> NonZeroU64 {
    match NonZeroU64::new(30_000) {
        Some(value) => value,
        None => NonZeroU64::MIN,
    }
}

const fn default_shutdown_grace() -> NonZeroU64 {
    match NonZeroU64::new(30_000) {
        Some(value) => value,
        None => NonZeroU64::MIN,
    }
}

/// Logging.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info,edk_kms=debug`. Default `info`.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// `true` writes JSON lines, `false` human-readable text. Unset (the default): text when
    /// standard error is a terminal, JSON lines otherwise.
    #[serde(default)]
    pub json: Option<bool>,
}

impl LogConfig {
    /// Whether to write JSON lines, given whether standard error is a terminal.
    #[must_use]
    pub fn writes_json(&self, stderr_is_terminal: bool) -> bool {
        self.json.unwrap_or(!stderr_is_terminal)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: default_filter(),
            json: None,
        }
    }
}

fn default_filter() -> String {
    "info".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_text_on_a_terminal_and_json_otherwise_unless_forced() {
        let auto = LogConfig::default();
        assert!(!auto.writes_json(true));
        assert!(auto.writes_json(false));
        let forced: LogConfig = serde_json::from_value(serde_json::json!({"json": true})).unwrap();
        assert!(forced.writes_json(true));
        let text: LogConfig = serde_json::from_value(serde_json::json!({"json": false})).unwrap();
        assert!(!text.writes_json(false));
    }

    #[derive(Debug, serde::Deserialize, PartialEq, Eq)]
    #[serde(deny_unknown_fields)]
    struct Lists {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq, Eq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        tags: Vec<String>,
    }

    #[test]
    fn numbered_env_keys_address_list_items_in_index_order() {
        let var = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        let lists: Lists = ConfigLoader::new()
            .env([
                var("EDK_ITEMS__10__NAME", "third"),
                var("EDK_ITEMS__10__TAGS__0", "c"),
                var("EDK_ITEMS__2__NAME", "second"),
                var("EDK_ITEMS__2__TAGS__1", "b2"),
                var("EDK_ITEMS__2__TAGS__0", "b1"),
                var("EDK_ITEMS__0__NAME", "first"),
                var("EDK_ITEMS__0__TAGS__0", "a"),
            ])
            .load()
            .unwrap();
        let names: Vec<&str> = lists.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["first", "second", "third"]);
        assert_eq!(lists.items[1].tags, ["b1", "b2"]);
        let err = ConfigLoader::new()
            .env([
                var("EDK_ITEMS__0__NAME", "x"),
                var("EDK_ITEMS__0__COLOUR", "red"),
            ])
            .load::<Lists>()
            .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn env_names_become_dotted_keys() {
        assert_eq!(env_key("EDK_HTTP__LISTEN"), "http.listen");
        assert_eq!(env_key("EDK_AUTH__LEEWAY_SECS"), "auth.leeway_secs");
    }
}
