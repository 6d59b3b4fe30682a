//! The open interval's counters saved by each running process (migration 0027): the next
//! process carries them in (`crate::interval_carry`).

use serde_json::Value;

use super::history::{insert_statements, interval_values};
use super::rows::{FromStoreRow, RowExt, interval_cols};
use super::{IntervalRow, Store, StoreError, Use};

/// One process run's saved open interval.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRow {
    pub run_id: String,
    /// The interval's start (unix ms).
    pub start_ms: i64,
    pub saved_at: i64,
    /// The engine's `stats::OpenInterval` as JSON.
    pub counters: Value,
}

impl FromStoreRow for CheckpointRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(CheckpointRow {
            run_id: row.string("run_id")?,
            start_ms: row.i64("start_ms")?,
            saved_at: row.i64("saved_at")?,
            counters: row.json("counters")?,
        })
    }
}

/// Checkpoints one start reads at most (one per earlier run not yet absorbed: a handful).
const MAX_CHECKPOINTS: i64 = 1_000;

const UPSERT: &str = "INSERT INTO interval_checkpoints (run_id, start_ms, saved_at, counters) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (run_id) DO UPDATE SET \
     start_ms = excluded.start_ms, saved_at = excluded.saved_at, counters = excluded.counters";

impl Store {
    /// Every saved checkpoint, oldest first.
    pub async fn interval_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        const SQL: &str = "SELECT run_id, start_ms, saved_at, counters \
             FROM interval_checkpoints ORDER BY saved_at, run_id LIMIT $1";
        self.fetch_all(Use::Write, SQL, args![MAX_CHECKPOINTS])
            .await
    }

    /// Saves this run's checkpoint (replacing its previous one).
    pub async fn save_interval_checkpoint(&self, row: &CheckpointRow) -> Result<(), StoreError> {
        self.execute(
            UPSERT,
            args![
                row.run_id.as_str(),
                row.start_ms,
                row.saved_at,
                &row.counters
            ],
        )
        .await
        .map(|_| ())
    }

    /// In one transaction: the records of intervals earlier runs never closed (written only
    /// where no row of that tenant, scope and start exists: a run that closed the interval
    /// wrote it whole), this run's checkpoint (which holds what it carried in), and the
    /// absorbed runs' checkpoints deleted. A crash before the commit leaves them all to the
    /// next start.
    pub async fn absorb_interval_checkpoints(
        &self,
        passed: &[IntervalRow],
        own: &CheckpointRow,
        absorbed: &[String],
    ) -> Result<(), StoreError> {
        const HEAD: &str = concat!("INSERT INTO interval_stats (", interval_cols!(), ")");
        const TAIL: &str = "ON CONFLICT (tenant_id, scope_kind, scope_id, start_ms) DO NOTHING";
        let mut statements = insert_statements(HEAD, TAIL, passed, interval_values);
        statements.push((
            sqlx::SqlStr::from_static(UPSERT),
            args![
                own.run_id.as_str(),
                own.start_ms,
                own.saved_at,
                &own.counters
            ],
        ));
        for run in absorbed {
            statements.push((
                sqlx::SqlStr::from_static("DELETE FROM interval_checkpoints WHERE run_id = $1"),
                args![run.as_str()],
            ));
        }
        self.batch(statements).await
    }
}
