//! `did:web` (W3C CCG, `did-method-web` @ ea423c1): a DID document served over HTTPS.
//!
//! Resolution fetches `https://<host>[:<port>]/<path>/did.json` (or `/.well-known/did.json`)
//! with an injected [`reqwest::Client`]; build one with [`client_builder`], which pins
//! rustls on aws-lc-rs, the trust anchors you give it, HTTPS only, no proxies, no redirects
//! to another host and no non-public addresses (see [`super::fetch`]). The method adds a
//! per-request time limit, a size limit, allowed ports (443) and a bound on concurrent
//! fetches.
//! [`document_from_kms`] builds a tenant's document from its KMS key aliases, for the DID
//! server to publish.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use edk_core::Did;
use edk_kms::{Caller, KeyAlias, Kms};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::document::{DidDocument, MethodRef, Relationship, VerificationMethod};
use crate::error::{Error, PublishError, ResolveError};
use crate::method::DidMethod;
use crate::methods::fetch::{
    FetchGate, FetchPolicy, PublicAddressResolver, REFUSED_ADDRESS, is_refused_address,
};
use crate::resolution::{Resolution, ResolveOptions};

/// did:web resolution limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DidWebConfig {
    /// Largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// Time limit for one fetch (connect, headers and body), in milliseconds.
    pub timeout_millis: u64,
}

impl Default for DidWebConfig {
    fn default() -> Self {
        Self {
            max_document_bytes: 64 * 1024,
            timeout_millis: 10_000,
        }
    }
}

/// A [`reqwest::ClientBuilder`] for did:web and did:webvh: rustls on aws-lc-rs trusting only
/// `roots`, HTTPS only, no proxies, at most 3 redirects and only to the same host and port
/// over HTTPS, `timeout` for each request, and the [`PublicAddressResolver`] of the default
/// [`FetchPolicy`]: names that resolve only to loopback, private, link-local or other
/// non-public addresses are refused. See [`client_builder_with_policy`].
///
/// # Errors
/// [`Error::HttpClient`] if the TLS configuration cannot be built.
pub fn client_builder(
    roots: rustls::RootCertStore,
    timeout: Duration,
) -> Result<reqwest::ClientBuilder, Error> {
    client_builder_with_policy(roots, timeout, &FetchPolicy::default())
}

/// As [`client_builder`], with the DNS step of `policy` (its fixed host addresses and its
/// `dangerous_allow_private_addresses` opt-in). Give the same policy to
/// [`DidWeb::with_policy`] and `HttpsLogSource::with_policy` for its ports and concurrency.
/// reqwest's own `resolve` overrides bypass the address check: use
/// [`FetchPolicy::with_host`] instead.
///
/// # Errors
/// [`Error::HttpClient`] if the TLS configuration cannot be built.
pub fn client_builder_with_policy(
    roots: rustls::RootCertStore,
    timeout: Duration,
    policy: &FetchPolicy,
) -> Result<reqwest::ClientBuilder, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::HttpClient(Box::new(err)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if attempt.url().scheme() != "https" || !same_origin {
            attempt.error("redirect to another host refused")
        } else {
            attempt.follow()
        }
    });
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .no_proxy()
        .redirect(redirects)
        .dns_resolver(Arc::new(PublicAddressResolver::new(policy)))
        .timeout(timeout)
        .connect_timeout(timeout))
}

/// The did:web method.
#[derive(Clone, Debug)]
pub struct DidWeb {
    client: reqwest::Client,
    config: DidWebConfig,
    gate: FetchGate,
}

impl DidWeb {
    /// did:web over `client` (see [`client_builder`]) with `config`'s limits and the default
    /// [`FetchPolicy`]: port 443 only, at most 16 fetches at once.
    #[must_use]
    pub fn new(client: reqwest::Client, config: DidWebConfig) -> Self {
        Self {
            client,
            config,
            gate: FetchGate::default(),
        }
    }

    /// The method fetching only from `policy`'s ports, with at most its number of fetches in
    /// flight.
    #[must_use]
    pub fn with_policy(mut self, policy: &FetchPolicy) -> Self {
        self.gate = FetchGate::new(policy);
        self
    }

