//! [`RemoteKms`]: the [`Kms`] trait over gRPC.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{
    Algorithm, JoseError, Jwk, JwkSet, KeyQuery, KeyResolver, SignError, Signer, VerifyingKey,
};
use edk_core::{Clock, ErrorKind, HasKind, Kid, SystemClock, TenantId};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use super::auth::{ServiceTokenSource, TENANT_METADATA};
use super::convert::{
    bad_response, error_from_status, jwk_json, key_info_from_proto, rotation_record_from_proto,
    rotation_to_proto, usage_to_proto, wrapped_from_response, wrapped_to_proto,
};
use super::proto;
use super::proto::key_management_client::KeyManagementClient;
use crate::Error;
use crate::kms::{
    Caller, KeyAlias, KeyInfo, KeyRef, Kms, NewKey, RotationRecord, Signature, WrappedKey,
};
use crate::provider::{KeySpec, KeyUsage, ProviderId};

/// How [`RemoteKms`] authenticates to the KMS server.
#[non_exhaustive]
pub enum ClientAuth {
    /// A short-lived service JWT per tenant in `authorization: Bearer`.
    ServiceJwt(Arc<ServiceTokenSource>),
    /// A client certificate; the tenant travels in `x-edk-tenant`.
    Mtls {
        /// The client certificate chain (PEM, leaf first).
        cert_chain_pem: Vec<u8>,
        /// The client's private key (PEM).
        key_pem: Zeroizing<Vec<u8>>,
        /// The CA the server's certificate must chain to (PEM).
        server_ca_pem: Vec<u8>,
        /// The name to check the server certificate against; `None` uses the endpoint's host.
        server_name: Option<String>,
    },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceJwt(source) => f.debug_tuple("ServiceJwt").field(source).finish(),
            Self::Mtls { server_name, .. } => f
                .debug_struct("Mtls")
                .field("server_name", server_name)
                .finish_non_exhaustive(),
        }
    }
}

/// Options of a [`RemoteKms`] connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteKmsOptions {
    /// The deadline of every call (also sent as `grpc-timeout`). Default 10 s.
    pub timeout: Duration,
    /// How long establishing the connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// How long resolved public keys stay in the in-process cache. Default 300 s.
    pub resolver_ttl: Duration,
    /// The clock of the resolver cache.
    pub clock: Arc<dyn Clock>,
}

impl Default for RemoteKmsOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            resolver_ttl: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }
}

impl RemoteKmsOptions {
    /// The options with another call deadline.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The options with another resolver cache lifetime.
    #[must_use]
    pub const fn with_resolver_ttl(mut self, ttl: Duration) -> Self {
        self.resolver_ttl = ttl;
        self
    }

    /// The options with another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The [`Kms`] of a remote KMS server, over one HTTP/2 connection that every call multiplexes
/// on (clone it freely: clones share the connection and the caches).
///
/// Each call carries the caller's tenant id and actor; the server refuses a tenant other than
/// the authenticated one. [`Kms::signer`] hands out signers that sign remotely with the
/// alias's active version (refused, like a retired key, once it rotates away); [`Kms::resolver`]
/// resolves kids remotely through a cache shared by every resolver of this client.
#[derive(Clone)]
pub struct RemoteKms {
    client: KeyManagementClient<Channel>,
    auth: Arc<ClientAuth>,
    clock: Arc<dyn Clock>,
    resolver_ttl: i64,
    keys: Arc<Mutex<KeyCache>>,
}

/// Resolved public keys by (tenant, kid), with the time (Unix seconds) they expire.
type KeyCache = HashMap<(TenantId, String), (Arc<VerifyingKey>, i64)>;

impl RemoteKms {
    /// Connects to the KMS at `endpoint` (`http://host:port`, or `https://` for mTLS).
    ///
    /// # Errors
    /// [`Error::Remote`] of kind `InvalidInput` for a bad endpoint or TLS material,
    /// `Unavailable` when the server cannot be reached.
    pub async fn connect(endpoint: &str, auth: ClientAuth) -> Result<Self, Error> {
        Self::connect_with(endpoint, auth, RemoteKmsOptions::default()).await
    }

