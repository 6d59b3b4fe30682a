//! Recording capture: the engine's [`RecordingCommand`]s become recorder legs or `uuid_record`,
//! and what the switch and the media side report becomes [`SwitchEvent::RecordingEnded`].
//!
//! ```text
//!   Start with an announcement ─► uuid_broadcast C <announcement> both; the capture below
//!        begins at C's CHANNEL_EXECUTE_COMPLETE of that playback (-ERR, or no end within
//!        prompt_timeout: at once; C hung up meanwhile: ended, nothing recorded)
//!   Start(live, endpoint configured) ─► Media Expect ─► Ready ─► two recorder legs
//!        │                                  │                    (originate .. &eavesdrop(C))
//!        │                                  └► Refused ─┐           │ job -ERR / not answered
//!        │                                              ▼           ▼
//!   Start(switch) ────────────────────────► uuid_setvar RECORD_STEREO, uuid_record C start P
//!                                                      │ -ERR ─► ended, error
//!   live legs end (the customer hung up: BYE) ─► Media Finished ─► RecordingEnded(live)
//!   RECORD_STOP (Unique-ID C, Record-File-Path P) ─► Media Ingest ─► Ingested ─► RecordingEnded
//!   Silence ─► live: Media Silence (silence written) · switch: uuid_record mask / unmask
//!   Stop ─► live: the recorder legs killed (BYE ─► Finished) · switch: uuid_record stop
//!
//!   Start(oreka, node has mod_oreka) ─► Media ExpectFork ─► Ready ─► uuid_broadcast C
//!        oreka_record:: aleg ─► mod_oreka's INVITEs ... its BYEs (C hung up, or Stop:
//!        uuid_broadcast C oreka_record::stop aleg) ─► Media Finished ─► RecordingEnded(oreka)
//!        -ERR or Refused ─► the switch records, as for recorder legs
//! ```
//!
//! mod_oreka is asked for only on nodes that said `module_exists mod_oreka` is true at
//! connect: FreeSWITCH hangs up a channel told to run an application it does not have
//! (switch_core_session.c, "Invalid Application"), so guessing would drop the customer.
//!
//! A fallback keeps the recording's id and silent state; its record says `fell_back`. The
//! recorder legs tap the customer's leg, so they outlive agent changes; they end when it ends
//! (FreeSWITCH sends BYE about 23 ms after the tapped leg hangs up, esl-captures
//! `eavesdrop-recorder-leg`).

use std::collections::HashMap;
use std::path::PathBuf;

use tracing::{debug, warn};

use crate::io::{LegId, RecordingCommand, SwitchEvent};
use crate::recording::{AudioFigures, RecordingCapture, RecordingId, RecordingOutcome, SpanKind};

use super::super::commands::{self, EslRequest, Tracking};
use super::super::media::{MediaReport, MediaRequest, recorder_user};
use super::timers::Chore;
use super::{Answer, CoreOutput, DriverCore, Reply, bump};

/// How long an announcement may play before the recording starts anyway, when the core has
/// no prompt timeout of its own.
const ANNOUNCEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The captures under way and the recorder legs that feed them.
#[derive(Debug, Default)]
pub(super) struct Captures {
    map: HashMap<RecordingId, Capture>,
    /// Recorder leg -> its recording (the stray sweep's "explained", hangups).
    recorders: HashMap<LegId, RecordingId>,
}

#[derive(Debug)]
struct Capture {
    /// The customer's leg the recording taps.
    leg: LegId,
    node: usize,
    stereo: bool,
    /// The way the policy asked for (what it falls back from).
    capture: RecordingCapture,
    way: Way,
    fell_back: bool,
    silenced: bool,
    /// The engine asked to stop it.
    stopped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Way {
    /// The announcement (`path`) plays to both sides; the capture begins once it ended.
    Announcing {
        path: String,
    },
    /// The endpoint was asked to expect the legs; they are dialled at its `Ready`.
    Expecting,
    /// The endpoint was asked to take mod_oreka's fork; `oreka_record` runs at its `Ready`.
    ExpectingFork,
    /// `oreka_record` runs on the customer's leg.
    Fork,
    Live {
        legs: [LegId; 2],
    },
    /// `uuid_record` with this path (as the switch sees it).
    Switch {
        path: String,
    },
    /// RECORD_STOP came; the file is being checked.
    Ingesting,
}

impl Captures {
    pub(super) fn explains(&self, leg: LegId) -> bool {
        self.recorders.contains_key(&leg)
    }
}

impl DriverCore {
    pub(super) fn on_recording_command(&mut self, cmd: RecordingCommand) {
        match cmd {
            RecordingCommand::Start {
                id,
                leg,
                stereo,
                capture,
                announcement,
            } => self.start_capture(id, leg, stereo, capture, announcement),
            RecordingCommand::Silence { id, on, kind, .. } => self.silence_capture(id, on, kind),
            RecordingCommand::Stop { id, .. } => self.stop_capture(id),
        }
    }

