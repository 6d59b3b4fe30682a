//! The core's own deadlines (the engine keeps its own): retries, checks and sweeps, due in
//! time order and, at one instant, in the order they were set.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::io::LegId;

/// Something the core must do at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Chore {
    /// Ask a node's channels again after an unusable answer.
    ResyncRetry { node: usize, epoch: u64 },
    /// A kill answered "no such channel" while its originate still ran.
    KillRetry {
        leg: LegId,
        cause: &'static str,
        attempt: u32,
    },
    /// A caller's socket closed without a hangup: is the channel still there?
    OrphanCheck { leg: LegId, node: usize, epoch: u64 },
    /// The periodic sweep for legs nobody uses.
    Sweep,
    /// A prompt's end was never reported.
    PromptOverdue { leg: LegId, generation: u64 },
    /// Try a node never reached again.
    Reconnect { node: usize },
    /// The takeover stops waiting for nodes that were never listed (module `adopt`).
    AdoptDeadline,
    /// A recording's announcement was never reported ended (module `capture`).
    AnnouncementOverdue { id: crate::recording::RecordingId },
    /// A flow's digit collection was never reported ended (module `ivr`): its execution id.
    CollectionOverdue { leg: LegId, id: String },
}

/// Chores at once: far above what live legs need (a few per leg), so reaching it means a
/// defect, and dropping the newest keeps the core's memory bounded.
const MAX_CHORES: usize = 1_000_000;

#[derive(Debug, Default)]
pub(super) struct Chores {
    due: BTreeMap<(Instant, u64), Chore>,
    seq: u64,
}

impl Chores {
    /// Schedules `chore` at `at`; false (and nothing scheduled) at the bound.
    pub(super) fn add(&mut self, at: Instant, chore: Chore) -> bool {
        if self.due.len() >= MAX_CHORES {
            return false;
        }
        self.seq = self.seq.wrapping_add(1);
        self.due.insert((at, self.seq), chore);
        true
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.due.keys().next().map(|(t, _)| *t)
    }

    /// The first chore due at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Chore> {
        let entry = self.due.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn chores_come_due_in_time_order_then_in_the_order_they_were_set() {
        let t0 = Instant::now();
        let mut c = Chores::default();
        c.add(t0 + Duration::from_secs(2), Chore::Sweep);
        c.add(t0 + Duration::from_secs(1), Chore::Reconnect { node: 1 });
        c.add(t0 + Duration::from_secs(1), Chore::Reconnect { node: 0 });
        assert_eq!(c.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(c.pop_due(t0), None);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(c.pop_due(t1), Some(Chore::Reconnect { node: 1 }));
        assert_eq!(c.pop_due(t1), Some(Chore::Reconnect { node: 0 }));
        assert_eq!(c.pop_due(t1), None);
        assert_eq!(c.pop_due(t0 + Duration::from_secs(5)), Some(Chore::Sweep));
        assert_eq!(c.next(), None);
    }
}
