//! Live and interval statistics per queue, per agent, and for everything together.
//!
//! The engine calls a hook on every relevant transition, passing the current (virtual) time;
//! `Stats` does no I/O and reads no clock. Every hook first closes any interval boundaries that
//! `now` has passed, so an event is always counted in the interval it happened in.
//!
//! ```text
//! let mut stats = Stats::new(StatsConfig::new(origin, origin_unix_ms));
//! // on every engine input at `now`:
//! stats.advance(now);                       // close passed quarter hours
//! stats.call_entered(now, queue, call);     // ... and the other hooks, as things happen
//! for record in stats.drain_closed() { /* Output::Persist */ }
//! if let Some(at) = stats.next_boundary() { // so a quiet engine still closes intervals
//!     arm_timer(at);
//! }
//! ```
//!
//! # Definitions
//!
//! - **offered**: calls that entered the queue. **answered**: connected to an agent from this
//!   queue. **abandoned**: caller hung up while waiting in this queue; **short abandon**:
//!   abandoned with wait < short_abandon.
//! - A call's **wait** in a queue is the time from its `call_entered` in that queue to its answer
//!   or abandon; time spent in an earlier queue does not count. "Answered within threshold"
//!   means wait <= sl_threshold.
//! - **service_level** = answered within threshold / (answered + abandoned). Calls that exited
//!   for other reasons (timeout, no agents, overflow, voicemail, callback, DTMF, supervisor,
//!   other) are excluded from both the numerator and the denominator.
//!   **service_level_excl_short** = answered within threshold / (answered + abandoned -
//!   short_abandoned). Both are None (JSON null) when the denominator is 0.
//! - **ASA** = mean wait of answered calls. **AHT** = (talk + wrap-up) / calls handled, where a
//!   call's handle time is counted when its wrap-up ends (or at talk end if it has no wrap-up:
//!   the engine calls `wrapup_ended` with zero). **abandon_rate** = abandoned /
//!   offered-that-ended (answered + abandoned + exited). Means and ratios are None when their
//!   denominator is 0.
//! - **occupancy** = (time on-call + wrap-up + reserved) / (that + time available-idle); break
//!   and logged-out time are excluded. Per queue, occupancy is over the agents who are members of
//!   the queue. This is an approximation: an agent in several queues counts in each, with all of
//!   its time, whichever queue its calls came from.
//! - **Interval attribution**: a call's counters go to the interval in which the event happened
//!   (answered in the interval of the answer, etc.); agent state time is split exactly across
//!   interval boundaries.
//!
//! Consequences worth knowing: `talk_s` is counted when the talk ends and `wrapup_s` and
//! `handle_s` when the wrap-up ends, so within one interval `handle_s` need not equal
//! `talk_s + wrapup_s`. A call that waits in two queues in turn (overflow, transfer) is offered
//! in both; the totals are sums over queues and count it twice.
//!
//! # Periods
//!
//! Every snapshot carries two sets of figures: `since_start` (since `Stats::new`; there is no
//! daily reset here: a caller that wants "today" starts a new `Stats` at midnight or subtracts)
//! and `interval` (the open interval). Live values (waiting, longest wait, agents by state) are
//! instantaneous. Reads never close intervals: call `advance` first.
//!
//! # Intervals
//!
//! Boundaries fall on wall-clock multiples of the interval (15 minutes: :00, :15, :30, :45).
//! The first interval is partial: its record carries the aligned quarter-hour start, but figures
//! cover only time from the origin on. Each closed interval yields one record per known queue,
//! one per agent that was logged in or counted anything during it, and one for the total. At most
//! [`MAX_UNDRAINED_INTERVALS`] intervals wait to be drained; closing another drops the oldest
//! interval's records whole and counts them in [`Stats::dropped_records`].
//!
//! # Ids and cost
//!
//! Queues and agents live in `Vec`s indexed by `id.index()` (ids are dense small integers), grown
//! on demand: any hook that names an unknown queue or agent creates it (default queue config,
//! agent logged out from that moment). Reads never create; an unknown id reads as empty. Ids at
//! or above 2^22 are ignored rather than grown to, and counted in [`Stats::ignored_events`], as
//! are events about calls that are not waiting where the event says (answered, abandoned or
//! exited without having entered, or entering a queue they already wait in).
//!
//! Hooks are O(1) amortised (expected, for the hash map of waiting calls), except that an
//! agent's state change touches each of that agent's queues, and a membership change sorts the
//! new list (O(k log k) for k queues). Waiting calls sit in a hash map and in
//! time-ordered lines per queue and overall (see `waiting`), so the longest wait is O(1).
//! Closing a boundary is O(queues + agents); a jump over many boundaries builds only the
//! intervals that can still be drained.
//!
//! Time never runs backwards here: an input earlier than the latest one seen is treated as
//! happening at the latest one.

use crate::hash::FastMap;
use std::time::{Duration, Instant};

use crate::agent::AgentStateKind;
use crate::ids::{AgentId, CallId, QueueId};

mod carry;
mod figures;
mod interval;
mod waiting;

pub use carry::OpenInterval;
pub use figures::{
    AgentFigures, AgentSnapshot, ExitCounts, ExitReason, OfferCounts, OfferResult, PerState,
    QueueFigures, QueueSnapshot,
};
pub use interval::{Figures, IntervalRecord, Scope};

use figures::{AgentCounters, CallCounters, Periods, StatePool};
use interval::{Clock, ClosedBuffer};
use waiting::WaitLine;

/// Closed intervals kept for `drain_closed` before the oldest is dropped.
pub const MAX_UNDRAINED_INTERVALS: usize = 4;

/// Ids at or above this are ignored: growing a `Vec` to a bogus id would exhaust memory.
const MAX_DENSE_INDEX: usize = 1 << 22;

/// Where stats time starts and how it is cut into intervals.
#[derive(Clone, Copy, Debug)]
pub struct StatsConfig {
    /// The engine's time at which stats start.
    pub origin: Instant,
    /// The wall-clock time of `origin`, in Unix milliseconds, to align intervals and label records.
    pub origin_unix_ms: u64,
    /// Interval length; clamped to 1 s ..= 1 day.
    pub interval: Duration,
}

impl StatsConfig {
    /// 15-minute intervals.
    pub fn new(origin: Instant, origin_unix_ms: u64) -> Self {
        StatsConfig {
            origin,
            origin_unix_ms,
            interval: Duration::from_secs(15 * 60),
        }
    }
}

/// Per-queue thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStatsConfig {
    /// A call answered with wait <= this counts as within service level.
    pub sl_threshold: Duration,
    /// A call abandoned with wait < this is a short abandon.
    pub short_abandon: Duration,
}

