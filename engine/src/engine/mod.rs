//! The [`Engine`]: all call-center state, no I/O. See the crate docs for the run loop.

mod agents;
mod bridges;
mod calls;
mod campaigns;
mod dispatch;
mod invariants;
mod lines;
mod offers;
mod recordings;
mod recovery;
mod supervisor;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::agent::{Agent, AgentStateKind};
use crate::call::{Call, Offer, Phase};
use crate::config::{EngineConfig, QueueConfig};
use crate::dialer::campaign::Campaign;
use crate::error::EngineError;
use crate::hash::{FastMap, FastSet};
use crate::ids::{AgentId, CallId, CampaignId, OfferId, QueueId};
use crate::io::{Command, Input, LegId, LiveEvent, Output, Record, SwitchCommand, SwitchEvent};
use crate::queue::Queue;
use crate::stats::{Stats, StatsConfig};
use crate::timers::{TimerKey, Timers};
use crate::trace::DecisionTrace;

pub use invariants::InvariantViolation;
pub use recovery::{AdoptedCall, DialSeen, OpenDial, Recovery};

/// Who a FreeSWITCH leg belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegRole {
    /// The caller (or, for a callback, the customer leg once dialled).
    Caller(CallId),
    /// An agent leg ringing for an offer.
    Offer(OfferId),
    /// An agent leg that answered and is (or is about to be) bridged to the call.
    AgentOnCall(CallId),
    /// A supervisor's eavesdrop leg.
    Monitor(AgentId),
    /// A campaign's dial, until a person on it becomes a call.
    Dial(CampaignId),
    /// An agent's persistent line between calls (ringing or parked). While it carries an
    /// offer or a call it has that role instead.
    AgentLine(AgentId),
}

/// Time handed out when no timer is armed: the driver sleeps this long at most.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// The deterministic call-center core.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) origin: Instant,
    pub(crate) now: Instant,
    pub(crate) rng: fastrand::Rng,
    pub(crate) agents: Vec<Option<Agent>>,
    pub(crate) queues: Vec<Option<Queue>>,
    pub(crate) calls: FastMap<CallId, Call>,
    pub(crate) offers: FastMap<OfferId, Offer>,
    pub(crate) legs: FastMap<LegId, LegRole>,
    pub(crate) timers: Timers,
    pub(crate) out: VecDeque<Output>,
    pub(crate) next_call: u32,
    pub(crate) next_offer: u32,
    /// Calls and agents whose circumstances changed since the last matching step.
    pub(crate) dirty_calls: Vec<CallId>,
    pub(crate) dirty_agents: Vec<AgentId>,
    pub(crate) stats: Stats,
    stats_timer: Option<Instant>,
    /// The last decision traces, oldest first (bounded by `trace_memory`).
    pub(crate) traces: VecDeque<std::sync::Arc<DecisionTrace>>,
    /// Monitor legs currently attached (supervisor leg -> agent).
    pub(crate) monitors: FastSet<LegId>,
    /// Calls refused because `max_calls` was reached.
    pub(crate) refused: u64,
    pub(crate) campaigns: FastMap<CampaignId, Campaign>,
    /// Recent campaign calls that ended, for dispositions that come after (bounded).
    pub(crate) recent_campaign_calls: crate::dialer::campaign::RecentCalls,
    /// Offers to agents on persistent lines, accepted once the matching step is done (at
    /// most one per agent).
    pub(crate) instant_accepts: Vec<OfferId>,
    /// No switch node can take originates ([`SwitchEvent::Reachable`]): campaigns wait.
    pub(crate) switch_down: bool,
    /// Recordings asked for and not yet recorded (running, or ended and awaiting the
    /// driver's report). At most one running per live call.
    pub(crate) recordings: FastMap<crate::recording::RecordingId, recordings::ActiveRecording>,
    /// The leg each running recording taps: it ends when that leg does.
    pub(crate) recorded_legs: FastMap<LegId, crate::recording::RecordingId>,
}

impl Engine {
    pub fn new(cfg: EngineConfig, seed: u64, now: Instant) -> Engine {
        let stats = Stats::new(StatsConfig {
            origin: now,
            origin_unix_ms: cfg.origin_unix_ms,
            interval: Duration::from_secs(15 * 60),
        });
        let mut engine = Engine {
            cfg,
            origin: now,
            now,
            rng: fastrand::Rng::with_seed(seed),
            agents: Vec::new(),
            queues: Vec::new(),
            calls: FastMap::default(),
            offers: FastMap::default(),
            legs: FastMap::default(),
            timers: Timers::default(),
            out: VecDeque::new(),
            next_call: 1,
            next_offer: 1,
            dirty_calls: Vec::new(),
            dirty_agents: Vec::new(),
            stats,
            stats_timer: None,
            traces: VecDeque::new(),
            monitors: FastSet::default(),
            refused: 0,
            campaigns: FastMap::default(),
            recent_campaign_calls: Default::default(),
            instant_accepts: Vec::new(),
            switch_down: false,
            recordings: FastMap::default(),
            recorded_legs: FastMap::default(),
        };
        engine.arm_stats_timer();
        engine
    }

