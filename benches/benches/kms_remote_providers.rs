//! Remote key providers against the local test servers, so that the figure is EDK's overhead
//! (HTTP client, retries and breaker bookkeeping, local verification of every signature), not
//! a cloud's: ES256 signatures per second at 1 and 16 concurrent callers for the software
//! provider, Vault Transit, Azure Key Vault and a CSC API v2 service (testkit servers in
//! process; a CSC signature is two calls, `credentials/authorize` then `signatures/signHash`)
//! and AWS KMS (moto in server mode, a Python process: its figure is mostly moto's).
//!
//! Run with: cargo bench -p edk-benches --bench kms_remote_providers
//! (AWS needs the interop virtualenv: scripts/test --setup-only.)
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edk_core::TenantId;
use edk_core::jose::{Algorithm, Signer};
use edk_kms::provider::aws::{
    AwsCredentialsConfig, AwsKmsProvider, AwsKmsProviderConfig, MessageMode,
};
use edk_kms::provider::azure::{
    AzureCredentialsConfig, AzureKeyVaultProvider, AzureKeyVaultProviderConfig,
};
use edk_kms::provider::csc::{CscProvider, CscProviderConfig};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::vault::{VaultAuthConfig, VaultTransitProvider, VaultTransitProviderConfig};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_testkit::azure_key_vault::AzureKeyVaultServer;
use edk_testkit::csc::{CscKey, CscServer};
use edk_testkit::moto::MotoServer;
use edk_testkit::vault_transit::{ROOT_TOKEN, VaultTransitServer};
use secrecy::SecretString;
use tokio::runtime::Runtime;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIn0";

async fn signer_of(provider: &dyn KeyProvider) -> Arc<dyn Signer> {
    let tenant = TenantId::generate();
    let key = provider
        .generate(&tenant, &KeySpec::signing(Algorithm::Es256))
        .await
        .unwrap();
    provider.signer(&tenant, key.handle()).await.unwrap()
}

fn throughput(c: &mut Criterion, runtime: &Runtime, name: &str, signer: &Arc<dyn Signer>) {
    let mut group = c.benchmark_group(format!("kms/{name}/ES256"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    for callers in [1_u64, 16] {
        group.bench_function(format!("{callers} concurrent callers"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let per_caller = iters.div_ceil(callers);
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..callers {
                        let signer = Arc::clone(signer);
                        tasks.spawn(async move {
                            for _ in 0..per_caller {
                                signer.sign(MESSAGE).await.unwrap();
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap();
                    }
                    // Per signature, scaled to the `iters` criterion asked for.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_caller * callers) as f64)
                })
            });
        });
    }
    group.finish();
}

fn providers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    edk_server::install_crypto_provider();

    let kek = KekConfig::key(KekId::new("k1").unwrap(), generate_kek().unwrap()).unwrap();
    let software = SoftwareProvider::new(SoftwareProviderConfig::new(
        ProviderId::new("software").unwrap(),
        kek,
    ))
    .unwrap();
    let signer = runtime.block_on(signer_of(&software));
    throughput(c, &runtime, "software", &signer);

    let vault_server = runtime.block_on(VaultTransitServer::start());
    let vault = VaultTransitProvider::new(VaultTransitProviderConfig::new(
        ProviderId::new("vault").unwrap(),
        vault_server.address(),
        VaultAuthConfig::Token {
            token: Some(SecretString::from(ROOT_TOKEN)),
            token_file: None,
        },
    ))
    .unwrap();
    let signer = runtime.block_on(signer_of(&vault));
    throughput(c, &runtime, "vault-transit-testkit", &signer);

    let azure_server = runtime.block_on(AzureKeyVaultServer::start());
    azure_server.add_client("edk", "secret");
    let mut azure_config = AzureKeyVaultProviderConfig::new(
        ProviderId::new("azure").unwrap(),
        azure_server.url(),
        AzureCredentialsConfig::ClientSecret {
            tenant_id: "contoso".to_owned(),
            client_id: "edk".to_owned(),
            client_secret: Some(SecretString::from("secret")),
            client_secret_file: None,
            authority_host: Some(azure_server.url()),
        },
    );
    // The test server is reached by IP address, with a certificate of its own CA.
    azure_config.verify_challenge_resource = false;
    let azure = AzureKeyVaultProvider::with_client(azure_config, azure_server.client()).unwrap();
    let signer = runtime.block_on(signer_of(&azure));
    throughput(c, &runtime, "azure-key-vault-testkit", &signer);

    let csc_server = runtime.block_on(CscServer::start());
    csc_server.add_client("edk", "secret");
    let credential = csc_server.add_credential("bench", CscKey::P256);
    let tenant = TenantId::generate();
    let csc = CscProvider::new(
        CscProviderConfig::new(
            ProviderId::new("csc").unwrap(),
            csc_server.url(),
            "edk",
            SecretString::from("secret"),
        )
        .with_user(tenant, "bench"),
    )
    .unwrap();
    let signer = runtime.block_on(async {
        let key = csc
            .register(&tenant, &KeySpec::signing(Algorithm::Es256), &credential)
            .await
            .unwrap();
        csc.signer(&tenant, key.handle()).await.unwrap()
    });
    throughput(c, &runtime, "csc-testkit", &signer);

    let moto = runtime.block_on(MotoServer::start());
    let mut config = AwsKmsProviderConfig::new(ProviderId::new("aws").unwrap(), "eu-west-1");
    config.endpoint = Some(moto.endpoint());
    config.message_type = MessageMode::Raw;
    config.credentials = AwsCredentialsConfig::Static {
        access_key_id: "testing".to_owned(),
        secret_access_key: Some(SecretString::from("testing")),
        secret_access_key_file: None,
        session_token: None,
    };
    let aws = runtime.block_on(AwsKmsProvider::connect(config)).unwrap();
    let signer = runtime.block_on(signer_of(&aws));
    throughput(c, &runtime, "aws-kms-moto", &signer);
}

criterion_group!(benches, providers);
criterion_main!(benches);
