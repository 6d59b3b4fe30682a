//! Whether a progressive campaign can dial the customer first, or must ring the agent first.
//!
//! Progressive dialling calls one customer per free agent and rings the agent when the person
//! answers. That is only legal if the agent's phone answers and the bridge is made within the
//! campaign's `connect_within` (2 s): a person who waits longer is an abandon. Agents whose
//! phones take 1-3 s to answer (per-call legs to desk phones) lost 9 of 13 persons that way on
//! a real switch. So progressive learns how long its agents take to answer an offer (an
//! offer still ringing when its person's allowance ran out counts as too slow) and, when
//! they are too slow or the day's ledger is already at the target, it rings the agent first
//! and dials the customer once the agent is on the line (the preview path without the
//! agent's choice): no person can be abandoned, at the price of the agent hearing the
//! customer's ring. Until it has seen MIN_SAMPLES answers it rings agents first too (the safe
//! side of the rule); the first abandon of a day puts the ledger at the target and brakes.
//! The campaign's `progressive_dial` setting can skip the learning (`customer-first`: the
//! operator knows the phones auto-answer; the ledger still brakes) or always ring agents
//! first (`agent-first`).
//!
//! ```text
//!   setting agent-first ────────────────────────────────► AgentFirst(Configured)
//!   today's abandon rate >= target (an abandon today) ──► AgentFirst(OverTarget)
//!   setting customer-first ─────────────────────────────► CustomerFirst
//!   fewer than MIN_SAMPLES answers seen ────────────────► AgentFirst(Learning)
//!   slow quantile of recent lags + BRIDGE_ALLOWANCE > connect_within ─► AgentFirst(SlowAgents)
//!   otherwise ──────────────────────────────────────────► CustomerFirst
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

/// Recent agent answer lags kept (offer made -> agent leg answered).
const SAMPLES: usize = 16;
/// Lags needed before customer-first dialling is trusted.
const MIN_SAMPLES: usize = 4;
/// Which recent lag must fit: the 4th slowest of 16 (about the 80th percentile).
const SLOW_RANK: f64 = 0.8;
/// What the switch needs after the agent answers: the originate's handover (up to 20 ms),
/// `uuid_bridge` (40-80 ms) and the event round trips, with room to spare.
pub const BRIDGE_ALLOWANCE: Duration = Duration::from_millis(300);

/// How progressive dials are placed now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// Dial the customer, ring an agent when the person answers (progressive, predictive).
    #[default]
    CustomerFirst,
    /// Ring the agent, dial the customer once the agent is on the line.
    AgentFirst(Brake),
}

/// Why progressive rings agents first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Brake {
    /// Too few offers answered yet to know how fast the agents are.
    Learning,
    /// The campaign is set to ring agents first.
    Configured,
    /// The agents take too long to answer for a person to be connected within the allowance.
    SlowAgents,
    /// Today's abandon rate is at the campaign's target already.
    OverTarget,
}

impl Pacing {
    /// `customer-first` or `agent-first` (statistics and the live feed).
    pub fn name(self) -> &'static str {
        match self {
            Pacing::CustomerFirst => "customer-first",
            Pacing::AgentFirst(_) => "agent-first",
        }
    }

    pub fn brake(self) -> Option<Brake> {
        match self {
            Pacing::CustomerFirst => None,
            Pacing::AgentFirst(b) => Some(b),
        }
    }
}

impl Brake {
    pub fn name(self) -> &'static str {
        match self {
            Brake::Learning => "learning",
            Brake::Configured => "configured",
            Brake::SlowAgents => "slow-agents",
            Brake::OverTarget => "over-target",
        }
    }
}

/// The campaign's choice for progressive dialling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressiveDial {
    /// Learn the agents' speed and decide (see the module doc).
    #[default]
    Auto,
    /// Dial customers first (phones that auto-answer, persistent lines); the ledger brakes.
    CustomerFirst,
    /// Always ring the agent first.
    AgentFirst,
}

/// The lags learned and the current decision.
#[derive(Clone, Debug, Default)]
pub struct ConnectCheck {
    lags: VecDeque<Duration>,
    pacing: Pacing,
}

