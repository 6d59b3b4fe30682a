//! History: calls, CDRs, routing traces and interval figures, written in batches by the
//! runtime and read (tenant-scoped) by the API; and reads of the audit log.
//!
//! A batch is one transaction: all of it lands or none. Calls, CDRs, traces (and campaign
//! attempts, in `campaigns`; recordings, in `recordings`) are records with an identity: each
//! is compared with what is stored under its id first ([`Store::insert_records`]):
//! - the same record again is a no-op (a batch retried after a commit whose answer was lost,
//!   or replayed);
//! - better information about the same record replaces it: a real CDR replacing the
//!   synthetic one recovery wrote for the same leg of the same call; a call's final record
//!   replacing its open row ([`OPEN_CALL`], written before its first offer); a campaign dial's
//!   final attempt replacing its open one (`dialing`, written before its originate);
//! - anything else is another record under an id already taken (a switch that reuses channel
//!   uuids): the batch fails with [`StoreError::Duplicate`] naming them, writes nothing, and
//!   the stored rows stay as they were. The runtime logs, counts and leaves those out.
//!
//! Interval figures are not records but running totals: re-written, they replace the old ones.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};
use uuid::Uuid;

use super::rows::FromStoreRow;
use super::rows::{audit_cols, call_cols, cdr_cols, interval_cols, trace_cols};
use super::spool::Op;
use super::{
    Arg, AuditFilter, AuditRow, CallFilter, CallRow, CdrRow, Inner, IntervalRow, IntervalScope,
    Store, StoreError, TraceRow, Use,
};
use crate::model::TenantId;

/// Rows per INSERT statement in a batch (a batch may have many statements, still one
/// transaction). 200 rows of 13 columns stay far below both backends' bind-parameter limits.
pub const INSERT_CHUNK_ROWS: usize = 200;

/// Most parameters one multi-row statement binds (see `insert_statements`).
pub const MAX_STATEMENT_PARAMS: usize = 256;

/// The largest page `list_calls` returns.
pub const MAX_CALLS_PAGE: u32 = 500;

/// The most rows `traces_for_call` / `cdrs_for_call` return (a call has a handful).
pub const MAX_PER_CALL: i64 = 1000;

/// The most rows `list_intervals` returns (a year of hours, three months of 15 minutes).
pub const MAX_INTERVALS: i64 = 10_000;

/// The most rows `list_audit` returns.
pub const MAX_AUDIT: u32 = 1000;

const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 1 + 8 + 16;

/// The page cursor: opaque to clients (hex of version, arrived_at, id), checked on the way back.
pub(super) fn encode_cursor(arrived_at_ms: i64, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(CURSOR_BYTES);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(&arrived_at_ms.to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    hex::encode(bytes)
}

pub(super) fn decode_cursor(cursor: &str) -> Result<(i64, Uuid), StoreError> {
    let bad = || StoreError::invalid("cursor", "not a cursor from a previous page");
    let mut bytes = [0u8; CURSOR_BYTES];
    hex::decode_to_slice(cursor, &mut bytes).map_err(|_| bad())?;
    let [version, rest @ ..] = bytes;
    if version != CURSOR_VERSION {
        return Err(bad());
    }
    let (at, id) = rest.split_at(8);
    let at = i64::from_be_bytes(at.try_into().map_err(|_| bad())?);
    let id = Uuid::from_slice(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// SQL text with `$N` placeholders numbered as values are bound.
#[derive(Debug, Default)]
pub(super) struct SqlBuilder {
    sql: String,
    args: Vec<Arg>,
}

impl SqlBuilder {
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    pub(super) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.args.len());
        self
    }

    /// `(` `$a, $b, ...` `)` for one row of values.
    fn row(&mut self, values: Vec<Arg>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")")
    }

    /// Only static fragments and placeholders are ever pushed; values travel as binds.
    pub(super) fn finish(self) -> (SqlStr, Vec<Arg>) {
        (AssertSqlSafe(self.sql).into_sql_str(), self.args)
    }
}

