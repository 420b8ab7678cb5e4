//! What remote did:web and did:webvh fetches may reach: [`FetchPolicy`] (ports, concurrent
//! fetches, fixed host addresses, and the `dangerous_allow_private_addresses` opt-in) and
//! [`PublicAddressResolver`], the DNS resolver [`super::web::client_builder`] installs.
//!
//! A DID names a host that anyone can point anywhere, including at the resolver's own
//! network (loopback, private and link-local addresses, cloud metadata services). The
//! resolver refuses such addresses after name resolution, inside the HTTP client's DNS step,
//! so the address checked is the address connected to: a name that resolves to a public
//! address on one lookup and to a private one on the next (DNS rebinding) is refused on the
//! second. Ports other than the configured ones (443 by default) are refused before any
//! connection.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{Error, ResolveError};

/// The default of [`FetchPolicy::max_concurrent_fetches`].
pub const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 16;

/// The default of [`FetchPolicy::queue_timeout`], in milliseconds.
pub const DEFAULT_QUEUE_TIMEOUT_MILLIS: u64 = 5_000;

/// What remote did:web and did:webvh fetches may reach, and how many run at once.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFetchPolicy")]
pub struct FetchPolicy {
    allowed_ports: Vec<u16>,
    max_concurrent_fetches: usize,
    queue_timeout_millis: u64,
    hosts: BTreeMap<String, IpAddr>,
    dangerous_allow_private_addresses: bool,
}

/// The configuration form of [`FetchPolicy`], checked by conversion.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFetchPolicy {
    /// Ports a DID's host may name (its HTTPS port); others are refused. Default `[443]`.
    allowed_ports: Vec<u16>,
    /// Fetches in flight at once; others wait for a slot. Default 16.
    max_concurrent_fetches: usize,
    /// How long a fetch waits for a slot before it fails, in milliseconds. Default 5000.
    queue_timeout_millis: u64,
    /// Fixed addresses for host names, used instead of DNS (like `/etc/hosts`); the address
    /// rule applies to them too. Default none.
    hosts: BTreeMap<String, IpAddr>,
    /// Also fetch from loopback, private, link-local and other non-public addresses. Only
    /// for tests and closed networks; logged at WARN. Default `false`.
    dangerous_allow_private_addresses: bool,
}

impl Default for RawFetchPolicy {
    fn default() -> Self {
        Self {
            allowed_ports: vec![443],
            max_concurrent_fetches: DEFAULT_MAX_CONCURRENT_FETCHES,
            queue_timeout_millis: DEFAULT_QUEUE_TIMEOUT_MILLIS,
            hosts: BTreeMap::new(),
            dangerous_allow_private_addresses: false,
        }
    }
}

impl TryFrom<RawFetchPolicy> for FetchPolicy {
    type Error = Error;

    fn try_from(raw: RawFetchPolicy) -> Result<Self, Error> {
        if raw.allowed_ports.is_empty() || raw.allowed_ports.contains(&0) {
            return Err(Error::InvalidConfig(
                "allowed_ports lists ports from 1 to 65535, at least one",
            ));
        }
        if raw.max_concurrent_fetches == 0 {
            return Err(Error::InvalidConfig(
                "max_concurrent_fetches must be at least 1",
            ));
        }
        let mut hosts = BTreeMap::new();
        for (host, address) in raw.hosts {
            hosts.insert(host.to_ascii_lowercase(), address);
        }
        Ok(Self {
            allowed_ports: raw.allowed_ports,
            max_concurrent_fetches: raw.max_concurrent_fetches,
            queue_timeout_millis: raw.queue_timeout_millis,
            hosts,
            dangerous_allow_private_addresses: raw.dangerous_allow_private_addresses,
        })
    }
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allowed_ports: vec![443],
            max_concurrent_fetches: DEFAULT_MAX_CONCURRENT_FETCHES,
            queue_timeout_millis: DEFAULT_QUEUE_TIMEOUT_MILLIS,
            hosts: BTreeMap::new(),
            dangerous_allow_private_addresses: false,
        }
    }
}

