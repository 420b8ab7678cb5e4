//! The admin OpenAPI document is the reviewed contract: drift fails; `EDK_UPDATE_SNAPSHOTS=1`
//! rewrites `servers/verifier/openapi.json`.

use crate::support::Deployment;

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let deployment = Deployment::sqlite().await;
    let spec =
        edk_verifier_server::openapi_service(&deployment.parts, edk_server::HealthApi::new())
            .spec();
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
    assert!(spec.contains("/api/oid4vp/v1/requests"));
    deployment.close().await;
}
