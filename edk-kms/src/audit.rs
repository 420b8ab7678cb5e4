//! The audit log of KMS operations: a hash chain per tenant, with signed checkpoints.
//!
//! Every operation appends a record (tenant, actor, operation, alias, kid, outcome, time;
//! never plaintext, signatures or key material). Records wait in a bounded in-memory buffer
//! and are written in batches (multi-row inserts), one transaction per tenant, by the
//! background task (on its interval, and as soon as the buffer is full), by
//! [`LocalKms::shutdown`](crate::LocalKms::shutdown), or by an operation that finds 32
//! buffers' worth waiting (it waits for the write, so memory stays bounded and nothing is
//! dropped).
//! The batch writer holds the tenant's chain head row locked while it appends, so the chain
//! stays linear even with several replicas.
//!
//! Each record's `hash` is the SHA-256 (base64url) of a length-prefixed encoding of its
//! fields and the previous record's hash. A checkpoint is a compact JWS, signed with the
//! tenant's `audit.audit-checkpoint` key, over `{"tenant", "seq", "hash", "at"}` of the head.
//! [`AuditReport`] from verification names the first record that does not fit: edited
//! (hash mismatch), inserted or deleted (sequence gap or broken link), or a chain that no
//! longer matches its head or a signed checkpoint.
//!
//! Neither checkpointing nor verification holds a chain in memory. A checkpoint reads only
//! the records after the previous checkpoint and checks that they lead from its hash to the
//! head before it signs the head (a chain broken there is [`Error::AuditChainBroken`], not
//! signed). Verification is one pass in pages of [`VERIFY_PAGE`] records over one consistent read
//! (a read-only `REPEATABLE READ` transaction on PostgreSQL, a read transaction on SQLite):
//! each record is checked against the running hash, and each checkpoint when the walk
//! reaches its sequence number; its signature is checked once, before the walk.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use edk_core::{Clock, ErrorKind, Kid, TenantId};
use edk_tenancy::{Tenancy, TenantContext, TenantTx};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::kms::{Caller, KeyAlias};
use crate::store::StoreError;

/// How the audit log buffers and checkpoints.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuditConfig {
    /// How many records wait in memory before the operation that adds one writes them.
    pub buffer: usize,
    /// How often the background task writes buffered records.
    pub flush_interval: Duration,
    /// How often every tenant's chain is checkpointed: the default period of
    /// [`AuditCheckpointJob`](crate::jobs::AuditCheckpointJob).
    pub checkpoint_interval: Duration,
}

impl Default for AuditConfig {
    /// A buffer of 1,024 records, written every second; a checkpoint every hour.
    fn default() -> Self {
        Self {
            buffer: 1024,
            flush_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(3600),
        }
    }
}

impl AuditConfig {
    /// Records wait for at most `buffer` others.
    #[must_use]
    pub const fn with_buffer(mut self, buffer: usize) -> Self {
        self.buffer = buffer;
        self
    }

    /// Checkpoints every `interval`.
    #[must_use]
    pub const fn with_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.buffer == 0 {
            return Err(Error::InvalidConfig {
                field: "audit.buffer",
                reason: "must be at least 1",
            });
        }
        if self.flush_interval.is_zero() || self.checkpoint_interval.is_zero() {
            return Err(Error::InvalidConfig {
                field: "audit.flush_interval",
                reason: "must not be zero",
            });
        }
        Ok(())
    }
}

/// How an audited operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed with this kind.
    Failure(ErrorKind),
}

impl Outcome {
    /// `success`, or `failure:<kind>`.
    #[must_use]
    pub fn as_string(self) -> String {
        match self {
            Self::Success => "success".to_owned(),
            Self::Failure(kind) => format!("failure:{kind}"),
        }
    }
}

/// One record of a tenant's audit chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// The position in the chain, from 1.
    pub seq: u64,
    /// When the operation happened.
    pub at: DateTime<Utc>,
    /// Who asked.
    pub actor: String,
    /// The operation, e.g. `sign`.
    pub operation: String,
    /// The alias, if the operation named or found one.
    pub alias: Option<String>,
    /// The kid, if the operation used one version.
    pub kid: Option<String>,
    /// `success` or `failure:<kind>`.
    pub outcome: String,
    /// The previous record's hash (empty for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// A signed checkpoint of a chain head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditCheckpoint {
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash.
    pub hash: String,
    /// When it was signed.
    pub at: DateTime<Utc>,
    /// The compact JWS over `{"tenant", "seq", "hash", "at"}`.
    pub jws: String,
}

