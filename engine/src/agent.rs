//! Agents: who they are, what they are doing, and the state machine that keeps them from ever
//! being offered two calls at once.
//!
//! An agent has a *presence* the agent or a supervisor chooses (logged out, available, on a
//! break) and an *activity* the engine drives. The reported state combines them:
//!
//! ```text
//!                 SetPresence(Available)
//!   LoggedOut ─────────────────────────────► Available ◄──────────────┐
//!       ▲  ▲                                  │    ▲  │ SetPresence    │ wrap-up ends
//!       │  └──── SetPresence(LoggedOut) ──────┘    │  ▼ (OnBreak)     │ (or none)
//!       │                                  OnBreak(reason)            │
//!       │                                          │                  │
//!       │              offer (reservation)         │           ┌──────┴──┐
//!   Available ──────────────────────────► Reserved ─ accept ─► OnCall ─► WrapUp
//!       ▲                                    │  (leg answered)  (hangup)
//!       └── reject/busy/no-answer: delay ────┘   max-no-answer in a row ─► OnBreak("max-no-answer")
//! ```
//!
//! Presence changes while reserved or on a call take effect when the activity returns to
//! idle (an agent going on break mid-call finishes the call and its wrap-up first). An agent is
//! *ready* (may be offered a call) only when present as Available, idle, past any delay, and,
//! with a persistent line, once that line is answered.

use std::time::Instant;

use serde::Serialize;

use crate::config::{AgentConfig, Membership};
use crate::ids::{CallId, OfferId};
use crate::io::{LegId, Presence};

/// The state reported to supervisors and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStateKind {
    LoggedOut,
    Available,
    OnBreak,
    Reserved,
    OnCall,
    WrapUp,
}

impl AgentStateKind {
    pub const ALL: [AgentStateKind; 6] = [
        AgentStateKind::LoggedOut,
        AgentStateKind::Available,
        AgentStateKind::OnBreak,
        AgentStateKind::Reserved,
        AgentStateKind::OnCall,
        AgentStateKind::WrapUp,
    ];
}

/// What the engine has the agent doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Idle,
    /// Holding an offer: the agent's phone rings for this call and nothing else.
    Reserved(OfferId),
    /// Talking on this call, over this agent leg.
    OnCall(CallId, LegId),
    /// After a call, until this time.
    WrapUp(Instant),
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub cfg: AgentConfig,
    pub presence: Presence,
    pub activity: Activity,
    /// Not offered anything before this (reject/busy/no-answer delays).
    pub not_before: Option<Instant>,
    /// Queue memberships (tiers).
    pub memberships: Vec<Membership>,
    /// Since when the agent has been idle and available (longest-idle-agent).
    pub idle_since: Instant,
    /// Counters since login (least-talk-time, fewest-calls).
    pub talk_ms: u64,
    pub calls_answered: u64,
    pub no_answer_streak: u32,
    /// Whether the agent currently sits in its queues' ready indexes.
    pub indexed: bool,
    /// Its key in each membership's ready index while indexed (parallel to `memberships`).
    pub ready_keys: Vec<Option<crate::routing::index::ReadyKey>>,
    /// Random tag for tie-breaking and the random strategy's order.
    pub serial: u64,
    /// The armed AgentReady timer (end of wrap-up or of a delay).
    pub ready_timer: Option<Instant>,
    /// Queue of the call being wrapped up, and when wrap-up began (for handle time).
    pub wrap_from: Option<(crate::ids::QueueId, Instant)>,
    /// The agent's persistent line (`cfg.persistent_line`), once called.
    pub line: Option<AgentLine>,
}

/// A persistent agent line: the agent's phone, called once and kept up between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentLine {
    pub leg: LegId,
    /// Answered: calls can be bridged to it.
    pub up: bool,
    /// When it was called (a resync spares a line younger than its grace).
    pub since: Instant,
}

impl Agent {
    pub fn new(cfg: AgentConfig, now: Instant, serial: u64) -> Agent {
        Agent {
            cfg,
            presence: Presence::LoggedOut,
            activity: Activity::Idle,
            not_before: None,
            memberships: Vec::new(),
            idle_since: now,
            talk_ms: 0,
            calls_answered: 0,
            no_answer_streak: 0,
            indexed: false,
            ready_keys: Vec::new(),
            serial,
            ready_timer: None,
            wrap_from: None,
            line: None,
        }
    }

    pub fn state(&self) -> AgentStateKind {
        match (self.activity, &self.presence) {
            (Activity::Reserved(_), _) => AgentStateKind::Reserved,
            (Activity::OnCall(..), _) => AgentStateKind::OnCall,
            (Activity::WrapUp(_), _) => AgentStateKind::WrapUp,
            (Activity::Idle, Presence::LoggedOut) => AgentStateKind::LoggedOut,
            (Activity::Idle, Presence::Available) => AgentStateKind::Available,
            (Activity::Idle, Presence::OnBreak(_)) => AgentStateKind::OnBreak,
        }
    }

    pub fn break_reason(&self) -> Option<String> {
        match &self.presence {
            Presence::OnBreak(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// May this agent be offered a call at `now`? An agent with a persistent line needs it up.
    pub fn is_ready(&self, now: Instant) -> bool {
        self.presence == Presence::Available
            && self.activity == Activity::Idle
            && self.not_before.is_none_or(|t| t <= now)
            && (!self.cfg.persistent_line || self.line_up().is_some())
    }

    /// The persistent line's leg, when it is answered.
    pub fn line_up(&self) -> Option<LegId> {
        self.line.filter(|l| l.up).map(|l| l.leg)
    }

    pub fn is_logged_in(&self) -> bool {
        self.presence != Presence::LoggedOut
    }

    pub fn membership(&self, queue: crate::ids::QueueId) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.queue == queue)
    }

    /// Its key in a queue's ready index, while indexed.
    pub fn ready_key(&self, queue: crate::ids::QueueId) -> Option<crate::routing::index::ReadyKey> {
        let i = self.memberships.iter().position(|m| m.queue == queue)?;
        self.ready_keys.get(i).copied().flatten()
    }

    /// Proficiency in a skill (0 when absent).
    pub fn skill(&self, skill: crate::ids::SkillId) -> u8 {
        self.cfg
            .skills
            .iter()
            .find(|(s, _)| *s == skill)
            .map_or(0, |(_, p)| *p)
    }
}
