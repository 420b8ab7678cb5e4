//! Credential status for the verifier: an [`edk_oid4vp::StatusCheck`] that resolves a
//! credential's `status.status_list` reference (Token Status List, JWT or CWT form) over
//! HTTP, through edk-core's [`StatusListCache`], one per tenant and status list origin.
//!
//! A Status List Token is trusted the way the tenant trusts credential issuers, and must
//! come from the issuer that published the list:
//! - an `x5c` chain in its header must end at one of the tenant's trust anchors (the
//!   certificate chains marked trust anchors in the tenant's KMS certificate store);
//! - a `kid` that is a DID URL (`did:jwk`, `did:key`) must name a key of the token's `iss`;
//! - otherwise its `kid` is looked up in the JWT VC Issuer Metadata of its `iss`, which must
//!   be on the origin (scheme, host and port) the list was fetched from.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::{JoseError, JwkSet, KeyQuery, KeyResolver, VerifyingKey};
use edk_core::sd_jwt_vc::IssuerMetadata;
use edk_core::status_list::{
    FetchError, FetchedToken, StatusListCache, StatusListFetcher, StatusListReference, StatusType,
};
use edk_core::x5c::X5cResolver;
use edk_core::{Clock, ErrorKind, TenantId};
use edk_did::{DidKeyResolver, Resolver};
use edk_kms::cert::CertificateSource;
use edk_oid4vp::{CredentialStatus, StatusCheck, StatusReference};
use edk_tenancy::TenantContext;
use url::Url;

use crate::config::VerifierSettings;

/// The media types a Status List Token is asked for with (Status List §8.1).
const ACCEPT: &str = "application/statuslist+jwt, application/statuslist+cwt;q=0.9";
/// The largest JWT VC Issuer Metadata or JWKS document read, in bytes.
const MAX_METADATA_BYTES: usize = 256 * 1024;
/// How many status list caches (tenant and origin pairs) are kept at most.
const MAX_CACHES: usize = 4_096;

/// Why a status list or its issuer's keys could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The URI is not one the verifier fetches (not `https`, unless allowed).
    #[error("the status list URI is not an https URL")]
    Uri,
    /// The server answered with an error status.
    #[error("the status list server answered {0}")]
    Status(u16),
    /// The body is larger than allowed.
    #[error("the status list server's answer is too large")]
    TooLarge,
    /// The request failed (connection, timeout).
    #[error("the status list server could not be reached")]
    Http(#[source] reqwest::Error),
}

/// The status lists of every tenant: an HTTP client, the tenants' trust anchors and one
/// bounded [`StatusListCache`] per tenant and status list origin.
pub struct StatusLists {
    http: Http,
    anchors: Option<Arc<dyn CertificateSource>>,
    dids: Option<Arc<DidKeyResolver>>,
    clock: Arc<dyn Clock>,
    lists_per_cache: usize,
    max_ttl_secs: u64,
    caches: Mutex<HashMap<(TenantId, String), Arc<StatusListCache>>>,
}