/// What is wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditProblem {
    /// A record's hash does not match its content (edited).
    HashMismatch,
    /// A record does not link to the one before (inserted, deleted or reordered).
    BrokenLink,
    /// A sequence number is missing or repeated (deleted or inserted).
    SequenceGap,
    /// The chain ends before or after its recorded head (records cut off or appended).
    HeadMismatch,
    /// A checkpoint's signature does not verify, or its record differs from what it signed.
    BadCheckpoint,
}

impl AuditProblem {
    /// The problem's name as serialized: `hash_mismatch`, `broken_link`, `sequence_gap`,
    /// `head_mismatch`, `bad_checkpoint`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HashMismatch => "hash_mismatch",
            Self::BrokenLink => "broken_link",
            Self::SequenceGap => "sequence_gap",
            Self::HeadMismatch => "head_mismatch",
            Self::BadCheckpoint => "bad_checkpoint",
        }
    }

    /// The problem named `name` ([`AuditProblem::as_str`]), if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::HashMismatch,
            Self::BrokenLink,
            Self::SequenceGap,
            Self::HeadMismatch,
            Self::BadCheckpoint,
        ]
        .into_iter()
        .find(|problem| problem.as_str() == name)
    }
}

/// The result of [`LocalKms::verify_audit`](crate::LocalKms::verify_audit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditReport {
    /// How many records were checked.
    pub records: u64,
    /// How many checkpoints were checked.
    pub checkpoints: u64,
    /// The first sequence number that does not fit, if any.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// Whether the chain is intact.
    #[must_use]
    pub const fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Reading and checking a tenant's audit chain: what the KMS server's audit endpoints call.
/// [`LocalKms`](crate::LocalKms) implements it over its own log.
#[async_trait]
pub trait AuditTrail: std::fmt::Debug + Send + Sync {
    /// The records of `caller`'s tenant after sequence number `after`, at most `limit`,
    /// oldest first.
    ///
    /// # Errors
    /// When the log cannot be read.
    async fn events(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error>;

    /// Checks `caller`'s tenant's chain and its checkpoints.
    ///
    /// # Errors
    /// When the log cannot be read (a broken chain is a report, not an error).
    async fn verify(&self, caller: &Caller) -> Result<AuditReport, Error>;

    /// Signs a checkpoint of the head of `caller`'s tenant's chain now; `None` when the chain
    /// is empty or already checkpointed at its head.
    ///
    /// # Errors
    /// When the checkpoint key cannot sign or the log cannot be written.
    async fn checkpoint(&self, caller: &Caller) -> Result<Option<AuditCheckpoint>, Error>;
}

#[derive(Debug)]
struct Pending {
    tenant: TenantContext,
    at: DateTime<Utc>,
    actor: String,
    operation: &'static str,
    alias: Option<String>,
    kid: Option<String>,
    outcome: Outcome,
}

/// The buffered writer of the audit chains.
#[derive(Debug)]
pub(crate) struct AuditLog {
    config: AuditConfig,
    clock: Arc<dyn Clock>,
    tenancy: Tenancy,
    pending: Mutex<Vec<Pending>>,
    writer: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

impl AuditLog {
    pub(crate) fn new(tenancy: &Tenancy, config: AuditConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            pending: Mutex::new(Vec::with_capacity(config.buffer)),
            config,
            clock,
            tenancy: tenancy.clone(),
            writer: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) const fn flush_interval(&self) -> Duration {
        self.config.flush_interval
    }

    pub(crate) const fn checkpoint_interval(&self) -> Duration {
        self.config.checkpoint_interval
    }

    /// Completes when an operation found the buffer full: the background task then writes it.
    pub(crate) async fn full(&self) {
        self.wake.notified().await;
    }

