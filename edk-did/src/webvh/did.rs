//! did:webvh identifiers and the HTTPS locations of their logs (did:webvh §"The DID to HTTPS
//! Transformation").

use std::fmt;

use url::Host;

use super::error::WebvhError;
use super::scid::SCID_PLACEHOLDER;

/// A parsed did:webvh DID: `did:webvh:<scid>:<domain>[%3A<port>](:<path>)*`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebvhDid {
    did: String,
    scid: String,
    host: String,
    port: Option<u16>,
    path: Vec<String>,
}

impl WebvhDid {
    /// Parses a DID (a DID URL's path, query and fragment are stripped first).
    ///
    /// # Errors
    /// [`WebvhError::InvalidDid`] naming the rule the DID breaks.
    pub fn parse(did: &str) -> Result<Self, WebvhError> {
        let invalid = |reason| WebvhError::InvalidDid { reason };
        let end = did.find(['/', '?', '#']).unwrap_or(did.len());
        let did = did.get(..end).unwrap_or_default();
        let rest = did
            .strip_prefix("did:webvh:")
            .ok_or(invalid("not a did:webvh DID"))?;
        let mut parts = rest.split(':');
        let scid = parts.next().unwrap_or_default();
        if scid.is_empty() {
            return Err(invalid("no SCID"));
        }
        if scid != SCID_PLACEHOLDER && !is_scid(scid) {
            return Err(invalid("the SCID is not a base58btc SHA-256 multihash"));
        }
        let domain = parts.next().ok_or(invalid("no domain"))?;
        let (host, port) = parse_domain(domain)?;
        let path = parts.map(parse_segment).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            did: did.to_owned(),
            scid: scid.to_owned(),
            host,
            port,
            path,
        })
    }

    /// The DID with the `{SCID}` placeholder for `domain` (may carry `%3A<port>`) and path
    /// segments (decoded), as used to create a log.
    ///
    /// # Errors
    /// [`WebvhError::InvalidDid`] when the domain or a segment is not acceptable.
    pub fn template(domain: &str, path: &[&str]) -> Result<Self, WebvhError> {
        let mut did = format!("did:webvh:{SCID_PLACEHOLDER}:{domain}");
        for segment in path {
            did.push(':');
            did.push_str(&encode_segment(segment));
        }
        Self::parse(&did)
    }

    /// The DID string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.did
    }

    /// The SCID (or the `{SCID}` placeholder of a template).
    #[must_use]
    pub fn scid(&self) -> &str {
        &self.scid
    }

    /// The host in ASCII (A-label) form.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the DID names one.
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// The decoded path segments.
    #[must_use]
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The base URL of the DID's files, ending in `/`: `https://host[:port]/[path/]`
    /// (the `#files` service endpoint).
    #[must_use]
    pub fn base_url(&self) -> String {
        let mut url = format!("https://{}", self.host);
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        url.push('/');
        for segment in &self.path {
            url.push_str(&encode_segment(segment));
            url.push('/');
        }
        url
    }

    /// The URL of `did.jsonl`.
    #[must_use]
    pub fn log_url(&self) -> String {
        self.file_url("did.jsonl")
    }

    /// The URL of `did-witness.json`.
    #[must_use]
    pub fn witness_url(&self) -> String {
        self.file_url("did-witness.json")
    }

    /// The did:web DID published in parallel: `did:web:` + everything after the SCID.
    #[must_use]
    pub fn did_web(&self) -> String {
        let prefix = format!("did:webvh:{}:", self.scid);
        format!(
            "did:web:{}",
            self.did.strip_prefix(&prefix).unwrap_or_default()
        )
    }

    fn file_url(&self, name: &str) -> String {
        let mut url = self.base_url();
        if self.path.is_empty() {
            url.push_str(".well-known/");
        }
        url.push_str(name);
        url
    }
}

impl fmt::Debug for WebvhDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebvhDid").field(&self.did).finish()
    }
}

impl fmt::Display for WebvhDid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.did)
    }
}

/// Whether `text` is a base58btc SHA-256 multihash.
pub(crate) fn is_scid(text: &str) -> bool {
    bs58::decode(text)
        .into_vec()
        .is_ok_and(|bytes| bytes.len() == 34 && bytes.starts_with(&[0x12, 0x20]))
}

