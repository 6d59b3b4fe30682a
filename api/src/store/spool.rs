//! Writes that must not be lost while the database is away: they go to the database when it
//! answers and to the on-disk [`Journal`] when it does not, and the journal is replayed in
//! order, once, when it is back.
//!
//! ```text
//!  StoreSink (records)  ─┐                       database answers
//!  HTTP (presence,       ├─▶ Store::insert_* ─▶ Spool::submit ──────────────▶ database
//!   audit, queue pause) ─┘                        │ unavailable, or the journal
//!                                                 │ already holds something (order)
//!                                                 ▼
//!                                           journal (fsynced) ─▶ replayer task ─▶ database
//!                                                                (probes while down)
//! ```
//!
//! What goes through here: calls, CDRs, decision traces, recordings, intervals, campaign
//! attempts, dispositions and states, agent presence, stand-alone audit entries and queue
//! pause/resume.
//! (There is no webhook outbox in this build; it would be one more [`Op`].) Configuration
//! changes do not: they are validated and written with their audit row in one transaction
//! while the caller waits, so during an outage they answer 503 and nothing is journaled.
//!
//! Rules:
//! - `submit` returns once the write is committed in the database or fsynced in the journal
//!   (the record sink's `write` relies on it: it never waits out an outage).
//! - A write the database has not answered within [`WRITE_DEADLINE`] (3 s) is journaled too,
//!   so that even a connection that hangs cannot hold `submit`.
//! - While the journal holds anything, or the database is known to be down, new writes go
//!   behind it without trying the database, so the order of one producer is kept.
//! - The replayer removes an entry only after its write committed. A crash in between replays
//!   it again: records are keyed (the same record again is a no-op, see the history module),
//!   presence and campaign states are plain updates, and audit entries and dispositions are
//!   replayed with a guard that skips a row already stored with the same content and time.
//! - At the journal's bound, a write that cannot be journaled fails with
//!   [`StoreError::JournalFull`]: the sink counts its rows in `switchyard_records_dropped`,
//!   and an ERROR is logged (at most every [`FULL_LOG_EVERY`]); what is journaled is kept.
//! - A journal entry the database refuses for another reason (not unavailability) is retried
//!   [`REPLAY_ATTEMPTS`] times with backoff, then dropped with an ERROR and counted, so one bad
//!   entry cannot hold everything behind it forever.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::rows::{CallRow, CdrRow, IntervalRow, RecordingRow, TraceRow};
use super::{AttemptRow, AuditEntry, DispositionRow, Store, StoreError};
use crate::journal::{Journal, JournalError};
use crate::model::TenantId;

/// How often the replayer asks a database known to be down whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Attempts at a journal entry the database refuses (for a reason other than being away)
/// before it is dropped.
pub const REPLAY_ATTEMPTS: u32 = 10;

/// The longest a write waits for the database before it is journaled instead. The pool's
/// acquire timeout and PostgreSQL's `statement_timeout` end most waits sooner; this one also
/// ends a wait on a connection whose peer vanished without a reset (a black-holed network),
/// which only TCP's own timeouts (minutes) would end. A write cut off here may still have
/// committed: its replay is idempotent (see the module doc).
pub const WRITE_DEADLINE: Duration = Duration::from_secs(3);

/// Least time between two ERROR logs of writes refused at the journal's bound.
pub const FULL_LOG_EVERY: Duration = Duration::from_secs(10);

/// One write, as the journal keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    Calls {
        rows: Vec<CallRow>,
    },
    Cdrs {
        rows: Vec<CdrRow>,
    },
    Traces {
        rows: Vec<TraceRow>,
    },
    /// Open rows and final records, keyed by the recording's id like calls.
    Recordings {
        rows: Vec<RecordingRow>,
    },
    Intervals {
        rows: Vec<IntervalRow>,
    },
    Journeys {
        rows: Vec<super::JourneyRow>,
    },
    Attempts {
        rows: Vec<JournalAttempt>,
    },
    Dispositions {
        rows: Vec<DispositionRow>,
    },
    CampaignState {
        id: i64,
        state: String,
        /// When it changed (its webhook message's identity); journals from before the outbox
        /// read as 0.
        #[serde(default)]
        at_ms: i64,
    },
    /// Calls answered by their agents (their `call.answered` messages).
    Answers {
        rows: Vec<super::outbox::AnswerRow>,
    },
    AgentStates {
        rows: Vec<super::outbox::AgentStateRow>,
    },
    Presence {
        tenant: TenantId,
        agent: i64,
        presence: Value,
    },
    Audit {
        entry: JournalAudit,
    },
    QueuePaused {
        tenant: TenantId,
        queue: i64,
        paused: bool,
        audit: JournalAudit,
    },
}

