//! The driver's sans-IO core against the fake switch's sans-IO core, on an in-memory wire, in
//! virtual time (like quinn-proto's test `Pair`): no TCP, no tokio, no clock. Each step
//! carries out the core's outputs, delivers whatever the wires have, and moves time to the
//! next deadline of either side. A scenario of minutes runs in milliseconds, and the same
//! seed gives the same run.
//!
//! ```text
//!   DriverCore ──Send{node,ticket,requests}──▶ Wire(node).api/bgapi ──▶ Switch
//!   DriverCore ◀──answered / switch_event / node_* / caller_*── WireEvent ◀──┘
//!   time: min(core.next_deadline, every wire's poll_timeout, reconnects)
//! ```
//!
//! The harness plays what the tokio shell plays: a link per node that reconnects after a
//! loss (`reconnect_after`, as the client's backoff would), the caller sockets read with the
//! driver's own [`SocketState`], refused callers hung up.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard_engine::config::EngineConfig;
use switchyard_engine::driver::{
    Admission, Answer, CoreOutput, DRIVER_EVENTS, DriverConfig, DriverCore, EslRequest, Reply,
    SocketState, Ticket, read_channel_data,
};
use switchyard_engine::{
    AgentConfig, AgentId, Command, Engine, LegId, LiveEvent, Membership, Presence, QueueConfig,
    QueueId, Record,
};
use switchyard_esl::EslError;
use switchyard_esl::sim::{Fault, InboundCall, Link, SimConfig, Socket, Wire, WireEvent};

pub const PASSWORD: &str = "ClueCon";

/// One fake FreeSWITCH node and the driver's connections to it.
pub struct Node {
    pub wire: Wire,
    link: Option<Link>,
    /// The Core-UUID of the last connection, to tell a restart from a reconnect.
    core_uuid: Option<String>,
    reconnect_at: Option<Instant>,
    /// Wire tokens -> (the core's ticket, the request's place in it).
    tokens: HashMap<u64, (Ticket, usize)>,
    sockets: HashMap<Socket, SocketState>,
}

pub struct Pair {
    pub core: DriverCore,
    pub nodes: Vec<Node>,
    pub t0: Instant,
    pub now: Instant,
    /// Answers of each ticket still missing some.
    assembling: HashMap<Ticket, Vec<Option<Reply>>>,
    pub records: Vec<Record>,
    /// What the core asked of the media side (a test answers with `core.media_report`).
    pub media: Vec<switchyard_engine::driver::MediaRequest>,
    pub live: Vec<LiveEvent>,
    /// How long a lost link stays down before the harness connects again.
    pub reconnect_after: Duration,
    /// Requests sent, as `api <line>` / `bgapi <line>`, with the node and time.
    pub sent: Vec<(usize, Instant, String)>,
    /// Between `kill_driver` and `start_driver`: no driver runs.
    dead: bool,
}

/// The wall clock at the pair's start: every engine's `origin_unix_ms` follows it, so a
/// restarted driver reads the first one's stamps in the same time.
pub const T0_UNIX_MS: u64 = 1_796_000_000_000;

/// Steps without time passing before the harness calls it a livelock.
const MAX_QUIET_STEPS: usize = 10_000_000;