    /// Buffers a record. When the buffer holds `buffer` records the background task is woken
    /// to write them; an operation that finds [`BACKPRESSURE`] times that many waiting (the
    /// task is not running, or the database is slower than the operations) writes them itself
    /// before returning, so memory stays bounded (about 10 MB with the default buffer).
    pub(crate) async fn record(
        &self,
        caller: &Caller,
        operation: &'static str,
        alias: Option<&KeyAlias>,
        kid: Option<&Kid>,
        outcome: Outcome,
    ) {
        let record = Pending {
            tenant: caller.tenant().clone(),
            at: self.clock.now().into(),
            actor: caller.actor().to_owned(),
            operation,
            alias: alias.map(ToString::to_string),
            kid: kid.map(|k| k.as_str().to_owned()),
            outcome,
        };
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.push(record);
            pending.len()
        };
        if waiting >= self.config.buffer {
            self.wake.notify_one();
        }
        if waiting >= self.config.buffer.saturating_mul(BACKPRESSURE)
            && let Err(err) = self.flush().await
        {
            tracing::error!(error = %edk_core::ErrorChain(&err), "writing audit records failed; they stay buffered");
        }
    }

    /// Writes every buffered record, one transaction per tenant. Records of a tenant whose
    /// write fails go back to the front of the buffer.
    pub(crate) async fn flush(&self) -> Result<(), Error> {
        let _writer = self.writer.lock().await;
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return Ok(());
        }
        let mut tenants: Vec<TenantId> = Vec::new();
        for record in &batch {
            if !tenants.contains(&record.tenant.id()) {
                tenants.push(record.tenant.id());
            }
        }
        let mut groups: Vec<Vec<Pending>> = tenants.iter().map(|_| Vec::new()).collect();
        for record in batch {
            if let Some(i) = tenants.iter().position(|t| *t == record.tenant.id())
                && let Some(group) = groups.get_mut(i)
            {
                group.push(record);
            }
        }
        let mut failed: Vec<Pending> = Vec::new();
        let mut first_error = None;
        for group in groups {
            if let Err(err) = self.append(&group).await {
                first_error.get_or_insert(err);
                failed.extend(group);
            }
        }
        if !failed.is_empty() {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            failed.append(&mut pending);
            *pending = failed;
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn append(&self, group: &[Pending]) -> Result<(), Error> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let tenant = first.tenant.id();
        let tx = self.tenancy.databases().begin(&first.tenant).await?;
        match tx {
            TenantTx::Postgres(mut tx) => {
                pg::append(&mut tx, tenant, group).await?;
                tx.commit().await?;
            }
            TenantTx::Sqlite(mut tx) => {
                lite::append(&mut tx, tenant, group).await?;
                tx.commit().await?;
            }
            _ => return Err(StoreError::WrongBackend.into()),
        }
        Ok(())
    }

    /// Events of `tenant` after `after`, at most `limit`.
    pub(crate) async fn events(
        &self,
        tenant: &TenantContext,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.flush().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let id = tenant.id();
        let limit = i64::from(limit);
        let rows = match self.tenancy.databases().begin(tenant).await? {
            TenantTx::Postgres(mut tx) => pg::events(&mut tx, id, after, i64::MAX, limit).await?,
            TenantTx::Sqlite(mut tx) => lite::events(&mut tx, id, after, i64::MAX, limit).await?,
            _ => return Err(StoreError::WrongBackend.into()),
        };
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// The head that the next checkpoint of `tenant` signs, after checking that the records
    /// after the last checkpoint (and only those) lead from its hash to the head; `None` when
    /// the chain is empty or checkpointed at its head.
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] when they do not; database errors.
    pub(crate) async fn checkpoint_head(
        &self,
        tenant: &TenantContext,
    ) -> Result<Option<(u64, String)>, Error> {
        self.flush().await?;
        let id = tenant.id();
        let mut tx = self.read(tenant).await?;
        let Some((head_seq, head_hash)) = head(&mut tx, id).await? else {
            return Ok(None);
        };
        let last = last_checkpoint(&mut tx, id).await?;
        if head_seq == 0 || last.as_ref().is_some_and(|c| c.seq >= head_seq) {
            return Ok(None);
        }
        let mut walk = match last {
            Some(checkpoint) => ChainWalk::from(id, checkpoint.seq, checkpoint.hash),
            None => ChainWalk::from(id, 0, String::new()),
        };
        let upto = i64::try_from(head_seq).unwrap_or(i64::MAX);
        loop {
            let rows = events_page(&mut tx, id, walk.seq, upto).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                walk.step(row)
                    .map_err(|(seq, problem)| Error::AuditChainBroken { seq, problem })?;
            }
        }
        if walk.last() != head_seq || walk.prev != head_hash {
            return Err(Error::AuditChainBroken {
                seq: walk.last().min(head_seq) + 1,
                problem: AuditProblem::HeadMismatch,
            });
        }
        Ok(Some((head_seq, head_hash)))
    }

