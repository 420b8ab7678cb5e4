//! `edk-did`: per-tenant did:web and did:webvh publishing, a Universal Resolver and a
//! registrar.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_did_server::DidService>().await
}
