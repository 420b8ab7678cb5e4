//! A [`KeyProvider`] on the credentials of a remote signing service speaking the Cloud
//! Signature Consortium API v2 (feature `csc`), e.g. a qualified trust service provider's
//! remote QSCD, with `reqwest`.
//!
//! - **No key creation.** The service's credentials (a key and its certificate) are issued by
//!   the trust service provider, not by us: `generate` is refused with
//!   [`Error::UnsupportedOperation`] and the capabilities say so
//!   ([`Capabilities::key_creation`]). An existing credential id is registered for a tenant
//!   with [`KeyProvider::register`] (and [`LocalKms::register_provider_key`] for an alias).
//! - **Tenant binding.** The configuration names the CSC `userID` of each tenant
//!   ([`CscProviderConfig::users`]); a credential is a tenant's when `credentials/list` for that
//!   user lists it. A tenant without a user, or a credential id its user does not hold, is
//!   [`Error::KeyNotFound`].
//! - **Metadata.** `credentials/info` (`certificates: chain`, `certInfo`, `authInfo`) is read
//!   when a credential is registered or first used in the process: the key must be `enabled`,
//!   the certificate `valid`, the authorization mode `implicit` (the service authorizes a
//!   client-credentials caller itself; PINs and OTPs are for people). The public key comes
//!   from the end-entity certificate, and the key, its signing algorithms and the chain
//!   ([`CscProvider::certificates`]) are cached: signing makes no metadata call.
//! - **Signing** is `credentials/authorize` (`numSignatures: 1`, the hash, its algorithm OID)
//!   for a SAD, then `signatures/signHash` with the SAD, the hash and the signature algorithm
//!   OID: `ecdsa-with-SHA256` (ES256), `ecdsa-with-SHA384` (ES384) or
//!   `sha256WithRSAEncryption` (RS256). An ECDSA signature comes back DER-encoded (or as
//!   `r||s`) and is turned into JOSE `r||s`; every signature is verified here with the cached
//!   public key before it is returned.
//! - **Destroying** forgets the credential in this process only: it stays in the service,
//!   whose operator manages its lifecycle.
//! - **Credentials**: OAuth 2 client credentials (`grant_type=client_credentials`, `client_id`,
//!   `client_secret`, scope `service`) at the service's token endpoint; the bearer token is
//!   cached until shortly before it expires and fetched again when the service answers 401.
//! - **Failures** go through the shared remote behaviour ([`remote`]): 429 (with
//!   `Retry-After`) is retried, 5xx and connection failures too, then `Unavailable`; a circuit
//!   breaker per provider. A 400 about the `credentialID` is `KeyNotFound`; the service's
//!   `{"error", "error_description"}` goes to the log, never to callers.
//!
//! [`LocalKms::register_provider_key`]: crate::LocalKms::register_provider_key

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::{Decode as _, Encode as _};
use edk_core::jose::jwk::{EcCurve, PublicParams};
use edk_core::jose::{Algorithm, Jwk, SignError, Signer, VerifyingKey};
use edk_core::{HasKind as _, Kid, TenantId};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::remote::{
    self, BearerCache, Failure, Guard, Idempotency, RemoteMetrics, RemoteOptions, TokenAnswer,
};
use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};

/// The OID of SHA-256.
pub const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
/// The OID of SHA-384.
pub const SHA384_OID: &str = "2.16.840.1.101.3.4.2.2";
/// The OID of `ecdsa-with-SHA256`.
pub const ECDSA_SHA256_OID: &str = "1.2.840.10045.4.3.2";
/// The OID of `ecdsa-with-SHA384`.
pub const ECDSA_SHA384_OID: &str = "1.2.840.10045.4.3.3";
/// The OID of `sha256WithRSAEncryption`.
pub const RSA_SHA256_OID: &str = "1.2.840.113549.1.1.11";
/// The OID of `rsaEncryption` (a key algorithm some services list instead of the signature
/// algorithms).
pub const RSA_OID: &str = "1.2.840.113549.1.1.1";
/// The OID of `id-ecPublicKey` (likewise).
pub const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";

const SUPPORTED: [Algorithm; 3] = [Algorithm::Es256, Algorithm::Es384, Algorithm::Rs256];

