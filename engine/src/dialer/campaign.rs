//! A campaign at run time: its settings and state, its contacts, its lines in flight, its
//! ledger and its pacer. The engine (`engine/campaigns.rs`) drives it; this module holds the
//! bookkeeping that does not need the rest of the engine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;

use super::config::{CampaignConfig, RetryRule};
use super::contacts::ContactPool;
use super::ledger::Ledger;
use super::pacing::Pacer;
use super::{AttemptOutcome, CampaignState};
use crate::hash::FastMap;
use crate::ids::{AgentId, CallId, CampaignId, ContactId};
use crate::io::LegId;

/// A dial in flight, before a person on it becomes a call (or while they wait for an agent).
#[derive(Clone, Debug)]
pub struct Line {
    pub contact: ContactId,
    pub number: String,
    pub zone: String,
    pub attempt: u32,
    pub dialed: Instant,
    pub answered: Option<Instant>,
    pub phase: LinePhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinePhase {
    Ringing,
    /// Answered; detection runs until this instant at the latest.
    Detecting(Instant),
    /// A person (or a machine sent to an agent) waits in the queue as this call.
    Waiting(CallId),
}

/// Outcome counters since the campaign was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub dialed: u64,
    pub connected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub machine: u64,
    pub abandoned: u64,
    pub hung_up: u64,
    pub cancelled: u64,
    /// Dials a restart found gone (see [`AttemptOutcome::Lost`]).
    pub lost: u64,
    /// Lines pacing hung up after the minimum ring (also counted in `no_answer`).
    pub released: u64,
}

impl Counters {
    pub fn count(&mut self, outcome: AttemptOutcome) {
        let c = match outcome {
            AttemptOutcome::Connected => &mut self.connected,
            AttemptOutcome::Abandoned => &mut self.abandoned,
            AttemptOutcome::NoAnswer => &mut self.no_answer,
            AttemptOutcome::Busy => &mut self.busy,
            AttemptOutcome::Failed => &mut self.failed,
            AttemptOutcome::Machine => &mut self.machine,
            AttemptOutcome::HungUp => &mut self.hung_up,
            AttemptOutcome::Cancelled => &mut self.cancelled,
            AttemptOutcome::Lost => &mut self.lost,
        };
        *c += 1;
    }
}

#[derive(Debug)]
pub struct Campaign {
    pub cfg: CampaignConfig,
    pub state: CampaignState,
    pub contacts: ContactPool,
    pub ledger: Ledger,
    pub pacer: Pacer,
    /// Dials in flight by their leg (ringing, in detection, or a person waiting).
    pub lines: FastMap<LegId, Line>,
    /// Preview calls created and not yet connected or ended.
    pub previews: u32,
    pub counters: Counters,
    /// The armed DialerTick.
    pub tick: Option<Instant>,
    /// Something changed that may let it dial (an agent freed, a line ended).
    pub dirty: bool,
    /// Last live-feed update, and whether one is owed (updates are at most 1 per second).
    pub notified: Option<Instant>,
    pub notify_owed: bool,
    /// The pacer's lessons at its last snapshot (see `Engine::save_pacers`).
    pub pacer_saved: u64,
    /// Progressive only: whether its agents answer fast enough to dial the customer first.
    pub connect: super::connect::ConnectCheck,
}

/// How often a running campaign looks at its pacing when nothing else happens.
pub const TICK: Duration = Duration::from_millis(500);

impl Campaign {
    pub fn new(cfg: CampaignConfig, ledger_zone: TimeZone) -> Campaign {
        let theta = cfg.abandon_target;
        Campaign {
            cfg,
            state: CampaignState::Draft,
            contacts: ContactPool::default(),
            ledger: Ledger::new(ledger_zone),
            pacer: Pacer::new(theta),
            lines: FastMap::default(),
            previews: 0,
            counters: Counters::default(),
            tick: None,
            dirty: false,
            notified: None,
            notify_owed: false,
            pacer_saved: 0,
            connect: super::connect::ConnectCheck::default(),
        }
    }

    pub fn id(&self) -> CampaignId {
        self.cfg.id
    }

    /// The rule for an outcome; `None` for outcomes that finish the contact.
    pub fn retry_rule(&self, outcome: AttemptOutcome) -> Option<RetryRule> {
        let r = &self.cfg.retry;
        match outcome {
            AttemptOutcome::Connected => None,
            AttemptOutcome::Busy => Some(r.busy),
            // A person who hung up before an agent came is tried again like a no-answer.
            // A dial a restart lost may have rung out or been answered: the no-answer rule.
            AttemptOutcome::NoAnswer | AttemptOutcome::HungUp | AttemptOutcome::Lost => {
                Some(r.no_answer)
            }
            AttemptOutcome::Failed => Some(r.failed),
            AttemptOutcome::Machine => Some(r.machine),
            AttemptOutcome::Abandoned => Some(r.abandoned),
            // Our own doing: try again at once, without using up an attempt rule.
            AttemptOutcome::Cancelled => Some(RetryRule {
                interval: Duration::ZERO,
                max_attempts: u32::MAX,
            }),
        }
    }

