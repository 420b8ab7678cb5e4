//! Public endpoint bindings and the routing table that resolves requests to them.
//!
//! A binding ties a (tenant, service type) to a host, an optional path prefix and a
//! `.well-known` layout. Every URL a service advertises is built from its binding
//! ([`EndpointBinding::base_url`], [`EndpointBinding::advertised_url`],
//! [`EndpointBinding::advertised_well_known_url`]), never from a request's `Host` header.
//! Bindings advertise `https` URLs; for local development a binding of a loopback host may
//! advertise plain `http` ([`EndpointBinding::dangerous_loopback_http`]).
//!
//! Requests are matched after normalisation: the host is mapped through IDNA (UTS #46, strict
//! STD3 rules and DNS lengths, which also lower-cases it) and loses one trailing dot; the
//! default port of the scheme is implied; the path is split into segments, percent-encoded
//! unreserved characters are decoded (RFC 3986 §6.2.2.2) and anything that could change the
//! segment structure (encoded `/` or `\`, control characters, `.` and `..` segments, empty
//! segments) is refused. Prefixes match whole segments only, and a prefix that matches a
//! request only when case is ignored fails closed instead of falling back to a shorter one.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use edk_core::{HttpsUrl, TenantId};
use serde::{Deserialize, Serialize};

use crate::error::{BindingError, ResolveError};

/// The kind of public service a binding serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceType {
    /// The tenant's OAuth 2 authorization server.
    As,
    /// DID publishing (`did:web`, `did:webvh`).
    Did,
    /// The OpenID4VCI credential issuer.
    Issuer,
    /// The OpenID4VP verifier.
    Verifier,
}

impl ServiceType {
    /// Every service type.
    pub const ALL: [Self; 4] = [Self::As, Self::Did, Self::Issuer, Self::Verifier];

    /// The name stored in the registry.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::As => "as",
            Self::Did => "did",
            Self::Issuer => "issuer",
            Self::Verifier => "verifier",
        }
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceType {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, BindingError> {
        Self::ALL
            .into_iter()
            .find(|service| service.as_str() == s)
            .ok_or_else(|| BindingError::Service {
                value: s.to_owned(),
            })
    }
}

/// Where a binding's `.well-known` documents live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WellKnownLayout {
    /// `<prefix>/.well-known/<name>` (OpenID Connect Discovery style) only.
    Appended,
    /// Both forms are served; advertised URLs use the inserted form.
    Both,
    /// `/.well-known/<name><prefix>`: RFC 8414 §3 and OID4VCI §12.2.2.
    #[default]
    Inserted,
}

impl WellKnownLayout {
    /// The name stored in the registry.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Appended => "appended",
            Self::Both => "both",
            Self::Inserted => "inserted",
        }
    }

    const fn inserted(self) -> bool {
        matches!(self, Self::Inserted | Self::Both)
    }

    const fn appended(self) -> bool {
        matches!(self, Self::Appended | Self::Both)
    }
}

impl FromStr for WellKnownLayout {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, BindingError> {
        [Self::Appended, Self::Both, Self::Inserted]
            .into_iter()
            .find(|layout| layout.as_str() == s)
            .ok_or_else(|| BindingError::WellKnownLayout {
                value: s.to_owned(),
            })
    }
}

/// The scheme of the URLs a binding advertises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndpointScheme {
    /// Plain `http`, for loopback hosts in local development only
    /// ([`EndpointBinding::dangerous_loopback_http`]).
    Http,
    /// `https`: every binding unless it opted out.
    #[default]
    Https,
}

impl EndpointScheme {
    /// The scheme's name, as stored in the registry and written in URLs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port a URL of this scheme implies: 80 or 443.
    #[must_use]
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Http => HTTP_PORT,
            Self::Https => HTTPS_PORT,
        }
    }
}

impl fmt::Display for EndpointScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EndpointScheme {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, BindingError> {
        [Self::Http, Self::Https]
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| BindingError::Scheme {
                value: s.to_owned(),
            })
    }
}

/// The longest path prefix accepted, in bytes.
pub const PATH_PREFIX_MAX: usize = 255;

/// A binding of (tenant, service type) to a public endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointBinding {
    tenant: TenantId,
    service: ServiceType,
    scheme: EndpointScheme,
    host: String,
    port: Option<u16>,
    prefix: Vec<String>,
    well_known: WellKnownLayout,
    base: url::Url,
}