/// Configuration of a [`CscProvider`].
///
/// ```yaml
/// kind: csc
/// id: csc-qualified
/// service_url: https://rss.example.eu/csc/v2
/// client_id: edk-kms
/// client_secret_file: /run/secrets/csc-client-secret
/// users: { 0190c6e4-5f1e-7a41-9d2b-2f6c1a9e8b11: "acme-seal" }
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CscProviderConfig {
    /// This provider's id.
    pub id: ProviderId,
    /// The CSC API base URL, ending in `/csc/v2`.
    pub service_url: String,
    /// The OAuth 2 token endpoint; default the service's origin with `/oauth2/token` (the
    /// `oauth2` base URI of the service's `info` with `oauth2/token`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// The OAuth 2 client id.
    pub client_id: String,
    /// The client secret (or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The CSC `userID` whose credentials each tenant may use.
    #[serde(default)]
    pub users: BTreeMap<TenantId, String>,
    /// The JWS algorithms to offer; default ES256, ES384 and RS256.
    #[serde(default)]
    pub algorithms: Option<Vec<Algorithm>>,
    /// Timeouts, retries and the circuit breaker.
    #[serde(default)]
    pub remote: RemoteOptions,
}

impl fmt::Debug for CscProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CscProviderConfig")
            .field("id", &self.id)
            .field("service_url", &self.service_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret_file", &self.client_secret_file)
            .field("users", &self.users)
            .field("algorithms", &self.algorithms)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl CscProviderConfig {
    /// A configuration for `service_url` with a client secret, no tenant users yet and
    /// defaults elsewhere.
    #[must_use]
    pub fn new(
        id: ProviderId,
        service_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            id,
            service_url: service_url.into(),
            token_url: None,
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            client_secret_file: None,
            users: BTreeMap::new(),
            algorithms: None,
            remote: RemoteOptions::default(),
        }
    }

    /// Lets `tenant` use the credentials of the CSC user `user_id`.
    #[must_use]
    pub fn with_user(mut self, tenant: TenantId, user_id: impl Into<String>) -> Self {
        self.users.insert(tenant, user_id.into());
        self
    }
}

/// A registered credential's cached metadata.
struct Credential {
    kid: Kid,
    jwk: Jwk,
    verifying: VerifyingKey,
    algorithms: BTreeSet<Algorithm>,
    certificates: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(rename = "credentialIDs")]
    credential_ids: Vec<String>,
}

#[derive(Deserialize)]
struct InfoAnswer {
    key: InfoKey,
    #[serde(default)]
    cert: Option<InfoCert>,
    #[serde(default)]
    auth: Option<InfoAuth>,
}

#[derive(Deserialize)]
struct InfoKey {
    status: String,
    algo: Vec<String>,
}

#[derive(Deserialize)]
struct InfoCert {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
}

#[derive(Deserialize)]
struct InfoAuth {
    mode: String,
}

#[derive(Deserialize)]
struct AuthorizeAnswer {
    #[serde(rename = "SAD")]
    sad: SecretString,
}

#[derive(Deserialize)]
struct SignHashAnswer {
    signatures: Vec<String>,
}

/// A [`KeyProvider`] on a CSC API v2 remote signing service; see the [module docs](self).
pub struct CscProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

struct Inner {
    id: ProviderId,
    service: String,
    token_url: String,
    client_id: String,
    secret: SecretString,
    users: HashMap<TenantId, String>,
    offered: BTreeSet<Algorithm>,
    client: reqwest::Client,
    bearer: BearerCache,
    guard: Guard,
    credentials: RwLock<HashMap<(TenantId, String), Arc<Credential>>>,
}

fn http_url(value: &str) -> bool {
    value.starts_with("https://") || value.starts_with("http://")
}

