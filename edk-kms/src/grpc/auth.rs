//! Service authentication on the KMS gRPC port: short-lived service JWTs or mTLS.
//!
//! # Service JWT
//! The calling service signs a JWT with its own key (typically a KMS alias of its own):
//!
//! | claim    | value                                                        |
//! |----------|--------------------------------------------------------------|
//! | `typ`    | header, [`SERVICE_TOKEN_TYPE`]                              |
//! | `iss`    | the calling service's id; picks the trusted keys             |
//! | `sub`    | the calling service's id again (must equal `iss`)            |
//! | `aud`    | the KMS's configured audience                                |
//! | `iat`    | issue time; at most `max_lifetime` old, not in the future    |
//! | `exp`    | required; at most `max_lifetime` after `iat`                 |
//! | `tenant` | the tenant the call acts for: the ONLY source of the tenant  |
//!
//! It travels as `authorization: Bearer <jwt>`. The server checks the signature against the
//! keys configured for `iss` ([`TrustedServices`], or any [`KeyResolver`]), every time claim
//! with a small leeway on the injected [`Clock`], and that the request's
//! `CallContext.tenant_id` is the token's tenant. A verified token is remembered (by its
//! SHA-256) until it expires, so a client reusing its token costs one hash per call.
//!
//! A trusted service's key can sign a token for any tenant: what binds a service to tenants
//! is [`ServiceJwtAuth::with_tenants`], which lets it act only for the listed tenants (by
//! slug; `PERMISSION_DENIED` for every other tenant, existing or not). A service without such
//! a list acts for every tenant.
//!
//! # mTLS
//! The server's TLS config ([`server_tls_config`]) requires a client certificate that chains
//! to the configured CA (rustls `WebPkiClientVerifier`). The certificate's subject alternative
//! names (URI or DNS) name the calling service; [`MtlsAuth::allow`] can restrict which names are
//! accepted. A certificate-authenticated service is trusted for **every tenant**: it names the
//! tenant it acts for in the `x-edk-tenant` metadata value, and the request's
//! `CallContext.tenant_id` must match it. [`MtlsAuth::with_tenants`] limits an identity to
//! listed tenants, as for service JWTs; without it a certificate acts for every tenant.
//!
//! # Reserved aliases and the audit actor
//! The authenticated service name (the token's `iss`, or the accepted certificate identity)
//! decides which reserved aliases the call may use (see
//! [`RESERVED_SERVICES`](crate::kms::RESERVED_SERVICES)): a service named `as` may use
//! `as.*`, and no other remote caller may. The audit log records the actor as
//! `service:<name>/<actor>` (`service:<name>` when the request names none), with `%` and `/`
//! in the name percent-encoded, so a caller-chosen actor never passes for another service's.
//!
//! # Service identity
//! A service's own key can be a KMS alias: `<service>.service-identity` in the platform's
//! operator realm ([`SERVICE_IDENTITY_REALM`](crate::kms::SERVICE_IDENTITY_REALM)), reserved
//! for that service. [`ServiceTokenSource::from_source`] signs with its current version
//! ([`RemoteKms::service_identity`](super::RemoteKms::service_identity)), and a receiver trusts
//! the keys the KMS publishes for it through [`TrustedServices::with_resolver`]. The tokens that
//! authenticate a KMS connection are never signed through that same connection.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::{
    Header, JoseError, JwkSet, JwksResolver, Jws, KeyQuery, KeyResolver, Signer, Validation,
    VerifyPolicy, VerifyingKey, jws,
};
use edk_core::{Clock, ErrorKind, HasKind, Limits, TenantId, TenantSlug};
use serde_json::{Value, json};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::Error;

/// The JWS `typ` of service tokens.
pub const SERVICE_TOKEN_TYPE: &str = "edk-service+jwt";

/// The metadata key naming the tenant of an mTLS-authenticated call.
pub const TENANT_METADATA: &str = "x-edk-tenant";

/// The longest lifetime a service token may have unless configured otherwise: 300 seconds.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(300);

/// How a KMS gRPC server authenticates its callers.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceAuth {
    /// Short-lived service JWTs in `authorization: Bearer`.
    ServiceJwt(ServiceJwtAuth),
    /// Client certificates checked by the TLS layer against a CA.
    Mtls(MtlsAuth),
}

