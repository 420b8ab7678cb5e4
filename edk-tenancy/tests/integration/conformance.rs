//! The conformance suite on both backends.

use edk_tenancy::testkit;
use edk_testkit::TestDb;

use crate::{build, clock, postgres, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_suite() {
    let dir = edk_testkit::temp_dir();
    let clock = clock();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock.clone())).await;
    testkit::tenancy_suite(&tenancy, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_suite() {
    let db = TestDb::new().await;
    let clock = clock();
    let tenancy = build(testkit::builder(postgres(db.url()), clock.clone())).await;
    testkit::tenancy_suite(&tenancy, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_configuration_values_never_reach_debug_output() {
    use edk_core::TenantSlug;
    use edk_tenancy::TenantDirectory;
    use serde_json::json;

    let dir = edk_testkit::temp_dir();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock())).await;
    let tenant = tenancy
        .provision(TenantSlug::new("secretive").unwrap(), "S")
        .await
        .unwrap();
    let brand = testkit::BRAND.name();
    tenancy
        .set_config(None, brand, json!("platform-hunter2"), None)
        .await
        .unwrap();
    tenancy
        .set_config(Some(tenant.id), brand, json!("tenant-hunter2"), None)
        .await
        .unwrap();
    // Loads the tenant and platform configuration into the cache.
    let context = tenancy.context(tenant.id).await.unwrap();
    assert_eq!(context.config().get(&testkit::BRAND), "tenant-hunter2");
    for debug in [format!("{tenancy:?}"), format!("{context:?}")] {
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(brand), "keys are shown: {debug}");
    }
}
