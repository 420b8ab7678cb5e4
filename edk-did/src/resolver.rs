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
use serde_json::{Value, json};
use url::Url;

use crate::document::{DidDocument, Service, VerificationMethod};
use crate::error::{Error, ResolveError};
use crate::method::DidMethod;
use crate::resolution::{ErrorStyle, Resolution, ResolveOptions};

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

    /// Drops every cached result, so that each next resolution reads its method again. Call it
    /// when changes may have been missed (an event listener that lost its connection, a
    /// subscriber that fell behind); the default does nothing (for resolvers without a cache).
    fn invalidate_all(&self) {}

    /// Dereferences a DID URL (DID Resolution §5): the document, the verification method or
    /// service its fragment names, or the URL a service selects (`service` by id and/or
    /// `serviceType`, with `relativeRef` resolved against its endpoint). `versionId`,
    /// `versionTime` and `versionNumber` parameters select the version. A did:webvh path
    /// names a file of the DID (did:webvh §"DID URL Resolution"): `/whois` is the `#whois`
    /// service, any other path is `relativeRef` to the `#files` service.
    ///
    /// # Errors
    /// [`ResolveError::InvalidDidUrl`] for a malformed URL (a repeated parameter, a
    /// `relativeRef` that leaves its service endpoint), [`ResolveError::UnsupportedDidUrl`]
    /// for a DID parameter (such as `hl`) or path this resolver does not implement,
    /// [`ResolveError::NotFound`] when the fragment or service names nothing, and the
    /// resolution errors.
    async fn dereference(
        &self,
        tenant: Option<&TenantContext>,
        did_url: &str,
        opts: &ResolveOptions,
    ) -> Result<Dereferenced, ResolveError> {
        let request = DidUrlRequest::parse(did_url, opts)?;
        let mut opts = request.options.clone();
        opts.expand_relative_urls = true;
        let resolution = self
            .resolve(tenant, request.url.did().as_str(), &opts)
            .await?;
        let Some(document) = &resolution.document else {
            return Err(ResolveError::not_found(did_url));
        };
        let resource = request.select(document)?;
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

impl Dereferenced {
    /// `resource` selected from `resolution`.
    #[must_use]
    pub const fn new(resolution: Resolution, resource: Resource) -> Self {
        Self {
            resolution,
            resource,
        }
    }
}

/// What a DID URL selects.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Resource {
    /// The whole document (no fragment, no `service`).
    Document,
    /// A verification method.
    VerificationMethod(VerificationMethod),
    /// A service: named by a fragment, or selected by `service`/`serviceType` when its
    /// endpoint is not a single URL.
    Service(Service),
    /// A URL: the endpoint of the selected service, with `relativeRef` resolved against it
    /// and the DID URL's fragment appended (DID Resolution §5, "service endpoint URL").
    Url(String),
}

/// `text/uri-list`: the content type of a dereferenced URL.
pub const URI_LIST: &str = "text/uri-list";

