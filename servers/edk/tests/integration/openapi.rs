use std::path::PathBuf;
use std::sync::Arc;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::FixedClock;
use edk_server::HealthApi;

/// The default `edk` on a temporary data directory (kept while the directory lives).
async fn start() -> (tempfile::TempDir, Edk) {
    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(dir.path()).unwrap();
    let client = reqwest::Client::builder().build().unwrap();
    let edk = Edk::start(
        &EdkConfig::default(),
        &data,
        Arc::new(FixedClock::at_unix(1_700_000_000)),
        &client,
    )
    .await
    .unwrap();
    (dir, edk)
}

/// The committed OpenAPI document is the reviewed contract: a change to the API must update
/// it (`EDK_UPDATE_SNAPSHOTS=1 cargo test -p edk`).
#[tokio::test]
async fn openapi_matches_the_committed_snapshot() {
    let (_dir, edk) = start().await;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let actual = format!(
        "{}\n",
        edk::openapi_service(
            edk.kms().tenancy(),
            edk.kms().state(),
            edk.oauth(),
            edk.did(),
            edk.issuer(),
            edk.verifier(),
            edk.platform_api(),
            HealthApi::new()
        )
        .spec()
    );
    edk.shutdown().await;
    if std::env::var_os("EDK_UPDATE_SNAPSHOTS").is_some_and(|value| value == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "servers/edk/openapi.json is out of date; rerun with EDK_UPDATE_SNAPSHOTS=1 and review the diff"
    );
}

/// Every tenant setting the bundled services read is known to the tenancy, so operators can
/// set it; unknown keys and values of the wrong shape are refused.
#[tokio::test]
async fn the_settings_of_every_bundled_service_can_be_set_per_tenant() {
    let (_dir, edk) = start().await;
    let tenancy = edk.kms().tenancy();
    for (key, value) in [
        ("oid4vci.session_retention", serde_json::json!("remove")),
        ("did.methods", serde_json::json!(["jwk", "key"])),
        ("oauth.upstream_oidc", serde_json::json!(null)),
    ] {
        if let Err(err) = tenancy.set_config(None, key, value, None).await {
            panic!("{key}: {err}");
        }
    }
    assert!(
        tenancy
            .set_config(
                None,
                "oid4vci.session_retention",
                serde_json::json!("forever"),
                None
            )
            .await
            .is_err()
    );
    assert!(
        tenancy
            .set_config(None, "oid4vci.no_such_setting", serde_json::json!(1), None)
            .await
            .is_err()
    );
    edk.shutdown().await;
}
