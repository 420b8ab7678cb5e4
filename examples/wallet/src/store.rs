//! The wallet's store: one JSON file holding the wallet key (its DPoP key) and the
//! credentials received, each with its own holder key. The file holds private keys: it is
//! created with mode 0600 on Unix and replaced atomically on every change.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use edk_core::jose::{Algorithm, Jwk, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One credential the wallet holds.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredCredential {
    /// The wallet's name for it (a UUID).
    pub(crate) id: String,
    /// The format: `dc+sd-jwt`.
    pub(crate) format: String,
    /// Its `vct`.
    pub(crate) vct: String,
    /// The credential issuer it came from.
    pub(crate) issuer: String,
    /// The configuration of the issuer it was issued under.
    pub(crate) configuration_id: String,
    /// When it was received (seconds since the epoch).
    pub(crate) received_at: i64,
    /// Its claims with every disclosure applied, as checked on receipt.
    pub(crate) claims: Map<String, Value>,
    /// The SD-JWT as issued, every disclosure included.
    pub(crate) sd_jwt: String,
    /// The private key the credential is bound to (`cnf.jwk`).
    holder_key: Jwk,
}

impl StoredCredential {
    /// A credential to store.
    pub(crate) fn new(
        received: ReceivedCredential,
        holder_key: &SigningKey,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: uuid::Uuid::new_v4().to_string(),
            format: received.format,
            vct: received.vct,
            issuer: received.issuer,
            configuration_id: received.configuration_id,
            received_at: received.received_at,
            claims: received.claims,
            sd_jwt: received.sd_jwt,
            holder_key: holder_key
                .to_jwk()
                .context("cannot export the holder key")?,
        })
    }

    /// The key the credential is bound to.
    pub(crate) fn holder_key(&self) -> anyhow::Result<SigningKey> {
        SigningKey::from_jwk(&self.holder_key, Some(Algorithm::Es256))
            .context("the store holds a broken holder key")
    }
}

/// What [`StoredCredential::new`] stores of a credential just received and checked. (No
/// `Debug`: it holds the credential and the person's claims.)
pub(crate) struct ReceivedCredential {
    /// As [`StoredCredential::format`].
    pub(crate) format: String,
    /// As [`StoredCredential::vct`].
    pub(crate) vct: String,
    /// As [`StoredCredential::issuer`].
    pub(crate) issuer: String,
    /// As [`StoredCredential::configuration_id`].
    pub(crate) configuration_id: String,
    /// As [`StoredCredential::received_at`].
    pub(crate) received_at: i64,
    /// As [`StoredCredential::claims`].
    pub(crate) claims: Map<String, Value>,
    /// As [`StoredCredential::sd_jwt`].
    pub(crate) sd_jwt: String,
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("id", &self.id)
            .field("vct", &self.vct)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The file's contents.
#[derive(Serialize, Deserialize)]
struct Contents {
    /// The wallet key: it signs DPoP proofs.
    wallet_key: Jwk,
    /// The credentials, oldest first.
    credentials: Vec<StoredCredential>,
}

/// The store, loaded from its file.
pub(crate) struct Store {
    path: PathBuf,
    contents: Contents,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("credentials", &self.contents.credentials.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, or a new one (with a fresh wallet key) when the file does
    /// not exist; a new store is written only by [`Self::save`].
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let contents = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a wallet store", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Contents {
                wallet_key: SigningKey::generate(Algorithm::Es256)
                    .and_then(|key| key.to_jwk())
                    .context("cannot make the wallet key")?,
                credentials: Vec::new(),
            },
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Ok(Self {
            path: path.to_owned(),
            contents,
        })
    }

    /// The wallet key (for DPoP).
    pub(crate) fn wallet_key(&self) -> anyhow::Result<SigningKey> {
        SigningKey::from_jwk(&self.contents.wallet_key, Some(Algorithm::Es256))
            .context("the store holds a broken wallet key")
    }

    /// The credentials, oldest first.
    pub(crate) fn credentials(&self) -> &[StoredCredential] {
        &self.contents.credentials
    }

    /// Adds `credential` and writes the store.
    pub(crate) fn add(&mut self, credential: StoredCredential) -> anyhow::Result<()> {
        self.contents.credentials.push(credential);
        self.save()
    }

    /// Writes the store: to a temporary file beside it (mode 0600), then renamed over it.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let Some(name) = self.path.file_name() else {
            bail!("{} is not a file name", self.path.display());
        };
        let mut temporary = name.to_owned();
        temporary.push(".tmp");
        let temporary = dir.join(temporary);
        let bytes = serde_json::to_vec_pretty(&self.contents)?;
        write_private(&temporary, &bytes)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The default store: `edk-wallet/wallet.json` under the user's data directory
/// (`$XDG_DATA_HOME`, else `~/.local/share`; `%APPDATA%` on Windows).
pub(crate) fn default_path() -> anyhow::Result<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .context("no data directory (set HOME or XDG_DATA_HOME, or give --store)")?;
    Ok(data.join("edk-wallet").join("wallet.json"))
}