impl Op {
    /// Records in this write (what is counted as dropped when it cannot be kept).
    pub(crate) fn rows(&self) -> u64 {
        match self {
            Op::Calls { rows } => rows.len() as u64,
            Op::Cdrs { rows } => rows.len() as u64,
            Op::Traces { rows } => rows.len() as u64,
            Op::Recordings { rows } => rows.len() as u64,
            Op::Intervals { rows } => rows.len() as u64,
            Op::Journeys { rows } => rows.len() as u64,
            Op::Answers { rows } => rows.len() as u64,
            Op::AgentStates { rows } => rows.len() as u64,
            Op::Attempts { rows } => rows.len() as u64,
            Op::Dispositions { rows } => rows.len() as u64,
            _ => 1,
        }
    }

    fn is_empty(&self) -> bool {
        self.rows() == 0
    }
}

/// An attempt with the contact columns the API's JSON leaves out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JournalAttempt {
    tenant: TenantId,
    campaign_id: i64,
    contact_id: i64,
    leg: String,
    attempt: i32,
    outcome: String,
    call_id: Option<i64>,
    agent_id: Option<i64>,
    dialed_at_ms: i64,
    answered_at_ms: Option<i64>,
    ended_at_ms: i64,
    contact_status: String,
    contact_next_attempt_at_ms: i64,
    contact_attempts: i32,
    /// Absent in entries journaled before attempts carried it: not a machine.
    #[serde(default)]
    machine: bool,
}

impl From<&AttemptRow> for JournalAttempt {
    fn from(r: &AttemptRow) -> JournalAttempt {
        JournalAttempt {
            tenant: r.tenant,
            campaign_id: r.campaign_id,
            contact_id: r.contact_id,
            leg: r.leg.clone(),
            attempt: r.attempt,
            outcome: r.outcome.clone(),
            call_id: r.call_id,
            agent_id: r.agent_id,
            dialed_at_ms: r.dialed_at_ms,
            answered_at_ms: r.answered_at_ms,
            ended_at_ms: r.ended_at_ms,
            contact_status: r.contact_status.clone(),
            contact_next_attempt_at_ms: r.contact_next_attempt_at_ms,
            contact_attempts: r.contact_attempts,
            machine: r.machine,
        }
    }
}

impl From<JournalAttempt> for AttemptRow {
    fn from(r: JournalAttempt) -> AttemptRow {
        AttemptRow {
            tenant: r.tenant,
            campaign_id: r.campaign_id,
            contact_id: r.contact_id,
            leg: r.leg,
            attempt: r.attempt,
            outcome: r.outcome,
            call_id: r.call_id,
            agent_id: r.agent_id,
            dialed_at_ms: r.dialed_at_ms,
            answered_at_ms: r.answered_at_ms,
            ended_at_ms: r.ended_at_ms,
            contact_status: r.contact_status,
            contact_next_attempt_at_ms: r.contact_next_attempt_at_ms,
            contact_attempts: r.contact_attempts,
            machine: r.machine,
        }
    }
}

/// An audit entry with the time it was made (a replay writes that time, not its own).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JournalAudit {
    pub tenant: Option<TenantId>,
    pub key_id: Option<Uuid>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub detail: Value,
    pub at_ms: i64,
}

impl JournalAudit {
    pub(crate) fn of(entry: &AuditEntry<'_>, at_ms: i64) -> JournalAudit {
        JournalAudit {
            tenant: entry.tenant,
            key_id: entry.key_id,
            action: entry.action.to_owned(),
            object_kind: entry.object_kind.to_owned(),
            object_id: entry.object_id.clone(),
            detail: entry.detail.clone(),
            at_ms,
        }
    }

