//! What goes into the core and what comes out of it.
//!
//! The core never touches a socket: the driver (or the simulation harness) turns Event Socket
//! traffic into [`SwitchEvent`]s and carries [`SwitchCommand`]s back to FreeSWITCH. These types
//! speak in call-center terms (a caller arrived, an agent leg answered), not in ESL headers, so
//! the same core runs against FreeSWITCH, the fake switch, and the virtual-time simulator.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::AgentStateKind;
use crate::config::{AgentConfig, Exit, Membership, QueueConfig};
use crate::dialer::{
    AttemptRecord, CampaignConfig, CampaignControl, CampaignState, CampaignStats, ContactSpec,
    DispositionRecord, LedgerDay,
};
use crate::ids::{AgentId, CallId, CampaignId, ContactId, OfferId, QueueId, SkillId};
use crate::stats::IntervalRecord;
use crate::trace::DecisionTrace;

/// A FreeSWITCH channel, by its UUID held as 128 bits (FreeSWITCH names every channel with a
/// UUID; keeping it as a number makes the per-call maps cheap and the ids reproducible).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LegId(pub u128);

impl LegId {
    /// Parses the hyphenated (or plain hex) form FreeSWITCH prints.
    pub fn parse(text: &str) -> Option<LegId> {
        let mut value: u128 = 0;
        let mut digits = 0;
        for b in text.trim().bytes() {
            if b == b'-' {
                continue;
            }
            let d = (b as char).to_digit(16)?;
            value = value.checked_mul(16)? | u128::from(d);
            digits += 1;
        }
        (digits == 32).then_some(LegId(value))
    }
}

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for LegId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Everything the core reacts to. Each carries the time it happened.
#[derive(Clone, Debug)]
pub enum Input {
    Switch(Instant, SwitchEvent),
    Api(Instant, Command),
    /// The time given by the last [`Output::Timeout`] has come (or any later time).
    Timeout(Instant),
}

impl Input {
    pub fn time(&self) -> Instant {
        match self {
            Input::Switch(t, _) | Input::Api(t, _) | Input::Timeout(t) => *t,
        }
    }
}

/// What the caller brings with it: who they are and what they need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerInfo {
    pub number: String,
    pub name: String,
    /// Higher is served first (VIP). Carried across queue moves.
    pub priority: i32,
    /// Skills this call needs on top of the queue's, with minimum proficiency.
    pub skills: Vec<(SkillId, u8)>,
    /// When the caller first arrived (Unix ms), for a caller who comes back: the hold loop of
    /// the documented dialplan sends a waiting caller into `socket` again when switchyard
    /// restarts, with what it stamped on the channel (`switchyard_arrived`). The call keeps
    /// its seniority in line from then; `None` (or a time not before now): it arrives now.
    pub first_arrived_unix_ms: Option<u64>,
    /// Exits the caller's inbound flow takes over (none for a caller with no flow).
    pub flow_exits: FlowExits,
    /// Only this agent may take the call (a flow's agent step: a direct call that waits in
    /// one of the agent's queues for that agent alone).
    pub agent: Option<AgentId>,
}

/// Why a leg went away, reduced to what routing cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HangupCause {
    /// Normal clearing (either side hung up after talking, or the caller gave up).
    Normal,
    /// USER_BUSY.
    Busy,
    /// CALL_REJECTED / DECLINE.
    Rejected,
    /// NO_ANSWER, NO_USER_RESPONSE, ALLOTTED_TIMEOUT, ORIGINATOR_CANCEL on our timeout.
    NoAnswer,
    /// Anything else that kept the leg from coming up (unregistered, network, bad gateway).
    Failed,
    /// The channel vanished: the switch restarted or lost it (resync found it gone).
    Lost,
}

impl HangupCause {
    /// Maps a FreeSWITCH hangup cause name.
    pub fn from_freeswitch(cause: &str) -> HangupCause {
        match cause {
            "NORMAL_CLEARING" | "ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF"
            | "MANAGER_REQUEST" | "BLIND_TRANSFER" | "ATTENDED_TRANSFER" => HangupCause::Normal,
            "USER_BUSY" => HangupCause::Busy,
            "CALL_REJECTED" | "DECLINE" => HangupCause::Rejected,
            "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "PROGRESS_TIMEOUT" => {
                HangupCause::NoAnswer
            }
            _ => HangupCause::Failed,
        }
    }
}