/// One multi-row INSERT per chunk of `rows`: `head` `VALUES (...), (...)` `tail`.
pub(super) fn insert_statements<T>(
    head: &str,
    tail: &str,
    rows: &[T],
    values: impl Fn(&T) -> Vec<Arg>,
) -> Vec<(SqlStr, Vec<Arg>)> {
    // SQLite finds a parameter's name by walking the statement's list of them, and sqlx asks
    // for every one: binding n parameters costs n^2 (a 2,400-parameter insert spent most of
    // the webhook benchmark's time there). Bounded per statement, it stays linear.
    let per_row = rows.first().map_or(1, |r| values(r).len().max(1));
    let chunk = (MAX_STATEMENT_PARAMS / per_row).clamp(1, INSERT_CHUNK_ROWS);
    rows.chunks(chunk)
        .map(|chunk| {
            let mut b = SqlBuilder::default();
            b.push(head).push(" VALUES ");
            for (i, row) in chunk.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.row(values(row));
            }
            b.push(" ").push(tail);
            b.finish()
        })
        .collect()
}

fn call_values(c: &CallRow) -> Vec<Arg> {
    // A Vec<i64> always serialises.
    let queues = serde_json::Value::from(c.queues.clone());
    args![
        c.id,
        c.tenant,
        c.queue_id,
        &queues,
        c.agent_id,
        c.caller_number.as_str(),
        c.outcome.as_str(),
        c.arrived_at_ms,
        c.wait_ms,
        c.talk_ms,
        c.offers,
        c.synthetic,
        c.callback_leg,
    ]
}

fn cdr_values(c: &CdrRow) -> Vec<Arg> {
    args![
        c.leg,
        c.tenant,
        c.call_id,
        c.direction.as_str(),
        c.caller_number.as_str(),
        c.destination.as_str(),
        c.hangup_cause.as_str(),
        c.started_at_ms,
        c.answered_at_ms,
        c.ended_at_ms,
        c.billsec_ms,
        c.synthetic,
    ]
}

fn trace_values(t: &TraceRow) -> Vec<Arg> {
    args![
        t.id.as_str(),
        t.tenant,
        t.call_id,
        t.at_ms,
        t.queue_id,
        t.agent_id,
        &t.trace
    ]
}

/// `''` for platform-wide rows: see the interval_stats DDL.
fn interval_tenant(tenant: Option<TenantId>) -> String {
    tenant
        .map(|t| t.0.hyphenated().to_string())
        .unwrap_or_default()
}

pub(super) fn interval_values(r: &IntervalRow) -> Vec<Arg> {
    args![
        interval_tenant(r.tenant),
        r.scope.kind(),
        r.scope.id(),
        r.start_ms,
        r.end_ms,
        &r.figures,
    ]
}

/// A record of a batch against the one already stored (or earlier in the batch) under its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Versus {
    /// The same record again, or one that adds nothing to it: nothing to write.
    Same,
    /// Better information about the same record: it takes the stored one's place.
    Replaces,
    /// Another record under the same id: refused.
    Collides,
}

/// What to do with a batch of records, decided against the rows stored under their ids.
#[derive(Debug)]
struct Plan<'a, T> {
    /// Rows to insert, in batch order; `true` where a stored row is deleted first.
    writes: Vec<(&'a T, bool)>,
    /// Ids taken by other records, in batch order, once each.
    collisions: Vec<String>,
}

/// Compares each of `rows` with the stored row under its key, then with the batch's earlier
/// rows of that key (see [`Versus`]).
fn plan<'a, T, K>(
    rows: &'a [T],
    stored: &HashMap<K, T>,
    key: &impl Fn(&T) -> K,
    versus: &impl Fn(&T, &T) -> Versus,
) -> Plan<'a, T>
where
    K: std::hash::Hash + Eq + std::fmt::Display,
{
    let mut writes: Vec<(&T, bool)> = Vec::with_capacity(rows.len());
    let mut at: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut collisions = Vec::new();
    for row in rows {
        let k = key(row);
        let verdict = match (at.get(&k), stored.get(&k)) {
            (Some(&i), _) => match versus(writes[i].0, row) {
                Versus::Replaces => {
                    writes[i].0 = row;
                    continue;
                }
                other => other,
            },
            (None, Some(old)) => match versus(old, row) {
                Versus::Replaces => {
                    at.insert(k, writes.len());
                    writes.push((row, true));
                    continue;
                }
                other => other,
            },
            (None, None) => {
                at.insert(k, writes.len());
                writes.push((row, false));
                continue;
            }
        };
        if verdict == Versus::Collides {
            let id = k.to_string();
            if !collisions.contains(&id) {
                collisions.push(id);
            }
        }
    }
    Plan { writes, collisions }
}

fn same_or_collides(same: bool) -> Versus {
    if same { Versus::Same } else { Versus::Collides }
}

