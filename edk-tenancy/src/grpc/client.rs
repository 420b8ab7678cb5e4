//! [`RemoteTenantDirectory`]: the [`TenantDirectory`] trait over gRPC, with an in-process
//! cache that the platform's `Watch` stream invalidates.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use edk_core::{Clock, ErrorKind, SystemClock, TenantId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::DirectoryCredentials;
use super::convert::{
    bad_response, binding_from_proto, config_from_proto, error_from_status, tenant_from_proto,
};
use super::proto::invalidation::Kind;
use super::proto::tenant_directory_client::TenantDirectoryClient;
use super::proto::{GetTenantRequest, Invalidation, ListBindingsRequest, WatchRequest};
use crate::config::TenantConfig;
use crate::context::{Resolution, TenantContext};
use crate::endpoint::{EndpointBinding, EndpointRequest, RoutingTable, ServiceType};
use crate::error::{Error, ResolveError};
use crate::events::BackgroundTask;
use crate::tenancy::TenantDirectory;
use crate::tenant::Tenant;

/// Options of a [`RemoteTenantDirectory`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteDirectoryOptions {
    /// How long a cached route table or tenant is trusted: the bound on staleness when an
    /// invalidation is missed, and how long cached answers outlive a lost platform. Default
    /// 30 s.
    pub cache_ttl: Duration,
    /// The deadline of every call. Default 10 s.
    pub timeout: Duration,
    /// How long establishing the connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// The first wait before the `Watch` stream is opened again after it broke; doubled on
    /// every failed attempt. Default 200 ms.
    pub reconnect_min: Duration,
    /// The longest wait between reconnection attempts. Default 10 s.
    pub reconnect_max: Duration,
    /// The clock the cache ages on.
    pub clock: Arc<dyn Clock>,
}

impl Default for RemoteDirectoryOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The tenant directory of a runtime service in a split deployment: tenants, bindings and
/// configuration read from the platform's `edk.tenancy.v1.TenantDirectory` service.
///
/// What it reads is cached in process and dropped when the platform's `Watch` stream says
/// it changed, so a change made on the platform is seen at once; every entry also expires
/// after [`RemoteDirectoryOptions::cache_ttl`]. When the stream breaks, the background task
/// reopens it with exponential backoff and drops the whole cache once it is back (events
/// may have been missed). While the platform cannot be reached, cached entries keep being
/// served until their TTL; after that lookups fail with an `Unavailable` error
/// ([`Error::RemoteDirectory`]), never with another tenant's answer. Cheap to clone.
#[derive(Clone)]
pub struct RemoteTenantDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    client: TenantDirectoryClient<Channel>,
    credentials: Arc<dyn DirectoryCredentials>,
    options: RemoteDirectoryOptions,
    cache: Mutex<Cache>,
    contact: Mutex<Contact>,
}

/// When the platform last answered, and whether the `Watch` stream is open now.
#[derive(Debug, Default)]
struct Contact {
    /// The stream delivered `READY` and has not ended since.
    live: bool,
    /// The last answer (a call, a stream message, or the moment the stream ended).
    last: Option<SystemTime>,
}

impl fmt::Debug for RemoteTenantDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTenantDirectory")
            .field("credentials", &self.inner.credentials)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    generation: u64,
    routes: Option<(Arc<RoutingTable>, SystemTime)>,
    tenants: HashMap<TenantId, (Arc<Entry>, SystemTime)>,
}

#[derive(Debug)]
struct Entry {
    tenant: Arc<Tenant>,
    bindings: Vec<Arc<EndpointBinding>>,
    config: Arc<TenantConfig>,
}

