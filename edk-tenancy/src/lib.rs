#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("edk-tenancy needs at least one backend: enable `postgres` or `sqlite`");

pub mod config;
pub mod context;
pub mod endpoint;
pub mod error;
pub mod events;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod migrate;
pub mod outbox;
pub mod scheduler;
pub mod store;
pub mod tenancy;
pub mod tenant;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{ConfigKey, ConfigSchema, TenantConfig};
pub use context::{Resolution, TenantContext};
pub use endpoint::{
    EndpointBinding, EndpointRequest, EndpointScheme, RoutedPath, ServiceType, WellKnownLayout,
};
pub use error::{Error, ResolveError};
pub use events::{BackgroundTask, Delivery, Event, EventBus, EventId};
pub use migrate::{MigrationScope, MigrationSet};
pub use outbox::{OutboxRelay, RelayOptions, RelayReport};
pub use scheduler::{
    Job, JobError, JobObserver, JobScope, JobTarget, PurgeDeletedTenants, PurgeEventPayloads,
    Scheduler, SchedulerBuilder, TickReport,
};
pub use store::{BackendTx, PlatformTx, PoolStats, TenantDatabases, TenantTx};
pub use tenancy::{
    DatabaseConfig, PlatformPool, Tenancy, TenancyBuilder, TenancyOptions, TenantDirectory,
};
pub use tenant::{Tenant, TenantStatus};
