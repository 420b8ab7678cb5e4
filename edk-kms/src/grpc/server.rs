//! The service adapter: `edk.kms.v1.KeyManagement` over any [`Kms`].

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use edk_core::jose::{JoseError, KeyQuery};
use edk_core::{ErrorKind, HasKind, TenantId};
use edk_tenancy::{TenantContext, TenantDirectory};
use tonic::{Request, Response, Status};

use super::auth::{AuthError, Principal, ServiceAuth};
use super::convert::{
    self, invalid, jwk_json, jwks_json, key_info_to_proto, parse_alg, parse_alias, parse_enc,
    parse_jwk, parse_key_management, parse_key_ref, parse_kid, parse_provider, parse_usage,
    rotation_from_proto, rotation_record_to_proto, status_for, wrapped_from_request,
    wrapped_to_proto,
};
use super::proto;
use super::proto::key_management_server::{KeyManagement, KeyManagementServer};
use crate::audit::AuditTrail;
use crate::cert::CertificateSource;
use crate::kms::{Caller, Kms, NewKey};

/// Serves the [`Kms`] commands over gRPC, authenticating every call with a [`ServiceAuth`].
///
/// The tenant of a call comes only from its authentication (the service JWT's `tenant` claim,
/// or the `x-edk-tenant` metadata of an mTLS caller); the request's `CallContext.tenant_id`
/// must name the same tenant (else `PERMISSION_DENIED`), a service limited to some tenants
/// ([`ServiceJwtAuth::with_tenants`](super::ServiceJwtAuth::with_tenants)) must be allowed
/// that one (else `PERMISSION_DENIED`, whether or not it exists), and the directory turns it
/// into the [`TenantContext`] the KMS acts in. The KMS sees a
/// [`Caller::remote`] of the authenticated service, whose actor is
/// `service:<name>/<CallContext.actor>`.
#[derive(Clone)]
pub struct KmsGrpcService {
    kms: Arc<dyn Kms>,
    directory: Arc<dyn TenantDirectory>,
    auth: Arc<ServiceAuth>,
    certificates: Option<Arc<dyn CertificateSource>>,
    audit: Option<AuditReaders>,
}

/// Read access to the tenants' audit chains over gRPC (`ListAuditEvents`,
/// `VerifyAuditChain`), for the services it names only (the platform's audit API, say).
#[derive(Clone)]
pub struct AuditReaders {
    trail: Arc<dyn AuditTrail>,
    services: HashSet<String>,
}

impl AuditReaders {
    /// Lets `services` (authenticated service names, or mTLS identities) read `trail`.
    #[must_use]
    pub fn new(trail: Arc<dyn AuditTrail>, services: impl IntoIterator<Item = String>) -> Self {
        Self {
            trail,
            services: services.into_iter().collect(),
        }
    }
}

impl fmt::Debug for AuditReaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditReaders")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// The largest page of `ListAuditEvents`.
const MAX_AUDIT_PAGE: u32 = 1000;

impl KmsGrpcService {
    /// The gRPC service (add it to a tonic server, or pass it to [`super::serve`]).
    #[must_use]
    pub fn new(
        kms: Arc<dyn Kms>,
        directory: Arc<dyn TenantDirectory>,
        auth: ServiceAuth,
    ) -> KeyManagementServer<Self> {
        Self::with_certificates(kms, directory, auth, None)
    }

    /// The gRPC service, also answering `GetCertificate` from `certificates` (without them
    /// it answers `UNIMPLEMENTED`).
    #[must_use]
    pub fn with_certificates(
        kms: Arc<dyn Kms>,
        directory: Arc<dyn TenantDirectory>,
        auth: ServiceAuth,
        certificates: Option<Arc<dyn CertificateSource>>,
    ) -> KeyManagementServer<Self> {
        Self::serving(kms, directory, auth, certificates, None)
    }

    /// The gRPC service with certificates and, from `audit`, the audit chains for the
    /// services it names (without it, the audit calls answer `UNIMPLEMENTED`).
    #[must_use]
    pub fn serving(
        kms: Arc<dyn Kms>,
        directory: Arc<dyn TenantDirectory>,
        auth: ServiceAuth,
        certificates: Option<Arc<dyn CertificateSource>>,
        audit: Option<AuditReaders>,
    ) -> KeyManagementServer<Self> {
        KeyManagementServer::new(Self {
            kms,
            directory,
            auth: Arc::new(auth),
            certificates,
            audit,
        })
    }

