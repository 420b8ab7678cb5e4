//! The KMS's scheduler jobs: due aliases rotate and audit chains are checkpointed when the
//! tenancy scheduler runs them, on the injected clock.

use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::Algorithm;
use edk_kms::jobs::{AUDIT_CHECKPOINT_JOB, AuditCheckpointJob, ROTATE_DUE_JOB, RotateDueJob};
use edk_kms::kms::{RotationPolicy, RotationReason};
use edk_kms::local::SYSTEM_ACTOR;
use edk_kms::provider::KeySpec;
use edk_kms::{KeyAlias, KeyRef, Kms, NewKey};
use edk_tenancy::scheduler::Scheduler;

use crate::support::{Backend, Env, env};

fn scheduler(env: &Env) -> Scheduler {
    Scheduler::builder(env.tenancy.clone())
        .clock(env.clock.clone())
        .job(Arc::new(
            RotateDueJob::new(env.kms.clone()).with_period(Duration::from_secs(600)),
        ))
        .job(Arc::new(AuditCheckpointJob::new(env.kms.clone())))
        .build()
        .unwrap()
}

async fn the_jobs_rotate_due_aliases_and_checkpoint(backend: Backend) {
    let env = env(backend).await;
    let due = KeyAlias::new("issuer", "credential-signing").unwrap();
    let created = env
        .kms
        .create_key(
            &env.a,
            &NewKey::new(due.clone(), KeySpec::signing(Algorithm::Es256))
                .with_rotation(RotationPolicy::every(86_400, 3_600)),
        )
        .await
        .unwrap();
    let first = created.active().unwrap().kid.clone();
    let scheduler = scheduler(&env);

    // First run: nothing due to rotate; A's chain (the key's creation) gets a checkpoint, B's
    // is empty.
    let report = scheduler.tick().await;
    let rotate = report.job(ROTATE_DUE_JOB).expect("the rotation job ran");
    assert_eq!((rotate.targets, rotate.failures, rotate.items), (2, 0, 0));
    let checkpoint = report
        .job(AUDIT_CHECKPOINT_JOB)
        .expect("the checkpoint job ran");
    assert_eq!(
        (checkpoint.targets, checkpoint.failures, checkpoint.items),
        (2, 0, 1)
    );
    let audit = env.kms.verify_audit(&env.a).await.unwrap();
    assert!(audit.is_intact(), "{audit:?}");
    assert_eq!(audit.checkpoints, 1);
    assert_eq!(env.kms.verify_audit(&env.b).await.unwrap().checkpoints, 0);

    // A day later the alias is due: the next run of the job rotates it, once.
    env.clock.advance(Duration::from_secs(86_400));
    let report = scheduler.tick().await;
    assert_eq!(report.job(ROTATE_DUE_JOB).unwrap().items, 1);
    let info = env
        .kms
        .key(&env.a, &KeyRef::Alias(due.clone()))
        .await
        .unwrap();
    assert_eq!(info.versions.len(), 2);
    assert_ne!(info.active().unwrap().kid, first);
    let history = env.kms.rotations(&env.a, &due).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].reason, RotationReason::Scheduled);
    assert_eq!(history[0].actor, SYSTEM_ACTOR);
    // The checkpoint job ran again (an hour passed) and covers the rotation.
    let checkpoint = report.job(AUDIT_CHECKPOINT_JOB).unwrap();
    assert_eq!(checkpoint.items, 1);
    let events = env.kms.audit_events(&env.a, 0, 100).await.unwrap();
    let rotation = events
        .iter()
        .find(|event| event.operation == "rotate")
        .expect("the rotation is audited");
    assert_eq!(rotation.actor, SYSTEM_ACTOR);
    assert_eq!(env.kms.verify_audit(&env.a).await.unwrap().checkpoints, 2);

    // Within the job's period nothing runs again.
    let report = scheduler.tick().await;
    assert!(report.job(ROTATE_DUE_JOB).is_none(), "{report:?}");
    assert!(report.job(AUDIT_CHECKPOINT_JOB).is_none(), "{report:?}");
}

#[tokio::test]
async fn the_jobs_rotate_due_aliases_and_checkpoint_on_sqlite() {
    the_jobs_rotate_due_aliases_and_checkpoint(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_jobs_rotate_due_aliases_and_checkpoint_on_postgres() {
    the_jobs_rotate_due_aliases_and_checkpoint(Backend::Postgres).await;
}