    /// Every checkpoint of `tenant`, by sequence number (written records first).
    pub(crate) async fn checkpoints(
        &self,
        tenant: &TenantContext,
    ) -> Result<Vec<AuditCheckpoint>, Error> {
        self.flush().await?;
        let id = tenant.id();
        let rows = match self.tenancy.databases().begin(tenant).await? {
            TenantTx::Postgres(mut tx) => pg::checkpoints(&mut tx, id).await?,
            TenantTx::Sqlite(mut tx) => lite::checkpoints(&mut tx, id).await?,
            _ => return Err(StoreError::WrongBackend.into()),
        };
        rows.into_iter()
            .map(CheckpointRow::into_checkpoint)
            .collect()
    }

    /// Checks `tenant`'s chain in one pass: every record against the running hash, the head
    /// at the end, and each of `checkpoints` (by sequence number, with whether its signature
    /// verified) when the walk reaches it. Stops at the first problem.
    pub(crate) async fn verify(
        &self,
        tenant: &TenantContext,
        checkpoints: &[(AuditCheckpoint, bool)],
    ) -> Result<AuditReport, Error> {
        self.flush().await?;
        let id = tenant.id();
        let mut report = AuditReport {
            records: 0,
            checkpoints: 0,
            first_bad_seq: None,
            problem: None,
        };
        let mut tx = self.read(tenant).await?;
        let head = head(&mut tx, id).await?;
        let mut walk = ChainWalk::from(id, 0, String::new());
        let mut pending = checkpoints.iter().peekable();
        loop {
            let rows = events_page(&mut tx, id, walk.seq, i64::MAX).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                report.records += 1;
                if let Err((seq, problem)) = walk.step(row) {
                    return Ok(report.failed(seq, problem));
                }
                while let Some((checkpoint, signed)) =
                    pending.next_if(|(checkpoint, _)| checkpoint.seq <= walk.last())
                {
                    report.checkpoints += 1;
                    let fits = checkpoint.seq == walk.last() && checkpoint.hash == walk.prev;
                    if !(fits && *signed) {
                        return Ok(report.failed(checkpoint.seq, AuditProblem::BadCheckpoint));
                    }
                }
            }
        }
        let last = walk.last();
        let head_ok = match &head {
            None => last == 0,
            Some((seq, hash)) => *seq == last && *hash == walk.prev,
        };
        if !head_ok {
            let head_seq = head.as_ref().map_or(0, |(seq, _)| *seq);
            return Ok(report.failed(last.min(head_seq) + 1, AuditProblem::HeadMismatch));
        }
        // Checkpoints of records the chain does not have.
        if let Some((checkpoint, _)) = pending.next() {
            report.checkpoints += 1;
            return Ok(report.failed(checkpoint.seq, AuditProblem::BadCheckpoint));
        }
        Ok(report)
    }

    /// A read of `tenant`'s chain that sees one state of it across its queries.
    async fn read(&self, tenant: &TenantContext) -> Result<TenantTx, Error> {
        let mut tx = self.tenancy.databases().begin(tenant).await?;
        if let TenantTx::Postgres(tx) = &mut tx {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from)?;
        }
        Ok(tx)
    }

    /// Stores a checkpoint.
    pub(crate) async fn put_checkpoint(
        &self,
        tenant: &TenantContext,
        checkpoint: &AuditCheckpoint,
    ) -> Result<(), Error> {
        let id = tenant.id();
        match self.tenancy.databases().begin(tenant).await? {
            TenantTx::Postgres(mut tx) => {
                pg::put_checkpoint(&mut tx, id, checkpoint).await?;
                tx.commit().await?;
            }
            TenantTx::Sqlite(mut tx) => {
                lite::put_checkpoint(&mut tx, id, checkpoint).await?;
                tx.commit().await?;
            }
            _ => return Err(StoreError::WrongBackend.into()),
        }
        Ok(())
    }
}

/// How many records verification and checkpointing read per query while they walk a chain.
pub const VERIFY_PAGE: u32 = 2000;

impl AuditReport {
    fn failed(mut self, seq: u64, problem: AuditProblem) -> Self {
        self.first_bad_seq = Some(seq);
        self.problem = Some(problem);
        self
    }
}

