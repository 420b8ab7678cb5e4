//! The error classification shared by every EDK crate.
//!
//! Each crate keeps its own `thiserror` enum and says, through [`HasKind`], which
//! [`ErrorKind`] each variant belongs to. Servers map kinds to their protocol's status codes;
//! they never match on another crate's variants.

use std::error::Error as StdError;
use std::fmt;

/// How a failure should be presented to a caller.
///
/// Deliberately exhaustive: adding a kind must break every mapping until it is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something malformed or semantically wrong.
    InvalidInput,
    /// The caller did not prove who it is, or the proof failed.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing asked for does not exist (or belongs to another tenant).
    NotFound,
    /// The request conflicts with the current state (duplicate, in use, already consumed).
    Conflict,
    /// The request is well formed but asks for something this deployment does not support.
    Unsupported,
    /// A dependency (database, KMS, HSM, remote service) did not answer.
    Unavailable,
    /// A fault on our side; the detail is logged, never shown to the caller.
    Internal,
}

impl ErrorKind {
    /// Whether the failure is the caller's to fix (as opposed to ours or a dependency's).
    #[must_use]
    pub const fn is_client_error(self) -> bool {
        !matches!(self, Self::Unavailable | Self::Internal)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Unsupported => "unsupported",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal error",
        })
    }
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind: StdError {
    /// The classification of this error.
    fn kind(&self) -> ErrorKind;
}

/// Displays an error followed by each of its sources, separated by `": "`.
///
/// ```
/// # use edk_core::error::ErrorChain;
/// let err = std::io::Error::other("disk on fire");
/// assert_eq!(ErrorChain(&err).to_string(), "disk on fire");
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_lists_every_source() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(ErrorChain(&err).to_string(), "outer: inner");
    }

    #[test]
    fn client_kinds_are_told_apart_from_server_kinds() {
        assert!(ErrorKind::NotFound.is_client_error());
        assert!(!ErrorKind::Unavailable.is_client_error());
        assert!(!ErrorKind::Internal.is_client_error());
    }
}
