//! The [`DidResolver`] trait and [`Resolver`], its implementation over a registry of
//! [`DidMethod`]s with a bounded cache and per-tenant method enablement.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use edk_core::{Clock, Did, DidUrl};
use edk_tenancy::TenantContext;
use edk_tenancy::config::ConfigKey;
use serde::Deserialize;

use crate::document::{Service, VerificationMethod};
use crate::error::{Error, ResolveError};
use crate::method::DidMethod;
use crate::resolution::{Resolution, ResolveOptions};

/// Tenant configuration: the DID methods a tenant may resolve (method names without `did:`).
/// Resolving with a [`TenantContext`] refuses any other method with `methodNotSupported`.
pub const DID_METHODS: ConfigKey<Vec<String>> =
    ConfigKey::new("did.methods", default_methods, check_methods);

fn default_methods() -> Vec<String> {
    ["jwk", "key", "web", "webvh"].map(str::to_owned).to_vec()
}

#[expect(
    clippy::ptr_arg,
    reason = "ConfigKey rules take a reference to the value type"
)]
fn check_methods(methods: &Vec<String>) -> Result<(), &'static str> {
    if methods.len() > 32 {
        return Err("at most 32 methods");
    }
    if methods.iter().all(|m| {
        !m.is_empty()
            && m.len() <= 32
            && m.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) {
        Ok(())
    } else {
        Err("method names are lower-case letters and digits, without `did:`")
    }
}

/// Resolves DIDs and dereferences DID URLs.
#[async_trait]
pub trait DidResolver: fmt::Debug + Send + Sync {
    /// Resolves `did` (DID Resolution §4). With a `tenant`, only the methods the tenant
    /// enabled ([`DID_METHODS`]) are available.
    ///
    /// # Errors
    /// [`ResolveError`] with the DID Resolution code of the failure.
    async fn resolve(
        &self,
        tenant: Option<&TenantContext>,
        did: &str,
        opts: &ResolveOptions,
    ) -> Result<Resolution, ResolveError>;

    /// Drops every cached result for `did` (each version option included), so that the next
    /// resolution reads the method again. Call it when the DID changed; the default does
    /// nothing (for resolvers without a cache).
    fn invalidate(&self, did: &str) {
        let _ = did;
    }

    /// Dereferences a DID URL (DID Resolution §5): the document, or the verification method
    /// or service its fragment (or `service` parameter) names. `versionId`, `versionTime`
    /// and `versionNumber` query parameters select the version.
    ///
    /// # Errors
    /// [`ResolveError::InvalidDidUrl`] for a malformed URL, [`ResolveError::NotFound`] when
    /// the fragment names nothing, and the resolution errors.
    async fn dereference(
        &self,
        tenant: Option<&TenantContext>,
        did_url: &str,
        opts: &ResolveOptions,
    ) -> Result<Dereferenced, ResolveError> {
        let (url, mut opts, service) = parse_did_url(did_url, opts)?;
        opts.expand_relative_urls = true;
        let resolution = self.resolve(tenant, url.did().as_str(), &opts).await?;
        let Some(document) = &resolution.document else {
            return Err(ResolveError::not_found(did_url));
        };
        let resource = if let Some(service) = service {
            let id = format!("#{service}");
            Resource::Service(
                document
                    .service(&id)
                    .cloned()
                    .ok_or_else(|| ResolveError::not_found(did_url))?,
            )
        } else if let Some(fragment) = url.fragment() {
            let id = format!("#{fragment}");
            if let Some(method) = document.verification_method(&id) {
                Resource::VerificationMethod(method.clone())
            } else if let Some(service) = document.service(&id) {
                Resource::Service(service.clone())
            } else {
                return Err(ResolveError::not_found(did_url));
            }
        } else {
            Resource::Document
        };
        Ok(Dereferenced {
            resolution,
            resource,
        })
    }
}

/// The outcome of dereferencing a DID URL.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Dereferenced {
    /// The resolution of the DID the URL refers into (relative URLs expanded).
    pub resolution: Resolution,
    /// The selected resource.
    pub resource: Resource,
}

/// What a DID URL selects.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Resource {
    /// The whole document (no fragment, no `service`).
    Document,
    /// A verification method.
    VerificationMethod(VerificationMethod),
    /// A service.
    Service(Service),
}

/// Cache settings. A cached negative answer (`notFound`) expires after
/// `negative_ttl_seconds`, which must not exceed `ttl_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Most entries held; the least recently used go first. `0` disables the cache.
    pub capacity: usize,
    /// How long a successful resolution is reused (a method's own hint may shorten it).
    pub ttl_seconds: u64,
    /// How long a `notFound` answer is reused.
    pub negative_ttl_seconds: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl_seconds: 300,
            negative_ttl_seconds: 30,
        }
    }
}