impl EndpointBinding {
    /// Validates and builds a binding that advertises `https` URLs. `host` is normalised
    /// (IDNA, case, trailing dot) and must be a DNS name, not an IP literal; `port` 443 is the
    /// same as none; `path_prefix` is `""` or `/`-separated segments of
    /// `[a-z0-9][a-z0-9._~-]*`.
    ///
    /// # Errors
    /// [`BindingError`] naming the part that was refused.
    pub fn new(
        tenant: TenantId,
        service: ServiceType,
        host: &str,
        port: Option<u16>,
        path_prefix: &str,
        well_known: WellKnownLayout,
    ) -> Result<Self, BindingError> {
        Self::with_scheme(
            tenant,
            service,
            EndpointScheme::Https,
            host,
            port,
            path_prefix,
            well_known,
        )
    }

    /// A binding that advertises plain `http` URLs (`http://localhost:8080`), for local
    /// development without TLS. Only loopback hosts are accepted: `localhost`, names under
    /// `.localhost` (RFC 6761 §6.3), IPv4 addresses in `127.0.0.0/8` (written in full, e.g.
    /// `127.0.0.1`) and `[::1]`. `port` 80 is the same as none; the other parts are checked
    /// as by [`EndpointBinding::new`]. The binding is stored with its scheme, and
    /// [`crate::Tenancy::bind`] logs it at WARN.
    ///
    /// # Errors
    /// [`BindingError::HttpNotLoopback`] for any other host, else as [`EndpointBinding::new`].
    pub fn dangerous_loopback_http(
        tenant: TenantId,
        service: ServiceType,
        host: &str,
        port: Option<u16>,
        path_prefix: &str,
        well_known: WellKnownLayout,
    ) -> Result<Self, BindingError> {
        Self::with_scheme(
            tenant,
            service,
            EndpointScheme::Http,
            host,
            port,
            path_prefix,
            well_known,
        )
    }

    /// [`EndpointBinding::new`] or [`EndpointBinding::dangerous_loopback_http`], as `scheme`
    /// says; for bindings read back from storage.
    ///
    /// # Errors
    /// As the constructor `scheme` selects.
    pub fn with_scheme(
        tenant: TenantId,
        service: ServiceType,
        scheme: EndpointScheme,
        host: &str,
        port: Option<u16>,
        path_prefix: &str,
        well_known: WellKnownLayout,
    ) -> Result<Self, BindingError> {
        let host = normalize_host(host).ok_or(BindingError::Host)?;
        match scheme {
            EndpointScheme::Https => {
                if host.starts_with('[')
                    || host.parse::<Ipv4Addr>().is_ok()
                    || is_numeric_last_label(&host)
                {
                    return Err(BindingError::Host);
                }
            }
            EndpointScheme::Http => {
                if !is_loopback_host(&host) {
                    return Err(BindingError::HttpNotLoopback);
                }
            }
        }
        let port = match port {
            Some(0) => return Err(BindingError::Port),
            Some(port) if port == scheme.default_port() => None,
            other => other,
        };
        let prefix = parse_prefix(path_prefix)?;
        let mut base = format!("{scheme}://{host}");
        if let Some(port) = port {
            base.push_str(&format!(":{port}"));
        }
        base.push('/');
        base.push_str(&prefix.join("/"));
        let base = url::Url::parse(&base).map_err(|_| BindingError::Host)?;
        if base.scheme() != scheme.as_str() || base.host().is_none() {
            return Err(BindingError::Host);
        }
        Ok(Self {
            tenant,
            service,
            scheme,
            host,
            port,
            prefix,
            well_known,
            base,
        })
    }

    /// The tenant this endpoint serves.
    #[must_use]
    pub const fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The service type.
    #[must_use]
    pub const fn service(&self) -> ServiceType {
        self.service
    }

    /// The scheme of the URLs it advertises: `https` unless built with
    /// [`EndpointBinding::dangerous_loopback_http`].
    #[must_use]
    pub const fn scheme(&self) -> EndpointScheme {
        self.scheme
    }

    /// The normalised (ASCII, lower-case) host.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when it is not the scheme's default (443, or 80 for plain `http`).
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path prefix: `""` for the host root, else `/a/b`.
    #[must_use]
    pub fn path_prefix(&self) -> String {
        self.prefix.iter().fold(String::new(), |mut out, segment| {
            out.push('/');
            out.push_str(segment);
            out
        })
    }

    /// The `.well-known` layout.
    #[must_use]
    pub const fn well_known(&self) -> WellKnownLayout {
        self.well_known
    }

