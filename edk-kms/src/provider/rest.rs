//! A [`KeyProvider`] that keeps its keys in another EDK KMS, over its REST API
//! (`/api/kms/v1`).
//!
//! Each key is an alias `rest.t<tenant>-k<random>` in the remote KMS, created in one remote
//! provider with the configured bearer token (which names the remote tenant). The alias is the
//! handle's reference, so a handle re-labelled for another tenant names nothing. Signing calls
//! `/signatures/raw/create`; the key material never leaves the remote KMS. Decryption is not
//! offered.
//!
//! Every call goes through the injected [`reqwest::Client`], whose timeouts apply.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::{Algorithm, Jwk, SignError, Signer};
use edk_core::{ErrorKind, Kid, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Error;
use crate::provider::{
    Capabilities, Exportability, KeyHandle, KeyProvider, KeySpec, KeyStorage, KeyUsage, ProviderId,
    ProviderKey,
};

/// Configuration of a [`RestProvider`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestProviderConfig {
    /// This provider's id.
    pub id: ProviderId,
    /// The remote KMS API base, e.g. `https://kms.internal/api/kms/v1`.
    pub base_url: String,
    /// The provider in the remote KMS that holds the keys.
    pub remote_provider: ProviderId,
    /// The bearer token (scopes `kms:read kms:write kms:use`) for the remote tenant.
    pub token: SecretString,
}

/// A [`KeyProvider`] over a remote EDK KMS; see the [module docs](self).
pub struct RestProvider {
    inner: Arc<Inner>,
    capabilities: Capabilities,
}

struct Inner {
    id: ProviderId,
    base_url: String,
    remote_provider: ProviderId,
    token: SecretString,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct RemoteCapabilities {
    signing_algorithms: Vec<String>,
    exportability: String,
    hardware_backed: bool,
}

#[derive(Deserialize)]
struct RemoteKey {
    versions: Vec<RemoteVersion>,
}

#[derive(Deserialize)]
struct RemoteVersion {
    kid: String,
    public_jwk: Jwk,
    state: String,
}

#[derive(Deserialize)]
struct RemoteSignature {
    kid: String,
    signature: String,
}

impl RestProvider {
    /// Connects to the remote KMS and reads what its provider can do.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the remote KMS cannot be reached or refuses the token,
    /// [`Error::InvalidConfig`] for a malformed base URL.
    pub async fn connect(
        config: RestProviderConfig,
        client: reqwest::Client,
    ) -> Result<Self, Error> {
        if !(config.base_url.starts_with("https://") || config.base_url.starts_with("http://")) {
            return Err(Error::InvalidConfig {
                field: "base_url",
                reason: "must be an http(s) URL",
            });
        }
        let inner = Arc::new(Inner {
            id: config.id,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            remote_provider: config.remote_provider,
            token: config.token,
            client,
        });
        let path = format!("/providers/{}/capabilities", inner.remote_provider);
        let remote: RemoteCapabilities = inner.call(reqwest::Method::GET, &path, None).await?;
        let capabilities = Capabilities::new()
            .with_signing(
                remote
                    .signing_algorithms
                    .iter()
                    .filter_map(|name| Algorithm::from_name(name)),
            )
            .with_exportability(if remote.exportability == "never" {
                Exportability::Never
            } else {
                Exportability::Exportable
            })
            .with_hardware_backing(remote.hardware_backed)
            .with_storage(KeyStorage::InProvider);
        Ok(Self {
            inner,
            capabilities,
        })
    }

    /// The alias prefix of `tenant`'s keys.
    fn tenant_prefix(tenant: &TenantId) -> String {
        format!("rest.t{}-k", tenant.as_uuid().simple())
    }

    /// The remote alias a handle names, if it belongs to `tenant` and this provider.
    fn alias_of<'a>(&self, tenant: &TenantId, key: &'a KeyHandle) -> Result<&'a str, Error> {
        key.check(&self.inner.id, tenant)?;
        if key.reference().starts_with(&Self::tenant_prefix(tenant)) {
            Ok(key.reference())
        } else {
            Err(Error::not_found(&self.inner.id))
        }
    }

    /// The remote key a handle names, checked to hold the handle's kid as its active version.
    async fn remote_key(&self, tenant: &TenantId, key: &KeyHandle) -> Result<String, Error> {
        let alias = self.alias_of(tenant, key)?;
        let remote: RemoteKey = self
            .inner
            .call(reqwest::Method::GET, &format!("/keys/{alias}"), None)
            .await?;
        let active = remote
            .versions
            .iter()
            .any(|version| version.state == "active" && version.kid == key.kid().as_str());
        if active {
            Ok(alias.to_owned())
        } else {
            Err(Error::not_found(&self.inner.id))
        }
    }
}