/// The DID URL dereferencing result as JSON: `{dereferencingMetadata, contentStream,
/// contentMetadata}` (DID Resolution §5, media type `application/did-url-dereferencing`).
/// A URL is the `contentStream` string with `contentType` `text/uri-list`; a document or a
/// node of it is the JSON object with the document's media type; errors are written as
/// `style` says.
#[must_use]
pub fn dereferencing_result(
    outcome: &Result<Dereferenced, ResolveError>,
    style: ErrorStyle,
) -> Value {
    match outcome {
        Ok(dereferenced) => {
            let resolution = &dereferenced.resolution;
            let media_type = resolution.representation.media_type();
            let (content_type, content) = match &dereferenced.resource {
                Resource::Url(url) => (URI_LIST, Value::String(url.clone())),
                Resource::Document => (
                    media_type,
                    resolution
                        .document
                        .as_ref()
                        .and_then(|document| serde_json::to_value(document).ok())
                        .unwrap_or(Value::Null),
                ),
                Resource::VerificationMethod(method) => (
                    media_type,
                    serde_json::to_value(method).unwrap_or(Value::Null),
                ),
                Resource::Service(service) => (
                    media_type,
                    serde_json::to_value(service).unwrap_or(Value::Null),
                ),
            };
            json!({
                "dereferencingMetadata": {"contentType": content_type},
                "contentStream": content,
                "contentMetadata": serde_json::to_value(&resolution.document_metadata)
                    .unwrap_or_else(|_| json!({})),
            })
        }
        Err(err) => {
            let error = match style {
                ErrorStyle::Problem => err.problem(),
                ErrorStyle::Legacy => Value::String(err.code().legacy().to_owned()),
            };
            json!({
                "dereferencingMetadata": {"error": error},
                "contentStream": null,
                "contentMetadata": {},
            })
        }
    }
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

    fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.entries.clear();
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

/// The DID parameters a DID URL may carry (DID Core §3.2.1, DID Resolution v1.0).
const DID_PARAMETERS: [&str; 6] = [
    "service",
    "serviceType",
    "relativeRef",
    "versionId",
    "versionTime",
    "versionNumber",
];

/// A parsed DID URL: the options its query carries, the service selection and the path.
#[derive(Debug)]
struct DidUrlRequest {
    url: DidUrl,
    options: ResolveOptions,
    service: Option<String>,
    service_type: Option<String>,
    relative_ref: Option<String>,
}

impl DidUrlRequest {
    fn parse(did_url: &str, opts: &ResolveOptions) -> Result<Self, ResolveError> {
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
        let (path, query) = before_fragment
            .split_once('?')
            .unwrap_or((before_fragment, ""));
        let mut request = Self {
            options: opts.clone(),
            service: None,
            service_type: None,
            relative_ref: None,
            url,
        };
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).ok_or_else(|| invalid("a DID parameter is not UTF-8"))?;
            let value = decode(value).ok_or_else(|| invalid("a DID parameter is not UTF-8"))?;
            if seen.contains(&name) {
                return Err(invalid("a DID parameter appears twice"));
            }
            if !DID_PARAMETERS.contains(&name.as_str()) {
                // `hl` (DID Core §3.2.1) and extension parameters.
                return Err(ResolveError::UnsupportedDidUrl {
                    feature: format!("parameter `{}`", name.chars().take(64).collect::<String>()),
                });
            }
            request.set(&name, value, &invalid)?;
            seen.push(name);
        }
        if request.relative_ref.is_some()
            && request.service.is_none()
            && request.service_type.is_none()
        {
            return Err(invalid("relativeRef needs service or serviceType"));
        }
        if !path.is_empty() {
            request.path(path, &invalid)?;
        }
        Ok(request)
    }

    fn set(
        &mut self,
        name: &str,
        value: String,
        invalid: &dyn Fn(&str) -> ResolveError,
    ) -> Result<(), ResolveError> {
        let duplicate = || invalid("a DID parameter appears twice");
        match name {
            "service" => self.service = Some(value),
            "serviceType" => self.service_type = Some(value),
            "relativeRef" => self.relative_ref = Some(value),
            "versionId" => {
                if self.options.version_id.is_some() {
                    return Err(duplicate());
                }
                self.options.version_id = Some(value);
            }
            "versionTime" => {
                if self.options.version_time.is_some() {
                    return Err(duplicate());
                }
                let time = DateTime::parse_from_rfc3339(&value)
                    .map_err(|_| invalid("versionTime is not an XML datetime"))?;
                self.options.version_time = Some(time.with_timezone(&Utc));
            }
            "versionNumber" => {
                if self.options.version_number.is_some() {
                    return Err(duplicate());
                }
                self.options.version_number = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("versionNumber is not a number"))?,
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// A DID URL path: did:webvh maps it to a service (did:webvh §"DID URL Resolution");
    /// other methods define none.
    fn path(
        &mut self,
        path: &str,
        invalid: &dyn Fn(&str) -> ResolveError,
    ) -> Result<(), ResolveError> {
        if self.url.did().method() != "webvh" {
            return Err(ResolveError::UnsupportedDidUrl {
                feature: format!("paths for did:{}", self.url.did().method()),
            });
        }
        if self.service.is_some() || self.service_type.is_some() || self.relative_ref.is_some() {
            return Err(invalid(
                "a DID URL path and the service parameters exclude each other",
            ));
        }
        let path = decode(path).ok_or_else(|| invalid("the path is not UTF-8"))?;
        if path == "/whois" {
            self.service = Some("whois".to_owned());
        } else {
            self.service = Some("files".to_owned());
            self.relative_ref = Some(path);
        }
        Ok(())
    }

    /// The resource the URL selects in `document` (relative URLs expanded).
    fn select(&self, document: &DidDocument) -> Result<Resource, ResolveError> {
        let did_url = self.url.as_str();
        let not_found = || ResolveError::not_found(did_url);
        if self.service.is_none() && self.service_type.is_none() {
            return Ok(match self.url.fragment() {
                Some(fragment) => {
                    let id = format!("#{fragment}");
                    if let Some(method) = document.verification_method(&id) {
                        Resource::VerificationMethod(method.clone())
                    } else if let Some(service) = document.service(&id) {
                        Resource::Service(service.clone())
                    } else {
                        return Err(not_found());
                    }
                }
                None => Resource::Document,
            });
        }
        let wanted_type = |service: &Service| {
            self.service_type
                .as_deref()
                .is_none_or(|wanted| match &service.service_type {
                    Value::String(name) => name == wanted,
                    Value::Array(names) => names.iter().any(|name| name.as_str() == Some(wanted)),
                    _ => false,
                })
        };
        let service = match &self.service {
            Some(id) => document
                .service(&format!("#{id}"))
                .filter(|service| wanted_type(service)),
            None => document.service.iter().find(|service| wanted_type(service)),
        }
        .ok_or_else(not_found)?;
        let endpoint = match &service.service_endpoint {
            Value::String(url) => Some(url.as_str()),
            Value::Array(items) => items.first().and_then(Value::as_str),
            _ => None,
        };
        let Some(endpoint) = endpoint else {
            if self.relative_ref.is_some() {
                return Err(ResolveError::InvalidDidUrl {
                    url: did_url.to_owned(),
                    reason: "the service endpoint is not a URL".to_owned(),
                });
            }
            return Ok(Resource::Service(service.clone()));
        };
        let mut url = match &self.relative_ref {
            Some(reference) => resolve_reference(did_url, service, endpoint, reference)?,
            None => endpoint.to_owned(),
        };
        if let Some(fragment) = self.url.fragment()
            && !url.contains('#')
        {
            url.push('#');
            url.push_str(fragment);
        }
        Ok(Resource::Url(url))
    }
}

/// Percent-decodes a DID URL component once (RFC 3986: `+` is not a space).
fn decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Resolves `reference` against the service's `endpoint` (DID Resolution §5, RFC 3986 §5).
/// A `relativeRef`-type service (did:webvh `#files`) holds files below its endpoint, so the
/// reference is taken relative to it even when it starts with `/`. References that could
/// leave the endpoint (`..` segments, a scheme or an authority, backslashes) are refused, and
/// only HTTP(S) endpoints are followed.
fn resolve_reference(
    did_url: &str,
    service: &Service,
    endpoint: &str,
    reference: &str,
) -> Result<String, ResolveError> {
    let invalid = |reason: &str| ResolveError::InvalidDidUrl {
        url: did_url.to_owned(),
        reason: reason.to_owned(),
    };
    let mut base =
        Url::parse(endpoint).map_err(|_| invalid("the service endpoint is not a URL"))?;
    if !matches!(base.scheme(), "https" | "http") {
        return Err(invalid("the service endpoint is not an HTTP(S) URL"));
    }
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let climbs = path.split('/').any(|segment| {
        let segment = decode(segment).unwrap_or_default();
        segment == ".." || segment == "."
    });
    if climbs
        || reference.contains('\\')
        || reference.starts_with("//")
        || Url::parse(reference).is_ok()
    {
        return Err(invalid("relativeRef must stay below the service endpoint"));
    }
    let below = service.service_type == Value::String("relativeRef".to_owned());
    let reference = if below {
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        reference.trim_start_matches('/')
    } else {
        reference
    };
    let joined = base
        .join(reference)
        .map_err(|_| invalid("relativeRef is not a relative reference"))?;
    if joined.origin() != base.origin() || (below && !joined.path().starts_with(base.path())) {
        return Err(invalid("relativeRef must stay below the service endpoint"));
    }
    Ok(joined.to_string())
}