/// The switch, in call-center terms.
#[derive(Clone, Debug)]
pub enum SwitchEvent {
    /// A caller reached the engine (the dialplan's `socket` application connected) and wants
    /// `queue`. The caller's leg is parked on the socket until the engine bridges it.
    CallArrived {
        leg: LegId,
        queue: QueueId,
        caller: CallerInfo,
    },
    /// A leg the engine originated (agent, callback customer, supervisor) answered.
    LegAnswered { leg: LegId },
    /// FreeSWITCH joined two legs (CHANNEL_BRIDGE): the only proof that a caller and an agent
    /// can hear each other. A call counts as answered from here, not from the agent's answer.
    Bridged { a: LegId, b: LegId },
    /// A bridge the engine asked for cannot happen: `uuid_bridge` answered `-ERR`, or a leg's
    /// originate failed after it answered (FreeSWITCH's `ORIGINATOR_CANCEL` when a bridge
    /// raced the originate). The legs may still be up.
    BridgeFailed { a: LegId, b: LegId },
    /// A leg hung up, or its origination failed. Repeats for a leg already gone are ignored.
    LegHungUp { leg: LegId, cause: HangupCause },
    /// The phone on `leg` handed its peer elsewhere in FreeSWITCH: a SIP REFER, blind or
    /// attended (`endpoint_disposition` BLIND_TRANSFER or ATTENDED_TRANSFER on the
    /// transferor's leg, set by mod_sofia before it moves the peer). Reported just before that
    /// leg's [`SwitchEvent::LegHungUp`]; the peer's leg lives on outside the engine's call.
    Transferred { leg: LegId },
    /// The caller pressed a key.
    Dtmf { leg: LegId, digit: char },
    /// Answering-machine detection finished on an answered leg the engine dialled (mod_amd's
    /// `amd_result`, or an avmd beep).
    MachineDetection { leg: LegId, result: AmdResult },
    /// After an Event Socket reconnect: the legs FreeSWITCH still has. Calls whose legs are not
    /// listed ended while the engine could not see them and are closed with a synthetic record.
    /// `restarted` is set when the Core-UUID changed (every channel is gone).
    Resync { live: Vec<LegId>, restarted: bool },
    /// Whether any FreeSWITCH node can take originates. While none can, campaigns do not
    /// dial (their originates could only fail, and a contact would look dialled). An engine
    /// starts assuming the switch is there; the driver says otherwise at once.
    Reachable { up: bool },
    /// After a start: what the switch still carries and what the store held open (see
    /// [`crate::Recovery`]).
    Recovered(Box<crate::Recovery>),
    /// A recording the engine started has ended and its file was checked (the driver's
    /// report; see [`crate::recording`]).
    RecordingEnded(Box<crate::recording::RecordingOutcome>),
}

/// What answered an outbound leg, as answering-machine detection reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmdResult {
    Human,
    Machine,
    /// The detector could not tell (mod_amd's NOTSURE); campaigns treat it as a person, the
    /// safe side of the abandon rule.
    Unsure,
}

impl AmdResult {
    /// Maps mod_amd's `amd_result` values (HUMAN, MACHINE, NOTSURE).
    pub fn from_freeswitch(value: &str) -> AmdResult {
        match value.trim().to_ascii_uppercase().as_str() {
            "HUMAN" | "PERSON" => AmdResult::Human,
            "MACHINE" => AmdResult::Machine,
            _ => AmdResult::Unsure,
        }
    }
}

