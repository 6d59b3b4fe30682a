//! The driver's sans-IO core: every decision the driver makes between the [`Engine`] and
//! FreeSWITCH, with time, the switch's answers and events, and the state of each connection
//! as inputs, and the requests to send as outputs. Nothing here reads a clock, awaits or
//! touches a socket, so a test can step it against the fake switch's own sans-IO core in
//! virtual time (the root package's `tests/driver_pair.rs`), and the tokio loop around it
//! (module `shell`) only moves bytes and timers.
//!
//! ```text
//!   shell / test ──▶ command() caller_arrived() caller_input() switch_event()
//!                    node_connected() answered(ticket, replies) handle_timeout(now) ...
//!                                │
//!                    DriverCore: engine + command pipeline + recovery + playback
//!                                │
//!   shell / test ◀── poll_output(): Send { node, ticket, requests } · Record · Live · Connect
//!                    next_deadline()
//! ```
//!
//! Every request goes out as [`CoreOutput::Send`] in the order the core decided it; the
//! shell enqueues each on its node's connection before the next (so FreeSWITCH sees the
//! core's order) and reports the answers of a ticket, in request order, with
//! [`DriverCore::answered`], exactly once (an error for a connection that was lost).
//!
//! The parts, in the order a call meets them: `adopt` (at start: the switch taken over as it
//! is, and the store's open rows judged), `callers` (sockets arriving, routing), `gate` (write
//! before act: an originate waits for the record that must precede it), `pipeline` (core
//! commands to requests: the in-flight bound, the backlog, homes on nodes, the handover hold,
//! answers), `playback` (music and prompts), `translate` (FreeSWITCH events to the core's
//! [`SwitchEvent`]s, CDRs, machine detection), `recovery` (connections, resync, orphan checks
//! and sweeps), `timers` (the core's own deadlines).
//!
//! Records are numbered as they are handed out; the shell reports how many are settled with
//! [`DriverCore::records_kept`] (a test harness that keeps records at once reports them all at
//! once). A driver that holds callers while its configuration is fed in
//! (`DriverConfig::hold_callers`) starts the takeover at [`DriverCore::admit`].

mod adopt;
mod callers;
mod capture;
mod gate;
mod ivr;
mod join;
mod modules;
mod pipeline;
mod playback;
mod recovery;
mod timers;
mod translate;
mod voicemail;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchyard_esl::EslError;
use tracing::{info, warn};

use crate::Engine;
use crate::error::EngineError;
use crate::ids::QueueId;
use crate::io::{Command, Input, LegId, LiveEvent, Output, Record, SwitchCommand, SwitchEvent};

use super::commands::{EslRequest, Syntax, Tracking};
use super::config::{DriverConfig, NodeConfig};
use super::handover::Handover;
use super::nodes::{Homes, NodeCounters};
use super::{Counters, DriverError, DriverStats, prompts, sounds};

pub use callers::Admission;
pub use ivr::InboundPlan;
pub(crate) use playback::PlaybackAsk;
pub(crate) use recovery::Resync;
use timers::{Chore, Chores};

/// Identifies one [`CoreOutput::Send`] until its answers come back.
pub type Ticket = u64;

/// An Event Socket answer the core looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `api` output (`+OK ...`, `-ERR ...`, JSON).
    Api(Vec<u8>),
    /// A bgapi job's BACKGROUND_JOB body (`+OK <uuid>`, `-ERR <CAUSE>`).
    Job(Vec<u8>),
}

/// One request's outcome.
pub type Reply = Result<Answer, EslError>;

/// What the shell must do, in this order.
#[derive(Debug)]
pub enum CoreOutput {
    /// Enqueue these requests on `node`'s connection now, in order, before any later output;
    /// then report their answers with [`DriverCore::answered`] (a node without a connection
    /// answers every request with [`EslError::ConnectionClosed`]).
    Send {
        node: usize,
        ticket: Ticket,
        requests: Vec<EslRequest>,
    },
    /// Hand to the record writer.
    Record(Record),
    /// Publish to live subscribers.
    Live(LiveEvent),
    /// Try to connect to a node that has never been reached; report with
    /// [`DriverCore::node_reachable`] or [`DriverCore::node_unreachable`].
    Connect { node: usize },
    /// Hand to the media side (the live recorder, file checks); its reports come back through
    /// [`DriverCore::media_report`] (module `capture`).
    Media(super::media::MediaRequest),
}

