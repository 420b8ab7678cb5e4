//! `oid4vci.purge_expired` deletes the tenant's lapsed nonces and nothing live.

use edk_core::{Clock as _, SystemClock};
use edk_tenancy::{JobTarget, TenantDirectory as _};

use crate::flow::on_both_backends;
use crate::support::{Deployment, nonce};

async fn the_purge_job_deletes_lapsed_nonces_only(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    let before = SystemClock.unix_seconds();
    nonce(&acme).await;
    nonce(&acme).await;
    let context = deployment.tenancy.context(acme.id).await.unwrap();
    let job = deployment.parts.purge_job();
    assert_eq!(job.name(), "oid4vci.purge_expired");
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap();
    assert_eq!(
        job.run(JobTarget::Tenant(&context), at(before))
            .await
            .unwrap(),
        0,
        "live nonces stay"
    );
    assert_eq!(
        job.run(JobTarget::Tenant(&context), at(before + 3600))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        job.run(JobTarget::Tenant(&context), at(before + 3600))
            .await
            .unwrap(),
        0
    );
    deployment.close().await;
}
on_both_backends!(the_purge_job_deletes_lapsed_nonces_only);