/// The outcome of a call's open row: written before its first offer, replaced by its final
/// record (see the module doc).
pub const OPEN_CALL: &str = "in-progress";

/// Arrival stamps of one call's rows may differ by this much (a caller who came back after a
/// restart is stamped from its channel, to the millisecond, through another engine clock).
const SAME_ARRIVAL_MS: i64 = 1_000;

/// A call row against the one stored under its id (see [`Store::insert_calls`]).
fn call_versus(old: &CallRow, new: &CallRow) -> Versus {
    if old == new {
        return Versus::Same;
    }
    let one_call = old.tenant == new.tenant
        && (old.arrived_at_ms - new.arrived_at_ms).abs() <= SAME_ARRIVAL_MS;
    match (old.outcome == OPEN_CALL, new.outcome == OPEN_CALL) {
        (true, false) if one_call => Versus::Replaces,
        // The call opened again (it came back after a restart), or its open row after its
        // final one (a replay): nothing new.
        (_, true) if one_call => Versus::Same,
        _ => Versus::Collides,
    }
}

/// A CDR against the one stored for its leg (see [`Store::insert_cdrs`]).
fn cdr_versus(old: &CdrRow, new: &CdrRow) -> Versus {
    if old == new {
        return Versus::Same;
    }
    // Recovery's guess and the real record of one leg: same call, and the leg began before
    // the guess said it ended. A leg of another run under a reused uuid began after it.
    let one_leg = |guess: &CdrRow, real: &CdrRow| {
        guess.call_id == real.call_id && real.started_at_ms <= guess.ended_at_ms
    };
    match (old.synthetic, new.synthetic) {
        (true, false) if one_leg(old, new) => Versus::Replaces,
        (false, true) if one_leg(new, old) => Versus::Same,
        _ => Versus::Collides,
    }
}

/// One row per key, in first-seen order, the kept row chosen by `prefer(kept, new)`:
/// PostgreSQL refuses an `ON CONFLICT DO UPDATE` that would touch one row twice.
fn dedup_by<T, K: std::hash::Hash + Eq>(
    rows: &[T],
    key: impl Fn(&T) -> K,
    prefer_new: impl Fn(&T, &T) -> bool,
) -> Vec<&T> {
    let mut index: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<&T> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.entry(key(row)) {
            Entry::Occupied(slot) => {
                let i = *slot.get();
                if prefer_new(kept[i], row) {
                    kept[i] = row;
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(kept.len());
                kept.push(row);
            }
        }
    }
    kept
}

/// Attempts of one batch against writers racing it for the same ids (see `insert_records`).
const INSERT_RACE_TRIES: u32 = 3;