    /// Authenticates `request` as an audit reader: the audit trail and the caller it reads
    /// as, with the message.
    async fn accept_audit_reader<T: WithContext>(
        &self,
        request: Request<T>,
    ) -> Result<(&Arc<dyn AuditTrail>, Caller, T), Status> {
        let Some(audit) = &self.audit else {
            return Err(Status::unimplemented(
                "this KMS server keeps no audit trail it can read",
            ));
        };
        let (principal, tenant, message) = self.authenticate(request).await?;
        if !audit.services.contains(&principal.service) {
            tracing::warn!(
                service = %principal.service,
                "a KMS gRPC audit read by a service that is not an audit reader"
            );
            return Err(Status::permission_denied(
                "this service may not read the audit chains",
            ));
        }
        let caller = caller_of(principal, tenant, &message);
        Ok((&audit.trail, caller, message))
    }

    /// Authenticates `request` and returns the caller it acts as, with the message.
    async fn accept<T: WithContext>(&self, request: Request<T>) -> Result<(Caller, T), Status> {
        let (principal, tenant, message) = self.authenticate(request).await?;
        let caller = caller_of(principal, tenant, &message);
        Ok((caller, message))
    }

    /// Authenticates `request`: who calls, for which tenant (which it may act for), with the
    /// message.
    async fn authenticate<T: WithContext>(
        &self,
        request: Request<T>,
    ) -> Result<(Principal, TenantContext, T), Status> {
        let principal = match &*self.auth {
            ServiceAuth::ServiceJwt(jwt) => {
                let token = bearer(request.metadata()).map_err(|err| refuse(&err))?;
                jwt.authenticate(token).await
            }
            ServiceAuth::Mtls(mtls) => {
                let certs = request.peer_certs();
                mtls.authenticate(certs.as_deref().map(Vec::as_slice), request.metadata())
            }
        }
        .map_err(|err| refuse(&err))?;
        let message = request.into_inner();
        let context = message
            .context()
            .ok_or_else(|| invalid("context", "missing"))?;
        let tenant: TenantId = context
            .tenant_id
            .parse()
            .map_err(|_| invalid("context.tenant_id", "not a tenant id"))?;
        if tenant != principal.tenant {
            tracing::warn!(
                service = %principal.service,
                "a KMS gRPC call named another tenant than its credentials"
            );
            return Err(AuthError::WrongTenant.to_status());
        }
        if context.actor.len() > MAX_ACTOR_LEN || context.actor.chars().any(char::is_control) {
            return Err(invalid(
                "context.actor",
                "at most 256 bytes without control characters",
            ));
        }
        let tenant = match self.directory.context(tenant).await {
            Ok(tenant) => tenant,
            // A service limited to some tenants learns nothing about the others.
            Err(err) if principal.tenants.is_some() && err.kind() == ErrorKind::NotFound => {
                return Err(refuse_tenant(&principal));
            }
            Err(err) => return Err(status_for(&err)),
        };
        if !principal.may_act_for(tenant.slug()) {
            return Err(refuse_tenant(&principal));
        }
        tracing::Span::current().record("tenant", tracing::field::display(tenant.id()));
        Ok((principal, tenant, message))
    }
}

impl fmt::Debug for KmsGrpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsGrpcService")
            .field("kms", &self.kms)
            .field("auth", &self.auth)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

/// The KMS caller of an authenticated call: the service, acting for `tenant`, with the
/// actor its message names and the reserved aliases it was granted.
fn caller_of<T: WithContext>(principal: Principal, tenant: TenantContext, message: &T) -> Caller {
    let actor = message
        .context()
        .map(|context| principal.actor(&context.actor))
        .unwrap_or_default();
    let caller = Caller::remote(tenant, principal.service, actor);
    match principal.acts_as {
        Some(names) => caller.acting_as(names),
        None => caller,
    }
}

/// The longest `CallContext.actor` accepted, in bytes.
const MAX_ACTOR_LEN: usize = 256;

