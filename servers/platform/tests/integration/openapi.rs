//! The platform's OpenAPI document is the reviewed contract: drift fails;
//! `EDK_UPDATE_SNAPSHOTS=1` rewrites `servers/platform/openapi.json`.

use crate::support::{Backend, Platform};

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let platform = Platform::start(Backend::Sqlite).await;
    let spec = platform.started.openapi_service().spec();
    platform.close().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("EDK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, format!("{spec}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        spec.trim_end(),
        "run with EDK_UPDATE_SNAPSHOTS=1 to accept"
    );
    assert!(spec.contains("/api/platform/v1/setup"));
}

#[tokio::test]
async fn health_probes_answer_without_a_token() {
    let platform = Platform::start(Backend::Sqlite).await;
    for path in ["/health/live", "/health/ready", "/openapi.json"] {
        let (status, body) = platform.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    platform.close().await;
}
