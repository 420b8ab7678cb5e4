//! `moto` in server mode (PyPI `moto[server]`, pinned in `interop/python/requirements.txt` and
//! installed by `scripts/test` into `target/interop/venv`): an AWS emulator on `127.0.0.1` and
//! a free port, killed when the value is dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

impl MotoServer {
    /// Starts `moto_server` and waits until it accepts connections (at most 30 s).
    ///
    /// # Panics
    /// When the interop virtualenv is missing or the server does not come up.
    pub async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let program = root.join("target/interop/venv/bin/moto_server");
        assert!(
            program.exists(),
            "{} is missing: run scripts/test --setup-only, which installs the interop peers",
            program.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto_server exited with {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("moto_server did not listen on {addr} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, addr }
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