fn refuse_tenant(principal: &Principal) -> Status {
    tracing::warn!(
        service = %principal.service,
        tenant = %principal.tenant,
        "a KMS gRPC call named a tenant its service may not act for"
    );
    AuthError::TenantNotAllowed.to_status()
}

fn refuse(err: &AuthError) -> Status {
    tracing::info!(error = %edk_core::ErrorChain(err), "KMS gRPC call refused");
    err.to_status()
}

fn bearer(metadata: &tonic::metadata::MetadataMap) -> Result<&str, AuthError> {
    metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::Missing("a bearer service token"))
}

fn fail(err: &crate::Error) -> Status {
    convert::status_for_kms(err)
}

/// A request message that carries a [`proto::CallContext`].
trait WithContext {
    fn context(&self) -> Option<&proto::CallContext>;
}

macro_rules! with_context {
    ($($message:ident),* $(,)?) => {
        $(impl WithContext for proto::$message {
            fn context(&self) -> Option<&proto::CallContext> {
                self.context.as_ref()
            }
        })*
    };
}

with_context!(
    CreateKeyRequest,
    ImportKeyRequest,
    RegisterPublicKeyRequest,
    KeyRequest,
    AliasRequest,
    ListKeysRequest,
    HoldRequest,
    SignRequest,
    VerifyRequest,
    EncryptRequest,
    DecryptRequest,
    WrapKeyRequest,
    UnwrapKeyRequest,
    KeyAgreementRequest,
    ResolveRequest,
    PingRequest,
    TrustAnchorsRequest,
    ListAuditEventsRequest,
    VerifyAuditChainRequest,
);

