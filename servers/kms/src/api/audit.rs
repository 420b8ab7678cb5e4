//! `/audit`: the tenant's audit chain, its verification and its checkpoints.

use std::sync::Arc;

use poem_openapi::ApiResponse;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;

use edk_kms::audit::AuditTrail;
use edk_server::{AdminBearer, ApiError};

use super::{KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::{AuditCheckpointBody, AuditEventBody, AuditEventList, AuditReportBody};
use crate::state::KmsState;

/// The largest page of audit records.
pub const MAX_PAGE: u32 = 1000;

/// The page size when the request names none.
pub const DEFAULT_PAGE: u32 = 100;

/// Audit.
#[derive(Debug)]
pub struct AuditApi {
    state: Arc<KmsState>,
}

impl AuditApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }

    fn trail(&self) -> Result<&Arc<dyn AuditTrail>, ApiError> {
        self.state
            .audit()
            .ok_or_else(|| problem(Error::AuditUnavailable))
    }
}

/// The outcome of a checkpoint request.
#[derive(ApiResponse, Debug)]
pub enum CheckpointResponse {
    /// A checkpoint of the current head was signed.
    #[oai(status = 201)]
    Created(Json<AuditCheckpointBody>),
    /// The chain is empty or already checkpointed at its head.
    #[oai(status = 204)]
    UpToDate,
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Audit")]
impl AuditApi {
    /// The tenant's audit records after sequence number `after`, oldest first. Scope
    /// `kms:read`.
    #[oai(
        path = "/audit/events",
        method = "get",
        operation_id = "listAuditEvents"
    )]
    async fn events(
        &self,
        auth: AdminBearer,
        /// Only records with a larger sequence number (default 0, from the start).
        after: Query<Option<u64>>,
        /// The most records to return, 1 to 1000 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditEventList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let limit = limit.0.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(problem(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            )));
        }
        let trail = self.trail()?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let events = trail
            .events(&caller, after.0.unwrap_or(0), limit)
            .await
            .map_err(problem)?;
        let full_page = u32::try_from(events.len()).is_ok_and(|n| n == limit);
        let next_after = full_page
            .then(|| events.last().map(|event| event.seq))
            .flatten();
        Ok(Json(AuditEventList {
            events: events.iter().map(AuditEventBody::from).collect(),
            next_after,
        }))
    }

    /// Checks the tenant's chain: every record's hash and link, the head, and every signed
    /// checkpoint. A broken chain is a 200 report naming the first record that does not fit.
    /// Scope `kms:read`.
    #[oai(
        path = "/audit/verify",
        method = "post",
        operation_id = "verifyAuditChain"
    )]
    async fn verify(&self, auth: AdminBearer) -> Result<Json<AuditReportBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let trail = self.trail()?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let report = trail.verify(&caller).await.map_err(problem)?;
        Ok(Json(AuditReportBody::from(&report)))
    }

    /// Signs a checkpoint of the chain head now (the server also does so on a schedule).
    /// Scope `kms:write`.
    #[oai(
        path = "/audit/checkpoints",
        method = "post",
        operation_id = "createAuditCheckpoint"
    )]
    async fn checkpoint(&self, auth: AdminBearer) -> Result<CheckpointResponse, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let trail = self.trail()?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        Ok(match trail.checkpoint(&caller).await.map_err(problem)? {
            Some(checkpoint) => {
                CheckpointResponse::Created(Json(AuditCheckpointBody::from(&checkpoint)))
            }
            None => CheckpointResponse::UpToDate,
        })
    }
}