impl RemoteTenantDirectory {
    /// A directory reading from the service at `endpoint` (`http://host:port`, or `https://`
    /// with `tls`), authenticated by `credentials`, and the background task that watches for
    /// invalidations (it stops when `cancel` fires or the task is shut down). The connection
    /// is made on first use: the platform need not be up yet.
    ///
    /// # Errors
    /// [`Error::RemoteDirectory`] for a malformed endpoint or an unusable TLS configuration.
    pub fn connect(
        endpoint: &str,
        tls: Option<ClientTlsConfig>,
        credentials: Arc<dyn DirectoryCredentials>,
        options: RemoteDirectoryOptions,
        cancel: &CancellationToken,
    ) -> Result<(Self, BackgroundTask), Error> {
        let invalid = |reason: &str| Error::RemoteDirectory {
            kind: ErrorKind::Internal,
            reason: format!("the directory endpoint `{endpoint}` {reason}"),
        };
        let mut channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|_| invalid("is not a URI"))?
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            channel = channel
                .tls_config(tls)
                .map_err(|_| invalid("has an unusable TLS configuration"))?;
        }
        let directory = Self {
            inner: Arc::new(Inner {
                client: TenantDirectoryClient::new(channel.connect_lazy()),
                credentials,
                options,
                cache: Mutex::new(Cache::default()),
                contact: Mutex::new(Contact::default()),
            }),
        };
        let cancel = cancel.child_token();
        let (connected_tx, connected_rx) = watch::channel(0_u64);
        let task = BackgroundTask::spawn(
            cancel.clone(),
            connected_rx,
            Arc::clone(&directory.inner).watch(cancel, connected_tx),
        );
        Ok((directory, task))
    }

    /// Whether the platform can be relied on: its `Watch` stream is open, or it answered
    /// within [`RemoteDirectoryOptions::cache_ttl`] (as long as cached answers are served
    /// without it). For readiness checks; it makes no call.
    ///
    /// # Errors
    /// [`Error::RemoteDirectory`] (kind `Unavailable`) when the platform has not answered
    /// for longer than the cache TTL, or never has.
    pub fn check_reachable(&self) -> Result<(), Error> {
        let contact = self.inner.contact();
        if contact.live {
            return Ok(());
        }
        match contact.last {
            Some(last) if self.inner.fresh(last) => Ok(()),
            Some(_) => Err(Error::RemoteDirectory {
                kind: ErrorKind::Unavailable,
                reason: "the platform's directory has not answered for longer than the cache TTL"
                    .to_owned(),
            }),
            None => Err(Error::RemoteDirectory {
                kind: ErrorKind::Unavailable,
                reason: "the platform's directory has not answered yet".to_owned(),
            }),
        }
    }

    async fn routes(&self) -> Result<Arc<RoutingTable>, Error> {
        let inner = &self.inner;
        let generation = {
            let cache = inner.lock();
            if let Some((routes, loaded_at)) = &cache.routes
                && inner.fresh(*loaded_at)
            {
                return Ok(Arc::clone(routes));
            }
            cache.generation
        };
        let loaded_at = inner.options.clock.now();
        let request = inner.request(ListBindingsRequest {}).await?;
        let response = inner
            .client
            .clone()
            .list_bindings(request)
            .await
            .map_err(|status| error_from_status(&status))?
            .into_inner();
        inner.answered();
        let table = Arc::new(RoutingTable::new(
            response
                .bindings
                .iter()
                .map(binding_from_proto)
                .collect::<Result<Vec<_>, _>>()?,
        ));
        let mut cache = inner.lock();
        if cache.generation == generation {
            cache.routes = Some((Arc::clone(&table), loaded_at));
        }
        Ok(table)
    }

    async fn entry(&self, tenant: TenantId) -> Result<Arc<Entry>, Error> {
        let inner = &self.inner;
        let generation = {
            let cache = inner.lock();
            if let Some((entry, loaded_at)) = cache.tenants.get(&tenant)
                && inner.fresh(*loaded_at)
            {
                return Ok(Arc::clone(entry));
            }
            cache.generation
        };
        let loaded_at = inner.options.clock.now();
        let request = inner
            .request(GetTenantRequest {
                tenant_id: tenant.to_string(),
            })
            .await?;
        let response = match inner.client.clone().get_tenant(request).await {
            Ok(response) => {
                inner.answered();
                response.into_inner()
            }
            // Outside this service's tenants: not a tenant it serves.
            Err(status) if status.code() == Code::PermissionDenied => {
                inner.answered();
                return Err(Error::TenantNotFound);
            }
            Err(status) => return Err(error_from_status(&status)),
        };
        let record = tenant_from_proto(
            response
                .tenant
                .as_ref()
                .ok_or_else(|| bad_response("tenant"))?,
        )?;
        if record.id != tenant {
            return Err(bad_response("tenant (another tenant's record)"));
        }
        let bindings = response
            .bindings
            .iter()
            .map(|binding| {
                let binding = binding_from_proto(binding)?;
                if binding.tenant() == tenant {
                    Ok(Arc::new(binding))
                } else {
                    Err(bad_response("binding (another tenant's)"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entry = Arc::new(Entry {
            tenant: Arc::new(record),
            bindings,
            config: Arc::new(config_from_proto(&response.config)?),
        });
        let mut cache = inner.lock();
        if cache.generation == generation {
            cache
                .tenants
                .insert(tenant, (Arc::clone(&entry), loaded_at));
        }
        Ok(entry)
    }

    fn serving(entry: &Entry) -> Result<(), Error> {
        if entry.tenant.status.is_serving() {
            Ok(())
        } else {
            Err(Error::TenantNotActive {
                tenant: entry.tenant.id,
            })
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contact(&self) -> std::sync::MutexGuard<'_, Contact> {
        self.contact.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an answer of the platform.
    fn answered(&self) {
        self.contact().last = Some(self.options.clock.now());
    }

    /// Records whether the `Watch` stream is open; its end counts as the last answer.
    fn set_live(&self, live: bool) {
        let mut contact = self.contact();
        contact.live = live;
        contact.last = Some(self.options.clock.now());
    }

    fn fresh(&self, loaded_at: SystemTime) -> bool {
        matches!(
            self.options.clock.now().duration_since(loaded_at),
            Ok(age) if age < self.options.cache_ttl
        )
    }

    async fn request<T>(&self, message: T) -> Result<Request<T>, Error> {
        let token = self.credentials.token().await?;
        let mut request = Request::new(message);
        let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            Error::RemoteDirectory {
                kind: ErrorKind::Internal,
                reason: "the service token is not a valid header value".to_owned(),
            }
        })?;
        request.metadata_mut().insert("authorization", value);
        super::trace::inject_current(request.metadata_mut());
        Ok(request)
    }

    fn invalidate(&self, invalidation: &Invalidation) {
        let tenant = invalidation.tenant_id.parse::<TenantId>().ok();
        let mut cache = self.lock();
        cache.generation = cache.generation.wrapping_add(1);
        match (invalidation.kind(), tenant) {
            (Kind::Tenant, Some(tenant)) => {
                cache.tenants.remove(&tenant);
            }
            (Kind::Bindings, Some(tenant)) => {
                cache.tenants.remove(&tenant);
                cache.routes = None;
            }
            (Kind::PlatformConfig, _) => cache.tenants.clear(),
            // RESYNC, READY (events before it were not heard) and anything unknown.
            _ => {
                cache.tenants.clear();
                cache.routes = None;
            }
        }
    }

    /// Keeps a `Watch` stream open, applying its invalidations, until `cancel` fires.
    async fn watch(self: Arc<Self>, cancel: CancellationToken, connected: watch::Sender<u64>) {
        let mut backoff = self.options.reconnect_min;
        loop {
            let outcome = self.watch_once(&cancel, &connected).await;
            if self.contact().live {
                self.set_live(false);
            }
            match outcome {
                Ok(true) => backoff = self.options.reconnect_min,
                Ok(false) => {}
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "tenant directory watch failed; reconnecting");
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.options.reconnect_max);
        }
    }

    /// One stream: `Ok(true)` when it was live (READY received) before it ended.
    async fn watch_once(
        &self,
        cancel: &CancellationToken,
        connected: &watch::Sender<u64>,
    ) -> Result<bool, Status> {
        let request = self
            .request(WatchRequest {})
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let mut client = self.client.clone();
        let opened = tokio::select! {
            () = cancel.cancelled() => return Ok(false),
            opened = client.watch(request) => opened,
        };
        let mut stream = opened?.into_inner();
        let mut live = false;
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return Ok(live),
                message = stream.message() => message,
            };
            match message {
                Ok(Some(invalidation)) => {
                    self.invalidate(&invalidation);
                    if invalidation.kind() == Kind::Ready {
                        live = true;
                        self.set_live(true);
                        connected.send_modify(|count| *count += 1);
                        tracing::info!("tenant directory watch connected");
                    }
                }
                Ok(None) => {
                    tracing::warn!("tenant directory watch ended; reconnecting");
                    return Ok(live);
                }
                Err(status) if live => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "tenant directory watch broke; reconnecting");
                    return Ok(true);
                }
                Err(status) => return Err(status),
            }
        }
    }
}

