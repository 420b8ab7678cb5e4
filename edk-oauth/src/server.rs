//! The per-tenant authorization server: construction, metadata, keys and clients.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use edk_core::jose::{Algorithm, Header, JwkSet, KeyResolver, Signer, jws};
use edk_core::{ClientId, Clock, ErrorKind, HasKind, TenantId};
use edk_kms::kms::{Caller, KeyAlias, KeyInfo, NewKey, purpose, service};
use edk_kms::provider::KeySpec;
use edk_kms::{KeyRef, Kms};
use edk_tenancy::TenantContext;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::authn::Authenticator;
use crate::client::{Client, ClientAuthMethod, ClientMetadata, GrantType};
use crate::config::AsConfig;
use crate::dpop::DPOP_ALGORITHMS;
use crate::error::Error;
use crate::grant::Grant;
use crate::hashing::HashingPool;
use crate::policy::CredentialGrantPolicy;
use crate::store::{NewPreAuthCode, OAuthStore};

/// The actor named in KMS audit records for the authorization server's own calls.
const KMS_ACTOR: &str = "edk-oauth";

/// How long a KMS signer is reused before it is asked for again (rotation done elsewhere is
/// picked up within this time; the old key stays verifiable for the alias's overlap).
const SIGNER_CACHE_SECS: i64 = 30;

/// The algorithms accepted for `private_key_jwt` client assertions. HMAC and `none` cannot
/// be named at all.
pub(crate) const CLIENT_ASSERTION_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
    Algorithm::Ed25519,
    Algorithm::Ps256,
    Algorithm::Rs256,
];

/// The key alias that signs a tenant's access tokens: `as.access-token-signing`.
///
/// # Errors
/// Never; the alias is well formed.
pub fn signing_alias() -> Result<KeyAlias, Error> {
    KeyAlias::new(service::AS, purpose::ACCESS_TOKEN_SIGNING).map_err(|_| Error::Internal {
        what: "the signing alias is malformed",
    })
}

/// A signer and when it was fetched.
type CachedSigner = (Arc<dyn Signer>, i64);

/// A client's stored secret hash and the SHA-256 of the secret that last verified against it.
pub(crate) type VerifiedSecret = (String, [u8; 32]);

/// A tenant's OAuth 2 authorization server. One value serves every tenant: each call takes
/// the tenant's context, and all protocol state lives in the tenant's database, so any number
/// of replicas can serve one tenant.
pub struct AuthorizationServer {
    pub(crate) store: Arc<dyn OAuthStore>,
    pub(crate) kms: Arc<dyn Kms>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AsConfig,
    pub(crate) credential_grant_policy: Option<Arc<dyn CredentialGrantPolicy>>,
    hashing: Arc<HashingPool>,
    signers: Mutex<HashMap<TenantId, CachedSigner>>,
    pub(crate) verified_secrets: Mutex<HashMap<(TenantId, ClientId), VerifiedSecret>>,
    pub(crate) clients: Mutex<HashMap<(TenantId, ClientId), CachedClient>>,
}

/// A client registration and its secret hash as read from the store, with the time (unix
/// seconds) after which it is read again.
pub(crate) type CachedClient = (Client, Option<String>, i64);

/// How many client registrations are cached before the cache starts over.
pub(crate) const CLIENT_CACHE_LIMIT: usize = 4096;

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("store", &self.store)
            .field("kms", &self.kms)
            .field("authenticator", &self.authenticator)
            .field("config", &self.config)
            .field("credential_grant_policy", &self.credential_grant_policy)
            .finish_non_exhaustive()
    }
}

/// A client registration request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewClient {
    /// The client id; `None` generates one.
    pub client_id: Option<ClientId>,
    /// The registration.
    pub metadata: ClientMetadata,
}

impl NewClient {
    /// A registration with a generated client id.
    #[must_use]
    pub const fn new(metadata: ClientMetadata) -> Self {
        Self {
            client_id: None,
            metadata,
        }
    }

    /// The registration with a chosen client id.
    #[must_use]
    pub fn with_id(mut self, client_id: ClientId) -> Self {
        self.client_id = Some(client_id);
        self
    }
}

/// A minted pre-authorized code (OID4VCI §4.1.1) and the `tx_code` to send the end user out
/// of band.
#[derive(Clone)]
#[non_exhaustive]
pub struct PreAuthorizedCode {
    /// The code, for the credential offer.
    pub code: SecretString,
    /// The transaction code, if one was asked for.
    pub tx_code: Option<SecretString>,
    /// Seconds until the code expires.
    pub expires_in: i64,
}

