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
