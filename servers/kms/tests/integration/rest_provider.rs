use edk_core::jose::Algorithm;
use edk_core::{ErrorKind, TenantId};
use edk_kms::provider::rest::{RestProvider, RestProviderConfig};
use edk_kms::provider::{KeyProvider, KeySpec};
use edk_kms::testkit::{expect_kind, provider_suite};

use crate::support::{Backend, Harness};

fn config(base_url: String, token: String) -> RestProviderConfig {
    RestProviderConfig {
        id: "remote".parse().unwrap(),
        base_url,
        remote_provider: "software".parse().unwrap(),
        token: token.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_provider_passes_the_provider_suite_against_a_live_server() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let provider = RestProvider::connect(config(h.url(""), token), h.client.clone())
        .await
        .unwrap();
    assert!(
        provider
            .capabilities()
            .signing()
            .contains(&Algorithm::Es256)
    );
    provider_suite(&provider).await;
    h.stop().await;
}

#[tokio::test]
async fn an_unreachable_or_refusing_remote_is_unavailable() {
    let h = Harness::start(Backend::Sqlite).await;
    let refused = RestProvider::connect(
        config(h.url(""), "not-a-token".to_owned()),
        h.client.clone(),
    )
    .await;
    expect_kind(refused, ErrorKind::Unavailable, "a refused token");
    let token = h.token().await;
    let provider = RestProvider::connect(config(h.url(""), token), h.client.clone())
        .await
        .unwrap();
    let url = h.url("");
    h.stop().await;
    let result = provider
        .generate(&TenantId::generate(), &KeySpec::signing(Algorithm::Es256))
        .await;
    expect_kind(result, ErrorKind::Unavailable, &format!("{url} is down"));
}