    pub(crate) fn entry(&self) -> AuditEntry<'_> {
        AuditEntry {
            tenant: self.tenant,
            key_id: self.key_id,
            action: &self.action,
            object_kind: &self.object_kind,
            object_id: self.object_id.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// Where the journal stands, for `/readyz` and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpoolStatus {
    /// Unix ms since when the database is known to be unavailable (None: it answers).
    pub down_since_ms: Option<i64>,
    /// Why, as the last failure said.
    pub reason: Option<String>,
    pub pending_entries: u64,
    pub pending_bytes: u64,
    pub bound_bytes: u64,
    /// Entries written to the database from the journal since start.
    pub replayed: u64,
    /// Records refused at the journal's bound (the sink also counts these in its
    /// `records_dropped`).
    pub refused_at_bound: u64,
    /// Records of journal entries given up on (refused by the database [`REPLAY_ATTEMPTS`]
    /// times, or not decodable).
    pub replay_dropped: u64,
    /// Records a replay found stored under their id with other content (kept as stored).
    pub duplicates: u64,
    pub dir: PathBuf,
}

#[derive(Debug, Default)]
struct Health {
    down_since_ms: Option<i64>,
    reason: Option<String>,
    last_full_log: Option<Instant>,
}

/// The journal and the database's health, shared by every clone of a [`Store`].
#[derive(Debug)]
pub struct Spool {
    /// The same database without a spool: what submits and replays write through.
    direct: Store,
    journal: Mutex<Journal>,
    /// Serializes "does the journal hold anything? then append" against the replayer's
    /// removal of the last entry, so a write never slips in front of the journal.
    gate: tokio::sync::Mutex<()>,
    health: Mutex<Health>,
    pending_entries: AtomicU64,
    pending_bytes: AtomicU64,
    replayed: AtomicU64,
    refused_at_bound: AtomicU64,
    replay_dropped: AtomicU64,
    duplicates: AtomicU64,
    wake: Arc<Notify>,
    dir: PathBuf,
    bound: u64,
}

impl Spool {
    /// Opens the journal in `dir` (see [`Journal::open`]) in front of `direct` and starts the
    /// replayer, which begins with whatever the journal already holds.
    pub(crate) fn start(
        direct: Store,
        dir: &Path,
        bound_bytes: u64,
    ) -> Result<Arc<Spool>, StoreError> {
        let journal = Journal::open(dir, bound_bytes).map_err(StoreError::Journal)?;
        let spool = Arc::new(Spool {
            direct,
            pending_entries: AtomicU64::new(journal.pending_entries()),
            pending_bytes: AtomicU64::new(journal.pending_bytes()),
            bound: journal.bound_bytes(),
            journal: Mutex::new(journal),
            gate: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health::default()),
            replayed: AtomicU64::new(0),
            refused_at_bound: AtomicU64::new(0),
            replay_dropped: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            dir: dir.to_owned(),
        });
        let pending = spool.pending_entries.load(Ordering::Relaxed);
        if pending > 0 {
            info!(
                entries = pending,
                dir = %dir.display(),
                "the journal holds writes from an earlier outage; replaying them before \
                 anything new"
            );
        }
        // The task holds only a weak reference: it ends when the last store clone is gone.
        tokio::spawn(replay_loop(Arc::downgrade(&spool)));
        Ok(spool)
    }

    pub fn status(&self) -> SpoolStatus {
        let h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        SpoolStatus {
            down_since_ms: h.down_since_ms,
            reason: h.reason.clone(),
            pending_entries: self.pending_entries.load(Ordering::Relaxed),
            pending_bytes: self.pending_bytes.load(Ordering::Relaxed),
            bound_bytes: self.bound,
            replayed: self.replayed.load(Ordering::Relaxed),
            refused_at_bound: self.refused_at_bound.load(Ordering::Relaxed),
            replay_dropped: self.replay_dropped.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dir: self.dir.clone(),
        }
    }

    pub(crate) fn is_down(&self) -> bool {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .down_since_ms
            .is_some()
    }