/// The tenants a service may act for: `None` for every tenant.
pub(crate) type TenantScope = Option<Arc<BTreeSet<TenantSlug>>>;

/// The authenticated caller of one gRPC call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The calling service.
    pub(crate) service: String,
    /// The tenant it acts for.
    pub(crate) tenant: TenantId,
    /// The tenants the service may act for.
    pub(crate) tenants: TenantScope,
    /// The other services whose reserved aliases it may use (see
    /// [`ServiceJwtAuth::with_acts_as`]).
    pub(crate) acts_as: ActsAs,
}

/// The services whose reserved aliases a caller may use beside its own; `None` for none.
pub(crate) type ActsAs = Option<Arc<BTreeSet<String>>>;

impl Principal {
    /// Whether the service may act for the tenant `slug`.
    pub(crate) fn may_act_for(&self, slug: &TenantSlug) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|tenants| tenants.contains(slug))
    }

    /// The audit actor of a call by this service naming `actor`: `service:<name>/<actor>`, or
    /// `service:<name>` without an actor; `%` and `/` in the name are percent-encoded.
    pub(crate) fn actor(&self, actor: &str) -> String {
        let name = self.service.replace('%', "%25").replace('/', "%2F");
        if actor.is_empty() {
            format!("service:{name}")
        } else {
            format!("service:{name}/{actor}")
        }
    }
}

/// Why a call was not authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The call carries no credentials of the configured kind.
    #[error("missing credentials: {0}")]
    Missing(&'static str),
    /// The service token failed a check.
    #[error("invalid service token")]
    InvalidToken(#[source] JoseError),
    /// The service token is well-formed and signed but breaks the KMS's rules.
    #[error("invalid service token: {0}")]
    TokenRejected(&'static str),
    /// The client certificate names no acceptable service.
    #[error("the client certificate names no accepted service")]
    UnknownService,
    /// The request names another tenant than the authenticated one.
    #[error("the request's tenant is not the authenticated tenant")]
    WrongTenant,
    /// The service may not act for the tenant its credentials name.
    #[error("the service may not act for this tenant")]
    TenantNotAllowed,
}

impl HasKind for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            // A client certificate that names no accepted service is not a credential of
            // this KMS, as a token of an untrusted issuer is not.
            Self::Missing(_)
            | Self::InvalidToken(_)
            | Self::TokenRejected(_)
            | Self::UnknownService => ErrorKind::Unauthenticated,
            Self::WrongTenant | Self::TenantNotAllowed => ErrorKind::Forbidden,
        }
    }
}

impl AuthError {
    /// The gRPC status of the failure; its message is safe to show (it names the failed check).
    pub(crate) fn to_status(&self) -> tonic::Status {
        let message = match self {
            Self::InvalidToken(source) => format!("{self}: {source}"),
            _ => self.to_string(),
        };
        tonic::Status::new(super::convert::code_for(self.kind()), message)
    }
}

/// Verifies service JWTs.
pub struct ServiceJwtAuth {
    audience: String,
    trusted: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
    max_lifetime: i64,
    leeway: i64,
    tenants: HashMap<String, Arc<BTreeSet<TenantSlug>>>,
    acts_as: HashMap<String, Arc<BTreeSet<String>>>,
    verified: Mutex<HashMap<[u8; 32], (Principal, i64)>>,
}

/// How many verified tokens the server remembers before it starts over.
const VERIFIED_CACHE_LIMIT: usize = 4096;

impl ServiceJwtAuth {
    /// Accepts tokens for `audience` signed by keys `trusted` finds for the token's `iss`,
    /// checked on `clock`, with at most [`DEFAULT_MAX_LIFETIME`] and 30 s of leeway.
    #[must_use]
    pub fn new(
        audience: impl Into<String>,
        trusted: Arc<dyn KeyResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            audience: audience.into(),
            trusted,
            clock,
            max_lifetime: secs(DEFAULT_MAX_LIFETIME),
            leeway: 30,
            tenants: HashMap::new(),
            acts_as: HashMap::new(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The longest accepted lifetime (`exp - iat`), which also bounds how old `iat` may be.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = secs(max_lifetime);
        self
    }

    /// The clock skew allowed on `iat`, `nbf` and `exp`.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = secs(leeway);
        self
    }