    /// `https://host[:port]/prefix` (or `http://` for a
    /// [`EndpointBinding::dangerous_loopback_http`] binding): the base every advertised URL is
    /// built from.
    #[must_use]
    pub const fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// The base URL without a trailing `/`: the form used as an `issuer` or
    /// `credential_issuer` identifier. It has the binding's scheme.
    #[must_use]
    pub fn identifier(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of `path` (`/`-separated segments, no `.` or `..`) under this endpoint, with the
    /// binding's scheme.
    ///
    /// # Errors
    /// [`BindingError::PathPrefix`] when `path` has a malformed segment.
    pub fn advertised_url(&self, path: &str) -> Result<url::Url, BindingError> {
        let path = path.trim_start_matches('/');
        for segment in path.split('/') {
            check_url_segment(segment)?;
        }
        let url = format!("{}/{path}", self.identifier());
        url::Url::parse(&url).map_err(|_| BindingError::PathPrefix {
            reason: "not a valid URL path",
        })
    }

    /// [`EndpointBinding::advertised_url`] as an [`HttpsUrl`], for an `https` binding.
    ///
    /// # Errors
    /// [`BindingError::NotHttps`] for a plain `http` binding, else as
    /// [`EndpointBinding::advertised_url`].
    pub fn url(&self, path: &str) -> Result<HttpsUrl, BindingError> {
        self.https(&self.advertised_url(path)?)
    }

    /// The URL of the `.well-known` document `name` for this endpoint, with the binding's
    /// scheme: the inserted form `https://host/.well-known/<name><prefix>` (RFC 8414 §3,
    /// OID4VCI §12.2.2) unless the binding serves only the appended form.
    ///
    /// # Errors
    /// [`BindingError::PathPrefix`] when `name` is not a well-known name.
    pub fn advertised_well_known_url(&self, name: &str) -> Result<url::Url, BindingError> {
        check_well_known_name(name)?;
        let mut authority = self.host.clone();
        if let Some(port) = self.port {
            authority.push_str(&format!(":{port}"));
        }
        let prefix = self.path_prefix();
        let scheme = self.scheme;
        let url = if self.well_known.inserted() {
            format!("{scheme}://{authority}/.well-known/{name}{prefix}")
        } else {
            format!("{scheme}://{authority}{prefix}/.well-known/{name}")
        };
        url::Url::parse(&url).map_err(|_| BindingError::PathPrefix {
            reason: "not a valid URL path",
        })
    }

    /// [`EndpointBinding::advertised_well_known_url`] as an [`HttpsUrl`], for an `https`
    /// binding.
    ///
    /// # Errors
    /// [`BindingError::NotHttps`] for a plain `http` binding, else as
    /// [`EndpointBinding::advertised_well_known_url`].
    pub fn well_known_url(&self, name: &str) -> Result<HttpsUrl, BindingError> {
        self.https(&self.advertised_well_known_url(name)?)
    }

    fn https(&self, url: &url::Url) -> Result<HttpsUrl, BindingError> {
        if self.scheme != EndpointScheme::Https {
            return Err(BindingError::NotHttps);
        }
        HttpsUrl::parse(url.as_str()).map_err(|_| BindingError::PathPrefix {
            reason: "not a valid URL path",
        })
    }

    /// The port requests arrive on: the explicit one, else the scheme's default.
    pub(crate) fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }
}

/// What a request looked like when it reached the server: the parts routing needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRequest {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl EndpointRequest {
    /// A request for `scheme://host[:port]path`. `host` is the host alone (no port); `path`
    /// may carry a query, which routing ignores.
    #[must_use]
    pub fn new(scheme: &str, host: &str, port: Option<u16>, path: &str) -> Self {
        Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    /// The request path, as received.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A request for an absolute URL.
    #[must_use]
    pub fn from_url(url: &url::Url) -> Self {
        Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port(),
            path: url.path().to_owned(),
        }
    }
}

/// The part of a request path that is left once the tenant's endpoint is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutedPath {
    /// A path under the endpoint, starting with `/` (just `/` for the endpoint itself).
    Service {
        /// The path below the prefix.
        rest: String,
    },
    /// A `.well-known` document of the endpoint.
    WellKnown {
        /// The well-known name, e.g. `openid-credential-issuer`.
        name: String,
        /// Anything after the name in the appended form (normally empty).
        rest: String,
    },
}

