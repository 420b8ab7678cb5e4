//! Domain events: in-process fan-out, and PostgreSQL LISTEN/NOTIFY across replicas.
//!
//! Events carry references (tenant ids, topics), never the data itself: a receiver reads the
//! current state from the database. A notification whose JSON would not fit a `NOTIFY`
//! payload is written to `platform_event` and the notification carries only the row id.
//!
//! Every delivery has an [`EventId`]; an event written to the outbox
//! ([`crate::outbox`]) keeps its id however often the relay publishes it, so a subscriber of
//! [`EventBus::subscribe_deliveries`] can drop a repeat.

use std::fmt;

use async_trait::async_trait;
use edk_core::{TenantId, TenantSlug};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Error;
use crate::tenant::TenantStatus;

/// Something that happened to a tenant or to the platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A tenant's endpoint bindings changed.
    BindingsChanged {
        /// The tenant.
        tenant: TenantId,
    },
    /// Configuration properties changed: one tenant's, or the platform's (`None`).
    ConfigChanged {
        /// The tenant, or `None` for platform values.
        tenant: Option<TenantId>,
    },
    /// An event of another crate.
    Custom {
        /// The topic, e.g. `kms.key_rotated`.
        topic: String,
        /// A small JSON reference to what changed.
        payload: Value,
    },
    /// Events may have been missed (a lost connection, a slow subscriber): drop everything
    /// cached and read it again.
    Resync,
    /// A deleted tenant's data was removed for good.
    TenantPurged {
        /// The tenant.
        tenant: TenantId,
    },
    /// A tenant was provisioned; other crates provision their defaults (key aliases, ...).
    TenantProvisioned {
        /// The tenant.
        tenant: TenantId,
        /// Its slug.
        slug: TenantSlug,
    },
    /// A tenant was suspended, resumed or deleted.
    TenantStatusChanged {
        /// The tenant.
        tenant: TenantId,
        /// The new status.
        status: TenantStatus,
    },
}

impl Event {
    /// The tenant the event is about, if it names one: the key that orders the outbox's
    /// deliveries.
    #[must_use]
    pub const fn tenant(&self) -> Option<TenantId> {
        match self {
            Self::BindingsChanged { tenant }
            | Self::TenantPurged { tenant }
            | Self::TenantProvisioned { tenant, .. }
            | Self::TenantStatusChanged { tenant, .. } => Some(*tenant),
            Self::ConfigChanged { tenant } => *tenant,
            Self::Custom { .. } | Self::Resync => None,
        }
    }
}

/// The identity of one event: the same at every delivery of it, so that subscribers can
/// drop repeats (the outbox delivers at least once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A new, unique id.
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id from its UUID.
    #[must_use]
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One delivery of an event, with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The event's id: a repeat of an event carries the same one.
    pub id: EventId,
    /// The event.
    pub event: Event,
}

/// Publishes events and hands out subscriptions.
#[async_trait]
pub trait EventBus: fmt::Debug + Send + Sync {
    /// Delivers `event` to every subscriber, in this process and (for a shared bus) in every
    /// replica, at once and at most once. A change made in a database transaction appends its
    /// event to the outbox instead ([`crate::outbox`]), which is not lost when the process
    /// stops after the commit.
    ///
    /// # Errors
    /// [`Error::Events`] or [`Error::Database`] when it could not be sent to the replicas;
    /// subscribers in this process have it already.
    async fn publish(&self, event: Event) -> Result<(), Error>;

    /// A new subscription. A subscriber that falls behind gets
    /// [`broadcast::error::RecvError::Lagged`] and should treat it as [`Event::Resync`].
    fn subscribe(&self) -> broadcast::Receiver<Event>;

    /// A new subscription to the deliveries, each with its event's id. Events are delivered
    /// at least once: a subscriber that must act once per event remembers the ids it saw.
    fn subscribe_deliveries(&self) -> broadcast::Receiver<Delivery>;

    /// This bus's identity among the replicas: the origin recorded with the outbox events
    /// appended through it.
    fn origin(&self) -> Uuid;

    /// Delivers to the subscribers of this process only (an outbox event, right after its
    /// transaction committed).
    fn deliver_local(&self, delivery: Delivery);

    /// Publishes an outbox event appended by the bus `origin` to every subscriber outside
    /// that process (which had it at commit): the relay's half of the delivery.
    ///
    /// # Errors
    /// [`Error::Events`] or [`Error::Database`] when it could not be sent; the relay tries
    /// again.
    async fn relay(&self, origin: Uuid, delivery: Delivery) -> Result<(), Error>;
}

const CHANNEL_CAPACITY: usize = 1024;

