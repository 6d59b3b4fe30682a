//! Analytics reads (`crate::analytics`): the interval rollup summed in SQL, and the history
//! tables analytics count (voicemails, campaign dials and dispositions, agent states, repeat
//! callers). All tenant-scoped; every range is half-open `[from_ms, to_ms)` on unix ms.
//!
//! What keeps them fast on large tables (migration 0020): the rollup's counters are generated
//! columns (no JSON is parsed on read); a tenant's rows are kept summed per 15-minute start by
//! triggers (`interval_tenant_sums`: a month is at most 2,976 rows per kind, whatever the
//! number of queues, agents or calls); one queue's or agent's rows are summed in SQL; and
//! each query walks
//! an index that starts with the tenant and the time (`interval_stats_range`,
//! `recordings_tenant_kind`, `campaign_attempts_tenant_dialed`, `dispositions_tenant_at`,
//! `agent_states_tenant_at`). Repeat callers are counted per agent and quarter hour by
//! triggers on calls (`call_repeat_sums`, migration 0021), not from calls: at ten million
//! calls that count took seconds. Per-agent and per-queue pages are keyset pages on the
//! rollup's primary key. Other tables are counted
//! per quarter hour (`time / 900000`) so the caller can cut local days in any zone.

use super::rows::{FromStoreRow, RowExt, TextIdRow};
use super::{AuditEntry, AuditWrite, Store, StoreError, Use};
use crate::analytics::{Counters, StateChange, StateTimes, Sums};
use crate::model::TenantId;

/// The most agents (or queues) one per-scope answer holds.
pub const MAX_SCOPES: i64 = 10_000;

/// How far before a range the agent-state history is read to find each agent's state at the
/// range's start. An agent whose last change is older than this counts from its first change
/// inside the range.
pub const STATE_LOOKBACK_MS: i64 = 7 * 86_400_000;

/// The most agent-state rows one answer reads (a month of 1,000 busy agents is about 1.5
/// million rows; ask for shorter ranges or one agent beyond this).
pub const MAX_STATE_ROWS: i64 = 2_000_000;

macro_rules! rollup_sums {
    () => {
        concat!(
            "CAST(SUM(n_offered) AS BIGINT) AS n_offered, ",
            "CAST(SUM(n_answered) AS BIGINT) AS n_answered, ",
            "CAST(SUM(n_within) AS BIGINT) AS n_within, ",
            "CAST(SUM(n_abandoned) AS BIGINT) AS n_abandoned, ",
            "CAST(SUM(n_short_abandoned) AS BIGINT) AS n_short_abandoned, ",
            "CAST(SUM(n_exited) AS BIGINT) AS n_exited, ",
            "CAST(SUM(n_callback) AS BIGINT) AS n_callback, ",
            "CAST(SUM(n_voicemail) AS BIGINT) AS n_voicemail, ",
            "CAST(SUM(n_handled) AS BIGINT) AS n_handled, ",
            "CAST(SUM(n_accepted) AS BIGINT) AS n_accepted, ",
            "CAST(SUM(n_rejected) AS BIGINT) AS n_rejected, ",
            "CAST(SUM(n_no_answer) AS BIGINT) AS n_no_answer, ",
            "CAST(SUM(n_busy) AS BIGINT) AS n_busy, ",
            "CAST(SUM(n_failed) AS BIGINT) AS n_failed, ",
            "CAST(SUM(s_answer_wait) AS DOUBLE PRECISION) AS s_answer_wait, ",
            "CAST(SUM(s_abandon_wait) AS DOUBLE PRECISION) AS s_abandon_wait, ",
            "CAST(SUM(s_talk) AS DOUBLE PRECISION) AS s_talk, ",
            "CAST(SUM(s_wrapup) AS DOUBLE PRECISION) AS s_wrapup, ",
            "CAST(SUM(s_handle) AS DOUBLE PRECISION) AS s_handle, ",
            "CAST(SUM(s_available) AS DOUBLE PRECISION) AS s_available, ",
            "CAST(SUM(s_on_call) AS DOUBLE PRECISION) AS s_on_call, ",
            "CAST(SUM(s_wrap_up) AS DOUBLE PRECISION) AS s_wrap_up, ",
            "CAST(SUM(s_reserved) AS DOUBLE PRECISION) AS s_reserved, ",
            "CAST(SUM(s_on_break) AS DOUBLE PRECISION) AS s_on_break, ",
            "CAST(SUM(s_logged_out) AS DOUBLE PRECISION) AS s_logged_out",
        )
    };
}