/// A request matched to a binding.
#[derive(Clone, Debug)]
pub struct RouteMatch {
    /// The binding that matched.
    pub binding: Arc<EndpointBinding>,
    /// What is left of the path.
    pub path: RoutedPath,
}

/// An in-memory index of bindings: by (host, port), then by the first segment of the path
/// prefix, so a lookup compares against the few bindings that can match, however many
/// tenants share a host.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    hosts: HashMap<HostKey, HostRoutes>,
    len: usize,
}

type HostKey = (Box<str>, u16);

#[derive(Clone, Debug, Default)]
struct HostRoutes {
    /// Bindings at the host root.
    root: Vec<Arc<EndpointBinding>>,
    /// Bindings with a prefix, by its first segment; longest prefix first.
    by_first: HashMap<Box<str>, Vec<Arc<EndpointBinding>>>,
}

impl HostRoutes {
    /// The bindings whose prefix may match a path starting with `first` (compared without
    /// case, so that a case-only match can fail closed), longest prefix first, then the root
    /// bindings.
    fn candidates(&self, first: Option<&String>) -> impl Iterator<Item = &Arc<EndpointBinding>> {
        let prefixed = first
            .and_then(|segment| self.by_first.get(segment.to_ascii_lowercase().as_str()))
            .into_iter()
            .flatten();
        prefixed.chain(&self.root)
    }
}

impl RoutingTable {
    /// Indexes `bindings`.
    #[must_use]
    pub fn new(bindings: impl IntoIterator<Item = EndpointBinding>) -> Self {
        let mut table = Self::default();
        for binding in bindings {
            table.insert(Arc::new(binding));
        }
        table
    }

    /// How many bindings the table holds.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no binding.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Matches a request for `service` to a binding.
    ///
    /// # Errors
    /// [`ResolveError::Malformed`] for a request that cannot be normalised,
    /// [`ResolveError::NotBound`] when nothing (or nothing unambiguous) matches.
    pub fn lookup(
        &self,
        service: ServiceType,
        request: &EndpointRequest,
    ) -> Result<RouteMatch, ResolveError> {
        // Servers behind TLS termination say `https` for every request, so an `https` request
        // reaches any binding of its host and port; a plain `http` request reaches only the
        // bindings that advertise `http` (loopback hosts).
        let (default_port, http_only) = match request.scheme.to_ascii_lowercase().as_str() {
            "https" => (HTTPS_PORT, false),
            "http" => (HTTP_PORT, true),
            _ => return Err(ResolveError::Malformed { part: "scheme" }),
        };
        let reachable = |b: &EndpointBinding| {
            b.service == service && (!http_only || b.scheme == EndpointScheme::Http)
        };
        let host = normalize_host(&request.host).ok_or(ResolveError::Malformed { part: "host" })?;
        let port = request.port.unwrap_or(default_port);
        let path = NormalizedPath::parse(&request.path)?;
        let key: HostKey = (host.into_boxed_str(), port);
        let routes = self.hosts.get(&key).ok_or(ResolveError::NotBound)?;
        let segments = path.segments.as_slice();

        // `/.well-known/<name><prefix>` (RFC 8414 §3): the whole rest is the prefix.
        if let [first, name, tail @ ..] = segments
            && first == WELL_KNOWN
        {
            let inserted = routes.candidates(tail.first()).find(|b| {
                reachable(b)
                    && b.well_known.inserted()
                    && segments_match_ignoring_case(tail, &b.prefix)
            });
            if let Some(binding) = inserted {
                if tail != binding.prefix.as_slice() {
                    return Err(ResolveError::NotBound);
                }
                return Ok(RouteMatch {
                    binding: Arc::clone(binding),
                    path: RoutedPath::WellKnown {
                        name: name.clone(),
                        rest: String::new(),
                    },
                });
            }
        }

        let binding = routes
            .candidates(segments.first())
            .find(|b| {
                reachable(b)
                    && segments
                        .get(..b.prefix.len())
                        .is_some_and(|head| segments_match_ignoring_case(head, &b.prefix))
            })
            .ok_or(ResolveError::NotBound)?;
        let (head, rest) = segments.split_at(binding.prefix.len());
        if head != binding.prefix.as_slice() {
            return Err(ResolveError::NotBound);
        }
        let routed = match rest {
            [first, name, tail @ ..] if first == WELL_KNOWN => {
                if !binding.well_known.appended() {
                    return Err(ResolveError::NotBound);
                }
                RoutedPath::WellKnown {
                    name: name.clone(),
                    rest: join_path(tail, path.trailing_slash),
                }
            }
            _ => RoutedPath::Service {
                rest: join_path(rest, path.trailing_slash),
            },
        };
        Ok(RouteMatch {
            binding: Arc::clone(binding),
            path: routed,
        })
    }

