//! The audit chain: every operation is recorded, nothing secret is, and verification finds
//! edited, inserted and deleted records.

use edk_core::HasKind as _;
use edk_core::jose::Algorithm;
use edk_kms::audit::{AuditEvent, AuditProblem};
use edk_kms::provider::KeySpec;
use edk_kms::{KeyAlias, KeyRef, Kms, NewKey};
use sqlx::AssertSqlSafe;

use crate::support::{Backend, Env, env};

/// Runs a few operations for tenant A (and one for B) and checkpoints A's chain.
async fn populate(env: &Env) -> Vec<AuditEvent> {
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    env.kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let signature = env.kms.sign(&env.a, &alias, b"payload").await.unwrap();
    env.kms
        .verify(
            &env.a,
            &KeyRef::Alias(alias.clone()),
            Algorithm::Es256,
            b"payload",
            &signature.bytes,
        )
        .await
        .unwrap();
    let unknown = KeyAlias::new("x", "y").unwrap();
    let err = env.kms.sign(&env.a, &unknown, b"m").await.unwrap_err();
    assert!(
        matches!(&err, edk_kms::Error::AliasNotFound { alias } if *alias == unknown),
        "{err:?}"
    );
    env.kms.rotate(&env.a, &alias).await.unwrap();
    env.kms.sign(&env.b, &alias, b"m").await.unwrap_err();
    let checkpoint = env
        .kms
        .checkpoint(&env.a)
        .await
        .unwrap()
        .expect("a checkpoint");
    // Creating the checkpoint key on first need was itself audited.
    let second = env
        .kms
        .checkpoint(&env.a)
        .await
        .unwrap()
        .expect("a second checkpoint");
    assert_eq!(second.seq, checkpoint.seq + 1);
    assert!(
        env.kms.checkpoint(&env.a).await.unwrap().is_none(),
        "nothing new to checkpoint"
    );
    env.kms
        .sign(&env.a, &alias, b"after the checkpoint")
        .await
        .unwrap();
    let events = env.kms.audit_events(&env.a, 0, 100).await.unwrap();
    assert!(checkpoint.seq < events.last().unwrap().seq);
    events
}

async fn records_every_operation(backend: Backend) {
    let env = env(backend).await;
    let events = populate(&env).await;
    let ops: Vec<&str> = events.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "create_key",
            "sign",
            "verify",
            "sign",
            "rotate",
            "create_key",
            "sign"
        ],
        "the checkpoint key was created on first need and audited"
    );
    assert!(events.iter().all(|e| e.actor == "alice"));
    assert_eq!(events[3].outcome, "failure:not found");
    assert_eq!(
        events[1].alias.as_deref(),
        Some("issuer.credential-signing")
    );
    assert!(events[1].kid.is_some());
    for pair in events.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    // Paging.
    let page = env.kms.audit_events(&env.a, 2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    // B's chain has B's failure only.
    let theirs = env.kms.audit_events(&env.b, 0, 100).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].actor, "bob");
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 7);
    assert_eq!(report.checkpoints, 2);
}

