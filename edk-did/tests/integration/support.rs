//! Shared helpers: a resolver with the local methods, and a method that counts its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use edk_core::Did;
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::{
    DidDocument, DidMethod, MethodRef, Resolution, ResolveError, ResolveOptions, Resolver,
    VerificationMethod,
};

/// A resolver with did:key and did:jwk and no cache.
pub(crate) fn local_resolver() -> Arc<Resolver> {
    Arc::new(
        Resolver::builder()
            .method(Arc::new(DidKey::new()))
            .method(Arc::new(DidJwk))
            .build()
            .unwrap(),
    )
}

/// What the `did:test` method answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// A document whose id is the DID.
    Found,
    /// `notFound`.
    NotFound,
    /// Deactivated.
    Deactivated,
    /// A document whose id is another DID.
    WrongId,
}

/// `did:test`: answers as told and counts how often it was asked.
#[derive(Debug)]
pub(crate) struct TestMethod {
    pub(crate) behaviour: Behaviour,
    pub(crate) calls: AtomicUsize,
}

impl TestMethod {
    pub(crate) fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            calls: AtomicUsize::new(0),
        })
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl DidMethod for TestMethod {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn resolve(&self, did: &Did, _opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.behaviour {
            Behaviour::Found => {
                let mut document = DidDocument::new(did.as_str());
                document
                    .verification_method
                    .push(VerificationMethod::json_web_key(
                        "#k",
                        did.as_str(),
                        "JsonWebKey",
                        serde_json::Map::new(),
                    ));
                document
                    .assertion_method
                    .push(MethodRef::Reference("#k".to_owned()));
                Ok(Resolution::found(document))
            }
            Behaviour::NotFound => Err(ResolveError::NotFound {
                what: did.to_string(),
            }),
            Behaviour::Deactivated => Ok(Resolution::deactivated()),
            Behaviour::WrongId => Ok(Resolution::found(DidDocument::new("did:test:other"))),
        }
    }
}

/// A tenant on SQLite in a temporary directory, with `did.methods` set when given.
pub(crate) async fn tenant(
    methods: Option<serde_json::Value>,
) -> (
    tempfile::TempDir,
    edk_tenancy::Tenancy,
    edk_tenancy::TenantContext,
) {
    use edk_tenancy::store::sqlite::SqliteConfig;
    use edk_tenancy::{ConfigSchema, DatabaseConfig, Tenancy, TenantDirectory};
    let dir = tempfile::tempdir().unwrap();
    let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
        .config_schema(
            ConfigSchema::builder()
                .key(&edk_did::DID_METHODS)
                .build()
                .unwrap(),
        )
        .build()
        .await
        .unwrap();
    let acme = tenancy
        .provision(edk_core::TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    if let Some(methods) = methods {
        tenancy
            .set_config(Some(acme.id), edk_did::DID_METHODS.name(), methods, None)
            .await
            .unwrap();
    }
    let context = tenancy.context(acme.id).await.unwrap();
    (dir, tenancy, context)
}
