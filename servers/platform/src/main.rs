//! `edk-platform`: the platform server (first-run setup, operators, tenant onboarding).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edk_server::service::main::<edk_platform_server::PlatformServer>().await
}
