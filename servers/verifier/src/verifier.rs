//! The verifier's logic over its store and the tenant's KMS: stored DCQL queries, and
//! presentation requests with their sessions. HTTP stays in the admin and protocol modules.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_core::{Clock, ErrorKind, HasKind};
use edk_kms::cert::CertificateSource;
use edk_kms::kms::{Caller, KeyAlias, NewKey};
use edk_kms::provider::KeySpec;
use edk_kms::{KeyRef, Kms};
use edk_oid4vp::{
    AuthorizationRequest, ClientId, ClientMetadata, DcqlQuery, RequestUriMethod, ResponseMode,
};
use edk_tenancy::TenantContext;
use serde_json::{Map, Value, json};
use url::Url;

use crate::config::VerifierSettings;
use crate::store::{Session, SessionStatus, SqlStore, StoreError, StoredQuery, StoredRequest};
use crate::webhook::Webhooks;

/// The KMS service name of the verifier's keys (`verifier.<purpose>`).
pub const KMS_SERVICE: &str = "verifier";
/// The purpose of the Request Object signing key: alias `verifier.request-object-signing`
/// (ES256, created on first use).
pub const REQUEST_OBJECT_SIGNING_PURPOSE: &str = "request-object-signing";
/// The purpose of the key wallets encrypt `direct_post.jwt` responses to: alias
/// `verifier.request-decryption` (ECDH-ES on P-256, created on first use).
pub const REQUEST_DECRYPTION_PURPOSE: &str = "request-decryption";

/// The client identifier prefix a request is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIdPrefix {
    /// `x509_san_dns:` with the host of the tenant's verifier binding; the Request Object
    /// carries the certificate of `verifier.request-object-signing`.
    X509SanDns,
    /// `x509_hash:` of the certificate of `verifier.request-object-signing`.
    X509Hash,
    /// `decentralized_identifier:` with the `did:jwk` of `verifier.request-object-signing`.
    DecentralizedIdentifier,
    /// `redirect_uri:` with the `response_uri`: an unsigned request, passed by value.
    RedirectUri,
    /// `verifier_attestation:` with the `sub` of the tenant's Verifier Attestation JWT,
    /// which the Request Object carries in its header `jwt`.
    VerifierAttestation,
}

/// The tenant's Verifier Attestation JWT, as stored and read.
#[derive(Clone, Debug)]
pub struct StoredAttestation {
    /// The JWT.
    pub jwt: String,
    /// Its claims.
    pub attestation: edk_oid4vp::VerifierAttestation,
    /// When it was set (Unix seconds).
    pub updated_at: i64,
}

/// What a presentation request asks for.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// A stored query (exclusive with `dcql_query`).
    pub query_id: Option<String>,
    /// An inline query (exclusive with `query_id`).
    pub dcql_query: Option<Value>,
    /// How the verifier is identified.
    pub client_id_prefix: ClientIdPrefix,
    /// `direct_post` or `direct_post.jwt`.
    pub response_mode: ResponseMode,
    /// `transaction_data` entries as JSON objects.
    pub transaction_data: Option<Vec<Value>>,
    /// The caller's reference, unique in the tenant.
    pub correlation_id: Option<String>,
    /// How long the wallet may answer, in seconds.
    pub lifetime_secs: Option<i64>,
    /// Same-device flows: where the wallet sends the person back once it has answered,
    /// with `#response_code=…` appended.
    pub redirect_uri: Option<String>,
    /// Where a signed notification goes when the session settles.
    pub webhook_url: Option<String>,
}

/// A made request.
#[derive(Clone, Debug)]
pub struct CreatedRequest {
    /// The session id.
    pub session_id: String,
    /// Where the wallet fetches the Request Object (none for `redirect_uri:`).
    pub request_uri: Option<String>,
    /// The `openid4vp://` URI to show to the wallet.
    pub authorization_request_uri: String,
    /// When the wallet can no longer answer (Unix seconds).
    pub expires_at: i64,
}

/// Why a verifier operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input is unusable.
    #[error("{0}")]
    InvalidInput(String),
    /// What was named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The tenant lacks what the request needs.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The KMS failed.
    #[error("the KMS failed")]
    Kms(#[source] edk_kms::Error),
    /// The tenant's routing failed.
    #[error(transparent)]
    Tenancy(#[from] edk_tenancy::Error),
    /// The caller may not have what it asked for.
    #[error("{0}")]
    Forbidden(&'static str),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Store(err) => err.kind(),
            Self::Kms(err) => err.kind(),
            Self::Tenancy(err) => err.kind(),
            Self::Forbidden(_) => ErrorKind::Forbidden,
        }
    }
}

/// How many validated issuer chains the verifier keeps.
const CHAIN_CACHE_CAPACITY: usize = 1024;

