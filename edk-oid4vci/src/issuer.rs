//! The credential issuer of one deployment, for every tenant: configurations, metadata,
//! offers with pre-authorized codes minted by the tenant's authorization server, `c_nonce`s,
//! and the credential endpoint's processing (OpenID4VCI 1.0 §4, §7, §8, §12.2).
//!
//! The issuer is a resource server of the tenant's authorization server: the caller
//! validates the access token (edk-oauth's `AccessTokenValidator`) and hands the
//! [`ValidatedToken`] in. Every piece of state is in the tenant's database, so any replica
//! serves any step.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_core::jose::{Algorithm, Header, KeyResolver, Signer, jws};
use edk_core::{Clock, ErrorKind, HasKind};
use edk_kms::Kms;
use edk_kms::cert::CertificateSource;
use edk_kms::kms::{Caller, KeyAlias, NewKey};
use edk_kms::provider::KeySpec;
use edk_oauth::grant::Grant;
use edk_oauth::{AuthorizationServer, PreAuthorizedCodeRequest, ValidatedToken};
use edk_tenancy::TenantContext;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};

use crate::config::FormatProfile;
use crate::credential::{CredentialInput, issue_credential};
use crate::error::{ConfigError, CredentialErrorCode, IssueError, ProtocolError, StoreError};
use crate::metadata::{BatchIssuance, IssuerMetadata, check_configuration_id};
use crate::offer::{
    AuthorizationCodeGrant, CredentialOffer, Grants, PreAuthorizedCodeGrant, TxCode,
    uri_by_reference,
};
use crate::proof::ProvenKey;
use crate::proof::{ProofPolicy, verify_jwt_proof};
use crate::request::{CredentialRequest, Proofs, RequestOptions, RequestedCredential};
use crate::store::{
    HolderKey, IssuanceCompletion, IssuerStore, NewIssuedCredential, NewTransaction, Notification,
    NotificationEvent, Session, SessionStatus, StoredConfiguration, TransactionOutcome,
    TransactionState,
};

mod encryption;
mod status;

pub use encryption::{CredentialAnswer, Encryption, REQUEST_DECRYPTION_PURPOSE, RequestBody};

/// The KMS service name of the issuer's keys.
pub const KMS_SERVICE: &str = "issuer";
/// The default purpose of the credential signing key (`issuer.credential-signing`).
pub const DEFAULT_SIGNING_PURPOSE: &str = "credential-signing";
/// The `type` of OpenID4VCI authorization details.
pub const OPENID_CREDENTIAL: &str = "openid_credential";
/// The `typ` of signed Credential Issuer Metadata (§12.2.3).
pub const SIGNED_METADATA_TYP: &str = "openidvci-issuer-metadata+jwt";
/// The topic of the event published on the tenancy's event bus for each notification a
/// wallet sends (payload: `tenant`, `session_id`, `event`).
pub const NOTIFICATION_TOPIC: &str = "oid4vci.notification";

/// Why an issuer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wallet's request is refused with a protocol error code.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// An operator's input (configuration, offer request) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The thing asked for does not exist in this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing exists but is not in a state that allows the operation.
    #[error("{0}")]
    State(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The KMS failed.
    #[error("the KMS failed")]
    Kms(#[source] edk_kms::Error),
    /// The authorization server failed to mint a code.
    #[error("the authorization server refused the grant")]
    OAuth(#[source] edk_oauth::Error),
    /// Building or signing a credential failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// Building or signing a Status List Token failed.
    #[error("building the status list token failed")]
    StatusList(#[from] edk_core::status_list::StatusListError),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Protocol(err) => err.kind(),
            Self::Config(err) => err.kind(),
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::State(_) => ErrorKind::Conflict,
            Self::Store(err) => err.kind(),
            Self::Kms(err) => err.kind(),
            Self::OAuth(err) => err.kind(),
            Self::Issue(err) => err.kind(),
            Self::StatusList(err) => err.kind(),
        }
    }
}

fn protocol(code: CredentialErrorCode, description: impl AsRef<str>) -> Error {
    Error::Protocol(ProtocolError::new(code, description))
}

/// The issuer's URLs for one tenant, built by the server from the tenant's `issuer` binding.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerEndpoints {
    /// The credential issuer identifier.
    pub credential_issuer: String,
    /// The credential endpoint.
    pub credential_endpoint: String,
    /// The nonce endpoint.
    pub nonce_endpoint: String,
    /// The deferred credential endpoint.
    pub deferred_credential_endpoint: String,
    /// The notification endpoint.
    pub notification_endpoint: String,
    /// Where offers by reference are served: `<offers>/<handle>`.
    pub offers: String,
    /// The tenant's authorization server issuer identifier.
    pub authorization_server: String,
    /// Where status lists are published: `<status_lists>/<list id>`, and the list of them
    /// (aggregation) at `<status_lists>` itself.
    pub status_lists: String,
}

impl IssuerEndpoints {
    /// The endpoints of an issuer whose identifier is `credential_issuer`, at the paths EDK
    /// serves (`/credential`, `/nonce`, `/deferred_credential`, `/notification`, `/offers`,
    /// `/status-lists`) under it, using `authorization_server`.
    #[must_use]
    pub fn under(credential_issuer: &str, authorization_server: &str) -> Self {
        let base = credential_issuer.trim_end_matches('/');
        Self {
            credential_issuer: credential_issuer.to_owned(),
            credential_endpoint: format!("{base}/credential"),
            nonce_endpoint: format!("{base}/nonce"),
            deferred_credential_endpoint: format!("{base}/deferred_credential"),
            notification_endpoint: format!("{base}/notification"),
            offers: format!("{base}/offers"),
            authorization_server: authorization_server.to_owned(),
            status_lists: format!("{base}/status-lists"),
        }
    }
}

/// How the issuer behaves; the defaults suit wallets of the final specification and the
/// widely used earlier drafts.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct IssuerOptions {
    /// How long a `c_nonce` lives, in seconds.
    pub nonce_ttl_secs: i64,
    /// How long an offer (its session, its pre-authorized code, its reference) lives.
    pub offer_ttl_secs: i64,
    /// The most credentials one request may ask for (`batch_size`); 1 disables batches.
    pub batch_size: u32,
    /// Accept the singular `proof` and `format`-based requests of earlier drafts.
    pub accept_legacy: bool,
    /// How old a key proof's `iat` may be, in seconds.
    pub proof_max_age_secs: i64,
    /// The `interval` a deferred response asks the wallet to wait between polls, in seconds
    /// (at least 1).
    pub deferred_interval_secs: u32,
    /// How long a deferred transaction lives, in seconds.
    pub deferred_ttl_secs: i64,
    /// How long a wallet may send notifications about issued credentials, in seconds.
    pub notification_ttl_secs: i64,
    /// Whether credential requests and responses may, or must, be encrypted.
    pub encryption: Encryption,
    /// The `ttl` of Status List Tokens: how long relying parties may cache one, in seconds.
    pub status_list_ttl_secs: u64,
    /// How long a Status List Token is valid (`exp - iat`), in seconds; a list is signed
    /// again when half of it has passed.
    pub status_list_validity_secs: i64,
    /// How long expired Status List Tokens are kept for historical resolution, in seconds.
    pub status_list_history_secs: i64,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        Self {
            nonce_ttl_secs: 300,
            offer_ttl_secs: 600,
            batch_size: 10,
            accept_legacy: true,
            proof_max_age_secs: 300,
            deferred_interval_secs: 5,
            deferred_ttl_secs: 86_400,
            notification_ttl_secs: 86_400,
            encryption: Encryption::Supported,
            status_list_ttl_secs: 300,
            status_list_validity_secs: 86_400,
            status_list_history_secs: 90 * 86_400,
        }
    }
}

