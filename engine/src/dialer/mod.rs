//! Outbound campaigns: whom to dial, when, and how fast.
//!
//! The dialer lives inside the [`crate::Engine`], because its agents are the engine's agents:
//! a person who answers becomes a call in the campaign's queue and is offered to an agent
//! through the same reservations as an inbound caller, with the highest priority and a
//! deadline (`connect_within`, 2 s) after which they hear the abandon message.
//!
//! ```text
//!  contacts (window, DNC, retry time) ─► pacing says N lines ─► Originate(Campaign leg)
//!     ▲                                                              │
//!     │ retry rule per outcome                busy / no answer / failed (LegHungUp before answer)
//!     │                                                              │ LegAnswered
//!     │                                   AMD on? ─► MachineDetection: machine ─► drop / message / agent
//!     │                                                              │ person (or AMD off / unsure / timeout)
//!     │                                       call joins the campaign queue, top priority
//!     │                                     bridged within 2 s ─► connected ─► talk, wrap, disposition
//!     └──────────────────────────────────── not bridged by then ─► abandon message, abandoned
//! ```
//!
//! Parts: [`config`] (settings), [`window`] (calling windows in the callee's zone),
//! [`contacts`] (the pool of dialable contacts with retry times), [`ledger`] (the legal
//! abandon count, per day and rolling 30 days), [`pacing`] (how many lines to dial now).

pub mod campaign;
pub mod config;
pub mod connect;
pub mod contacts;
pub mod ledger;
pub mod pacing;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CallId, CampaignId, ContactId};
use crate::io::LegId;

pub use config::{
    AmdPolicy, CallingWindow, CampaignConfig, DialMode, MIN_RING, MachineAction, RetryRule,
    RetryRules,
};

/// A contact handed to the engine to dial (the store keeps its fields; the engine needs only
/// what decides *when* to dial).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSpec {
    pub id: ContactId,
    /// E.164, `+` and digits.
    pub number: String,
    /// IANA zone of the callee ("America/Chicago").
    pub zone: String,
    /// Attempts already made (a contact resumed after a restart keeps its count).
    pub attempts: u32,
    /// Not before this instant (Unix ms; 0 = now).
    pub not_before_unix_ms: u64,
}

/// Operator verbs on a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignControl {
    Start,
    Pause,
    Resume,
    /// Ends the campaign for good: nothing more is dialled; calls in progress finish.
    Stop,
}

/// draft -> running <-> paused -> completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignState {
    #[default]
    Draft,
    Running,
    Paused,
    Completed,
}

impl CampaignState {
    pub fn name(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
        }
    }

    pub fn from_name(name: &str) -> Option<CampaignState> {
        [
            CampaignState::Draft,
            CampaignState::Running,
            CampaignState::Paused,
            CampaignState::Completed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// The state a control leads to, or `None` when it does not apply.
    pub fn apply(self, control: CampaignControl) -> Option<CampaignState> {
        use CampaignControl as C;
        use CampaignState as S;
        match (self, control) {
            (S::Draft | S::Paused, C::Start) | (S::Paused, C::Resume) => Some(S::Running),
            (S::Running, C::Start | C::Resume) => Some(S::Running),
            (S::Running | S::Paused, C::Pause) => Some(S::Paused),
            (S::Draft | S::Running | S::Paused, C::Stop) => Some(S::Completed),
            _ => None,
        }
    }
}

/// How one dial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// A person answered and was connected to an agent.
    Connected,
    /// A person answered and no agent was connected within `connect_within`.
    Abandoned,
    NoAnswer,
    Busy,
    /// The dial failed (bad number, network, rejected).
    Failed,
    /// An answering machine (dropped, or a message was left).
    Machine,
    /// The person hung up before the `connect_within` deadline and before an agent: not an
    /// abandon under the rule, but not a conversation either.
    HungUp,
    /// The engine hung the line up itself (campaign stopped or removed, switch lost it).
    Cancelled,
    /// switchyard restarted while this dial was under way and the switch no longer had its
    /// leg when it came back: whether anyone answered is not known. The dial counts as made
    /// (the contact is retried by the no-answer rule); the ledger cannot count it as a
    /// person.
    Lost,
}

/// What happens to the contact after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "kebab-case")]
pub enum ContactNext {
    /// Dial again, not before this instant.
    Retry { at_unix_ms: u64 },
    /// Finished with this outcome (connected, or out of attempts).
    Done,
}

/// One dial and its outcome: the campaign's history and the contact's new state.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptRecord {
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub leg: LegId,
    /// 1 for the first dial of the contact.
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    /// The engine call a person became (connected or abandoned).
    pub call: Option<CallId>,
    pub agent: Option<AgentId>,
    pub dialed_unix_ms: u64,
    pub answered_unix_ms: Option<u64>,
    pub ended_unix_ms: u64,
    pub next: ContactNext,
    /// Detection said an answering machine (also for a machine sent to an agent, whose
    /// outcome is `Connected` or `Abandoned`): it is not a person in the ledger.
    pub machine: bool,
}

/// A campaign dial about to be placed ([`crate::Record::AttemptStarted`]): the contact, its
/// number and zone (so a restart that finds the dial gone can put the contact back in line),
/// and the leg the dial will have.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AttemptStart {
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub leg: LegId,
    /// 1 for the first dial of the contact.
    pub attempt: u32,
    pub dialed_unix_ms: u64,
}

/// An agent's disposition of a campaign call.
#[derive(Clone, Debug, Serialize)]
pub struct DispositionRecord {
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub call: CallId,
    pub agent: Option<AgentId>,
    pub code: String,
    pub at_unix_ms: u64,
    /// The agent asked for the contact to be called again then.
    pub retry_at_unix_ms: Option<u64>,
}

/// One day of the legal ledger (a day is midnight to midnight in the campaign's ledger zone,
/// numbered as days since 1970-01-01 there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDay {
    pub day: i32,
    /// Dials answered by a person (connected + abandoned + hung up in the window).
    pub humans: u64,
    pub abandoned: u64,
}

/// A campaign's counters, as `GET /v1/campaigns/:id/stats` and the live feed show them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CampaignStats {
    pub campaign: CampaignId,
    pub state: CampaignState,
    pub dialed: u64,
    pub connected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub machine: u64,
    pub abandoned: u64,
    /// Lines pacing released after the minimum ring (included in `no_answer`).
    pub released: u64,
    /// Abandoned / answered by a person, today and over the last 30 days (ledger days).
    pub abandon_rate_day: f64,
    pub abandon_rate_30d: f64,
    /// Contacts not finished (waiting for their window, their retry time, or their turn).
    pub contacts_remaining: u64,
    /// Lines in flight now.
    pub lines: u32,
    /// The campaign queue's agents: logged in, and busy (reserved, talking or wrapping up).
    pub agents_staffed: u32,
    pub agents_busy: u32,
    /// Busy / staffed now (0 with nobody staffed).
    pub occupancy: f64,
    /// How progressive dials go now: `customer-first`, or `agent-first` (the agent is rung
    /// before the customer is dialled) with `brake` saying why; see `dialer::connect`.
    pub pacing: &'static str,
    pub brake: Option<connect::Brake>,
}