    /// Connects with `options`.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        endpoint: &str,
        auth: ClientAuth,
        options: RemoteKmsOptions,
    ) -> Result<Self, Error> {
        let channel = Self::endpoint(endpoint, &auth, &options)?
            .connect()
            .await
            .map_err(|err| {
                tracing::warn!(error = %edk_core::ErrorChain(&err), "cannot reach the KMS");
                remote(ErrorKind::Unavailable, "cannot reach the KMS")
            })?;
        Ok(Self::from_channel(channel, auth, &options))
    }

    /// A client over an existing `channel` (which carries its own TLS settings).
    #[must_use]
    pub fn from_channel(channel: Channel, auth: ClientAuth, options: &RemoteKmsOptions) -> Self {
        Self {
            client: KeyManagementClient::new(channel),
            auth: Arc::new(auth),
            clock: Arc::clone(&options.clock),
            resolver_ttl: i64::try_from(options.resolver_ttl.as_secs()).unwrap_or(i64::MAX),
            keys: Arc::default(),
        }
    }

    fn endpoint(
        endpoint: &str,
        auth: &ClientAuth,
        options: &RemoteKmsOptions,
    ) -> Result<Endpoint, Error> {
        let mut endpoint = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|_| remote(ErrorKind::InvalidInput, "invalid KMS endpoint"))?
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true);
        if let ClientAuth::Mtls {
            cert_chain_pem,
            key_pem,
            server_ca_pem,
            server_name,
        } = auth
        {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(server_ca_pem))
                .identity(Identity::from_pem(cert_chain_pem, key_pem.as_slice()));
            if let Some(name) = server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|_| remote(ErrorKind::InvalidInput, "invalid client TLS settings"))?;
        }
        Ok(endpoint)
    }

    /// Checks that the KMS answers and accepts this client's credentials for `tenant`: the
    /// same authentication as every call (service token or certificate, the tenant and the
    /// service's tenant list), without touching a key or the audit log. For readiness checks.
    ///
    /// # Errors
    /// [`Error::Remote`] of kind `Unavailable` when the KMS cannot be reached,
    /// `Unauthenticated` when it refuses the credentials, `Forbidden` when the service may not
    /// act for `tenant`, `NotFound` when the tenant does not exist.
    pub async fn ping(&self, tenant: TenantId) -> Result<(), Error> {
        let message = proto::PingRequest {
            context: Some(proto::CallContext {
                tenant_id: tenant.to_string(),
                actor: String::new(),
            }),
        };
        let request = self.request_for(tenant, message).await?;
        self.client().ping(request).await.map_err(|s| status(&s))?;
        Ok(())
    }

    /// A request for `caller` with its credentials attached.
    async fn request<T>(&self, caller: &Caller, message: T) -> Result<tonic::Request<T>, Error> {
        self.request_for(caller.tenant().id(), message).await
    }

    /// A request for `tenant` with the credentials attached.
    async fn request_for<T>(
        &self,
        tenant: TenantId,
        message: T,
    ) -> Result<tonic::Request<T>, Error> {
        let mut request = tonic::Request::new(message);
        super::trace::inject_current(request.metadata_mut());
        match &*self.auth {
            ClientAuth::ServiceJwt(source) => {
                let token = source.token(tenant).await?;
                let value = MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| remote(ErrorKind::Internal, "unusable service token"))?;
                request.metadata_mut().insert("authorization", value);
            }
            ClientAuth::Mtls { .. } => {
                let value = MetadataValue::try_from(tenant.to_string())
                    .map_err(|_| remote(ErrorKind::Internal, "unusable tenant id"))?;
                request.metadata_mut().insert(TENANT_METADATA, value);
            }
        }
        Ok(request)
    }

    fn client(&self) -> KeyManagementClient<Channel> {
        self.client.clone()
    }

    async fn resolve_remote(
        &self,
        caller: &Caller,
        kid: &str,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, JoseError> {
        let cache_key = (caller.tenant().id(), kid.to_owned());
        let now = self.clock.unix_seconds();
        if let Some((key, until)) = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
            && *until > now
        {
            return Ok(Arc::clone(key));
        }
        let message = proto::ResolveRequest {
            context: Some(context(caller)),
            kid: kid.to_owned(),
            alg: alg.name().to_owned(),
        };
        let answer = async {
            let request = self.request(caller, message).await?;
            let response = self
                .client()
                .resolve(request)
                .await
                .map_err(|status| error_from_status(&status))?;
            serde_json::from_str::<Jwk>(&response.into_inner().jwk).map_err(|_| bad_response("jwk"))
        }
        .await;
        let jwk = match answer {
            Ok(jwk) => jwk,
            Err(err) if err.kind() == ErrorKind::NotFound => return Err(JoseError::KeyNotFound),
            Err(err) => {
                let kind = err.kind();
                return Err(JoseError::KeySource(Box::new(err), kind));
            }
        };
        let key = Arc::new(VerifyingKey::from_jwk(&jwk)?);
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                cache_key,
                (Arc::clone(&key), now.saturating_add(self.resolver_ttl)),
            );
        Ok(key)
    }
}