    /// A copy of the table in which `tenant`'s bindings are replaced by `bindings`.
    #[must_use]
    pub fn with_tenant_replaced(&self, tenant: TenantId, bindings: Vec<EndpointBinding>) -> Self {
        let mut table = Self::default();
        let kept = self
            .hosts
            .values()
            .flat_map(|routes| routes.by_first.values().flatten().chain(&routes.root))
            .filter(|b| b.tenant != tenant);
        for binding in kept {
            table.insert(Arc::clone(binding));
        }
        for binding in bindings {
            table.insert(Arc::new(binding));
        }
        table
    }

    fn insert(&mut self, binding: Arc<EndpointBinding>) {
        let key: HostKey = (
            binding.host.clone().into_boxed_str(),
            binding.effective_port(),
        );
        let routes = self.hosts.entry(key).or_default();
        let list = match binding.prefix.first() {
            None => &mut routes.root,
            Some(first) => routes.by_first.entry(first.as_str().into()).or_default(),
        };
        // Longest prefix first, so the first match is the most specific one.
        let at = list
            .iter()
            .position(|b| b.prefix.len() < binding.prefix.len())
            .unwrap_or(list.len());
        list.insert(at, binding);
        self.len += 1;
    }
}

const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 443;
const WELL_KNOWN: &str = ".well-known";

/// Normalises a host for comparison: one trailing dot removed, IPv6 literals checked, and
/// every other host mapped through IDNA with strict STD3 rules and DNS length checks (which
/// also lower-cases it). `None` when the host cannot be a valid host name.
pub(crate) fn normalize_host(raw: &str) -> Option<String> {
    let host = raw.strip_suffix('.').unwrap_or(raw);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    if let Some(inner) = host.strip_prefix('[') {
        let addr: Ipv6Addr = inner.strip_suffix(']')?.parse().ok()?;
        return Some(format!("[{addr}]"));
    }
    let ascii = idna::domain_to_ascii_strict(host).ok()?;
    (!ascii.is_empty()).then_some(ascii)
}

/// Whether a normalised host names the loopback interface: `localhost`, a name under
/// `.localhost` (RFC 6761 §6.3), an IPv4 address in `127.0.0.0/8` written in full, or `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .is_ok_and(|addr| addr.is_loopback());
    }
    host.parse::<Ipv4Addr>()
        .is_ok_and(|addr| addr.is_loopback())
}

fn is_numeric_last_label(host: &str) -> bool {
    host.rsplit('.')
        .next()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_prefix(raw: &str) -> Result<Vec<String>, BindingError> {
    if raw.len() > PATH_PREFIX_MAX {
        return Err(BindingError::PathPrefix { reason: "too long" });
    }
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split('/')
        .map(|segment| {
            let mut bytes = segment.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            let rest_ok = bytes.all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'~' | b'-')
            });
            if first_ok && rest_ok {
                Ok(segment.to_owned())
            } else {
                Err(BindingError::PathPrefix {
                    reason: "segments are [a-z0-9][a-z0-9._~-]*",
                })
            }
        })
        .collect()
}

fn check_url_segment(segment: &str) -> Result<(), BindingError> {
    let ok = segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BindingError::PathPrefix {
            reason: "path segments are unreserved characters, not `.` or `..`",
        })
    }
}

fn check_well_known_name(name: &str) -> Result<(), BindingError> {
    if name.is_empty() || name.contains('/') {
        return Err(BindingError::PathPrefix {
            reason: "a well-known name is one segment",
        });
    }
    check_url_segment(name)
}

fn segments_match_ignoring_case(request: &[String], prefix: &[String]) -> bool {
    request.len() == prefix.len()
        && request
            .iter()
            .zip(prefix)
            .all(|(r, p)| r.eq_ignore_ascii_case(p))
}

