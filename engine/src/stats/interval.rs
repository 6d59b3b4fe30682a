//! Interval clock (boundaries aligned to wall-clock multiples of the interval) and the bounded
//! buffer of closed-interval records.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::figures::{AgentFigures, QueueFigures};
use crate::ids::{AgentId, QueueId};

/// Shortest interval accepted; shorter configs are raised to it. Each boundary costs a pass over
/// all queues and agents, so sub-second intervals would cost more than the calls themselves.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval accepted (one day); longer configs are lowered to it.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// Where the interval boundaries fall, in both clocks: the engine's `Instant`s and Unix
/// milliseconds for the records.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    interval: Duration,
    interval_ms: u64,
    /// `None` only if the next boundary does not fit in an `Instant`: the interval never closes.
    next: Option<Instant>,
    start_unix_ms: u64,
    next_unix_ms: u64,
}

impl Clock {
    pub fn new(origin: Instant, origin_unix_ms: u64, interval: Duration) -> Self {
        let interval = interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
        // In range by the clamp: at most 86,400,000.
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let interval = Duration::from_millis(interval_ms);
        // Boundaries sit on multiples of the interval since the Unix epoch: for 15 minutes, the
        // quarter hours of UTC and of every real time zone (all offsets are multiples of 15 min).
        let offset_ms = origin_unix_ms % interval_ms;
        let start_unix_ms = origin_unix_ms - offset_ms;
        Clock {
            interval,
            interval_ms,
            next: origin.checked_add(Duration::from_millis(interval_ms - offset_ms)),
            start_unix_ms,
            next_unix_ms: start_unix_ms.saturating_add(interval_ms),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn next_boundary(&self) -> Option<Instant> {
        self.next
    }

    /// Wall-clock start of the open interval. For the first interval this is the aligned quarter
    /// hour before the origin, although figures only cover time from the origin on.
    pub fn start_unix_ms(&self) -> u64 {
        self.start_unix_ms
    }

    pub fn next_unix_ms(&self) -> u64 {
        self.next_unix_ms
    }

    /// Boundaries at or before `now` that have not been closed yet.
    pub fn boundaries_passed(&self, now: Instant) -> u64 {
        match self.next {
            Some(next) if now >= next => {
                let over = now.duration_since(next).as_nanos() / self.interval.as_nanos();
                u64::try_from(over).unwrap_or(u64::MAX).saturating_add(1)
            }
            _ => 0,
        }
    }

    /// Moves the open interval `n` intervals forward.
    pub fn advance_by(&mut self, n: u64) {
        let ms = self.interval_ms.saturating_mul(n);
        self.start_unix_ms = self.start_unix_ms.saturating_add(ms);
        self.next_unix_ms = self.next_unix_ms.saturating_add(ms);
        self.next = self
            .next
            .and_then(|next| next.checked_add(Duration::from_millis(ms)));
    }
}

/// What an interval record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// All queues and all agents together.
    Total,
    Queue(QueueId),
    Agent(AgentId),
}

/// Serialised as `{"kind": "queue", "id": 3}` (`"id": null` for the total), so rows can be
/// stored and filtered without parsing display strings.
impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (kind, id) = match self {
            Scope::Total => ("total", None),
            Scope::Queue(q) => ("queue", Some(q.0)),
            Scope::Agent(a) => ("agent", Some(a.0)),
        };
        let mut s = serializer.serialize_struct("Scope", 2)?;
        s.serialize_field("kind", kind)?;
        s.serialize_field("id", &id)?;
        s.end()
    }
}

/// The figures of a record: queue figures for queues and the total, agent figures for agents.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Figures {
    Queue(QueueFigures),
    Agent(AgentFigures),
}

/// One scope's figures for one closed interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntervalRecord {
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub scope: Scope,
    pub figures: Figures,
}

/// Closed records waiting to be drained, kept per interval ("batch") so that the bound drops
/// whole intervals, oldest first, and never half of one.
#[derive(Debug)]
pub(crate) struct ClosedBuffer {
    records: VecDeque<IntervalRecord>,
    /// Record count of each undrained interval, oldest first.
    batches: VecDeque<usize>,
    open: usize,
    max_batches: usize,
    dropped: u64,
}

impl ClosedBuffer {
    pub fn new(max_batches: usize) -> Self {
        ClosedBuffer {
            records: VecDeque::new(),
            batches: VecDeque::new(),
            open: 0,
            max_batches: max_batches.max(1),
            dropped: 0,
        }
    }

    /// Starts an interval's batch, first dropping the oldest batches so that at most
    /// `max_batches` remain with this one.
    pub fn begin_batch(&mut self) {
        while self.batches.len() >= self.max_batches {
            let Some(n) = self.batches.pop_front() else {
                break;
            };
            let n = n.min(self.records.len());
            self.records.drain(..n);
            self.dropped = self.dropped.saturating_add(n as u64);
        }
        self.open = 0;
    }

