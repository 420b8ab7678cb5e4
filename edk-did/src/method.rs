//! The [`DidMethod`] and [`DidPublisher`] traits that each DID method implements.

use std::fmt;

use async_trait::async_trait;
use edk_core::Did;
use edk_core::jose::Jwk;
use edk_tenancy::TenantContext;
use serde_json::{Map, Value};

use crate::document::DidDocument;
use crate::error::{PublishError, ResolveError};
use crate::resolution::{Resolution, ResolveOptions};

/// A DID method: reads (resolves) its DIDs and, if it can publish, hands out a
/// [`DidPublisher`].
///
/// Implementing a method:
/// 1. `name` is the method name without `did:` (`"key"`); the [`crate::Resolver`] registry
///    refuses two methods with one name when it is built.
/// 2. `resolve` gets a DID whose method is `name` and that passed DID Core syntax; refuse
///    method-specific syntax errors with [`ResolveError::InvalidDid`], missing DIDs with
///    [`ResolveError::NotFound`], and report a deactivated DID with
///    [`Resolution::deactivated`]. The resolver handles `accept`, caching and
///    `expandRelativeUrls`.
/// 3. Version options (`versionId`, `versionTime`, `versionNumber`) a method cannot honour
///    are refused with [`ResolveError::FeatureNotSupported`] or [`ResolveError::NotFound`],
///    never ignored silently unless the method has one version only.
/// 4. Every outbound call uses an injected client with a timeout; no method reads the clock.
#[async_trait]
pub trait DidMethod: fmt::Debug + Send + Sync {
    /// Method name without the `did:` prefix, e.g. `"key"`.
    fn name(&self) -> &'static str;

    /// Resolves `did`.
    ///
    /// # Errors
    /// [`ResolveError`] with the DID Resolution code of the failure.
    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError>;

    /// The method's publisher (create, update, deactivate), if it can publish.
    fn publisher(&self) -> Option<&dyn DidPublisher> {
        None
    }
}

/// Creating, updating and deactivating DIDs of one method, for a tenant.
///
/// `update` and `deactivate` default to [`PublishError::Unsupported`]: methods whose DIDs
/// cannot change (did:key, did:jwk) implement `create` only.
#[async_trait]
pub trait DidPublisher: fmt::Debug + Send + Sync {
    /// Creates a DID.
    ///
    /// # Errors
    /// [`PublishError`] when the request is invalid for the method or publishing fails.
    async fn create(
        &self,
        tenant: &TenantContext,
        request: &PublishRequest,
    ) -> Result<Published, PublishError>;

    /// Updates `did`.
    ///
    /// # Errors
    /// [`PublishError::Unsupported`] unless the method supports updates.
    async fn update(
        &self,
        tenant: &TenantContext,
        did: &Did,
        request: &PublishRequest,
    ) -> Result<Published, PublishError> {
        let _ = (tenant, did, request);
        Err(PublishError::Unsupported {
            method: "this method",
            operation: "update",
        })
    }

    /// Deactivates `did`.
    ///
    /// # Errors
    /// [`PublishError::Unsupported`] unless the method supports deactivation.
    async fn deactivate(
        &self,
        tenant: &TenantContext,
        did: &Did,
        request: &PublishRequest,
    ) -> Result<Published, PublishError> {
        let _ = (tenant, did, request);
        Err(PublishError::Unsupported {
            method: "this method",
            operation: "deactivate",
        })
    }
}

/// What to publish: keys, a document to start from and method-specific options.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PublishRequest {
    /// Public keys for the DID (did:key and did:jwk use the first).
    pub public_keys: Vec<Jwk>,
    /// A document (or template) to publish, for methods that publish whole documents.
    pub document: Option<DidDocument>,
    /// Method-specific options (e.g. did:webvh witnesses, `ttl`).
    pub options: Map<String, Value>,
}

impl PublishRequest {
    /// A request for one public key.
    #[must_use]
    pub fn for_key(jwk: Jwk) -> Self {
        Self {
            public_keys: vec![jwk],
            ..Self::default()
        }
    }

    /// The request with `document`.
    #[must_use]
    pub fn with_document(mut self, document: DidDocument) -> Self {
        self.document = Some(document);
        self
    }

    /// The request with a method-specific option.
    #[must_use]
    pub fn with_option(mut self, name: impl Into<String>, value: Value) -> Self {
        self.options.insert(name.into(), value);
        self
    }
}

/// The outcome of a publishing operation.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Published {
    /// The DID.
    pub did: Did,
    /// The resolution of the DID after the operation.
    pub resolution: Resolution,
    /// Method-specific output (e.g. a did:webvh log line).
    pub artifacts: Map<String, Value>,
}

impl Published {
    /// An outcome without artifacts.
    #[must_use]
    pub fn new(did: Did, resolution: Resolution) -> Self {
        Self {
            did,
            resolution,
            artifacts: Map::new(),
        }
    }
}