fn parse_domain(domain: &str) -> Result<(String, Option<u16>), WebvhError> {
    let invalid = |reason| WebvhError::InvalidDid { reason };
    // Percent-encoding is case-insensitive (RFC 3986 §2.1): `%3a` separates the port too.
    let separator = domain.find("%3A").or_else(|| domain.find("%3a")).map(|at| {
        (
            domain.get(..at).unwrap_or_default(),
            domain.get(at + 3..).unwrap_or_default(),
        )
    });
    let (name, port) = match separator {
        Some((name, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.starts_with('0')
            {
                return Err(invalid("the port is not a number from 1 to 65535"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("the port is not a number from 1 to 65535"))?;
            (name, Some(port))
        }
        None => (domain, None),
    };
    if name.is_empty() {
        return Err(invalid("empty domain"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'%') || b >= 0x80)
    {
        return Err(invalid("the domain has characters a host cannot have"));
    }
    let decoded = percent_decode(name).ok_or(invalid("bad percent-encoding in the domain"))?;
    match Host::parse(&decoded) {
        Ok(Host::Domain(ascii)) => {
            let labels: Vec<&str> = ascii.split('.').collect();
            if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
                return Err(invalid("the domain is not a fully qualified domain name"));
            }
            if labels
                .last()
                .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid("the domain looks like an IP address"));
            }
            Ok((ascii, port))
        }
        Ok(Host::Ipv4(_) | Host::Ipv6(_)) => Err(invalid("the domain is an IP address")),
        Err(_) => Err(invalid("the domain is not a valid host name")),
    }
}

fn parse_segment(segment: &str) -> Result<String, WebvhError> {
    let invalid = |reason| WebvhError::InvalidDid { reason };
    if segment.is_empty() {
        return Err(invalid("empty path segment"));
    }
    let decoded = percent_decode(segment).ok_or(invalid("bad percent-encoding in the path"))?;
    if decoded == "." || decoded == ".." {
        return Err(invalid("dot segment in the path"));
    }
    if decoded.contains(['/', '\\', '\0']) {
        return Err(invalid("the path segment has a separator or NUL"));
    }
    if decoded.trim() != decoded {
        return Err(invalid(
            "the path segment has leading or trailing whitespace",
        ));
    }
    Ok(decoded)
}

/// Decodes `%XX` escapes once; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, with uppercase hex.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCID: &str = "Qmdxt11AjZewCNXX69bpEDobgjySeZ7eFwjf4tgpF6p2Dg";

    fn url(msid: &str) -> String {
        WebvhDid::parse(&format!("did:webvh:{SCID}:{msid}"))
            .unwrap()
            .log_url()
    }

    #[test]
    fn spec_did_to_https_table() {
        assert_eq!(
            url("example.com"),
            "https://example.com/.well-known/did.jsonl"
        );
        assert_eq!(
            url("example.com:dids:issuer"),
            "https://example.com/dids/issuer/did.jsonl"
        );
        assert_eq!(
            url("example.com%3A3000:dids:issuer"),
            "https://example.com:3000/dids/issuer/did.jsonl"
        );
        // Percent-encoding is case-insensitive: a lowercase `%3a` separates the port too.
        assert_eq!(
            url("example.com%3a3000:dids:issuer"),
            "https://example.com:3000/dids/issuer/did.jsonl"
        );
        assert_eq!(
            url("jp納豆.例.jp:用户"),
            "https://xn--jp-cd2fp15c.xn--fsq.jp/%E7%94%A8%E6%88%B7/did.jsonl"
        );
    }

    #[test]
    fn negative_identifiers_are_invalid() {
        for msid in [
            // test suite `negative-lowercase-pct-port-ip`: the IP check sees through `%3a`.
            "127.0.0.1%3a8080",
            "127.0.0.1%3A8080",
            "example.com%3a3000%3a1",
            "127.0.0.1",
            "%31%32%37.0.0.1",
            "0x7f.1",
            "[::1]",
            "example.com:..",
            "example.com:%2E%2E",
            "example.com:a%2Fb",
            "example.com%3A0",
            "example.com%3A70000",
            "example.com:",
            "localhost",
        ] {
            assert!(
                WebvhDid::parse(&format!("did:webvh:{SCID}:{msid}")).is_err(),
                "{msid} accepted"
            );
        }
        assert!(WebvhDid::parse("did:webvh:notascid:example.com").is_err());
    }

    #[test]
    fn did_url_parts_are_stripped() {
        let did = WebvhDid::parse(&format!("did:webvh:{SCID}:example.com#key-1")).unwrap();
        assert_eq!(did.as_str(), format!("did:webvh:{SCID}:example.com"));
        assert_eq!(did.did_web(), "did:web:example.com");
    }
}