    /// Feeds one input. Afterwards drain [`Engine::poll_output`] until it returns
    /// [`Output::Timeout`].
    pub fn handle_input(&mut self, input: Input) -> Result<(), EngineError> {
        // Inputs from several sources may carry times a hair apart; the core's clock never
        // goes back.
        let t = input.time().max(self.now);
        self.run_timers(t);
        let result = match input {
            Input::Switch(_, ev) => {
                self.on_switch(ev);
                Ok(())
            }
            Input::Api(_, cmd) => self.on_command(cmd),
            Input::Timeout(_) => Ok(()),
        };
        self.settle();
        result
    }

    /// The next thing the driver must do; `Output::Timeout` when there is nothing more.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        Output::Timeout(self.timers.next_deadline().unwrap_or(self.now + IDLE_WAKE))
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            // A timer's effects are stamped with its own deadline, as if the driver had woken
            // exactly on time.
            self.now = at.max(self.now);
            self.stats.advance(self.now);
            self.fire(key);
            // Timers due at the same instant fire together before matching, so that agents
            // freed at once are matched at once (globally), not one by one.
            while let Some((_, key)) = self.timers.pop_due(self.now) {
                self.fire(key);
            }
            self.settle();
        }
        self.now = now;
        self.stats.advance(now);
        let closed: Vec<_> = self.stats.drain_closed().collect();
        for rec in closed {
            self.out.push_back(Output::Persist(Record::Interval(rec)));
        }
    }

    fn fire(&mut self, key: TimerKey) {
        match key {
            TimerKey::OfferTimeout(o) => self.on_offer_timeout(o),
            TimerKey::RingNext(c) => self.on_ring_next(c),
            TimerKey::Announce(c) => self.on_announce(c),
            TimerKey::Periodic(c) => self.on_periodic(c),
            TimerKey::MaxWait(c) => self.on_max_wait(c),
            TimerKey::NoAgent(c) => self.on_no_agent(c),
            TimerKey::Escalate(c) => self.on_escalate(c),
            TimerKey::AgentReady(a) => self.on_agent_ready(a),
            TimerKey::StatsBoundary => {
                self.stats_timer = None;
                self.arm_stats_timer();
            }
            TimerKey::DialerTick(c) => self.on_dialer_tick(c),
            TimerKey::ConnectDeadline(c) => self.on_connect_deadline(c),
            TimerKey::AmdTimeout(leg) => self.on_amd_timeout(leg),
            TimerKey::BridgeDeadline(c) => self.on_bridge_deadline(c),
            TimerKey::CallbackRetry(c) => self.on_callback_retry(c),
            TimerKey::RecordingReport(id) => self.on_recording_report_deadline(id),
        }
    }

    fn arm_stats_timer(&mut self) {
        // None only if the next boundary is beyond what `Instant` can hold: then never.
        if let Some(at) = self.stats.next_boundary() {
            self.stats_timer = Some(at);
            self.timers.arm(at, TimerKey::StatsBoundary);
        }
    }

    fn on_switch(&mut self, ev: SwitchEvent) {
        match ev {
            SwitchEvent::CallArrived { leg, queue, caller } => {
                self.on_call_arrived(leg, queue, caller)
            }
            SwitchEvent::LegAnswered { leg } => self.on_leg_answered(leg),
            SwitchEvent::Bridged { a, b } => self.on_bridged(a, b),
            SwitchEvent::BridgeFailed { a, b } => self.on_bridge_failed(a, b),
            SwitchEvent::LegHungUp { leg, cause } => self.on_leg_hangup(leg, cause),
            SwitchEvent::Transferred { leg } => self.on_leg_transferred(leg),
            SwitchEvent::Dtmf { leg, digit } => self.on_dtmf(leg, digit),
            SwitchEvent::MachineDetection { leg, result } => self.on_machine_detection(leg, result),
            SwitchEvent::Resync { live, restarted } => self.on_resync(&live, restarted),
            SwitchEvent::Reachable { up } => {
                self.switch_down = !up;
                if up {
                    for c in self.campaigns.values_mut() {
                        c.dirty = true;
                    }
                    // Persistent lines wanted meanwhile are called now.
                    let agents: Vec<AgentId> = self.agent_ids().collect();
                    for a in agents {
                        self.sync_agent_line(a);
                    }
                }
            }
            SwitchEvent::Recovered(r) => self.on_recovered(*r),
            SwitchEvent::RecordingEnded(outcome) => self.on_recording_ended(*outcome),
        }
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), EngineError> {
        match cmd {
            Command::UpsertQueue(q) => self.upsert_queue(*q),
            Command::RemoveQueue(q) => self.remove_queue(q),
            Command::UpsertAgent(a) => self.upsert_agent(*a),
            Command::RemoveAgent(a) => self.remove_agent(a),
            Command::SetMemberships { agent, memberships } => {
                self.set_memberships(agent, memberships)
            }
            Command::SetAgentPresence { agent, presence } => self.set_presence(agent, presence),
            Command::PauseQueue(q) => self.pause_queue(q, true),
            Command::ResumeQueue(q) => self.pause_queue(q, false),
            Command::AssignCall { call, agent } => self.assign_call(call, agent),
            Command::MoveCall { call, queue } => self.move_call_cmd(call, queue),
            Command::SetCallPriority { call, priority } => self.set_priority(call, priority),
            Command::Monitor {
                agent,
                dial,
                leg,
                mode,
            } => self.monitor(agent, dial, leg, mode),
            Command::ExitCall { call, exit } => self.exit_call_cmd(call, exit),
            Command::UpsertCampaign(c) => self.upsert_campaign(*c),
            Command::RemoveCampaign(c) => self.remove_campaign(c),
            Command::ControlCampaign { campaign, control } => {
                self.control_campaign(campaign, control)
            }
            Command::AddContacts { campaign, contacts } => self.add_contacts(campaign, contacts),
            Command::BlockNumbers { campaign, numbers } => self.block_numbers(campaign, numbers),
            Command::SeedLedger { campaign, days } => self.seed_ledger(campaign, &days),
            Command::SeedPacer { campaign, pacer } => self.seed_pacer(campaign, &pacer),
            Command::SeedInterval(open) => {
                if self.stats.carry_in(self.now, &open) {
                    Ok(())
                } else {
                    Err(EngineError::StaleInterval {
                        start_unix_ms: open.start_unix_ms(),
                    })
                }
            }
            Command::Disposition {
                call,
                code,
                retry_at_unix_ms,
            } => self.disposition(call, code, retry_at_unix_ms),
            Command::RecordCall { call, action, by } => self.on_record_command(call, action, by),
            Command::TransferCall { call, queue, by } => self.transfer_call(call, queue, by),
            Command::AcceptPreview { call, by } => self.accept_preview(call, by),
            Command::SkipPreview { call, by } => self.skip_preview(call, by),
        }
    }

    // ----- helpers shared by the parts -----

    pub(crate) fn unix_ms(&self, t: Instant) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match t.checked_duration_since(self.origin) {
            Some(since) => self.cfg.origin_unix_ms.saturating_add(ms(since)),
            // Before this engine started: a caller who came back (`first_arrived_unix_ms`).
            None => self
                .cfg
                .origin_unix_ms
                .saturating_sub(ms(self.origin.duration_since(t))),
        }
    }

    /// The inverse of [`Engine::unix_ms`]; `None` before what an `Instant` can hold.
    pub(crate) fn instant_of_unix_ms(&self, ms: u64) -> Option<Instant> {
        let origin = self.cfg.origin_unix_ms;
        if ms >= origin {
            self.origin.checked_add(Duration::from_millis(ms - origin))
        } else {
            self.origin.checked_sub(Duration::from_millis(origin - ms))
        }
    }

    pub(crate) fn switch(&mut self, cmd: SwitchCommand) {
        self.out.push_back(Output::Switch(cmd));
    }

    pub(crate) fn notify(&mut self, ev: LiveEvent) {
        self.out.push_back(Output::Notify(ev));
    }

    pub(crate) fn persist(&mut self, rec: Record) {
        self.out.push_back(Output::Persist(rec));
    }

    /// A fresh leg UUID from the seeded RNG (version-4 layout, so FreeSWITCH and humans see a
    /// normal UUID; reproducible in simulation).
    pub(crate) fn new_leg(&mut self) -> LegId {
        let mut v = (u128::from(self.rng.u64(..)) << 64) | u128::from(self.rng.u64(..));
        v = (v & !(0xF000u128 << 64)) | (0x4000u128 << 64);
        v = (v & !(0xC000u128 << 48)) | (0x8000u128 << 48);
        let leg = LegId(v);
        if self.legs.contains_key(&leg) {
            self.new_leg()
        } else {
            leg
        }
    }

    pub(crate) fn agent(&self, id: AgentId) -> Option<&Agent> {
        self.agents.get(id.index()).and_then(Option::as_ref)
    }

    pub(crate) fn agent_mut(&mut self, id: AgentId) -> Option<&mut Agent> {
        self.agents.get_mut(id.index()).and_then(Option::as_mut)
    }

    pub(crate) fn queue(&self, id: QueueId) -> Option<&Queue> {
        self.queues.get(id.index()).and_then(Option::as_ref)
    }

    pub(crate) fn queue_mut(&mut self, id: QueueId) -> Option<&mut Queue> {
        self.queues.get_mut(id.index()).and_then(Option::as_mut)
    }

    // ----- read-only accessors for drivers, the API and tests -----

    /// The time of the last input, not the time now: a figure read between inputs (how long a
    /// caller has waited) must be computed against the reader's clock, or it stands still
    /// until the next event.
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn agent_state(&self, id: AgentId) -> Option<AgentStateKind> {
        self.agent(id).map(Agent::state)
    }

    pub fn agent_info(&self, id: AgentId) -> Option<&Agent> {
        self.agent(id)
    }

    pub fn call_info(&self, id: CallId) -> Option<&Call> {
        self.calls.get(&id)
    }

    /// Whether the core still has a use for this leg (a caller, an offer, an agent on a call
    /// or line, a campaign dial, a supervisor). The driver's orphan sweep kills legs it
    /// originated that no longer are.
    pub fn owns_leg(&self, leg: LegId) -> bool {
        self.legs.contains_key(&leg)
    }

    /// The agent a call is with: the one talking to it (or calling the customer back), or the
    /// one it is being offered to. `None` while it waits, and while several agents are rung
    /// for it at once (ring-all), when no one agent is its agent yet.
    pub fn call_agent(&self, id: CallId) -> Option<AgentId> {
        let call = self.calls.get(&id)?;
        match call.phase {
            Phase::Talking { agent, .. }
            | Phase::Connecting { agent, .. }
            | Phase::CallingBack { agent, .. } => Some(agent),
            Phase::Offering => match call.offers.as_slice() {
                [one] => self.offers.get(one).map(|o| o.agent),
                _ => None,
            },
            Phase::Waiting => None,
        }
    }

    pub fn call_by_leg(&self, leg: LegId) -> Option<CallId> {
        match self.legs.get(&leg)? {
            LegRole::Caller(c) | LegRole::AgentOnCall(c) => Some(*c),
            LegRole::Offer(o) => self.offers.get(o).map(|o| o.call),
            LegRole::Monitor(_) | LegRole::Dial(_) | LegRole::AgentLine(_) => None,
        }
    }

    /// A campaign call that has ended (the customer hung up) but may still be disposed: its
    /// id and what it was, found by the customer leg the API knows it by.
    pub fn ended_campaign_call(
        &self,
        leg: LegId,
    ) -> Option<(CallId, &crate::dialer::campaign::RecentCall)> {
        self.recent_campaign_calls.by_leg(leg)
    }

    /// Calls waiting in a queue, best first.
    pub fn waiting_calls(&self, queue: QueueId) -> Vec<CallId> {
        self.queue(queue)
            .map(|q| q.waiting.iter().map(|k| k.call).collect())
            .unwrap_or_default()
    }

    /// What keeps a queue from being removed: the calls in it now (any phase: a call's
    /// record is filed under its last queue) and the campaigns dialling for its agents
    /// (ascending ids).
    pub fn queue_users(&self, queue: QueueId) -> (usize, Vec<CampaignId>) {
        let calls = self.calls.values().filter(|c| c.queue == queue).count();
        let mut campaigns: Vec<CampaignId> = self
            .campaigns
            .iter()
            .filter(|(_, c)| c.cfg.queue == queue)
            .map(|(id, _)| *id)
            .collect();
        campaigns.sort_unstable();
        (calls, campaigns)
    }

    /// The configuration a queue runs with now.
    pub fn queue_config(&self, queue: QueueId) -> Option<&QueueConfig> {
        self.queue(queue).map(|q| &q.cfg)
    }

    pub fn queue_ids(&self) -> impl Iterator<Item = QueueId> + '_ {
        self.queues.iter().flatten().map(|q| q.cfg.id)
    }

    pub fn agent_ids(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.agents.iter().flatten().map(|a| a.cfg.id)
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The decision traces still in memory for a call.
    pub fn traces_for(&self, call: CallId) -> impl Iterator<Item = &DecisionTrace> {
        self.traces
            .iter()
            .filter(move |t| t.call == call)
            .map(|t| &**t)
    }

    pub fn last_trace(&self) -> Option<&DecisionTrace> {
        self.traces.back().map(|t| &**t)
    }

    pub fn refused_calls(&self) -> u64 {
        self.refused
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

/// The arrival leg of a call (the identity its records and traces share).
pub(crate) fn call_leg_of(engine: &Engine, c: CallId) -> LegId {
    engine
        .calls
        .get(&c)
        .map_or(LegId(0), |call| call.origin_leg)
}