impl ConnectCheck {
    /// An agent answered a campaign offer `lag` after it was made.
    pub fn learn(&mut self, lag: Duration) {
        if self.lags.len() == SAMPLES {
            self.lags.pop_front();
        }
        self.lags.push_back(lag);
    }

    /// The slow end of the recent lags (`None` until enough are known).
    pub fn slow_lag(&self) -> Option<Duration> {
        if self.lags.len() < MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Duration> = self.lags.iter().copied().collect();
        sorted.sort_unstable();
        let i = ((sorted.len() - 1) as f64 * SLOW_RANK).round() as usize;
        sorted.get(i).copied()
    }

    /// Decides how the next progressive dials go; returns the decision and whether it changed.
    pub fn decide(
        &mut self,
        setting: ProgressiveDial,
        connect_within: Duration,
        over_target: bool,
    ) -> (Pacing, bool) {
        let pacing = match (setting, self.slow_lag()) {
            (ProgressiveDial::AgentFirst, _) => Pacing::AgentFirst(Brake::Configured),
            _ if over_target => Pacing::AgentFirst(Brake::OverTarget),
            (ProgressiveDial::CustomerFirst, _) => Pacing::CustomerFirst,
            (ProgressiveDial::Auto, None) => Pacing::AgentFirst(Brake::Learning),
            (ProgressiveDial::Auto, Some(lag)) if lag + BRIDGE_ALLOWANCE > connect_within => {
                Pacing::AgentFirst(Brake::SlowAgents)
            }
            (ProgressiveDial::Auto, Some(_)) => Pacing::CustomerFirst,
        };
        let changed = pacing != self.pacing;
        self.pacing = pacing;
        (pacing, changed)
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_S: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const AUTO: ProgressiveDial = ProgressiveDial::Auto;

    #[test]
    fn rings_agents_first_until_it_knows_how_fast_they_answer() {
        let mut c = ConnectCheck::default();
        assert_eq!(
            c.decide(AUTO, TWO_S, false).0,
            Pacing::AgentFirst(Brake::Learning)
        );
        for _ in 0..MIN_SAMPLES {
            c.learn(ms(300));
        }
        assert_eq!(c.decide(AUTO, TWO_S, false), (Pacing::CustomerFirst, true));
    }

    #[test]
    fn the_setting_skips_the_learning_but_not_the_ledger() {
        let mut c = ConnectCheck::default();
        let first = ProgressiveDial::CustomerFirst;
        assert_eq!(c.decide(first, TWO_S, false).0, Pacing::CustomerFirst);
        assert_eq!(
            c.decide(first, TWO_S, true).0,
            Pacing::AgentFirst(Brake::OverTarget)
        );
        assert_eq!(
            c.decide(ProgressiveDial::AgentFirst, TWO_S, false).0,
            Pacing::AgentFirst(Brake::Configured)
        );
    }

    #[test]
    fn agents_slower_than_the_allowance_are_rung_first() {
        let mut c = ConnectCheck::default();
        // Desk phones answering in 1-3 s: most too slow for 2 s minus the bridge.
        for lag in [1000, 2500, 1800, 3000, 1200, 2200] {
            c.learn(ms(lag));
        }
        assert_eq!(
            c.decide(AUTO, TWO_S, false).0,
            Pacing::AgentFirst(Brake::SlowAgents)
        );
        // The agents get faster: the old lags age out of the window.
        for _ in 0..SAMPLES {
            c.learn(ms(400));
        }
        assert_eq!(c.decide(AUTO, TWO_S, false).0, Pacing::CustomerFirst);
    }

    #[test]
    fn a_day_at_the_target_rings_agents_first_even_when_they_are_fast() {
        let mut c = ConnectCheck::default();
        for _ in 0..8 {
            c.learn(ms(200));
        }
        assert_eq!(
            c.decide(AUTO, TWO_S, true),
            (Pacing::AgentFirst(Brake::OverTarget), true)
        );
        assert!(!c.decide(AUTO, TWO_S, true).1, "no change reported twice");
    }

    #[test]
    fn one_slow_answer_in_sixteen_does_not_brake() {
        let mut c = ConnectCheck::default();
        for _ in 0..15 {
            c.learn(ms(300));
        }
        c.learn(ms(5000));
        assert_eq!(c.decide(AUTO, TWO_S, false).0, Pacing::CustomerFirst);
    }
}