    fn start_capture(
        &mut self,
        id: RecordingId,
        leg: LegId,
        stereo: bool,
        capture: RecordingCapture,
        announcement: Option<String>,
    ) {
        if self.captures.map.contains_key(&id) {
            return;
        }
        let node = self.leg_node(leg);
        bump(&self.counters.recordings_started);
        let announce = announcement.and_then(|path| match commands::announce_both(leg, &path) {
            Ok(req) => Some((path, req)),
            Err(e) => {
                warn!(error = %e, %id, "recording announcement not played");
                None
            }
        });
        self.captures.map.insert(
            id,
            Capture {
                leg,
                node,
                stereo,
                capture,
                way: Way::Expecting,
                fell_back: false,
                silenced: false,
                stopped: false,
            },
        );
        let Some((path, req)) = announce else {
            return self.begin_capture(id);
        };
        // The announcement first, the recording once it has played: its end is the
        // customer leg's CHANNEL_EXECUTE_COMPLETE of the playback (however it ended), or the
        // deadline if that event is lost.
        if let Some(c) = self.captures.map.get_mut(&id) {
            c.way = Way::Announcing { path };
        }
        self.ask_capture(node, vec![req], Tracking::Announcement(id));
        let after = if self.cfg.prompt_timeout.is_zero() {
            ANNOUNCEMENT_TIMEOUT
        } else {
            self.cfg.prompt_timeout
        };
        self.later(after, Chore::AnnouncementOverdue { id });
    }

    /// The capture itself: mod_oreka's fork, recorder legs, or the switch's own recording.
    fn begin_capture(&mut self, id: RecordingId) {
        let Some(c) = self.captures.map.get(&id) else {
            return;
        };
        let (leg, node, stereo, capture, silenced) =
            (c.leg, c.node, c.stereo, c.capture, c.silenced);
        if c.stopped {
            return self.capture_ended(
                id,
                capture,
                PathBuf::new(),
                None,
                Some("stopped during the announcement, before recording began".into()),
            );
        }
        let endpoint = self.cfg.recording.endpoint.is_some();
        let fork = capture == RecordingCapture::Oreka
            && endpoint
            && self.cfg.recording.oreka
            && self.nodes[node].oreka == Some(true);
        let live = capture != RecordingCapture::Switch
            && !fork
            && self.cfg.recording.recorder_dial.is_some();
        if let Some(c) = self.captures.map.get_mut(&id) {
            c.way = if fork {
                Way::ExpectingFork
            } else {
                Way::Expecting
            };
        }
        let path = self.cfg.recording.live_dir.join(file_name(id));
        if fork {
            self.out
                .push_back(CoreOutput::Media(MediaRequest::ExpectFork {
                    id,
                    path,
                    stereo,
                    channel: leg.to_string(),
                    wait: self.cfg.recording.recorder_timeout,
                }));
        } else if live {
            self.out.push_back(CoreOutput::Media(MediaRequest::Expect {
                id,
                path,
                stereo,
                caller_user: recorder_user(id, 'a'),
                agent_user: recorder_user(id, 'b'),
            }));
        } else {
            return self.start_switch_capture(id);
        }
        if silenced {
            // Paused or masked during the announcement.
            self.out
                .push_back(CoreOutput::Media(MediaRequest::Silence { id, on: true }));
        }
    }

    /// A playback on `leg` completed: the announcement of a recording waiting for it, if it
    /// is that one. A customer who hung up during it is not recorded.
    pub(super) fn announcement_played(&mut self, leg: LegId, data: &str, hung_up: bool) {
        let found = self.captures.map.iter().find_map(|(id, c)| match &c.way {
            Way::Announcing { path } if c.leg == leg && path == data => Some(*id),
            _ => None,
        });
        let Some(id) = found else {
            return;
        };
        if hung_up {
            let capture = self.captures.map.get(&id).map(|c| c.capture);
            return self.capture_ended(
                id,
                capture.unwrap_or_default(),
                PathBuf::new(),
                None,
                Some("the customer hung up during the announcement".into()),
            );
        }
        self.begin_capture(id);
    }

