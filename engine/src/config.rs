//! Queue, agent and membership configuration, and the engine's own settings.
//!
//! Everything here can be changed at run time with [`crate::Command`]s; the store (a later
//! issue) persists it. Defaults follow what an operator coming from mod_callcenter expects.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, QueueId, SkillId};

/// How a queue picks among the agents that could take a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Ring every eligible agent at once; the first to answer wins, the others are cancelled.
    RingAll,
    /// The agent idle the longest.
    #[default]
    LongestIdleAgent,
    /// The next agent by tier position after the one offered last (the queue remembers).
    RoundRobin,
    /// Always from the top of the tier order (level, then position).
    TopDown,
    /// The agent with the least talk time since login.
    LeastTalkTime,
    /// The agent who answered the fewest calls since login.
    FewestCalls,
    /// Uniformly at random (seeded).
    Random,
    /// At random in proportion to the member's weight.
    WeightedRandom,
    /// Ring in tier order, adding the next agent every `ring_progressively_step` while the
    /// earlier ones keep ringing.
    RingProgressively,
    /// The highest proficiency over the required skills; ties by idle time.
    SkillsBestMatch,
}

impl Strategy {
    pub const ALL: [Strategy; 10] = [
        Strategy::RingAll,
        Strategy::LongestIdleAgent,
        Strategy::RoundRobin,
        Strategy::TopDown,
        Strategy::LeastTalkTime,
        Strategy::FewestCalls,
        Strategy::Random,
        Strategy::WeightedRandom,
        Strategy::RingProgressively,
        Strategy::SkillsBestMatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring-all",
            Strategy::LongestIdleAgent => "longest-idle-agent",
            Strategy::RoundRobin => "round-robin",
            Strategy::TopDown => "top-down",
            Strategy::LeastTalkTime => "least-talk-time",
            Strategy::FewestCalls => "fewest-calls",
            Strategy::Random => "random",
            Strategy::WeightedRandom => "weighted-random",
            Strategy::RingProgressively => "ring-progressively",
            Strategy::SkillsBestMatch => "skills-best-match",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A skill a queue or call requires, with the minimum proficiency (1..=10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillRequirement {
    pub skill: SkillId,
    pub min: u8,
}

/// One escalation step: once a call has waited `after` in this queue, the pool widens to tier
/// levels up to `max_level` and every skill minimum drops by `relax_by` (never below 1).
/// Steps apply cumulatively in order of `after` (TaskRouter workflow steps, mod_callcenter's
/// tier rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    pub after: Duration,
    pub max_level: u32,
    pub relax_by: u8,
}

/// Where a caller goes when they leave the queue without an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "target", rename_all = "kebab-case")]
pub enum Exit {
    /// Hang up (after whatever the dialplan plays on hangup).
    Hangup,
    /// Join another queue, keeping the wait accumulated so far and the priority.
    Queue(QueueId),
    /// Transfer to voicemail; the target is the dialplan destination (e.g. `*98` or a box).
    Voicemail(String),
    /// Transfer to a dialplan destination (an external overflow number).
    Transfer(String),
    /// Leave a message in switchyard's own voicemail box of a queue or an agent: the driver
    /// plays the greeting and records on the caller's leg (issue 20).
    Mailbox(Mailbox),
    /// The caller hangs up and keeps their place; when it is their turn an agent is rung first
    /// and then the caller is called back at their number.
    Callback,
}

/// Whose voicemail box a message goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mailbox {
    Queue(QueueId),
    Agent(AgentId),
}

/// When a caller may join, and when waiting callers are sent away (Asterisk's joinempty and
/// leavewhenempty, mod_callcenter's max-wait-time-with-no-agent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyRule {
    /// Never refuse or evict for lack of agents.
    #[default]
    Never,
    /// Refuse / evict when no member is logged in.
    NoneLoggedIn,
    /// Refuse / evict when no member is logged in and available (breaks count as absent).
    NoneAvailable,
}

/// Caller experience while waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Announcements {
    /// Music on hold source (a file, `local_stream://moh`, a tone stream).
    pub music: String,
    /// First position + expected-wait announcement after this long in queue.
    pub first_after: Option<Duration>,
    /// Then repeated this often.
    pub every: Option<Duration>,
    /// Announce the position ("you are caller number 3").
    pub position: bool,
    /// Announce the expected wait (p50 rounded up to minutes; p90 in the record).
    pub expected_wait: bool,
    /// A recorded message played every `periodic_every` ("your call is important...").
    pub periodic: Option<(Duration, String)>,
}