impl Default for QueueStatsConfig {
    fn default() -> Self {
        QueueStatsConfig {
            sl_threshold: Duration::from_secs(20),
            short_abandon: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
struct QueueState {
    cfg: QueueStatsConfig,
    calls: Periods<CallCounters>,
    /// Member agents by state, and their agent-time by state.
    members: StatePool,
    line: WaitLine<CallId>,
}

impl QueueState {
    fn new(now: Instant) -> Self {
        QueueState {
            cfg: QueueStatsConfig::default(),
            calls: Periods::default(),
            members: StatePool::new(now),
            line: WaitLine::new(),
        }
    }
}

#[derive(Debug)]
struct AgentState {
    state: AgentStateKind,
    state_since: Instant,
    /// A pool of exactly this agent: its time by state.
    time: StatePool,
    counters: Periods<AgentCounters>,
    /// Sorted, deduplicated.
    queues: Vec<QueueId>,
    /// Talk of the last call, waiting for its wrap-up to end to count as handle time.
    pending_talk: Option<(QueueId, Duration)>,
}

impl AgentState {
    fn new(now: Instant) -> Self {
        let mut time = StatePool::new(now);
        time.moved(now, None, Some(AgentStateKind::LoggedOut));
        AgentState {
            state: AgentStateKind::LoggedOut,
            state_since: now,
            time,
            counters: Periods::default(),
            queues: Vec::new(),
            pending_talk: None,
        }
    }
}

/// A call waiting in a queue: since when, and which visit (a call may leave and re-enter).
#[derive(Clone, Copy, Debug)]
struct Waiting {
    since: Instant,
    seq: u64,
}

/// Live and interval statistics. See the module documentation for definitions.
#[derive(Debug)]
pub struct Stats {
    clock: Clock,
    /// Latest time seen; inputs are clamped to it so time never runs backwards.
    latest: Instant,
    queues: Vec<Option<QueueState>>,
    agents: Vec<Option<AgentState>>,
    waiting: FastMap<(QueueId, CallId), Waiting>,
    /// Every waiting call, for the longest wait over all queues.
    all_waiting: WaitLine<(QueueId, CallId)>,
    next_seq: u64,
    total: Periods<CallCounters>,
    /// All known agents (each once), for the totals' agents by state and occupancy.
    all_agents: StatePool,
    closed: ClosedBuffer,
    ignored: u64,
    /// Reused buffer for membership updates, so they do not allocate in steady state.
    scratch: Vec<QueueId>,
}

fn slot<T>(v: &[Option<T>], index: usize) -> Option<&T> {
    v.get(index).and_then(Option::as_ref)
}

fn slot_mut<T>(v: &mut [Option<T>], index: usize) -> Option<&mut T> {
    v.get_mut(index).and_then(Option::as_mut)
}

/// The queue's state, created if unknown; `None` for ids beyond `MAX_DENSE_INDEX`. A free
/// function rather than a method so callers can hold it while touching other fields.
fn ensure_queue(
    queues: &mut Vec<Option<QueueState>>,
    q: QueueId,
    now: Instant,
) -> Option<&mut QueueState> {
    let i = q.index();
    if i >= MAX_DENSE_INDEX {
        return None;
    }
    if queues.len() <= i {
        queues.resize_with(i + 1, || None);
    }
    Some(
        queues
            .get_mut(i)?
            .get_or_insert_with(|| QueueState::new(now)),
    )
}

/// The agent's state, created (logged out) if unknown and counted among all agents.
fn ensure_agent<'a>(
    agents: &'a mut Vec<Option<AgentState>>,
    all_agents: &mut StatePool,
    a: AgentId,
    now: Instant,
) -> Option<&'a mut AgentState> {
    let i = a.index();
    if i >= MAX_DENSE_INDEX {
        return None;
    }
    if agents.len() <= i {
        agents.resize_with(i + 1, || None);
    }
    let slot = agents.get_mut(i)?;
    if slot.is_none() {
        all_agents.moved(now, None, Some(AgentStateKind::LoggedOut));
    }
    Some(slot.get_or_insert_with(|| AgentState::new(now)))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Whether an agent gets an interval record: it was logged in or counted something.
fn agent_record_due(time: &PerState<Duration>, counters: &AgentCounters) -> bool {
    let logged_in = [
        time.available,
        time.on_break,
        time.reserved,
        time.on_call,
        time.wrap_up,
    ]
    .iter()
    .any(|d| !d.is_zero());
    logged_in || counters.is_active()
}

impl Stats {
    pub fn new(cfg: StatsConfig) -> Self {
        Stats {
            clock: Clock::new(cfg.origin, cfg.origin_unix_ms, cfg.interval),
            latest: cfg.origin,
            queues: Vec::new(),
            agents: Vec::new(),
            waiting: FastMap::default(),
            all_waiting: WaitLine::new(),
            next_seq: 0,
            total: Periods::default(),
            all_agents: StatePool::new(cfg.origin),
            closed: ClosedBuffer::new(MAX_UNDRAINED_INTERVALS),
            ignored: 0,
            scratch: Vec::new(),
        }
    }

    /// Sets a queue's thresholds (creating the queue). Applies to events from now on; calls
    /// already counted keep their classification.
    pub fn configure_queue(&mut self, q: QueueId, cfg: QueueStatsConfig) {
        match ensure_queue(&mut self.queues, q, self.latest) {
            Some(qs) => qs.cfg = cfg,
            None => self.ignored += 1,
        }
    }

    // ----- calls -----

    /// A call starts waiting in `q`: offered. Ignored if it already waits there.
    pub fn call_entered(&mut self, now: Instant, q: QueueId, call: CallId) {
        let now = self.tick(now);
        if self.waiting.contains_key(&(q, call)) {
            self.ignored += 1;
            return;
        }
        let Some(qs) = ensure_queue(&mut self.queues, q, now) else {
            self.ignored += 1;
            return;
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.waiting.insert((q, call), Waiting { since: now, seq });
        qs.line.push(now, seq, call);
        self.all_waiting.push(now, seq, (q, call));
        for c in qs.calls.both().into_iter().chain(self.total.both()) {
            c.offered += 1;
        }
    }

    /// A waiting call is connected to `agent`. Ignored (and counted) if it is not waiting in `q`.
    pub fn call_answered(&mut self, now: Instant, q: QueueId, call: CallId, agent: AgentId) {
        let now = self.tick(now);
        let Some((wait, cfg)) = self.leave_line(now, q, call) else {
            self.ignored += 1;
            return;
        };
        let within = wait <= cfg.sl_threshold;
        if let Some(qs) = slot_mut(&mut self.queues, q.index()) {
            for c in qs.calls.both().into_iter().chain(self.total.both()) {
                c.answered += 1;
                c.answered_within_sl += u64::from(within);
                c.answer_wait = c.answer_wait.saturating_add(wait);
            }
        }
        match ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) {
            Some(ag) => {
                for c in ag.counters.both() {
                    c.answered += 1;
                }
            }
            None => self.ignored += 1,
        }
    }

    /// The caller hung up while waiting in `q`. Ignored (and counted) if it is not waiting there.
    pub fn call_abandoned(&mut self, now: Instant, q: QueueId, call: CallId) {
        let now = self.tick(now);
        let Some((wait, cfg)) = self.leave_line(now, q, call) else {
            self.ignored += 1;
            return;
        };
        let short = wait < cfg.short_abandon;
        if let Some(qs) = slot_mut(&mut self.queues, q.index()) {
            for c in qs.calls.both().into_iter().chain(self.total.both()) {
                c.abandoned += 1;
                c.short_abandoned += u64::from(short);
                c.abandon_wait = c.abandon_wait.saturating_add(wait);
            }
        }
    }

    /// The call left `q` neither answered nor abandoned. Ignored (and counted) if it is not
    /// waiting there.
    pub fn call_exited(&mut self, now: Instant, q: QueueId, call: CallId, reason: ExitReason) {
        let now = self.tick(now);
        if self.leave_line(now, q, call).is_none() {
            self.ignored += 1;
            return;
        }
        if let Some(qs) = slot_mut(&mut self.queues, q.index()) {
            for c in qs.calls.both().into_iter().chain(self.total.both()) {
                c.exit(reason);
            }
        }
    }

    /// A call from `q` finished talking with `agent`. Its handle time is counted when the
    /// wrap-up ends (`wrapup_ended`, with zero if there is no wrap-up). `_call` is accepted for
    /// symmetry with the other call hooks; talk is attributed by queue and agent.
    pub fn call_talk_ended(
        &mut self,
        now: Instant,
        q: QueueId,
        _call: CallId,
        agent: AgentId,
        talk: Duration,
    ) {
        let now = self.tick(now);
        let Some(qs) = ensure_queue(&mut self.queues, q, now) else {
            self.ignored += 1;
            return;
        };
        for c in qs.calls.both().into_iter().chain(self.total.both()) {
            c.talk = c.talk.saturating_add(talk);
        }
        let Some(ag) = ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) else {
            self.ignored += 1;
            return;
        };
        for c in ag.counters.both() {
            c.talk = c.talk.saturating_add(talk);
        }
        // Two talks without a wrap-up in between means the engine skipped `wrapup_ended`: count
        // the earlier call as handled now (no wrap-up) rather than fold it into the next one.
        if let Some((earlier_q, earlier_talk)) = ag.pending_talk.replace((q, talk)) {
            self.count_handled(now, earlier_q, agent, earlier_talk, Duration::ZERO);
        }
    }

    /// `agent` finished wrap-up for a call from `q`: one call handled, with handle time = the
    /// pending talk + `wrapup`. The engine calls this with zero when there is no wrap-up.
    pub fn wrapup_ended(&mut self, now: Instant, q: QueueId, agent: AgentId, wrapup: Duration) {
        let now = self.tick(now);
        let talk = slot_mut(&mut self.agents, agent.index())
            .and_then(|ag| ag.pending_talk.take())
            .map_or(Duration::ZERO, |(_, talk)| talk);
        self.count_handled(now, q, agent, talk, wrapup);
    }

    fn count_handled(
        &mut self,
        now: Instant,
        q: QueueId,
        agent: AgentId,
        talk: Duration,
        wrapup: Duration,
    ) {
        let handle = talk.saturating_add(wrapup);
        match ensure_queue(&mut self.queues, q, now) {
            Some(qs) => {
                for c in qs.calls.both().into_iter().chain(self.total.both()) {
                    c.wrapup = c.wrapup.saturating_add(wrapup);
                    c.handled += 1;
                    c.handle = c.handle.saturating_add(handle);
                }
            }
            None => self.ignored += 1,
        }
        match ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) {
            Some(ag) => {
                for c in ag.counters.both() {
                    c.wrapup = c.wrapup.saturating_add(wrapup);
                    c.handled += 1;
                    c.handle = c.handle.saturating_add(handle);
                }
            }
            None => self.ignored += 1,
        }
    }

