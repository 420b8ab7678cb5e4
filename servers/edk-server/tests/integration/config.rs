use std::io::Write;

use serde::Deserialize;

use edk_server::{AuthConfig, ConfigLoader, HttpConfig, LogConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestConfig {
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    log: LogConfig,
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn var(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[test]
fn defaults_apply_without_files_or_variables() {
    let config: TestConfig = ConfigLoader::new().load().unwrap();
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.http.body_limit_bytes.get(), 1024 * 1024);
    assert_eq!(config.auth.audience, "edk-admin");
    assert_eq!(config.log.json, None);
}

#[test]
fn later_layers_override_earlier_ones() {
    let base =
        yaml("http:\n  listen: 0.0.0.0:9000\n  body_limit_bytes: 100\nlog:\n  filter: debug\n");
    let overlay = yaml("http:\n  body_limit_bytes: 200\n");
    let config: TestConfig = ConfigLoader::new()
        .file(base.path())
        .file(overlay.path())
        .env([
            var("EDK_HTTP__LISTEN", "127.0.0.1:7000"),
            var("EDK_LOG__JSON", "false"),
            var("EDK_LISTEN", "ignored, not a config key"),
            var("OTHER__THING", "ignored"),
        ])
        .load()
        .unwrap();
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:7000");
    assert_eq!(config.http.body_limit_bytes.get(), 200);
    assert_eq!(config.log.filter, "debug");
    assert_eq!(config.log.json, Some(false));
}

#[test]
fn bad_env_value_names_its_key_and_variable() {
    let err = ConfigLoader::new()
        .env([var("EDK_HTTP__REQUEST_TIMEOUT_MS", "soon")])
        .load::<TestConfig>()
        .unwrap_err();
    assert_eq!(err.key(), Some("http.request_timeout_ms"));
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("http.request_timeout_ms"), "{line}");
    assert!(line.contains("EDK_HTTP__REQUEST_TIMEOUT_MS"), "{line}");
}

#[test]
fn bad_file_value_names_its_key_and_file() {
    let file = yaml("http:\n  body_limit_bytes: 0\n");
    let err = ConfigLoader::new()
        .file(file.path())
        .load::<TestConfig>()
        .unwrap_err();
    let line = err.to_string();
    assert!(line.contains("http.body_limit_bytes"), "{line}");
    assert!(line.contains(&file.path().display().to_string()), "{line}");
}

#[test]
fn unknown_key_is_refused() {
    let file = yaml("http:\n  listn: 127.0.0.1:1\n");
    let err = ConfigLoader::new()
        .file(file.path())
        .load::<TestConfig>()
        .unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");
}

#[test]
fn missing_file_is_an_error() {
    let err = ConfigLoader::new()
        .file("/nonexistent/edk.yaml")
        .load::<TestConfig>()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/edk.yaml"), "{err}");
}
