//! The errors of this crate: a query that breaks DCQL's rules, a claims path pointer that
//! cannot be applied, and a presentation that does not answer its query.

use edk_core::{ErrorKind, HasKind};

use crate::path::ClaimPath;

/// A DCQL query refused by [`DcqlQuery::from_json`](crate::dcql::DcqlQuery::from_json) or
/// [`DcqlQuery::validate`](crate::dcql::DcqlQuery::validate) (OpenID4VP 1.0 §6). A wallet
/// answers any of them with `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DcqlError {
    /// The JSON does not have the shape of a DCQL query (a member of the wrong type, a
    /// required member missing).
    #[error("malformed DCQL query: {0}")]
    Malformed(String),
    /// `credentials` is an empty array.
    #[error("credentials must be a non-empty array")]
    NoCredentials,
    /// `credential_sets` is present but empty.
    #[error("credential_sets must be a non-empty array when present")]
    EmptyCredentialSets,
    /// An `id` (of a credential query or of a claims query) is empty or has a character other
    /// than ASCII letters, digits, `_` and `-`.
    #[error("id {0:?} must be a non-empty string of ASCII letters, digits, '_' and '-'")]
    InvalidId(String),
    /// Two credential queries share an `id`.
    #[error("credential query id {0:?} is used more than once")]
    DuplicateCredentialId(String),
    /// Two claims queries of one credential query share an `id`.
    #[error("claim id {claim:?} is used more than once in credential query {credential:?}")]
    DuplicateClaimId {
        /// The credential query.
        credential: String,
        /// The repeated claim id.
        claim: String,
    },
    /// Two claims queries of one credential query point to the same claim.
    #[error("credential query {credential:?} points to the claim {path} more than once")]
    DuplicateClaimPath {
        /// The credential query.
        credential: String,
        /// The repeated path.
        path: ClaimPath,
    },
    /// `meta`, or a member of it that the format requires, is missing.
    #[error("credential query {credential:?} of format {format:?} needs {field}")]
    MissingMeta {
        /// The credential query.
        credential: String,
        /// Its format.
        format: String,
        /// What is missing: `meta` or e.g. `meta.vct_values`.
        field: &'static str,
    },
    /// A format-specific `meta` member has the wrong type or is empty.
    #[error("{field} of credential query {credential:?} {reason}")]
    InvalidMeta {
        /// The credential query.
        credential: String,
        /// The member of `meta`, e.g. `meta.doctype_value`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `trusted_authorities` is present but empty.
    #[error("trusted_authorities of credential query {0:?} must be non-empty when present")]
    EmptyTrustedAuthorities(String),
    /// A trusted authorities query has no `values`.
    #[error("trusted authority {kind:?} of credential query {credential:?} has no values")]
    EmptyTrustedAuthorityValues {
        /// The credential query.
        credential: String,
        /// The trusted authority type.
        kind: String,
    },
    /// `claims` is present but empty.
    #[error("claims of credential query {0:?} must be non-empty when present")]
    EmptyClaims(String),
    /// `claim_sets` is present without `claims`.
    #[error("claim_sets of credential query {0:?} needs claims")]
    ClaimSetsWithoutClaims(String),
    /// `claim_sets` is present but empty, or one of its options is empty.
    #[error("claim_sets of credential query {0:?} and each of its options must be non-empty")]
    EmptyClaimSet(String),
    /// `claim_sets` is present and a claims query has no `id`.
    #[error("credential query {0:?} has claim_sets, so every claims query needs an id")]
    ClaimWithoutId(String),
    /// An option of `claim_sets` names a claim id that no claims query has.
    #[error("claim_sets of credential query {credential:?} names unknown claim id {claim:?}")]
    UnknownClaimId {
        /// The credential query.
        credential: String,
        /// The unknown claim id.
        claim: String,
    },
    /// A claims query's `path` is not a valid claims path pointer.
    #[error("claims path of credential query {credential:?}: {reason}")]
    InvalidPath {
        /// The credential query.
        credential: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A claims path of an `mso_mdoc` query is not exactly a namespace and an element
    /// identifier (two strings).
    #[error(
        "claims path {path} of mso_mdoc credential query {credential:?} must be [namespace, element]"
    )]
    MdocPath {
        /// The credential query.
        credential: String,
        /// The refused path.
        path: ClaimPath,
    },
    /// `values` is present but empty.
    #[error("values of a claim of credential query {0:?} must be non-empty when present")]
    EmptyValues(String),
    /// An entry of `values` is not a string, an integer or a boolean.
    #[error(
        "values of a claim of credential query {credential:?} may hold only strings, integers and booleans, not {value}"
    )]
    InvalidValue {
        /// The credential query.
        credential: String,
        /// The refused value.
        value: serde_json::Value,
    },
    /// A credential set query has no `options`, or an empty option.
    #[error("credential set {0} must have non-empty options, each non-empty")]
    EmptyOptions(usize),
    /// A credential set option names an id that no credential query has.
    #[error("credential set {set} names unknown credential query {id:?}")]
    UnknownCredentialId {
        /// The index of the credential set query.
        set: usize,
        /// The unknown id.
        id: String,
    },
}