/// The verifier: its store, the tenant's KMS and certificates, and the clock.
pub struct Verifier {
    store: SqlStore,
    kms: Arc<dyn Kms>,
    certificates: Option<Arc<dyn CertificateSource>>,
    anchors: Option<Arc<dyn CertificateSource>>,
    status: Option<Arc<crate::status::StatusLists>>,
    webhooks: Webhooks,
    /// Issuer chains already validated, keyed by the chain and the trust-anchor set they
    /// were validated against (so a change of a tenant's anchors never reuses an entry).
    chains: Arc<edk_core::x5c::X5cChainCache>,
    clock: Arc<dyn Clock>,
    request_ttl_secs: i64,
    max_request_ttl_secs: i64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("certificates", &self.certificates.is_some())
            .field("request_ttl_secs", &self.request_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier over `store`, signing with `kms`, at the time of `clock`, with
    /// `settings`: requests live `request_ttl_secs` unless asked otherwise, at most
    /// `max_request_ttl_secs`; webhooks are sent as its `webhook_*` settings say.
    ///
    /// # Errors
    /// When the webhooks' HTTP client cannot be built (no TLS back end could be set up).
    pub fn new(
        store: SqlStore,
        kms: Arc<dyn Kms>,
        clock: Arc<dyn Clock>,
        settings: &VerifierSettings,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            webhooks: Webhooks::new(store.clone(), Arc::clone(&kms), settings)?,
            store,
            kms,
            certificates: None,
            anchors: None,
            status: None,
            chains: Arc::new(edk_core::x5c::X5cChainCache::new(CHAIN_CACHE_CAPACITY)),
            clock,
            request_ttl_secs: settings.request_ttl_secs.max(1),
            max_request_ttl_secs: settings.max_request_ttl_secs.max(1),
        })
    }

    /// The verifier reading the certificate of `verifier.request-object-signing` from
    /// `certificates` (needed by the `x509_san_dns` and `x509_hash` prefixes).
    #[must_use]
    pub fn with_certificates(mut self, certificates: Arc<dyn CertificateSource>) -> Self {
        self.certificates = Some(certificates);
        self
    }

    /// The verifier checking the status of credentials that carry a `status_list`
    /// reference with `status`; without it such credentials are refused.
    #[must_use]
    pub fn with_status_lists(mut self, status: Arc<crate::status::StatusLists>) -> Self {
        self.status = Some(status);
        self
    }

    /// The webhook sender.
    #[must_use]
    pub const fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// The store.
    #[must_use]
    pub const fn store(&self) -> &SqlStore {
        &self.store
    }

    /// The clock.
    #[must_use]
    pub const fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, in Unix seconds.
    #[must_use]
    pub fn now(&self) -> i64 {
        self.clock.unix_seconds()
    }

    /// Creates or replaces query `id` after validating it; its new version.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an invalid id or query; [`Error::Store`].
    pub async fn put_query(
        &self,
        tenant: &TenantContext,
        id: &str,
        query: &Value,
    ) -> Result<i64, Error> {
        if !edk_oid4vp::dcql::is_valid_id(id) {
            return Err(Error::InvalidInput(
                "a query id is 1 to 64 characters of A-Z, a-z, 0-9, _ and -".to_owned(),
            ));
        }
        parse_query(query)?;
        Ok(self.store.put_query(tenant, id, query, self.now()).await?)
    }

    /// Query `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`].
    pub async fn query(&self, tenant: &TenantContext, id: &str) -> Result<StoredQuery, Error> {
        self.store
            .query(tenant, id)
            .await?
            .ok_or(Error::NotFound("DCQL query"))
    }

    /// Deletes query `id`; requests already made with it keep their copy.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`].
    pub async fn delete_query(&self, tenant: &TenantContext, id: &str) -> Result<(), Error> {
        if self.store.delete_query(tenant, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("DCQL query"))
        }
    }

    /// Session `id`. A same-device session (made with a `redirect_uri`) is read only with
    /// the `response_code` its redirect carried, once.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Forbidden`] for a same-device session without its
    /// response code, with another one, or with one already used; [`Error::Store`].
    pub async fn session(
        &self,
        tenant: &TenantContext,
        id: &str,
        response_code: Option<&str>,
    ) -> Result<Session, Error> {
        let session = self
            .store
            .session(tenant, id)
            .await?
            .ok_or(Error::NotFound("session"))?;
        self.readable(tenant, session, response_code).await
    }

    /// The session of `correlation_id`, read as [`Verifier::session`] reads it.
    ///
    /// # Errors
    /// As [`Verifier::session`].
    pub async fn session_by_correlation(
        &self,
        tenant: &TenantContext,
        correlation_id: &str,
        response_code: Option<&str>,
    ) -> Result<Session, Error> {
        let session = self
            .store
            .session_by_correlation(tenant, correlation_id)
            .await?
            .ok_or(Error::NotFound("session"))?;
        self.readable(tenant, session, response_code).await
    }

    /// `session` if the caller may read it: a same-device session only with its response
    /// code, redeemed here.
    async fn readable(
        &self,
        tenant: &TenantContext,
        session: Session,
        response_code: Option<&str>,
    ) -> Result<Session, Error> {
        let refused = Error::Forbidden(
            "a same-device session is read once, with the response_code of its redirect",
        );
        match (&session.request.redirect_uri, response_code) {
            (None, None) => Ok(session),
            (None, Some(_)) => Err(Error::InvalidInput(
                "the session was not made for a same-device flow: it has no response_code"
                    .to_owned(),
            )),
            (Some(_), None) => Err(refused),
            (Some(_), Some(code)) => self
                .store
                .redeem_response_code(tenant, &session.id, code)
                .await?
                .ok_or(refused),
        }
    }

    /// Makes a presentation request for `tenant` (its context with its `verifier` binding)
    /// and stores its session.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unusable request; [`Error::NotFound`] for an unknown
    /// stored query; [`Error::Conflict`] when the tenant has no verifier binding, the
    /// correlation id is taken, an `x509_*` prefix is asked without a certificate for
    /// `verifier.request-object-signing`, or `verifier_attestation` without a usable
    /// verifier attestation; [`Error::Kms`] or [`Error::Store`].
    pub async fn create_request(
        &self,
        tenant: &TenantContext,
        new: NewRequest,
    ) -> Result<CreatedRequest, Error> {
        let binding = tenant.binding().ok_or_else(|| {
            Error::Conflict("the tenant has no verifier endpoint binding".to_owned())
        })?;
        let base = binding.identifier().trim_end_matches('/').to_owned();
        let (dcql_value, query_id) = match (new.query_id, new.dcql_query) {
            (Some(id), None) => (self.query(tenant, &id).await?.query, Some(id)),
            (None, Some(query)) => (query, None),
            _ => {
                return Err(Error::InvalidInput(
                    "name exactly one of query_id and dcql_query".to_owned(),
                ));
            }
        };
        let dcql_query = parse_query(&dcql_value)?;
        let lifetime = new.lifetime_secs.unwrap_or(self.request_ttl_secs);
        if !(1..=self.max_request_ttl_secs).contains(&lifetime) {
            return Err(Error::InvalidInput(format!(
                "lifetime_secs must be between 1 and {}",
                self.max_request_ttl_secs
            )));
        }
        let transaction_data = new
            .transaction_data
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| match entry {
                        Value::Object(_) => Ok(URL_SAFE_NO_PAD.encode(entry.to_string())),
                        _ => Err(Error::InvalidInput(
                            "each transaction_data entry is a JSON object".to_owned(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;

        let redirect_uri = new
            .redirect_uri
            .as_deref()
            .map(same_device_redirect)
            .transpose()?;
        let webhook_url = new
            .webhook_url
            .as_deref()
            .map(|url| self.webhooks.check_url(url))
            .transpose()?;
        if webhook_url.is_some() && !self.webhooks.has_secret(tenant).await? {
            return Err(Error::Conflict(
                "webhook_url needs the tenant's webhook secret: PUT /webhook-secret first"
                    .to_owned(),
            ));
        }
        let response_uri = url(&format!("{base}/response"))?;
        let handle = random_token();
        let request_uri = url(&format!("{base}/requests/{handle}"))?;
        let caller = caller(tenant);
        let client_id = match new.client_id_prefix {
            ClientIdPrefix::RedirectUri => ClientId::RedirectUri(response_uri.to_string()),
            ClientIdPrefix::X509SanDns => {
                self.certificate_chain(&caller).await?;
                ClientId::X509SanDns(binding.host().to_owned())
            }
            ClientIdPrefix::X509Hash => {
                let chain = self.certificate_chain(&caller).await?;
                let leaf = chain.first().ok_or_else(|| {
                    Error::Conflict("the request object signing certificate is empty".to_owned())
                })?;
                ClientId::X509Hash(edk_oid4vp::x509_hash(leaf))
            }
            ClientIdPrefix::DecentralizedIdentifier => {
                ClientId::DecentralizedIdentifier(self.did(&caller).await?)
            }
            ClientIdPrefix::VerifierAttestation => {
                let stored = self
                    .store
                    .verifier_attestation(tenant)
                    .await?
                    .ok_or_else(|| {
                        Error::Conflict(
                            "the verifier_attestation client identifier prefix needs the tenant's \
                         verifier attestation: PUT /verifier-attestation first"
                                .to_owned(),
                        )
                    })?;
                let attestation =
                    self.check_attestation(tenant, &stored.0)
                        .await
                        .map_err(|err| match err {
                            Error::InvalidInput(reason) => Error::Conflict(format!(
                                "the tenant's verifier attestation is no longer usable: {reason}"
                            )),
                            other => other,
                        })?;
                ClientId::VerifierAttestation(attestation.subject)
            }
        };
        let mut metadata = ClientMetadata {
            vp_formats_supported: Some(vp_formats()),
            ..ClientMetadata::default()
        };
        if new.response_mode == ResponseMode::DirectPostJwt {
            let alias = alias(REQUEST_DECRYPTION_PURPOSE)?;
            self.ensure_key(
                &caller,
                &alias,
                KeySpec::decryption(edk_core::jose::jwe::KeyManagement::EcdhEs),
            )
            .await?;
            let jwks = self.kms.jwks(&caller, &alias).await.map_err(Error::Kms)?;
            let mut jwks = serde_json::to_value(&jwks)
                .map_err(|_| Error::Conflict("the decryption keys do not serialize".to_owned()))?;
            if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
                for key in keys {
                    if let Some(key) = key.as_object_mut() {
                        key.insert("alg".to_owned(), json!("ECDH-ES"));
                        key.insert("use".to_owned(), json!("enc"));
                    }
                }
            }
            metadata.jwks = Some(jwks);
            metadata.encrypted_response_enc_values_supported =
                Some(vec!["A128GCM".to_owned(), "A256GCM".to_owned()]);
        }
        let state = random_token();
        let nonce = random_token();
        let mut request =
            AuthorizationRequest::direct_post(client_id.clone(), response_uri, nonce, dcql_query);
        request.response_mode = new.response_mode;
        request.state = Some(state.clone());
        request.client_metadata = Some(metadata);
        request.transaction_data = transaction_data.clone();
        request
            .validate()
            .map_err(|err| Error::InvalidInput(err.to_string()))?;

        let by_reference = client_id.requires_signed_request();
        let authorization_request_uri = if by_reference {
            query_uri(&request.reference_query_pairs(&request_uri, RequestUriMethod::Get))
        } else {
            query_uri(&request.to_query_pairs())
        }?;
        let now = self.now();
        let session = Session {
            id: random_token(),
            correlation_id: new.correlation_id,
            status: SessionStatus::Created,
            request: StoredRequest {
                client_id: client_id.to_string(),
                response_mode: new.response_mode.as_str().to_owned(),
                response_uri: format!("{base}/response"),
                nonce: request.nonce.clone(),
                state,
                dcql_query: dcql_value,
                client_metadata: request
                    .client_metadata
                    .as_ref()
                    .map(ClientMetadata::to_json),
                query_id,
                transaction_data,
                redirect_uri,
            },
            outcome: None,
            created_at: now,
            updated_at: now,
            expires_at: now.saturating_add(lifetime),
            webhook_url,
        };
        self.store
            .insert_session(tenant, &session, by_reference.then_some(handle.as_str()))
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => {
                    Error::Conflict("the correlation_id is already in use".to_owned())
                }
                other => Error::Store(other),
            })?;
        Ok(CreatedRequest {
            session_id: session.id,
            request_uri: by_reference.then(|| request_uri.to_string()),
            authorization_request_uri,
            expires_at: session.expires_at,
        })
    }

    /// Checks the Verifier Attestation JWT `jwt` for `tenant` (its context with its
    /// `verifier` binding) and stores it in place of any previous one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong with it (as [`Verifier::check_attestation`]);
    /// [`Error::Conflict`] without a verifier binding; [`Error::Kms`] or [`Error::Store`].
    pub async fn put_verifier_attestation(
        &self,
        tenant: &TenantContext,
        jwt: &str,
    ) -> Result<StoredAttestation, Error> {
        let attestation = self.check_attestation(tenant, jwt).await?;
        let now = self.now();
        self.store
            .put_verifier_attestation(tenant, jwt, now)
            .await?;
        Ok(StoredAttestation {
            jwt: jwt.to_owned(),
            attestation,
            updated_at: now,
        })
    }

    /// The tenant's Verifier Attestation JWT.
    ///
    /// # Errors
    /// [`Error::NotFound`] when none is set; [`Error::Store`].
    pub async fn verifier_attestation(
        &self,
        tenant: &TenantContext,
    ) -> Result<StoredAttestation, Error> {
        let (jwt, updated_at) = self
            .store
            .verifier_attestation(tenant)
            .await?
            .ok_or(Error::NotFound("verifier attestation"))?;
        let attestation = edk_oid4vp::VerifierAttestation::read(&jwt)
            .map_err(|err| Error::Conflict(format!("the stored verifier attestation: {err}")))?;
        Ok(StoredAttestation {
            jwt,
            attestation,
            updated_at,
        })
    }

    /// Removes the tenant's Verifier Attestation JWT; requests made with it can no longer be
    /// fetched.
    ///
    /// # Errors
    /// [`Error::NotFound`] when none is set; [`Error::Store`].
    pub async fn delete_verifier_attestation(&self, tenant: &TenantContext) -> Result<(), Error> {
        if self.store.delete_verifier_attestation(tenant).await? {
            Ok(())
        } else {
            Err(Error::NotFound("verifier attestation"))
        }
    }

    /// Checks that the Verifier Attestation JWT `jwt` fits `tenant` (its context with its
    /// `verifier` binding): `typ` `verifier-attestation+jwt`, `sub` the tenant's verifier
    /// identifier, valid now, `cnf.jwk` the public key of `verifier.request-object-signing`,
    /// and `redirect_uris`, if present, holding the `response_uri`.
    /// The attester's signature is for wallets to check.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the problem; [`Error::Conflict`] without a verifier
    /// binding; [`Error::Kms`].
    pub async fn check_attestation(
        &self,
        tenant: &TenantContext,
        jwt: &str,
    ) -> Result<edk_oid4vp::VerifierAttestation, Error> {
        let binding = tenant.binding().ok_or_else(|| {
            Error::Conflict("the tenant has no verifier endpoint binding".to_owned())
        })?;
        let identifier = binding.identifier().trim_end_matches('/').to_owned();
        let attestation = edk_oid4vp::VerifierAttestation::read(jwt)
            .map_err(|err| Error::InvalidInput(format!("verifier attestation: {err}")))?;
        if attestation.subject != identifier {
            return Err(Error::InvalidInput(format!(
                "the verifier attestation's sub {:?} is not the tenant's verifier identifier \
                 {identifier:?}",
                attestation.subject
            )));
        }
        attestation.check_validity(self.now(), 0).map_err(|_| {
            Error::InvalidInput(
                "the verifier attestation has expired or is not yet valid".to_owned(),
            )
        })?;
        let response_uri = url(&format!("{identifier}/response"))?;
        if !attestation.allows_uri(&response_uri) {
            return Err(Error::InvalidInput(format!(
                "the verifier attestation's redirect_uris do not include the response_uri \
                 {response_uri}"
            )));
        }
        let key = self
            .kms
            .public_key(
                &caller(tenant),
                &KeyRef::Alias(alias(REQUEST_OBJECT_SIGNING_PURPOSE)?),
            )
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::NotFound => Error::InvalidInput(format!(
                    "the tenant has no KMS key {KMS_SERVICE}.{REQUEST_OBJECT_SIGNING_PURPOSE} \
                     for the verifier attestation's cnf.jwk to name"
                )),
                _ => Error::Kms(err),
            })?;
        if key.thumbprint() != attestation.key.thumbprint() {
            return Err(Error::InvalidInput(format!(
                "the verifier attestation's cnf.jwk is not the public key of the KMS alias \
                 {KMS_SERVICE}.{REQUEST_OBJECT_SIGNING_PURPOSE}"
            )));
        }
        Ok(attestation)
    }

    /// The certificate chain (DER, leaf first) of `verifier.request-object-signing`.
    async fn certificate_chain(&self, caller: &Caller) -> Result<Vec<Vec<u8>>, Error> {
        let missing = || {
            Error::Conflict(format!(
                "the x509 client identifier prefixes need a certificate for the KMS alias \
                 {KMS_SERVICE}.{REQUEST_OBJECT_SIGNING_PURPOSE}"
            ))
        };
        let certificates = self.certificates.as_ref().ok_or_else(missing)?;
        match certificates
            .certificate(caller, &alias(REQUEST_OBJECT_SIGNING_PURPOSE)?)
            .await
        {
            Ok(stored) => Ok(stored.certificate.chain),
            Err(err) if err.kind() == ErrorKind::NotFound => Err(missing()),
            Err(err) => Err(Error::Conflict(format!(
                "the request object signing certificate is unavailable: {err}"
            ))),
        }
    }

    /// The `did:jwk` of `verifier.request-object-signing`, created on first use.
    async fn did(&self, caller: &Caller) -> Result<String, Error> {
        let alias = alias(REQUEST_OBJECT_SIGNING_PURPOSE)?;
        self.ensure_key(
            caller,
            &alias,
            KeySpec::signing(edk_core::jose::Algorithm::Es256),
        )
        .await?;
        let mut jwk = self
            .kms
            .public_key(caller, &KeyRef::Alias(alias))
            .await
            .map_err(Error::Kms)?;
        jwk.kid = None;
        let did = edk_did::methods::jwk::DidJwk::create(&jwk)
            .map_err(|_| Error::Conflict("the signing key has no did:jwk".to_owned()))?;
        Ok(did.to_string())
    }

    /// Creates key `alias` with `spec` if the tenant does not have it yet.
    pub(crate) async fn ensure_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        spec: KeySpec,
    ) -> Result<(), Error> {
        self.kms
            .ensure_key(caller, &NewKey::new(alias.clone(), spec))
            .await
            .map_err(Error::Kms)
    }
}