    /// The announcement's end was never reported (or its broadcast was refused): record
    /// anyway rather than lose the call.
    pub(super) fn announcement_overdue(&mut self, id: RecordingId, why: &str) {
        if self
            .captures
            .map
            .get(&id)
            .is_some_and(|c| matches!(c.way, Way::Announcing { .. }))
        {
            warn!(recording = %id, reason = %why, "recording announcement not confirmed; recording anyway");
            self.begin_capture(id);
        }
    }

    /// The media side's word on a recording.
    pub fn media_report(&mut self, now: std::time::Instant, report: MediaReport) {
        self.at(now);
        match report {
            MediaReport::Ready { id } => self.dial_recorders(id),
            MediaReport::Refused { id, error } => self.live_failed(id, &error),
            MediaReport::Finished {
                id,
                path,
                figures,
                error,
            } => {
                let way = self.captures.map.get(&id).map(|c| c.way.clone());
                match way {
                    Some(Way::Live { .. }) => {
                        self.capture_ended(id, RecordingCapture::Live, path, figures, error)
                    }
                    Some(Way::Fork) => {
                        self.capture_ended(id, RecordingCapture::Oreka, path, figures, error)
                    }
                    _ => {}
                }
            }
            MediaReport::Ingested {
                id,
                path,
                figures,
                error,
            } if self.is_message(id) => {
                self.voicemail_ingested(id, path, figures, error);
            }
            MediaReport::Ingested {
                id,
                path,
                figures,
                error,
            } => {
                if self
                    .captures
                    .map
                    .get(&id)
                    .is_some_and(|c| c.way == Way::Ingesting)
                {
                    self.capture_ended(id, RecordingCapture::Switch, path, figures, error);
                }
            }
        }
        self.settle();
    }

    fn dial_recorders(&mut self, id: RecordingId) {
        let Some(c) = self.captures.map.get(&id) else {
            // Abandoned before the endpoint answered.
            self.out
                .push_back(CoreOutput::Media(MediaRequest::Abandon { id }));
            return;
        };
        if c.way == Way::ExpectingFork {
            return self.run_fork(id);
        }
        if c.way != Way::Expecting {
            return;
        }
        if c.stopped {
            self.out
                .push_back(CoreOutput::Media(MediaRequest::Abandon { id }));
            self.capture_ended(
                id,
                RecordingCapture::Live,
                PathBuf::new(),
                None,
                Some("stopped before the recorder legs were dialled".into()),
            );
            return;
        }
        let (leg, node) = (c.leg, c.node);
        let Some(dial) = self.cfg.recording.recorder_dial.clone() else {
            return self.live_failed(id, "no recorder endpoint configured");
        };
        let legs = recorder_legs(id);
        let timeout = self.cfg.recording.recorder_timeout;
        let mut lines = Vec::new();
        for (i, recorder) in legs.iter().enumerate() {
            let side = if i == 0 { 'a' } else { 'b' };
            match commands::recorder_originate(
                *recorder,
                id,
                leg,
                i == 0,
                &dial,
                &recorder_user(id, side),
                timeout,
            ) {
                Ok(line) => lines.push(line),
                Err(e) => return self.live_failed(id, &e.to_string()),
            }
        }
        if let Some(c) = self.captures.map.get_mut(&id) {
            c.way = Way::Live { legs };
        }
        for (recorder, line) in legs.into_iter().zip(lines) {
            self.captures.recorders.insert(recorder, id);
            self.set_home(recorder, node);
            self.ask_capture(node, vec![EslRequest::BgApi(line)], Tracking::Recorder(id));
        }
    }

