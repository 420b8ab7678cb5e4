use std::path::PathBuf;

/// The committed OpenAPI document is the reviewed contract: a change to the API must update
/// it (`EDK_UPDATE_SNAPSHOTS=1 cargo test -p edk`).
#[test]
fn openapi_matches_the_committed_snapshot() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let actual = format!("{}\n", edk::openapi_service(Vec::new()).spec());
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
