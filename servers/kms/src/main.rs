//! `edk-kms`: the EDK KMS server: the key management REST API, health, metrics and OpenAPI,
//! and the gRPC service when `grpc` is configured.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_kms_server::KmsServer>().await
}