fn join_path(segments: &[String], trailing_slash: bool) -> String {
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if trailing_slash && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// A request path split into decoded segments.
#[derive(Debug, PartialEq, Eq)]
struct NormalizedPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl NormalizedPath {
    fn parse(raw: &str) -> Result<Self, ResolveError> {
        const MALFORMED: ResolveError = ResolveError::Malformed { part: "path" };
        let raw = raw.split(['?', '#']).next().unwrap_or_default();
        let raw = if raw.is_empty() { "/" } else { raw };
        let body = raw.strip_prefix('/').ok_or(MALFORMED)?;
        if body.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
                trailing_slash: false,
            });
        }
        let trailing_slash = body.ends_with('/');
        let body = body.strip_suffix('/').unwrap_or(body);
        let segments = body
            .split('/')
            .map(decode_segment)
            .collect::<Option<Vec<_>>>()
            .ok_or(MALFORMED)?;
        Ok(Self {
            segments,
            trailing_slash,
        })
    }
}

/// Decodes percent-encoded unreserved characters and upper-cases the hex of the others.
/// `None` for an empty, `.` or `..` segment, an encoded `/`, `\` or control character, a
/// raw `\`, non-ASCII or control byte, or broken percent-encoding.
fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            let value = u8::from_str_radix(text, 16).ok()?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else if value.is_ascii_control() || matches!(value, b'/' | b'\\') {
                return None;
            } else {
                out.push('%');
                out.push_str(&text.to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        if !b.is_ascii() || b.is_ascii_control() || b == b'\\' {
            return None;
        }
        out.push(char::from(b));
        i += 1;
    }
    if out.is_empty() || out == "." || out == ".." {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn binding(n: u128, host: &str, prefix: &str, layout: WellKnownLayout) -> EndpointBinding {
        EndpointBinding::new(tenant(n), ServiceType::Issuer, host, None, prefix, layout).unwrap()
    }

    fn lookup(
        table: &RoutingTable,
        host: &str,
        port: Option<u16>,
        path: &str,
    ) -> Result<RouteMatch, ResolveError> {
        table.lookup(
            ServiceType::Issuer,
            &EndpointRequest::new("https", host, port, path),
        )
    }

    #[test]
    fn hosts_normalise_case_trailing_dot_and_idna() {
        assert_eq!(
            normalize_host("Issuer.Example."),
            Some("issuer.example".to_owned())
        );
        assert_eq!(
            normalize_host("bücher.example"),
            Some("xn--bcher-kva.example".to_owned())
        );
        assert_eq!(normalize_host("[::1]"), Some("[::1]".to_owned()));
        assert_eq!(normalize_host(&format!("{}.example", "a".repeat(64))), None);
        for bad in [
            "",
            ".",
            "a..b",
            "a b",
            "a/b",
            "a%2eb",
            "a_b.example",
            "[::1",
        ] {
            assert_eq!(normalize_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bindings_refuse_ip_literals_and_bad_prefixes() {
        let t = tenant(1);
        let make = |host: &str, prefix: &str| {
            EndpointBinding::new(
                t,
                ServiceType::Issuer,
                host,
                None,
                prefix,
                WellKnownLayout::Inserted,
            )
        };
        assert_eq!(make("127.0.0.1", ""), Err(BindingError::Host));
        assert_eq!(make("[::1]", ""), Err(BindingError::Host));
        assert!(make("issuer.example", "/Acme").is_err());
        assert!(make("issuer.example", "/a/../b").is_err());
        assert!(make("issuer.example", "/.well-known").is_err());
        assert!(make("issuer.example", "/a%2fb").is_err());
        let ok = make("Issuer.Example", "/acme/eu/").unwrap();
        assert_eq!(ok.path_prefix(), "/acme/eu");
        assert_eq!(ok.identifier(), "https://issuer.example/acme/eu");
    }

    #[test]
    fn urls_are_built_from_the_binding() {
        let b = binding(1, "issuer.example", "/acme", WellKnownLayout::Inserted);
        assert_eq!(
            b.well_known_url("openid-credential-issuer")
                .unwrap()
                .as_str(),
            "https://issuer.example/.well-known/openid-credential-issuer/acme"
        );
        assert_eq!(
            b.url("credential").unwrap().as_str(),
            "https://issuer.example/acme/credential"
        );
        assert!(b.url("../admin").is_err());
        let appended = EndpointBinding::new(
            tenant(2),
            ServiceType::As,
            "as.example",
            Some(8443),
            "/t",
            WellKnownLayout::Appended,
        )
        .unwrap();
        assert_eq!(
            appended
                .well_known_url("openid-configuration")
                .unwrap()
                .as_str(),
            "https://as.example:8443/t/.well-known/openid-configuration"
        );
        let root = binding(3, "root.example", "", WellKnownLayout::Inserted);
        assert_eq!(root.identifier(), "https://root.example");
        assert_eq!(
            root.well_known_url("oauth-authorization-server")
                .unwrap()
                .as_str(),
            "https://root.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn prefixes_match_whole_segments_and_longest_first() {
        let table = RoutingTable::new([
            binding(1, "issuer.example", "", WellKnownLayout::Inserted),
            binding(2, "issuer.example", "/acme", WellKnownLayout::Both),
            binding(3, "issuer.example", "/acme/eu", WellKnownLayout::Inserted),
        ]);
        let who =
            |path: &str| lookup(&table, "issuer.example", None, path).map(|m| m.binding.tenant());
        assert_eq!(who("/acme/credential").unwrap(), tenant(2));
        assert_eq!(who("/acme-corp/credential").unwrap(), tenant(1));
        assert_eq!(who("/acme/eu/credential").unwrap(), tenant(3));
        assert_eq!(who("/acme/euro").unwrap(), tenant(2));
        assert_eq!(who("/%61cme/credential").unwrap(), tenant(2));
        assert!(matches!(
            who("/ACME/credential"),
            Err(ResolveError::NotBound)
        ));
        assert!(matches!(
            who("/acme/../x"),
            Err(ResolveError::Malformed { .. })
        ));
        assert!(matches!(
            who("/acme%2Feu/x"),
            Err(ResolveError::Malformed { .. })
        ));
        assert!(matches!(
            who("/acme//x"),
            Err(ResolveError::Malformed { .. })
        ));
    }

    #[test]
    fn well_known_forms_follow_the_layout() {
        let table = RoutingTable::new([
            binding(2, "issuer.example", "/acme", WellKnownLayout::Inserted),
            binding(3, "issuer.example", "/beta", WellKnownLayout::Appended),
        ]);
        let inserted = lookup(
            &table,
            "issuer.example",
            None,
            "/.well-known/openid-credential-issuer/acme",
        )
        .unwrap();
        assert_eq!(inserted.binding.tenant(), tenant(2));
        assert_eq!(
            inserted.path,
            RoutedPath::WellKnown {
                name: "openid-credential-issuer".to_owned(),
                rest: String::new()
            }
        );
        assert!(
            lookup(
                &table,
                "issuer.example",
                None,
                "/acme/.well-known/openid-credential-issuer"
            )
            .is_err()
        );
        assert!(
            lookup(
                &table,
                "issuer.example",
                None,
                "/.well-known/openid-credential-issuer/beta"
            )
            .is_err()
        );
        let appended = lookup(
            &table,
            "issuer.example",
            None,
            "/beta/.well-known/openid-credential-issuer",
        )
        .unwrap();
        assert_eq!(appended.binding.tenant(), tenant(3));
        assert!(
            lookup(
                &table,
                "issuer.example",
                None,
                "/.well-known/openid-credential-issuer/acme/x"
            )
            .is_err()
        );
    }

    #[test]
    fn ports_and_schemes_must_match() {
        let table =
            RoutingTable::new([binding(1, "issuer.example", "", WellKnownLayout::Inserted)]);
        assert!(lookup(&table, "issuer.example", Some(443), "/").is_ok());
        assert!(lookup(&table, "issuer.example", Some(8443), "/").is_err());
        let http = table.lookup(
            ServiceType::Issuer,
            &EndpointRequest::new("http", "issuer.example", None, "/"),
        );
        assert!(matches!(http, Err(ResolveError::NotBound)));
        assert!(
            table
                .lookup(
                    ServiceType::Verifier,
                    &EndpointRequest::new("https", "issuer.example", None, "/")
                )
                .is_err()
        );
    }

    fn http(host: &str, port: Option<u16>) -> Result<EndpointBinding, BindingError> {
        EndpointBinding::dangerous_loopback_http(
            tenant(1),
            ServiceType::As,
            host,
            port,
            "",
            WellKnownLayout::Inserted,
        )
    }

    #[test]
    fn loopback_bindings_may_advertise_http() {
        let b = http("localhost", Some(8080)).unwrap();
        assert_eq!(b.scheme(), EndpointScheme::Http);
        assert_eq!(b.identifier(), "http://localhost:8080");
        assert_eq!(b.base_url().as_str(), "http://localhost:8080/");
        assert_eq!(
            b.advertised_url("token").unwrap().as_str(),
            "http://localhost:8080/token"
        );
        assert_eq!(
            b.advertised_well_known_url("oauth-authorization-server")
                .unwrap()
                .as_str(),
            "http://localhost:8080/.well-known/oauth-authorization-server"
        );
        assert_eq!(b.url("token"), Err(BindingError::NotHttps));
        assert_eq!(
            b.well_known_url("oauth-authorization-server"),
            Err(BindingError::NotHttps)
        );
        for (host, port, identifier) in [
            ("LocalHost.", None, "http://localhost"),
            ("localhost", Some(80), "http://localhost"),
            ("edk.localhost", Some(8080), "http://edk.localhost:8080"),
            ("127.0.0.1", Some(8080), "http://127.0.0.1:8080"),
            ("127.10.20.30", None, "http://127.10.20.30"),
            ("[::1]", Some(8080), "http://[::1]:8080"),
        ] {
            let b = http(host, port).unwrap();
            assert_eq!(b.identifier(), identifier, "{host}");
        }
    }

    #[test]
    fn http_is_refused_for_hosts_that_are_not_loopback() {
        for host in [
            "example.com",
            "localhost.example",
            "notlocalhost",
            "10.0.0.1",
            "128.0.0.1",
            "127.1",
            "[::2]",
            "[::ffff:127.0.0.1]",
        ] {
            assert_eq!(
                http(host, Some(8080)),
                Err(BindingError::HttpNotLoopback),
                "{host}"
            );
        }
        assert_eq!(
            BindingError::HttpNotLoopback.to_string(),
            "plain http is allowed only for loopback hosts: localhost, *.localhost, \
             127.0.0.0/8 and [::1]"
        );
    }

    #[test]
    fn bindings_are_https_by_default() {
        let b = EndpointBinding::new(
            tenant(1),
            ServiceType::As,
            "localhost",
            Some(8080),
            "",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        assert_eq!(b.scheme(), EndpointScheme::Https);
        assert_eq!(b.identifier(), "https://localhost:8080");
        assert_eq!(
            b.url("token").unwrap().as_str(),
            "https://localhost:8080/token"
        );
        assert_eq!(
            b.advertised_url("token").unwrap().as_str(),
            "https://localhost:8080/token"
        );
        assert_eq!(EndpointScheme::default(), EndpointScheme::Https);
        assert_eq!("http".parse::<EndpointScheme>(), Ok(EndpointScheme::Http));
        assert!(matches!(
            "ftp".parse::<EndpointScheme>(),
            Err(BindingError::Scheme { .. })
        ));
    }

    #[test]
    fn http_requests_reach_only_http_bindings() {
        let table = RoutingTable::new([
            http("localhost", Some(8080)).unwrap(),
            http("localhost", None).unwrap(),
            EndpointBinding::new(
                tenant(3),
                ServiceType::As,
                "localhost",
                Some(8443),
                "",
                WellKnownLayout::Inserted,
            )
            .unwrap(),
        ]);
        let find = |scheme: &str, port: Option<u16>| {
            table
                .lookup(
                    ServiceType::As,
                    &EndpointRequest::new(scheme, "localhost", port, "/token"),
                )
                .map(|m| m.binding.identifier().to_owned())
        };
        assert_eq!(find("http", Some(8080)).unwrap(), "http://localhost:8080");
        assert_eq!(find("http", None).unwrap(), "http://localhost");
        assert_eq!(find("http", Some(80)).unwrap(), "http://localhost");
        // Servers behind TLS termination say https for every request.
        assert_eq!(find("https", Some(8080)).unwrap(), "http://localhost:8080");
        assert!(matches!(
            find("http", Some(8443)),
            Err(ResolveError::NotBound)
        ));
        assert_eq!(find("https", Some(8443)).unwrap(), "https://localhost:8443");
    }

    #[test]
    fn replacing_a_tenant_keeps_the_others() {
        let table = RoutingTable::new([
            binding(1, "a.example", "", WellKnownLayout::Inserted),
            binding(2, "b.example", "", WellKnownLayout::Inserted),
        ]);
        let next = table.with_tenant_replaced(
            tenant(1),
            vec![binding(1, "c.example", "", WellKnownLayout::Inserted)],
        );
        assert_eq!(next.len(), 2);
        assert!(lookup(&next, "a.example", None, "/").is_err());
        assert_eq!(
            lookup(&next, "c.example", None, "/")
                .unwrap()
                .binding
                .tenant(),
            tenant(1)
        );
        assert_eq!(
            lookup(&next, "b.example", None, "/")
                .unwrap()
                .binding
                .tenant(),
            tenant(2)
        );
    }
}