/// Kills that failed because the connection was lost, re-sent after the resync if the leg
/// is still there. Beyond this many the oldest knowledge is simply not kept.
const MAX_FAILED_KILLS: usize = 65_536;
/// After a resync answer that could not be read, ask again this much later.
const RESYNC_RETRY: Duration = Duration::from_secs(1);
/// Bridges held for a leg's handover at once (one per call connecting; see `handover`).
const MAX_HELD_BRIDGES: usize = 65_536;
/// Caller legs remembered with their queue (entries leave at the leg's CDR or at a resync).
const MAX_CALLER_QUEUES: usize = 1_000_000;

/// A leg the driver originated (agent, callback customer, campaign person, supervisor).
#[derive(Clone, Copy, Debug)]
struct Originated {
    answered: bool,
    /// The originate's job reported (answered or failed) or can no longer report.
    job_done: bool,
    /// The core asked for this leg to be hung up, with this cause.
    kill: Option<&'static str>,
    /// A callback customer: the caller's side of a call, for eavesdrop whisper direction.
    customer: bool,
    /// The arrival leg of the call this leg was dialled for (its CDR's call), if any, and
    /// the queue the call was in.
    call_leg: Option<(LegId, QueueId)>,
    /// A campaign dial: answering-machine verdicts are reported for it.
    campaign: bool,
    /// A verdict was reported already (mod_amd and mod_avmd may both run).
    amd_reported: bool,
    /// FreeSWITCH's originate let go of the leg (job `+OK` or the leg's CHANNEL_PARK): a
    /// bridge to it is safe from now on (see `handover`).
    handed_over: bool,
    /// The leg was handed to the dialplan (transfer, message then hangup) or injected by
    /// tooling: it lives on its own and the sweep leaves it alone.
    exempt: bool,
    /// Consecutive sweeps that found the core with no use for the leg.
    unowned_sweeps: u8,
    /// The caller FreeSWITCH joins this leg to when its originate completes (module `join`).
    joins: Option<LegId>,
}

impl Originated {
    /// An agent leg (on a conversation, or a persistent line) a restarted driver took over
    /// (module `adopt`).
    fn taken_over(call_leg: Option<(LegId, QueueId)>) -> Originated {
        Originated {
            answered: true,
            job_done: true,
            kill: None,
            customer: false,
            call_leg,
            campaign: false,
            amd_reported: true,
            handed_over: true,
            exempt: false,
            unowned_sweeps: 0,
            joins: None,
        }
    }
}

/// What the core knows of one FreeSWITCH node.
struct NodeState {
    name: String,
    connected: bool,
    seen_connect: bool,
    core_uuid: Option<String>,
    /// The Event Socket host, when it is an IP literal (to place callers by peer address).
    ip: Option<IpAddr>,
    /// The next connection attempt for a node never reached waits this long (doubling up to
    /// `retry_max`).
    retry: Duration,
    retry_max: Duration,
    resync: Option<Resync>,
    /// Resyncs started so far; an orphan check from an older epoch is covered by a resync.
    resync_epoch: u64,
    failed_kills: HashMap<LegId, &'static str>,
    /// Whether the node expands API calls (module `join`); `None` until it answered since
    /// its last connection.
    joins: Option<bool>,
    /// Whether mod_oreka is loaded (module `modules`, used by `capture`); `None` until it
    /// answered.
    oreka: Option<bool>,
}

impl NodeState {
    fn new(spec: &NodeConfig, connected: bool) -> NodeState {
        let ip = spec
            .esl
            .addr
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        let backoff = &spec.esl.backoff;
        NodeState {
            name: spec.name.clone(),
            connected,
            seen_connect: false,
            core_uuid: None,
            ip,
            retry: backoff.initial,
            retry_max: backoff.max.max(backoff.initial),
            resync: None,
            resync_epoch: 0,
            failed_kills: HashMap::new(),
            joins: None,
            oreka: None,
        }
    }
}