impl fmt::Debug for StatusLists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusLists")
            .field("allow_http", &self.http.allow_http)
            .field("lists_per_cache", &self.lists_per_cache)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl StatusLists {
    /// Status lists fetched as `settings` say, trusted through the tenants' trust anchors
    /// in `anchors` (none trusted by `x5c` without it), at the time of `clock`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS back end could be set up).
    pub fn new(
        settings: &VerifierSettings,
        anchors: Option<Arc<dyn CertificateSource>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        edk_server::install_crypto_provider();
        let timeout = Duration::from_secs(settings.status_list_timeout_secs.max(1));
        let allow_http = settings.dangerous_allow_http_status_lists;
        // At most three redirects, never from https down to http unless allowed.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 3 {
                attempt.stop()
            } else if attempt.url().scheme() == "https"
                || (allow_http && attempt.url().scheme() == "http")
            {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(redirects)
            .build()?;
        // Two distinct offline methods and no cache: building cannot fail.
        let dids = Resolver::builder()
            .method(Arc::new(edk_did::methods::jwk::DidJwk))
            .method(Arc::new(edk_did::methods::key::DidKey::default()))
            .build()
            .ok()
            .map(|resolver| Arc::new(DidKeyResolver::new(Arc::new(resolver))));
        Ok(Self {
            http: Http {
                client,
                allow_http,
                max_bytes: settings.status_list_max_bytes,
            },
            anchors,
            dids,
            clock,
            lists_per_cache: settings.status_list_cache_size.max(1),
            max_ttl_secs: settings.status_list_max_ttl_secs,
            caches: Mutex::new(HashMap::new()),
        })
    }

    /// The status check of `tenant`, for one verification.
    #[must_use]
    pub fn for_tenant(self: &Arc<Self>, tenant: &TenantContext) -> Arc<dyn StatusCheck> {
        Arc::new(TenantStatus {
            lists: Arc::clone(self),
            tenant: tenant.clone(),
        })
    }

    /// The cache of `tenant`'s lists published on `origin`.
    fn cache(&self, tenant: &TenantContext, origin: &str) -> Arc<StatusListCache> {
        let key = (tenant.id(), origin.to_owned());
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cache) = caches.get(&key) {
            return Arc::clone(cache);
        }
        if caches.len() >= MAX_CACHES {
            caches.clear();
        }
        let resolver = IssuerKeys {
            tenant: tenant.clone(),
            origin: origin.to_owned(),
            anchors: self.anchors.clone(),
            dids: self.dids.clone(),
            http: self.http.clone(),
            clock: Arc::clone(&self.clock),
        };
        let cache = Arc::new(
            StatusListCache::new(
                Arc::new(self.http.clone()),
                Arc::new(resolver),
                Arc::clone(&self.clock),
            )
            .with_capacity(self.lists_per_cache)
            .with_ttl_bounds(0, self.max_ttl_secs),
        );
        caches.insert(key, Arc::clone(&cache));
        cache
    }
}

/// One tenant's status check.
#[derive(Debug)]
struct TenantStatus {
    lists: Arc<StatusLists>,
    tenant: TenantContext,
}

#[async_trait]
impl StatusCheck for TenantStatus {
    async fn status(
        &self,
        reference: &StatusReference,
    ) -> Result<CredentialStatus, Box<dyn std::error::Error + Send + Sync>> {
        let origin = self.lists.http.origin(&reference.uri)?;
        let idx = usize::try_from(reference.idx)?;
        let reference = StatusListReference::new(idx, reference.uri.clone())?;
        let status = self
            .lists
            .cache(&self.tenant, &origin)
            .status(&reference)
            .await
            .inspect_err(|err| {
                tracing::info!(
                    uri = %reference.uri,
                    error = %edk_core::ErrorChain(err),
                    "a credential's status list could not be read"
                );
            })?;
        Ok(CredentialStatus::from_value(match status {
            StatusType::Valid => 0,
            StatusType::Invalid => 1,
            StatusType::Suspended => 2,
            other => other.value(),
        }))
    }
}

/// The HTTP side: fetching status lists and issuer metadata within bounds.
#[derive(Clone, Debug)]
struct Http {
    client: reqwest::Client,
    allow_http: bool,
    max_bytes: usize,
}

impl Http {
    /// The origin of `uri` (`scheme://host[:port]`) if the verifier fetches it.
    fn origin(&self, uri: &str) -> Result<String, StatusError> {
        let url = Url::parse(uri).map_err(|_| StatusError::Uri)?;
        let allowed = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !allowed || url.host_str().is_none() {
            return Err(StatusError::Uri);
        }
        Ok(url.origin().ascii_serialization())
    }