/// Fan-out to the subscribers of this process.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Event>,
    deliveries: broadcast::Sender<Delivery>,
    origin: Uuid,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
            deliveries: broadcast::channel(CHANNEL_CAPACITY).0,
            origin: Uuid::new_v4(),
        }
    }

    fn deliver(&self, delivery: Delivery) {
        // No subscriber is not an error.
        let _ = self.sender.send(delivery.event.clone());
        let _ = self.deliveries.send(delivery);
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: Event) -> Result<(), Error> {
        self.deliver(Delivery {
            id: EventId::generate(),
            event,
        });
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    fn subscribe_deliveries(&self) -> broadcast::Receiver<Delivery> {
        self.deliveries.subscribe()
    }

    fn origin(&self) -> Uuid {
        self.origin
    }

    fn deliver_local(&self, delivery: Delivery) {
        self.deliver(delivery);
    }

    async fn relay(&self, origin: Uuid, delivery: Delivery) -> Result<(), Error> {
        if origin != self.origin {
            self.deliver(delivery);
        }
        Ok(())
    }
}

/// Background work (the LISTEN loop, cache invalidation) owned by the caller: it stops when
/// [`BackgroundTask::shutdown`] is awaited, when the token it was started with is cancelled,
/// or when the handle is dropped.
#[derive(Debug)]
pub struct BackgroundTask {
    cancel: CancellationToken,
    handle: Option<JoinHandle<()>>,
    connected: watch::Receiver<u64>,
}

impl BackgroundTask {
    pub(crate) fn spawn<F>(
        cancel: CancellationToken,
        connected: watch::Receiver<u64>,
        work: F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self {
            handle: Some(tokio::spawn(work)),
            cancel,
            connected,
        }
    }

    /// How many times the listener has (re)connected and subscribed; 0 until it first has.
    /// Always 1 on a bus without a database listener.
    #[must_use]
    pub fn connections(&self) -> u64 {
        *self.connected.borrow()
    }

    /// Waits until the listener has subscribed more than `after` times: `0` waits for the
    /// first subscription, a value read before a disruption waits for the reconnection.
    pub async fn wait_connected(&mut self, after: u64) {
        // An error means the task ended; there is nothing more to wait for.
        let _ = self.connected.wait_for(|count| *count > after).await;
    }

