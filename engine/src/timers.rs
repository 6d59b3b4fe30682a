//! The timer set: one ordered set of (deadline, key). Entities remember the deadline they
//! armed so a timer is cancelled by removing exactly that entry; nothing fires late or twice.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::ids::{AgentId, CallId, CampaignId, OfferId};
use crate::io::LegId;

/// Every kind of timer the core arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// The agent leg has rung for the queue's offer timeout.
    OfferTimeout(OfferId),
    /// Ring-progressively: add the next agent.
    RingNext(CallId),
    /// Position / expected-wait announcement.
    Announce(CallId),
    /// Periodic recorded message.
    Periodic(CallId),
    MaxWait(CallId),
    NoAgent(CallId),
    /// Next escalation step.
    Escalate(CallId),
    /// Wrap-up or a reject/busy/no-answer delay is over.
    AgentReady(AgentId),
    /// A 15-minute statistics interval closes.
    StatsBoundary,
    /// A running campaign looks at its pacing again.
    DialerTick(CampaignId),
    /// A person answered a campaign dial this long ago and still has no agent: abandon.
    ConnectDeadline(CallId),
    /// Answering-machine detection gave no verdict in time (the dialled leg).
    AmdTimeout(LegId),
    /// A bridge was asked for this long ago and FreeSWITCH has not joined the legs.
    BridgeDeadline(CallId),
    /// A callback whose customer dial failed may be offered again.
    CallbackRetry(CallId),
    /// A recording ended this long ago and the driver has not reported on it.
    RecordingReport(crate::recording::RecordingId),
}

#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    pub fn arm(&mut self, at: Instant, key: TimerKey) {
        self.set.insert((at, key));
    }

    pub fn cancel(&mut self, at: Instant, key: TimerKey) {
        self.set.remove(&(at, key));
    }

    /// Re-arms: cancels `old` (if any) and arms `new` (if any); returns `new` for the caller
    /// to remember.
    pub fn rearm(
        &mut self,
        old: Option<Instant>,
        new: Option<Instant>,
        key: TimerKey,
    ) -> Option<Instant> {
        if let Some(t) = old {
            self.cancel(t, key);
        }
        if let Some(t) = new {
            self.arm(t, key);
        }
        new
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.set.first() {
            Some(&(t, _)) if t <= now => self.set.pop_first(),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