impl FetchPolicy {
    /// The policy allowing `ports` (instead of 443 only).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `ports` is empty or holds 0.
    pub fn with_allowed_ports(mut self, ports: &[u16]) -> Result<Self, Error> {
        if ports.is_empty() || ports.contains(&0) {
            return Err(Error::InvalidConfig(
                "allowed_ports lists ports from 1 to 65535, at least one",
            ));
        }
        self.allowed_ports = ports.to_vec();
        Ok(self)
    }

    /// The policy with at most `fetches` in flight at once.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_max_concurrent_fetches(mut self, fetches: usize) -> Result<Self, Error> {
        if fetches == 0 {
            return Err(Error::InvalidConfig(
                "max_concurrent_fetches must be at least 1",
            ));
        }
        self.max_concurrent_fetches = fetches;
        Ok(self)
    }

    /// The policy under which a fetch waits at most `wait` for a slot.
    #[must_use]
    pub fn with_queue_timeout(mut self, wait: Duration) -> Self {
        self.queue_timeout_millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The policy resolving `host` to `address` instead of asking DNS.
    #[must_use]
    pub fn with_host(mut self, host: &str, address: IpAddr) -> Self {
        self.hosts.insert(host.to_ascii_lowercase(), address);
        self
    }

    /// The policy that also reaches non-public addresses (loopback, private, link-local...).
    /// Dangerous: a DID could then make the resolver fetch from its own network.
    #[must_use]
    pub const fn dangerous_allow_private_addresses(mut self, allow: bool) -> Self {
        self.dangerous_allow_private_addresses = allow;
        self
    }

    /// The ports a DID's host may name.
    #[must_use]
    pub fn allowed_ports(&self) -> &[u16] {
        &self.allowed_ports
    }

    /// Whether `port` may be fetched from.
    #[must_use]
    pub fn allows_port(&self, port: u16) -> bool {
        self.allowed_ports.contains(&port)
    }

    /// The most fetches in flight at once.
    #[must_use]
    pub const fn max_concurrent_fetches(&self) -> usize {
        self.max_concurrent_fetches
    }

    /// How long a fetch waits for a slot before it fails.
    #[must_use]
    pub const fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_millis)
    }

    /// Whether non-public addresses are reached.
    #[must_use]
    pub const fn allows_private_addresses(&self) -> bool {
        self.dangerous_allow_private_addresses
    }
}

/// The admission of one remote fetch: the port check and a slot among the concurrent
/// fetches, shared by the clones of one method.
#[derive(Clone, Debug)]
pub(crate) struct FetchGate {
    ports: Vec<u16>,
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl Default for FetchGate {
    fn default() -> Self {
        Self::new(&FetchPolicy::default())
    }
}

impl FetchGate {
    pub(crate) fn new(policy: &FetchPolicy) -> Self {
        Self {
            ports: policy.allowed_ports.clone(),
            slots: Arc::new(Semaphore::new(policy.max_concurrent_fetches)),
            wait: policy.queue_timeout(),
        }
    }

    /// Admits a fetch of `url` for `did`: its port must be allowed, and a slot must free up
    /// within the queue timeout.
    pub(crate) async fn admit(
        &self,
        did: &str,
        url: &url::Url,
    ) -> Result<SemaphorePermit<'_>, ResolveError> {
        let port = url.port_or_known_default().unwrap_or_default();
        if !self.ports.contains(&port) {
            return Err(ResolveError::Unavailable {
                did: did.to_owned(),
                reason: "the DID's port is not allowed",
                source: None,
            });
        }
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ResolveError::Unavailable {
                did: did.to_owned(),
                reason: "too many DID documents are being fetched",
                source: None,
            }),
        }
    }
}