impl Inner {
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let response = self.send(method, path, body).await?;
        response
            .json()
            .await
            .map_err(|err| Error::unavailable(&self.id, err))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| Error::unavailable(&self.id, err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status.as_u16() {
            404 => Error::not_found(&self.id),
            422 => Error::UnsupportedOperation {
                provider: self.id.clone(),
                operation: "this request",
            },
            400 | 409 => Error::InvalidKey {
                reason: "the remote KMS refused the request",
            },
            _ => Error::unavailable(&self.id, format!("the remote KMS answered {status}")),
        })
    }
}

#[async_trait]
impl KeyProvider for RestProvider {
    fn id(&self) -> &ProviderId {
        &self.inner.id
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn generate(&self, tenant: &TenantId, spec: &KeySpec) -> Result<ProviderKey, Error> {
        let KeyUsage::Sign(alg) = spec.usage else {
            return Err(Error::UnsupportedUsage {
                provider: self.inner.id.clone(),
                usage: spec.usage,
            });
        };
        if !self.capabilities.supports_usage(spec.usage) {
            return Err(Error::UnsupportedUsage {
                provider: self.inner.id.clone(),
                usage: spec.usage,
            });
        }
        // `t` + 32 + `-k` + 24 characters: within the 64 a purpose may have.
        let random = uuid::Uuid::new_v4().simple().to_string();
        let alias = format!("{}{}", Self::tenant_prefix(tenant), &random[..24]);
        let body = json!({ "alias": alias, "usage": "sign", "algorithm": alg.name() });
        let path = format!("/providers/{}/keys", self.inner.remote_provider);
        let remote: RemoteKey = self
            .inner
            .call(reqwest::Method::POST, &path, Some(&body))
            .await?;
        let version = remote
            .versions
            .into_iter()
            .find(|version| version.state == "active")
            .ok_or_else(|| {
                Error::unavailable(&self.inner.id, "the remote key has no active version")
            })?;
        let kid = Kid::new(version.kid)?;
        let handle = KeyHandle::new(self.inner.id.clone(), *tenant, kid, spec.usage, alias);
        ProviderKey::new(handle, &version.public_jwk)
    }

    async fn signer(&self, tenant: &TenantId, key: &KeyHandle) -> Result<Arc<dyn Signer>, Error> {
        let KeyUsage::Sign(alg) = key.usage() else {
            key.check(&self.inner.id, tenant)?;
            return Err(Error::UnsupportedOperation {
                provider: self.inner.id.clone(),
                operation: "signing with this key",
            });
        };
        let alias = self.remote_key(tenant, key).await?;
        Ok(Arc::new(RestSigner {
            inner: Arc::clone(&self.inner),
            alias,
            kid: key.kid().clone(),
            alg,
        }))
    }

    async fn destroy(&self, tenant: &TenantId, key: &KeyHandle) -> Result<(), Error> {
        let alias = self.remote_key(tenant, key).await?;
        self.inner
            .send(reqwest::Method::DELETE, &format!("/keys/{alias}"), None)
            .await?;
        Ok(())
    }
}

impl fmt::Debug for RestProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestProvider")
            .field("id", &self.inner.id)
            .field("base_url", &self.inner.base_url)
            .field("remote_provider", &self.inner.remote_provider)
            .finish_non_exhaustive()
    }
}

/// Signs through the remote KMS.
struct RestSigner {
    inner: Arc<Inner>,
    alias: String,
    kid: Kid,
    alg: Algorithm,
}

#[async_trait]
impl Signer for RestSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let body = json!({ "key": self.alias, "message": b64url_encode(message) });
        let signed: RemoteSignature = self
            .inner
            .call(reqwest::Method::POST, "/signatures/raw/create", Some(&body))
            .await
            .map_err(|err| SignError::new(edk_core::HasKind::kind(&err), err))?;
        if signed.kid != self.kid.as_str() {
            // The alias rotated remotely: this signer's key is no longer the active one.
            return Err(SignError::of_kind(ErrorKind::NotFound));
        }
        b64url_decode(&signed.signature).map_err(|err| SignError::new(ErrorKind::Unavailable, err))
    }
}

impl fmt::Debug for RestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestSigner")
            .field("alias", &self.alias)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}
