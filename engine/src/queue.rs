//! A queue at run time: its configuration, its line of waiting calls, its index of ready
//! members, and what it needs to announce expected waits.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::call::WaitKey;
use crate::config::QueueConfig;
use crate::ids::AgentId;
use crate::queueing::ewt::RateEstimator;
use crate::routing::index::ReadyIndex;

#[derive(Debug)]
pub struct Queue {
    pub cfg: QueueConfig,
    /// Calls waiting for an offer, best first.
    pub waiting: BTreeSet<WaitKey>,
    /// Calls of this queue currently being offered (ringing agents).
    pub offering: u32,
    pub ready: ReadyIndex,
    pub members: Vec<AgentId>,
    /// Members logged in / logged in and present as available (any activity).
    pub logged_in: u32,
    pub available: u32,
    /// Round-robin memory: (level, position) of the member offered last.
    pub rr_last: Option<(u32, u64)>,
    /// Departures from the head of the line, for expected-wait announcements.
    pub departures: RateEstimator,
    /// Mean handle time seen so far (prior for the departure rate), with its sample count.
    pub aht_sum: Duration,
    pub aht_n: u64,
}

impl Queue {
    pub fn new(mut cfg: QueueConfig) -> Queue {
        cfg.escalation.sort_by_key(|s| s.after);
        Queue {
            cfg,
            waiting: BTreeSet::new(),
            offering: 0,
            ready: ReadyIndex::default(),
            members: Vec::new(),
            logged_in: 0,
            available: 0,
            rr_last: None,
            departures: RateEstimator::new(Duration::from_secs(15 * 60)),
            aht_sum: Duration::ZERO,
            aht_n: 0,
        }
    }

    /// Position in line (1 = next) of a waiting call: calls ahead of it, plus one.
    pub fn position(&self, key: &WaitKey) -> u32 {
        // Most callers join at the back: no need to count the line.
        if self.waiting.last() == Some(key) {
            return u32::try_from(self.waiting.len()).unwrap_or(u32::MAX);
        }
        let ahead = self.waiting.range(..*key).count();
        u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1)
    }

    pub fn mean_handle(&self) -> Duration {
        if self.aht_n == 0 {
            Duration::from_secs(180)
        } else {
            self.aht_sum / u32::try_from(self.aht_n).unwrap_or(u32::MAX)
        }
    }

    pub fn note_waiting(&mut self, now: Instant) {
        self.departures
            .set_waiting(now, !self.waiting.is_empty() || self.offering > 0);
    }
}
