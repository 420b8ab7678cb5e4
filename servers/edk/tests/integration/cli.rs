//! The operator command line, run as the real `edk` binary against an `edk` serving over
//! loopback: every subcommand once with good input, and bad input refused with a message, a
//! non-zero exit code that tells the failure apart, and nothing changed.

use std::sync::Arc;

use edk::EdkConfig;
use edk_core::SystemClock;
use serde_json::{Value, json};

use crate::support::Running;

const VCT: &str = "https://credentials.example/identity";

/// A running `edk` and a home directory without profiles for the command line.
struct Harness {
    running: Running,
    home: tempfile::TempDir,
}

impl std::ops::Deref for Harness {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.running
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {self:?}"))
    }
}

impl Harness {
    async fn start() -> Self {
        Self {
            running: Running::start(&EdkConfig::default(), Arc::new(SystemClock), true).await,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `edk args…` with `token` in `EDK_TOKEN` and the server's URL in `EDK_URL`, in an
    /// environment of its own (a home without profiles).
    async fn edk(&self, args: &[&str], token: Option<&str>) -> Run {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_edk"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("EDK_URL", self.url(""))
            .env("NO_PROXY", "*");
        if let Some(token) = token {
            command.env("EDK_TOKEN", token);
        }
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_tenants_from_the_command_line() {
    let h = Harness::start().await;
    let operator = h
        .operator_token("platform:tenants:read platform:tenants:write tenant:audit:read")
        .await;
    let op = Some(operator.as_str());
    let port = h.server.addr().port().to_string();
    let bind = |service: &str, target: &str| format!("{service}={target}");

    let created = h
        .edk(
            &[
                "tenants",
                "create",
                "--slug",
                "acme",
                "--name",
                "Acme",
                "--bind",
                &bind("as", &format!("localhost:{port}/acme")),
                "--bind",
                &bind("did", &format!("acme.localhost:{port}")),
                "--dangerous-loopback-http",
                "--output",
                "json",
            ],
            op,
        )
        .await;
    assert_eq!(created.code, 0, "{created:?}");
    let tenant = created.json();
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["status"], "active");
    // Progress names each onboarding step on standard error.
    for step in [
        "registry",
        "kms_aliases",
        "bindings",
        "authorization_server",
    ] {
        assert!(created.stderr.contains(step), "{created:?}");
    }
    let id = tenant["id"].as_str().unwrap();

    let listed = h.edk(&["tenants", "list"], op).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.starts_with("ID"), "{listed:?}");
    let acme_row = listed.stdout.lines().find(|l| l.contains("acme")).unwrap();
    assert!(
        acme_row.contains(id) && acme_row.contains("active"),
        "{listed:?}"
    );

    let suspended = h
        .edk(&["tenants", "suspend", id, "--output", "json"], op)
        .await;
    assert_eq!(suspended.code, 0, "{suspended:?}");
    assert_eq!(suspended.json()["status"], "suspended");
    let resumed = h
        .edk(&["tenants", "resume", id, "--output", "json"], op)
        .await;
    assert_eq!(resumed.json()["status"], "active");

    // The new tenant's audit chain through the platform: its keys were made by onboarding.
    let events = h
        .edk(
            &[
                "audit",
                "events",
                "--tenant",
                id,
                "--operation",
                "create_key",
                "--limit",
                "2",
            ],
            op,
        )
        .await;
    assert_eq!(events.code, 0, "{events:?}");
    assert!(events.stdout.starts_with("SEQ"), "{events:?}");
    assert!(events.stdout.contains("create_key"), "{events:?}");
    assert!(events.stdout.contains("next page: --after 2"), "{events:?}");
    let page = h
        .edk(
            &[
                "audit", "events", "--tenant", id, "--after", "2", "--output", "json",
            ],
            op,
        )
        .await
        .json();
    assert_eq!(page["events"][0]["seq"], 3, "{page}");
    let verified = h
        .edk(&["audit", "verify", "--tenant", id, "--output", "json"], op)
        .await;
    assert_eq!(verified.code, 0, "{verified:?}");
    assert_eq!(verified.json()["intact"], true);
    let unfiltered = h.edk(&["audit", "events", "--operation", "sign"], op).await;
    assert_eq!(unfiltered.code, 2, "{unfiltered:?}");
    assert!(unfiltered.stderr.contains("--tenant"), "{unfiltered:?}");
    let bad_filter = h
        .edk(
            &["audit", "events", "--tenant", id, "--outcome", "maybe"],
            op,
        )
        .await;
    assert_eq!(bad_filter.code, 1, "{bad_filter:?}");
    assert!(bad_filter.stderr.contains("outcome"), "{bad_filter:?}");

    // Refused by the server: a slug the rules refuse, a slug taken, a tenant that does not
    // exist, and a token the server did not issue. Each exits 1 and says why.
    let before = h
        .edk(&["tenants", "list", "--output", "json"], op)
        .await
        .json();
    for (args, token) in [
        (
            vec![
                "tenants",
                "create",
                "--slug",
                "Not A Slug",
                "--bind",
                "as=localhost",
            ],
            op,
        ),
        (
            vec![
                "tenants",
                "create",
                "--slug",
                "acme",
                "--bind",
                "as=localhost",
            ],
            op,
        ),
        (
            vec!["tenants", "suspend", "00000000-0000-0000-0000-000000000000"],
            op,
        ),
        (vec!["tenants", "list"], Some("not-a-token")),
    ] {
        let run = h.edk(&args, token).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains("edk: the server refused"), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // Refused before anything is sent: a binding that does not parse, no token, no URL.
    let bad_binding = h
        .edk(
            &[
                "tenants",
                "create",
                "--slug",
                "b",
                "--bind",
                "kms=localhost",
            ],
            op,
        )
        .await;
    assert_eq!(bad_binding.code, 2, "{bad_binding:?}");
    assert!(bad_binding.stderr.contains("--bind"), "{bad_binding:?}");
    let no_token = h.edk(&["tenants", "list"], None).await;
    assert_eq!(no_token.code, 2, "{no_token:?}");
    assert!(no_token.stderr.contains("no token"), "{no_token:?}");
    let missing = h.edk(&["tenants", "create", "--slug", "x"], op).await;
    assert_eq!(missing.code, 2, "clap's usage error: {missing:?}");
    // Nothing changed.
    let after = h
        .edk(&["tenants", "list", "--output", "json"], op)
        .await
        .json();
    assert_eq!(before, after);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_administrators_script_keys_dids_clients_offers_requests_and_audit() {
    let h = Harness::start().await;
    let token = Some(h.token.as_str());

    // Keys: create, list, rotate; a second create of the alias is refused.
    let key = h
        .edk(
            &[
                "keys",
                "create",
                "--alias",
                "demo.signing",
                "--output",
                "json",
            ],
            token,
        )
        .await;
    assert_eq!(key.code, 0, "{key:?}");
    assert_eq!(key.json()["alias"], "demo.signing");
    assert_eq!(key.json()["algorithm"], "ES256");
    let listed = h.edk(&["keys", "list"], token).await;
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("demo.signing") && l.contains("ES256")),
        "{listed:?}"
    );
    let rotated = h
        .edk(
            &["keys", "rotate", "demo.signing", "--output", "json"],
            token,
        )
        .await;
    assert_eq!(rotated.code, 0, "{rotated:?}");
    assert_eq!(rotated.json()["versions"].as_array().unwrap().len(), 2);
    let again = h
        .edk(&["keys", "create", "--alias", "demo.signing"], token)
        .await;
    assert_eq!(again.code, 1, "{again:?}");
    let (_, keys) = h
        .admin(reqwest::Method::GET, "/api/kms/v1/keys/demo.signing", None)
        .await;
    assert_eq!(keys["versions"].as_array().unwrap().len(), 2, "unchanged");

    // DIDs: create a did:key, resolve it; a non-DID is refused before anything is sent.
    let did = h
        .edk(
            &["dids", "create", "--method", "key", "--output", "json"],
            token,
        )
        .await;
    assert_eq!(did.code, 0, "{did:?}");
    let did = did.json()["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:key:"), "{did}");
    let resolved = h.edk(&["dids", "resolve", &did], None).await;
    assert_eq!(resolved.code, 0, "{resolved:?}");
    let document: Value = serde_json::from_str(&resolved.stdout).unwrap();
    assert_eq!(document["id"], did);
    let not_a_did = h.edk(&["dids", "resolve", "example.com"], None).await;
    assert_eq!(not_a_did.code, 2, "{not_a_did:?}");

    // Clients: the secret is shown once; the same id again is refused.
    let args = [
        "clients",
        "create",
        "--client-id",
        "backend",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_post",
    ];
    let client = h.edk(&args, token).await;
    assert_eq!(client.code, 0, "{client:?}");
    assert!(
        client.stdout.contains("client_id      backend"),
        "{client:?}"
    );
    assert!(client.stdout.contains("client_secret"), "{client:?}");
    let twice = h.edk(&args, token).await;
    assert_eq!(twice.code, 1, "{twice:?}");

    // Offers: a configuration, then an offer with its URI and a QR code in the terminal.
    let (status, body) = h
        .admin(
            reqwest::Method::PUT,
            "/api/oid4vci/v1/configurations/identity",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": VCT,
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "credential_signing_alg_values_supported": ["ES256"],
                    "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
                },
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = h.home.path().join("claims.json");
    std::fs::write(&claims, r#"{"identity": {"given_name": "Erika"}}"#).unwrap();
    let offer = h
        .edk(
            &[
                "offers",
                "create",
                "--configuration",
                "identity",
                "--claims",
                &format!("@{}", claims.display()),
                "--tx-code-digits",
                "4",
            ],
            token,
        )
        .await;
    assert_eq!(offer.code, 0, "{offer:?}");
    assert!(
        offer.stdout.contains("openid-credential-offer://"),
        "{offer:?}"
    );
    let tx_code = offer
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("tx_code"))
        .unwrap()
        .trim();
    assert_eq!(tx_code.len(), 4, "{offer:?}");
    assert!(
        offer.stdout.contains('█') || offer.stdout.contains('▀'),
        "{offer:?}"
    );
    let unknown = h
        .edk(&["offers", "create", "--configuration", "nothing"], token)
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    let bad_claims = h
        .edk(
            &[
                "offers",
                "create",
                "--configuration",
                "identity",
                "--claims",
                "{not json",
            ],
            token,
        )
        .await;
    assert_eq!(bad_claims.code, 2, "{bad_claims:?}");

    // Requests: by a DCQL query in the command line.
    let query = json!({"credentials": [{
        "id": "identity", "format": "dc+sd-jwt",
        "meta": {"vct_values": [VCT]}, "claims": [{"path": ["given_name"]}],
    }]})
    .to_string();
    let request = h
        .edk(
            &[
                "requests",
                "create",
                "--dcql",
                &query,
                "--client-id-prefix",
                "redirect_uri",
                "--no-qr",
                "--output",
                "json",
            ],
            token,
        )
        .await;
    assert_eq!(request.code, 0, "{request:?}");
    let made = request.json();
    assert!(
        made["authorization_request_uri"]
            .as_str()
            .unwrap()
            .starts_with("openid4vp://"),
        "{made}"
    );
    let (status, session) = h
        .admin(
            reqwest::Method::GET,
            &format!(
                "/api/oid4vp/v1/sessions/{}",
                made["session_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let no_query = h
        .edk(&["requests", "create", "--query-id", "nothing"], token)
        .await;
    assert_eq!(no_query.code, 1, "{no_query:?}");

    // Audit: the chain holds; after a record is altered in the database it does not.
    let intact = h.edk(&["audit", "verify", "--output", "json"], token).await;
    assert_eq!(intact.code, 0, "{intact:?}");
    assert_eq!(intact.json()["intact"], true);
    assert!(intact.json()["records"].as_u64().unwrap() > 0);
    tamper_with_the_audit_chain(&h.data()).await;
    let broken = h.edk(&["audit", "verify"], token).await;
    assert_eq!(broken.code, 4, "{broken:?}");
    assert!(
        broken.stderr.contains("audit chain is broken"),
        "{broken:?}"
    );

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_come_from_profiles_and_failures_exit_apart() {
    let h = Harness::start().await;
    // A profile file with the URL and a token file.
    let token_file = h.home.path().join("token");
    std::fs::write(&token_file, format!("{}\n", h.token)).unwrap();
    let profiles = h.home.path().join("profiles.yaml");
    std::fs::write(
        &profiles,
        format!(
            "profiles:\n  local:\n    url: {}\n    token_file: {}\n",
            h.url(""),
            token_file.display()
        ),
    )
    .unwrap();
    let profile_file = profiles.to_str().unwrap();
    let by_profile = h
        .edk(
            &[
                "keys",
                "list",
                "--profile-file",
                profile_file,
                "--profile",
                "local",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(by_profile.code, 0, "{by_profile:?}");
    assert!(by_profile.json()["keys"].is_array());
    let unknown_profile = h
        .edk(
            &[
                "keys",
                "list",
                "--profile-file",
                profile_file,
                "--profile",
                "prod",
            ],
            None,
        )
        .await;
    assert_eq!(unknown_profile.code, 2, "{unknown_profile:?}");
    assert!(
        unknown_profile.stderr.contains("\"prod\""),
        "{unknown_profile:?}"
    );

    // Nobody listening: exit 3, and the token never appears in what is printed.
    let unreachable = h
        .edk(
            &["keys", "list", "--url", "http://127.0.0.1:9"],
            Some(&h.token),
        )
        .await;
    assert_eq!(unreachable.code, 3, "{unreachable:?}");
    assert!(!unreachable.stderr.contains(&h.token), "{unreachable:?}");
    let not_http = h
        .edk(&["keys", "list", "--url", "ftp://x"], Some(&h.token))
        .await;
    assert_eq!(not_http.code, 2, "{not_http:?}");
    let forged = h.edk(&["keys", "list"], Some("not-a-token")).await;
    assert_eq!(forged.code, 1, "{forged:?}");

    // Shell completion.
    let completion = h.edk(&["completions", "bash"], None).await;
    assert_eq!(completion.code, 0, "{completion:?}");
    assert!(completion.stdout.contains("tenants") && completion.stdout.contains("_edk"));
    h.stop().await;
}

/// Changes the outcome of the first KMS audit record of the default tenant in `edk`'s SQLite
/// databases under `data` (one file per tenant in `db/tenants`).
async fn tamper_with_the_audit_chain(data: &std::path::Path) {
    use sqlx::Connection as _;
    let databases = data.join("db").join("tenants");
    let mut changed = 0;
    for entry in std::fs::read_dir(&databases).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("db") {
            continue;
        }
        let url = format!("sqlite://{}", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let exists: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'kms_audit_event'",
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        if exists.is_some() {
            changed += sqlx::query(
                "UPDATE kms_audit_event SET outcome = 'tampered' WHERE seq = (SELECT MIN(seq) FROM kms_audit_event)",
            )
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected();
        }
        conn.close().await.unwrap();
    }
    assert!(
        changed > 0,
        "no audit record found under {}",
        databases.display()
    );
}
