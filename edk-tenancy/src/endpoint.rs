//! Public endpoint bindings and the routing table that resolves requests to them.
//!
//! A binding ties a (tenant, service type) to a host, an optional path prefix and a
//! `.well-known` layout. Every URL a service advertises is built from its binding
//! ([`EndpointBinding::base_url`], [`EndpointBinding::well_known_url`]), never from a
//! request's `Host` header.
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
use std::net::Ipv6Addr;
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

/// The longest path prefix accepted, in bytes.
pub const PATH_PREFIX_MAX: usize = 255;

/// A binding of (tenant, service type) to a public endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointBinding {
    tenant: TenantId,
    service: ServiceType,
    host: String,
    port: Option<u16>,
    prefix: Vec<String>,
    well_known: WellKnownLayout,
    base: HttpsUrl,
}

impl EndpointBinding {
    /// Validates and builds a binding. `host` is normalised (IDNA, case, trailing dot) and must
    /// be a DNS name, not an IP literal; `port` 443 is the same as none; `path_prefix` is `""`
    /// or `/`-separated segments of `[a-z0-9][a-z0-9._~-]*`.
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
        let host = normalize_host(host).ok_or(BindingError::Host)?;
        if host.starts_with('[')
            || host.parse::<std::net::Ipv4Addr>().is_ok()
            || is_numeric_last_label(&host)
        {
            return Err(BindingError::Host);
        }
        let port = match port {
            Some(0) => return Err(BindingError::Port),
            Some(HTTPS_PORT) | None => None,
            Some(port) => Some(port),
        };
        let prefix = parse_prefix(path_prefix)?;
        let mut base = format!("https://{host}");
        if let Some(port) = port {
            base.push_str(&format!(":{port}"));
        }
        base.push('/');
        base.push_str(&prefix.join("/"));
        let base = HttpsUrl::parse(&base).map_err(|_| BindingError::Host)?;
        Ok(Self {
            tenant,
            service,
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

    /// The normalised (ASCII, lower-case) host.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when it is not 443.
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

    /// `https://host[:port]/prefix`: the base every advertised URL is built from.
    #[must_use]
    pub const fn base_url(&self) -> &HttpsUrl {
        &self.base
    }

    /// The base URL without a trailing `/`: the form used as an `issuer` or
    /// `credential_issuer` identifier.
    #[must_use]
    pub fn identifier(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of `path` (`/`-separated segments, no `.` or `..`) under this endpoint.
    ///
    /// # Errors
    /// [`BindingError::PathPrefix`] when `path` has a malformed segment.
    pub fn url(&self, path: &str) -> Result<HttpsUrl, BindingError> {
        let path = path.trim_start_matches('/');
        for segment in path.split('/') {
            check_url_segment(segment)?;
        }
        let url = format!("{}/{path}", self.identifier());
        HttpsUrl::parse(&url).map_err(|_| BindingError::PathPrefix {
            reason: "not a valid URL path",
        })
    }

    /// The URL of the `.well-known` document `name` for this endpoint: the inserted form
    /// `https://host/.well-known/<name><prefix>` (RFC 8414 §3, OID4VCI §12.2.2) unless the
    /// binding serves only the appended form.
    ///
    /// # Errors
    /// [`BindingError::PathPrefix`] when `name` is not a well-known name.
    pub fn well_known_url(&self, name: &str) -> Result<HttpsUrl, BindingError> {
        check_well_known_name(name)?;
        let mut authority = self.host.clone();
        if let Some(port) = self.port {
            authority.push_str(&format!(":{port}"));
        }
        let prefix = self.path_prefix();
        let url = if self.well_known.inserted() {
            format!("https://{authority}/.well-known/{name}{prefix}")
        } else {
            format!("https://{authority}{prefix}/.well-known/{name}")
        };
        HttpsUrl::parse(&url).map_err(|_| BindingError::PathPrefix {
            reason: "not a valid URL path",
        })
    }

    fn effective_port(&self) -> u16 {
        self.port.unwrap_or(HTTPS_PORT)
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
        let default_port = match request.scheme.to_ascii_lowercase().as_str() {
            "https" => HTTPS_PORT,
            "http" => return Err(ResolveError::NotBound),
            _ => return Err(ResolveError::Malformed { part: "scheme" }),
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
                b.service == service
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
                b.service == service
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
