//! The tenant directory over gRPC (feature `grpc`): the contract `edk.tenancy.v1.TenantDirectory`,
//! the service adapter [`DirectoryGrpcService`] that the platform serves over its [`Tenancy`],
//! and [`RemoteTenantDirectory`], the [`TenantDirectory`](crate::TenantDirectory) of runtime
//! services that never read the platform database.
//!
//! The `.proto` file is `edk-tenancy/proto/edk/tenancy/v1/directory.proto`; the stubs are
//! generated at build time with protox (no system `protoc`) and live in [`proto`].
//!
//! Authentication is pluggable on both ends: the server asks a [`DirectoryAuth`] who the caller
//! is (a service, possibly limited to a list of tenants), the client asks a
//! [`DirectoryCredentials`] for the bearer token of each call. The EDK servers plug in the
//! short-lived service JWTs of the KMS gRPC contract (`edk-server`'s `directory` module).
//!
//! [`Tenancy`]: crate::Tenancy

pub mod client;
mod convert;
pub mod server;
pub mod trace;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::TenantSlug;
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

pub use client::{RemoteDirectoryOptions, RemoteTenantDirectory};
pub use server::DirectoryGrpcService;

/// The generated messages, client and server of `edk.tenancy.v1`.
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    clippy::use_self,
    clippy::str_to_string,
    clippy::uninlined_format_args
)]
pub mod proto {
    tonic::include_proto!("edk.tenancy.v1");
}

/// An authenticated caller of the directory service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryCaller {
    /// The calling service's name.
    pub service: String,
    /// The tenants (by slug) it may read; `None` for every tenant.
    pub tenants: Option<Arc<BTreeSet<TenantSlug>>>,
}

impl DirectoryCaller {
    /// `service`, limited to `tenants` when given.
    #[must_use]
    pub fn new(service: impl Into<String>, tenants: Option<Arc<BTreeSet<TenantSlug>>>) -> Self {
        Self {
            service: service.into(),
            tenants,
        }
    }

    /// Whether the caller may read the tenant `slug`.
    #[must_use]
    pub fn may_read(&self, slug: &TenantSlug) -> bool {
        self.tenants
            .as_ref()
            .is_none_or(|tenants| tenants.contains(slug))
    }
}

/// Decides who calls the directory service, from the call's metadata.
#[async_trait]
pub trait DirectoryAuth: fmt::Debug + Send + Sync {
    /// The caller of a call with `metadata`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` (or `PERMISSION_DENIED`) with a message naming the failed check.
    async fn authenticate(&self, metadata: &MetadataMap) -> Result<DirectoryCaller, tonic::Status>;
}

/// Hands [`RemoteTenantDirectory`] the bearer token of its next call.
#[async_trait]
pub trait DirectoryCredentials: fmt::Debug + Send + Sync {
    /// A token for the directory service, reused while it is fresh.
    ///
    /// # Errors
    /// [`Error::RemoteDirectory`](crate::Error::RemoteDirectory) when no token can be made.
    async fn token(&self) -> Result<Arc<str>, crate::Error>;
}

/// Serves `service` on `listener` until `shutdown` completes, with TLS when `tls` is given.
/// Cancel the service's own token ([`DirectoryGrpcService::with_shutdown`]) with `shutdown`,
/// or open `Watch` streams keep the server from stopping. Each call runs in a
/// [`trace::server_span`], the child of the caller's W3C trace context.
///
/// # Errors
/// A transport error when the TLS configuration is unusable or the server fails.
pub async fn serve(
    listener: TcpListener,
    service: proto::tenant_directory_server::TenantDirectoryServer<DirectoryGrpcService>,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let mut server = Server::builder().trace_fn(trace::server_span);
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .tcp_nodelay(true)
        .add_service(service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
