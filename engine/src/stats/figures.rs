//! Raw counters, per-state time integrals, and the serialisable figures derived from them.
//!
//! Counters hold sums (`Duration`s and counts) and never ratios, so that intervals and totals can
//! be reported exactly; ratios are computed only when a figure is read.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::agent::AgentStateKind;

/// Every agent state, in the order figures list them.
pub(crate) const ALL_STATES: [AgentStateKind; 6] = [
    AgentStateKind::LoggedOut,
    AgentStateKind::Available,
    AgentStateKind::OnBreak,
    AgentStateKind::Reserved,
    AgentStateKind::OnCall,
    AgentStateKind::WrapUp,
];

/// One value per agent state. Named fields rather than an array indexed by the enum, so that
/// reading or bumping a state can never index out of bounds and the JSON names the states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerState<T> {
    pub logged_out: T,
    pub available: T,
    pub on_break: T,
    pub reserved: T,
    pub on_call: T,
    pub wrap_up: T,
}

impl<T> PerState<T> {
    pub fn get(&self, state: AgentStateKind) -> &T {
        match state {
            AgentStateKind::LoggedOut => &self.logged_out,
            AgentStateKind::Available => &self.available,
            AgentStateKind::OnBreak => &self.on_break,
            AgentStateKind::Reserved => &self.reserved,
            AgentStateKind::OnCall => &self.on_call,
            AgentStateKind::WrapUp => &self.wrap_up,
        }
    }

    pub fn get_mut(&mut self, state: AgentStateKind) -> &mut T {
        match state {
            AgentStateKind::LoggedOut => &mut self.logged_out,
            AgentStateKind::Available => &mut self.available,
            AgentStateKind::OnBreak => &mut self.on_break,
            AgentStateKind::Reserved => &mut self.reserved,
            AgentStateKind::OnCall => &mut self.on_call,
            AgentStateKind::WrapUp => &mut self.wrap_up,
        }
    }

    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerState<U> {
        PerState {
            logged_out: f(&self.logged_out),
            available: f(&self.available),
            on_break: f(&self.on_break),
            reserved: f(&self.reserved),
            on_call: f(&self.on_call),
            wrap_up: f(&self.wrap_up),
        }
    }
}

impl PerState<Duration> {
    /// Adds `other`'s time in each state.
    pub(crate) fn add(&mut self, other: &PerState<Duration>) {
        for state in ALL_STATES {
            let t = self.get_mut(state);
            *t = t.saturating_add(*other.get(state));
        }
    }
}

/// Why a call left a queue other than by being answered or abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    /// Max wait time reached.
    Timeout,
    /// Left because no agent was logged in (leave-when-empty / max wait with no agents).
    NoAgents,
    /// Moved to an overflow queue.
    Overflow,
    Voicemail,
    /// Chose a callback (keeps its place; the callback is a new call).
    Callback,
    /// Pressed a key that leaves the queue.
    Dtmf,
    /// A supervisor moved or removed the call.
    Supervisor,
    Other,
}

/// Calls that left a queue for a reason other than answer or abandon, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCounts {
    pub timeout: u64,
    pub no_agents: u64,
    pub overflow: u64,
    pub voicemail: u64,
    pub callback: u64,
    pub dtmf: u64,
    pub supervisor: u64,
    pub other: u64,
}

impl ExitCounts {
    pub fn get(&self, reason: ExitReason) -> u64 {
        match reason {
            ExitReason::Timeout => self.timeout,
            ExitReason::NoAgents => self.no_agents,
            ExitReason::Overflow => self.overflow,
            ExitReason::Voicemail => self.voicemail,
            ExitReason::Callback => self.callback,
            ExitReason::Dtmf => self.dtmf,
            ExitReason::Supervisor => self.supervisor,
            ExitReason::Other => self.other,
        }
    }

    fn bump(&mut self, reason: ExitReason) {
        let slot = match reason {
            ExitReason::Timeout => &mut self.timeout,
            ExitReason::NoAgents => &mut self.no_agents,
            ExitReason::Overflow => &mut self.overflow,
            ExitReason::Voicemail => &mut self.voicemail,
            ExitReason::Callback => &mut self.callback,
            ExitReason::Dtmf => &mut self.dtmf,
            ExitReason::Supervisor => &mut self.supervisor,
            ExitReason::Other => &mut self.other,
        };
        *slot += 1;
    }