    /// When the contact is next due after `attempts` attempts ended in `outcome` (Unix ms),
    /// or `None` when it is finished.
    pub fn next_due(&self, outcome: AttemptOutcome, attempts: u32, now_ms: u64) -> Option<u64> {
        let rule = self.retry_rule(outcome)?;
        if attempts >= rule.max_attempts {
            return None;
        }
        let ms = u64::try_from(rule.interval.as_millis()).unwrap_or(u64::MAX);
        Some(now_ms.saturating_add(ms))
    }

    /// The share of persons to aim at for the rest of today, from what the ledger holds:
    /// a margin under the target, less when today or the 30-day window runs hot.
    pub fn goal(&self, now_ms: u64) -> f64 {
        let target = self.cfg.abandon_target;
        let (h30, a30) = self.ledger.rolling_counts(now_ms);
        let (hd, ad) = self.ledger.day_counts(now_ms);
        let mut goal = 0.95 * target;
        if h30 >= 200 && a30 as f64 > 0.95 * target * h30 as f64 {
            goal = 0.6 * target;
        }
        if hd >= 50 && ad as f64 > 1.4 * target * hd as f64 {
            goal = goal.min(0.5 * target);
        }
        goal
    }

    /// Persons waiting for an agent now.
    pub fn waiting(&self) -> usize {
        self.lines
            .values()
            .filter(|l| matches!(l.phase, LinePhase::Waiting(_)))
            .count()
    }
}

/// Campaign calls that ended recently, so a disposition sent during wrap-up still finds its
/// contact. Bounded: the oldest is forgotten first.
#[derive(Debug, Default)]
pub struct RecentCalls {
    map: FastMap<CallId, RecentCall>,
    /// The API names a call by its customer leg, which is gone from the live tables once the
    /// customer hangs up; this finds the call again for the agent's wrap-up disposition.
    by_leg: FastMap<LegId, CallId>,
    order: VecDeque<CallId>,
}

#[derive(Clone, Debug)]
pub struct RecentCall {
    /// The customer's leg: the uuid the API knows the call by.
    pub leg: LegId,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub number: String,
    pub zone: String,
    pub attempt: u32,
    pub agent: Option<AgentId>,
}

/// Ended campaign calls remembered for dispositions.
pub const RECENT_CALLS: usize = 20_000;

impl RecentCalls {
    pub fn insert(&mut self, call: CallId, info: RecentCall) {
        if self.map.len() >= RECENT_CALLS
            && let Some(old) = self.order.pop_front()
            && let Some(gone) = self.map.remove(&old)
            && self.by_leg.get(&gone.leg) == Some(&old)
        {
            self.by_leg.remove(&gone.leg);
        }
        let leg = info.leg;
        match self.map.insert(call, info) {
            Some(replaced) if replaced.leg != leg => {
                self.by_leg.remove(&replaced.leg);
            }
            Some(_) => {}
            None => self.order.push_back(call),
        }
        self.by_leg.insert(leg, call);
    }

    pub fn get(&self, call: CallId) -> Option<&RecentCall> {
        self.map.get(&call)
    }

    /// The ended call whose customer leg this was.
    pub fn by_leg(&self, leg: LegId) -> Option<(CallId, &RecentCall)> {
        let call = *self.by_leg.get(&leg)?;
        self.map.get(&call).map(|info| (call, info))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(leg: u128) -> RecentCall {
        RecentCall {
            leg: LegId(leg),
            campaign: CampaignId(1),
            contact: ContactId(leg as u64),
            number: "+12015550123".into(),
            zone: "America/New_York".into(),
            attempt: 1,
            agent: Some(AgentId(7)),
        }
    }

    #[test]
    fn an_ended_call_is_found_by_its_customer_leg_until_it_is_the_oldest_past_the_bound() {
        let mut recent = RecentCalls::default();
        for i in 0..RECENT_CALLS as u128 {
            recent.insert(CallId(i as u32), ended(1_000 + i));
        }
        let (call, info) = recent.by_leg(LegId(1_000)).expect("the first call");
        assert_eq!((call, info.agent), (CallId(0), Some(AgentId(7))));
        recent.insert(CallId(RECENT_CALLS as u32), ended(5));
        assert!(
            recent.by_leg(LegId(1_000)).is_none(),
            "the oldest is forgotten"
        );
        assert!(recent.get(CallId(0)).is_none());
        assert_eq!(
            recent.by_leg(LegId(5)).map(|(c, _)| c),
            Some(CallId(RECENT_CALLS as u32))
        );
        assert_eq!(recent.len(), RECENT_CALLS, "the bound holds");
        assert_eq!(
            recent.by_leg.len(),
            RECENT_CALLS,
            "and the leg index with it"
        );
    }

    #[test]
    fn recording_a_call_again_under_a_new_leg_drops_the_old_leg() {
        let mut recent = RecentCalls::default();
        recent.insert(CallId(1), ended(10));
        recent.insert(CallId(1), ended(11));
        assert!(recent.by_leg(LegId(10)).is_none());
        assert_eq!(recent.by_leg(LegId(11)).map(|(c, _)| c), Some(CallId(1)));
        assert_eq!(recent.len(), 1);
    }
}