    /// Lets `service` (a token `iss`) act only for `tenants`, by slug: its calls for any
    /// other tenant, existing or not, are `PERMISSION_DENIED`. An empty list allows no tenant;
    /// a service never named here acts for every tenant. Calling it again for the same
    /// service replaces its list.
    #[must_use]
    pub fn with_tenants(
        mut self,
        service: impl Into<String>,
        tenants: impl IntoIterator<Item = TenantSlug>,
    ) -> Self {
        self.tenants
            .insert(service.into(), Arc::new(tenants.into_iter().collect()));
        self
    }

    /// Lets `service` use the aliases reserved for the services `names` (e.g. the platform,
    /// which runs the operator authorization server and makes the tenants' `as.*` and `did.*`
    /// keys when it onboards them, acts as `as` and `did`), beside its own. Calling it again
    /// for the same service replaces its list.
    #[must_use]
    pub fn with_acts_as(
        mut self,
        service: impl Into<String>,
        names: impl IntoIterator<Item = String>,
    ) -> Self {
        self.acts_as
            .insert(service.into(), Arc::new(names.into_iter().collect()));
        self
    }

    /// The configured audience.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a service-level token (one that acts for no single tenant, as the tenant
    /// directory's callers send) and returns the service it authenticates, with the tenants
    /// it is limited to (`None`: every tenant). The checks are those of a KMS call but for the
    /// `tenant` claim, which is not required and not used.
    ///
    /// # Errors
    /// [`AuthError`] naming the failed check.
    pub async fn authenticate_service(
        &self,
        token: &str,
    ) -> Result<(String, Option<Arc<BTreeSet<TenantSlug>>>), AuthError> {
        let now = self.clock.unix_seconds();
        let (issuer, _, _) = self.verify_claims(token, now).await?;
        let tenants = self.tenants.get(&issuer).cloned();
        Ok((issuer, tenants))
    }

    /// Verifies `token` and returns who it authenticates.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.clock.unix_seconds();
        let digest = token_digest(token);
        if let Some(principal) = self.remembered(&digest, now) {
            return Ok(principal);
        }
        let (principal, exp) = self.verify(token, now).await?;
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE_LIMIT {
            verified.retain(|_, (_, exp)| *exp > now);
            if verified.len() >= VERIFIED_CACHE_LIMIT {
                verified.clear();
            }
        }
        verified.insert(digest, (principal.clone(), exp));
        Ok(principal)
    }

    fn remembered(&self, digest: &[u8; 32], now: i64) -> Option<Principal> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (principal, exp) = verified.get(digest)?;
        // Same rule as `Validation`: expired once `now - leeway >= exp`.
        (now.saturating_sub(self.leeway) < *exp).then(|| principal.clone())
    }

    /// Checks everything but the tenant: signature, `typ`, `iss`/`sub`, `aud` and the times.
    async fn verify_claims(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(String, serde_json::Map<String, Value>, i64), AuthError> {
        let jws = Jws::parse(token, &Limits::default()).map_err(AuthError::InvalidToken)?;
        let unverified: serde_json::Map<String, Value> =
            serde_json::from_slice(jws.unverified_payload())
                .map_err(|_| AuthError::TokenRejected("the payload is not a JSON object"))?;
        let issuer = match unverified.get("iss") {
            Some(Value::String(iss)) => iss.clone(),
            _ => return Err(AuthError::InvalidToken(JoseError::MissingClaim("iss"))),
        };
        let policy = VerifyPolicy::default().with_typ(SERVICE_TOKEN_TYPE);
        let verified = jws
            .verify_with(&*self.trusted, &policy, Some(&issuer))
            .await
            .map_err(AuthError::InvalidToken)?;
        let claims = verified.claims().map_err(AuthError::InvalidToken)?;
        Validation::default()
            .with_issuer(issuer.as_str())
            .with_audience(self.audience.as_str())
            .with_leeway(self.leeway)
            .with_max_age(self.max_lifetime)
            .validate(&claims, now)
            .map_err(AuthError::InvalidToken)?;
        let iat = edk_core::jose::jwt::numeric_date(&claims, "iat")
            .map_err(AuthError::InvalidToken)?
            .ok_or(AuthError::InvalidToken(JoseError::MissingClaim("iat")))?;
        let exp = edk_core::jose::jwt::numeric_date(&claims, "exp")
            .map_err(AuthError::InvalidToken)?
            .ok_or(AuthError::InvalidToken(JoseError::MissingClaim("exp")))?;
        if exp.saturating_sub(iat) > self.max_lifetime {
            return Err(AuthError::TokenRejected("its lifetime is too long"));
        }
        match claims.get("sub") {
            Some(Value::String(sub)) if *sub == issuer => {}
            _ => {
                return Err(AuthError::TokenRejected(
                    "`sub` must name the issuing service",
                ));
            }
        }
        Ok((issuer, claims, exp))
    }

    async fn verify(&self, token: &str, now: i64) -> Result<(Principal, i64), AuthError> {
        let (issuer, claims, exp) = self.verify_claims(token, now).await?;
        let tenant = match claims.get("tenant") {
            Some(Value::String(tenant)) => tenant
                .parse()
                .map_err(|_| AuthError::TokenRejected("`tenant` is not a tenant id"))?,
            _ => return Err(AuthError::InvalidToken(JoseError::MissingClaim("tenant"))),
        };
        let tenants = self.tenants.get(&issuer).cloned();
        let acts_as = self.acts_as.get(&issuer).cloned();
        Ok((
            Principal {
                service: issuer,
                tenant,
                tenants,
                acts_as,
            },
            exp,
        ))
    }
}