    /// Remembers that the database did not answer (the first failure of an outage sets the
    /// time); the replayer then probes until it answers.
    pub(crate) fn mark_down(&self, reason: &str) {
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if h.down_since_ms.is_none() {
            warn!(
                reason,
                "the database is unavailable; writes go to the journal"
            );
            h.down_since_ms = Some(super::now_ms());
        }
        h.reason = Some(reason.to_owned());
        drop(h);
        self.wake.notify_one();
    }

    fn mark_up(&self) {
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(since) = h.down_since_ms.take() {
            info!(
                down_ms = super::now_ms() - since,
                pending = self.pending_entries.load(Ordering::Relaxed),
                "the database answers again; replaying the journal"
            );
        }
        h.reason = None;
    }

    /// Waits until the journal is empty and the database answers, or `timeout` passes;
    /// true when drained.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.pending_entries.load(Ordering::Acquire) == 0 && !self.is_down() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `op` to the database, or to the journal while the database is unavailable (or
    /// the journal holds older writes). Ok once it is durable in one of them.
    pub(crate) async fn submit(self: &Arc<Self>, op: Op) -> Result<(), StoreError> {
        if op.is_empty() {
            return Ok(());
        }
        if self.is_down() || self.pending_entries.load(Ordering::Acquire) > 0 {
            // Encoded before the gate is taken: other writers wait only for the file.
            let payload = encode(&op)?;
            let _gate = self.gate.lock().await;
            if self.is_down() || self.pending_entries.load(Ordering::Acquire) > 0 {
                return self.append(payload, op.rows()).await;
            }
        }
        match within_deadline(apply(&self.direct, &op, false, &self.duplicates)).await {
            Ok(()) => Ok(()),
            Err(StoreError::Unavailable { reason }) => {
                self.mark_down(&reason);
                let payload = encode(&op)?;
                let _gate = self.gate.lock().await;
                self.append(payload, op.rows()).await
            }
            Err(other) => Err(other),
        }
    }

    /// Appends an encoded [`Op`] of `rows` records (the caller holds the gate) on the
    /// blocking pool: an fsync may take a while.
    async fn append(self: &Arc<Self>, payload: Vec<u8>, rows: u64) -> Result<(), StoreError> {
        let me = self.clone();
        let appended = tokio::task::spawn_blocking(move || {
            let mut j = me.journal.lock().unwrap_or_else(PoisonError::into_inner);
            let result = j.append(&[payload]);
            me.pending_entries
                .store(j.pending_entries(), Ordering::Release);
            me.pending_bytes.store(j.pending_bytes(), Ordering::Relaxed);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("journal append task: {e}")))?;
        match appended {
            Ok(()) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(JournalError::Full { bound_bytes, .. }) => {
                let n = rows;
                self.refused_at_bound.fetch_add(n, Ordering::Relaxed);
                let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if h.last_full_log
                    .is_none_or(|t| now.duration_since(t) >= FULL_LOG_EVERY)
                {
                    h.last_full_log = Some(now);
                    error!(
                        bound_bytes,
                        rows = n,
                        dropped_total = self.refused_at_bound.load(Ordering::Relaxed),
                        "the database is unavailable and the journal is full: new records \
                         are dropped (counted in switchyard_records_dropped); the journal \
                         keeps the oldest and is replayed when the database returns"
                    );
                }
                Err(StoreError::JournalFull { bound_bytes })
            }
            Err(e) => Err(StoreError::Journal(e)),
        }
    }

