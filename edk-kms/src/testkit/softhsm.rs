//! A throw-away SoftHSM2 token per test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;
use tempfile::TempDir;

use crate::Error;
use crate::provider::ProviderId;
use crate::provider::pkcs11::{Pkcs11Provider, Pkcs11ProviderConfig};

/// Where Debian installs the SoftHSM2 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token in its own temporary directory, with its own configuration file.
///
/// SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialised, and a module is
/// initialised once per process. So that tests running as threads of one process (`cargo
/// test`) each get their own token, every connection loads its own copy of the module, and
/// the variable is set only while that copy initialises, under `temp_env`'s global lock.
/// Under nextest (a process per test) this is merely redundant.
#[derive(Debug)]
pub struct SoftHsm {
    dir: TempDir,
    label: String,
    copies: AtomicUsize,
}

impl SoftHsm {
    /// The user PIN of every test token.
    pub const PIN: &str = "1234";
    /// The security officer PIN of every test token.
    pub const SO_PIN: &str = "5678";

    /// Creates the directory, the configuration and a token labelled `label`.
    ///
    /// # Panics
    /// When SoftHSM2 is not installed or the token cannot be initialised.
    #[must_use]
    pub fn new(label: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let hsm = Self {
            dir,
            label: label.to_owned(),
            copies: AtomicUsize::new(0),
        };
        std::fs::create_dir_all(hsm.token_dir()).expect("token directory");
        std::fs::write(
            hsm.conf(),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                hsm.token_dir().display()
            ),
        )
        .expect("SoftHSM2 configuration");
        hsm.init_token();
        hsm
    }

    /// (Re-)initialises the token: a new, empty token with the same label.
    ///
    /// # Panics
    /// When `softhsm2-util` fails.
    pub fn init_token(&self) {
        let status = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", &self.label])
            .args(["--pin", Self::PIN, "--so-pin", Self::SO_PIN])
            .output()
            .expect("softhsm2-util is installed");
        assert!(
            status.status.success(),
            "softhsm2-util failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }

    /// Deletes the token's files, as if the token had been pulled out.
    ///
    /// # Panics
    /// When the directory cannot be emptied.
    pub fn remove_token(&self) {
        std::fs::remove_dir_all(self.token_dir()).expect("token directory removed");
        std::fs::create_dir_all(self.token_dir()).expect("token directory recreated");
    }

    /// The token label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The directory holding the token's files.
    #[must_use]
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// A provider configuration for this token (with a fresh module copy), not hardware-backed.
    ///
    /// # Panics
    /// When the module cannot be copied.
    #[must_use]
    pub fn config(&self, id: &str) -> Pkcs11ProviderConfig {
        Pkcs11ProviderConfig::new(
            ProviderId::new(id).expect("provider id"),
            self.module_copy(),
            &self.label,
            SecretString::from(Self::PIN),
        )
        .expect("configuration")
        .with_hardware_backing(false)
    }

    /// Connects a provider with `config` while `SOFTHSM2_CONF` names this token's configuration.
    ///
    /// # Errors
    /// As [`Pkcs11Provider::connect`].
    pub async fn connect(&self, config: Pkcs11ProviderConfig) -> Result<Pkcs11Provider, Error> {
        let conf = self.conf();
        let id = config.id().clone();
        tokio::task::spawn_blocking(move || {
            temp_env::with_var("SOFTHSM2_CONF", Some(conf), || {
                Pkcs11Provider::connect_blocking(config)
            })
        })
        .await
        .map_err(|err| Error::internal(&id, err))?
    }

    /// A raw, logged-in session on the token through another copy of the module, for tests
    /// that look at objects behind the provider's back. Keep the context alive with it.
    ///
    /// # Panics
    /// When the token cannot be opened.
    #[must_use]
    pub fn raw_session(&self) -> (Pkcs11, Session) {
        let module = self.module_copy();
        temp_env::with_var("SOFTHSM2_CONF", Some(self.conf()), || {
            let ctx = Pkcs11::new(&module).expect("module");
            ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
                .expect("initialise");
            let slot = ctx
                .get_slots_with_token()
                .expect("slots")
                .into_iter()
                .find(|slot| {
                    ctx.get_token_info(*slot)
                        .is_ok_and(|info| info.label().trim_end() == self.label)
                })
                .expect("the token");
            let session = ctx.open_rw_session(slot).expect("session");
            session
                .login(UserType::User, Some(&SecretString::from(Self::PIN)))
                .expect("login");
            (ctx, session)
        })
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn module_copy(&self) -> PathBuf {
        let n = self.copies.fetch_add(1, Ordering::Relaxed);
        let copy = self.dir.path().join(format!("libsofthsm2-{n}.so"));
        std::fs::copy(Path::new(SOFTHSM2_MODULE), &copy).expect("copy of the SoftHSM2 module");
        copy
    }
}