impl Store {
    /// Saves calls: open rows and final records (see the module doc for a call already
    /// stored).
    pub async fn insert_calls(&self, rows: &[CallRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Calls {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const SELECT: &str = concat!("SELECT ", call_cols!(), " FROM calls WHERE id IN ");
        const HEAD: &str = concat!("INSERT INTO calls (", call_cols!(), ")");
        self.insert_records(
            "call",
            SELECT,
            "DELETE FROM calls WHERE id = $1",
            rows,
            |c| c.id,
            call_versus,
            |rows| {
                let mut statements = insert_statements(HEAD, "", rows, |c| call_values(c));
                let events: Vec<_> = rows
                    .iter()
                    .flat_map(|c| super::outbox::call_events(c))
                    .collect();
                statements.extend(super::outbox::outbox_statements(&events));
                statements
            },
        )
        .await
    }

    /// Every call the store holds open (its final record was not written), oldest first.
    pub async fn open_calls(&self) -> Result<Vec<CallRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE outcome = 'in-progress' ORDER BY arrived_at"
        );
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    /// Saves CDRs (see the module doc for a leg already stored). A real CDR replaces the
    /// synthetic one of its leg when it is of the same call and the leg was alive when the
    /// synthetic one was written (it started before that one's end); a synthetic one after the
    /// real one adds nothing. Any other pair is two records under one leg id.
    pub async fn insert_cdrs(&self, rows: &[CdrRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Cdrs {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const SELECT: &str = concat!("SELECT ", cdr_cols!(), " FROM cdrs WHERE leg IN ");
        const HEAD: &str = concat!("INSERT INTO cdrs (", cdr_cols!(), ")");
        self.insert_records(
            "cdr",
            SELECT,
            "DELETE FROM cdrs WHERE leg = $1",
            rows,
            |c| c.leg,
            cdr_versus,
            |rows| insert_statements(HEAD, "", rows, |c| cdr_values(c)),
        )
        .await
    }

    /// Saves routing decision traces (see the module doc for a trace id already stored).
    pub async fn insert_traces(&self, rows: &[TraceRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Traces {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const SELECT: &str = concat!(
            "SELECT ",
            trace_cols!(),
            " FROM decision_traces WHERE id IN "
        );
        const HEAD: &str = concat!("INSERT INTO decision_traces (", trace_cols!(), ")");
        self.insert_records(
            "trace",
            SELECT,
            "DELETE FROM decision_traces WHERE id = $1",
            rows,
            |t| t.id.clone(),
            |old, new| same_or_collides(old == new),
            |rows| insert_statements(HEAD, "", rows, |t| trace_values(t)),
        )
        .await
    }

    /// Writes records with an identity in one transaction: reads what is stored under their
    /// ids (`select` ends in `IN `; the list is appended), decides with `versus(stored, new)`
    /// what each row is (see [`Versus`]), and then either fails with
    /// [`StoreError::Duplicate`] naming every id taken by another record (writing nothing) or
    /// deletes the rows being replaced (`delete` binds the key as `$1`) and runs `write` for
    /// the rest. SQLite's single writer keeps the read and the write together; on PostgreSQL a
    /// concurrent writer of the same id makes the insert fail on the key (retried, it then
    /// reads that row).
    #[allow(clippy::too_many_arguments)] // One place for the one rule; each caller is short.
    pub(super) async fn insert_records<T, K>(
        &self,
        what: &'static str,
        select: &'static str,
        delete: &'static str,
        rows: &[T],
        key: impl Fn(&T) -> K + Sync,
        versus: impl Fn(&T, &T) -> Versus + Sync,
        write: impl Fn(&[&T]) -> Vec<(SqlStr, Vec<Arg>)> + Sync,
    ) -> Result<(), StoreError>
    where
        T: FromStoreRow + Send + Sync,
        K: Into<Arg> + Clone + std::hash::Hash + Eq + std::fmt::Display + Send + Sync,
    {
        // Another writer may store one of these ids between our read and our insert (the
        // unique index then says no, and nothing of ours was written): read again, so the
        // identity rules judge the row it stored, as they would have had it come first.
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .insert_records_once(what, select, delete, rows, &key, &versus, &write)
                .await
            {
                Err(StoreError::Conflict { .. }) if tries < INSERT_RACE_TRIES => continue,
                done => return done,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_records_once<T, K>(
        &self,
        what: &'static str,
        select: &'static str,
        delete: &'static str,
        rows: &[T],
        key: &(impl Fn(&T) -> K + Sync),
        versus: &(impl Fn(&T, &T) -> Versus + Sync),
        write: &(impl Fn(&[&T]) -> Vec<(SqlStr, Vec<Arg>)> + Sync),
    ) -> Result<(), StoreError>
    where
        T: FromStoreRow + Send + Sync,
        K: Into<Arg> + Clone + std::hash::Hash + Eq + std::fmt::Display + Send + Sync,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<K> = Vec::with_capacity(rows.len());
        let mut seen = HashSet::with_capacity(rows.len());
        for r in rows {
            let k = key(r);
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        let reads: Vec<(SqlStr, Vec<Arg>)> = keys
            .chunks(INSERT_CHUNK_ROWS)
            .map(|chunk| {
                let mut b = SqlBuilder::default();
                b.push(select)
                    .row(chunk.iter().cloned().map(Into::into).collect());
                b.finish()
            })
            .collect();
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let mut stored: HashMap<K, T> = HashMap::new();
            for (sql, args) in reads {
                for row in bind_args!(sqlx::query(sql), &args)
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let row = T::from_row(&row)?;
                    stored.entry(key(&row)).or_insert(row);
                }
            }
            let decided = plan(rows, &stored, key, versus);
            if !decided.collisions.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::Duplicate {
                    what,
                    ids: decided.collisions,
                });
            }
            for (row, _) in decided.writes.iter().filter(|(_, replace)| *replace) {
                bind_args!(sqlx::query(delete), &[key(row).into()])
                    .execute(&mut *tx)
                    .await?;
            }
            let fresh: Vec<&T> = decided.writes.iter().map(|(r, _)| *r).collect();
            if !fresh.is_empty() {
                for (sql, args) in write(&fresh) {
                    bind_args!(sqlx::query(sql), &args)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StoreError::from_sqlx(e, what))?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Saves interval figures; an interval written again (same tenant, scope and start) gets
    /// the new `end_ms` and `figures` (the last one of a batch wins).
    pub async fn insert_intervals(&self, rows: &[IntervalRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Intervals {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const HEAD: &str = concat!("INSERT INTO interval_stats (", interval_cols!(), ")");
        const TAIL: &str = "ON CONFLICT (tenant_id, scope_kind, scope_id, start_ms) \
             DO UPDATE SET end_ms = excluded.end_ms, figures = excluded.figures";
        let rows = dedup_by(rows, |r| (r.tenant, r.scope, r.start_ms), |_, _| true);
        let statements = insert_statements(HEAD, TAIL, &rows, |r| interval_values(r));
        self.batch(statements).await
    }

    /// A page of the tenant's calls, newest first (by arrival, then id), and the cursor of
    /// the next page (None on the last). Pages do not overlap or skip rows, whatever is
    /// inserted meanwhile. A cursor that is not one of ours is `Invalid { field: "cursor" }`.
    pub async fn list_calls(
        &self,
        tenant: TenantId,
        filter: &CallFilter,
    ) -> Result<(Vec<CallRow>, Option<String>), StoreError> {
        let limit = filter.limit.clamp(1, MAX_CALLS_PAGE);
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;

        let mut b = SqlBuilder::default();
        b.push(concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE tenant_id = "
        ))
        .bind(tenant);
        if let Some(from) = filter.from_ms {
            b.push(" AND arrived_at >= ").bind(from);
        }
        if let Some(to) = filter.to_ms {
            b.push(" AND arrived_at < ").bind(to);
        }
        if let Some(queue) = filter.queue_id {
            b.push(" AND queue_id = ").bind(queue);
        }
        if let Some(agent) = filter.agent_id {
            b.push(" AND agent_id = ").bind(agent);
        }
        if let Some(caller) = &filter.caller_number {
            b.push(" AND caller_number = ").bind(caller.as_str());
        }
        match &filter.outcome {
            Some(outcome) => {
                b.push(" AND outcome = ").bind(outcome.as_str());
            }
            // History is of calls that ended; calls under way are asked for by name.
            None => {
                b.push(" AND outcome <> ").bind(OPEN_CALL);
            }
        }
        if let Some((at, id)) = after {
            // Row-value comparison (both backends): an index range scan on (arrived_at, id).
            b.push(" AND (arrived_at, id) < (")
                .bind(at)
                .push(", ")
                .bind(id)
                .push(")");
        }
        // One row more than asked tells whether there is a next page.
        b.push(" ORDER BY arrived_at DESC, id DESC LIMIT ")
            .bind(i64::from(limit) + 1);
        let (sql, args) = b.finish();

        let mut rows: Vec<CallRow> = self.fetch_all(Use::Read, sql, args).await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| encode_cursor(last.arrived_at_ms, last.id))
        } else {
            None
        };
        Ok((rows, next))
    }

    pub async fn get_call(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<CallRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// The call's routing decisions in order (at most [`MAX_PER_CALL`]).
    pub async fn traces_for_call(
        &self,
        tenant: TenantId,
        call_id: Uuid,
    ) -> Result<Vec<TraceRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            trace_cols!(),
            " FROM decision_traces WHERE tenant_id = $1 AND call_id = $2 ORDER BY at, id LIMIT $3"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, call_id, MAX_PER_CALL])
            .await
    }

    /// The CDRs whose `call_id` is this call (the runtime sets it on every leg of the call,
    /// the arrival leg included), by start (at most [`MAX_PER_CALL`]).
    pub async fn cdrs_for_call(
        &self,
        tenant: TenantId,
        call_id: Uuid,
    ) -> Result<Vec<CdrRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            cdr_cols!(),
            " FROM cdrs WHERE tenant_id = $1 AND call_id = $2 ORDER BY started_at, leg LIMIT $3"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, call_id, MAX_PER_CALL])
            .await
    }