    /// GET `uri` with `accept`: the body (at most `limit` bytes) and its content type.
    async fn get(
        &self,
        uri: &str,
        accept: &str,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<String>), StatusError> {
        self.origin(uri)?;
        let mut response = self
            .client
            .get(uri)
            .header("accept", accept)
            .send()
            .await
            .map_err(StatusError::Http)?;
        if !response.status().is_success() {
            return Err(StatusError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(StatusError::TooLarge);
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(StatusError::Http)? {
            if body.len() + chunk.len() > limit {
                return Err(StatusError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, content_type))
    }
}

#[async_trait]
impl StatusListFetcher for Http {
    async fn fetch(&self, uri: &str) -> Result<FetchedToken, FetchError> {
        match self.get(uri, ACCEPT, self.max_bytes).await {
            Ok((body, content_type)) => Ok(FetchedToken::new(body, content_type)),
            Err(StatusError::Status(404 | 410)) => Err(FetchError::new(
                ErrorKind::NotFound,
                StatusError::Status(404),
            )),
            Err(err @ (StatusError::Uri | StatusError::TooLarge)) => {
                Err(FetchError::new(ErrorKind::InvalidInput, err))
            }
            Err(err) => Err(FetchError::new(ErrorKind::Unavailable, err)),
        }
    }
}

/// The keys a tenant trusts for the Status List Tokens published on one origin.
#[derive(Debug)]
struct IssuerKeys {
    tenant: TenantContext,
    origin: String,
    anchors: Option<Arc<dyn CertificateSource>>,
    dids: Option<Arc<DidKeyResolver>>,
    http: Http,
    clock: Arc<dyn Clock>,
}

impl IssuerKeys {
    async fn by_x5c(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let Some(source) = &self.anchors else {
            return Err(JoseError::UntrustedKey("the tenant has no trust anchors"));
        };
        let anchors = source
            .trust_anchors(&crate::verifier::caller(&self.tenant))
            .await
            .map_err(|_| JoseError::UntrustedKey("the tenant's trust anchors are unavailable"))?;
        X5cResolver::new(anchors, Arc::clone(&self.clock))?
            .resolve(query)
            .await
    }

    async fn by_metadata(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let issuer = query.issuer.ok_or(JoseError::KeyNotFound)?;
        if self.http.origin(issuer).ok().as_deref() != Some(self.origin.as_str()) {
            return Err(JoseError::UntrustedKey(
                "the status list's issuer is not on the origin that published it",
            ));
        }
        let location = metadata_url(issuer)?;
        let (body, _) = self
            .http
            .get(&location, "application/json", MAX_METADATA_BYTES)
            .await
            .map_err(|_| JoseError::UntrustedKey("the issuer metadata is unavailable"))?;
        let metadata: IssuerMetadata = serde_json::from_slice(&body)
            .map_err(|_| JoseError::UntrustedKey("the issuer metadata is malformed"))?;
        let resolver = match metadata.resolver() {
            Some(resolver) => resolver,
            None => {
                let uri = metadata.jwks_uri.as_deref().ok_or(JoseError::KeyNotFound)?;
                let (body, _) = self
                    .http
                    .get(uri, "application/json", MAX_METADATA_BYTES)
                    .await
                    .map_err(|_| JoseError::UntrustedKey("the issuer's keys are unavailable"))?;
                let jwks: JwkSet = serde_json::from_slice(&body)
                    .map_err(|_| JoseError::UntrustedKey("the issuer's keys are malformed"))?;
                metadata.resolver_with(&jwks)
            }
        };
        resolver.resolve(query).await
    }
}

#[async_trait]
impl KeyResolver for IssuerKeys {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        if query.x5c.is_some() {
            self.by_x5c(query).await
        } else if query.kid.is_some_and(|kid| kid.starts_with("did:")) {
            match &self.dids {
                Some(dids) => dids.resolve(query).await,
                None => Err(JoseError::KeyNotFound),
            }
        } else {
            self.by_metadata(query).await
        }
    }
}

/// The JWT VC Issuer Metadata location of `issuer` (SD-JWT VC §3.1), for `http` issuers too
/// (allowed only by `dangerous_allow_http_status_lists`).
fn metadata_url(issuer: &str) -> Result<String, JoseError> {
    match issuer.strip_prefix("http://") {
        Some(rest) => IssuerMetadata::well_known_url(&format!("https://{rest}"))
            .map(|url| url.replacen("https://", "http://", 1)),
        None => IssuerMetadata::well_known_url(issuer),
    }
}
