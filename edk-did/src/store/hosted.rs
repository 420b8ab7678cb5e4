//! Resolving the DIDs this deployment publishes from the store, without a network round trip:
//! the DID's HTTPS location is routed through the tenants' DID endpoint bindings (exactly as
//! a request for the file would be) and the record is read from that tenant's store.

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::Did;
use edk_tenancy::{
    EndpointBinding, EndpointRequest, RoutedPath, ServiceType, TenantContext, TenantDirectory,
};
use serde_json::Value;
use url::Url;

use super::{DidStore, StoredDid};
use crate::document::DidDocument;
use crate::error::ResolveError;
use crate::method::DidMethod;
use crate::methods::web::DidWeb;
use crate::methods::webvh::{LogFiles, LogSource};
use crate::resolution::{Resolution, ResolveOptions};
use crate::webvh::{self, WebvhDid};

/// A file a DID location publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishedFile {
    /// `did.json`: a did:web document (or the parallel did:web of a did:webvh).
    DidJson,
    /// `did.jsonl`: a did:webvh log.
    DidJsonl,
    /// `did-witness.json`: a did:webvh witness file.
    DidWitness,
}

impl PublishedFile {
    /// The file for a file name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "did.json" => Some(Self::DidJson),
            "did.jsonl" => Some(Self::DidJsonl),
            "did-witness.json" => Some(Self::DidWitness),
            _ => None,
        }
    }
}

/// The location (URL path below the host, without the leading `/`, `""` for
/// `/.well-known`) and file a request routed to `binding` asks for; `None` when the path is
/// not a DID file under the binding.
#[must_use]
pub fn locate(binding: &EndpointBinding, path: &RoutedPath) -> Option<(String, PublishedFile)> {
    let prefix = binding.path_prefix();
    match path {
        RoutedPath::WellKnown { name, rest } if rest.is_empty() && prefix.is_empty() => {
            Some((String::new(), PublishedFile::from_name(name)?))
        }
        RoutedPath::Service { rest } => {
            let (dir, name) = rest.rsplit_once('/')?;
            let file = PublishedFile::from_name(name)?;
            let location = format!("{prefix}{dir}");
            let location = location.trim_start_matches('/');
            // `/.well-known/did.json` is the root location; `/did.json` is nothing.
            if location.is_empty() {
                return None;
            }
            Some((location.to_owned(), file))
        }
        _ => None,
    }
}

/// The location of a file URL (`https://host/a/b/did.json` → `a/b`,
/// `https://host/.well-known/did.json` → `""`).
#[must_use]
pub fn location_of_url(url: &Url) -> String {
    let path = url.path().trim_start_matches('/');
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    if dir == ".well-known" {
        String::new()
    } else {
        dir.to_owned()
    }
}

/// The DIDs held in a [`DidStore`], found through the tenants' DID endpoint bindings.
#[derive(Debug)]
pub struct HostedDids {
    directory: Arc<dyn TenantDirectory>,
    store: Arc<dyn DidStore>,
}

impl HostedDids {
    /// Hosted DIDs routed by `directory` (the `Tenancy`) and read from `store`.
    #[must_use]
    pub fn new(directory: Arc<dyn TenantDirectory>, store: Arc<dyn DidStore>) -> Self {
        Self { directory, store }
    }

    /// The tenant serving `url` through its DID binding and the location of the file.
    ///
    /// # Errors
    /// [`ResolveError::Unavailable`] when tenant routing cannot be read.
    pub async fn route(
        &self,
        url: &Url,
    ) -> Result<Option<(TenantContext, String, PublishedFile)>, ResolveError> {
        let request = EndpointRequest::from_url(url);
        let resolution = match self.directory.resolve(ServiceType::Did, &request).await {
            Ok(resolution) => resolution,
            Err(edk_tenancy::error::ResolveError::Store(err)) => {
                return Err(ResolveError::Unavailable {
                    did: url.to_string(),
                    reason: "tenant routing is unavailable",
                    source: Some(err),
                });
            }
            Err(_) => return Ok(None),
        };
        let Some(binding) = resolution.context.binding() else {
            return Ok(None);
        };
        let Some((location, file)) = locate(binding, &resolution.path) else {
            return Ok(None);
        };
        Ok(Some((resolution.context, location, file)))
    }

    /// The stored DID of `method` at the location of `url`, when it is `did`.
    ///
    /// # Errors
    /// [`ResolveError::Unavailable`] when routing or the store fails.
    pub async fn find(
        &self,
        did: &str,
        method: &str,
        url: &Url,
    ) -> Result<Option<StoredDid>, ResolveError> {
        let Some((tenant, location, _)) = self.route(url).await? else {
            return Ok(None);
        };
        let record = self.at(&tenant, method, &location).await?;
        Ok(record.filter(|record| record.did.as_str() == did))
    }