impl fmt::Debug for RemoteKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKms")
            .field("auth", &self.auth)
            .field("resolver_ttl", &self.resolver_ttl)
            .finish_non_exhaustive()
    }
}

fn remote(kind: ErrorKind, message: &str) -> Error {
    Error::Remote {
        kind,
        message: message.to_owned(),
    }
}

fn context(caller: &Caller) -> proto::CallContext {
    proto::CallContext {
        tenant_id: caller.tenant().id().to_string(),
        actor: caller.actor().to_owned(),
    }
}

/// The error of a failed call. A status the client's own transport made (it carries the
/// transport error as its source, e.g. a failed TLS handshake or a dropped connection) means
/// the KMS could not be reached.
fn status(status: &tonic::Status) -> Error {
    if status.code() == tonic::Code::Unknown && std::error::Error::source(status).is_some() {
        tracing::warn!(error = %edk_core::ErrorChain(status), "KMS call failed in transport");
        return remote(ErrorKind::Unavailable, "cannot reach the KMS");
    }
    error_from_status(status)
}

/// Calls `$method` with `$message` for `$caller` and returns the response message.
macro_rules! call {
    ($self:ident, $caller:ident, $method:ident, $message:expr) => {{
        let request = $self.request($caller, $message).await?;
        $self
            .client()
            .$method(request)
            .await
            .map_err(|s| status(&s))?
            .into_inner()
    }};
}

#[async_trait]
impl Kms for RemoteKms {
    async fn create_key(&self, caller: &Caller, request: &NewKey) -> Result<KeyInfo, Error> {
        let message = proto::CreateKeyRequest {
            context: Some(context(caller)),
            alias: request.alias.to_string(),
            usage: Some(usage_to_proto(request.spec.usage)),
            provider: request.provider.as_ref().map(|p| p.as_str().to_owned()),
            rotation: Some(rotation_to_proto(request.rotation)),
        };
        key_info_from_proto(&call!(self, caller, create_key, message))
    }