impl CscProvider {
    /// Builds the provider with a reqwest client of its own, with the configured timeouts.
    ///
    /// # Errors
    /// As [`with_client`](Self::with_client).
    pub fn new(config: CscProviderConfig) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.remote.connect_timeout())
            .timeout(config.remote.timeout())
            .build()
            .map_err(|err| Error::internal(&config.id, err))?;
        Self::with_client(config, client)
    }

    /// Builds the provider with `client` (the application's HTTP client). Nothing is called
    /// yet: the first request fetches a token.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a service or token URL that is not an http(s) URL, an
    /// empty client id or user id, an algorithm this provider does not offer, or a secret
    /// given both or neither inline and in a file; [`Error::SecretFile`] for an unreadable
    /// secret file.
    pub fn with_client(config: CscProviderConfig, client: reqwest::Client) -> Result<Self, Error> {
        config.remote.validate()?;
        if !http_url(&config.service_url) {
            return Err(Error::InvalidConfig {
                field: "service_url",
                reason: "must be an http(s) URL",
            });
        }
        let service = config.service_url.trim_end_matches('/').to_owned();
        let token_url = match config.token_url {
            Some(url) if http_url(&url) => url,
            Some(_) => {
                return Err(Error::InvalidConfig {
                    field: "token_url",
                    reason: "must be an http(s) URL",
                });
            }
            None => {
                let origin = service.strip_suffix("/csc/v2").unwrap_or(&service);
                format!("{origin}/oauth2/token")
            }
        };
        if config.client_id.is_empty() {
            return Err(Error::InvalidConfig {
                field: "client_id",
                reason: "must not be empty",
            });
        }
        if config.users.values().any(String::is_empty) {
            return Err(Error::InvalidConfig {
                field: "users",
                reason: "must name a non-empty user id for each tenant",
            });
        }
        let offered: BTreeSet<Algorithm> = match &config.algorithms {
            Some(list) => list.iter().copied().collect(),
            None => SUPPORTED.into_iter().collect(),
        };
        if offered.is_empty() || offered.iter().any(|alg| !SUPPORTED.contains(alg)) {
            return Err(Error::InvalidConfig {
                field: "algorithms",
                reason: "must list some of ES256, ES384 and RS256",
            });
        }
        let secret = remote::secret(
            config.client_secret,
            config.client_secret_file,
            "client_secret",
        )?;
        let capabilities = Capabilities::new()
            .with_signing(offered.iter().copied())
            .with_exportability(Exportability::Never)
            .with_hardware_backing(true)
            .with_storage(KeyStorage::InProvider)
            .with_key_creation(false);
        Ok(Self {
            inner: Arc::new(Inner {
                guard: Guard::new(config.id.clone(), config.remote),
                id: config.id,
                service,
                token_url,
                client_id: config.client_id,
                secret,
                users: config.users.into_iter().collect(),
                offered,
                client,
                bearer: BearerCache::default(),
                credentials: RwLock::new(HashMap::new()),
            }),
            capabilities,
        })
    }

    /// The provider's call metrics.
    #[must_use]
    pub fn metrics(&self) -> RemoteMetrics {
        self.inner.guard.metrics()
    }

    /// The DER certificates of a registered credential, end entity first, as the service
    /// answered `credentials/info` (from the cache once read).
    ///
    /// # Errors
    /// As [`KeyProvider::signer`].
    pub async fn certificates(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self
            .inner
            .credential(tenant, key)
            .await?
            .certificates
            .clone())
    }
}

