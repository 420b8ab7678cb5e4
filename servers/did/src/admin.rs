//! The admin API (`/api/did/v1`) and the DIF-style registrar (`/1.0/create`, `/1.0/update`,
//! `/1.0/deactivate`). Both need an admin token; the tenant comes from the token, never from
//! the request.

use std::sync::Arc;

use edk_core::{ErrorKind, HasKind};
use edk_did::registrar::{Registrar, UpdateDid};
use edk_kms::{Caller, KeyAlias};
use edk_server::{AdminBearer, AdminPrincipal, ApiError, problem_for};
use edk_tenancy::{ServiceType, Tenancy, TenantDirectory as _};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use crate::dto::{
    Closed, CreateIdentifier, IdentifierList, IdentifierView, KeyRequest, MethodList,
    RegistrarCreate, RegistrarDeactivate, RegistrarState, RegistrarUpdate, WitnessFileView,
    WitnessProofRequest, create_request, invalid, methods, new_method, registrar_state, service,
    view, witness_config,
};

/// Reads the tenant's DIDs.
pub const SCOPE_READ: &str = "did:read";
/// Creates, updates and deactivates the tenant's DIDs.
pub const SCOPE_WRITE: &str = "did:write";
/// Every scope of the DID server.
pub const SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_WRITE];

/// What the admin and registrar APIs share.
#[derive(Debug)]
struct Shared {
    tenancy: Tenancy,
    registrar: Arc<Registrar>,
}

impl Shared {
    /// The caller: the token's tenant (with its DID binding when it has one) and subject.
    async fn caller(&self, principal: &AdminPrincipal) -> Result<Caller, ApiError> {
        let context = match self
            .tenancy
            .context_for_service(principal.tenant, ServiceType::Did)
            .await
        {
            Ok(context) => context,
            Err(edk_tenancy::Error::NoBinding { .. }) => self
                .tenancy
                .context(principal.tenant)
                .await
                .map_err(|err| problem_for(&err))?,
            Err(err) => return Err(problem_for(&err)),
        };
        let actor = principal
            .subject
            .clone()
            .unwrap_or_else(|| principal.issuer.clone());
        Ok(Caller::new(context, actor))
    }
}

fn failed(err: &edk_did::error::RegistrarError) -> ApiError {
    if err.kind() == ErrorKind::Internal {
        tracing::error!(error = %edk_core::ErrorChain(err), "DID request failed");
    }
    problem_for(err)
}

/// A creation.
#[derive(ApiResponse, Debug)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

#[derive(Tags)]
enum DidTag {
    /// The tenant's DIDs.
    #[oai(rename = "DID administration")]
    Admin,
    /// DIF DID Registrar API.
    Registrar,
}

/// The admin API.
#[derive(Debug)]
pub struct AdminApi {
    shared: Shared,
}

impl AdminApi {
    /// The API over `tenancy` and `registrar`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, registrar: Arc<Registrar>) -> Self {
        Self {
            shared: Shared { tenancy, registrar },
        }
    }
}

#[OpenApi(prefix_path = "/api/did/v1", tag = "DidTag::Admin")]
impl AdminApi {
    /// Lists the tenant's DIDs. Requires scope `did:read`.
    #[oai(
        path = "/identifiers",
        method = "get",
        operation_id = "listIdentifiers"
    )]
    async fn list(&self, auth: AdminBearer) -> Result<Json<IdentifierList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let caller = self.shared.caller(&auth.0).await?;
        let all = self
            .shared
            .registrar
            .list(&caller)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(IdentifierList {
            identifiers: all.iter().map(view).collect(),
        }))
    }

    /// Creates a DID: did:web or did:webvh under the tenant's DID endpoint binding (keys in
    /// the KMS under `did.<name>`, the did:webvh update key `did.<name>-update`), or a
    /// did:key/did:jwk of a KMS key. Requires scope `did:write`.
    #[oai(
        path = "/identifiers",
        method = "post",
        operation_id = "createIdentifier"
    )]
    async fn create(
        &self,
        auth: AdminBearer,
        body: Json<Closed<CreateIdentifier>>,
    ) -> Result<Created<IdentifierView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let body = body.0.0;
        let request = create_request(
            body.method,
            body.path.as_deref(),
            body.name,
            body.keys,
            body.services,
            body.witness.as_ref(),
        )?;
        let stored = self
            .shared
            .registrar
            .create(&caller, request)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(view(&stored))))
    }

    /// One DID of the tenant (percent-encode it in the path). Requires scope `did:read`.
    #[oai(
        path = "/identifiers/:did",
        method = "get",
        operation_id = "getIdentifier"
    )]
    async fn get(
        &self,
        auth: AdminBearer,
        /// The DID, percent-encoded.
        did: Path<String>,
    ) -> Result<Json<IdentifierView>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let caller = self.shared.caller(&auth.0).await?;
        let stored = self
            .shared
            .registrar
            .get(&caller, &did.0)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(view(&stored)))
    }

    /// The verification methods of a DID. Requires scope `did:read`.
    #[oai(
        path = "/identifiers/:did/verification-methods",
        method = "get",
        operation_id = "listVerificationMethods"
    )]
    async fn methods(
        &self,
        auth: AdminBearer,
        /// The DID, percent-encoded.
        did: Path<String>,
    ) -> Result<Json<MethodList>, ApiError> {
        auth.0.require_scope(SCOPE_READ)?;
        let caller = self.shared.caller(&auth.0).await?;
        let stored = self
            .shared
            .registrar
            .get(&caller, &did.0)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(MethodList {
            verification_methods: methods(&stored),
        }))
    }

    /// Adds a verification method (a KMS alias, created when missing) to a did:web or
    /// did:webvh; a did:webvh gets a new log entry. Requires scope `did:write`.
    #[oai(
        path = "/identifiers/:did/verification-methods",
        method = "post",
        operation_id = "addVerificationMethod"
    )]
    async fn add_method(
        &self,
        auth: AdminBearer,
        /// The DID, percent-encoded.
        did: Path<String>,
        body: Json<Closed<KeyRequest>>,
    ) -> Result<Created<MethodList>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let method = new_method(body.0.0)?;
        let stored = self
            .shared
            .registrar
            .add_method(&caller, &did.0, method)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(MethodList {
            verification_methods: methods(&stored),
        })))
    }

    /// Adds a witness's proof for a version of a did:webvh log to its `did-witness.json`.
    /// The proof must verify with the key of one of the log's witnesses, for a published
    /// `versionId` or one held back (`pending_version_ids`). Held-back entries whose
    /// threshold is met are then published in `did.jsonl`, after the proofs. A witness's
    /// older proofs go once a newer one of its is published (a proof approves every earlier
    /// entry); an older proof than one it already gave changes nothing. Requires scope
    /// `did:write`.
    #[oai(
        path = "/identifiers/:did/witness-proofs",
        method = "post",
        operation_id = "addWitnessProof"
    )]
    async fn add_witness_proof(
        &self,
        auth: AdminBearer,
        /// The did:webvh DID, percent-encoded.
        did: Path<String>,
        body: Json<Closed<WitnessProofRequest>>,
    ) -> Result<Created<WitnessFileView>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let body = body.0.0;
        let stored = self
            .shared
            .registrar
            .add_witness_proof(&caller, &did.0, &body.version_id, body.proof)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(Self::witness_view(&stored))))
    }
}