/// A walk along a chain from a known record (or its start), one record at a time.
#[derive(Debug)]
struct ChainWalk {
    tenant: TenantId,
    /// The last record checked (0 at the start).
    seq: i64,
    /// Its hash (empty at the start).
    prev: String,
}

impl ChainWalk {
    fn from(tenant: TenantId, seq: u64, hash: String) -> Self {
        Self {
            tenant,
            seq: i64::try_from(seq).unwrap_or(i64::MAX),
            prev: hash,
        }
    }

    /// The last record checked.
    fn last(&self) -> u64 {
        u64::try_from(self.seq).unwrap_or(0)
    }

    /// Checks the next record: its sequence number, its link and its hash.
    fn step(&mut self, row: &EventRow) -> Result<(), (u64, AuditProblem)> {
        let expected = self.seq + 1;
        let bad = if row.seq != expected {
            Some(AuditProblem::SequenceGap)
        } else if row.prev_hash != self.prev {
            Some(AuditProblem::BrokenLink)
        } else if row.hash != row.compute_hash(self.tenant) {
            Some(AuditProblem::HashMismatch)
        } else {
            None
        };
        if let Some(problem) = bad {
            return Err((u64::try_from(row.seq.min(expected)).unwrap_or(0), problem));
        }
        self.seq = expected;
        self.prev.clone_from(&row.hash);
        Ok(())
    }
}

async fn head(tx: &mut TenantTx, tenant: TenantId) -> Result<Option<(u64, String)>, Error> {
    match tx {
        TenantTx::Postgres(tx) => pg::head(tx, tenant).await,
        TenantTx::Sqlite(tx) => lite::head(tx, tenant).await,
        _ => Err(StoreError::WrongBackend.into()),
    }
}

async fn last_checkpoint(
    tx: &mut TenantTx,
    tenant: TenantId,
) -> Result<Option<AuditCheckpoint>, Error> {
    let row = match tx {
        TenantTx::Postgres(tx) => pg::last_checkpoint(tx, tenant).await?,
        TenantTx::Sqlite(tx) => lite::last_checkpoint(tx, tenant).await?,
        _ => return Err(StoreError::WrongBackend.into()),
    };
    row.map(CheckpointRow::into_checkpoint).transpose()
}

/// The next [`VERIFY_PAGE`] records after `after`, up to `upto`.
async fn events_page(
    tx: &mut TenantTx,
    tenant: TenantId,
    after: i64,
    upto: i64,
) -> Result<Vec<EventRow>, Error> {
    match tx {
        TenantTx::Postgres(tx) => pg::events(tx, tenant, after, upto, VERIFY_PAGE.into()).await,
        TenantTx::Sqlite(tx) => lite::events(tx, tenant, after, upto, VERIFY_PAGE.into()).await,
        _ => Err(StoreError::WrongBackend.into()),
    }
}

/// A stored audit record.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    at_micros: i64,
    actor: String,
    operation: String,
    alias: Option<String>,
    kid: Option<String>,
    outcome: String,
    prev_hash: String,
    hash: String,
}

impl EventRow {
    fn compute_hash(&self, tenant: TenantId) -> String {
        chain_hash(
            tenant,
            self.seq,
            self.at_micros,
            &self.actor,
            &self.operation,
            self.alias.as_deref(),
            self.kid.as_deref(),
            &self.outcome,
            &self.prev_hash,
        )
    }

