#![doc = include_str!("../README.md")]

pub mod document;
pub mod error;
#[cfg(feature = "store")]
pub mod jobs;
pub mod key_resolver;
pub mod method;
pub mod methods;
pub mod multikey;
#[cfg(feature = "store")]
pub mod registrar;
pub mod resolution;
pub mod resolver;
#[cfg(feature = "store")]
pub mod store;
pub mod webvh;

pub use document::{DidDocument, MethodRef, Relationship, Service, VerificationMethod};
pub use error::{Error, ErrorCode, PublishError, ResolveError};
pub use key_resolver::DidKeyResolver;
pub use method::{DidMethod, DidPublisher, PublishRequest, Published};
pub use resolution::{
    DocumentMetadata, ErrorStyle, Representation, Resolution, ResolveOptions, resolution_result,
};
pub use resolver::{
    CacheConfig, DID_METHODS, Dereferenced, DidResolver, Resolver, Resource, URI_LIST,
    dereferencing_result,
};
