//! Locating and running the pinned interop peers that `scripts/test` installs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edk-core sits in the workspace")
        .to_path_buf()
}

/// The Python interpreter of the interop virtualenv.
pub(crate) fn python() -> PathBuf {
    let python = workspace_root().join("target/interop/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs the interop peers",
        python.display()
    );
    python
}

/// The folder holding the Node peers and their `node_modules`.
pub(crate) fn node_dir() -> PathBuf {
    let dir = workspace_root().join("interop/node");
    assert!(
        dir.join("node_modules").exists(),
        "{}/node_modules is missing: run scripts/test, which installs the interop peers",
        dir.display()
    );
    dir
}

/// Runs `program args...` with `stdin`, asserts success and returns stdout.
pub(crate) fn run(program: &Path, args: &[&str], cwd: &Path, stdin: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a script from `interop/python/` with the interop virtualenv.
pub(crate) fn run_python(script: &str, args: &[&str], stdin: &str) -> String {
    let dir = workspace_root().join("interop/python");
    let mut full = vec![script];
    full.extend_from_slice(args);
    run(&python(), &full, &dir, stdin)
}

/// Runs a script from `interop/node/` with the machine's Node.js.
pub(crate) fn run_node(script: &str, args: &[&str], stdin: &str) -> String {
    let dir = node_dir();
    let mut full = vec![script];
    full.extend_from_slice(args);
    run(Path::new("node"), &full, &dir, stdin)
}
