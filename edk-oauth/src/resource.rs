//! The resource-server side: validating bearer and DPoP-bound JWT access tokens (RFC 9068
//! §4, RFC 6750, RFC 9449 §7) for other services and embedding applications.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::{
    JoseError, JwkSet, JwksResolver, Jws, KeyQuery, KeyResolver, VerifyPolicy, VerifyingKey,
};
use edk_core::{Clock, ErrorKind, HasKind as _, Limits};
use edk_kms::Kms;
use edk_kms::kms::Caller;
use edk_tenancy::TenantContext;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::dpop;
use crate::error::{Error, OAuthErrorCode};
use crate::server::signing_alias;
use crate::store::OAuthStore;
use crate::token::ACCESS_TOKEN_TYP;

/// A request to a protected resource, reduced to what token validation reads.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ResourceRequest {
    /// The HTTP method, upper case.
    pub method: String,
    /// The request URL as the client addressed it (for DPoP `htu`).
    pub url: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// Every `DPoP` header value.
    pub dpop: Vec<String>,
}

impl ResourceRequest {
    /// A request with `method` to `url` carrying `authorization`.
    #[must_use]
    pub fn new(method: &str, url: &str, authorization: Option<String>) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            authorization,
            dpop: Vec::new(),
        }
    }

    /// The request with a `DPoP` header.
    #[must_use]
    pub fn with_dpop(mut self, proof: impl Into<String>) -> Self {
        self.dpop.push(proof.into());
        self
    }
}

impl fmt::Debug for ResourceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// An access token that passed validation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ValidatedToken {
    /// `sub`.
    pub subject: String,
    /// `client_id`, if present.
    pub client_id: Option<String>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The DPoP key thumbprint the token is bound to.
    pub jkt: Option<String>,
    /// Every claim.
    pub claims: Map<String, Value>,
}

impl ValidatedToken {
    /// Checks that the token grants `scope`.
    ///
    /// # Errors
    /// `insufficient_scope` (403) when it does not.
    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(Error::oauth(
                OAuthErrorCode::InsufficientScope,
                format!("the token does not grant `{scope}`"),
            ))
        }
    }
}

/// Validates JWT access tokens of one authorization server (one tenant's issuer) for one
/// resource (audience). A token of another issuer, and so of another tenant, is
/// `invalid_token`.
pub struct AccessTokenValidator {
    issuer: String,
    audience: String,
    keys: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
    leeway: i64,
    dpop_max_age: i64,
    replay: Arc<dyn DpopReplayCache>,
}