    fn add(&mut self, o: &ExitCounts) {
        self.timeout += o.timeout;
        self.no_agents += o.no_agents;
        self.overflow += o.overflow;
        self.voicemail += o.voicemail;
        self.callback += o.callback;
        self.dtmf += o.dtmf;
        self.supervisor += o.supervisor;
        self.other += o.other;
    }

    pub fn total(&self) -> u64 {
        self.timeout
            + self.no_agents
            + self.overflow
            + self.voicemail
            + self.callback
            + self.dtmf
            + self.supervisor
            + self.other
    }
}

/// How one offer of a call to an agent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfferResult {
    Accepted,
    Rejected,
    NoAnswer,
    Busy,
    Failed,
    /// Ring-all race lost to another agent, or the caller went away while ringing.
    Lost,
}

/// Offers by result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferCounts {
    pub accepted: u64,
    pub rejected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub lost: u64,
}

impl OfferCounts {
    fn bump(&mut self, result: OfferResult) {
        let slot = match result {
            OfferResult::Accepted => &mut self.accepted,
            OfferResult::Rejected => &mut self.rejected,
            OfferResult::NoAnswer => &mut self.no_answer,
            OfferResult::Busy => &mut self.busy,
            OfferResult::Failed => &mut self.failed,
            OfferResult::Lost => &mut self.lost,
        };
        *slot += 1;
    }

    fn add(&mut self, o: &OfferCounts) {
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.no_answer += o.no_answer;
        self.busy += o.busy;
        self.failed += o.failed;
        self.lost += o.lost;
    }

    pub fn total(&self) -> u64 {
        self.accepted + self.rejected + self.no_answer + self.busy + self.failed + self.lost
    }
}

/// The same counters kept twice: since the stats started, and for the open interval (reset when
/// the interval closes). Hooks bump both in one pass.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Periods<T> {
    pub since_start: T,
    pub interval: T,
}

impl<T> Periods<T> {
    pub fn both(&mut self) -> [&mut T; 2] {
        [&mut self.since_start, &mut self.interval]
    }
}

/// Call counters of one queue (or of all queues together) over one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CallCounters {
    pub offered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    /// Sum of the waits of answered calls (ASA numerator).
    pub answer_wait: Duration,
    pub abandoned: u64,
    pub short_abandoned: u64,
    /// Sum of the waits of abandoned calls.
    pub abandon_wait: Duration,
    pub exited: ExitCounts,
    pub offers: OfferCounts,
    /// Talk time, counted when the talk ends.
    pub talk: Duration,
    /// Wrap-up time, counted when the wrap-up ends.
    pub wrapup: Duration,
    /// Calls whose wrap-up ended (AHT denominator).
    pub handled: u64,
    /// Talk + wrap-up of the handled calls, counted when the wrap-up ends (AHT numerator).
    pub handle: Duration,
}

impl CallCounters {
    /// Adds another period's counts (what another process counted in the same interval).
    pub fn add(&mut self, o: &CallCounters) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within_sl += o.answered_within_sl;
        self.answer_wait = self.answer_wait.saturating_add(o.answer_wait);
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.abandon_wait = self.abandon_wait.saturating_add(o.abandon_wait);
        self.exited.add(&o.exited);
        self.offers.add(&o.offers);
        self.talk = self.talk.saturating_add(o.talk);
        self.wrapup = self.wrapup.saturating_add(o.wrapup);
        self.handled += o.handled;
        self.handle = self.handle.saturating_add(o.handle);
    }

    pub fn exit(&mut self, reason: ExitReason) {
        self.exited.bump(reason);
    }

    pub fn offer(&mut self, result: OfferResult) {
        self.offers.bump(result);
    }
}

/// Counters of one agent over one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgentCounters {
    pub offers: OfferCounts,
    pub answered: u64,
    pub talk: Duration,
    pub wrapup: Duration,
    pub handled: u64,
    pub handle: Duration,
}

impl AgentCounters {
    /// Adds another period's counts (what another process counted in the same interval).
    pub fn add(&mut self, o: &AgentCounters) {
        self.offers.add(&o.offers);
        self.answered += o.answered;
        self.talk = self.talk.saturating_add(o.talk);
        self.wrapup = self.wrapup.saturating_add(o.wrapup);
        self.handled += o.handled;
        self.handle = self.handle.saturating_add(o.handle);
    }