    // ----- offers -----

    /// An offer of a call from `q` to `agent` ended with `result`.
    pub fn offer_result(&mut self, now: Instant, q: QueueId, agent: AgentId, result: OfferResult) {
        let now = self.tick(now);
        match ensure_queue(&mut self.queues, q, now) {
            Some(qs) => {
                for c in qs.calls.both().into_iter().chain(self.total.both()) {
                    c.offer(result);
                }
            }
            None => self.ignored += 1,
        }
        match ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) {
            Some(ag) => {
                for c in ag.counters.both() {
                    c.offer(result);
                }
            }
            None => self.ignored += 1,
        }
    }

    // ----- agents -----

    /// `agent` is now in `state`. Re-asserting the current state is not a transition: time in
    /// state keeps running from the original entry.
    pub fn agent_state(&mut self, now: Instant, agent: AgentId, state: AgentStateKind) {
        let now = self.tick(now);
        let Some(ag) = ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) else {
            self.ignored += 1;
            return;
        };
        let old = ag.state;
        if old == state {
            return;
        }
        ag.time.moved(now, Some(old), Some(state));
        ag.state = state;
        ag.state_since = now;
        for q in &ag.queues {
            if let Some(qs) = slot_mut(&mut self.queues, q.index()) {
                qs.members.moved(now, Some(old), Some(state));
            }
        }
        self.all_agents.moved(now, Some(old), Some(state));
    }

    /// `agent` is a member of exactly `queues` from `now` on (duplicates are ignored). Membership
    /// decides which queues count the agent in agents-by-state and occupancy. `now` is an
    /// addition to the sketched API: the member time integrals need to know when it changed.
    pub fn agent_queues(&mut self, now: Instant, agent: AgentId, queues: &[QueueId]) {
        let now = self.tick(now);
        let mut new = std::mem::take(&mut self.scratch);
        new.clear();
        new.extend(
            queues
                .iter()
                .copied()
                .filter(|q| q.index() < MAX_DENSE_INDEX),
        );
        self.ignored += (queues.len() - new.len()) as u64;
        new.sort_unstable();
        new.dedup();
        let Some(ag) = ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) else {
            self.ignored += 1;
            self.scratch = new;
            return;
        };
        let state = ag.state;
        // Both lists are sorted: one merge pass finds the queues left and joined.
        let mut old_it = ag.queues.iter().copied().peekable();
        let mut new_it = new.iter().copied().peekable();
        loop {
            match (old_it.peek().copied(), new_it.peek().copied()) {
                (None, None) => break,
                (Some(o), Some(n)) if o == n => {
                    old_it.next();
                    new_it.next();
                }
                (Some(o), Some(n)) if n < o => {
                    if let Some(qs) = ensure_queue(&mut self.queues, n, now) {
                        qs.members.moved(now, None, Some(state));
                    }
                    new_it.next();
                }
                (Some(o), _) => {
                    if let Some(qs) = slot_mut(&mut self.queues, o.index()) {
                        qs.members.moved(now, Some(state), None);
                    }
                    old_it.next();
                }
                (None, Some(n)) => {
                    if let Some(qs) = ensure_queue(&mut self.queues, n, now) {
                        qs.members.moved(now, None, Some(state));
                    }
                    new_it.next();
                }
            }
        }
        // The old list's allocation becomes the next call's scratch.
        std::mem::swap(&mut ag.queues, &mut new);
        self.scratch = new;
    }

    // ----- reading -----

    /// `q` as of `now`. An unknown queue reads as empty.
    pub fn queue_snapshot(&self, now: Instant, q: QueueId) -> QueueSnapshot {
        let Some(qs) = slot(&self.queues, q.index()) else {
            return self.empty_queue_snapshot();
        };
        let (since_start_t, interval_t) = qs.members.times_at(now);
        QueueSnapshot {
            interval_start_unix_ms: self.clock.start_unix_ms(),
            waiting: qs.line.len() as u64,
            longest_wait_s: qs
                .line
                .oldest()
                .map_or(0.0, |t| secs(now.saturating_duration_since(t))),
            agents: qs.members.counts,
            since_start: QueueFigures::new(&qs.calls.since_start, &since_start_t),
            interval: QueueFigures::new(&qs.calls.interval, &interval_t),
        }
    }

    /// All queues together (call figures are sums over queues) and all agents (each counted
    /// once, whatever its memberships).
    pub fn totals(&self, now: Instant) -> QueueSnapshot {
        let (since_start_t, interval_t) = self.all_agents.times_at(now);
        QueueSnapshot {
            interval_start_unix_ms: self.clock.start_unix_ms(),
            waiting: self.all_waiting.len() as u64,
            longest_wait_s: self
                .all_waiting
                .oldest()
                .map_or(0.0, |t| secs(now.saturating_duration_since(t))),
            agents: self.all_agents.counts,
            since_start: QueueFigures::new(&self.total.since_start, &since_start_t),
            interval: QueueFigures::new(&self.total.interval, &interval_t),
        }
    }

    /// `a` as of `now`. An unknown agent reads as logged out with nothing counted.
    pub fn agent_snapshot(&self, now: Instant, a: AgentId) -> AgentSnapshot {
        let Some(ag) = slot(&self.agents, a.index()) else {
            let zero = AgentFigures::new(&AgentCounters::default(), &PerState::default());
            return AgentSnapshot {
                state: AgentStateKind::LoggedOut,
                time_in_state_s: 0.0,
                queues: 0,
                interval_start_unix_ms: self.clock.start_unix_ms(),
                since_start: zero.clone(),
                interval: zero,
            };
        };
        let (since_start_t, interval_t) = ag.time.times_at(now);
        AgentSnapshot {
            state: ag.state,
            time_in_state_s: secs(now.saturating_duration_since(ag.state_since)),
            queues: ag.queues.len() as u64,
            interval_start_unix_ms: self.clock.start_unix_ms(),
            since_start: AgentFigures::new(&ag.counters.since_start, &since_start_t),
            interval: AgentFigures::new(&ag.counters.interval, &interval_t),
        }
    }

    fn empty_queue_snapshot(&self) -> QueueSnapshot {
        let zero = QueueFigures::new(&CallCounters::default(), &PerState::default());
        QueueSnapshot {
            interval_start_unix_ms: self.clock.start_unix_ms(),
            waiting: 0,
            longest_wait_s: 0.0,
            agents: PerState::default(),
            since_start: zero.clone(),
            interval: zero,
        }
    }

    // ----- intervals -----

    /// Closes every interval boundary at or before `now`. Hooks do this themselves; the engine
    /// also calls it on its interval timer and before reading.
    pub fn advance(&mut self, now: Instant) {
        self.tick(now);
    }

    /// When the open interval closes; the engine arms a timer for it. `None` only if that
    /// instant does not fit in an `Instant` (the interval then never closes).
    pub fn next_boundary(&self) -> Option<Instant> {
        self.clock.next_boundary()
    }

    /// Wall-clock start of the open interval.
    pub fn interval_start_unix_ms(&self) -> u64 {
        self.clock.start_unix_ms()
    }

    /// Takes every closed-interval record, oldest interval first (within an interval: queues by
    /// id, agents by id, then the total). All are removed even if the iterator is dropped early.
    pub fn drain_closed(&mut self) -> impl Iterator<Item = IntervalRecord> {
        self.closed.drain()
    }

    /// Closed-interval records waiting to be drained.
    pub fn undrained_records(&self) -> usize {
        self.closed.len()
    }

    /// Records dropped, unread, because more than [`MAX_UNDRAINED_INTERVALS`] intervals closed
    /// between drains.
    pub fn dropped_records(&self) -> u64 {
        self.closed.dropped()
    }

    /// Events ignored: about calls not waiting where the event says, entering a queue twice,
    /// or naming ids beyond the dense range (one per such queue in a membership list).
    pub fn ignored_events(&self) -> u64 {
        self.ignored
    }

    /// Clamps `now` so time never runs backwards, and closes passed boundaries.
    fn tick(&mut self, now: Instant) -> Instant {
        let now = now.max(self.latest);
        self.latest = now;
        let mut first = true;
        while let Some(boundary) = self.clock.next_boundary() {
            if now < boundary {
                break;
            }
            self.close_interval(boundary);
            if first {
                first = false;
                // Nothing happened after the first boundary (events call tick first), so the
                // intervals after it are quiet. Of those, all but the last few would only be
                // dropped unread: count them without building them, so that a long jump costs
                // O(queues + agents), not that times the number of intervals.
                let quiet = self.clock.boundaries_passed(now);
                let keep = MAX_UNDRAINED_INTERVALS as u64;
                if quiet > keep {
                    self.skip_quiet(quiet - keep);
                }
            }
        }
        now
    }

    /// Removes the waiting call `(q, call)`; its wait and its queue's config.
    fn leave_line(
        &mut self,
        now: Instant,
        q: QueueId,
        call: CallId,
    ) -> Option<(Duration, QueueStatsConfig)> {
        let visit = self.waiting.remove(&(q, call))?;
        let waiting = &self.waiting;
        let is_live =
            |key: (QueueId, CallId), seq: u64| waiting.get(&key).is_some_and(|w| w.seq == seq);
        self.all_waiting.removed(is_live);
        let qs = slot_mut(&mut self.queues, q.index())?;
        qs.line.removed(|c, seq| is_live((q, c), seq));
        Some((now.saturating_duration_since(visit.since), qs.cfg))
    }

    /// Closes the open interval at `boundary` into one batch of records.
    fn close_interval(&mut self, boundary: Instant) {
        let start_unix_ms = self.clock.start_unix_ms();
        let end_unix_ms = self.clock.next_unix_ms();
        self.closed.begin_batch();
        for (i, qs) in self.queues.iter_mut().enumerate() {
            let Some(qs) = qs else { continue };
            let time = qs.members.close_interval(boundary);
            let calls = std::mem::take(&mut qs.calls.interval);
            let Ok(id) = u32::try_from(i) else { continue };
            self.closed.push(IntervalRecord {
                start_unix_ms,
                end_unix_ms,
                scope: Scope::Queue(QueueId(id)),
                figures: Figures::Queue(QueueFigures::new(&calls, &time)),
            });
        }
        for (i, ag) in self.agents.iter_mut().enumerate() {
            let Some(ag) = ag else { continue };
            let time = ag.time.close_interval(boundary);
            let counters = std::mem::take(&mut ag.counters.interval);
            if !agent_record_due(&time, &counters) {
                continue;
            }
            let Ok(id) = u32::try_from(i) else { continue };
            self.closed.push(IntervalRecord {
                start_unix_ms,
                end_unix_ms,
                scope: Scope::Agent(AgentId(id)),
                figures: Figures::Agent(AgentFigures::new(&counters, &time)),
            });
        }
        let time = self.all_agents.close_interval(boundary);
        let calls = std::mem::take(&mut self.total.interval);
        self.closed.push(IntervalRecord {
            start_unix_ms,
            end_unix_ms,
            scope: Scope::Total,
            figures: Figures::Queue(QueueFigures::new(&calls, &time)),
        });
        self.closed.end_batch();
        self.clock.advance_by(1);
    }

    /// Passes `n` intervals in which nothing happened, right after a boundary was closed,
    /// without building their records: counts what they would have held as dropped and accrues
    /// state time (since start) to the end of the skipped span.
    fn skip_quiet(&mut self, n: u64) {
        self.clock.advance_by(n);
        let Some(span_end) = self
            .clock
            .next_boundary()
            .and_then(|next| next.checked_sub(self.clock.interval()))
        else {
            return;
        };
        // A quiet interval yields a record for every queue, for every agent not logged out
        // (state is constant through it), and for the total: the same rule as `close_interval`.
        let mut per_interval: u64 = 1;
        for qs in self.queues.iter_mut().flatten() {
            qs.members.close_interval(span_end);
            qs.calls.interval = CallCounters::default();
            per_interval += 1;
        }
        for ag in self.agents.iter_mut().flatten() {
            ag.time.close_interval(span_end);
            ag.counters.interval = AgentCounters::default();
            per_interval += u64::from(ag.state != AgentStateKind::LoggedOut);
        }
        self.all_agents.close_interval(span_end);
        self.total.interval = CallCounters::default();
        self.closed.count_dropped(per_interval.saturating_mul(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-21 00:00:00 UTC, a quarter hour.
    const MIDNIGHT_MS: u64 = 1_763_683_200_000;
    const Q1: QueueId = QueueId(1);
    const Q2: QueueId = QueueId(2);
    const A1: AgentId = AgentId(1);
    const A2: AgentId = AgentId(2);

    use AgentStateKind::{Available, LoggedOut, OnBreak, OnCall, Reserved, WrapUp};

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Stats starting at a quarter hour, and a helper for "origin + seconds".
    struct Fixture {
        stats: Stats,
        t0: Instant,
    }

    impl Fixture {
        fn new() -> Self {
            Self::at_unix_ms(MIDNIGHT_MS)
        }

        fn at_unix_ms(origin_unix_ms: u64) -> Self {
            let t0 = Instant::now();
            Fixture {
                stats: Stats::new(StatsConfig::new(t0, origin_unix_ms)),
                t0,
            }
        }

        fn at(&self, d: Duration) -> Instant {
            self.t0 + d
        }

        fn enter(&mut self, at: Duration, q: QueueId, call: u32) {
            self.stats.call_entered(self.t0 + at, q, CallId(call));
        }

        fn answer(&mut self, at: Duration, q: QueueId, call: u32, agent: AgentId) {
            self.stats
                .call_answered(self.t0 + at, q, CallId(call), agent);
        }

        fn abandon(&mut self, at: Duration, q: QueueId, call: u32) {
            self.stats.call_abandoned(self.t0 + at, q, CallId(call));
        }

        fn exit(&mut self, at: Duration, q: QueueId, call: u32, reason: ExitReason) {
            self.stats
                .call_exited(self.t0 + at, q, CallId(call), reason);
        }

        fn state(&mut self, at: Duration, agent: AgentId, state: AgentStateKind) {
            self.stats.agent_state(self.t0 + at, agent, state);
        }

        fn queue(&self, at: Duration, q: QueueId) -> QueueSnapshot {
            self.stats.queue_snapshot(self.t0 + at, q)
        }
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("figure should be defined");
        assert!(
            (actual - expected).abs() < 1e-9,
            "expected {expected}, got {actual}"
        );
    }

    // ----- definitions -----

    #[test]
    fn service_level_is_answered_within_threshold_over_answered_plus_abandoned() {
        let mut f = Fixture::new();
        for call in 1..=5 {
            f.enter(s(0), Q1, call);
        }
        f.abandon(s(3), Q1, 3); // short: 3 s < 5 s
        f.answer(s(10), Q1, 1, A1); // within 20 s
        f.answer(s(30), Q1, 2, A1); // too late
        f.abandon(s(40), Q1, 4);
        f.exit(s(50), Q1, 5, ExitReason::Overflow); // excluded from service level
        let fig = f.queue(s(60), Q1).since_start;
        assert_eq!(fig.offered, 5);
        assert_eq!(fig.answered, 2);
        assert_eq!(fig.answered_within_sl, 1);
        assert_eq!(fig.abandoned, 2);
        assert_eq!(fig.short_abandoned, 1);
        assert_eq!(fig.exited.overflow, 1);
        assert_eq!(fig.exited_total, 1);
        assert_close(fig.service_level, 1.0 / 4.0);
        assert_close(fig.service_level_excl_short, 1.0 / 3.0);
    }

    #[test]
    fn service_level_is_null_when_only_exits_happened() {
        let mut f = Fixture::new();
        assert_eq!(f.queue(s(0), Q1).since_start.abandon_rate, None);
        f.enter(s(0), Q1, 1);
        f.exit(s(30), Q1, 1, ExitReason::Voicemail);
        let fig = f.queue(s(30), Q1).since_start;
        assert_eq!(fig.service_level, None);
        assert_eq!(fig.service_level_excl_short, None);
        assert_eq!(fig.asa_s, None);
        assert_close(fig.abandon_rate, 0.0);
    }

    #[test]
    fn service_level_excluding_short_is_null_when_all_ended_calls_were_short_abandons() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 1);
        f.abandon(s(1), Q1, 1);
        let fig = f.queue(s(1), Q1).since_start;
        assert_close(fig.service_level, 0.0);
        assert_eq!(fig.service_level_excl_short, None);
    }

    #[test]
    fn an_answer_exactly_at_the_threshold_is_within_service_level() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 1);
        f.enter(s(0), Q1, 2);
        f.answer(s(20), Q1, 1, A1);
        f.answer(s(20) + ms(1), Q1, 2, A1);
        let fig = f.queue(s(21), Q1).since_start;
        assert_eq!(fig.answered_within_sl, 1);
        assert_close(fig.service_level, 0.5);
    }

    #[test]
    fn short_abandon_is_strictly_below_the_queue_threshold() {
        let mut f = Fixture::new();
        f.stats.configure_queue(
            Q2,
            QueueStatsConfig {
                sl_threshold: s(20),
                short_abandon: s(10),
            },
        );
        for call in 1..=3 {
            f.enter(s(0), Q1, call);
            f.enter(s(0), Q2, call);
        }
        f.abandon(s(5) - ms(1), Q1, 1);
        f.abandon(s(5), Q1, 2); // exactly the threshold: not short
        f.abandon(s(9), Q1, 3);
        f.abandon(s(5) - ms(1), Q2, 1);
        f.abandon(s(5), Q2, 2);
        f.abandon(s(10), Q2, 3); // exactly Q2's threshold: not short
        assert_eq!(f.queue(s(10), Q1).since_start.short_abandoned, 1);
        assert_eq!(f.queue(s(10), Q2).since_start.short_abandoned, 2);
        assert_eq!(f.queue(s(10), Q2).since_start.abandoned, 3);
        assert_close(
            f.queue(s(10), Q1).since_start.avg_abandon_wait_s,
            (4.999 + 5.0 + 9.0) / 3.0,
        );
    }

    #[test]
    fn asa_is_the_mean_wait_of_answered_calls_only() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 1);
        f.enter(s(5), Q1, 2);
        f.enter(s(5), Q1, 3);
        f.answer(s(10), Q1, 1, A1); // waited 10
        f.answer(s(35), Q1, 2, A2); // waited 30
        f.abandon(s(100), Q1, 3); // waited 95, not part of ASA
        assert_close(f.queue(s(100), Q1).since_start.asa_s, 20.0);
    }

    #[test]
    fn aht_counts_talk_and_wrapup_when_the_wrapup_ends() {
        let mut f = Fixture::new();
        f.stats
            .call_talk_ended(f.at(s(100)), Q1, CallId(1), A1, s(100));
        let fig = f.queue(s(100), Q1).since_start;
        assert_eq!(fig.handled, 0);
        assert_eq!(fig.aht_s, None);
        assert_close(Some(fig.talk_s), 100.0);
        f.stats.wrapup_ended(f.at(s(120)), Q1, A1, s(20));
        // A call with no wrap-up: the engine reports a zero wrap-up at talk end.
        f.stats
            .call_talk_ended(f.at(s(200)), Q1, CallId(2), A1, s(60));
        f.stats.wrapup_ended(f.at(s(200)), Q1, A1, Duration::ZERO);
        let fig = f.queue(s(200), Q1).since_start;
        assert_eq!(fig.handled, 2);
        assert_close(Some(fig.handle_s), 180.0);
        assert_close(fig.aht_s, 90.0);
        assert_close(Some(fig.wrapup_s), 20.0);
        let agent = f.stats.agent_snapshot(f.at(s(200)), A1).since_start;
        assert_eq!(agent.handled, 2);
        assert_close(agent.aht_s, 90.0);
    }

    #[test]
    fn a_talk_without_its_wrapup_is_counted_as_handled_when_the_next_talk_ends() {
        let mut f = Fixture::new();
        f.stats
            .call_talk_ended(f.at(s(50)), Q1, CallId(1), A1, s(50));
        // No wrapup_ended for call 1.
        f.stats
            .call_talk_ended(f.at(s(100)), Q2, CallId(2), A1, s(30));
        f.stats.wrapup_ended(f.at(s(110)), Q2, A1, s(10));
        let q1 = f.queue(s(110), Q1).since_start;
        assert_eq!(q1.handled, 1);
        assert_close(q1.aht_s, 50.0);
        let q2 = f.queue(s(110), Q2).since_start;
        assert_eq!(q2.handled, 1);
        assert_close(q2.aht_s, 40.0);
    }

    #[test]
    fn abandon_rate_is_abandoned_over_calls_that_ended() {
        let mut f = Fixture::new();
        for call in 1..=5 {
            f.enter(s(0), Q1, call);
        }
        f.answer(s(10), Q1, 1, A1);
        f.abandon(s(10), Q1, 2);
        f.exit(s(10), Q1, 3, ExitReason::Timeout);
        f.exit(s(10), Q1, 4, ExitReason::Callback);
        // Call 5 is still waiting: offered but not ended, so not in the denominator.
        let fig = f.queue(s(10), Q1).since_start;
        assert_eq!(fig.offered, 5);
        assert_close(fig.abandon_rate, 1.0 / 4.0);
    }

    #[test]
    fn agent_occupancy_is_busy_over_busy_plus_available() {
        let mut f = Fixture::new();
        f.state(s(0), A1, Available); // 60 s available
        f.state(s(60), A1, Reserved); // 10 s reserved
        f.state(s(70), A1, OnCall); // 60 s on call
        f.state(s(130), A1, WrapUp); // 20 s wrap-up
        f.state(s(150), A1, OnBreak); // 50 s break: excluded
        f.state(s(200), A1, Available); // 20 s available
        f.state(s(220), A1, LoggedOut); // excluded
        let snap = f.stats.agent_snapshot(f.at(s(300)), A1);
        assert_eq!(snap.state, LoggedOut);
        assert_close(Some(snap.time_in_state_s), 80.0);
        let fig = snap.since_start;
        assert_close(fig.occupancy, 90.0 / 170.0);
        assert_close(Some(fig.state_time_s.available), 80.0);
        assert_close(Some(fig.state_time_s.on_break), 50.0);
        assert_close(Some(fig.state_time_s.logged_out), 80.0);
    }

    #[test]
    fn queue_occupancy_is_over_member_agents_and_counts_shared_agents_in_each_queue() {
        let mut f = Fixture::new();
        f.stats.agent_queues(f.at(s(0)), A1, &[Q1, Q2]);
        f.stats.agent_queues(f.at(s(0)), A2, &[Q1]);
        f.stats.agent_state(f.at(s(0)), AgentId(3), OnCall); // member of nothing
        f.state(s(0), A1, OnCall);
        f.state(s(0), A2, Available);
        // Q1: 100 agent-s on call + 100 available; Q2: A1 alone, all on call.
        assert_close(f.queue(s(100), Q1).since_start.occupancy, 0.5);
        assert_close(f.queue(s(100), Q2).since_start.occupancy, 1.0);
        assert_close(
            Some(f.queue(s(100), Q1).since_start.agent_time_s.on_call),
            100.0,
        );
        // Totals count every agent once: 200 agent-s on call, 100 available.
        assert_close(
            f.stats.totals(f.at(s(100))).since_start.occupancy,
            2.0 / 3.0,
        );
    }

    #[test]
    fn leaving_a_queue_stops_its_member_time() {
        let mut f = Fixture::new();
        f.stats.agent_queues(f.at(s(0)), A1, &[Q1]);
        f.state(s(0), A1, Available);
        f.stats.agent_queues(f.at(s(40)), A1, &[Q2]);
        let q1 = f.queue(s(100), Q1).since_start;
        assert_close(Some(q1.agent_time_s.available), 40.0);
        let q2 = f.queue(s(100), Q2).since_start;
        assert_close(Some(q2.agent_time_s.available), 60.0);
    }

    // ----- live values -----

    #[test]
    fn agents_by_state_follow_membership_and_state_changes() {
        let mut f = Fixture::new();
        f.stats.agent_queues(f.at(s(0)), A1, &[Q1, Q2, Q1]); // duplicate ignored
        f.stats.agent_queues(f.at(s(0)), A2, &[Q1]);
        let q1 = f.queue(s(0), Q1).agents;
        assert_eq!((q1.logged_out, q1.available), (2, 0));
        f.state(s(1), A1, Available);
        f.state(s(1), A2, OnBreak);
        let q1 = f.queue(s(1), Q1).agents;
        assert_eq!((q1.logged_out, q1.available, q1.on_break), (0, 1, 1));
        assert_eq!(f.queue(s(1), Q2).agents.available, 1);
        // A1 leaves Q2 and joins nothing new; A2 joins Q2.
        f.stats.agent_queues(f.at(s(2)), A1, &[Q1]);
        f.stats.agent_queues(f.at(s(2)), A2, &[Q2, Q1]);
        let q2 = f.queue(s(2), Q2).agents;
        assert_eq!((q2.available, q2.on_break), (0, 1));
        f.state(s(3), A1, OnCall);
        let q1 = f.queue(s(3), Q1).agents;
        assert_eq!((q1.on_call, q1.on_break, q1.available), (1, 1, 0));
        assert_eq!(f.queue(s(3), Q2).agents.on_call, 0);
        f.stats.agent_queues(f.at(s(4)), A2, &[]);
        assert_eq!(f.queue(s(4), Q2).agents, PerState::default());
        assert_eq!(f.stats.agent_snapshot(f.at(s(4)), A2).queues, 0);
        let all = f.stats.totals(f.at(s(4))).agents;
        assert_eq!((all.on_call, all.on_break), (1, 1));
    }

    #[test]
    fn longest_wait_follows_the_oldest_remaining_caller() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 1);
        f.enter(s(10), Q1, 2);
        f.enter(s(20), Q1, 3);
        let snap = f.queue(s(30), Q1);
        assert_eq!(snap.waiting, 3);
        assert_close(Some(snap.longest_wait_s), 30.0);
        f.answer(s(30), Q1, 1, A1);
        assert_close(Some(f.queue(s(30), Q1).longest_wait_s), 20.0);
        f.answer(s(31), Q1, 3, A1); // a newer caller leaves: the oldest is unchanged
        assert_close(Some(f.queue(s(31), Q1).longest_wait_s), 21.0);
        f.abandon(s(32), Q1, 2);
        let snap = f.queue(s(32), Q1);
        assert_eq!(snap.waiting, 0);
        assert_close(Some(snap.longest_wait_s), 0.0);
    }

    #[test]
    fn totals_longest_wait_spans_queues() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 1);
        f.enter(s(5), Q2, 2);
        let t = f.stats.totals(f.at(s(10)));
        assert_eq!(t.waiting, 2);
        assert_close(Some(t.longest_wait_s), 10.0);
        f.answer(s(10), Q1, 1, A1);
        assert_close(Some(f.stats.totals(f.at(s(10))).longest_wait_s), 5.0);
    }

    #[test]
    fn a_call_that_overflows_counts_in_both_queues() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 7);
        f.exit(s(30), Q1, 7, ExitReason::Overflow);
        f.enter(s(30), Q2, 7);
        f.answer(s(35), Q2, 7, A1);
        let q1 = f.queue(s(40), Q1).since_start;
        assert_eq!((q1.offered, q1.answered, q1.exited.overflow), (1, 0, 1));
        assert_eq!(q1.service_level, None);
        let q2 = f.queue(s(40), Q2).since_start;
        assert_eq!((q2.offered, q2.answered, q2.answered_within_sl), (1, 1, 1));
        // Wait is counted from entry into Q2, not from the first queue.
        assert_close(q2.asa_s, 5.0);
        let total = f.stats.totals(f.at(s(40))).since_start;
        assert_eq!(
            (total.offered, total.answered, total.exited_total),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_call_may_wait_in_two_queues_at_once() {
        let mut f = Fixture::new();
        f.enter(s(0), Q1, 7);
        f.enter(s(0), Q2, 7);
        f.answer(s(8), Q2, 7, A1);
        f.exit(s(8), Q1, 7, ExitReason::Other);
        assert_eq!(f.queue(s(8), Q1).since_start.exited.other, 1);
        assert_eq!(f.queue(s(8), Q2).since_start.answered, 1);
        assert_eq!(f.stats.ignored_events(), 0);
    }

    #[test]
    fn offers_count_per_queue_and_per_agent() {
        let mut f = Fixture::new();
        let results = [
            OfferResult::Rejected,
            OfferResult::NoAnswer,
            OfferResult::NoAnswer,
            OfferResult::Lost,
            OfferResult::Accepted,
        ];
        for result in results {
            f.stats.offer_result(f.at(s(1)), Q1, A1, result);
        }
        f.stats.offer_result(f.at(s(1)), Q2, A1, OfferResult::Busy);
        let agent = f.stats.agent_snapshot(f.at(s(1)), A1).since_start;
        assert_eq!(agent.offered, 6);
        assert_eq!((agent.accepted, agent.rejected, agent.no_answer), (1, 1, 2));
        assert_eq!((agent.busy, agent.lost, agent.failed), (1, 1, 0));
        let q1 = f.queue(s(1), Q1).since_start.offers;
        assert_eq!((q1.no_answer, q1.busy, q1.total()), (2, 0, 5));
    }

    #[test]
    fn events_about_calls_that_are_not_waiting_are_ignored_and_counted() {
        let mut f = Fixture::new();
        f.answer(s(1), Q1, 1, A1);
        f.abandon(s(1), Q1, 2);
        f.exit(s(1), Q1, 3, ExitReason::Timeout);
        f.enter(s(1), Q1, 4);
        f.enter(s(2), Q1, 4); // already waiting
        f.answer(s(3), Q2, 4, A1); // waiting in Q1, not Q2
        f.enter(s(3), QueueId(u32::MAX), 5); // beyond the dense range
        assert_eq!(f.stats.ignored_events(), 6);
        let q1 = f.queue(s(3), Q1);
        assert_eq!((q1.since_start.offered, q1.waiting), (1, 1));
        assert_eq!(q1.since_start.answered, 0);
        assert_close(Some(q1.longest_wait_s), 2.0);
        assert_eq!(
            f.stats.agent_snapshot(f.at(s(3)), A1).since_start.answered,
            0
        );
    }

    #[test]
    fn membership_ids_beyond_the_dense_range_are_ignored_and_counted() {
        let mut f = Fixture::new();
        f.stats
            .agent_queues(f.at(s(0)), A1, &[QueueId(u32::MAX), Q1, QueueId(1 << 22)]);
        assert_eq!(f.stats.ignored_events(), 2);
        assert_eq!(f.queue(s(0), Q1).agents.logged_out, 1);
        assert_eq!(f.stats.agent_snapshot(f.at(s(0)), A1).queues, 1);
    }

    #[test]
    fn reading_unknown_ids_creates_nothing() {
        let f = Fixture::new();
        let q = f.queue(s(1), QueueId(999));
        assert_eq!(q.since_start.offered, 0);
        assert_eq!(q.agents, PerState::default());
        let a = f.stats.agent_snapshot(f.at(s(1)), AgentId(999));
        assert_eq!(a.state, LoggedOut);
        assert!(f.stats.queues.is_empty());
        assert!(f.stats.agents.is_empty());
    }

    #[test]
    fn time_running_backwards_is_treated_as_no_time_passing() {
        let mut f = Fixture::new();
        f.enter(s(10), Q1, 1);
        f.answer(s(5), Q1, 1, A1); // earlier than the entry
        assert_close(f.queue(s(10), Q1).since_start.asa_s, 0.0);
        f.state(s(20), A1, Available);
        f.state(s(15), A1, OnCall);
        let agent = f.stats.agent_snapshot(f.at(s(30)), A1).since_start;
        assert_close(Some(agent.state_time_s.available), 0.0);
        assert_close(Some(agent.state_time_s.on_call), 10.0);
    }

    #[test]
    fn reasserting_the_current_state_keeps_time_in_state() {
        let mut f = Fixture::new();
        f.state(s(0), A1, OnBreak);
        f.state(s(30), A1, OnBreak);
        assert_close(
            Some(f.stats.agent_snapshot(f.at(s(40)), A1).time_in_state_s),
            40.0,
        );
    }

    // ----- intervals -----

    const QUARTER: Duration = Duration::from_secs(900);

    fn records(stats: &mut Stats) -> Vec<IntervalRecord> {
        stats.drain_closed().collect()
    }

    fn find(records: &[IntervalRecord], start_unix_ms: u64, scope: Scope) -> &IntervalRecord {
        records
            .iter()
            .find(|r| r.start_unix_ms == start_unix_ms && r.scope == scope)
            .expect("record present")
    }

    fn agent_figures(r: &IntervalRecord) -> &AgentFigures {
        match &r.figures {
            Figures::Agent(a) => a,
            Figures::Queue(_) => panic!("expected agent figures"),
        }
    }

    fn queue_figures(r: &IntervalRecord) -> &QueueFigures {
        match &r.figures {
            Figures::Queue(q) => q,
            Figures::Agent(_) => panic!("expected queue figures"),
        }
    }

    #[test]
    fn state_time_spanning_a_boundary_is_split_exactly() {
        let mut f = Fixture::new();
        f.stats.agent_queues(f.at(s(0)), A1, &[Q1]);
        f.state(s(600), A1, Available); // 00:10
        f.state(s(1200), A1, OnCall); // 00:20
        f.stats.advance(f.at(s(1800))); // 00:30
        let recs = records(&mut f.stats);
        let first = agent_figures(find(&recs, MIDNIGHT_MS, Scope::Agent(A1)));
        assert_close(Some(first.state_time_s.available), 300.0);
        assert_close(Some(first.state_time_s.logged_out), 600.0);
        let second = agent_figures(find(&recs, MIDNIGHT_MS + 900_000, Scope::Agent(A1)));
        assert_close(Some(second.state_time_s.available), 300.0);
        assert_close(Some(second.state_time_s.on_call), 600.0);
        assert_close(second.occupancy, 600.0 / 900.0);
        let q1 = queue_figures(find(&recs, MIDNIGHT_MS + 900_000, Scope::Queue(Q1)));
        assert_close(Some(q1.agent_time_s.on_call), 600.0);
        // Since-start figures still hold both intervals.
        let total = f.stats.agent_snapshot(f.at(s(1800)), A1).since_start;
        assert_close(Some(total.state_time_s.available), 600.0);
    }

    #[test]
    fn call_counters_go_to_the_interval_of_each_event() {
        let mut f = Fixture::new();
        f.enter(s(890), Q1, 1); // 00:14:50
        f.answer(s(905), Q1, 1, A1); // 00:15:05, waited 15 s
        let snap = f.queue(s(905), Q1);
        assert_eq!(snap.interval_start_unix_ms, MIDNIGHT_MS + 900_000);
        assert_eq!((snap.interval.offered, snap.interval.answered), (0, 1));
        assert_eq!(
            (snap.since_start.offered, snap.since_start.answered),
            (1, 1)
        );
        f.stats.advance(f.at(QUARTER * 2));
        let recs = records(&mut f.stats);
        let first = queue_figures(find(&recs, MIDNIGHT_MS, Scope::Queue(Q1)));
        assert_eq!((first.offered, first.answered), (1, 0));
        assert_eq!(first.service_level, None);
        let second = queue_figures(find(&recs, MIDNIGHT_MS + 900_000, Scope::Queue(Q1)));
        assert_eq!(
            (second.offered, second.answered, second.answered_within_sl),
            (0, 1, 1)
        );
        assert_close(second.asa_s, 15.0);
        let total = queue_figures(find(&recs, MIDNIGHT_MS + 900_000, Scope::Total));
        assert_eq!(total.answered, 1);
    }

    #[test]
    fn an_event_exactly_on_a_boundary_belongs_to_the_new_interval() {
        let mut f = Fixture::new();
        f.stats.configure_queue(Q1, QueueStatsConfig::default());
        f.enter(QUARTER, Q1, 1);
        let recs = records(&mut f.stats);
        assert_eq!(
            queue_figures(find(&recs, MIDNIGHT_MS, Scope::Queue(Q1))).offered,
            0
        );
        assert_eq!(f.queue(QUARTER, Q1).interval.offered, 1);
    }

    #[test]
    fn intervals_align_to_wall_clock_quarter_hours() {
        // Origin at 00:07:30 UTC: the first boundary is 00:15, 7.5 minutes in.
        let mut f = Fixture::at_unix_ms(MIDNIGHT_MS + 450_000);
        assert_eq!(f.stats.next_boundary(), Some(f.at(s(450))));
        f.state(s(0), A1, Available);
        f.stats.advance(f.at(s(449)));
        assert!(records(&mut f.stats).is_empty());
        f.stats.advance(f.at(s(450)));
        let recs = records(&mut f.stats);
        let r = find(&recs, MIDNIGHT_MS, Scope::Agent(A1));
        assert_eq!(r.end_unix_ms, MIDNIGHT_MS + 900_000);
        // The partial first interval holds only the time since the origin.
        assert_close(Some(agent_figures(r).state_time_s.available), 450.0);
        assert_eq!(f.stats.next_boundary(), Some(f.at(s(450) + QUARTER)));
        assert_eq!(f.stats.interval_start_unix_ms(), MIDNIGHT_MS + 900_000);
    }

    #[test]
    fn each_interval_has_one_record_per_queue_active_agent_and_the_total() {
        let mut f = Fixture::new();
        f.stats.configure_queue(Q1, QueueStatsConfig::default());
        f.stats.configure_queue(Q2, QueueStatsConfig::default());
        f.state(s(0), A1, Available);
        f.state(s(0), A2, LoggedOut); // known, but logged out and idle: no record
        f.stats.advance(f.at(QUARTER));
        let scopes: Vec<Scope> = records(&mut f.stats).into_iter().map(|r| r.scope).collect();
        assert_eq!(
            scopes,
            [
                Scope::Queue(Q1),
                Scope::Queue(Q2),
                Scope::Agent(A1),
                Scope::Total
            ]
        );
        // A logged-out agent that counted something does get a record.
        f.stats
            .offer_result(f.at(QUARTER + s(1)), Q1, A2, OfferResult::Failed);
        f.stats.advance(f.at(QUARTER * 2));
        let recs = records(&mut f.stats);
        assert_eq!(
            agent_figures(find(&recs, MIDNIGHT_MS + 900_000, Scope::Agent(A2))).failed,
            1
        );
    }

    #[test]
    fn undrained_intervals_are_bounded_and_the_oldest_are_dropped() {
        let mut f = Fixture::new();
        f.stats.configure_queue(Q1, QueueStatsConfig::default());
        // Two records per interval (Q1 and the total), six intervals, no drain.
        for i in 1..=6u32 {
            f.enter(QUARTER * i - s(1), Q1, i);
            f.stats.advance(f.at(QUARTER * i));
        }
        assert_eq!(f.stats.dropped_records(), 4);
        assert_eq!(f.stats.undrained_records(), 2 * MAX_UNDRAINED_INTERVALS);
        let recs = records(&mut f.stats);
        assert_eq!(recs.len(), 2 * MAX_UNDRAINED_INTERVALS);
        let starts: Vec<u64> = recs.iter().map(|r| r.start_unix_ms).step_by(2).collect();
        let expected: Vec<u64> = (2..6).map(|i| MIDNIGHT_MS + i * 900_000).collect();
        assert_eq!(starts, expected);
        assert_eq!(queue_figures(&recs[0]).offered, 1);
        assert!(records(&mut f.stats).is_empty());
    }

    #[test]
    fn a_long_jump_matches_closing_every_boundary_in_turn() {
        fn scenario(step: bool) -> (Vec<IntervalRecord>, u64, QueueSnapshot, AgentSnapshot) {
            let mut f = Fixture::new();
            f.stats.agent_queues(f.at(s(0)), A1, &[Q1]);
            f.state(s(0), A1, Available);
            f.stats.agent_queues(f.at(s(0)), A2, &[Q1]);
            f.enter(s(100), Q1, 1);
            f.answer(s(110), Q1, 1, A1);
            f.state(s(110), A1, OnCall);
            let end = s(86_400 + 60);
            if step {
                let mut t = QUARTER;
                while t <= end {
                    f.stats.advance(f.at(t));
                    t += QUARTER;
                }
            }
            f.stats.advance(f.at(end));
            let recs = records(&mut f.stats);
            let q = f.queue(end, Q1);
            let a = f.stats.agent_snapshot(f.at(end), A1);
            (recs, f.stats.dropped_records(), q, a)
        }
        let stepped = scenario(true);
        let jumped = scenario(false);
        assert_eq!(jumped.0.len(), 3 * MAX_UNDRAINED_INTERVALS);
        assert_eq!(jumped.0, stepped.0);
        // 96 intervals of 3 records (Q1, A1, total); 4 kept.
        assert_eq!(jumped.1, 3 * (96 - MAX_UNDRAINED_INTERVALS as u64));
        assert_eq!(jumped.1, stepped.1);
        assert_eq!(jumped.2, stepped.2);
        assert_eq!(jumped.3, stepped.3);
        assert_close(
            Some(jumped.3.since_start.state_time_s.on_call),
            86_400.0 + 60.0 - 110.0,
        );
        assert_close(Some(jumped.3.interval.state_time_s.on_call), 60.0);
    }

    #[test]
    fn interval_figures_restart_while_since_start_figures_accumulate() {
        let mut f = Fixture::new();
        f.enter(s(10), Q1, 1);
        f.abandon(s(20), Q1, 1);
        f.enter(QUARTER + s(10), Q1, 2);
        let snap = f.queue(QUARTER + s(10), Q1);
        assert_eq!((snap.interval.offered, snap.interval.abandoned), (1, 0));
        assert_eq!(
            (snap.since_start.offered, snap.since_start.abandoned),
            (2, 1)
        );
        // Waiting and longest wait are live, not per interval.
        assert_eq!(snap.waiting, 1);
    }
}