impl Pair {
    /// One node per switch config; the driver's config gets one node per switch (named
    /// `fs1`, `fs2`...).
    pub fn new(switches: Vec<SimConfig>, tune: impl FnOnce(&mut DriverConfig)) -> Pair {
        let t0 = Instant::now();
        let mut cfg = DriverConfig::new("127.0.0.1:8021", PASSWORD);
        for i in 1..switches.len() {
            cfg = cfg.add_node(
                format!("fs{}", i + 1),
                format!("127.0.0.{}:8021", i + 1),
                PASSWORD,
            );
        }
        tune(&mut cfg);
        let up = vec![true; switches.len()];
        let ecfg = EngineConfig {
            origin_unix_ms: T0_UNIX_MS,
            ..EngineConfig::default()
        };
        let engine = Engine::new(ecfg, 7, t0);
        let core = DriverCore::new(cfg, engine, &up, t0).expect("driver config");
        let nodes = switches
            .into_iter()
            .enumerate()
            .map(|(i, sim)| {
                let mut wire = Wire::new(sim, 42 + i as u64, t0);
                // Connected before anything else, as `Driver::start` waits for its first
                // connection (requests made meanwhile wait on the link).
                let link = wire.connect(t0, PASSWORD, DRIVER_EVENTS).ok();
                Node {
                    wire,
                    link,
                    core_uuid: None,
                    reconnect_at: None,
                    tokens: HashMap::new(),
                    sockets: HashMap::new(),
                }
            })
            .collect();
        let mut pair = Pair {
            core,
            nodes,
            t0,
            now: t0,
            assembling: HashMap::new(),
            records: Vec::new(),
            media: Vec::new(),
            live: Vec::new(),
            reconnect_after: Duration::from_millis(100),
            sent: Vec::new(),
            dead: false,
        };
        pair.settle();
        pair
    }