    /// One step of the replayer: writes the oldest entry and removes it once committed.
    /// Returns what the loop should do next.
    async fn replay_one(self: &Arc<Self>, failures: &mut u32) -> Step {
        let me = self.clone();
        let peeked = tokio::task::spawn_blocking(move || {
            me.journal
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .peek()
        })
        .await;
        let entry = match peeked {
            Ok(Ok(Some(entry))) => entry,
            Ok(Ok(None)) => return Step::Idle,
            Ok(Err(e)) => {
                error!(error = %e, "cannot read the journal; retrying");
                return Step::Wait(Duration::from_secs(1));
            }
            Err(e) => {
                error!(error = %e, "journal read task failed; retrying");
                return Step::Wait(Duration::from_secs(1));
            }
        };
        let op: Op = match serde_json::from_slice(&entry) {
            Ok(op) => op,
            Err(e) => {
                // Checked by its checksum, so written by another build: not ours to guess at.
                error!(error = %e, "a journal entry does not decode; dropping it");
                self.replay_dropped.fetch_add(1, Ordering::Relaxed);
                return self.pop().await;
            }
        };
        match within_deadline(apply(&self.direct, &op, true, &self.duplicates)).await {
            Ok(()) => {
                *failures = 0;
                self.replayed.fetch_add(1, Ordering::Relaxed);
                self.pop().await
            }
            Err(StoreError::Unavailable { reason }) => {
                self.mark_down(&reason);
                Step::Wait(PROBE_EVERY)
            }
            Err(e) => {
                *failures += 1;
                if *failures >= REPLAY_ATTEMPTS {
                    error!(error = %e, rows = op.rows(), "gave up replaying a journal entry");
                    self.replay_dropped.fetch_add(op.rows(), Ordering::Relaxed);
                    *failures = 0;
                    return self.pop().await;
                }
                warn!(error = %e, attempt = *failures, "replaying a journal entry failed; retrying");
                Step::Wait(Duration::from_millis(100 << (*failures).min(6)))
            }
        }
    }

    async fn pop(self: &Arc<Self>) -> Step {
        let _gate = self.gate.lock().await;
        let me = self.clone();
        let popped = tokio::task::spawn_blocking(move || {
            let mut j = me.journal.lock().unwrap_or_else(PoisonError::into_inner);
            let result = j.pop();
            me.pending_entries
                .store(j.pending_entries(), Ordering::Release);
            me.pending_bytes.store(j.pending_bytes(), Ordering::Relaxed);
            result
        })
        .await;
        match popped {
            Ok(Ok(())) => {
                if self.pending_entries.load(Ordering::Acquire) == 0 {
                    info!(
                        replayed = self.replayed.load(Ordering::Relaxed),
                        "journal replayed"
                    );
                }
                Step::Next
            }
            Ok(Err(e)) => {
                error!(error = %e, "cannot advance the journal; retrying");
                Step::Wait(Duration::from_secs(1))
            }
            Err(e) => {
                error!(error = %e, "journal task failed; retrying");
                Step::Wait(Duration::from_secs(1))
            }
        }
    }
}

/// `write`, or `Unavailable` once [`WRITE_DEADLINE`] has passed.
async fn within_deadline(
    write: impl std::future::Future<Output = Result<(), StoreError>>,
) -> Result<(), StoreError> {
    tokio::time::timeout(WRITE_DEADLINE, write)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable {
                reason: format!("no answer within {WRITE_DEADLINE:?}"),
            })
        })
}

fn encode(op: &Op) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(op).map_err(|e| StoreError::Internal(format!("journal entry: {e}")))
}

enum Step {
    Next,
    Idle,
    Wait(Duration),
}