    pub fn push(&mut self, record: IntervalRecord) {
        self.records.push_back(record);
        self.open += 1;
    }

    pub fn end_batch(&mut self) {
        self.batches.push_back(self.open);
        self.open = 0;
    }

    /// Counts records that were never built because their whole interval would have been
    /// dropped anyway (see `Stats::skip_quiet`).
    pub fn count_dropped(&mut self, n: u64) {
        self.dropped = self.dropped.saturating_add(n);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Removes every record, oldest interval first, even if the iterator is not consumed.
    pub fn drain(&mut self) -> impl Iterator<Item = IntervalRecord> {
        self.batches.clear();
        self.records.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::figures::{CallCounters, PerState};

    /// 2025-11-21 00:00:00 UTC, a quarter hour.
    const MIDNIGHT_MS: u64 = 1_763_683_200_000;
    const QUARTER: Duration = Duration::from_secs(900);

    fn record(scope: Scope) -> IntervalRecord {
        IntervalRecord {
            start_unix_ms: 0,
            end_unix_ms: 1,
            scope,
            figures: Figures::Queue(QueueFigures::new(
                &CallCounters::default(),
                &PerState::default(),
            )),
        }
    }

    #[test]
    fn first_boundary_is_the_next_wall_clock_quarter_hour() {
        let t0 = Instant::now();
        // 00:07:30 UTC.
        let clock = Clock::new(t0, MIDNIGHT_MS + 450_000, QUARTER);
        assert_eq!(clock.next_boundary(), Some(t0 + Duration::from_secs(450)));
        assert_eq!(clock.start_unix_ms(), MIDNIGHT_MS);
        assert_eq!(clock.next_unix_ms(), MIDNIGHT_MS + 900_000);
    }

    #[test]
    fn an_origin_on_a_quarter_hour_gets_a_full_first_interval() {
        let t0 = Instant::now();
        let clock = Clock::new(t0, MIDNIGHT_MS, QUARTER);
        assert_eq!(clock.next_boundary(), Some(t0 + QUARTER));
        assert_eq!(clock.start_unix_ms(), MIDNIGHT_MS);
    }

    #[test]
    fn interval_is_clamped_to_one_second_through_one_day() {
        let t0 = Instant::now();
        assert_eq!(Clock::new(t0, 0, Duration::ZERO).interval(), MIN_INTERVAL);
        assert_eq!(
            Clock::new(t0, 0, Duration::from_secs(10 * 86_400)).interval(),
            MAX_INTERVAL
        );
    }

    #[test]
    fn boundaries_passed_counts_every_boundary_up_to_now() {
        let t0 = Instant::now();
        let mut clock = Clock::new(t0, MIDNIGHT_MS, QUARTER);
        assert_eq!(
            clock.boundaries_passed(t0 + QUARTER - Duration::from_millis(1)),
            0
        );
        assert_eq!(clock.boundaries_passed(t0 + QUARTER), 1);
        assert_eq!(
            clock.boundaries_passed(t0 + QUARTER * 3 + Duration::from_secs(1)),
            3
        );
        clock.advance_by(2);
        assert_eq!(clock.next_boundary(), Some(t0 + QUARTER * 3));
        assert_eq!(clock.start_unix_ms(), MIDNIGHT_MS + 2 * 900_000);
        assert_eq!(
            clock.boundaries_passed(t0 + QUARTER * 3 + Duration::from_secs(1)),
            1
        );
    }

    #[test]
    fn buffer_drops_whole_oldest_intervals_beyond_its_bound() {
        let mut buffer = ClosedBuffer::new(2);
        for (i, n) in [3u32, 1, 2].into_iter().enumerate() {
            buffer.begin_batch();
            for _ in 0..n {
                buffer.push(record(Scope::Queue(QueueId(i as u32))));
            }
            buffer.end_batch();
        }
        assert_eq!(buffer.dropped(), 3);
        assert_eq!(buffer.len(), 3);
        let scopes: Vec<Scope> = buffer.drain().map(|r| r.scope).collect();
        assert_eq!(
            scopes,
            [
                Scope::Queue(QueueId(1)),
                Scope::Queue(QueueId(2)),
                Scope::Queue(QueueId(2))
            ]
        );
        assert_eq!(buffer.len(), 0);
        // After a drain the bound applies afresh.
        buffer.begin_batch();
        buffer.push(record(Scope::Total));
        buffer.end_batch();
        assert_eq!(buffer.len(), 1);
        assert_eq!(buffer.dropped(), 3);
    }

    #[test]
    fn an_unconsumed_drain_still_empties_the_buffer() {
        let mut buffer = ClosedBuffer::new(4);
        buffer.begin_batch();
        buffer.push(record(Scope::Total));
        buffer.push(record(Scope::Agent(AgentId(1))));
        buffer.end_batch();
        drop(buffer.drain());
        assert_eq!(buffer.len(), 0);
        assert_eq!(buffer.dropped(), 0);
    }
}