impl fmt::Debug for ServiceJwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceJwtAuth")
            .field("audience", &self.audience)
            .field("trusted", &self.trusted)
            .field("max_lifetime", &self.max_lifetime)
            .field("leeway", &self.leeway)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// The keys of the services allowed to call the KMS: a JWK set per service (token issuer),
/// or any [`KeyResolver`] of its keys (the keys the KMS publishes for the service's identity
/// alias, for one).
///
/// A token is checked only against the keys of the service its `iss` names.
#[derive(Clone, Debug, Default)]
pub struct TrustedServices {
    services: HashMap<String, Arc<dyn KeyResolver>>,
}

impl TrustedServices {
    /// No trusted services yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `service`'s tokens signed by a key in `jwks`.
    #[must_use]
    pub fn with_service(mut self, service: impl Into<String>, jwks: &JwkSet) -> Self {
        self.services
            .insert(service.into(), Arc::new(JwksResolver::new(jwks)));
        self
    }

    /// Trusts `service`'s tokens signed by a key `keys` finds (asked with the token's `kid`
    /// and `iss`).
    #[must_use]
    pub fn with_resolver(mut self, service: impl Into<String>, keys: Arc<dyn KeyResolver>) -> Self {
        self.services.insert(service.into(), keys);
        self
    }
}

#[async_trait]
impl KeyResolver for TrustedServices {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let resolver = query
            .issuer
            .and_then(|issuer| self.services.get(issuer))
            .ok_or(JoseError::UntrustedKey("unknown service"))?;
        resolver.resolve(query).await
    }
}

/// Accepts callers by the client certificate the TLS layer verified.
#[derive(Clone, Debug, Default)]
pub struct MtlsAuth {
    allowed: Option<BTreeSet<String>>,
    tenants: HashMap<String, Arc<BTreeSet<TenantSlug>>>,
    acts_as: HashMap<String, Arc<BTreeSet<String>>>,
}

impl MtlsAuth {
    /// Accepts any service whose certificate chains to the configured CA.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts only services whose certificate carries `identity` as a SAN URI or DNS name
    /// (call once per service).
    #[must_use]
    pub fn allow(mut self, identity: impl Into<String>) -> Self {
        self.allowed
            .get_or_insert_with(BTreeSet::new)
            .insert(identity.into());
        self
    }