/// The verifier's KMS caller in `tenant`.
pub(crate) fn caller(tenant: &TenantContext) -> Caller {
    Caller::new(tenant.clone(), KMS_SERVICE)
}

/// The alias `verifier.<purpose>`.
pub(crate) fn alias(purpose: &str) -> Result<KeyAlias, Error> {
    KeyAlias::new(KMS_SERVICE, purpose)
        .map_err(|_| Error::Conflict(format!("invalid key purpose {purpose}")))
}

fn parse_query(value: &Value) -> Result<DcqlQuery, Error> {
    let query = DcqlQuery::from_json(value)
        .map_err(|err| Error::InvalidInput(format!("dcql_query: {err}")))?;
    query
        .validate()
        .map_err(|err| Error::InvalidInput(format!("dcql_query: {err}")))?;
    Ok(query)
}

fn url(text: &str) -> Result<Url, Error> {
    Url::parse(text).map_err(|_| {
        Error::Conflict("the tenant's verifier binding does not form a URL".to_owned())
    })
}

fn query_uri(
    pairs: &Result<Vec<(String, String)>, edk_oid4vp::RequestError>,
) -> Result<String, Error> {
    let pairs = pairs
        .as_ref()
        .map_err(|err| Error::InvalidInput(err.to_string()))?;
    let mut uri = url("openid4vp://")?;
    uri.query_pairs_mut().extend_pairs(pairs);
    Ok(uri.to_string())
}