    pub fn offer(&mut self, result: OfferResult) {
        self.offers.bump(result);
    }

    /// Whether anything was counted; an agent with no activity and no logged-in time gets no
    /// interval record (5,000 rows of zeros per quarter hour help nobody).
    pub fn is_active(&self) -> bool {
        *self != AgentCounters::default()
    }
}

/// A set of agents counted by state, and the agent-time spent in each state, integrated over time.
///
/// Used three ways: for one agent (exactly one agent, in its current state), for the members of
/// a queue, and for all agents. Integrating counts (`time += count × elapsed` whenever a count
/// changes) gives a queue's agent-time by state in O(1) per change, without scanning members.
#[derive(Clone, Debug)]
pub(crate) struct StatePool {
    pub counts: PerState<u32>,
    /// Time up to which `since_start` and `interval` are accrued.
    mark: Instant,
    since_start: PerState<Duration>,
    interval: PerState<Duration>,
}

impl StatePool {
    pub fn new(mark: Instant) -> Self {
        StatePool {
            counts: PerState::default(),
            mark,
            since_start: PerState::default(),
            interval: PerState::default(),
        }
    }

    /// Adds the time from the mark to `to` at the current counts. Earlier `to` adds nothing:
    /// time that runs backwards is treated as no time passing.
    pub fn accrue(&mut self, to: Instant) {
        let elapsed = to.saturating_duration_since(self.mark);
        if elapsed.is_zero() {
            return;
        }
        for state in ALL_STATES {
            let n = *self.counts.get(state);
            if n == 0 {
                continue;
            }
            let add = elapsed.saturating_mul(n);
            let total = self.since_start.get_mut(state);
            *total = total.saturating_add(add);
            let open = self.interval.get_mut(state);
            *open = open.saturating_add(add);
        }
        self.mark = to;
    }

    /// One agent leaves `from` (if any) and enters `to` (if any) at `now`. `None` stands for
    /// "not in this pool": joining or leaving a queue's membership.
    pub fn moved(
        &mut self,
        now: Instant,
        from: Option<AgentStateKind>,
        to: Option<AgentStateKind>,
    ) {
        self.accrue(now);
        if let Some(from) = from {
            let n = self.counts.get_mut(from);
            *n = n.saturating_sub(1);
        }
        if let Some(to) = to {
            *self.counts.get_mut(to) += 1;
        }
    }

    /// Agent-time by state (since start, open interval) as of `now`, without mutating.
    pub fn times_at(&self, now: Instant) -> (PerState<Duration>, PerState<Duration>) {
        let elapsed = now.saturating_duration_since(self.mark);
        let mut since_start = self.since_start;
        let mut interval = self.interval;
        for state in ALL_STATES {
            let add = elapsed.saturating_mul(*self.counts.get(state));
            let total = since_start.get_mut(state);
            *total = total.saturating_add(add);
            let open = interval.get_mut(state);
            *open = open.saturating_add(add);
        }
        (since_start, interval)
    }

    /// Adds time another process counted in the open interval (not to `since_start`, which
    /// is this process's own).
    pub fn carry_in(&mut self, time: &PerState<Duration>) {
        self.interval.add(time);
    }