#[tokio::test]
async fn every_operation_is_chained_on_sqlite() {
    records_every_operation(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_operation_is_chained_on_postgres() {
    records_every_operation(Backend::Postgres).await;
}

/// Runs `sql` on A's tenant tables (schema or file).
/// Runs `sql` on tenant A's database, behind the KMS's back.
pub(crate) async fn tamper(env: &Env, sql: &str) {
    match (&env.db, &env.dir) {
        (Some(db), _) => {
            let pool = db.pool();
            let schema = env.a.tenant().id().schema_name();
            let mut conn = pool.acquire().await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO {schema}")))
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        (None, Some(dir)) => {
            let file = dir
                .path()
                .join("tenants")
                .join(format!("{}.db", env.a.tenant().id().as_uuid().simple()));
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        _ => unreachable!(),
    }
}

async fn finds(backend: Backend, sql: &str, seq: u64, bad: u64, problem: AuditProblem) {
    let env = env(backend).await;
    let events = populate(&env).await;
    assert!(env.kms.verify_audit(&env.a).await.unwrap().is_intact());
    let e = &events[usize::try_from(seq).unwrap() - 1];
    let sql = sql
        .replace("{seq}", &seq.to_string())
        .replace("{prev}", &e.prev_hash)
        .replace("{hash}", &e.hash);
    tamper(&env, &sql).await;
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert_eq!(report.problem, Some(problem), "{report:?}");
    assert_eq!(report.first_bad_seq, Some(bad), "{report:?}");
    // B's chain is not affected.
    assert!(env.kms.verify_audit(&env.b).await.unwrap().is_intact());
}

const EDIT: &str = "UPDATE kms_audit_event SET outcome = 'success' WHERE seq = {seq}";
const DELETE: &str = "DELETE FROM kms_audit_event WHERE seq = {seq}";
const DELETE_TAIL: &str = "DELETE FROM kms_audit_event WHERE seq >= {seq}";
const EDIT_ACTOR: &str = "UPDATE kms_audit_event SET actor = 'mallory' WHERE seq = {seq}";
const CHECKPOINT: &str = "UPDATE kms_audit_checkpoint SET hash = '{hash}'";

#[tokio::test]
async fn an_edited_record_is_found_on_sqlite() {
    finds(Backend::Sqlite, EDIT, 4, 4, AuditProblem::HashMismatch).await;
}

#[tokio::test]
async fn an_edited_record_is_found_on_postgres() {
    finds(Backend::Postgres, EDIT, 4, 4, AuditProblem::HashMismatch).await;
}

#[tokio::test]
async fn a_deleted_record_is_found_on_sqlite() {
    finds(Backend::Sqlite, DELETE, 3, 3, AuditProblem::SequenceGap).await;
}

#[tokio::test]
async fn a_deleted_record_is_found_on_postgres() {
    finds(Backend::Postgres, DELETE, 3, 3, AuditProblem::SequenceGap).await;
}

#[tokio::test]
async fn a_cut_off_tail_is_found_on_sqlite() {
    finds(
        Backend::Sqlite,
        DELETE_TAIL,
        7,
        7,
        AuditProblem::HeadMismatch,
    )
    .await;
}

#[tokio::test]
async fn a_cut_off_tail_is_found_on_postgres() {
    finds(
        Backend::Postgres,
        DELETE_TAIL,
        7,
        7,
        AuditProblem::HeadMismatch,
    )
    .await;
}

#[tokio::test]
async fn an_inserted_record_is_found_on_sqlite() {
    inserted(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_inserted_record_is_found_on_postgres() {
    inserted(Backend::Postgres).await;
}

/// A forged record slipped in at position 3, the later ones renumbered.
async fn inserted(backend: Backend) {
    let env = env(backend).await;
    populate(&env).await;
    tamper(
        &env,
        "UPDATE kms_audit_event SET seq = seq + 1000 WHERE seq >= 3; \
         UPDATE kms_audit_event SET seq = seq - 999 WHERE seq >= 1000; \
         INSERT INTO kms_audit_event (tenant_id, seq, at_micros, actor, operation, alias, kid, outcome, prev_hash, hash) \
         SELECT tenant_id, 3, at_micros, 'mallory', 'sign', alias, kid, outcome, hash, hash \
         FROM kms_audit_event WHERE seq = 2",
    )
    .await;
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert_eq!(report.first_bad_seq, Some(3), "{report:?}");
    assert_eq!(
        report.problem,
        Some(AuditProblem::HashMismatch),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_forged_checkpoint_is_found() {
    finds(
        Backend::Sqlite,
        CHECKPOINT,
        1,
        5,
        AuditProblem::BadCheckpoint,
    )
    .await;
}

#[tokio::test]
async fn records_buffered_at_shutdown_are_written() {
    let env = env(Backend::Sqlite).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = env.kms.start(&cancel);
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    env.kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    for _ in 0..10 {
        env.kms.sign(&env.a, &alias, b"m").await.unwrap();
    }
    task.shutdown().await;
    let other = edk_kms::LocalKms::builder(
        env.tenancy.clone(),
        vec![crate::support::software("software")],
    )
    .build()
    .unwrap();
    let events = other.audit_events(&env.a, 0, 100).await.unwrap();
    assert_eq!(events.len(), 11);
}

/// Creates a signing key for A and signs `n` times.
async fn sign_n(env: &Env, n: usize) {
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    if env
        .kms
        .key(&env.a, &KeyRef::Alias(alias.clone()))
        .await
        .is_err()
    {
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
    }
    for _ in 0..n {
        env.kms.sign(&env.a, &alias, b"m").await.unwrap();
    }
}

/// A checkpoint checks, and reads, only the records after the previous checkpoint: an edit
/// before it does not stop the next checkpoint (verification still finds it), an edit after
/// it does.
async fn checkpoints_are_incremental(backend: Backend) {
    let env = env(backend).await;
    sign_n(&env, 5).await;
    let first = env.kms.checkpoint(&env.a).await.unwrap().unwrap();
    assert_eq!(first.seq, 6, "the key's creation and five signatures");
    // The checkpoint key's creation (record 7), then M = 4 more signatures.
    sign_n(&env, 4).await;
    tamper(&env, &EDIT_ACTOR.replace("{seq}", "3")).await;
    let second = env.kms.checkpoint(&env.a).await.unwrap().unwrap();
    assert_eq!(second.seq, 11, "covers exactly the head, seq N + M");
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::HashMismatch),
        "{report:?}"
    );
    assert_eq!(report.first_bad_seq, Some(3), "{report:?}");

    // An edit after the last checkpoint: the next checkpoint refuses to sign over it.
    sign_n(&env, 3).await;
    let events = env.kms.audit_events(&env.a, 11, 10).await.unwrap();
    assert_eq!(events.len(), 3);
    tamper(&env, &EDIT_ACTOR.replace("{seq}", "13")).await;
    let err = env.kms.checkpoint(&env.a).await.unwrap_err();
    assert!(
        matches!(
            err,
            edk_kms::Error::AuditChainBroken {
                seq: 13,
                problem: AuditProblem::HashMismatch
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), edk_core::ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "the audit chain does not verify at record 13 (hash_mismatch); it is not checkpointed"
    );
}

#[tokio::test]
async fn checkpoints_are_incremental_on_sqlite() {
    checkpoints_are_incremental(Backend::Sqlite).await;
}

#[tokio::test]
async fn checkpoints_are_incremental_on_postgres() {
    checkpoints_are_incremental(Backend::Postgres).await;
}

#[tokio::test]
async fn a_checkpoint_refuses_a_chain_cut_off_after_the_last_one() {
    let env = env(Backend::Sqlite).await;
    sign_n(&env, 2).await;
    env.kms.checkpoint(&env.a).await.unwrap().unwrap();
    sign_n(&env, 3).await;
    let head = env.kms.audit_events(&env.a, 0, 100).await.unwrap().len();
    assert_eq!(head, 7);
    tamper(&env, &DELETE_TAIL.replace("{seq}", "6")).await;
    let err = env.kms.checkpoint(&env.a).await.unwrap_err();
    assert!(
        matches!(
            err,
            edk_kms::Error::AuditChainBroken {
                seq: 6,
                problem: AuditProblem::HeadMismatch
            }
        ),
        "{err:?}"
    );
}

/// A chain longer than a page, with checkpoints in several pages, verifies in one pass; an
/// edit and a forged checkpoint in a later page are found where they are.
async fn long_chains_verify_across_pages(backend: Backend) {
    let env = env(backend).await;
    let page = usize::try_from(edk_kms::audit::VERIFY_PAGE).unwrap();
    for _ in 0..3 {
        sign_n(&env, page * 2 / 3).await;
        env.kms.checkpoint(&env.a).await.unwrap().unwrap();
    }
    sign_n(&env, 10).await;
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let total = env
        .kms
        .audit_events(&env.a, 0, u32::MAX)
        .await
        .unwrap()
        .len();
    assert_eq!(report.records, u64::try_from(total).unwrap());
    assert!(report.records > 2 * u64::from(edk_kms::audit::VERIFY_PAGE));
    assert_eq!(report.checkpoints, 3);

    let late = report.records - 5;
    tamper(&env, &EDIT_ACTOR.replace("{seq}", &late.to_string())).await;
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::HashMismatch),
        "{report:?}"
    );
    assert_eq!(report.first_bad_seq, Some(late), "{report:?}");
    assert_eq!(report.checkpoints, 3);

    tamper(
        &env,
        "UPDATE kms_audit_checkpoint SET hash = 'forged' \
         WHERE seq = (SELECT MAX(seq) FROM kms_audit_checkpoint)",
    )
    .await;
    let report = env.kms.verify_audit(&env.a).await.unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::BadCheckpoint),
        "{report:?}"
    );
    assert!(report.first_bad_seq.unwrap() < late, "{report:?}");
    assert!(report.first_bad_seq.unwrap() > 2 * u64::from(edk_kms::audit::VERIFY_PAGE));
}

#[tokio::test]
async fn long_chains_verify_across_pages_on_sqlite() {
    long_chains_verify_across_pages(Backend::Sqlite).await;
}

#[tokio::test]
async fn long_chains_verify_across_pages_on_postgres() {
    long_chains_verify_across_pages(Backend::Postgres).await;
}