/// A same-device `redirect_uri`: an absolute `https` URL (`http` only for `localhost`)
/// without a fragment, at most 2048 characters.
fn same_device_redirect(uri: &str) -> Result<String, Error> {
    let invalid = || {
        Error::InvalidInput(
            "redirect_uri is an absolute https URL without a fragment, at most 2048 characters"
                .to_owned(),
        )
    };
    let parsed = Url::parse(uri).map_err(|_| invalid())?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && local);
    if uri.len() > 2048 || !scheme_ok || parsed.fragment().is_some() || parsed.host().is_none() {
        return Err(invalid());
    }
    Ok(parsed.to_string())
}

/// The formats and algorithms the verifier accepts.
fn vp_formats() -> Map<String, Value> {
    let mut formats = Map::new();
    formats.insert(
        "dc+sd-jwt".to_owned(),
        json!({"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}),
    );
    formats.insert(
        "mso_mdoc".to_owned(),
        json!({"issuerauth_alg_values": [-7], "deviceauth_alg_values": [-7]}),
    );
    formats
}

/// 256 random bits, base64url.
pub(crate) fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    // The system CSPRNG does not fail on the platforms aws-lc-rs supports; a failure leaves
    // zeros, which the unique indexes then refuse.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a wallet's call was refused, in OpenID4VP's error format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The call is unusable, or answers no open request (`invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// The request object or its session is not there, or was already fetched.
    #[error("the request object is not available")]
    NotFound,
    /// The verifier failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl Verifier {
    /// The verifier reading each tenant's trust anchors (certificate chains marked trust
    /// anchors in the tenant's KMS certificate store) from `source`; without them no issuer
    /// is trusted.
    #[must_use]
    pub fn with_trust_anchors(mut self, source: Arc<dyn CertificateSource>) -> Self {
        self.anchors = Some(source);
        self
    }

    /// The signed Request Object (`typ: oauth-authz-req+jwt`) served once at the
    /// `request_uri` of `handle`, with the `wallet_nonce` of a `request_uri_method=post`
    /// fetch.
    ///
    /// # Errors
    /// [`WalletError::NotFound`] for an unknown, fetched or lapsed handle;
    /// [`WalletError::Failed`] when signing fails.
    pub async fn request_object(
        &self,
        tenant: &TenantContext,
        handle: &str,
        wallet_nonce: Option<&str>,
    ) -> Result<String, WalletError> {
        let now = self.now();
        let session = self
            .store
            .retrieve(tenant, handle, now)
            .await
            .map_err(Error::from)?
            .ok_or(WalletError::NotFound)?;
        let request = authorization_request(&session.request)?;
        let caller = caller(tenant);
        let key = match &request.client_id {
            Some(ClientId::X509SanDns(_) | ClientId::X509Hash(_)) => {
                edk_oid4vp::RequestObjectKey::X5c(without_root(
                    self.certificate_chain(&caller).await?,
                ))
            }
            Some(ClientId::DecentralizedIdentifier(did)) => {
                edk_oid4vp::RequestObjectKey::Kid(format!("{did}#0"))
            }
            Some(ClientId::VerifierAttestation(_)) => {
                let (jwt, _) = self
                    .store
                    .verifier_attestation(tenant)
                    .await
                    .map_err(Error::from)?
                    .ok_or_else(|| {
                        Error::Conflict("the tenant's verifier attestation was removed".to_owned())
                    })?;
                edk_oid4vp::RequestObjectKey::VerifierAttestation(jwt)
            }
            _ => return Err(WalletError::NotFound),
        };
        let alias = alias(REQUEST_OBJECT_SIGNING_PURPOSE)?;
        self.ensure_key(
            &caller,
            &alias,
            KeySpec::signing(edk_core::jose::Algorithm::Es256),
        )
        .await?;
        let signer = self.kms.signer(&caller, &alias).await.map_err(Error::Kms)?;
        let options = edk_oid4vp::SignOptions {
            wallet_nonce,
            lifetime: Some(session.expires_at.saturating_sub(now).max(1)),
            ..edk_oid4vp::SignOptions::default()
        };
        edk_oid4vp::sign_request_object(&request, &key, &*signer, &*self.clock, &options)
            .await
            .map_err(|err| {
                WalletError::Failed(Error::Conflict(format!(
                    "the request object could not be signed: {err}"
                )))
            })
    }

    /// Receives a wallet's `direct_post` or `direct_post.jwt` body at the `response_uri`:
    /// the session of its `state` is claimed once (on any replica), the presentations are
    /// verified against the tenant's trust anchors, and the session settles as `verified`
    /// with the claims, or `failed` with why.
    ///
    /// In a same-device flow the answer is where the wallet sends the person next, verified
    /// or not: the request's `redirect_uri` with `#response_code=…`.
    ///
    /// # Errors
    /// [`WalletError::InvalidRequest`] for an unusable body, one answering no open request,
    /// and presentations that do not verify; [`WalletError::Failed`] when the verifier fails.
    pub async fn respond(
        &self,
        tenant: &TenantContext,
        body: &[u8],
    ) -> Result<Option<String>, WalletError> {
        let limits = edk_oid4vp::ResponseLimits::default();
        let invalid = |err: &dyn fmt::Display| WalletError::InvalidRequest(err.to_string());
        let token = url::form_urlencoded::parse(body)
            .find(|(name, _)| name == "response")
            .map(|(_, value)| value.into_owned());
        let (response, kid) = match &token {
            Some(token) => {
                let jwe = edk_core::jose::jwe::Jwe::parse(token, &edk_core::Limits::default())
                    .map_err(|_| {
                        WalletError::InvalidRequest("the response is not a compact JWE".to_owned())
                    })?;
                let kid = jwe.header().kid.clone();
                let plaintext = match self
                    .kms
                    .decrypt(&caller(tenant), &alias(REQUEST_DECRYPTION_PURPOSE)?, token)
                    .await
                {
                    Ok(plaintext) => plaintext,
                    Err(err) if err.kind().is_client_error() => {
                        return Err(WalletError::InvalidRequest(
                            "the response could not be decrypted with the verifier's key"
                                .to_owned(),
                        ));
                    }
                    Err(err) => return Err(Error::Kms(err).into()),
                };
                let parameters: Map<String, Value> =
                    serde_json::from_slice(&plaintext).map_err(|_| {
                        WalletError::InvalidRequest(
                            "the decrypted response is not a JSON object".to_owned(),
                        )
                    })?;
                (
                    edk_oid4vp::AuthorizationResponse::from_json(&parameters, &limits)
                        .map_err(|err| invalid(&err))?,
                    kid,
                )
            }
            None => (
                edk_oid4vp::AuthorizationResponse::from_form(body, &limits)
                    .map_err(|err| invalid(&err))?,
                None,
            ),
        };
        let state = response
            .state()
            .ok_or_else(|| WalletError::InvalidRequest("the response has no state".to_owned()))?;
        let now = self.now();
        let session = self
            .store
            .claim_response(tenant, state, now)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| {
                WalletError::InvalidRequest(
                    "the response answers no open request: unknown state, already answered \
                     or expired"
                        .to_owned(),
                )
            })?;
        let outcome = self
            .check(tenant, &session, &response, token.is_some(), kid.as_deref())
            .await;
        let (status, record, result) = match outcome {
            Ok(Some(claims)) => (SessionStatus::Verified, json!({ "claims": claims }), Ok(())),
            // The wallet answered with an error: recorded, and acknowledged.
            Ok(None) => {
                let (error, description) = match &response {
                    edk_oid4vp::AuthorizationResponse::Error {
                        error,
                        error_description,
                        ..
                    } => (error.clone(), error_description.clone()),
                    edk_oid4vp::AuthorizationResponse::VpToken { .. } => {
                        ("invalid_request".to_owned(), None)
                    }
                };
                (
                    SessionStatus::Failed,
                    json!({ "error": { "error": error, "error_description": description } }),
                    Ok(()),
                )
            }
            Err(reason) => (
                SessionStatus::Failed,
                json!({ "error": { "error": "invalid_request", "error_description": reason } }),
                Err(WalletError::InvalidRequest(reason)),
            ),
        };
        // In a same-device flow every answer that reached its session, verified or not, sends
        // the person back; the frontend's backend reads the result with the code.
        let response_code = session.request.redirect_uri.is_some().then(random_token);
        let settled = self
            .store
            .settle(
                tenant,
                &session.id,
                status,
                &record,
                response_code.as_deref(),
                self.now(),
            )
            .await
            .map_err(Error::from)?;
        if settled && session.webhook_url.is_some() {
            let webhooks = self.webhooks.clone();
            let tenant = tenant.clone();
            let event_id = crate::webhook::event_id(&session.id, status.as_str());
            let now = self.now();
            tokio::spawn(async move {
                if let Err(err) = webhooks.deliver(&tenant, &event_id, now).await {
                    tracing::warn!(event_id, error = %err, "a webhook attempt was not recorded");
                }
            });
        }
        match (&session.request.redirect_uri, response_code) {
            (Some(uri), Some(code)) => Ok(Some(format!("{uri}#response_code={code}"))),
            _ => result.map(|()| None),
        }
    }

    /// Verifies `response` for `session`: the verified claims per credential query id,
    /// `None` for a wallet's error response, or why it is refused.
    async fn check(
        &self,
        tenant: &TenantContext,
        session: &Session,
        response: &edk_oid4vp::AuthorizationResponse,
        encrypted: bool,
        kid: Option<&str>,
    ) -> Result<Option<Value>, String> {
        if matches!(response, edk_oid4vp::AuthorizationResponse::Error { .. }) {
            return Ok(None);
        }
        let request = authorization_request(&session.request).map_err(|err| err.to_string())?;
        let wants_encryption = request.response_mode == ResponseMode::DirectPostJwt;
        if encrypted != wants_encryption {
            return Err(format!(
                "the request asked for response_mode {}",
                request.response_mode.as_str()
            ));
        }
        let key = if encrypted {
            let keys = request
                .client_metadata
                .as_ref()
                .map(ClientMetadata::keys)
                .unwrap_or_default();
            let found = keys
                .iter()
                .find(|key| kid.is_none() || key.get("kid").and_then(Value::as_str) == kid)
                .ok_or("the response JWE names no key of the request")?;
            Some(
                serde_json::from_value::<edk_core::jose::Jwk>(found.clone())
                    .map_err(|_| "the request's encryption key is malformed".to_owned())?,
            )
        } else {
            None
        };
        let anchors = self.trust_anchors(tenant).await.map_err(|err| {
            tracing::warn!(error = %err, "the tenant's trust anchors could not be read");
            "the verifier's trust anchors are unavailable".to_owned()
        })?;
        let issuers = edk_core::x5c::X5cResolver::new(anchors.clone(), Arc::clone(&self.clock))
            .map_err(|_| "a trust anchor of the tenant is not a certificate".to_owned())?
            .with_chain_cache(Arc::clone(&self.chains));
        // mdoc issuers (document signers) chain to the same anchors: the tenant's IACAs.
        let mdoc = edk_mdoc::Verifier::new(anchors, Arc::clone(&self.clock))
            .map_err(|_| "a trust anchor of the tenant is not a certificate".to_owned())?;
        let mut verifier =
            edk_oid4vp::PresentationVerifier::new(Arc::new(issuers), Arc::clone(&self.clock))
                .with_mdoc_verifier(Arc::new(mdoc))
                // HAIP §6.1: a credential bound to a holder key is presented with its key
                // binding, whatever the query says.
                .requiring_key_binding_when_bound();
        if let Some(status) = &self.status {
            verifier = verifier.with_status_check(status.for_tenant(tenant));
        }
        let verified = verifier
            .verify(&request, response, key.as_ref())
            .await
            .map_err(|err| err.to_string())?;
        let claims: Map<String, Value> = verified
            .claims()
            .into_iter()
            .map(|(id, claims)| (id, Value::Array(claims)))
            .collect();
        Ok(Some(Value::Object(claims)))
    }

    /// The DER certificates of the tenant's chains marked trust anchors.
    async fn trust_anchors(&self, tenant: &TenantContext) -> Result<Vec<Vec<u8>>, Error> {
        let Some(source) = &self.anchors else {
            return Ok(Vec::new());
        };
        source
            .trust_anchors(&caller(tenant))
            .await
            .map_err(|err| Error::Conflict(format!("the certificate store failed: {err}")))
    }
}