impl AdminApi {
    /// Answers an added witness proof with the published witness file.
    fn witness_view(stored: &edk_did::store::StoredDid) -> WitnessFileView {
        let witness_file = stored
            .witness
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
        WitnessFileView {
            did: stored.did.to_string(),
            version_id: stored.version_id(),
            pending_version_ids: stored.pending_version_ids(),
            witness_file,
        }
    }
}

/// The DIF-style registrar API.
#[derive(Debug)]
pub struct RegistrarApi {
    shared: Shared,
}

impl RegistrarApi {
    /// The API over `tenancy` and `registrar`.
    #[must_use]
    pub const fn new(tenancy: Tenancy, registrar: Arc<Registrar>) -> Self {
        Self {
            shared: Shared { tenancy, registrar },
        }
    }
}

#[OpenApi(prefix_path = "/1.0", tag = "DidTag::Registrar")]
impl RegistrarApi {
    /// Creates a DID of `method` (`web`, `webvh`, `key`, `jwk`). Requires scope `did:write`.
    #[oai(path = "/create", method = "post", operation_id = "registrarCreate")]
    async fn create(
        &self,
        auth: AdminBearer,
        /// The DID method.
        method: Query<String>,
        body: Json<Closed<RegistrarCreate>>,
    ) -> Result<Created<RegistrarState>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let body = body.0.0;
        let services = body
            .did_document
            .and_then(|d| d.service)
            .unwrap_or_default();
        let request = create_request(
            method.0,
            body.options.path.as_deref(),
            body.options.name,
            body.options.keys,
            services,
            body.options.witness.as_ref(),
        )?;
        let stored = self
            .shared
            .registrar
            .create(&caller, request)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Created::Created(Json(registrar_state(
            body.job_id,
            &stored,
        ))))
    }

    /// Updates a did:web or did:webvh: adds or removes verification methods, replaces
    /// services. Requires scope `did:write`.
    #[oai(path = "/update", method = "post", operation_id = "registrarUpdate")]
    async fn update(
        &self,
        auth: AdminBearer,
        body: Json<Closed<RegistrarUpdate>>,
    ) -> Result<Json<RegistrarState>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let body = body.0.0;
        let mut change = UpdateDid::default();
        change.add_methods = body
            .options
            .add_keys
            .into_iter()
            .map(new_method)
            .collect::<Result<_, _>>()?;
        change.remove_methods = body
            .options
            .remove_keys
            .iter()
            .map(|alias| {
                alias
                    .parse::<KeyAlias>()
                    .map_err(|_| invalid("`removeKeys` holds aliases `did.<purpose>`"))
            })
            .collect::<Result<_, _>>()?;
        change.witness = body
            .options
            .witness
            .as_ref()
            .map(witness_config)
            .transpose()?;
        change.services = body
            .did_document
            .and_then(|d| d.service)
            .map(|services| services.into_iter().map(service).collect());
        let stored = self
            .shared
            .registrar
            .update(&caller, &body.did, change)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(registrar_state(body.job_id, &stored)))
    }

    /// Deactivates a did:web (its `did.json` answers 410) or did:webvh (a deactivating log
    /// entry). Requires scope `did:write`.
    #[oai(
        path = "/deactivate",
        method = "post",
        operation_id = "registrarDeactivate"
    )]
    async fn deactivate(
        &self,
        auth: AdminBearer,
        body: Json<Closed<RegistrarDeactivate>>,
    ) -> Result<Json<RegistrarState>, ApiError> {
        auth.0.require_scope(SCOPE_WRITE)?;
        let caller = self.shared.caller(&auth.0).await?;
        let body = body.0.0;
        let stored = self
            .shared
            .registrar
            .deactivate(&caller, &body.did)
            .await
            .map_err(|err| failed(&err))?;
        Ok(Json(registrar_state(body.job_id, &stored)))
    }
}