/// Operator, supervisor and configuration commands (the API layer's verbs).
#[derive(Clone, Debug)]
pub enum Command {
    UpsertQueue(Box<QueueConfig>),
    RemoveQueue(QueueId),
    UpsertAgent(Box<AgentConfig>),
    RemoveAgent(AgentId),
    /// Replaces an agent's queue memberships (tiers).
    SetMemberships {
        agent: AgentId,
        memberships: Vec<Membership>,
    },
    /// Agent or supervisor sets presence: logged out, available, or a break with a reason.
    SetAgentPresence {
        agent: AgentId,
        presence: Presence,
    },
    PauseQueue(QueueId),
    ResumeQueue(QueueId),
    /// Offer this waiting call to this agent now, bypassing the strategy.
    AssignCall {
        call: CallId,
        agent: AgentId,
    },
    /// Move a waiting call to another queue; it keeps its accumulated wait and priority.
    MoveCall {
        call: CallId,
        queue: QueueId,
    },
    SetCallPriority {
        call: CallId,
        priority: i32,
    },
    /// Listen to, whisper to, or barge into the call an agent is on. The supervisor is reached
    /// at `dial` (a FreeSWITCH dial string); `leg` is the supervisor leg's UUID.
    Monitor {
        agent: AgentId,
        dial: String,
        leg: LegId,
        mode: MonitorMode,
    },
    /// Send a waiting call out of the queue (to voicemail, overflow, callback, or hang up).
    ExitCall {
        call: CallId,
        exit: Exit,
    },
    /// Creates or changes a campaign (its state is kept; a new one starts as a draft).
    UpsertCampaign(Box<CampaignConfig>),
    /// Forgets a campaign: lines in flight are hung up, calls with agents finish.
    RemoveCampaign(CampaignId),
    ControlCampaign {
        campaign: CampaignId,
        control: CampaignControl,
    },
    /// Adds (or replaces, by id) contacts to dial. Bounded by the caller: the API sends
    /// batches as the store accepts them.
    AddContacts {
        campaign: CampaignId,
        contacts: Vec<ContactSpec>,
    },
    /// Never dial these E.164 numbers in this campaign again (DNC). Contacts holding them
    /// are closed; a line already ringing one is left to finish.
    BlockNumbers {
        campaign: CampaignId,
        numbers: Vec<String>,
    },
    /// The ledger days the store remembers (after a restart), so the 30-day rate is honest.
    SeedLedger {
        campaign: CampaignId,
        days: Vec<LedgerDay>,
    },
    /// What the campaign's pacer had learned before a restart ([`Record::PacerState`]).
    SeedPacer {
        campaign: CampaignId,
        pacer: Box<crate::dialer::pacing::PacerSnapshot>,
    },
    /// What the open interval had counted before a restart (`Stats::open_interval` of the
    /// process before, saved by the runtime): added to this interval's counters. Refused
    /// (`EngineError::StaleInterval`) when that interval is no longer the open one.
    SeedInterval(Box<crate::stats::OpenInterval>),
    /// An agent's disposition of a campaign call, with an optional time to call again.
    Disposition {
        call: CallId,
        code: String,
        retry_at_unix_ms: Option<u64>,
    },
    /// Transfers a call in conversation to a queue (its own when `queue` is `None`): the
    /// caller leaves the agent for music and the line, keeping its seniority; the agent goes
    /// to wrap-up and is not offered the call again while others can take it. `by`: the agent
    /// asking, who must be the one on the call.
    TransferCall {
        call: CallId,
        queue: Option<QueueId>,
        by: Option<AgentId>,
    },
    /// Starts, stops, pauses or masks a call's recording (the API's verb; see
    /// [`crate::recording`] for who may do what).
    RecordCall {
        call: CallId,
        action: crate::recording::RecordingAction,
        by: crate::recording::Requester,
    },
    /// A desktop preview reserved to an agent is taken: the agent's phone is rung (or its
    /// persistent line used), then the customer dialled. `by`: the agent asking, who must be
    /// the one it is reserved to (`None`: a supervisor, for whichever agent holds it).
    AcceptPreview {
        call: CallId,
        by: Option<AgentId>,
    },
    /// A desktop preview reserved to an agent is passed over: the offer ends as rejected (the
    /// agent's reject delay) and the contact goes to the next agent.
    SkipPreview {
        call: CallId,
        by: Option<AgentId>,
    },
}