impl fmt::Debug for AccessTokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenValidator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl AccessTokenValidator {
    /// A validator for tokens of `issuer` addressed to `audience`, with keys from `keys`: a
    /// [`RemoteJwks`] of the AS's `jwks_uri`, or, in a process sharing the AS's KMS,
    /// [`AccessTokenKeys`] (never the KMS's own resolver, which finds every key of the
    /// tenant).
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<dyn KeyResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys,
            clock,
            leeway: 30,
            dpop_max_age: 300,
            replay: Arc::new(MemoryReplayCache::default()),
        }
    }

    /// The validator remembering accepted DPoP proofs in `replay` instead of this process's
    /// memory: with a [`StoreReplayCache`], every replica of a resource server over one
    /// database refuses a proof that any of them accepted.
    #[must_use]
    pub fn with_replay_cache(mut self, replay: Arc<dyn DpopReplayCache>) -> Self {
        self.replay = replay;
        self
    }

    /// Validates the access token of `request`: `Bearer` tokens must not be DPoP-bound; `DPoP`
    /// tokens need a proof for this method and URL, with `ath`, signed by the bound key.
    ///
    /// # Errors
    /// `invalid_token` (401), `invalid_request` (400) or `invalid_dpop_proof` (401).
    pub async fn validate(&self, request: &ResourceRequest) -> Result<ValidatedToken, Error> {
        let authorization = request
            .authorization
            .as_deref()
            .ok_or_else(|| Error::invalid_token("no access token"))?;
        let (scheme, token) = authorization
            .split_once(' ')
            .ok_or_else(|| Error::invalid_request("malformed Authorization header"))?;
        let token = token.trim();
        let dpop_scheme = scheme.eq_ignore_ascii_case("dpop");
        if !dpop_scheme && !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::invalid_request("unsupported authorization scheme"));
        }
        let claims = self.verify(token).await?;
        let jkt = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let now = self.clock.unix_seconds();
        match (&jkt, dpop_scheme) {
            (Some(_), false) => {
                return Err(Error::invalid_token(
                    "a DPoP-bound token was sent as Bearer",
                ));
            }
            (None, true) => return Err(Error::invalid_token("the token is not DPoP-bound")),
            (Some(jkt), true) => {
                let proof = dpop::single_header(&request.dpop)?
                    .ok_or_else(|| Error::invalid_dpop_proof("a DPoP proof is required"))?;
                let proof = dpop::verify_proof(
                    proof,
                    &request.method,
                    &request.url,
                    now,
                    self.dpop_max_age,
                    Some(token),
                )?;
                if proof.jkt != *jkt {
                    return Err(Error::invalid_dpop_proof(
                        "the proof key is not the token's key",
                    ));
                }
                let expires_at = now.saturating_add(self.dpop_max_age.saturating_mul(2));
                if !self
                    .replay
                    .first_use(&proof.jkt, &proof.jti, now, expires_at)
                    .await?
                {
                    return Err(Error::invalid_dpop_proof("the proof was used before"));
                }
            }
            (None, false) => {}
        }
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(ValidatedToken {
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            client_id: claims
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            scopes,
            jkt,
            claims,
        })
    }

    async fn verify(&self, token: &str) -> Result<Map<String, Value>, Error> {
        let invalid = |_| Error::invalid_token("the access token is invalid");
        let jws = Jws::parse(token, &Limits::DEFAULT).map_err(invalid)?;
        // RFC 9068 §4: `at+jwt` or `application/at+jwt`; compared case-insensitively by the policy.
        let typ = jws
            .header()
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ).to_owned();
        if typ != ACCESS_TOKEN_TYP {
            return Err(Error::invalid_token("the token is not a JWT access token"));
        }
        let policy = VerifyPolicy::default();
        let verified = jws
            .verify_with(self.keys.as_ref(), &policy, Some(&self.issuer))
            .await
            .map_err(|err| match err {
                JoseError::KeySource(..) => Error::Fetch(Box::new(err)),
                _ => Error::invalid_token("the access token is invalid"),
            })?;
        let claims = verified.claims().map_err(invalid)?;
        let validation = edk_core::jose::Validation::default()
            .with_issuer(self.issuer.clone())
            .with_audience(self.audience.clone())
            .with_leeway(self.leeway);
        validation
            .validate(&claims, self.clock.unix_seconds())
            .map_err(|_| {
                Error::invalid_token("the access token is expired or not for this resource")
            })?;
        Ok(claims)
    }
}

/// Where an [`AccessTokenValidator`] remembers the DPoP proofs (RFC 9449 §11.1) it accepted,
/// so that each is accepted once.
#[async_trait]
pub trait DpopReplayCache: fmt::Debug + Send + Sync {
    /// Records proof `jti` of the key with thumbprint `jkt` at `now`, to be remembered until
    /// `expires_at`: `false` when it was seen before.
    ///
    /// # Errors
    /// When the backing store fails.
    async fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, Error>;
}

/// Accepted proofs in this process's memory (the default): replicas do not see each other's
/// proofs, so one proof could be used once at each.
#[derive(Debug, Default)]
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

/// How many proofs [`MemoryReplayCache`] holds before it drops the expired ones.
const MEMORY_REPLAY_LIMIT: usize = 100_000;

#[async_trait]
impl DpopReplayCache for MemoryReplayCache {
    async fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, Error> {
        let mut seen = self.seen.lock().map_err(|_| Error::Internal {
            what: "replay cache poisoned",
        })?;
        if seen.len() > MEMORY_REPLAY_LIMIT {
            seen.retain(|_, expires| *expires > now);
        }
        let key = format!("{jkt}:{jti}");
        if seen.get(&key).is_some_and(|expires| *expires > now) {
            return Ok(false);
        }
        seen.insert(key, expires_at);
        Ok(true)
    }
}

/// Accepted proofs in a tenant's database, through its [`OAuthStore`] (table `oauth_jti`,
/// one conditional insert): every replica of a resource server over that database refuses a
/// proof that any of them accepted. Expired entries go with
/// [`OAuthStore::purge_expired`].
#[derive(Debug)]
pub struct StoreReplayCache {
    store: Arc<dyn OAuthStore>,
    tenant: TenantContext,
}

