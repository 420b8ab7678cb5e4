use std::path::PathBuf;

use crate::support::{Backend, Harness};

/// The committed OpenAPI document is the reviewed contract: a change to the API must update
/// it (`EDK_UPDATE_SNAPSHOTS=1 cargo test -p edk-kms-server --test integration openapi`).
#[tokio::test]
async fn openapi_matches_the_committed_snapshot() {
    let h = Harness::start(Backend::Sqlite).await;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let served = h
        .client
        .get(h.server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let actual = format!("{served}\n");
    h.stop().await;
    if std::env::var_os("EDK_UPDATE_SNAPSHOTS").is_some_and(|value| value == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "servers/kms/openapi.json is out of date; rerun with EDK_UPDATE_SNAPSHOTS=1 and review the diff"
    );
}
