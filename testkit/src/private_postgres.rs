//! A PostgreSQL server of one test's own, for tests that stop and restart the database
//! (never the machine's shared server, which other tests use): a cluster created with
//! `initdb` in a temporary directory, served by `pg_ctl` on a free loopback port, with trust
//! authentication for the user `edk`.
//!
//! The binaries are Debian's (`/usr/lib/postgresql/<version>/bin`, package `postgresql`,
//! which `scripts/test` installs); without them [`PrivatePostgres::start`] fails with a
//! message saying so. PostgreSQL refuses to run as root: as root, the cluster belongs to
//! `nobody` and its commands run as that user through `setpriv`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The user the cluster trusts.
const USER: &str = "edk";

/// The uid and gid that own the cluster when the test runs as root (`nobody`, `nogroup`).
const UNPRIVILEGED: u32 = 65534;

/// A running (or stopped) private PostgreSQL server; stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster and starts it, with an empty database `edk`.
    ///
    /// # Panics
    /// When the PostgreSQL binaries are missing, or the cluster cannot be created or started.
    pub fn start() -> Self {
        let bin = binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's initdb and pg_ctl are not installed (looked for \
                 /usr/lib/postgresql/*/bin/initdb); install the Debian package `postgresql` \
                 (scripts/test does)"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("edk-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        let data = dir.path().join("data");
        if is_root() {
            std::os::unix::fs::chown(dir.path(), Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .expect("the cluster directory is given to nobody");
        }
        let port = free_port();
        let mut server = Self {
            bin,
            data,
            port,
            dir,
            running: false,
        };
        server.run(
            "initdb",
            &[
                "-D",
                path(&server.data),
                "-U",
                USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.start_again();
        server.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                USER,
                "edk",
            ],
        );
        server
    }

    /// The URL of the database `edk`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/edk", self.port)
    }

    /// The port it listens on (the same across restarts).
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: connections are cut, as when
    /// the database crashes or its host is lost).
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn stop(&mut self) {
        if self.running {
            self.run(
                "pg_ctl",
                &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
            );
            self.running = false;
        }
    }

    /// Starts the server again on the same port and data.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.data),
                "-l",
                path(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={UNPRIVILEGED}"))
                .arg(format!("--regid={UNPRIVILEGED}"))
                .arg("--clear-groups")
                .arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let binary = self.bin.join("pg_ctl");
            let args = ["-D", path(&self.data), "-m", "immediate", "-w", "stop"];
            let _ = if is_root() {
                Command::new("setpriv")
                    .arg(format!("--reuid={UNPRIVILEGED}"))
                    .arg(format!("--regid={UNPRIVILEGED}"))
                    .arg("--clear-groups")
                    .arg(&binary)
                    .args(args)
                    .output()
            } else {
                Command::new(&binary).args(args).output()
            };
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective user.
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