impl Default for Announcements {
    fn default() -> Self {
        Announcements {
            music: "local_stream://moh".into(),
            first_after: Some(Duration::from_secs(30)),
            every: Some(Duration::from_secs(60)),
            position: true,
            expected_wait: true,
            periodic: None,
        }
    }
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    pub id: QueueId,
    pub name: String,
    pub strategy: Strategy,
    /// Skills every call of this queue needs.
    pub skills: Vec<SkillRequirement>,
    /// Escalation steps, sorted by `after` when loaded.
    pub escalation: Vec<EscalationStep>,
    /// Tier levels eligible before any escalation step (1 = only level-1 members).
    pub initial_max_level: u32,
    /// Service-level threshold (answered within).
    pub sl_threshold: Duration,
    /// Abandons shorter than this are "short" and excluded from one service-level variant.
    pub short_abandon: Duration,
    pub announcements: Announcements,
    /// Longest a caller waits before `on_timeout`.
    pub max_wait: Option<Duration>,
    pub on_timeout: Exit,
    /// Longest a caller waits while no member is logged in before `on_no_agents`.
    pub max_wait_no_agent: Option<Duration>,
    pub on_no_agents: Exit,
    pub join_empty: EmptyRule,
    pub leave_when_empty: EmptyRule,
    /// Keys that take the caller out of the queue.
    pub dtmf_exits: Vec<(char, Exit)>,
    /// How long an agent leg rings before the offer counts as not answered.
    pub offer_timeout: Duration,
    pub ring_progressively_step: Duration,
    /// Defaults for member agents (an agent's own setting wins).
    pub wrapup: Duration,
    /// Priority added to callers of this queue (VIP lines).
    pub priority_boost: i32,
    /// Starts paused (no offers).
    pub paused: bool,
    /// Dial string for calling this queue's callback customers back; `{number}` is the
    /// caller's number (reduced to characters a dial string cannot be steered by). `None`:
    /// the engine's `callback_dial`.
    pub callback_dial: Option<String>,
    /// Times a callback customer is dialled before the request ends `callback-failed`
    /// (0 counts as 1). A dial that fails puts the call back in line at its old place.
    pub callback_attempts: u32,
    /// How long a callback waits after a failed dial before it may be offered again: a
    /// customer who was busy or away a moment ago is unlikely to answer at once.
    pub callback_retry: Duration,
    /// Played to a caller who takes the callback exit before they are hung up, so they know
    /// they will be called back; `None` hangs up at once.
    pub callback_confirm: Option<String>,
    /// Which of this queue's calls are recorded, and how (a campaign's calls follow the
    /// campaign's policy instead).
    pub recording: crate::recording::RecordingPolicy,
}

/// FreeSWITCH's "thank you" (`freeswitch-sounds-en-us-callie`, the standard English sounds):
/// a prompt every stock install has. A recorded "we will call you back" is better; set
/// `callback_confirm` to it.
pub const DEFAULT_CALLBACK_CONFIRM: &str = "ivr/ivr-thank_you.wav";

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            id: QueueId(0),
            name: String::new(),
            strategy: Strategy::LongestIdleAgent,
            skills: Vec::new(),
            escalation: Vec::new(),
            initial_max_level: u32::MAX,
            sl_threshold: Duration::from_secs(20),
            short_abandon: Duration::from_secs(5),
            announcements: Announcements::default(),
            max_wait: None,
            on_timeout: Exit::Hangup,
            max_wait_no_agent: None,
            on_no_agents: Exit::Hangup,
            join_empty: EmptyRule::Never,
            leave_when_empty: EmptyRule::Never,
            dtmf_exits: Vec::new(),
            offer_timeout: Duration::from_secs(20),
            ring_progressively_step: Duration::from_secs(10),
            wrapup: Duration::ZERO,
            priority_boost: 0,
            paused: false,
            callback_dial: None,
            callback_attempts: 3,
            callback_retry: Duration::from_secs(5 * 60),
            callback_confirm: Some(DEFAULT_CALLBACK_CONFIRM.into()),
            recording: crate::recording::RecordingPolicy::default(),
        }
    }
}