    // ---- time -------------------------------------------------------------------------

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs every step due up to `until`, in time order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.settle();
            let Some(next) = self.next_time().filter(|t| *t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            self.tick();
        }
        self.now = self.now.max(until);
        self.settle();
    }

    /// Runs until `done` holds (checked after each step) or `limit` of virtual time passed.
    pub fn run_until_true(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            self.settle();
            if done(self) {
                return true;
            }
            let Some(next) = self.next_time().filter(|t| *t <= until) else {
                self.now = until;
                return done(self);
            };
            self.now = self.now.max(next);
            self.tick();
        }
    }

    fn next_time(&self) -> Option<Instant> {
        let mut next = if self.dead {
            Instant::now() + Duration::from_secs(1 << 30)
        } else {
            self.core.next_deadline()
        };
        for n in &self.nodes {
            for t in [n.wire.poll_timeout(), n.reconnect_at]
                .into_iter()
                .flatten()
            {
                next = next.min(t);
            }
        }
        Some(next)
    }

    /// Whatever is due now, on every side.
    fn tick(&mut self) {
        let now = self.now;
        for i in 0..self.nodes.len() {
            if self.nodes[i].wire.poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[i].wire.handle_timeout(now);
            }
            if self.nodes[i].reconnect_at.is_some_and(|t| t <= now) {
                self.nodes[i].reconnect_at = None;
                self.nodes[i].link = self.nodes[i]
                    .wire
                    .connect(now, PASSWORD, DRIVER_EVENTS)
                    .ok();
            }
        }
        if !self.dead && self.core.next_deadline() <= now {
            self.core.handle_timeout(now);
        }
    }

    /// Carries out the core's outputs and delivers the wires' events until both are quiet.
    fn settle(&mut self) {
        for _ in 0..MAX_QUIET_STEPS {
            let mut moved = false;
            while let Some(o) = (!self.dead).then(|| self.core.poll_output()).flatten() {
                moved = true;
                self.carry_out(o);
            }
            // Records are kept the moment they are handed out (the store is not the subject).
            if !self.dead && self.core.records_unsettled() > 0 {
                moved = true;
                let n = self.core.records_handed_out();
                self.core.records_kept(self.now, n);
            }
            for i in 0..self.nodes.len() {
                while let Some(ev) = self.nodes[i].wire.poll_event() {
                    moved = true;
                    self.on_wire(i, ev);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the pair never settled at {:?}", self.now - self.t0);
    }

    // ---- the driver's side ----------------------------------------------------------------

    fn carry_out(&mut self, o: CoreOutput) {
        match o {
            CoreOutput::Send {
                node,
                ticket,
                requests,
            } => {
                self.assembling
                    .insert(ticket, (0..requests.len()).map(|_| None).collect());
                for (i, r) in requests.into_iter().enumerate() {
                    let now = self.now;
                    let n = &mut self.nodes[node];
                    let sent = match (&r, n.link) {
                        (_, None) => Err(EslError::ConnectionClosed),
                        (EslRequest::Api(l), Some(link)) => n.wire.api(now, link, l),
                        (EslRequest::BgApi(l), Some(link)) => n.wire.bgapi(now, link, l),
                        // The pair's wire carries api and bgapi only; its driver runs no flows,
                        // the only source of executions.
                        (EslRequest::Execute { .. }, Some(_)) => Err(EslError::InvalidCommand {
                            reason: "sendmsg is not carried by the pair's wire".into(),
                        }),
                    };
                    let line = match r {
                        EslRequest::Api(l) => format!("api {l}"),
                        EslRequest::BgApi(l) => format!("bgapi {l}"),
                        EslRequest::Execute { leg, app, arg, .. } => {
                            format!("sendmsg {leg} {app} {arg}")
                        }
                    };
                    self.sent.push((node, now, line));
                    match sent {
                        Ok(token) => {
                            self.nodes[node].tokens.insert(token, (ticket, i));
                        }
                        Err(e) => self.fill(ticket, i, Err(e)),
                    }
                }
            }
            CoreOutput::Record(r) => self.records.push(r),
            CoreOutput::Live(ev) => self.live.push(ev),
            CoreOutput::Connect { node } => self.nodes[node].reconnect_at = Some(self.now),
            CoreOutput::Media(req) => self.media.push(req),
        }
    }

    fn fill(&mut self, ticket: Ticket, i: usize, reply: Reply) {
        let Some(slots) = self.assembling.get_mut(&ticket) else {
            return;
        };
        slots[i] = Some(reply);
        if slots.iter().all(Option::is_some) {
            let replies = self
                .assembling
                .remove(&ticket)
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            self.core.answered(self.now, ticket, replies);
        }
    }

    fn on_wire(&mut self, node: usize, ev: WireEvent) {
        let now = self.now;
        if self.dead {
            return;
        }
        if std::env::var_os("PAIR_DEBUG").is_some() {
            eprintln!("{:?} node {node}: {ev:?}", now - self.t0);
        }
        let current = |n: &Node, l: Link| n.link == Some(l);
        match ev {
            WireEvent::Connected { link, core_uuid } if current(&self.nodes[node], link) => {
                let n = &mut self.nodes[node];
                let restarted = n.core_uuid.as_ref().is_some_and(|u| *u != core_uuid);
                n.core_uuid = Some(core_uuid.clone());
                self.core.node_connected(now, node, &core_uuid, restarted);
            }
            WireEvent::Api { token, body, .. } => {
                self.answer(node, token, Ok(Answer::Api(body.to_vec())))
            }
            WireEvent::Job { token, body, .. } => {
                self.answer(node, token, Ok(Answer::Job(body.to_vec())))
            }
            WireEvent::Lost { token, .. } => {
                self.answer(node, token, Err(EslError::ConnectionClosed))
            }
            WireEvent::Event { link, event } if current(&self.nodes[node], link) => {
                self.core.switch_event(now, node, &event);
            }
            WireEvent::Closed { link } if current(&self.nodes[node], link) => {
                let n = &mut self.nodes[node];
                n.link = None;
                n.reconnect_at = Some(now + self.reconnect_after);
                self.core
                    .node_disconnected(now, node, &EslError::ConnectionClosed);
            }
            WireEvent::SocketOpened { socket, uuid, data } => {
                let arrival = read_channel_data(&data, &uuid);
                let leg = arrival.as_ref().map(|a| a.leg);
                let admission = match arrival {
                    Some(a) => self.core.caller_arrived(now, a),
                    None => Admission::Refused {
                        cause: "NORMAL_TEMPORARY_FAILURE".into(),
                    },
                };
                match (admission, leg) {
                    (Admission::Accepted, Some(leg)) => {
                        self.nodes[node]
                            .sockets
                            .insert(socket, SocketState::new(leg));
                    }
                    (Admission::Refused { cause }, _) => {
                        let _ = self.nodes[node].wire.socket_hangup(now, socket, &cause);
                    }
                    (Admission::Accepted, None) => {}
                }
            }
            WireEvent::SocketEvent { socket, event } => {
                let input = self.nodes[node]
                    .sockets
                    .get_mut(&socket)
                    .and_then(|s| s.event(&event));
                if let Some(i) = input {
                    self.core.caller_input(now, i);
                }
            }
            WireEvent::SocketClosed { socket, notice } => {
                let input = self.nodes[node]
                    .sockets
                    .remove(&socket)
                    .and_then(|mut s| s.closed(notice));
                if let Some(i) = input {
                    self.core.caller_input(now, i);
                }
            }
            // Events of a link the driver no longer holds (a switchyard restart) and
            // recordings are not the driver's business.
            _ => {}
        }
    }

    fn answer(&mut self, node: usize, token: u64, reply: Reply) {
        if let Some((ticket, i)) = self.nodes[node].tokens.remove(&token) {
            self.fill(ticket, i, reply);
        }
    }
}

// ---- what tests do ------------------------------------------------------------------------

impl Pair {
    pub fn command(&mut self, cmd: Command) {
        self.core
            .command(self.now, cmd)
            .expect("the core accepts it");
        self.settle();
    }

    pub fn queue(&mut self, cfg: QueueConfig) {
        self.command(Command::UpsertQueue(Box::new(cfg)));
    }

    /// Agent `id` on extension `ext` (`user/<ext>`), in `queue` at position `id`.
    pub fn agent(&mut self, id: u32, ext: u32, queue: QueueId, available: bool) {
        self.command(Command::UpsertAgent(Box::new(AgentConfig {
            id: AgentId(id),
            name: format!("agent{id}"),
            contact: format!("user/{ext}"),
            ..AgentConfig::default()
        })));
        self.command(Command::SetMemberships {
            agent: AgentId(id),
            memberships: vec![Membership {
                queue,
                level: 1,
                position: id,
                weight: 1,
            }],
        });
        if available {
            self.command(Command::SetAgentPresence {
                agent: AgentId(id),
                presence: Presence::Available,
            });
        }
    }

    /// A caller placed on `node`'s dialplan (which sends it to the driver's socket).
    pub fn call(&mut self, node: usize, call: InboundCall) -> LegId {
        let uuid = self.nodes[node]
            .wire
            .place_inbound_call(self.now, call)
            .expect("the switch takes the call");
        self.settle();
        LegId::parse(&uuid).expect("a uuid")
    }

    pub fn fault(&mut self, node: usize, fault: Fault) {
        self.nodes[node].wire.inject(self.now, fault);
        self.settle();
    }

    /// Channels up on `node`.
    pub fn channels(&self, node: usize) -> usize {
        self.nodes[node].wire.switch().channel_count()
    }

    pub fn has_channel(&self, node: usize, leg: LegId) -> bool {
        self.nodes[node].wire.switch().has_channel(&leg.to_string())
    }

    /// The final record of the call that arrived on `leg`.
    pub fn call_record(&self, leg: LegId) -> Option<&switchyard_engine::CallRecord> {
        self.records.iter().find_map(|r| match r {
            Record::Call(c) if c.leg == leg => Some(c),
            _ => None,
        })
    }

    /// Requests sent so far whose line starts with `prefix` (`api uuid_bridge`, ...).
    /// Every `uuid_bridge <caller> <agent>` the driver asked for, in the order sent: an `api
    /// uuid_bridge`, or an originate that has the switch run it itself when the leg is handed
    /// over (`'&eval(${uuid_bridge C U})'`).
    pub fn bridges_asked(&self) -> Vec<(String, String)> {
        self.sent
            .iter()
            .filter_map(|(_, _, l)| {
                let rest = l
                    .strip_prefix("api uuid_bridge ")
                    .or_else(|| l.split_once("${uuid_bridge ").map(|(_, r)| r))?;
                let mut w = rest.split([' ', '}']);
                Some((w.next()?.to_owned(), w.next()?.to_owned()))
            })
            .collect()
    }

    pub fn sent_like(&self, prefix: &str) -> Vec<&(usize, Instant, String)> {
        self.sent
            .iter()
            .filter(|(_, _, l)| l.starts_with(prefix))
            .collect()
    }

    /// The driver's process dies: its links and caller sockets close (the switch sees them
    /// go), and its port refuses the switch's `socket` until [`Pair::start_driver`].
    pub fn kill_driver(&mut self) {
        let now = self.now;
        for n in &mut self.nodes {
            if let Some(link) = n.link.take() {
                n.wire.drop_link(now, link);
            }
            for (socket, _) in n.sockets.drain() {
                n.wire.drop_socket(now, socket);
            }
            n.tokens.clear();
            n.reconnect_at = None;
            n.wire.set_accepting(now, false);
        }
        self.assembling.clear();
        self.dead = true;
        self.settle();
    }

    /// A new driver (a fresh engine, `tune`d config) connects to every node and takes
    /// callers again.
    pub fn start_driver(&mut self, tune: impl FnOnce(&mut DriverConfig)) {
        self.start_driver_loaded(tune, Vec::new());
    }

    /// [`Pair::start_driver`] with an engine loaded first with `config` (what the runtime
    /// loads from the store before its driver starts).
    pub fn start_driver_loaded(
        &mut self,
        tune: impl FnOnce(&mut DriverConfig),
        config: Vec<Command>,
    ) {
        let mut cfg = DriverConfig::new("127.0.0.1:8021", PASSWORD);
        for i in 1..self.nodes.len() {
            cfg = cfg.add_node(
                format!("fs{}", i + 1),
                format!("127.0.0.{}:8021", i + 1),
                PASSWORD,
            );
        }
        tune(&mut cfg);
        let up = vec![true; self.nodes.len()];
        let ecfg = EngineConfig {
            origin_unix_ms: self.unix_ms(self.now),
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(ecfg, 8, self.now);
        // As under the runtime's driver: no switch until the takeover is over, so loading
        // calls no line and dials nothing.
        engine
            .handle_input(switchyard_engine::Input::Switch(
                self.now,
                switchyard_engine::SwitchEvent::Reachable { up: false },
            ))
            .expect("an input the engine takes");
        for cmd in config {
            engine
                .handle_input(switchyard_engine::Input::Api(self.now, cmd))
                .expect("stored configuration");
        }
        // What loading produced is the runtime's to drop (the store has it already).
        while !matches!(engine.poll_output(), switchyard_engine::Output::Timeout(_)) {}
        self.core = DriverCore::new(cfg, engine, &up, self.now).expect("driver config");
        self.dead = false;
        for n in &mut self.nodes {
            n.core_uuid = None;
            n.link = n.wire.connect(self.now, PASSWORD, DRIVER_EVENTS).ok();
            n.wire.set_accepting(self.now, true);
        }
        self.settle();
    }

    /// A switchyard restart at once with an engine loaded with `config` (see
    /// [`Pair::start_driver_loaded`]).
    pub fn restart_driver_loaded(
        &mut self,
        tune: impl FnOnce(&mut DriverConfig),
        config: Vec<Command>,
    ) {
        self.kill_driver();
        self.start_driver_loaded(tune, config);
    }

    /// A switchyard restart at once: [`Pair::kill_driver`] then [`Pair::start_driver`].
    pub fn restart_driver(&mut self, tune: impl FnOnce(&mut DriverConfig)) {
        self.kill_driver();
        self.start_driver(tune);
    }

    /// The wall clock of the pair's virtual time (the first engine's origin at `t0`).
    pub fn unix_ms(&self, t: Instant) -> u64 {
        T0_UNIX_MS + (t - self.t0).as_millis() as u64
    }
}
