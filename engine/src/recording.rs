//! Call recording: what a queue or campaign asks for, what the engine tells the driver, and the
//! record a finished recording leaves.
//!
//! The engine decides *whether* and *when*; the driver decides *how* (recorder legs to
//! switchyard's own SIP endpoint, or FreeSWITCH's `uuid_record`) and reports how it went:
//!
//! ```text
//!   call Talking (CHANNEL_BRIDGE) ─ policy always / always-forced, sampled in ──┐
//!   API start (on-demand, always) ──────────────────────────────────────────────┤
//!                                                        RecordingOpened (written first)
//!                                                        RecordingCommand::Start{leg}
//!   API pause / mask ─► Silence{on: true}   ... resume / unmask ─► Silence{on: false}
//!   API stop ─► Stop                 the recorded leg hangs up ─► (the driver sees it)
//!   SwitchEvent::RecordingEnded{outcome} ─► Record::Recording (spans, figures, error)
//! ```
//!
//! A recording taps the customer's leg, not the agent's, so it outlives agent changes: a call
//! bridged to a second agent (a failed bridge, a transfer back to the queue, an overflow) stays
//! in one recording. A callback dials the customer on a new leg, which gets a recording of its
//! own under the same call.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::ids::{AgentId, CallId, QueueId};
use crate::io::LegId;

/// A recording's lasting identity (a UUID: it names the file and the recorder legs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RecordingId(pub u128);

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&LegId(self.0), f)
    }
}

impl fmt::Debug for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rec-{self}")
    }
}

impl Serialize for RecordingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// When calls are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingMode {
    /// Never, not even on request.
    #[default]
    Never,
    /// Only when asked through the API (by the agent on the call or a supervisor).
    OnDemand,
    /// Every (sampled) call from the moment it is bridged; may be paused, and stopped by a
    /// supervisor.
    Always,
    /// Every (sampled) call; agents can neither pause nor stop it (a supervisor may still
    /// silence a card number).
    AlwaysForced,
}

impl RecordingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMode::Never => "never",
            RecordingMode::OnDemand => "on-demand",
            RecordingMode::Always => "always",
            RecordingMode::AlwaysForced => "always-forced",
        }
    }
}

/// Where the audio is captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingCapture {
    /// Recorder legs from FreeSWITCH to switchyard's own endpoint (`&eavesdrop`): the audio
    /// arrives live, and a switch host needs no disk.
    #[default]
    Live,
    /// FreeSWITCH writes the file itself (`uuid_record`); switchyard ingests it after the call.
    Switch,
    /// mod_oreka forks the customer's leg to switchyard's endpoint (`oreka_record`): live
    /// audio with no extra channels, where operators load mod_oreka. Nodes without it record
    /// live with recorder legs instead.
    Oreka,
}

impl RecordingCapture {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingCapture::Live => "live",
            RecordingCapture::Switch => "switch",
            RecordingCapture::Oreka => "oreka",
        }
    }
}

/// A queue's or campaign's recording policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingPolicy {
    pub mode: RecordingMode,
    /// Share of calls recorded by `always` / `always-forced`, 0-100, drawn once per call when
    /// it arrives (so a call that moves between queues keeps its draw).
    pub sample_percent: u8,
    /// Caller left, agent right; `false` mixes both into one channel.
    pub stereo: bool,
    pub capture: RecordingCapture,
    /// Played to both sides as the recording starts ("this call is recorded").
    pub announcement: Option<String>,
}

impl Default for RecordingPolicy {
    fn default() -> Self {
        RecordingPolicy {
            mode: RecordingMode::Never,
            sample_percent: 100,
            stereo: true,
            capture: RecordingCapture::Live,
            announcement: None,
        }
    }
}

impl RecordingPolicy {
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.sample_percent > 100 {
            return Err(EngineError::InvalidConfig {
                field: "recording.sample_percent",
                message: format!("{} is above 100", self.sample_percent),
            });
        }
        Ok(())
    }

    /// Whether a call whose draw (0-99) is `draw` is recorded from its bridge on.
    pub fn records_from_bridge(&self, draw: u8) -> bool {
        matches!(
            self.mode,
            RecordingMode::Always | RecordingMode::AlwaysForced
        ) && draw < self.sample_percent
    }
}

/// A call's sampling draw, 0-99, from its arrival leg's UUID: uniform (UUIDs are random, and
/// the bits are mixed), the same for the same call in every run and after a restart, and it
/// takes nothing from the engine's seeded RNG, whose sequence routing and dialling rely on.
pub fn draw(leg: LegId) -> u8 {
    // splitmix64's finaliser over both halves.
    let mut x = (leg.0 as u64) ^ ((leg.0 >> 64) as u64).rotate_left(29);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % 100) as u8
}

/// What the API asks of a call's recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingAction {
    Start,
    Stop,
    /// Silence from now on (a private moment); the span is kept in the recording's log.
    Pause,
    Resume,
    /// Silence while a card number is read (PCI DSS); logged like a pause.
    Mask,
    Unmask,
}

