//! Errors of the Token Status List layer.

use crate::error::{ErrorKind, HasKind};
use crate::jose::JoseError;

use super::Bits;
use super::cache::FetchError;

/// Why a status list operation failed.
///
/// Every failure of a relying party's check means the same thing for the Referenced Token:
/// no statement about its status can be made, and it should be rejected (Status List §8.3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// The index is past the end of the list (Status List §8.3 step 6).
    #[error("status index {index} is out of range for a list of {len} statuses")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many statuses the list holds.
        len: usize,
    },
    /// The value does not fit in the list's bits per status.
    #[error("status value {value} does not fit in {bits} bits")]
    ValueOutOfRange {
        /// The value given.
        value: u8,
        /// The list's bits per status.
        bits: Bits,
    },
    /// `bits` is not 1, 2, 4 or 8 (Status List §4.1).
    #[error("`bits` must be 1, 2, 4 or 8, not {0}")]
    InvalidBits(u8),
    /// `lst` is not unpadded base64url (Status List §4.2).
    #[error("`lst` is not unpadded base64url")]
    InvalidEncoding,
    /// `lst` does not hold one complete DEFLATE stream in ZLIB format (Status List §4.1).
    #[error("`lst` is not a complete zlib stream")]
    InvalidCompression,
    /// The list inflates past [`Limits::max_status_list_bytes`](crate::Limits).
    #[error("the status list inflates past the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in decompressed bytes.
        limit: usize,
    },
    /// Compressing the list failed.
    #[error("compressing the status list failed")]
    Compression(#[source] std::io::Error),
    /// A URI is not an absolute URI.
    #[error("`{field}` is not an absolute URI")]
    InvalidUri {
        /// The member holding it.
        field: &'static str,
    },
    /// A claim of the Status List Token or of the `status` claim is missing or malformed.
    #[error("claim `{0}` is missing or malformed")]
    InvalidClaim(&'static str),
    /// The Referenced Token's `status` claim has no `status_list` member (Status List §6.1).
    #[error("the `status` claim has no `status_list` reference")]
    MissingReference,
    /// The Status List Token's `sub` is not the URI the Referenced Token points to
    /// (Status List §8.3 step 4a).
    #[error("the status list token is not the one the referenced token points to")]
    SubjectMismatch,
    /// The Status List Token failed signature or claim validation (signature, algorithm,
    /// `typ`, `iat`, `exp`, size), in either form.
    #[error("the status list token is not valid")]
    Token(#[source] JoseError),
    /// The Status List Token in CWT form is not a well-formed `COSE_Sign1_Tagged` CWT
    /// (Status List §5.2).
    #[error("the status list token is not a well-formed CWT: {0}")]
    InvalidCwt(&'static str),
    /// Encoding a Status List Token in CWT form failed.
    #[error("encoding the status list token as CBOR failed")]
    CborEncoding,
    /// Fetching the Status List Token failed (Status List §8.3 step 2). Its kind is
    /// [`ErrorKind::Unavailable`] whatever the fetcher's was: the status cannot be
    /// determined now; the source's kind tells a missing list from a failing provider.
    #[error("fetching the status list token at `{uri}` failed")]
    Fetch {
        /// The URI fetched.
        uri: String,
        /// Why the fetch failed.
        #[source]
        source: FetchError,
    },
}

impl HasKind for StatusListError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::IndexOutOfRange { .. }
            | Self::ValueOutOfRange { .. }
            | Self::InvalidBits(_)
            | Self::InvalidEncoding
            | Self::InvalidCompression
            | Self::TooLarge { .. }
            | Self::InvalidUri { .. }
            | Self::InvalidClaim(_)
            | Self::MissingReference
            | Self::InvalidCwt(_) => ErrorKind::InvalidInput,
            Self::SubjectMismatch => ErrorKind::Unauthenticated,
            Self::Compression(_) | Self::CborEncoding => ErrorKind::Internal,
            Self::Fetch { .. } => ErrorKind::Unavailable,
            Self::Token(err) => err.kind(),
        }
    }
}

impl From<JoseError> for StatusListError {
    fn from(err: JoseError) -> Self {
        Self::Token(err)
    }
}
