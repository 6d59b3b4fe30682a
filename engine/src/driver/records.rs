//! Records from the core to the store, without the core ever waiting for the store.
//!
//! ```text
//!  loop ──try_send──▶ mpsc(record_queue) ──▶ writer task ──batch──▶ RecordSink (awaits)
//!    └─ full: overflow deque (record_overflow) retried as the queue drains
//!       full too: dropped, counted, logged
//! ```
//! A slow store blocks the writer task only; the loop parks records in its overflow deque and
//! keeps deciding. Only when both bounds are exhausted is a record lost, and never silently:
//! [`super::DriverStats::records_dropped`] counts it and the first loss of each burst is logged
//! at error level.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{error, warn};

use crate::io::Record;

use super::Counters;

/// Where records go: the store (a later issue), a test's channel, or nowhere.
pub trait RecordSink: Send + 'static {
    /// Writes one batch, in order, and returns how many records it could not keep (counted
    /// in [`super::DriverStats::records_dropped`]). Taking its time is fine (records queue up
    /// behind it); the sink owns retrying a failed write. Return only once the batch is kept
    /// (or given up on): the driver holds an originate until the record that must precede it
    /// ([`crate::Record::must_precede_action`]) has been through `write`, so a sink that
    /// returns early breaks write-before-act, and one that blocks for long delays dialling.
    fn write(&mut self, batch: Vec<Record>) -> impl Future<Output = u64> + Send;
}

/// Forwards every record to a channel (tests, or a consumer task). Waits when the channel is
/// full; records the receiver is no longer there for are reported lost.
impl RecordSink for mpsc::Sender<Record> {
    async fn write(&mut self, batch: Vec<Record>) -> u64 {
        let total = batch.len() as u64;
        for (i, r) in batch.into_iter().enumerate() {
            if self.send(r).await.is_err() {
                return total - i as u64;
            }
        }
        0
    }
}

/// Discards records (benchmarks); discarding is its purpose, so nothing counts as lost.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullSink;

impl RecordSink for NullSink {
    async fn write(&mut self, _batch: Vec<Record>) -> u64 {
        0
    }
}

/// The loop's end of the pipe.
#[derive(Debug)]
pub(crate) struct RecordPipe {
    tx: mpsc::Sender<Record>,
    /// Records this end dropped (never reached the writer): settled, for the record gate.
    dropped: u64,
    overflow: VecDeque<Record>,
    overflow_cap: usize,
    counters: Arc<Counters>,
    /// Whether the current burst of losses was logged already.
    loss_logged: bool,
}

impl RecordPipe {
    pub(crate) fn new(
        tx: mpsc::Sender<Record>,
        overflow_cap: usize,
        counters: Arc<Counters>,
    ) -> Self {
        RecordPipe {
            tx,
            dropped: 0,
            overflow: VecDeque::new(),
            overflow_cap,
            counters,
            loss_logged: false,
        }
    }

    /// Never waits.
    pub(crate) fn push(&mut self, record: Record) {
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        if !self.overflow.is_empty() {
            // Keep the order: nothing overtakes what is already parked.
            self.park(record);
            return;
        }
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(r)) => self.park(r),
            Err(TrySendError::Closed(_)) => self.lose(1),
        }
    }

    fn park(&mut self, record: Record) {
        if self.overflow.len() >= self.overflow_cap {
            self.lose(1);
            return;
        }
        if self.overflow.is_empty() {
            warn!("record store is behind; parking records in the driver");
        }
        self.overflow.push_back(record);
    }

    fn lose(&mut self, n: u64) {
        self.dropped += n;
        self.counters
            .records_unqueued
            .fetch_add(n, Ordering::Relaxed);
        self.counters
            .records_dropped
            .fetch_add(n, Ordering::Relaxed);
        if !self.loss_logged {
            self.loss_logged = true;
            error!(
                dropped_total = self.counters.records_dropped.load(Ordering::Relaxed),
                "record store far behind: records dropped (see records_dropped)"
            );
        }
    }

    /// Records handed to this end so far (queued, parked or dropped).
    pub(crate) fn pushed(&self) -> u64 {
        self.counters.records.load(Ordering::Relaxed)
    }

    /// Records this end dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn has_overflow(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Moves parked records into the queue while it has room (called when a slot freed).
    pub(crate) fn refill(&mut self, permit: mpsc::OwnedPermit<Record>) {
        let Some(r) = self.overflow.pop_front() else {
            return;
        };
        let tx = permit.send(r);
        while let Some(r) = self.overflow.pop_front() {
            if let Err(e) = tx.try_send(r) {
                match e {
                    TrySendError::Full(r) => {
                        self.overflow.push_front(r);
                        return;
                    }
                    TrySendError::Closed(_) => {
                        let n = 1 + self.overflow.len() as u64;
                        self.overflow.clear();
                        self.lose(n);
                        return;
                    }
                }
            }
        }
        self.loss_logged = false;
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Record> {
        self.tx.clone()
    }

    /// At shutdown: waits (up to the caller's deadline) for the queue to take what is parked.
    pub(crate) async fn flush(&mut self) {
        while let Some(r) = self.overflow.pop_front() {
            if self.tx.send(r).await.is_err() {
                let n = 1 + self.overflow.len() as u64;
                self.overflow.clear();
                self.lose(n);
                return;
            }
        }
    }
}

/// The writer task: takes whatever is queued (up to `batch`) and hands it to the sink.
/// `settled` counts the records whose write returned (kept or given up on), for the core's
/// record gate.
pub(crate) async fn writer<S: RecordSink>(
    mut rx: mpsc::Receiver<Record>,
    mut sink: S,
    batch: usize,
    counters: Arc<Counters>,
    settled: tokio::sync::watch::Sender<u64>,
) {
    let batch = batch.max(1);
    let mut buf = Vec::with_capacity(batch);
    loop {
        if rx.recv_many(&mut buf, batch).await == 0 {
            return;
        }
        let n = buf.len() as u64;
        let lost = sink
            .write(std::mem::replace(&mut buf, Vec::with_capacity(batch)))
            .await;
        counters
            .records_written
            .fetch_add(n.saturating_sub(lost), Ordering::Relaxed);
        settled.send_modify(|s| *s += n);
        if lost > 0 {
            counters.records_dropped.fetch_add(lost, Ordering::Relaxed);
            error!(lost, "record sink could not keep records");
        }
    }
}
