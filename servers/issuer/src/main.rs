//! `edk-issuer`: the tenant credential issuer (OpenID4VCI).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_issuer_server::IssuerServer>().await
}
