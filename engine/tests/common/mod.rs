//! A test bed around the core: fixed virtual time, helpers to add queues and agents, and the
//! outputs of each step collected for assertions.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use switchyard_engine::{
    AgentConfig, AgentId, CallId, CallerInfo, Command, Engine, EngineConfig, HangupCause, Input,
    LegId, LiveEvent, Membership, Output, Presence, QueueConfig, QueueId, Record, SkillId,
    SwitchCommand, SwitchEvent,
};

pub struct Bed {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
    pub switch: Vec<SwitchCommand>,
    pub records: Vec<Record>,
    pub live: Vec<LiveEvent>,
    pub next_leg: u128,
    pub next_timeout: Option<Instant>,
    /// Answer every `Bridge` with CHANNEL_BRIDGE at once, as a switch that bridges would
    /// (tests of lost bridges turn it off and answer themselves).
    pub auto_bridge: bool,
}

impl Bed {
    pub fn new() -> Bed {
        Bed::with_config(EngineConfig::default())
    }

    pub fn with_config(cfg: EngineConfig) -> Bed {
        let t0 = Instant::now();
        Bed {
            engine: Engine::new(cfg, 42, t0),
            t0,
            now: t0,
            switch: Vec::new(),
            records: Vec::new(),
            live: Vec::new(),
            next_leg: 1,
            next_timeout: None,
            auto_bridge: true,
        }
    }

    fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Timeout(t) => {
                    self.next_timeout = Some(t);
                    break;
                }
                Output::Switch(c) => self.switch.push(c),
                Output::Persist(r) => self.records.push(r),
                Output::Notify(e) => self.live.push(e),
            }
        }
        if let Err(v) = self.engine.check_invariants() {
            panic!("invariant broken: {}", v.0);
        }
    }

    pub fn input(&mut self, input: Input) {
        let from = self.switch.len();
        self.engine.handle_input(input).expect("accepted");
        self.drain();
        self.bridge_since(from);
    }

    /// What the switch says after the bridges asked for since `from` (see `auto_bridge`).
    fn bridge_since(&mut self, from: usize) {
        if !self.auto_bridge {
            return;
        }
        let asked: Vec<(LegId, LegId)> = self.switch[from..]
            .iter()
            .filter_map(|c| match c {
                SwitchCommand::Bridge { a, b } => Some((*a, *b)),
                _ => None,
            })
            .collect();
        for (a, b) in asked {
            self.input(Input::Switch(self.now, SwitchEvent::Bridged { a, b }));
        }
    }

    pub fn cmd(&mut self, cmd: Command) {
        self.input(Input::Api(self.now, cmd));
    }

    pub fn try_cmd(&mut self, cmd: Command) -> Result<(), switchyard_engine::EngineError> {
        let from = self.switch.len();
        let r = self.engine.handle_input(Input::Api(self.now, cmd));
        self.drain();
        self.bridge_since(from);
        r
    }

    pub fn event(&mut self, ev: SwitchEvent) {
        self.input(Input::Switch(self.now, ev));
    }

    /// Moves time forward, firing timers on the way.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.next_timeout.filter(|t| *t <= target) {
            self.now = t.max(self.now);
            self.input(Input::Timeout(self.now));
            if self.next_timeout == Some(t) {
                break;
            }
        }
        self.now = target;
        self.input(Input::Timeout(target));
    }

    pub fn queue(&mut self, cfg: QueueConfig) {
        self.cmd(Command::UpsertQueue(Box::new(cfg)));
    }

    /// A queue with defaults and the given strategy.
    pub fn simple_queue(&mut self, id: u32, strategy: switchyard_engine::Strategy) -> QueueConfig {
        let cfg = QueueConfig {
            id: QueueId(id),
            name: format!("q{id}"),
            strategy,
            announcements: switchyard_engine::config::Announcements {
                first_after: None,
                ..Default::default()
            },
            ..QueueConfig::default()
        };
        self.queue(cfg.clone());
        cfg
    }

    pub fn agent_with(&mut self, cfg: AgentConfig, memberships: Vec<Membership>, available: bool) {
        let id = cfg.id;
        self.cmd(Command::UpsertAgent(Box::new(cfg)));
        self.cmd(Command::SetMemberships {
            agent: id,
            memberships,
        });
        if available {
            self.cmd(Command::SetAgentPresence {
                agent: id,
                presence: Presence::Available,
            });
        }
    }

    /// An available agent in these queues at level 1, position = id.
    pub fn agent(&mut self, id: u32, queues: &[u32]) {
        self.agent_skilled(id, queues, &[]);
    }

    pub fn agent_skilled(&mut self, id: u32, queues: &[u32], skills: &[(u32, u8)]) {
        let cfg = AgentConfig {
            id: AgentId(id),
            name: format!("a{id}"),
            contact: format!("user/{id}"),
            skills: skills.iter().map(|&(s, p)| (SkillId(s), p)).collect(),
            ..AgentConfig::default()
        };
        let ms = queues
            .iter()
            .map(|&q| Membership {
                queue: QueueId(q),
                level: 1,
                position: id,
                weight: 1,
            })
            .collect();
        self.agent_with(cfg, ms, true);
    }

    pub fn new_leg(&mut self) -> LegId {
        self.next_leg += 1;
        LegId(0x00C0_FFEE_0000_0000_0000_0000_0000 + self.next_leg)
    }

    /// A caller arrives in a queue; returns its leg and call id.
    pub fn call(&mut self, queue: u32) -> (LegId, CallId) {
        self.call_with(
            queue,
            CallerInfo {
                number: "+15550001".into(),
                ..CallerInfo::default()
            },
        )
    }

    pub fn call_with(&mut self, queue: u32, caller: CallerInfo) -> (LegId, CallId) {
        let leg = self.new_leg();
        self.event(SwitchEvent::CallArrived {
            leg,
            queue: QueueId(queue),
            caller,
        });
        // A caller refused at the door (join-empty) already has its final record.
        let call = self.engine.call_by_leg(leg).or_else(|| {
            self.call_records()
                .iter()
                .find(|r| r.leg == leg)
                .map(|r| r.call)
        });
        (leg, call.expect("call created"))
    }

    /// Originations issued since `from` (index into `switch`): (agent leg, dialled agent id).
    pub fn originations_since(&self, from: usize) -> Vec<(LegId, u32)> {
        self.switch[from..]
            .iter()
            .filter_map(|c| match c {
                SwitchCommand::Originate { leg, dial, .. } => dial
                    .strip_prefix("user/")
                    .and_then(|n| n.parse().ok())
                    .map(|a| (*leg, a)),
                _ => None,
            })
            .collect()
    }

    pub fn originations(&self) -> Vec<(LegId, u32)> {
        self.originations_since(0)
    }

    /// The agent leg last rung for this agent.
    pub fn leg_of(&self, agent: u32) -> LegId {
        self.originations()
            .into_iter()
            .rev()
            .find(|(_, a)| *a == agent)
            .map(|(l, _)| l)
            .expect("agent was rung")
    }

    pub fn answer(&mut self, leg: LegId) {
        self.event(SwitchEvent::LegAnswered { leg });
    }

    pub fn hangup(&mut self, leg: LegId, cause: HangupCause) {
        self.event(SwitchEvent::LegHungUp { leg, cause });
    }

    pub fn state(&self, agent: u32) -> switchyard_engine::agent::AgentStateKind {
        self.engine
            .agent_state(AgentId(agent))
            .expect("agent exists")
    }

    pub fn call_records(&self) -> Vec<&switchyard_engine::CallRecord> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Call(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    pub fn bridges(&self) -> Vec<(LegId, LegId)> {
        self.switch
            .iter()
            .filter_map(|c| match c {
                SwitchCommand::Bridge { a, b } => Some((*a, *b)),
                _ => None,
            })
            .collect()
    }

    pub fn hangups(&self) -> Vec<(LegId, &'static str)> {
        self.switch
            .iter()
            .filter_map(|c| match c {
                SwitchCommand::Hangup { leg, cause } => Some((*leg, *cause)),
                _ => None,
            })
            .collect()
    }
}