    /// The URL of a did:web's document (did:web §"Read": `:` to `/`, the port's `%3A`
    /// decoded, `/.well-known` when there is no path, then `/did.json`). Path segments are
    /// percent-decoded once and re-encoded; empty, `.` and `..` segments are refused.
    ///
    /// # Errors
    /// [`ResolveError::InvalidDid`] saying what is wrong.
    pub fn document_url(did: &Did) -> Result<Url, ResolveError> {
        let invalid = |reason: &str| ResolveError::invalid_did(did.as_str(), reason);
        if did.method() != "web" {
            return Err(invalid("not a did:web"));
        }
        let mut parts = did.method_specific_id().split(':');
        let authority = parts.next().unwrap_or_default();
        let (host, port) = match authority.split_once('%') {
            None => (authority, None),
            Some((host, rest)) => {
                let port = rest
                    .strip_prefix("3A")
                    .or_else(|| rest.strip_prefix("3a"))
                    .ok_or_else(|| {
                        invalid("only the port colon may be percent-encoded in the host")
                    })?;
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
                (host, Some(port))
            }
        };
        match url::Host::parse(host) {
            Ok(url::Host::Domain(domain)) if domain.contains('.') && domain == host => {}
            Ok(url::Host::Domain(_)) => {
                return Err(invalid(
                    "the host must be a lower-case fully qualified domain name",
                ));
            }
            Ok(_) => return Err(invalid("the host must be a domain name, not an IP address")),
            Err(_) => return Err(invalid("the host is not a valid domain name")),
        }
        let mut url = Url::parse(&format!("https://{host}/"))
            .map_err(|_| invalid("the host is not a valid domain name"))?;
        url.set_port(port)
            .map_err(|()| invalid("the port cannot be used"))?;
        let mut segments = Vec::new();
        for segment in parts {
            let decoded = percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| invalid("a path segment is not UTF-8"))?;
            if decoded.is_empty()
                || decoded == "."
                || decoded == ".."
                || decoded.contains(['/', '\\'])
                || decoded.chars().any(char::is_control)
            {
                return Err(invalid(
                    "a path segment is empty, a dot segment or has a separator",
                ));
            }
            segments.push(decoded.into_owned());
        }
        if segments.is_empty() {
            segments.push(".well-known".to_owned());
        }
        segments.push("did.json".to_owned());
        url.path_segments_mut()
            .map_err(|()| invalid("the URL cannot have a path"))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    /// The did:web for a host, an optional port and path segments (the inverse of
    /// [`DidWeb::document_url`]): `did_for("example.com", Some(8443), &["tenants", "acme"])`
    /// is `did:web:example.com%3A8443:tenants:acme`.
    ///
    /// # Errors
    /// [`PublishError::InvalidRequest`] when the result would not be a valid did:web.
    pub fn did_for(host: &str, port: Option<u16>, path: &[&str]) -> Result<Did, PublishError> {
        const SEGMENT: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b':')
            .add(b'/')
            .add(b'?')
            .add(b'#')
            .add(b'%')
            .add(b'@')
            .add(b'[')
            .add(b']');
        let mut did = format!("did:web:{}", host.to_ascii_lowercase());
        if let Some(port) = port {
            did.push_str(&format!("%3A{port}"));
        }
        for segment in path {
            did.push(':');
            did.extend(utf8_percent_encode(segment, SEGMENT));
        }
        let invalid = |reason: String| PublishError::InvalidRequest { reason };
        let did = Did::new(did).map_err(|err| invalid(err.to_string()))?;
        Self::document_url(&did).map_err(|err| invalid(err.to_string()))?;
        Ok(did)
    }

    async fn fetch(&self, did: &Did, url: Url) -> Result<Vec<u8>, ResolveError> {
        let unavailable =
            |reason: &'static str, source: Option<reqwest::Error>| ResolveError::Unavailable {
                did: did.to_string(),
                reason,
                source: source.map(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>),
            };
        let _slot = self.gate.admit(did.as_str(), &url).await?;
        let host = url.host_str().map(str::to_owned);
        let response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/did+json, application/did+ld+json, application/json",
            )
            .timeout(Duration::from_millis(self.config.timeout_millis))
            .send()
            .await
            .map_err(|err| {
                let reason = if is_refused_address(&err) {
                    REFUSED_ADDRESS
                } else if err.is_timeout() {
                    "the request timed out"
                } else if err.is_redirect() {
                    "a redirect was refused"
                } else {
                    "the request failed"
                };
                unavailable(reason, Some(err))
            })?;
        if response.url().host_str().map(str::to_owned) != host
            || response.url().scheme() != "https"
        {
            return Err(unavailable("a redirect was refused", None));
        }
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(ResolveError::not_found(did.as_str()));
            }
            _ => {
                return Err(unavailable(
                    "the server answered with an error status",
                    None,
                ));
            }
        }
        let limit = self.config.max_document_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(unavailable("the document is too large", None));
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| {
            let reason = if err.is_timeout() {
                "the request timed out"
            } else {
                "reading the document failed"
            };
            unavailable(reason, Some(err))
        })? {
            if body.len() + chunk.len() > limit {
                return Err(unavailable("the document is too large", None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl DidMethod for DidWeb {
    fn name(&self) -> &'static str {
        "web"
    }

    async fn resolve(&self, did: &Did, opts: &ResolveOptions) -> Result<Resolution, ResolveError> {
        let url = Self::document_url(did)?;
        if opts.selects_version() {
            return Err(ResolveError::FeatureNotSupported {
                method: "web",
                option: "version selection",
            });
        }
        let body = self.fetch(did, url).await?;
        let document: DidDocument = serde_json::from_slice(&body).map_err(|_| {
            ResolveError::invalid_document(did.as_str(), "the document is not a JSON DID document")
        })?;
        // did:web §"Read": the document's `id` MUST be the DID.
        if document.id != did.as_str() {
            return Err(ResolveError::invalid_document(
                did.as_str(),
                "the document id is not the DID",
            ));
        }
        // Our choice: did:web knows no timestamps, so the metadata is empty.
        Ok(Resolution::found(document))
    }
}

/// A key alias of the tenant to publish in a did:web document, and what it may be used for.
#[derive(Clone, Debug)]
pub struct PublishedKey {
    /// The KMS alias; every verifiable version (pre-active, active, retired in overlap) is
    /// published.
    pub alias: KeyAlias,
    /// The verification relationships its keys get.
    pub relationships: Vec<Relationship>,
}

impl PublishedKey {
    /// `alias` for `relationships`.
    #[must_use]
    pub fn new(alias: KeyAlias, relationships: &[Relationship]) -> Self {
        Self {
            alias,
            relationships: relationships.to_vec(),
        }
    }
}

/// Builds the did:web document of `did` from the tenant's KMS keys: one `JsonWebKey`
/// verification method per JWK of each alias (`<did>#<kid>`, the kid being the key's RFC
/// 7638 thumbprint unless the KMS set one), listed under the alias's relationships.
///
/// # Errors
/// [`PublishError::Kms`] when the KMS fails (an unknown alias is not found),
/// [`PublishError::InvalidRequest`] for a DID that is not a did:web or a JWK with private
/// members.
pub async fn document_from_kms(
    kms: &dyn Kms,
    caller: &Caller,
    did: &Did,
    keys: &[PublishedKey],
) -> Result<DidDocument, PublishError> {
    DidWeb::document_url(did).map_err(|err| PublishError::InvalidRequest {
        reason: err.to_string(),
    })?;
    let mut document = DidDocument::new(did.as_str());
    for key in keys {
        let jwks = kms
            .jwks(caller, &key.alias)
            .await
            .map_err(PublishError::Kms)?;
        for jwk in &jwks.keys {
            if jwk.is_private() {
                return Err(PublishError::InvalidRequest {
                    reason: "the KMS returned a private key".to_owned(),
                });
            }
            let kid = jwk.kid.clone().unwrap_or_else(|| jwk.thumbprint());
            let id = format!("{did}#{kid}");
            if document.verification_method(&id).is_none() {
                let Ok(Value::Object(public)) = serde_json::to_value(jwk) else {
                    return Err(PublishError::InvalidRequest {
                        reason: "the KMS returned a JWK that does not serialize".to_owned(),
                    });
                };
                document
                    .verification_method
                    .push(VerificationMethod::json_web_key(
                        id.clone(),
                        did.as_str(),
                        "JsonWebKey",
                        public,
                    ));
            }
            for relationship in &key.relationships {
                let entries = document.relationship_mut(*relationship);
                let reference = MethodRef::Reference(id.clone());
                if !entries.contains(&reference) {
                    entries.push(reference);
                }
            }
        }
    }
    Ok(document)
}