    async fn import_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        spec: &KeySpec,
        private_jwk: &Jwk,
        provider: Option<&ProviderId>,
    ) -> Result<KeyInfo, Error> {
        let private_jwk = Zeroizing::new(
            serde_json::to_string(private_jwk)
                .map_err(|_| remote(ErrorKind::InvalidInput, "unusable private JWK"))?,
        );
        let message = proto::ImportKeyRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            usage: Some(usage_to_proto(spec.usage)),
            private_jwk: private_jwk.to_string(),
            provider: provider.map(|p| p.as_str().to_owned()),
        };
        key_info_from_proto(&call!(self, caller, import_key, message))
    }

    async fn register_public_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        public_jwk: &Jwk,
    ) -> Result<KeyInfo, Error> {
        let message = proto::RegisterPublicKeyRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            // A private JWK is refused by the server; never send its private part.
            public_jwk: if public_jwk.is_private() {
                return Err(Error::InvalidKey {
                    reason: "a registered key must be a public JWK",
                });
            } else {
                jwk_json(public_jwk)
            },
        };
        key_info_from_proto(&call!(self, caller, register_public_key, message))
    }

    async fn key(&self, caller: &Caller, key: &KeyRef) -> Result<KeyInfo, Error> {
        let message = proto::KeyRequest {
            context: Some(context(caller)),
            key: key.to_string(),
        };
        key_info_from_proto(&call!(self, caller, get_key, message))
    }

    async fn keys(&self, caller: &Caller) -> Result<Vec<KeyInfo>, Error> {
        let message = proto::ListKeysRequest {
            context: Some(context(caller)),
        };
        call!(self, caller, list_keys, message)
            .keys
            .iter()
            .map(key_info_from_proto)
            .collect()
    }

    async fn rotate(&self, caller: &Caller, alias: &KeyAlias) -> Result<KeyInfo, Error> {
        let message = proto::AliasRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
        };
        key_info_from_proto(&call!(self, caller, rotate_key, message))
    }

    async fn rotations(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, Error> {
        let message = proto::AliasRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
        };
        call!(self, caller, list_rotations, message)
            .rotations
            .iter()
            .map(rotation_record_from_proto)
            .collect()
    }

    async fn delete_key(&self, caller: &Caller, key: &KeyRef) -> Result<(), Error> {
        let message = proto::KeyRequest {
            context: Some(context(caller)),
            key: key.to_string(),
        };
        call!(self, caller, delete_key, message);
        Ok(())
    }

    async fn hold_key(&self, caller: &Caller, alias: &KeyAlias, user: &str) -> Result<(), Error> {
        let message = proto::HoldRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            user: user.to_owned(),
        };
        call!(self, caller, hold_key, message);
        Ok(())
    }

    async fn release_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        user: &str,
    ) -> Result<(), Error> {
        let message = proto::HoldRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            user: user.to_owned(),
        };
        call!(self, caller, release_key, message);
        Ok(())
    }

    async fn signer(&self, caller: &Caller, alias: &KeyAlias) -> Result<Arc<dyn Signer>, Error> {
        let info = self.key(caller, &KeyRef::Alias(alias.clone())).await?;
        let KeyUsage::Sign(alg) = info.usage else {
            return Err(remote(
                ErrorKind::InvalidInput,
                "the alias's key does not sign",
            ));
        };
        let kid = info
            .active()
            .map(|version| version.kid.clone())
            .ok_or_else(|| remote(ErrorKind::Conflict, "the alias has no active key"))?;
        Ok(Arc::new(RemoteSigner {
            kms: self.clone(),
            caller: caller.clone(),
            alias: alias.clone(),
            alg,
            kid,
        }))
    }

    async fn sign(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        message: &[u8],
    ) -> Result<Signature, Error> {
        self.sign_with(caller, alias, message, None).await
    }

    async fn verify(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<Kid, Error> {
        let message = proto::VerifyRequest {
            context: Some(context(caller)),
            key: key.to_string(),
            alg: alg.name().to_owned(),
            message: message.to_vec(),
            signature: signature.to_vec(),
        };
        let response = call!(self, caller, verify, message);
        Kid::new(response.kid).map_err(|_| bad_response("kid"))
    }

    async fn encrypt(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        plaintext: &[u8],
    ) -> Result<String, Error> {
        let message = proto::EncryptRequest {
            context: Some(context(caller)),
            key: key.to_string(),
            alg: alg.name().to_owned(),
            enc: enc.name().to_owned(),
            plaintext: plaintext.to_vec(),
        };
        Ok(call!(self, caller, encrypt, message).jwe)
    }

    async fn decrypt(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        jwe: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let message = proto::DecryptRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            jwe: jwe.to_owned(),
        };
        Ok(Zeroizing::new(call!(self, caller, decrypt, message).secret))
    }

    async fn wrap_key(
        &self,
        caller: &Caller,
        key: &KeyRef,
        alg: KeyManagement,
        enc: ContentEncryption,
        key_bytes: &[u8],
    ) -> Result<WrappedKey, Error> {
        let message = proto::WrapKeyRequest {
            context: Some(context(caller)),
            key: key.to_string(),
            alg: alg.name().to_owned(),
            enc: enc.name().to_owned(),
            key_bytes: key_bytes.to_vec(),
        };
        wrapped_from_response(&call!(self, caller, wrap_key, message))
    }

    async fn unwrap_key(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        enc: ContentEncryption,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let message = proto::UnwrapKeyRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            enc: enc.name().to_owned(),
            wrapped: Some(wrapped_to_proto(wrapped)),
        };
        Ok(Zeroizing::new(
            call!(self, caller, unwrap_key, message).secret,
        ))
    }

    async fn key_agreement(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        peer: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let message = proto::KeyAgreementRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            peer: jwk_json(&peer.to_public()),
        };
        Ok(Zeroizing::new(
            call!(self, caller, key_agreement, message).secret,
        ))
    }

    async fn public_key(&self, caller: &Caller, key: &KeyRef) -> Result<Jwk, Error> {
        let message = proto::KeyRequest {
            context: Some(context(caller)),
            key: key.to_string(),
        };
        serde_json::from_str(&call!(self, caller, public_key, message).jwk)
            .map_err(|_| bad_response("jwk"))
    }

    async fn jwks(&self, caller: &Caller, alias: &KeyAlias) -> Result<JwkSet, Error> {
        let message = proto::AliasRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
        };
        serde_json::from_str(&call!(self, caller, jwks, message).jwks)
            .map_err(|_| bad_response("jwks"))
    }

    fn resolver(&self, caller: &Caller) -> Arc<dyn KeyResolver> {
        Arc::new(RemoteResolver {
            kms: self.clone(),
            caller: caller.clone(),
        })
    }
}