/// A claims path pointer that could not be applied to a credential (OpenID4VP 1.0 §7). In a
/// match, any of them means the claim is absent from that credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A key was asked of something that is not an object.
    #[error("component {position} selects a key in something that is not an object")]
    NotAnObject {
        /// The index of the component in the path.
        position: usize,
    },
    /// An index or all elements were asked of something that is not an array.
    #[error("component {position} selects array elements in something that is not an array")]
    NotAnArray {
        /// The index of the component in the path.
        position: usize,
    },
    /// The path selects nothing in the credential.
    #[error("the path selects nothing")]
    NothingSelected,
    /// An mdoc path is not exactly two strings.
    #[error("an mso_mdoc path must be [namespace, element]")]
    MdocPath,
    /// The mdoc has no such namespace.
    #[error("the mdoc has no namespace {0:?}")]
    NoNamespace(String),
    /// The namespace has no such data element.
    #[error("namespace {namespace:?} has no data element {element:?}")]
    NoElement {
        /// The namespace.
        namespace: String,
        /// The data element identifier.
        element: String,
    },
}

/// A `vp_token` that does not answer its DCQL query, found by
/// [`DcqlQuery::check_presentations`](crate::dcql::DcqlQuery::check_presentations)
/// (OpenID4VP 1.0 §6.4, §8.1, §8.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresentationError {
    /// The `vp_token` has an entry for an id that no credential query has.
    #[error("the vp_token answers unknown credential query {0:?}")]
    UnknownCredentialQuery(String),
    /// The `vp_token` entry of a credential query is an empty array.
    #[error("the vp_token entry of credential query {0:?} is empty")]
    EmptyEntry(String),
    /// More than one presentation for a credential query without `multiple: true`.
    #[error("credential query {id:?} allows one presentation, {count} were given")]
    MultipleNotAllowed {
        /// The credential query.
        id: String,
        /// How many presentations were given.
        count: usize,
    },
    /// A presentation has another format than its credential query.
    #[error("a presentation for credential query {id:?} has format {found:?}, not {expected:?}")]
    FormatMismatch {
        /// The credential query.
        id: String,
        /// The format the query asks for.
        expected: String,
        /// The format presented.
        found: String,
    },
    /// A presentation's type (`vct`, doctype or W3C types) is not one the query allows.
    #[error(
        "a presentation for credential query {0:?} has a credential type the query does not allow"
    )]
    TypeMismatch(String),
    /// The query requires cryptographic holder binding and a presentation has none.
    #[error("credential query {0:?} requires cryptographic holder binding")]
    HolderBindingMissing(String),
    /// The query has `trusted_authorities` and a presentation's issuer is identified by none
    /// of them.
    #[error(
        "a presentation for credential query {0:?} is not from an issuer its trusted_authorities name"
    )]
    UntrustedIssuer(String),
    /// A claim the query requires is not in a presentation.
    #[error("a presentation for credential query {id:?} lacks the claim {path}")]
    ClaimMissing {
        /// The credential query.
        id: String,
        /// The path of the missing claim.
        path: ClaimPath,
    },
    /// A claim is present but none of its values is among the query's `values`.
    #[error(
        "the claim {path} of a presentation for credential query {id:?} has a value the query does not allow"
    )]
    ValueMismatch {
        /// The credential query.
        id: String,
        /// The path of the claim.
        path: ClaimPath,
    },
    /// No option of the query's `claim_sets` is satisfied by a presentation.
    #[error("a presentation for credential query {0:?} satisfies none of its claim_sets")]
    NoClaimSetSatisfied(String),
    /// There are no `credential_sets` and a credential query is not answered.
    #[error("credential query {0:?} is not answered")]
    CredentialQueryMissing(String),
    /// A required credential set query has no option fully answered.
    #[error("required credential set {0} is not satisfied by any of its options")]
    CredentialSetNotSatisfied(usize),
}

impl HasKind for DcqlError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl HasKind for PathError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl HasKind for PresentationError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}
