//! Recordings: the engine's side (see [`crate::recording`] for the whole picture).
//!
//! ```text
//!   Talking ── policy records from the bridge, not yet recording ──► start
//!   Talking ── already recording this leg (a second agent) ────────► agent added, nothing sent
//!   API start/stop/pause/resume/mask/unmask ─► checked (policy, who asks, state) ─► command
//!   the recorded leg hangs up (or is gone at a resync), or stop ─► ended: wait for the
//!        driver's RecordingEnded, at most `recording_report_within`. A call that ends while
//!        its leg lives on (an exit to voicemail) leaves the recording running with the leg.
//!   RecordingEnded, or that deadline ─► Record::Recording, forgotten
//! ```
//!
//! Span offsets are engine time from the moment the engine asked for the recording; the
//! file starts when the switch has set the capture up (tens of milliseconds later), so a
//! span in the log may begin that much before the silence in the file does.

use std::time::Instant;

use crate::error::EngineError;
use crate::ids::{AgentId, CallId, QueueId};
use crate::io::{LegId, LiveEvent, Record, RecordingCommand, SwitchCommand};
use crate::recording::{
    RecordingAction, RecordingCapture, RecordingId, RecordingMode, RecordingOpen, RecordingOutcome,
    RecordingPolicy, RecordingRecord, RecordingSpan, RecordingStatus, Requester, SpanKind,
};
use crate::timers::TimerKey;

use super::Engine;

/// A recording the engine asked for and has no record of yet.
#[derive(Clone, Debug)]
pub(crate) struct ActiveRecording {
    call: CallId,
    call_leg: LegId,
    leg: LegId,
    queue: QueueId,
    campaign: Option<crate::ids::CampaignId>,
    agents: Vec<AgentId>,
    caller_number: String,
    mode: RecordingMode,
    capture: RecordingCapture,
    stereo: bool,
    started: Instant,
    /// The silent span under way: its kind, start and who asked.
    silence: Option<(SpanKind, Instant, String)>,
    spans: Vec<RecordingSpan>,
    /// When the recorded leg left or the recording was stopped; the report deadline runs
    /// from here.
    ended: Option<Instant>,
}

/// Most spans kept per recording: a runaway client toggling pause cannot grow a record
/// without bound. Past it, requests to silence are refused.
const MAX_SPANS: usize = 1000;

impl Engine {
    /// The policy that applies to a call's current leg with `agent` on it: the campaign's for
    /// a campaign call, else its queue's; an agent's own mode replaces the mode.
    fn recording_policy(&self, c: CallId, agent: Option<AgentId>) -> RecordingPolicy {
        let Some(call) = self.calls.get(&c) else {
            return RecordingPolicy::default();
        };
        let mut policy = match &call.campaign {
            Some(info) => self
                .campaigns
                .get(&info.campaign)
                .map(|k| k.cfg.recording.clone())
                .unwrap_or_default(),
            None => self
                .queue(call.queue)
                .map(|q| q.cfg.recording.clone())
                .unwrap_or_default(),
        };
        if let Some(mode) = agent
            .and_then(|a| self.agent(a))
            .and_then(|a| a.cfg.recording)
        {
            policy.mode = mode;
        }
        policy
    }