/// The tenant's audit chain as the KMS server serves it to its audit readers (the server
/// must name this service in its audit readers, else the calls fail as `Forbidden`).
#[async_trait]
impl crate::audit::AuditTrail for RemoteKms {
    async fn events(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditEvent>, Error> {
        let message = proto::ListAuditEventsRequest {
            context: Some(context(caller)),
            after,
            limit,
        };
        let request = self.request(caller, message).await?;
        let response = self
            .client()
            .list_audit_events(request)
            .await
            .map_err(|s| status(&s))?;
        response
            .into_inner()
            .events
            .into_iter()
            .map(super::convert::audit_event_from_proto)
            .collect()
    }

    async fn verify(&self, caller: &Caller) -> Result<crate::audit::AuditReport, Error> {
        let message = proto::VerifyAuditChainRequest {
            context: Some(context(caller)),
        };
        let request = self.request(caller, message).await?;
        let response = self
            .client()
            .verify_audit_chain(request)
            .await
            .map_err(|s| status(&s))?;
        super::convert::audit_report_from_proto(response.into_inner())
    }

    async fn checkpoint(
        &self,
        _caller: &Caller,
    ) -> Result<Option<crate::audit::AuditCheckpoint>, Error> {
        Err(remote(
            ErrorKind::Unsupported,
            "checkpoints are signed by the KMS server itself, not over gRPC",
        ))
    }
}

#[async_trait]
impl crate::cert::CertificateSource for RemoteKms {
    async fn certificate(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
    ) -> Result<crate::cert::StoredCertificate, crate::cert::Error> {
        let message = proto::AliasRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
        };
        let request = self
            .request(caller, message)
            .await
            .map_err(crate::cert::Error::Kms)?;
        let response = match self.client().get_certificate(request).await {
            Ok(response) => response.into_inner(),
            Err(found) if found.code() == tonic::Code::NotFound => {
                return Err(crate::cert::Error::CertificateNotFound {
                    alias: alias.clone(),
                });
            }
            Err(failed) => return Err(crate::cert::Error::Kms(status(&failed))),
        };
        let kid = if response.kid.is_empty() {
            None
        } else {
            Some(
                response
                    .kid
                    .parse::<Kid>()
                    .map_err(|_| crate::cert::Error::Kms(bad_response("kid")))?,
            )
        };
        let certificate = crate::cert::CertificateInfo::from_chain(response.chain)?;
        Ok(crate::cert::StoredCertificate::new(
            alias.clone(),
            kid,
            certificate,
        ))
    }