    /// The endpoint expects mod_oreka's fork: run `oreka_record` on the customer's leg.
    fn run_fork(&mut self, id: RecordingId) {
        let Some(c) = self.captures.map.get_mut(&id) else {
            return;
        };
        if c.stopped {
            self.out
                .push_back(CoreOutput::Media(MediaRequest::Abandon { id }));
            return self.capture_ended(
                id,
                RecordingCapture::Oreka,
                PathBuf::new(),
                None,
                Some("stopped before oreka_record ran".into()),
            );
        }
        c.way = Way::Fork;
        let (leg, node) = (c.leg, c.node);
        let req = EslRequest::Api(commands::oreka_record(leg, false));
        self.ask_capture(node, vec![req], Tracking::Recorder(id));
    }

    /// The live capture will not happen: its legs go, the endpoint forgets it, and the
    /// switch records instead (unless the engine already stopped it).
    fn live_failed(&mut self, id: RecordingId, why: &str) {
        let Some(c) = self.captures.map.get_mut(&id) else {
            return;
        };
        if !matches!(
            c.way,
            Way::Expecting | Way::Live { .. } | Way::ExpectingFork | Way::Fork
        ) {
            return;
        }
        let legs = match c.way {
            Way::Live { legs } => legs.to_vec(),
            _ => Vec::new(),
        };
        c.fell_back = true;
        let (leg, node, stopped) = (c.leg, c.node, c.stopped);
        bump(&self.counters.recorder_fallbacks);
        warn!(recording = %id, %leg, reason = %why, "live recording failed; FreeSWITCH records it instead (uuid_record)");
        for recorder in legs {
            self.captures.recorders.remove(&recorder);
            let req = EslRequest::Api(format!("uuid_kill {recorder} NORMAL_CLEARING"));
            self.ask_capture(node, vec![req], Tracking::Other);
        }
        self.out
            .push_back(CoreOutput::Media(MediaRequest::Abandon { id }));
        if stopped {
            self.capture_ended(
                id,
                RecordingCapture::Live,
                PathBuf::new(),
                None,
                Some(format!("live capture failed ({why}) after it was stopped")),
            );
        } else {
            self.start_switch_capture(id);
        }
    }

    fn start_switch_capture(&mut self, id: RecordingId) {
        let Some(c) = self.captures.map.get(&id) else {
            return;
        };
        let (leg, node, stereo, silenced) = (c.leg, c.node, c.stereo, c.silenced);
        let path =
            match commands::switch_record_path(&self.cfg.recording.switch_path, &file_name(id)) {
                Ok(p) => p,
                Err(e) => {
                    let why = format!("no switch recording: {e}");
                    return self.capture_ended(
                        id,
                        RecordingCapture::Switch,
                        PathBuf::new(),
                        None,
                        Some(why),
                    );
                }
            };
        let mut requests = commands::switch_record_start(leg, stereo, &path);
        if silenced {
            requests.push(commands::switch_record_verb(leg, "mask", &path));
        }
        if let Some(c) = self.captures.map.get_mut(&id) {
            c.way = Way::Switch { path };
        }
        self.ask_capture(node, requests, Tracking::SwitchRecord(id));
    }

    fn silence_capture(&mut self, id: RecordingId, on: bool, kind: SpanKind) {
        let Some(c) = self.captures.map.get_mut(&id) else {
            return;
        };
        c.silenced = on;
        debug!(recording = %id, on, ?kind, "recording silence");
        match &c.way {
            // Applied as the capture begins.
            Way::Announcing { .. } => {}
            Way::Expecting | Way::Live { .. } | Way::ExpectingFork | Way::Fork => self
                .out
                .push_back(CoreOutput::Media(MediaRequest::Silence { id, on })),
            Way::Switch { path } => {
                let verb = if on { "mask" } else { "unmask" };
                let req = commands::switch_record_verb(c.leg, verb, path);
                let node = c.node;
                self.ask_capture(node, vec![req], Tracking::Other);
            }
            Way::Ingesting => {}
        }
    }

    fn stop_capture(&mut self, id: RecordingId) {
        let Some(c) = self.captures.map.get_mut(&id) else {
            return;
        };
        c.stopped = true;
        let node = c.node;
        match c.way.clone() {
            // Nothing captures yet: it ends now (the announcement plays on).
            Way::Announcing { .. } => {
                let capture = c.capture;
                self.capture_ended(
                    id,
                    capture,
                    PathBuf::new(),
                    None,
                    Some("stopped during the announcement, before recording began".into()),
                );
            }
            // At `Ready` the endpoint is told to forget it.
            Way::Expecting | Way::ExpectingFork => {}
            // mod_oreka's BYEs follow, and the endpoint's Finished.
            Way::Fork => {
                let req = EslRequest::Api(commands::oreka_record(c.leg, true));
                self.ask_capture(node, vec![req], Tracking::Other);
            }
            Way::Live { legs } => {
                for recorder in legs {
                    let req = EslRequest::Api(format!("uuid_kill {recorder} NORMAL_CLEARING"));
                    self.ask_capture(node, vec![req], Tracking::Other);
                }
            }
            Way::Switch { path } => {
                let req = commands::switch_record_verb(c.leg, "stop", &path);
                self.ask_capture(node, vec![req], Tracking::Other);
            }
            Way::Ingesting => {}
        }
    }

