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

#[tokio::test]
async fn binary_prints_the_token_once_and_serves_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    edk_server::install_crypto_provider();
    let client = reqwest::Client::builder().build().unwrap();

    let port = free_port();
    let mut child = start(&data_dir, port);
    let stdout = child.stdout.take().unwrap();
    let mut stdout_lines = BufReader::new(stdout).lines();
    let first_line = stdout_lines.next().unwrap().unwrap();
    std::thread::spawn(move || stdout_lines.for_each(drop));
    let token = first_line
        .split_once("first start): ")
        .map(|(_, token)| token.trim().to_owned())
        .expect("a bootstrap token line");
    wait_until_serving(&mut child);
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
    child.wait().unwrap();

    let port = free_port();
    let mut child = start(&data_dir, port);
    wait_until_serving(&mut child);
    let providers = client
        .get(format!("http://127.0.0.1:{port}/api/kms/v1/providers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(providers.status(), 200, "the token outlives a restart");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("token"), "printed again: {stdout}");
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
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("http.body_limit_bytes"), "{stderr}");
    assert!(stderr.contains("EDK_HTTP__BODY_LIMIT_BYTES"), "{stderr}");
}