impl StoreReplayCache {
    /// Proofs remembered in `tenant`'s database through `store` (for example
    /// [`AuthorizationServer::store`](crate::AuthorizationServer::store)).
    #[must_use]
    pub const fn new(store: Arc<dyn OAuthStore>, tenant: TenantContext) -> Self {
        Self { store, tenant }
    }
}

/// The replay scope of proofs accepted by resource servers, followed by the key thumbprint;
/// distinct from the authorization server's own.
const RESOURCE_DPOP_SCOPE: &str = "resource-dpop:";

#[async_trait]
impl DpopReplayCache for StoreReplayCache {
    async fn first_use(
        &self,
        jkt: &str,
        jti: &str,
        _now: i64,
        expires_at: i64,
    ) -> Result<bool, Error> {
        let scope = format!("{RESOURCE_DPOP_SCOPE}{jkt}");
        self.store
            .use_jti(&self.tenant, &scope, jti, expires_at)
            .await
    }
}

/// A [`KeyResolver`] over the versions of one tenant's access-token signing alias
/// (`as.access-token-signing`, see [`signing_alias`]) in the KMS, and nothing else.
///
/// Use it, not the KMS's own [`Kms::resolver`], to check access tokens in a process that
/// shares the authorization server's KMS: the KMS resolver finds every key of the tenant,
/// including credential-signing keys and public keys registered for verification only, so a
/// JWT with `typ: at+jwt` signed by any of them would pass. This resolver finds a `kid` only
/// when it is a version in the alias's JWKS (pre-active, active, or retired within its
/// overlap).
pub struct AccessTokenKeys {
    kms: Arc<dyn Kms>,
    caller: Caller,
}

impl fmt::Debug for AccessTokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenKeys")
            .field("tenant", &self.caller.tenant().id())
            .finish_non_exhaustive()
    }
}

impl AccessTokenKeys {
    /// The access-token signing keys of `tenant` in `kms`.
    #[must_use]
    pub fn new(kms: Arc<dyn Kms>, tenant: TenantContext) -> Self {
        Self {
            kms,
            caller: Caller::new(tenant, "edk-oauth"),
        }
    }
}

#[async_trait]
impl KeyResolver for AccessTokenKeys {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let kid = query.kid.ok_or(JoseError::KeyNotFound)?;
        let alias = signing_alias().map_err(|_| JoseError::KeyNotFound)?;
        let jwks = match self.kms.jwks(&self.caller, &alias).await {
            Ok(jwks) => jwks,
            Err(err) if err.kind() == ErrorKind::NotFound => return Err(JoseError::KeyNotFound),
            Err(err) => {
                let kind = err.kind();
                return Err(JoseError::KeySource(Box::new(err), kind));
            }
        };
        if !jwks.keys.iter().any(|key| key.kid.as_deref() == Some(kid)) {
            return Err(JoseError::KeyNotFound);
        }
        self.kms.resolver(&self.caller).resolve(query).await
    }
}

/// A [`KeyResolver`] over an authorization server's JWKS fetched from `jwks_uri`, cached for
/// a TTL and refetched (at most every 10 seconds) when a token names an unknown `kid`, so a
/// rotated key is picked up.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    ttl: i64,
    cache: RwLock<Option<(JwksResolver, i64)>>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Keys from `url`, fetched with `http` (which carries the timeouts), cached `ttl`.
    #[must_use]
    pub fn new(
        url: impl Into<String>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Self {
        Self {
            url: url.into(),
            http,
            clock,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            cache: RwLock::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwksResolver, JoseError> {
        let source =
            |err: reqwest::Error| JoseError::KeySource(Box::new(err), ErrorKind::Unavailable);
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(source)?
            .error_for_status()
            .map_err(source)?;
        let jwks: JwkSet = response.json().await.map_err(source)?;
        Ok(JwksResolver::new(&jwks))
    }
}

#[async_trait]
impl KeyResolver for RemoteJwks {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let now = self.clock.unix_seconds();
        let cached = self.cache.read().await.clone();
        if let Some((resolver, fetched)) = &cached
            && now - fetched < self.ttl
        {
            match resolver.resolve(query).await {
                Err(JoseError::KeyNotFound) if now - fetched >= 10 => {}
                other => return other,
            }
        }
        let resolver = self.fetch().await?;
        *self.cache.write().await = Some((resolver.clone(), now));
        resolver.resolve(query).await
    }
}