    /// Lets a certificate that names `identity` (a SAN URI or DNS name) act only for
    /// `tenants`, by slug, as [`ServiceJwtAuth::with_tenants`] does for tokens. A certificate
    /// with several listed names acts only for the tenants every list has. It does not add
    /// `identity` to the [`allow`](Self::allow) list.
    #[must_use]
    pub fn with_tenants(
        mut self,
        identity: impl Into<String>,
        tenants: impl IntoIterator<Item = TenantSlug>,
    ) -> Self {
        self.tenants
            .insert(identity.into(), Arc::new(tenants.into_iter().collect()));
        self
    }

    /// Lets a certificate accepted as `identity` use the aliases reserved for the services
    /// `names`, as [`ServiceJwtAuth::with_acts_as`] does for tokens: a certificate identity is
    /// a host name or URI, never a reserved service name itself, so the authorization
    /// server's identity acts as `as`, the DID server's as `did`.
    #[must_use]
    pub fn with_acts_as(
        mut self,
        identity: impl Into<String>,
        names: impl IntoIterator<Item = String>,
    ) -> Self {
        self.acts_as
            .insert(identity.into(), Arc::new(names.into_iter().collect()));
        self
    }

    /// Authenticates a call from its peer certificates (leaf first) and metadata.
    pub(crate) fn authenticate(
        &self,
        peer_certs: Option<&[tonic::transport::CertificateDer<'static>]>,
        metadata: &MetadataMap,
    ) -> Result<Principal, AuthError> {
        let leaf = peer_certs
            .and_then(<[_]>::first)
            .ok_or(AuthError::Missing("a client certificate"))?;
        let names = subject_alt_names(leaf.as_ref()).ok_or(AuthError::UnknownService)?;
        let service = names
            .iter()
            .find(|name| {
                self.allowed
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(*name))
            })
            .ok_or(AuthError::UnknownService)?
            .clone();
        // Every name of the certificate that has a tenant list restricts it, whichever name
        // was accepted as the service.
        let tenants = names
            .iter()
            .filter_map(|name| self.tenants.get(name))
            .fold(None::<BTreeSet<TenantSlug>>, |scope, tenants| {
                Some(match scope {
                    None => (**tenants).clone(),
                    Some(scope) => scope.intersection(tenants).cloned().collect(),
                })
            })
            .map(Arc::new);
        let tenant = metadata
            .get(TENANT_METADATA)
            .ok_or(AuthError::Missing("the x-edk-tenant metadata"))?
            .to_str()
            .ok()
            .and_then(|tenant| tenant.parse().ok())
            .ok_or(AuthError::TokenRejected("x-edk-tenant is not a tenant id"))?;
        let acts_as = self.acts_as.get(&service).cloned();
        Ok(Principal {
            service,
            tenant,
            tenants,
            acts_as,
        })
    }
}

/// The TLS configuration of an mTLS KMS gRPC server: its own certificate chain and key (PEM),
/// and the CA (PEM) that every client certificate must chain to. Clients without a
/// certificate, or with one from another CA, fail the handshake.
#[must_use]
pub fn server_tls_config(
    cert_chain_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
    client_ca_pem: impl AsRef<[u8]>,
) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(cert_chain_pem, key_pem))
        .client_ca_root(Certificate::from_pem(client_ca_pem))
        .client_auth_optional(false)
}

/// The SAN URIs and DNS names of a DER certificate, URIs first; `None` when it cannot be
/// parsed or has no such names.
fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    use x509_cert::der::Decode as _;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;

    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let (_, san) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .ok()??;
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    for name in san.0 {
        match name {
            GeneralName::UniformResourceIdentifier(uri) => uris.push(uri.to_string()),
            GeneralName::DnsName(name) => dns.push(name.to_string()),
            _ => {}
        }
    }
    uris.extend(dns);
    (!uris.is_empty()).then_some(uris)
}

/// Cached tokens by tenant (`None`: service-level tokens), with their expiry.
type TokenCache = HashMap<Option<TenantId>, (Arc<str>, i64)>;