    async fn trust_anchors(&self, caller: &Caller) -> Result<Vec<Vec<u8>>, crate::cert::Error> {
        let message = proto::TrustAnchorsRequest {
            context: Some(context(caller)),
        };
        let request = self
            .request(caller, message)
            .await
            .map_err(crate::cert::Error::Kms)?;
        match self.client().get_trust_anchors(request).await {
            Ok(response) => Ok(response.into_inner().certificates),
            Err(failed) => Err(crate::cert::Error::Kms(status(&failed))),
        }
    }
}

impl RemoteKms {
    async fn sign_with(
        &self,
        caller: &Caller,
        alias: &KeyAlias,
        message: &[u8],
        expected_kid: Option<&Kid>,
    ) -> Result<Signature, Error> {
        let message = proto::SignRequest {
            context: Some(context(caller)),
            alias: alias.to_string(),
            message: message.to_vec(),
            expected_kid: expected_kid.map(|kid| kid.as_str().to_owned()),
        };
        let response = call!(self, caller, sign, message);
        Ok(Signature {
            kid: Kid::new(response.kid).map_err(|_| bad_response("kid"))?,
            alg: Algorithm::from_name(&response.alg).ok_or_else(|| bad_response("alg"))?,
            bytes: response.signature,
        })
    }
}

/// Signs remotely with one version of an alias.
#[derive(Debug)]
struct RemoteSigner {
    kms: RemoteKms,
    caller: Caller,
    alias: KeyAlias,
    alg: Algorithm,
    kid: Kid,
}

#[async_trait]
impl Signer for RemoteSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self
            .kms
            .sign_with(&self.caller, &self.alias, message, Some(&self.kid))
            .await
            .map_err(|err| SignError::new(err.kind(), err))?;
        Ok(signature.bytes)
    }
}

/// Resolves a tenant's kids remotely, through the client's cache.
#[derive(Debug)]
struct RemoteResolver {
    kms: RemoteKms,
    caller: Caller,
}

#[async_trait]
impl KeyResolver for RemoteResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let kid = query.kid.ok_or(JoseError::KeyNotFound)?;
        let key = self
            .kms
            .resolve_remote(&self.caller, kid, query.alg)
            .await?;
        if !key.supports(query.alg) {
            return Err(JoseError::KeyAlgorithmMismatch(query.alg));
        }
        Ok(key)
    }
}

/// A calling service's identity key at the KMS server: its `<service>.service-identity` alias
/// ([`crate::kms::service_identity_alias`]) in the platform's operator realm, created on first
/// use, whose current version signs the service's own tokens. See
/// [`RemoteKms::service_identity`].
///
/// It is a [`SignerSource`](super::SignerSource): every call reads the alias's active version,
/// so a rotation is followed by the next token.
#[derive(Debug)]
pub struct RemoteServiceIdentity {
    kms: RemoteKms,
    realm: TenantId,
    alias: KeyAlias,
    alg: Algorithm,
    ensured: std::sync::atomic::AtomicBool,
}