/// A fresh `c_nonce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce {
    /// The nonce.
    pub c_nonce: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// What an operator asks for when making an offer.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OfferRequest {
    /// The configurations to offer; each must exist.
    pub configuration_ids: Vec<String>,
    /// The claims of each offered credential, by configuration id.
    pub claims: Map<String, Value>,
    /// Require a numeric transaction code of this many digits (4 to 10).
    pub tx_code_digits: Option<u8>,
    /// What the wallet tells the person about the transaction code.
    pub tx_code_description: Option<String>,
    /// The caller's own reference for the session.
    pub correlation_id: Option<String>,
    /// Serve the offer by reference (`credential_offer_uri`) instead of by value.
    pub by_reference: bool,
    /// Defer every credential of the offer (§9), whatever the configurations say.
    pub deferred: bool,
    /// The grants the offer carries.
    pub grants: OfferGrants,
}

/// Which grants an offer carries; at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OfferGrants {
    /// A pre-authorized code (the default).
    pub pre_authorized_code: bool,
    /// The authorization code grant, with an `issuer_state` that ties the end user's login
    /// at the authorization server to the session.
    pub authorization_code: bool,
}

impl Default for OfferGrants {
    fn default() -> Self {
        Self {
            pre_authorized_code: true,
            authorization_code: false,
        }
    }
}

impl OfferGrants {
    /// The grants named: `pre_authorized_code` and/or `authorization_code`.
    #[must_use]
    pub const fn new(pre_authorized_code: bool, authorization_code: bool) -> Self {
        Self {
            pre_authorized_code,
            authorization_code,
        }
    }
}

/// A made offer.
#[derive(Clone)]
#[non_exhaustive]
pub struct CreatedOffer {
    /// The issuance session.
    pub session_id: String,
    /// The offer.
    pub offer: CredentialOffer,
    /// The `openid-credential-offer://` URI to show the wallet.
    pub uri: String,
    /// The transaction code, to send the person by another channel; shown once.
    pub tx_code: Option<SecretString>,
    /// When the offer lapses (Unix seconds).
    pub expires_at: i64,
}

impl fmt::Debug for CreatedOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedOffer")
            .field("session_id", &self.session_id)
            .field("tx_code", &self.tx_code.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The answer of the credential and deferred credential endpoints (§8.3, §9.2): the
/// credentials, or a transaction to poll for them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialResponse {
    /// The issued credentials, one per proven key (or one without binding); empty when
    /// issuance is deferred.
    pub credentials: Vec<String>,
    /// The deferred transaction, when the credentials are not issued yet.
    pub transaction_id: Option<String>,
    /// How many seconds the wallet waits before polling the deferred endpoint.
    pub interval: Option<u32>,
    /// What the wallet names the issued credentials by at the notification endpoint.
    pub notification_id: Option<String>,
}

impl CredentialResponse {
    /// Whether issuance is deferred (HTTP 202).
    #[must_use]
    pub const fn is_deferred(&self) -> bool {
        self.transaction_id.is_some()
    }

    /// The JSON body: `{"credentials": [{"credential": …}, …]}`, or
    /// `{"transaction_id": …, "interval": …}` when deferred.
    #[must_use]
    pub fn to_json(&self) -> Value {
        if let Some(transaction_id) = &self.transaction_id {
            return json!({ "transaction_id": transaction_id, "interval": self.interval });
        }
        let mut body = json!({
            "credentials": self
                .credentials
                .iter()
                .map(|credential| json!({ "credential": credential }))
                .collect::<Vec<_>>(),
        });
        if let Some(notification_id) = &self.notification_id {
            body["notification_id"] = json!(notification_id);
        }
        body
    }

    const fn pending(transaction_id: String, interval: u32) -> Self {
        Self {
            credentials: Vec::new(),
            transaction_id: Some(transaction_id),
            interval: Some(interval),
            notification_id: None,
        }
    }
}

/// The credential issuer.
pub struct Issuer {
    store: Arc<dyn IssuerStore>,
    kms: Arc<dyn Kms>,
    proof_keys: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
    options: IssuerOptions,
    events: Option<Arc<dyn edk_tenancy::EventBus>>,
    claims_source: Option<Arc<dyn crate::claims::ClaimsSource>>,
    certificates: Option<Arc<dyn CertificateSource>>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("store", &self.store)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    // The system CSPRNG does not fail on the platforms aws-lc-rs supports; a failure leaves
    // zeros, which a unique index then refuses.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 (base64url) of `value`, under which a bearer value is stored.
pub(crate) fn digest(value: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(value.as_bytes()))
}