    fn into_event(self) -> Result<AuditEvent, Error> {
        Ok(AuditEvent {
            seq: u64::try_from(self.seq).map_err(|_| corrupt())?,
            at: DateTime::from_timestamp_micros(self.at_micros).ok_or_else(corrupt)?,
            actor: self.actor,
            operation: self.operation,
            alias: self.alias,
            kid: self.kid,
            outcome: self.outcome,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CheckpointRow {
    seq: i64,
    hash: String,
    at_micros: i64,
    jws: String,
}

impl CheckpointRow {
    fn into_checkpoint(self) -> Result<AuditCheckpoint, Error> {
        Ok(AuditCheckpoint {
            seq: u64::try_from(self.seq).map_err(|_| corrupt())?,
            hash: self.hash,
            at: DateTime::from_timestamp_micros(self.at_micros).ok_or_else(corrupt)?,
            jws: self.jws,
        })
    }
}

const fn corrupt() -> Error {
    Error::Store(StoreError::Corrupt {
        what: "audit record",
    })
}

/// The checkpoint payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointClaims {
    pub(crate) tenant: TenantId,
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) at: i64,
}

/// SHA-256 (base64url) over the length-prefixed fields of a record and the previous hash.
#[expect(clippy::too_many_arguments, reason = "one argument per hashed field")]
fn chain_hash(
    tenant: TenantId,
    seq: i64,
    at_micros: i64,
    actor: &str,
    operation: &str,
    alias: Option<&str>,
    kid: Option<&str>,
    outcome: &str,
    prev_hash: &str,
) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let tenant = tenant.to_string();
    let seq = seq.to_be_bytes();
    let at = at_micros.to_be_bytes();
    let fields: [&[u8]; 10] = [
        b"edk-kms/audit/v1",
        tenant.as_bytes(),
        &seq,
        &at,
        actor.as_bytes(),
        operation.as_bytes(),
        alias.unwrap_or("\u{0}").as_bytes(),
        kid.unwrap_or("\u{0}").as_bytes(),
        outcome.as_bytes(),
        prev_hash.as_bytes(),
    ];
    for field in fields {
        ctx.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
        ctx.update(field);
    }
    URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

/// The SQL of the audit chain for one connection type.
/// How many full buffers may wait for the background writer before operations write them.
/// Generous on purpose: on a saturated runtime one write's round trips wait behind the
/// requests it serves, and every record that arrives meanwhile joins the next, larger batch;
/// making operations wait early would cap throughput at the writer's latency.
pub(crate) const BACKPRESSURE: usize = 32;

/// Audit records per multi-row INSERT.
const INSERT_CHUNK: usize = 1000;

macro_rules! audit_sql {
    ($name:ident, $conn:ty, $db:ty) => {
        mod $name {
            use edk_core::TenantId;

            use super::{AuditCheckpoint, CheckpointRow, EventRow, Pending, chain_hash};
            use crate::Error;

            pub(super) async fn append(
                conn: &mut $conn,
                tenant: TenantId,
                group: &[Pending],
            ) -> Result<(), Error> {
                let id = *tenant.as_uuid();
                sqlx::query(
                    "INSERT INTO kms_audit_head (tenant_id, seq, hash) VALUES ($1, 0, '') \
                     ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?;
                // The UPDATE locks the head row until commit: one writer per chain.
                let (mut seq, mut prev): (i64, String) = sqlx::query_as(
                    "UPDATE kms_audit_head SET seq = seq WHERE tenant_id = $1 RETURNING seq, hash",
                )
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?;
                let mut rows = Vec::with_capacity(group.len());
                for record in group {
                    seq += 1;
                    let at = record.at.timestamp_micros();
                    let outcome = record.outcome.as_string();
                    let hash = chain_hash(
                        tenant,
                        seq,
                        at,
                        &record.actor,
                        record.operation,
                        record.alias.as_deref(),
                        record.kid.as_deref(),
                        &outcome,
                        &prev,
                    );
                    let prev_hash = std::mem::replace(&mut prev, hash.clone());
                    rows.push((seq, at, record, outcome, prev_hash, hash));
                }
                // Multi-row inserts: ten parameters a row, a thousand rows a statement, stays
                // below both backends' limits on bound parameters (32,766 and 65,535).
                for chunk in rows.chunks(super::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO kms_audit_event (tenant_id, seq, at_micros, actor, \
                         operation, alias, kid, outcome, prev_hash, hash) ",
                    );
                    insert.push_values(
                        chunk,
                        |mut row, (seq, at, record, outcome, prev_hash, hash)| {
                            row.push_bind(id)
                                .push_bind(*seq)
                                .push_bind(*at)
                                .push_bind(record.actor.as_str())
                                .push_bind(record.operation)
                                .push_bind(record.alias.as_deref())
                                .push_bind(record.kid.as_deref())
                                .push_bind(outcome.as_str())
                                .push_bind(prev_hash.as_str())
                                .push_bind(hash.as_str());
                        },
                    );
                    insert
                        .build()
                        .execute(&mut *conn)
                        .await
                        .map_err(crate::store::StoreError::from)?;
                }
                sqlx::query("UPDATE kms_audit_head SET seq = $1, hash = $2 WHERE tenant_id = $3")
                    .bind(seq)
                    .bind(&prev)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(crate::store::StoreError::from)?;
                Ok(())
            }

            pub(super) async fn events(
                conn: &mut $conn,
                tenant: TenantId,
                after: i64,
                upto: i64,
                limit: i64,
            ) -> Result<Vec<EventRow>, Error> {
                Ok(sqlx::query_as::<_, EventRow>(
                    "SELECT seq, at_micros, actor, operation, alias, kid, outcome, prev_hash, \
                     hash FROM kms_audit_event WHERE tenant_id = $1 AND seq > $2 \
                     AND seq <= $3 ORDER BY seq LIMIT $4",
                )
                .bind(*tenant.as_uuid())
                .bind(after)
                .bind(upto)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?)
            }

            pub(super) async fn head(
                conn: &mut $conn,
                tenant: TenantId,
            ) -> Result<Option<(u64, String)>, Error> {
                let row: Option<(i64, String)> =
                    sqlx::query_as("SELECT seq, hash FROM kms_audit_head WHERE tenant_id = $1")
                        .bind(*tenant.as_uuid())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(crate::store::StoreError::from)?;
                Ok(row.map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash)))
            }

            pub(super) async fn checkpoints(
                conn: &mut $conn,
                tenant: TenantId,
            ) -> Result<Vec<CheckpointRow>, Error> {
                Ok(sqlx::query_as::<_, CheckpointRow>(
                    "SELECT seq, hash, at_micros, jws FROM kms_audit_checkpoint \
                     WHERE tenant_id = $1 ORDER BY seq",
                )
                .bind(*tenant.as_uuid())
                .fetch_all(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?)
            }

            pub(super) async fn last_checkpoint(
                conn: &mut $conn,
                tenant: TenantId,
            ) -> Result<Option<CheckpointRow>, Error> {
                Ok(sqlx::query_as::<_, CheckpointRow>(
                    "SELECT seq, hash, at_micros, jws FROM kms_audit_checkpoint \
                     WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(*tenant.as_uuid())
                .fetch_optional(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?)
            }

            pub(super) async fn put_checkpoint(
                conn: &mut $conn,
                tenant: TenantId,
                checkpoint: &AuditCheckpoint,
            ) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO kms_audit_checkpoint (tenant_id, seq, hash, at_micros, jws) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, seq) DO NOTHING",
                )
                .bind(*tenant.as_uuid())
                .bind(i64::try_from(checkpoint.seq).unwrap_or(i64::MAX))
                .bind(&checkpoint.hash)
                .bind(checkpoint.at.timestamp_micros())
                .bind(&checkpoint.jws)
                .execute(&mut *conn)
                .await
                .map_err(crate::store::StoreError::from)?;
                Ok(())
            }
        }
    };
}

