//! `GET /service-identities/{service}/jwks.json`: the public keys of a runtime service's
//! identity alias (`<service>.service-identity`, kept in the platform's operator realm,
//! [`SERVICE_IDENTITY_REALM`]), for the receivers of its service JWTs (the platform's
//! directory, this KMS's gRPC port).
//!
//! The set holds the alias's pre-active, active and still-verifiable retired versions, so a
//! rotation does not break tokens signed just before it; a service without the alias (or a
//! deployment without the realm yet) has an empty set. Public keys only, never private
//! material. The route needs no token: it publishes what every receiver must be able to
//! read, as a JWKS URL does.

use std::fmt;
use std::sync::Arc;

use edk_core::jose::{JoseError, JwkSet, JwksResolver, KeyQuery, KeyResolver, VerifyingKey};
use edk_core::{Clock, ErrorKind, HasKind, TenantSlug};
use edk_kms::kms::{Caller, Kms, SERVICE_IDENTITY_REALM, service_identity_alias};
use edk_server::problem::{Problem, ProblemType, problem_for};
use edk_tenancy::{Tenancy, TenantDirectory as _};
use poem::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use poem::web::{Data, Path};
use poem::{Endpoint, EndpointExt as _, Response, handler};

/// The path prefix of the published keys.
pub const PATH: &str = "/service-identities";

/// The audit actor of the reads.
const ACTOR: &str = "service-identity-publisher";

/// Reads the published keys of service identity aliases from this KMS.
#[derive(Clone)]
pub struct PublishedServiceKeys {
    tenancy: Tenancy,
    kms: Arc<dyn Kms>,
}

impl fmt::Debug for PublishedServiceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishedServiceKeys")
            .finish_non_exhaustive()
    }
}

impl PublishedServiceKeys {
    /// The keys of the aliases `kms` holds in `tenancy`'s operator realm.
    #[must_use]
    pub fn new(tenancy: Tenancy, kms: Arc<dyn Kms>) -> Self {
        Self { tenancy, kms }
    }

    /// The public keys of `service`'s identity alias: empty when it has none.
    ///
    /// # Errors
    /// [`edk_kms::Error::InvalidId`] for a name that cannot be an alias part; a store error.
    pub async fn jwks(&self, service: &str) -> Result<JwkSet, edk_kms::Error> {
        let alias = service_identity_alias(service)?;
        let empty = JwkSet { keys: Vec::new() };
        let slug = TenantSlug::new(SERVICE_IDENTITY_REALM)?;
        let realm = match self.tenancy.tenant_by_slug(&slug).await {
            Ok(realm) => realm,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(empty),
            Err(err) => return Err(edk_kms::Error::Tenancy(err)),
        };
        let context = match self.tenancy.context(realm.id).await {
            Ok(context) => context,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(empty),
            Err(err) => return Err(edk_kms::Error::Tenancy(err)),
        };
        match self.kms.jwks(&Caller::new(context, ACTOR), &alias).await {
            Ok(jwks) => Ok(JwkSet {
                keys: jwks
                    .keys
                    .into_iter()
                    .filter(|jwk| !jwk.is_private())
                    .collect(),
            }),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(empty),
            Err(err) => Err(err),
        }
    }

    /// The route serving [`jwks`](Self::jwks) at `{PATH}/:service/jwks.json`.
    #[must_use]
    pub fn endpoint(self) -> impl Endpoint<Output = Response> + 'static {
        published.data(self)
    }
}

#[handler]
async fn published(Path(service): Path<String>, keys: Data<&PublishedServiceKeys>) -> Response {
    match keys.jwks(&service).await {
        Ok(jwks) => match serde_json::to_string(&jwks) {
            Ok(body) => Response::builder()
                .header(CONTENT_TYPE, "application/jwk-set+json")
                .header(CACHE_CONTROL, "no-cache")
                .body(body),
            Err(_) => Problem::new(ProblemType::Internal, None).into_response(),
        },
        Err(err) => problem_for(&err).body().clone().into_response(),
    }
}

/// Trusts a service by the keys this KMS publishes for its identity alias (the KMS gRPC port's
/// `grpc.auth.services[].kms_published`): read from the KMS's own store, cached for `ttl`,
/// read again at once for an unknown `kid` (at most once per `min_refresh`), so a rotation is
/// accepted and a removed key stops being accepted after the next read.
pub struct PublishedKeysResolver {
    keys: PublishedServiceKeys,
    clock: Arc<dyn Clock>,
    ttl: i64,
    min_refresh: i64,
    cache: tokio::sync::Mutex<std::collections::HashMap<String, CachedKeys>>,
}

#[derive(Default)]
struct CachedKeys {
    keys: Option<JwksResolver>,
    fetched_at: Option<i64>,
    attempted_at: Option<i64>,
}

impl fmt::Debug for PublishedKeysResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishedKeysResolver")
            .field("ttl", &self.ttl)
            .field("min_refresh", &self.min_refresh)
            .finish_non_exhaustive()
    }
}

impl PublishedKeysResolver {
    /// Over `keys`, aged by `clock`.
    #[must_use]
    pub fn new(
        keys: PublishedServiceKeys,
        clock: Arc<dyn Clock>,
        ttl: std::time::Duration,
        min_refresh: std::time::Duration,
    ) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            keys,
            clock,
            ttl: secs(ttl),
            min_refresh: secs(min_refresh),
            cache: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Reads `service`'s keys into `entry` unless the last read is more recent than
    /// `min_refresh`; a failed read keeps the keys already cached.
    async fn refresh(
        &self,
        service: &str,
        entry: &mut CachedKeys,
        now: i64,
    ) -> Result<(), JoseError> {
        if entry
            .attempted_at
            .is_some_and(|at| now.saturating_sub(at) < self.min_refresh)
        {
            return Ok(());
        }
        entry.attempted_at = Some(now);
        match self.keys.jwks(service).await {
            Ok(jwks) => {
                entry.keys = Some(JwksResolver::new(&jwks).for_issuer(service.to_owned()));
                entry.fetched_at = Some(now);
                Ok(())
            }
            Err(err) if entry.keys.is_some() => {
                tracing::warn!(error = %edk_core::ErrorChain(&err), "published service keys could not be read");
                Ok(())
            }
            Err(err) => {
                let kind = err.kind();
                Err(JoseError::KeySource(Box::new(err), kind))
            }
        }
    }
}

#[async_trait::async_trait]
impl KeyResolver for PublishedKeysResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let service = query
            .issuer
            .ok_or(JoseError::UntrustedKey("unknown service"))?;
        let now = self.clock.unix_seconds();
        let mut cache = self.cache.lock().await;
        let entry = cache.entry(service.to_owned()).or_default();
        if entry
            .fetched_at
            .is_none_or(|at| now.saturating_sub(at) >= self.ttl)
        {
            self.refresh(service, entry, now).await?;
        }
        let Some(keys) = &entry.keys else {
            return Err(JoseError::KeyNotFound);
        };
        match keys.resolve(query).await {
            Err(JoseError::KeyNotFound) if query.kid.is_some() => {
                self.refresh(service, entry, now).await?;
                match &entry.keys {
                    Some(keys) => keys.resolve(query).await,
                    None => Err(JoseError::KeyNotFound),
                }
            }
            other => other,
        }
    }
}