/// An agent's chosen presence. Reserved, on-call and wrap-up are the engine's to set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "presence", content = "reason", rename_all = "kebab-case")]
pub enum Presence {
    LoggedOut,
    Available,
    OnBreak(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorMode {
    /// Hear both sides, nobody hears the supervisor.
    Listen,
    /// Only the agent hears the supervisor.
    Whisper,
    /// Everybody hears everybody.
    Barge,
}

/// What the driver must do on the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchCommand {
    /// Answer the caller's leg (it arrived unanswered on the socket).
    Answer { leg: LegId },
    /// Loop music on hold on the caller's leg until told otherwise.
    Music { leg: LegId, source: String },
    /// Interrupt the music, play these prompts in order, then resume the music.
    Announce {
        leg: LegId,
        prompts: Vec<Prompt>,
        then_music: String,
    },
    /// Originate a leg to `dial` with our own UUID `leg`; it parks when answered and reports
    /// `LegAnswered` or `LegHungUp`. The switch gives up after `timeout`.
    Originate {
        /// Whose phone this rings.
        kind: LegKind,
        leg: LegId,
        dial: String,
        caller_id_number: String,
        caller_id_name: String,
        timeout: Duration,
        vars: Vec<(String, String)>,
        /// The caller leg this leg may be joined to by FreeSWITCH itself the moment its
        /// originate completes, with no round trip through switchyard: set only when no other
        /// leg can win that caller (a single offer, never ring-all). The core still asks for
        /// the [`SwitchCommand::Bridge`] at the answer and waits for CHANNEL_BRIDGE as
        /// usual; a driver that had the switch join the legs does not send `uuid_bridge`.
        join: Option<LegId>,
    },
    /// Bridge two answered legs. The core waits for [`SwitchEvent::Bridged`] (or
    /// [`SwitchEvent::BridgeFailed`]) before it counts the call as answered; the driver sends
    /// `uuid_bridge` only once FreeSWITCH has handed every leg it originated over (see the
    /// driver's module doc).
    Bridge { a: LegId, b: LegId },
    /// Hang a leg up. The driver ignores "no such channel".
    Hangup { leg: LegId, cause: &'static str },
    /// Send the caller elsewhere in the dialplan (voicemail, an external overflow number).
    Transfer { leg: LegId, destination: String },
    /// Stop whatever the leg hears, play one recording to it, then hang it up (a campaign's
    /// abandon message, or a message left on an answering machine).
    PlayThenHangup { leg: LegId, path: String },
    /// Originate the supervisor leg `leg` to `dial` and attach it to `target` in `mode`.
    Eavesdrop {
        leg: LegId,
        dial: String,
        target: LegId,
        mode: MonitorMode,
    },
    /// Capture a call's audio (see [`crate::recording`]).
    Recording(RecordingCommand),
    /// Takes a caller out of its bridge into park, alive: `uuid_transfer <leg> park inline`
    /// (the transfer flag keeps `hangup_after_bridge` from hanging it up as the bridge ends).
    Park { leg: LegId },
    /// The caller leaves a message in a switchyard voicemail box: the driver plays the
    /// greeting and records on the leg (the call has ended for the engine).
    Voicemail {
        leg: LegId,
        mailbox: crate::config::Mailbox,
        caller_number: String,
    },
    /// The caller's queue let it go for a reason its inbound flow has a step for: the driver
    /// walks the flow on from there (the call has ended for the engine).
    ResumeFlow { leg: LegId, exit: FlowExit },
}

/// Why a queue hands a caller back to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowExit {
    /// No agent could take it (`on_no_agents` would apply).
    NoAgent,
    /// It waited the queue's `max_wait` (`on_timeout` would apply).
    MaxWait,
}

/// Which queue exits the caller's inbound flow takes over (the flow's queue step names a
/// step for them); the queue's own exits apply to the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowExits {
    pub no_agent: bool,
    pub max_wait: bool,
}

/// What the driver must do for a recording. `leg` is the customer leg the recording taps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordingCommand {
    Start {
        id: crate::recording::RecordingId,
        leg: LegId,
        stereo: bool,
        capture: crate::recording::RecordingCapture,
        announcement: Option<String>,
    },
    /// Silence starts (`on`) or ends: silence is written for the span, so the file's timeline
    /// stays the call's.
    Silence {
        id: crate::recording::RecordingId,
        leg: LegId,
        kind: crate::recording::SpanKind,
        on: bool,
    },
    Stop {
        id: crate::recording::RecordingId,
        leg: LegId,
    },
}