    /// RECORD_STOP: the switch closed a recording's file.
    pub(super) fn on_record_stop(&mut self, leg: LegId, path: Option<&str>) {
        let found = self.captures.map.iter().find_map(|(id, c)| match &c.way {
            Way::Switch { path: p } if c.leg == leg && path.is_none_or(|x| x == p) => Some(*id),
            _ => None,
        });
        let Some(id) = found else {
            return;
        };
        if let Some(c) = self.captures.map.get_mut(&id) {
            c.way = Way::Ingesting;
        }
        self.out.push_back(CoreOutput::Media(MediaRequest::Ingest {
            id,
            path: self.cfg.recording.switch_files.join(file_name(id)),
            wait: self.cfg.recording.switch_file_wait,
        }));
    }

    /// A recorder leg's CHANNEL_HANGUP_COMPLETE.
    pub(super) fn on_recorder_gone(&mut self, leg: LegId) -> bool {
        if self.captures.recorders.remove(&leg).is_none() {
            return false;
        }
        self.forget_home(leg);
        true
    }

    pub(super) fn recorder_explained(&self, leg: LegId) -> bool {
        self.captures.explains(leg)
    }

    pub(super) fn on_capture_reply(&mut self, tracking: Tracking, replies: Vec<Reply>) {
        let failure = replies.into_iter().find_map(|r| match r {
            Ok(Answer::Api(b) | Answer::Job(b)) if b.starts_with(b"-ERR") => {
                Some(String::from_utf8_lossy(&b).trim_end().to_owned())
            }
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        });
        let Some(why) = failure else {
            return;
        };
        bump(&self.counters.commands_failed);
        match tracking {
            Tracking::Recorder(id) => self.live_failed(id, &why),
            Tracking::Announcement(id) => self.announcement_overdue(id, &why),
            Tracking::SwitchRecord(id) => {
                warn!(recording = %id, reply = %why, "uuid_record refused");
                self.capture_ended(
                    id,
                    RecordingCapture::Switch,
                    PathBuf::new(),
                    None,
                    Some(format!("uuid_record refused: {why}")),
                );
            }
            _ => {}
        }
    }

    fn capture_ended(
        &mut self,
        id: RecordingId,
        capture: RecordingCapture,
        path: PathBuf,
        figures: Option<AudioFigures>,
        error: Option<String>,
    ) {
        let Some(c) = self.captures.map.remove(&id) else {
            return;
        };
        self.captures.recorders.retain(|_, r| *r != id);
        if error.is_some() {
            bump(&self.counters.recordings_failed);
            warn!(recording = %id, leg = %c.leg, error = ?error, "recording not whole");
        }
        self.followups
            .push_back(SwitchEvent::RecordingEnded(Box::new(RecordingOutcome {
                id,
                capture,
                fell_back: c.fell_back,
                path: path.display().to_string(),
                figures,
                error,
            })));
    }

    /// Capture requests are few (a handful per recorded call) and are not the engine's
    /// commands: they go at once, outside the in-flight bound.
    fn ask_capture(&mut self, node: usize, requests: Vec<EslRequest>, tracking: Tracking) {
        self.ask(node, requests, super::Pending::Capture { tracking });
    }
}

/// A recording's file name, the same for both ways.
pub(crate) fn file_name(id: RecordingId) -> String {
    format!("{id}.wav")
}

/// The two recorder legs' UUIDs, from the recording's (so a restart can tell them by their
/// `switchyard_recording` variable; the values only need to be unique).
fn recorder_legs(id: RecordingId) -> [LegId; 2] {
    [
        LegId(id.0.rotate_left(17) ^ 0xa),
        LegId(id.0.rotate_left(17) ^ 0xb),
    ]
}
