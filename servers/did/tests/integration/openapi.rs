//! The OpenAPI document is the reviewed contract: drift fails; `EDK_UPDATE_SNAPSHOTS=1`
//! rewrites `servers/did/openapi.json`.

use crate::support::Deployment;

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let deployment = Deployment::sqlite().await;
    let spec = deployment.server.openapi_service().spec();
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
    for path in [
        "/api/did/v1/identifiers",
        "/1.0/identifiers/{did}",
        "/1.0/create",
        "/1.0/methods",
    ] {
        assert!(spec.contains(path), "{path}");
    }
    deployment.close().await;
}