impl fmt::Debug for PreAuthorizedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreAuthorizedCode")
            .field("tx_code", &self.tx_code.is_some())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a pre-authorized code is for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PreAuthorizedCodeRequest {
    /// What the code grants (subject, `authorization_details`, scopes, claims).
    pub grant: Grant,
    /// A `tx_code` of this many digits (4 to 10) is generated and required; `None` for no
    /// `tx_code`.
    pub tx_code_digits: Option<u8>,
    /// Lifetime in seconds; `None` for the configured default.
    pub ttl: Option<i64>,
}

impl PreAuthorizedCodeRequest {
    /// A code for `grant` without `tx_code`, with the default lifetime.
    #[must_use]
    pub const fn new(grant: Grant) -> Self {
        Self {
            grant,
            tx_code_digits: None,
            ttl: None,
        }
    }

    /// The request with a numeric `tx_code` of `digits` digits.
    #[must_use]
    pub const fn with_tx_code(mut self, digits: u8) -> Self {
        self.tx_code_digits = Some(digits);
        self
    }
}

impl AuthorizationServer {
    /// A server over `store`, signing with `kms`, authenticating end users with
    /// `authenticator`.
    #[must_use]
    pub fn new(
        store: Arc<dyn OAuthStore>,
        kms: Arc<dyn Kms>,
        authenticator: Arc<dyn Authenticator>,
        clock: Arc<dyn Clock>,
        config: AsConfig,
    ) -> Self {
        Self {
            hashing: HashingPool::new(config.secret_hashing_per_tenant),
            store,
            kms,
            authenticator,
            clock,
            config,
            credential_grant_policy: None,
            signers: Mutex::new(HashMap::new()),
            verified_secrets: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The server with `policy` deciding the `authorization_details` of authorization codes
    /// ([`crate::policy`]); without one the requested entries are granted as sent.
    #[must_use]
    pub fn with_credential_grant_policy(mut self, policy: Arc<dyn CredentialGrantPolicy>) -> Self {
        self.credential_grant_policy = Some(policy);
        self
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &AsConfig {
        &self.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn OAuthStore> {
        &self.store
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.unix_seconds()
    }

    /// The tenant's issuer identifier, from its endpoint binding (RFC 8414 §2).
    ///
    /// # Errors
    /// [`Error::Binding`] when the context has no binding.
    pub fn issuer(tenant: &TenantContext) -> Result<String, Error> {
        Ok(tenant
            .binding()
            .ok_or(Error::Binding)?
            .identifier()
            .to_owned())
    }

    /// The URL of endpoint `path` (e.g. `token`) of the tenant's AS.
    ///
    /// # Errors
    /// [`Error::Binding`] when the context has no binding.
    pub fn endpoint_url(tenant: &TenantContext, path: &str) -> Result<String, Error> {
        let binding = tenant.binding().ok_or(Error::Binding)?;
        Ok(binding
            .advertised_url(path)
            .map_err(|_| Error::Binding)?
            .as_str()
            .to_owned())
    }

    fn caller(tenant: &TenantContext) -> Caller {
        Caller::new(tenant.clone(), KMS_ACTOR)
    }

    /// The RFC 8414 authorization server metadata of the tenant.
    ///
    /// # Errors
    /// [`Error::Binding`] when the tenant has no usable binding.
    pub fn metadata(&self, tenant: &TenantContext) -> Result<Value, Error> {
        let url = |path| Self::endpoint_url(tenant, path);
        let algs: Vec<&str> = DPOP_ALGORITHMS.iter().map(|a| a.name()).collect();
        let assertion_algs: Vec<&str> = CLIENT_ASSERTION_ALGORITHMS
            .iter()
            .map(|a| a.name())
            .collect();
        let auth_methods = [
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::PrivateKeyJwt,
            ClientAuthMethod::None,
        ]
        .map(ClientAuthMethod::as_str);
        let mut scopes = self.config.scopes_supported.clone();
        if self.config.openid && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        let mut doc = json!({
            "issuer": Self::issuer(tenant)?,
            "authorization_endpoint": url("authorize")?,
            "token_endpoint": url("token")?,
            "jwks_uri": url("jwks.json")?,
            "pushed_authorization_request_endpoint": url("par")?,
            "require_pushed_authorization_requests":
                self.config.require_pushed_authorization_requests,
            "introspection_endpoint": url("introspect")?,
            "revocation_endpoint": url("revoke")?,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "introspection_endpoint_auth_methods_supported": &auth_methods[..3],
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "code_challenge_methods_supported": ["S256"],
            "dpop_signing_alg_values_supported": algs,
            "authorization_response_iss_parameter_supported": true,
            "authorization_details_types_supported": ["openid_credential"],
            "pre-authorized_grant_anonymous_access_supported":
                self.config.pre_authorized_anonymous_access,
        });
        if !scopes.is_empty()
            && let Some(map) = doc.as_object_mut()
        {
            map.insert("scopes_supported".to_owned(), json!(scopes));
        }
        crate::client_attestation::extend_metadata(tenant, &mut doc)?;
        Ok(doc)
    }

    /// The OpenID Provider configuration (OpenID Connect Discovery 1.0 §3), when OIDC is on.
    ///
    /// # Errors
    /// [`Error::NotFound`] when OIDC is off; [`Error::Binding`] as for
    /// [`metadata`](Self::metadata).
    pub fn openid_configuration(&self, tenant: &TenantContext) -> Result<Value, Error> {
        if !self.config.openid {
            return Err(Error::NotFound {
                what: "openid configuration",
            });
        }
        let mut doc = self.metadata(tenant)?;
        if let Some(map) = doc.as_object_mut() {
            map.insert("subject_types_supported".to_owned(), json!(["public"]));
            map.insert(
                "id_token_signing_alg_values_supported".to_owned(),
                json!(["ES256"]),
            );
        }
        Ok(doc)
    }

    /// The tenant's signing keys: the active access-token signing key and every version still
    /// verifiable after rotation. Creates the key (ES256) on first use.
    ///
    /// # Errors
    /// [`Error::Kms`] when the KMS fails.
    pub async fn jwks(&self, tenant: &TenantContext) -> Result<JwkSet, Error> {
        self.ensure_signing_key(tenant).await?;
        Ok(self
            .kms
            .jwks(&Self::caller(tenant), &signing_alias()?)
            .await?)
    }

    /// The keys that verify the tenant's access tokens: the versions of its signing alias
    /// only (see [`AccessTokenKeys`](crate::resource::AccessTokenKeys)), for an
    /// [`AccessTokenValidator`](crate::AccessTokenValidator) in this process.
    #[must_use]
    pub fn access_token_keys(&self, tenant: &TenantContext) -> Arc<dyn KeyResolver> {
        Arc::new(crate::resource::AccessTokenKeys::new(
            Arc::clone(&self.kms),
            tenant.clone(),
        ))
    }

    /// Creates the tenant's access-token signing key if it does not exist yet.
    ///
    /// # Errors
    /// [`Error::Kms`] when the KMS fails.
    pub async fn ensure_signing_key(&self, tenant: &TenantContext) -> Result<KeyInfo, Error> {
        let caller = Self::caller(tenant);
        let alias = signing_alias()?;
        match self.kms.key(&caller, &KeyRef::Alias(alias.clone())).await {
            Ok(info) => Ok(info),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let request = NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256));
                match self.kms.create_key(&caller, &request).await {
                    Ok(info) => Ok(info),
                    // Another replica created it first.
                    Err(err) if err.kind() == ErrorKind::Conflict => {
                        Ok(self.kms.key(&caller, &KeyRef::Alias(alias)).await?)
                    }
                    Err(err) => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Rotates the tenant's access-token signing key; the previous key stays in the JWKS for
    /// the alias's overlap.
    ///
    /// # Errors
    /// [`Error::Kms`] when the KMS fails.
    pub async fn rotate_signing_key(&self, tenant: &TenantContext) -> Result<KeyInfo, Error> {
        self.ensure_signing_key(tenant).await?;
        let info = self
            .kms
            .rotate(&Self::caller(tenant), &signing_alias()?)
            .await?;
        if let Ok(mut signers) = self.signers.lock() {
            signers.remove(&tenant.id());
        }
        Ok(info)
    }

    async fn signer(&self, tenant: &TenantContext) -> Result<Arc<dyn Signer>, Error> {
        let now = self.now();
        if let Ok(signers) = self.signers.lock()
            && let Some((signer, at)) = signers.get(&tenant.id())
            && now - at < SIGNER_CACHE_SECS
        {
            return Ok(Arc::clone(signer));
        }
        let caller = Self::caller(tenant);
        let alias = signing_alias()?;
        let signer = match self.kms.signer(&caller, &alias).await {
            Ok(signer) => signer,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.ensure_signing_key(tenant).await?;
                self.kms.signer(&caller, &alias).await?
            }
            Err(err) => return Err(err.into()),
        };
        if let Ok(mut signers) = self.signers.lock() {
            signers.insert(tenant.id(), (Arc::clone(&signer), now));
        }
        Ok(signer)
    }

    /// Signs `claims` as a JWT of type `typ` with the tenant's signing key.
    pub(crate) async fn sign_jwt(
        &self,
        tenant: &TenantContext,
        typ: &str,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<String, Error> {
        let signer = self.signer(tenant).await?;
        let payload = serde_json::to_vec(claims).map_err(|_| Error::Internal {
            what: "serializing token claims",
        })?;
        let header = Header::new(signer.algorithm()).with_typ(typ);
        jws::sign(header, &payload, signer.as_ref())
            .await
            .map_err(|_| Error::Internal {
                what: "signing a token failed",
            })
    }

    /// Registers a client. Secret-based clients get a generated secret, returned once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an inconsistent registration; [`Error::Conflict`] when the
    /// client id is taken.
    pub async fn create_client(
        &self,
        tenant: &TenantContext,
        request: NewClient,
    ) -> Result<(Client, Option<SecretString>), Error> {
        validate_metadata(&request.metadata)?;
        let client_id = match request.client_id {
            Some(id) if id.as_str() == crate::token::ANONYMOUS_CLIENT_ID => {
                return Err(Error::InvalidInput {
                    field: "client_id",
                    reason: "`anonymous` names anonymous pre-authorized access".to_owned(),
                });
            }
            Some(id) => id,
            None => ClientId::new(crate::random::token()).map_err(|_| Error::Internal {
                what: "generated client id is malformed",
            })?,
        };
        let now = self.now();
        let (secret, hash) = if request.metadata.token_endpoint_auth_method.uses_secret() {
            let secret = crate::random::token();
            let hash = self.hash_secret(tenant, &secret).await?;
            (Some(SecretString::from(secret)), Some(hash))
        } else {
            (None, None)
        };
        let client = Client {
            client_id,
            metadata: request.metadata,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_client(tenant, &client, hash.as_deref())
            .await?;
        Ok((client, secret))
    }

    /// Every client of the tenant.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn clients(&self, tenant: &TenantContext) -> Result<Vec<Client>, Error> {
        self.store.clients(tenant).await
    }

    /// One client.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown client.
    pub async fn client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<Client, Error> {
        self.store
            .client(tenant, client_id)
            .await?
            .map(|(client, _)| client)
            .ok_or(Error::NotFound { what: "client" })
    }

    /// Replaces a secret-based client's secret; the old one stops working at once.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown client; [`Error::InvalidInput`] for a client that
    /// does not use a secret.
    pub async fn rotate_client_secret(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<SecretString, Error> {
        let client = self.client(tenant, client_id).await?;
        if !client.metadata.token_endpoint_auth_method.uses_secret() {
            return Err(Error::InvalidInput {
                field: "client_id",
                reason: "the client does not authenticate with a secret".to_owned(),
            });
        }
        let secret = crate::random::token();
        let hash = self.hash_secret(tenant, &secret).await?;
        if !self
            .store
            .set_client_secret(tenant, client_id, &hash, self.now())
            .await?
        {
            return Err(Error::NotFound { what: "client" });
        }
        self.forget_client(tenant, client_id);
        Ok(SecretString::from(secret))
    }

    /// Removes a client.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown client.
    pub async fn delete_client(
        &self,
        tenant: &TenantContext,
        client_id: &ClientId,
    ) -> Result<(), Error> {
        if !self.store.delete_client(tenant, client_id).await? {
            return Err(Error::NotFound { what: "client" });
        }
        self.forget_client(tenant, client_id);
        Ok(())
    }

    /// Drops what this replica remembers about a client (its registration and verified
    /// secret) after a change.
    pub(crate) fn forget_client(&self, tenant: &TenantContext, client_id: &ClientId) {
        let key = (tenant.id(), client_id.clone());
        if let Ok(mut cache) = self.verified_secrets.lock() {
            cache.remove(&key);
        }
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(&key);
        }
    }

    /// Mints a pre-authorized code (OID4VCI §4.1.1), with a numeric `tx_code` if asked for.
    ///
    /// Policy: a wrong `tx_code` counts one attempt; after
    /// [`AsConfig::tx_code_max_attempts`] wrong attempts the code is revoked and every later
    /// redemption, even with the right `tx_code`, is `invalid_grant`. A missing `tx_code` is
    /// `invalid_request` and not counted.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `tx_code` length outside 4 to 10 or a lifetime outside
    /// 1 second to 1 day.
    pub async fn mint_pre_authorized_code(
        &self,
        tenant: &TenantContext,
        request: PreAuthorizedCodeRequest,
    ) -> Result<PreAuthorizedCode, Error> {
        let ttl = request.ttl.unwrap_or(self.config.pre_authorized_code_ttl);
        if !(1..=86_400).contains(&ttl) {
            return Err(Error::InvalidInput {
                field: "ttl",
                reason: "must be 1 to 86400 seconds".to_owned(),
            });
        }
        if request.grant.subject.is_empty() {
            return Err(Error::InvalidInput {
                field: "subject",
                reason: "must not be empty".to_owned(),
            });
        }
        crate::authorize::check_authorization_details(request.grant.authorization_details.as_ref())
            .map_err(|err| Error::InvalidInput {
                field: "authorization_details",
                reason: err.description(),
            })?;
        crate::claims::check_grant(&request.grant)?;
        let tx_code = match request.tx_code_digits {
            None => None,
            Some(digits @ 4..=10) => Some(crate::random::digits(digits)),
            Some(_) => {
                return Err(Error::InvalidInput {
                    field: "tx_code_digits",
                    reason: "must be 4 to 10".to_owned(),
                });
            }
        };
        let code = crate::random::token();
        let now = self.now();
        let mut grant = request.grant;
        grant.client_id = None;
        let record = NewPreAuthCode {
            code_hash: crate::random::digest(&code),
            tx_code_hash: tx_code.as_deref().map(|tx| tx_code_digest(&code, tx)),
            grant,
            expires_at: now + ttl,
        };
        self.store.insert_pre_auth(tenant, &record, now).await?;
        Ok(PreAuthorizedCode {
            code: SecretString::from(code),
            tx_code: tx_code.map(SecretString::from),
            expires_in: ttl,
        })
    }

    /// Hashes a client secret of `tenant` with argon2id, in the tenant's share of the
    /// hashing pool ([`crate::hashing`]).
    pub(crate) async fn hash_secret(
        &self,
        tenant: &TenantContext,
        secret: &str,
    ) -> Result<String, Error> {
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        self.hashing
            .run(tenant.id(), move || crate::secret::hash(&secret))
            .await?
    }

    /// Verifies a client secret of `tenant` against its argon2id hash, in the tenant's share
    /// of the hashing pool: `temporarily_unavailable` at once when the tenant has its share
    /// of checks in progress.
    pub(crate) async fn verify_secret(
        &self,
        tenant: &TenantContext,
        secret: &str,
        hash: &str,
    ) -> Result<bool, Error> {
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        let hash = hash.to_owned();
        self.hashing
            .run(tenant.id(), move || crate::secret::verify(&secret, &hash))
            .await
    }
}

/// The stored digest of a `tx_code`: bound to its code, so equal `tx_code`s of different
/// codes differ.
pub(crate) fn tx_code_digest(code: &str, tx_code: &str) -> String {
    crate::random::digest(&format!("{code}\u{0}{tx_code}"))
}

fn validate_metadata(metadata: &ClientMetadata) -> Result<(), Error> {
    let invalid = |field, reason: &str| {
        Err(Error::InvalidInput {
            field,
            reason: reason.to_owned(),
        })
    };
    if metadata.grant_types.is_empty() {
        return invalid("grant_types", "at least one grant type is required");
    }
    let method = metadata.token_endpoint_auth_method;
    if method == ClientAuthMethod::None
        && metadata.grant_types.contains(&GrantType::ClientCredentials)
    {
        return invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        );
    }
    if method == ClientAuthMethod::PrivateKeyJwt
        && metadata
            .jwks
            .as_ref()
            .is_none_or(|jwks| jwks.keys.is_empty())
    {
        return invalid("jwks", "private_key_jwt needs at least one key");
    }
    if let Some(jwks) = &metadata.jwks
        && jwks.keys.iter().any(edk_core::jose::Jwk::is_private)
    {
        return invalid("jwks", "must hold public keys only");
    }
    if metadata.grant_types.contains(&GrantType::AuthorizationCode)
        && metadata.redirect_uris.is_empty()
    {
        return invalid("redirect_uris", "authorization_code needs a redirect URI");
    }
    for uri in &metadata.redirect_uris {
        match url::Url::parse(uri) {
            Ok(url) if url.fragment().is_none() && !url.cannot_be_a_base() => {}
            _ => {
                return invalid(
                    "redirect_uris",
                    "each must be an absolute URI without fragment",
                );
            }
        }
    }
    for scope in &metadata.scopes {
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return invalid("scopes", "each must be a non-empty RFC 6749 scope token");
        }
    }
    for resource in &metadata.resources {
        if !crate::authorize::is_resource_uri(resource) {
            return invalid(
                "resources",
                "each must be an absolute https URI without fragment, at most 2048 bytes",
            );
        }
    }
    crate::claims::check_claims_resources(metadata)?;
    crate::claims::check_token_claims(metadata)
}