impl Inner {
    async fn fetch_token(&self) -> Result<TokenAnswer, Error> {
        remote::fetch_token(
            &self.id,
            &self.guard,
            || {
                self.client.post(&self.token_url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", self.secret.expose_secret()),
                    ("scope", "service"),
                ])
            },
            |response| self.decode(response),
        )
        .await
    }

    /// `POST {service}/{method}` with `body`, authorized, under the guard.
    async fn call<T: DeserializeOwned>(&self, method: &str, body: &Value) -> Result<T, Error> {
        let url = format!("{}/{method}", self.service);
        remote::bearer_call(
            &self.bearer,
            &self.guard,
            Idempotency::Idempotent,
            || self.fetch_token(),
            |token| self.client.post(&url).bearer_auth(token).json(body),
            |response| self.decode(response),
        )
        .await
    }

    /// Reads an answer of the service (or of its token endpoint): errors are
    /// `{"error", "error_description"}`.
    async fn decode<T: DeserializeOwned>(&self, response: reqwest::Response) -> Result<T, Failure> {
        remote::decode_json(&self.id, "the CSC service", response, |answer| {
            let field = |name: &str| {
                answer
                    .body
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (error, description) = (field("error"), field("error_description"));
            let detail = format!(
                "the CSC service answered {} ({error}: {description})",
                answer.status
            );
            match answer.status {
                400 if description.contains("credentialID") => {
                    tracing::debug!(provider = %self.id, %detail, "CSC credential refused");
                    Failure::Final(Error::not_found(&self.id))
                }
                401 => {
                    self.bearer.refuse();
                    answer.failure(&self.id, detail)
                }
                _ => answer.failure(&self.id, detail),
            }
        })
        .await
    }

    /// Reads a credential from the service, checks that `tenant`'s user holds it and that it
    /// can sign here, and caches it.
    async fn load(&self, tenant: &TenantId, credential_id: &str) -> Result<Arc<Credential>, Error> {
        let user = self
            .users
            .get(tenant)
            .ok_or_else(|| Error::not_found(&self.id))?;
        if credential_id.is_empty() {
            return Err(Error::not_found(&self.id));
        }
        let list: ListAnswer = self
            .call("credentials/list", &json!({ "userID": user }))
            .await?;
        if !list.credential_ids.iter().any(|id| id == credential_id) {
            return Err(Error::not_found(&self.id));
        }
        let info: InfoAnswer = self
            .call(
                "credentials/info",
                &json!({
                    "credentialID": credential_id,
                    "certificates": "chain",
                    "certInfo": true,
                    "authInfo": true,
                }),
            )
            .await?;
        let credential = Arc::new(self.credential_from(&info)?);
        self.credentials
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((*tenant, credential_id.to_owned()), Arc::clone(&credential));
        Ok(credential)
    }

    fn credential_from(&self, info: &InfoAnswer) -> Result<Credential, Error> {
        if info.key.status != "enabled" {
            return Err(Error::InvalidKey {
                reason: "the CSC credential's key is disabled",
            });
        }
        let Some(cert) = &info.cert else {
            return Err(Error::InvalidKey {
                reason: "the CSC service returned no certificate for the credential",
            });
        };
        if cert
            .status
            .as_deref()
            .is_some_and(|status| status != "valid")
        {
            return Err(Error::InvalidKey {
                reason: "the CSC credential's certificate is not valid",
            });
        }
        let mode = info
            .auth
            .as_ref()
            .map_or("implicit", |auth| auth.mode.as_str());
        if mode != "implicit" {
            return Err(Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "credentials whose authorization is not implicit",
            });
        }
        let certificates = cert
            .certificates
            .iter()
            .map(|text| STANDARD.decode(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::InvalidKey {
                reason: "the CSC service returned a malformed certificate",
            })?;
        let end_entity = certificates.first().ok_or(Error::InvalidKey {
            reason: "the CSC service returned no certificate for the credential",
        })?;
        let jwk = public_key_of(end_entity)?;
        let algorithms = algorithms_for(&jwk, &info.key.algo)
            .intersection(&self.offered)
            .copied()
            .collect();
        Ok(Credential {
            kid: Kid::new(jwk.thumbprint())?,
            verifying: VerifyingKey::from_jwk(&jwk)
                .map_err(|err| Error::internal(&self.id, err))?,
            jwk,
            algorithms,
            certificates,
        })
    }

    /// The cached credential of a handle (loading it once per process), if it is `tenant`'s
    /// and its public key is the handle's.
    async fn credential(
        &self,
        tenant: &TenantId,
        key: &KeyHandle,
    ) -> Result<Arc<Credential>, Error> {
        key.check(&self.id, tenant)?;
        let cached = self
            .credentials
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(*tenant, key.reference().to_owned()))
            .cloned();
        let credential = match cached {
            Some(credential) => credential,
            None => self.load(tenant, key.reference()).await?,
        };
        if credential.kid == *key.kid() {
            Ok(credential)
        } else {
            Err(Error::not_found(&self.id))
        }
    }

    fn forget(&self, tenant: &TenantId, credential_id: &str) {
        self.credentials
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(*tenant, credential_id.to_owned()));
    }
}

