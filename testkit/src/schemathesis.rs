//! Runs the pinned schemathesis CLI (`interop/python/requirements.txt`, installed by
//! `scripts/test` into `target/interop/venv`) with EDK's hooks
//! (`interop/python/schemathesis_hooks.py`), and reads back every answer it got.
//!
//! The hooks record each call's operation and status, so a test can prove that the run got
//! past authentication on each operation, replace about half of the generated values of
//! named path parameters and body fields by resources that exist (`known`), and add request
//! body examples to the document (`examples`), which the examples phase sends first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The answers one operation got during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    /// Calls made.
    pub calls: u64,
    /// Calls answered with something other than `401`.
    pub authenticated: u64,
    /// Calls answered with a `2xx`.
    pub successes: u64,
}

/// What a run printed and got.
#[derive(Debug)]
pub struct Run {
    /// Whether schemathesis exited with 0 (no check failed).
    pub success: bool,
    /// Its standard output and error.
    pub output: String,
    /// The answers per operation (`GET /api/kms/v1/keys/{alias}`).
    pub answers: BTreeMap<String, Answers>,
}

impl Run {
    /// Calls made in all.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.answers.values().map(|a| a.calls).sum()
    }

    /// The test cases schemathesis reports as generated (its `N generated` summary line).
    #[must_use]
    pub fn generated(&self) -> Option<u64> {
        self.output
            .lines()
            .filter_map(|line| line.trim().split_once(" generated"))
            .find_map(|(count, _)| count.trim().parse().ok())
    }

    /// One line per operation of `expected`: calls, answers past authentication, 2xx answers;
    /// then schemathesis's own summary and the totals.
    #[must_use]
    pub fn summary(&self, expected: &[String]) -> String {
        let mut out = String::new();
        for op in expected {
            let a = self.answers.get(op).copied().unwrap_or_default();
            out.push_str(&format!(
                "{op}: {} calls, {} past authentication, {} 2xx\n",
                a.calls, a.authenticated, a.successes
            ));
        }
        if let Some(at) = self.output.find("SUMMARY") {
            out.push_str(&self.output[at..]);
            out.push('\n');
        }
        out.push_str(&format!(
            "{} operations, {} calls in all (undeclared methods included), {} test cases generated",
            expected.len(),
            self.calls(),
            self.generated()
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        ));
        out
    }

    /// The operations among `expected` that never got an answer other than `401`.
    #[must_use]
    pub fn unauthenticated<'a>(&self, expected: &'a [String]) -> Vec<&'a str> {
        expected
            .iter()
            .filter(|op| self.answers.get(*op).is_none_or(|a| a.authenticated == 0))
            .map(String::as_str)
            .collect()
    }
}

/// Runs schemathesis over the document at `openapi_url` the way the servers' suites do: every
/// check, `config` (a `schemathesis.toml` body) for what the checks should expect beyond their
/// defaults, `token` as the bearer of every call, 30 examples per operation and phase, a fixed
/// seed, one worker, and `known` and `examples` as for [`run`]. Blocking, like [`run`].
///
/// # Panics
/// As [`run`], and when the temporary configuration file cannot be written.
#[must_use]
pub fn run_document(
    config: &str,
    openapi_url: &str,
    token: &str,
    known: &Value,
    examples: &Value,
) -> Run {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config).expect("configuration written");
    let args: Vec<String> = [
        "--config-file",
        config_file.to_str().expect("a UTF-8 temporary path"),
        "run",
        openapi_url,
        "--checks",
        "all",
        "--max-examples",
        "30",
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--seed",
        "1",
        // One worker: Hypothesis describes strategies with `ast.parse`, which CPython 3.11
        // does not survive from two threads at once.
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]
    .map(str::to_owned)
    .to_vec();
    run(&args, known, examples)
}

/// The operations of `document` (an OpenAPI document) that require authentication, labelled
/// as [`Run::answers`] labels them.
#[must_use]
pub fn secured_operations(document: &Value) -> Vec<String> {
    crate::openapi::operations(document)
        .into_iter()
        .filter(|op| op.secured)
        .map(|op| op.label())
        .collect()
}

/// The workspace root.
#[must_use]
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `schemathesis <args>` (blocking: call it from `spawn_blocking`) with EDK's hooks,
/// `known` (`{"alias": ["issuer.credential-signing"], "body key": [...]}`) as the existing
/// resources, and `examples` (`{"POST /api/kms/v1/keys": {...}}`) as request body examples
/// added to the document, which the examples phase sends.
///
/// # Panics
/// When the CLI is not installed (`scripts/test --setup-only` installs it) or cannot run.
#[must_use]
pub fn run(args: &[String], known: &Value, examples: &Value) -> Run {
    let root = workspace_root();
    let cli = root.join("target/interop/venv/bin/schemathesis");
    assert!(
        cli.exists(),
        "{} is missing: run scripts/test (or scripts/test --setup-only) to install the pinned Python peers",
        cli.display()
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = dir.path().join("answers.jsonl");
    let output = Command::new(cli)
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env(
            "SCHEMATHESIS_HOOKS",
            root.join("interop/python/schemathesis_hooks.py"),
        )
        .env("EDK_SCHEMATHESIS_LOG", &log)
        .env("EDK_SCHEMATHESIS_KNOWN", known.to_string())
        .env("EDK_SCHEMATHESIS_EXAMPLES", examples.to_string())
        .output()
        .expect("schemathesis runs");
    let mut answers: BTreeMap<String, Answers> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(op), Some(status)) = (record["operation"].as_str(), record["status"].as_u64())
        else {
            continue;
        };
        let entry = answers.entry(op.to_owned()).or_default();
        entry.calls += 1;
        if status != 401 {
            entry.authenticated += 1;
        }
        if (200..300).contains(&status) {
            entry.successes += 1;
        }
    }
    Run {
        success: output.status.success(),
        output: format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        answers,
    }
}
