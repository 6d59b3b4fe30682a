//! Retention of raw history (migration-free): rows older than the operator's `keep_days` are
//! deleted in bounded chunks, so the tables analytics and the API page through stay as large
//! as the window operators chose. The interval rollups (`interval_stats`,
//! `interval_tenant_sums`) are kept: they are small and carry the reports past the window.

use super::{Store, StoreError};

/// Rows deleted per statement (one transaction each): short enough that the writer is never
/// held long, on SQLite above all.
pub const PRUNE_CHUNK: i64 = 5_000;

/// What one prune removed, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub calls: u64,
    pub cdrs: u64,
    pub traces: u64,
    pub journeys: u64,
    pub agent_states: u64,
    pub webhook_attempts: u64,
}

/// Where a table's count goes.
type Slot = fn(&mut Pruned) -> &mut u64;

/// (count, statement): each deletes at most [`PRUNE_CHUNK`] rows older than `$1`. Open calls
/// (no final record yet) are never pruned: a restart still has to close them.
const STATEMENTS: [(Slot, &str); 6] = [
    (
        |p| &mut p.calls,
        "DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE arrived_at < $1 \
         AND outcome <> 'in-progress' LIMIT $2)",
    ),
    (
        |p| &mut p.cdrs,
        "DELETE FROM cdrs WHERE leg IN (SELECT leg FROM cdrs WHERE ended_at < $1 LIMIT $2)",
    ),
    (
        |p| &mut p.traces,
        "DELETE FROM decision_traces WHERE id IN \
         (SELECT id FROM decision_traces WHERE at < $1 LIMIT $2)",
    ),
    (
        |p| &mut p.journeys,
        "DELETE FROM call_journeys WHERE call_id IN \
         (SELECT call_id FROM call_journeys WHERE ended_at < $1 LIMIT $2)",
    ),
    (
        |p| &mut p.agent_states,
        "DELETE FROM agent_states WHERE id IN \
         (SELECT id FROM agent_states WHERE at < $1 LIMIT $2)",
    ),
    (
        |p| &mut p.webhook_attempts,
        "DELETE FROM webhook_attempts WHERE id IN \
         (SELECT id FROM webhook_attempts WHERE at < $1 LIMIT $2)",
    ),
];

impl Store {
    /// Deletes raw history older than `before_ms`, chunk by chunk, table by table.
    pub async fn prune_history(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        for (slot, sql) in STATEMENTS {
            let mut total = 0u64;
            loop {
                let n = self.execute(sql, args![before_ms, PRUNE_CHUNK]).await?;
                total += n;
                if n < PRUNE_CHUNK as u64 {
                    break;
                }
            }
            *slot(&mut pruned) = total;
        }
        Ok(pruned)
    }
}