/// A [`DidResolver`] over a registry of methods, checked once when built.
///
/// ```
/// use std::sync::Arc;
/// use edk_did::{DidResolver, ResolveOptions, Resolver};
/// use edk_did::methods::{jwk::DidJwk, key::DidKey};
///
/// let resolver = Resolver::builder()
///     .method(Arc::new(DidKey::new()))
///     .method(Arc::new(DidJwk))
///     .build()?;
/// assert!(resolver.method("key").is_some());
/// // Registering a method twice fails at build time.
/// assert!(Resolver::builder()
///     .method(Arc::new(DidKey::new()))
///     .method(Arc::new(DidKey::new()))
///     .build()
///     .is_err());
/// # Ok::<(), edk_did::Error>(())
/// ```
#[derive(Debug)]
pub struct Resolver {
    methods: HashMap<&'static str, Arc<dyn DidMethod>>,
    cache: Option<ResolutionCache>,
}

impl Resolver {
    /// A builder without methods and without a cache.
    #[must_use]
    pub fn builder() -> ResolverBuilder {
        ResolverBuilder::default()
    }

    /// The method registered as `name`.
    #[must_use]
    pub fn method(&self, name: &str) -> Option<&Arc<dyn DidMethod>> {
        self.methods.get(name)
    }

    /// The registered method names, sorted.
    #[must_use]
    pub fn method_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.methods.keys().copied().collect();
        names.sort_unstable();
        names
    }

    async fn resolve_uncached(
        &self,
        method: &dyn DidMethod,
        did: &Did,
        opts: &ResolveOptions,
    ) -> Result<Resolution, ResolveError> {
        let resolution = method.resolve(did, opts).await?;
        if let Some(document) = &resolution.document
            && document.id != did.as_str()
        {
            // DID Resolution §1: the document's `id` MUST be the resolved DID.
            return Err(ResolveError::invalid_document(
                did.as_str(),
                "the document id is not the DID",
            ));
        }
        Ok(resolution)
    }
}

#[async_trait]
impl DidResolver for Resolver {
    async fn resolve(
        &self,
        tenant: Option<&TenantContext>,
        did: &str,
        opts: &ResolveOptions,
    ) -> Result<Resolution, ResolveError> {
        // DID Resolution §4 step 1: syntax.
        let did = Did::new(did).map_err(|err| ResolveError::invalid_did(did, err.to_string()))?;
        // Step 2: method supported (and, for a tenant, enabled).
        let method_name = did.method();
        let method = self
            .methods
            .get(method_name)
            .filter(|_| {
                tenant.is_none_or(|tenant| {
                    tenant
                        .config()
                        .get(&DID_METHODS)
                        .iter()
                        .any(|m| m == method_name)
                })
            })
            .ok_or_else(|| ResolveError::MethodNotSupported {
                method: method_name.to_owned(),
            })?;
        // Step 3: options.
        let representation = opts.representation()?;
        // Step 4: read, through the cache.
        let mut resolution = match &self.cache {
            Some(cache) => {
                let key = CacheKey::new(&did, opts);
                let cached = if opts.no_cache { None } else { cache.get(&key) };
                match cached {
                    Some(Cached::Found(resolution)) => Resolution::clone(&resolution),
                    Some(Cached::NotFound) => return Err(ResolveError::not_found(did.as_str())),
                    None => {
                        let outcome = self.resolve_uncached(method.as_ref(), &did, opts).await;
                        cache.store(key, &outcome);
                        outcome?
                    }
                }
            }
            None => self.resolve_uncached(method.as_ref(), &did, opts).await?,
        };
        // Steps 5–6: representation and relative URLs.
        resolution.representation = representation;
        if opts.expand_relative_urls
            && let Some(document) = &mut resolution.document
        {
            document.expand_relative_urls();
        }
        tracing::debug!(did = %did, "resolved DID");
        Ok(resolution)
    }

    fn invalidate(&self, did: &str) {
        if let Some(cache) = &self.cache {
            cache.entries.retain(|key, _| key.did != did);
        }
    }
}

/// Builds a [`Resolver`].
#[derive(Debug, Default)]
pub struct ResolverBuilder {
    methods: Vec<Arc<dyn DidMethod>>,
    cache: Option<(CacheConfig, Arc<dyn Clock>)>,
}

impl ResolverBuilder {
    /// Registers a method.
    #[must_use]
    pub fn method(mut self, method: Arc<dyn DidMethod>) -> Self {
        self.methods.push(method);
        self
    }

    /// Caches results as `config` says, with `clock` for expiry.
    #[must_use]
    pub fn cache(mut self, config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        self.cache = Some((config, clock));
        self
    }