/// `chain` without its last certificate when that one is self-signed: the wallet holds the
/// trust anchor, and HAIP has the `x5c` of a Request Object leave it out.
fn without_root(mut chain: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    use x509_cert::der::Decode as _;
    let self_signed = chain.len() > 1
        && chain.last().is_some_and(|der| {
            x509_cert::Certificate::from_der(der).is_ok_and(|cert| {
                cert.tbs_certificate().subject() == cert.tbs_certificate().issuer()
            })
        });
    if self_signed {
        chain.pop();
    }
    chain
}

/// The authorization request of a stored session, as made.
fn authorization_request(stored: &StoredRequest) -> Result<AuthorizationRequest, Error> {
    let mut parameters = Map::new();
    parameters.insert("response_type".to_owned(), json!("vp_token"));
    parameters.insert("client_id".to_owned(), json!(stored.client_id));
    parameters.insert("response_mode".to_owned(), json!(stored.response_mode));
    parameters.insert("response_uri".to_owned(), json!(stored.response_uri));
    parameters.insert("nonce".to_owned(), json!(stored.nonce));
    parameters.insert("state".to_owned(), json!(stored.state));
    parameters.insert("dcql_query".to_owned(), stored.dcql_query.clone());
    if let Some(metadata) = &stored.client_metadata {
        parameters.insert("client_metadata".to_owned(), metadata.clone());
    }
    if let Some(entries) = &stored.transaction_data {
        parameters.insert("transaction_data".to_owned(), json!(entries));
    }
    AuthorizationRequest::from_parameters(&parameters)
        .map_err(|_| Error::Store(StoreError::Corrupt("a stored request no longer reads")))
}
