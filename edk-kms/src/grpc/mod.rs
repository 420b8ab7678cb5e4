//! The KMS gRPC contract `edk.kms.v1.KeyManagement` (feature `grpc`): the service adapter
//! [`KmsGrpcService`] over any [`Kms`](crate::Kms), service authentication ([`ServiceAuth`]:
//! short-lived service JWTs or mTLS) and [`RemoteKms`], the `Kms` trait over gRPC.
//!
//! The `.proto` file is `edk-kms/proto/edk/kms/v1/kms.proto`; the stubs are generated at build
//! time with protox (no system `protoc`) and live in [`proto`].
//!
//! Errors cross the wire as status codes by [`ErrorKind`](edk_core::ErrorKind): `NotFound` is
//! `NOT_FOUND`, `InvalidInput` `INVALID_ARGUMENT`, `Conflict` `ALREADY_EXISTS`,
//! `Unauthenticated` `UNAUTHENTICATED`, `Forbidden` `PERMISSION_DENIED`, `Unsupported`
//! `UNIMPLEMENTED`, `Unavailable` `UNAVAILABLE` and `Internal` `INTERNAL` with a generic
//! message; `RemoteKms` maps them back, so its errors have the kinds the server's had.

pub mod auth;
pub mod client;
mod convert;
pub mod server;

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

pub use auth::{
    MtlsAuth, ServiceAuth, ServiceJwtAuth, ServiceTokenSource, SignerSource, TrustedServices,
};
pub use client::{ClientAuth, RemoteKms, RemoteKmsOptions, RemoteServiceIdentity};
pub use edk_tenancy::grpc::trace;
pub use server::{AuditReaders, KmsGrpcService};

/// The generated messages, client and server of `edk.kms.v1`.
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
    tonic::include_proto!("edk.kms.v1");
}

/// Serves `service` (from [`KmsGrpcService::new`]) on `listener` until `shutdown` completes,
/// with TLS when `tls` is given (use [`auth::server_tls_config`] for mTLS). Each call runs in
/// a [`trace::server_span`], the child of the caller's W3C trace context.
///
/// # Errors
/// A transport error when the TLS configuration is unusable or the server fails.
pub async fn serve(
    listener: TcpListener,
    service: proto::key_management_server::KeyManagementServer<KmsGrpcService>,
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