impl Issuer {
    /// An issuer over `store`, signing with `kms`, resolving proof keys named by DID URL or
    /// `x5c` with `proof_keys`.
    #[must_use]
    pub fn new(
        store: Arc<dyn IssuerStore>,
        kms: Arc<dyn Kms>,
        proof_keys: Arc<dyn KeyResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            kms,
            proof_keys,
            clock,
            options: IssuerOptions::default(),
            events: None,
            claims_source: None,
            certificates: None,
        }
    }

    /// The issuer reading the certificates of its signing keys from `certificates`: the
    /// document signer chain of `mso_mdoc` credentials and the `x5c` of configurations
    /// whose key is named by [`KeyIdentification::X5c`](crate::config::KeyIdentification).
    #[must_use]
    pub fn with_certificates(mut self, certificates: Arc<dyn CertificateSource>) -> Self {
        self.certificates = Some(certificates);
        self
    }

    /// The issuer asking `source` for the claims of a credential whose session holds none
    /// and has a logged-in end user (the authorization code flow).
    #[must_use]
    pub fn with_claims_source(mut self, source: Arc<dyn crate::claims::ClaimsSource>) -> Self {
        self.claims_source = Some(source);
        self
    }

    /// The issuer publishing each wallet notification on `events` ([`NOTIFICATION_TOPIC`]).
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn edk_tenancy::EventBus>) -> Self {
        self.events = Some(events);
        self
    }

    /// The issuer with other options.
    #[must_use]
    pub const fn with_options(mut self, options: IssuerOptions) -> Self {
        self.options = options;
        self
    }

    /// The options.
    #[must_use]
    pub const fn options(&self) -> &IssuerOptions {
        &self.options
    }

    fn now(&self) -> i64 {
        self.clock.unix_seconds()
    }

    fn caller(tenant: &TenantContext) -> Caller {
        Caller::new(tenant.clone(), KMS_SERVICE)
    }

    /// Creates or replaces configuration `id` after checking it and its settings.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid id, configuration or settings; [`Error::Store`].
    pub async fn put_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
        configuration: &StoredConfiguration,
    ) -> Result<(), Error> {
        check_configuration_id(id)?;
        configuration.validate()?;
        self.store
            .put_configuration(tenant, id, configuration, self.now())
            .await?;
        Ok(())
    }

    /// The Type Metadata document served at `<credential issuer>/types/<name>`: that of the
    /// configuration whose `vct` is that URL, as the bytes whose integrity its credentials
    /// carry in `vct#integrity`; `None` when no configuration has one there.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn type_metadata(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        name: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let vct = format!(
            "{}/types/{name}",
            endpoints.credential_issuer.trim_end_matches('/')
        );
        Ok(self
            .store
            .configurations(tenant)
            .await?
            .into_iter()
            .find(|(_, stored)| stored.configuration.profile.vct() == Some(vct.as_str()))
            .and_then(|(_, stored)| stored.settings.type_metadata)
            .map(|document| document.to_string().into_bytes()))
    }

    /// The tenant's configurations.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn configurations(
        &self,
        tenant: &TenantContext,
    ) -> Result<Vec<(String, StoredConfiguration)>, Error> {
        Ok(self.store.configurations(tenant).await?)
    }

    /// Applies the tenant's session retention policy ([`crate::store::SESSION_RETENTION`]) to
    /// the sessions that ended and whose offer lapsed at `now`: the number of sessions
    /// removed or minimized.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn apply_retention(&self, tenant: &TenantContext, now: i64) -> Result<u64, Error> {
        let retention = tenant.config().get(&crate::store::SESSION_RETENTION);
        Ok(self.store.apply_retention(tenant, retention, now).await?)
    }

    /// Deletes configuration `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist; [`Error::Store`].
    pub async fn delete_configuration(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<(), Error> {
        if self.store.delete_configuration(tenant, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("credential configuration"))
        }
    }

    /// The JWT VC Issuer Metadata of `tenant` (SD-JWT VC §5): `{"issuer", "jwks"}` with the
    /// public keys of every signing key its configurations use that exists, so verifiers can
    /// check the SD-JWT VCs whose `iss` is the credential issuer identifier.
    ///
    /// # Errors
    /// [`Error::Store`], or [`Error::Kms`] when the KMS fails.
    pub async fn jwt_vc_issuer_metadata(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
    ) -> Result<Value, Error> {
        let mut purposes = BTreeSet::from([
            DEFAULT_SIGNING_PURPOSE.to_owned(),
            crate::status::STATUS_LIST_SIGNING_PURPOSE.to_owned(),
        ]);
        for (_, stored) in self.store.configurations(tenant).await? {
            if let Some(purpose) = stored.settings.signing_key {
                purposes.insert(purpose);
            }
        }
        let caller = Self::caller(tenant);
        let mut keys = Vec::new();
        for purpose in purposes {
            let Ok(alias) = KeyAlias::new(KMS_SERVICE, &purpose) else {
                continue;
            };
            match self.kms.jwks(&caller, &alias).await {
                Ok(jwks) => keys.extend(jwks.keys),
                // Not created yet: nothing was signed with it.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(Error::Kms(err)),
            }
        }
        Ok(json!({
            "issuer": endpoints.credential_issuer,
            "jwks": { "keys": keys },
        }))
    }

    /// The Credential Issuer Metadata of `tenant` as a signed JWT (OpenID4VCI 1.0 §12.2.3):
    /// `typ` [`SIGNED_METADATA_TYP`], every metadata parameter a top-level claim, `sub` and
    /// `iss` the credential issuer identifier, `iat` now and `exp` after `ttl_secs`; signed
    /// by the tenant's credential signing key (`issuer.credential-signing`, created on first
    /// use), whose `kid` names a key of the JWT VC Issuer Metadata.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Kms`] when the key cannot be created or signing fails.
    pub async fn signed_metadata(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        ttl_secs: i64,
    ) -> Result<String, Error> {
        let metadata = self.metadata(tenant, endpoints).await?;
        let Value::Object(mut claims) = json!(metadata) else {
            return Err(Error::State("the metadata is not a JSON object"));
        };
        let now = self.now();
        claims.insert("sub".to_owned(), json!(endpoints.credential_issuer));
        claims.insert("iss".to_owned(), json!(endpoints.credential_issuer));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + ttl_secs.max(1)));
        let caller = Self::caller(tenant);
        let alias = KeyAlias::new(KMS_SERVICE, DEFAULT_SIGNING_PURPOSE)
            .map_err(|_| Error::State("the default signing key alias is invalid"))?;
        self.ensure_key(&caller, &alias, KeySpec::signing(Algorithm::Es256))
            .await?;
        let signer = self.kms.signer(&caller, &alias).await.map_err(Error::Kms)?;
        let payload = serde_json::to_vec(&claims)
            .map_err(|_| Error::State("the metadata does not serialize"))?;
        jws::sign(
            Header::new(signer.algorithm()).with_typ(SIGNED_METADATA_TYP),
            &payload,
            signer.as_ref(),
        )
        .await
        .map_err(|err| Error::Issue(IssueError::Sign(err)))
    }

    /// The Credential Issuer Metadata of `tenant`, from its stored configurations.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn metadata(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
    ) -> Result<IssuerMetadata, Error> {
        let configurations = self
            .store
            .configurations(tenant)
            .await?
            .into_iter()
            .map(|(id, stored)| (id, stored.configuration))
            .collect::<BTreeMap<_, _>>();
        let (request_encryption, response_encryption) =
            self.encryption_metadata(tenant).await?.unzip();
        Ok(IssuerMetadata {
            credential_issuer: endpoints.credential_issuer.clone(),
            authorization_servers: vec![endpoints.authorization_server.clone()],
            credential_endpoint: endpoints.credential_endpoint.clone(),
            nonce_endpoint: Some(endpoints.nonce_endpoint.clone()),
            deferred_credential_endpoint: Some(endpoints.deferred_credential_endpoint.clone()),
            notification_endpoint: Some(endpoints.notification_endpoint.clone()),
            credential_request_encryption: request_encryption,
            credential_response_encryption: response_encryption,
            batch_credential_issuance: (self.options.batch_size >= 2).then_some(BatchIssuance {
                batch_size: self.options.batch_size,
            }),
            display: Vec::new(),
            credential_configurations_supported: configurations,
        })
    }

    /// A fresh `c_nonce`, accepted once by any replica until it expires (§7).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn nonce(&self, tenant: &TenantContext) -> Result<Nonce, Error> {
        let c_nonce = random_token();
        self.store
            .insert_nonce(tenant, &c_nonce, self.now() + self.options.nonce_ttl_secs)
            .await?;
        Ok(Nonce {
            c_nonce,
            expires_in: self.options.nonce_ttl_secs,
        })
    }

    /// Makes an offer: a session with the claims to issue, and a pre-authorized code for it
    /// minted by the tenant's authorization server `authorization_server`, whose access
    /// tokens name the credentials of the session in `authorization_details`.
    ///
    /// # Errors
    /// [`Error::Config`] for unknown configurations or claims for configurations not
    /// offered; [`Error::OAuth`] when the authorization server refuses the grant;
    /// [`Error::Store`] (a taken correlation id is [`StoreError::Conflict`]).
    pub async fn create_offer(
        &self,
        tenant: &TenantContext,
        authorization_server: &AuthorizationServer,
        endpoints: &IssuerEndpoints,
        request: &OfferRequest,
    ) -> Result<CreatedOffer, Error> {
        let now = self.now();
        let mut scopes = Vec::new();
        let mut details = Vec::new();
        let mut seen = BTreeSet::new();
        let session_id = uuid::Uuid::new_v4().to_string();
        if request.configuration_ids.is_empty() {
            return Err(ConfigError::invalid(
                "credential_configuration_ids",
                "must name at least one configuration",
            )
            .into());
        }
        for id in &request.configuration_ids {
            if !seen.insert(id.as_str()) {
                return Err(ConfigError::invalid(
                    "credential_configuration_ids",
                    format!("`{id}` is listed twice"),
                )
                .into());
            }
            let stored = self.store.configuration(tenant, id).await?.ok_or_else(|| {
                ConfigError::invalid(
                    "credential_configuration_ids",
                    format!("`{id}` is not a configuration of this issuer"),
                )
            })?;
            if let Some(scope) = &stored.configuration.scope {
                scopes.push(scope.clone());
            }
            details.push(json!({
                "type": OPENID_CREDENTIAL,
                "credential_configuration_id": id,
                "credential_identifiers": [credential_identifier(&session_id, id)],
                "locations": [endpoints.credential_issuer],
            }));
        }
        if let Some(extra) = request.claims.keys().find(|id| !seen.contains(id.as_str())) {
            return Err(ConfigError::invalid(
                "claims",
                format!("`{extra}` is not an offered configuration"),
            )
            .into());
        }
        if !request.grants.pre_authorized_code && !request.grants.authorization_code {
            return Err(ConfigError::invalid("grants", "must name at least one grant").into());
        }
        if request.tx_code_digits.is_some() && !request.grants.pre_authorized_code {
            return Err(ConfigError::invalid(
                "tx_code",
                "only applies to the pre-authorized code grant",
            )
            .into());
        }
        let minted = if request.grants.pre_authorized_code {
            let mut grant = Grant::new(session_subject(&session_id));
            grant.scopes = scopes;
            grant.authorization_details = Some(Value::Array(details));
            grant.resource = Some(endpoints.credential_issuer.clone());
            let mut code_request = PreAuthorizedCodeRequest::new(grant);
            code_request.ttl = Some(self.options.offer_ttl_secs);
            if let Some(digits) = request.tx_code_digits {
                code_request = code_request.with_tx_code(digits);
            }
            Some(
                authorization_server
                    .mint_pre_authorized_code(tenant, code_request)
                    .await
                    .map_err(Error::OAuth)?,
            )
        } else {
            None
        };
        let issuer_state = request.grants.authorization_code.then(random_token);
        let offer = CredentialOffer {
            credential_issuer: endpoints.credential_issuer.clone(),
            credential_configuration_ids: request.configuration_ids.clone(),
            grants: Grants {
                authorization_code: issuer_state.as_ref().map(|state| AuthorizationCodeGrant {
                    issuer_state: Some(state.clone()),
                    authorization_server: None,
                }),
                pre_authorized_code: minted.as_ref().map(|minted| PreAuthorizedCodeGrant {
                    pre_authorized_code: minted.code.expose_secret().to_owned(),
                    tx_code: minted.tx_code.as_ref().map(|code| TxCode {
                        input_mode: Some(crate::offer::InputMode::Numeric),
                        length: u32::try_from(code.expose_secret().len()).ok(),
                        description: request.tx_code_description.clone(),
                    }),
                    authorization_server: None,
                }),
            },
        };
        offer.validate()?;
        let offer_json = serde_json::to_value(&offer).unwrap_or(Value::Null);
        let expires_at = now + self.options.offer_ttl_secs;
        let handle = request.by_reference.then(random_token);
        let uri = match &handle {
            Some(handle) => uri_by_reference(&format!(
                "{}/{handle}",
                endpoints.offers.trim_end_matches('/')
            )),
            None => offer.to_uri(),
        };
        let session = Session {
            id: session_id.clone(),
            correlation_id: request.correlation_id.clone(),
            status: SessionStatus::Offered,
            configuration_ids: request.configuration_ids.clone(),
            claims: request.claims.clone(),
            offer: json!({
                "credential_issuer": offer.credential_issuer,
                "credential_configuration_ids": offer.credential_configuration_ids,
            }),
            offer_uri: Some(uri.clone()),
            created_at: now,
            updated_at: now,
            expires_at,
            deferred: request.deferred,
            minimized: false,
            subject: None,
            login_claims: Map::new(),
        };
        let issuer_state_digest = issuer_state.as_deref().map(digest);
        // The session and its reference are stored together: an offer by reference exists
        // whole or not at all.
        match &handle {
            Some(handle) => {
                self.store
                    .insert_session_and_reference(
                        tenant,
                        &session,
                        issuer_state_digest.as_deref(),
                        handle,
                        &offer_json,
                    )
                    .await?;
            }
            None => {
                self.store
                    .insert_session(tenant, &session, issuer_state_digest.as_deref())
                    .await?;
            }
        }
        Ok(CreatedOffer {
            session_id,
            offer,
            uri,
            tx_code: minted.and_then(|minted| minted.tx_code),
            expires_at,
        })
    }

    /// The offer behind a `credential_offer_uri` handle: served once, before it lapses.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown, used or lapsed handle; [`Error::Store`].
    pub async fn offer_by_reference(
        &self,
        tenant: &TenantContext,
        handle: &str,
    ) -> Result<Value, Error> {
        self.store
            .take_offer_reference(tenant, handle, self.now())
            .await?
            .map(|(_, offer)| offer)
            .ok_or(Error::NotFound("credential offer"))
    }

    /// Session `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Store`].
    pub async fn session(&self, tenant: &TenantContext, id: &str) -> Result<Session, Error> {
        self.store
            .session(tenant, id)
            .await?
            .ok_or(Error::NotFound("issuance session"))
    }

    /// The session the operator made with `correlation_id` (unique per tenant).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no session of the tenant has it; [`Error::Store`].
    pub async fn session_by_correlation_id(
        &self,
        tenant: &TenantContext,
        correlation_id: &str,
    ) -> Result<Session, Error> {
        self.store
            .session_by_correlation(tenant, correlation_id)
            .await?
            .ok_or(Error::NotFound("issuance session"))
    }

    /// The `openid-credential-offer://` URI of the offer of session `id`, while the offer is
    /// open (the session is `offered` and has not lapsed), to show the wallet again.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown session; [`Error::State`] once a credential was
    /// requested for it, or it lapsed or was cancelled; [`Error::Store`].
    pub async fn offer_uri(&self, tenant: &TenantContext, id: &str) -> Result<String, Error> {
        let session = self.session(tenant, id).await?;
        if session.status != SessionStatus::Offered || session.expires_at <= self.now() {
            return Err(Error::State(
                "the offer is no longer open: it was used, cancelled or has lapsed",
            ));
        }
        session
            .offer_uri
            .ok_or(Error::State("the offer's URI is not kept for this session"))
    }

    /// Cancels session `id` unless it has already ended; its credentials can no longer be
    /// requested.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or ended session; [`Error::Store`].
    pub async fn cancel(&self, tenant: &TenantContext, id: &str) -> Result<(), Error> {
        let open = [
            SessionStatus::Offered,
            SessionStatus::TokenIssued,
            SessionStatus::CredentialIssued,
            SessionStatus::Deferred,
            SessionStatus::Notified,
        ];
        if self
            .store
            .transition(tenant, id, &open, SessionStatus::Cancelled, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("open issuance session"))
        }
    }

    /// Processes a credential request (§8) for the holder of `token`, already validated for
    /// this issuer: which credential, the key proofs and their nonce, the claims of the
    /// session, and the signed credentials.
    ///
    /// # Errors
    /// [`Error::Protocol`] with the specification's codes for every refusal; [`Error::Store`],
    /// [`Error::Kms`] or [`Error::Issue`] when the issuer fails.
    pub async fn credential(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        token: &ValidatedToken,
        body: &Value,
    ) -> Result<CredentialResponse, Error> {
        Ok(self
            .credential_message(tenant, endpoints, token, RequestBody::Json(body))
            .await?
            .response)
    }

    /// The credential request's processing once it is plain JSON and its encryption
    /// parameters are checked.
    async fn process_credential(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        token: &ValidatedToken,
        body: &Value,
    ) -> Result<CredentialResponse, Error> {
        let mut options = RequestOptions::default()
            .with_batch_size(usize::try_from(self.options.batch_size).unwrap_or(1));
        if !self.options.accept_legacy {
            options = options.strict();
        }
        let request = CredentialRequest::parse(body, &options)?;
        let granted = GrantedCredentials::of(token);
        let configuration_id = self
            .requested_configuration(tenant, &granted, token, &request)
            .await?;
        let stored = self
            .store
            .configuration(tenant, &configuration_id)
            .await?
            .ok_or_else(|| {
                protocol(
                    CredentialErrorCode::UnknownCredentialConfiguration,
                    format!("configuration {configuration_id} is no longer offered"),
                )
            })?;
        let session = self.token_session(tenant, token).await?;
        if session.status.is_final() {
            return Err(protocol(
                CredentialErrorCode::CredentialRequestDenied,
                format!("the issuance session is {}", session.status),
            ));
        }
        if session.minimized {
            return Err(protocol(
                CredentialErrorCode::CredentialRequestDenied,
                "the issuance session's claims were removed by the retention policy",
            ));
        }
        let claims = match session.claims.get(&configuration_id) {
            Some(Value::Object(claims)) => claims.clone(),
            None => {
                self.source_claims(tenant, &session, &configuration_id)
                    .await?
            }
            Some(_) => {
                return Err(protocol(
                    CredentialErrorCode::CredentialRequestDenied,
                    "the session holds no claims for this credential",
                ));
            }
        };
        let now = self.now();
        let holders = self
            .proven_keys(
                tenant,
                endpoints,
                token,
                &stored,
                request.proofs.as_ref(),
                now,
            )
            .await?;
        if stored.settings.deferred || session.deferred {
            return self
                .defer(tenant, &session, &configuration_id, &holders, now)
                .await;
        }
        let (credentials, records) = self
            .issue(
                tenant,
                endpoints,
                &session,
                &configuration_id,
                &stored,
                &claims,
                &holders,
                now,
            )
            .await?;
        self.issued(
            tenant,
            &session.id,
            &[SessionStatus::Offered, SessionStatus::TokenIssued],
            &records,
            credentials,
            now,
        )
        .await
    }

    /// The claims of `configuration_id` from the claims source, for a session with a
    /// logged-in end user; none without a source or a subject.
    async fn source_claims(
        &self,
        tenant: &TenantContext,
        session: &Session,
        configuration_id: &str,
    ) -> Result<Map<String, Value>, Error> {
        let (Some(source), Some(subject)) = (&self.claims_source, &session.subject) else {
            return Ok(Map::new());
        };
        let request = crate::claims::ClaimsRequest {
            subject,
            login_claims: &session.login_claims,
            credential_configuration_id: configuration_id,
            session_id: &session.id,
            correlation_id: session.correlation_id.as_deref(),
        };
        match source.claims(tenant, &request).await {
            Ok(claims) => Ok(claims.unwrap_or_default()),
            Err(crate::claims::ClaimsError::NotFound) => Err(protocol(
                CredentialErrorCode::CredentialRequestDenied,
                "the issuer has no data for this credential of this person",
            )),
            Err(err) => {
                tracing::warn!(tenant = %tenant.id(), error = %err, "the claims endpoint failed");
                Err(protocol(
                    CredentialErrorCode::CredentialRequestDenied,
                    "the issuer could not obtain the claims of this credential; try again later",
                ))
            }
        }
    }

    /// The response handing out `credentials` of session `session_id`, with a fresh
    /// `notification_id` for them; the credentials' status `records`, the session's move
    /// from one of `from` to `credential_issued` and the notification id are stored in one
    /// unit of work.
    async fn issued(
        &self,
        tenant: &TenantContext,
        session_id: &str,
        from: &[SessionStatus],
        records: &[NewIssuedCredential],
        credentials: Vec<String>,
        now: i64,
    ) -> Result<CredentialResponse, Error> {
        let notification_id = random_token();
        self.store
            .complete_issuance(
                tenant,
                &IssuanceCompletion {
                    session_id,
                    from,
                    issued: records,
                    notification_id: &notification_id,
                    notification_expires_at: now + self.options.notification_ttl_secs,
                    now,
                },
            )
            .await?;
        Ok(CredentialResponse {
            credentials,
            transaction_id: None,
            interval: None,
            notification_id: Some(notification_id),
        })
    }

    /// Processes a notification request (§11) for the holder of `token`: the event is
    /// recorded on the session (which becomes `notified`) and published on the event bus
    /// as [`NOTIFICATION_TOPIC`].
    ///
    /// # Errors
    /// `invalid_notification_request` for a malformed body (a missing, unknown or repeated
    /// parameter, an unknown event, an `event_description` outside printable ASCII without
    /// `"` and `\`); `invalid_notification_id` for an id that is unknown, lapsed or of
    /// another session; [`Error::Store`].
    pub async fn notification(
        &self,
        tenant: &TenantContext,
        token: &ValidatedToken,
        body: &Value,
    ) -> Result<(), Error> {
        let invalid = |description: &str| {
            protocol(CredentialErrorCode::InvalidNotificationRequest, description)
        };
        let Value::Object(members) = body else {
            return Err(invalid("the request body is not a JSON object"));
        };
        if let Some(unknown) = members.keys().find(|name| {
            !matches!(
                name.as_str(),
                "notification_id" | "event" | "event_description"
            )
        }) {
            return Err(invalid(&format!("unsupported parameter {unknown}")));
        }
        let notification_id = match members.get("notification_id") {
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(_) => return Err(invalid("notification_id must be a non-empty string")),
            None => return Err(invalid("notification_id is missing")),
        };
        let event = match members.get("event") {
            Some(Value::String(name)) => NotificationEvent::from_name(name).ok_or_else(|| {
                invalid(
                    "event must be credential_accepted, credential_failure or credential_deleted",
                )
            })?,
            Some(_) => return Err(invalid("event must be a string")),
            None => return Err(invalid("event is missing")),
        };
        let description = match members.get("event_description") {
            None => None,
            Some(Value::String(text))
                if text
                    .chars()
                    .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\') =>
            {
                Some(text.clone())
            }
            Some(_) => {
                return Err(invalid(
                    "event_description must be printable ASCII without double quote or backslash",
                ));
            }
        };
        let unknown_id = || {
            protocol(
                CredentialErrorCode::InvalidNotificationId,
                "the notification_id is unknown or expired",
            )
        };
        let session_id = match self.token_session(tenant, token).await {
            Ok(session) => session.id,
            Err(Error::Protocol(_)) => return Err(unknown_id()),
            Err(err) => return Err(err),
        };
        let session_id = session_id.as_str();
        let notification = Notification {
            event,
            description,
            received_at: self.now(),
        };
        if !self
            .store
            .record_notification(tenant, notification_id, session_id, &notification)
            .await?
        {
            return Err(unknown_id());
        }
        if let Some(events) = &self.events {
            let published = events
                .publish(edk_tenancy::Event::Custom {
                    topic: NOTIFICATION_TOPIC.to_owned(),
                    payload: json!({
                        "tenant": tenant.id(),
                        "session_id": session_id,
                        "event": event.as_str(),
                    }),
                })
                .await;
            if let Err(err) = published {
                tracing::warn!(error = %edk_core::ErrorChain(&err), "publishing a notification event failed");
            }
        }
        Ok(())
    }

    /// The notifications wallets sent about the credentials of session `id`.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn notifications(
        &self,
        tenant: &TenantContext,
        id: &str,
    ) -> Result<Vec<Notification>, Error> {
        Ok(self.store.notifications(tenant, id).await?)
    }

    /// Signs the credentials of `stored` (configuration `configuration_id` of `session`)
    /// with `claims`, one per holder key (one unbound when there are none). Where the
    /// configuration asks for status, each credential gets its own index, and the records
    /// to store for them come back with the credentials.
    #[allow(clippy::too_many_arguments)]
    async fn issue(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        session: &Session,
        configuration_id: &str,
        stored: &StoredConfiguration,
        claims: &Map<String, Value>,
        holders: &[ProvenKey],
        now: i64,
    ) -> Result<(Vec<String>, Vec<NewIssuedCredential>), Error> {
        let signer = self.signer(tenant, stored).await?;
        let chain = self
            .certificate_chain(tenant, stored, signer.as_ref())
            .await?;
        let holders: Vec<Option<&ProvenKey>> = if holders.is_empty() {
            vec![None]
        } else {
            holders.iter().map(Some).collect()
        };
        let mut statuses = match &stored.settings.status {
            Some(settings) => self
                .allocate_status(
                    tenant,
                    endpoints,
                    configuration_id,
                    settings,
                    holders.len(),
                    now,
                )
                .await?
                .into_iter(),
            None => Vec::new().into_iter(),
        };
        let mut credentials = Vec::with_capacity(holders.len());
        let mut records = Vec::new();
        for holder in holders {
            let mut input = CredentialInput::new(
                &stored.configuration,
                &stored.settings,
                &endpoints.credential_issuer,
                claims,
                now,
            );
            if let Some(holder) = holder {
                input = input.bound_to(holder);
            }
            if let Some(chain) = &chain {
                input = input.with_certificate_chain(chain.clone());
            }
            if let Some((index, claim)) = statuses.next() {
                records.push(NewIssuedCredential {
                    credential_id: uuid::Uuid::new_v4().to_string(),
                    session_id: session.id.clone(),
                    correlation_id: session.correlation_id.clone(),
                    configuration_id: configuration_id.to_owned(),
                    list_id: index.list_id,
                    index: index.index,
                    issued_at: now,
                    expires_at: input.expiry(),
                });
                input = input.with_status(claim);
            }
            credentials.push(issue_credential(&input, signer.as_ref()).await?);
        }
        Ok((credentials, records))
    }

    /// Opens a deferred transaction for the proven `holders` and moves the session to
    /// `deferred`.
    async fn defer(
        &self,
        tenant: &TenantContext,
        session: &Session,
        configuration_id: &str,
        holders: &[ProvenKey],
        now: i64,
    ) -> Result<CredentialResponse, Error> {
        let transaction_id = random_token();
        let transaction = NewTransaction {
            session_id: session.id.clone(),
            configuration_id: configuration_id.to_owned(),
            holders: holders
                .iter()
                .map(|holder| HolderKey {
                    jwk: holder.jwk.clone(),
                    did_url: holder.did_url.as_ref().map(ToString::to_string),
                })
                .collect(),
            created_at: now,
            expires_at: now + self.options.deferred_ttl_secs,
        };
        self.store
            .insert_transaction(tenant, &transaction_id, &transaction)
            .await?;
        self.store
            .transition(
                tenant,
                &session.id,
                &[
                    SessionStatus::Offered,
                    SessionStatus::TokenIssued,
                    SessionStatus::CredentialIssued,
                ],
                SessionStatus::Deferred,
                now,
            )
            .await?;
        Ok(CredentialResponse::pending(
            transaction_id,
            self.options.deferred_interval_secs.max(1),
        ))
    }

    /// The session behind an access token: minted for an issuance session (pre-authorized
    /// code), or granted to the end user who logged in for it (authorization code), whose
    /// `sub` must then be the session's.
    async fn token_session(
        &self,
        tenant: &TenantContext,
        token: &ValidatedToken,
    ) -> Result<Session, Error> {
        let denied = |description: &'static str| {
            protocol(CredentialErrorCode::CredentialRequestDenied, description)
        };
        let (session_id, login) = match token.subject.strip_prefix(SESSION_SUBJECT_PREFIX) {
            Some(session_id) => (session_id.to_owned(), false),
            None => {
                let granted = GrantedCredentials::of(token);
                let mut sessions = granted
                    .by_identifier
                    .keys()
                    .filter_map(|identifier| identifier.split_once(':'))
                    .map(|(session, _)| session);
                let first = sessions
                    .next()
                    .ok_or_else(|| denied("no issuance session backs this access token"))?;
                if sessions.any(|other| other != first) {
                    return Err(denied(
                        "the access token names credentials of more than one issuance session",
                    ));
                }
                (first.to_owned(), true)
            }
        };
        let session = self
            .store
            .session(tenant, &session_id)
            .await?
            .ok_or_else(|| denied("the issuance session no longer exists"))?;
        if login && session.subject.as_deref() != Some(token.subject.as_str()) {
            return Err(denied(
                "the access token's end user did not log in for this issuance session",
            ));
        }
        Ok(session)
    }

    /// Processes a deferred credential request (§9) for the holder of `token`: the
    /// credentials of a settled transaction, handed out exactly once, or the same
    /// `transaction_id` with the `interval` to wait while the operator has not settled it.
    ///
    /// # Errors
    /// `invalid_transaction_id` for an unknown, lapsed, used or another session's
    /// transaction; `credential_request_denied` when the operator failed it or the session
    /// ended; `invalid_credential_request` for a malformed body; [`Error::Store`].
    pub async fn deferred_credential(
        &self,
        tenant: &TenantContext,
        token: &ValidatedToken,
        body: &Value,
    ) -> Result<CredentialResponse, Error> {
        Ok(self
            .deferred_credential_message(tenant, token, RequestBody::Json(body))
            .await?
            .response)
    }

    /// The deferred credential request's processing once it is plain JSON and its
    /// encryption parameters are checked.
    async fn process_deferred(
        &self,
        tenant: &TenantContext,
        token: &ValidatedToken,
        body: &Value,
    ) -> Result<CredentialResponse, Error> {
        let Value::Object(members) = body else {
            return Err(protocol(
                CredentialErrorCode::InvalidCredentialRequest,
                "the request body is not a JSON object",
            ));
        };
        let transaction_id = match members.get("transaction_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => {
                return Err(protocol(
                    CredentialErrorCode::InvalidCredentialRequest,
                    "transaction_id must be a non-empty string",
                ));
            }
            None => {
                return Err(protocol(
                    CredentialErrorCode::InvalidCredentialRequest,
                    "transaction_id is missing",
                ));
            }
        };
        let session = self.token_session(tenant, token).await?;
        let now = self.now();
        let state = self
            .store
            .take_transaction(tenant, &transaction_id, &session.id, now)
            .await?
            .ok_or_else(|| {
                protocol(
                    CredentialErrorCode::InvalidTransactionId,
                    "the transaction_id is unknown, expired or was already used",
                )
            })?;
        if matches!(
            session.status,
            SessionStatus::Cancelled | SessionStatus::Expired
        ) {
            return Err(protocol(
                CredentialErrorCode::CredentialRequestDenied,
                format!("the issuance session is {}", session.status),
            ));
        }
        match state {
            TransactionState::Pending => Ok(CredentialResponse::pending(
                transaction_id,
                self.options.deferred_interval_secs.max(1),
            )),
            TransactionState::Settled(TransactionOutcome::Failed { description }) => Err(protocol(
                CredentialErrorCode::CredentialRequestDenied,
                description,
            )),
            TransactionState::Settled(TransactionOutcome::Issued { credentials }) => {
                self.issued(
                    tenant,
                    &session.id,
                    &[SessionStatus::Deferred],
                    &[],
                    credentials,
                    now,
                )
                .await
            }
        }
    }

    /// Completes the deferred session `session_id`: the credentials of each of its pending
    /// transactions are issued with `claims` (by configuration id; a configuration without
    /// an entry gets the claims of the offer) for the wallet to fetch. Returns how many
    /// transactions were settled.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown session; [`Error::State`] when it is not
    /// `deferred`; [`Error::Config`] for claims of configurations the session did not
    /// offer or that are not objects; [`Error::Store`], [`Error::Kms`], [`Error::Issue`].
    pub async fn complete_deferred(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        session_id: &str,
        claims: &Map<String, Value>,
    ) -> Result<usize, Error> {
        let session = self.session(tenant, session_id).await?;
        if session.status != SessionStatus::Deferred {
            return Err(Error::State("the issuance session is not deferred"));
        }
        for (id, value) in claims {
            if !session.configuration_ids.contains(id) {
                return Err(ConfigError::invalid(
                    "claims",
                    format!("`{id}` is not a configuration of the session"),
                )
                .into());
            }
            if !value.is_object() {
                return Err(
                    ConfigError::invalid(format!("claims.{id}"), "must be an object").into(),
                );
            }
        }
        let now = self.now();
        let mut settled = 0;
        for pending in self.store.pending_transactions(tenant, session_id).await? {
            let stored = self
                .store
                .configuration(tenant, &pending.configuration_id)
                .await?
                .ok_or(Error::State(
                    "a deferred credential's configuration was deleted",
                ))?;
            let claims = match claims
                .get(&pending.configuration_id)
                .or_else(|| session.claims.get(&pending.configuration_id))
            {
                Some(Value::Object(claims)) => claims.clone(),
                _ => Map::new(),
            };
            let holders = pending
                .holders
                .iter()
                .map(|holder| {
                    ProvenKey::known(
                        holder.jwk.clone(),
                        holder
                            .did_url
                            .as_deref()
                            .and_then(|url| edk_core::DidUrl::parse(url).ok()),
                    )
                })
                .collect::<Vec<_>>();
            let (credentials, records) = self
                .issue(
                    tenant,
                    endpoints,
                    &session,
                    &pending.configuration_id,
                    &stored,
                    &claims,
                    &holders,
                    now,
                )
                .await?;
            self.store.record_issued(tenant, &records).await?;
            if self
                .store
                .settle_transaction(
                    tenant,
                    &pending.key,
                    &TransactionOutcome::Issued { credentials },
                    now,
                )
                .await?
            {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// Fails the deferred session `session_id`: each pending transaction answers
    /// `credential_request_denied` with `description`, and the session is `failed`.
    /// Returns how many transactions were settled.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown session; [`Error::State`] when it is not
    /// `deferred`; [`Error::Store`].
    pub async fn fail_deferred(
        &self,
        tenant: &TenantContext,
        session_id: &str,
        description: &str,
    ) -> Result<usize, Error> {
        let session = self.session(tenant, session_id).await?;
        if session.status != SessionStatus::Deferred {
            return Err(Error::State("the issuance session is not deferred"));
        }
        let now = self.now();
        let description =
            ProtocolError::new(CredentialErrorCode::CredentialRequestDenied, description)
                .description;
        let mut settled = 0;
        for pending in self.store.pending_transactions(tenant, session_id).await? {
            if self
                .store
                .settle_transaction(
                    tenant,
                    &pending.key,
                    &TransactionOutcome::Failed {
                        description: description.clone(),
                    },
                    now,
                )
                .await?
            {
                settled += 1;
            }
        }
        self.store
            .transition(
                tenant,
                session_id,
                &[SessionStatus::Deferred],
                SessionStatus::Failed,
                now,
            )
            .await?;
        Ok(settled)
    }

    /// The configuration a request asks for, checked against what the token grants.
    async fn requested_configuration(
        &self,
        tenant: &TenantContext,
        granted: &GrantedCredentials,
        token: &ValidatedToken,
        request: &CredentialRequest,
    ) -> Result<String, Error> {
        match &request.credential {
            RequestedCredential::Identifier(identifier) => granted
                .by_identifier
                .get(identifier)
                .cloned()
                .ok_or_else(|| {
                    protocol(
                        CredentialErrorCode::UnknownCredentialIdentifier,
                        "the access token does not grant this credential_identifier",
                    )
                }),
            RequestedCredential::Configuration(id) => {
                if !granted.by_identifier.is_empty() {
                    // Wallets built on earlier drafts name the configuration even when the
                    // token response listed identifiers; with one identifier granted for it,
                    // the dataset is unambiguous.
                    let of_configuration = granted
                        .by_identifier
                        .values()
                        .filter(|granted| *granted == id)
                        .count();
                    if self.options.accept_legacy && of_configuration == 1 {
                        return Ok(id.clone());
                    }
                    return Err(protocol(
                        CredentialErrorCode::InvalidCredentialRequest,
                        "the token response named credential_identifiers; send credential_identifier",
                    ));
                }
                self.granted_by_scope(tenant, token, id).await
            }
            RequestedCredential::Legacy {
                format,
                vct,
                types,
                doctype,
            } => {
                let candidates: Vec<String> = if granted.configurations.is_empty() {
                    self.store
                        .configurations(tenant)
                        .await?
                        .into_iter()
                        .filter(|(_, stored)| {
                            stored
                                .configuration
                                .scope
                                .as_ref()
                                .is_some_and(|scope| token.scopes.contains(scope))
                        })
                        .map(|(id, _)| id)
                        .collect()
                } else {
                    granted.configurations.iter().cloned().collect()
                };
                for id in candidates {
                    let Some(stored) = self.store.configuration(tenant, &id).await? else {
                        continue;
                    };
                    let profile = &stored.configuration.profile;
                    let matches = match profile {
                        FormatProfile::DcSdJwt { vct: own }
                        | FormatProfile::VcSdJwt { vct: own } => {
                            (format == crate::config::FORMAT_DC_SD_JWT
                                || format == crate::config::FORMAT_VC_SD_JWT)
                                && vct.as_deref() == Some(own.as_str())
                        }
                        FormatProfile::JwtVcJson {
                            credential_definition,
                        } => {
                            format == crate::config::FORMAT_JWT_VC_JSON
                                && types.as_ref() == Some(&credential_definition.types)
                        }
                        FormatProfile::MsoMdoc { doctype: own } => {
                            format == crate::config::FORMAT_MSO_MDOC
                                && doctype.as_deref() == Some(own.as_str())
                        }
                    };
                    if matches {
                        return Ok(id);
                    }
                }
                Err(protocol(
                    CredentialErrorCode::UnknownCredentialConfiguration,
                    "the access token grants no credential of this format and type",
                ))
            }
        }
    }

    async fn granted_by_scope(
        &self,
        tenant: &TenantContext,
        token: &ValidatedToken,
        id: &str,
    ) -> Result<String, Error> {
        let unknown = || {
            protocol(
                CredentialErrorCode::UnknownCredentialConfiguration,
                "the access token does not grant this credential_configuration_id",
            )
        };
        let stored = self
            .store
            .configuration(tenant, id)
            .await?
            .ok_or_else(unknown)?;
        match &stored.configuration.scope {
            Some(scope) if token.scopes.contains(scope) => Ok(id.to_owned()),
            _ => Err(unknown()),
        }
    }

    /// Verifies the proofs of a request and redeems their nonce; the keys to bind.
    async fn proven_keys(
        &self,
        tenant: &TenantContext,
        endpoints: &IssuerEndpoints,
        token: &ValidatedToken,
        stored: &StoredConfiguration,
        proofs: Option<&Proofs>,
        now: i64,
    ) -> Result<Vec<ProvenKey>, Error> {
        let configuration = &stored.configuration;
        if !configuration.requires_key_binding() {
            return Ok(Vec::new());
        }
        let Some(proofs) = proofs else {
            return Err(protocol(
                CredentialErrorCode::InvalidProof,
                "this credential is bound to a key: send proofs",
            ));
        };
        if !configuration
            .proof_types_supported
            .contains_key(proofs.proof_type())
        {
            return Err(protocol(
                CredentialErrorCode::InvalidProof,
                format!(
                    "proof type {} is not accepted for this credential",
                    proofs.proof_type()
                ),
            ));
        }
        let requirements = configuration
            .proof_types_supported
            .get(proofs.proof_type())
            .and_then(|proof| proof.key_attestations_required.clone());
        let jwts = match proofs {
            Proofs::Jwt(jwts) => jwts,
            Proofs::Attestation(attestation) => {
                return self
                    .attested_keys(tenant, configuration, attestation, requirements, now)
                    .await;
            }
        };
        let algorithms: Vec<Algorithm> = configuration.jwt_proof_algorithms().unwrap_or_default();
        let client_id = token
            .client_id
            .clone()
            .filter(|id| id != edk_oauth::token::ANONYMOUS_CLIENT_ID);
        let mut policy = ProofPolicy::new(
            endpoints.credential_issuer.clone(),
            algorithms,
            configuration
                .cryptographic_binding_methods_supported
                .clone(),
        )
        .with_client(client_id);
        policy.max_age_secs = self.options.proof_max_age_secs;
        let mut keys = Vec::with_capacity(jwts.len());
        let mut thumbprints = BTreeSet::new();
        let mut nonces = BTreeSet::new();
        for jwt in jwts {
            let proven = verify_jwt_proof(jwt, &policy, self.proof_keys.as_ref(), now).await?;
            if !thumbprints.insert(proven.jwk.thumbprint()) {
                return Err(protocol(
                    CredentialErrorCode::InvalidProof,
                    "two proofs are for the same key",
                ));
            }
            if let Some(nonce) = &proven.nonce {
                nonces.insert(nonce.clone());
            }
            keys.push(proven);
        }
        if let Some(requirements) = &requirements {
            let trusted = self.wallet_providers(tenant)?;
            for proven in &keys {
                let attestation = proven.key_attestation.as_deref().ok_or_else(|| {
                    protocol(
                        CredentialErrorCode::InvalidProof,
                        "this credential requires a key attestation in each proof's key_attestation header",
                    )
                })?;
                let attestation = crate::proof::verify_key_attestation(
                    attestation,
                    requirements,
                    trusted.as_ref(),
                    now,
                    true,
                    &edk_core::Limits::DEFAULT,
                )
                .await?;
                if !attestation.attests(&proven.jwk) {
                    return Err(protocol(
                        CredentialErrorCode::InvalidProof,
                        "the proof's key is not one of its key attestation's attested_keys",
                    ));
                }
                if let Some(nonce) = &attestation.nonce {
                    nonces.insert(nonce.clone());
                }
            }
        }
        if nonces.len() > 1 {
            return Err(protocol(
                CredentialErrorCode::InvalidProof,
                "the proofs of one request must carry the same nonce",
            ));
        }
        if let Some(nonce) = nonces.first()
            && !self.store.redeem_nonce(tenant, nonce, now).await?
        {
            return Err(protocol(
                CredentialErrorCode::InvalidNonce,
                "the proof's nonce is unknown, used or expired; fetch a new c_nonce",
            ));
        }
        Ok(keys)
    }

    /// The keys of an `attestation` proof (Appendix F.3): a key attestation from a trusted
    /// wallet provider, meeting the configuration's requirements, carrying a live
    /// `c_nonce`; every attested key gets a credential.
    async fn attested_keys(
        &self,
        tenant: &TenantContext,
        configuration: &crate::config::CredentialConfiguration,
        attestation: &str,
        requirements: Option<crate::config::KeyAttestationRequirements>,
        now: i64,
    ) -> Result<Vec<ProvenKey>, Error> {
        let invalid = |description: &str| protocol(CredentialErrorCode::InvalidProof, description);
        let requirements = requirements.unwrap_or_default();
        if !configuration
            .cryptographic_binding_methods_supported
            .iter()
            .any(|method| method == "jwk" || method == "cose_key")
        {
            return Err(invalid(
                "attested keys are JWKs, and this credential is not bound to a jwk",
            ));
        }
        let trusted = self.wallet_providers(tenant)?;
        let attestation = crate::proof::verify_key_attestation(
            attestation,
            &requirements,
            trusted.as_ref(),
            now,
            false,
            &edk_core::Limits::DEFAULT,
        )
        .await?;
        if attestation.attested_keys.len()
            > usize::try_from(self.options.batch_size.max(1)).unwrap_or(1)
        {
            return Err(invalid(
                "the key attestation attests more keys than the batch size allows",
            ));
        }
        let nonce = attestation.nonce.clone().ok_or_else(|| {
            protocol(
                CredentialErrorCode::InvalidNonce,
                "the key attestation carries no nonce; fetch a c_nonce from the nonce endpoint",
            )
        })?;
        if !self.store.redeem_nonce(tenant, &nonce, now).await? {
            return Err(protocol(
                CredentialErrorCode::InvalidNonce,
                "the key attestation's nonce is unknown, used or expired; fetch a new c_nonce",
            ));
        }
        Ok(attestation
            .attested_keys
            .into_iter()
            .map(|jwk| ProvenKey::known(jwk, None))
            .collect())
    }

    /// The wallet providers whose key attestations the tenant trusts: the client attesters
    /// of its `oauth.client_attestation` configuration.
    fn wallet_providers(&self, tenant: &TenantContext) -> Result<Arc<dyn KeyResolver>, Error> {
        let config = tenant
            .config()
            .get(&edk_oauth::client_attestation::CLIENT_ATTESTATION)
            .ok_or_else(|| {
                protocol(
                    CredentialErrorCode::InvalidProof,
                    "this issuer trusts no wallet provider for key attestations",
                )
            })?;
        config
            .attester_keys(Arc::clone(&self.clock))
            .map_err(Error::OAuth)
    }

    /// The certificate chain of the signing key, when the configuration needs one (an
    /// mdoc's document signer, an `x5c` header): the certificate stored in the KMS under the
    /// signing alias, which must certify the key version that signs now.
    async fn certificate_chain(
        &self,
        tenant: &TenantContext,
        stored: &StoredConfiguration,
        signer: &dyn Signer,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        let needed = matches!(stored.configuration.profile, FormatProfile::MsoMdoc { .. })
            || matches!(
                stored.settings.key_identification,
                crate::config::KeyIdentification::X5c
            );
        if !needed {
            return Ok(None);
        }
        let alias = Self::signing_alias(stored)?;
        let missing = || {
            Error::Issue(IssueError::NoCertificate {
                alias: alias.to_string(),
            })
        };
        let Some(certificates) = &self.certificates else {
            return Err(missing());
        };
        let stored = match certificates
            .certificate(&Self::caller(tenant), &alias)
            .await
        {
            Ok(stored) => stored,
            Err(edk_kms::cert::Error::CertificateNotFound { .. }) => return Err(missing()),
            Err(edk_kms::cert::Error::Kms(err)) => return Err(Error::Kms(err)),
            Err(err) => {
                tracing::warn!(error = %edk_core::ErrorChain(&err), alias = %alias, "reading a signing certificate failed");
                return Err(missing());
            }
        };
        if stored.kid.is_some() && stored.kid.as_ref() != signer.kid() {
            // The key rotated since the certificate was issued.
            return Err(missing());
        }
        Ok(Some(stored.certificate.chain))
    }

    /// The KMS alias that signs a configuration's credentials.
    fn signing_alias(stored: &StoredConfiguration) -> Result<KeyAlias, Error> {
        let purpose = stored
            .settings
            .signing_key
            .as_deref()
            .unwrap_or(DEFAULT_SIGNING_PURPOSE);
        KeyAlias::new(KMS_SERVICE, purpose).map_err(|_| {
            Error::Config(ConfigError::invalid(
                "signing_key",
                "is not a key alias purpose",
            ))
        })
    }

    /// The signer of a configuration, creating the tenant's default key on first use.
    async fn signer(
        &self,
        tenant: &TenantContext,
        stored: &StoredConfiguration,
    ) -> Result<Arc<dyn Signer>, Error> {
        let alias = Self::signing_alias(stored)?;
        let caller = Self::caller(tenant);
        self.ensure_key(&caller, &alias, KeySpec::signing(Algorithm::Es256))
            .await?;
        self.kms.signer(&caller, &alias).await.map_err(Error::Kms)
    }

    /// Creates key `alias` with `spec` if the tenant does not have it yet.
    async fn ensure_key(
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

/// The subject of access tokens minted for an issuance session.
pub(crate) const SESSION_SUBJECT_PREFIX: &str = "urn:edk:oid4vci:session:";

fn session_subject(session_id: &str) -> String {
    format!("{SESSION_SUBJECT_PREFIX}{session_id}")
}

/// The dataset id of configuration `configuration_id` in a session.
pub(crate) fn credential_identifier(session_id: &str, configuration_id: &str) -> String {
    format!("{session_id}:{configuration_id}")
}

/// What an access token's `authorization_details` grant.
#[derive(Debug, Default)]
struct GrantedCredentials {
    /// Configuration by credential identifier.
    by_identifier: BTreeMap<String, String>,
    /// Every configuration named.
    configurations: BTreeSet<String>,
}

impl GrantedCredentials {
    fn of(token: &ValidatedToken) -> Self {
        let mut granted = Self::default();
        let Some(Value::Array(details)) = token.claims.get("authorization_details") else {
            return granted;
        };
        for detail in details {
            if detail.get("type").and_then(Value::as_str) != Some(OPENID_CREDENTIAL) {
                continue;
            }
            let Some(configuration) = detail
                .get("credential_configuration_id")
                .and_then(Value::as_str)
            else {
                continue;
            };
            granted.configurations.insert(configuration.to_owned());
            if let Some(Value::Array(identifiers)) = detail.get("credential_identifiers") {
                for identifier in identifiers.iter().filter_map(Value::as_str) {
                    granted
                        .by_identifier
                        .insert(identifier.to_owned(), configuration.to_owned());
                }
            }
        }
        granted
    }
}
