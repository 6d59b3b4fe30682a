//! The open 15-minute interval across restarts (engine `stats::carry`, migration 0027).
//!
//! ```text
//! running:  every CHECKPOINT_EVERY, and at a graceful stop ──> interval_checkpoints[run]
//! start:    checkpoints of earlier runs ──┬─ of the open interval ─> Command::SeedInterval
//!                                         └─ of a passed one ──────> its records, where none
//!           then, in one transaction: those records, this run's checkpoint (holding what
//!           was carried in), the absorbed runs' checkpoints deleted
//! ```
//!
//! So a stop, graceful or `kill -9`, costs at most the last `CHECKPOINT_EVERY` of counting,
//! and the interval's record and the wallboard's "today" hold every run's part once.
//!
//! Counted once: a checkpoint is carried in by exactly one start, because that start deletes
//! it in the same transaction that saves its own (which holds the carried counters). Until
//! that transaction commits, this run saves no checkpoint of its own: a crash in between
//! leaves the earlier checkpoints to the next start, and nothing of this run's.

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::Engine;
use switchyard_engine::driver::{DriverError, DriverHandle};
use switchyard_engine::stats::OpenInterval;
use switchyard_engine::{Command, EngineError};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::directory::Directory;
use crate::runtime::{interval_row, read_now};
use crate::store::{CheckpointRow, IntervalRow, Store, now_ms};

/// How often a running process saves its open interval: the most a `kill -9` loses.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// This run's checkpoints, and what its start took over from earlier runs until that is filed.
#[derive(Debug)]
pub struct Checkpoints {
    run_id: String,
    store: Store,
    absorbing: Mutex<Option<Absorbed>>,
}

/// What a start took over: the records of intervals earlier runs never closed, and the
/// checkpoints it carried in or turned into those records.
#[derive(Debug, Default)]
struct Absorbed {
    passed: Vec<IntervalRow>,
    runs: Vec<String>,
}

impl Checkpoints {
    /// Carries the earlier runs' checkpoints in (after the configuration is loaded, so the
    /// engine knows the queues and agents they name). A store or engine that fails here costs
    /// the carried counters' place in this run, never a double count: what was not taken
    /// stays for the next start.
    pub async fn start(store: &Store, engine: &DriverHandle, dir: &Directory) -> Checkpoints {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let mut taken = Absorbed::default();
        match store.interval_checkpoints().await {
            Ok(rows) => {
                for row in rows {
                    if take(row, engine, dir, &mut taken).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "the saved open interval could not be read; it waits for the next start")
            }
        }
        if !taken.runs.is_empty() {
            info!(
                runs = taken.runs.len(),
                passed_records = taken.passed.len(),
                "the open interval of earlier runs was carried in"
            );
        }
        Checkpoints {
            run_id,
            store: store.clone(),
            absorbing: Mutex::new((!taken.runs.is_empty()).then_some(taken)),
        }
    }

    /// Saves the open interval as the stopped `engine` counted it (a graceful stop).
    pub async fn save_stopped(&self, engine: &Engine) {
        self.save(engine.stats().open_interval(read_now(engine)))
            .await;
    }

    /// Saves every `CHECKPOINT_EVERY` until aborted (or the engine stops).
    pub fn spawn(self: Arc<Self>, engine: DriverHandle) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let read = engine.query(|e| e.stats().open_interval(read_now(e)));
                let Ok(open) = read.await else {
                    return;
                };
                self.save(open).await;
            }
        })
    }

    /// This run's row, with (until that has been filed once) what the start took over.
    async fn save(&self, open: OpenInterval) {
        let counters = match serde_json::to_value(&open) {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "the open interval does not serialise; not saved");
                return;
            }
        };
        let row = CheckpointRow {
            run_id: self.run_id.clone(),
            start_ms: i64::try_from(open.start_unix_ms()).unwrap_or(i64::MAX),
            saved_at: now_ms(),
            counters,
        };
        let mut absorbing = self.absorbing.lock().await;
        let saved = match absorbing.as_ref() {
            Some(a) => {
                self.store
                    .absorb_interval_checkpoints(&a.passed, &row, &a.runs)
                    .await
            }
            None => self.store.save_interval_checkpoint(&row).await,
        };
        match saved {
            Ok(()) => *absorbing = None,
            Err(e) => warn!(error = %e, "the open interval was not saved; tried again shortly"),
        }
    }
}

/// Takes one earlier run's checkpoint: carried into the engine when it is of the open
/// interval, else turned into that interval's records. Err: the engine is gone (stop).
async fn take(
    row: CheckpointRow,
    engine: &DriverHandle,
    dir: &Directory,
    taken: &mut Absorbed,
) -> Result<(), DriverError> {
    let open: OpenInterval = match serde_json::from_value(row.counters) {
        Ok(o) => o,
        Err(e) => {
            // Nothing can be made of it, now or later: dropped with the others, loudly.
            warn!(run = %row.run_id, error = %e, "a saved open interval does not parse; dropped");
            taken.runs.push(row.run_id);
            return Ok(());
        }
    };
    match engine
        .command(Command::SeedInterval(Box::new(open.clone())))
        .await
    {
        Ok(()) => {}
        Err(DriverError::Engine(EngineError::StaleInterval { .. })) => {
            taken
                .passed
                .extend(open.records().iter().map(|r| interval_row(r, dir)));
        }
        Err(e @ DriverError::Engine(_)) => {
            warn!(run = %row.run_id, error = %e, "a saved open interval was refused; left for the next start");
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    taken.runs.push(row.run_id);
    Ok(())
}
