//! The crate's errors.

use edk_core::error::{ErrorKind, HasKind};
use edk_core::jose::{JoseError, SignError};

/// Why issuing, presenting or verifying an mdoc failed.
///
/// Every variant names the check that failed; none carries key material. Each failed
/// signature check is one variant ([`Error::InvalidIssuerSignature`],
/// [`Error::InvalidDeviceSignature`]) with no further detail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A claim given to the issuing builder cannot be encoded as asked.
    #[error("claim `{element}` of name space `{namespace}` is invalid: {reason}")]
    InvalidClaim {
        /// The name space.
        namespace: String,
        /// The element identifier.
        element: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The device key cannot be carried in the MSO or verify device signatures.
    #[error("invalid device key: {0}")]
    InvalidDeviceKey(&'static str),
    /// The document's `docType` is not the one expected.
    #[error("document type `{found}` is not the expected `{expected}`")]
    DocTypeMismatch {
        /// The expected document type.
        expected: String,
        /// The document type found.
        found: String,
    },
    /// A presented element's digest differs from the one the issuer signed.
    #[error("the digest of element `{element}` of name space `{namespace}` does not match the MSO")]
    DigestMismatch {
        /// The name space.
        namespace: String,
        /// The element identifier.
        element: String,
    },
    /// The holder asked to disclose an element the document does not hold.
    #[error("element `{element}` of name space `{namespace}` is not in the document")]
    ElementNotFound {
        /// The name space.
        namespace: String,
        /// The element identifier.
        element: String,
    },
    /// The MSO's validity ended before the verifier's time.
    #[error("the document expired at {valid_until}")]
    Expired {
        /// The MSO's `validUntil`, RFC 3339.
        valid_until: String,
    },
    /// A COSE structure given by the caller cannot be encoded (a label appears twice in a
    /// header or a key).
    #[error("{what} cannot be encoded")]
    Unencodable {
        /// What could not be encoded.
        what: &'static str,
    },
    /// Signing with the issuer's or the device's signer failed.
    #[error("signing failed")]
    Sign(#[source] SignError),
    /// The device signature over the session transcript does not verify with the MSO's
    /// device key.
    #[error("the device signature does not verify")]
    InvalidDeviceSignature,
    /// The issuer's COSE_Sign1 signature does not verify with the `x5chain` leaf.
    #[error("the issuer signature does not verify")]
    InvalidIssuerSignature,
    /// The input is not well-formed CBOR, or not the structure ISO/IEC 18013-5 defines.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The MSO's validity starts after the verifier's time.
    #[error("the document is not valid before {valid_from}")]
    NotYetValid {
        /// The MSO's `validFrom`, RFC 3339.
        valid_from: String,
    },
    /// The input nests deeper than the configured limit.
    #[error("{what} nests deeper than the limit of {limit}")]
    TooDeep {
        /// What was being read.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The input is larger than the configured limit.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document signer certificate chain does not validate to a trust anchor.
    #[error("the document signer certificate is not trusted")]
    UntrustedIssuer(#[source] JoseError),
    /// The `x5chain` leaf is not a document signer certificate: it lacks the extended key
    /// usage `id-mdl-kp-mdlDS` (1.0.18013.5.1.2) that ISO/IEC 18013-5 Annex B requires.
    #[error("the x5chain leaf is not a document signer certificate (no id-mdl-kp-mdlDS usage)")]
    NotADocumentSigner,
    /// The input asks for something this library does not implement, such as device MAC
    /// authentication or a digest algorithm other than SHA-256.
    #[error("unsupported {what}: {value}")]
    Unsupported {
        /// What is unsupported.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidClaim { .. }
            | Self::InvalidDeviceKey(_)
            | Self::DocTypeMismatch { .. }
            | Self::ElementNotFound { .. }
            | Self::Malformed { .. }
            | Self::TooDeep { .. }
            | Self::TooLarge { .. }
            | Self::Unencodable { .. } => ErrorKind::InvalidInput,
            Self::DigestMismatch { .. }
            | Self::Expired { .. }
            | Self::InvalidDeviceSignature
            | Self::InvalidIssuerSignature
            | Self::NotYetValid { .. }
            | Self::UntrustedIssuer(_)
            | Self::NotADocumentSigner => ErrorKind::Unauthenticated,
            Self::Sign(err) => err.kind(),
            Self::Unsupported { .. } => ErrorKind::Unsupported,
        }
    }
}

/// A [`Error::Malformed`] for `what`.
pub(crate) const fn malformed(what: &'static str, reason: &'static str) -> Error {
    Error::Malformed { what, reason }
}
