#![doc = include_str!("../README.md")]

pub mod attestation;
pub mod dcql;
pub mod error;
pub mod evaluate;
pub mod path;
pub mod request;
pub mod request_object;
pub mod response;
pub mod validate;

pub use attestation::{VERIFIER_ATTESTATION_TYP, VerifierAttestation};
pub use dcql::{
    ClaimsQuery, CredentialFormat, CredentialMeta, CredentialQuery, CredentialSetQuery, DcqlQuery,
    TrustedAuthoritiesQuery, TrustedAuthorityType,
};
pub use error::{DcqlError, PathError, PresentationError};
pub use evaluate::{
    Authority, Credential, CredentialClaims, CredentialMatch, CredentialQueryResult,
    CredentialSetResult, QueryResult,
};
pub use path::{ClaimPath, PathElement};
pub use request::{
    AuthorizationRequest, ClientId, ClientMetadata, REQUEST_OBJECT_TYP, RequestError,
    RequestUriMethod, ResponseMode, SELF_ISSUED_AUDIENCE,
};
pub use request_object::{
    RequestObjectError, RequestObjectKey, RequestObjectVerifier, SignOptions, sign_request_object,
    x509_hash,
};
pub use response::{AuthorizationResponse, ResponseError, ResponseLimits};
pub use validate::{
    CredentialStatus, PresentationVerifier, StatusCheck, StatusReference, ValidationError,
    VerifiedPresentation, VerifiedResponse, session_transcript,
};
