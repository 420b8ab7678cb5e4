use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const EDK: &str = env!("CARGO_BIN_EXE_edk");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(EDK)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("EDK_LISTEN")
        .env_remove("EDK_DATA_DIR")
        .env_remove("EDK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the JSON log on stderr until the server says it is serving.
fn wait_until_serving(child: &mut Child) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("edk exited before serving").unwrap();
        if line.contains("\"serving\"") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
}

/// The claims of a compact JWS, unverified.
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn binary_writes_the_token_to_a_private_file_once_and_serves_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    edk_server::install_crypto_provider();
    let client = reqwest::Client::builder().build().unwrap();

    let port = free_port();
    let mut child = start(&data_dir, port);
    wait_until_serving(&mut child);
    let token_file = data_dir.join("bootstrap-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let bootstrap = claims(&token);
    assert_eq!(
        bootstrap["exp"].as_i64().unwrap() - bootstrap["iat"].as_i64().unwrap(),
        12 * 3600,
        "the bootstrap token lives twelve hours"
    );
    let base = format!("http://127.0.0.1:{port}");
    let live = client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let providers = client
        .get(format!("{base}/api/kms/v1/providers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(providers.status(), 200);
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains(&token),
        "the token reached standard output"
    );

    let port = free_port();
    let mut child = start(&data_dir, port);
    wait_until_serving(&mut child);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        token,
        "a restart mints no new bootstrap token"
    );
    let providers = client
        .get(format!("http://127.0.0.1:{port}/api/kms/v1/providers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(providers.status(), 200, "the token outlives a restart");

    // `edk admin-token` mints a fresh token from the bootstrap key, with the scopes asked for.
    let minted = Command::new(EDK)
        .args(["admin-token", "--ttl-secs", "120", "--scope", "kms:read"])
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("EDK_DATA_DIR")
        .env_remove("EDK_CONFIG")
        .env("EDK_LOG__FILTER", "warn")
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let fresh = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    assert_ne!(fresh, token);
    let fresh_claims = claims(&fresh);
    assert_eq!(fresh_claims["scope"], "kms:read");
    assert_eq!(
        fresh_claims["exp"].as_i64().unwrap() - fresh_claims["iat"].as_i64().unwrap(),
        120
    );
    let read = client
        .get(format!("http://127.0.0.1:{port}/api/kms/v1/providers"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let write = client
        .post(format!("http://127.0.0.1:{port}/api/kms/v1/keys"))
        .bearer_auth(&fresh)
        .json(&serde_json::json!({"alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403, "a kms:read token cannot create keys");
    let unknown = Command::new(EDK)
        .args(["admin-token", "--scope", "everything"])
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("EDK_DATA_DIR")
        .env_remove("EDK_CONFIG")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8(unknown.stderr)
            .unwrap()
            .contains("unknown scope `everything`")
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn help_exits_zero_and_names_the_options() {
    let output = Command::new(EDK).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--listen",
        "EDK_LISTEN",
        "--data-dir",
        "EDK_DATA_DIR",
        "--config",
    ] {
        assert!(help.contains(needle), "{needle} missing from {help}");
    }
}

#[test]
fn invalid_configuration_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(EDK)
        .arg("--data-dir")
        .arg(dir.path())
        .env("EDK_HTTP__BODY_LIMIT_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("http.body_limit_bytes"), "{stderr}");
    assert!(stderr.contains("EDK_HTTP__BODY_LIMIT_BYTES"), "{stderr}");
}