#[async_trait]
impl TenantDirectory for RemoteTenantDirectory {
    async fn resolve(
        &self,
        service: ServiceType,
        request: &EndpointRequest,
    ) -> Result<Resolution, ResolveError> {
        let routes = self.routes().await?;
        let matched = routes.lookup(service, request)?;
        let entry = match self.entry(matched.binding.tenant()).await {
            Ok(entry) => entry,
            Err(Error::TenantNotFound) => return Err(ResolveError::NotBound),
            Err(err) => return Err(err.into()),
        };
        Self::serving(&entry).map_err(|_| ResolveError::NotServing)?;
        // The route must still be one of the tenant's bindings: a route table older than the
        // tenant's entry is dropped rather than trusted.
        let Some(binding) = entry
            .bindings
            .iter()
            .find(|b| b.as_ref() == matched.binding.as_ref())
            .cloned()
        else {
            self.inner.lock().routes = None;
            return Err(ResolveError::NotBound);
        };
        Ok(Resolution {
            context: TenantContext::new(
                Arc::clone(&entry.tenant),
                Some(binding),
                Arc::clone(&entry.config),
            ),
            path: matched.path,
        })
    }

    async fn context(&self, tenant: TenantId) -> Result<TenantContext, Error> {
        let entry = self.entry(tenant).await?;
        Self::serving(&entry)?;
        Ok(TenantContext::new(
            Arc::clone(&entry.tenant),
            None,
            Arc::clone(&entry.config),
        ))
    }

    async fn context_for_service(
        &self,
        tenant: TenantId,
        service: ServiceType,
    ) -> Result<TenantContext, Error> {
        let entry = self.entry(tenant).await?;
        Self::serving(&entry)?;
        let binding = entry
            .bindings
            .iter()
            .find(|b| b.service() == service)
            .ok_or(Error::NoBinding { service })?;
        Ok(TenantContext::new(
            Arc::clone(&entry.tenant),
            Some(Arc::clone(binding)),
            Arc::clone(&entry.config),
        ))
    }
}
