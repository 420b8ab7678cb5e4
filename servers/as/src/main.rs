//! `edk-as`: the tenant authorization server.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_as_server::AsServer>().await
}