/// Who a leg the engine originates belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegKind {
    /// An agent's phone, for an offer.
    Agent,
    /// A customer called back (the caller's side of the call).
    Customer,
    /// A campaign's dial to a contact.
    Campaign,
}

/// A piece of an announcement. The driver renders prompts into files or `say` phrases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "prompt", rename_all = "kebab-case")]
pub enum Prompt {
    /// "You are caller number n."
    Position { position: u32 },
    /// "Your expected wait is about m minutes" (0 = less than a minute), with the p90 for
    /// display and logs.
    ExpectedWait {
        minutes: u32,
        p50_s: u32,
        p90_s: u32,
    },
    /// A recorded file.
    File { path: String },
}

/// Something the store must keep. The core never waits for it.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Call(CallRecord),
    /// Shared with the engine's in-memory trace ring (no copy per offer).
    Decision(std::sync::Arc<DecisionTrace>),
    AgentState(AgentStateRecord),
    Interval(IntervalRecord),
    /// The switch's own record of a leg, from CHANNEL_HANGUP_COMPLETE (the driver writes it;
    /// the core never does).
    Cdr(CdrRecord),
    /// A campaign dial and what it did to its contact.
    Attempt(AttemptRecord),
    Disposition(DispositionRecord),
    CampaignState {
        campaign: CampaignId,
        state: CampaignState,
    },
    /// A call that arrived and has no final record yet: written before the call's first
    /// offer is sent (see [`Record::must_precede_action`]), replaced by its [`Record::Call`].
    /// A restart finds the calls that existed in these rows and gives each its record.
    CallOpened(CallOpen),
    /// What a campaign's pacer has learned, after it learned something (a restart restores
    /// it with [`Command::SeedPacer`]). Only the newest per campaign matters.
    PacerState {
        campaign: CampaignId,
        pacer: Box<crate::dialer::pacing::PacerSnapshot>,
    },
    /// A campaign dial about to be placed: written before its originate is sent, replaced by
    /// its [`Record::Attempt`]. The contact is marked as being dialled, so no restart can
    /// load it as never dialled.
    AttemptStarted(crate::dialer::AttemptStart),
    /// A recording about to start (written before the driver is told, replaced by its
    /// [`Record::Recording`]).
    RecordingOpened(crate::recording::RecordingOpen),
    /// A finished recording.
    Recording(Box<crate::recording::RecordingRecord>),
    /// A voicemail message about to be recorded (the driver writes it before `record` runs,
    /// so a restart finds the message's file; replaced by its [`Record::Voicemail`]).
    VoicemailOpened(crate::recording::VoicemailOpen),
    /// A voicemail message, recorded and checked (the driver writes it; the core never does).
    Voicemail(Box<crate::recording::VoicemailRecord>),
    /// An inbound caller's walk through its flow, once it is over (the driver writes it).
    Journey(Box<JourneyRecord>),
    /// A call bridged to its agent: the moment the caller was answered by a person (the
    /// `call.answered` webhook; the call's own record comes when it ends).
    CallAnswered(CallAnswer),
}

/// Where an inbound caller went in its flow: every node visited, the keys pressed and what
/// came of them, for the call detail and analytics (IVR containment, menu abandons).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JourneyRecord {
    /// The caller's leg (the call's lasting identity).
    pub leg: LegId,
    /// The flow, as the number plan names it.
    pub flow: String,
    pub dialled: String,
    pub caller_number: String,
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    /// Where the flow sent the caller (`queue:<id>`, `agent:<id>`, `voicemail:queue:<id>`,
    /// `transfer:<number>`, `play_hangup`); `None`: the caller hung up in the flow.
    pub routed: Option<String>,
    /// The journey as JSON: `{"entries": [{"node": .., "outcome": ..}], "dropped": n}`.
    pub journey: String,
}