    /// The intervals of one scope starting in `from_ms..to_ms`, oldest first (at most
    /// [`MAX_INTERVALS`]: ask for shorter ranges). `tenant` None: platform-wide figures.
    pub async fn list_intervals(
        &self,
        tenant: Option<TenantId>,
        scope: IntervalScope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<IntervalRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            interval_cols!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 AND scope_id = $3 \
             AND start_ms >= $4 AND start_ms < $5 ORDER BY start_ms LIMIT $6"
        );
        let args = args![
            interval_tenant(tenant),
            scope.kind(),
            scope.id(),
            from_ms,
            to_ms,
            MAX_INTERVALS,
        ];
        self.fetch_all(Use::Read, SQL, args).await
    }

    /// A tenant's audit entries matching `filter`, newest first (by id: the order they were
    /// written). `limit` is clamped to `1..=`[`MAX_AUDIT`]; page on with `before_id` = the
    /// last id of the previous page.
    pub async fn search_audit(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut b = SqlBuilder::default();
        b.push(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_log WHERE tenant_id = "
        ))
        .bind(tenant);
        if let Some(from) = filter.from_ms {
            b.push(" AND at >= ").bind(from);
        }
        if let Some(to) = filter.to_ms {
            b.push(" AND at < ").bind(to);
        }
        if let Some(key) = filter.key_id {
            b.push(" AND key_id = ").bind(key.to_string());
        }
        if let Some(action) = &filter.action {
            b.push(" AND action = ").bind(action.as_str());
        }
        if let Some(kind) = &filter.object_kind {
            b.push(" AND object_kind = ").bind(kind.as_str());
        }
        if let Some(id) = &filter.object_id {
            b.push(" AND object_id = ").bind(id.as_str());
        }
        if let Some(before) = filter.before_id {
            b.push(" AND id < ").bind(before);
        }
        b.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(filter.limit.clamp(1, MAX_AUDIT)));
        let (sql, args) = b.finish();
        self.fetch_all(Use::Read, sql, args).await
    }

    /// The newest audit entry's id (0 for an empty log): where [`Store::access_changes_after`]
    /// starts following.
    pub async fn last_audit_id(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(id), 0) AS id FROM audit_log";
        let row: Option<super::rows::IdRow> = self.fetch_optional(Use::Read, SQL, args![]).await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Changes to who may do what, or reach what, written after entry `after` by anyone (this
    /// server's routes, the admin CLI, another instance): key revocations, agents deleted
    /// (their keys go with them), tenants disabled or enabled, grants replaced. Oldest first,
    /// at most `limit`.
    pub async fn access_changes_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_log WHERE id > $1 AND action IN \
             ('api_key.revoke', 'display_token.revoke', 'agent.delete', 'tenant.update', \
             'tenant.grants') \
             ORDER BY id LIMIT $2"
        );
        let limit = i64::from(limit.clamp(1, MAX_AUDIT));
        self.fetch_all(Use::Read, SQL, args![after, limit]).await
    }

    /// The newest audit entries of a tenant (None: the platform's own, those written with no
    /// tenant), newest first; `limit` is clamped to `1..=`[`MAX_AUDIT`].
    pub async fn list_audit(
        &self,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_AUDIT));
        match tenant {
            Some(tenant) => {
                const SQL: &str = concat!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_log WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
                );
                self.fetch_all(Use::Read, SQL, args![tenant, limit]).await
            }
            None => {
                const SQL: &str = concat!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_log WHERE tenant_id IS NULL ORDER BY id DESC LIMIT $1"
                );
                self.fetch_all(Use::Read, SQL, args![limit]).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        let c = encode_cursor(-5, id);
        assert_eq!(decode_cursor(&c).expect("own cursor"), (-5, id));
        let mut wrong_version = c.clone();
        wrong_version.replace_range(0..2, "02");
        for bad in [
            "",
            "zz",
            &c[..c.len() - 2],
            &format!("{c}00"),
            &wrong_version,
        ] {
            assert!(
                matches!(
                    decode_cursor(bad),
                    Err(StoreError::Invalid {
                        field: "cursor",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn builder_numbers_placeholders_in_bind_order() {
        let mut b = SqlBuilder::default();
        b.push("a = ")
            .bind(1i64)
            .push(" AND b = ")
            .bind("x")
            .row(args![2i64, 3i64]);
        let (sql, args) = b.finish();
        assert_eq!(sql.as_str(), "a = $1 AND b = $2($3, $4)");
        assert_eq!(args.len(), 4);
    }

    #[test]
    fn dedup_keeps_first_position_and_preferred_row() {
        let rows = [(1, 'a'), (2, 'b'), (1, 'c')];
        let kept = dedup_by(&rows, |r| r.0, |_, new| new.1 == 'c');
        assert_eq!(kept, vec![&(1, 'c'), &(2, 'b')]);
    }
}