#[tonic::async_trait]
impl KeyManagement for KmsGrpcService {
    async fn create_key(
        &self,
        request: Request<proto::CreateKeyRequest>,
    ) -> Result<Response<proto::KeyInfo>, Status> {
        let (caller, req) = self.accept(request).await?;
        let mut new = NewKey::new(
            parse_alias("alias", &req.alias)?,
            parse_usage("usage", req.usage.as_ref())?,
        )
        .with_rotation(rotation_from_proto(req.rotation.as_ref()));
        if let Some(provider) = parse_provider("provider", req.provider.as_deref())? {
            new = new.in_provider(provider);
        }
        let info = self
            .kms
            .create_key(&caller, &new)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(key_info_to_proto(&info)))
    }

    async fn import_key(
        &self,
        request: Request<proto::ImportKeyRequest>,
    ) -> Result<Response<proto::KeyInfo>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let spec = parse_usage("usage", req.usage.as_ref())?;
        let jwk = parse_jwk("private_jwk", &req.private_jwk)?;
        let provider = parse_provider("provider", req.provider.as_deref())?;
        let info = self
            .kms
            .import_key(&caller, &alias, &spec, &jwk, provider.as_ref())
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(key_info_to_proto(&info)))
    }

    async fn register_public_key(
        &self,
        request: Request<proto::RegisterPublicKeyRequest>,
    ) -> Result<Response<proto::KeyInfo>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let jwk = parse_jwk("public_jwk", &req.public_jwk)?;
        let info = self
            .kms
            .register_public_key(&caller, &alias, &jwk)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(key_info_to_proto(&info)))
    }

    async fn get_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::KeyInfo>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        let info = self.kms.key(&caller, &key).await.map_err(|e| fail(&e))?;
        Ok(Response::new(key_info_to_proto(&info)))
    }

    async fn list_keys(
        &self,
        request: Request<proto::ListKeysRequest>,
    ) -> Result<Response<proto::ListKeysResponse>, Status> {
        let (caller, _) = self.accept(request).await?;
        let keys = self.kms.keys(&caller).await.map_err(|e| fail(&e))?;
        Ok(Response::new(proto::ListKeysResponse {
            keys: keys.iter().map(key_info_to_proto).collect(),
        }))
    }

    async fn rotate_key(
        &self,
        request: Request<proto::AliasRequest>,
    ) -> Result<Response<proto::KeyInfo>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let info = self
            .kms
            .rotate(&caller, &alias)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(key_info_to_proto(&info)))
    }

    async fn list_rotations(
        &self,
        request: Request<proto::AliasRequest>,
    ) -> Result<Response<proto::ListRotationsResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let rotations = self
            .kms
            .rotations(&caller, &alias)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::ListRotationsResponse {
            rotations: rotations.iter().map(rotation_record_to_proto).collect(),
        }))
    }

    async fn delete_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::Empty>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        self.kms
            .delete_key(&caller, &key)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn hold_key(
        &self,
        request: Request<proto::HoldRequest>,
    ) -> Result<Response<proto::Empty>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        self.kms
            .hold_key(&caller, &alias, &req.user)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn release_key(
        &self,
        request: Request<proto::HoldRequest>,
    ) -> Result<Response<proto::Empty>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        self.kms
            .release_key(&caller, &alias, &req.user)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn sign(
        &self,
        request: Request<proto::SignRequest>,
    ) -> Result<Response<proto::SignResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let expected = req
            .expected_kid
            .as_deref()
            .map(|kid| parse_kid("expected_kid", kid))
            .transpose()?;
        let signature = self
            .kms
            .sign(&caller, &alias, &req.message)
            .await
            .map_err(|e| fail(&e))?;
        if expected.is_some_and(|kid| kid != signature.kid) {
            // The signer's version has retired: the same refusal `LocalKms` gives.
            return Err(fail(&crate::Error::KeyNotUsable {
                state: crate::KeyState::Retired,
            }));
        }
        Ok(Response::new(proto::SignResponse {
            kid: signature.kid.as_str().to_owned(),
            alg: signature.alg.name().to_owned(),
            signature: signature.bytes,
        }))
    }

    async fn verify(
        &self,
        request: Request<proto::VerifyRequest>,
    ) -> Result<Response<proto::VerifyResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        let alg = parse_alg("alg", &req.alg)?;
        let kid = self
            .kms
            .verify(&caller, &key, alg, &req.message, &req.signature)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::VerifyResponse {
            kid: kid.as_str().to_owned(),
        }))
    }

    async fn encrypt(
        &self,
        request: Request<proto::EncryptRequest>,
    ) -> Result<Response<proto::EncryptResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        let alg = parse_key_management("alg", &req.alg)?;
        let enc = parse_enc("enc", &req.enc)?;
        let jwe = self
            .kms
            .encrypt(&caller, &key, alg, enc, &req.plaintext)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::EncryptResponse { jwe }))
    }

    async fn decrypt(
        &self,
        request: Request<proto::DecryptRequest>,
    ) -> Result<Response<proto::SecretResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let plaintext = self
            .kms
            .decrypt(&caller, &alias, &req.jwe)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::SecretResponse {
            secret: plaintext.to_vec(),
        }))
    }

    async fn wrap_key(
        &self,
        request: Request<proto::WrapKeyRequest>,
    ) -> Result<Response<proto::WrappedKey>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        let alg = parse_key_management("alg", &req.alg)?;
        let enc = parse_enc("enc", &req.enc)?;
        let wrapped = self
            .kms
            .wrap_key(&caller, &key, alg, enc, &req.key_bytes)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(wrapped_to_proto(&wrapped)))
    }

    async fn unwrap_key(
        &self,
        request: Request<proto::UnwrapKeyRequest>,
    ) -> Result<Response<proto::SecretResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let enc = parse_enc("enc", &req.enc)?;
        let wrapped = wrapped_from_request("wrapped", req.wrapped.as_ref())?;
        let key = self
            .kms
            .unwrap_key(&caller, &alias, enc, &wrapped)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::SecretResponse {
            secret: key.to_vec(),
        }))
    }

    async fn key_agreement(
        &self,
        request: Request<proto::KeyAgreementRequest>,
    ) -> Result<Response<proto::SecretResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let peer = parse_jwk("peer", &req.peer)?;
        let secret = self
            .kms
            .key_agreement(&caller, &alias, &peer)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::SecretResponse {
            secret: secret.to_vec(),
        }))
    }

    async fn public_key(
        &self,
        request: Request<proto::KeyRequest>,
    ) -> Result<Response<proto::JwkResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let key = parse_key_ref("key", &req.key)?;
        let jwk = self
            .kms
            .public_key(&caller, &key)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Response::new(proto::JwkResponse {
            jwk: jwk_json(&jwk.to_public()),
        }))
    }

    async fn jwks(
        &self,
        request: Request<proto::AliasRequest>,
    ) -> Result<Response<proto::JwksResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let jwks = self.kms.jwks(&caller, &alias).await.map_err(|e| fail(&e))?;
        Ok(Response::new(proto::JwksResponse {
            jwks: jwks_json(&jwks),
        }))
    }

    async fn get_certificate(
        &self,
        request: Request<proto::AliasRequest>,
    ) -> Result<Response<proto::CertificateResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        let alias = parse_alias("alias", &req.alias)?;
        let Some(certificates) = &self.certificates else {
            return Err(Status::unimplemented(
                "this KMS server keeps no certificates",
            ));
        };
        let stored = certificates
            .certificate(&caller, &alias)
            .await
            .map_err(|err| status_for(&err))?;
        Ok(Response::new(proto::CertificateResponse {
            kid: stored.kid.map(|kid| kid.to_string()).unwrap_or_default(),
            chain: stored.certificate.chain,
        }))
    }

    async fn get_trust_anchors(
        &self,
        request: Request<proto::TrustAnchorsRequest>,
    ) -> Result<Response<proto::TrustAnchorsResponse>, Status> {
        let (caller, _) = self.accept(request).await?;
        let Some(certificates) = &self.certificates else {
            return Err(Status::unimplemented(
                "this KMS server keeps no certificates",
            ));
        };
        let certificates = certificates
            .trust_anchors(&caller)
            .await
            .map_err(|err| status_for(&err))?;
        Ok(Response::new(proto::TrustAnchorsResponse { certificates }))
    }

    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let (trail, caller, req) = self.accept_audit_reader(request).await?;
        if req.limit == 0 || req.limit > MAX_AUDIT_PAGE {
            return Err(invalid("limit", "must be between 1 and 1000"));
        }
        let events = trail
            .events(&caller, req.after, req.limit)
            .await
            .map_err(|err| fail(&err))?;
        Ok(Response::new(proto::ListAuditEventsResponse {
            events: events.iter().map(convert::audit_event_to_proto).collect(),
        }))
    }

    async fn verify_audit_chain(
        &self,
        request: Request<proto::VerifyAuditChainRequest>,
    ) -> Result<Response<proto::AuditReport>, Status> {
        let (trail, caller, _) = self.accept_audit_reader(request).await?;
        let report = trail.verify(&caller).await.map_err(|err| fail(&err))?;
        Ok(Response::new(convert::audit_report_to_proto(&report)))
    }

    async fn ping(
        &self,
        request: Request<proto::PingRequest>,
    ) -> Result<Response<proto::PingResponse>, Status> {
        let (principal, _, _) = self.authenticate(request).await?;
        Ok(Response::new(proto::PingResponse {
            service: principal.service,
        }))
    }

    async fn resolve(
        &self,
        request: Request<proto::ResolveRequest>,
    ) -> Result<Response<proto::JwkResponse>, Status> {
        let (caller, req) = self.accept(request).await?;
        if req.kid.is_empty() {
            return Err(invalid("kid", "missing"));
        }
        let alg = parse_alg("alg", &req.alg)?;
        let query = KeyQuery::new(alg).with_kid(Some(&req.kid));
        let key = self
            .kms
            .resolver(&caller)
            .resolve(&query)
            .await
            .map_err(|err| resolve_status(&err))?;
        Ok(Response::new(proto::JwkResponse {
            jwk: jwk_json(&key.jwk().to_public()),
        }))
    }
}

/// Resolution failures by what the client can do about them: no such key is `NOT_FOUND`
/// (whoever's key it might be), a key unfit for the algorithm `INVALID_ARGUMENT`.
fn resolve_status(err: &JoseError) -> Status {
    match err {
        JoseError::KeyNotFound | JoseError::AmbiguousKey | JoseError::UntrustedKey(_) => {
            Status::not_found("key not found")
        }
        JoseError::KeyAlgorithmMismatch(alg) => {
            Status::invalid_argument(format!("the key does not support algorithm {alg}"))
        }
        other if other.kind().is_client_error() => {
            Status::new(convert::code_for(other.kind()), other.to_string())
        }
        other => status_for(other),
    }
}