/// The public JWK of a DER certificate's subject key.
fn public_key_of(certificate: &[u8]) -> Result<Jwk, Error> {
    const BAD: Error = Error::InvalidKey {
        reason: "the CSC service returned a malformed certificate",
    };
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|_| BAD)?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| BAD)?;
    remote::jwk_from_spki(&spki)
}

/// The JWS algorithms a key of `jwk`'s type can sign with, given the OIDs the service lists
/// for it (signature algorithms, or the key algorithm meaning any that fits).
fn algorithms_for(jwk: &Jwk, listed: &[String]) -> BTreeSet<Algorithm> {
    let has = |oid: &str| listed.iter().any(|listed| listed == oid);
    let mut algorithms = BTreeSet::new();
    match jwk.params() {
        PublicParams::Ec {
            crv: EcCurve::P256, ..
        } if has(ECDSA_SHA256_OID) || has(EC_PUBLIC_KEY_OID) => {
            algorithms.insert(Algorithm::Es256);
        }
        PublicParams::Ec {
            crv: EcCurve::P384, ..
        } if has(ECDSA_SHA384_OID) || has(EC_PUBLIC_KEY_OID) => {
            algorithms.insert(Algorithm::Es384);
        }
        PublicParams::Rsa { .. } if has(RSA_SHA256_OID) || has(RSA_OID) => {
            algorithms.insert(Algorithm::Rs256);
        }
        _ => {}
    }
    algorithms
}

/// The hash and signature algorithm OIDs and the JOSE ECDSA half length of `alg`.
fn oids(
    alg: Algorithm,
) -> (
    &'static aws_lc_rs::digest::Algorithm,
    &'static str,
    &'static str,
    Option<usize>,
) {
    match alg {
        Algorithm::Es384 => (
            &aws_lc_rs::digest::SHA384,
            SHA384_OID,
            ECDSA_SHA384_OID,
            Some(48),
        ),
        Algorithm::Rs256 => (&aws_lc_rs::digest::SHA256, SHA256_OID, RSA_SHA256_OID, None),
        _ => (
            &aws_lc_rs::digest::SHA256,
            SHA256_OID,
            ECDSA_SHA256_OID,
            Some(32),
        ),
    }
}

#[async_trait]
impl KeyProvider for CscProvider {
    fn id(&self) -> &ProviderId {
        &self.inner.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn remote_metrics(&self) -> Option<RemoteMetrics> {
        Some(self.metrics())
    }

    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error> {
        let _ = (tenant, spec);
        Err(Error::UnsupportedOperation {
            provider: self.inner.id.clone(),
            operation: "key creation (register an existing CSC credential id instead)",
        })
    }

    async fn register(
        &self,
        tenant: &TenantId,
        spec: &KeySpec,
        reference: &str,
    ) -> Result<ProviderKey, Error> {
        let inner = &self.inner;
        let unsupported = || Error::UnsupportedUsage {
            provider: inner.id.clone(),
            usage: spec.usage,
        };
        let KeyUsage::Sign(alg) = spec.usage else {
            return Err(unsupported());
        };
        if !self.capabilities.supports_usage(spec.usage) {
            return Err(unsupported());
        }
        let credential = inner.load(tenant, reference).await?;
        if !credential.algorithms.contains(&alg) {
            return Err(unsupported());
        }
        let handle = KeyHandle::new(
            inner.id.clone(),
            *tenant,
            credential.kid.clone(),
            spec.usage,
            reference.to_owned(),
        );
        ProviderKey::new(handle, &credential.jwk)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let KeyUsage::Sign(alg) = key.usage() else {
            key.check(&self.inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: self.inner.id.clone(),
                operation: "signing with this key",
            });
        };
        let credential = self.inner.credential(tenant, key).await?;
        if !credential.algorithms.contains(&alg) {
            return Err(Error::UnsupportedUsage {
                provider: self.inner.id.clone(),
                usage: key.usage(),
            });
        }
        Ok(Arc::new(CscSigner {
            inner: Arc::clone(&self.inner),
            tenant: *tenant,
            credential_id: key.reference().to_owned(),
            alg,
            credential,
        }))
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        key.check(&self.inner.id, tenant)?;
        if !self.inner.users.contains_key(tenant) {
            return Err(Error::not_found(&self.inner.id));
        }
        self.inner.forget(tenant, key.reference());
        Ok(())
    }
}