    /// The stored DID of `method` at `location` of `tenant`.
    ///
    /// # Errors
    /// [`ResolveError::Unavailable`] when the store fails.
    pub async fn at(
        &self,
        tenant: &TenantContext,
        method: &str,
        location: &str,
    ) -> Result<Option<StoredDid>, ResolveError> {
        self.store
            .by_location(tenant, method, location)
            .await
            .map_err(|err| ResolveError::Unavailable {
                did: location.to_owned(),
                reason: "the DID store failed",
                source: Some(Box::new(err)),
            })
    }

    /// The `did.json` published at `location` of `tenant`: the did:web document, else the
    /// parallel did:web of a did:webvh there (did:webvh §"Publishing a Parallel did:web
    /// DID"). Returns the document (`None` when deactivated); nothing for a did:webvh whose
    /// first entry still awaits its witnesses.
    ///
    /// # Errors
    /// [`ResolveError::Unavailable`] when the store fails.
    pub async fn did_json(
        &self,
        tenant: &TenantContext,
        location: &str,
    ) -> Result<Option<Option<Value>>, ResolveError> {
        if let Some(record) = self.at(tenant, "web", location).await? {
            return Ok(Some((!record.deactivated).then_some(record.document)));
        }
        if let Some(record) = self.at(tenant, "webvh", location).await? {
            if record.log.is_empty() {
                // The first entry awaits its witnesses: nothing is published yet.
                return Ok(None);
            }
            if record.deactivated {
                return Ok(Some(None));
            }
            return Ok(webvh::did_web_document(&record.document).ok().map(Some));
        }
        Ok(None)
    }

    /// A did:web method answering from the store first; DIDs not hosted here go to
    /// `fallback` (for example [`DidWeb`] over HTTPS), or are `notFound` without one.
    #[must_use]
    pub fn web_method(self: &Arc<Self>, fallback: Option<Arc<dyn DidMethod>>) -> HostedWeb {
        HostedWeb {
            hosted: Arc::clone(self),
            fallback,
        }
    }

    /// A did:webvh log source reading hosted logs from the store first; others go to
    /// `fallback` (for example `HttpsLogSource`), or are `notFound` without one.
    #[must_use]
    pub fn log_source(self: &Arc<Self>, fallback: Option<Arc<dyn LogSource>>) -> HostedLogs {
        HostedLogs {
            hosted: Arc::clone(self),
            fallback,
        }
    }
}

/// did:web resolution from [`HostedDids`], with an optional fallback method.
#[derive(Debug)]
pub struct HostedWeb {
    hosted: Arc<HostedDids>,
    fallback: Option<Arc<dyn DidMethod>>,
}

#[async_trait]
impl DidMethod for HostedWeb {
    fn name(&self) -> &'static str {
        "web"
    }

    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        if opts.selects_version() {
            return Err(ResolveError::FeatureNotSupported {
                method: "web",
                option: "versionId",
            });
        }
        let url = DidWeb::document_url(did)?;
        if let Some((tenant, location, _)) = self.hosted.route(&url).await?
            && let Some(published) = self.hosted.did_json(&tenant, &location).await?
        {
            let Some(document) = published else {
                return Ok(Resolution::deactivated());
            };
            if document.get("id").and_then(Value::as_str) != Some(did.as_str()) {
                return Err(ResolveError::not_found(did.as_str()));
            }
            let document: DidDocument = serde_json::from_value(document).map_err(|err| {
                ResolveError::InvalidDidDocument {
                    did: did.to_string(),
                    reason: err.to_string(),
                }
            })?;
            return Ok(Resolution::found(document));
        }
        match &self.fallback {
            Some(fallback) => fallback.resolve(did, opts).await,
            None => Err(ResolveError::not_found(did.as_str())),
        }
    }
}

/// did:webvh logs from [`HostedDids`], with an optional fallback source.
#[derive(Debug)]
pub struct HostedLogs {
    hosted: Arc<HostedDids>,
    fallback: Option<Arc<dyn LogSource>>,
}

#[async_trait]
impl LogSource for HostedLogs {
    async fn fetch(&self, did: &WebvhDid) -> Result<LogFiles, ResolveError> {
        let url = Url::parse(&did.log_url()).map_err(|_| ResolveError::InvalidDid {
            did: did.to_string(),
            reason: "the log URL is not valid".to_owned(),
        })?;
        if let Some(record) = self.hosted.find(did.as_str(), "webvh", &url).await? {
            if record.log.is_empty() {
                return Err(ResolveError::not_found(did.as_str()));
            }
            return Ok(LogFiles {
                log: record.log_jsonl(),
                witness: record.witness,
            });
        }
        match &self.fallback {
            Some(fallback) => fallback.fetch(did).await,
            None => Err(ResolveError::not_found(did.as_str())),
        }
    }
}
