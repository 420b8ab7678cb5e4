//! Running the pinned Python interop peers that `scripts/test` installs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edk-did sits in the workspace")
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

/// Runs `python -m module args...` in `cwd`, asserts success and returns stdout.
pub(crate) fn python_module(module: &str, args: &[&str], cwd: &Path) -> String {
    let output = Command::new(python())
        .arg("-m")
        .arg(module)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|err| panic!("cannot start python: {err}"));
    assert!(
        output.status.success(),
        "python -m {module} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