/// Probes while the database is down and replays while the journal holds anything; sleeps on
/// `wake` otherwise.
async fn replay_loop(spool: std::sync::Weak<Spool>) {
    let mut failures = 0u32;
    loop {
        let Some(s) = spool.upgrade() else {
            return;
        };
        let step = if s.is_down() {
            match s.direct.ping().await {
                Ok(()) => {
                    s.mark_up();
                    Step::Next
                }
                Err(e) => {
                    if let StoreError::Unavailable { reason } = &e {
                        s.mark_down(reason);
                    }
                    Step::Wait(PROBE_EVERY)
                }
            }
        } else if s.pending_entries.load(Ordering::Acquire) > 0 {
            s.replay_one(&mut failures).await
        } else {
            Step::Idle
        };
        match step {
            Step::Next => {}
            Step::Wait(d) => {
                drop(s);
                tokio::time::sleep(d).await;
            }
            Step::Idle => {
                // Woken by an append or a failure; the timeout only re-checks the weak
                // reference so the task ends with its store.
                let wake = s.wake.clone();
                drop(s);
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
        }
    }
}

/// Writes `op` through `store` (which has no spool). `replay`: the write may have committed
/// before (a crash between commit and removal), so rows without an identity are written only
/// if no row with the same content and time is there, and records refused as another record
/// under their id are left out (counted by the caller's [`Spool`]) instead of failing.
///
/// Boxed: the store's methods it calls are the ones that submit to the spool (on a store
/// without one, so it never recurses at run time, but the future types would be infinite).
fn apply<'a>(
    store: &'a Store,
    op: &'a Op,
    replay: bool,
    spool_dups: &'a AtomicU64,
) -> crate::http::BoxFuture<'a, Result<(), StoreError>> {
    Box::pin(async move {
        match op {
            Op::Calls { rows } => {
                keyed(
                    rows.clone(),
                    |r| r.id.to_string(),
                    replay,
                    spool_dups,
                    |r| {
                        let store = store.clone();
                        async move { store.insert_calls(&r).await }
                    },
                )
                .await
            }
            Op::Cdrs { rows } => {
                keyed(
                    rows.clone(),
                    |r| r.leg.to_string(),
                    replay,
                    spool_dups,
                    |r| {
                        let store = store.clone();
                        async move { store.insert_cdrs(&r).await }
                    },
                )
                .await
            }
            Op::Traces { rows } => {
                keyed(
                    rows.clone(),
                    |r| r.id.clone(),
                    replay,
                    spool_dups,
                    |r| {
                        let store = store.clone();
                        async move { store.insert_traces(&r).await }
                    },
                )
                .await
            }
            Op::Recordings { rows } => {
                keyed(
                    rows.clone(),
                    |r| r.id.to_string(),
                    replay,
                    spool_dups,
                    |r| {
                        let store = store.clone();
                        async move { store.insert_recordings(&r).await }
                    },
                )
                .await
            }
            Op::Intervals { rows } => store.insert_intervals(rows).await,
            Op::Journeys { rows } => store.insert_journeys(rows).await,
            Op::Answers { rows } => store.insert_answers(rows).await,
            Op::AgentStates { rows } => store.insert_agent_states(rows).await,
            Op::Attempts { rows } => {
                let rows: Vec<AttemptRow> = rows.iter().cloned().map(AttemptRow::from).collect();
                keyed(
                    rows,
                    |r| r.leg.clone(),
                    replay,
                    spool_dups,
                    |r| {
                        let store = store.clone();
                        async move { store.insert_attempts(&r).await }
                    },
                )
                .await
            }
            Op::Dispositions { rows } => store.insert_dispositions_guarded(rows, replay).await,
            Op::CampaignState { id, state, at_ms } => {
                store.record_campaign_state(*id, state, *at_ms).await
            }
            Op::Presence {
                tenant,
                agent,
                presence,
            } => store
                .set_agent_presence(*tenant, *agent, presence.clone())
                .await
                .map(|_| ()),
            Op::Audit { entry } => {
                store
                    .insert_audit_at(&entry.entry(), entry.at_ms, replay)
                    .await
            }
            Op::QueuePaused {
                tenant,
                queue,
                paused,
                audit,
            } => store
                .set_queue_paused_now(*tenant, *queue, *paused, &audit.entry())
                .await
                .map(|_| ()),
        }
    })
}

/// Writes keyed records; in a replay, records refused as duplicates are left out and the rest
/// written again (as [`crate::runtime::write_records`] does for the sink).
async fn keyed<T, F, Fut>(
    mut rows: Vec<T>,
    id: impl Fn(&T) -> String,
    replay: bool,
    dups: &AtomicU64,
    write: F,
) -> Result<(), StoreError>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    loop {
        match write(rows.clone()).await {
            Err(StoreError::Duplicate { what, ids }) if replay => {
                let before = rows.len();
                rows.retain(|r| !ids.contains(&id(r)));
                let refused = before - rows.len();
                if refused == 0 {
                    return Err(StoreError::Duplicate { what, ids });
                }
                dups.fetch_add(refused as u64, Ordering::Relaxed);
                warn!(
                    refused,
                    ids = %ids.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
                    "replayed {what}s refused: another record is already stored under the \
                     same id; the stored one is kept"
                );
                if rows.is_empty() {
                    return Ok(());
                }
            }
            other => return other,
        }
    }
}