/// Where a [`ServiceTokenSource`] gets the signer of each token it signs: a fixed key (a
/// [`Signer`] is one), or the current version of a KMS alias
/// ([`RemoteKms::service_identity`](super::RemoteKms::service_identity)), asked again for every
/// token so that a rotation is followed.
#[async_trait]
pub trait SignerSource: fmt::Debug + Send + Sync {
    /// The signer of the next token.
    ///
    /// # Errors
    /// [`Error`] when no signer can be had (the KMS cannot be reached, the key cannot be
    /// created).
    async fn signer(&self) -> Result<Arc<dyn Signer>, Error>;
}

/// One fixed signer.
#[derive(Debug)]
struct FixedSigner(Arc<dyn Signer>);

#[async_trait]
impl SignerSource for FixedSigner {
    async fn signer(&self) -> Result<Arc<dyn Signer>, Error> {
        Ok(Arc::clone(&self.0))
    }
}

/// Issues and caches the short-lived service tokens of a calling service, one per tenant.
///
/// A token is reused until a quarter of its lifetime (at least 5 s) is left, then a new one is
/// signed; the signer is asked at most once per tenant and period.
pub struct ServiceTokenSource {
    signer: Arc<dyn SignerSource>,
    service: String,
    audience: String,
    clock: Arc<dyn Clock>,
    lifetime: i64,
    cache: tokio::sync::Mutex<TokenCache>,
}

impl ServiceTokenSource {
    /// Tokens of `service` for the KMS `audience`, signed by `signer`, valid for 120 s.
    #[must_use]
    pub fn new(
        signer: Arc<dyn Signer>,
        service: impl Into<String>,
        audience: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::from_source(Arc::new(FixedSigner(signer)), service, audience, clock)
    }

    /// Tokens of `service` for `audience`, each signed by the signer `source` gives at the
    /// time, valid for 120 s.
    #[must_use]
    pub fn from_source(
        source: Arc<dyn SignerSource>,
        service: impl Into<String>,
        audience: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            signer: source,
            service: service.into(),
            audience: audience.into(),
            clock,
            lifetime: 120,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Tokens valid for `lifetime` (keep it within the server's maximum).
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = secs(lifetime).max(1);
        self
    }

    /// A token for `tenant`, from the cache or freshly signed.
    ///
    /// # Errors
    /// [`Error::Remote`] of the signer's kind when signing fails.
    pub async fn token(&self, tenant: TenantId) -> Result<Arc<str>, Error> {
        self.cached(Some(tenant)).await
    }

    /// A service-level token (no `tenant` claim), for receivers that serve the service as a
    /// whole (the platform's tenant directory), from the cache or freshly signed. The KMS
    /// refuses such a token for its own calls.
    ///
    /// # Errors
    /// [`Error::Remote`] of the signer's kind when signing fails.
    pub async fn service_token(&self) -> Result<Arc<str>, Error> {
        self.cached(None).await
    }

    async fn cached(&self, tenant: Option<TenantId>) -> Result<Arc<str>, Error> {
        let now = self.clock.unix_seconds();
        let margin = (self.lifetime / 4).max(5).min(self.lifetime);
        let mut cache = self.cache.lock().await;
        if let Some((token, exp)) = cache.get(&tenant)
            && exp.saturating_sub(margin) > now
        {
            return Ok(Arc::clone(token));
        }
        let exp = now.saturating_add(self.lifetime);
        let mut claims = json!({
            "iss": self.service,
            "sub": self.service,
            "aud": self.audience,
            "iat": now,
            "exp": exp,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(tenant) = tenant {
            claims["tenant"] = Value::String(tenant.to_string());
        }
        let signer = self.signer.signer().await?;
        let header = Header::new(signer.algorithm()).with_typ(SERVICE_TOKEN_TYPE);
        let payload = serde_json::to_vec(&claims).map_err(|_| Error::Remote {
            kind: ErrorKind::Internal,
            message: "cannot encode the service token".to_owned(),
        })?;
        let token: Arc<str> = jws::sign(header, &payload, &*signer)
            .await
            .map_err(|err| Error::Remote {
                kind: err.kind(),
                message: "cannot sign the service token".to_owned(),
            })?
            .into();
        cache.insert(tenant, (Arc::clone(&token), exp));
        Ok(token)
    }
}

impl fmt::Debug for ServiceTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenSource")
            .field("service", &self.service)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