    /// Accrues to the boundary and hands back the interval's times, starting a fresh interval.
    pub fn close_interval(&mut self, boundary: Instant) -> PerState<Duration> {
        self.accrue(boundary);
        std::mem::take(&mut self.interval)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn mean_secs(total: Duration, n: u64) -> Option<f64> {
    (n > 0).then(|| secs(total) / n as f64)
}

/// (on-call + wrap-up + reserved) / (that + available); `None` when the agents were neither busy
/// nor available (all on break or logged out).
pub(crate) fn occupancy(t: &PerState<Duration>) -> Option<f64> {
    let busy = secs(t.on_call) + secs(t.wrap_up) + secs(t.reserved);
    let denominator = busy + secs(t.available);
    (denominator > 0.0).then(|| busy / denominator)
}

/// A queue's (or all queues') figures over one period. Ratios and means are `None` (JSON `null`)
/// when their denominator is zero. Durations are in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueFigures {
    pub offered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub exited: ExitCounts,
    pub exited_total: u64,
    pub offers: OfferCounts,
    pub service_level: Option<f64>,
    pub service_level_excl_short: Option<f64>,
    pub asa_s: Option<f64>,
    /// Mean wait of abandoned calls.
    pub avg_abandon_wait_s: Option<f64>,
    pub abandon_rate: Option<f64>,
    /// Talk time counted at talk end.
    pub talk_s: f64,
    /// Wrap-up time counted at wrap-up end.
    pub wrapup_s: f64,
    pub handled: u64,
    /// Talk + wrap-up of the `handled` calls, counted at wrap-up end.
    pub handle_s: f64,
    pub aht_s: Option<f64>,
    pub occupancy: Option<f64>,
    /// Agent-seconds the member agents (all agents, for totals) spent in each state.
    pub agent_time_s: PerState<f64>,
}

impl QueueFigures {
    pub(crate) fn new(c: &CallCounters, agent_time: &PerState<Duration>) -> Self {
        let exited_total = c.exited.total();
        let sl_denominator = c.answered + c.abandoned;
        QueueFigures {
            offered: c.offered,
            answered: c.answered,
            answered_within_sl: c.answered_within_sl,
            abandoned: c.abandoned,
            short_abandoned: c.short_abandoned,
            exited: c.exited,
            exited_total,
            offers: c.offers,
            service_level: ratio(c.answered_within_sl, sl_denominator),
            service_level_excl_short: ratio(
                c.answered_within_sl,
                sl_denominator.saturating_sub(c.short_abandoned),
            ),
            asa_s: mean_secs(c.answer_wait, c.answered),
            avg_abandon_wait_s: mean_secs(c.abandon_wait, c.abandoned),
            abandon_rate: ratio(c.abandoned, c.answered + c.abandoned + exited_total),
            talk_s: secs(c.talk),
            wrapup_s: secs(c.wrapup),
            handled: c.handled,
            handle_s: secs(c.handle),
            aht_s: mean_secs(c.handle, c.handled),
            occupancy: occupancy(agent_time),
            agent_time_s: agent_time.map(|d| secs(*d)),
        }
    }
}

/// A queue as of one instant: live values plus figures since start and for the open interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueSnapshot {
    /// Wall-clock start of the open interval (aligned; see the module doc).
    pub interval_start_unix_ms: u64,
    /// Calls waiting now.
    pub waiting: u64,
    /// Wait of the oldest waiting call; 0 when nobody waits.
    pub longest_wait_s: f64,
    /// Member agents (all agents, for totals) by current state.
    pub agents: PerState<u32>,
    pub since_start: QueueFigures,
    pub interval: QueueFigures,
}

/// One agent's figures over one period. Durations are in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentFigures {
    /// Offers that ended, whatever the result (the sum of the next six).
    pub offered: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub lost: u64,
    /// Calls connected to this agent (`call_answered`).
    pub answered: u64,
    /// Calls whose wrap-up ended.
    pub handled: u64,
    pub talk_s: f64,
    pub wrapup_s: f64,
    pub handle_s: f64,
    pub aht_s: Option<f64>,
    pub occupancy: Option<f64>,
    pub state_time_s: PerState<f64>,
}

impl AgentFigures {
    pub(crate) fn new(c: &AgentCounters, state_time: &PerState<Duration>) -> Self {
        AgentFigures {
            offered: c.offers.total(),
            accepted: c.offers.accepted,
            rejected: c.offers.rejected,
            no_answer: c.offers.no_answer,
            busy: c.offers.busy,
            failed: c.offers.failed,
            lost: c.offers.lost,
            answered: c.answered,
            handled: c.handled,
            talk_s: secs(c.talk),
            wrapup_s: secs(c.wrapup),
            handle_s: secs(c.handle),
            aht_s: mean_secs(c.handle, c.handled),
            occupancy: occupancy(state_time),
            state_time_s: state_time.map(|d| secs(*d)),
        }
    }
}