/// One agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    /// FreeSWITCH dial string for the agent's phone (`user/1000`, `sofia/gateway/...`).
    pub contact: String,
    /// Proficiency 1..=10 per skill.
    pub skills: Vec<(SkillId, u8)>,
    /// Overrides the queue's wrap-up time.
    pub wrapup: Option<Duration>,
    /// Not offered anything for this long after rejecting an offer.
    pub reject_delay: Duration,
    /// ... after the phone was busy.
    pub busy_delay: Duration,
    /// ... after not answering.
    pub no_answer_delay: Duration,
    /// Consecutive unanswered offers that put the agent on break ("max-no-answer").
    pub max_no_answer: u32,
    /// Keep the agent's phone connected while logged in (a nailed-up line, as predictive
    /// agents in ViciDial sit in their session conference): the engine calls the phone once
    /// when the agent becomes available and bridges each call to that leg at once, with no
    /// ring and no answer per call. The leg goes back to park between calls.
    pub persistent_line: bool,
    /// Replaces the queue's (or campaign's) recording mode for this agent's calls: a trainee
    /// recorded `always`, a manager `never`.
    pub recording: Option<crate::recording::RecordingMode>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            id: AgentId(0),
            name: String::new(),
            contact: String::new(),
            skills: Vec::new(),
            wrapup: None,
            reject_delay: Duration::from_secs(10),
            busy_delay: Duration::from_secs(60),
            no_answer_delay: Duration::from_secs(30),
            max_no_answer: 3,
            persistent_line: false,
            recording: None,
        }
    }
}

/// An agent's place in a queue (mod_callcenter's tier): lower levels are tried first, and
/// within a level lower positions (top-down, round-robin, ring-progressively). `weight`
/// feeds weighted-random.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub queue: QueueId,
    pub level: u32,
    pub position: u32,
    pub weight: u32,
}

impl Membership {
    pub fn new(queue: QueueId) -> Membership {
        Membership {
            queue,
            level: 1,
            position: 1,
            weight: 1,
        }
    }
}

/// Settings of the engine itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Wall-clock time (Unix ms) at the `now` given to `Engine::new`; records and 15-minute
    /// intervals are stamped from it.
    pub origin_unix_ms: u64,
    /// Calls the engine holds at once (waiting, ringing, talking, callbacks pending). Beyond
    /// it new callers are refused with a record, never silently dropped.
    pub max_calls: usize,
    /// Highest agent/queue id accepted (ids index dense tables).
    pub max_id: u32,
    /// Candidates kept in each decision trace.
    pub trace_candidates: usize,
    /// Waiting calls an agent that becomes free looks through, per queue, for one it may take
    /// (calls needing skills it lacks are skipped). Bounds the work of one decision.
    pub scan_limit: usize,
    /// Largest assignment solved exactly in one matching step; above it, greedy by score.
    pub exact_matching_limit: usize,
    /// Decision traces kept in memory for `Engine::trace`.
    pub trace_memory: usize,
    /// Leave `Output::Persist` of decision traces out (the simulator at a million calls).
    pub persist_traces: bool,
    /// Persist each campaign pacer's snapshot after it learns (`Record::PacerState`), so a
    /// restart restores it. The simulator, which never restarts, leaves it off.
    pub persist_pacers: bool,
    /// Dial string for calling a callback customer back when the queue sets none
    /// (`QueueConfig::callback_dial`); `{number}` is the caller's number.
    pub callback_dial: String,
    /// Longest chain of queue moves (overflow into overflow...) before the caller is dropped;
    /// guards against overflow loops in configuration.
    pub max_queue_moves: usize,
    /// How long a call waits for CHANNEL_BRIDGE after its agent answered. FreeSWITCH joins
    /// two legs about 40-80 ms after `uuid_bridge`; a bridge that has not happened by then
    /// was lost (the originate's `&park()` won, or the legs were left in limbo), so the agent
    /// leg is hung up and the call goes back to the head of its queue.
    pub bridge_timeout: Duration,
    /// How long a recording that has ended may take to be reported by the driver (the
    /// recorder's BYE, the file's close and its check) before its record is written as
    /// failed.
    pub recording_report_within: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            origin_unix_ms: 0,
            max_calls: 200_000,
            max_id: 1 << 20,
            trace_candidates: 8,
            scan_limit: 1024,
            exact_matching_limit: 32,
            trace_memory: 10_000,
            persist_traces: true,
            persist_pacers: true,
            callback_dial: "sofia/gateway/default/{number}".into(),
            max_queue_moves: 8,
            bridge_timeout: Duration::from_secs(3),
            recording_report_within: Duration::from_secs(120),
        }
    }
}