    /// The call's legs were just bridged to `agent`: starts its recording when the policy
    /// says so, or notes the agent in the recording already running on this leg.
    pub(crate) fn record_on_talking(&mut self, c: CallId, agent: AgentId) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let (leg, draw) = (call.leg, call.record_draw);
        if let Some(id) = call.recording
            && let Some(active) = self.recordings.get_mut(&id)
            && active.leg == leg
        {
            if active.agents.last() != Some(&agent) {
                active.agents.push(agent);
            }
            return;
        }
        let policy = self.recording_policy(c, Some(agent));
        if policy.records_from_bridge(draw) {
            self.start_recording(c, agent, &policy);
        }
    }

    fn start_recording(&mut self, c: CallId, agent: AgentId, policy: &RecordingPolicy) {
        let now = self.now;
        let id = RecordingId(self.rng.u128(..));
        let started_unix_ms = self.unix_ms(now);
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        call.recording = Some(id);
        let active = ActiveRecording {
            call: c,
            call_leg: call.origin_leg,
            leg: call.leg,
            queue: call.queue,
            campaign: call.campaign.as_ref().map(|c| c.campaign),
            agents: vec![agent],
            caller_number: call.caller.number.clone(),
            mode: policy.mode,
            capture: policy.capture,
            stereo: policy.stereo,
            started: now,
            silence: None,
            spans: Vec::new(),
            ended: None,
        };
        let (leg, call_leg, queue, campaign) =
            (active.leg, active.call_leg, active.queue, active.campaign);
        self.recordings.insert(id, active);
        self.recorded_legs.insert(leg, id);
        self.persist(Record::RecordingOpened(RecordingOpen {
            id,
            call: c,
            call_leg,
            leg,
            queue,
            campaign,
            started_unix_ms,
        }));
        self.switch(SwitchCommand::Recording(RecordingCommand::Start {
            id,
            leg,
            stereo: policy.stereo,
            capture: policy.capture,
            announcement: policy.announcement.clone(),
        }));
        self.notify(LiveEvent::CallRecording {
            call: c,
            state: "recording",
        });
    }

    /// The API's verb on a call's recording.
    pub(crate) fn on_record_command(
        &mut self,
        c: CallId,
        action: RecordingAction,
        by: Requester,
    ) -> Result<(), EngineError> {
        let refuse = |why: &'static str| EngineError::Recording {
            call: c,
            action: action.as_str(),
            why,
        };
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        let on_call = call.agent();
        if let Some(a) = by.agent
            && on_call != Some(a)
        {
            return Err(refuse("the call is not this agent's"));
        }
        let running = call
            .recording
            .filter(|id| self.recordings.get(id).is_some_and(|r| r.ended.is_none()));
        if action == RecordingAction::Start {
            let Some(agent) = on_call.filter(|_| {
                matches!(call.phase, crate::call::Phase::Talking { .. }) && call.caller_present
            }) else {
                return Err(refuse("the call is not connected to an agent"));
            };
            if running.is_some() {
                return Err(refuse("the call is already being recorded"));
            }
            let policy = self.recording_policy(c, Some(agent));
            if policy.mode == RecordingMode::Never {
                return Err(refuse("the recording policy is never"));
            }
            self.start_recording(c, agent, &policy);
            return Ok(());
        }
        let id = running.ok_or_else(|| refuse("the call is not being recorded"))?;
        let now = self.now;
        let Some(active) = self.recordings.get_mut(&id) else {
            return Err(refuse("the call is not being recorded"));
        };
        let agent_asks = by.agent.is_some();
        let (kind, on) = match action {
            RecordingAction::Start => return Err(refuse("the call is already being recorded")),
            RecordingAction::Stop => {
                match active.mode {
                    RecordingMode::AlwaysForced => {
                        return Err(refuse("an always-forced recording cannot be stopped"));
                    }
                    RecordingMode::Always if agent_asks => {
                        return Err(refuse("agents cannot stop an always recording"));
                    }
                    _ => {}
                }
                let leg = active.leg;
                self.switch(SwitchCommand::Recording(RecordingCommand::Stop { id, leg }));
                self.recording_ended(id, &by.name);
                if let Some(call) = self.calls.get_mut(&c) {
                    call.recording = None;
                }
                self.notify(LiveEvent::CallRecording {
                    call: c,
                    state: "stopped",
                });
                return Ok(());
            }
            RecordingAction::Pause => (SpanKind::Paused, true),
            RecordingAction::Mask => (SpanKind::Masked, true),
            RecordingAction::Resume => (SpanKind::Paused, false),
            RecordingAction::Unmask => (SpanKind::Masked, false),
        };
        if on {
            // Masking a card number is the agent's duty (PCI DSS) even when the recording is
            // forced; pausing is not theirs to choose then.
            if kind == SpanKind::Paused && agent_asks && active.mode == RecordingMode::AlwaysForced
            {
                return Err(refuse("agents cannot pause an always-forced recording"));
            }
            if let Some((k, ..)) = active.silence {
                return Err(refuse(match k {
                    SpanKind::Paused => "the recording is already paused",
                    SpanKind::Masked => "the recording is already masked",
                }));
            }
            if active.spans.len() >= MAX_SPANS {
                return Err(refuse("the recording has too many silent spans"));
            }
            active.silence = Some((kind, now, by.name));
        } else {
            match &active.silence {
                Some((k, ..)) if *k == kind => {}
                _ => {
                    return Err(refuse(match kind {
                        SpanKind::Paused => "the recording is not paused",
                        SpanKind::Masked => "the recording is not masked",
                    }));
                }
            }
            close_span(active, now, &by.name);
        }
        let leg = active.leg;
        self.switch(SwitchCommand::Recording(RecordingCommand::Silence {
            id,
            leg,
            kind,
            on,
        }));
        let state = match (on, kind) {
            (false, _) => "recording",
            (true, SpanKind::Paused) => "paused",
            (true, SpanKind::Masked) => "masked",
        };
        self.notify(LiveEvent::CallRecording { call: c, state });
        Ok(())
    }

    /// The call no longer owns its leg (it ended, or its caller left for a callback): the
    /// recording stays with the leg, which ends it when it hangs up.
    pub(crate) fn recording_detached(&mut self, c: CallId) {
        if let Some(call) = self.calls.get_mut(&c) {
            call.recording = None;
        }
    }

    /// A leg hung up: the recording tapping it has ended.
    pub(crate) fn recorded_leg_gone(&mut self, leg: LegId) {
        if let Some(id) = self.recorded_legs.get(&leg).copied() {
            self.recording_ended(id, "");
        }
    }

    /// After a reconnection: recordings whose legs the switch no longer has have ended.
    pub(crate) fn recordings_resynced(&mut self, live: &crate::hash::FastSet<LegId>) {
        let mut gone: Vec<(LegId, RecordingId)> = self
            .recorded_legs
            .iter()
            .filter(|(leg, _)| !live.contains(*leg))
            .map(|(l, id)| (*l, *id))
            .collect();
        gone.sort_unstable();
        for (_, id) in gone {
            self.recording_ended(id, "");
        }
    }

    /// Closes a silent span still open and starts waiting for the driver's report.
    fn recording_ended(&mut self, id: RecordingId, by: &str) {
        let now = self.now;
        let Some(active) = self.recordings.get_mut(&id) else {
            return;
        };
        if active.ended.is_some() {
            return;
        }
        close_span(active, now, by);
        active.ended = Some(now);
        let leg = active.leg;
        if self.recorded_legs.get(&leg) == Some(&id) {
            self.recorded_legs.remove(&leg);
        }
        self.timers.arm(
            now + self.cfg.recording_report_within,
            TimerKey::RecordingReport(id),
        );
    }

    pub(crate) fn on_recording_ended(&mut self, outcome: RecordingOutcome) {
        let id = outcome.id;
        if !self.recordings.contains_key(&id) {
            // Not ours (a recording from before a restart): its open row is closed at boot.
            return;
        }
        self.recording_ended(id, "");
        self.finish_recording(id, Some(outcome));
    }

    pub(crate) fn on_recording_report_deadline(&mut self, id: RecordingId) {
        let due = self
            .recordings
            .get(&id)
            .and_then(|r| r.ended)
            .is_some_and(|t| t + self.cfg.recording_report_within <= self.now);
        if due {
            self.finish_recording(id, None);
        }
    }

    fn finish_recording(&mut self, id: RecordingId, outcome: Option<RecordingOutcome>) {
        let Some(active) = self.recordings.remove(&id) else {
            return;
        };
        let ended = active.ended.unwrap_or(self.now);
        self.timers.cancel(
            ended + self.cfg.recording_report_within,
            TimerKey::RecordingReport(id),
        );
        if let Some(call) = self.calls.get_mut(&active.call)
            && call.recording == Some(id)
        {
            call.recording = None;
        }
        let outcome = outcome.unwrap_or_else(|| RecordingOutcome {
            id,
            capture: active.capture,
            fell_back: false,
            path: String::new(),
            figures: None,
            error: Some("the capture never reported its end".into()),
        });
        let status = match (&outcome.figures, &outcome.error) {
            (Some(_), None) => RecordingStatus::Completed,
            (Some(_), Some(_)) => RecordingStatus::Damaged,
            (None, _) => RecordingStatus::Failed,
        };
        let record = RecordingRecord {
            id,
            call: active.call,
            call_leg: active.call_leg,
            leg: active.leg,
            queue: active.queue,
            campaign: active.campaign,
            agents: active.agents,
            caller_number: active.caller_number,
            mode: active.mode,
            capture: outcome.capture,
            fell_back: outcome.fell_back,
            stereo: active.stereo,
            path: outcome.path,
            started_unix_ms: self.unix_ms(active.started),
            ended_unix_ms: self.unix_ms(ended),
            spans: active.spans,
            status,
            figures: outcome.figures,
            error: outcome
                .error
                .or_else(|| (status == RecordingStatus::Failed).then(|| "no audio".into())),
        };
        self.persist(Record::Recording(Box::new(record)));
    }

    /// Recordings the engine is waiting on (running, or ended and not yet reported).
    pub fn recordings_open(&self) -> usize {
        self.recordings.len()
    }
}

fn close_span(active: &mut ActiveRecording, now: Instant, by: &str) {
    if let Some((kind, since, asked)) = active.silence.take() {
        let offset = |t: Instant| t.saturating_duration_since(active.started).as_millis() as u64;
        active.spans.push(RecordingSpan {
            kind,
            start_ms: offset(since),
            end_ms: offset(now),
            by: asked,
            ended_by: by.to_owned(),
        });
    }
}