/// What an outstanding ticket was for.
#[derive(Debug)]
enum Pending {
    /// A core command (counts against `max_commands_in_flight`).
    Command {
        node: usize,
        tracking: Tracking,
        /// For kills: the cause and how many times it was tried.
        kill: Option<(&'static str, u32)>,
    },
    /// `show channels as json` for a resync.
    Resync { node: usize, epoch: u64 },
    /// `uuid_exists` for a caller whose socket closed without a hangup.
    OrphanExists { leg: LegId },
    /// A question of the sound check (module `playback`).
    Playback(PlaybackAsk),
    /// A question of the stray sweep (module `recovery`).
    Stray(recovery::StrayAsk),
    /// A question of the takeover at start (module `adopt`).
    Adopt(adopt::AdoptAsk),
    /// Whether a node expands API calls, so it can join legs at the answer (module `join`).
    JoinCheck { node: usize },
    /// `module_exists` of each of `asked`, in order (module `modules`).
    ModuleCheck {
        node: usize,
        asked: Vec<&'static str>,
    },
    /// A recording's request (module `capture`).
    Capture { tracking: Tracking },
}

/// The sans-IO driver: see the module doc.
pub struct DriverCore {
    engine: Engine,
    nodes: Vec<NodeState>,
    /// Which node each leg lives on.
    homes: Homes,
    /// Round-robin cursor of [`super::nodes::least_loaded`].
    next_node: usize,
    counters: Arc<Counters>,
    syntax: Syntax,
    cfg: DriverConfig,
    /// Queue names learned from `UpsertQueue` commands.
    learned: HashMap<String, QueueId>,
    /// Tickets sent and not answered yet. Commands among them are bounded by
    /// `max_commands_in_flight`; the rest are the core's own questions, bounded by the legs
    /// and nodes they are about.
    pending: HashMap<Ticket, Pending>,
    next_ticket: Ticket,
    inflight_commands: usize,
    /// Commands waiting for an in-flight slot (bounded by `command_backlog`).
    backlog: VecDeque<SwitchCommand>,
    originated: HashMap<LegId, Originated>,
    /// Caller legs (with a socket) the core knows, until their hangup is reported.
    callers: HashSet<LegId>,
    /// The number plan and flows callers walk before a queue (module `ivr`).
    inbound: Option<Arc<InboundPlan>>,
    /// Callers walking a flow, bounded by `ivr::MAX_FLOW_CALLERS`.
    flows: HashMap<LegId, ivr::FlowCall>,
    /// Callers a flow sent to a queue whose step names exits: the run, for the queue to hand
    /// back (bounded by `ivr::MAX_FLOW_CALLERS`).
    queued_flows: HashMap<LegId, ivr::FlowCall>,
    /// The flow each caller that walked one walked, until its CHANNEL_HANGUP_COMPLETE (its
    /// CDR names it; bounded by `MAX_CALLER_QUEUES`).
    walked: HashMap<LegId, String>,
    /// Voicemail messages being taken (module `voicemail`).
    messages: voicemail::Messages,
    /// The queue each caller was routed to, kept until its CHANNEL_HANGUP_COMPLETE (the
    /// session may report the hangup first) so its CDR can be filed under its call.
    caller_queues: HashMap<LegId, QueueId>,
    /// Switch events the core itself produced (failed originates, answers seen in job
    /// results), fed once the current input is drained.
    followups: VecDeque<SwitchEvent>,
    /// The engine's next timeout.
    engine_deadline: Instant,
    chores: Chores,
    /// Bridges waiting for FreeSWITCH to hand their originated legs over.
    handover: Handover,
    /// Prompts waiting for the one playing on their leg (module `prompts`).
    prompts: prompts::Prompts,
    /// Which configured sounds each node lacks (module `sounds`).
    sounds: sounds::Sounds,
    /// Channels on the switches that no table here explains (module `recovery`).
    strays: recovery::Strays,
    /// Originates waiting for their records (module `gate`).
    gate: gate::Gate,
    /// The takeover of the switch at start (module `adopt`).
    adoption: adopt::Adoption,
    /// Recordings being captured (module `capture`).
    captures: capture::Captures,
    /// What the engine was last told of the switch ([`SwitchEvent::Reachable`]).
    reachable: bool,
    /// What the shell must do; emptied by the shell after every input (each input's outputs
    /// are bounded by what the engine emits for it).
    out: VecDeque<CoreOutput>,
    /// The time of the latest input (never goes back).
    now: Instant,
}

impl std::fmt::Debug for DriverCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverCore")
            .field("nodes", &self.nodes.len())
            .field("pending", &self.pending.len())
            .field("backlog", &self.backlog.len())
            .field("originated", &self.originated.len())
            .field("callers", &self.callers.len())
            .finish()
    }
}

