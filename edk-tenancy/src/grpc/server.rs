//! [`DirectoryGrpcService`]: the `edk.tenancy.v1.TenantDirectory` service over a [`Tenancy`].

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use edk_core::TenantId;
use futures::Stream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::{binding_to_proto, config_to_proto, status_for, tenant_to_proto};
use super::proto::invalidation::Kind;
use super::proto::tenant_directory_server::{TenantDirectory, TenantDirectoryServer};
use super::proto::{
    GetTenantRequest, Invalidation, ListBindingsRequest, ListBindingsResponse, TenantEntry,
    WatchRequest,
};
use super::{DirectoryAuth, DirectoryCaller};
use crate::error::Error;
use crate::events::Event;
use crate::tenancy::Tenancy;

/// The directory service: every call is authenticated by the [`DirectoryAuth`], reads go to
/// the [`Tenancy`] (through its caches) and `Watch` relays the tenancy's events. A caller
/// limited to some tenants sees only their bindings, reads only them and hears only their
/// events.
#[derive(Clone, Debug)]
pub struct DirectoryGrpcService {
    tenancy: Tenancy,
    auth: Arc<dyn DirectoryAuth>,
    shutdown: CancellationToken,
}

impl DirectoryGrpcService {
    /// The service over `tenancy`, authenticating with `auth`.
    #[must_use]
    pub fn new(tenancy: Tenancy, auth: Arc<dyn DirectoryAuth>) -> Self {
        Self {
            tenancy,
            auth,
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends every open `Watch` stream when `shutdown` is cancelled (so that a graceful stop
    /// does not wait for the watchers to hang up).
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The tonic server of this service.
    #[must_use]
    pub fn into_server(self) -> TenantDirectoryServer<Self> {
        TenantDirectoryServer::new(self)
    }

    /// The ids of the tenants `caller` may read, `None` for all.
    async fn readable(
        &self,
        caller: &DirectoryCaller,
    ) -> Result<Option<HashSet<TenantId>>, Status> {
        let Some(allowed) = &caller.tenants else {
            return Ok(None);
        };
        let tenants = self.tenancy.tenants().await.map_err(|e| status_for(&e))?;
        Ok(Some(
            tenants
                .into_iter()
                .filter(|tenant| allowed.contains(&tenant.slug))
                .map(|tenant| tenant.id)
                .collect(),
        ))
    }
}

fn denied() -> Status {
    Status::permission_denied("the service may not read this tenant")
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Invalidation, Status>> + Send>>;

#[tonic::async_trait]
impl TenantDirectory for DirectoryGrpcService {
    async fn list_bindings(
        &self,
        request: Request<ListBindingsRequest>,
    ) -> Result<Response<ListBindingsResponse>, Status> {
        let caller = self.auth.authenticate(request.metadata()).await?;
        let readable = self.readable(&caller).await?;
        let bindings = self
            .tenancy
            .platform()
            .bindings()
            .await
            .map_err(|e| status_for(&e))?;
        let bindings = bindings
            .iter()
            .filter(|binding| {
                readable
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&binding.tenant()))
            })
            .map(binding_to_proto)
            .collect();
        Ok(Response::new(ListBindingsResponse { bindings }))
    }

    async fn get_tenant(
        &self,
        request: Request<GetTenantRequest>,
    ) -> Result<Response<TenantEntry>, Status> {
        let caller = self.auth.authenticate(request.metadata()).await?;
        let tenant: TenantId = request
            .get_ref()
            .tenant_id
            .parse()
            .map_err(|_| Status::invalid_argument("`tenant_id` is not a tenant id"))?;
        let (record, bindings, config) = match self.tenancy.directory_entry(tenant).await {
            Ok(entry) => entry,
            // A limited caller learns nothing of tenants outside its list, existing or not.
            Err(Error::TenantNotFound) if caller.tenants.is_some() => return Err(denied()),
            Err(err) => return Err(status_for(&err)),
        };
        if !caller.may_read(&record.slug) {
            return Err(denied());
        }
        Ok(Response::new(TenantEntry {
            tenant: Some(tenant_to_proto(&record)),
            bindings: bindings.iter().map(|b| binding_to_proto(b)).collect(),
            config: config_to_proto(&config)
                .map_err(|e| status_for(&e))?
                .into_iter()
                .collect(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = self.auth.authenticate(request.metadata()).await?;
        tracing::debug!(service = %caller.service, "directory watcher connected");
        let state = WatchState {
            events: self.tenancy.events().subscribe(),
            tenancy: self.tenancy.clone(),
            caller,
            shutdown: self.shutdown.clone(),
            ready: false,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            let next = state.next().await?;
            Some((Ok(next), state))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

struct WatchState {
    events: broadcast::Receiver<Event>,
    tenancy: Tenancy,
    caller: DirectoryCaller,
    shutdown: CancellationToken,
    ready: bool,
}

impl WatchState {
    /// The next invalidation for this watcher; `None` ends the stream.
    async fn next(&mut self) -> Option<Invalidation> {
        if !self.ready {
            self.ready = true;
            return Some(invalidation(Kind::Ready, None));
        }
        loop {
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                received = self.events.recv() => received,
            };
            let event = match received {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => Event::Resync,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let (kind, tenant) = match event {
                Event::BindingsChanged { tenant } | Event::TenantPurged { tenant } => {
                    (Kind::Bindings, Some(tenant))
                }
                Event::ConfigChanged {
                    tenant: Some(tenant),
                }
                | Event::TenantProvisioned { tenant, .. }
                | Event::TenantStatusChanged { tenant, .. } => (Kind::Tenant, Some(tenant)),
                Event::ConfigChanged { tenant: None } => (Kind::PlatformConfig, None),
                Event::Resync => (Kind::Resync, None),
                Event::Custom { .. } => continue,
            };
            if let Some(tenant) = tenant
                && !self.may_hear(tenant).await
            {
                continue;
            }
            return Some(invalidation(kind, tenant));
        }
    }

    /// Whether the watcher may hear of `tenant`: always without a tenant list; with one, only
    /// for a listed tenant that can still be read (a purged tenant's entry expires by TTL).
    async fn may_hear(&self, tenant: TenantId) -> bool {
        if self.caller.tenants.is_none() {
            return true;
        }
        match self.tenancy.tenant(tenant).await {
            Ok(record) => self.caller.may_read(&record.slug),
            Err(_) => false,
        }
    }
}

fn invalidation(kind: Kind, tenant: Option<TenantId>) -> Invalidation {
    Invalidation {
        kind: kind.into(),
        tenant_id: tenant.map(|t| t.to_string()).unwrap_or_default(),
    }
}