/// The counter columns of `interval_tenant_sums`, as [`RollupRow`] reads them.
macro_rules! rollup_cols {
    () => {
        "n_offered,n_answered,n_within,n_abandoned,n_short_abandoned,n_exited,n_callback,n_voicemail,n_handled,n_accepted,n_rejected,n_no_answer,n_busy,n_failed,s_answer_wait,s_abandon_wait,s_talk,s_wrapup,s_handle,s_available,s_on_call,s_wrap_up,s_reserved,s_on_break,s_logged_out"
    };
}

/// `[from, to)` cut for the per-day sums: the whole UTC days in it, `[first_day, end_day)`;
/// the quarter hours `[from, first_day)` and `[end_day, to)` are read per quarter hour. A
/// range with no whole day is all ends (`(to, to)`).
pub(crate) fn day_cut(from_ms: i64, to_ms: i64) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    let first_day =
        from_ms.div_euclid(DAY) * DAY + if from_ms.rem_euclid(DAY) == 0 { 0 } else { DAY };
    let end_day = to_ms.div_euclid(DAY) * DAY;
    if first_day < end_day {
        (first_day, end_day)
    } else {
        (to_ms, to_ms)
    }
}

/// Summed interval counters: per 15-minute start (`scope_id` 0) or per queue / agent
/// (`start_ms` the first start seen).
#[derive(Clone, Debug, PartialEq)]
pub struct RollupRow {
    pub start_ms: i64,
    pub scope_id: i64,
    pub sums: Sums,
}

/// The columns of every query [`RollupRow`] decodes, in order: `start_ms`, `scope_id`, then
/// the counters of [`rollup_cols!`] / [`rollup_sums!`]. Rows are decoded by position (a month
/// is thousands of rows of 27 columns); `rollup_columns_are_in_the_decoded_order` checks the
/// two lists against this one.
#[cfg(test)]
const ROLLUP_ORDER: [&str; 27] = [
    "start_ms",
    "scope_id",
    "n_offered",
    "n_answered",
    "n_within",
    "n_abandoned",
    "n_short_abandoned",
    "n_exited",
    "n_callback",
    "n_voicemail",
    "n_handled",
    "n_accepted",
    "n_rejected",
    "n_no_answer",
    "n_busy",
    "n_failed",
    "s_answer_wait",
    "s_abandon_wait",
    "s_talk",
    "s_wrapup",
    "s_handle",
    "s_available",
    "s_on_call",
    "s_wrap_up",
    "s_reserved",
    "s_on_break",
    "s_logged_out",
];

impl FromStoreRow for RollupRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let count = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.opt_i64_at(i)?.unwrap_or(0)).unwrap_or(0))
        };
        let secs = |i: usize| -> Result<f64, StoreError> { Ok(row.opt_f64_at(i)?.unwrap_or(0.0)) };
        Ok(RollupRow {
            start_ms: row.opt_i64_at(0)?.unwrap_or(0),
            scope_id: row.opt_i64_at(1)?.unwrap_or(0),
            sums: Sums {
                counters: Counters {
                    offered: count(2)?,
                    answered: count(3)?,
                    answered_within_sl: count(4)?,
                    abandoned: count(5)?,
                    short_abandoned: count(6)?,
                    exited: count(7)?,
                    callbacks: count(8)?,
                    voicemail_exits: count(9)?,
                    handled: count(10)?,
                    accepted: count(11)?,
                    rejected: count(12)?,
                    no_answer: count(13)?,
                    busy: count(14)?,
                    failed: count(15)?,
                    answer_wait_s: secs(16)?,
                    abandon_wait_s: secs(17)?,
                    talk_s: secs(18)?,
                    wrapup_s: secs(19)?,
                    handle_s: secs(20)?,
                },
                times: StateTimes {
                    available: secs(21)?,
                    on_call: secs(22)?,
                    wrap_up: secs(23)?,
                    reserved: secs(24)?,
                    on_break: secs(25)?,
                    logged_out: secs(26)?,
                },
            },
        })
    }
}