/// An agent as of one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentSnapshot {
    pub state: AgentStateKind,
    pub time_in_state_s: f64,
    /// Number of queues the agent is a member of.
    pub queues: u64,
    pub interval_start_unix_ms: u64,
    pub since_start: AgentFigures,
    pub interval: AgentFigures,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn pool_integrates_counts_over_time() {
        let t0 = Instant::now();
        let mut pool = StatePool::new(t0);
        pool.moved(t0, None, Some(AgentStateKind::Available));
        pool.moved(t0 + s(10), None, Some(AgentStateKind::Available));
        pool.moved(
            t0 + s(30),
            Some(AgentStateKind::Available),
            Some(AgentStateKind::OnCall),
        );
        let (total, interval) = pool.times_at(t0 + s(40));
        // 10 s with one available, 20 s with two, 10 s with one: 60 agent-seconds available.
        assert_eq!(total.available, s(60));
        assert_eq!(total.on_call, s(10));
        assert_eq!(interval, total);
        assert_eq!(pool.counts.available, 1);
        assert_eq!(pool.counts.on_call, 1);
    }

    #[test]
    fn pool_close_interval_keeps_totals_and_restarts_interval() {
        let t0 = Instant::now();
        let mut pool = StatePool::new(t0);
        pool.moved(t0, None, Some(AgentStateKind::OnBreak));
        let closed = pool.close_interval(t0 + s(15));
        assert_eq!(closed.on_break, s(15));
        let (total, interval) = pool.times_at(t0 + s(20));
        assert_eq!(total.on_break, s(20));
        assert_eq!(interval.on_break, s(5));
    }

    #[test]
    fn pool_ignores_time_running_backwards() {
        let t0 = Instant::now();
        let mut pool = StatePool::new(t0 + s(10));
        pool.moved(t0 + s(10), None, Some(AgentStateKind::Available));
        pool.accrue(t0);
        let (total, _) = pool.times_at(t0 + s(5));
        assert_eq!(total.available, Duration::ZERO);
        let (total, _) = pool.times_at(t0 + s(12));
        assert_eq!(total.available, s(2));
    }

    #[test]
    fn occupancy_excludes_break_and_logged_out_time() {
        let t = PerState {
            logged_out: s(1000),
            available: s(30),
            on_break: s(500),
            reserved: s(10),
            on_call: s(50),
            wrap_up: s(10),
        };
        assert_eq!(occupancy(&t), Some(70.0 / 100.0));
        let idle = PerState {
            on_break: s(10),
            ..PerState::default()
        };
        assert_eq!(occupancy(&idle), None);
    }

    #[test]
    fn figures_are_null_when_denominators_are_zero() {
        let f = QueueFigures::new(&CallCounters::default(), &PerState::default());
        assert_eq!(f.service_level, None);
        assert_eq!(f.service_level_excl_short, None);
        assert_eq!(f.asa_s, None);
        assert_eq!(f.aht_s, None);
        assert_eq!(f.abandon_rate, None);
        assert_eq!(f.occupancy, None);
        let a = AgentFigures::new(&AgentCounters::default(), &PerState::default());
        assert_eq!(a.aht_s, None);
        assert_eq!(a.offered, 0);
    }

    #[test]
    fn exit_and_offer_counts_bump_the_named_slot() {
        let mut c = CallCounters::default();
        c.exit(ExitReason::Overflow);
        c.exit(ExitReason::Overflow);
        c.exit(ExitReason::Dtmf);
        c.offer(OfferResult::NoAnswer);
        assert_eq!(c.exited.get(ExitReason::Overflow), 2);
        assert_eq!(c.exited.get(ExitReason::Dtmf), 1);
        assert_eq!(c.exited.get(ExitReason::Timeout), 0);
        assert_eq!(c.exited.total(), 3);
        assert_eq!(c.offers.no_answer, 1);
        assert_eq!(c.offers.total(), 1);
    }

    #[test]
    fn per_state_get_and_map_address_the_same_state() {
        let mut p = PerState::<u32>::default();
        for (i, state) in ALL_STATES.into_iter().enumerate() {
            *p.get_mut(state) = i as u32 + 1;
        }
        for (i, state) in ALL_STATES.into_iter().enumerate() {
            assert_eq!(*p.get(state), i as u32 + 1);
        }
        let doubled = p.map(|n| n * 2);
        assert_eq!(doubled.wrap_up, 12);
        assert_eq!(doubled.logged_out, 2);
    }
}