impl DriverCore {
    /// A core for `config`'s nodes; `up[i]` says whether node `i`'s first connection attempt
    /// succeeded (a node never reached gets [`CoreOutput::Connect`] with backoff).
    pub fn new(
        config: DriverConfig,
        engine: Engine,
        up: &[bool],
        now: Instant,
    ) -> Result<DriverCore, DriverError> {
        let specs = super::node_specs(&config)?;
        let nodes: Vec<NodeState> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| NodeState::new(s, up.get(i).copied().unwrap_or(false)))
            .collect();
        let counters = Arc::new(Counters {
            nodes: specs
                .iter()
                .map(|s| NodeCounters::new(s.name.clone(), s.esl.addr.clone()))
                .collect(),
            ..Counters::default()
        });
        for (n, c) in nodes.iter().zip(&counters.nodes) {
            c.connected.store(n.connected, Ordering::Relaxed);
        }
        let mut core = DriverCore {
            engine,
            homes: Homes::new(nodes.len()),
            sounds: sounds::Sounds::new(
                nodes.len(),
                config.fallback_music.clone(),
                config.fallback_prompt.clone(),
            ),
            nodes,
            next_node: 0,
            counters,
            syntax: Syntax {
                prompts: config.prompts.clone(),
                transfer_dialplan: config.transfer_dialplan.clone(),
                transfer_context: config.transfer_context.clone(),
                monitor_ring_timeout: config.monitor_ring_timeout,
            },
            cfg: config,
            learned: HashMap::new(),
            pending: HashMap::new(),
            next_ticket: 1,
            inflight_commands: 0,
            backlog: VecDeque::new(),
            originated: HashMap::new(),
            callers: HashSet::new(),
            inbound: None,
            flows: HashMap::new(),
            queued_flows: HashMap::new(),
            walked: HashMap::new(),
            messages: voicemail::Messages::default(),
            caller_queues: HashMap::new(),
            followups: VecDeque::new(),
            // Replaced by the engine's own answer in the drain below.
            engine_deadline: now + Duration::from_secs(3600),
            chores: Chores::default(),
            handover: Handover::new(MAX_HELD_BRIDGES),
            prompts: prompts::Prompts::default(),
            strays: recovery::Strays::default(),
            gate: gate::Gate::default(),
            adoption: adopt::Adoption::default(),
            captures: capture::Captures::default(),
            // An engine starts assuming the switch is there.
            reachable: true,
            out: VecDeque::new(),
            now,
        };
        core.schedule_sweep();
        if !core.cfg.hold_callers {
            core.allow_adoption_at_once();
        }
        for i in 0..core.nodes.len() {
            if !core.nodes[i].connected {
                core.reconnect_later(i);
            }
        }
        // The engine's first timeout (and any outputs it holds already).
        core.drain();
        // The engine assumed the switch was there: it hears the truth now (not until the
        // takeover at the first connection is over).
        core.tell_reachable();
        core.settle();
        Ok(core)
    }

    // ---- reading ------------------------------------------------------------------------

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn stats(&self) -> DriverStats {
        self.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Core commands sent whose answers have not come back.
    pub fn commands_in_flight(&self) -> usize {
        self.inflight_commands
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<CoreOutput> {
        self.out.pop_front()
    }

    /// When [`DriverCore::handle_timeout`] must be called next.
    pub fn next_deadline(&self) -> Instant {
        match self.chores.next() {
            Some(t) => t.min(self.engine_deadline),
            None => self.engine_deadline,
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Time passed: the core's own chores that are due, then the engine's timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.at(now);
        while let Some(chore) = self.chores.pop_due(self.now) {
            self.on_chore(chore);
            self.settle();
        }
        if self.engine_deadline <= self.now
            && let Err(e) = self.feed(Input::Timeout(self.now))
        {
            warn!(error = %e, "the core refused a timeout");
        }
        self.settle();
    }

    /// A command from the API; the engine's verdict comes back.
    pub fn command(&mut self, now: Instant, cmd: Command) -> Result<(), EngineError> {
        self.at(now);
        let learn = match &cmd {
            Command::UpsertQueue(q) => Some((Some(q.name.clone()), q.id)),
            Command::RemoveQueue(id) => Some((None, *id)),
            _ => None,
        };
        let restamp = match &cmd {
            Command::MoveCall { call, .. }
            | Command::SetCallPriority { call, .. }
            | Command::TransferCall { call, .. } => Some(*call),
            _ => None,
        };
        let result = self.feed(Input::Api(self.now, cmd));
        if result.is_ok()
            && let Some(call) = restamp
        {
            self.restamp_caller(call);
        }
        if result.is_ok()
            && let Some((name, id)) = learn
        {
            self.learned.retain(|_, q| *q != id);
            if name.is_some() {
                self.check_queue_sounds(id);
            }
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                self.learned.insert(name, id);
            }
        }
        self.settle();
        result
    }

    /// Replaces the number/name -> queue routes.
    pub fn set_routes(&mut self, routes: HashMap<String, QueueId>) {
        self.cfg.routes = routes;
    }

    /// A switch command sent as if the engine had emitted it (tooling, and commands an
    /// engine emitted before the driver ran). Tooling's legs are not the engine's: the sweep
    /// leaves them alone.
    pub fn inject(&mut self, now: Instant, cmd: SwitchCommand) {
        self.at(now);
        let leg = pipeline::originated_leg(&cmd).filter(|l| !self.engine.owns_leg(*l));
        self.switch(cmd);
        if let Some(o) = leg.and_then(|l| self.originated.get_mut(&l)) {
            o.exempt = true;
        }
        self.publish_backlog();
        self.settle();
    }

    /// The answers of a [`CoreOutput::Send`], in request order.
    pub fn answered(&mut self, now: Instant, ticket: Ticket, replies: Vec<Reply>) {
        self.at(now);
        match self.pending.remove(&ticket) {
            Some(Pending::Command {
                node,
                tracking,
                kill,
            }) => {
                self.inflight_commands = self.inflight_commands.saturating_sub(1);
                self.on_command_done(node, tracking, kill, replies);
                self.pump_backlog();
            }
            Some(Pending::Resync { node, epoch }) => {
                let reply = replies
                    .into_iter()
                    .next()
                    .unwrap_or(Err(EslError::ConnectionClosed));
                self.on_resync_answer(node, epoch, reply);
            }
            Some(Pending::OrphanExists { leg }) => self.on_orphan_answer(leg, replies),
            Some(Pending::Playback(ask)) => self.on_playback_answer(ask, replies),
            Some(Pending::Stray(ask)) => self.on_stray_answer(ask, replies),
            Some(Pending::Adopt(ask)) => self.on_adopt_answer(ask, replies),
            Some(Pending::JoinCheck { node }) => self.on_join_check(node, replies),
            Some(Pending::ModuleCheck { node, asked }) => {
                self.on_module_check(node, asked, replies)
            }
            Some(Pending::Capture { tracking }) => self.on_capture_reply(tracking, replies),
            None => {}
        }
        self.settle();
    }

    /// Stops for good: feeds what the core still owes itself, drops the backlog (returns how
    /// many commands it held) and sends nothing more of its own accord.
    pub fn shutdown(&mut self, now: Instant) -> usize {
        self.at(now);
        self.settle();
        let unsent = self.backlog.len() + self.drop_held();
        self.backlog.clear();
        self.chores = Chores::default();
        self.publish_backlog();
        unsent
    }

    /// A ticket's requests were answered after [`DriverCore::shutdown`]: they were delivered,
    /// and nothing more is done with the answers.
    pub fn delivered(&mut self, ticket: Ticket) {
        if let Some(Pending::Command { .. }) = self.pending.remove(&ticket) {
            self.inflight_commands = self.inflight_commands.saturating_sub(1);
        }
    }

    /// The engine, as the driver leaves it.
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    // ---- feeding the engine ---------------------------------------------------------------

    fn at(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn feed(&mut self, input: Input) -> Result<(), EngineError> {
        let result = self.engine.handle_input(input);
        self.drain();
        result
    }

    fn feed_switch(&mut self, ev: SwitchEvent) {
        if let Err(e) = self.feed(Input::Switch(self.now, ev)) {
            warn!(error = %e, "the core refused a switch event");
        }
    }

    /// Feeds the events the core produced for itself until there are none.
    fn settle(&mut self) {
        while let Some(ev) = self.followups.pop_front() {
            self.feed_switch(ev);
        }
    }

    fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Switch(cmd) => self.switch(cmd),
                Output::Persist(r) => self.record(r),
                Output::Notify(ev) => {
                    log_notable(&ev);
                    self.out.push_back(CoreOutput::Live(ev));
                }
                Output::Timeout(t) => {
                    self.engine_deadline = t;
                    break;
                }
            }
        }
        self.publish_backlog();
    }

    fn publish_backlog(&self) {
        self.counters
            .backlog
            .store(self.backlog.len() as u64, Ordering::Relaxed);
    }

    // ---- requests and chores --------------------------------------------------------------

    /// Sends requests for something other than a core command.
    fn ask(&mut self, node: usize, requests: Vec<EslRequest>, why: Pending) {
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        if matches!(why, Pending::Command { .. }) {
            self.inflight_commands += 1;
        }
        self.pending.insert(ticket, why);
        self.out.push_back(CoreOutput::Send {
            node,
            ticket,
            requests,
        });
    }

    /// Sends a core command's requests.
    fn send_command(
        &mut self,
        node: usize,
        requests: Vec<EslRequest>,
        tracking: Tracking,
        kill: Option<(&'static str, u32)>,
    ) {
        self.ask(
            node,
            requests,
            Pending::Command {
                node,
                tracking,
                kill,
            },
        );
    }

    /// `uuid_kill`, tracked so that a kill of a leg not created yet is retried.
    fn send_kill(&mut self, leg: LegId, cause: &'static str, attempt: u32) {
        let node = self.leg_node(leg);
        let req = EslRequest::Api(format!("uuid_kill {leg} {cause}"));
        self.send_command(node, vec![req], Tracking::Kill(leg), Some((cause, attempt)));
    }

    fn later(&mut self, after: Duration, chore: Chore) {
        if !self.chores.add(self.now + after, chore) {
            warn!("too many driver timers; one was dropped");
        }
    }

    fn on_chore(&mut self, chore: Chore) {
        match chore {
            Chore::ResyncRetry { node, epoch } => self.on_resync_retry(node, epoch),
            Chore::KillRetry {
                leg,
                cause,
                attempt,
            } => {
                if self.originated.get(&leg).is_some_and(|o| !o.job_done) {
                    self.send_kill(leg, cause, attempt);
                }
            }
            Chore::OrphanCheck { leg, node, epoch } => self.on_orphan_check(leg, node, epoch),
            Chore::Sweep => {
                self.sweep();
                self.schedule_sweep();
            }
            Chore::PromptOverdue { leg, generation } => self.on_prompt_overdue(leg, generation),
            Chore::Reconnect { node } => self.out.push_back(CoreOutput::Connect { node }),
            Chore::AdoptDeadline => self.on_adopt_deadline(),
            Chore::AnnouncementOverdue { id } => {
                self.announcement_overdue(id, "its end was not reported in time")
            }
            Chore::CollectionOverdue { leg, id } => self.collection_overdue(leg, &id),
        }
    }

    /// The node a leg lives on, or where a command for a leg of unknown home goes (a kill of a
    /// leg already forgotten): the first connected node, else the first node.
    fn leg_node(&self, leg: LegId) -> usize {
        self.homes.get(leg).unwrap_or_else(|| self.fallback_node())
    }

    fn fallback_node(&self) -> usize {
        self.nodes.iter().position(|n| n.connected).unwrap_or(0)
    }

    fn set_home(&mut self, leg: LegId, node: usize) {
        if self.homes.insert(leg, node) {
            self.publish_legs(node);
        } else {
            tracing::debug!(%leg, "leg map full; its commands go to the first connected node");
        }
    }

    fn forget_home(&mut self, leg: LegId) {
        if let Some(n) = self.homes.remove(leg) {
            self.publish_legs(n);
        }
    }

    /// Tells the engine when whether any node can take originates changed.
    fn tell_reachable(&mut self) {
        // Not before the takeover of the switch is over (module `adopt`).
        let up = self.adoption.done && self.nodes.iter().any(|n| n.connected);
        if up != self.reachable {
            self.reachable = up;
            self.followups.push_back(SwitchEvent::Reachable { up });
        }
    }

    fn publish_legs(&self, node: usize) {
        if let Some(c) = self.counters.nodes.get(node) {
            c.legs
                .store(self.homes.count(node) as u64, Ordering::Relaxed);
        }
    }
}

/// Live events an operator must see in the log too.
fn log_notable(ev: &LiveEvent) {
    match ev {
        LiveEvent::CallBridgeFailed {
            call,
            agent,
            reason,
        } => {
            warn!(%call, %agent, ?reason, "call not bridged to its agent; the agent leg is let go");
        }
        LiveEvent::CampaignPacing {
            campaign,
            pacing,
            brake,
        } => {
            use crate::dialer::connect::Brake;
            match brake {
                Some(Brake::SlowAgents | Brake::OverTarget) => {
                    warn!(%campaign, pacing, ?brake, "progressive campaign rings agents first: its persons could not be connected within the allowance");
                }
                _ => info!(%campaign, pacing, ?brake, "progressive campaign pacing"),
            }
        }
        _ => {}
    }
}

fn bump(a: &std::sync::atomic::AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}
