//! A campaign's settings: how it dials, whom it may call when, and what it does with each
//! outcome. Everything here can be changed while the campaign runs (`Command::UpsertCampaign`);
//! defaults are the ones a US operator needs to stay inside the TCPA/FCC abandon rule.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::recording::RecordingPolicy;

use crate::ids::{CampaignId, QueueId};

/// How lines are matched to agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialMode {
    /// An agent is reserved and shown the contact first; the customer is dialled when the
    /// agent accepts (answers the offer). Never abandons.
    Preview,
    /// One line per free agent: never more calls in flight than agents ready for them.
    Progressive,
    /// Lines dialled ahead of agents freeing up, paced on the predicted risk of each dial
    /// against the abandon budget left in the ledger.
    #[default]
    Predictive,
}

impl DialMode {
    pub fn name(self) -> &'static str {
        match self {
            DialMode::Preview => "preview",
            DialMode::Progressive => "progressive",
            DialMode::Predictive => "predictive",
        }
    }

    pub fn from_name(name: &str) -> Option<DialMode> {
        [
            DialMode::Preview,
            DialMode::Progressive,
            DialMode::Predictive,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// How an agent takes a preview.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreviewAccept {
    /// The agent's phone rings with the contact's number; answering accepts.
    #[default]
    Phone,
    /// The agent is reserved without ringing and shown the contact on its screen; it accepts
    /// (then its phone is rung, or its persistent line used) or skips, within
    /// `preview_timeout`.
    Desktop,
}

impl PreviewAccept {
    pub fn name(self) -> &'static str {
        match self {
            PreviewAccept::Phone => "phone",
            PreviewAccept::Desktop => "desktop",
        }
    }

    pub fn from_name(name: &str) -> Option<PreviewAccept> {
        [PreviewAccept::Phone, PreviewAccept::Desktop]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// Bounds of a desktop preview's reservation: long enough to read a contact, short enough
/// that an agent who walked away does not hold a contact for long.
pub const PREVIEW_TIMEOUT_MIN: Duration = Duration::from_secs(5);
pub const PREVIEW_TIMEOUT_MAX: Duration = Duration::from_secs(30 * 60);

/// What to do when answering-machine detection says a machine answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "message", rename_all = "kebab-case")]
pub enum MachineAction {
    /// Hang up at once.
    #[default]
    Drop,
    /// Play this recording (after the beep, as the detector reports it), then hang up.
    LeaveMessage(String),
    /// Connect it to an agent like a person (the agent leaves the message).
    ToAgent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AmdPolicy {
    /// Run detection on answered legs (the dial carries `execute_on_answer`).
    pub enabled: bool,
    pub on_machine: MachineAction,
    /// No verdict by then: treat the leg as a person (the abandon clock starts).
    pub timeout: Duration,
}

impl Default for AmdPolicy {
    fn default() -> Self {
        AmdPolicy {
            enabled: false,
            on_machine: MachineAction::Drop,
            timeout: Duration::from_secs(4),
        }
    }
}

/// When and how often a contact is tried again after one outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRule {
    /// Wait at least this long before the next attempt.
    pub interval: Duration,
    /// Attempts in all (the first one included) after which this outcome closes the contact.
    pub max_attempts: u32,
}

impl RetryRule {
    pub const fn new(interval_s: u64, max_attempts: u32) -> RetryRule {
        RetryRule {
            interval: Duration::from_secs(interval_s),
            max_attempts,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryRules {
    pub busy: RetryRule,
    pub no_answer: RetryRule,
    pub failed: RetryRule,
    pub machine: RetryRule,
    /// A person answered and no agent was free: retried by default (they never spoke to
    /// anyone), later than the others.
    pub abandoned: RetryRule,
}

impl Default for RetryRules {
    fn default() -> Self {
        RetryRules {
            busy: RetryRule::new(15 * 60, 3),
            no_answer: RetryRule::new(60 * 60, 3),
            failed: RetryRule::new(30 * 60, 2),
            machine: RetryRule::new(4 * 60 * 60, 2),
            abandoned: RetryRule::new(2 * 60 * 60, 2),
        }
    }
}

/// Local hours in the callee's time zone during which a contact may be dialled:
/// `[start, end)` in minutes after local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallingWindow {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl Default for CallingWindow {
    /// 08:00-21:00, the TCPA's hours.
    fn default() -> Self {
        CallingWindow {
            start_minute: 8 * 60,
            end_minute: 21 * 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignConfig {
    pub id: CampaignId,
    pub name: String,
    pub mode: DialMode,
    /// Agents are this queue's members, matched by its strategy, tiers and skills. A queue
    /// that also takes inbound calls makes the agents blended.
    pub queue: QueueId,
    pub caller_id_number: String,
    pub caller_id_name: String,
    /// Dial string; `{number}` becomes the contact's E.164 number.
    pub dial: String,
    /// Lines in flight at most (ringing, in detection, or answered and not yet connected).
    pub max_lines: u32,
    /// How long a line rings before it counts as no answer (15 s at least).
    pub ring_timeout: Duration,
    /// Predictive mode: a line still ringing after this (15 s at least) is released early
    /// when the person who might yet answer it would find no agent (it would not be dialled
    /// now). `None` lets every line ring to `ring_timeout`.
    pub release_after: Option<Duration>,
    /// Abandoned / answered-by-a-person, per day and over 30 days (0.03 by default).
    pub abandon_target: f64,
    /// A person must be connected within this (2 s under the FCC rule) or hear the abandon
    /// message and be counted as abandoned.
    pub connect_within: Duration,
    /// The abandon message (name, who is calling, a number to call back: the rule's content).
    pub abandon_message: String,
    pub amd: AmdPolicy,
    pub retry: RetryRules,
    pub window: CallingWindow,
    /// Dial nothing before / after these instants (Unix ms).
    pub start_unix_ms: Option<u64>,
    pub end_unix_ms: Option<u64>,
    /// IANA zone whose midnight starts a ledger day.
    pub ledger_zone: String,
    pub recording: RecordingPolicy,
    /// Blended agents: keep this many of the queue's ready agents for inbound calls.
    pub agent_reserve: u32,
    /// Progressive: learn whether to dial customers or agents first, or fix it (see
    /// `dialer::connect`).
    pub progressive_dial: super::connect::ProgressiveDial,
    /// Preview mode: how the agent accepts a contact (its phone, or its screen first).
    pub preview_accept: PreviewAccept,
    /// Desktop previews: a reservation neither accepted nor skipped by then ends as a
    /// no-answer offer and the contact goes to the next agent.
    pub preview_timeout: Duration,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            id: CampaignId(0),
            name: String::new(),
            mode: DialMode::Predictive,
            queue: QueueId(0),
            caller_id_number: String::new(),
            caller_id_name: String::new(),
            dial: "sofia/gateway/default/{number}".into(),
            max_lines: 100,
            ring_timeout: Duration::from_secs(25),
            release_after: Some(MIN_RING),
            abandon_target: 0.03,
            connect_within: Duration::from_secs(2),
            abandon_message: "abandon.wav".into(),
            amd: AmdPolicy::default(),
            retry: RetryRules::default(),
            window: CallingWindow::default(),
            start_unix_ms: None,
            end_unix_ms: None,
            ledger_zone: "UTC".into(),
            recording: RecordingPolicy::default(),
            agent_reserve: 0,
            progressive_dial: super::connect::ProgressiveDial::Auto,
            preview_accept: PreviewAccept::Phone,
            preview_timeout: Duration::from_secs(60),
        }
    }
}

/// Shortest ring the engine accepts: ringing less than 15 s cuts off people reaching for the
/// phone (and the FCC safe harbour asks for 15 s or four rings).
pub const MIN_RING: Duration = Duration::from_secs(15);

impl CampaignConfig {
    /// Checks what the engine relies on. The API checks the same with field names.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.ring_timeout < MIN_RING {
            return Err(("ring_timeout", "must be at least 15 s".into()));
        }
        if self.release_after.is_some_and(|r| r < MIN_RING) {
            return Err(("release_after", "must be at least 15 s".into()));
        }
        if !(self.abandon_target > 0.0 && self.abandon_target <= 0.5) {
            return Err(("abandon_target", "must be in (0, 0.5]".into()));
        }
        if self.connect_within.is_zero() || self.connect_within > Duration::from_secs(10) {
            return Err(("connect_within", "must be in (0, 10] s".into()));
        }
        if self.max_lines == 0 {
            return Err(("max_lines", "must be at least 1".into()));
        }
        if !self.dial.contains("{number}") {
            return Err(("dial", "must contain {number}".into()));
        }
        let w = self.window;
        if w.start_minute >= 24 * 60 || w.end_minute > 24 * 60 || w.start_minute >= w.end_minute {
            return Err(("window", "start must be before end, within one day".into()));
        }
        if self.recording.sample_percent > 100 {
            return Err(("recording", "percent must be in 0..=100".into()));
        }
        if !(PREVIEW_TIMEOUT_MIN..=PREVIEW_TIMEOUT_MAX).contains(&self.preview_timeout) {
            return Err(("preview_timeout", "must be in [5 s, 30 min]".into()));
        }
        if let (Some(s), Some(e)) = (self.start_unix_ms, self.end_unix_ms)
            && s >= e
        {
            return Err(("end", "must be after start".into()));
        }
        Ok(())
    }
}