/// The DNS resolver of remote DID fetches: fixed [`FetchPolicy`] host addresses, else the
/// system's resolver; then every non-public address is dropped (unless
/// `dangerous_allow_private_addresses`), and a name left without addresses fails.
#[derive(Clone)]
pub struct PublicAddressResolver {
    hosts: BTreeMap<String, IpAddr>,
    allow_private: bool,
}

impl fmt::Debug for PublicAddressResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicAddressResolver")
            .field("hosts", &self.hosts.len())
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl PublicAddressResolver {
    /// The resolver for `policy`. Logs a warning when the policy allows private addresses.
    #[must_use]
    pub fn new(policy: &FetchPolicy) -> Self {
        if policy.dangerous_allow_private_addresses {
            tracing::warn!(
                "dangerous_allow_private_addresses is on: DIDs may make this resolver fetch from loopback and private networks"
            );
        }
        Self {
            hosts: policy.hosts.clone(),
            allow_private: policy.dangerous_allow_private_addresses,
        }
    }
}

/// Why a host name was not resolved to an address.
#[derive(Debug, thiserror::Error)]
#[error("`{host}` resolves to no public address")]
pub struct AddressRefused {
    /// The host name.
    pub host: String,
}

impl Resolve for PublicAddressResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let fixed = self.hosts.get(&host).copied();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = match fixed {
                Some(address) => vec![SocketAddr::new(address, 0)],
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused { host }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The `reason` of a [`ResolveError::Unavailable`] for a host whose addresses were refused.
pub const REFUSED_ADDRESS: &str = "the host resolves to no public address";

/// Whether a failed request failed because [`PublicAddressResolver`] refused the host.
pub(crate) fn is_refused_address(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = source {
        if current.is::<AddressRefused>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Whether `address` is a public unicast address: not loopback, unspecified, private,
/// shared (CGNAT), link-local, multicast, broadcast, documentation, benchmarking, reserved,
/// unique-local, site-local or Teredo; IPv6 forms that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are judged by that address.
#[must_use]
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    let special = address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (18..20).contains(&b));
    !special
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    let embedded = |high: u16, low: u16| {
        let [h1, h2] = high.to_be_bytes();
        let [l1, l2] = low.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    match segments {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low]
            if !address.is_loopback() && !address.is_unspecified() =>
        {
            is_public_v4(embedded(high, low))
        }
        // NAT64 64:ff9b::a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => is_public_v4(embedded(high, low)),
        // 6to4 2002:AABB:CCDD::.
        [0x2002, high, low, ..] => is_public_v4(embedded(high, low)),
        _ => {
            let first = segments[0];
            let special = address.is_unspecified()
                || address.is_loopback()
                || address.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || (first == 0x2001 && segments[1] == 0) // Teredo 2001::/32
                || (first == 0x0100 && segments[1..4] == [0, 0, 0]); // discard 100::/64
            !special
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn policies_are_checked_when_read() {
        let policy: FetchPolicy = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(policy, FetchPolicy::default());
        assert_eq!(policy.allowed_ports(), [443]);
        assert!(!policy.allows_private_addresses());
        let policy: FetchPolicy = serde_json::from_value(serde_json::json!({
            "allowed_ports": [443, 8443],
            "hosts": {"DID.Example.Test": "127.0.0.1"},
            "dangerous_allow_private_addresses": true,
        }))
        .unwrap();
        assert!(policy.allows_port(8443));
        assert_eq!(
            policy.hosts.get("did.example.test"),
            Some(&IpAddr::from([127, 0, 0, 1]))
        );
        for bad in [
            serde_json::json!({"allowed_ports": []}),
            serde_json::json!({"allowed_ports": [0]}),
            serde_json::json!({"max_concurrent_fetches": 0}),
            serde_json::json!({"queue_timeout_millis": -1}),
            serde_json::json!({"ports": [443]}),
        ] {
            assert!(serde_json::from_value::<FetchPolicy>(bad).is_err());
        }
    }
}