/// A grouped count: `a` and `b` are the group's numbers (a quarter-hour slot, a campaign,
/// an agent), `key` its text (an outcome, a disposition code), `n` and `m` the counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub a: i64,
    pub b: i64,
    pub key: String,
    pub n: i64,
    pub m: i64,
}

impl FromStoreRow for Tally {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Tally {
            a: row.i64("a")?,
            b: row.i64("b")?,
            key: row.string("k")?,
            n: row.opt_i64("n")?.unwrap_or(0),
            m: row.opt_i64("m")?.unwrap_or(0),
        })
    }
}

impl FromStoreRow for StateChange {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(StateChange {
            agent_id: row.i64("agent_id")?,
            at_ms: row.i64("at")?,
            state: row.string("state")?,
            reason: row.opt_string("reason")?,
        })
    }
}

struct ZoneRow(String);

impl FromStoreRow for ZoneRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(ZoneRow(row.string("time_zone")?))
    }
}

/// Which rollup rows: `queue` or `agent` rows of the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollupKind {
    Queue,
    Agent,
}

impl RollupKind {
    fn as_str(self) -> &'static str {
        match self {
            RollupKind::Queue => "queue",
            RollupKind::Agent => "agent",
        }
    }
}

impl Store {
    /// The tenant's time zone (IANA name; `UTC` until set); None for an unknown tenant.
    pub async fn tenant_time_zone(&self, tenant: TenantId) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT time_zone FROM tenants WHERE id = $1";
        let row: Option<ZoneRow> = self.fetch_optional(Use::Read, SQL, args![tenant]).await?;
        Ok(row.map(|r| r.0))
    }

    /// Sets the tenant's time zone (checked by the caller); false if there is no such tenant.
    pub async fn set_tenant_time_zone(
        &self,
        tenant: TenantId,
        time_zone: &str,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE tenants SET time_zone = $2 WHERE id = $1 RETURNING id";
        let changed: Option<TextIdRow> = self
            .change(
                "tenant",
                SQL,
                args![tenant, time_zone],
                AuditWrite {
                    entry: audit,
                    tenant: audit.tenant,
                },
                |_: &TextIdRow| audit.object_id.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }

    /// The tenant's queue (or agent) rows summed per 15-minute start, oldest first; `scope`
    /// 0 for all of them (read from `interval_tenant_sums`), else one queue's (agent's).
    pub async fn rollup_by_start(
        &self,
        tenant: TenantId,
        kind: RollupKind,
        scope: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        // The whole tenant: its sums per start, kept by triggers (migration 0020).
        const TENANT: &str = concat!(
            "SELECT start_ms, CAST(0 AS BIGINT) AS scope_id, ",
            rollup_cols!(),
            " FROM interval_tenant_sums WHERE tenant_id = $1 AND scope_kind = $2 \
             AND start_ms >= $3 AND start_ms < $4 ORDER BY start_ms"
        );
        const ONE: &str = concat!(
            "SELECT start_ms, CAST(0 AS BIGINT) AS scope_id, ",
            rollup_sums!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 AND start_ms >= $3 \
             AND start_ms < $4 AND scope_id = $5 GROUP BY start_ms ORDER BY start_ms"
        );
        if scope == 0 {
            let args = args![tenant, kind.as_str(), from_ms, to_ms];
            self.fetch_all(Use::Read, TENANT, args).await
        } else {
            let args = args![tenant, kind.as_str(), from_ms, to_ms, scope];
            self.fetch_all(Use::Read, ONE, args).await
        }
    }

    /// The tenant's queue (or agent) rows summed over the whole range (one row; `start_ms`
    /// and `scope_id` 0); `scope` 0 for all of them, else one queue's (agent's).
    pub async fn rollup_total(
        &self,
        tenant: TenantId,
        kind: RollupKind,
        scope: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<RollupRow, StoreError> {
        const TENANT: &str = concat!(
            "SELECT CAST(0 AS BIGINT) AS start_ms, CAST(0 AS BIGINT) AS scope_id, ",
            rollup_sums!(),
            " FROM interval_tenant_sums WHERE tenant_id = $1 AND scope_kind = $2 \
             AND start_ms >= $3 AND start_ms < $4"
        );
        const ONE: &str = concat!(
            "SELECT CAST(0 AS BIGINT) AS start_ms, CAST(0 AS BIGINT) AS scope_id, ",
            rollup_sums!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 AND start_ms >= $3 \
             AND start_ms < $4 AND scope_id = $5"
        );
        let row: Option<RollupRow> = if scope == 0 {
            let args = args![tenant, kind.as_str(), from_ms, to_ms];
            self.fetch_optional(Use::Read, TENANT, args).await?
        } else {
            let args = args![tenant, kind.as_str(), from_ms, to_ms, scope];
            self.fetch_optional(Use::Read, ONE, args).await?
        };
        Ok(row.unwrap_or(RollupRow {
            start_ms: 0,
            scope_id: 0,
            sums: Sums::default(),
        }))
    }

    /// The tenant's queue (or agent) rows summed per queue (agent): the first `limit` ids
    /// after `after`, ascending (a page; `i64::MIN, MAX_SCOPES` for all); `scope` 0 for all,
    /// else that one. Whole UTC days are read from `interval_scope_day_sums` and the quarter
    /// hours at the range's ends from `interval_stats` (see [`day_cut`]). Both are keyed
    /// `(tenant_id, scope_kind, scope_id, ..)`: a later page does not read the ids before it.
    pub async fn rollup_by_scope(
        &self,
        tenant: TenantId,
        kind: RollupKind,
        scope: i64,
        (from_ms, to_ms): (i64, i64),
        after: i64,
        limit: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT CAST(MIN(start_ms) AS BIGINT) AS start_ms, scope_id, ",
            rollup_sums!(),
            " FROM (SELECT scope_id, day_ms AS start_ms, ",
            rollup_cols!(),
            " FROM interval_scope_day_sums WHERE tenant_id = $1 AND scope_kind = $2 \
             AND scope_id > $3 AND ($4 = 0 OR scope_id = $4) AND day_ms >= $5 AND day_ms < $6 \
             UNION ALL SELECT scope_id, start_ms, ",
            rollup_cols!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 AND scope_id > $3 \
             AND ($4 = 0 OR scope_id = $4) AND start_ms >= $7 AND start_ms < $5 \
             UNION ALL SELECT scope_id, start_ms, ",
            rollup_cols!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 AND scope_id > $3 \
             AND ($4 = 0 OR scope_id = $4) AND start_ms >= $6 AND start_ms < $8) parts \
             GROUP BY scope_id ORDER BY scope_id LIMIT $9"
        );
        let (first_day, end_day) = day_cut(from_ms, to_ms);
        let args = args![
            tenant,
            kind.as_str(),
            after,
            scope,
            first_day,
            end_day,
            from_ms,
            to_ms,
            limit.min(MAX_SCOPES)
        ];
        self.fetch_all(Use::Read, SQL, args).await
    }

    /// Voicemail messages left per quarter hour (`a`: the slot's start, `n`: messages).
    pub async fn voicemails_by_slot(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT CAST((started_at / 900000) * 900000 AS BIGINT) AS a, \
             CAST(0 AS BIGINT) AS b, '' AS k, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(0 AS BIGINT) AS m FROM recordings WHERE tenant_id = $1 AND kind = 'voicemail' \
             AND started_at >= $2 AND started_at < $3 GROUP BY 1 ORDER BY 1";
        self.fetch_all(Use::Read, SQL, args![tenant, from_ms, to_ms])
            .await
    }

    /// Campaign dials per quarter hour, campaign and outcome (`a`: slot start, `b`: campaign,
    /// `k`: outcome, `n`: dials).
    pub async fn dials_by_slot(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT CAST((dialed_at / 900000) * 900000 AS BIGINT) AS a, \
             campaign_id AS b, outcome AS k, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(0 AS BIGINT) AS m FROM campaign_attempts WHERE tenant_id = $1 \
             AND dialed_at >= $2 AND dialed_at < $3 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
        self.fetch_all(Use::Read, SQL, args![tenant, from_ms, to_ms])
            .await
    }

    /// Per campaign (`a`): dials (`n`) and distinct contacts dialled (`m`).
    pub async fn campaign_contacts(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT campaign_id AS a, CAST(0 AS BIGINT) AS b, '' AS k, \
             CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(DISTINCT contact_id) AS BIGINT) AS m \
             FROM campaign_attempts WHERE tenant_id = $1 AND dialed_at >= $2 AND dialed_at < $3 \
             GROUP BY campaign_id ORDER BY campaign_id";
        self.fetch_all(Use::Read, SQL, args![tenant, from_ms, to_ms])
            .await
    }

    /// Dispositions per campaign (`a`) and code (`k`): `n`.
    pub async fn dispositions_by_code(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT campaign_id AS a, CAST(0 AS BIGINT) AS b, code AS k, \
             CAST(COUNT(*) AS BIGINT) AS n, CAST(0 AS BIGINT) AS m FROM dispositions \
             WHERE tenant_id = $1 AND at >= $2 AND at < $3 GROUP BY campaign_id, code \
             ORDER BY campaign_id, code";
        self.fetch_all(Use::Read, SQL, args![tenant, from_ms, to_ms])
            .await
    }

    /// Names of the tenant's campaigns (`a`: id, `k`: name).
    pub async fn campaign_names(&self, tenant: TenantId) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT id AS a, CAST(0 AS BIGINT) AS b, name AS k, \
             CAST(0 AS BIGINT) AS n, CAST(0 AS BIGINT) AS m FROM campaigns WHERE tenant_id = $1 \
             ORDER BY id LIMIT $2";
        self.fetch_all(Use::Read, SQL, args![tenant, MAX_SCOPES])
            .await
    }

    /// Names of the tenant's agents (`a`: id, `k`: name).
    pub async fn agent_names(&self, tenant: TenantId) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT id AS a, CAST(0 AS BIGINT) AS b, name AS k, \
             CAST(0 AS BIGINT) AS n, CAST(0 AS BIGINT) AS m FROM agents WHERE tenant_id = $1 \
             ORDER BY id LIMIT $2";
        self.fetch_all(Use::Read, SQL, args![tenant, MAX_SCOPES])
            .await
    }

    /// Names of the tenant's queues (`a`: id, `k`: name).
    pub async fn queue_names(&self, tenant: TenantId) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT id AS a, CAST(0 AS BIGINT) AS b, name AS k, \
             CAST(0 AS BIGINT) AS n, CAST(0 AS BIGINT) AS m FROM queues WHERE tenant_id = $1 \
             ORDER BY id LIMIT $2";
        self.fetch_all(Use::Read, SQL, args![tenant, MAX_SCOPES])
            .await
    }

    /// Per agent (`a`) in `(after, through]`: outbound dials connected to it (`n`).
    pub async fn outbound_by_agent(
        &self,
        tenant: TenantId,
        agent: i64,
        (from_ms, to_ms): (i64, i64),
        (after, through): (i64, i64),
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT agent_id AS a, CAST(0 AS BIGINT) AS b, '' AS k, \
             CAST(COUNT(*) AS BIGINT) AS n, CAST(0 AS BIGINT) AS m FROM campaign_attempts \
             WHERE tenant_id = $1 AND dialed_at >= $2 AND dialed_at < $3 \
             AND outcome = 'connected' AND agent_id IS NOT NULL AND ($4 = 0 OR agent_id = $4) \
             AND agent_id > $5 AND agent_id <= $6 GROUP BY agent_id ORDER BY agent_id";
        let args = args![tenant, from_ms, to_ms, agent, after, through];
        self.fetch_all(Use::Read, SQL, args).await
    }

    /// Per agent (`a`): answered inbound calls that arrived in the range (`n`) and those of
    /// them whose caller number called the tenant again within 24 h after arriving (`m`: the
    /// repeat callers, see `crate::analytics`). Calls with no caller number are left out.
    /// Read from `call_repeat_sums` (migration 0021: kept by triggers on calls per UTC day and
    /// per quarter hour of arrival; whole days and the quarter hours at the ends, see
    /// [`day_cut`], so the range snaps to quarter hours like the rollup's); counting from
    /// calls probed the caller index once per answered call: seconds at ten million calls.
    pub async fn repeat_callers_by_agent(
        &self,
        tenant: TenantId,
        agent: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Tally>, StoreError> {
        const SQL: &str = "SELECT agent_id AS a, CAST(0 AS BIGINT) AS b, '' AS k, \
             CAST(SUM(answered) AS BIGINT) AS n, CAST(SUM(repeated) AS BIGINT) AS m FROM ( \
             SELECT agent_id, answered, repeated FROM call_repeat_sums WHERE tenant_id = $1 \
             AND span_ms = 86400000 AND start_ms >= $2 AND start_ms < $3 \
             UNION ALL SELECT agent_id, answered, repeated FROM call_repeat_sums \
             WHERE tenant_id = $1 AND span_ms = 900000 AND start_ms >= $4 AND start_ms < $2 \
             UNION ALL SELECT agent_id, answered, repeated FROM call_repeat_sums \
             WHERE tenant_id = $1 AND span_ms = 900000 AND start_ms >= $3 AND start_ms < $5) parts \
             WHERE ($6 = 0 OR agent_id = $6) GROUP BY agent_id HAVING SUM(answered) > 0 \
             ORDER BY agent_id LIMIT $7";
        let (first_day, end_day) = day_cut(from_ms, to_ms);
        let args = args![
            tenant, first_day, end_day, from_ms, to_ms, agent, MAX_SCOPES
        ];
        self.fetch_all(Use::Read, SQL, args).await
    }

    /// The agents' state changes from [`STATE_LOOKBACK_MS`] before the range to its end, by
    /// agent and time (`agent` 0: all of the tenant's agents in `(after, through]`).
    pub async fn agent_state_changes(
        &self,
        tenant: TenantId,
        agent: i64,
        (from_ms, to_ms): (i64, i64),
        (after, through): (i64, i64),
    ) -> Result<Vec<StateChange>, StoreError> {
        const SQL: &str = "SELECT agent_id, at, state, reason FROM agent_states \
             WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND ($4 = 0 OR agent_id = $4) \
             AND agent_id > $5 AND agent_id <= $6 ORDER BY agent_id, at, id LIMIT $7";
        let args = args![
            tenant,
            from_ms.saturating_sub(STATE_LOOKBACK_MS),
            to_ms,
            agent,
            after,
            through,
            MAX_STATE_ROWS
        ];
        self.fetch_all(Use::Read, SQL, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::ROLLUP_ORDER;

    #[test]
    fn rollup_columns_are_in_the_decoded_order() {
        let cols: Vec<&str> = rollup_cols!().split(',').map(str::trim).collect();
        assert_eq!(cols, ROLLUP_ORDER[2..]);
        let sums: Vec<&str> = rollup_sums!()
            .split(", ")
            .map(|c| c.rsplit(" AS ").next().unwrap_or("").trim())
            .collect();
        assert_eq!(sums, ROLLUP_ORDER[2..]);
    }
}
