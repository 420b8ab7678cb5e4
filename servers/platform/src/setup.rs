//! First-run setup: a one-time setup token creates the first operator, then the setup API
//! closes for good.
//!
//! The state is the platform configuration property [`SETUP_STATE`] (`platform.setup`),
//! changed only by conditional writes on its version: the first start inserts it `open`
//! with the SHA-256 digest of a fresh token (insert-if-absent, so of several replicas
//! starting at once exactly one hands a token out); the setup call moves it from `open` to
//! `closed` with a compare-and-set on the version it read, so of concurrent calls exactly
//! one wins, and a replayed token finds it closed. The token itself is never stored or
//! logged: it is printed on standard error or written to an owner-only file.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use edk_core::{ErrorKind, HasKind};
use edk_tenancy::config::ConfigKey;
use edk_tenancy::{Tenancy, error::ConfigError};

/// The platform property holding the first-run setup state.
pub static SETUP_STATE: ConfigKey<SetupState> =
    ConfigKey::new("platform.setup", SetupState::default_open, |_| Ok(()));

/// The first-run setup state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum SetupState {
    /// Waiting for the setup call with the token of this digest.
    Open {
        /// base64url(SHA-256(token)); empty before a token was issued.
        token_digest: String,
    },
    /// Done: the first operator exists and the setup API is closed.
    Closed {
        /// The first operator's client id.
        operator: String,
    },
}

impl SetupState {
    fn default_open() -> Self {
        Self::Open {
            token_digest: String::new(),
        }
    }
}

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Setup already happened (or is happening in a concurrent call).
    #[error("first-run setup is closed")]
    Closed,
    /// The setup token does not match.
    #[error("the setup token is not valid")]
    InvalidToken,
    /// The token file cannot be written.
    #[error("cannot write the setup token to {path}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The platform database refused.
    #[error("the setup state cannot be read or written")]
    Tenancy(#[source] edk_tenancy::Error),
}

impl HasKind for SetupError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Closed | Self::InvalidToken => ErrorKind::Forbidden,
            Self::TokenFile { .. } | Self::Tenancy(_) => ErrorKind::Internal,
        }
    }
}

/// A fresh setup token: 32 random bytes, base64url.
fn new_token() -> SecretString {
    let bytes: [u8; 32] = rand::rng().random();
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The stored setup state and its version; `None` before the first start wrote it.
///
/// # Errors
/// [`SetupError::Tenancy`].
pub async fn read_state(tenancy: &Tenancy) -> Result<Option<(SetupState, i64)>, SetupError> {
    let properties = tenancy
        .config_properties(None)
        .await
        .map_err(SetupError::Tenancy)?;
    Ok(properties
        .into_iter()
        .find(|property| property.key == SETUP_STATE.name())
        .and_then(|property| {
            serde_json::from_value(property.value)
                .ok()
                .map(|state| (state, property.version))
        }))
}

/// Writes `state` if the stored version is still `expected` (`0`: if there is none).
/// `false` when another write came first.
async fn write_state(
    tenancy: &Tenancy,
    state: &SetupState,
    expected: i64,
) -> Result<bool, SetupError> {
    let value = serde_json::to_value(state).map_err(|_| {
        SetupError::Tenancy(edk_tenancy::Error::Config(ConfigError::InvalidValue {
            key: SETUP_STATE.name().to_owned(),
            reason: "not serializable".to_owned(),
        }))
    })?;
    match tenancy
        .set_config(None, SETUP_STATE.name(), value, Some(expected))
        .await
    {
        Ok(_) => Ok(true),
        Err(edk_tenancy::Error::Config(ConfigError::VersionConflict { .. })) => Ok(false),
        Err(err) => Err(SetupError::Tenancy(err)),
    }
}

/// At start-up: while setup is open, hands out a setup token. A token file that still holds
/// the current token is kept; otherwise a new token replaces the stored digest (the older
/// token stops working) and is written to `token_file` (owner-only) or returned for the
/// caller to print. `None` once setup is closed, or when a concurrent start won.
///
/// # Errors
/// [`SetupError::Tenancy`], [`SetupError::TokenFile`].
pub async fn issue_token(
    tenancy: &Tenancy,
    token_file: Option<&Path>,
) -> Result<Option<SecretString>, SetupError> {
    let current = read_state(tenancy).await?;
    let expected = match &current {
        Some((SetupState::Closed { .. }, _)) => return Ok(None),
        Some((SetupState::Open { token_digest }, version)) => {
            if let Some(path) = token_file
                && let Ok(existing) = fs::read_to_string(path)
                && !token_digest.is_empty()
                && bool::from(
                    digest(existing.trim())
                        .as_bytes()
                        .ct_eq(token_digest.as_bytes()),
                )
            {
                return Ok(None);
            }
            *version
        }
        None => 0,
    };
    let token = new_token();
    let state = SetupState::Open {
        token_digest: digest(token.expose_secret()),
    };
    if !write_state(tenancy, &state, expected).await? {
        return Ok(None);
    }
    if let Some(path) = token_file {
        write_private(path, token.expose_secret().as_bytes())?;
        tracing::info!(path = %path.display(), "wrote the first-run setup token");
    }
    Ok(Some(token))
}

/// Checks `token` and closes setup for `operator`, once: a wrong token, a closed setup or a
/// concurrent call that closed it first is refused. Returns the version of the closed state,
/// for [`reopen`].
///
/// # Errors
/// [`SetupError::InvalidToken`], [`SetupError::Closed`], [`SetupError::Tenancy`].
pub async fn close(tenancy: &Tenancy, token: &str, operator: &str) -> Result<i64, SetupError> {
    let Some((SetupState::Open { token_digest }, version)) = read_state(tenancy).await? else {
        return Err(SetupError::Closed);
    };
    let presented = digest(token);
    if token_digest.is_empty() || !bool::from(presented.as_bytes().ct_eq(token_digest.as_bytes())) {
        return Err(SetupError::InvalidToken);
    }
    let closed = SetupState::Closed {
        operator: operator.to_owned(),
    };
    if write_state(tenancy, &closed, version).await? {
        Ok(version + 1)
    } else {
        Err(SetupError::Closed)
    }
}

/// Opens setup again with the same token after the operator could not be created (the
/// state is still the one [`close`] wrote at `version`).
///
/// # Errors
/// [`SetupError::Tenancy`].
pub async fn reopen(tenancy: &Tenancy, token: &str, version: i64) -> Result<(), SetupError> {
    let state = SetupState::Open {
        token_digest: digest(token),
    };
    write_state(tenancy, &state, version).await.map(|_| ())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), SetupError> {
    let io = |source| SetupError::TokenFile {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        fs::remove_file(path).map_err(io)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_tagged_and_strict() {
        let open = serde_json::json!({"state": "open", "token_digest": "abc"});
        assert_eq!(
            serde_json::from_value::<SetupState>(open).unwrap(),
            SetupState::Open {
                token_digest: "abc".to_owned()
            }
        );
        assert!(
            serde_json::from_value::<SetupState>(serde_json::json!({"state": "gone"})).is_err()
        );
        assert_eq!(digest("x").len(), 43);
        assert_ne!(new_token().expose_secret(), new_token().expose_secret());
    }
}