    /// Stops the work and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(handle) = self.handle.take()
            && let Err(err) = handle.await
        {
            tracing::warn!(error = %err, "background task ended abnormally");
        }
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(feature = "postgres")]
pub use self::postgres::PgEventBus;

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use edk_core::{Clock, ErrorChain};
    use sqlx::postgres::{PgListener, PgNotification, PgPool, PgPoolOptions};

    use super::*;
    use crate::store::postgres::{PLATFORM_SCHEMA, PostgresConfig, connect_options};

    /// The `NOTIFY` channel.
    const CHANNEL: &str = "edk_events";
    /// Payloads above this many bytes go through `platform_event` (PostgreSQL's limit is 8000).
    const INLINE_MAX: usize = 7000;
    /// The `application_name` of the listener's connection.
    pub(crate) const LISTENER_APPLICATION: &str = "edk-events";

    #[derive(Serialize, Deserialize)]
    struct Envelope {
        origin: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<EventId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Event>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<i64>,
    }

    /// Events shared by every replica through the platform database: delivered in this
    /// process at once, and to the others by `NOTIFY`, which the listener started by [`crate::Tenancy::start`]
    /// turns back into local deliveries.
    #[derive(Debug, Clone)]
    pub struct PgEventBus {
        local: InProcessBus,
        pool: PgPool,
        listener_pool: PgPool,
        origin: Uuid,
        clock: Arc<dyn Clock>,
    }

    impl PgEventBus {
        /// A bus on the platform database of `config`; `pool` is a platform pool.
        ///
        /// # Errors
        /// [`Error::InvalidDatabaseConfig`] when the URL does not parse.
        pub fn new(
            config: &PostgresConfig,
            pool: PgPool,
            clock: Arc<dyn Clock>,
        ) -> Result<Self, Error> {
            let options = connect_options(&config.platform_url)?
                .application_name(LISTENER_APPLICATION)
                .options([("search_path", PLATFORM_SCHEMA)]);
            let listener_pool = PgPoolOptions::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_lazy_with(options);
            Ok(Self {
                local: InProcessBus::new(),
                pool,
                listener_pool,
                origin: Uuid::new_v4(),
                clock,
            })
        }

        /// Deletes stored payloads written before `before`.
        ///
        /// # Errors
        /// [`Error::Database`].
        pub async fn purge_payloads(&self, before: DateTime<Utc>) -> Result<u64, Error> {
            let done = sqlx::query("DELETE FROM platform_event WHERE created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        }

        /// Listens for other replicas' events until `cancel` fires, reconnecting with backoff
        /// after a lost connection (a database restart) and then publishing
        /// [`Event::Resync`] locally. `connected` counts successful subscriptions.
        pub(crate) async fn run_listener(
            &self,
            cancel: CancellationToken,
            connected: watch::Sender<u64>,
        ) {
            let mut backoff = Duration::from_millis(50);
            while !cancel.is_cancelled() {
                let mut listener = match self.subscribe_remote().await {
                    Ok(listener) => listener,
                    Err(err) => {
                        tracing::warn!(error = %ErrorChain(&err), retry_in = ?backoff, "event listener cannot connect");
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(50);
                connected.send_modify(|count| *count += 1);
                // Whatever happened while we were not listening is unknown.
                self.local.deliver(Delivery {
                    id: EventId::generate(),
                    event: Event::Resync,
                });
                tracing::info!("event listener subscribed");
                loop {
                    let received = tokio::select! {
                        () = cancel.cancelled() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        Ok(Some(notification)) => self.handle(&notification).await,
                        Ok(None) => {
                            tracing::warn!("event listener lost its connection; reconnecting");
                            break;
                        }
                        Err(err) => {
                            tracing::warn!(error = %ErrorChain(&err), "event listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
        }

        async fn subscribe_remote(&self) -> Result<PgListener, sqlx::Error> {
            let mut listener = PgListener::connect_with(&self.listener_pool).await?;
            listener.ignore_pool_close_event(true);
            listener.listen(CHANNEL).await?;
            Ok(listener)
        }

        async fn handle(&self, notification: &PgNotification) {
            let envelope: Envelope = match serde_json::from_str(notification.payload()) {
                Ok(envelope) => envelope,
                Err(err) => {
                    tracing::warn!(error = %err, "ignoring a malformed event notification");
                    return;
                }
            };
            if envelope.origin == self.origin {
                return;
            }
            let event = match (envelope.event, envelope.reference) {
                (Some(event), _) => event,
                (None, Some(id)) => match self.read_payload(id).await {
                    Ok(event) => event,
                    Err(err) => {
                        tracing::warn!(error = %ErrorChain(&err), id, "cannot read a stored event; resyncing");
                        Event::Resync
                    }
                },
                (None, None) => return,
            };
            self.local.deliver(Delivery {
                id: envelope.id.unwrap_or_else(EventId::generate),
                event,
            });
        }

        async fn read_payload(&self, id: i64) -> Result<Event, Error> {
            let (payload,): (sqlx::types::Json<Event>,) =
                sqlx::query_as("SELECT payload FROM platform_event WHERE id = $1")
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(payload.0)
        }

        async fn notify(&self, origin: Uuid, delivery: &Delivery) -> Result<(), Error> {
            let event = &delivery.event;
            let encode = |envelope: &Envelope| {
                serde_json::to_string(envelope)
                    .map_err(|err| Error::events("cannot encode an event", err))
            };
            let mut payload = encode(&Envelope {
                origin,
                id: Some(delivery.id),
                event: Some(event.clone()),
                reference: None,
            })?;
            if payload.len() > INLINE_MAX {
                let at: DateTime<Utc> = self.clock.now().into();
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO platform_event (payload, created_at) VALUES ($1, $2) RETURNING id",
                )
                .bind(sqlx::types::Json(event))
                .bind(at)
                .fetch_one(&self.pool)
                .await?;
                payload = encode(&Envelope {
                    origin,
                    id: Some(delivery.id),
                    event: None,
                    reference: Some(id),
                })?;
            }
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    }

    #[async_trait]
    impl EventBus for PgEventBus {
        async fn publish(&self, event: Event) -> Result<(), Error> {
            let delivery = Delivery {
                id: EventId::generate(),
                event,
            };
            self.local.deliver(delivery.clone());
            self.notify(self.origin, &delivery).await
        }

        fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.local.subscribe()
        }

        fn subscribe_deliveries(&self) -> broadcast::Receiver<Delivery> {
            self.local.subscribe_deliveries()
        }

        fn origin(&self) -> Uuid {
            self.origin
        }

        fn deliver_local(&self, delivery: Delivery) {
            self.local.deliver(delivery);
        }

        async fn relay(&self, origin: Uuid, delivery: Delivery) -> Result<(), Error> {
            // Every replica's listener, this one's included, delivers it unless it is the
            // origin's.
            self.notify(origin, &delivery).await
        }
    }
}