impl RecordingAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingAction::Start => "start",
            RecordingAction::Stop => "stop",
            RecordingAction::Pause => "pause",
            RecordingAction::Resume => "resume",
            RecordingAction::Mask => "mask",
            RecordingAction::Unmask => "unmask",
        }
    }
}

/// Who asked: written into the span log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// How the API names the principal (a key's id and role), for the log.
    pub name: String,
    /// Set when the principal is an agent's own key: agents may only act on their own call,
    /// and never silence an `always-forced` recording.
    pub agent: Option<AgentId>,
}

/// Why a stretch of a recording is silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanKind {
    Paused,
    Masked,
}

/// A silent stretch, by offset from the recording's start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingSpan {
    pub kind: SpanKind,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Who silenced it.
    pub by: String,
    /// Who ended it (empty when the recording ended first).
    pub ended_by: String,
}

/// What a recorded file measured (`switchyard_media::ingest`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AudioFigures {
    pub duration_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
    pub bytes: u64,
    /// Share of 20 ms windows below the silence threshold, whole file.
    pub silence_ratio: f64,
    /// Per channel, the loudest sample in dBFS (`None`: the channel is all zeros).
    pub peak_dbfs: Vec<Option<f64>>,
    /// Per channel, the share of 20 ms windows below the silence threshold.
    pub channel_silence: Vec<f64>,
    /// Per channel, (min, max) per bucket of `frames_per_peak` frames (full scale -1..=1),
    /// for drawing a waveform.
    pub peaks: Vec<Vec<(f32, f32)>>,
    pub frames_per_peak: u64,
}

/// How the driver's capture went ([`crate::SwitchEvent::RecordingEnded`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingOutcome {
    pub id: RecordingId,
    /// The path actually used (`live` can fall back to `switch`).
    pub capture: RecordingCapture,
    /// The live capture failed (recorder legs refused or not reachable) and the switch
    /// recorded instead.
    pub fell_back: bool,
    pub path: String,
    /// What the file measured, also for a damaged file when part of it decoded.
    pub figures: Option<AudioFigures>,
    /// Why the recording is not whole (no file, a truncated file, not audio...).
    pub error: Option<String>,
}

/// How a recording ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingStatus {
    Completed,
    /// Some audio, but the file is not whole (its error says why); kept for inspection.
    Damaged,
    /// No usable audio.
    Failed,
}

impl RecordingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Completed => "completed",
            RecordingStatus::Damaged => "damaged",
            RecordingStatus::Failed => "failed",
        }
    }
}

/// A recording about to start: written before the driver is told, so a restart knows a file
/// may exist for this call.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordingOpen {
    pub id: RecordingId,
    pub call: CallId,
    /// The call's arrival leg (its record's id).
    pub call_leg: LegId,
    /// The leg recorded (the customer's; a callback's customer leg).
    pub leg: LegId,
    pub queue: QueueId,
    /// The campaign whose dial the call is (retention and search by campaign).
    pub campaign: Option<crate::ids::CampaignId>,
    pub started_unix_ms: u64,
}

/// A finished recording.
#[derive(Clone, Debug, Serialize)]
pub struct RecordingRecord {
    pub id: RecordingId,
    pub call: CallId,
    pub call_leg: LegId,
    pub leg: LegId,
    pub queue: QueueId,
    /// The campaign whose dial the call is.
    pub campaign: Option<crate::ids::CampaignId>,
    /// Every agent heard in it, in order.
    pub agents: Vec<AgentId>,
    pub caller_number: String,
    pub mode: RecordingMode,
    pub capture: RecordingCapture,
    pub fell_back: bool,
    pub stereo: bool,
    pub path: String,
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    pub spans: Vec<RecordingSpan>,
    pub status: RecordingStatus,
    pub figures: Option<AudioFigures>,
    pub error: Option<String>,
}

/// A voicemail message about to be recorded ([`crate::io::Record::VoicemailOpened`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VoicemailOpen {
    /// The message's id: it names the file as a recording's does.
    pub id: RecordingId,
    /// The caller's leg (the call's lasting identity).
    pub leg: LegId,
    pub mailbox: crate::config::Mailbox,
    pub caller_number: String,
    pub started_unix_ms: u64,
}

/// A voicemail message, recorded ([`crate::io::Record::Voicemail`]).
#[derive(Clone, Debug, Serialize)]
pub struct VoicemailRecord {
    pub id: RecordingId,
    pub leg: LegId,
    pub mailbox: crate::config::Mailbox,
    pub caller_number: String,
    /// Where the file was read (empty when there is none).
    pub path: String,
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    /// `completed` with the message; `failed` when nothing was left (the caller hung up
    /// before the tone, or said nothing) or the file could not be read.
    pub status: RecordingStatus,
    pub figures: Option<AudioFigures>,
    pub error: Option<String>,
}