impl fmt::Debug for CscProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CscProvider")
            .field("id", &self.inner.id)
            .field("service", &self.inner.service)
            .field("client_id", &self.inner.client_id)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Signs with one CSC credential.
struct CscSigner {
    inner: Arc<Inner>,
    tenant: TenantId,
    credential_id: String,
    alg: Algorithm,
    credential: Arc<Credential>,
}

impl CscSigner {
    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let (digest, hash_oid, sign_oid, half) = oids(self.alg);
        let hash = STANDARD.encode(aws_lc_rs::digest::digest(digest, message));
        let signed = async {
            let authorized: AuthorizeAnswer = inner
                .call(
                    "credentials/authorize",
                    &json!({
                        "credentialID": self.credential_id,
                        "numSignatures": 1,
                        "hashes": [hash],
                        "hashAlgorithmOID": hash_oid,
                    }),
                )
                .await?;
            inner
                .call::<SignHashAnswer>(
                    "signatures/signHash",
                    &json!({
                        "credentialID": self.credential_id,
                        "SAD": authorized.sad.expose_secret(),
                        "hashes": [hash],
                        "hashAlgorithmOID": hash_oid,
                        "signAlgo": sign_oid,
                    }),
                )
                .await
        }
        .await;
        let answer = match signed {
            Err(Error::KeyNotFound { provider }) => {
                inner.forget(&self.tenant, &self.credential_id);
                return Err(Error::KeyNotFound { provider });
            }
            other => other?,
        };
        let malformed =
            || Error::internal(&inner.id, "the CSC service returned a malformed signature");
        let [signature] = answer.signatures.as_slice() else {
            return Err(malformed());
        };
        let raw = STANDARD.decode(signature).map_err(|_| malformed())?;
        let signature = match half {
            Some(half) => match remote::ecdsa_der_to_jose(&raw, half) {
                Some(jose) => jose,
                None if raw.len() == 2 * half => raw,
                None => return Err(malformed()),
            },
            None => raw,
        };
        self.credential
            .verifying
            .verify(self.alg, message, &signature)
            .map_err(|_| {
                Error::internal(
                    &inner.id,
                    "the CSC service returned a signature that does not verify with the credential's public key",
                )
            })?;
        Ok(signature)
    }
}

#[async_trait]
impl Signer for CscSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.credential.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_remote(message)
            .await
            .map_err(|err| SignError::new(err.kind(), err))
    }
}

impl fmt::Debug for CscSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CscSigner")
            .field("provider", &self.inner.id)
            .field("kid", &self.credential.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CscProviderConfig {
        CscProviderConfig::new(
            ProviderId::new("csc").unwrap(),
            "http://127.0.0.1:1/csc/v2",
            "edk",
            SecretString::from("csc-secret-value"),
        )
    }

    #[test]
    fn configuration_is_checked_and_hides_the_secret() {
        // In a workspace build with the servers, reqwest uses rustls without a built-in
        // provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let provider = CscProvider::new(config()).unwrap();
        assert_eq!(provider.inner.token_url, "http://127.0.0.1:1/oauth2/token");
        assert!(!provider.capabilities().key_creation());
        assert!(!format!("{provider:?} {:?}", config()).contains("csc-secret-value"));
        let refusals = [
            (
                CscProviderConfig {
                    service_url: "rss.example.eu".to_owned(),
                    ..config()
                },
                "invalid configuration: `service_url` must be an http(s) URL",
            ),
            (
                CscProviderConfig {
                    algorithms: Some(vec![Algorithm::EdDsa]),
                    ..config()
                },
                "invalid configuration: `algorithms` must list some of ES256, ES384 and RS256",
            ),
            (
                CscProviderConfig {
                    client_secret_file: Some(PathBuf::from("/nonexistent")),
                    ..config()
                },
                "invalid configuration: `client_secret` give exactly one of the value and its file",
            ),
            (
                config().with_user(TenantId::generate(), ""),
                "invalid configuration: `users` must name a non-empty user id for each tenant",
            ),
        ];
        for (config, message) in refusals {
            assert_eq!(CscProvider::new(config).unwrap_err().to_string(), message);
        }
    }
}
