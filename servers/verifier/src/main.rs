//! `edk-verifier`: the tenant verifier (OpenID4VP).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_verifier_server::VerifierServer>().await
}