    /// Builds the resolver.
    ///
    /// # Errors
    /// [`Error::DuplicateMethod`] when two methods share a name, [`Error::InvalidConfig`]
    /// for a negative TTL longer than the positive one.
    pub fn build(self) -> Result<Resolver, Error> {
        let mut methods = HashMap::with_capacity(self.methods.len());
        for method in self.methods {
            let name = method.name();
            if methods.insert(name, method).is_some() {
                return Err(Error::DuplicateMethod(name));
            }
        }
        let cache = match self.cache {
            Some((config, _)) if config.capacity == 0 => None,
            Some((config, clock)) => {
                if config.negative_ttl_seconds > config.ttl_seconds {
                    return Err(Error::InvalidConfig(
                        "the negative cache TTL must not exceed the cache TTL",
                    ));
                }
                Some(ResolutionCache::new(config, clock))
            }
            None => None,
        };
        Ok(Resolver { methods, cache })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    did: String,
    version_id: Option<String>,
    version_time: Option<DateTime<Utc>>,
    version_number: Option<u64>,
}

impl CacheKey {
    fn new(did: &Did, opts: &ResolveOptions) -> Self {
        Self {
            did: did.as_str().to_owned(),
            version_id: opts.version_id.clone(),
            version_time: opts.version_time,
            version_number: opts.version_number,
        }
    }
}

#[derive(Clone, Debug)]
enum Cached {
    Found(Arc<Resolution>),
    NotFound,
}

#[derive(Clone, Debug)]
struct CacheEntry {
    value: Cached,
    expires_at: SystemTime,
}

/// A bounded LRU-ish map (quick_cache's CLOCK-Pro) with expiry from the injected clock.
struct ResolutionCache {
    entries: quick_cache::sync::Cache<CacheKey, CacheEntry>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl fmt::Debug for ResolutionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolutionCache")
            .field("len", &self.entries.len())
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .finish_non_exhaustive()
    }
}

impl ResolutionCache {
    fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(config.capacity),
            clock,
            ttl: Duration::from_secs(config.ttl_seconds),
            negative_ttl: Duration::from_secs(config.negative_ttl_seconds),
        }
    }

    fn get(&self, key: &CacheKey) -> Option<Cached> {
        let entry = self.entries.get(key)?;
        if self.clock.now() >= entry.expires_at {
            self.entries.remove(key);
            return None;
        }
        Some(entry.value)
    }

    fn store(&self, key: CacheKey, outcome: &Result<Resolution, ResolveError>) {
        let now = self.clock.now();
        let (value, ttl) = match outcome {
            Ok(resolution) => {
                let ttl = resolution
                    .cache_ttl
                    .map_or(self.ttl, |hint| hint.min(self.ttl));
                (Cached::Found(Arc::new(resolution.clone())), ttl)
            }
            Err(ResolveError::NotFound { .. }) => (Cached::NotFound, self.negative_ttl),
            // Other failures (invalid documents, unreachable hosts) are not cached.
            Err(_) => return,
        };
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(
            key,
            CacheEntry {
                value,
                expires_at: now + ttl,
            },
        );
    }
}

/// Splits a DID URL into the URL, the options its query carries and a `service` parameter.
fn parse_did_url(
    did_url: &str,
    opts: &ResolveOptions,
) -> Result<(DidUrl, ResolveOptions, Option<String>), ResolveError> {
    let invalid = |reason: &str| ResolveError::InvalidDidUrl {
        url: did_url.to_owned(),
        reason: reason.to_owned(),
    };
    let url = DidUrl::parse(did_url).map_err(|err| ResolveError::InvalidDidUrl {
        url: did_url.to_owned(),
        reason: err.to_string(),
    })?;
    let after_did = did_url.get(url.did().as_str().len()..).unwrap_or_default();
    let before_fragment = after_did.split('#').next().unwrap_or_default();
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };
    if !path.is_empty() {
        return Err(invalid("DID URL paths are not supported"));
    }
    let mut opts = opts.clone();
    let mut service = None;
    let mut seen = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if seen.contains(&name) {
            return Err(invalid("a DID parameter appears twice"));
        }
        seen.push(name.clone());
        match name.as_ref() {
            "service" => service = Some(value.into_owned()),
            "versionId" => opts.version_id = Some(value.into_owned()),
            "versionTime" => {
                let time = DateTime::parse_from_rfc3339(&value)
                    .map_err(|_| invalid("versionTime is not an XML datetime"))?;
                opts.version_time = Some(time.with_timezone(&Utc));
            }
            "versionNumber" => {
                opts.version_number = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("versionNumber is not a number"))?,
                );
            }
            _ => return Err(invalid("unsupported DID parameter")),
        }
    }
    Ok((url, opts, service))
}