impl Record {
    /// Whether the driver must know this record kept before it sends any originate decided
    /// after it ("write before you act": a restart must find what was under way).
    pub fn must_precede_action(&self) -> bool {
        matches!(
            self,
            Record::CallOpened(_)
                | Record::AttemptStarted(_)
                | Record::RecordingOpened(_)
                | Record::VoicemailOpened(_)
        )
    }
}

/// The row of a call under way (see [`Record::CallOpened`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CallOpen {
    pub call: CallId,
    /// The leg the caller arrived on (the call's lasting identity, its record's id).
    pub leg: LegId,
    pub queue: QueueId,
    pub caller_number: String,
    /// First arrival (a caller who comes back after a restart keeps it).
    pub arrived_unix_ms: u64,
}

/// A call connected to its agent (see [`Record::CallAnswered`]).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CallAnswer {
    /// The caller's arrival leg (the call's lasting identity, its record's id).
    pub leg: LegId,
    pub queue: QueueId,
    pub agent: AgentId,
    pub caller_number: String,
    pub answered_unix_ms: u64,
    /// Seconds in the queue before the answer (0 for a callback, which waited as a request).
    pub wait_s: f64,
    /// A callback's customer leg, when the call is a callback that was dialled.
    pub callback_leg: Option<LegId>,
}

/// A leg's CDR as FreeSWITCH reports it at CHANNEL_HANGUP_COMPLETE.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CdrRecord {
    pub leg: LegId,
    /// The flow the leg's caller walked (its tenant's, when no queue says whose it is).
    pub flow: Option<String>,
    /// The arrival leg of the call this leg served (the caller's own leg, or the call an
    /// agent or callback leg was dialled for), when the driver knows it.
    pub call_leg: Option<LegId>,
    /// The queue that call was in when this leg was dialled or hung up, when known.
    pub queue: Option<QueueId>,
    /// `inbound` or `outbound` (FreeSWITCH's Call-Direction).
    pub direction: String,
    pub caller_number: String,
    pub destination: String,
    pub hangup_cause: String,
    pub started_unix_ms: u64,
    pub answered_unix_ms: Option<u64>,
    pub ended_unix_ms: u64,
    pub billsec_ms: u64,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallOutcome {
    /// Talked to an agent.
    Answered,
    /// Hung up while waiting.
    Abandoned,
    /// Sent to voicemail.
    Voicemail,
    /// Handed back to its inbound flow by a queue exit the flow names a step for (the flow
    /// goes on: voicemail, another queue, a message).
    FlowExit,
    /// Sent to an external destination (overflow outside the engine).
    Transferred,
    /// Hung up by the engine (max wait with exit `hangup`, join refused...).
    Dropped,
    /// Left a callback request that was later connected.
    CallbackAnswered,
    /// A callback request whose customer leg failed.
    CallbackFailed,
    /// The switch lost the call (restart, or it vanished during a disconnect).
    Lost,
}

/// The final record of one call (a CDR from the call-center's point of view). Real switch CDRs
/// come from CHANNEL_HANGUP_COMPLETE; this one says what the queue did.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    pub call: CallId,
    /// The leg the caller arrived on (the call's lasting identity).
    pub leg: LegId,
    /// For a callback that was dialled: the customer leg.
    pub callback_leg: Option<LegId>,
    pub caller_number: String,
    /// Every queue the call waited in, in order.
    pub queues: Vec<QueueId>,
    pub agent: Option<AgentId>,
    pub outcome: CallOutcome,
    /// Seconds from arrival to queue join (0 for direct arrivals).
    pub arrived_unix_ms: u64,
    pub wait_s: f64,
    pub talk_s: f64,
    pub offers: u32,
    /// True when the core wrote this record without seeing the hangup (the switch lost it).
    pub synthetic: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct AgentStateRecord {
    pub agent: AgentId,
    pub at_unix_ms: u64,
    pub state: AgentStateKind,
    pub reason: Option<String>,
}

/// Where an agent's persistent line is (`AgentConfig::persistent_line`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// Called: the agent's phone is ringing.
    Ringing,
    /// Answered and parked: calls are bridged to it at once.
    Up,
    /// Gone (hung up, failed, or closed by the engine at logout).
    Down,
}