audit_sql!(pg, sqlx::PgConnection, sqlx::Postgres);
audit_sql!(lite, sqlx::SqliteConnection, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field() {
        let tenant = TenantId::generate();
        let base = chain_hash(tenant, 1, 5, "a", "sign", Some("x.y"), None, "success", "");
        for other in [
            chain_hash(
                TenantId::generate(),
                1,
                5,
                "a",
                "sign",
                Some("x.y"),
                None,
                "success",
                "",
            ),
            chain_hash(tenant, 2, 5, "a", "sign", Some("x.y"), None, "success", ""),
            chain_hash(tenant, 1, 6, "a", "sign", Some("x.y"), None, "success", ""),
            chain_hash(tenant, 1, 5, "b", "sign", Some("x.y"), None, "success", ""),
            chain_hash(
                tenant,
                1,
                5,
                "a",
                "verify",
                Some("x.y"),
                None,
                "success",
                "",
            ),
            chain_hash(tenant, 1, 5, "a", "sign", None, None, "success", ""),
            chain_hash(
                tenant,
                1,
                5,
                "a",
                "sign",
                Some("x.y"),
                Some("k"),
                "success",
                "",
            ),
            chain_hash(tenant, 1, 5, "a", "sign", Some("x.y"), None, "failure", ""),
            chain_hash(tenant, 1, 5, "a", "sign", Some("x.y"), None, "success", "p"),
            chain_hash(tenant, 1, 5, "as", "ign", Some("x.y"), None, "success", ""),
        ] {
            assert_ne!(base, other);
        }
    }
}