impl RemoteKms {
    /// The identity key of `service` in the tenant `realm` (the platform's operator realm,
    /// where the KMS keeps platform-level keys), signing with `alg` when it has to be created.
    ///
    /// This client's own credentials must not be signed through it: a service token that
    /// authenticates this connection cannot be signed over this connection (use mTLS or a key
    /// file for the KMS connection).
    ///
    /// # Errors
    /// [`Error::InvalidId`] when `service` is not a valid alias part.
    pub fn service_identity(
        &self,
        realm: TenantId,
        service: &str,
        alg: Algorithm,
    ) -> Result<RemoteServiceIdentity, Error> {
        let alias = crate::kms::service_identity_alias(service)?;
        Ok(RemoteServiceIdentity {
            kms: self.clone(),
            realm,
            alias,
            alg,
            ensured: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The key of `alias` in `tenant`, asked without a [`Caller`] (the service's own identity
    /// key, whose tenant this process has no context of).
    async fn identity_key(&self, tenant: TenantId, alias: &KeyAlias) -> Result<KeyInfo, Error> {
        let message = proto::KeyRequest {
            context: Some(identity_context(tenant)),
            key: KeyRef::Alias(alias.clone()).to_string(),
        };
        let request = self.request_for(tenant, message).await?;
        let response = self
            .client()
            .get_key(request)
            .await
            .map_err(|s| status(&s))?;
        key_info_from_proto(&response.into_inner())
    }
}

fn identity_context(tenant: TenantId) -> proto::CallContext {
    proto::CallContext {
        tenant_id: tenant.to_string(),
        actor: "service-identity".to_owned(),
    }
}

impl RemoteServiceIdentity {
    /// The alias.
    #[must_use]
    pub const fn alias(&self) -> &KeyAlias {
        &self.alias
    }

    /// Creates the alias unless it exists (once per process; a concurrent creation counts).
    async fn ensure(&self) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        if self.ensured.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.kms.identity_key(self.realm, &self.alias).await {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let request = NewKey::new(self.alias.clone(), KeySpec::signing(self.alg));
                let message = proto::CreateKeyRequest {
                    context: Some(identity_context(self.realm)),
                    alias: request.alias.to_string(),
                    usage: Some(usage_to_proto(request.spec.usage)),
                    provider: None,
                    rotation: Some(rotation_to_proto(request.rotation)),
                };
                let request = self.kms.request_for(self.realm, message).await?;
                match self.kms.client().create_key(request).await {
                    Ok(_) => {}
                    Err(s) if status(&s).kind() == ErrorKind::Conflict => {}
                    Err(s) => return Err(status(&s)),
                }
            }
            Err(err) => return Err(err),
        }
        self.ensured.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl super::SignerSource for RemoteServiceIdentity {
    async fn signer(&self) -> Result<Arc<dyn Signer>, Error> {
        self.ensure().await?;
        let info = self.kms.identity_key(self.realm, &self.alias).await?;
        let KeyUsage::Sign(alg) = info.usage else {
            return Err(remote(
                ErrorKind::InvalidInput,
                "the service identity alias's key does not sign",
            ));
        };
        let kid = info
            .active()
            .map(|version| version.kid.clone())
            .ok_or_else(|| remote(ErrorKind::Conflict, "the alias has no active key"))?;
        Ok(Arc::new(IdentitySigner {
            kms: self.kms.clone(),
            realm: self.realm,
            alias: self.alias.clone(),
            alg,
            kid,
        }))
    }
}

/// Signs remotely with one version of a service identity alias.
#[derive(Debug)]
struct IdentitySigner {
    kms: RemoteKms,
    realm: TenantId,
    alias: KeyAlias,
    alg: Algorithm,
    kid: Kid,
}

#[async_trait]
impl Signer for IdentitySigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn kid(&self) -> Option<&Kid> {
        Some(&self.kid)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let request = proto::SignRequest {
            context: Some(identity_context(self.realm)),
            alias: self.alias.to_string(),
            message: message.to_vec(),
            expected_kid: Some(self.kid.as_str().to_owned()),
        };
        let signed = async {
            let request = self.kms.request_for(self.realm, request).await?;
            let response = self
                .kms
                .client()
                .sign(request)
                .await
                .map_err(|s| status(&s))?;
            Ok::<_, Error>(response.into_inner().signature)
        }
        .await;
        signed.map_err(|err| SignError::new(err.kind(), err))
    }
}