/// What supervisors and wallboards see as it happens.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    CallQueued {
        call: CallId,
        /// The call's arrival leg (its lasting identity, as in its records).
        leg: LegId,
        queue: QueueId,
        position: u32,
        /// Who is calling (`CallerInfo`'s number and name): personal data, which the API's
        /// live feed shows whole only to those who may see it.
        caller_number: String,
        caller_name: String,
    },
    CallOffered {
        call: CallId,
        agent: AgentId,
        offer: OfferId,
    },
    /// A desktop preview was reserved to an agent (after its `CallOffered`): the agent's
    /// screen shows the contact until it accepts or skips, or `expires_unix_ms` passes. A
    /// reservation that ends otherwise is followed by the call's next event (queued again,
    /// answered, ended).
    PreviewReserved {
        call: CallId,
        agent: AgentId,
        campaign: CampaignId,
        contact: ContactId,
        number: String,
        expires_unix_ms: u64,
    },
    /// A campaign's person joined the campaign's queue (after its `CallQueued`): the contact
    /// the call is with, for the agent's screen.
    CampaignCall {
        call: CallId,
        campaign: CampaignId,
        contact: ContactId,
        number: String,
    },
    /// A desktop preview's reservation ended without a call: the agent skipped it
    /// (`skipped`) or let it time out (`timeout`). The call waits for the next agent.
    PreviewEnded {
        call: CallId,
        agent: AgentId,
        reason: &'static str,
    },
    CallAnswered {
        call: CallId,
        agent: AgentId,
        queue: QueueId,
        wait_s: f64,
    },
    CallEnded {
        call: CallId,
        outcome: CallOutcome,
    },
    /// An agent answered but the call could not be bridged to it; the call went back in line
    /// (or, for a campaign person past the allowance, got the abandon treatment).
    CallBridgeFailed {
        call: CallId,
        agent: AgentId,
        reason: BridgeFailure,
    },
    /// A call's recording changed: `recording` (audio captured), `paused`, `masked`, or
    /// `stopped` (by request; a recording that ends with the call needs no event).
    CallRecording {
        call: CallId,
        state: &'static str,
    },
    CallMoved {
        call: CallId,
        from: QueueId,
        to: QueueId,
    },
    AgentState {
        agent: AgentId,
        state: AgentStateKind,
        reason: Option<String>,
    },
    QueuePaused {
        queue: QueueId,
        paused: bool,
    },
    /// An agent's persistent line changed: an agent shown available is ready for calls only
    /// once the line is up.
    AgentLine {
        agent: AgentId,
        line: LineState,
    },
    /// A campaign's counters after a dial ended or its state changed.
    Campaign(CampaignStats),
    /// A progressive campaign changed how it dials: `agent-first` (agents rung before the
    /// customer, with `brake` saying why) or back to `customer-first`.
    CampaignPacing {
        campaign: CampaignId,
        pacing: &'static str,
        brake: Option<crate::dialer::connect::Brake>,
    },
}

/// Why a bridge did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeFailure {
    /// FreeSWITCH refused `uuid_bridge`, or a leg's originate failed under it.
    Refused,
    /// No CHANNEL_BRIDGE within the engine's `bridge_timeout` (or a campaign person's
    /// `connect_within`).
    Timeout,
    /// The agent's leg (or a callback's customer) hung up before the bridge.
    LegGone,
}

/// What the core asks of its driver, drained with `poll_output` after every input.
#[derive(Clone, Debug)]
pub enum Output {
    Switch(SwitchCommand),
    Persist(Record),
    Notify(LiveEvent),
    /// Nothing more to do until this time; feed `Input::Timeout` then (or sooner, with any
    /// other input).
    Timeout(Instant),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_id_round_trips_the_hyphenated_uuid() {
        let text = "0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b";
        let leg = LegId::parse(text).expect("a uuid");
        assert_eq!(leg.to_string(), text);
        assert_eq!(LegId::parse("not-a-uuid"), None);
        assert_eq!(LegId::parse("0b4e4b9c"), None);
    }
}
